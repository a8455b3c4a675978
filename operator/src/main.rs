//! `tern-operator`: reconciles `MqttCluster` and `AclPolicy` resources into running Tern
//! brokers. Flags and logging here; everything else is in the library (`app::run`).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use tern_operator::app::{run, OperatorSettings};

/// Command-line flags.
#[derive(Parser)]
#[command(version, about = "Kubernetes operator for the Tern MQTT broker")]
struct Flags {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_bind: SocketAddr,
    /// Watch only these namespaces: comma-separated, or the flag repeated (default: all
    /// namespaces). With a list the operator needs a Role in each, nothing cluster-wide.
    #[arg(
        long = "watch-namespace",
        env = "WATCH_NAMESPACE",
        value_name = "NAMESPACE",
        value_delimiter = ','
    )]
    watch_namespaces: Vec<String>,
    /// Elect a leader through a Lease, so several replicas can run safely.
    #[arg(long)]
    leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "tern-operator")]
    lease_name: String,
    /// Namespace of the Lease (default: the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// This replica's identity in the election (default: the pod name, from POD_NAME).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Broker image for clusters that do not name one.
    #[arg(long, default_value = concat!("ghcr.io/tern-mqtt/tern:", env!("CARGO_PKG_VERSION")))]
    broker_image: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match flags.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let settings = OperatorSettings {
        metrics_bind: flags.metrics_bind,
        watch_namespaces: flags
            .watch_namespaces
            .into_iter()
            .filter(|namespace| !namespace.is_empty())
            .collect(),
        leader_election: flags.leader_election,
        lease_name: flags.lease_name,
        lease_namespace: flags.lease_namespace,
        identity: flags
            .identity
            .unwrap_or_else(|| format!("tern-operator-{}", std::process::id())),
        broker_image: flags.broker_image,
    };
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "tern-operator stopped");
            ExitCode::FAILURE
        }
    }
}
