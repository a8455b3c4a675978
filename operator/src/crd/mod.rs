//! The operator's API: the `MqttCluster` and `AclPolicy` custom resources (group
//! `mqtt.tern.dev`, version `v1alpha1`).
//!
//! Where the broker already has a type for a piece of the spec (limits, ACL rules, JWT
//! algorithms, TLS identity), the CRD embeds that very type, so the schema users write against
//! and the `broker.yaml` the operator renders cannot disagree.

mod cluster;
mod condition;
mod generate;
mod policy;

pub use cluster::{
    AclSettings, AuthSpec, ClusterListener, JwtKeyRef, JwtSpec, ListenerTls, MqttCluster,
    MqttClusterSpec, MqttClusterStatus, PodConfigRevision, SecretKeyRef, ServiceSpec, ServiceType,
    UserSpec, DEFAULT_METRICS_PORT,
};
pub use condition::{condition_status, set_condition, ConditionUpdate};
pub use generate::{crd_manifests, CrdManifest, CrdRenderError};
pub use policy::{AclPolicy, AclPolicySpec, AclPolicyStatus, ClusterRef};

/// The API group of both resources.
pub const API_GROUP: &str = "mqtt.tern.dev";
