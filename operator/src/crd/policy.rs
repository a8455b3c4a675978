//! `AclPolicy`: a named set of ACL rules for one `MqttCluster`, in the broker's own rule shape.

// Each `printcolumn(...)` repeats keys like `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tern_broker::acl::AclRule;

/// Rules a cluster's brokers enforce on PUBLISH and SUBSCRIBE. The rules are exactly the
/// broker's policy-file rules (`effect`, `principals`, `actions`, `topics`, `maxQos`, `retain`):
/// the operator writes every accepted policy of a cluster into that cluster's policies file.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "mqtt.tern.dev",
    version = "v1alpha1",
    kind = "AclPolicy",
    namespaced,
    shortname = "aclp",
    status = "AclPolicyStatus",
    doc = "ACL rules enforced by the brokers of one MqttCluster in the same namespace.",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".spec.clusterRef.name"
    ),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
    ),
    printcolumn(
        name = "Applied",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Applied\")].status"
    ),
    printcolumn(
        name = "Revision",
        type_ = "string",
        json_path = ".status.configRevision"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AclPolicySpec {
    /// The `MqttCluster` (in this namespace) whose brokers enforce these rules.
    pub cluster_ref: ClusterRef,
    /// The rules. A request matched by any `Deny` rule (of any policy) is refused; otherwise
    /// it is allowed if an `Allow` rule matches, and decided by the cluster's default action if
    /// none does.
    #[schemars(length(min = 1))]
    pub rules: Vec<AclRule>,
}

/// A reference to an `MqttCluster` in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    /// Name of the `MqttCluster`.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
}

/// What the operator did with the policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclPolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`: the rules are valid and the cluster exists. `Applied`: the rules are in the
    /// cluster's rendered configuration (see `configRevision`); its message says how many of
    /// the cluster's brokers report running that revision.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The cluster's configuration revision that contains these rules. The cluster's
    /// `status.pods[].runningRevision` says which brokers run it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_revision: Option<String>,
}
