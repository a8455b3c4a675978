//! Results: metrics per broker, the per-scenario table with Tern/Mosquitto ratios, and JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// Which direction of a metric is an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// More is better (throughput).
    Higher,
    /// Less is better (latency, memory, CPU).
    Lower,
    /// Informational only.
    Neither,
}

/// One measured number.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    /// Stable machine-readable key, e.g. `msgs_per_sec`.
    pub key: &'static str,
    /// Human-readable label for the table.
    pub label: &'static str,
    /// Unit, e.g. `msg/s`, `µs`, `KiB`.
    pub unit: &'static str,
    /// The value (always finite).
    pub value: f64,
    /// Which direction is better.
    pub better: Better,
    /// Lowest and highest value over the rounds, when `value` is their median.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

impl Metric {
    /// A metric; non-finite values are stored as 0.
    pub fn new(
        key: &'static str,
        label: &'static str,
        unit: &'static str,
        value: f64,
        better: Better,
    ) -> Metric {
        Metric {
            key,
            label,
            unit,
            value: if value.is_finite() { value } else { 0.0 },
            better,
            range: None,
        }
    }
}

/// What one scenario produced against one broker.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Measured numbers, in display order.
    pub metrics: Vec<Metric>,
    /// Correctness checks that failed (e.g. QoS 1 messages lost). Non-empty fails the run.
    pub failures: Vec<String>,
    /// Remarks worth showing next to the numbers.
    pub notes: Vec<String>,
    /// Set when the scenario could not complete; then `metrics` may be partial.
    pub error: Option<String>,
}

/// One scenario against one broker.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerOutcome {
    /// `tern` or `mosquitto`.
    pub broker: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// One scenario against every selected broker.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Scenario name (`fanin0`, ...).
    pub scenario: String,
    /// One line describing the load.
    pub description: String,
    /// Results per broker, in run order; with several rounds, per-metric medians.
    pub brokers: Vec<BrokerOutcome>,
    /// Every round's results when there was more than one (see `--rounds`), in run order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<Vec<BrokerOutcome>>,
}

/// One broker's outcomes over several rounds folded into one: each metric's median (the mean
/// of the middle two for an even count) with its range, every failure and error with the
/// round it happened in, and the notes of the first round.
pub fn median_outcome(rounds: &[Outcome]) -> Outcome {
    let mut merged = Outcome::default();
    for outcome in rounds {
        for metric in &outcome.metrics {
            if merged.metrics.iter().any(|m| m.key == metric.key) {
                continue;
            }
            let mut values: Vec<f64> = rounds
                .iter()
                .filter_map(|o| o.metrics.iter().find(|m| m.key == metric.key))
                .map(|m| m.value)
                .collect();
            values.sort_by(f64::total_cmp);
            let middle = values.len() / 2;
            let median = if values.len().is_multiple_of(2) {
                (values[middle - 1] + values[middle]) / 2.0
            } else {
                values[middle]
            };
            merged.metrics.push(Metric {
                value: median,
                range: Some([values[0], values[values.len() - 1]]),
                ..metric.clone()
            });
        }
    }
    for (index, outcome) in rounds.iter().enumerate() {
        let round = index + 1;
        merged.failures.extend(
            outcome
                .failures
                .iter()
                .map(|failure| format!("round {round}: {failure}")),
        );
        if let Some(error) = &outcome.error {
            let error = format!("round {round}: {error}");
            merged.error = Some(match merged.error.take() {
                Some(previous) => format!("{previous}\n{error}"),
                None => error,
            });
        }
    }
    if let Some(first) = rounds.first() {
        merged.notes = first
            .notes
            .iter()
            .map(|note| format!("round 1: {note}"))
            .collect();
    }
    merged
}

/// Broker `name`'s outcome in each of `rounds`, for [`median_outcome`].
pub fn outcomes_of(rounds: &[Vec<BrokerOutcome>], name: &str) -> Vec<Outcome> {
    rounds
        .iter()
        .flat_map(|round| round.iter().filter(|b| b.broker == name))
        .map(|b| b.outcome.clone())
        .collect()
}

/// How Tern fared against Mosquitto on one metric over the rounds that measured both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wins {
    /// Rounds in which Tern did better.
    ahead: usize,
    /// Rounds in which both measured the same value.
    tied: usize,
    /// Rounds in which both were measured.
    compared: usize,
}

/// Tern's wins on metric `key` over `rounds`; `None` for a metric with no better direction.
fn tern_wins(rounds: &[Vec<BrokerOutcome>], key: &str, better: Better) -> Option<Wins> {
    let value_in = |round: &[BrokerOutcome], broker: &str| {
        round
            .iter()
            .find(|b| b.broker == broker)
            .and_then(|b| b.outcome.metrics.iter().find(|m| m.key == key))
            .map(|m| m.value)
    };
    let mut wins = Wins {
        ahead: 0,
        tied: 0,
        compared: 0,
    };
    for round in rounds {
        let (Some(tern), Some(mosquitto)) = (value_in(round, "tern"), value_in(round, "mosquitto"))
        else {
            continue;
        };
        wins.compared += 1;
        let ahead = match better {
            Better::Higher => tern > mosquitto,
            Better::Lower => tern < mosquitto,
            Better::Neither => return None,
        };
        wins.ahead += usize::from(ahead);
        wins.tied += usize::from(tern == mosquitto);
    }
    Some(wins)
}

