//! Parked connections: a plain TCP client quiet for five seconds gives up its task and its
//! place in tokio's reactor, and must come back for everything that concerns it — a message
//! for it, a packet from it, a takeover, its keep-alive timeout, shutdown — as if it had never
//! left. Tern only: the `tern_connections_parked` gauge is how the tests know a client parked.

use std::time::Duration;

use tern_broker::protocol::{QoS, ReasonCode};
use tern_e2e::broker::BrokerProcess;
use tern_e2e::clients::{
    connect_packet, eventually, skip_on_mosquitto, start_broker, version_tag, ProtocolVersion,
    RawClient,
};
use tern_e2e::http;
use tern_e2e::per_version;

/// Connections park after 5 s of quiet, at the broker's next once-a-second sweep.
const PARKED_WITHIN: Duration = Duration::from_secs(15);

/// Waits until exactly `count` connections are parked; false if that never happens.
async fn parked(broker: &BrokerProcess, count: u32) -> bool {
    let port = broker.metrics_port().expect("Tern serves metrics");
    eventually(PARKED_WITHIN, || {
        http::metric(port, "tern_connections_parked").ok() == Some(f64::from(count))
    })
    .await
}

per_version!(a_parked_subscriber_gets_its_messages_and_answers);

async fn a_parked_subscriber_gets_its_messages_and_answers(version: ProtocolVersion) {
    if skip_on_mosquitto("parking is Tern's") {
        return;
    }
    let broker = start_broker();
    let tag = version_tag(version);
    let mut subscriber =
        RawClient::connect(&broker.addr(), version, &format!("parked-sub-{tag}")).await;
    subscriber
        .subscribe(&format!("parked/{tag}/#"), QoS::AtLeastOnce)
        .await;
    assert!(
        parked(&broker, 1).await,
        "the quiet subscriber never parked"
    );

    // A message for it wakes it.
    let mut publisher =
        RawClient::connect(&broker.addr(), version, &format!("parked-pub-{tag}")).await;
    publisher
        .publish(&format!("parked/{tag}/a"), "first", QoS::AtLeastOnce, false)
        .await;
    let first = subscriber.expect_publish().await;
    assert_eq!(&first.payload[..], b"first");
    subscriber.ack(&first).await;
    publisher.disconnect().await;

    // Quiet again, it parks again; then a packet from the client wakes it.
    assert!(
        parked(&broker, 1).await,
        "the subscriber did not park again"
    );
    subscriber.ping().await;
    assert_eq!(
        subscriber
            .subscribe(&format!("parked/{tag}/more"), QoS::AtMostOnce)
            .await,
        ReasonCode::Success
    );

    // Nothing was lost on the way: a QoS 1 message published while it is parked once more.
    assert!(
        parked(&broker, 1).await,
        "the subscriber did not park a third time"
    );
    let mut publisher =
        RawClient::connect(&broker.addr(), version, &format!("parked-pub2-{tag}")).await;
    publisher
        .publish(
            &format!("parked/{tag}/b"),
            "second",
            QoS::AtLeastOnce,
            false,
        )
        .await;
    let second = subscriber.expect_publish().await;
    assert_eq!(&second.payload[..], b"second");
    subscriber.ack(&second).await;
    let port = broker.metrics_port().unwrap();
    assert_eq!(http::metric(port, "tern_connections").unwrap(), 2.0);
}

/// Enough parked 5.0 clients that shutdown must really wait for their resumed tasks: each
/// has to get its DISCONNECT 0x8B out before the process exits.
const PARKED_AT_SHUTDOWN: usize = 20;

#[tokio::test]
async fn parked_clients_are_taken_over_and_told_of_shutdown() {
    if skip_on_mosquitto("parking is Tern's") {
        return;
    }
    let broker = start_broker();
    let addr = broker.addr();
    let mut taken_over = RawClient::connect(&addr, ProtocolVersion::V5, "parked-takeover").await;
    let mut stayers_v5 = Vec::new();
    for n in 0..PARKED_AT_SHUTDOWN {
        let client_id = format!("parked-stayer-v5-{n}");
        stayers_v5.push(RawClient::connect(&addr, ProtocolVersion::V5, &client_id).await);
    }
    let mut stayer_v311 =
        RawClient::connect(&addr, ProtocolVersion::V311, "parked-stayer-v311").await;
    let stayers = PARKED_AT_SHUTDOWN as u32 + 1;
    assert!(
        parked(&broker, stayers + 1).await,
        "the quiet clients never parked"
    );

    let _successor = RawClient::connect(&addr, ProtocolVersion::V5, "parked-takeover").await;
    taken_over
        .expect_disconnect(ReasonCode::SessionTakenOver)
        .await;

    assert!(parked(&broker, stayers).await, "the stayers are not parked");
    broker.signal(libc::SIGTERM).expect("SIGTERM");
    for stayer in &mut stayers_v5 {
        stayer
            .expect_disconnect(ReasonCode::ServerShuttingDown)
            .await;
    }
    stayer_v311
        .expect_disconnect(ReasonCode::ServerShuttingDown)
        .await;
}

#[tokio::test]
async fn a_parked_client_that_stays_silent_past_its_keep_alive_is_closed() {
    if skip_on_mosquitto("parking is Tern's") {
        return;
    }
    let broker = start_broker();
    // Keep alive 5 s: closed after 7.5 s of silence, parked after 5.
    let mut connect = connect_packet(ProtocolVersion::V5, "parked-silent");
    connect.keep_alive = 5;
    let (mut silent, _) = RawClient::connect_with(&broker.addr(), connect).await;
    assert!(parked(&broker, 1).await, "the silent client never parked");
    let disconnect = silent.expect_closed_within(Duration::from_secs(10)).await;
    assert_eq!(
        disconnect.map(|d| d.reason_code),
        Some(ReasonCode::KeepAliveTimeout)
    );
}
