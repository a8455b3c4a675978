//! Tern's Kubernetes operator as a library: the custom resources ([`crd`]), the pure rendering
//! of a cluster's child objects ([`render`]), and the reconcilers that apply them
//! ([`controller`]). The `tern-operator` binary wires these together; `crdgen` prints the CRDs.

pub mod crd;
pub mod render;
