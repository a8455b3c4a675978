//! The MQTT wire format: packets, properties, reason codes, encode and decode.
//!
//! This module is pure: it turns bytes into [`Packet`]s and back, and knows nothing about
//! sockets, sessions or broker state. Both protocol versions go through the same functions; the
//! version negotiated in CONNECT is passed in by the caller.

mod decode;
mod encode;
pub mod packet;
mod properties;
pub mod reason;
pub mod topic;

#[cfg(test)]
mod tests;

pub use decode::{decode, DecodeError};
pub use encode::{encode, publish_len, EncodeError};
pub use packet::*;
pub use reason::ReasonCode;

/// The largest Remaining Length the variable-byte encoding can express (§1.5.5).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;
