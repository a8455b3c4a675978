//! The per-session outbound queue: messages waiting to be sent, and the inflight window of QoS
//! 1/2 messages sent but not yet acknowledged.
//!
//! Overload policy (documented in the README):
//! - QoS 0 messages beyond `maxQueuedMessages` are dropped for that subscriber and counted.
//! - QoS 1/2 messages for an *offline* session beyond the limit are dropped and counted (the
//!   newest is refused, the queue keeps what it already had, like Mosquitto).
//! - QoS 1/2 messages for a *connected* subscriber are never dropped: the push reports `Full`
//!   and the publisher is held back (it stops reading its socket and withholds its PUBACK)
//!   until space frees up.

use std::collections::VecDeque;

use crate::message::Delivery;
use crate::metrics::DropReason;
use crate::protocol::QoS;

/// Where a QoS 1/2 message is in its acknowledgement handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflightStage {
    /// QoS 1 PUBLISH sent, waiting for PUBACK.
    AwaitingPubAck,
    /// QoS 2 PUBLISH sent, waiting for PUBREC.
    AwaitingPubRec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitingPubComp,
}

/// A message in the inflight window.
#[derive(Debug, Clone)]
pub struct Inflight {
    /// Packet identifier used for it.
    pub packet_id: u16,
    /// Handshake stage.
    pub stage: InflightStage,
    /// The message, kept until it can no longer need re-sending (dropped after PUBREC).
    pub delivery: Option<Delivery>,
}

/// Result of offering a message to a session.
#[derive(Debug)]
pub enum Enqueued {
    /// Accepted.
    Queued,
    /// A connected subscriber's queue is full: the QoS 1/2 message is handed back so the
    /// publisher can wait and retry.
    Full(Delivery),
    /// Not accepted, for the reason given.
    Dropped(DropReason),
}

/// Pending messages plus the inflight window, in send order.
#[derive(Debug, Default)]
pub struct OutboundQueue {
    pending: VecDeque<Delivery>,
    inflight: VecDeque<Inflight>,
    last_packet_id: u16,
    publishers_waiting: bool,
}

impl OutboundQueue {
    /// Offers a message under the overload policy above.
    pub fn push(&mut self, delivery: Delivery, capacity: usize, online: bool) -> Enqueued {
        if self.pending.len() >= capacity {
            return if delivery.qos == QoS::AtMostOnce || !online {
                Enqueued::Dropped(DropReason::QueueFull)
            } else {
                self.publishers_waiting = true;
                Enqueued::Full(delivery)
            };
        }
        self.pending.push_back(delivery);
        Enqueued::Queued
    }

    /// Queues without a capacity check: retained messages replayed on SUBSCRIBE are bounded by
    /// the retained store, and refusing them would lose them for good.
    pub fn push_unbounded(&mut self, delivery: Delivery) {
        self.pending.push_back(delivery);
    }

    /// Whether a push of a QoS 1/2 message would currently be refused as `Full`.
    pub fn is_full(&self, capacity: usize) -> bool {
        self.pending.len() >= capacity
    }

    /// Messages waiting to be sent.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Messages sent and not yet fully acknowledged.
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Takes the next message that may be sent now, given the inflight window, assigning a
    /// packet id for QoS 1/2 and recording it as inflight. Messages leave in queue order, so a
    /// QoS 0 message never overtakes a QoS 1 message queued before it.
    pub fn pop_sendable(&mut self, window: usize) -> Option<(Option<u16>, Delivery)> {
        let front = self.pending.front()?;
        if front.qos == QoS::AtMostOnce {
            return self.pending.pop_front().map(|d| (None, d));
        }
        if self.inflight.len() >= window {
            return None;
        }
        let delivery = self.pending.pop_front()?;
        let packet_id = self.next_packet_id();
        let stage = if delivery.qos == QoS::AtLeastOnce {
            InflightStage::AwaitingPubAck
        } else {
            InflightStage::AwaitingPubRec
        };
        self.inflight.push_back(Inflight {
            packet_id,
            stage,
            delivery: Some(delivery.clone()),
        });
        Some((Some(packet_id), delivery))
    }