/// The machine and the settings, printed once.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// CPUs available to the benchmark (shared by load generator and broker).
    pub cpus: usize,
    /// CPU model, if known.
    pub cpu_model: Option<String>,
    /// Mosquitto's version line, if it ran.
    pub mosquitto_version: Option<String>,
    /// Tern binary used, if it ran.
    pub tern_binary: Option<String>,
    /// Payload size in bytes.
    pub payload_bytes: usize,
    /// Measurement window per scenario in seconds.
    pub duration_secs: f64,
    /// Warm-up excluded from rates, in seconds.
    pub warmup_secs: f64,
    /// Protocol of the load generator.
    pub protocol: String,
    /// Whether `--quick` was given.
    pub quick: bool,
    /// ACL rules Tern ran with.
    pub acl_rules: usize,
}

/// Everything a run produced; serialised as-is for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Machine and settings.
    pub info: RunInfo,
    /// Per-scenario results.
    pub scenarios: Vec<ScenarioReport>,
    /// Wall-clock time of the whole run in seconds.
    pub total_secs: f64,
}

impl RunReport {
    /// Whether any scenario errored or failed a correctness check.
    pub fn failed(&self) -> bool {
        self.scenarios.iter().any(|scenario| {
            scenario
                .brokers
                .iter()
                .any(|b| b.outcome.error.is_some() || !b.outcome.failures.is_empty())
        })
    }
}

/// The header printed before the tables.
pub fn render_info(info: &RunInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "machine: {} CPU(s){}; the load generator shares them with the broker under test",
        info.cpus,
        info.cpu_model
            .as_deref()
            .map(|model| format!(" ({model})"))
            .unwrap_or_default()
    );
    if let Some(version) = &info.mosquitto_version {
        let _ = writeln!(out, "mosquitto: {version}");
    }
    if let Some(binary) = &info.tern_binary {
        let _ = writeln!(out, "tern: {binary}");
    }
    if info.acl_rules > 0 {
        let _ = writeln!(out, "tern ACL: {} rules", info.acl_rules);
    }
    let _ = writeln!(
        out,
        "payload {} B, MQTT {}, window {:.0} s (first {:.1} s not counted){}",
        info.payload_bytes,
        info.protocol,
        info.duration_secs,
        info.warmup_secs,
        if info.quick { ", --quick" } else { "" }
    );
    out
}

/// The table for one scenario: a row per metric, a column per broker, then Tern/Mosquitto.
pub fn render_scenario(report: &ScenarioReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n== {}: {}", report.scenario, report.description);

    // Rows in order of first appearance over all brokers.
    let mut rows: Vec<&Metric> = Vec::new();
    for broker in &report.brokers {
        for metric in &broker.outcome.metrics {
            if !rows.iter().any(|row| row.key == metric.key) {
                rows.push(metric);
            }
        }
    }
    let value_of = |broker: &str, key: &str| -> Option<f64> {
        report
            .brokers
            .iter()
            .find(|b| b.broker == broker)
            .and_then(|b| b.outcome.metrics.iter().find(|m| m.key == key))
            .map(|m| m.value)
    };
    let with_ratio = report.brokers.iter().any(|b| b.broker == "tern")
        && report.brokers.iter().any(|b| b.broker == "mosquitto");

    let with_wins = with_ratio && !report.rounds.is_empty();

    let mut header = vec!["metric".to_string()];
    header.extend(report.brokers.iter().map(|b| b.broker.clone()));
    if with_ratio {
        header.push("tern/mosq".to_string());
    }
    if with_wins {
        header.push("tern ahead".to_string());
    }
    let mut table = vec![header];
    for row in &rows {
        let mut line = vec![format!("{} ({}){}", row.label, row.unit, arrow(row.better))];
        for broker in &report.brokers {
            let metric = broker.outcome.metrics.iter().find(|m| m.key == row.key);
            line.push(match metric {
                Some(Metric {
                    value,
                    range: Some([low, high]),
                    ..
                }) => format!(
                    "{} ({}–{})",
                    format_value(*value),
                    format_value(*low),
                    format_value(*high)
                ),
                Some(metric) => format_value(metric.value),
                None => "-".to_string(),
            });
        }
        if with_ratio {
            line.push(
                match (value_of("tern", row.key), value_of("mosquitto", row.key)) {
                    (Some(tern), Some(mosquitto)) if mosquitto != 0.0 => {
                        format!("{:.2}x", tern / mosquitto)
                    }
                    _ => "-".to_string(),
                },
            );
        }
        if with_wins {
            line.push(match tern_wins(&report.rounds, row.key, row.better) {
                Some(Wins {
                    ahead,
                    tied: 0,
                    compared,
                }) => format!("{ahead}/{compared}"),
                Some(Wins {
                    ahead,
                    tied,
                    compared,
                }) => format!("{ahead}/{compared}, {tied} tied"),
                None => "-".to_string(),
            });
        }
        table.push(line);
    }
    out.push_str(&render_table(&table));
    for broker in &report.brokers {
        let outcome = &broker.outcome;
        if let Some(error) = &outcome.error {
            let _ = writeln!(out, "  {} ERROR: {error}", broker.broker);
        }
        for failure in &outcome.failures {
            let _ = writeln!(out, "  {} FAILED: {failure}", broker.broker);
        }
        for note in &outcome.notes {
            let _ = writeln!(out, "  {} note: {note}", broker.broker);
        }
    }
    out
}

