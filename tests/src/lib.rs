//! Test harness shared by the end-to-end tests: start real brokers, run real clients.
pub mod bench;
pub mod broker;
pub mod clients;
pub mod helm;
