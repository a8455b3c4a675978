//! Every invalid input the decoder must refuse, with the reason code the broker reports.

use super::*;
use ProtocolVersion::{V311, V5};

const MALFORMED: ReasonCode = ReasonCode::MalformedPacket;
const PROTOCOL: ReasonCode = ReasonCode::ProtocolError;

fn decode_err(bytes: &[u8], state: Option<ProtocolVersion>) -> DecodeError {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, state, NO_LIMIT) {
        Err(error) => error,
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

fn assert_reason(bytes: &[u8], state: Option<ProtocolVersion>, reason: ReasonCode) -> DecodeError {
    let error = decode_err(bytes, state);
    assert_eq!(error.reason_code(), reason, "{error}");
    error
}

/// A CONNECT body: protocol name, level, flags, keep alive, then `rest` (properties/payload).
fn connect_body(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = lp(name);
    body.extend([level, flags, 0, 60]);
    body.extend_from_slice(rest);
    body
}

fn v311_connect(flags: u8, payload: &[u8]) -> Vec<u8> {
    frame(0x10, &connect_body(b"MQTT", 4, flags, payload))
}

/// A 5.0 CONNECT with the given CONNECT property bytes and client id "c".
fn v5_connect_with_properties(properties: &[u8]) -> Vec<u8> {
    let mut rest = vec![properties.len() as u8];
    rest.extend_from_slice(properties);
    rest.extend(lp(b"c"));
    frame(0x10, &connect_body(b"MQTT", 5, 0x02, &rest))
}

/// A 5.0 QoS 0 PUBLISH to `topic` with the given property bytes.
fn v5_publish_with_properties(topic: &[u8], properties: &[u8]) -> Vec<u8> {
    let mut body = lp(topic);
    body.push(properties.len() as u8);
    body.extend_from_slice(properties);
    body.extend_from_slice(b"payload");
    frame(0x30, &body)
}

// --- Framing --------------------------------------------------------------------------------

#[test]
fn remaining_length_with_a_fifth_byte_is_malformed() {
    let error = assert_reason(&[0xC0, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], Some(V311), MALFORMED);
    assert_eq!(error, DecodeError::VarIntTooLong("remaining length"));
}

#[test]
fn oversized_packet_is_rejected_from_its_fixed_header_alone() {
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0x03][..]);
    let error = decode(&mut buf, Some(V5), 1024).unwrap_err();
    assert_eq!(
        error,
        DecodeError::PacketTooLarge {
            size: 4 + 65_535,
            max: 1024
        }
    );
    assert_eq!(error.reason_code(), ReasonCode::PacketTooLarge);
}

#[test]
fn packet_exactly_at_the_size_limit_is_accepted() {
    let bytes = frame(0x30, &[0, 1, b't', b'x', b'y']);
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(decode(&mut buf, Some(V311), bytes.len() as u32)
        .unwrap()
        .is_some());
    let mut buf = BytesMut::from(&bytes[..]);
    assert!(decode(&mut buf, Some(V311), bytes.len() as u32 - 1).is_err());
}

#[test]
fn packet_type_zero_is_malformed() {
    for state in [None, Some(V311), Some(V5)] {
        assert_eq!(
            assert_reason(&[0x00, 0x00], state, MALFORMED),
            DecodeError::ReservedPacketType(0)
        );
    }
}

#[test]
fn auth_is_malformed_in_v311() {
    assert_eq!(
        assert_reason(&[0xF0, 0x00], Some(V311), MALFORMED),
        DecodeError::AuthInV311
    );
}

#[test]
fn fixed_header_flags_must_match_the_packet_type() {
    for packet_type in (1u8..=15).filter(|&t| t != 3) {
        let required = if matches!(packet_type, 6 | 8 | 10) {
            2
        } else {
            0
        };
        for flags in (0u8..16).filter(|&f| f != required) {
            let state = if packet_type == 1 { None } else { Some(V5) };
            let error = assert_reason(&[packet_type << 4 | flags, 0], state, MALFORMED);
            assert!(
                matches!(error, DecodeError::InvalidHeaderFlags { actual, .. } if actual == flags),
                "type {packet_type} flags {flags}: {error}"
            );
        }
    }
}

