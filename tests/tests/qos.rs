//! Quality of service: the acknowledgement flows in both directions at QoS 0/1/2, QoS
//! downgrade to the subscription's maximum, exactly-once for re-sent QoS 2, ordering, and the
//! same deliveries between third-party clients (rumqttc, Mosquitto's CLI tools, paho).

use tern_broker::protocol::{Packet, PubAck, QoS, ReasonCode};
use tern_e2e::clients::{
    mosquitto_pub, paho, publish_packet, start_broker, version_tag, MosquittoSub, ProtocolVersion,
    RawClient, RumqttClient, SubOptions,
};
use tern_e2e::per_version;

per_version!(
    qos0_message_is_delivered_at_qos0_without_packet_id,
    qos1_publish_is_acknowledged_and_delivered_at_qos1,
    qos2_publish_completes_the_four_step_handshake_in_both_directions,
    qos2_publish_resent_before_pubrel_is_delivered_once,
    delivery_qos_is_downgraded_to_the_subscription_maximum,
    qos1_messages_from_one_publisher_arrive_in_publish_order,
    rumqttc_clients_exchange_qos0_messages,
    rumqttc_clients_exchange_qos1_messages,
    rumqttc_clients_exchange_qos2_messages,
    mosquitto_clients_exchange_qos0_messages,
    mosquitto_clients_exchange_qos1_messages,
    mosquitto_clients_exchange_qos2_messages,
    paho_clients_exchange_qos0_messages,
    paho_clients_exchange_qos1_messages,
    paho_clients_exchange_qos2_messages,
);

/// A subscriber and a publisher, both raw, connected to a fresh broker; the subscriber holds
/// `filter` at `qos`.
async fn raw_pair(
    addr: &str,
    version: ProtocolVersion,
    filter: &str,
    qos: QoS,
) -> (RawClient, RawClient) {
    let mut subscriber = RawClient::connect(addr, version, "sub").await;
    let granted = subscriber.subscribe(filter, qos).await;
    assert_eq!(granted.as_u8(), qos as u8, "granted QoS");
    let publisher = RawClient::connect(addr, version, "pub").await;
    (subscriber, publisher)
}

async fn qos0_message_is_delivered_at_qos0_without_packet_id(version: ProtocolVersion) {
    let broker = start_broker();
    let (mut subscriber, mut publisher) =
        raw_pair(&broker.addr(), version, "q/0", QoS::ExactlyOnce).await;

    publisher
        .publish("q/0", "zero", QoS::AtMostOnce, false)
        .await;

    let publish = subscriber.expect_publish().await;
    assert_eq!((publish.qos, publish.packet_id), (QoS::AtMostOnce, None));
    assert_eq!(&publish.payload[..], b"zero");
}

async fn qos1_publish_is_acknowledged_and_delivered_at_qos1(version: ProtocolVersion) {
    let broker = start_broker();
    let (mut subscriber, mut publisher) =
        raw_pair(&broker.addr(), version, "q/1", QoS::ExactlyOnce).await;

    let reason = publisher
        .publish_with(publish_packet("q/1", "one", QoS::AtLeastOnce))
        .await;
    assert_eq!(reason, ReasonCode::Success, "PUBACK reason");

    let publish = subscriber.expect_publish().await;
    assert_eq!(publish.qos, QoS::AtLeastOnce);
    assert!(publish.packet_id.is_some_and(|id| id != 0), "packet id");
    assert_eq!(&publish.payload[..], b"one");
    subscriber.ack(&publish).await;
    subscriber.ping().await;
}

