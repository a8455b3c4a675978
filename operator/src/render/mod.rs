//! Pure functions from an `MqttCluster` (plus the material read from its Secrets and its
//! accepted `AclPolicy`s) to the child objects that run it. Nothing here talks to the API
//! server, so every decision about what a cluster looks like is unit-tested here.
//!
//! The configuration reaches the broker through one `projected` volume mounted whole at
//! [`CONFIG_DIR`] — the ConfigMap (`broker.yaml`, the policies file) and the operator's Secret
//! (password file, JWT keys, TLS material) side by side in one directory, swapped by the kubelet
//! in one atomic `..data` rename. Neither source lists `items`, so which files exist is decided
//! by the ConfigMap and Secret alone: adding a user, a listener or a policy never touches the
//! pod template, and so never restarts a broker.

mod broker_config;
mod config_map;
mod disruption_budget;
mod names;
mod revision;
mod secret;
mod service_account;
mod services;
mod stateful_set;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use tern_broker::acl::AclPolicy as BrokerAclPolicy;

use crate::crd::MqttCluster;

pub use broker_config::{broker_config, files, BROKER_REPLICA_LIMIT};
pub use names::{config_map_name, ClusterNames, CONFIG_REVISION_ANNOTATION, FIELD_MANAGER};
pub use revision::config_revision;
pub use secret::{SecretMaterial, TlsMaterial};

/// Where the configuration volume is mounted; the broker runs with `--config` pointing here.
pub const CONFIG_DIR: &str = "/etc/tern";

/// Why a cluster's objects could not be rendered. These are problems with the spec or its
/// referenced material, reported in the cluster's `Degraded` condition.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The cluster has not been stored by the API server yet (no uid for owner references).
    #[error("MqttCluster has no {0} yet")]
    MissingMetadata(&'static str),
    /// The broker would refuse the rendered `broker.yaml`.
    #[error("the rendered broker configuration is invalid: {0}")]
    InvalidBrokerConfig(String),
    /// A rendered file could not be serialized.
    #[error("cannot serialize {file}: {source}")]
    Serialize {
        /// The file being rendered.
        file: &'static str,
        /// The serializer's error.
        source: yaml_serde::Error,
    },
}

/// What goes into a cluster besides its own spec.
#[derive(Debug, Clone)]
pub struct RenderInputs<'a> {
    /// The cluster.
    pub cluster: &'a MqttCluster,
    /// The broker image when the spec names none (the operator's own version).
    pub default_image: &'a str,
    /// The cluster's accepted policies, in the order they are written (sorted by name).
    pub policies: &'a [BrokerAclPolicy],
    /// Secret material gathered from the Secrets the spec references.
    pub secret_material: &'a SecretMaterial,
}

/// Every object a cluster consists of, ready for server-side apply.
#[derive(Debug, Clone)]
pub struct ClusterObjects {
    /// Content hash of the rendered ConfigMap and Secret data.
    pub config_revision: String,
    /// `broker.yaml` and the policies file.
    pub config_map: ConfigMap,
    /// Password file, JWT keys and TLS material.
    pub secret: Secret,
    /// The brokers.
    pub stateful_set: StatefulSet,
    /// One port per listener.
    pub client_service: Service,
    /// Stable pod DNS names for the StatefulSet.
    pub headless_service: Service,
    /// Voluntary disruptions: at most one broker down at a time.
    pub disruption_budget: PodDisruptionBudget,
    /// The brokers' identity (no API access).
    pub service_account: ServiceAccount,
}

/// Renders all of a cluster's child objects.
pub fn render_cluster(inputs: &RenderInputs<'_>) -> Result<ClusterObjects, RenderError> {
    let names = ClusterNames::of(inputs.cluster)?;
    let spec = &inputs.cluster.spec;
    let config = broker_config(spec);
    let broker_yaml = broker_config::to_validated_yaml(&config)?;
    let policies_yaml =
        yaml_serde::to_string(inputs.policies).map_err(|source| RenderError::Serialize {
            file: files::POLICIES,
            source,
        })?;
    let mut secret_data = inputs.secret_material.files();
    let mut config_map_data = config_map::data(broker_yaml, policies_yaml);
    let config_revision = config_revision(&config_map_data, &secret_data);
    // A copy of the revision in each object, for the broker to report (`/revision`) once the
    // kubelet has projected both objects of this rendering.
    config_map_data.insert(files::RENDERED_REVISION.into(), config_revision.clone());
    secret_data.insert(
        files::RENDERED_REVISION_SECRET.into(),
        k8s_openapi::ByteString(config_revision.clone().into_bytes()),
    );
    Ok(ClusterObjects {
        config_map: config_map::config_map(&names, config_map_data, &config_revision),
        secret: secret::secret(&names, secret_data, &config_revision),
        stateful_set: stateful_set::stateful_set(&names, spec, inputs.default_image),
        client_service: services::client_service(&names, spec),
        headless_service: services::headless_service(&names, spec),
        disruption_budget: disruption_budget::disruption_budget(&names),
        service_account: service_account::service_account(&names),
        config_revision,
    })
}

#[cfg(test)]
mod tests;
