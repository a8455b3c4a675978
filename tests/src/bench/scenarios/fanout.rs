//! Fan-out: one QoS 0 publisher, many subscribers on the same topic.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytestring::ByteString;
use tern_broker::protocol::QoS;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{measure, publish_qos0, run_subscriber, PublisherSpec, Target};
use crate::bench::client::{connect, connect_subscriber, ConnectOptions};
use crate::bench::flow::FlowWindow;
use crate::bench::options::Params;
use crate::bench::report::{Better, Metric, Outcome};

/// Time after the measurement window for outstanding messages to arrive.
const DRAIN: Duration = Duration::from_secs(10);
/// The topic everyone uses.
const TOPIC: &str = "bench/fanout";

/// Runs fan-out.
pub async fn run(target: Target, params: &Params) -> anyhow::Result<Outcome> {
    let flow = Arc::new(FlowWindow::new(params.flow_window));
    let (stop, stopped) = watch::channel(false);
    let mut subscribers = JoinSet::new();
    for index in 0..params.fanout_subscribers {
        let options = ConnectOptions::new(format!("tb-fanout-sub-{index}"), params.version);
        let connection = connect_subscriber(target.addr, &options, TOPIC, QoS::AtMostOnce)
            .await
            .with_context(|| format!("fan-out subscriber {index}"))?;
        subscribers.spawn(run_subscriber(
            connection,
            flow.clone(),
            stopped.clone(),
            (),
        ));
    }
    let options = ConnectOptions::new("tb-fanout-pub", params.version);
    let publisher = connect(target.addr, &options)
        .await
        .context("fan-out publisher")?;

    let start = Instant::now();
    let deadline = start + params.duration;
    let spec = PublisherSpec {
        index: 0,
        topic: ByteString::from(TOPIC),
        payload: params.payload,
        batch: params.batch,
        fanout: params.fanout_subscribers as u64,
        deadline,
    };
    let publisher = tokio::spawn(publish_qos0(publisher, spec, flow.clone()));
    let measurement = measure(&flow, target.pid, start + params.warmup, deadline).await;
    let stats = publisher.await.context("publisher task panicked")??;
    flow.drain(deadline + DRAIN).await;
    let _ = stop.send(true);
    while let Some(joined) = subscribers.join_next().await {
        joined.context("subscriber task panicked")??;
    }

    let mut outcome = Outcome {
        metrics: measurement.throughput_metrics("deliveries"),
        ..Outcome::default()
    };
    let expected = stats.sent * params.fanout_subscribers as u64;
    let dropped = expected.saturating_sub(flow.delivered());
    outcome.metrics.insert(
        1,
        Metric::new(
            "published",
            "published",
            "msg/s",
            measurement.expected_per_sec() / params.fanout_subscribers as f64,
            Better::Neither,
        ),
    );
    outcome.metrics.push(Metric::new(
        "dropped",
        "dropped by the broker",
        "% of deliveries",
        dropped as f64 * 100.0 / expected.max(1) as f64,
        Better::Lower,
    ));
    outcome.notes.push(format!(
        "{} messages published, {} deliveries",
        stats.sent,
        flow.delivered()
    ));
    outcome.notes.extend(flow.stall_note());
    Ok(outcome)
}
