//! The MQTT control packets as plain data, shared by 3.1.1 and 5.0.
//!
//! One set of types serves both protocol versions: fields that only exist in 5.0 (properties,
//! most reason codes) are simply left at their defaults when talking 3.1.1, and the encoder
//! leaves them out. Payloads and topic names are reference-counted (`Bytes`, `ByteString`) so a
//! message decoded once can be fanned out to many subscribers without copying.

use bytes::Bytes;
use bytestring::ByteString;

use super::reason::ReasonCode;

/// The protocol level a client asked for in its CONNECT packet.
///
/// The level decides how every later packet on the connection is encoded and decoded, so it is
/// carried next to the connection rather than inside each packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte written in CONNECT.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }
}

/// Delivery guarantee of a message or subscription.
///
/// Ordered so that `min`/`max` give the downgraded or upgraded level directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// Fire and forget.
    #[default]
    AtMostOnce = 0,
    /// Acknowledged with PUBACK; may arrive more than once.
    AtLeastOnce = 1,
    /// Four-step PUBREC/PUBREL/PUBCOMP handshake; arrives exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// Parses the two QoS bits; 3 is not a QoS and yields `None`.
    pub fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Every MQTT control packet, in both directions.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// Client → server: open a session.
    Connect(Box<Connect>),
    /// Server → client: answer to CONNECT.
    ConnAck(ConnAck),
    /// Either direction: an application message.
    Publish(Publish),
    /// QoS 1 acknowledgement.
    PubAck(PubAck),
    /// QoS 2, step 1: publish received.
    PubRec(PubAck),
    /// QoS 2, step 2: publish release.
    PubRel(PubAck),
    /// QoS 2, step 3: publish complete.
    PubComp(PubAck),
    /// Client → server: add subscriptions.
    Subscribe(Subscribe),
    /// Server → client: answer to SUBSCRIBE, one reason code per filter.
    SubAck(SubAck),
    /// Client → server: remove subscriptions.
    Unsubscribe(Unsubscribe),
    /// Server → client: answer to UNSUBSCRIBE.
    UnsubAck(UnsubAck),
    /// Client → server keep-alive probe.
    PingReq,
    /// Server → client keep-alive answer.
    PingResp,
    /// Either direction (server → client only in 5.0): orderly end of the connection.
    Disconnect(Disconnect),
    /// 5.0 only: enhanced authentication exchange.
    Auth(Auth),
}

impl Packet {
    /// Short upper-case name used in logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}

/// A string pair from a User Property (5.0). Order and duplicates are significant.
pub type UserProperty = (ByteString, ByteString);

/// CONNECT: the first packet of every connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Connect {
    /// Protocol level the client speaks.
    pub protocol_version: ProtocolVersion,
    /// Clean Session (3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client identifier; may be empty (the server then assigns one where allowed).
    pub client_id: ByteString,
    /// Will message published if the connection ends without a normal DISCONNECT.
    pub will: Option<LastWill>,
    /// User name, if the flag was set.
    pub username: Option<ByteString>,
    /// Password (binary data), if the flag was set.
    pub password: Option<Bytes>,
    /// 5.0 properties.
    pub properties: ConnectProperties,
}

/// CONNECT properties (5.0 §3.1.2.11).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectProperties {
    /// Seconds the session outlives the connection; `None` means 0.
    pub session_expiry_interval: Option<u32>,
    /// How many unacknowledged QoS 1/2 PUBLISHes the client accepts at once.
    pub receive_maximum: Option<u16>,
    /// Largest packet the client accepts.
    pub maximum_packet_size: Option<u32>,
    /// Highest topic alias the client accepts from the server.
    pub topic_alias_maximum: Option<u16>,
    /// Whether the client wants Response Information in CONNACK.
    pub request_response_information: Option<u8>,
    /// Whether reason strings / user properties may be sent on failures.
    pub request_problem_information: Option<u8>,
    /// User properties.
    pub user_properties: Vec<UserProperty>,
    /// Enhanced authentication method.
    pub authentication_method: Option<ByteString>,
    /// Enhanced authentication data.
    pub authentication_data: Option<Bytes>,
}

/// The will message carried in CONNECT.
#[derive(Debug, Clone, PartialEq)]
pub struct LastWill {
    /// Topic the will is published to (no wildcards).
    pub topic: ByteString,
    /// Will payload.
    pub payload: Bytes,
    /// QoS of the will publication.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// 5.0 will properties.
    pub properties: WillProperties,
}

