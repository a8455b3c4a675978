//! Subscriptions: wildcard matching, `$`-topics hidden from leading wildcards, unsubscribe,
//! re-subscribe, overlapping subscriptions (3.1.1: once at the highest QoS; 5.0: once with all
//! subscription identifiers), invalid filters, No Local and Subscription Identifiers (5.0).

use tern_broker::protocol::{
    Packet, Publish, QoS, ReasonCode, Subscribe, SubscribeFilter, SubscribeProperties,
    SubscriptionOptions,
};
use tern_e2e::clients::{
    mosquitto_note, on_mosquitto, skip_on_mosquitto, start_broker, ProtocolVersion, RawClient,
};
use tern_e2e::per_version;

per_version!(
    single_level_wildcard_matches_exactly_one_level,
    multi_level_wildcard_matches_the_parent_and_all_descendants,
    leading_wildcards_do_not_match_dollar_topics,
    unsubscribe_stops_delivery,
    resubscribing_replaces_the_granted_qos,
);

/// Publishes each of `topics` (payload = topic) at QoS 1, then `sentinel` on `sentinel_topic`,
/// and returns the topics `subscriber` received up to and including the sentinel.
async fn topics_received(
    subscriber: &mut RawClient,
    publisher: &mut RawClient,
    topics: &[&str],
    sentinel_topic: &str,
) -> Vec<String> {
    for topic in topics {
        publisher
            .publish(topic, topic, QoS::AtLeastOnce, false)
            .await;
    }
    publisher
        .publish(sentinel_topic, "sentinel", QoS::AtLeastOnce, false)
        .await;
    let mut received = Vec::new();
    loop {
        let publish = subscriber.expect_publish().await;
        subscriber.ack(&publish).await;
        received.push(publish.topic.to_string());
        if &publish.payload[..] == b"sentinel" {
            return received;
        }
    }
}

async fn single_level_wildcard_matches_exactly_one_level(version: ProtocolVersion) {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), version, "sub").await;
    subscriber.subscribe("a/+/c", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;

    let got = topics_received(
        &mut subscriber,
        &mut publisher,
        &["a/b/c", "a/c", "a/b/d/c", "a/b/c/d", "a//c", "b/b/c"],
        "a/end/c",
    )
    .await;

    assert_eq!(got, ["a/b/c", "a//c", "a/end/c"]);
}

async fn multi_level_wildcard_matches_the_parent_and_all_descendants(version: ProtocolVersion) {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), version, "sub").await;
    subscriber.subscribe("a/#", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;

    let got = topics_received(
        &mut subscriber,
        &mut publisher,
        &["a", "a/b", "a/b/c", "b/a", "ab"],
        "a/end",
    )
    .await;

    assert_eq!(got, ["a", "a/b", "a/b/c", "a/end"]);
}

async fn leading_wildcards_do_not_match_dollar_topics(version: ProtocolVersion) {
    let broker = start_broker();
    let mut everything = RawClient::connect(&broker.addr(), version, "all").await;
    everything.subscribe("#", QoS::AtLeastOnce).await;
    everything.subscribe("+/x", QoS::AtLeastOnce).await;
    let mut dollar = RawClient::connect(&broker.addr(), version, "dollar").await;
    dollar.subscribe("$e2e/#", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;

    publisher
        .publish("$e2e/x", "hidden", QoS::AtLeastOnce, false)
        .await;
    publisher
        .publish("end/x", "sentinel", QoS::AtLeastOnce, false)
        .await;

    assert_eq!(
        &dollar.expect_publish().await.topic[..],
        "$e2e/x",
        "explicit $ filter matches"
    );
    let first = everything.expect_publish().await;
    assert_eq!(
        &first.payload[..],
        b"sentinel",
        "# and +/x must skip $ topics: {first:?}"
    );
}

async fn unsubscribe_stops_delivery(version: ProtocolVersion) {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), version, "sub").await;
    subscriber.subscribe("u/gone", QoS::AtLeastOnce).await;
    subscriber.subscribe("u/kept", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;

    let unsuback = subscriber.unsubscribe("u/gone").await;
    if version == ProtocolVersion::V5 {
        assert_eq!(unsuback.reason_codes, [ReasonCode::Success], "UNSUBACK");
    }
    publisher
        .publish("u/gone", "dropped", QoS::AtLeastOnce, false)
        .await;
    publisher
        .publish("u/kept", "sentinel", QoS::AtLeastOnce, false)
        .await;

    let first = subscriber.expect_publish().await;
    assert_eq!(&first.payload[..], b"sentinel", "{first:?}");
}

async fn resubscribing_replaces_the_granted_qos(version: ProtocolVersion) {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), version, "sub").await;
    subscriber.subscribe("re/sub", QoS::AtMostOnce).await;
    let granted = subscriber.subscribe("re/sub", QoS::ExactlyOnce).await;
    assert_eq!(granted, ReasonCode::GrantedQoS2);
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;

    publisher
        .publish("re/sub", "x", QoS::ExactlyOnce, false)
        .await;
    publisher
        .publish("re/sub", "sentinel", QoS::AtMostOnce, false)
        .await;

    let got = subscriber.expect_publishes_acked(2).await;
    assert_eq!(got[0].qos, QoS::ExactlyOnce, "one subscription, now QoS 2");
    assert_eq!(&got[1].payload[..], b"sentinel", "delivered once");
}

