//! Fan-in: many publishers, one subscriber on a wildcard filter.
//!
//! Publishers are paced by the load generator's flow window (see [`crate::bench::flow`]); at
//! QoS 1 each also keeps at most the broker's Receive Maximum messages in flight, and every
//! acknowledged message must reach the subscriber (checked per publisher and sequence number).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytestring::ByteString;
use tern_broker::protocol::QoS;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{
    measure, publish_qos0, publish_qos1, run_subscriber, PublisherSpec, PublisherStats, SeqTracker,
    Target,
};
use crate::bench::client::{connect, connect_subscriber, ConnectOptions};
use crate::bench::flow::FlowWindow;
use crate::bench::options::Params;
use crate::bench::report::{Better, Metric, Outcome};

/// Time after the measurement window for outstanding messages to arrive.
const DRAIN: Duration = Duration::from_secs(10);

/// Runs fan-in at `qos` (0 or 1).
pub async fn run(target: Target, params: &Params, qos: QoS) -> anyhow::Result<Outcome> {
    let flow = Arc::new(FlowWindow::new(params.flow_window));
    let mut options = ConnectOptions::new("tb-fanin-sub", params.version);
    options.receive_maximum = Some(u16::MAX);
    let subscriber = connect_subscriber(target.addr, &options, "bench/#", qos)
        .await
        .context("fan-in subscriber")?;
    let (stop, stopped) = watch::channel(false);
    let subscriber = tokio::spawn(run_subscriber(
        subscriber,
        flow.clone(),
        stopped,
        SeqTracker::default(),
    ));

    let mut connections = Vec::with_capacity(params.fanin_publishers);
    for index in 0..params.fanin_publishers {
        let options = ConnectOptions::new(format!("tb-fanin-pub-{index}"), params.version);
        let connection = connect(target.addr, &options)
            .await
            .with_context(|| format!("fan-in publisher {index}"))?;
        connections.push(connection);
    }
    let receive_maximum = connections
        .first()
        .map(|c| c.server_receive_maximum())
        .unwrap_or(u16::MAX);

    let start = Instant::now();
    let deadline = start + params.duration;
    let drain_deadline = deadline + DRAIN;
    let mut publishers = JoinSet::new();
    for (index, connection) in connections.into_iter().enumerate() {
        let spec = PublisherSpec {
            index: index as u32,
            topic: ByteString::from(format!("bench/fanin/{index}")),
            payload: params.payload,
            batch: params.batch,
            fanout: 1,
            deadline,
        };
        match qos {
            QoS::AtMostOnce => publishers.spawn(publish_qos0(connection, spec, flow.clone())),
            _ => publishers.spawn(publish_qos1(
                connection,
                spec,
                flow.clone(),
                params.qos1_window,
                drain_deadline,
            )),
        };
    }

    let measurement = measure(&flow, target.pid, start + params.warmup, deadline).await;
    let mut stats: Vec<PublisherStats> = Vec::with_capacity(params.fanin_publishers);
    while let Some(joined) = publishers.join_next().await {
        stats.push(joined.context("publisher task panicked")??);
    }
    flow.drain(drain_deadline).await;
    let _ = stop.send(true);
    let tracker = subscriber.await.context("subscriber task panicked")??;

    let mut outcome = Outcome {
        metrics: measurement.throughput_metrics("received by the subscriber"),
        ..Outcome::default()
    };
    outcome.metrics.insert(
        1,
        Metric::new(
            "published",
            "published",
            "msg/s",
            measurement.expected_per_sec(),
            Better::Neither,
        ),
    );
    let sent: u64 = stats.iter().map(|s| s.sent).sum();
    match qos {
        QoS::AtMostOnce => {
            let dropped = sent.saturating_sub(flow.delivered());
            outcome.metrics.push(Metric::new(
                "dropped",
                "dropped by the broker",
                "% of sent",
                dropped as f64 * 100.0 / sent.max(1) as f64,
                Better::Lower,
            ));
        }
        _ => {
            let lost = count_lost(&stats, &tracker);
            let refused: usize = stats.iter().map(|s| s.refused.len()).sum();
            outcome.metrics.push(Metric::new(
                "lost",
                "acknowledged but not delivered",
                "msg",
                lost as f64,
                Better::Lower,
            ));
            outcome.metrics.push(Metric::new(
                "duplicates",
                "duplicates",
                "msg",
                tracker.duplicates as f64,
                Better::Lower,
            ));
            outcome.metrics.push(Metric::new(
                "refused",
                "refused (PUBACK >= 0x80)",
                "msg",
                refused as f64,
                Better::Neither,
            ));
            if lost > 0 {
                outcome.failures.push(format!(
                    "{lost} of {sent} acknowledged QoS 1 messages never reached the subscriber"
                ));
            }
            outcome.notes.push(format!(
                "in flight per publisher: {}",
                params.qos1_window.min(receive_maximum)
            ));
        }
    }
    outcome.notes.push(format!(
        "{sent} messages sent, {} received",
        flow.delivered()
    ));
    outcome.notes.extend(flow.stall_note());
    Ok(outcome)
}

/// Acknowledged messages (every sent sequence number that was not refused) missing at the
/// subscriber.
fn count_lost(stats: &[PublisherStats], tracker: &SeqTracker) -> u64 {
    stats
        .iter()
        .map(|publisher| {
            let refused: HashSet<u64> = publisher.refused.iter().copied().collect();
            if std::env::var_os("TB_DEBUG").is_some() {
                let missing: Vec<u64> = (0..publisher.sent)
                    .filter(|s| !tracker.contains(publisher.index, *s))
                    .collect();
                eprintln!(
                    "publisher {} sent {} missing {} first {:?} last {:?}",
                    publisher.index,
                    publisher.sent,
                    missing.len(),
                    missing.first(),
                    missing.last()
                );
            }
            tracker.missing(
                publisher.index,
                (0..publisher.sent).filter(|sequence| !refused.contains(sequence)),
            )
        })
        .sum()
}
