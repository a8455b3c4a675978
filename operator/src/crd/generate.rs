//! The CRD manifests, as the `crdgen` binary writes them to `crds/`.

use kube::CustomResourceExt;

use super::{AclPolicy, MqttCluster};

/// One CRD manifest: its file name under `crds/` and its YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrdManifest {
    /// File name, e.g. `mqttclusters.yaml`.
    pub file_name: &'static str,
    /// The CustomResourceDefinition as YAML.
    pub yaml: String,
}

/// Why a CRD could not be rendered as YAML.
#[derive(Debug, thiserror::Error)]
#[error("cannot serialize the {kind} CRD as YAML: {source}")]
pub struct CrdRenderError {
    kind: &'static str,
    source: yaml_serde::Error,
}

/// Both CRDs, in a stable order.
pub fn crd_manifests() -> Result<Vec<CrdManifest>, CrdRenderError> {
    let to_yaml = |kind: &'static str, crd| {
        yaml_serde::to_string(&crd).map_err(|source| CrdRenderError { kind, source })
    };
    Ok(vec![
        CrdManifest {
            file_name: "mqttclusters.yaml",
            yaml: to_yaml("MqttCluster", MqttCluster::crd())?,
        },
        CrdManifest {
            file_name: "aclpolicies.yaml",
            yaml: to_yaml("AclPolicy", AclPolicy::crd())?,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn manifests() -> Vec<CrdManifest> {
        crd_manifests().unwrap_or_else(|error| panic!("{error}"))
    }

    /// The schema of `kind`'s only version, as JSON for easy navigation.
    fn schema_of(kind: &str) -> Value {
        let crd = match kind {
            "MqttCluster" => serde_json::to_value(MqttCluster::crd()),
            _ => serde_json::to_value(AclPolicy::crd()),
        }
        .unwrap_or_default();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    #[test]
    fn committed_crds_match_the_generated_ones() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
        for manifest in manifests() {
            let committed = std::fs::read_to_string(dir.join(manifest.file_name))
                .unwrap_or_else(|error| panic!("crds/{}: {error}", manifest.file_name));
            assert!(
                committed == manifest.yaml,
                "crds/{} is stale: run `cargo run -p tern-operator --bin crdgen`",
                manifest.file_name
            );
        }
    }

    #[test]
    fn listener_names_are_limited_to_service_port_names() {
        let listener = &schema_of("MqttCluster")["properties"]["spec"]["properties"]["listeners"]
            ["items"]["properties"]["name"];
        assert_eq!(
            listener["pattern"],
            Value::from(r"^[a-z]([a-z0-9-]{0,13}[a-z0-9])?$")
        );
    }

    #[test]
    fn listener_ports_are_range_checked() {
        let port = &schema_of("MqttCluster")["properties"]["spec"]["properties"]["listeners"]
            ["items"]["properties"]["port"];
        assert_eq!(
            (port["minimum"].as_f64(), port["maximum"].as_f64()),
            (Some(1.0), Some(65535.0))
        );
    }

    #[test]
    fn listener_protocol_is_an_enum() {
        let protocol = &schema_of("MqttCluster")["properties"]["spec"]["properties"]["listeners"]
            ["items"]["properties"]["protocol"];
        assert_eq!(protocol["enum"], serde_json::json!(["mqtt", "websocket"]));
    }

    #[test]
    fn replicas_default_to_one() {
        let replicas = &schema_of("MqttCluster")["properties"]["spec"]["properties"]["replicas"];
        assert_eq!(replicas["default"], Value::from(1));
    }

    #[test]
    fn the_acl_default_action_defaults_to_deny() {
        let acl = &schema_of("MqttCluster")["properties"]["spec"]["properties"]["acl"];
        assert_eq!(
            acl["properties"]["defaultAction"]["default"],
            Value::from("deny")
        );
    }

    #[test]
    fn policy_rules_use_the_broker_rule_schema() {
        let rule = &schema_of("AclPolicy")["properties"]["spec"]["properties"]["rules"]["items"];
        assert_eq!(
            rule["properties"]["effect"]["enum"],
            serde_json::json!(["Allow", "Deny"])
        );
    }

    #[test]
    fn max_qos_is_limited_to_0_through_2() {
        let max_qos = &schema_of("AclPolicy")["properties"]["spec"]["properties"]["rules"]["items"]
            ["properties"]["maxQos"];
        assert_eq!(max_qos["maximum"].as_f64(), Some(2.0));
    }

    #[test]
    fn schemas_are_structural_without_one_of_or_closed_objects() {
        for manifest in manifests() {
            for forbidden in [
                "oneOf",
                "anyOf",
                "allOf",
                "$ref",
                "additionalProperties: false",
            ] {
                assert!(
                    !manifest.yaml.contains(forbidden),
                    "{} contains `{forbidden}`",
                    manifest.file_name
                );
            }
        }
    }

    #[test]
    fn the_cluster_has_status_and_scale_subresources() {
        let crd = serde_json::to_value(MqttCluster::crd()).unwrap_or_default();
        let subresources = &crd["spec"]["versions"][0]["subresources"];
        assert_eq!(
            (
                subresources["scale"]["specReplicasPath"].as_str(),
                subresources["status"].is_object()
            ),
            (Some(".spec.replicas"), true)
        );
    }

    #[test]
    fn the_cluster_prints_ready_replicas_revision_and_age() {
        let crd = serde_json::to_value(MqttCluster::crd()).unwrap_or_default();
        let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .map(|columns| columns.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(columns, ["Ready", "Replicas", "Revision", "Age"]);
    }

    #[test]
    fn short_names_are_mqc_and_aclp() {
        let cluster = serde_json::to_value(MqttCluster::crd()).unwrap_or_default();
        let policy = serde_json::to_value(AclPolicy::crd()).unwrap_or_default();
        assert_eq!(
            (
                cluster["spec"]["names"]["shortNames"].clone(),
                policy["spec"]["names"]["shortNames"].clone()
            ),
            (serde_json::json!(["mqc"]), serde_json::json!(["aclp"]))
        );
    }
}
