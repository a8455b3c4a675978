//! The primitive data types of the wire format (§1.5) and MQTT 5.0 properties (§2.2.2).
//!
//! Reading goes through [`Reader`], a bounds-checked cursor over the packet's `Bytes` that hands
//! out zero-copy slices. Writing goes through the [`Sink`] trait, implemented twice: [`Counter`]
//! measures (and validates) a packet, [`Writer`] appends it to a buffer. Every packet and property
//! set is described once, generically over the sink, so the measured length and the written bytes
//! cannot disagree.

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::decode::DecodeError;
use super::encode::EncodeError;
use super::packet::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PublishProperties, SubscribeProperties, UserProperty, WillProperties,
};
use super::topic::validate_topic_name;
use super::MAX_REMAINING_LENGTH;

/// Property identifiers (§2.2.2.2).
pub(crate) mod id {
    /// Payload Format Indicator (byte): PUBLISH, will.
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    /// Message Expiry Interval (four-byte integer): PUBLISH, will.
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    /// Content Type (string): PUBLISH, will.
    pub const CONTENT_TYPE: u8 = 0x03;
    /// Response Topic (string): PUBLISH, will.
    pub const RESPONSE_TOPIC: u8 = 0x08;
    /// Correlation Data (binary): PUBLISH, will.
    pub const CORRELATION_DATA: u8 = 0x09;
    /// Subscription Identifier (variable byte integer): PUBLISH, SUBSCRIBE.
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    /// Session Expiry Interval (four-byte integer): CONNECT, CONNACK, DISCONNECT.
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    /// Assigned Client Identifier (string): CONNACK.
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    /// Server Keep Alive (two-byte integer): CONNACK.
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    /// Authentication Method (string): CONNECT, CONNACK, AUTH.
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    /// Authentication Data (binary): CONNECT, CONNACK, AUTH.
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    /// Request Problem Information (byte): CONNECT.
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    /// Will Delay Interval (four-byte integer): will.
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    /// Request Response Information (byte): CONNECT.
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    /// Response Information (string): CONNACK.
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    /// Server Reference (string): CONNACK, DISCONNECT.
    pub const SERVER_REFERENCE: u8 = 0x1C;
    /// Reason String (string): every acknowledgement, DISCONNECT, AUTH.
    pub const REASON_STRING: u8 = 0x1F;
    /// Receive Maximum (two-byte integer): CONNECT, CONNACK.
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    /// Topic Alias Maximum (two-byte integer): CONNECT, CONNACK.
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    /// Topic Alias (two-byte integer): PUBLISH.
    pub const TOPIC_ALIAS: u8 = 0x23;
    /// Maximum QoS (byte): CONNACK.
    pub const MAXIMUM_QOS: u8 = 0x24;
    /// Retain Available (byte): CONNACK.
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    /// User Property (string pair): every packet with properties.
    pub const USER_PROPERTY: u8 = 0x26;
    /// Maximum Packet Size (four-byte integer): CONNECT, CONNACK.
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    /// Wildcard Subscription Available (byte): CONNACK.
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    /// Subscription Identifier Available (byte): CONNACK.
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    /// Shared Subscription Available (byte): CONNACK.
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// Largest value a Two Byte length prefix can express (strings and binary data).
pub(crate) const MAX_FIELD_LEN: usize = u16::MAX as usize;

// ---------------------------------------------------------------------------------------------
// Variable byte integers
// ---------------------------------------------------------------------------------------------

/// Reads a variable byte integer from the start of `bytes` (§1.5.5).
///
/// Returns `Ok(None)` when `bytes` ends before the last byte of the integer, and the value with
/// the number of bytes it used otherwise. A fourth byte with the continuation bit set is a
/// malformed packet. Non-minimal encodings (such as `0x80 0x00`) are accepted: the minimum-length
/// rule (MQTT-1.5.5-1) binds the sender and costs nothing to tolerate.
pub(crate) fn read_var_int(
    bytes: &[u8],
    what: &'static str,
) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (index, &byte) in bytes.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok(Some((value, index + 1)));
        }
    }
    if bytes.len() >= 4 {
        return Err(DecodeError::VarIntTooLong(what));
    }
    Ok(None)
}

