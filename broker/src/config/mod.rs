//! The broker's configuration: the types (shared with the operator, which renders them), loading
//! from `broker.yaml`, and validation.
//!
//! Keys are camelCase and unknown keys are rejected, so a typo is an error with a line number
//! rather than a silently ignored setting.

mod load;
mod watch;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use load::{
    config_location, is_revision, load_config, parse_config, revision_of, ConfigError,
    LoadedConfig, RenderedRevision,
};
pub use watch::{watch, ConfigWatch};

/// Everything the broker needs to run, as read from `broker.yaml`.
///
/// This is also the contract with the operator, which renders it from an `MqttCluster` with
/// these very types (behind the `schema` feature they also describe themselves as JSON Schema
/// for the CRDs), so the two cannot drift apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BrokerConfig {
    /// Sockets that accept MQTT clients. At least one.
    pub listeners: Vec<ListenerConfig>,
    /// Resource limits and protocol maxima.
    #[serde(default)]
    pub limits: Limits,
    /// The Prometheus / health HTTP endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The `$SYS/broker/...` statistics topics.
    #[serde(default)]
    pub sys: SysConfig,
    /// Who may connect.
    #[serde(default)]
    pub auth: AuthConfig,
    /// What connected clients may publish and subscribe to.
    #[serde(default)]
    pub acl: AclConfig,
    /// How configuration changes are applied to a running broker.
    #[serde(default)]
    pub reload: ReloadConfig,
    /// Files that each hold the revision this configuration was rendered as, one per source
    /// of the mounted volume (the operator writes its revision into its ConfigMap and into its
    /// Secret). When all hold the same text, `/revision` reports it, so the operator can tell
    /// which rendering a broker runs; when they differ, the volume is half-updated and
    /// `/revision` answers 503.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rendered_revision_files: Vec<PathBuf>,
}

impl BrokerConfig {
    /// The configuration used when `tern-broker` starts without `--config`: like Mosquitto 2's
    /// local-only mode, one plain MQTT listener on 127.0.0.1:1883, anonymous clients allowed,
    /// metrics on 127.0.0.1:9090.
    pub fn embedded_default() -> BrokerConfig {
        BrokerConfig {
            listeners: vec![ListenerConfig {
                name: "mqtt".into(),
                port: 1883,
                bind: IpAddr::from([127, 0, 0, 1]),
                protocol: ListenerProtocol::Mqtt,
                path: None,
                tls: None,
            }],
            rendered_revision_files: Vec::new(),
            limits: Limits::default(),
            metrics: MetricsConfig::default(),
            sys: SysConfig::default(),
            auth: AuthConfig {
                allow_anonymous: true,
                ..AuthConfig::default()
            },
            acl: AclConfig::default(),
            reload: ReloadConfig::default(),
        }
    }
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerConfig {
    /// Unique name, used in logs and as the `listener` metric label.
    pub name: String,
    /// TCP port.
    pub port: u16,
    /// Address to bind; all IPv4 interfaces by default.
    #[serde(default = "default_listener_bind")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub bind: IpAddr,
    /// Wire protocol spoken on the socket.
    #[serde(default)]
    pub protocol: ListenerProtocol,
    /// HTTP path of the WebSocket endpoint (`websocket` listeners only; default `/mqtt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Serve TLS on this listener (MQTTS, or WSS for a WebSocket listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

impl ListenerConfig {
    /// The WebSocket path this listener serves (`/mqtt` unless configured).
    pub fn websocket_path(&self) -> &str {
        self.path.as_deref().unwrap_or(DEFAULT_WEBSOCKET_PATH)
    }
}

/// The WebSocket path MQTT.js and most browser clients use by default.
pub const DEFAULT_WEBSOCKET_PATH: &str = "/mqtt";

fn default_listener_bind() -> IpAddr {
    IpAddr::from([0, 0, 0, 0])
}

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum ListenerProtocol {
    /// MQTT directly over TCP (or TLS).
    #[default]
    Mqtt,
    /// MQTT over WebSocket (subprotocol `mqtt`), as browsers and MQTT.js speak it.
    Websocket,
}

/// TLS material of a listener. Paths are relative to the configuration directory; the files
/// are re-read on every reload, so a rotated certificate (cert-manager rewrites the Secret)
/// takes effect for new handshakes without touching open connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA bundle for client certificates. When set, clients must present a certificate
    /// signed by it (mutual TLS) unless `requireClientCert` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// With `clientCaFile`: whether a client certificate is mandatory (default) or optional.
    #[serde(default = "default_true")]
    pub require_client_cert: bool,
}

fn default_true() -> bool {
    true
}

/// Limits with defaults close to Mosquitto's, so an unconfigured broker behaves like one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Limits {
    /// Highest keep alive (seconds) a client may use; larger (or zero) requests are capped and
    /// the client is told via Server Keep Alive (5.0). 0 means no cap.
    pub max_keep_alive: u16,
    /// Receive Maximum the broker advertises: unacknowledged QoS 1/2 PUBLISHes a client may
    /// have in flight towards the broker.
    pub receive_maximum: u16,
    /// Largest packet accepted from clients, in bytes (advertised as Maximum Packet Size).
    pub max_packet_size: u32,
    /// Topic aliases a client may use towards the broker.
    pub topic_alias_maximum: u16,
    /// Messages the broker keeps per session waiting to be sent (offline queue, and the
    /// backlog of a slow connected subscriber).
    pub max_queued_messages: usize,
    /// Unacknowledged QoS 1/2 messages the broker sends a client at once (further capped by
    /// the client's own Receive Maximum).
    pub max_inflight: u16,
    /// Simultaneous client connections; further connections are refused (0x97 / 0x03).
    pub max_connections: usize,
    /// Levels allowed in a topic name or filter.
    pub max_topic_levels: usize,
    /// Highest Session Expiry Interval (seconds) granted to a client.
    pub max_session_expiry: u32,
    /// Seconds a publisher may be held back while a subscriber's queue is full before its
    /// QoS 1/2 PUBLISH is refused (5.0: 0x97 Quota exceeded; 3.1.1: connection closed so the
    /// client retransmits).
    pub backpressure_timeout: u32,
    /// Seconds a new connection has to send CONNECT.
    pub connect_timeout: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_keep_alive: 65_535,
            receive_maximum: 100,
            max_packet_size: 1_048_576,
            topic_alias_maximum: 10,
            max_queued_messages: 1000,
            max_inflight: 100,
            max_connections: 100_000,
            max_topic_levels: 128,
            max_session_expiry: u32::MAX,
            backpressure_timeout: 10,
            connect_timeout: 10,
        }
    }
}

