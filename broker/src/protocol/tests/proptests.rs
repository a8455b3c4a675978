//! Property tests: decode never panics on any input, and generated valid packets survive
//! encode → decode → encode unchanged.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use super::partial::assert_prefixes_wait;
use super::*;
use ProtocolVersion::{V311, V5};

const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: &[u8] = &[0x00, 0x92];
const SUBACK_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];

fn reason(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    select(codes).prop_map(|code| ReasonCode::from_u8(code).expect("listed code exists"))
}

fn text() -> impl Strategy<Value = ByteString> {
    "\\PC{0,8}".prop_map(ByteString::from)
}

fn topic_name() -> impl Strategy<Value = ByteString> {
    "[a-zA-Z0-9é $]{1,6}(/[a-z0-9é]{0,4}){0,3}".prop_map(ByteString::from)
}

fn data() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..12).prop_map(Bytes::from)
}

fn users() -> impl Strategy<Value = Vec<UserProperty>> {
    vec((text(), text()), 0..3)
}

fn flag() -> impl Strategy<Value = Option<u8>> {
    option::of(0u8..=1)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn nonzero_u16() -> impl Strategy<Value = u16> {
    1u16..=u16::MAX
}

fn version_state() -> impl Strategy<Value = Option<ProtocolVersion>> {
    prop_oneof![Just(None), Just(Some(V311)), Just(Some(V5))]
}

/// Authentication Method and Data, never Data without Method.
fn authentication() -> impl Strategy<Value = (Option<ByteString>, Option<Bytes>)> {
    option::of((text(), option::of(data()))).prop_map(|auth| match auth {
        Some((method, data)) => (Some(method), data),
        None => (None, None),
    })
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        option::of(any::<u32>()),
        option::of(nonzero_u16()),
        option::of(1u32..),
        option::of(any::<u16>()),
        flag(),
        flag(),
        users(),
        authentication(),
    )
        .prop_map(
            |(session, receive, size, alias, response, problem, users, auth)| ConnectProperties {
                session_expiry_interval: session,
                receive_maximum: receive,
                maximum_packet_size: size,
                topic_alias_maximum: alias,
                request_response_information: response,
                request_problem_information: problem,
                user_properties: users,
                authentication_method: auth.0,
                authentication_data: auth.1,
            },
        )
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        option::of(any::<u32>()),
        flag(),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(topic_name()),
        option::of(data()),
        users(),
    )
        .prop_map(
            |(delay, format, expiry, content, response, correlation, users)| WillProperties {
                will_delay_interval: delay,
                payload_format_indicator: format,
                message_expiry_interval: expiry,
                content_type: content,
                response_topic: response,
                correlation_data: correlation,
                user_properties: users,
            },
        )
}

fn will(version: ProtocolVersion) -> impl Strategy<Value = LastWill> {
    (
        topic_name(),
        data(),
        qos(),
        any::<bool>(),
        will_properties(),
    )
        .prop_map(move |(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties: if version == V5 {
                properties
            } else {
                WillProperties::default()
            },
        })
}

fn connect_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        any::<bool>(),
        any::<u16>(),
        text(),
        option::of(will(version)),
        option::of(text()),
        option::of(data()),
        connect_properties(),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                let v5 = version == V5;
                Packet::Connect(Box::new(Connect {
                    protocol_version: version,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    // 3.1.1 needs a user name whenever there is a password.
                    username: if v5 || password.is_none() {
                        username
                    } else {
                        Some(username.unwrap_or_default())
                    },
                    password,
                    properties: if v5 {
                        properties
                    } else {
                        ConnectProperties::default()
                    },
                }))
            },
        )
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let limits = (
        option::of(any::<u32>()),
        option::of(nonzero_u16()),
        flag(),
        flag(),
        option::of(1u32..),
        option::of(text()),
        option::of(any::<u16>()),
        option::of(text()),
        users(),
    );
    let features = (
        flag(),
        flag(),
        flag(),
        option::of(any::<u16>()),
        option::of(text()),
        option::of(text()),
        authentication(),
    );
    (limits, features).prop_map(
        |(
            (session, receive, max_qos, retain, size, assigned, alias, reason, users),
            (wildcard, sub_ids, shared, keep_alive, response, server, auth),
        )| ConnAckProperties {
            session_expiry_interval: session,
            receive_maximum: receive,
            maximum_qos: max_qos,
            retain_available: retain,
            maximum_packet_size: size,
            assigned_client_identifier: assigned,
            topic_alias_maximum: alias,
            reason_string: reason,
            user_properties: users,
            wildcard_subscription_available: wildcard,
            subscription_identifiers_available: sub_ids,
            shared_subscription_available: shared,
            server_keep_alive: keep_alive,
            response_information: response,
            server_reference: server,
            authentication_method: auth.0,
            authentication_data: auth.1,
        },
    )
}

