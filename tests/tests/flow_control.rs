//! Flow control and size limits (5.0 unless noted): Receive Maximum in both directions,
//! Maximum Packet Size towards the client, topic aliases in both directions, and the
//! connection limit.

use tern_broker::protocol::{Packet, ProtocolVersion, Publish, QoS, ReasonCode};
use tern_e2e::broker::{BrokerConfig, Limits};
use tern_e2e::clients::{
    connect_packet, mosquitto_note, on_mosquitto, publish_packet, skip_on_mosquitto, start_broker,
    start_broker_with, Bystander, Event, RawClient, QUIET_PERIOD, STEP_TIMEOUT,
};
use tern_e2e::per_version;

const V5: ProtocolVersion = ProtocolVersion::V5;

fn limits(limits: Limits) -> BrokerConfig {
    BrokerConfig {
        limits,
        ..BrokerConfig::default()
    }
}

#[tokio::test]
async fn broker_never_has_more_unacknowledged_messages_in_flight_than_client_receive_maximum_v5() {
    let broker = start_broker();
    let mut connect = connect_packet(V5, "slow-reader");
    connect.properties.receive_maximum = Some(2);
    let (mut subscriber, _) = RawClient::connect_with(&broker.addr(), connect).await;
    subscriber.subscribe("rm/t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), V5, "pub").await;
    for i in 0..6 {
        publisher
            .publish("rm/t", &i.to_string(), QoS::AtLeastOnce, false)
            .await;
    }

    let first = subscriber.expect_publish().await;
    let second = subscriber.expect_publish().await;
    subscriber.expect_no_publish(QUIET_PERIOD).await;
    if on_mosquitto() {
        mosquitto_note("Mosquitto 2.0.11 sends two messages per PUBACK, exceeding the window");
        return;
    }
    subscriber.ack(&first).await;
    let third = subscriber.expect_publish().await;
    subscriber.expect_no_publish(QUIET_PERIOD).await;
    subscriber.ack(&second).await;
    subscriber.ack(&third).await;
    let rest = subscriber.expect_publishes_acked(3).await;

    let order: Vec<String> = [first, second, third]
        .into_iter()
        .chain(rest)
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect();
    assert_eq!(order, ["0", "1", "2", "3", "4", "5"], "all, in order");
}

#[tokio::test]
async fn connack_advertises_the_configured_receive_maximum_v5() {
    let broker = start_broker_with(&limits(Limits {
        receive_maximum: Some(2),
        ..Limits::default()
    }));

    let (_client, connack) = RawClient::connect_with(&broker.addr(), connect_packet(V5, "c")).await;

    assert_eq!(connack.properties.receive_maximum, Some(2));
}

#[tokio::test]
async fn client_exceeding_the_broker_receive_maximum_is_disconnected_with_0x93_v5() {
    if skip_on_mosquitto("Mosquitto 2.0 answers PUBREC 0x97 instead of DISCONNECT 0x93") {
        return;
    }
    let broker = start_broker_with(&limits(Limits {
        receive_maximum: Some(2),
        ..Limits::default()
    }));
    let bystander = Bystander::start(&broker.addr()).await;
    let mut client = RawClient::connect(&broker.addr(), V5, "greedy").await;

    // QoS 2 PUBLISHes stay unacknowledged until PUBREL; the third exceeds the quota of 2.
    for packet_id in 1..=3 {
        let mut publish = publish_packet("rm/in", "x", QoS::ExactlyOnce);
        publish.packet_id = Some(packet_id);
        client.send(&Packet::Publish(publish)).await;
    }

    client
        .expect_disconnect(ReasonCode::ReceiveMaximumExceeded)
        .await;
    bystander.assert_unaffected().await;
}

#[tokio::test]
async fn messages_larger_than_the_client_maximum_packet_size_are_not_sent_v5() {
    let broker = start_broker();
    let mut connect = connect_packet(V5, "small-buffer");
    connect.properties.maximum_packet_size = Some(100);
    let (mut subscriber, _) = RawClient::connect_with(&broker.addr(), connect).await;
    subscriber.subscribe("mps/t", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), V5, "pub").await;

    publisher
        .publish("mps/t", &"x".repeat(200), QoS::AtLeastOnce, false)
        .await;
    publisher
        .publish("mps/t", "small", QoS::AtLeastOnce, false)
        .await;

    let first = subscriber.expect_publish().await;
    assert_eq!(
        &first.payload[..],
        b"small",
        "the oversize message is dropped"
    );
}

#[tokio::test]
async fn connack_advertises_the_configured_maximum_packet_size_v5() {
    let broker = start_broker_with(&limits(Limits {
        max_packet_size: Some(1000),
        ..Limits::default()
    }));

    let (_client, connack) = RawClient::connect_with(&broker.addr(), connect_packet(V5, "c")).await;

    assert_eq!(connack.properties.maximum_packet_size, Some(1000));
}

/// A QoS 0 PUBLISH carrying a Topic Alias.
fn aliased(topic: &str, alias: u16, payload: &'static str) -> Publish {
    let mut publish = publish_packet(topic, payload, QoS::AtMostOnce);
    publish.properties.topic_alias = Some(alias);
    publish
}

