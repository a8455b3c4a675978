//! encode → decode → encode gives back the same packet and the same bytes, for every packet
//! type and every property, in both versions.

use super::*;
use ProtocolVersion::{V311, V5};

#[test]
fn every_sample_packet_round_trips_in_both_versions() {
    for version in [V311, V5] {
        for packet in sample_packets(version) {
            assert_round_trip(&packet, version);
        }
    }
}

#[test]
fn connect_with_every_property_and_will_property_round_trips_in_v5() {
    let mut packet = connect(V5);
    packet.properties = connect_properties_full();
    packet.will = Some(LastWill {
        topic: s("w"),
        payload: b(b""),
        qos: QoS::ExactlyOnce,
        retain: false,
        properties: will_properties_full(),
    });
    assert_round_trip(&Packet::Connect(Box::new(packet)), V5);
}

#[test]
fn connect_password_without_username_round_trips_in_v5() {
    let mut packet = connect(V5);
    packet.password = Some(b(b"token"));
    packet.clean_start = false;
    packet.keep_alive = 0;
    packet.client_id = s("");
    assert_round_trip(&Packet::Connect(Box::new(packet)), V5);
}

#[test]
fn connect_will_of_each_qos_round_trips_in_v311() {
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let mut packet = connect(V311);
        packet.will = Some(LastWill {
            topic: s("status/client-1"),
            payload: b(b"offline"),
            qos,
            retain: qos == QoS::AtLeastOnce,
            properties: WillProperties::default(),
        });
        assert_round_trip(&Packet::Connect(Box::new(packet)), V311);
    }
}

#[test]
fn connack_every_v311_return_code_round_trips() {
    for (reason_code, byte) in [
        (ReasonCode::Success, 0),
        (ReasonCode::UnsupportedProtocolVersion, 1),
        (ReasonCode::ClientIdentifierNotValid, 2),
        (ReasonCode::ServerUnavailable, 3),
        (ReasonCode::BadUserNameOrPassword, 4),
        (ReasonCode::NotAuthorized, 5),
    ] {
        let packet = Packet::ConnAck(ConnAck {
            session_present: false,
            reason_code,
            properties: ConnAckProperties::default(),
        });
        assert_eq!(assert_round_trip(&packet, V311), [0x20, 2, 0, byte]);
    }
}

#[test]
fn connack_maps_v5_reasons_onto_v311_return_codes() {
    let packet = Packet::ConnAck(ConnAck {
        session_present: false,
        reason_code: ReasonCode::Banned,
        properties: connack_properties_full(),
    });
    assert_eq!(encode_to_vec(&packet, V311), [0x20, 2, 0, 5]);
    let packet = Packet::ConnAck(ConnAck {
        reason_code: ReasonCode::ServerBusy,
        ..ConnAck::default()
    });
    assert_eq!(encode_to_vec(&packet, V311), [0x20, 2, 0, 3]);
}

#[test]
fn connack_failure_with_reason_string_round_trips_in_v5() {
    let packet = Packet::ConnAck(ConnAck {
        session_present: false,
        reason_code: ReasonCode::NotAuthorized,
        properties: ConnAckProperties {
            reason_string: Some(s("no")),
            ..ConnAckProperties::default()
        },
    });
    assert_round_trip(&packet, V5);
}

#[test]
fn publish_of_each_qos_with_flags_round_trips_in_both_versions() {
    for version in [V311, V5] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            for retain in [false, true] {
                let mut packet = publish(qos, "sport/tennis/player1", b"\x00\xFFbinary");
                packet.retain = retain;
                packet.dup = qos != QoS::AtMostOnce && retain;
                assert_round_trip(&Packet::Publish(packet), version);
            }
        }
    }
}

#[test]
fn publish_with_every_property_round_trips_in_v5() {
    let mut packet = publish(QoS::AtLeastOnce, "a", b"x");
    packet.properties = publish_properties_full();
    assert_round_trip(&Packet::Publish(packet), V5);
}

