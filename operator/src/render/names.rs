//! Names, labels and owner references shared by all of a cluster's children.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use super::RenderError;
use crate::crd::MqttCluster;

/// The one server-side-apply field manager the operator writes with.
pub const FIELD_MANAGER: &str = "tern-operator";

/// Annotation holding a configuration revision: on the ConfigMap and Secret (what they hold)
/// and on running pods (what the operator last signalled to them).
pub const CONFIG_REVISION_ANNOTATION: &str = "mqtt.tern.dev/config-revision";

/// The name of the ConfigMap of the cluster called `cluster`.
pub fn config_map_name(cluster: &str) -> String {
    format!("{cluster}-config")
}

/// The names and identity every child object of one cluster is derived from.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterNames {
    /// The cluster's name; also the StatefulSet, client Service and ServiceAccount name.
    pub cluster: String,
    /// The cluster's namespace, shared by all children.
    pub namespace: String,
    /// Makes the cluster the controlling owner, so children are garbage-collected with it.
    pub owner: OwnerReference,
}

impl ClusterNames {
    /// Names for `cluster`, which must have been stored (it needs a uid).
    pub fn of(cluster: &MqttCluster) -> Result<ClusterNames, RenderError> {
        let owner = cluster
            .controller_owner_ref(&())
            .ok_or(RenderError::MissingMetadata("uid"))?;
        let namespace = cluster
            .namespace()
            .ok_or(RenderError::MissingMetadata("namespace"))?;
        Ok(ClusterNames {
            cluster: cluster.name_any(),
            namespace,
            owner,
        })
    }

    /// The ConfigMap with `broker.yaml` and the policies file.
    pub fn config_map(&self) -> String {
        config_map_name(&self.cluster)
    }

    /// The Secret with the password file, JWT keys and TLS material.
    pub fn secret(&self) -> String {
        format!("{}-secrets", self.cluster)
    }

    /// The headless Service governing the StatefulSet's pod names.
    pub fn headless_service(&self) -> String {
        format!("{}-headless", self.cluster)
    }

    /// Labels that select this cluster's broker pods. Never change them: a StatefulSet's
    /// selector is immutable.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "tern".into()),
            ("app.kubernetes.io/instance".into(), self.cluster.clone()),
        ])
    }

    /// The selector as a label-selector string (`status.selector`, for the scale subresource).
    pub fn selector_string(&self) -> String {
        self.selector_labels()
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Labels on every child object.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels();
        labels.insert("app.kubernetes.io/component".into(), "broker".into());
        labels.insert("app.kubernetes.io/managed-by".into(), FIELD_MANAGER.into());
        labels
    }

    /// Metadata for a child called `name`: namespace, labels and the owner reference.
    pub fn metadata(&self, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }
}
