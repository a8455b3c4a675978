//! The `$SYS/broker/...` topics: broker statistics published periodically as retained
//! messages, with names following Mosquitto's so existing dashboards keep working.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::broker::Broker;
use crate::message::Message;

/// Publishes the statistics every `sys.intervalSeconds` until shutdown. The interval is read
/// from the live configuration before every wait, so a reload changes it (0 pauses publishing
/// until it is set again).
pub async fn publish_periodically(broker: Arc<Broker>) {
    /// How often a disabled `$SYS` checks whether a reload enabled it.
    const DISABLED_RECHECK: Duration = Duration::from_secs(1);
    loop {
        let interval = broker.config().config.sys.interval_seconds;
        let wait = if interval == 0 {
            DISABLED_RECHECK
        } else {
            Duration::from_secs(u64::from(interval))
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = broker.shutdown.cancelled() => return,
        }
        if broker.config().config.sys.interval_seconds == 0 {
            continue;
        }
        for (topic, value) in snapshot(&broker) {
            let message = Message::from_broker(topic.into(), Bytes::from(value), true);
            broker.publish_internal(Arc::new(message));
        }
    }
}

/// The current values, as (topic, payload) pairs.
pub fn snapshot(broker: &Broker) -> Vec<(&'static str, String)> {
    let metrics = &broker.metrics;
    vec![
        (
            "$SYS/broker/version",
            format!("tern {}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "$SYS/broker/uptime",
            format!("{} seconds", broker.started_at.elapsed().as_secs()),
        ),
        (
            "$SYS/broker/clients/connected",
            metrics.connections_current.get().to_string(),
        ),
        (
            "$SYS/broker/clients/disconnected",
            metrics.sessions_offline.get().to_string(),
        ),
        (
            "$SYS/broker/clients/total",
            broker.session_count().to_string(),
        ),
        (
            "$SYS/broker/messages/received",
            metrics.total_received().to_string(),
        ),
        (
            "$SYS/broker/messages/sent",
            metrics.total_sent().to_string(),
        ),
        (
            "$SYS/broker/subscriptions/count",
            metrics.subscriptions.get().to_string(),
        ),
        (
            "$SYS/broker/retained messages/count",
            metrics.retained_messages.get().to_string(),
        ),
        (
            "$SYS/broker/bytes/received",
            metrics.bytes_received.get().to_string(),
        ),
        (
            "$SYS/broker/bytes/sent",
            metrics.bytes_sent.get().to_string(),
        ),
    ]
}