#[test]
fn publish_with_empty_topic_and_alias_round_trips_in_v5() {
    let mut packet = publish(QoS::AtMostOnce, "", b"aliased");
    packet.properties.topic_alias = Some(1);
    assert_round_trip(&Packet::Publish(packet), V5);
}

#[test]
fn publish_qos0_drops_dup_and_packet_id_when_encoding() {
    let mut packet = publish(QoS::AtMostOnce, "t", b"p");
    packet.dup = true;
    packet.packet_id = Some(9);
    assert_eq!(
        encode_to_vec(&Packet::Publish(packet), V311),
        [0x30, 4, 0, 1, b't', b'p']
    );
}

#[test]
fn publish_len_matches_the_encoded_size() {
    for version in [V311, V5] {
        for packet in sample_packets(version) {
            if let Packet::Publish(publish) = &packet {
                assert_eq!(
                    publish_len(publish, version),
                    encode_to_vec(&packet, version).len()
                );
            }
        }
    }
    let big = Publish {
        payload: Bytes::from(vec![7u8; 200_000]),
        ..publish(QoS::AtLeastOnce, "big", b"")
    };
    assert_eq!(publish_len(&big, V5), 1 + 3 + 2 + 3 + 2 + 1 + 200_000);
}

#[test]
fn publish_payload_is_a_slice_of_the_read_buffer() {
    let bytes = encode_to_vec(
        &Packet::Publish(publish(QoS::AtLeastOnce, "t/x", b"zero-copy payload")),
        V5,
    );
    let mut buf = BytesMut::from(&bytes[..]);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let Some(Packet::Publish(decoded)) = decode(&mut buf, Some(V5), NO_LIMIT).unwrap() else {
        panic!("expected PUBLISH");
    };
    assert!(range.contains(&(decoded.payload.as_ptr() as usize)));
    assert!(range.contains(&(decoded.topic.as_bytes().as_ptr() as usize)));
}

#[test]
fn pub_acks_use_short_forms_in_v5() {
    for make in [
        Packet::PubAck,
        Packet::PubRec,
        Packet::PubRel,
        Packet::PubComp,
    ] {
        let success = make(PubAck::success(5));
        assert_eq!(
            assert_round_trip(&success, V5).len(),
            4,
            "{}",
            success.kind()
        );
    }
    let reason_only = Packet::PubAck(PubAck {
        packet_id: 5,
        reason_code: ReasonCode::NoMatchingSubscribers,
        properties: AckProperties::default(),
    });
    assert_eq!(assert_round_trip(&reason_only, V5), [0x40, 3, 0, 5, 0x10]);
    let success_with_properties = Packet::PubComp(PubAck {
        packet_id: 5,
        reason_code: ReasonCode::Success,
        properties: ack_properties_full(),
    });
    assert_round_trip(&success_with_properties, V5);
    let not_found = Packet::PubRel(PubAck {
        packet_id: 5,
        reason_code: ReasonCode::PacketIdentifierNotFound,
        properties: ack_properties_full(),
    });
    assert_round_trip(&not_found, V5);
}

#[test]
fn pub_acks_carry_only_the_packet_id_in_v311() {
    let ack = Packet::PubRec(PubAck {
        packet_id: 0x1234,
        reason_code: ReasonCode::QuotaExceeded,
        properties: ack_properties_full(),
    });
    assert_eq!(encode_to_vec(&ack, V311), [0x50, 2, 0x12, 0x34]);
}

#[test]
fn subscribe_with_every_option_combination_round_trips_in_v5() {
    let mut filters = Vec::new();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        for retain_handling in [
            RetainHandling::SendAlways,
            RetainHandling::SendIfNew,
            RetainHandling::Never,
        ] {
            for (no_local, retain_as_published) in
                [(false, false), (true, false), (false, true), (true, true)]
            {
                filters.push(SubscribeFilter {
                    filter: s("a/+/c"),
                    options: SubscriptionOptions {
                        qos,
                        no_local,
                        retain_as_published,
                        retain_handling,
                    },
                });
            }
        }
    }
    let packet = Packet::Subscribe(Subscribe {
        packet_id: 1,
        properties: SubscribeProperties {
            subscription_identifier: Some(268_435_455),
            user_properties: user_properties(),
        },
        filters,
    });
    assert_round_trip(&packet, V5);
}

