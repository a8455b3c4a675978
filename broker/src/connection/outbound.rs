//! Turning queued deliveries into PUBLISH packets on the socket: the inflight window, topic
//! aliases, expiry and the client's Maximum Packet Size.

use std::time::Instant;

use bytestring::ByteString;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Connection, WRITE_HIGH_WATER};
use crate::message::Delivery;
use crate::metrics::{DeliveryTally, DropReason};
use crate::protocol::{encode, Packet, ProtocolVersion, PubAck, Publish, PublishProperties, QoS};
use crate::session::InflightStage;

/// What happened to one delivery handed to the encoder.
enum Encoded {
    /// Written to the write buffer.
    Sent,
    /// Not sent: expired or larger than the client accepts.
    Dropped(DropReason),
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Moves as many queued messages as the inflight window and the write buffer allow from
    /// the session into the write buffer, and wakes publishers waiting for queue space.
    pub(super) fn drain_session(&mut self) {
        if self.write_buf.len() >= WRITE_HIGH_WATER {
            return;
        }
        let limits = &self.broker.config().config.limits;
        let window = usize::from(self.client.receive_maximum.min(limits.max_inflight));
        let capacity = limits.max_queued_messages;
        let session = self.session.clone();
        let mut state = session.state.lock();
        if state.generation != self.generation {
            return;
        }
        let now = Instant::now();
        let mut taken = 0i64;
        let mut new_inflight = 0i64;
        let mut tally = DeliveryTally::default();
        while self.write_buf.len() < WRITE_HIGH_WATER {
            let Some((packet_id, delivery)) = state.outbound.pop_sendable(window) else {
                break;
            };
            taken += 1;
            match self.encode_delivery(packet_id, &delivery, false, now, &mut tally) {
                Encoded::Sent => new_inflight += i64::from(packet_id.is_some()),
                Encoded::Dropped(reason) => {
                    if let Some(id) = packet_id {
                        state.outbound.forget(id);
                    }
                    self.broker.metrics.dropped(reason);
                }
            }
        }
        let space_freed = state.outbound.take_space_signal(capacity);
        drop(state);
        self.broker.metrics.record_deliveries(tally);
        if taken > 0 {
            self.broker.metrics.queued_messages.sub(taken);
            self.broker.metrics.inflight_messages.add(new_inflight);
        }
        if space_freed {
            session.space.notify_waiters();
        }
    }

    /// Re-sends the inflight window of a resumed session, in order, with DUP set (PUBREL for
    /// messages the client already acknowledged with PUBREC).
    pub(super) fn resend_inflight(&mut self) {
        let session = self.session.clone();
        let state = session.state.lock();
        let now = Instant::now();
        let resend: Vec<(u16, InflightStage, Option<Delivery>)> = state
            .outbound
            .inflight()
            .map(|entry| (entry.packet_id, entry.stage, entry.delivery.clone()))
            .collect();
        drop(state);
        let mut tally = DeliveryTally::default();
        for (packet_id, stage, delivery) in resend {
            match (stage, delivery) {
                (InflightStage::AwaitingPubComp, _) => {
                    self.send(&Packet::PubRel(PubAck::success(packet_id)))
                }
                (_, Some(delivery)) => {
                    if let Encoded::Dropped(reason) =
                        self.encode_delivery(Some(packet_id), &delivery, true, now, &mut tally)
                    {
                        session.state.lock().outbound.forget(packet_id);
                        self.broker.metrics.inflight_messages.dec();
                        self.broker.metrics.dropped(reason);
                    }
                }
                (_, None) => {}
            }
        }
        self.broker.metrics.record_deliveries(tally);
    }

    /// Encodes one delivery as a PUBLISH into the write buffer, counting it in `tally`. The
    /// latency recorded runs to `now`, when the batch was taken from the queue.
    fn encode_delivery(
        &mut self,
        packet_id: Option<u16>,
        delivery: &Delivery,
        dup: bool,
        now: Instant,
        tally: &mut DeliveryTally,
    ) -> Encoded {
        let message = &delivery.message;
        // An inflight message being re-sent has already started its handshake; only messages
        // that never left are subject to expiry.
        if !dup && message.is_expired(now) {
            return Encoded::Dropped(DropReason::Expired);
        }
        let (topic, alias, new_alias) = self.outbound_topic(&message.topic);
        let properties = if self.version == ProtocolVersion::V5 {
            PublishProperties {
                message_expiry_interval: message.remaining_expiry(now),
                topic_alias: alias,
                subscription_identifiers: delivery.subscription_ids.clone(),
                ..message.properties.clone()
            }
        } else {
            PublishProperties::default()
        };
        let publish = Publish {
            dup: dup && delivery.qos != QoS::AtMostOnce,
            qos: delivery.qos,
            retain: delivery.retain,
            topic,
            packet_id,
            properties,
            payload: message.payload.clone(),
        };
        let start = self.write_buf.len();
        let packet = Packet::Publish(publish);
        let fits = match encode(&packet, self.version, &mut self.write_buf) {
            Ok(size) => size <= self.client.max_packet_size as usize,
            Err(_) => false,
        };
        if !fits {
            self.write_buf.truncate(start);
            if let (true, Some(aliases)) = (new_alias, self.aliases.as_mut()) {
                aliases.outbound.remove(&message.topic);
            }
            return Encoded::Dropped(DropReason::TooLarge);
        }
        tally.sent(
            &self.broker.metrics,
            delivery.qos,
            now.saturating_duration_since(message.received_at),
        );
        Encoded::Sent
    }

    /// The topic field and alias for a PUBLISH to this client: once a topic has an alias, later
    /// messages send only the alias. Aliases are assigned first come, first served up to the
    /// client's Topic Alias Maximum; topics beyond that are sent in full.
    fn outbound_topic(&mut self, topic: &ByteString) -> (ByteString, Option<u16>, bool) {
        let maximum = self.client.topic_alias_maximum;
        if maximum == 0 {
            return (topic.clone(), None, false);
        }
        let aliases = &mut self.aliases.get_or_insert_with(Default::default).outbound;
        if let Some(&alias) = aliases.get(topic) {
            return (ByteString::new(), Some(alias), false);
        }
        let next = aliases.len() as u16 + 1;
        if next > maximum {
            return (topic.clone(), None, false);
        }
        aliases.insert(topic.clone(), next);
        (topic.clone(), Some(next), true)
    }
}