    /// Packet ids are handed out in sequence, skipping 0. Inflight entries keep send order and
    /// the window is far below 65535, so the next id can never still be in use.
    fn next_packet_id(&mut self) -> u16 {
        self.last_packet_id = self.last_packet_id.checked_add(1).unwrap_or(1);
        self.last_packet_id
    }

    fn position(&self, packet_id: u16, stage: InflightStage) -> Option<usize> {
        // Acknowledgements nearly always arrive in order: the front is the usual hit.
        self.inflight
            .iter()
            .position(|entry| entry.packet_id == packet_id && entry.stage == stage)
    }

    /// PUBACK received: completes a QoS 1 delivery. False if no such message was inflight.
    pub fn puback(&mut self, packet_id: u16) -> bool {
        self.remove_at_stage(packet_id, InflightStage::AwaitingPubAck)
    }

    /// PUBREC received: the message is now the client's; only the PUBREL remains to be
    /// confirmed. False if no such message was awaiting PUBREC.
    pub fn pubrec(&mut self, packet_id: u16) -> bool {
        match self.position(packet_id, InflightStage::AwaitingPubRec) {
            Some(index) => {
                let entry = &mut self.inflight[index];
                entry.stage = InflightStage::AwaitingPubComp;
                entry.delivery = None;
                true
            }
            None => false,
        }
    }

    /// PUBREC with an error reason: the client refused the message; forget it.
    pub fn pubrec_refused(&mut self, packet_id: u16) -> bool {
        self.remove_at_stage(packet_id, InflightStage::AwaitingPubRec)
    }

    /// PUBCOMP received: completes a QoS 2 delivery.
    pub fn pubcomp(&mut self, packet_id: u16) -> bool {
        self.remove_at_stage(packet_id, InflightStage::AwaitingPubComp)
    }

    /// Forgets an inflight message without an acknowledgement (it was too large to send, so
    /// the spec says to behave as if its delivery completed).
    pub fn forget(&mut self, packet_id: u16) {
        if let Some(index) = self.inflight.iter().position(|e| e.packet_id == packet_id) {
            self.inflight.remove(index);
        }
    }

    fn remove_at_stage(&mut self, packet_id: u16, stage: InflightStage) -> bool {
        match self.position(packet_id, stage) {
            Some(index) => {
                self.inflight.remove(index);
                true
            }
            None => false,
        }
    }

    /// The inflight window in send order, for re-sending when a session resumes.
    pub fn inflight(&self) -> impl Iterator<Item = &Inflight> {
        self.inflight.iter()
    }

