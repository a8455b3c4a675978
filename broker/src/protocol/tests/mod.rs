//! Codec tests: round trips, byte-exact vectors, malformed input, partial input and property
//! tests. Shared fixtures live here.

mod malformed;
mod partial;
mod proptests;
mod roundtrip;
mod vectors;

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

use super::*;

/// A generous packet size limit for tests that are not about the limit.
pub(super) const NO_LIMIT: u32 = u32::MAX;

pub(super) fn s(value: &str) -> ByteString {
    ByteString::from(value)
}

pub(super) fn b(value: &'static [u8]) -> Bytes {
    Bytes::from_static(value)
}

/// The version argument `decode` needs for `packet`: CONNECT opens the connection.
pub(super) fn decode_state(packet: &Packet, version: ProtocolVersion) -> Option<ProtocolVersion> {
    match packet {
        Packet::Connect(_) => None,
        _ => Some(version),
    }
}

/// Encodes `packet`, checking that the returned size is what was appended.
pub(super) fn encode_to_vec(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut buf = BytesMut::from(&b"prefix"[..]);
    let written = encode(packet, version, &mut buf).expect("packet encodes");
    assert_eq!(written, buf.len() - 6, "returned size of {}", packet.kind());
    buf[6..].to_vec()
}

/// Decodes exactly one whole packet from `bytes`.
pub(super) fn decode_one(
    bytes: &[u8],
    state: Option<ProtocolVersion>,
) -> Result<Packet, DecodeError> {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, state, NO_LIMIT)?.expect("a whole packet");
    assert!(buf.is_empty(), "decode left {} bytes", buf.len());
    Ok(packet)
}

/// Encodes, decodes and re-encodes `packet`; returns its bytes.
pub(super) fn assert_round_trip(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let bytes = encode_to_vec(packet, version);
    let decoded = decode_one(&bytes, decode_state(packet, version))
        .unwrap_or_else(|error| panic!("{} does not decode: {error}", packet.kind()));
    assert_eq!(&decoded, packet, "{version:?}");
    assert_eq!(encode_to_vec(&decoded, version), bytes, "re-encoding");
    bytes
}

/// Builds a packet from its first byte and body, computing the remaining length.
pub(super) fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// Two-byte length prefix followed by `value`.
pub(super) fn lp(value: &[u8]) -> Vec<u8> {
    let mut out = (value.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(value);
    out
}

pub(super) fn user_properties() -> Vec<UserProperty> {
    vec![(s("k"), s("v1")), (s("k"), s("v2")), (s("ü"), s(""))]
}

pub(super) fn connect_properties_full() -> ConnectProperties {
    ConnectProperties {
        session_expiry_interval: Some(0xFFFF_FFFF),
        receive_maximum: Some(20),
        maximum_packet_size: Some(1_048_576),
        topic_alias_maximum: Some(10),
        request_response_information: Some(1),
        request_problem_information: Some(0),
        user_properties: user_properties(),
        authentication_method: Some(s("SCRAM-SHA-1")),
        authentication_data: Some(b(b"\x00\x01client-first")),
    }
}

pub(super) fn will_properties_full() -> WillProperties {
    WillProperties {
        will_delay_interval: Some(30),
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(3600),
        content_type: Some(s("application/json")),
        response_topic: Some(s("replies/here")),
        correlation_data: Some(b(b"\xDE\xAD")),
        user_properties: user_properties(),
    }
}

pub(super) fn connack_properties_full() -> ConnAckProperties {
    ConnAckProperties {
        session_expiry_interval: Some(120),
        receive_maximum: Some(100),
        maximum_qos: Some(1),
        retain_available: Some(0),
        maximum_packet_size: Some(65_536),
        assigned_client_identifier: Some(s("auto-1234")),
        topic_alias_maximum: Some(16),
        reason_string: Some(s("welcome")),
        user_properties: user_properties(),
        wildcard_subscription_available: Some(1),
        subscription_identifiers_available: Some(1),
        shared_subscription_available: Some(0),
        server_keep_alive: Some(60),
        response_information: Some(s("responses/")),
        server_reference: Some(s("other.example:1883")),
        authentication_method: Some(s("SCRAM-SHA-1")),
        authentication_data: Some(b(b"server-final")),
    }
}

pub(super) fn publish_properties_full() -> PublishProperties {
    PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(60),
        topic_alias: Some(3),
        response_topic: Some(s("reply/to")),
        correlation_data: Some(b(b"corr")),
        user_properties: user_properties(),
        subscription_identifiers: vec![1, 300, 268_435_455],
        content_type: Some(s("text/plain")),
    }
}

