//! Tern's Kubernetes operator as a library: the custom resources ([`crd`]), the pure rendering
//! of a cluster's child objects ([`render`]), and the reconcilers that apply them
//! ([`controller`]). The `tern-operator` binary wires these together; `crdgen` prints the CRDs.

pub mod app;
pub mod controller;
pub mod crd;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod render;
pub mod shutdown;
