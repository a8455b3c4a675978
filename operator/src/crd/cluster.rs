//! `MqttCluster`: a set of Tern brokers and everything they are configured with.

// Each `printcolumn(...)` repeats keys like `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tern_broker::config::{DefaultAction, JwtAlgorithm, Limits, ListenerProtocol, TlsIdentity};

/// The port of the brokers' `/metrics`, `/healthz` and `/readyz` endpoint unless configured.
pub const DEFAULT_METRICS_PORT: u16 = 9090;

/// A Tern broker deployment. Until brokers form a cluster, `replicas` may be 0 or 1; a larger
/// value is refused with a `Degraded` condition rather than silently running isolated brokers.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "mqtt.tern.dev",
    version = "v1alpha1",
    kind = "MqttCluster",
    namespaced,
    shortname = "mqc",
    status = "MqttClusterStatus",
    doc = "A Tern MQTT broker deployment managed by the tern-operator.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.readyReplicas"
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
pub struct MqttClusterSpec {
    /// Broker container image. Defaults to the Tern image of the operator's own version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Number of brokers. At most 1 until brokers form a cluster.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Sockets that accept MQTT clients; each becomes a port of the client Service.
    #[serde(default = "default_listeners")]
    #[schemars(length(min = 1))]
    pub listeners: Vec<ClusterListener>,
    /// The client Service.
    #[serde(default)]
    pub service: ServiceSpec,
    /// Protocol limits, exactly as in the broker's `broker.yaml`.
    #[serde(default)]
    pub limits: Limits,
    /// Who may connect.
    #[serde(default)]
    pub auth: AuthSpec,
    /// How requests that no `AclPolicy` rule matches are decided.
    #[serde(default)]
    pub acl: AclSettings,
    /// CPU and memory of the broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Node labels the broker pods must run on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the broker pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Pod (anti-)affinity and node affinity of the broker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Extra annotations on the broker pods (e.g. for a service mesh or scraper).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
    /// Extra labels on the broker pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    /// Port of the brokers' `/metrics`, `/healthz` and `/readyz` endpoint (also the probes').
    #[serde(default = "default_metrics_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub metrics_port: u16,
}

impl MqttClusterSpec {
    /// Names of every Secret this spec reads (passwords, JWT keys, TLS material): a change to
    /// any of them must reach the brokers.
    pub fn referenced_secrets(&self) -> BTreeSet<&str> {
        let users = self
            .auth
            .users
            .iter()
            .map(|u| u.password_secret.name.as_str());
        let jwt = self.auth.jwt.iter().map(|jwt| jwt.secret_name.as_str());
        let tls = self
            .listeners
            .iter()
            .filter_map(|l| l.tls.as_ref())
            .flat_map(|tls| {
                std::iter::once(tls.secret_name.as_str())
                    .chain(tls.client_ca_secret_name.as_deref())
            });
        users.chain(jwt).chain(tls).collect()
    }
}

fn default_replicas() -> i32 {
    1
}

fn default_metrics_port() -> u16 {
    DEFAULT_METRICS_PORT
}

fn default_listeners() -> Vec<ClusterListener> {
    vec![ClusterListener {
        name: "mqtt".into(),
        port: 1883,
        protocol: ListenerProtocol::Mqtt,
        path: None,
        tls: None,
    }]
}

/// One broker listener and the Service port in front of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterListener {
    /// Listener name: the metric label, and the Service port name (so at most 15 lowercase
    /// letters, digits and dashes, starting with a letter).
    #[schemars(regex(pattern = r"^[a-z]([a-z0-9-]{0,13}[a-z0-9])?$"))]
    pub name: String,
    /// TCP port, both in the pod and on the Service.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// `mqtt` (MQTT over TCP) or `websocket` (MQTT over WebSocket).
    #[serde(default)]
    pub protocol: ListenerProtocol,
    /// HTTP path of a `websocket` listener (default `/mqtt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: Option<String>,
    /// Serve TLS with a certificate from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
}

/// TLS material of a listener, from Secrets of type `kubernetes.io/tls` (as cert-manager
/// writes them). A rotated Secret reaches the broker without a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// Secret holding `tls.crt` and `tls.key`.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// Secret holding `ca.crt`, the CA for client certificates (mutual TLS); may be the same
    /// Secret as `secretName`. Without it clients are not asked for a certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_secret_name: Option<String>,
    /// With a client CA: whether a client certificate is mandatory (default) or optional.
    #[serde(default = "default_true")]
    pub require_client_cert: bool,
}

