//! [`Packet`] → bytes, for either protocol version.
//!
//! Each packet body is described once, generically over a [`Sink`]: a counting pass measures it
//! and validates every length, then the buffer is reserved once and a writing pass appends it.
//! Nothing is allocated on the way, which matters for PUBLISH: the broker encodes one per
//! subscriber.

use bytes::{BufMut, BytesMut};

use super::packet::{
    Auth, ConnAck, Connect, Disconnect, LastWill, Packet, ProtocolVersion, PubAck, Publish, QoS,
    RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use super::properties::{is_empty, put_var_int, var_int_len, Counter, Sink, Writer};
use super::reason::ReasonCode;
use super::MAX_REMAINING_LENGTH;

/// Why a packet could not be encoded. Nothing is appended to the buffer in that case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The body is longer than the Remaining Length can express (268,435,455 bytes).
    #[error("packet body of {0} bytes exceeds the maximum remaining length of 268435455")]
    PacketTooLarge(usize),
    /// The packet type does not exist in the requested protocol version (AUTH in 3.1.1).
    #[error("{packet} cannot be sent in MQTT {version}")]
    NotInVersion {
        /// Packet name.
        packet: &'static str,
        /// The version the connection speaks.
        version: &'static str,
    },
    /// A CONNECT whose `protocol_version` differs from the version it is encoded for.
    #[error("CONNECT for {packet:?} cannot be encoded as {requested:?}")]
    VersionMismatch {
        /// The version in the CONNECT.
        packet: ProtocolVersion,
        /// The version passed to [`encode`].
        requested: ProtocolVersion,
    },
    /// A string or binary field longer than its 16-bit length prefix allows.
    #[error("{what} is {len} bytes long, the maximum is 65535")]
    FieldTooLong {
        /// Field name.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A value above the variable byte integer maximum (268,435,455).
    #[error("{what} value {value} exceeds the variable byte integer maximum 268435455")]
    VarIntOutOfRange {
        /// Field name.
        what: &'static str,
        /// The value.
        value: usize,
    },
    /// A QoS 1 or 2 PUBLISH without a packet identifier.
    #[error("PUBLISH with QoS {0:?} has no packet identifier")]
    MissingPacketId(QoS),
    /// 3.1.1 forbids a password without a user name (MQTT-3.1.2-22).
    #[error("MQTT 3.1.1 CONNECT cannot carry a password without a user name")]
    PasswordWithoutUsername,
}

/// Appends `packet` encoded for `version` to `buf` and returns the number of bytes written.
///
/// Fields that do not exist in 3.1.1 (properties, most reason codes) are left out; 5.0 reason
/// codes are mapped onto the 3.1.1 CONNACK and SUBACK return codes. In 5.0 the short forms are
/// used when possible (acknowledgements and DISCONNECT/AUTH with Success and no properties).
/// A QoS 0 PUBLISH is written without packet identifier and with DUP cleared (MQTT-3.3.1-2).
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<usize, EncodeError> {
    check_version(packet, version)?;
    let mut counter = Counter::default();
    write_body(packet, version, &mut counter);
    let remaining = counter.finish()?;
    if remaining > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge(remaining));
    }
    let total = 1 + var_int_len(remaining) + remaining;
    buf.reserve(total);
    buf.put_u8(first_byte(packet));
    put_var_int(buf, remaining);
    let start = buf.len();
    write_body(packet, version, &mut Writer::new(buf));
    debug_assert_eq!(buf.len() - start, remaining, "{} length", packet.kind());
    Ok(total)
}

/// Total encoded size of `publish` (fixed header included), without encoding it.
///
/// Lets the broker compare against the client's Maximum Packet Size before committing to a
/// delivery. Fields that cannot be encoded at all are still counted; [`encode`] reports them.
pub fn publish_len(publish: &Publish, version: ProtocolVersion) -> usize {
    let mut counter = Counter::default();
    write_publish(publish, version, &mut counter);
    let remaining = counter.len();
    1 + var_int_len(remaining) + remaining
}

fn check_version(packet: &Packet, version: ProtocolVersion) -> Result<(), EncodeError> {
    match packet {
        Packet::Auth(_) if version == ProtocolVersion::V311 => Err(EncodeError::NotInVersion {
            packet: "AUTH",
            version: "3.1.1",
        }),
        Packet::Connect(connect) if connect.protocol_version != version => {
            Err(EncodeError::VersionMismatch {
                packet: connect.protocol_version,
                requested: version,
            })
        }
        Packet::Connect(connect)
            if version == ProtocolVersion::V311
                && connect.password.is_some()
                && connect.username.is_none() =>
        {
            Err(EncodeError::PasswordWithoutUsername)
        }
        _ => Ok(()),
    }
}