async fn qos2_publish_completes_the_four_step_handshake_in_both_directions(
    version: ProtocolVersion,
) {
    let broker = start_broker();
    let (mut subscriber, mut publisher) =
        raw_pair(&broker.addr(), version, "q/2", QoS::ExactlyOnce).await;

    // Inbound: PUBLISH → PUBREC, PUBREL → PUBCOMP (publish_with checks each step).
    let reason = publisher
        .publish_with(publish_packet("q/2", "two", QoS::ExactlyOnce))
        .await;
    assert_eq!(reason, ReasonCode::Success, "PUBREC reason");

    // Outbound: PUBLISH ← , PUBREC →, PUBREL ←, PUBCOMP →.
    let publish = subscriber.expect_publish().await;
    assert_eq!(publish.qos, QoS::ExactlyOnce);
    let packet_id = publish.packet_id.expect("QoS 2 has a packet id");
    subscriber
        .send(&Packet::PubRec(PubAck::success(packet_id)))
        .await;
    match subscriber.recv().await {
        Packet::PubRel(rel) => assert_eq!(rel.packet_id, packet_id, "PUBREL packet id"),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    subscriber
        .send(&Packet::PubComp(PubAck::success(packet_id)))
        .await;
    subscriber.ping().await;
}

async fn qos2_publish_resent_before_pubrel_is_delivered_once(version: ProtocolVersion) {
    let broker = start_broker();
    let (mut subscriber, mut publisher) =
        raw_pair(&broker.addr(), version, "q/2", QoS::ExactlyOnce).await;

    let mut publish = publish_packet("q/2", "once", QoS::ExactlyOnce);
    publish.packet_id = Some(7);
    publisher.send(&Packet::Publish(publish.clone())).await;
    assert!(matches!(publisher.recv().await, Packet::PubRec(ack) if ack.packet_id == 7));
    publish.dup = true;
    assert_eq!(publisher.publish_with(publish).await, ReasonCode::Success);
    publisher
        .publish("q/2", "sentinel", QoS::ExactlyOnce, false)
        .await;

    let first = subscriber.expect_publishes_acked(2).await;
    let payloads: Vec<&[u8]> = first.iter().map(|p| &p.payload[..]).collect();
    assert_eq!(
        payloads,
        [&b"once"[..], b"sentinel"],
        "duplicate must not be delivered"
    );
}

async fn delivery_qos_is_downgraded_to_the_subscription_maximum(version: ProtocolVersion) {
    let broker = start_broker();
    let (mut subscriber, mut publisher) =
        raw_pair(&broker.addr(), version, "q/down", QoS::AtLeastOnce).await;

    publisher
        .publish("q/down", "two", QoS::ExactlyOnce, false)
        .await;
    publisher
        .publish("q/down", "zero", QoS::AtMostOnce, false)
        .await;

    let got = subscriber.expect_publishes_acked(2).await;
    let delivered: Vec<(QoS, &[u8])> = got.iter().map(|p| (p.qos, &p.payload[..])).collect();
    assert_eq!(
        delivered,
        [
            (QoS::AtLeastOnce, &b"two"[..]),
            (QoS::AtMostOnce, &b"zero"[..])
        ]
    );
}

async fn qos1_messages_from_one_publisher_arrive_in_publish_order(version: ProtocolVersion) {
    const COUNT: u16 = 200;
    let broker = start_broker();
    let (mut subscriber, mut publisher) =
        raw_pair(&broker.addr(), version, "q/order", QoS::AtLeastOnce).await;

    // Pipelined: all PUBLISHes go out before any PUBACK is awaited.
    for i in 1..=COUNT {
        let mut publish = publish_packet("q/order", i.to_string(), QoS::AtLeastOnce);
        publish.packet_id = Some(i);
        publisher.send(&Packet::Publish(publish)).await;
    }
    let received = subscriber.expect_publishes_acked(usize::from(COUNT)).await;

    let payloads: Vec<String> = received
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect();
    let expected: Vec<String> = (1..=COUNT).map(|i| i.to_string()).collect();
    assert_eq!(payloads, expected);
}

async fn rumqttc_roundtrip(version: ProtocolVersion, qos: QoS) {
    let broker = start_broker();
    let mut subscriber = RumqttClient::connect(broker.port(), version, "rumqttc-sub").await;
    assert_eq!(
        subscriber.subscribe("rumqttc/+", qos).await,
        Some(qos as u8)
    );
    let mut publisher = RumqttClient::connect(broker.port(), version, "rumqttc-pub").await;

    for i in 0..3 {
        publisher
            .publish("rumqttc/t", &format!("m{i}"), qos, false)
            .await;
    }

    for i in 0..3 {
        let message = subscriber.recv().await;
        assert_eq!(message.topic, "rumqttc/t");
        assert_eq!(message.payload, format!("m{i}").as_bytes());
        assert_eq!(message.qos, qos as u8);
    }
    publisher.disconnect().await;
    subscriber.disconnect().await;
}

async fn rumqttc_clients_exchange_qos0_messages(version: ProtocolVersion) {
    rumqttc_roundtrip(version, QoS::AtMostOnce).await;
}

async fn rumqttc_clients_exchange_qos1_messages(version: ProtocolVersion) {
    rumqttc_roundtrip(version, QoS::AtLeastOnce).await;
}

async fn rumqttc_clients_exchange_qos2_messages(version: ProtocolVersion) {
    rumqttc_roundtrip(version, QoS::ExactlyOnce).await;
}

async fn mosquitto_clients_roundtrip(version: ProtocolVersion, qos: u8) {
    let broker = start_broker();
    let topic = format!("cli/{}", version_tag(version));
    let options = SubOptions::new(version, &topic)
        .qos(qos)
        .count(3)
        .format("%t %q %p");
    let subscriber = MosquittoSub::spawn(broker.port(), &options).await;

    let qos_arg = qos.to_string();
    for i in 0..3 {
        let payload = format!("m{i}");
        mosquitto_pub(
            broker.port(),
            version,
            &["-t", &topic, "-q", &qos_arg, "-m", &payload],
        )
        .await;
    }

    let expected: Vec<String> = (0..3).map(|i| format!("{topic} {qos} m{i}")).collect();
    assert_eq!(subscriber.messages().await, expected);
}

async fn mosquitto_clients_exchange_qos0_messages(version: ProtocolVersion) {
    mosquitto_clients_roundtrip(version, 0).await;
}

async fn mosquitto_clients_exchange_qos1_messages(version: ProtocolVersion) {
    mosquitto_clients_roundtrip(version, 1).await;
}

async fn mosquitto_clients_exchange_qos2_messages(version: ProtocolVersion) {
    mosquitto_clients_roundtrip(version, 2).await;
}

async fn paho_roundtrip(version: ProtocolVersion, qos: u8) {
    let broker = start_broker();
    let result = paho(
        "roundtrip.py",
        broker.port(),
        version,
        &["--qos", &qos.to_string(), "--count", "10"],
    )
    .await;

    assert_eq!(result["suback"], serde_json::json!([qos]), "{result}");
    let received = result["received"].as_array().expect("received list");
    let payloads: Vec<&str> = received
        .iter()
        .filter_map(|m| m["payload"].as_str())
        .collect();
    let expected: Vec<String> = (0..10).map(|i| format!("msg-{i}")).collect();
    assert_eq!(payloads, expected, "order and completeness");
    assert!(received.iter().all(|m| m["qos"] == qos), "{result}");
}

async fn paho_clients_exchange_qos0_messages(version: ProtocolVersion) {
    paho_roundtrip(version, 0).await;
}

async fn paho_clients_exchange_qos1_messages(version: ProtocolVersion) {
    paho_roundtrip(version, 1).await;
}

async fn paho_clients_exchange_qos2_messages(version: ProtocolVersion) {
    paho_roundtrip(version, 2).await;
}