fn connack_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v311_codes: &'static [u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
    let codes = if version == V5 {
        CONNACK_CODES
    } else {
        v311_codes
    };
    (any::<bool>(), reason(codes), connack_properties()).prop_map(
        move |(session_present, reason_code, properties)| {
            Packet::ConnAck(ConnAck {
                session_present,
                reason_code,
                properties: if version == V5 {
                    properties
                } else {
                    ConnAckProperties::default()
                },
            })
        },
    )
}

fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        flag(),
        option::of(any::<u32>()),
        option::of(nonzero_u16()),
        option::of(topic_name()),
        option::of(data()),
        users(),
        vec(1u32..=268_435_455, 0..3),
        option::of(text()),
    )
        .prop_map(
            |(format, expiry, alias, response, correlation, users, ids, content)| {
                PublishProperties {
                    payload_format_indicator: format,
                    message_expiry_interval: expiry,
                    topic_alias: alias,
                    response_topic: response,
                    correlation_data: correlation,
                    user_properties: users,
                    subscription_identifiers: ids,
                    content_type: content,
                }
            },
        )
}

fn publish_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![3 => topic_name(), 1 => Just(ByteString::new())],
        nonzero_u16(),
        publish_properties(),
        vec(any::<u8>(), 0..64),
    )
        .prop_map(
            move |(qos, dup, retain, topic, packet_id, mut properties, payload)| {
                let at_most_once = qos == QoS::AtMostOnce;
                let topic = match version {
                    V311 if topic.is_empty() => ByteString::from("t"),
                    _ => topic,
                };
                if version == V311 {
                    properties = PublishProperties::default();
                } else if topic.is_empty() && properties.topic_alias.is_none() {
                    properties.topic_alias = Some(1);
                }
                Packet::Publish(Publish {
                    dup: dup && !at_most_once,
                    qos,
                    retain,
                    topic,
                    packet_id: (!at_most_once).then_some(packet_id),
                    properties,
                    payload: Bytes::from(payload),
                })
            },
        )
}

fn ack_properties(version: ProtocolVersion) -> impl Strategy<Value = AckProperties> {
    (option::of(text()), users()).prop_map(move |(reason_string, user_properties)| {
        if version == V5 {
            AckProperties {
                reason_string,
                user_properties,
            }
        } else {
            AckProperties::default()
        }
    })
}

/// A PUBACK-shaped packet constructor and the reason codes that packet may carry.
type AckKind = (fn(PubAck) -> Packet, &'static [u8]);

fn pub_ack_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let kinds: [AckKind; 4] = [
        (Packet::PubAck, PUBACK_CODES),
        (Packet::PubRec, PUBACK_CODES),
        (Packet::PubRel, PUBREL_CODES),
        (Packet::PubComp, PUBREL_CODES),
    ];
    (
        select(kinds.to_vec()),
        any::<u16>(),
        any::<u8>(),
        ack_properties(version),
    )
        .prop_map(move |((make, codes), packet_id, pick, properties)| {
            let reason_code = if version == V5 {
                ReasonCode::from_u8(codes[usize::from(pick) % codes.len()]).expect("listed")
            } else {
                ReasonCode::Success
            };
            make(PubAck {
                packet_id,
                reason_code,
                properties,
            })
        })
}

fn subscription_options(version: ProtocolVersion) -> impl Strategy<Value = SubscriptionOptions> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        select(vec![
            RetainHandling::SendAlways,
            RetainHandling::SendIfNew,
            RetainHandling::Never,
        ]),
    )
        .prop_map(
            move |(qos, no_local, retain_as_published, retain_handling)| {
                if version == V5 {
                    SubscriptionOptions {
                        qos,
                        no_local,
                        retain_as_published,
                        retain_handling,
                    }
                } else {
                    SubscriptionOptions {
                        qos,
                        ..SubscriptionOptions::default()
                    }
                }
            },
        )
}

fn subscribe_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let filter = "[a-z+#/]{0,10}".prop_map(ByteString::from);
    (
        nonzero_u16(),
        option::of(1u32..=268_435_455),
        users(),
        vec((filter, subscription_options(version)), 1..4),
    )
        .prop_map(move |(packet_id, identifier, users, filters)| {
            let properties = if version == V5 {
                SubscribeProperties {
                    subscription_identifier: identifier,
                    user_properties: users,
                }
            } else {
                SubscribeProperties::default()
            };
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters: filters
                    .into_iter()
                    .map(|(filter, options)| SubscribeFilter { filter, options })
                    .collect(),
            })
        })
}