/// Number of bytes the variable byte integer encoding of `value` takes.
pub(crate) fn var_int_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `value` as a variable byte integer; `value` must not exceed 268,435,455.
pub(crate) fn put_var_int(buf: &mut BytesMut, value: usize) {
    debug_assert!(value <= MAX_REMAINING_LENGTH);
    let mut rest = value;
    loop {
        // Masked to seven bits, so the cast cannot truncate.
        let mut byte = (rest & 0x7F) as u8;
        rest >>= 7;
        if rest > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if rest == 0 {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// A bounds-checked cursor over one packet body.
///
/// Every read names the field it reads so that a packet that ends early or carries a bad string
/// produces an error saying which field was wrong. Strings and binary data are returned as
/// slices of the packet's buffer, never copied.
#[derive(Debug)]
pub(crate) struct Reader {
    data: Bytes,
    pos: usize,
}

impl Reader {
    /// Starts reading at the beginning of `data`.
    pub(crate) fn new(data: Bytes) -> Reader {
        Reader { data, pos: 0 }
    }

    /// Bytes left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Whether everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Fails with a malformed-packet error if anything is left (trailing garbage).
    pub(crate) fn expect_end(&self, packet: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { packet, count }),
        }
    }

    /// Takes the next `len` bytes as a zero-copy slice.
    pub(crate) fn bytes(&mut self, len: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        if len > self.remaining() {
            return Err(DecodeError::UnexpectedEnd(what));
        }
        let slice = self.data.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(slice)
    }

    /// Takes everything that is left (a PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        let slice = self.data.slice(self.pos..);
        self.pos = self.data.len();
        slice
    }

    /// Reads a byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let [byte] = self.array::<1>(what)?;
        Ok(byte)
    }

    /// Reads a big-endian Two Byte Integer.
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian Four Byte Integer.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a Variable Byte Integer.
    pub(crate) fn var_int(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let tail = self.data.get(self.pos..).unwrap_or_default();
        match read_var_int(tail, what)? {
            Some((value, used)) => {
                self.pos += used;
                Ok(value)
            }
            None => Err(DecodeError::UnexpectedEnd(what)),
        }
    }

    /// Reads Binary Data: a two-byte length and that many bytes.
    pub(crate) fn binary(&mut self, what: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u16(what)?;
        self.bytes(usize::from(len), what)
    }

    /// Reads a UTF-8 Encoded String, rejecting ill-formed UTF-8 and U+0000 (MQTT-1.5.4-1/2).
    pub(crate) fn string(&mut self, what: &'static str) -> Result<ByteString, DecodeError> {
        let raw = self.binary(what)?;
        if raw.contains(&0) {
            return Err(DecodeError::NullCharacter(what));
        }
        ByteString::try_from(raw).map_err(|_| DecodeError::InvalidUtf8(what))
    }

    /// Splits off the next `len` bytes as their own reader (a property block).
    pub(crate) fn sub_reader(
        &mut self,
        len: usize,
        what: &'static str,
    ) -> Result<Reader, DecodeError> {
        Ok(Reader::new(self.bytes(len, what)?))
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self
            .data
            .get(self.pos..self.pos + N)
            .ok_or(DecodeError::UnexpectedEnd(what))?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        self.pos += N;
        Ok(out)
    }
}

/// One decoded property, before it is stored into the packet's property struct.
#[derive(Debug)]
pub(crate) enum Property {
    PayloadFormatIndicator(u8),
    MessageExpiryInterval(u32),
    ContentType(ByteString),
    ResponseTopic(ByteString),
    CorrelationData(Bytes),
    SubscriptionIdentifier(u32),
    SessionExpiryInterval(u32),
    AssignedClientIdentifier(ByteString),
    ServerKeepAlive(u16),
    AuthenticationMethod(ByteString),
    AuthenticationData(Bytes),
    RequestProblemInformation(u8),
    WillDelayInterval(u32),
    RequestResponseInformation(u8),
    ResponseInformation(ByteString),
    ServerReference(ByteString),
    ReasonString(ByteString),
    ReceiveMaximum(u16),
    TopicAliasMaximum(u16),
    TopicAlias(u16),
    MaximumQoS(u8),
    RetainAvailable(u8),
    User(ByteString, ByteString),
    MaximumPacketSize(u32),
    WildcardSubscriptionAvailable(u8),
    SubscriptionIdentifierAvailable(u8),
    SharedSubscriptionAvailable(u8),
}

