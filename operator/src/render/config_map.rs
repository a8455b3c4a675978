//! The ConfigMap: `broker.yaml` and the policies file.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::broker_config::files;
use super::names::{ClusterNames, CONFIG_REVISION_ANNOTATION};

/// The ConfigMap's files.
pub fn data(broker_yaml: String, policies_yaml: String) -> BTreeMap<String, String> {
    BTreeMap::from([
        (files::BROKER_YAML.to_string(), broker_yaml),
        (files::POLICIES.to_string(), policies_yaml),
    ])
}

/// The ConfigMap, annotated with the revision of the whole configuration it is part of.
pub fn config_map(
    names: &ClusterNames,
    data: BTreeMap<String, String>,
    config_revision: &str,
) -> ConfigMap {
    let mut metadata = names.metadata(names.config_map());
    metadata.annotations = Some(BTreeMap::from([(
        CONFIG_REVISION_ANNOTATION.to_string(),
        config_revision.to_string(),
    )]));
    ConfigMap {
        metadata,
        data: Some(data),
        ..ConfigMap::default()
    }
}
