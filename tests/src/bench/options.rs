//! Command-line options of `tern-bench` and the derived per-run parameters.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use tern_broker::protocol::ProtocolVersion;

use crate::broker::BrokerKind;

/// Tern versus Mosquitto on this machine: fan-in, fan-out, latency and idle connections.
#[derive(Debug, Clone, Parser)]
#[command(name = "tern-bench", version)]
pub struct Options {
    /// Comma-separated scenarios: all, fanin0, fanin1, fanout, latency, idle.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    pub scenarios: Vec<ScenarioSelection>,
    /// Short run (smoke test): shorter measurements and fewer idle connections.
    #[arg(long)]
    pub quick: bool,
    /// Which broker(s) to run.
    #[arg(long, value_enum, default_value_t = BrokerSelection::Both)]
    pub broker: BrokerSelection,
    /// Print one JSON document on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Payload size in bytes (at least 20: publisher, sequence, timestamp).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Measurement duration per scenario in seconds (default: 3 with --quick, else 10).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Idle connections to open (default: 2000 with --quick, else 5000).
    #[arg(long)]
    pub idle_connections: Option<usize>,
    /// Seconds the idle connections stay open, silent, before the second memory reading
    /// (default: 12 with --quick, else 15). Tern parks connections quiet for 5 s and returns
    /// their memory a few seconds later: after 8 s a reading still held most of it.
    #[arg(long)]
    pub idle_seconds: Option<u64>,
    /// MQTT protocol version used by the load generator.
    #[arg(long, value_enum, default_value_t = Protocol::V5)]
    pub protocol: Protocol,
    /// Give Tern an ACL of this many rules (none of which refuses the benchmark's traffic),
    /// to measure what access control costs: compare the Tern/Mosquitto ratios of a run with
    /// and one without.
    #[arg(long, default_value_t = 0)]
    pub acl_rules: usize,
    /// Runs of each scenario per broker, back to back, alternating which broker goes first.
    /// With more than one, each number shown is the median over the rounds with its range, and
    /// a column counts the rounds in which Tern beat Mosquitto: on a noisy machine (latency
    /// percentiles swing by ±40% between runs) only that says which broker is ahead.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
}

/// A scenario name on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioSelection {
    /// Every scenario.
    All,
    /// Fan-in at QoS 0.
    Fanin0,
    /// Fan-in at QoS 1 with loss check.
    Fanin1,
    /// One publisher, many subscribers.
    Fanout,
    /// End-to-end latency at a fixed rate.
    Latency,
    /// Many idle connections: connect rate and memory per connection.
    Idle,
}

/// The scenarios a run executes, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Many publishers → one wildcard subscriber, QoS 0.
    FanIn0,
    /// Many publishers → one wildcard subscriber, QoS 1, zero loss required.
    FanIn1,
    /// One publisher → many subscribers.
    FanOut,
    /// Publisher/subscriber pairs at a fixed rate; latency percentiles.
    Latency,
    /// Idle connections.
    Idle,
}

impl Scenario {
    /// Every scenario, in execution order.
    pub const ALL: [Scenario; 5] = [
        Scenario::FanIn0,
        Scenario::FanIn1,
        Scenario::FanOut,
        Scenario::Latency,
        Scenario::Idle,
    ];

    /// The command-line / JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::FanIn0 => "fanin0",
            Scenario::FanIn1 => "fanin1",
            Scenario::FanOut => "fanout",
            Scenario::Latency => "latency",
            Scenario::Idle => "idle",
        }
    }
}

/// `--broker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerSelection {
    /// Tern only.
    Tern,
    /// Mosquitto only.
    Mosquitto,
    /// Both, Mosquitto first.
    Both,
}

impl BrokerSelection {
    /// The brokers to run, in order.
    pub fn kinds(self) -> Vec<BrokerKind> {
        match self {
            BrokerSelection::Tern => vec![BrokerKind::Tern],
            BrokerSelection::Mosquitto => vec![BrokerKind::Mosquitto],
            BrokerSelection::Both => vec![BrokerKind::Mosquitto, BrokerKind::Tern],
        }
    }
}

/// `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// MQTT 3.1.1.
    V311,
    /// MQTT 5.0.
    V5,
}

