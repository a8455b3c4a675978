//! Retained messages: set, replace, clear with an empty payload, replay on subscribe (also
//! through wildcards and at the lower QoS), the RETAIN flag on live delivery, and the 5.0
//! subscription options Retain Handling and Retain As Published.

use tern_broker::protocol::{QoS, RetainHandling, SubscribeProperties, SubscriptionOptions};
use tern_e2e::clients::{
    mosquitto_pub, paho, start_broker, version_tag, MosquittoSub, ProtocolVersion, RawClient,
    SubOptions,
};
use tern_e2e::per_version;

per_version!(
    retained_message_is_replayed_to_a_new_subscriber_with_retain_set,
    newer_retained_message_replaces_the_older_one,
    empty_retained_payload_clears_the_retained_message,
    retained_messages_are_replayed_through_wildcard_filters,
    retained_replay_uses_the_lower_of_message_and_subscription_qos,
    live_delivery_clears_the_retain_flag,
    paho_sees_retained_messages_replaced_and_cleared,
    mosquitto_sub_receives_retained_message_from_mosquitto_pub,
);

async fn retained_message_is_replayed_to_a_new_subscriber_with_retain_set(
    version: ProtocolVersion,
) {
    let broker = start_broker();
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;
    publisher
        .publish("r/t", "kept", QoS::AtLeastOnce, true)
        .await;

    let mut subscriber = RawClient::connect(&broker.addr(), version, "late").await;
    subscriber.subscribe("r/t", QoS::AtLeastOnce).await;

    let publish = subscriber.expect_publish().await;
    assert!(publish.retain, "replayed message has RETAIN=1");
    assert_eq!(
        (&publish.topic[..], &publish.payload[..]),
        ("r/t", &b"kept"[..])
    );
}

async fn newer_retained_message_replaces_the_older_one(version: ProtocolVersion) {
    let broker = start_broker();
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;
    publisher
        .publish("r/t", "old", QoS::AtLeastOnce, true)
        .await;
    publisher
        .publish("r/t", "new", QoS::AtLeastOnce, true)
        .await;

    let mut subscriber = RawClient::connect(&broker.addr(), version, "late").await;
    subscriber.subscribe("r/t", QoS::AtLeastOnce).await;
    publisher
        .publish("r/t", "live", QoS::AtLeastOnce, false)
        .await;

    let got = subscriber.expect_publishes_acked(2).await;
    let payloads: Vec<&[u8]> = got.iter().map(|p| &p.payload[..]).collect();
    assert_eq!(
        payloads,
        [&b"new"[..], b"live"],
        "only the newest retained message"
    );
}

async fn empty_retained_payload_clears_the_retained_message(version: ProtocolVersion) {
    let broker = start_broker();
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;
    publisher
        .publish("r/t", "doomed", QoS::AtLeastOnce, true)
        .await;
    publisher.publish("r/t", "", QoS::AtLeastOnce, true).await;

    let mut subscriber = RawClient::connect(&broker.addr(), version, "late").await;
    subscriber.subscribe("r/t", QoS::AtLeastOnce).await;
    publisher
        .publish("r/t", "sentinel", QoS::AtLeastOnce, false)
        .await;

    let first = subscriber.expect_publish().await;
    assert_eq!(
        &first.payload[..],
        b"sentinel",
        "nothing retained: {first:?}"
    );
}

async fn retained_messages_are_replayed_through_wildcard_filters(version: ProtocolVersion) {
    let broker = start_broker();
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;
    for topic in ["r/a", "r/b/c", "other/x"] {
        publisher
            .publish(topic, topic, QoS::AtLeastOnce, true)
            .await;
    }

    let mut subscriber = RawClient::connect(&broker.addr(), version, "late").await;
    subscriber.subscribe("r/#", QoS::AtLeastOnce).await;
    publisher
        .publish("r/end", "sentinel", QoS::AtLeastOnce, false)
        .await;

    let got = subscriber.expect_publishes_acked(3).await;
    let mut topics: Vec<&str> = got.iter().map(|p| &p.topic[..]).collect();
    topics.sort_unstable();
    assert_eq!(topics, ["r/a", "r/b/c", "r/end"]);
}

async fn retained_replay_uses_the_lower_of_message_and_subscription_qos(version: ProtocolVersion) {
    let broker = start_broker();
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;
    publisher
        .publish("r/q2", "two", QoS::ExactlyOnce, true)
        .await;
    publisher
        .publish("r/q0", "zero", QoS::AtMostOnce, true)
        .await;

    let mut subscriber = RawClient::connect(&broker.addr(), version, "late").await;
    subscriber.subscribe("r/q2", QoS::AtLeastOnce).await;
    let two = subscriber.expect_publish().await;
    subscriber.ack(&two).await;
    subscriber.subscribe("r/q0", QoS::ExactlyOnce).await;
    let zero = subscriber.expect_publish().await;

    assert_eq!(
        two.qos,
        QoS::AtLeastOnce,
        "QoS 2 message, QoS 1 subscription"
    );
    assert_eq!(
        zero.qos,
        QoS::AtMostOnce,
        "QoS 0 message, QoS 2 subscription"
    );
}

