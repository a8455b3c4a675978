//! Will messages: published when a connection ends without DISCONNECT, not after a normal
//! DISCONNECT, retained when asked, and (5.0) delayed by the Will Delay Interval, cancelled by
//! resuming the session in time, and requested explicitly with DISCONNECT reason 0x04.

use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use tern_broker::protocol::{Connect, Disconnect, LastWill, QoS, ReasonCode, WillProperties};
use tern_e2e::clients::{
    connect_packet, paho, persistent_connect_packet, start_broker, version_tag, MosquittoSub,
    ProtocolVersion, RawClient, SubOptions, QUIET_PERIOD,
};
use tern_e2e::per_version;

per_version!(
    will_is_published_when_the_connection_drops_without_disconnect,
    no_will_is_published_after_a_normal_disconnect,
    retained_will_is_kept_as_the_retained_message,
    paho_will_is_published_when_its_socket_is_closed,
    paho_will_is_not_published_after_a_graceful_disconnect,
    mosquitto_sub_will_is_published_when_the_process_is_killed,
);

const WILL_TOPIC: &str = "w/status";

/// A CONNECT for `client_id` carrying a QoS 1 will "gone" on [`WILL_TOPIC`].
fn connect_with_will(version: ProtocolVersion, client_id: &str, retain: bool) -> Connect {
    let mut connect = connect_packet(version, client_id);
    connect.will = Some(LastWill {
        topic: ByteString::from(WILL_TOPIC),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain,
        properties: WillProperties::default(),
    });
    connect
}

/// A client subscribed to [`WILL_TOPIC`] at QoS 1.
async fn watcher(addr: &str, version: ProtocolVersion) -> RawClient {
    let mut watcher = RawClient::connect(addr, version, "watcher").await;
    watcher.subscribe(WILL_TOPIC, QoS::AtLeastOnce).await;
    watcher
}

/// Connects `connect` and asserts success.
async fn connect_ok(addr: &str, connect: Connect) -> RawClient {
    let (client, connack) = RawClient::connect_with(addr, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::Success, "{connack:?}");
    client
}

async fn will_is_published_when_the_connection_drops_without_disconnect(version: ProtocolVersion) {
    let broker = start_broker();
    let mut watcher = watcher(&broker.addr(), version).await;
    let mortal = connect_ok(&broker.addr(), connect_with_will(version, "mortal", false)).await;

    mortal.drop_connection();

    let will = watcher.expect_publish().await;
    assert_eq!(
        (&will.topic[..], &will.payload[..]),
        (WILL_TOPIC, &b"gone"[..])
    );
    assert_eq!(will.qos, QoS::AtLeastOnce, "will QoS");
}

async fn no_will_is_published_after_a_normal_disconnect(version: ProtocolVersion) {
    let broker = start_broker();
    let mut watcher = watcher(&broker.addr(), version).await;
    let polite = connect_ok(&broker.addr(), connect_with_will(version, "polite", false)).await;

    polite.disconnect().await;
    tokio::time::sleep(QUIET_PERIOD).await;
    let mut other = RawClient::connect(&broker.addr(), version, "other").await;
    other
        .publish(WILL_TOPIC, "sentinel", QoS::AtLeastOnce, false)
        .await;

    let first = watcher.expect_publish().await;
    assert_eq!(
        &first.payload[..],
        b"sentinel",
        "the will must be discarded: {first:?}"
    );
}

async fn retained_will_is_kept_as_the_retained_message(version: ProtocolVersion) {
    let broker = start_broker();
    let mut watcher = watcher(&broker.addr(), version).await;
    let mortal = connect_ok(&broker.addr(), connect_with_will(version, "mortal", true)).await;
    mortal.drop_connection();
    watcher.expect_publishes_acked(1).await;

    let mut late = RawClient::connect(&broker.addr(), version, "late").await;
    late.subscribe(WILL_TOPIC, QoS::AtLeastOnce).await;

    let replay = late.expect_publish().await;
    assert!(replay.retain, "will was stored as retained");
    assert_eq!(&replay.payload[..], b"gone");
}