/// Will properties (5.0 §3.1.3.2).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WillProperties {
    /// Seconds to wait after the connection ends before publishing the will.
    pub will_delay_interval: Option<u32>,
    /// 0 = unspecified bytes, 1 = UTF-8 payload.
    pub payload_format_indicator: Option<u8>,
    /// Lifetime of the will message in seconds.
    pub message_expiry_interval: Option<u32>,
    /// MIME type of the payload.
    pub content_type: Option<ByteString>,
    /// Response topic for request/response.
    pub response_topic: Option<ByteString>,
    /// Correlation data for request/response.
    pub correlation_data: Option<Bytes>,
    /// User properties.
    pub user_properties: Vec<UserProperty>,
}

/// CONNACK: the server's answer to CONNECT.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnAck {
    /// Whether the server resumed an existing session.
    pub session_present: bool,
    /// 5.0 reason code; for 3.1.1 the encoder maps it onto the six CONNACK return codes.
    pub reason_code: ReasonCode,
    /// 5.0 properties.
    pub properties: ConnAckProperties,
}

/// CONNACK properties (5.0 §3.2.2.3).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnAckProperties {
    /// Session expiry the server decided on, when it differs from the client's.
    pub session_expiry_interval: Option<u32>,
    /// How many unacknowledged QoS 1/2 PUBLISHes the server accepts at once.
    pub receive_maximum: Option<u16>,
    /// Highest QoS the server supports.
    pub maximum_qos: Option<u8>,
    /// Whether retained messages are supported.
    pub retain_available: Option<u8>,
    /// Largest packet the server accepts.
    pub maximum_packet_size: Option<u32>,
    /// Client identifier assigned by the server for an empty one.
    pub assigned_client_identifier: Option<ByteString>,
    /// Highest topic alias the server accepts from the client.
    pub topic_alias_maximum: Option<u16>,
    /// Human-readable diagnostic.
    pub reason_string: Option<ByteString>,
    /// User properties.
    pub user_properties: Vec<UserProperty>,
    /// Whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: Option<u8>,
    /// Whether subscription identifiers are supported.
    pub subscription_identifiers_available: Option<u8>,
    /// Whether shared subscriptions are supported.
    pub shared_subscription_available: Option<u8>,
    /// Keep alive the server imposes, overriding the client's.
    pub server_keep_alive: Option<u16>,
    /// Basis for response topics.
    pub response_information: Option<ByteString>,
    /// Another server the client should use.
    pub server_reference: Option<ByteString>,
    /// Enhanced authentication method.
    pub authentication_method: Option<ByteString>,
    /// Enhanced authentication data.
    pub authentication_data: Option<Bytes>,
}

/// PUBLISH: an application message.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    /// Re-delivery flag; only meaningful for QoS > 0.
    pub dup: bool,
    /// Delivery guarantee of this transmission.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name; may be empty in 5.0 when a topic alias is used.
    pub topic: ByteString,
    /// Packet identifier; `Some` exactly when `qos` is 1 or 2.
    pub packet_id: Option<u16>,
    /// 5.0 properties.
    pub properties: PublishProperties,
    /// Application payload.
    pub payload: Bytes,
}

/// PUBLISH properties (5.0 §3.3.2.3).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PublishProperties {
    /// 0 = unspecified bytes, 1 = UTF-8 payload.
    pub payload_format_indicator: Option<u8>,
    /// Lifetime of the message in seconds.
    pub message_expiry_interval: Option<u32>,
    /// Topic alias standing for the topic name.
    pub topic_alias: Option<u16>,
    /// Response topic for request/response.
    pub response_topic: Option<ByteString>,
    /// Correlation data for request/response.
    pub correlation_data: Option<Bytes>,
    /// User properties.
    pub user_properties: Vec<UserProperty>,
    /// Identifiers of the subscriptions that matched (server → client only).
    pub subscription_identifiers: Vec<u32>,
    /// MIME type of the payload.
    pub content_type: Option<ByteString>,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP all share this shape.
#[derive(Debug, Clone, PartialEq)]
pub struct PubAck {
    /// Identifier of the PUBLISH being acknowledged.
    pub packet_id: u16,
    /// 5.0 reason code (Success when absent on the wire).
    pub reason_code: ReasonCode,
    /// 5.0 properties.
    pub properties: AckProperties,
}

impl PubAck {
    /// A successful acknowledgement with no properties.
    pub fn success(packet_id: u16) -> PubAck {
        PubAck {
            packet_id,
            reason_code: ReasonCode::Success,
            properties: AckProperties::default(),
        }
    }
}