/// Packet type and flags (§2.1.2, §2.1.3).
fn first_byte(packet: &Packet) -> u8 {
    match packet {
        Packet::Connect(_) => 0x10,
        Packet::ConnAck(_) => 0x20,
        Packet::Publish(publish) => publish_first_byte(publish),
        Packet::PubAck(_) => 0x40,
        Packet::PubRec(_) => 0x50,
        Packet::PubRel(_) => 0x62,
        Packet::PubComp(_) => 0x70,
        Packet::Subscribe(_) => 0x82,
        Packet::SubAck(_) => 0x90,
        Packet::Unsubscribe(_) => 0xA2,
        Packet::UnsubAck(_) => 0xB0,
        Packet::PingReq => 0xC0,
        Packet::PingResp => 0xD0,
        Packet::Disconnect(_) => 0xE0,
        Packet::Auth(_) => 0xF0,
    }
}

fn publish_first_byte(publish: &Publish) -> u8 {
    let qos = publish.qos as u8;
    let dup = publish.dup && publish.qos != QoS::AtMostOnce;
    0x30 | (u8::from(dup) << 3) | (qos << 1) | u8::from(publish.retain)
}

fn is_v5(version: ProtocolVersion) -> bool {
    version == ProtocolVersion::V5
}

/// Describes the variable header and payload of `packet` to `s`.
fn write_body<S: Sink>(packet: &Packet, version: ProtocolVersion, s: &mut S) {
    match packet {
        Packet::Connect(connect) => write_connect(connect, version, s),
        Packet::ConnAck(ack) => write_connack(ack, version, s),
        Packet::Publish(publish) => write_publish(publish, version, s),
        Packet::PubAck(ack) | Packet::PubRec(ack) | Packet::PubRel(ack) | Packet::PubComp(ack) => {
            write_pub_ack(ack, version, s)
        }
        Packet::Subscribe(subscribe) => write_subscribe(subscribe, version, s),
        Packet::SubAck(ack) => write_suback(ack, version, s),
        Packet::Unsubscribe(unsubscribe) => write_unsubscribe(unsubscribe, version, s),
        Packet::UnsubAck(ack) => write_unsuback(ack, version, s),
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(disconnect) => write_disconnect(disconnect, version, s),
        Packet::Auth(auth) => write_auth(auth, s),
    }
}

fn connect_flags(connect: &Connect) -> u8 {
    let mut flags = 0u8;
    if connect.clean_start {
        flags |= 0b0000_0010;
    }
    if let Some(will) = &connect.will {
        flags |= 0b0000_0100 | ((will.qos as u8) << 3);
        if will.retain {
            flags |= 0b0010_0000;
        }
    }
    if connect.password.is_some() {
        flags |= 0b0100_0000;
    }
    if connect.username.is_some() {
        flags |= 0b1000_0000;
    }
    flags
}

fn write_connect<S: Sink>(connect: &Connect, version: ProtocolVersion, s: &mut S) {
    s.write_string("MQTT", "protocol name");
    s.write_u8(version.level());
    s.write_u8(connect_flags(connect));
    s.write_u16(connect.keep_alive);
    if is_v5(version) {
        s.write_properties(&connect.properties);
    }
    s.write_string(&connect.client_id, "client identifier");
    if let Some(will) = &connect.will {
        write_will(will, version, s);
    }
    if let Some(username) = &connect.username {
        s.write_string(username, "user name");
    }
    if let Some(password) = &connect.password {
        s.write_binary(password, "password");
    }
}

fn write_will<S: Sink>(will: &LastWill, version: ProtocolVersion, s: &mut S) {
    if is_v5(version) {
        s.write_properties(&will.properties);
    }
    s.write_string(&will.topic, "will topic");
    s.write_binary(&will.payload, "will payload");
}

fn write_connack<S: Sink>(ack: &ConnAck, version: ProtocolVersion, s: &mut S) {
    s.write_u8(u8::from(ack.session_present));
    if is_v5(version) {
        s.write_u8(ack.reason_code.as_u8());
        s.write_properties(&ack.properties);
    } else {
        s.write_u8(ack.reason_code.to_v311_connack());
    }
}