impl Property {
    /// Reads the value of property `id` and checks the range rules that hold in every packet.
    fn read(id: u32, r: &mut Reader) -> Result<Property, DecodeError> {
        use Property as P;
        let Ok(id) = u8::try_from(id) else {
            return Err(DecodeError::UnknownProperty(id));
        };
        let name = property_name(id).ok_or(DecodeError::UnknownProperty(u32::from(id)))?;
        let property = match id {
            id::PAYLOAD_FORMAT_INDICATOR => P::PayloadFormatIndicator(read_flag(r, name)?),
            id::MESSAGE_EXPIRY_INTERVAL => P::MessageExpiryInterval(r.u32(name)?),
            id::CONTENT_TYPE => P::ContentType(r.string(name)?),
            id::RESPONSE_TOPIC => P::ResponseTopic(read_response_topic(r)?),
            id::CORRELATION_DATA => P::CorrelationData(r.binary(name)?),
            id::SUBSCRIPTION_IDENTIFIER => {
                P::SubscriptionIdentifier(nonzero_u32(r.var_int(name)?, name, "1 to 268,435,455")?)
            }
            id::SESSION_EXPIRY_INTERVAL => P::SessionExpiryInterval(r.u32(name)?),
            id::ASSIGNED_CLIENT_IDENTIFIER => P::AssignedClientIdentifier(r.string(name)?),
            id::SERVER_KEEP_ALIVE => P::ServerKeepAlive(r.u16(name)?),
            id::AUTHENTICATION_METHOD => P::AuthenticationMethod(r.string(name)?),
            id::AUTHENTICATION_DATA => P::AuthenticationData(r.binary(name)?),
            id::REQUEST_PROBLEM_INFORMATION => P::RequestProblemInformation(read_flag(r, name)?),
            id::WILL_DELAY_INTERVAL => P::WillDelayInterval(r.u32(name)?),
            id::REQUEST_RESPONSE_INFORMATION => P::RequestResponseInformation(read_flag(r, name)?),
            id::RESPONSE_INFORMATION => P::ResponseInformation(r.string(name)?),
            id::SERVER_REFERENCE => P::ServerReference(r.string(name)?),
            id::REASON_STRING => P::ReasonString(r.string(name)?),
            id::RECEIVE_MAXIMUM => P::ReceiveMaximum(nonzero_u16(r.u16(name)?, name)?),
            id::TOPIC_ALIAS_MAXIMUM => P::TopicAliasMaximum(r.u16(name)?),
            id::TOPIC_ALIAS => match r.u16(name)? {
                0 => return Err(DecodeError::TopicAliasZero),
                alias => P::TopicAlias(alias),
            },
            id::MAXIMUM_QOS => P::MaximumQoS(read_flag(r, name)?),
            id::RETAIN_AVAILABLE => P::RetainAvailable(read_flag(r, name)?),
            id::USER_PROPERTY => P::User(
                r.string("User Property name")?,
                r.string("User Property value")?,
            ),
            id::MAXIMUM_PACKET_SIZE => {
                P::MaximumPacketSize(nonzero_u32(r.u32(name)?, name, "at least 1")?)
            }
            id::WILDCARD_SUBSCRIPTION_AVAILABLE => {
                P::WildcardSubscriptionAvailable(read_flag(r, name)?)
            }
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                P::SubscriptionIdentifierAvailable(read_flag(r, name)?)
            }
            id::SHARED_SUBSCRIPTION_AVAILABLE => {
                P::SharedSubscriptionAvailable(read_flag(r, name)?)
            }
            other => return Err(DecodeError::UnknownProperty(u32::from(other))),
        };
        Ok(property)
    }

    /// The property identifier.
    fn id(&self) -> u8 {
        use Property as P;
        match self {
            P::PayloadFormatIndicator(_) => id::PAYLOAD_FORMAT_INDICATOR,
            P::MessageExpiryInterval(_) => id::MESSAGE_EXPIRY_INTERVAL,
            P::ContentType(_) => id::CONTENT_TYPE,
            P::ResponseTopic(_) => id::RESPONSE_TOPIC,
            P::CorrelationData(_) => id::CORRELATION_DATA,
            P::SubscriptionIdentifier(_) => id::SUBSCRIPTION_IDENTIFIER,
            P::SessionExpiryInterval(_) => id::SESSION_EXPIRY_INTERVAL,
            P::AssignedClientIdentifier(_) => id::ASSIGNED_CLIENT_IDENTIFIER,
            P::ServerKeepAlive(_) => id::SERVER_KEEP_ALIVE,
            P::AuthenticationMethod(_) => id::AUTHENTICATION_METHOD,
            P::AuthenticationData(_) => id::AUTHENTICATION_DATA,
            P::RequestProblemInformation(_) => id::REQUEST_PROBLEM_INFORMATION,
            P::WillDelayInterval(_) => id::WILL_DELAY_INTERVAL,
            P::RequestResponseInformation(_) => id::REQUEST_RESPONSE_INFORMATION,
            P::ResponseInformation(_) => id::RESPONSE_INFORMATION,
            P::ServerReference(_) => id::SERVER_REFERENCE,
            P::ReasonString(_) => id::REASON_STRING,
            P::ReceiveMaximum(_) => id::RECEIVE_MAXIMUM,
            P::TopicAliasMaximum(_) => id::TOPIC_ALIAS_MAXIMUM,
            P::TopicAlias(_) => id::TOPIC_ALIAS,
            P::MaximumQoS(_) => id::MAXIMUM_QOS,
            P::RetainAvailable(_) => id::RETAIN_AVAILABLE,
            P::User(..) => id::USER_PROPERTY,
            P::MaximumPacketSize(_) => id::MAXIMUM_PACKET_SIZE,
            P::WildcardSubscriptionAvailable(_) => id::WILDCARD_SUBSCRIPTION_AVAILABLE,
            P::SubscriptionIdentifierAvailable(_) => id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            P::SharedSubscriptionAvailable(_) => id::SHARED_SUBSCRIPTION_AVAILABLE,
        }
    }

    /// The error for a property that exists but is not allowed in `packet` (§2.2.2.2: a
    /// malformed packet).
    fn not_allowed_in(&self, packet: &'static str) -> DecodeError {
        DecodeError::PropertyNotAllowed {
            property: property_name(self.id()).unwrap_or("unknown property"),
            packet,
        }
    }
}

/// The specification's name of property `id`, or `None` for an unknown identifier.
pub(crate) fn property_name(id: u8) -> Option<&'static str> {
    Some(match id {
        id::PAYLOAD_FORMAT_INDICATOR => "Payload Format Indicator",
        id::MESSAGE_EXPIRY_INTERVAL => "Message Expiry Interval",
        id::CONTENT_TYPE => "Content Type",
        id::RESPONSE_TOPIC => "Response Topic",
        id::CORRELATION_DATA => "Correlation Data",
        id::SUBSCRIPTION_IDENTIFIER => "Subscription Identifier",
        id::SESSION_EXPIRY_INTERVAL => "Session Expiry Interval",
        id::ASSIGNED_CLIENT_IDENTIFIER => "Assigned Client Identifier",
        id::SERVER_KEEP_ALIVE => "Server Keep Alive",
        id::AUTHENTICATION_METHOD => "Authentication Method",
        id::AUTHENTICATION_DATA => "Authentication Data",
        id::REQUEST_PROBLEM_INFORMATION => "Request Problem Information",
        id::WILL_DELAY_INTERVAL => "Will Delay Interval",
        id::REQUEST_RESPONSE_INFORMATION => "Request Response Information",
        id::RESPONSE_INFORMATION => "Response Information",
        id::SERVER_REFERENCE => "Server Reference",
        id::REASON_STRING => "Reason String",
        id::RECEIVE_MAXIMUM => "Receive Maximum",
        id::TOPIC_ALIAS_MAXIMUM => "Topic Alias Maximum",
        id::TOPIC_ALIAS => "Topic Alias",
        id::MAXIMUM_QOS => "Maximum QoS",
        id::RETAIN_AVAILABLE => "Retain Available",
        id::USER_PROPERTY => "User Property",
        id::MAXIMUM_PACKET_SIZE => "Maximum Packet Size",
        id::WILDCARD_SUBSCRIPTION_AVAILABLE => "Wildcard Subscription Available",
        id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => "Subscription Identifier Available",
        id::SHARED_SUBSCRIPTION_AVAILABLE => "Shared Subscription Available",
        _ => return None,
    })
}