    /// Removes and returns the messages delivered through a shared subscription that the
    /// client has not taken responsibility for (pending, or QoS 1 unacknowledged), so they can
    /// go to another member of the group.
    pub fn take_shared_unacknowledged(&mut self) -> Vec<Delivery> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.inflight.len());
        for entry in self.inflight.drain(..) {
            let movable = entry.stage == InflightStage::AwaitingPubAck
                && entry
                    .delivery
                    .as_ref()
                    .is_some_and(|d| d.shared_group.is_some());
            match (movable, entry.delivery) {
                (true, Some(delivery)) => taken.push(delivery),
                (_, delivery) => kept.push_back(Inflight { delivery, ..entry }),
            }
        }
        self.inflight = kept;
        let (shared, own): (VecDeque<_>, VecDeque<_>) = self
            .pending
            .drain(..)
            .partition(|d| d.shared_group.is_some() && d.qos != QoS::AtMostOnce);
        self.pending = own;
        taken.extend(shared);
        taken
    }

    /// Drops everything (clean start, session end). Returns how many messages were discarded.
    pub fn clear(&mut self) -> usize {
        let count = self.pending.len() + self.inflight.len();
        self.pending.clear();
        self.inflight.clear();
        count
    }

    /// True once per wait: space is available again and a publisher had been told `Full`.
    pub fn take_space_signal(&mut self, capacity: usize) -> bool {
        if self.publishers_waiting && self.pending.len() < capacity {
            self.publishers_waiting = false;
            true
        } else {
            false
        }
    }

    /// Drops queued messages that no longer pass `keep` (ACL revocation, expiry); returns how
    /// many were dropped.
    pub fn retain_pending(&mut self, mut keep: impl FnMut(&Delivery) -> bool) -> usize {
        let before = self.pending.len();
        self.pending.retain(|d| keep(d));
        before - self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::message::Message;

    fn delivery(qos: QoS) -> Delivery {
        Delivery {
            message: Arc::new(Message::from_broker("t".into(), "p".into(), false)),
            qos,
            retain: false,
            subscription_ids: Vec::new(),
            shared_group: None,
        }
    }

    #[test]
    fn qos0_beyond_capacity_is_dropped_for_a_connected_subscriber() {
        let mut queue = OutboundQueue::default();
        assert!(matches!(
            queue.push(delivery(QoS::AtMostOnce), 1, true),
            Enqueued::Queued
        ));
        assert!(matches!(
            queue.push(delivery(QoS::AtMostOnce), 1, true),
            Enqueued::Dropped(DropReason::QueueFull)
        ));
    }

    #[test]
    fn qos1_beyond_capacity_is_handed_back_for_a_connected_subscriber() {
        let mut queue = OutboundQueue::default();
        queue.push(delivery(QoS::AtLeastOnce), 1, true);
        assert!(matches!(
            queue.push(delivery(QoS::AtLeastOnce), 1, true),
            Enqueued::Full(_)
        ));
        assert!(!queue.take_space_signal(1));
        queue.pop_sendable(10);
        assert!(queue.take_space_signal(1));
    }

    #[test]
    fn qos1_beyond_capacity_is_dropped_for_an_offline_session() {
        let mut queue = OutboundQueue::default();
        queue.push(delivery(QoS::AtLeastOnce), 1, false);
        assert!(matches!(
            queue.push(delivery(QoS::AtLeastOnce), 1, false),
            Enqueued::Dropped(DropReason::QueueFull)
        ));
    }

    #[test]
    fn inflight_window_holds_back_qos1_and_the_qos0_behind_it() {
        let mut queue = OutboundQueue::default();
        queue.push(delivery(QoS::AtLeastOnce), 10, true);
        queue.push(delivery(QoS::AtLeastOnce), 10, true);
        queue.push(delivery(QoS::AtMostOnce), 10, true);
        assert_eq!(queue.pop_sendable(1).unwrap().0, Some(1));
        assert!(queue.pop_sendable(1).is_none(), "window of one is full");
        assert!(queue.puback(1));
        assert_eq!(queue.pop_sendable(1).unwrap().0, Some(2));
        assert_eq!(
            queue.pop_sendable(1).unwrap().0,
            None,
            "QoS 0 goes right after"
        );
    }

    #[test]
    fn qos2_handshake_moves_through_its_stages() {
        let mut queue = OutboundQueue::default();
        queue.push(delivery(QoS::ExactlyOnce), 10, true);
        let (id, _) = queue.pop_sendable(10).unwrap();
        let id = id.unwrap();
        assert!(
            !queue.puback(id),
            "a QoS 2 message is not completed by PUBACK"
        );
        assert!(queue.pubrec(id));
        assert_eq!(
            queue.inflight().next().unwrap().stage,
            InflightStage::AwaitingPubComp
        );
        assert!(queue.pubcomp(id));
        assert_eq!(queue.inflight_len(), 0);
    }

    #[test]
    fn packet_ids_skip_zero_on_wrap() {
        let mut queue = OutboundQueue {
            last_packet_id: u16::MAX,
            ..OutboundQueue::default()
        };
        assert_eq!(queue.next_packet_id(), 1);
    }

    #[test]
    fn shared_unacknowledged_messages_are_taken_but_own_ones_stay() {
        let mut queue = OutboundQueue::default();
        let mut shared = delivery(QoS::AtLeastOnce);
        shared.shared_group = Some(Arc::from("g/t"));
        queue.push(shared.clone(), 10, true);
        queue.pop_sendable(10);
        queue.push(shared, 10, true);
        queue.push(delivery(QoS::AtLeastOnce), 10, true);
        assert_eq!(queue.take_shared_unacknowledged().len(), 2);
        assert_eq!(queue.pending_len(), 1);
        assert_eq!(queue.inflight_len(), 0);
    }
}