fn arrow(better: Better) -> &'static str {
    match better {
        Better::Higher => " ↑",
        Better::Lower => " ↓",
        Better::Neither => "",
    }
}

/// Left-aligns the first column and right-aligns the others.
fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        out.push_str("  ");
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c == 0 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("  ");
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

/// Thousands separators for large numbers, three significant digits for small ones.
pub fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1000.0 {
        let integer = value.round() as i64;
        let digits = integer.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if integer < 0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if magnitude >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_values() {
        assert_eq!(format_value(1_234_567.4), "1,234,567");
        assert_eq!(format_value(999.0), "999");
        assert_eq!(format_value(12.34), "12.3");
        assert_eq!(format_value(1.234), "1.23");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(-4321.0), "-4,321");
    }

    #[test]
    fn table_has_ratio_column() {
        let metric = |value| Metric::new("rate", "rate", "msg/s", value, Better::Higher);
        let report = ScenarioReport {
            scenario: "fanin0".into(),
            description: "test".into(),
            brokers: vec![
                BrokerOutcome {
                    broker: "mosquitto".into(),
                    outcome: Outcome {
                        metrics: vec![metric(100.0)],
                        ..Outcome::default()
                    },
                },
                BrokerOutcome {
                    broker: "tern".into(),
                    outcome: Outcome {
                        metrics: vec![metric(250.0)],
                        ..Outcome::default()
                    },
                },
            ],
            rounds: Vec::new(),
        };
        let text = render_scenario(&report);
        assert!(text.contains("2.50x"), "{text}");
        assert!(text.contains("tern/mosq"), "{text}");
        assert!(
            !text.contains("tern ahead"),
            "one round has no win count: {text}"
        );
    }

    fn latency(value: f64) -> Outcome {
        Outcome {
            metrics: vec![Metric::new(
                "p99",
                "latency p99",
                "µs",
                value,
                Better::Lower,
            )],
            notes: vec![format!("took {value}")],
            ..Outcome::default()
        }
    }

    #[test]
    fn rounds_fold_into_medians_with_ranges() {
        let odd = median_outcome(&[latency(300.0), latency(100.0), latency(200.0)]);
        assert_eq!(odd.metrics[0].value, 200.0);
        assert_eq!(odd.metrics[0].range, Some([100.0, 300.0]));
        assert_eq!(odd.notes, vec!["round 1: took 300".to_string()]);
        let even = median_outcome(&[
            latency(100.0),
            latency(400.0),
            latency(200.0),
            latency(300.0),
        ]);
        assert_eq!(even.metrics[0].value, 250.0);

        let mut failed = latency(500.0);
        failed.failures.push("lost 3 messages".into());
        failed.error = Some("broker exited".into());
        let merged = median_outcome(&[latency(100.0), failed]);
        assert_eq!(
            merged.failures,
            vec!["round 2: lost 3 messages".to_string()]
        );
        assert_eq!(merged.error.as_deref(), Some("round 2: broker exited"));
    }

    #[test]
    fn rounds_show_medians_and_how_often_tern_was_ahead() {
        let round = |mosquitto: f64, tern: f64| {
            vec![
                BrokerOutcome {
                    broker: "mosquitto".into(),
                    outcome: latency(mosquitto),
                },
                BrokerOutcome {
                    broker: "tern".into(),
                    outcome: latency(tern),
                },
            ]
        };
        let rounds = vec![
            round(300.0, 200.0),
            round(250.0, 260.0),
            round(400.0, 350.0),
            round(300.0, 300.0),
        ];
        let median = |broker: &str| BrokerOutcome {
            broker: broker.into(),
            outcome: median_outcome(&outcomes_of(&rounds, broker)),
        };
        let report = ScenarioReport {
            scenario: "latency".into(),
            description: "test".into(),
            brokers: vec![median("mosquitto"), median("tern")],
            rounds,
        };
        let text = render_scenario(&report);
        assert!(text.contains("300 (250–400)"), "{text}");
        assert!(text.contains("280 (200–350)"), "{text}");
        assert!(text.contains("0.93x"), "{text}");
        assert!(text.contains("tern ahead"), "{text}");
        assert!(text.contains("2/4, 1 tied"), "{text}");
    }
}