async fn paho_will_is_published_when_its_socket_is_closed(version: ProtocolVersion) {
    let broker = start_broker();
    let result = paho("will.py", broker.port(), version, &[]).await;

    let payloads: Vec<&str> = result["received"]
        .as_array()
        .expect("received")
        .iter()
        .filter_map(|m| m["payload"].as_str())
        .collect();
    assert_eq!(payloads, ["gone", "sentinel"]);
}

async fn paho_will_is_not_published_after_a_graceful_disconnect(version: ProtocolVersion) {
    let broker = start_broker();
    let result = paho("will.py", broker.port(), version, &["--graceful"]).await;

    let payloads: Vec<&str> = result["received"]
        .as_array()
        .expect("received")
        .iter()
        .filter_map(|m| m["payload"].as_str())
        .collect();
    assert_eq!(payloads, ["sentinel"]);
}

async fn mosquitto_sub_will_is_published_when_the_process_is_killed(version: ProtocolVersion) {
    let broker = start_broker();
    let mut watcher = watcher(&broker.addr(), version).await;
    let options = SubOptions::new(version, "w/anything")
        .client_id(&format!("cli-mortal-{}", version_tag(version)))
        .arg("--will-topic")
        .arg(WILL_TOPIC)
        .arg("--will-payload")
        .arg("cli gone");
    let mortal = MosquittoSub::spawn(broker.port(), &options).await;

    mortal.kill().await;

    let will = watcher.expect_publish().await;
    assert_eq!(&will.payload[..], b"cli gone");
}

/// A 5.0 CONNECT with a will delayed by `delay` seconds and a session outliving it.
fn connect_with_delayed_will(client_id: &str, delay: u32) -> Connect {
    let mut connect = connect_with_will(ProtocolVersion::V5, client_id, false);
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(60);
    if let Some(will) = connect.will.as_mut() {
        will.properties.will_delay_interval = Some(delay);
    }
    connect
}

#[tokio::test]
async fn will_delay_interval_postpones_the_will_v5() {
    let broker = start_broker();
    let mut watcher = watcher(&broker.addr(), ProtocolVersion::V5).await;
    let mortal = connect_ok(&broker.addr(), connect_with_delayed_will("slow", 2)).await;

    mortal.drop_connection();

    watcher.expect_no_publish(Duration::from_millis(1200)).await;
    let will = watcher.expect_publish().await;
    assert_eq!(
        &will.payload[..],
        b"gone",
        "published once the delay elapsed"
    );
}

#[tokio::test]
async fn resuming_the_session_within_the_will_delay_cancels_the_will_v5() {
    let broker = start_broker();
    let mut watcher = watcher(&broker.addr(), ProtocolVersion::V5).await;
    let connect = connect_with_delayed_will("comeback", 1);
    let mortal = connect_ok(&broker.addr(), connect).await;
    mortal.drop_connection();

    let mut resumed = persistent_connect_packet(ProtocolVersion::V5, "comeback");
    resumed.properties.session_expiry_interval = Some(60);
    let _back = connect_ok(&broker.addr(), resumed).await;

    watcher.expect_no_publish(Duration::from_millis(2500)).await;
}

#[tokio::test]
async fn disconnect_with_will_message_reason_publishes_the_will_v5() {
    let broker = start_broker();
    let mut watcher = watcher(&broker.addr(), ProtocolVersion::V5).await;
    let leaver = connect_ok(
        &broker.addr(),
        connect_with_will(ProtocolVersion::V5, "leaver", false),
    )
    .await;

    leaver
        .disconnect_with(Disconnect::with_reason(
            ReasonCode::DisconnectWithWillMessage,
        ))
        .await;

    let will = watcher.expect_publish().await;
    assert_eq!(&will.payload[..], b"gone");
}