#[test]
fn publish_with_qos_3_is_malformed() {
    let bytes = frame(0x36, &[0, 1, b't', 0, 1]);
    assert_eq!(
        assert_reason(&bytes, Some(V311), MALFORMED),
        DecodeError::InvalidPublishQoS
    );
}

#[test]
fn publish_with_dup_and_qos_0_is_malformed() {
    let bytes = frame(0x38, &[0, 1, b't']);
    assert_eq!(
        assert_reason(&bytes, Some(V5), MALFORMED),
        DecodeError::DupWithQoS0
    );
}

#[test]
fn first_packet_other_than_connect_is_a_protocol_error() {
    for first in [0x20, 0x30, 0x40, 0x62, 0x82, 0xC0, 0xE0, 0xF0] {
        let error = assert_reason(&[first, 0], None, PROTOCOL);
        assert!(
            error
                .to_string()
                .starts_with("first packet must be CONNECT"),
            "{error}"
        );
    }
}

#[test]
fn second_connect_is_a_protocol_error() {
    let bytes = v311_connect(0x02, &lp(b"c"));
    for state in [Some(V311), Some(V5)] {
        assert_eq!(
            assert_reason(&bytes, state, PROTOCOL),
            DecodeError::SecondConnect
        );
    }
}

#[test]
fn trailing_bytes_after_fixed_size_packets_are_malformed() {
    for version in [V311, V5] {
        for first in [0xC0, 0xD0] {
            assert_reason(&[first, 1, 0], Some(version), MALFORMED);
        }
    }
    assert_reason(&[0xE0, 1, 0], Some(V311), MALFORMED);
    assert_reason(&[0x40, 3, 0, 1, 0], Some(V311), MALFORMED);
    assert_reason(&[0xB0, 3, 0, 1, 0], Some(V311), MALFORMED);
    assert_reason(&[0x20, 3, 0, 0, 0], Some(V311), MALFORMED);
    // 5.0 PUBACK with an empty property block followed by an extra byte.
    assert_reason(&[0x40, 5, 0, 1, 0, 0, 9], Some(V5), MALFORMED);
}

#[test]
fn truncated_fields_are_malformed() {
    // PUBACK with a one-byte packet identifier.
    let error = assert_reason(&[0x40, 1, 0], Some(V311), MALFORMED);
    assert_eq!(error, DecodeError::UnexpectedEnd("packet identifier"));
    // PUBLISH whose topic length runs past the packet.
    let error = assert_reason(&frame(0x30, &[0, 9, b'a']), Some(V311), MALFORMED);
    assert_eq!(error, DecodeError::UnexpectedEnd("topic name"));
}

// --- CONNECT --------------------------------------------------------------------------------

#[test]
fn connect_with_unsupported_levels_reports_the_level() {
    for (name, level) in [
        (&b"MQIsdp"[..], 3u8),
        (b"MQTT", 3),
        (b"MQTT", 6),
        (b"MQTT", 0),
    ] {
        let bytes = frame(0x10, &connect_body(name, level, 0x02, &lp(b"c")));
        let error = assert_reason(&bytes, None, ReasonCode::UnsupportedProtocolVersion);
        assert_eq!(error, DecodeError::UnsupportedProtocolVersion(level));
    }
}

#[test]
fn connect_with_unknown_protocol_name_is_a_protocol_error() {
    let bytes = frame(0x10, &connect_body(b"HTTP", 4, 0x02, &lp(b"c")));
    let error = assert_reason(&bytes, None, PROTOCOL);
    assert_eq!(error, DecodeError::InvalidProtocolName("HTTP".into()));
}

#[test]
fn connect_reserved_flag_is_malformed() {
    let error = assert_reason(&v311_connect(0x03, &lp(b"c")), None, MALFORMED);
    assert_eq!(error, DecodeError::ConnectReservedFlag);
}

#[test]
fn connect_will_qos_3_is_malformed() {
    let mut payload = lp(b"c");
    payload.extend(lp(b"w"));
    payload.extend(lp(b"m"));
    let error = assert_reason(&v311_connect(0b0001_1110, &payload), None, MALFORMED);
    assert_eq!(error, DecodeError::InvalidWillQoS);
}

