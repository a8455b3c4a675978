//! The measurement window: counters and broker CPU sampled at its start and end.

use tokio::time::Instant;

use crate::bench::flow::FlowWindow;
use crate::bench::procstat;
use crate::bench::report::{Better, Metric};

/// Counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// When it was taken.
    pub at: Instant,
    /// Deliveries seen by subscribers so far.
    pub delivered: u64,
    /// Deliveries expected from what publishers sent so far.
    pub expected: u64,
    /// Broker CPU seconds so far (0 if unreadable).
    pub broker_cpu: f64,
    /// Load generator (this process) CPU seconds so far (0 if unreadable).
    pub loadgen_cpu: f64,
}

impl Snapshot {
    /// Reads the counters of `flow` and the CPU time of `pid`.
    pub fn take(flow: &FlowWindow, pid: u32) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            delivered: flow.delivered(),
            expected: flow.expected(),
            broker_cpu: procstat::cpu_seconds(pid).unwrap_or(0.0),
            loadgen_cpu: procstat::cpu_seconds(std::process::id()).unwrap_or(0.0),
        }
    }
}

/// The counted part of a run: from the end of the warm-up to the end of publishing.
#[derive(Debug, Clone, Copy)]
pub struct Measurement {
    /// Start of the counted window.
    pub start: Snapshot,
    /// End of the counted window.
    pub end: Snapshot,
}

impl Measurement {
    /// Seconds between the two snapshots.
    pub fn seconds(&self) -> f64 {
        (self.end.at - self.start.at).as_secs_f64().max(1e-9)
    }

    /// Deliveries per second at the subscribers.
    pub fn delivered_per_sec(&self) -> f64 {
        (self.end.delivered - self.start.delivered) as f64 / self.seconds()
    }

    /// Deliveries per second the publishers asked for.
    pub fn expected_per_sec(&self) -> f64 {
        (self.end.expected - self.start.expected) as f64 / self.seconds()
    }

    /// Broker CPU use in percent of one core.
    pub fn broker_cpu_percent(&self) -> f64 {
        (self.end.broker_cpu - self.start.broker_cpu) / self.seconds() * 100.0
    }

    /// Load generator CPU use in percent of one core.
    pub fn loadgen_cpu_percent(&self) -> f64 {
        (self.end.loadgen_cpu - self.start.loadgen_cpu) / self.seconds() * 100.0
    }

    /// Broker and load generator CPU use, as metrics.
    pub fn cpu_metrics(&self) -> Vec<Metric> {
        vec![
            Metric::new(
                "broker_cpu",
                "broker CPU",
                "% of a core",
                self.broker_cpu_percent(),
                Better::Neither,
            ),
            Metric::new(
                "loadgen_cpu",
                "load generator CPU",
                "% of a core",
                self.loadgen_cpu_percent(),
                Better::Neither,
            ),
        ]
    }

    /// The standard throughput metrics: deliveries/s, broker CPU and deliveries per broker
    /// CPU-second (a load-generator-independent efficiency figure).
    pub fn throughput_metrics(&self, what: &'static str) -> Vec<Metric> {
        let rate = self.delivered_per_sec();
        let cpu = self.broker_cpu_percent();
        let mut metrics = vec![Metric::new("rate", what, "msg/s", rate, Better::Higher)];
        metrics.extend(self.cpu_metrics());
        if cpu > 0.0 {
            metrics.push(Metric::new(
                "per_cpu_sec",
                "deliveries per broker CPU-second",
                "msg",
                rate / (cpu / 100.0),
                Better::Higher,
            ));
        }
        metrics
    }
}

/// Sleeps until `warmup_end`, snapshots, sleeps until `end`, snapshots.
pub async fn measure(
    flow: &FlowWindow,
    pid: u32,
    warmup_end: Instant,
    end: Instant,
) -> Measurement {
    tokio::time::sleep_until(warmup_end).await;
    let start = Snapshot::take(flow, pid);
    tokio::time::sleep_until(end).await;
    let end = Snapshot::take(flow, pid);
    Measurement { start, end }
}