/// A byte property that may only be 0 or 1 (and Maximum QoS, which may only be 0 or 1 too).
fn read_flag(r: &mut Reader, name: &'static str) -> Result<u8, DecodeError> {
    match r.u8(name)? {
        value @ (0 | 1) => Ok(value),
        value => Err(DecodeError::InvalidPropertyValue {
            property: name,
            value: u32::from(value),
            expected: "0 or 1",
        }),
    }
}

fn nonzero_u16(value: u16, name: &'static str) -> Result<u16, DecodeError> {
    nonzero_u32(u32::from(value), name, "at least 1").map(|_| value)
}

fn nonzero_u32(value: u32, name: &'static str, expected: &'static str) -> Result<u32, DecodeError> {
    if value == 0 {
        return Err(DecodeError::InvalidPropertyValue {
            property: name,
            value,
            expected,
        });
    }
    Ok(value)
}

/// The Response Topic is a topic name, so it must not contain wildcards (MQTT-3.3.2-14).
fn read_response_topic(r: &mut Reader) -> Result<ByteString, DecodeError> {
    let topic = r.string("Response Topic")?;
    validate_topic_name(&topic).map_err(DecodeError::InvalidResponseTopic)?;
    Ok(topic)
}

/// Reads a property block (length, then properties) and hands each property to `apply`.
///
/// Checks what holds for every packet: the block fits the packet, identifiers are known, values
/// are in range, and no property other than User Property and Subscription Identifier repeats
/// (§2.2.2.2). `apply` stores the property or rejects it as not allowed in the packet.
fn read_block(
    r: &mut Reader,
    mut apply: impl FnMut(Property) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let len = r.var_int("property length")?;
    let mut block = r.sub_reader(len as usize, "properties")?;
    let mut seen: u64 = 0;
    while !block.is_empty() {
        let id = block.var_int("property identifier")?;
        let property = Property::read(id, &mut block)?;
        let id = property.id();
        if id != id::USER_PROPERTY && id != id::SUBSCRIPTION_IDENTIFIER {
            let bit = 1u64 << id;
            if seen & bit != 0 {
                return Err(DecodeError::DuplicateProperty(
                    property_name(id).unwrap_or("unknown property"),
                ));
            }
            seen |= bit;
        }
        apply(property)?;
    }
    Ok(())
}

/// Fails when Authentication Data comes without an Authentication Method (§3.1.2.11.10).
fn check_auth_data(
    method: &Option<ByteString>,
    data: &Option<Bytes>,
    packet: &'static str,
) -> Result<(), DecodeError> {
    if data.is_some() && method.is_none() {
        return Err(DecodeError::AuthenticationDataWithoutMethod(packet));
    }
    Ok(())
}

/// Reads CONNECT properties (§3.1.2.11).
pub(crate) fn read_connect_properties(r: &mut Reader) -> Result<ConnectProperties, DecodeError> {
    use Property as P;
    let mut p = ConnectProperties::default();
    read_block(r, |property| {
        match property {
            P::SessionExpiryInterval(v) => p.session_expiry_interval = Some(v),
            P::ReceiveMaximum(v) => p.receive_maximum = Some(v),
            P::MaximumPacketSize(v) => p.maximum_packet_size = Some(v),
            P::TopicAliasMaximum(v) => p.topic_alias_maximum = Some(v),
            P::RequestResponseInformation(v) => p.request_response_information = Some(v),
            P::RequestProblemInformation(v) => p.request_problem_information = Some(v),
            P::User(k, v) => p.user_properties.push((k, v)),
            P::AuthenticationMethod(v) => p.authentication_method = Some(v),
            P::AuthenticationData(v) => p.authentication_data = Some(v),
            other => return Err(other.not_allowed_in("CONNECT")),
        }
        Ok(())
    })?;
    check_auth_data(&p.authentication_method, &p.authentication_data, "CONNECT")?;
    Ok(p)
}

/// Reads will properties (§3.1.3.2).
pub(crate) fn read_will_properties(r: &mut Reader) -> Result<WillProperties, DecodeError> {
    use Property as P;
    let mut p = WillProperties::default();
    read_block(r, |property| {
        match property {
            P::WillDelayInterval(v) => p.will_delay_interval = Some(v),
            P::PayloadFormatIndicator(v) => p.payload_format_indicator = Some(v),
            P::MessageExpiryInterval(v) => p.message_expiry_interval = Some(v),
            P::ContentType(v) => p.content_type = Some(v),
            P::ResponseTopic(v) => p.response_topic = Some(v),
            P::CorrelationData(v) => p.correlation_data = Some(v),
            P::User(k, v) => p.user_properties.push((k, v)),
            other => return Err(other.not_allowed_in("CONNECT will")),
        }
        Ok(())
    })?;
    Ok(p)
}