#[test]
fn connect_will_qos_or_retain_without_will_flag_is_malformed() {
    for flags in [0b0000_1010, 0b0001_0010, 0b0010_0010] {
        let error = assert_reason(&v311_connect(flags, &lp(b"c")), None, MALFORMED);
        assert_eq!(error, DecodeError::WillFlagsWithoutWill);
    }
}

#[test]
fn connect_password_without_username_is_malformed_in_v311_only() {
    let mut payload = lp(b"c");
    payload.extend(lp(b"pw"));
    let error = assert_reason(&v311_connect(0b0100_0010, &payload), None, MALFORMED);
    assert_eq!(error, DecodeError::PasswordWithoutUsername);

    let mut rest = vec![0];
    rest.extend(&payload);
    let v5 = frame(0x10, &connect_body(b"MQTT", 5, 0b0100_0010, &rest));
    let Packet::Connect(connect) = decode_one(&v5, None).unwrap() else {
        panic!("expected CONNECT");
    };
    assert_eq!(connect.password, Some(b(b"pw")));
    assert_eq!(connect.username, None);
}

#[test]
fn connect_client_id_with_invalid_utf8_or_null_is_malformed() {
    let error = assert_reason(&v311_connect(0x02, &lp(b"\xFF")), None, MALFORMED);
    assert_eq!(error, DecodeError::InvalidUtf8("client identifier"));
    let error = assert_reason(&v311_connect(0x02, &lp(b"a\0")), None, MALFORMED);
    assert_eq!(error, DecodeError::NullCharacter("client identifier"));
}

#[test]
fn connect_with_missing_or_extra_payload_is_malformed() {
    // Username flag set but no username.
    let error = assert_reason(&v311_connect(0x82, &lp(b"c")), None, MALFORMED);
    assert_eq!(error, DecodeError::UnexpectedEnd("user name"));
    let mut payload = lp(b"c");
    payload.push(0);
    let error = assert_reason(&v311_connect(0x02, &payload), None, MALFORMED);
    assert_eq!(
        error,
        DecodeError::TrailingBytes {
            packet: "CONNECT",
            count: 1
        }
    );
}

#[test]
fn connect_will_topic_with_wildcard_is_topic_name_invalid() {
    let mut payload = lp(b"c");
    payload.extend(lp(b"w/#"));
    payload.extend(lp(b"m"));
    let error = assert_reason(
        &v311_connect(0x06, &payload),
        None,
        ReasonCode::TopicNameInvalid,
    );
    assert_eq!(
        error.to_string(),
        "CONNECT will topic name contains wildcard '#'"
    );
}

#[test]
fn connect_will_properties_come_before_the_will_topic() {
    // Will Delay Interval 5, then topic "w", payload "m".
    let mut rest = vec![0];
    rest.extend(lp(b"c"));
    rest.extend([5, 0x18, 0, 0, 0, 5]);
    rest.extend(lp(b"w"));
    rest.extend(lp(b"m"));
    let bytes = frame(0x10, &connect_body(b"MQTT", 5, 0x06, &rest));
    let Packet::Connect(connect) = decode_one(&bytes, None).unwrap() else {
        panic!("expected CONNECT");
    };
    let will = connect.will.expect("will");
    assert_eq!(will.properties.will_delay_interval, Some(5));
    assert_eq!(&*will.topic, "w");
}

// --- PUBLISH --------------------------------------------------------------------------------

#[test]
fn publish_topic_with_wildcards_is_topic_name_invalid() {
    for version in [V311, V5] {
        let mut body = lp(b"a/+");
        if version == V5 {
            body.push(0);
        }
        let error = assert_reason(
            &frame(0x30, &body),
            Some(version),
            ReasonCode::TopicNameInvalid,
        );
        assert_eq!(
            error.to_string(),
            "PUBLISH topic name contains wildcard '+'"
        );
        let mut body = lp(b"#");
        if version == V5 {
            body.push(0);
        }
        let error = assert_reason(
            &frame(0x30, &body),
            Some(version),
            ReasonCode::TopicNameInvalid,
        );
        assert_eq!(
            error.to_string(),
            "PUBLISH topic name contains wildcard '#'"
        );
    }
}

