//! Throughput publishers: QoS 0 paced by the [`FlowWindow`], QoS 1 paced by PUBACKs.

use std::sync::Arc;

use anyhow::{bail, Context};
use bytestring::ByteString;
use tern_broker::protocol::{Packet, QoS};
use tokio::time::Instant;

use crate::bench::client::{publish, Connection};
use crate::bench::flow::FlowWindow;
use crate::bench::payload::{self, Stamp};

/// How often a QoS 1 publisher blocked by the flow window re-checks it while reading PUBACKs.
const FLOW_RECHECK: std::time::Duration = std::time::Duration::from_millis(1);

/// What a publisher did.
#[derive(Debug, Default, Clone)]
pub struct PublisherStats {
    /// Index written into every payload.
    pub index: u32,
    /// Messages written (sequence numbers `0..sent`).
    pub sent: u64,
    /// QoS 1: messages the broker acknowledged with success.
    pub acked: u64,
    /// QoS 1: sequence numbers the broker refused (PUBACK reason code >= 0x80).
    pub refused: Vec<u64>,
}

/// The fixed parts of a publisher.
#[derive(Debug, Clone)]
pub struct PublisherSpec {
    /// Index written into every payload.
    pub index: u32,
    /// Topic to publish on.
    pub topic: ByteString,
    /// Payload size.
    pub payload: usize,
    /// Messages per write.
    pub batch: usize,
    /// Deliveries each message produces (number of matching subscribers).
    pub fanout: u64,
    /// Stop publishing at this instant.
    pub deadline: Instant,
}

impl PublisherSpec {
    fn stamp(&self, sequence: u64) -> bytes::Bytes {
        payload::build(
            Stamp {
                publisher: self.index,
                sequence,
                sent_at_nanos: payload::now_nanos(),
            },
            self.payload,
        )
    }
}

/// Publishes QoS 0 batches until the deadline, never exceeding the flow window.
pub async fn publish_qos0(
    mut connection: Connection,
    spec: PublisherSpec,
    flow: Arc<FlowWindow>,
) -> anyhow::Result<PublisherStats> {
    let mut sequence = 0u64;
    while flow.wait_for_room(spec.deadline).await {
        for _ in 0..spec.batch {
            let message = publish(&spec.topic, QoS::AtMostOnce, None, spec.stamp(sequence));
            connection.writer.push(&message)?;
            sequence += 1;
        }
        flow.add_expected(spec.batch as u64 * spec.fanout);
        connection
            .writer
            .flush()
            .await
            .with_context(|| format!("publisher {}", spec.index))?;
    }
    connection.writer.disconnect().await;
    Ok(PublisherStats {
        index: spec.index,
        sent: sequence,
        ..PublisherStats::default()
    })
}

/// Publishes QoS 1 until the deadline with up to `window` unacknowledged messages (and within
/// the flow window), then waits (until `drain_deadline`) for the remaining PUBACKs.
pub async fn publish_qos1(
    mut connection: Connection,
    spec: PublisherSpec,
    flow: Arc<FlowWindow>,
    window: u16,
    drain_deadline: Instant,
) -> anyhow::Result<PublisherStats> {
    let window = usize::from(window.min(connection.server_receive_maximum()).max(1));
    // Sequence number per packet identifier still in flight.
    let mut in_flight: Vec<Option<u64>> = vec![None; usize::from(u16::MAX) + 1];
    let mut in_flight_count = 0usize;
    let mut next_id: u16 = 0;
    let mut stats = PublisherStats {
        index: spec.index,
        ..PublisherStats::default()
    };
    let mut packets = Vec::with_capacity(256);
    loop {
        let sending = Instant::now() < spec.deadline;
        if !sending && in_flight_count == 0 {
            break;
        }
        // Without room in the flow window, only PUBACKs are read (with a short timeout below,
        // so the window is checked again soon).
        let room = sending && in_flight_count < window && flow.has_room();
        if room {
            let count = window - in_flight_count;
            for _ in 0..count {
                // At most `window` (< 65,535) identifiers are in use, so this finds a free one
                // within `window + 1` steps.
                loop {
                    next_id = next_id.wrapping_add(1).max(1);
                    if in_flight[usize::from(next_id)].is_none() {
                        break;
                    }
                }
                in_flight[usize::from(next_id)] = Some(stats.sent);
                let message = publish(
                    &spec.topic,
                    QoS::AtLeastOnce,
                    Some(next_id),
                    spec.stamp(stats.sent),
                );
                connection.writer.push(&message)?;
                stats.sent += 1;
            }
            in_flight_count += count;
            flow.add_expected(count as u64 * spec.fanout);
            connection
                .writer
                .flush()
                .await
                .with_context(|| format!("publisher {}", spec.index))?;
        }
        if in_flight_count == 0 {
            if sending {
                flow.wait_for_room(spec.deadline).await;
            }
            continue;
        }
        let wait_until = if room || !sending {
            drain_deadline
        } else {
            Instant::now() + FLOW_RECHECK
        };
        match tokio::time::timeout_at(wait_until, connection.reader.read_batch(&mut packets)).await
        {
            Ok(read) => {
                read.with_context(|| format!("publisher {}", spec.index))?;
            }
            Err(_) if wait_until < drain_deadline => continue,
            Err(_) => bail!(
                "publisher {}: {in_flight_count} PUBACKs still missing at the drain deadline",
                spec.index
            ),
        }
        for packet in packets.drain(..) {
            match packet {
                Packet::PubAck(ack) => {
                    let Some(sequence) = in_flight[usize::from(ack.packet_id)].take() else {
                        bail!(
                            "publisher {}: PUBACK for unknown packet id {}",
                            spec.index,
                            ack.packet_id
                        );
                    };
                    in_flight_count -= 1;
                    if (ack.reason_code as u8) < 0x80 {
                        stats.acked += 1;
                    } else {
                        stats.refused.push(sequence);
                    }
                }
                Packet::Disconnect(disconnect) => bail!(
                    "the broker disconnected publisher {}: {:?}",
                    spec.index,
                    disconnect.reason_code
                ),
                _ => {}
            }
        }
    }
    connection.writer.disconnect().await;
    Ok(stats)
}
