//! The broker's counters and gauges, registered in one Prometheus registry.
//!
//! Every labelled series the hot path touches is resolved once at start-up into a plain handle,
//! so counting a message is one atomic add — no label hashing, no lock. The per-message
//! counters and gauges are [sharded](sharded) per thread, so that add stays on the counting
//! core's own cache line, and deliveries, the busiest path (one publish fans out to every
//! subscriber), are tallied per batch in a [`DeliveryTally`] and recorded once per batch. Labels only take values from
//! small fixed sets (QoS, packet type, drop reason, listener name), never client ids or
//! topics, so cardinality stays bounded.

use std::time::Duration;

use prometheus::local::LocalHistogram;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::protocol::QoS;

mod sharded;

pub use sharded::Series;
use sharded::{Kind, ShardedFamily};

/// Why a message was not delivered to a subscriber (the `reason` label of
/// `tern_messages_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The subscriber's queue was full (QoS 0 for a slow subscriber, or an offline session).
    QueueFull,
    /// The message expired before it could be sent.
    Expired,
    /// The message exceeded the subscriber's Maximum Packet Size.
    TooLarge,
    /// Nobody was subscribed to the topic.
    NoSubscribers,
    /// A QoS 0 message for a session that was offline.
    Offline,
    /// The ACL refused it: the publisher may not publish to the topic, or (after a reload)
    /// the subscriber may no longer receive it.
    AclDenied,
}

impl DropReason {
    const ALL: [DropReason; 6] = [
        DropReason::QueueFull,
        DropReason::Expired,
        DropReason::TooLarge,
        DropReason::NoSubscribers,
        DropReason::Offline,
        DropReason::AclDenied,
    ];

    fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Expired => "expired",
            DropReason::TooLarge => "too_large",
            DropReason::NoSubscribers => "no_subscribers",
            DropReason::Offline => "offline_qos0",
            DropReason::AclDenied => "acl_denied",
        }
    }
}

/// Packet type names indexed by their fixed-header type code (0 is unused).
const PACKET_TYPES: [&str; 16] = [
    "RESERVED",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];

