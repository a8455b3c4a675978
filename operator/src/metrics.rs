//! The operator's Prometheus metrics.

use std::time::Duration;

use kube::runtime::controller::Action;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::controller::Error;

/// Counters and gauges about reconciliation, served on `/metrics`. Labels are bounded: the
/// resource kind, a result, an error class — never an object name.
#[derive(Clone)]
pub struct OperatorMetrics {
    registry: Registry,
    reconciliations: IntCounterVec,
    reconcile_duration: HistogramVec,
    errors: IntCounterVec,
    managed: IntGaugeVec,
    leader: IntGauge,
}

/// Why the metrics could not be registered (a programming error: duplicate names).
#[derive(Debug, thiserror::Error)]
#[error("cannot register operator metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl OperatorMetrics {
    /// Creates and registers the metrics in a registry of their own.
    pub fn new() -> Result<OperatorMetrics, MetricsError> {
        let registry = Registry::new();
        let reconciliations = IntCounterVec::new(
            Opts::new(
                "tern_operator_reconciliations_total",
                "Reconciliations, by resource kind and result (success or error).",
            ),
            &["resource", "result"],
        )?;
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new(
                "tern_operator_reconcile_duration_seconds",
                "Time one reconciliation took, by resource kind.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["resource"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "tern_operator_reconcile_errors_total",
                "Failed reconciliations, by resource kind and error class.",
            ),
            &["resource", "error"],
        )?;
        let managed = IntGaugeVec::new(
            Opts::new(
                "tern_operator_managed_resources",
                "Resources the operator currently watches, by kind.",
            ),
            &["resource"],
        )?;
        let leader = IntGauge::new(
            "tern_operator_leader",
            "1 while this replica holds the leader lease (or runs without leader election).",
        )?;
        registry.register(Box::new(reconciliations.clone()))?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(managed.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        Ok(OperatorMetrics {
            registry,
            reconciliations,
            reconcile_duration,
            errors,
            managed,
            leader,
        })
    }

    /// Records one reconciliation of a `resource` (kind) that took `elapsed`.
    pub fn observe(&self, resource: &str, elapsed: Duration, result: &Result<Action, Error>) {
        self.reconcile_duration
            .with_label_values(&[resource])
            .observe(elapsed.as_secs_f64());
        let outcome = match result {
            Ok(_) => "success",
            Err(error) => {
                self.errors
                    .with_label_values(&[resource, error.metric_label()])
                    .inc();
                "error"
            }
        };
        self.reconciliations
            .with_label_values(&[resource, outcome])
            .inc();
    }

    /// Sets how many resources of `resource` kind the operator manages.
    pub fn set_managed(&self, resource: &str, count: usize) {
        self.managed
            .with_label_values(&[resource])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec fails only on invalid metric families, which `new` rules out.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "cannot encode metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> OperatorMetrics {
        OperatorMetrics::new().unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn a_successful_reconciliation_is_counted_by_resource_and_result() {
        let metrics = metrics();
        metrics.observe(
            "MqttCluster",
            Duration::from_millis(3),
            &Ok(Action::await_change()),
        );
        assert!(metrics.render().contains(
            "tern_operator_reconciliations_total{resource=\"MqttCluster\",result=\"success\"} 1"
        ));
    }

    #[test]
    fn managed_resources_are_a_gauge_per_kind() {
        let metrics = metrics();
        metrics.set_managed("AclPolicy", 4);
        assert!(metrics
            .render()
            .contains("tern_operator_managed_resources{resource=\"AclPolicy\"} 4"));
    }

    #[test]
    fn the_exposition_passes_promtool_check() {
        use std::io::Write;
        use std::process::{Command, Stdio};

        let metrics = metrics();
        metrics.observe(
            "MqttCluster",
            Duration::from_millis(3),
            &Ok(Action::await_change()),
        );
        metrics.set_managed("MqttCluster", 1);
        metrics.set_leader(true);
        let mut promtool = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("running promtool (scripts/install-test-deps.sh installs it): {error}")
            });
        if let Some(mut stdin) = promtool.stdin.take() {
            stdin
                .write_all(metrics.render().as_bytes())
                .unwrap_or_else(|error| panic!("{error}"));
        }
        let output = promtool
            .wait_with_output()
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(
            output.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
