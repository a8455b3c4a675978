//! Incomplete input: the decoder waits (returns `Ok(None)`) and consumes nothing until a whole
//! packet is buffered, and then takes exactly one packet.

use super::*;
use ProtocolVersion::{V311, V5};

/// Every strict prefix of `bytes` yields `Ok(None)` and leaves the buffer untouched.
pub(super) fn assert_prefixes_wait(bytes: &[u8], state: Option<ProtocolVersion>) {
    for len in 0..bytes.len() {
        let mut buf = BytesMut::from(&bytes[..len]);
        let result = decode(&mut buf, state, NO_LIMIT);
        assert!(
            matches!(result, Ok(None)),
            "prefix of {len}/{} bytes gave {result:?}",
            bytes.len()
        );
        assert_eq!(
            &buf[..],
            &bytes[..len],
            "prefix of {len} bytes was consumed"
        );
    }
}

#[test]
fn every_prefix_of_every_sample_packet_waits_for_more() {
    for version in [V311, V5] {
        for packet in sample_packets(version) {
            let bytes = encode_to_vec(&packet, version);
            assert_prefixes_wait(&bytes, decode_state(&packet, version));
        }
    }
}

#[test]
fn every_prefix_of_a_multi_byte_length_packet_waits_for_more() {
    let packet = Packet::Publish(Publish {
        payload: Bytes::from(vec![1u8; 20_000]),
        ..publish(QoS::AtLeastOnce, "t", b"")
    });
    let bytes = encode_to_vec(&packet, V5);
    assert_eq!(
        bytes[1..4],
        [0xA6, 0x9C, 0x01],
        "three-byte remaining length 20,006"
    );
    assert_prefixes_wait(&bytes, Some(V5));
}

#[test]
fn decode_takes_exactly_one_packet_at_a_time() {
    let packets = sample_packets(V5);
    let mut stream = BytesMut::new();
    for packet in packets.iter().skip(2) {
        encode(packet, V5, &mut stream).unwrap();
    }
    let tail = [0x30, 0x05, 0x00];
    stream.extend_from_slice(&tail);
    for expected in packets.iter().skip(2) {
        let decoded = decode(&mut stream, Some(V5), NO_LIMIT).unwrap();
        assert_eq!(decoded.as_ref(), Some(expected));
    }
    assert_eq!(decode(&mut stream, Some(V5), NO_LIMIT), Ok(None));
    assert_eq!(&stream[..], &tail);
}

#[test]
fn empty_buffer_waits_in_every_state() {
    for state in [None, Some(V311), Some(V5)] {
        assert_eq!(decode(&mut BytesMut::new(), state, NO_LIMIT), Ok(None));
    }
}

#[test]
fn invalid_first_byte_is_rejected_before_the_rest_arrives() {
    // A non-MQTT peer ("GET / HTTP/1.1") is refused from its first byte.
    let mut buf = BytesMut::from(&b"G"[..]);
    assert!(decode(&mut buf, None, NO_LIMIT).is_err());
}
