//! `tern-bench`: Tern versus Mosquitto on this machine. See the "Benchmark" section of the
//! README and `tern_e2e::bench`.
//!
//! ```text
//! cargo run --release -p tern-e2e --bin tern-bench -- [--scenarios all|fanin0,fanin1,fanout,latency,idle]
//!     [--quick] [--rounds N] [--broker tern|mosquitto|both] [--json]
//! ```

use std::process::ExitCode;

use clap::Parser;
use tern_e2e::bench::options::Options;
use tern_e2e::bench::report::{render_info, render_scenario};
use tern_e2e::bench::runner::{self, NOFILE_LIMIT};
use tern_e2e::broker::raise_own_nofile_limit;

fn main() -> ExitCode {
    let options = Options::parse();
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("tern-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the benchmark; `Ok(false)` when a scenario failed or lost messages.
fn run(options: &Options) -> anyhow::Result<bool> {
    let nofile = raise_own_nofile_limit(NOFILE_LIMIT)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let json = options.json;
    let report = runtime.block_on(async {
        let (params, info) = runner::prepare(options).await?;
        if !json {
            println!(
                "tern-bench: brokers run one after the other on 127.0.0.1; open-file limit {nofile}"
            );
            print!("{}", render_info(&info));
        }
        runner::run(options, &params, info, |scenario| {
            if !json {
                print!("{}", render_scenario(scenario));
            }
        })
        .await
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("\ntotal {:.0} s", report.total_secs);
    }
    Ok(!report.failed())
}
