//! Byte-exact vectors: packets captured from mosquitto_pub / mosquitto_sub 2.0.11 and examples
//! from the specification, decoded and re-encoded bit for bit.

use super::*;
use ProtocolVersion::{V311, V5};

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Decodes `bytes`, compares with `expected` and checks that encoding gives the same bytes.
fn assert_vector(bytes: &[u8], version: ProtocolVersion, expected: &Packet) {
    let decoded = decode_one(bytes, decode_state(expected, version)).expect("vector decodes");
    assert_eq!(&decoded, expected);
    assert_eq!(encode_to_vec(expected, version), bytes);
}

#[test]
fn mosquitto_pub_v311_connect_with_will_and_credentials() {
    // mosquitto_pub -V mqttv311 -i tern-test -u user -P pass -k 30
    //   --will-topic w/t --will-payload bye --will-qos 1 --will-retain
    let bytes = hex(concat!(
        "102b00044d51545404ee001e00097465726e2d74657374",
        "0003772f740003627965000475736572000470617373"
    ));
    let expected = Packet::Connect(Box::new(Connect {
        protocol_version: V311,
        clean_start: true,
        keep_alive: 30,
        client_id: s("tern-test"),
        will: Some(LastWill {
            topic: s("w/t"),
            payload: b(b"bye"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: WillProperties::default(),
        }),
        username: Some(s("user")),
        password: Some(b(b"pass")),
        properties: ConnectProperties::default(),
    }));
    assert_vector(&bytes, V311, &expected);
}

#[test]
fn mosquitto_pub_v311_qos1_publish_and_disconnect() {
    let publish = hex("320c0003612f62000168656c6c6f");
    let expected = Packet::Publish(Publish {
        packet_id: Some(1),
        ..super::publish(QoS::AtLeastOnce, "a/b", b"hello")
    });
    assert_vector(&publish, V311, &expected);
    assert_vector(
        &[0xE0, 0x00],
        V311,
        &Packet::Disconnect(Disconnect::default()),
    );
}

#[test]
fn mosquitto_pub_v5_connect_with_properties() {
    // mosquitto_pub -V mqttv5 -i tern5 -D connect session-expiry-interval 60
    //   -D connect receive-maximum 20
    let bytes = hex("101a00044d5154540502003c08110000003c21001400057465726e35");
    let expected = Packet::Connect(Box::new(Connect {
        protocol_version: V5,
        clean_start: true,
        keep_alive: 60,
        client_id: s("tern5"),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties {
            session_expiry_interval: Some(60),
            receive_maximum: Some(20),
            ..ConnectProperties::default()
        },
    }));
    assert_vector(&bytes, V5, &expected);
}

#[test]
fn mosquitto_pub_v5_qos2_retained_publish_with_properties() {
    // -t a/b -m hi -q 2 -r -D publish user-property k v -D publish message-expiry-interval 10
    //   -D publish content-type text/plain
    let bytes = hex(concat!(
        "35230003612f620001192600016b000176020000000a03000a746578742f706c61696e",
        "6869"
    ));
    let expected = Packet::Publish(Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: true,
        topic: s("a/b"),
        packet_id: Some(1),
        properties: PublishProperties {
            user_properties: vec![(s("k"), s("v"))],
            message_expiry_interval: Some(10),
            content_type: Some(s("text/plain")),
            ..PublishProperties::default()
        },
        payload: b(b"hi"),
    });
    // mosquitto orders the properties differently from our encoder, so only decode is exact.
    let decoded = decode_one(&bytes, Some(V5)).expect("vector decodes");
    assert_eq!(decoded, expected);
    assert_eq!(encode_to_vec(&expected, V5).len(), bytes.len());
}

#[test]
fn mosquitto_pub_v5_pubrel_short_form() {
    assert_vector(&hex("62020001"), V5, &Packet::PubRel(PubAck::success(1)));
}

#[test]
fn mosquitto_sub_v311_connect_and_subscribe() {
    let connect = hex("101000044d5154540402003c000473756231");
    let expected = Packet::Connect(Box::new(Connect {
        client_id: s("sub1"),
        ..super::connect(V311)
    }));
    assert_vector(&connect, V311, &expected);

    let subscribe = hex("82120001000773706f72742f2b020003612f2302");
    let expected = Packet::Subscribe(Subscribe {
        packet_id: 1,
        properties: SubscribeProperties::default(),
        filters: vec![
            subscribe_filter("sport/+", QoS::ExactlyOnce),
            subscribe_filter("a/#", QoS::ExactlyOnce),
        ],
    });
    assert_vector(&subscribe, V311, &expected);
}

#[test]
fn mosquitto_sub_v5_subscribe_with_identifier_and_user_property() {
    // -t sport/+ -q 1 -D subscribe subscription-identifier 7 -D subscribe user-property a b
    let bytes = hex("82160001090b0726000161000162000773706f72742f2b01");
    let expected = Packet::Subscribe(Subscribe {
        packet_id: 1,
        properties: SubscribeProperties {
            subscription_identifier: Some(7),
            user_properties: vec![(s("a"), s("b"))],
        },
        filters: vec![subscribe_filter("sport/+", QoS::AtLeastOnce)],
    });
    assert_vector(&bytes, V5, &expected);
}

#[test]
fn spec_connack_and_ping_vectors() {
    assert_vector(
        &[0x20, 0x02, 0x01, 0x00],
        V311,
        &Packet::ConnAck(ConnAck {
            session_present: true,
            ..ConnAck::default()
        }),
    );
    assert_vector(
        &[0x20, 0x03, 0x00, 0x00, 0x00],
        V5,
        &Packet::ConnAck(ConnAck::default()),
    );
    assert_vector(&[0xC0, 0x00], V5, &Packet::PingReq);
    assert_vector(&[0xD0, 0x00], V311, &Packet::PingResp);
}
