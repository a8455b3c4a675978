//! `tern-bench`: Tern versus Mosquitto on the same machine, with the same load generator.
//!
//! The load generator is a small MQTT client written directly on tokio and Tern's own codec
//! ([`tern_broker::protocol`]), batching many packets per write so that it costs far less CPU
//! than the brokers it measures. Each scenario starts a fresh broker process (through
//! [`crate::broker`]), drives it for a bounded time, stops it, and reports absolute numbers per
//! broker plus the Tern/Mosquitto ratio.
//!
//! Modules, one job each:
//! - [`options`]: command-line options and the scenario list.
//! - [`client`]: the raw MQTT client (connect, subscribe, batched packet I/O).
//! - [`payload`]: the benchmark payload (publisher, sequence number, send timestamp).
//! - [`flow`]: the load generator's own flow control for QoS 0 (bounded outstanding messages).
//! - [`procstat`]: CPU time and memory of the broker process from `/proc`.
//! - [`scenarios`]: fan-in, fan-out, latency and idle connections.
//! - [`report`]: metrics, tables and JSON.
//! - [`runner`]: runs every selected scenario against every selected broker, `--rounds` times.

pub mod client;
pub mod flow;
pub mod options;
pub mod payload;
pub mod procstat;
pub mod report;
pub mod runner;
pub mod scenarios;