/// All broker metrics. Cloning handles is cheap; the struct lives in the shared `Broker`.
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// Connections currently open (after CONNACK).
    pub connections_current: IntGauge,
    /// Connections accepted at the socket level, ever.
    pub connections_accepted: IntCounter,
    /// Connections refused, by reason.
    pub connections_rejected: IntCounterVec,
    /// Open connections per listener.
    pub listener_connections: IntGaugeVec,
    /// Connections parked while idle (no task of their own; see `connection::park`).
    pub connections_parked: IntGauge,
    /// Sessions with a live connection.
    pub sessions_online: IntGauge,
    /// Persistent sessions without a connection.
    pub sessions_offline: IntGauge,
    /// Subscriptions currently held (including shared).
    pub subscriptions: IntGauge,
    /// Shared subscriptions currently held.
    pub shared_subscriptions: IntGauge,
    /// Retained messages currently stored.
    pub retained_messages: IntGauge,
    /// QoS 1/2 messages sent and not yet fully acknowledged, over all sessions.
    pub inflight_messages: Series,
    /// Messages queued for delivery, over all sessions.
    pub queued_messages: Series,
    messages_received: [Series; 3],
    messages_sent: [Series; 3],
    packets_received: Vec<Series>,
    packets_sent: Vec<Series>,
    /// Bytes read from client sockets.
    pub bytes_received: Series,
    /// Bytes written to client sockets.
    pub bytes_sent: Series,
    dropped: Vec<Series>,
    /// Times a publisher was held back because a subscriber's queue was full.
    pub backpressure_waits: IntCounter,
    /// Times a held-back publisher's message was refused after `limits.backpressureTimeout`.
    pub backpressure_timeouts: IntCounter,
    /// Connections closed for a protocol violation, by reason code name.
    pub protocol_errors: IntCounterVec,
    /// Time from a PUBLISH being read to a copy of it being written to a subscriber socket.
    pub delivery_latency: Histogram,
    config_reloads: [IntCounter; 2],
    /// Authentication attempts: by method (`AuthMethod` order) × `[success, failure]`.
    auth_attempts: [[IntCounter; 2]; 4],
    /// ACL decisions: `[publish, subscribe]` × `[allow, deny]`.
    acl_decisions: [[Series; 2]; 2],
    /// Subscriptions removed because a reloaded ACL no longer allows them.
    pub acl_revoked_subscriptions: IntCounter,
    config_info: IntGaugeVec,
    config_applied_at: prometheus::Gauge,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| {
            registry
                .register(c)
                .expect("metric names are unique constants");
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            reg(Box::new(g.clone()));
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            reg(Box::new(c.clone()));
            c
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            reg(Box::new(c.clone()));
            c
        };
        // Per-message metrics: one series per value of their single label (or none).
        let sharded = |kind: Kind, name: &str, help: &str, label: &[&str], values: &[&str]| {
            let series: Vec<[&str; 1]> = values.iter().map(|value| [*value]).collect();
            let series: Vec<&[&str]> = if label.is_empty() {
                vec![&[]]
            } else {
                series.iter().map(|values| &values[..]).collect()
            };
            let family =
                ShardedFamily::new(kind, name, help, label, &series).expect("valid metric");
            reg(Box::new(family.clone()));
            (0..series.len())
                .map(|index| family.series(index))
                .collect::<Vec<Series>>()
        };
        let single =
            |kind: Kind, name: &str, help: &str| sharded(kind, name, help, &[], &[]).remove(0);
        let by_qos = |name: &str, help: &str| -> [Series; 3] {
            let series = sharded(Kind::Counter, name, help, &["qos"], &["0", "1", "2"]);
            std::array::from_fn(|qos| series[qos].clone())
        };
        let by_packet_type =
            |name: &str, help: &str| sharded(Kind::Counter, name, help, &["type"], &PACKET_TYPES);
        let drop_reasons = DropReason::ALL.map(DropReason::label);
        let acl = ShardedFamily::new(
            Kind::Counter,
            "tern_acl_decisions_total",
            "ACL decisions on PUBLISH and SUBSCRIBE, by action and result.",
            &["action", "result"],
            &[
                &["publish", "allow"],
                &["publish", "deny"],
                &["subscribe", "allow"],
                &["subscribe", "deny"],
            ],
        )
        .expect("valid metric");
        reg(Box::new(acl.clone()));
        let acl_decisions =
            [0, 1].map(|action| [0, 1].map(|result| acl.series(action * 2 + result)));
        let listener_connections = IntGaugeVec::new(
            Opts::new(
                "tern_listener_connections",
                "Open client connections per listener.",
            ),
            &["listener"],
        )
        .expect("valid metric");
        reg(Box::new(listener_connections.clone()));
        let delivery_latency = Histogram::with_opts(
            HistogramOpts::new(
                "tern_delivery_latency_seconds",
                "Time from reading a PUBLISH to writing it to a subscriber.",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )
        .expect("valid metric");
        reg(Box::new(delivery_latency.clone()));
        let reloads = counter_vec(
            "tern_config_reloads_total",
            "Configuration reloads attempted, by result (success or failure).",
            &["result"],
        );
        let auth = counter_vec(
            "tern_auth_attempts_total",
            "Client authentication attempts, by method and result.",
            &["method", "result"],
        );
        let auth_attempts = crate::auth::AuthMethod::ALL.map(|method| {
            ["success", "failure"].map(|result| auth.with_label_values(&[method.label(), result]))
        });
        let config_info = IntGaugeVec::new(
            Opts::new(
                "tern_config_info",
                "The configuration revision in force (value always 1).",
            ),
            &["revision"],
        )
        .expect("valid metric");
        reg(Box::new(config_info.clone()));
        let config_applied_at = prometheus::Gauge::new(
            "tern_config_applied_timestamp_seconds",
            "Unix time at which the configuration in force was applied.",
        )
        .expect("valid metric");
        reg(Box::new(config_applied_at.clone()));
        #[cfg(target_os = "linux")]
        reg(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));

        Metrics {
            connections_current: gauge("tern_connections", "Client connections currently open."),
            connections_accepted: counter(
                "tern_connections_accepted_total",
                "TCP connections accepted by the listeners.",
            ),
            connections_rejected: counter_vec(
                "tern_connections_rejected_total",
                "Connections refused, by reason.",
                &["reason"],
            ),
            listener_connections,
            connections_parked: gauge(
                "tern_connections_parked",
                "Idle client connections parked without a task of their own.",
            ),
            sessions_online: gauge("tern_sessions_online", "Sessions with a live connection."),
            sessions_offline: gauge(
                "tern_sessions_offline",
                "Persistent sessions kept while their client is disconnected.",
            ),
            subscriptions: gauge("tern_subscriptions", "Subscriptions currently held."),
            shared_subscriptions: gauge(
                "tern_shared_subscriptions",
                "Shared subscriptions currently held.",
            ),
            retained_messages: gauge("tern_retained_messages", "Retained messages stored."),
            inflight_messages: single(
                Kind::Gauge,
                "tern_inflight_messages",
                "QoS 1/2 messages sent to clients and not yet acknowledged.",
            ),
            queued_messages: single(
                Kind::Gauge,
                "tern_queued_messages",
                "Messages waiting in session queues for delivery.",
            ),
            messages_received: by_qos(
                "tern_messages_received_total",
                "PUBLISH packets received from clients, by QoS.",
            ),
            messages_sent: by_qos(
                "tern_messages_sent_total",
                "PUBLISH packets sent to clients, by QoS.",
            ),
            packets_received: by_packet_type(
                "tern_packets_received_total",
                "MQTT control packets received, by type.",
            ),
            packets_sent: by_packet_type(
                "tern_packets_sent_total",
                "MQTT control packets sent, by type.",
            ),
            bytes_received: single(
                Kind::Counter,
                "tern_received_bytes_total",
                "Bytes read from client connections.",
            ),
            bytes_sent: single(
                Kind::Counter,
                "tern_sent_bytes_total",
                "Bytes written to client connections.",
            ),
            dropped: sharded(
                Kind::Counter,
                "tern_messages_dropped_total",
                "Messages not delivered to a subscriber, by reason.",
                &["reason"],
                &drop_reasons,
            ),
            backpressure_waits: counter(
                "tern_backpressure_waits_total",
                "Times a publisher was held back because a subscriber's queue was full.",
            ),
            backpressure_timeouts: counter(
                "tern_backpressure_timeouts_total",
                "Held-back QoS 1/2 publishes refused after the backpressure timeout.",
            ),
            protocol_errors: counter_vec(
                "tern_protocol_errors_total",
                "Connections closed because the client broke the protocol, by reason.",
                &["reason"],
            ),
            delivery_latency,
            config_reloads: ["success", "failure"].map(|r| reloads.with_label_values(&[r])),
            config_info,
            config_applied_at,
            auth_attempts,
            acl_decisions,
            acl_revoked_subscriptions: counter(
                "tern_acl_revoked_subscriptions_total",
                "Subscriptions removed because a reloaded ACL no longer allows them.",
            ),
            registry,
        }
    }

    /// Counts one PUBLISH received at `qos`.
    pub fn message_received(&self, qos: QoS) {
        self.messages_received[qos as usize].inc();
    }

    /// Records a batch of deliveries tallied by a connection.
    pub fn record_deliveries(&self, tally: DeliveryTally) {
        let DeliveryTally { sent, latency } = tally;
        for (counter, count) in self.messages_sent.iter().zip(sent) {
            if count > 0 {
                counter.inc_by(count);
            }
        }
        let total: u64 = sent.iter().sum();
        if total > 0 {
            self.packets_sent[3].inc_by(total);
        }
        if let Some(latency) = latency {
            latency.flush();
        }
    }

    /// Counts one packet of fixed-header type `type_code` received.
    pub fn packet_received(&self, type_code: u8) {
        if let Some(counter) = self.packets_received.get(type_code as usize) {
            counter.inc();
        }
    }

    /// Counts one packet of fixed-header type `type_code` sent.
    pub fn packet_sent(&self, type_code: u8) {
        if let Some(counter) = self.packets_sent.get(type_code as usize) {
            counter.inc();
        }
    }

    /// Counts one message not delivered.
    pub fn dropped(&self, reason: DropReason) {
        self.dropped[reason as usize].inc();
    }

    /// Counts `count` messages not delivered for the same reason.
    pub fn dropped_many(&self, reason: DropReason, count: u64) {
        self.dropped[reason as usize].inc_by(count);
    }

    /// Counts a connection refused for `reason` (a short snake_case label from a fixed set).
    pub fn connection_rejected(&self, reason: &str) {
        self.connections_rejected.with_label_values(&[reason]).inc();
    }

    /// Counts one authentication attempt by `method`.
    pub fn auth_attempt(&self, method: crate::auth::AuthMethod, success: bool) {
        self.auth_attempts[method as usize][usize::from(!success)].inc();
    }

    /// Counts one ACL decision on a PUBLISH (`subscribe` false) or SUBSCRIBE.
    pub fn acl_decision(&self, subscribe: bool, allowed: bool) {
        self.acl_decisions[usize::from(subscribe)][usize::from(!allowed)].inc();
    }

    /// Records that configuration `revision` went live now.
    pub fn config_applied(&self, revision: &str) {
        self.config_info.reset();
        self.config_info.with_label_values(&[revision]).set(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.config_applied_at.set(now.as_secs_f64());
    }

    /// Counts one reload attempt that changed the configuration (`applied`) or was refused.
    pub fn config_reload(&self, applied: bool) {
        self.config_reloads[usize::from(!applied)].inc();
    }

    /// Reload attempts so far that were applied and that were refused.
    pub fn config_reload_counts(&self) -> (u64, u64) {
        (self.config_reloads[0].get(), self.config_reloads[1].get())
    }

    /// Total PUBLISH packets received (for `$SYS`).
    pub fn total_received(&self) -> u64 {
        self.messages_received.iter().map(Series::get).sum::<i64>() as u64
    }

    /// Total PUBLISH packets sent (for `$SYS`).
    pub fn total_sent(&self) -> u64 {
        self.messages_sent.iter().map(Series::get).sum::<i64>() as u64
    }

    /// Messages dropped for `reason` so far.
    pub fn dropped_count(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].get() as u64
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// PUBLISHes a connection wrote in one batch, by QoS, and their publish-to-delivery latencies,
/// kept locally and recorded with [`Metrics::record_deliveries`] when the batch ends.
///
/// Shared atomic counters cost little each, but a fan-out touches them once per subscriber
/// and message from every worker thread at once, and the cache lines they live on then bounce
/// between cores; a batch pays that once. Dropping a tally unrecorded loses its counts.
#[derive(Default)]
pub struct DeliveryTally {
    sent: [u64; 3],
    latency: Option<LocalHistogram>,
}

impl DeliveryTally {
    /// Counts one PUBLISH written at `qos`, `latency` after the broker read it.
    pub fn sent(&mut self, metrics: &Metrics, qos: QoS, latency: Duration) {
        self.sent[qos as usize] += 1;
        self.latency
            .get_or_insert_with(|| metrics.delivery_latency.local())
            .observe(latency.as_secs_f64());
    }
}