fn suback_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v311_codes: &'static [u8] = &[0x00, 0x01, 0x02, 0x80];
    let codes = if version == V5 {
        SUBACK_CODES
    } else {
        v311_codes
    };
    (
        any::<u16>(),
        ack_properties(version),
        vec(reason(codes), 0..5),
    )
        .prop_map(|(packet_id, properties, reason_codes)| {
            // 3.1.1 has a single failure code; 0x80 decodes as Unspecified error.
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reason_codes,
            })
        })
}

fn unsubscribe_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (nonzero_u16(), users(), vec(text(), 1..4)).prop_map(move |(packet_id, users, filters)| {
        Packet::Unsubscribe(Unsubscribe {
            packet_id,
            user_properties: if version == V5 { users } else { Vec::new() },
            filters,
        })
    })
}

fn unsuback_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        any::<u16>(),
        ack_properties(version),
        vec(reason(UNSUBACK_CODES), 0..5),
    )
        .prop_map(move |(packet_id, properties, reason_codes)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reason_codes: if version == V5 {
                    reason_codes
                } else {
                    Vec::new()
                },
            })
        })
}

fn disconnect_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        reason(DISCONNECT_CODES),
        option::of(any::<u32>()),
        option::of(text()),
        users(),
        option::of(text()),
    )
        .prop_map(
            move |(reason_code, session, reason_string, users, server)| {
                if version == V311 {
                    return Packet::Disconnect(Disconnect::default());
                }
                Packet::Disconnect(Disconnect {
                    reason_code,
                    properties: DisconnectProperties {
                        session_expiry_interval: session,
                        reason_string,
                        user_properties: users,
                        server_reference: server,
                    },
                })
            },
        )
}

fn auth_packet() -> impl Strategy<Value = Packet> {
    (
        reason(AUTH_CODES),
        authentication(),
        option::of(text()),
        users(),
    )
        .prop_map(|(reason_code, (method, data), reason_string, users)| {
            Packet::Auth(Auth {
                reason_code,
                properties: AuthProperties {
                    authentication_method: method,
                    authentication_data: data,
                    reason_string,
                    user_properties: users,
                },
            })
        })
}

/// Any packet that is valid in `version`.
fn packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        1 => connect_packet(version),
        1 => connack_packet(version),
        3 => publish_packet(version),
        1 => pub_ack_packet(version),
        1 => subscribe_packet(version),
        1 => suback_packet(version),
        1 => unsubscribe_packet(version),
        1 => unsuback_packet(version),
        1 => Just(Packet::PingReq),
        1 => Just(Packet::PingResp),
        1 => disconnect_packet(version),
    ];
    if version == V5 {
        prop_oneof![10 => common, 1 => auth_packet()].boxed()
    } else {
        common.boxed()
    }
}

fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![Just(V311), Just(V5)]
}

fn versioned_packet() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    version().prop_flat_map(|version| (Just(version), packet(version)))
}

/// Decodes everything in `bytes`; only checks that nothing panics and that progress is made.
fn drain(bytes: &[u8], state: Option<ProtocolVersion>, max: u32) {
    let mut buf = BytesMut::from(bytes);
    loop {
        let before = buf.len();
        match decode(&mut buf, state, max) {
            Ok(Some(_)) => assert!(buf.len() < before, "a decoded packet consumes bytes"),
            Ok(None) => {
                assert_eq!(buf.len(), before, "waiting consumes nothing");
                break;
            }
            Err(error) => {
                let _ = (error.reason_code(), error.to_string());
                break;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..300),
        state in version_state(),
        max in prop_oneof![Just(u32::MAX), 0u32..400],
    ) {
        drain(&bytes, state, max);
    }

    #[test]
    fn decode_never_panics_on_well_framed_arbitrary_bodies(
        first in any::<u8>(),
        body in vec(any::<u8>(), 0..200),
        state in version_state(),
    ) {
        drain(&frame(first, &body), state, u32::MAX);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_connect_bodies(
        level in prop_oneof![Just(4u8), Just(5u8), any::<u8>()],
        rest in vec(any::<u8>(), 0..120),
    ) {
        let mut body = lp(b"MQTT");
        body.push(level);
        body.extend(rest);
        drain(&frame(0x10, &body), None, u32::MAX);
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_packets(
        (version, packet) in versioned_packet(),
        mutations in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode_to_vec(&packet, version);
        for (index, value) in mutations {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        let state = decode_state(&packet, version);
        drain(&bytes, state, u32::MAX);
        let keep = cut.index(bytes.len() + 1);
        drain(&bytes[..keep], state, u32::MAX);
    }

    #[test]
    fn generated_packets_round_trip((version, packet) in versioned_packet()) {
        assert_round_trip(&packet, version);
    }

    #[test]
    fn generated_packets_wait_on_every_prefix((version, packet) in versioned_packet()) {
        let bytes = encode_to_vec(&packet, version);
        assert_prefixes_wait(&bytes, decode_state(&packet, version));
    }
}
