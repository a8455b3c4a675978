//! Test harness shared by the end-to-end tests: start real brokers, run real clients.
pub mod broker;
pub mod bench;
pub mod clients;
