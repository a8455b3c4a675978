//! Latency: publisher/subscriber pairs at a fixed rate; end-to-end latency percentiles.
//!
//! Each publisher sends on its own topic at a fixed rate (one message per tick, flushed at
//! once); its subscriber computes `receive time - send time` from the payload. Both ends run in
//! this process, so one monotonic clock serves both. Messages sent during the warm-up are not
//! recorded.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytestring::ByteString;
use hdrhistogram::Histogram;
use tern_broker::protocol::QoS;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::{measure, run_subscriber, Recorder, Target};
use crate::bench::client::{connect, connect_subscriber, publish, ConnectOptions, Connection};
use crate::bench::flow::FlowWindow;
use crate::bench::options::Params;
use crate::bench::payload::{self, Stamp};
use crate::bench::report::{Better, Metric, Outcome};

/// Time after the measurement window for outstanding messages to arrive.
const DRAIN: Duration = Duration::from_secs(5);
/// Largest latency the histogram tracks (larger values are clamped).
const MAX_LATENCY_NANOS: u64 = 60_000_000_000;

/// Latencies of messages sent after the warm-up, in nanoseconds.
#[derive(Debug)]
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
    from_nanos: u64,
}

impl LatencyRecorder {
    /// Records messages sent at or after `from_nanos` (see [`payload::now_nanos`]).
    pub fn new(from_nanos: u64) -> anyhow::Result<LatencyRecorder> {
        Ok(LatencyRecorder {
            histogram: Histogram::new_with_bounds(1, MAX_LATENCY_NANOS, 3)
                .context("creating the latency histogram")?,
            from_nanos,
        })
    }
}

impl Recorder for LatencyRecorder {
    fn record(&mut self, stamp: Stamp) {
        if stamp.sent_at_nanos >= self.from_nanos {
            let latency = payload::now_nanos().saturating_sub(stamp.sent_at_nanos);
            self.histogram.saturating_record(latency.max(1));
        }
    }
}

/// Runs the latency scenario.
pub async fn run(target: Target, params: &Params) -> anyhow::Result<Outcome> {
    let flow = Arc::new(FlowWindow::new(u64::MAX));
    let mut subscriber_connections = Vec::with_capacity(params.latency_pairs);
    let mut publisher_connections = Vec::with_capacity(params.latency_pairs);
    for index in 0..params.latency_pairs {
        let topic = format!("bench/latency/{index}");
        let options = ConnectOptions::new(format!("tb-lat-sub-{index}"), params.version);
        let connection = connect_subscriber(target.addr, &options, &topic, QoS::AtMostOnce)
            .await
            .with_context(|| format!("latency subscriber {index}"))?;
        subscriber_connections.push(connection);
        let options = ConnectOptions::new(format!("tb-lat-pub-{index}"), params.version);
        let connection = connect(target.addr, &options)
            .await
            .with_context(|| format!("latency publisher {index}"))?;
        publisher_connections.push((ByteString::from(topic), connection));
    }

    let start = Instant::now();
    let deadline = start + params.duration;
    let warmup_end_nanos = payload::now_nanos() + params.warmup.as_nanos() as u64;
    let (stop, stopped) = watch::channel(false);
    let mut subscribers = JoinSet::new();
    for connection in subscriber_connections {
        let recorder = LatencyRecorder::new(warmup_end_nanos)?;
        subscribers.spawn(run_subscriber(
            connection,
            flow.clone(),
            stopped.clone(),
            recorder,
        ));
    }
    let period = Duration::from_secs_f64(1.0 / f64::from(params.latency_rate.max(1)));
    let mut publishers = JoinSet::new();
    for (index, (topic, connection)) in publisher_connections.into_iter().enumerate() {
        // Spread the publishers over one period so their ticks do not coincide.
        let first = start + period * index as u32 / params.latency_pairs.max(1) as u32;
        let pacing = Pacing {
            first,
            period,
            deadline,
            payload: params.payload,
        };
        publishers.spawn(paced_publisher(
            connection,
            index as u32,
            topic,
            pacing,
            flow.clone(),
        ));
    }

    let measurement = measure(&flow, target.pid, start + params.warmup, deadline).await;
    let mut sent = 0u64;
    while let Some(joined) = publishers.join_next().await {
        sent += joined.context("publisher task panicked")??;
    }
    flow.drain(deadline + DRAIN).await;
    let _ = stop.send(true);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NANOS, 3)
        .context("creating the latency histogram")?;
    while let Some(joined) = subscribers.join_next().await {
        let recorder = joined.context("subscriber task panicked")??;
        histogram
            .add(&recorder.histogram)
            .context("merging latency histograms")?;
    }

    let micros = |nanos: u64| nanos as f64 / 1000.0;
    let mut outcome = Outcome::default();
    for (key, label, quantile) in [
        ("p50", "latency p50", 0.5),
        ("p90", "latency p90", 0.9),
        ("p99", "latency p99", 0.99),
        ("p999", "latency p99.9", 0.999),
    ] {
        outcome.metrics.push(Metric::new(
            key,
            label,
            "µs",
            micros(histogram.value_at_quantile(quantile)),
            Better::Lower,
        ));
    }
    outcome.metrics.push(Metric::new(
        "max",
        "latency max",
        "µs",
        micros(histogram.max()),
        Better::Lower,
    ));
    outcome.metrics.push(Metric::new(
        "rate",
        "delivered",
        "msg/s",
        measurement.delivered_per_sec(),
        Better::Neither,
    ));
    outcome.metrics.extend(measurement.cpu_metrics());
    let dropped = sent.saturating_sub(flow.delivered());
    outcome.metrics.push(Metric::new(
        "dropped",
        "dropped by the broker",
        "msg",
        dropped as f64,
        Better::Lower,
    ));
    outcome.notes.push(format!(
        "{} latencies recorded from {sent} messages",
        histogram.len()
    ));
    Ok(outcome)
}

/// When a paced publisher sends.
#[derive(Debug, Clone, Copy)]
struct Pacing {
    first: Instant,
    period: Duration,
    deadline: Instant,
    payload: usize,
}

/// Sends one message per period from `first` until the deadline; returns how many it sent.
async fn paced_publisher(
    mut connection: Connection,
    index: u32,
    topic: ByteString,
    pacing: Pacing,
    flow: Arc<FlowWindow>,
) -> anyhow::Result<u64> {
    let mut ticker = tokio::time::interval_at(pacing.first, pacing.period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sequence = 0u64;
    loop {
        let tick = ticker.tick().await;
        if tick >= pacing.deadline {
            break;
        }
        let stamp = Stamp {
            publisher: index,
            sequence,
            sent_at_nanos: payload::now_nanos(),
        };
        let message = publish(
            &topic,
            QoS::AtMostOnce,
            None,
            payload::build(stamp, pacing.payload),
        );
        connection.writer.push(&message)?;
        flow.add_expected(1);
        connection
            .writer
            .flush()
            .await
            .with_context(|| format!("latency publisher {index}"))?;
        sequence += 1;
    }
    connection.writer.disconnect().await;
    Ok(sequence)
}
