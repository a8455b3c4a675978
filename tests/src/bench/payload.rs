//! The benchmark payload: who sent it, its sequence number and when it was sent.
//!
//! Layout (big-endian), padded with zeros to the configured size:
//! `publisher: u32 | sequence: u64 | sent_at_nanos: u64`.
//! Timestamps are nanoseconds since a process-wide origin, so senders and receivers (all in the
//! load generator process) share one monotonic clock.

use std::sync::OnceLock;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes used by the header; payloads must be at least this large.
pub const HEADER_LEN: usize = 20;

/// The decoded payload header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the publishing client within its scenario.
    pub publisher: u32,
    /// Per-publisher sequence number, from 0.
    pub sequence: u64,
    /// Send time in nanoseconds since [`now_nanos`]'s origin.
    pub sent_at_nanos: u64,
}

/// Nanoseconds since the first call in this process (monotonic).
pub fn now_nanos() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Builds a payload of `size` bytes (at least [`HEADER_LEN`]) carrying `stamp`.
pub fn build(stamp: Stamp, size: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(size.max(HEADER_LEN));
    buf.put_u32(stamp.publisher);
    buf.put_u64(stamp.sequence);
    buf.put_u64(stamp.sent_at_nanos);
    buf.resize(size.max(HEADER_LEN), 0);
    buf.freeze()
}

/// Reads the header back; `None` if the payload is too short.
pub fn parse(payload: &[u8]) -> Option<Stamp> {
    let header = payload.get(..HEADER_LEN)?;
    let publisher = u32::from_be_bytes(header[0..4].try_into().ok()?);
    let sequence = u64::from_be_bytes(header[4..12].try_into().ok()?);
    let sent_at_nanos = u64::from_be_bytes(header[12..20].try_into().ok()?);
    Some(Stamp {
        publisher,
        sequence,
        sent_at_nanos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let stamp = Stamp {
            publisher: 7,
            sequence: 1 << 40,
            sent_at_nanos: now_nanos(),
        };
        let payload = build(stamp, 64);
        assert_eq!(payload.len(), 64);
        assert_eq!(parse(&payload), Some(stamp));
        assert_eq!(build(stamp, 3).len(), HEADER_LEN);
        assert_eq!(parse(&payload[..10]), None);
    }
}
