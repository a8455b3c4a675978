//! Idle connections: how fast the broker accepts them and how much memory each one costs.
//!
//! Opens N connections (CONNECT with keep alive 60, then nothing), a fixed number at a time,
//! and reads the broker's resident set size before, a second after the last CONNACK, and once
//! the connections have been silent for the idle wait (`--idle-seconds`). The last reading is
//! the memory per idle connection: Tern parks connections quiet for five seconds, so the
//! first reading shows what a connection costs while it is still active.

use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Target;
use crate::bench::client::{connect, ConnectOptions, Connection};
use crate::bench::options::Params;
use crate::bench::procstat;
use crate::bench::report::{Better, Metric, Outcome};
use crate::broker::rss_kib_of;

/// Pause before the first and after the last connection, so the readings are stable.
const SETTLE: Duration = Duration::from_secs(1);

/// Runs the idle-connections scenario.
pub async fn run(target: Target, params: &Params) -> anyhow::Result<Outcome> {
    tokio::time::sleep(SETTLE).await;
    let rss_before = rss_kib_of(target.pid)?;
    let cpu_before = procstat::cpu_seconds(target.pid).unwrap_or(0.0);

    let total = params.idle_connections;
    let workers = params.idle_concurrency.clamp(1, total.max(1));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for worker in 0..workers {
        let addr = target.addr;
        let version = params.version;
        tasks.spawn(async move {
            let mut connections: Vec<Connection> = Vec::new();
            for index in (worker..total).step_by(workers) {
                let options = ConnectOptions::new(format!("tb-idle-{index}"), version);
                let connection = connect(addr, &options)
                    .await
                    .with_context(|| format!("idle connection {index}"))?;
                connections.push(connection);
            }
            anyhow::Ok(connections)
        });
    }
    let mut connections = Vec::with_capacity(total);
    while let Some(joined) = tasks.join_next().await {
        connections.extend(joined.context("connecting task panicked")??);
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let cpu_after = procstat::cpu_seconds(target.pid).unwrap_or(0.0);
    tokio::time::sleep(SETTLE).await;
    let rss_connected = rss_kib_of(target.pid)?;
    tokio::time::sleep(params.idle_wait.saturating_sub(SETTLE)).await;
    let rss_after = rss_kib_of(target.pid)?;
    let opened = connections.len();
    drop(connections);

    // The broker's memory growth since before the connections, per connection.
    let kib_each = |rss_kib: u64| rss_kib.saturating_sub(rss_before) as f64 / opened.max(1) as f64;
    let mut outcome = Outcome::default();
    outcome.metrics.push(Metric::new(
        "connects_per_sec",
        "connects",
        "conn/s",
        opened as f64 / elapsed,
        Better::Higher,
    ));
    outcome.metrics.push(Metric::new(
        "kib_per_connection",
        "memory per idle connection",
        "KiB",
        kib_each(rss_after),
        Better::Lower,
    ));
    outcome.metrics.push(Metric::new(
        "kib_per_connection_at_1s",
        "memory per connection, 1 s after connecting",
        "KiB",
        kib_each(rss_connected),
        Better::Lower,
    ));
    outcome.metrics.push(Metric::new(
        "rss_before",
        "broker RSS before",
        "MiB",
        rss_before as f64 / 1024.0,
        Better::Lower,
    ));
    outcome.metrics.push(Metric::new(
        "rss_after",
        "broker RSS with connections",
        "MiB",
        rss_after as f64 / 1024.0,
        Better::Lower,
    ));
    outcome.metrics.push(Metric::new(
        "cpu_per_connect",
        "broker CPU per connect",
        "µs",
        (cpu_after - cpu_before) * 1e6 / opened.max(1) as f64,
        Better::Lower,
    ));
    outcome.notes.push(format!(
        "{opened} connections opened in {elapsed:.2} s, {workers} at a time; memory read 1 s \
         after the last CONNACK and after {} s of silence",
        params.idle_wait.as_secs()
    ));
    Ok(outcome)
}