/// Properties of PUBACK/PUBREC/PUBREL/PUBCOMP/UNSUBACK/SUBACK: a reason string and user
/// properties.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AckProperties {
    /// Human-readable diagnostic.
    pub reason_string: Option<ByteString>,
    /// User properties.
    pub user_properties: Vec<UserProperty>,
}

/// How retained messages are sent when a subscription is made (5.0 §3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    #[default]
    SendAlways = 0,
    /// Send them only if the subscription did not exist before.
    SendIfNew = 1,
    /// Never send retained messages for this subscription.
    Never = 2,
}

/// Per-filter options of a SUBSCRIBE (the 3.1.1 byte only carries `qos`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS the subscriber accepts.
    pub qos: QoS,
    /// Do not deliver the subscriber's own publications back to it.
    pub no_local: bool,
    /// Keep the RETAIN flag as published instead of clearing it on live delivery.
    pub retain_as_published: bool,
    /// When to send retained messages.
    pub retain_handling: RetainHandling,
}

/// One topic filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribeFilter {
    /// Topic filter as sent, including any `$share/...` prefix.
    pub filter: ByteString,
    /// Subscription options.
    pub options: SubscriptionOptions,
}

/// SUBSCRIBE: add or replace subscriptions.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe {
    /// Packet identifier echoed in SUBACK.
    pub packet_id: u16,
    /// 5.0 properties.
    pub properties: SubscribeProperties,
    /// At least one filter.
    pub filters: Vec<SubscribeFilter>,
}

/// SUBSCRIBE properties (5.0 §3.8.2.1).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubscribeProperties {
    /// Subscription identifier (1..=268,435,455) attached to every filter of the packet.
    pub subscription_identifier: Option<u32>,
    /// User properties.
    pub user_properties: Vec<UserProperty>,
}

/// SUBACK: one reason code per requested filter.
#[derive(Debug, Clone, PartialEq)]
pub struct SubAck {
    /// Identifier of the SUBSCRIBE.
    pub packet_id: u16,
    /// 5.0 properties.
    pub properties: AckProperties,
    /// Granted QoS (0x00..0x02) or a failure code, per filter; 3.1.1 encodes failures as 0x80.
    pub reason_codes: Vec<ReasonCode>,
}

/// UNSUBSCRIBE: remove subscriptions.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsubscribe {
    /// Packet identifier echoed in UNSUBACK.
    pub packet_id: u16,
    /// 5.0 user properties.
    pub user_properties: Vec<UserProperty>,
    /// At least one filter.
    pub filters: Vec<ByteString>,
}

/// UNSUBACK; 3.1.1 carries only the packet identifier.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsubAck {
    /// Identifier of the UNSUBSCRIBE.
    pub packet_id: u16,
    /// 5.0 properties.
    pub properties: AckProperties,
    /// One reason code per filter (5.0 only).
    pub reason_codes: Vec<ReasonCode>,
}

/// DISCONNECT; in 3.1.1 it has no body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Disconnect {
    /// Why the connection ends.
    pub reason_code: ReasonCode,
    /// 5.0 properties.
    pub properties: DisconnectProperties,
}

impl Disconnect {
    /// A DISCONNECT with the given reason and no properties.
    pub fn with_reason(reason_code: ReasonCode) -> Disconnect {
        Disconnect {
            reason_code,
            properties: DisconnectProperties::default(),
        }
    }
}

/// DISCONNECT properties (5.0 §3.14.2.2).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DisconnectProperties {
    /// New session expiry (client → server only).
    pub session_expiry_interval: Option<u32>,
    /// Human-readable diagnostic.
    pub reason_string: Option<ByteString>,
    /// User properties.
    pub user_properties: Vec<UserProperty>,
    /// Another server the client should use.
    pub server_reference: Option<ByteString>,
}

/// AUTH (5.0 only): enhanced authentication exchange.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Auth {
    /// Success, Continue authentication or Re-authenticate.
    pub reason_code: ReasonCode,
    /// AUTH properties.
    pub properties: AuthProperties,
}

/// AUTH properties (5.0 §3.15.2.2).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthProperties {
    /// Authentication method.
    pub authentication_method: Option<ByteString>,
    /// Authentication data.
    pub authentication_data: Option<Bytes>,
    /// Human-readable diagnostic.
    pub reason_string: Option<ByteString>,
    /// User properties.
    pub user_properties: Vec<UserProperty>,
}