pub(super) fn ack_properties_full() -> AckProperties {
    AckProperties {
        reason_string: Some(s("because")),
        user_properties: user_properties(),
    }
}

pub(super) fn disconnect_properties_full() -> DisconnectProperties {
    DisconnectProperties {
        session_expiry_interval: Some(0),
        reason_string: Some(s("bye")),
        user_properties: user_properties(),
        server_reference: Some(s("elsewhere")),
    }
}

pub(super) fn auth_properties_full() -> AuthProperties {
    AuthProperties {
        authentication_method: Some(s("SCRAM-SHA-1")),
        authentication_data: Some(b(b"challenge")),
        reason_string: Some(s("continue")),
        user_properties: user_properties(),
    }
}

pub(super) fn connect(version: ProtocolVersion) -> Connect {
    Connect {
        protocol_version: version,
        clean_start: true,
        keep_alive: 60,
        client_id: s("client-1"),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }
}

pub(super) fn publish(qos: QoS, topic: &str, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: s(topic),
        packet_id: (qos != QoS::AtMostOnce).then_some(7),
        properties: PublishProperties::default(),
        payload: b(payload),
    }
}

pub(super) fn subscribe_filter(filter: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter {
        filter: s(filter),
        options: SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        },
    }
}

/// One packet of every type that is valid in `version`, with every field 3.1.1 can carry.
pub(super) fn sample_packets(version: ProtocolVersion) -> Vec<Packet> {
    let v5 = version == ProtocolVersion::V5;
    let mut connect_full = connect(version);
    connect_full.will = Some(LastWill {
        topic: s("will/topic"),
        payload: b(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: if v5 {
            will_properties_full()
        } else {
            WillProperties::default()
        },
    });
    connect_full.username = Some(s("user"));
    connect_full.password = Some(b(b"secret"));
    if v5 {
        connect_full.properties = connect_properties_full();
    }
    let ack_props = if v5 {
        ack_properties_full()
    } else {
        AckProperties::default()
    };
    let mut publish_full = publish(QoS::ExactlyOnce, "a/b", b"payload");
    publish_full.dup = true;
    publish_full.retain = true;
    if v5 {
        publish_full.properties = publish_properties_full();
    }
    let mut packets = vec![
        Packet::Connect(Box::new(connect(version))),
        Packet::Connect(Box::new(connect_full)),
        Packet::ConnAck(ConnAck {
            session_present: true,
            reason_code: ReasonCode::Success,
            properties: if v5 {
                connack_properties_full()
            } else {
                ConnAckProperties::default()
            },
        }),
        Packet::Publish(publish(QoS::AtMostOnce, "t", b"")),
        Packet::Publish(publish_full),
        Packet::PubAck(PubAck::success(1)),
        Packet::PubRec(PubAck::success(2)),
        Packet::PubRel(PubAck::success(3)),
        Packet::PubComp(PubAck::success(0xFFFF)),
        Packet::Subscribe(Subscribe {
            packet_id: 10,
            properties: SubscribeProperties::default(),
            filters: vec![
                subscribe_filter("a/+", QoS::AtMostOnce),
                subscribe_filter("b/#", QoS::ExactlyOnce),
            ],
        }),
        Packet::SubAck(SubAck {
            packet_id: 10,
            properties: ack_props.clone(),
            reason_codes: vec![ReasonCode::GRANTED_QOS0, ReasonCode::GrantedQoS2],
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 11,
            user_properties: if v5 { user_properties() } else { Vec::new() },
            filters: vec![s("a/+"), s("b/#")],
        }),
        Packet::UnsubAck(UnsubAck {
            packet_id: 11,
            properties: ack_props,
            reason_codes: if v5 {
                vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
            } else {
                Vec::new()
            },
        }),
        Packet::PingReq,
        Packet::PingResp,
        Packet::Disconnect(Disconnect::default()),
    ];
    if v5 {
        packets.push(Packet::Auth(Auth {
            reason_code: ReasonCode::ContinueAuthentication,
            properties: auth_properties_full(),
        }));
    }
    packets
}