#[test]
fn publish_empty_topic_is_invalid_in_v311() {
    let error = assert_reason(
        &frame(0x30, &lp(b"")),
        Some(V311),
        ReasonCode::TopicNameInvalid,
    );
    assert_eq!(
        error,
        DecodeError::InvalidTopicName(topic::TopicError::EmptyName)
    );
}

#[test]
fn publish_empty_topic_without_alias_is_a_protocol_error_in_v5() {
    let error = assert_reason(&v5_publish_with_properties(b"", &[]), Some(V5), PROTOCOL);
    assert_eq!(error, DecodeError::EmptyTopicWithoutAlias);
    let with_alias = v5_publish_with_properties(b"", &[0x23, 0, 4]);
    let Packet::Publish(publish) = decode_one(&with_alias, Some(V5)).unwrap() else {
        panic!("expected PUBLISH");
    };
    assert_eq!(publish.properties.topic_alias, Some(4));
    assert!(publish.topic.is_empty());
}

#[test]
fn publish_topic_alias_zero_is_topic_alias_invalid() {
    let bytes = v5_publish_with_properties(b"t", &[0x23, 0, 0]);
    let error = assert_reason(&bytes, Some(V5), ReasonCode::TopicAliasInvalid);
    assert_eq!(error, DecodeError::TopicAliasZero);
}

#[test]
fn publish_packet_id_zero_is_a_protocol_error() {
    let mut body = lp(b"t");
    body.extend([0, 0]);
    let error = assert_reason(&frame(0x32, &body), Some(V311), PROTOCOL);
    assert_eq!(error, DecodeError::ZeroPacketId("PUBLISH"));
}

#[test]
fn publish_topic_with_invalid_utf8_is_malformed() {
    assert_reason(&frame(0x30, &lp(b"\xC0\xAF")), Some(V311), MALFORMED);
    assert_reason(&frame(0x30, &lp(b"a\0b")), Some(V311), MALFORMED);
}

#[test]
fn publish_response_topic_with_wildcard_is_a_protocol_error() {
    let mut properties = vec![0x08];
    properties.extend(lp(b"r/+"));
    assert_reason(
        &v5_publish_with_properties(b"t", &properties),
        Some(V5),
        PROTOCOL,
    );
}

#[test]
fn publish_allows_repeated_subscription_identifiers() {
    let bytes = v5_publish_with_properties(b"t", &[0x0B, 1, 0x0B, 0x80, 0x01]);
    let Packet::Publish(publish) = decode_one(&bytes, Some(V5)).unwrap() else {
        panic!("expected PUBLISH");
    };
    assert_eq!(publish.properties.subscription_identifiers, vec![1, 128]);
}

// --- SUBSCRIBE / UNSUBSCRIBE ----------------------------------------------------------------

fn v5_subscribe(properties: &[u8], options: u8) -> Vec<u8> {
    let mut body = vec![0, 1, properties.len() as u8];
    body.extend_from_slice(properties);
    body.extend(lp(b"a/b"));
    body.push(options);
    frame(0x82, &body)
}

#[test]
fn subscribe_without_filters_is_a_protocol_error() {
    let error = assert_reason(&frame(0x82, &[0, 1]), Some(V311), PROTOCOL);
    assert_eq!(error, DecodeError::NoTopicFilters("SUBSCRIBE"));
    assert_reason(&frame(0x82, &[0, 1, 0]), Some(V5), PROTOCOL);
}

#[test]
fn subscribe_packet_id_zero_is_a_protocol_error() {
    let mut body = vec![0, 0];
    body.extend(lp(b"a"));
    body.push(0);
    let error = assert_reason(&frame(0x82, &body), Some(V311), PROTOCOL);
    assert_eq!(error, DecodeError::ZeroPacketId("SUBSCRIBE"));
}