fn write_publish<S: Sink>(publish: &Publish, version: ProtocolVersion, s: &mut S) {
    s.write_string(&publish.topic, "topic name");
    if publish.qos != QoS::AtMostOnce {
        match publish.packet_id {
            Some(id) => s.write_u16(id),
            None => s.fail(EncodeError::MissingPacketId(publish.qos)),
        }
    }
    if is_v5(version) {
        s.write_properties(&publish.properties);
    }
    s.write_raw(&publish.payload);
}

/// PUBACK/PUBREC/PUBREL/PUBCOMP: 5.0 drops properties, then the reason code, when they carry
/// nothing (§3.4.2.1).
fn write_pub_ack<S: Sink>(ack: &PubAck, version: ProtocolVersion, s: &mut S) {
    s.write_u16(ack.packet_id);
    if !is_v5(version) {
        return;
    }
    let no_properties = is_empty(&ack.properties);
    if ack.reason_code == ReasonCode::Success && no_properties {
        return;
    }
    s.write_u8(ack.reason_code.as_u8());
    if !no_properties {
        s.write_properties(&ack.properties);
    }
}

fn options_byte(options: &SubscriptionOptions, version: ProtocolVersion) -> u8 {
    let qos = options.qos as u8;
    if !is_v5(version) {
        return qos;
    }
    let retain_handling = match options.retain_handling {
        RetainHandling::SendAlways => 0,
        RetainHandling::SendIfNew => 1,
        RetainHandling::Never => 2,
    };
    qos | (u8::from(options.no_local) << 2)
        | (u8::from(options.retain_as_published) << 3)
        | (retain_handling << 4)
}

fn write_subscribe<S: Sink>(subscribe: &Subscribe, version: ProtocolVersion, s: &mut S) {
    s.write_u16(subscribe.packet_id);
    if is_v5(version) {
        s.write_properties(&subscribe.properties);
    }
    for filter in &subscribe.filters {
        s.write_string(&filter.filter, "topic filter");
        s.write_u8(options_byte(&filter.options, version));
    }
}

fn write_suback<S: Sink>(ack: &SubAck, version: ProtocolVersion, s: &mut S) {
    s.write_u16(ack.packet_id);
    if is_v5(version) {
        s.write_properties(&ack.properties);
    }
    for code in &ack.reason_codes {
        s.write_u8(if is_v5(version) {
            code.as_u8()
        } else {
            code.to_v311_suback()
        });
    }
}

fn write_unsubscribe<S: Sink>(unsubscribe: &Unsubscribe, version: ProtocolVersion, s: &mut S) {
    s.write_u16(unsubscribe.packet_id);
    if is_v5(version) {
        s.write_properties(unsubscribe.user_properties.as_slice());
    }
    for filter in &unsubscribe.filters {
        s.write_string(filter, "topic filter");
    }
}

/// 3.1.1 UNSUBACK carries only the packet identifier.
fn write_unsuback<S: Sink>(ack: &UnsubAck, version: ProtocolVersion, s: &mut S) {
    s.write_u16(ack.packet_id);
    if !is_v5(version) {
        return;
    }
    s.write_properties(&ack.properties);
    for code in &ack.reason_codes {
        s.write_u8(code.as_u8());
    }
}

/// 3.1.1 DISCONNECT has no body; 5.0 drops properties, then the reason code, when they carry
/// nothing (§3.14.2.1).
fn write_disconnect<S: Sink>(disconnect: &Disconnect, version: ProtocolVersion, s: &mut S) {
    if !is_v5(version) {
        return;
    }
    let no_properties = is_empty(&disconnect.properties);
    if disconnect.reason_code == ReasonCode::Success && no_properties {
        return;
    }
    s.write_u8(disconnect.reason_code.as_u8());
    if !no_properties {
        s.write_properties(&disconnect.properties);
    }
}

/// AUTH with Success and no properties has an empty body (§3.15.2.1); otherwise the reason code
/// and the property block are always written.
fn write_auth<S: Sink>(auth: &Auth, s: &mut S) {
    if auth.reason_code == ReasonCode::Success && is_empty(&auth.properties) {
        return;
    }
    s.write_u8(auth.reason_code.as_u8());
    s.write_properties(&auth.properties);
}