/// Reads CONNACK properties (§3.2.2.3).
pub(crate) fn read_connack_properties(r: &mut Reader) -> Result<ConnAckProperties, DecodeError> {
    use Property as P;
    let mut p = ConnAckProperties::default();
    read_block(r, |property| {
        match property {
            P::SessionExpiryInterval(v) => p.session_expiry_interval = Some(v),
            P::ReceiveMaximum(v) => p.receive_maximum = Some(v),
            P::MaximumQoS(v) => p.maximum_qos = Some(v),
            P::RetainAvailable(v) => p.retain_available = Some(v),
            P::MaximumPacketSize(v) => p.maximum_packet_size = Some(v),
            P::AssignedClientIdentifier(v) => p.assigned_client_identifier = Some(v),
            P::TopicAliasMaximum(v) => p.topic_alias_maximum = Some(v),
            P::ReasonString(v) => p.reason_string = Some(v),
            P::User(k, v) => p.user_properties.push((k, v)),
            P::WildcardSubscriptionAvailable(v) => p.wildcard_subscription_available = Some(v),
            P::SubscriptionIdentifierAvailable(v) => p.subscription_identifiers_available = Some(v),
            P::SharedSubscriptionAvailable(v) => p.shared_subscription_available = Some(v),
            P::ServerKeepAlive(v) => p.server_keep_alive = Some(v),
            P::ResponseInformation(v) => p.response_information = Some(v),
            P::ServerReference(v) => p.server_reference = Some(v),
            P::AuthenticationMethod(v) => p.authentication_method = Some(v),
            P::AuthenticationData(v) => p.authentication_data = Some(v),
            other => return Err(other.not_allowed_in("CONNACK")),
        }
        Ok(())
    })?;
    Ok(p)
}

/// Reads PUBLISH properties (§3.3.2.3).
pub(crate) fn read_publish_properties(r: &mut Reader) -> Result<PublishProperties, DecodeError> {
    use Property as P;
    let mut p = PublishProperties::default();
    read_block(r, |property| {
        match property {
            P::PayloadFormatIndicator(v) => p.payload_format_indicator = Some(v),
            P::MessageExpiryInterval(v) => p.message_expiry_interval = Some(v),
            P::TopicAlias(v) => p.topic_alias = Some(v),
            P::ResponseTopic(v) => p.response_topic = Some(v),
            P::CorrelationData(v) => p.correlation_data = Some(v),
            P::User(k, v) => p.user_properties.push((k, v)),
            P::SubscriptionIdentifier(v) => p.subscription_identifiers.push(v),
            P::ContentType(v) => p.content_type = Some(v),
            other => return Err(other.not_allowed_in("PUBLISH")),
        }
        Ok(())
    })?;
    Ok(p)
}

/// Reads the properties shared by PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
pub(crate) fn read_ack_properties(
    r: &mut Reader,
    packet: &'static str,
) -> Result<AckProperties, DecodeError> {
    use Property as P;
    let mut p = AckProperties::default();
    read_block(r, |property| {
        match property {
            P::ReasonString(v) => p.reason_string = Some(v),
            P::User(k, v) => p.user_properties.push((k, v)),
            other => return Err(other.not_allowed_in(packet)),
        }
        Ok(())
    })?;
    Ok(p)
}

/// Reads SUBSCRIBE properties (§3.8.2.1); the Subscription Identifier may appear only once.
pub(crate) fn read_subscribe_properties(
    r: &mut Reader,
) -> Result<SubscribeProperties, DecodeError> {
    use Property as P;
    let mut p = SubscribeProperties::default();
    read_block(r, |property| {
        match property {
            P::SubscriptionIdentifier(v) => {
                if p.subscription_identifier.replace(v).is_some() {
                    return Err(DecodeError::DuplicateProperty("Subscription Identifier"));
                }
            }
            P::User(k, v) => p.user_properties.push((k, v)),
            other => return Err(other.not_allowed_in("SUBSCRIBE")),
        }
        Ok(())
    })?;
    Ok(p)
}

/// Reads UNSUBSCRIBE properties (§3.10.2.1): only User Properties exist.
pub(crate) fn read_user_properties_only(
    r: &mut Reader,
    packet: &'static str,
) -> Result<Vec<UserProperty>, DecodeError> {
    let mut user_properties = Vec::new();
    read_block(r, |property| match property {
        Property::User(k, v) => {
            user_properties.push((k, v));
            Ok(())
        }
        other => Err(other.not_allowed_in(packet)),
    })?;
    Ok(user_properties)
}

/// Reads DISCONNECT properties (§3.14.2.2).
pub(crate) fn read_disconnect_properties(
    r: &mut Reader,
) -> Result<DisconnectProperties, DecodeError> {
    use Property as P;
    let mut p = DisconnectProperties::default();
    read_block(r, |property| {
        match property {
            P::SessionExpiryInterval(v) => p.session_expiry_interval = Some(v),
            P::ReasonString(v) => p.reason_string = Some(v),
            P::User(k, v) => p.user_properties.push((k, v)),
            P::ServerReference(v) => p.server_reference = Some(v),
            other => return Err(other.not_allowed_in("DISCONNECT")),
        }
        Ok(())
    })?;
    Ok(p)
}

