//! Malformed and out-of-order input. Each test sends one kind of bad packet and asserts how the
//! broker ends that connection (5.0: DISCONNECT with the reason code, then close; 3.1.1: plain
//! close), and that a bystander connected to the same broker keeps being served.

use tern_broker::protocol::{
    Packet, ProtocolVersion, QoS, ReasonCode, Subscribe, SubscribeFilter, SubscribeProperties,
};
use tern_e2e::broker::{BrokerConfig, BrokerProcess, Limits};
use tern_e2e::clients::{
    connect_packet, encode_packet, publish_packet, start_broker, start_broker_with, Bystander,
    Event, RawClient, STEP_TIMEOUT,
};
use tern_e2e::per_version;

per_version!(
    remaining_length_with_five_length_bytes_is_malformed,
    subscribe_with_reserved_flags_is_malformed,
    publish_with_qos_3_is_malformed,
    reserved_packet_type_0_is_malformed,
    invalid_utf8_in_topic_name_is_malformed,
    wildcard_in_publish_topic_is_an_invalid_topic_name,
    second_connect_is_a_protocol_error,
    packet_larger_than_the_maximum_packet_size_is_refused,
);

/// A fresh broker (with `config`), a [`Bystander`] and a connected client that will misbehave.
async fn setup(
    config: &BrokerConfig,
    version: ProtocolVersion,
) -> (BrokerProcess, Bystander, RawClient) {
    let broker = start_broker_with(config);
    let bystander = Bystander::start(&broker.addr()).await;
    let offender = RawClient::connect(&broker.addr(), version, "offender").await;
    (broker, bystander, offender)
}

/// The bytes of a QoS 0 PUBLISH with a raw (possibly invalid) topic name.
fn publish_bytes(version: ProtocolVersion, topic: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic);
    if version == ProtocolVersion::V5 {
        body.push(0); // property length
    }
    body.extend_from_slice(payload);
    assert!(body.len() < 128, "single-byte remaining length");
    let mut packet = vec![0x30, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

async fn remaining_length_with_five_length_bytes_is_malformed(version: ProtocolVersion) {
    let (_broker, bystander, mut offender) = setup(&BrokerConfig::default(), version).await;

    offender
        .send_bytes(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        .await;

    offender
        .expect_disconnect_on_tern(
            ReasonCode::MalformedPacket,
            "Mosquitto 2.0 closes without DISCONNECT on a bad remaining length",
        )
        .await;
    bystander.assert_unaffected().await;
}

async fn subscribe_with_reserved_flags_is_malformed(version: ProtocolVersion) {
    let (_broker, bystander, mut offender) = setup(&BrokerConfig::default(), version).await;
    let mut subscribe = encode_packet(
        &Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: SubscribeProperties::default(),
            filters: vec![SubscribeFilter {
                filter: "a/b".into(),
                options: Default::default(),
            }],
        }),
        version,
    );
    assert_eq!(subscribe[0], 0x82);
    subscribe[0] = 0x80; // the flags of SUBSCRIBE must be 0b0010

    offender.send_bytes(&subscribe).await;

    offender
        .expect_disconnect(ReasonCode::MalformedPacket)
        .await;
    bystander.assert_unaffected().await;
}

async fn publish_with_qos_3_is_malformed(version: ProtocolVersion) {
    let (_broker, bystander, mut offender) = setup(&BrokerConfig::default(), version).await;
    let mut publish = publish_packet("a/b", "x", QoS::AtLeastOnce);
    publish.packet_id = Some(1);
    let mut bytes = encode_packet(&Packet::Publish(publish), version);
    bytes[0] |= 0b0110; // QoS bits 11

    offender.send_bytes(&bytes).await;

    offender
        .expect_disconnect(ReasonCode::MalformedPacket)
        .await;
    bystander.assert_unaffected().await;
}

async fn reserved_packet_type_0_is_malformed(version: ProtocolVersion) {
    let (_broker, bystander, mut offender) = setup(&BrokerConfig::default(), version).await;

    offender.send_bytes(&[0x00, 0x00]).await;

    offender
        .expect_disconnect_on_tern(
            ReasonCode::MalformedPacket,
            "Mosquitto 2.0 answers packet type 0 with 0x82 Protocol Error",
        )
        .await;
    bystander.assert_unaffected().await;
}