#[test]
fn subscribe_v311_options_with_reserved_bits_or_qos_3_are_malformed() {
    for (options, expected) in [
        (0x04, DecodeError::SubscribeReservedBits(0x04)),
        (0x81, DecodeError::SubscribeReservedBits(0x81)),
        (0x03, DecodeError::InvalidSubscribeQoS),
    ] {
        let mut body = vec![0, 1];
        body.extend(lp(b"a"));
        body.push(options);
        assert_eq!(
            assert_reason(&frame(0x82, &body), Some(V311), MALFORMED),
            expected
        );
    }
}

#[test]
fn subscribe_v5_options_are_checked() {
    let error = assert_reason(&v5_subscribe(&[], 0x40), Some(V5), MALFORMED);
    assert_eq!(error, DecodeError::SubscribeReservedBits(0x40));
    let error = assert_reason(&v5_subscribe(&[], 0x80), Some(V5), MALFORMED);
    assert_eq!(error, DecodeError::SubscribeReservedBits(0x80));
    let error = assert_reason(&v5_subscribe(&[], 0x03), Some(V5), MALFORMED);
    assert_eq!(error, DecodeError::InvalidSubscribeQoS);
    let error = assert_reason(&v5_subscribe(&[], 0x30), Some(V5), PROTOCOL);
    assert_eq!(error, DecodeError::InvalidRetainHandling);
}

#[test]
fn subscribe_subscription_identifier_zero_or_repeated_is_a_protocol_error() {
    assert_reason(&v5_subscribe(&[0x0B, 0], 0), Some(V5), PROTOCOL);
    let error = assert_reason(&v5_subscribe(&[0x0B, 1, 0x0B, 2], 0), Some(V5), PROTOCOL);
    assert_eq!(
        error,
        DecodeError::DuplicateProperty("Subscription Identifier")
    );
    // A five-byte variable byte integer is malformed.
    assert_reason(
        &v5_subscribe(&[0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], 0),
        Some(V5),
        MALFORMED,
    );
}

#[test]
fn subscribe_filter_syntax_is_left_to_the_broker() {
    let mut body = vec![0, 1];
    for filter in [&b"a/#/b"[..], b"sport+", b"", b"$share/g"] {
        body.extend(lp(filter));
        body.push(1);
    }
    let Packet::Subscribe(subscribe) = decode_one(&frame(0x82, &body), Some(V311)).unwrap() else {
        panic!("expected SUBSCRIBE");
    };
    assert_eq!(subscribe.filters.len(), 4);
    assert_eq!(&*subscribe.filters[0].filter, "a/#/b");
}

#[test]
fn subscribe_no_local_on_shared_subscription_is_a_protocol_error() {
    let mut body = vec![0, 1, 0];
    body.extend(lp(b"$share/g/a"));
    body.push(0x04);
    let error = assert_reason(&frame(0x82, &body), Some(V5), PROTOCOL);
    assert_eq!(
        error,
        DecodeError::NoLocalOnSharedSubscription("$share/g/a".into())
    );
}

#[test]
fn unsubscribe_without_filters_or_with_packet_id_zero_is_a_protocol_error() {
    let error = assert_reason(&frame(0xA2, &[0, 1]), Some(V311), PROTOCOL);
    assert_eq!(error, DecodeError::NoTopicFilters("UNSUBSCRIBE"));
    assert_reason(&frame(0xA2, &[0, 1, 0]), Some(V5), PROTOCOL);
    let mut body = vec![0, 0];
    body.extend(lp(b"a"));
    assert_reason(&frame(0xA2, &body), Some(V311), PROTOCOL);
}

// --- Properties -----------------------------------------------------------------------------

#[test]
fn property_not_allowed_in_the_packet_is_malformed() {
    // Topic Alias in CONNECT.
    let error = assert_reason(&v5_connect_with_properties(&[0x23, 0, 1]), None, MALFORMED);
    assert_eq!(
        error,
        DecodeError::PropertyNotAllowed {
            property: "Topic Alias",
            packet: "CONNECT"
        }
    );
    // Session Expiry Interval in PUBLISH.
    let bytes = v5_publish_with_properties(b"t", &[0x11, 0, 0, 0, 1]);
    assert_reason(&bytes, Some(V5), MALFORMED);
    // Reason String in a SUBSCRIBE.
    let mut properties = vec![0x1F];
    properties.extend(lp(b"x"));
    assert_reason(&v5_subscribe(&properties, 0), Some(V5), MALFORMED);
    // Will Delay Interval among CONNECT (not will) properties.
    assert_reason(
        &v5_connect_with_properties(&[0x18, 0, 0, 0, 1]),
        None,
        MALFORMED,
    );
}

