//! Runs the selected scenarios against the selected brokers, one broker process per scenario.

use std::process::Command;

use anyhow::Context;

use crate::bench::options::{Options, Params, Protocol, Scenario};
use crate::bench::procstat;
use crate::bench::report::{
    median_outcome, outcomes_of, Better, BrokerOutcome, Metric, Outcome, RunInfo, RunReport,
    ScenarioReport,
};
use crate::bench::scenarios::{self, Target};
use crate::broker::BrokerProcess;
use crate::broker::{mosquitto_binary, tern_broker_binary, BrokerConfig, BrokerKind, Limits};

/// Open-file limit asked for, for the load generator and for each broker (capped at the hard
/// limit); the idle scenario needs one descriptor per connection on each side.
pub const NOFILE_LIMIT: u64 = 65_536;
/// Broker log lines quoted in an error.
const LOG_TAIL_LINES: usize = 20;

/// The broker configuration used by every scenario: the same limits for both brokers, quiet
/// logging, a high open-file limit; for Tern, the ACL file `acl_policies` if given.
pub fn bench_broker_config(acl_policies: Option<&std::path::Path>) -> BrokerConfig {
    BrokerConfig {
        extra_yaml: acl_policies.map(|path| {
            format!(
                "acl: {{ defaultAction: allow, files: [\"{}\"] }}\n",
                path.display()
            )
        }),
        limits: Limits {
            receive_maximum: Some(100),
            max_inflight: Some(100),
            max_queued_messages: Some(
                std::env::var("TB_MQ")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(100_000),
            ),
            ..Limits::default()
        },
        quiet: true,
        extra_mosquitto_conf: std::env::var("TB_MOSQ").ok().map(|s| s.replace(';', "\n")),
        nofile_limit: Some(NOFILE_LIMIT),
        ..BrokerConfig::default()
    }
}

/// Derives the parameters and describes the machine; also makes sure the Tern binary exists
/// (building it if needed) before any scenario starts.
pub async fn prepare(options: &Options) -> anyhow::Result<(Params, RunInfo)> {
    let params = Params::from_options(options);
    let info = run_info(options, &params, &options.broker.kinds()).await?;
    Ok((params, info))
}

/// Runs everything `options` selects with the parameters from [`prepare`]. `on_scenario` is
/// called after each scenario (to print progressively).
pub async fn run(
    options: &Options,
    params: &Params,
    info: RunInfo,
    mut on_scenario: impl FnMut(&ScenarioReport),
) -> anyhow::Result<RunReport> {
    let started = std::time::Instant::now();
    let params = params.clone();
    let kinds = options.broker.kinds();
    let acl_policies = match params.acl_rules {
        0 => None,
        rules => Some(write_acl_policies(rules)?),
    };

    let mut reports = Vec::new();
    for scenario in options.selected_scenarios() {
        let mut rounds = Vec::new();
        for round in 0..options.rounds {
            // Alternate who goes first, so that a machine getting slower or faster during
            // the run does not favour one broker.
            let mut order = kinds.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            let mut outcomes = Vec::new();
            for kind in order {
                let outcome = run_one(
                    kind,
                    scenario,
                    &params,
                    acl_policies.as_ref().map(|f| f.path()),
                )
                .await;
                outcomes.push(BrokerOutcome {
                    broker: kind.name().to_string(),
                    outcome,
                });
            }
            rounds.push(outcomes);
        }
        let mut report = ScenarioReport {
            scenario: scenario.name().to_string(),
            description: scenarios::describe(scenario, &params),
            brokers: Vec::new(),
            rounds: Vec::new(),
        };
        if rounds.len() == 1 {
            report.brokers = rounds.remove(0);
        } else {
            report.brokers = kinds
                .iter()
                .map(|kind| BrokerOutcome {
                    broker: kind.name().to_string(),
                    outcome: median_outcome(&outcomes_of(&rounds, kind.name())),
                })
                .collect();
            report.rounds = rounds;
        }
        on_scenario(&report);
        reports.push(report);
    }
    Ok(RunReport {
        info,
        scenarios: reports,
        total_secs: started.elapsed().as_secs_f64(),
    })
}

