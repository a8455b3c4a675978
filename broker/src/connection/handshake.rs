//! CONNECT → CONNACK: checking what the client asked for against the broker's limits and
//! deciding what the connection will run with.

use bytestring::ByteString;

use crate::config::Limits;
use crate::protocol::{
    ConnAck, ConnAckProperties, Connect, ProtocolVersion, ReasonCode, MAX_REMAINING_LENGTH,
};

/// What the client declared about itself, after defaults are applied.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// Unacknowledged QoS 1/2 messages the client accepts at once.
    pub receive_maximum: u16,
    /// Largest packet the client accepts.
    pub max_packet_size: u32,
    /// Topic aliases the broker may assign when sending to this client.
    pub topic_alias_maximum: u16,
}

/// The terms a CONNECT was accepted on.
#[derive(Debug, Clone)]
pub struct Terms {
    /// Client identifier (assigned when the client sent an empty one).
    pub client_id: ByteString,
    /// Whether the broker assigned `client_id`.
    pub assigned_id: bool,
    /// Keep alive in seconds after the broker's cap; 0 = none.
    pub keep_alive: u16,
    /// Session expiry after the broker's cap (`u32::MAX` = never).
    pub session_expiry: u32,
    /// The client's own limits.
    pub client: ClientLimits,
}

/// Decides the terms of a CONNECT, or the reason to refuse it.
pub fn negotiate(connect: &Connect, limits: &Limits) -> Result<Terms, ReasonCode> {
    let v5 = connect.protocol_version == ProtocolVersion::V5;
    let (client_id, assigned_id) = if connect.client_id.is_empty() {
        // 3.1.1 allows an empty id only with a clean session (MQTT-3.1.3-8).
        if !v5 && !connect.clean_start {
            return Err(ReasonCode::ClientIdentifierNotValid);
        }
        (assign_client_id(), true)
    } else {
        (connect.client_id.clone(), false)
    };

    let keep_alive = negotiate_keep_alive(connect.keep_alive, limits.max_keep_alive, v5)?;

    let requested_expiry = if v5 {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        u32::MAX
    };
    let props = &connect.properties;
    Ok(Terms {
        client_id,
        assigned_id,
        keep_alive,
        session_expiry: requested_expiry.min(limits.max_session_expiry),
        client: ClientLimits {
            receive_maximum: props.receive_maximum.unwrap_or(u16::MAX),
            max_packet_size: props
                .maximum_packet_size
                .unwrap_or(MAX_REMAINING_LENGTH as u32 + 5),
            topic_alias_maximum: if v5 {
                props.topic_alias_maximum.unwrap_or(0)
            } else {
                0
            },
        },
    })
}

/// Caps the keep alive at the configured maximum. 5.0 clients are told the new value in
/// CONNACK; 3.1.1 has no way to tell them, so (like Mosquitto) a 3.1.1 client asking for more
/// than the maximum is refused rather than timed out for following its own setting.
fn negotiate_keep_alive(requested: u16, max: u16, v5: bool) -> Result<u16, ReasonCode> {
    if max == 0 || max == u16::MAX {
        return Ok(requested);
    }
    let too_long = requested == 0 || requested > max;
    match (too_long, v5) {
        (false, _) => Ok(requested),
        (true, true) => Ok(max),
        (true, false) => Err(ReasonCode::ClientIdentifierNotValid),
    }
}

/// A unique identifier for a client that sent none.
fn assign_client_id() -> ByteString {
    let random: u64 = rand::random();
    ByteString::from(format!("tern-{random:016x}"))
}

/// The CONNACK for accepted `terms`.
pub fn connack(
    connect: &Connect,
    terms: &Terms,
    limits: &Limits,
    session_present: bool,
) -> ConnAck {
    let mut properties = ConnAckProperties::default();
    if connect.protocol_version == ProtocolVersion::V5 {
        if limits.receive_maximum != u16::MAX {
            properties.receive_maximum = Some(limits.receive_maximum);
        }
        properties.maximum_packet_size = Some(limits.max_packet_size);
        properties.topic_alias_maximum = Some(limits.topic_alias_maximum);
        if terms.assigned_id {
            properties.assigned_client_identifier = Some(terms.client_id.clone());
        }
        if terms.keep_alive != connect.keep_alive {
            properties.server_keep_alive = Some(terms.keep_alive);
        }
        let requested = connect.properties.session_expiry_interval.unwrap_or(0);
        if terms.session_expiry != requested {
            properties.session_expiry_interval = Some(terms.session_expiry);
        }
    }
    ConnAck {
        session_present,
        reason_code: ReasonCode::Success,
        properties,
    }
}

/// A refusing CONNACK. Session Present is always 0 on refusal (MQTT-3.2.2-6).
pub fn refusal(reason_code: ReasonCode) -> ConnAck {
    ConnAck {
        session_present: false,
        reason_code,
        properties: ConnAckProperties::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_keep_alive_above_the_maximum_is_capped() {
        assert_eq!(negotiate_keep_alive(600, 60, true), Ok(60));
    }

    #[test]
    fn v5_keep_alive_zero_is_capped_when_a_maximum_is_set() {
        assert_eq!(negotiate_keep_alive(0, 60, true), Ok(60));
    }

    #[test]
    fn v311_keep_alive_above_the_maximum_is_refused() {
        assert!(negotiate_keep_alive(600, 60, false).is_err());
    }

    #[test]
    fn keep_alive_within_the_maximum_is_kept() {
        assert_eq!(negotiate_keep_alive(30, 60, false), Ok(30));
    }

    #[test]
    fn assigned_ids_are_unique() {
        assert_ne!(assign_client_id(), assign_client_id());
    }
}
