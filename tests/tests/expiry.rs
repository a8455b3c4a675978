//! Message expiry (5.0): an expired message is not delivered to an offline session nor
//! replayed as retained, and the remaining lifetime is forwarded with the message.

use std::time::Duration;

use tern_broker::protocol::{Publish, QoS};
use tern_e2e::clients::{publish_packet, start_broker, ProtocolVersion, RawClient};

const V5: ProtocolVersion = ProtocolVersion::V5;

/// Long enough for a 1-second expiry to pass, and for a 60-second one to lose 2 seconds.
const OFFLINE: Duration = Duration::from_millis(2100);

fn expiring(topic: &str, payload: &'static str, seconds: u32) -> Publish {
    let mut publish = publish_packet(topic, payload, QoS::AtLeastOnce);
    publish.properties.message_expiry_interval = Some(seconds);
    publish
}

/// Sends `publish` and asserts the broker accepted it.
async fn publish_ok(client: &mut RawClient, publish: Publish) {
    let reason = client.publish_with(publish).await;
    assert!(!reason.is_error(), "{reason}");
}

/// Creates the offline persistent session "sleeper" subscribed to `exp/t` at QoS 1.
async fn offline_subscriber(addr: &str) {
    let (mut client, _) = RawClient::connect_persistent(addr, V5, "sleeper").await;
    client.subscribe("exp/t", QoS::AtLeastOnce).await;
    client.disconnect().await;
}

#[tokio::test]
async fn expired_message_is_not_delivered_to_an_offline_session_v5() {
    let broker = start_broker();
    offline_subscriber(&broker.addr()).await;
    let mut publisher = RawClient::connect(&broker.addr(), V5, "pub").await;
    publish_ok(&mut publisher, expiring("exp/t", "short-lived", 1)).await;
    publisher
        .publish("exp/t", "durable", QoS::AtLeastOnce, false)
        .await;

    tokio::time::sleep(OFFLINE).await;
    let (mut resumed, _) = RawClient::connect_persistent(&broker.addr(), V5, "sleeper").await;

    let first = resumed.expect_publish().await;
    assert_eq!(
        &first.payload[..],
        b"durable",
        "the expired message is dropped: {first:?}"
    );
}

#[tokio::test]
async fn queued_message_carries_its_remaining_expiry_interval_v5() {
    let broker = start_broker();
    offline_subscriber(&broker.addr()).await;
    let mut publisher = RawClient::connect(&broker.addr(), V5, "pub").await;
    publish_ok(&mut publisher, expiring("exp/t", "aging", 60)).await;

    tokio::time::sleep(OFFLINE).await;
    let (mut resumed, _) = RawClient::connect_persistent(&broker.addr(), V5, "sleeper").await;

    let publish = resumed.expect_publish().await;
    let remaining = publish
        .properties
        .message_expiry_interval
        .expect("expiry forwarded");
    assert!(
        (50..=58).contains(&remaining),
        "60 s minus the ~2 s spent queued: {remaining}"
    );
}

#[tokio::test]
async fn live_message_carries_its_expiry_interval_v5() {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), V5, "sub").await;
    subscriber.subscribe("exp/t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), V5, "pub").await;

    publish_ok(&mut publisher, expiring("exp/t", "fresh", 60)).await;

    let publish = subscriber.expect_publish().await;
    let remaining = publish
        .properties
        .message_expiry_interval
        .expect("expiry forwarded");
    assert!((59..=60).contains(&remaining), "{remaining}");
}

#[tokio::test]
async fn message_without_expiry_carries_no_expiry_interval_v5() {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), V5, "sub").await;
    subscriber.subscribe("exp/t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), V5, "pub").await;

    publisher
        .publish("exp/t", "forever", QoS::AtLeastOnce, false)
        .await;

    let publish = subscriber.expect_publish().await;
    assert_eq!(publish.properties.message_expiry_interval, None);
}

#[tokio::test]
async fn expired_retained_message_is_not_replayed_v5() {
    let broker = start_broker();
    let mut publisher = RawClient::connect(&broker.addr(), V5, "pub").await;
    let mut retained = expiring("exp/r", "stale", 1);
    retained.retain = true;
    publish_ok(&mut publisher, retained).await;

    tokio::time::sleep(OFFLINE).await;
    let mut subscriber = RawClient::connect(&broker.addr(), V5, "late").await;
    subscriber.subscribe("exp/r", QoS::AtLeastOnce).await;
    publisher
        .publish("exp/r", "sentinel", QoS::AtLeastOnce, false)
        .await;

    let first = subscriber.expect_publish().await;
    assert_eq!(
        &first.payload[..],
        b"sentinel",
        "expired retained message: {first:?}"
    );
}
