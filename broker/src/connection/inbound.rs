//! What the broker does with each packet a client sends.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{packet_type_code, Connection, Exit, Stalled};
use crate::message::Message;
use crate::protocol::topic::{level_count, parse_filter, validate_topic_name, FilterKind};
use crate::protocol::{
    AckProperties, Disconnect, Packet, ProtocolVersion, PubAck, Publish, QoS, ReasonCode, SubAck,
    Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Handles one decoded packet; an `Err` ends the connection.
    pub(super) fn handle_packet(&mut self, packet: Packet) -> Result<(), Exit> {
        self.broker
            .metrics
            .packet_received(packet_type_code(&packet));
        match packet {
            Packet::Publish(publish) => self.handle_publish(publish),
            Packet::PubAck(ack) => {
                let completed = self.session.state.lock().outbound.puback(ack.packet_id);
                if completed {
                    self.broker.metrics.inflight_messages.dec();
                }
                Ok(())
            }
            Packet::PubRec(ack) => {
                self.handle_pubrec(ack);
                Ok(())
            }
            Packet::PubRel(ack) => {
                let known = self
                    .session
                    .state
                    .lock()
                    .incoming_qos2
                    .remove(&ack.packet_id);
                let reason = if known {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                self.send(&Packet::PubComp(ack_with(ack.packet_id, reason)));
                Ok(())
            }
            Packet::PubComp(ack) => {
                if self.session.state.lock().outbound.pubcomp(ack.packet_id) {
                    self.broker.metrics.inflight_messages.dec();
                }
                Ok(())
            }
            Packet::Subscribe(subscribe) => self.handle_subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe) => {
                self.handle_unsubscribe(unsubscribe);
                Ok(())
            }
            Packet::PingReq => {
                self.send(&Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(disconnect) => Err(self.handle_disconnect(disconnect)),
            Packet::Auth(_) => Err(protocol_error(
                ReasonCode::ProtocolError,
                "AUTH without an authentication method in CONNECT",
            )),
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => Err(protocol_error(
                ReasonCode::ProtocolError,
                "packet type not allowed from a client",
            )),
        }
    }

    fn handle_pubrec(&mut self, ack: PubAck) {
        let mut state = self.session.state.lock();
        if ack.reason_code.is_error() {
            if state.outbound.pubrec_refused(ack.packet_id) {
                self.broker.metrics.inflight_messages.dec();
            }
            return;
        }
        let known = state.outbound.pubrec(ack.packet_id);
        drop(state);
        let reason = if known {
            ReasonCode::Success
        } else {
            ReasonCode::PacketIdentifierNotFound
        };
        self.send(&Packet::PubRel(ack_with(ack.packet_id, reason)));
    }

    /// Resolves the topic alias (5.0) and checks the topic; returns the full topic.
    fn resolve_topic(&mut self, publish: &mut Publish) -> Result<(), Exit> {
        if let Some(alias) = publish.properties.topic_alias {
            let limit = self.broker.config().config.limits.topic_alias_maximum;
            if alias == 0 || alias > limit {
                return Err(protocol_error(
                    ReasonCode::TopicAliasInvalid,
                    "topic alias outside the range the broker advertised",
                ));
            }
            if publish.topic.is_empty() {
                let known = self.aliases.as_ref().and_then(|a| a.inbound.get(&alias));
                match known {
                    Some(topic) => publish.topic = topic.clone(),
                    None => {
                        return Err(protocol_error(
                            ReasonCode::ProtocolError,
                            "topic alias used before it was defined",
                        ))
                    }
                }
            } else {
                self.aliases
                    .get_or_insert_with(Default::default)
                    .inbound
                    .insert(alias, crate::message::owned_string(&publish.topic));
            }
        }
        if validate_topic_name(&publish.topic).is_err() {
            return Err(protocol_error(
                ReasonCode::TopicNameInvalid,
                "invalid topic name",
            ));
        }
        let max_levels = self.broker.config().config.limits.max_topic_levels;
        if level_count(&publish.topic) > max_levels {
            return Err(protocol_error(
                ReasonCode::TopicNameInvalid,
                "topic has more levels than limits.maxTopicLevels",
            ));
        }
        Ok(())
    }

    fn handle_publish(&mut self, mut publish: Publish) -> Result<(), Exit> {
        self.resolve_topic(&mut publish)?;
        self.broker.metrics.message_received(publish.qos);
        let packet_id = publish.packet_id.unwrap_or(0);

        if publish.qos != QoS::AtMostOnce {
            let receive_maximum = self.broker.config().config.limits.receive_maximum;
            let unacknowledged = self.session.state.lock().incoming_qos2.len();
            if unacknowledged >= usize::from(receive_maximum) {
                return Err(protocol_error(
                    ReasonCode::ReceiveMaximumExceeded,
                    "more unacknowledged QoS 1/2 PUBLISHes than Receive Maximum",
                ));
            }
        }
        if publish.qos == QoS::ExactlyOnce {
            let first_time = self.session.state.lock().incoming_qos2.insert(packet_id);
            if !first_time {
                // A re-sent QoS 2 PUBLISH: already routed once; only acknowledge again.
                self.send(&Packet::PubRec(PubAck::success(packet_id)));
                return Ok(());
            }
        }
        if let Some(refusal) = self.refuse_publish(&publish) {
            self.acknowledge(publish.qos, packet_id, refusal);
            return Ok(());
        }

        let qos = publish.qos;
        let message = Message::from_publish(publish, self.session.id, std::time::Instant::now());
        let blocked = self.broker.publish(Arc::new(message));
        if blocked.is_empty() {
            self.acknowledge(qos, packet_id, ReasonCode::Success);
        } else {
            self.broker.metrics.backpressure_waits.inc();
            // Not reading on purpose: the keep-alive sweeper must not count this as silence.
            self.session
                .keep_alive
                .paused
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let timeout = self.broker.config().config.limits.backpressure_timeout;
            self.stalled = Some(Box::new(Stalled {
                blocked,
                packet_id,
                qos,
                deadline: Instant::now() + Duration::from_secs(u64::from(timeout)),
                wait: None,
            }));
        }
        Ok(())
    }

    /// A reason to accept but not route a PUBLISH, answered in its acknowledgement (3.1.1
    /// acknowledgements carry no reason: the message is dropped, as Mosquitto does).
    fn refuse_publish(&mut self, publish: &Publish) -> Option<ReasonCode> {
        if publish.topic.starts_with("$SYS") {
            return Some(ReasonCode::NotAuthorized);
        }
        let utf8_declared = publish.properties.payload_format_indicator == Some(1);
        if utf8_declared && std::str::from_utf8(&publish.payload).is_err() {
            return Some(ReasonCode::PayloadFormatInvalid);
        }
        if !self.may_publish(&publish.topic, publish.qos, publish.retain) {
            return Some(ReasonCode::NotAuthorized);
        }
        None
    }

    /// Sends PUBACK / PUBREC for a QoS 1 / 2 publish (nothing for QoS 0).
    fn acknowledge(&mut self, qos: QoS, packet_id: u16, reason: ReasonCode) {
        // A refused QoS 2 message is not awaiting PUBREL: forget its id.
        if qos == QoS::ExactlyOnce && reason.is_error() {
            self.session.state.lock().incoming_qos2.remove(&packet_id);
        }
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(ack_with(packet_id, reason))),
            QoS::ExactlyOnce => self.send(&Packet::PubRec(ack_with(packet_id, reason))),
        }
    }

    /// Polls the stalled publish's wait for queue space (creating it on first use); ready when
    /// a blocked subscriber may have room again or the stall deadline has passed.
    pub(super) fn poll_space(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let wait = match self.stalled.as_ref().map(|stalled| stalled.wait.is_none()) {
            None => return Poll::Ready(()),
            Some(true) => Some(self.wait_for_space()),
            Some(false) => None,
        };
        let stalled = self.stalled.as_mut().expect("checked above");
        if let Some(wait) = wait {
            stalled.wait = Some(wait);
        }
        stalled.wait.as_mut().expect("set above").as_mut().poll(cx)
    }

    /// A future that completes when any blocked subscriber may have room again, or at the
    /// stall deadline. It registers for the wake-up before re-checking, so a notification sent
    /// in between is not lost.
    fn wait_for_space(&self) -> BoxFuture<'static, ()> {
        let stalled = self.stalled.as_ref().expect("called only while stalled");
        let target = stalled.blocked[0].0.clone();
        let deadline = stalled.deadline;
        let capacity = self.broker.config().config.limits.max_queued_messages;
        async move {
            let notified = target.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !target.state.lock().outbound.is_full(capacity) {
                return;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
        .boxed()
    }

    /// Offers the held-back deliveries again; acknowledges once all are placed, or refuses the
    /// publish at the deadline.
    pub(super) fn retry_stalled(&mut self) -> Result<(), Exit> {
        let Some(mut stalled) = self.stalled.take() else {
            return Ok(());
        };
        let pending = std::mem::take(&mut stalled.blocked);
        for (session, delivery) in pending {
            if let Some(delivery) = self.broker.enqueue(&session, delivery) {
                stalled.blocked.push((session, delivery));
            }
        }
        let keep_alive = &self.session.keep_alive;
        keep_alive
            .last_packet_ms
            .store(self.broker.clock_ms(), std::sync::atomic::Ordering::Relaxed);
        let still_stalled = !stalled.blocked.is_empty() && Instant::now() < stalled.deadline;
        keep_alive
            .paused
            .store(still_stalled, std::sync::atomic::Ordering::Relaxed);
        if stalled.blocked.is_empty() {
            self.acknowledge(stalled.qos, stalled.packet_id, ReasonCode::Success);
            return Ok(());
        }
        if Instant::now() < stalled.deadline {
            stalled.wait = None;
            self.stalled = Some(stalled);
            return Ok(());
        }
        self.broker.metrics.backpressure_timeouts.inc();
        match self.version {
            ProtocolVersion::V5 => {
                self.acknowledge(stalled.qos, stalled.packet_id, ReasonCode::QuotaExceeded);
                Ok(())
            }
            // 3.1.1 has no way to refuse one message: close, and the client re-sends it.
            ProtocolVersion::V311 => Err(Exit::Closed),
        }
    }

    fn handle_subscribe(&mut self, subscribe: Subscribe) -> Result<(), Exit> {
        let identifier = subscribe.properties.subscription_identifier;
        let max_levels = self.broker.config().config.limits.max_topic_levels;
        let mut reason_codes = Vec::with_capacity(subscribe.filters.len());
        for request in &subscribe.filters {
            let kind = match parse_filter(&request.filter) {
                Ok(kind) => kind,
                Err(_) if self.version == ProtocolVersion::V5 => {
                    reason_codes.push(ReasonCode::TopicFilterInvalid);
                    continue;
                }
                Err(_) => {
                    return Err(protocol_error(
                        ReasonCode::TopicFilterInvalid,
                        "invalid topic filter",
                    ))
                }
            };
            let inner = match kind {
                FilterKind::Normal(f) | FilterKind::Exclusive(f) => f,
                FilterKind::Shared { filter, .. } => {
                    if request.options.no_local {
                        return Err(protocol_error(
                            ReasonCode::ProtocolError,
                            "No Local on a shared subscription",
                        ));
                    }
                    filter
                }
            };
            if level_count(inner) > max_levels {
                reason_codes.push(ReasonCode::TopicFilterInvalid);
                continue;
            }
            let Some(granted) = self.subscription_grant(inner, request.options.qos) else {
                reason_codes.push(ReasonCode::NotAuthorized);
                continue;
            };
            let options = SubscriptionOptions {
                qos: granted,
                ..request.options
            };
            let reason = self
                .broker
                .subscribe(&self.session, &request.filter, options, identifier);
            reason_codes.push(reason);
        }
        self.send(&Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties: AckProperties::default(),
            reason_codes,
        }));
        Ok(())
    }

    fn handle_unsubscribe(&mut self, unsubscribe: Unsubscribe) {
        let reason_codes = unsubscribe
            .filters
            .iter()
            .map(|filter| {
                if self.broker.unsubscribe(&self.session, filter) {
                    ReasonCode::Success
                } else {
                    ReasonCode::NoSubscriptionExisted
                }
            })
            .collect();
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: AckProperties::default(),
            reason_codes,
        }));
    }

    fn handle_disconnect(&mut self, disconnect: Disconnect) -> Exit {
        if let Some(expiry) = disconnect.properties.session_expiry_interval {
            let mut state = self.session.state.lock();
            if state.expiry_interval == 0 && expiry != 0 {
                return protocol_error(
                    ReasonCode::ProtocolError,
                    "DISCONNECT sets a session expiry on a session that had none",
                );
            }
            let max = self.broker.config().config.limits.max_session_expiry;
            state.expiry_interval = expiry.min(max);
        }
        Exit::ClientDisconnect {
            publish_will: disconnect.reason_code == ReasonCode::DisconnectWithWillMessage,
        }
    }
}

fn ack_with(packet_id: u16, reason_code: ReasonCode) -> PubAck {
    PubAck {
        packet_id,
        reason_code,
        properties: AckProperties::default(),
    }
}

fn protocol_error(reason: ReasonCode, message: &str) -> Exit {
    Exit::ProtocolError(reason, message.to_string())
}