/// The HTTP server for `/metrics`, `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Whether the HTTP server runs at all.
    pub enabled: bool,
    /// Address to bind.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub bind: IpAddr,
    /// TCP port.
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig {
            enabled: true,
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 9090,
        }
    }
}

/// `$SYS` statistics publishing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SysConfig {
    /// Seconds between updates; 0 disables `$SYS` topics.
    pub interval_seconds: u32,
}

impl Default for SysConfig {
    fn default() -> SysConfig {
        SysConfig {
            interval_seconds: 10,
        }
    }
}

/// Client authentication: who may connect, checked in this order — a client certificate
/// identity (mTLS), a JWT in the password field, the password file — and anonymous access
/// when no credentials are given.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Whether clients without credentials may connect. Off unless configured (like Mosquitto 2
    /// with explicit listeners); the embedded default turns it on for its loopback listener.
    pub allow_anonymous: bool,
    /// A password file in `mosquitto_passwd` format (`user:$7$...` PBKDF2-SHA512 hashes), which
    /// may also hold `$argon2id$` hashes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Accept a JSON Web Token as the CONNECT password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtConfig>,
    /// Take the username from the client's TLS certificate (on listeners that verify them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_identity: Option<TlsIdentity>,
    /// Group memberships for ACL principals `{ group: NAME }`: group name → usernames.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Vec<String>>,
}

/// How JSON Web Tokens are verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtConfig {
    /// Claim whose value becomes the username (default `sub`).
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
    /// Verification keys; a token is accepted if any key of its algorithm verifies it.
    pub keys: Vec<JwtKey>,
    /// Clock difference tolerated when checking `exp` and `nbf`, in seconds (default 60). A
    /// connection admitted by a token is closed (MQTT 5: 0xA0, Maximum connect time) once the
    /// token's `exp` plus this leeway has passed.
    #[serde(default = "default_jwt_leeway")]
    pub leeway_seconds: u64,
}

fn default_username_claim() -> String {
    "sub".into()
}

/// The `jsonwebtoken` crate's own default leeway.
fn default_jwt_leeway() -> u64 {
    60
}

/// One JWT verification key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtKey {
    /// The key file: the shared secret (raw bytes) for HS*, a PEM public key for RS*/PS*/ES*.
    pub file: PathBuf,
    /// Signature algorithm the key is for.
    pub algorithm: JwtAlgorithm,
}

/// JWT signature algorithms Tern verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[allow(clippy::upper_case_acronyms)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
}

/// Which part of a verified client certificate becomes the username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum TlsIdentity {
    /// The subject's Common Name.
    CommonName,
    /// The first DNS or e-mail Subject Alternative Name.
    SubjectAltName,
}

/// Access control: which topics a client may publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AclConfig {
    /// What happens to a request no rule matches. When omitted: `deny` if any policy file is
    /// configured (as with Mosquitto's `acl_file`), otherwise `allow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_action: Option<DefaultAction>,
    /// Policy files (each a YAML list of policies, the shape of an `AclPolicy` spec), relative
    /// to the configuration directory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
}

impl AclConfig {
    /// The default action in force, after applying the rule for an omitted one.
    pub fn effective_default_action(&self) -> DefaultAction {
        self.default_action.unwrap_or(if self.files.is_empty() {
            DefaultAction::Allow
        } else {
            DefaultAction::Deny
        })
    }
}

/// The verdict for requests no ACL rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum DefaultAction {
    /// Permit it.
    Allow,
    /// Refuse it.
    Deny,
}

/// How a new configuration is applied to a running broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// Milliseconds of quiet after a file change before the configuration is re-read, so a
    /// burst of writes (the kubelet's `..data` swap, an editor's save) becomes one reload.
    pub debounce_millis: u32,
    /// Whether connections accepted by a listener that is removed are closed (5.0 clients get
    /// DISCONNECT 0x8B). By default they stay connected; only new connections are refused.
    pub close_removed_listener_connections: bool,
    /// Whether connections whose credentials no longer hold after a reload are closed: a
    /// removed user's (5.0: DISCONNECT 0x87 Not authorized) and one whose password hash or
    /// JWT key changed (0x98 Administrative action). On by default: revoking a credential
    /// should revoke its connections.
    pub disconnect_revoked_clients: bool,
}

impl Default for ReloadConfig {
    fn default() -> ReloadConfig {
        ReloadConfig {
            debounce_millis: 200,
            close_removed_listener_connections: false,
            disconnect_revoked_clients: true,
        }
    }
}