#[test]
fn subscribe_writes_only_qos_in_v311() {
    let packet = Packet::Subscribe(Subscribe {
        packet_id: 1,
        properties: SubscribeProperties {
            subscription_identifier: Some(5),
            user_properties: user_properties(),
        },
        filters: vec![SubscribeFilter {
            filter: s("a"),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::Never,
            },
        }],
    });
    assert_eq!(encode_to_vec(&packet, V311), [0x82, 6, 0, 1, 0, 1, b'a', 1]);
}

#[test]
fn suback_failure_codes_become_0x80_in_v311() {
    let packet = Packet::SubAck(SubAck {
        packet_id: 2,
        properties: ack_properties_full(),
        reason_codes: vec![
            ReasonCode::GrantedQoS1,
            ReasonCode::NotAuthorized,
            ReasonCode::TopicFilterInvalid,
        ],
    });
    assert_eq!(encode_to_vec(&packet, V311), [0x90, 5, 0, 2, 1, 0x80, 0x80]);
    let failure = Packet::SubAck(SubAck {
        packet_id: 2,
        properties: AckProperties::default(),
        reason_codes: vec![ReasonCode::UnspecifiedError],
    });
    assert_round_trip(&failure, V311);
}

#[test]
fn suback_every_v5_code_round_trips() {
    let packet = Packet::SubAck(SubAck {
        packet_id: 2,
        properties: AckProperties::default(),
        reason_codes: [
            0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
        ]
        .into_iter()
        .filter_map(ReasonCode::from_u8)
        .collect(),
    });
    assert_round_trip(&packet, V5);
}

#[test]
fn unsuback_has_only_the_packet_id_in_v311() {
    let packet = Packet::UnsubAck(UnsubAck {
        packet_id: 3,
        properties: ack_properties_full(),
        reason_codes: vec![ReasonCode::Success],
    });
    assert_eq!(encode_to_vec(&packet, V311), [0xB0, 2, 0, 3]);
}

#[test]
fn disconnect_short_forms_in_v5() {
    let normal = Packet::Disconnect(Disconnect::default());
    assert_eq!(assert_round_trip(&normal, V5), [0xE0, 0]);
    let with_will = Packet::Disconnect(Disconnect::with_reason(
        ReasonCode::DisconnectWithWillMessage,
    ));
    assert_eq!(assert_round_trip(&with_will, V5), [0xE0, 1, 0x04]);
    let full = Packet::Disconnect(Disconnect {
        reason_code: ReasonCode::ServerMoved,
        properties: disconnect_properties_full(),
    });
    assert_round_trip(&full, V5);
    let success_with_properties = Packet::Disconnect(Disconnect {
        reason_code: ReasonCode::Success,
        properties: DisconnectProperties {
            session_expiry_interval: Some(10),
            ..DisconnectProperties::default()
        },
    });
    assert_eq!(
        assert_round_trip(&success_with_properties, V5),
        [0xE0, 7, 0x00, 5, 0x11, 0, 0, 0, 10]
    );
}

#[test]
fn disconnect_has_no_body_in_v311() {
    let packet = Packet::Disconnect(Disconnect {
        reason_code: ReasonCode::ServerShuttingDown,
        properties: disconnect_properties_full(),
    });
    assert_eq!(encode_to_vec(&packet, V311), [0xE0, 0]);
}

#[test]
fn auth_success_without_properties_is_empty_in_v5() {
    assert_eq!(
        assert_round_trip(&Packet::Auth(Auth::default()), V5),
        [0xF0, 0]
    );
    let reauth = Packet::Auth(Auth {
        reason_code: ReasonCode::ReAuthenticate,
        properties: AuthProperties {
            authentication_method: Some(s("M")),
            ..AuthProperties::default()
        },
    });
    assert_eq!(
        assert_round_trip(&reauth, V5),
        [0xF0, 6, 0x19, 4, 0x15, 0, 1, b'M']
    );
}