/// Reads AUTH properties (§3.15.2.2).
pub(crate) fn read_auth_properties(r: &mut Reader) -> Result<AuthProperties, DecodeError> {
    use Property as P;
    let mut p = AuthProperties::default();
    read_block(r, |property| {
        match property {
            P::AuthenticationMethod(v) => p.authentication_method = Some(v),
            P::AuthenticationData(v) => p.authentication_data = Some(v),
            P::ReasonString(v) => p.reason_string = Some(v),
            P::User(k, v) => p.user_properties.push((k, v)),
            other => return Err(other.not_allowed_in("AUTH")),
        }
        Ok(())
    })?;
    check_auth_data(&p.authentication_method, &p.authentication_data, "AUTH")?;
    Ok(p)
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Destination of an encoding pass: either measuring ([`Counter`]) or writing ([`Writer`]).
///
/// Fields that carry a length prefix take a `what` naming them, so the counting pass can report
/// which field does not fit.
pub(crate) trait Sink {
    /// A byte.
    fn write_u8(&mut self, value: u8);
    /// A big-endian Two Byte Integer.
    fn write_u16(&mut self, value: u16);
    /// A big-endian Four Byte Integer.
    fn write_u32(&mut self, value: u32);
    /// A Variable Byte Integer (at most 268,435,455).
    fn write_var_int(&mut self, value: u32, what: &'static str);
    /// Raw bytes without a length prefix (a PUBLISH payload).
    fn write_raw(&mut self, bytes: &[u8]);
    /// Binary Data: two-byte length, then the bytes (at most 65,535).
    fn write_binary(&mut self, bytes: &[u8], what: &'static str);
    /// A property block: its length as a Variable Byte Integer, then the properties.
    fn write_properties<P: PropertySet + ?Sized>(&mut self, properties: &P);
    /// Reports a packet that cannot be encoded; only the counting pass records it.
    fn fail(&mut self, error: EncodeError);

    /// A UTF-8 Encoded String.
    fn write_string(&mut self, value: &str, what: &'static str) {
        self.write_binary(value.as_bytes(), what);
    }

    /// A byte property, if present.
    fn prop_u8(&mut self, id: u8, value: Option<u8>) {
        if let Some(value) = value {
            self.write_u8(id);
            self.write_u8(value);
        }
    }

    /// A Two Byte Integer property, if present.
    fn prop_u16(&mut self, id: u8, value: Option<u16>) {
        if let Some(value) = value {
            self.write_u8(id);
            self.write_u16(value);
        }
    }

    /// A Four Byte Integer property, if present.
    fn prop_u32(&mut self, id: u8, value: Option<u32>) {
        if let Some(value) = value {
            self.write_u8(id);
            self.write_u32(value);
        }
    }

    /// A Variable Byte Integer property.
    fn prop_var_int(&mut self, id: u8, value: u32, what: &'static str) {
        self.write_u8(id);
        self.write_var_int(value, what);
    }

    /// A string property, if present.
    fn prop_string(&mut self, id: u8, value: Option<&ByteString>, what: &'static str) {
        if let Some(value) = value {
            self.write_u8(id);
            self.write_string(value, what);
        }
    }

    /// A binary property, if present.
    fn prop_binary(&mut self, id: u8, value: Option<&Bytes>, what: &'static str) {
        if let Some(value) = value {
            self.write_u8(id);
            self.write_binary(value, what);
        }
    }

    /// Every User Property, in order.
    fn prop_user(&mut self, user_properties: &[UserProperty]) {
        for (name, value) in user_properties {
            self.write_u8(id::USER_PROPERTY);
            self.write_string(name, "User Property name");
            self.write_string(value, "User Property value");
        }
    }
}

/// A set of properties that can describe itself to a [`Sink`].
pub(crate) trait PropertySet {
    /// Writes every present property (without the block length).
    fn write_to<S: Sink>(&self, sink: &mut S);
}

/// Measures an encoding and records the first field that cannot be encoded.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    len: usize,
    error: Option<EncodeError>,
}

impl Counter {
    /// The measured length, or the first encoding error.
    pub(crate) fn finish(self) -> Result<usize, EncodeError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.len),
        }
    }

    /// The measured length, ignoring errors.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Sink for Counter {
    fn write_u8(&mut self, _value: u8) {
        self.len += 1;
    }

    fn write_u16(&mut self, _value: u16) {
        self.len += 2;
    }

    fn write_u32(&mut self, _value: u32) {
        self.len += 4;
    }

    fn write_var_int(&mut self, value: u32, what: &'static str) {
        let value = value as usize;
        if value > MAX_REMAINING_LENGTH {
            self.fail(EncodeError::VarIntOutOfRange { what, value });
        }
        self.len += var_int_len(value);
    }

    fn write_raw(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
    }

    fn write_binary(&mut self, bytes: &[u8], what: &'static str) {
        if bytes.len() > MAX_FIELD_LEN {
            self.fail(EncodeError::FieldTooLong {
                what,
                len: bytes.len(),
            });
        }
        self.len += 2 + bytes.len();
    }

    fn write_properties<P: PropertySet + ?Sized>(&mut self, properties: &P) {
        let start = self.len;
        properties.write_to(self);
        let block = self.len - start;
        if block > MAX_REMAINING_LENGTH {
            self.fail(EncodeError::VarIntOutOfRange {
                what: "property length",
                value: block,
            });
        }
        self.len += var_int_len(block);
    }

    fn fail(&mut self, error: EncodeError) {
        self.error.get_or_insert(error);
    }
}

/// Appends an encoding to a buffer; the caller has validated it with a [`Counter`] first.
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> Writer<'a> {
    /// Writes to the end of `buf`.
    pub(crate) fn new(buf: &'a mut BytesMut) -> Writer<'a> {
        Writer { buf }
    }
}

