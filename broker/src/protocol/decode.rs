//! Bytes → [`Packet`]: framing, validation and zero-copy parsing of both protocol versions.
//!
//! The decoder enforces everything the specification makes a property of the bytes alone
//! (flags, lengths, UTF-8, allowed properties, value ranges, packet order of CONNECT) so the rest
//! of the broker can trust a decoded [`Packet`]. Rules that depend on broker state or
//! configuration (topic alias ranges, receive maximum, authorisation, topic filter syntax) are
//! left to the caller.

use bytes::BytesMut;

use super::packet::{
    AckProperties, Auth, ConnAck, Connect, Disconnect, LastWill, Packet, ProtocolVersion, PubAck,
    Publish, QoS, RetainHandling, SubAck, Subscribe, SubscribeFilter, SubscriptionOptions,
    UnsubAck, Unsubscribe,
};
use super::properties::{
    read_ack_properties, read_auth_properties, read_connack_properties, read_connect_properties,
    read_disconnect_properties, read_publish_properties, read_subscribe_properties,
    read_user_properties_only, read_var_int, read_will_properties, Reader,
};
use super::reason::ReasonCode;
use super::topic::{validate_topic_name, TopicError, SHARED_PREFIX};

/// Why bytes could not be decoded into a packet.
///
/// Every variant maps to the reason code the broker should report (in CONNACK before the
/// connection is accepted, in DISCONNECT after) via [`DecodeError::reason_code`]. After any
/// decode error the read buffer is in an unspecified state and the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The announced packet size is above the limit the caller set (§3.1.2.11.4).
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Fixed header plus remaining length.
        size: usize,
        /// The limit passed to [`decode`].
        max: u32,
    },
    /// A variable byte integer continues past its fourth byte (§1.5.5).
    #[error("{0} is a variable byte integer longer than 4 bytes")]
    VarIntTooLong(&'static str),
    /// Packet type 0 (or 15 in 3.1.1) is reserved (§2.1.2).
    #[error("packet type {0} is reserved")]
    ReservedPacketType(u8),
    /// AUTH only exists in MQTT 5.0.
    #[error("AUTH (packet type 15) does not exist in MQTT 3.1.1")]
    AuthInV311,
    /// The low nibble of the fixed header must have its prescribed value (MQTT-2.1.3-1).
    #[error("{packet} fixed header flags must be {expected:#06b}, got {actual:#06b}")]
    InvalidHeaderFlags {
        /// Packet name.
        packet: &'static str,
        /// The only valid value.
        expected: u8,
        /// The received value.
        actual: u8,
    },
    /// PUBLISH with both QoS bits set (MQTT-3.3.1-4).
    #[error("PUBLISH QoS must be 0, 1 or 2, got 3")]
    InvalidPublishQoS,
    /// PUBLISH with DUP set and QoS 0 (MQTT-3.3.1-2).
    #[error("PUBLISH has DUP set with QoS 0")]
    DupWithQoS0,
    /// The first packet of a connection was not CONNECT (MQTT-3.1.0-1).
    #[error("first packet must be CONNECT, got {0}")]
    FirstPacketNotConnect(&'static str),
    /// A second CONNECT on the same connection (MQTT-3.1.0-2).
    #[error("CONNECT received on an already connected connection")]
    SecondConnect,
    /// A field runs past the end of the packet or of its property block.
    #[error("{0} runs past the end of the packet")]
    UnexpectedEnd(&'static str),
    /// A UTF-8 string field is ill-formed UTF-8 (MQTT-1.5.4-1).
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// A UTF-8 string field contains U+0000 (MQTT-1.5.4-2).
    #[error("{0} contains the null character U+0000")]
    NullCharacter(&'static str),
    /// Bytes left over after everything the packet defines.
    #[error("{packet} has {count} unexpected trailing bytes")]
    TrailingBytes {
        /// Packet name.
        packet: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A reason code byte that the packet does not define.
    #[error("{packet} reason code {code:#04x} is not valid")]
    InvalidReasonCode {
        /// Packet name.
        packet: &'static str,
        /// The received byte.
        code: u8,
    },
    /// SUBSCRIBE, UNSUBSCRIBE and QoS > 0 PUBLISH need a non-zero packet identifier
    /// (MQTT-2.2.1-3).
    #[error("{0} packet identifier must not be 0")]
    ZeroPacketId(&'static str),
    /// The CONNECT protocol name is neither "MQTT" nor "MQIsdp" (MQTT-3.1.2-1).
    #[error("CONNECT protocol name must be \"MQTT\", got {0:?}")]
    InvalidProtocolName(String),
    /// A CONNECT for a protocol level this codec does not speak (MQTT-3.1.2-2); the broker can
    /// still answer with CONNACK 0x01 (3.1.1) / 0x84 (5.0).
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolVersion(u8),
    /// The reserved bit of the CONNECT flags is set (MQTT-3.1.2-3).
    #[error("CONNECT reserved flag is set")]
    ConnectReservedFlag,
    /// Will QoS 3 (MQTT-3.1.2-14).
    #[error("CONNECT will QoS must be 0, 1 or 2, got 3")]
    InvalidWillQoS,
    /// Will QoS or Will Retain set while the Will Flag is 0 (MQTT-3.1.2-11/13, 3.1.1).
    #[error("CONNECT has will QoS or will retain set without the will flag")]
    WillFlagsWithoutWill,
    /// 3.1.1 only: the password flag without the user name flag (MQTT-3.1.2-22).
    #[error("CONNECT has the password flag without the user name flag")]
    PasswordWithoutUsername,
    /// The will topic is not a valid topic name.
    #[error("CONNECT will {0}")]
    InvalidWillTopic(TopicError),
    /// Reserved bits of the CONNACK acknowledge flags are set (MQTT-3.2.2-1).
    #[error("CONNACK acknowledge flags {0:#010b} have reserved bits set")]
    ConnAckReservedFlags(u8),
    /// The PUBLISH topic name is not valid (MQTT-3.3.2-1/2, MQTT-4.7.3-1).
    #[error("PUBLISH {0}")]
    InvalidTopicName(TopicError),
    /// 5.0: an empty topic name without a Topic Alias (§3.3.2.3.4).
    #[error("PUBLISH has an empty topic name and no Topic Alias")]
    EmptyTopicWithoutAlias,
    /// Topic Alias 0 is not permitted (MQTT-3.3.2-8).
    #[error("Topic Alias must not be 0")]
    TopicAliasZero,
    /// SUBSCRIBE or UNSUBSCRIBE without any topic filter (MQTT-3.8.3-3, MQTT-3.10.3-2).
    #[error("{0} contains no topic filters")]
    NoTopicFilters(&'static str),
    /// Reserved bits of a subscription options byte are set (MQTT-3.8.3-5; 3.1.1: MQTT-3-8.3-4).
    #[error("SUBSCRIBE options byte {0:#010b} has reserved bits set")]
    SubscribeReservedBits(u8),
    /// Requested QoS 3 in SUBSCRIBE.
    #[error("SUBSCRIBE requested QoS must be 0, 1 or 2, got 3")]
    InvalidSubscribeQoS,
    /// Retain Handling 3 in SUBSCRIBE (§3.8.3.1).
    #[error("SUBSCRIBE retain handling must be 0, 1 or 2, got 3")]
    InvalidRetainHandling,
    /// No Local on a shared subscription (MQTT-3.8.3-4).
    #[error("SUBSCRIBE sets No Local on shared subscription {0:?}")]
    NoLocalOnSharedSubscription(String),
    /// An unknown property identifier (§2.2.2.2).
    #[error("unknown property identifier {0:#04x}")]
    UnknownProperty(u32),
    /// A property that exists but is not allowed in this packet (§2.2.2.2: malformed).
    #[error("property {property} is not allowed in {packet}")]
    PropertyNotAllowed {
        /// Property name.
        property: &'static str,
        /// Packet name.
        packet: &'static str,
    },
    /// A property other than User Property (or Subscription Identifier in PUBLISH) repeated.
    #[error("property {0} appears more than once")]
    DuplicateProperty(&'static str),
    /// A property value out of its allowed range (e.g. Receive Maximum 0).
    #[error("property {property} has value {value}, must be {expected}")]
    InvalidPropertyValue {
        /// Property name.
        property: &'static str,
        /// The received value.
        value: u32,
        /// The allowed values.
        expected: &'static str,
    },
    /// Authentication Data without Authentication Method (§3.1.2.11.10).
    #[error("{0} has Authentication Data without Authentication Method")]
    AuthenticationDataWithoutMethod(&'static str),
    /// The Response Topic is not a valid topic name (MQTT-3.3.2-14).
    #[error("Response Topic: {0}")]
    InvalidResponseTopic(TopicError),
}

impl DecodeError {
    /// The 5.0 reason code that reports this error to the peer.
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            UnsupportedProtocolVersion(_) => ReasonCode::UnsupportedProtocolVersion,
            InvalidTopicName(_) | InvalidWillTopic(_) => ReasonCode::TopicNameInvalid,
            TopicAliasZero => ReasonCode::TopicAliasInvalid,
            FirstPacketNotConnect(_)
            | SecondConnect
            | ZeroPacketId(_)
            | InvalidProtocolName(_)
            | EmptyTopicWithoutAlias
            | NoTopicFilters(_)
            | InvalidRetainHandling
            | NoLocalOnSharedSubscription(_)
            | DuplicateProperty(_)
            | InvalidPropertyValue { .. }
            | AuthenticationDataWithoutMethod(_)
            | InvalidResponseTopic(_) => ReasonCode::ProtocolError,
            VarIntTooLong(_)
            | ReservedPacketType(_)
            | AuthInV311
            | InvalidHeaderFlags { .. }
            | InvalidPublishQoS
            | DupWithQoS0
            | UnexpectedEnd(_)
            | InvalidUtf8(_)
            | NullCharacter(_)
            | TrailingBytes { .. }
            | InvalidReasonCode { .. }
            | ConnectReservedFlag
            | InvalidWillQoS
            | WillFlagsWithoutWill
            | PasswordWithoutUsername
            | ConnAckReservedFlags(_)
            | SubscribeReservedBits(_)
            | InvalidSubscribeQoS
            | UnknownProperty(_)
            | PropertyNotAllowed { .. } => ReasonCode::MalformedPacket,
        }
    }
}

/// Decodes one packet from the front of `buf`.
///
/// * `version` is `None` until CONNECT has been decoded: then only CONNECT is accepted, and the
///   decoded [`Connect::protocol_version`] is what the caller passes from then on.
/// * `max_packet_size` bounds the whole packet (fixed header included); an oversized packet is
///   rejected as soon as its fixed header is readable, without waiting for its body.
///
/// Returns `Ok(None)` and consumes nothing while `buf` holds less than one packet. On success
/// exactly one packet is consumed, and its strings and payload are slices of the consumed bytes.
pub fn decode(
    buf: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let header = FixedHeader::parse(first, version)?;
    let length_bytes = buf.get(1..).unwrap_or_default();
    let Some((remaining, length_len)) = read_var_int(length_bytes, "remaining length")? else {
        return Ok(None);
    };
    let header_len = 1 + length_len;
    let size = header_len + remaining as usize;
    if size > max_packet_size as usize {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    if buf.len() < size {
        return Ok(None);
    }
    let mut frame = buf.split_to(size).freeze();
    let body = Reader::new(frame.split_off(header_len));
    header.decode_body(body).map(Some)
}

/// The control packet types (§2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PacketType {
    Connect,
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    PingReq,
    PingResp,
    Disconnect,
    Auth,
}

impl PacketType {
    fn from_nibble(value: u8) -> Result<PacketType, DecodeError> {
        use PacketType::*;
        Ok(match value {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            other => return Err(DecodeError::ReservedPacketType(other)),
        })
    }

    fn name(self) -> &'static str {
        use PacketType::*;
        match self {
            Connect => "CONNECT",
            ConnAck => "CONNACK",
            Publish => "PUBLISH",
            PubAck => "PUBACK",
            PubRec => "PUBREC",
            PubRel => "PUBREL",
            PubComp => "PUBCOMP",
            Subscribe => "SUBSCRIBE",
            SubAck => "SUBACK",
            Unsubscribe => "UNSUBSCRIBE",
            UnsubAck => "UNSUBACK",
            PingReq => "PINGREQ",
            PingResp => "PINGRESP",
            Disconnect => "DISCONNECT",
            Auth => "AUTH",
        }
    }

    /// The fixed header flags every packet but PUBLISH must carry (§2.1.3).
    fn required_flags(self) -> u8 {
        match self {
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

/// The first byte of a packet, validated against the connection state.
#[derive(Debug, Clone, Copy)]
struct FixedHeader {
    packet_type: PacketType,
    flags: u8,
    /// `None` for the CONNECT that opens the connection.
    version: Option<ProtocolVersion>,
}

impl FixedHeader {
    /// Validates type, flags and packet order from the first byte alone, so a non-MQTT peer is
    /// rejected before anything else is read.
    fn parse(first: u8, version: Option<ProtocolVersion>) -> Result<FixedHeader, DecodeError> {
        let packet_type = PacketType::from_nibble(first >> 4)?;
        let flags = first & 0x0F;
        match (packet_type, version) {
            (PacketType::Connect, Some(_)) => return Err(DecodeError::SecondConnect),
            (PacketType::Connect, None) => {}
            (other, None) => return Err(DecodeError::FirstPacketNotConnect(other.name())),
            (PacketType::Auth, Some(ProtocolVersion::V311)) => return Err(DecodeError::AuthInV311),
            (_, Some(_)) => {}
        }
        if packet_type == PacketType::Publish {
            check_publish_flags(flags)?;
        } else if flags != packet_type.required_flags() {
            return Err(DecodeError::InvalidHeaderFlags {
                packet: packet_type.name(),
                expected: packet_type.required_flags(),
                actual: flags,
            });
        }
        Ok(FixedHeader {
            packet_type,
            flags,
            version,
        })
    }

    fn decode_body(self, r: Reader) -> Result<Packet, DecodeError> {
        use PacketType::*;
        let Some(v) = self.version else {
            return decode_connect(r);
        };
        match self.packet_type {
            Connect => Err(DecodeError::SecondConnect),
            ConnAck => decode_connack(r, v),
            Publish => decode_publish(r, self.flags, v).map(Packet::Publish),
            PubAck => decode_pub_ack(r, v, "PUBACK", PUBACK_CODES).map(Packet::PubAck),
            PubRec => decode_pub_ack(r, v, "PUBREC", PUBACK_CODES).map(Packet::PubRec),
            PubRel => decode_pub_ack(r, v, "PUBREL", PUBREL_CODES).map(Packet::PubRel),
            PubComp => decode_pub_ack(r, v, "PUBCOMP", PUBREL_CODES).map(Packet::PubComp),
            Subscribe => decode_subscribe(r, v),
            SubAck => decode_suback(r, v),
            Unsubscribe => decode_unsubscribe(r, v),
            UnsubAck => decode_unsuback(r, v),
            PingReq => r.expect_end("PINGREQ").map(|()| Packet::PingReq),
            PingResp => r.expect_end("PINGRESP").map(|()| Packet::PingResp),
            Disconnect => decode_disconnect(r, v),
            Auth => decode_auth(r),
        }
    }
}

fn check_publish_flags(flags: u8) -> Result<(), DecodeError> {
    let qos = (flags >> 1) & 0b11;
    if qos == 3 {
        return Err(DecodeError::InvalidPublishQoS);
    }
    if flags & 0b1000 != 0 && qos == 0 {
        return Err(DecodeError::DupWithQoS0);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reason codes each packet may carry (§2.4 and the per-packet tables of chapter 3).
// ---------------------------------------------------------------------------------------------

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

/// Reads a 5.0 reason code byte and checks that `packet` defines it.
fn read_reason_code(
    r: &mut Reader,
    packet: &'static str,
    allowed: &[u8],
) -> Result<ReasonCode, DecodeError> {
    let code = r.u8("reason code")?;
    allowed
        .contains(&code)
        .then(|| ReasonCode::from_u8(code))
        .flatten()
        .ok_or(DecodeError::InvalidReasonCode { packet, code })
}

fn read_packet_id(r: &mut Reader, packet: &'static str) -> Result<u16, DecodeError> {
    match r.u16("packet identifier")? {
        0 => Err(DecodeError::ZeroPacketId(packet)),
        id => Ok(id),
    }
}

fn is_v5(version: ProtocolVersion) -> bool {
    version == ProtocolVersion::V5
}

// ---------------------------------------------------------------------------------------------
// CONNECT
// ---------------------------------------------------------------------------------------------

/// The CONNECT flags byte (§3.1.2.3).
#[derive(Debug, Clone, Copy)]
struct ConnectFlags {
    clean_start: bool,
    will: bool,
    will_qos: QoS,
    will_retain: bool,
    password: bool,
    username: bool,
}

impl ConnectFlags {
    fn parse(byte: u8, version: ProtocolVersion) -> Result<ConnectFlags, DecodeError> {
        if byte & 0b0000_0001 != 0 {
            return Err(DecodeError::ConnectReservedFlag);
        }
        let will = byte & 0b0000_0100 != 0;
        let will_qos = QoS::from_u8((byte >> 3) & 0b11).ok_or(DecodeError::InvalidWillQoS)?;
        let will_retain = byte & 0b0010_0000 != 0;
        let password = byte & 0b0100_0000 != 0;
        let username = byte & 0b1000_0000 != 0;
        if !will && (will_qos != QoS::AtMostOnce || will_retain) {
            return Err(DecodeError::WillFlagsWithoutWill);
        }
        if version == ProtocolVersion::V311 && password && !username {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        Ok(ConnectFlags {
            clean_start: byte & 0b0000_0010 != 0,
            will,
            will_qos,
            will_retain,
            password,
            username,
        })
    }
}

/// Reads protocol name and level; stops early for levels this codec does not speak.
fn read_protocol(r: &mut Reader) -> Result<ProtocolVersion, DecodeError> {
    let name = r.binary("protocol name")?;
    let level = r.u8("protocol level")?;
    match (&name[..], level) {
        (b"MQTT", 4) => Ok(ProtocolVersion::V311),
        (b"MQTT", 5) => Ok(ProtocolVersion::V5),
        (b"MQTT" | b"MQIsdp", level) => Err(DecodeError::UnsupportedProtocolVersion(level)),
        (other, _) => Err(DecodeError::InvalidProtocolName(
            String::from_utf8_lossy(other).into_owned(),
        )),
    }
}

fn decode_connect(mut r: Reader) -> Result<Packet, DecodeError> {
    let version = read_protocol(&mut r)?;
    let flags = ConnectFlags::parse(r.u8("connect flags")?, version)?;
    let keep_alive = r.u16("keep alive")?;
    let properties = if is_v5(version) {
        read_connect_properties(&mut r)?
    } else {
        Default::default()
    };
    let client_id = r.string("client identifier")?;
    let will = if flags.will {
        Some(read_will(&mut r, flags, version)?)
    } else {
        None
    };
    let username = if flags.username {
        Some(r.string("user name")?)
    } else {
        None
    };
    let password = if flags.password {
        Some(r.binary("password")?)
    } else {
        None
    };
    r.expect_end("CONNECT")?;
    Ok(Packet::Connect(Box::new(Connect {
        protocol_version: version,
        clean_start: flags.clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })))
}

/// Reads will properties (5.0), will topic and will payload, in that order (§3.1.3).
fn read_will(
    r: &mut Reader,
    flags: ConnectFlags,
    version: ProtocolVersion,
) -> Result<LastWill, DecodeError> {
    let properties = if is_v5(version) {
        read_will_properties(r)?
    } else {
        Default::default()
    };
    let topic = r.string("will topic")?;
    validate_topic_name(&topic).map_err(DecodeError::InvalidWillTopic)?;
    let payload = r.binary("will payload")?;
    Ok(LastWill {
        topic,
        payload,
        qos: flags.will_qos,
        retain: flags.will_retain,
        properties,
    })
}

// ---------------------------------------------------------------------------------------------
// CONNACK
// ---------------------------------------------------------------------------------------------

/// The six 3.1.1 CONNACK return codes (§3.2.2.3 of 3.1.1) as 5.0 reason codes.
fn v311_connack_code(code: u8) -> Option<ReasonCode> {
    Some(match code {
        0 => ReasonCode::Success,
        1 => ReasonCode::UnsupportedProtocolVersion,
        2 => ReasonCode::ClientIdentifierNotValid,
        3 => ReasonCode::ServerUnavailable,
        4 => ReasonCode::BadUserNameOrPassword,
        5 => ReasonCode::NotAuthorized,
        _ => return None,
    })
}

fn decode_connack(mut r: Reader, version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let flags = r.u8("acknowledge flags")?;
    if flags & 0b1111_1110 != 0 {
        return Err(DecodeError::ConnAckReservedFlags(flags));
    }
    let (reason_code, properties) = if is_v5(version) {
        let reason_code = read_reason_code(&mut r, "CONNACK", CONNACK_CODES)?;
        (reason_code, read_connack_properties(&mut r)?)
    } else {
        let code = r.u8("return code")?;
        let reason_code = v311_connack_code(code).ok_or(DecodeError::InvalidReasonCode {
            packet: "CONNACK",
            code,
        })?;
        (reason_code, Default::default())
    };
    r.expect_end("CONNACK")?;
    Ok(Packet::ConnAck(ConnAck {
        session_present: flags & 1 != 0,
        reason_code,
        properties,
    }))
}

// ---------------------------------------------------------------------------------------------
// PUBLISH and its acknowledgements
// ---------------------------------------------------------------------------------------------

fn decode_publish(
    mut r: Reader,
    flags: u8,
    version: ProtocolVersion,
) -> Result<Publish, DecodeError> {
    let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidPublishQoS)?;
    let topic = r.string("topic name")?;
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(read_packet_id(&mut r, "PUBLISH")?)
    };
    let properties = if is_v5(version) {
        read_publish_properties(&mut r)?
    } else {
        Default::default()
    };
    check_publish_topic(&topic, properties.topic_alias, version)?;
    Ok(Publish {
        dup: flags & 0b1000 != 0,
        qos,
        retain: flags & 0b0001 != 0,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })
}

/// An empty topic name is only allowed in 5.0, and only with a Topic Alias (§3.3.2.3.4).
fn check_publish_topic(
    topic: &str,
    alias: Option<u16>,
    version: ProtocolVersion,
) -> Result<(), DecodeError> {
    if topic.is_empty() && is_v5(version) {
        return match alias {
            Some(_) => Ok(()),
            None => Err(DecodeError::EmptyTopicWithoutAlias),
        };
    }
    validate_topic_name(topic).map_err(DecodeError::InvalidTopicName)
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP; 5.0 allows dropping the reason code and properties.
fn decode_pub_ack(
    mut r: Reader,
    version: ProtocolVersion,
    packet: &'static str,
    codes: &[u8],
) -> Result<PubAck, DecodeError> {
    let packet_id = r.u16("packet identifier")?;
    let mut ack = PubAck::success(packet_id);
    if is_v5(version) && !r.is_empty() {
        ack.reason_code = read_reason_code(&mut r, packet, codes)?;
        if !r.is_empty() {
            ack.properties = read_ack_properties(&mut r, packet)?;
        }
    }
    r.expect_end(packet)?;
    Ok(ack)
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK
// ---------------------------------------------------------------------------------------------

fn decode_subscribe(mut r: Reader, version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let packet_id = read_packet_id(&mut r, "SUBSCRIBE")?;
    let properties = if is_v5(version) {
        read_subscribe_properties(&mut r)?
    } else {
        Default::default()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string("topic filter")?;
        let options = parse_subscription_options(r.u8("subscription options")?, version)?;
        if options.no_local && filter.starts_with(SHARED_PREFIX) {
            return Err(DecodeError::NoLocalOnSharedSubscription(filter.to_string()));
        }
        filters.push(SubscribeFilter { filter, options });
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters("SUBSCRIBE"));
    }
    Ok(Packet::Subscribe(Subscribe {
        packet_id,
        properties,
        filters,
    }))
}

/// The options byte after each SUBSCRIBE filter (§3.8.3.1; in 3.1.1 only the QoS bits exist).
fn parse_subscription_options(
    byte: u8,
    version: ProtocolVersion,
) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = if is_v5(version) {
        0b1100_0000
    } else {
        0b1111_1100
    };
    if byte & reserved != 0 {
        return Err(DecodeError::SubscribeReservedBits(byte));
    }
    let qos = QoS::from_u8(byte & 0b11).ok_or(DecodeError::InvalidSubscribeQoS)?;
    let retain_handling = match (byte >> 4) & 0b11 {
        0 => RetainHandling::SendAlways,
        1 => RetainHandling::SendIfNew,
        2 => RetainHandling::Never,
        _ => return Err(DecodeError::InvalidRetainHandling),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & 0b0100 != 0,
        retain_as_published: byte & 0b1000 != 0,
        retain_handling,
    })
}

/// The 3.1.1 SUBACK return codes: granted QoS 0..2 or 0x80 (failure).
fn v311_suback_code(code: u8) -> Option<ReasonCode> {
    Some(match code {
        0x00 => ReasonCode::Success,
        0x01 => ReasonCode::GrantedQoS1,
        0x02 => ReasonCode::GrantedQoS2,
        0x80 => ReasonCode::UnspecifiedError,
        _ => return None,
    })
}

fn decode_suback(mut r: Reader, version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let packet_id = r.u16("packet identifier")?;
    let properties = if is_v5(version) {
        read_ack_properties(&mut r, "SUBACK")?
    } else {
        AckProperties::default()
    };
    let mut reason_codes = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        let code = if is_v5(version) {
            read_reason_code(&mut r, "SUBACK", SUBACK_CODES)?
        } else {
            let code = r.u8("return code")?;
            v311_suback_code(code).ok_or(DecodeError::InvalidReasonCode {
                packet: "SUBACK",
                code,
            })?
        };
        reason_codes.push(code);
    }
    Ok(Packet::SubAck(SubAck {
        packet_id,
        properties,
        reason_codes,
    }))
}

fn decode_unsubscribe(mut r: Reader, version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let packet_id = read_packet_id(&mut r, "UNSUBSCRIBE")?;
    let user_properties = if is_v5(version) {
        read_user_properties_only(&mut r, "UNSUBSCRIBE")?
    } else {
        Vec::new()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string("topic filter")?);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters("UNSUBSCRIBE"));
    }
    Ok(Packet::Unsubscribe(Unsubscribe {
        packet_id,
        user_properties,
        filters,
    }))
}

fn decode_unsuback(mut r: Reader, version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let packet_id = r.u16("packet identifier")?;
    let mut ack = UnsubAck {
        packet_id,
        properties: AckProperties::default(),
        reason_codes: Vec::new(),
    };
    if is_v5(version) {
        ack.properties = read_ack_properties(&mut r, "UNSUBACK")?;
        while !r.is_empty() {
            let code = read_reason_code(&mut r, "UNSUBACK", UNSUBACK_CODES)?;
            ack.reason_codes.push(code);
        }
    }
    r.expect_end("UNSUBACK")?;
    Ok(Packet::UnsubAck(ack))
}

// ---------------------------------------------------------------------------------------------
// DISCONNECT / AUTH
// ---------------------------------------------------------------------------------------------

/// 5.0 DISCONNECT: an empty body means Success; a lone reason code means no properties.
fn decode_disconnect(mut r: Reader, version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let mut disconnect = Disconnect::default();
    if is_v5(version) && !r.is_empty() {
        disconnect.reason_code = read_reason_code(&mut r, "DISCONNECT", DISCONNECT_CODES)?;
        if !r.is_empty() {
            disconnect.properties = read_disconnect_properties(&mut r)?;
        }
    }
    r.expect_end("DISCONNECT")?;
    Ok(Packet::Disconnect(disconnect))
}

/// AUTH (5.0 only): an empty body means Success; a lone reason code is accepted like in
/// DISCONNECT.
fn decode_auth(mut r: Reader) -> Result<Packet, DecodeError> {
    let mut auth = Auth::default();
    if !r.is_empty() {
        auth.reason_code = read_reason_code(&mut r, "AUTH", AUTH_CODES)?;
        if !r.is_empty() {
            auth.properties = read_auth_properties(&mut r)?;
        }
    }
    r.expect_end("AUTH")?;
    Ok(Packet::Auth(auth))
}
