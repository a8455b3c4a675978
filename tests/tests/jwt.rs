//! JSON Web Tokens as CONNECT passwords, against the real broker: a token admits its subject,
//! an expired one is refused, and a connection admitted by a token is closed with 0xA0
//! (Maximum connect time) when the token expires, while other clients stay.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;
use tern_broker::protocol::{QoS, ReasonCode};
use tern_e2e::broker::BrokerProcess;
use tern_e2e::clients::{connect_packet, ProtocolVersion, RawClient};

const SECRET: &[u8] = b"a shared secret of the JWT tests";

/// A broker admitting HS256 tokens signed with [`SECRET`], with no clock leeway.
fn start_broker() -> (BrokerProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("jwt")).unwrap();
    std::fs::write(dir.path().join("jwt/secret"), SECRET).unwrap();
    let broker = BrokerProcess::start_tern_in(
        dir.path(),
        "auth:\n  allowAnonymous: false\n  jwt: { leewaySeconds: 0, keys: [ { file: jwt/secret, algorithm: HS256 } ] }\n",
    )
    .expect("starting tern");
    (broker, dir)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token for `subject` expiring `expires_in` seconds from now (negative: in the past).
fn token(subject: &str, expires_in: i64) -> String {
    let exp = unix_now() as i64 + expires_in;
    encode(
        &Header::default(),
        &json!({ "sub": subject, "exp": exp }),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// Connects as `subject` with `token` as the password (3.1.1 needs the user name too).
async fn connect(
    broker: &BrokerProcess,
    version: ProtocolVersion,
    subject: &str,
    token: &str,
) -> (RawClient, ReasonCode) {
    let mut connect = connect_packet(version, subject);
    connect.username = Some(subject.into());
    connect.password = Some(token.as_bytes().to_vec().into());
    let (client, connack) = RawClient::connect_with(&broker.addr(), connect).await;
    (client, connack.reason_code)
}

#[tokio::test]
async fn a_connection_closes_when_its_token_expires_and_others_stay() {
    let (broker, _dir) = start_broker();
    let (mut short_v5, admitted_v5) =
        connect(&broker, ProtocolVersion::V5, "dev-1", &token("dev-1", 2)).await;
    let (mut short_v311, admitted_v311) =
        connect(&broker, ProtocolVersion::V311, "dev-2", &token("dev-2", 2)).await;
    let (mut long_lived, admitted_long) =
        connect(&broker, ProtocolVersion::V5, "dev-3", &token("dev-3", 600)).await;
    assert_eq!(
        (admitted_v5, admitted_v311, admitted_long),
        (
            ReasonCode::Success,
            ReasonCode::Success,
            ReasonCode::Success
        )
    );

    let v5_goodbye = short_v5.expect_closed_within(Duration::from_secs(10)).await;
    let v311_goodbye = short_v311
        .expect_closed_within(Duration::from_secs(10))
        .await;

    assert_eq!(
        (v5_goodbye.map(|d| d.reason_code), v311_goodbye),
        (Some(ReasonCode::MaximumConnectTime), None)
    );
    long_lived.ping().await;
    assert_eq!(
        long_lived.subscribe("still/here", QoS::AtLeastOnce).await,
        ReasonCode::GrantedQoS1
    );
}

#[tokio::test]
async fn an_expired_token_is_refused_at_connect() {
    let (broker, _dir) = start_broker();
    let (_client, reason) =
        connect(&broker, ProtocolVersion::V5, "dev-1", &token("dev-1", -5)).await;
    assert_eq!(reason, ReasonCode::BadUserNameOrPassword);
}