#[test]
fn duplicate_property_is_a_protocol_error_except_user_property() {
    let error = assert_reason(
        &v5_connect_with_properties(&[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]),
        None,
        PROTOCOL,
    );
    assert_eq!(
        error,
        DecodeError::DuplicateProperty("Session Expiry Interval")
    );
    let mut user = vec![0x26];
    user.extend(lp(b"k"));
    user.extend(lp(b"v"));
    let twice = [user.clone(), user].concat();
    let Packet::Connect(connect) = decode_one(&v5_connect_with_properties(&twice), None).unwrap()
    else {
        panic!("expected CONNECT");
    };
    assert_eq!(connect.properties.user_properties.len(), 2);
}

#[test]
fn property_length_overrunning_the_packet_is_malformed() {
    let mut body = lp(b"MQTT");
    body.extend([5, 0x02, 0, 60, 20, 0x11, 0, 0, 0, 1]);
    let error = assert_reason(&frame(0x10, &body), None, MALFORMED);
    assert_eq!(error, DecodeError::UnexpectedEnd("properties"));
    // A property value running past the end of its block.
    let error = assert_reason(&v5_connect_with_properties(&[0x11, 0, 0]), None, MALFORMED);
    assert_eq!(error, DecodeError::UnexpectedEnd("Session Expiry Interval"));
}

#[test]
fn unknown_property_identifier_is_malformed() {
    for id in [0x00, 0x04, 0x2B, 0x7F] {
        let error = assert_reason(&v5_connect_with_properties(&[id, 0]), None, MALFORMED);
        assert_eq!(error, DecodeError::UnknownProperty(u32::from(id)));
    }
}

#[test]
fn zero_receive_maximum_and_maximum_packet_size_are_protocol_errors() {
    assert_reason(&v5_connect_with_properties(&[0x21, 0, 0]), None, PROTOCOL);
    assert_reason(
        &v5_connect_with_properties(&[0x27, 0, 0, 0, 0]),
        None,
        PROTOCOL,
    );
    let mut connack = vec![0, 0, 3, 0x21, 0, 0];
    assert_reason(&frame(0x20, &connack), Some(V5), PROTOCOL);
    connack = vec![0, 0, 5, 0x27, 0, 0, 0, 0];
    assert_reason(&frame(0x20, &connack), Some(V5), PROTOCOL);
}

#[test]
fn boolean_properties_other_than_0_or_1_are_protocol_errors() {
    assert_reason(&v5_connect_with_properties(&[0x17, 2]), None, PROTOCOL);
    assert_reason(&v5_connect_with_properties(&[0x19, 2]), None, PROTOCOL);
    assert_reason(
        &v5_publish_with_properties(b"t", &[0x01, 2]),
        Some(V5),
        PROTOCOL,
    );
    for id in [0x24, 0x25, 0x28, 0x29, 0x2A] {
        let error = assert_reason(&frame(0x20, &[0, 0, 2, id, 2]), Some(V5), PROTOCOL);
        assert!(matches!(
            error,
            DecodeError::InvalidPropertyValue { value: 2, .. }
        ));
    }
}

#[test]
fn authentication_data_without_method_is_a_protocol_error() {
    let mut properties = vec![0x16];
    properties.extend(lp(b"data"));
    let error = assert_reason(&v5_connect_with_properties(&properties), None, PROTOCOL);
    assert_eq!(
        error,
        DecodeError::AuthenticationDataWithoutMethod("CONNECT")
    );
}

#[test]
fn property_strings_follow_the_utf8_rules() {
    let mut properties = vec![0x03];
    properties.extend(lp(b"\xFF"));
    assert_reason(
        &v5_publish_with_properties(b"t", &properties),
        Some(V5),
        MALFORMED,
    );
    let mut properties = vec![0x26];
    properties.extend(lp(b"k"));
    properties.extend(lp(b"\0"));
    assert_reason(
        &v5_publish_with_properties(b"t", &properties),
        Some(V5),
        MALFORMED,
    );
}

