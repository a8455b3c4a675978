//! `broker.yaml`, built as a [`BrokerConfig`] value — never from a text template — so it has
//! exactly the shape the broker parses.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use tern_broker::config::{
    parse_config, AclConfig, AuthConfig, BrokerConfig, JwtConfig, JwtKey, ListenerConfig,
    MetricsConfig, ReloadConfig, SysConfig, TlsConfig,
};

use super::RenderError;
use crate::crd::MqttClusterSpec;

/// How many brokers may run until brokers form a cluster: more would be isolated brokers that
/// each see only some of the clients, so larger `replicas` are refused.
pub const BROKER_REPLICA_LIMIT: i32 = 1;

/// The names of the files in the configuration directory. All files sit side by side (see the
/// module docs of `render` for why there are no subdirectories); `broker.yaml` refers to the
/// others relative to that directory.
pub mod files {
    /// The broker configuration (ConfigMap).
    pub const BROKER_YAML: &str = "broker.yaml";
    /// The ACL policies of all accepted `AclPolicy`s (ConfigMap).
    pub const POLICIES: &str = "acl-policies.yaml";
    /// `user:hash` lines (Secret).
    pub const PASSWORDS: &str = "passwd";
    /// The configuration revision, as written into the ConfigMap (ConfigMap).
    pub const RENDERED_REVISION: &str = "rendered-revision";
    /// The configuration revision, as written into the Secret (Secret). The broker reports a
    /// revision only when both copies agree, i.e. when the kubelet projected both objects of
    /// the same rendering.
    pub const RENDERED_REVISION_SECRET: &str = "rendered-revision-secret";

    /// A JWT verification key, by its key in the user's JWT Secret (Secret).
    pub fn jwt_key(key: &str) -> String {
        format!("jwt-{key}")
    }

    /// A listener's certificate chain (Secret).
    pub fn tls_cert(listener: &str) -> String {
        format!("tls-{listener}.crt")
    }

    /// A listener's private key (Secret).
    pub fn tls_key(listener: &str) -> String {
        format!("tls-{listener}.key")
    }

    /// A listener's client CA bundle (Secret).
    pub fn tls_client_ca(listener: &str) -> String {
        format!("tls-{listener}-ca.crt")
    }
}

/// The broker configuration for `spec`.
pub fn broker_config(spec: &MqttClusterSpec) -> BrokerConfig {
    BrokerConfig {
        listeners: spec.listeners.iter().map(listener_config).collect(),
        limits: spec.limits.clone(),
        metrics: MetricsConfig {
            enabled: true,
            // Probes and scrapers reach the pod from outside the loopback interface.
            bind: IpAddr::from([0, 0, 0, 0]),
            port: spec.metrics_port,
        },
        sys: SysConfig::default(),
        auth: auth_config(spec),
        acl: AclConfig {
            default_action: Some(spec.acl.default_action),
            // Always present (possibly an empty list), so the first AclPolicy only changes
            // the file's content, not `broker.yaml`.
            files: vec![PathBuf::from(files::POLICIES)],
        },
        reload: ReloadConfig::default(),
        rendered_revision_files: vec![
            PathBuf::from(files::RENDERED_REVISION),
            PathBuf::from(files::RENDERED_REVISION_SECRET),
        ],
    }
}

fn listener_config(listener: &crate::crd::ClusterListener) -> ListenerConfig {
    ListenerConfig {
        name: listener.name.clone(),
        port: listener.port,
        bind: IpAddr::from([0, 0, 0, 0]),
        protocol: listener.protocol,
        path: listener.path.clone(),
        tls: listener.tls.as_ref().map(|tls| TlsConfig {
            cert_file: files::tls_cert(&listener.name).into(),
            key_file: files::tls_key(&listener.name).into(),
            client_ca_file: tls
                .client_ca_secret_name
                .as_ref()
                .map(|_| files::tls_client_ca(&listener.name).into()),
            require_client_cert: tls.require_client_cert,
        }),
    }
}

fn auth_config(spec: &MqttClusterSpec) -> AuthConfig {
    let auth = &spec.auth;
    AuthConfig {
        allow_anonymous: auth.allow_anonymous,
        password_file: (!auth.users.is_empty()).then(|| PathBuf::from(files::PASSWORDS)),
        jwt: auth.jwt.as_ref().map(|jwt| JwtConfig {
            username_claim: jwt.username_claim.clone(),
            groups_claim: jwt.groups_claim.clone(),
            issuer: jwt.issuer.clone(),
            audience: jwt.audience.clone(),
            leeway_seconds: jwt.leeway_seconds,
            keys: jwt
                .keys
                .iter()
                .map(|key| JwtKey {
                    file: files::jwt_key(&key.key).into(),
                    algorithm: key.algorithm,
                })
                .collect(),
        }),
        tls_identity: auth.tls_identity,
        groups: auth.groups.clone(),
    }
}

/// Serializes `config` and checks it with the broker's own parser and validation, so a spec the
/// broker would refuse (say, the metrics port reused by a listener) is reported on the
/// `MqttCluster` instead of being rolled out.
pub fn to_validated_yaml(config: &BrokerConfig) -> Result<String, RenderError> {
    let yaml = yaml_serde::to_string(config).map_err(|source| RenderError::Serialize {
        file: files::BROKER_YAML,
        source,
    })?;
    parse_config(yaml.as_bytes(), Path::new(files::BROKER_YAML))
        .map_err(|error| RenderError::InvalidBrokerConfig(error.to_string()))?;
    Ok(yaml)
}