/// An ACL policy file of `rules` rules that all apply to other clients or topics than the
/// benchmark's: half name a user each (`device-N` may use `devices/N/#`), half are Deny rules
/// for everyone on `restricted/N/#`. The benchmark's clients therefore pay for a large shared
/// rule trie and a large principal index, and are allowed their own topics by the default.
fn write_acl_policies(rules: usize) -> anyhow::Result<tempfile::NamedTempFile> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix("tern-bench-acl-")
        .suffix(".yaml")
        .tempfile()
        .context("creating the ACL policy file")?;
    let mut yaml = String::from("- name: bench\n  rules:\n");
    for n in 0..rules {
        if n % 2 == 0 {
            yaml.push_str(&format!(
                "    - {{ effect: Allow, principals: [{{ username: device-{n} }}], actions: [publish, subscribe], topics: [\"devices/{n}/#\"] }}\n"
            ));
        } else {
            yaml.push_str(&format!(
                "    - {{ effect: Deny, actions: [publish, subscribe], topics: [\"restricted/{n}/#\"] }}\n"
            ));
        }
    }
    file.write_all(yaml.as_bytes())
        .context("writing the ACL policy file")?;
    Ok(file)
}

/// Machine and settings, locating (or building) the Tern binary.
async fn run_info(
    options: &Options,
    params: &Params,
    kinds: &[BrokerKind],
) -> anyhow::Result<RunInfo> {
    let tern_binary = if kinds.contains(&BrokerKind::Tern) {
        let path = tokio::task::spawn_blocking(tern_broker_binary)
            .await
            .context("locating tern-broker")??;
        Some(path.display().to_string())
    } else {
        None
    };
    let mosquitto_version = if kinds.contains(&BrokerKind::Mosquitto) {
        mosquitto_version()
    } else {
        None
    };
    Ok(RunInfo {
        cpus: procstat::cpu_count(),
        cpu_model: procstat::cpu_model(),
        mosquitto_version,
        tern_binary,
        payload_bytes: params.payload,
        duration_secs: params.duration.as_secs_f64(),
        warmup_secs: params.warmup.as_secs_f64(),
        protocol: match options.protocol {
            Protocol::V311 => "3.1.1".to_string(),
            Protocol::V5 => "5.0".to_string(),
        },
        quick: options.quick,
        acl_rules: params.acl_rules,
    })
}

/// `mosquitto -h`'s first line, e.g. "mosquitto version 2.0.11".
fn mosquitto_version() -> Option<String> {
    let output = Command::new(mosquitto_binary()).arg("-h").output().ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .map(|line| line.trim().to_string())
}

/// Starts a fresh broker, runs one scenario under the hard time limit, stops the broker.
/// Never fails: problems are reported in the outcome.
async fn run_one(
    kind: BrokerKind,
    scenario: Scenario,
    params: &Params,
    acl_policies: Option<&std::path::Path>,
) -> Outcome {
    let config = bench_broker_config(acl_policies);
    let started = tokio::task::spawn_blocking(move || BrokerProcess::start(kind, &config)).await;
    let mut broker = match started {
        Ok(Ok(broker)) => broker,
        Ok(Err(error)) => return failed(format!("starting {kind}: {error:#}")),
        Err(error) => return failed(format!("starting {kind}: {error}")),
    };
    let target = Target {
        addr: broker.socket_addr(),
        pid: broker.pid(),
    };
    let limit = params.time_limit();
    let result = tokio::time::timeout(limit, scenarios::run(scenario, target, params)).await;
    let mut outcome = match result {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => failed(format!("{error:#}")),
        Err(_) => failed(format!("did not finish within {limit:?}")),
    };
    if let Ok(peak) = procstat::peak_rss_kib(target.pid) {
        outcome.metrics.push(Metric::new(
            "peak_rss",
            "broker peak RSS",
            "MiB",
            peak as f64 / 1024.0,
            Better::Lower,
        ));
    }
    if !broker.is_running() {
        let error = format!("{kind} exited during the scenario");
        outcome.error = Some(match outcome.error.take() {
            Some(previous) => format!("{previous}; {error}"),
            None => error,
        });
    }
    if std::env::var_os("TB_DEBUG").is_some() {
        eprintln!("--- {kind} log ---\n{}", log_tail(&broker.log()));
    }
    if let Some(error) = outcome.error.take() {
        outcome.error = Some(format!(
            "{error}\n--- last lines of the {kind} log ---\n{}",
            log_tail(&broker.log())
        ));
    }
    match tokio::task::spawn_blocking(move || broker.stop()).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => outcome.notes.push(format!("stopping {kind}: {error:#}")),
        Err(error) => outcome.notes.push(format!("stopping {kind}: {error}")),
    }
    outcome
}

fn failed(error: String) -> Outcome {
    Outcome {
        error: Some(error),
        ..Outcome::default()
    }
}

fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