// --- Acknowledgements, DISCONNECT, AUTH --------------------------------------------------------

#[test]
fn v5_pub_ack_without_reason_code_means_success() {
    let packet = decode_one(&[0x40, 2, 0, 9], Some(V5)).unwrap();
    assert_eq!(packet, Packet::PubAck(PubAck::success(9)));
    let packet = decode_one(&[0x50, 3, 0, 9, 0x80], Some(V5)).unwrap();
    assert_eq!(
        packet,
        Packet::PubRec(PubAck {
            packet_id: 9,
            reason_code: ReasonCode::UnspecifiedError,
            properties: AckProperties::default()
        })
    );
}

#[test]
fn unknown_or_misplaced_reason_codes_are_malformed() {
    // 0x03 is no reason code at all.
    let error = assert_reason(&[0x40, 3, 0, 9, 0x03], Some(V5), MALFORMED);
    assert_eq!(
        error,
        DecodeError::InvalidReasonCode {
            packet: "PUBACK",
            code: 0x03
        }
    );
    // 0x92 exists, but not in PUBACK; 0x10 exists, but not in PUBREL.
    assert_reason(&[0x40, 3, 0, 9, 0x92], Some(V5), MALFORMED);
    assert_reason(&[0x62, 3, 0, 9, 0x10], Some(V5), MALFORMED);
    assert_reason(&[0xE0, 1, 0x01], Some(V5), MALFORMED);
    assert_reason(&[0xF0, 1, 0x80], Some(V5), MALFORMED);
    assert_reason(&[0x20, 3, 0, 0x10, 0], Some(V5), MALFORMED);
    assert_reason(&[0x20, 2, 0, 6], Some(V311), MALFORMED);
    assert_reason(&[0x90, 3, 0, 1, 0x03], Some(V311), MALFORMED);
    assert_reason(&[0x90, 4, 0, 1, 0, 0x11], Some(V5), MALFORMED);
    assert_reason(&[0xB0, 4, 0, 1, 0, 0x01], Some(V5), MALFORMED);
}

#[test]
fn v5_disconnect_and_auth_with_empty_body_mean_success() {
    assert_eq!(
        decode_one(&[0xE0, 0], Some(V5)).unwrap(),
        Packet::Disconnect(Disconnect::default())
    );
    assert_eq!(
        decode_one(&[0xF0, 0], Some(V5)).unwrap(),
        Packet::Auth(Auth::default())
    );
    assert_eq!(
        decode_one(&[0xE0, 1, 0x8E], Some(V5)).unwrap(),
        Packet::Disconnect(Disconnect::with_reason(ReasonCode::SessionTakenOver))
    );
}

#[test]
fn connack_reserved_flags_are_malformed() {
    let error = assert_reason(&[0x20, 2, 0x02, 0], Some(V311), MALFORMED);
    assert_eq!(error, DecodeError::ConnAckReservedFlags(0x02));
}

// --- Error reporting ------------------------------------------------------------------------

#[test]
fn every_error_names_what_was_wrong() {
    let cases: Vec<(DecodeError, &str)> = vec![
        (
            DecodeError::SecondConnect,
            "CONNECT received on an already connected connection",
        ),
        (
            DecodeError::InvalidHeaderFlags {
                packet: "SUBSCRIBE",
                expected: 2,
                actual: 0,
            },
            "SUBSCRIBE fixed header flags must be 0b0010, got 0b0000",
        ),
        (
            DecodeError::UnsupportedProtocolVersion(3),
            "unsupported protocol level 3",
        ),
        (
            DecodeError::InvalidReasonCode {
                packet: "PUBACK",
                code: 3,
            },
            "PUBACK reason code 0x03 is not valid",
        ),
        (
            DecodeError::InvalidPropertyValue {
                property: "Receive Maximum",
                value: 0,
                expected: "at least 1",
            },
            "property Receive Maximum has value 0, must be at least 1",
        ),
        (
            DecodeError::UnknownProperty(0x2B),
            "unknown property identifier 0x2b",
        ),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
    }
}