#[tokio::test]
async fn topic_alias_set_by_the_client_stands_for_its_topic_v5() {
    let broker = start_broker_with(&limits(Limits {
        topic_alias_maximum: Some(5),
        ..Limits::default()
    }));
    let mut subscriber = RawClient::connect(&broker.addr(), V5, "sub").await;
    subscriber.subscribe("ta/#", QoS::AtLeastOnce).await;
    let (mut publisher, connack) =
        RawClient::connect_with(&broker.addr(), connect_packet(V5, "pub")).await;
    assert_eq!(
        connack.properties.topic_alias_maximum,
        Some(5),
        "advertised"
    );

    assert_eq!(
        publisher
            .publish_with(aliased("ta/long/topic", 1, "set"))
            .await,
        ReasonCode::Success
    );
    assert_eq!(
        publisher.publish_with(aliased("", 1, "used")).await,
        ReasonCode::Success
    );

    let got = subscriber.expect_publishes_acked(2).await;
    let delivered: Vec<(&str, &[u8])> =
        got.iter().map(|p| (&p.topic[..], &p.payload[..])).collect();
    assert_eq!(
        delivered,
        [("ta/long/topic", &b"set"[..]), ("ta/long/topic", b"used")]
    );
}

#[tokio::test]
async fn topic_alias_above_the_maximum_is_disconnected_with_0x94_v5() {
    let broker = start_broker_with(&limits(Limits {
        topic_alias_maximum: Some(5),
        ..Limits::default()
    }));
    let bystander = Bystander::start(&broker.addr()).await;
    let mut client = RawClient::connect(&broker.addr(), V5, "aliaser").await;

    client.send(&Packet::Publish(aliased("ta/t", 6, "x"))).await;

    client
        .expect_disconnect(ReasonCode::TopicAliasInvalid)
        .await;
    bystander.assert_unaffected().await;
}

#[tokio::test]
async fn unknown_topic_alias_is_a_protocol_error_v5() {
    let broker = start_broker_with(&limits(Limits {
        topic_alias_maximum: Some(5),
        ..Limits::default()
    }));
    let bystander = Bystander::start(&broker.addr()).await;
    let mut client = RawClient::connect(&broker.addr(), V5, "aliaser").await;

    client.send(&Packet::Publish(aliased("", 3, "x"))).await;

    client.expect_disconnect(ReasonCode::ProtocolError).await;
    bystander.assert_unaffected().await;
}

#[tokio::test]
async fn broker_assigns_topic_aliases_when_the_client_accepts_them_v5() {
    if skip_on_mosquitto("Mosquitto 2.0 never assigns outbound topic aliases") {
        return;
    }
    let broker = start_broker();
    let mut connect = connect_packet(V5, "alias-taker");
    connect.properties.topic_alias_maximum = Some(5);
    let (mut subscriber, _) = RawClient::connect_with(&broker.addr(), connect).await;
    subscriber.subscribe("ta/out", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), V5, "pub").await;

    publisher
        .publish("ta/out", "first", QoS::AtLeastOnce, false)
        .await;
    publisher
        .publish("ta/out", "second", QoS::AtLeastOnce, false)
        .await;

    let got = subscriber.expect_publishes_acked(2).await;
    let alias = got[0]
        .properties
        .topic_alias
        .expect("first message defines an alias");
    assert!(
        (1..=5).contains(&alias),
        "alias within the client's maximum"
    );
    assert_eq!(
        &got[0].topic[..],
        "ta/out",
        "defining message carries the topic"
    );
    assert_eq!(
        (&got[1].topic[..], got[1].properties.topic_alias),
        ("", Some(alias)),
        "second message uses the alias alone"
    );
}

#[tokio::test]
async fn broker_sends_no_topic_alias_to_clients_that_did_not_ask_v5() {
    let broker = start_broker();
    let mut subscriber = RawClient::connect(&broker.addr(), V5, "plain").await;
    subscriber.subscribe("ta/out", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), V5, "pub").await;

    publisher
        .publish("ta/out", "a", QoS::AtLeastOnce, false)
        .await;
    publisher
        .publish("ta/out", "b", QoS::AtLeastOnce, false)
        .await;

    let got = subscriber.expect_publishes_acked(2).await;
    assert!(
        got.iter()
            .all(|p| p.properties.topic_alias.is_none() && &p.topic[..] == "ta/out"),
        "{got:?}"
    );
}

per_version!(connection_beyond_max_connections_is_refused);

async fn connection_beyond_max_connections_is_refused(version: ProtocolVersion) {
    if skip_on_mosquitto(
        "Mosquitto 2.0.11 frees a slot for every connection closed before CONNECT (such as the \
         harness's readiness probe), so its limit is off by one",
    ) {
        return;
    }
    let broker = start_broker_with(&limits(Limits {
        max_connections: Some(2),
        ..Limits::default()
    }));
    let mut first = RawClient::connect(&broker.addr(), version, "one").await;
    let _second = RawClient::connect(&broker.addr(), version, "two").await;

    let mut third = RawClient::open(&broker.addr(), version).await;
    third
        .send(&Packet::Connect(Box::new(connect_packet(version, "three"))))
        .await;

    match third.next_event(STEP_TIMEOUT).await {
        Event::Packet(Packet::ConnAck(connack)) => {
            let expected = match version {
                ProtocolVersion::V5 => ReasonCode::QuotaExceeded,
                ProtocolVersion::V311 => ReasonCode::ServerUnavailable,
            };
            assert_eq!(connack.reason_code, expected, "refusing CONNACK");
            assert_eq!(third.expect_closed().await, None);
        }
        other => panic!("expected a refusing CONNACK, got {other:?}"),
    }
    first.ping().await;
}