impl Sink for Writer<'_> {
    fn write_u8(&mut self, value: u8) {
        self.buf.put_u8(value);
    }

    fn write_u16(&mut self, value: u16) {
        self.buf.put_u16(value);
    }

    fn write_u32(&mut self, value: u32) {
        self.buf.put_u32(value);
    }

    fn write_var_int(&mut self, value: u32, _what: &'static str) {
        put_var_int(self.buf, value as usize);
    }

    fn write_raw(&mut self, bytes: &[u8]) {
        self.buf.put_slice(bytes);
    }

    fn write_binary(&mut self, bytes: &[u8], _what: &'static str) {
        // Validated by the counting pass; saturate rather than wrap if a caller skipped it.
        self.buf
            .put_u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
        self.buf.put_slice(bytes);
    }

    fn write_properties<P: PropertySet + ?Sized>(&mut self, properties: &P) {
        let mut counter = Counter::default();
        properties.write_to(&mut counter);
        put_var_int(self.buf, counter.len());
        properties.write_to(self);
    }

    fn fail(&mut self, _error: EncodeError) {
        // The counting pass has already refused the packet; nothing reaches the writer.
    }
}

/// Whether a property set has nothing to write (so short packet forms can be used).
pub(crate) fn is_empty<P: PropertySet + ?Sized>(properties: &P) -> bool {
    let mut counter = Counter::default();
    properties.write_to(&mut counter);
    counter.len() == 0
}

