//! The reconcilers: watch wiring, server-side apply of rendered objects, status and Events.
//!
//! Both reconcilers are level-based: each run recomputes everything from the current specs (an
//! `MqttCluster`, the `AclPolicy`s that name it, the Secrets it references), so a missed or
//! duplicated event never leaves a cluster behind; a periodic requeue catches drift.

mod apply;
mod backoff;
mod cluster;
mod cluster_status;
mod context;
mod material;
mod pod_revision;
mod policy;
mod policy_rules;
mod propagation;
mod run;

pub use backoff::ErrorBackoff;
pub use cluster::reconcile_cluster;
pub use cluster_status::{cluster_conditions, ClusterObservation, RolloutState};
pub use context::{Context, Error};
pub use material::{gather_secret_material, MaterialError};
pub use policy::{reconcile_policy, POLICY_FINALIZER};
pub use policy_rules::{validate_rules, RuleProblem};
pub use propagation::PropagationChecks;
pub use run::run_controllers;
