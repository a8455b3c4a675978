//! The subscriber side of every scenario: read PUBLISHes in batches, acknowledge QoS 1, hand each
//! payload stamp to a [`Recorder`], and count deliveries in the shared [`FlowWindow`].

use std::sync::Arc;

use anyhow::{bail, Context};
use tern_broker::protocol::Packet;
use tokio::sync::watch;

use crate::bench::client::{puback, Connection};
use crate::bench::flow::FlowWindow;
use crate::bench::payload::{self, Stamp};

/// What a subscriber does with each received message.
pub trait Recorder: Send + 'static {
    /// Called once per PUBLISH whose payload carries a stamp.
    fn record(&mut self, stamp: Stamp);
}

/// Counts only (the [`FlowWindow`] already does); for scenarios that need no per-message data.
impl Recorder for () {
    fn record(&mut self, _stamp: Stamp) {}
}

/// Reads until `stop` flips (or its sender is dropped), then returns the recorder.
///
/// Fails if the broker closes the connection, sends DISCONNECT, or sends something that does not
/// decode.
pub async fn run_subscriber<R: Recorder>(
    mut connection: Connection,
    flow: Arc<FlowWindow>,
    mut stop: watch::Receiver<bool>,
    mut recorder: R,
) -> anyhow::Result<R> {
    let mut packets = Vec::with_capacity(1024);
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            read = connection.reader.read_batch(&mut packets) => {
                read.context("subscriber")?;
            }
        }
        let mut delivered = 0u64;
        for packet in packets.drain(..) {
            match packet {
                Packet::Publish(publish) => {
                    delivered += 1;
                    if let Some(stamp) = payload::parse(&publish.payload) {
                        recorder.record(stamp);
                    }
                    if let Some(packet_id) = publish.packet_id {
                        connection.writer.push(&puback(packet_id))?;
                    }
                }
                Packet::Disconnect(disconnect) => {
                    bail!(
                        "the broker disconnected a subscriber: {:?}",
                        disconnect.reason_code
                    )
                }
                _ => {}
            }
        }
        connection
            .writer
            .flush()
            .await
            .context("subscriber acknowledging")?;
        flow.add_delivered(delivered);
    }
    connection.writer.disconnect().await;
    Ok(recorder)
}

/// Which sequence numbers arrived from each publisher; finds losses and duplicates.
#[derive(Debug, Default)]
pub struct SeqTracker {
    /// One bitset per publisher index.
    seen: Vec<Vec<u64>>,
    /// Messages that arrived more than once.
    pub duplicates: u64,
    /// Stamps with an implausible publisher index (ignored).
    pub foreign: u64,
}

/// Publisher indexes above this are not from this benchmark.
const MAX_PUBLISHERS: usize = 100_000;
/// Sequence numbers above this are not from this benchmark (bounds the bitset).
const MAX_SEQUENCE: u64 = 1 << 32;

impl SeqTracker {
    /// Whether `sequence` from `publisher` arrived.
    pub fn contains(&self, publisher: u32, sequence: u64) -> bool {
        let word = (sequence / 64) as usize;
        self.seen
            .get(publisher as usize)
            .and_then(|bits| bits.get(word))
            .is_some_and(|bits| bits & (1 << (sequence % 64)) != 0)
    }

    /// How many of the sequence numbers in `expected` from `publisher` did not arrive.
    pub fn missing(&self, publisher: u32, expected: impl IntoIterator<Item = u64>) -> u64 {
        expected
            .into_iter()
            .filter(|sequence| !self.contains(publisher, *sequence))
            .count() as u64
    }
}

impl Recorder for SeqTracker {
    fn record(&mut self, stamp: Stamp) {
        let publisher = stamp.publisher as usize;
        if publisher >= MAX_PUBLISHERS || stamp.sequence >= MAX_SEQUENCE {
            self.foreign += 1;
            return;
        }
        if self.seen.len() <= publisher {
            self.seen.resize_with(publisher + 1, Vec::new);
        }
        let bits = &mut self.seen[publisher];
        let word = (stamp.sequence / 64) as usize;
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        let mask = 1 << (stamp.sequence % 64);
        if bits[word] & mask != 0 {
            self.duplicates += 1;
        }
        bits[word] |= mask;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_missing_and_duplicates() {
        let mut tracker = SeqTracker::default();
        let stamp = |publisher, sequence| Stamp {
            publisher,
            sequence,
            sent_at_nanos: 0,
        };
        for sequence in [0, 1, 2, 4, 200, 2] {
            tracker.record(stamp(3, sequence));
        }
        assert_eq!(tracker.duplicates, 1);
        assert!(tracker.contains(3, 200));
        assert!(!tracker.contains(0, 0));
        assert_eq!(tracker.missing(3, 0..5), 1);
        assert_eq!(tracker.missing(9, 0..5), 5);
    }
}