/// Collects what `subscriber` receives until the QoS 0 sentinel on `o/end` arrives.
async fn until_sentinel(subscriber: &mut RawClient) -> Vec<Publish> {
    let mut got = Vec::new();
    loop {
        let publish = subscriber.expect_publish().await;
        subscriber.ack(&publish).await;
        if &publish.payload[..] == b"sentinel" {
            return got;
        }
        got.push(publish);
    }
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_once_at_the_highest_qos_v311() {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), ProtocolVersion::V311, "sub").await;
    subscriber.subscribe("o/+", QoS::AtMostOnce).await;
    subscriber.subscribe("o/#", QoS::ExactlyOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), ProtocolVersion::V311, "pub").await;

    publisher
        .publish("o/x", "overlap", QoS::AtLeastOnce, false)
        .await;
    publisher
        .publish("o/end", "sentinel", QoS::AtMostOnce, false)
        .await;

    let got = until_sentinel(&mut subscriber).await;
    assert_eq!(got.len(), 1, "delivered once: {got:?}");
    if on_mosquitto() {
        mosquitto_note("Mosquitto 2.0 delivers at the QoS of the first matching subscription");
    } else {
        assert_eq!(
            got[0].qos,
            QoS::AtLeastOnce,
            "highest matching QoS (capped by the message)"
        );
    }
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_once_with_all_subscription_identifiers_v5() {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "sub").await;
    for (filter, id) in [("o/+", 1), ("o/#", 2)] {
        let options = SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..SubscriptionOptions::default()
        };
        let properties = SubscribeProperties {
            subscription_identifier: Some(id),
            ..SubscribeProperties::default()
        };
        subscriber
            .subscribe_with(&[(filter, options)], properties)
            .await;
    }
    let mut publisher = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "pub").await;

    publisher
        .publish("o/x", "overlap", QoS::AtLeastOnce, false)
        .await;
    publisher
        .publish("o/end", "sentinel", QoS::AtMostOnce, false)
        .await;

    let got = until_sentinel(&mut subscriber).await;
    let mut ids: Vec<u32> = got
        .iter()
        .flat_map(|p| p.properties.subscription_identifiers.iter().copied())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [1, 2],
        "every matching subscription identifier: {got:?}"
    );
    if on_mosquitto() {
        mosquitto_note("Mosquitto 2.0 sends one copy per matching subscription (allowed in 5.0)");
    } else {
        assert_eq!(got.len(), 1, "delivered once: {got:?}");
    }
}

#[tokio::test]
async fn subscription_identifier_is_attached_to_delivered_messages_v5() {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "sub").await;
    let properties = SubscribeProperties {
        subscription_identifier: Some(268_435_455),
        ..SubscribeProperties::default()
    };
    subscriber
        .subscribe_with(&[("id/t", SubscriptionOptions::default())], properties)
        .await;
    let mut publisher = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "pub").await;

    publisher.publish("id/t", "x", QoS::AtMostOnce, false).await;

    let publish = subscriber.expect_publish().await;
    assert_eq!(publish.properties.subscription_identifiers, [268_435_455]);
}

#[tokio::test]
async fn no_local_subscription_does_not_receive_its_own_messages_v5() {
    let broker = start_broker();
    let mut client = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "self").await;
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        ..SubscriptionOptions::default()
    };
    client
        .subscribe_with(&[("nl/t", options)], SubscribeProperties::default())
        .await;
    let mut other = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "other").await;

    client.publish("nl/t", "own", QoS::AtLeastOnce, false).await;
    other
        .publish("nl/t", "foreign", QoS::AtLeastOnce, false)
        .await;

    let first = client.expect_publish().await;
    assert_eq!(
        &first.payload[..],
        b"foreign",
        "own message must not come back: {first:?}"
    );
}

#[tokio::test]
async fn invalid_topic_filter_closes_the_connection_v311() {
    let broker = start_broker();
    let mut client = RawClient::connect(&broker.addr(), ProtocolVersion::V311, "bad").await;
    let subscribe = Subscribe {
        packet_id: 1,
        properties: SubscribeProperties::default(),
        filters: vec![SubscribeFilter {
            filter: "a/#/b".into(),
            options: SubscriptionOptions::default(),
        }],
    };

    client.send(&Packet::Subscribe(subscribe)).await;

    assert_eq!(
        client.expect_closed().await,
        None,
        "closed without DISCONNECT"
    );
}

#[tokio::test]
async fn invalid_topic_filter_is_refused_with_suback_0x8f_v5() {
    if skip_on_mosquitto("Mosquitto 2.0 disconnects with 0x81 instead of SUBACK 0x8F") {
        return;
    }
    let broker = start_broker();
    let mut client = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "bad").await;
    let options = SubscriptionOptions::default();

    let suback = client
        .subscribe_with(
            &[("a/#/b", options), ("fine/+", options)],
            SubscribeProperties::default(),
        )
        .await;

    assert_eq!(
        suback.reason_codes,
        [ReasonCode::TopicFilterInvalid, ReasonCode::Success],
        "per-filter result"
    );
}
