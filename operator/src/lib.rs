//! Tern's Kubernetes operator as a library. Reading order: the custom resources ([`crd`]); the
//! pure rendering of a cluster's child objects ([`render`]); the reconcilers that apply them and
//! report status ([`controller`]); then the process around them — [`leader`] election,
//! [`metrics`] and their [`http`] endpoint, [`shutdown`], and [`app`], which starts it all. The
//! `tern-operator` binary parses flags and calls [`app::run`]; `crdgen` writes the CRDs.

pub mod app;
pub mod controller;
pub mod crd;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod render;
pub mod shutdown;