#[test]
fn v311_encoding_leaves_out_every_property() {
    let mut with = connect(V311);
    with.properties = connect_properties_full();
    with.will = Some(LastWill {
        topic: s("w"),
        payload: b(b"p"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: will_properties_full(),
    });
    let mut without = with.clone();
    without.properties = ConnectProperties::default();
    if let Some(will) = &mut without.will {
        will.properties = WillProperties::default();
    }
    assert_eq!(
        encode_to_vec(&Packet::Connect(Box::new(with)), V311),
        encode_to_vec(&Packet::Connect(Box::new(without)), V311)
    );
    let mut publish_with = publish(QoS::AtLeastOnce, "t", b"p");
    publish_with.properties = publish_properties_full();
    assert_eq!(
        encode_to_vec(&Packet::Publish(publish_with), V311),
        encode_to_vec(&Packet::Publish(publish(QoS::AtLeastOnce, "t", b"p")), V311)
    );
}

#[test]
fn large_packets_use_multi_byte_remaining_length() {
    for size in [127usize, 128, 16_383, 16_384, 2_097_152] {
        let payload = Bytes::from(vec![b'x'; size]);
        let packet = Packet::Publish(Publish {
            payload,
            ..publish(QoS::AtMostOnce, "t", b"")
        });
        assert_round_trip(&packet, V5);
    }
}

#[test]
fn encode_rejects_auth_in_v311_and_appends_nothing() {
    let mut buf = BytesMut::from(&b"keep"[..]);
    let error = encode(&Packet::Auth(Auth::default()), V311, &mut buf).unwrap_err();
    assert_eq!(
        error,
        EncodeError::NotInVersion {
            packet: "AUTH",
            version: "3.1.1"
        }
    );
    assert_eq!(&buf[..], b"keep");
}

#[test]
fn encode_rejects_over_long_fields_and_appends_nothing() {
    let mut packet = publish(QoS::AtMostOnce, "t", b"");
    packet.topic = ByteString::from("x".repeat(65_536));
    let mut buf = BytesMut::new();
    assert_eq!(
        encode(&Packet::Publish(packet), V5, &mut buf),
        Err(EncodeError::FieldTooLong {
            what: "topic name",
            len: 65_536
        })
    );
    assert!(buf.is_empty());
}

#[test]
fn encode_rejects_packets_beyond_the_remaining_length_limit() {
    let packet = Packet::Publish(Publish {
        payload: Bytes::from(vec![0u8; MAX_REMAINING_LENGTH]),
        ..publish(QoS::AtMostOnce, "t", b"")
    });
    let mut buf = BytesMut::new();
    assert_eq!(
        encode(&packet, V311, &mut buf),
        Err(EncodeError::PacketTooLarge(MAX_REMAINING_LENGTH + 3))
    );
    assert!(buf.is_empty());
}

#[test]
fn encode_rejects_invalid_packet_shapes() {
    let mut buf = BytesMut::new();
    let mut no_id = publish(QoS::AtLeastOnce, "t", b"");
    no_id.packet_id = None;
    assert_eq!(
        encode(&Packet::Publish(no_id), V5, &mut buf),
        Err(EncodeError::MissingPacketId(QoS::AtLeastOnce))
    );
    let mut password_only = connect(V311);
    password_only.password = Some(b(b"pw"));
    assert_eq!(
        encode(&Packet::Connect(Box::new(password_only)), V311, &mut buf),
        Err(EncodeError::PasswordWithoutUsername)
    );
    assert_eq!(
        encode(&Packet::Connect(Box::new(connect(V5))), V311, &mut buf),
        Err(EncodeError::VersionMismatch {
            packet: V5,
            requested: V311
        })
    );
    let mut bad_sub_id = publish(QoS::AtMostOnce, "t", b"");
    bad_sub_id.properties.subscription_identifiers = vec![268_435_456];
    assert!(matches!(
        encode(&Packet::Publish(bad_sub_id), V5, &mut buf),
        Err(EncodeError::VarIntOutOfRange { .. })
    ));
    assert!(buf.is_empty());
}