impl PropertySet for ConnectProperties {
    fn write_to<S: Sink>(&self, s: &mut S) {
        s.prop_u32(id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        s.prop_u16(id::RECEIVE_MAXIMUM, self.receive_maximum);
        s.prop_u32(id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        s.prop_u16(id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        s.prop_u8(
            id::REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
        );
        s.prop_u8(
            id::REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
        );
        s.prop_user(&self.user_properties);
        s.prop_string(
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
            "Authentication Method",
        );
        s.prop_binary(
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
            "Authentication Data",
        );
    }
}

impl PropertySet for WillProperties {
    fn write_to<S: Sink>(&self, s: &mut S) {
        s.prop_u32(id::WILL_DELAY_INTERVAL, self.will_delay_interval);
        s.prop_u8(id::PAYLOAD_FORMAT_INDICATOR, self.payload_format_indicator);
        s.prop_u32(id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        s.prop_string(id::CONTENT_TYPE, self.content_type.as_ref(), "Content Type");
        s.prop_string(
            id::RESPONSE_TOPIC,
            self.response_topic.as_ref(),
            "Response Topic",
        );
        s.prop_binary(
            id::CORRELATION_DATA,
            self.correlation_data.as_ref(),
            "Correlation Data",
        );
        s.prop_user(&self.user_properties);
    }
}

impl PropertySet for ConnAckProperties {
    fn write_to<S: Sink>(&self, s: &mut S) {
        s.prop_u32(id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        s.prop_u16(id::RECEIVE_MAXIMUM, self.receive_maximum);
        s.prop_u8(id::MAXIMUM_QOS, self.maximum_qos);
        s.prop_u8(id::RETAIN_AVAILABLE, self.retain_available);
        s.prop_u32(id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        s.prop_string(
            id::ASSIGNED_CLIENT_IDENTIFIER,
            self.assigned_client_identifier.as_ref(),
            "Assigned Client Identifier",
        );
        s.prop_u16(id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        s.prop_string(
            id::REASON_STRING,
            self.reason_string.as_ref(),
            "Reason String",
        );
        s.prop_user(&self.user_properties);
        s.prop_u8(
            id::WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
        );
        s.prop_u8(
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifiers_available,
        );
        s.prop_u8(
            id::SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
        );
        s.prop_u16(id::SERVER_KEEP_ALIVE, self.server_keep_alive);
        s.prop_string(
            id::RESPONSE_INFORMATION,
            self.response_information.as_ref(),
            "Response Information",
        );
        s.prop_string(
            id::SERVER_REFERENCE,
            self.server_reference.as_ref(),
            "Server Reference",
        );
        s.prop_string(
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
            "Authentication Method",
        );
        s.prop_binary(
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
            "Authentication Data",
        );
    }
}

impl PropertySet for PublishProperties {
    fn write_to<S: Sink>(&self, s: &mut S) {
        s.prop_u8(id::PAYLOAD_FORMAT_INDICATOR, self.payload_format_indicator);
        s.prop_u32(id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        s.prop_u16(id::TOPIC_ALIAS, self.topic_alias);
        s.prop_string(
            id::RESPONSE_TOPIC,
            self.response_topic.as_ref(),
            "Response Topic",
        );
        s.prop_binary(
            id::CORRELATION_DATA,
            self.correlation_data.as_ref(),
            "Correlation Data",
        );
        s.prop_user(&self.user_properties);
        for &identifier in &self.subscription_identifiers {
            s.prop_var_int(
                id::SUBSCRIPTION_IDENTIFIER,
                identifier,
                "Subscription Identifier",
            );
        }
        s.prop_string(id::CONTENT_TYPE, self.content_type.as_ref(), "Content Type");
    }
}

impl PropertySet for AckProperties {
    fn write_to<S: Sink>(&self, s: &mut S) {
        s.prop_string(
            id::REASON_STRING,
            self.reason_string.as_ref(),
            "Reason String",
        );
        s.prop_user(&self.user_properties);
    }
}

impl PropertySet for SubscribeProperties {
    fn write_to<S: Sink>(&self, s: &mut S) {
        if let Some(identifier) = self.subscription_identifier {
            s.prop_var_int(
                id::SUBSCRIPTION_IDENTIFIER,
                identifier,
                "Subscription Identifier",
            );
        }
        s.prop_user(&self.user_properties);
    }
}

/// UNSUBSCRIBE carries only User Properties.
impl PropertySet for [UserProperty] {
    fn write_to<S: Sink>(&self, s: &mut S) {
        s.prop_user(self);
    }
}

impl PropertySet for DisconnectProperties {
    fn write_to<S: Sink>(&self, s: &mut S) {
        s.prop_u32(id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        s.prop_string(
            id::REASON_STRING,
            self.reason_string.as_ref(),
            "Reason String",
        );
        s.prop_user(&self.user_properties);
        s.prop_string(
            id::SERVER_REFERENCE,
            self.server_reference.as_ref(),
            "Server Reference",
        );
    }
}

impl PropertySet for AuthProperties {
    fn write_to<S: Sink>(&self, s: &mut S) {
        s.prop_string(
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_ref(),
            "Authentication Method",
        );
        s.prop_binary(
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
            "Authentication Data",
        );
        s.prop_string(
            id::REASON_STRING,
            self.reason_string.as_ref(),
            "Reason String",
        );
        s.prop_user(&self.user_properties);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_var_int(value: usize) -> Vec<u8> {
        let mut buf = BytesMut::new();
        put_var_int(&mut buf, value);
        buf.to_vec()
    }

    #[test]
    fn var_int_boundaries_match_the_spec_table() {
        // §1.5.5 table of boundaries.
        let cases: [(usize, &[u8]); 8] = [
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for (value, bytes) in cases {
            assert_eq!(encode_var_int(value), bytes, "{value}");
            assert_eq!(var_int_len(value), bytes.len(), "{value}");
            assert_eq!(
                read_var_int(bytes, "test"),
                Ok(Some((value as u32, bytes.len())))
            );
        }
    }

    #[test]
    fn var_int_with_fifth_byte_is_malformed() {
        assert_eq!(
            read_var_int(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01], "test"),
            Err(DecodeError::VarIntTooLong("test"))
        );
        assert_eq!(
            read_var_int(&[0x80, 0x80, 0x80, 0x80], "test"),
            Err(DecodeError::VarIntTooLong("test"))
        );
    }

    #[test]
    fn var_int_incomplete_needs_more_bytes() {
        assert_eq!(read_var_int(&[], "test"), Ok(None));
        assert_eq!(read_var_int(&[0x80], "test"), Ok(None));
        assert_eq!(read_var_int(&[0x80, 0x80, 0x80], "test"), Ok(None));
    }

    #[test]
    fn var_int_non_minimal_encoding_is_tolerated() {
        assert_eq!(read_var_int(&[0x80, 0x00], "test"), Ok(Some((0, 2))));
    }

    #[test]
    fn reader_reports_the_field_that_overruns() {
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x05, b'a']));
        assert_eq!(
            r.string("client identifier"),
            Err(DecodeError::UnexpectedEnd("client identifier"))
        );
        let mut r = Reader::new(Bytes::from_static(&[0x01]));
        assert_eq!(
            r.u16("keep alive"),
            Err(DecodeError::UnexpectedEnd("keep alive"))
        );
        let mut r = Reader::new(Bytes::from_static(&[0x80]));
        assert_eq!(r.var_int("x"), Err(DecodeError::UnexpectedEnd("x")));
    }

    #[test]
    fn reader_strings_share_the_packet_buffer() {
        let data = Bytes::from_static(&[0x00, 0x03, b'a', b'/', b'b', 0xAA]);
        let mut r = Reader::new(data.clone());
        let s = r.string("topic").expect("valid string");
        assert_eq!(&*s, "a/b");
        assert_eq!(s.as_bytes().as_ptr(), data[2..].as_ptr());
        assert_eq!(r.rest(), Bytes::from_static(&[0xAA]));
        assert!(r.is_empty());
    }

    #[test]
    fn reader_rejects_invalid_utf8_and_null_characters() {
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x02, 0xC3, 0x28]));
        assert_eq!(r.string("topic"), Err(DecodeError::InvalidUtf8("topic")));
        // An encoded surrogate (U+D800) is ill-formed UTF-8 (MQTT-1.5.4-1).
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x03, 0xED, 0xA0, 0x80]));
        assert_eq!(r.string("topic"), Err(DecodeError::InvalidUtf8("topic")));
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x03, b'a', 0x00, b'b']));
        assert_eq!(r.string("topic"), Err(DecodeError::NullCharacter("topic")));
    }

    #[test]
    fn counter_rejects_fields_longer_than_65535_bytes() {
        let mut counter = Counter::default();
        counter.write_binary(&vec![0u8; MAX_FIELD_LEN + 1], "Correlation Data");
        assert_eq!(
            counter.finish(),
            Err(EncodeError::FieldTooLong {
                what: "Correlation Data",
                len: MAX_FIELD_LEN + 1
            })
        );
        let mut counter = Counter::default();
        counter.write_binary(&vec![0u8; MAX_FIELD_LEN], "Correlation Data");
        assert_eq!(counter.finish(), Ok(MAX_FIELD_LEN + 2));
    }

    #[test]
    fn counter_rejects_var_ints_beyond_the_maximum() {
        let mut counter = Counter::default();
        counter.write_var_int(268_435_456, "Subscription Identifier");
        assert!(matches!(
            counter.finish(),
            Err(EncodeError::VarIntOutOfRange { .. })
        ));
    }

    #[test]
    fn every_known_property_id_has_a_name() {
        let known = (0u8..=0x7F)
            .filter(|&id| property_name(id).is_some())
            .count();
        assert_eq!(known, 27);
    }
}