/// Fixed parameters of a run, derived from [`Options`].
#[derive(Debug, Clone)]
pub struct Params {
    /// Payload size in bytes.
    pub payload: usize,
    /// Measurement window per throughput/latency scenario.
    pub duration: Duration,
    /// Part of the window at the start that is not counted.
    pub warmup: Duration,
    /// Publishers in fan-in.
    pub fanin_publishers: usize,
    /// Subscribers in fan-out.
    pub fanout_subscribers: usize,
    /// Publisher/subscriber pairs in the latency scenario.
    pub latency_pairs: usize,
    /// Messages per second per latency publisher.
    pub latency_rate: u32,
    /// Idle connections to open.
    pub idle_connections: usize,
    /// Concurrent connection attempts while opening idle connections.
    pub idle_concurrency: usize,
    /// How long the idle connections stay silent before the second memory reading.
    pub idle_wait: Duration,
    /// Messages per write for throughput publishers.
    pub batch: usize,
    /// Deliveries allowed to be outstanding (published, not yet received) in throughput
    /// scenarios, at any QoS (see [`crate::bench::flow`]). Kept below the brokers'
    /// `max_queued_messages` so that a broker never has to drop to keep up.
    pub flow_window: u64,
    /// Upper bound on QoS 1 messages in flight per publisher (further capped by the broker's
    /// Receive Maximum).
    pub qos1_window: u16,
    /// Protocol the load generator speaks.
    pub version: ProtocolVersion,
    /// ACL rules Tern runs with (see [`Options::acl_rules`]).
    pub acl_rules: usize,
}

impl Params {
    /// Derives the parameters from the command line.
    pub fn from_options(options: &Options) -> Params {
        let duration = Duration::from_secs(
            options
                .duration
                .unwrap_or(if options.quick { 3 } else { 10 })
                .clamp(1, 300),
        );
        Params {
            payload: options.payload.max(crate::bench::payload::HEADER_LEN),
            duration,
            warmup: (duration / 5).min(Duration::from_secs(1)),
            fanin_publishers: 20,
            fanout_subscribers: 50,
            latency_pairs: 20,
            latency_rate: 500,
            idle_connections: options
                .idle_connections
                .unwrap_or(if options.quick { 2000 } else { 5000 })
                .clamp(1, 100_000),
            idle_concurrency: 64,
            idle_wait: Duration::from_secs(
                options
                    .idle_seconds
                    .unwrap_or(if options.quick { 12 } else { 15 })
                    .clamp(1, 600),
            ),
            batch: 64,
            flow_window: std::env::var("TB_WINDOW")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(5_000),
            qos1_window: 100,
            version: match options.protocol {
                Protocol::V311 => ProtocolVersion::V311,
                Protocol::V5 => ProtocolVersion::V5,
            },
            acl_rules: options.acl_rules,
        }
    }

    /// Hard time limit for one scenario against one broker, start-up excluded.
    pub fn time_limit(&self) -> Duration {
        self.duration * 2 + Duration::from_secs(30)
    }
}

impl Options {
    /// The scenarios to run, deduplicated, in canonical order.
    pub fn selected_scenarios(&self) -> Vec<Scenario> {
        Scenario::ALL
            .into_iter()
            .filter(|scenario| {
                self.scenarios.iter().any(|selection| {
                    *selection == ScenarioSelection::All
                        || scenario.name() == selection_name(*selection)
                })
            })
            .collect()
    }
}

fn selection_name(selection: ScenarioSelection) -> &'static str {
    match selection {
        ScenarioSelection::All => "all",
        ScenarioSelection::Fanin0 => "fanin0",
        ScenarioSelection::Fanin1 => "fanin1",
        ScenarioSelection::Fanout => "fanout",
        ScenarioSelection::Latency => "latency",
        ScenarioSelection::Idle => "idle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scenario_lists() {
        let options = Options::parse_from(["tern-bench", "--scenarios", "idle,fanin0", "--quick"]);
        assert_eq!(
            options.selected_scenarios(),
            vec![Scenario::FanIn0, Scenario::Idle]
        );
        let params = Params::from_options(&options);
        assert_eq!(params.duration, Duration::from_secs(3));
        assert_eq!(params.idle_connections, 2000);
        let options = Options::parse_from(["tern-bench"]);
        assert_eq!(options.selected_scenarios().len(), 5);
        assert_eq!(options.broker.kinds().len(), 2);
        assert_eq!(options.rounds, 1);
        let options = Options::parse_from(["tern-bench", "--rounds", "7"]);
        assert_eq!(options.rounds, 7);
        assert!(Options::try_parse_from(["tern-bench", "--rounds", "0"]).is_err());
    }
}