async fn live_delivery_clears_the_retain_flag(version: ProtocolVersion) {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), version, "early").await;
    subscriber.subscribe("r/live", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;

    publisher
        .publish("r/live", "fresh", QoS::AtLeastOnce, true)
        .await;

    let publish = subscriber.expect_publish().await;
    assert!(!publish.retain, "established subscription gets RETAIN=0");
}

async fn paho_sees_retained_messages_replaced_and_cleared(version: ProtocolVersion) {
    let broker = start_broker();
    let result = paho("retained.py", broker.port(), version, &[]).await;

    let replay = &result["after_replace"][0];
    assert_eq!(
        (&replay["payload"], &replay["retain"]),
        (&"second".into(), &true.into()),
        "{result}"
    );
    let after_clear = &result["after_clear"][0];
    assert_eq!(after_clear["payload"], "sentinel", "{result}");
}

async fn mosquitto_sub_receives_retained_message_from_mosquitto_pub(version: ProtocolVersion) {
    let broker = start_broker();
    let topic = format!("r/cli/{}", version_tag(version));
    mosquitto_pub(
        broker.port(),
        version,
        &["-t", &topic, "-m", "stored", "-q", "1", "-r"],
    )
    .await;

    let options = SubOptions::new(version, &topic).qos(1).format("%r %p");
    let subscriber = MosquittoSub::spawn(broker.port(), &options).await;

    assert_eq!(subscriber.messages().await, ["1 stored"]);
}

/// Subscribes `client` (5.0) to `filter` with the given Retain Handling and Retain As
/// Published options at QoS 1.
async fn subscribe_v5(
    client: &mut RawClient,
    filter: &str,
    handling: RetainHandling,
    as_published: bool,
) {
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        retain_handling: handling,
        retain_as_published: as_published,
        ..SubscriptionOptions::default()
    };
    let suback = client
        .subscribe_with(&[(filter, options)], SubscribeProperties::default())
        .await;
    assert!(!suback.reason_codes[0].is_error(), "{suback:?}");
}

/// A broker holding one retained message on `r/h`, and a 5.0 subscriber not yet subscribed.
async fn retained_setup() -> (tern_e2e::broker::BrokerProcess, RawClient, RawClient) {
    let broker = start_broker();
    let mut publisher = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "pub").await;
    publisher
        .publish("r/h", "retained", QoS::AtLeastOnce, true)
        .await;
    let subscriber = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "sub").await;
    (broker, publisher, subscriber)
}

#[tokio::test]
async fn retain_handling_0_sends_retained_messages_on_every_subscribe_v5() {
    let (_broker, _publisher, mut subscriber) = retained_setup().await;

    subscribe_v5(&mut subscriber, "r/h", RetainHandling::SendAlways, false).await;
    let first = subscriber.expect_publishes_acked(1).await;
    subscribe_v5(&mut subscriber, "r/h", RetainHandling::SendAlways, false).await;
    let second = subscriber.expect_publishes_acked(1).await;

    assert!(
        first[0].retain && second[0].retain,
        "replayed on both subscribes"
    );
}

#[tokio::test]
async fn retain_handling_1_sends_retained_messages_only_for_a_new_subscription_v5() {
    let (_broker, mut publisher, mut subscriber) = retained_setup().await;

    subscribe_v5(&mut subscriber, "r/h", RetainHandling::SendIfNew, false).await;
    let first = subscriber.expect_publishes_acked(1).await;
    assert_eq!(
        &first[0].payload[..],
        b"retained",
        "new subscription gets the replay"
    );
    subscribe_v5(&mut subscriber, "r/h", RetainHandling::SendIfNew, false).await;
    publisher
        .publish("r/h", "sentinel", QoS::AtLeastOnce, false)
        .await;

    let next = subscriber.expect_publish().await;
    assert_eq!(
        &next.payload[..],
        b"sentinel",
        "existing subscription: no replay"
    );
}

#[tokio::test]
async fn retain_handling_2_never_sends_retained_messages_v5() {
    let (_broker, mut publisher, mut subscriber) = retained_setup().await;

    subscribe_v5(&mut subscriber, "r/h", RetainHandling::Never, false).await;
    publisher
        .publish("r/h", "sentinel", QoS::AtLeastOnce, false)
        .await;

    let first = subscriber.expect_publish().await;
    assert_eq!(&first.payload[..], b"sentinel", "no replay: {first:?}");
}

#[tokio::test]
async fn retain_as_published_keeps_the_retain_flag_on_live_delivery_v5() {
    let broker = start_broker();
    let mut keeps = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "keeps").await;
    subscribe_v5(&mut keeps, "r/rap", RetainHandling::SendAlways, true).await;
    let mut clears = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "clears").await;
    subscribe_v5(&mut clears, "r/rap", RetainHandling::SendAlways, false).await;
    let mut publisher = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "pub").await;

    publisher
        .publish("r/rap", "flagged", QoS::AtLeastOnce, true)
        .await;

    assert!(
        keeps.expect_publish().await.retain,
        "retain as published: RETAIN=1"
    );
    assert!(!clears.expect_publish().await.retain, "default: RETAIN=0");
}