async fn invalid_utf8_in_topic_name_is_malformed(version: ProtocolVersion) {
    let (_broker, bystander, mut offender) = setup(&BrokerConfig::default(), version).await;

    offender
        .send_bytes(&publish_bytes(version, b"a/\xFF\xFE", b"x"))
        .await;

    offender
        .expect_disconnect(ReasonCode::MalformedPacket)
        .await;
    bystander.assert_unaffected().await;
}

async fn wildcard_in_publish_topic_is_an_invalid_topic_name(version: ProtocolVersion) {
    let (_broker, bystander, mut offender) = setup(&BrokerConfig::default(), version).await;

    offender
        .send_bytes(&publish_bytes(version, b"a/+/c", b"x"))
        .await;

    offender
        .expect_disconnect_on_tern(
            ReasonCode::TopicNameInvalid,
            "Mosquitto 2.0 uses 0x82 Protocol Error for a wildcard in a topic name",
        )
        .await;
    bystander.assert_unaffected().await;
}

async fn second_connect_is_a_protocol_error(version: ProtocolVersion) {
    let (_broker, bystander, mut offender) = setup(&BrokerConfig::default(), version).await;

    offender
        .send(&Packet::Connect(Box::new(connect_packet(version, "again"))))
        .await;

    offender
        .expect_disconnect_on_tern(
            ReasonCode::ProtocolError,
            "Mosquitto 2.0 closes without DISCONNECT on a second CONNECT",
        )
        .await;
    bystander.assert_unaffected().await;
}

async fn packet_larger_than_the_maximum_packet_size_is_refused(version: ProtocolVersion) {
    let config = BrokerConfig {
        limits: Limits {
            max_packet_size: Some(1000),
            ..Limits::default()
        },
        ..BrokerConfig::default()
    };
    let (_broker, bystander, mut offender) = setup(&config, version).await;
    let big = publish_packet("big", vec![b'x'; 2000], QoS::AtMostOnce);

    offender.send(&Packet::Publish(big)).await;

    offender.expect_disconnect(ReasonCode::PacketTooLarge).await;
    bystander.assert_unaffected().await;
}

#[tokio::test]
async fn publish_before_connect_closes_the_connection_without_answer() {
    let broker = start_broker();
    let bystander = Bystander::start(&broker.addr()).await;
    let mut offender = RawClient::open(&broker.addr(), ProtocolVersion::V311).await;

    offender
        .send_bytes(&publish_bytes(ProtocolVersion::V311, b"a/b", b"x"))
        .await;

    assert_eq!(
        offender.next_event(STEP_TIMEOUT).await,
        Event::Closed,
        "no answer, just close"
    );
    bystander.assert_unaffected().await;
}

#[tokio::test]
async fn unknown_protocol_version_is_refused_with_unsupported_protocol_version() {
    let broker = start_broker();
    let bystander = Bystander::start(&broker.addr()).await;
    let mut offender = RawClient::open(&broker.addr(), ProtocolVersion::V311).await;
    let mut connect = encode_packet(
        &Packet::Connect(Box::new(connect_packet(ProtocolVersion::V311, "future"))),
        ProtocolVersion::V311,
    );
    // Fixed header (2) + protocol name (2 + 4): the protocol level byte follows.
    assert_eq!(connect[8], 4, "protocol level");
    connect[8] = 6;

    offender.send_bytes(&connect).await;

    // Either the 3.1.1 form (return code 0x01) or the 5.0 form (reason code 0x84).
    let answer = offender.recv_bytes(4).await;
    let v311 = answer == [0x20, 0x02, 0x00, 0x01];
    let v5 = answer.starts_with(&[0x20, 0x03, 0x00, 0x84]);
    assert!(
        v311 || v5,
        "CONNACK refusing the protocol level: {answer:02x?}"
    );
    offender.expect_closed().await;
    bystander.assert_unaffected().await;
}
