//! The benchmark scenarios and what they share: the target broker, subscriber loops, and the
//! measurement window.
//!
//! Every scenario takes a running broker ([`Target`]) and the run's [`Params`], and returns an
//! [`Outcome`]. All waits are bounded by deadlines derived from the parameters; the runner adds
//! a hard time limit on top.

pub mod fanin;
pub mod fanout;
pub mod idle;
pub mod latency;
mod publisher;
mod subscriber;
mod window;

use std::net::SocketAddr;

use crate::bench::options::{Params, Scenario};
use crate::bench::report::Outcome;

pub use publisher::{publish_qos0, publish_qos1, PublisherSpec, PublisherStats};
pub use subscriber::{run_subscriber, Recorder, SeqTracker};
pub use window::{measure, Measurement, Snapshot};

/// The broker under test.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// MQTT listener.
    pub addr: SocketAddr,
    /// Broker process id, for CPU and memory readings.
    pub pid: u32,
}

/// Runs one scenario against `target`.
pub async fn run(scenario: Scenario, target: Target, params: &Params) -> anyhow::Result<Outcome> {
    match scenario {
        Scenario::FanIn0 => {
            fanin::run(target, params, tern_broker::protocol::QoS::AtMostOnce).await
        }
        Scenario::FanIn1 => {
            fanin::run(target, params, tern_broker::protocol::QoS::AtLeastOnce).await
        }
        Scenario::FanOut => fanout::run(target, params).await,
        Scenario::Latency => latency::run(target, params).await,
        Scenario::Idle => idle::run(target, params).await,
    }
}

/// One line describing the load of `scenario`, for the report.
pub fn describe(scenario: Scenario, params: &Params) -> String {
    match scenario {
        Scenario::FanIn0 => format!(
            "{} publishers -> 1 subscriber on bench/#, QoS 0, as fast as delivered \
             (at most {} messages outstanding)",
            params.fanin_publishers, params.flow_window
        ),
        Scenario::FanIn1 => format!(
            "{} publishers -> 1 subscriber on bench/#, QoS 1, up to {} in flight per \
             publisher (capped by the broker's Receive Maximum) and at most {} messages \
             outstanding, zero loss required",
            params.fanin_publishers, params.qos1_window, params.flow_window
        ),
        Scenario::FanOut => format!(
            "1 publisher -> {} subscribers on bench/fanout, QoS 0 (at most {} deliveries \
             outstanding)",
            params.fanout_subscribers, params.flow_window
        ),
        Scenario::Latency => format!(
            "{} publisher/subscriber pairs, {} msg/s each, QoS 0; end-to-end latency",
            params.latency_pairs, params.latency_rate
        ),
        Scenario::Idle => format!(
            "{} idle connections (CONNECT, keep alive 60, no traffic), {} connecting at once",
            params.idle_connections, params.idle_concurrency
        ),
    }
}