fn default_true() -> bool {
    true
}

/// The client Service in front of the brokers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service type.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Annotations on the Service (e.g. for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The Kubernetes Service types a broker can be exposed with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the cluster only.
    #[default]
    ClusterIP,
    /// Also on a port of every node.
    NodePort,
    /// Also through a cloud load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The value of a Service's `spec.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// Client authentication. Credentials are read from Secrets; only password hashes reach the
/// brokers' configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Whether clients without credentials may connect.
    #[serde(default)]
    pub allow_anonymous: bool,
    /// Username/password users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserSpec>,
    /// Accept a JSON Web Token as the CONNECT password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSpec>,
    /// Take the username from verified client certificates (listeners with a client CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_identity: Option<TlsIdentity>,
    /// Groups for ACL `group` principals: group name → usernames.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Vec<String>>,
}

/// One user whose password is kept in a Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    /// The MQTT username (no `:`, which separates fields in the password file).
    #[schemars(regex(pattern = r"^[^:\s]+$"))]
    pub username: String,
    /// Where the plaintext password is.
    pub password_secret: SecretKeyRef,
}

/// A key of a Secret in the cluster's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret.
    #[serde(default = "default_password_key")]
    pub key: String,
}

fn default_password_key() -> String {
    "password".into()
}

/// JWT verification, with keys from a Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtSpec {
    /// Secret holding the verification keys.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    /// The keys to use, by Secret key.
    #[schemars(length(min = 1))]
    pub keys: Vec<JwtKeyRef>,
    /// Claim whose value becomes the username.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Claim holding a list of group names, for ACL `group` principals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    /// Required `iss`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Required `aud`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Clock difference tolerated when checking `exp` and `nbf`, in seconds. A connection
    /// admitted by a token is closed (MQTT 5: 0xA0, Maximum connect time) once the token's
    /// `exp` plus this leeway has passed.
    #[serde(default = "default_jwt_leeway")]
    #[schemars(range(max = 86400))]
    pub leeway_seconds: u64,
}

fn default_username_claim() -> String {
    "sub".into()
}

fn default_jwt_leeway() -> u64 {
    60
}

/// One JWT verification key within the JWT Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtKeyRef {
    /// Key of the Secret: the shared secret for HS*, a PEM public key otherwise.
    #[schemars(regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
    /// Signature algorithm the key verifies.
    pub algorithm: JwtAlgorithm,
}

/// Cluster-wide ACL settings; the rules themselves come from `AclPolicy` resources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclSettings {
    /// The verdict for requests no rule matches.
    #[serde(default = "default_acl_action")]
    pub default_action: DefaultAction,
}

impl Default for AclSettings {
    fn default() -> AclSettings {
        AclSettings {
            default_action: default_acl_action(),
        }
    }
}

fn default_acl_action() -> DefaultAction {
    DefaultAction::Deny
}

/// The observed state of an `MqttCluster`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MqttClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`, with reasons.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Broker pods that exist (the StatefulSet's `status.replicas`).
    #[serde(default)]
    pub replicas: i32,
    /// Broker pods that pass their readiness probe.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Label selector of the broker pods, for the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Revision of the configuration the operator rendered last (a content hash of the
    /// ConfigMap and Secret it wrote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_revision: Option<String>,
    /// Per broker pod, the configuration revision signalled to it and the one it runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodConfigRevision>,
}

/// The configuration revisions of one broker pod.
///
/// The operator annotates the running pod with each new revision, which makes the kubelet
/// refresh the pod's configuration volume (`configRevision`: delivered). The broker reloads
/// within its debounce interval and then reports the revision on its metrics port's
/// `/revision`, which the operator asks at every reconciliation (`runningRevision`: in force).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodConfigRevision {
    /// Pod name.
    pub name: String,
    /// The revision last signalled to the pod.
    pub config_revision: String,
    /// The revision the broker reported running when last asked; absent when it could not be
    /// asked (no pod IP yet, not listening, unreachable) or its volume was half-updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_revision: Option<String>,
}

impl PodConfigRevision {
    /// Whether the broker answered and runs another revision than `revision` (one that could
    /// not be asked does not count).
    pub fn reports_running_other_than(&self, revision: &str) -> bool {
        self.running_revision.is_some() && !self.reports_running(revision)
    }

    /// Whether the broker answered that it runs `revision`.
    pub fn reports_running(&self, revision: &str) -> bool {
        self.running_revision.as_deref() == Some(revision)
    }
}
