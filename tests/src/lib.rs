//! Test harness shared by the end-to-end tests: start real brokers, run real clients, start a
//! real Kubernetes control plane, render the Helm chart.
pub mod bench;
pub mod broker;
pub mod certs;
pub mod clients;
pub mod control_plane;
pub mod helm;
pub mod http;
pub mod live;
pub mod projected;
