//! MQTT 5.0 reason codes (§2.4) and their 3.1.1 CONNACK equivalents.
//!
//! The broker decides in 5.0 terms everywhere; only the encoder translates to 3.1.1, where most
//! failures have no code and simply close the connection.

/// A 5.0 reason code. The numeric value is the byte on the wire.
///
/// Several codes share a value in the specification (0x00 is Success, Normal disconnection and
/// Granted QoS 0); this enum keeps one variant per value and offers aliases as constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum ReasonCode {
    /// Success / Normal disconnection / Granted QoS 0.
    #[default]
    Success = 0x00,
    /// Granted QoS 1.
    GrantedQoS1 = 0x01,
    /// Granted QoS 2.
    GrantedQoS2 = 0x02,
    /// Disconnect with Will Message.
    DisconnectWithWillMessage = 0x04,
    /// No matching subscribers.
    NoMatchingSubscribers = 0x10,
    /// No subscription existed.
    NoSubscriptionExisted = 0x11,
    /// Continue authentication.
    ContinueAuthentication = 0x18,
    /// Re-authenticate.
    ReAuthenticate = 0x19,
    /// Unspecified error.
    UnspecifiedError = 0x80,
    /// Malformed Packet.
    MalformedPacket = 0x81,
    /// Protocol Error.
    ProtocolError = 0x82,
    /// Implementation specific error.
    ImplementationSpecificError = 0x83,
    /// Unsupported Protocol Version.
    UnsupportedProtocolVersion = 0x84,
    /// Client Identifier not valid.
    ClientIdentifierNotValid = 0x85,
    /// Bad User Name or Password.
    BadUserNameOrPassword = 0x86,
    /// Not authorized.
    NotAuthorized = 0x87,
    /// Server unavailable.
    ServerUnavailable = 0x88,
    /// Server busy.
    ServerBusy = 0x89,
    /// Banned.
    Banned = 0x8A,
    /// Server shutting down.
    ServerShuttingDown = 0x8B,
    /// Bad authentication method.
    BadAuthenticationMethod = 0x8C,
    /// Keep Alive timeout.
    KeepAliveTimeout = 0x8D,
    /// Session taken over.
    SessionTakenOver = 0x8E,
    /// Topic Filter invalid.
    TopicFilterInvalid = 0x8F,
    /// Topic Name invalid.
    TopicNameInvalid = 0x90,
    /// Packet Identifier in use.
    PacketIdentifierInUse = 0x91,
    /// Packet Identifier not found.
    PacketIdentifierNotFound = 0x92,
    /// Receive Maximum exceeded.
    ReceiveMaximumExceeded = 0x93,
    /// Topic Alias invalid.
    TopicAliasInvalid = 0x94,
    /// Packet too large.
    PacketTooLarge = 0x95,
    /// Message rate too high.
    MessageRateTooHigh = 0x96,
    /// Quota exceeded.
    QuotaExceeded = 0x97,
    /// Administrative action.
    AdministrativeAction = 0x98,
    /// Payload format invalid.
    PayloadFormatInvalid = 0x99,
    /// Retain not supported.
    RetainNotSupported = 0x9A,
    /// QoS not supported.
    QoSNotSupported = 0x9B,
    /// Use another server.
    UseAnotherServer = 0x9C,
    /// Server moved.
    ServerMoved = 0x9D,
    /// Shared Subscriptions not supported.
    SharedSubscriptionsNotSupported = 0x9E,
    /// Connection rate exceeded.
    ConnectionRateExceeded = 0x9F,
    /// Maximum connect time.
    MaximumConnectTime = 0xA0,
    /// Subscription Identifiers not supported.
    SubscriptionIdentifiersNotSupported = 0xA1,
    /// Wildcard Subscriptions not supported.
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl ReasonCode {
    /// Alias: Normal disconnection (0x00).
    pub const NORMAL_DISCONNECTION: ReasonCode = ReasonCode::Success;
    /// Alias: Granted QoS 0 (0x00).
    pub const GRANTED_QOS0: ReasonCode = ReasonCode::Success;

    /// The byte on the wire.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Parses a reason code byte; unknown values yield `None` (a malformed packet).
    pub fn from_u8(value: u8) -> Option<ReasonCode> {
        use ReasonCode::*;
        Some(match value {
            0x00 => Success,
            0x01 => GrantedQoS1,
            0x02 => GrantedQoS2,
            0x04 => DisconnectWithWillMessage,
            0x10 => NoMatchingSubscribers,
            0x11 => NoSubscriptionExisted,
            0x18 => ContinueAuthentication,
            0x19 => ReAuthenticate,
            0x80 => UnspecifiedError,
            0x81 => MalformedPacket,
            0x82 => ProtocolError,
            0x83 => ImplementationSpecificError,
            0x84 => UnsupportedProtocolVersion,
            0x85 => ClientIdentifierNotValid,
            0x86 => BadUserNameOrPassword,
            0x87 => NotAuthorized,
            0x88 => ServerUnavailable,
            0x89 => ServerBusy,
            0x8A => Banned,
            0x8B => ServerShuttingDown,
            0x8C => BadAuthenticationMethod,
            0x8D => KeepAliveTimeout,
            0x8E => SessionTakenOver,
            0x8F => TopicFilterInvalid,
            0x90 => TopicNameInvalid,
            0x91 => PacketIdentifierInUse,
            0x92 => PacketIdentifierNotFound,
            0x93 => ReceiveMaximumExceeded,
            0x94 => TopicAliasInvalid,
            0x95 => PacketTooLarge,
            0x96 => MessageRateTooHigh,
            0x97 => QuotaExceeded,
            0x98 => AdministrativeAction,
            0x99 => PayloadFormatInvalid,
            0x9A => RetainNotSupported,
            0x9B => QoSNotSupported,
            0x9C => UseAnotherServer,
            0x9D => ServerMoved,
            0x9E => SharedSubscriptionsNotSupported,
            0x9F => ConnectionRateExceeded,
            0xA0 => MaximumConnectTime,
            0xA1 => SubscriptionIdentifiersNotSupported,
            0xA2 => WildcardSubscriptionsNotSupported,
            _ => return None,
        })
    }

    /// True for codes of 0x80 and above, which report a failure.
    pub fn is_error(self) -> bool {
        self.as_u8() >= 0x80
    }

    /// The 3.1.1 CONNACK return code (§3.2.2.3) that best matches this 5.0 code.
    pub fn to_v311_connack(self) -> u8 {
        use ReasonCode::*;
        match self {
            Success => 0,
            UnsupportedProtocolVersion => 1,
            ClientIdentifierNotValid => 2,
            ServerUnavailable
            | ServerBusy
            | ServerShuttingDown
            | UseAnotherServer
            | ServerMoved
            | ConnectionRateExceeded
            | QuotaExceeded => 3,
            BadUserNameOrPassword | BadAuthenticationMethod => 4,
            _ => 5,
        }
    }

    /// The 3.1.1 SUBACK return code: granted QoS 0..2, otherwise 0x80 (failure).
    pub fn to_v311_suback(self) -> u8 {
        match self {
            ReasonCode::Success => 0x00,
            ReasonCode::GrantedQoS1 => 0x01,
            ReasonCode::GrantedQoS2 => 0x02,
            _ => 0x80,
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} (0x{:02X})", self, self.as_u8())
    }
}
