//! The files in `examples/`: the standalone broker configuration passes `tern-broker --check`,
//! and every Kubernetes example names only fields its CRD defines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tern_e2e::broker::{tern_broker_binary, workspace_root};
use tern_e2e::helm::{parse_manifests, read_yaml, Manifest};

fn examples_dir() -> PathBuf {
    workspace_root().join("examples")
}

/// Runs `tern-broker --check --config PATH`; returns (success, stdout + stderr).
fn check_config(path: &Path) -> (bool, String) {
    let output = Command::new(tern_broker_binary().expect("tern-broker builds"))
        .args(["--check", "--config"])
        .arg(path)
        .output()
        .expect("tern-broker runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn standalone_broker_example_passes_check() {
    let (success, output) = check_config(&examples_dir().join("broker.yaml"));
    assert!(
        success && output.contains("configuration OK"),
        "tern-broker --check --config examples/broker.yaml: {output}"
    );
}

#[test]
fn check_refuses_the_standalone_example_with_a_misspelled_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(examples_dir().join("broker.yaml")).unwrap();
    let broken = dir.path().join("broker.yaml");
    std::fs::write(&broken, text.replace("maxKeepAlive", "maxKeepAlvie")).unwrap();
    let (success, output) = check_config(&broken);
    assert!(!success && output.contains("maxKeepAlvie"), "{output}");
}

#[test]
fn standalone_acl_file_holds_policies_in_the_broker_shape() {
    let text = std::fs::read_to_string(examples_dir().join("broker/acl.yaml")).unwrap();
    let policies: Vec<tern_broker::acl::AclPolicy> =
        yaml_serde::from_str(&text).expect("examples/broker/acl.yaml is a list of policies");
    assert_eq!(
        policies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["devices", "people"]
    );
}

#[test]
fn standalone_password_file_is_mosquitto_passwd_output() {
    let text = std::fs::read_to_string(examples_dir().join("broker/passwd")).unwrap();
    let users: Vec<&str> = text
        .lines()
        .filter_map(|line| line.split_once(":$7$").map(|(user, _)| user))
        .collect();
    assert_eq!(users, ["alice", "device-001"]);
}

/// Every Kubernetes object of `examples/*.yaml` (the standalone broker files excluded).
fn example_objects() -> Vec<(String, Manifest)> {
    let mut objects = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .filter(|path| !path.ends_with("broker.yaml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for object in parse_manifests(&text).unwrap_or_else(|e| panic!("{file}: {e:#}")) {
            objects.push((file.clone(), object));
        }
    }
    objects
}

/// Paths in `value` that `schema` (a CRD's openAPIV3Schema) does not define: a field the API
/// server would silently drop.
fn unknown_fields(value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                if let Some(child_schema) = schema["properties"].get(key) {
                    unknown_fields(child, child_schema, &child_path, out);
                } else if let Some(additional) = schema.get("additionalProperties") {
                    unknown_fields(child, additional, &child_path, out);
                } else {
                    out.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                unknown_fields(item, &schema["items"], &format!("{path}[{index}]"), out);
            }
        }
        _ => {}
    }
}

fn crd_schema(kind: &str) -> Value {
    let file = match kind {
        "MqttCluster" => "mqttclusters.yaml",
        "AclPolicy" => "aclpolicies.yaml",
        other => panic!("no CRD for kind {other}"),
    };
    let crd = read_yaml(&workspace_root().join("crds").join(file)).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn examples_cover_the_documented_cases() {
    let names: BTreeSet<String> = example_objects()
        .iter()
        .map(|(_, o)| format!("{}/{}", o.kind(), o.name()))
        .collect();
    for expected in [
        "MqttCluster/minimal",
        "MqttCluster/secure",
        "Certificate/secure-mqtt",
        "AclPolicy/devices",
        "AclPolicy/dashboards",
        "AclPolicy/lock-demo",
    ] {
        assert!(names.contains(expected), "missing {expected} in {names:?}");
    }
}

#[test]
fn tern_examples_use_only_fields_their_crd_defines() {
    let mut unknown = Vec::new();
    for (file, object) in example_objects() {
        if object.str_at("/apiVersion") != "mqtt.tern.dev/v1alpha1" {
            continue;
        }
        let schema = crd_schema(object.kind());
        let mut fields = Vec::new();
        unknown_fields(
            &object.0["spec"],
            &schema["properties"]["spec"],
            "spec",
            &mut fields,
        );
        unknown.extend(fields.into_iter().map(|field| format!("{file}: {field}")));
    }
    assert!(
        unknown.is_empty(),
        "fields the CRDs do not define: {unknown:?}"
    );
}

#[test]
fn acl_policy_examples_are_rules_in_the_broker_shape() {
    for (file, object) in example_objects() {
        if object.kind() != "AclPolicy" {
            continue;
        }
        let rules = object.at("/spec/rules").cloned().unwrap_or(Value::Null);
        let parsed: Result<Vec<tern_broker::acl::AclRule>, _> = serde_json::from_value(rules);
        assert!(parsed.is_ok(), "{file}: {parsed:?}");
    }
}

#[test]
fn acl_policy_examples_reference_clusters_defined_in_the_examples() {
    let objects = example_objects();
    let clusters: BTreeSet<&str> = objects
        .iter()
        .filter(|(_, o)| o.kind() == "MqttCluster")
        .map(|(_, o)| o.name())
        .collect();
    for (file, object) in &objects {
        if object.kind() == "AclPolicy" {
            let cluster = object.str_at("/spec/clusterRef/name");
            assert!(
                clusters.contains(cluster),
                "{file}: unknown cluster {cluster}"
            );
        }
    }
}
