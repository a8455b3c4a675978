//! Specifications of the rendered objects.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::ByteString;
use kube::api::ObjectMeta;
use tern_broker::acl::{AclPolicy as BrokerAclPolicy, AclRule, Action, Effect};
use tern_broker::config::{parse_config, ListenerProtocol};

use super::*;
use crate::crd::{ClusterListener, ListenerTls, MqttClusterSpec, UserSpec};

const IMAGE: &str = "ghcr.io/tern-mqtt/tern:test";

fn spec() -> MqttClusterSpec {
    serde_json::from_value(serde_json::json!({})).unwrap_or_else(|error| panic!("{error}"))
}

fn cluster(spec: MqttClusterSpec) -> MqttCluster {
    MqttCluster {
        metadata: ObjectMeta {
            name: Some("edge".into()),
            namespace: Some("iot".into()),
            uid: Some("0000-1111".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

fn policy(name: &str, topic: &str) -> BrokerAclPolicy {
    BrokerAclPolicy {
        name: name.into(),
        rules: vec![AclRule {
            effect: Effect::Allow,
            principals: vec![],
            actions: vec![Action::Publish],
            topics: vec![topic.into()],
            max_qos: None,
            retain: None,
        }],
    }
}

fn render_with(
    spec: MqttClusterSpec,
    policies: &[BrokerAclPolicy],
    material: &SecretMaterial,
) -> ClusterObjects {
    let cluster = cluster(spec);
    render_cluster(&RenderInputs {
        cluster: &cluster,
        default_image: IMAGE,
        policies,
        secret_material: material,
    })
    .unwrap_or_else(|error| panic!("{error}"))
}

fn render(spec: MqttClusterSpec) -> ClusterObjects {
    render_with(spec, &[], &SecretMaterial::default())
}

fn template_json(objects: &ClusterObjects) -> String {
    let template: Option<&PodTemplateSpec> = objects
        .stateful_set
        .spec
        .as_ref()
        .map(|spec| &spec.template);
    serde_json::to_string(&template).unwrap_or_default()
}

fn config_file(objects: &ClusterObjects, file: &str) -> String {
    objects
        .config_map
        .data
        .as_ref()
        .and_then(|data| data.get(file))
        .cloned()
        .unwrap_or_default()
}

fn tls_listener() -> ClusterListener {
    ClusterListener {
        name: "mqtts".into(),
        port: 8883,
        protocol: ListenerProtocol::Mqtt,
        path: None,
        tls: Some(ListenerTls {
            secret_name: "edge-cert".into(),
            client_ca_secret_name: None,
            require_client_cert: true,
        }),
    }
}

fn material_with_user(hash: &str) -> SecretMaterial {
    SecretMaterial {
        password_hashes: BTreeMap::from([("alice".to_string(), hash.to_string())]),
        ..SecretMaterial::default()
    }
}

// --- broker.yaml and the policies file ---

#[test]
fn broker_yaml_is_accepted_by_the_brokers_own_parser() {
    let yaml = config_file(&render(spec()), files::BROKER_YAML);
    let parsed = parse_config(yaml.as_bytes(), std::path::Path::new("broker.yaml"));
    assert!(parsed.is_ok(), "{parsed:?}\n{yaml}");
}

#[test]
fn broker_yaml_binds_metrics_on_all_interfaces_for_the_probes() {
    let config = broker_config(&spec());
    assert_eq!(
        (config.metrics.bind.to_string(), config.metrics.port),
        ("0.0.0.0".to_string(), 9090)
    );
}

#[test]
fn broker_yaml_always_names_the_policies_file() {
    let config = broker_config(&spec());
    assert_eq!(
        config.acl.files,
        vec![std::path::PathBuf::from(files::POLICIES)]
    );
}

#[test]
fn a_tls_listener_refers_to_its_copied_certificate_files() {
    let mut spec = spec();
    spec.listeners.push(tls_listener());
    let tls = broker_config(&spec).listeners[1].tls.clone();
    assert_eq!(
        tls.map(|tls| (tls.cert_file, tls.key_file)),
        Some(("tls-mqtts.crt".into(), "tls-mqtts.key".into()))
    );
}

#[test]
fn users_turn_on_the_password_file() {
    let mut spec = spec();
    spec.auth.users.push(UserSpec {
        username: "alice".into(),
        password_secret: crate::crd::SecretKeyRef {
            name: "alice".into(),
            key: "password".into(),
        },
    });
    assert_eq!(
        broker_config(&spec).auth.password_file,
        Some(files::PASSWORDS.into())
    );
}

#[test]
fn the_policies_file_is_the_list_of_policies_in_the_brokers_shape() {
    let policies = [policy("a", "sensors/#"), policy("b", "cmd/+")];
    let objects = render_with(spec(), &policies, &SecretMaterial::default());
    let written: Vec<BrokerAclPolicy> =
        yaml_serde::from_str(&config_file(&objects, files::POLICIES))
            .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(written, policies);
}

#[test]
fn a_metrics_port_used_by_a_listener_is_refused_as_the_broker_would() {
    let mut spec = spec();
    spec.metrics_port = 1883;
    let cluster = cluster(spec);
    let result = render_cluster(&RenderInputs {
        cluster: &cluster,
        default_image: IMAGE,
        policies: &[],
        secret_material: &SecretMaterial::default(),
    });
    assert!(matches!(result, Err(RenderError::InvalidBrokerConfig(_))));
}

#[test]
fn a_cluster_without_uid_cannot_be_rendered() {
    let mut cluster = cluster(spec());
    cluster.metadata.uid = None;
    let result = render_cluster(&RenderInputs {
        cluster: &cluster,
        default_image: IMAGE,
        policies: &[],
        secret_material: &SecretMaterial::default(),
    });
    assert!(matches!(result, Err(RenderError::MissingMetadata("uid"))));
}

// --- ConfigMap, Secret and the revision ---

#[test]
fn the_config_map_carries_the_revision() {
    let objects = render(spec());
    let annotation = objects
        .config_map
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONFIG_REVISION_ANNOTATION))
        .cloned();
    assert_eq!(annotation, Some(objects.config_revision));
}

#[test]
fn the_secret_holds_hashes_in_password_file_format() {
    let objects = render_with(spec(), &[], &material_with_user("$7$101$salt$hash"));
    let passwd = objects
        .secret
        .data
        .as_ref()
        .and_then(|data| data.get(files::PASSWORDS))
        .cloned();
    assert_eq!(
        passwd,
        Some(ByteString(b"alice:$7$101$salt$hash\n".to_vec()))
    );
}

#[test]
fn tls_material_is_copied_into_the_secret() {
    let material = SecretMaterial {
        tls: BTreeMap::from([(
            "mqtts".to_string(),
            TlsMaterial {
                cert: ByteString(b"CERT".to_vec()),
                key: ByteString(b"KEY".to_vec()),
                client_ca: Some(ByteString(b"CA".to_vec())),
            },
        )]),
        ..SecretMaterial::default()
    };
    let objects = render_with(spec(), &[], &material);
    let keys: Vec<String> = objects
        .secret
        .data
        .as_ref()
        .map(|data| data.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "rendered-revision-secret",
            "tls-mqtts-ca.crt",
            "tls-mqtts.crt",
            "tls-mqtts.key"
        ]
    );
}

/// Both objects carry the revision they were rendered as, and `broker.yaml` names both copies,
/// so a broker can say which rendering it runs only once both have reached it.
#[test]
fn the_revision_is_written_into_the_config_map_and_the_secret() {
    let objects = render_with(spec(), &[], &SecretMaterial::default());
    let in_config_map = objects
        .config_map
        .data
        .as_ref()
        .and_then(|data| data.get(files::RENDERED_REVISION).cloned());
    let in_secret = objects
        .secret
        .data
        .as_ref()
        .and_then(|data| data.get(files::RENDERED_REVISION_SECRET))
        .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned());
    let broker_yaml = objects.config_map.data.as_ref().unwrap()[files::BROKER_YAML].clone();
    let config =
        tern_broker::config::parse_config(broker_yaml.as_bytes(), "broker.yaml".as_ref()).unwrap();
    assert_eq!(
        (in_config_map.as_deref(), in_secret.as_deref()),
        (
            Some(objects.config_revision.as_str()),
            Some(objects.config_revision.as_str())
        )
    );
    assert_eq!(
        config.rendered_revision_files,
        [files::RENDERED_REVISION, files::RENDERED_REVISION_SECRET].map(std::path::PathBuf::from)
    );
}

#[test]
fn the_revision_is_stable_for_the_same_input() {
    assert_eq!(
        render(spec()).config_revision,
        render(spec()).config_revision
    );
}

#[test]
fn the_revision_changes_with_an_acl_change() {
    let before = render_with(spec(), &[policy("a", "x/#")], &SecretMaterial::default());
    let after = render_with(spec(), &[policy("a", "y/#")], &SecretMaterial::default());
    assert_ne!(before.config_revision, after.config_revision);
}

#[test]
fn the_revision_changes_with_a_password_change() {
    let before = render_with(spec(), &[], &material_with_user("$7$1$a$b"));
    let after = render_with(spec(), &[], &material_with_user("$7$1$a$c"));
    assert_ne!(before.config_revision, after.config_revision);
}

// --- the StatefulSet ---

#[test]
fn brokers_run_as_non_root_with_a_read_only_root_and_no_capabilities() {
    let objects = render(spec());
    let pod = objects
        .stateful_set
        .spec
        .and_then(|s| s.template.spec)
        .unwrap_or_default();
    let container = &pod.containers[0];
    let security = container.security_context.clone().unwrap_or_default();
    let pod_security = pod.security_context.unwrap_or_default();
    assert_eq!(
        (
            pod_security.run_as_non_root,
            pod_security.seccomp_profile.map(|p| p.type_),
            security.read_only_root_filesystem,
            security.allow_privilege_escalation,
            security.capabilities.and_then(|c| c.drop),
        ),
        (
            Some(true),
            Some("RuntimeDefault".to_string()),
            Some(true),
            Some(false),
            Some(vec!["ALL".to_string()])
        )
    );
}

#[test]
fn probes_hit_healthz_and_readyz_on_the_metrics_port() {
    let objects = render(spec());
    let container = objects
        .stateful_set
        .spec
        .and_then(|s| s.template.spec)
        .map(|pod| pod.containers[0].clone())
        .unwrap_or_default();
    let path = |probe: Option<k8s_openapi::api::core::v1::Probe>| {
        probe.and_then(|p| p.http_get).and_then(|get| get.path)
    };
    assert_eq!(
        (
            path(container.liveness_probe),
            path(container.readiness_probe)
        ),
        (Some("/healthz".to_string()), Some("/readyz".to_string()))
    );
}

#[test]
fn the_broker_reads_the_whole_config_directory_without_sub_paths() {
    let objects = render(spec());
    let container = objects
        .stateful_set
        .spec
        .and_then(|s| s.template.spec)
        .map(|pod| pod.containers[0].clone())
        .unwrap_or_default();
    let mounts = container.volume_mounts.unwrap_or_default();
    assert_eq!(
        (
            container.args,
            mounts.iter().any(|m| m.sub_path.is_some()),
            mounts.iter().any(|m| m.mount_path == CONFIG_DIR)
        ),
        (
            Some(vec!["--config".to_string(), CONFIG_DIR.to_string()]),
            false,
            true
        )
    );
}

#[test]
fn the_config_volume_projects_the_config_map_and_secret_without_items() {
    let objects = render(spec());
    let volume = objects
        .stateful_set
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|pod| pod.volumes)
        .and_then(|volumes| volumes.into_iter().find(|v| v.name == "config"))
        .and_then(|v| v.projected)
        .and_then(|p| p.sources)
        .unwrap_or_default();
    let sources: Vec<(Option<String>, Option<String>, bool)> = volume
        .into_iter()
        .map(|source| {
            let items_listed = source
                .config_map
                .as_ref()
                .is_some_and(|c| c.items.is_some())
                || source.secret.as_ref().is_some_and(|s| s.items.is_some());
            (
                source.config_map.map(|c| c.name),
                source.secret.map(|s| s.name),
                items_listed,
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            (Some("edge-config".to_string()), None, false),
            (None, Some("edge-secrets".to_string()), false)
        ]
    );
}

#[test]
fn the_image_defaults_to_the_operators_version() {
    let objects = render(spec());
    let image = objects
        .stateful_set
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|pod| pod.containers[0].image.clone());
    assert_eq!(image.as_deref(), Some(IMAGE));
}

#[test]
fn replicas_above_the_limit_are_capped() {
    let mut spec = spec();
    spec.replicas = 3;
    let replicas = render(spec).stateful_set.spec.and_then(|s| s.replicas);
    assert_eq!(replicas, Some(BROKER_REPLICA_LIMIT));
}

// --- the no-restart property ---

#[test]
fn an_acl_change_leaves_the_pod_template_byte_identical() {
    let before = render_with(spec(), &[policy("a", "x/#")], &SecretMaterial::default());
    let after = render_with(
        spec(),
        &[policy("a", "y/#"), policy("b", "z")],
        &SecretMaterial::default(),
    );
    assert_eq!(template_json(&before), template_json(&after));
}

#[test]
fn a_user_change_leaves_the_pod_template_byte_identical() {
    let before = render_with(spec(), &[], &SecretMaterial::default());
    let after = render_with(spec(), &[], &material_with_user("$7$1$a$b"));
    assert_eq!(template_json(&before), template_json(&after));
}

#[test]
fn a_listener_change_leaves_the_pod_template_byte_identical() {
    let mut changed = spec();
    changed.listeners.push(tls_listener());
    changed.listeners[0].port = 11883;
    assert_eq!(
        template_json(&render(spec())),
        template_json(&render(changed))
    );
}

#[test]
fn an_auth_settings_change_leaves_the_pod_template_byte_identical() {
    let mut changed = spec();
    changed.auth.allow_anonymous = true;
    changed.acl.default_action = tern_broker::config::DefaultAction::Allow;
    assert_eq!(
        template_json(&render(spec())),
        template_json(&render(changed))
    );
}

#[test]
fn an_image_change_alters_the_pod_template() {
    let mut changed = spec();
    changed.image = Some("ghcr.io/tern-mqtt/tern:next".into());
    assert_ne!(
        template_json(&render(spec())),
        template_json(&render(changed))
    );
}

#[test]
fn a_scheduling_change_alters_the_pod_template() {
    let mut changed = spec();
    changed
        .node_selector
        .insert("kubernetes.io/arch".into(), "arm64".into());
    assert_ne!(
        template_json(&render(spec())),
        template_json(&render(changed))
    );
}

// --- Services, budget, account ---

#[test]
fn the_client_service_has_one_tcp_port_per_listener() {
    let mut spec = spec();
    spec.listeners.push(tls_listener());
    let ports: Vec<(Option<String>, i32, Option<String>)> = render(spec)
        .client_service
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name, p.port, p.protocol))
        .collect();
    assert_eq!(
        ports,
        [
            (Some("mqtt".to_string()), 1883, Some("TCP".to_string())),
            (Some("mqtts".to_string()), 8883, Some("TCP".to_string()))
        ]
    );
}

#[test]
fn the_headless_service_has_no_cluster_ip_and_governs_the_stateful_set() {
    let objects = render(spec());
    let cluster_ip = objects.headless_service.spec.and_then(|s| s.cluster_ip);
    let governing = objects.stateful_set.spec.and_then(|s| s.service_name);
    assert_eq!(
        (cluster_ip, governing),
        (Some("None".to_string()), Some("edge-headless".to_string()))
    );
}

#[test]
fn the_disruption_budget_allows_one_broker_down() {
    let budget = render(spec())
        .disruption_budget
        .spec
        .and_then(|s| s.max_unavailable);
    assert_eq!(
        budget,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
}

#[test]
fn the_service_account_token_is_not_mounted() {
    let account = render(spec()).service_account;
    assert_eq!(account.automount_service_account_token, Some(false));
}

#[test]
fn every_child_is_controlled_by_the_cluster() {
    let objects = render(spec());
    let metas = [
        &objects.config_map.metadata,
        &objects.secret.metadata,
        &objects.stateful_set.metadata,
        &objects.client_service.metadata,
        &objects.headless_service.metadata,
        &objects.disruption_budget.metadata,
        &objects.service_account.metadata,
    ];
    let controlled = metas
        .iter()
        .filter(|meta| {
            meta.owner_references.as_ref().is_some_and(|owners| {
                owners.len() == 1
                    && owners[0].uid == "0000-1111"
                    && owners[0].kind == "MqttCluster"
                    && owners[0].controller == Some(true)
            })
        })
        .count();
    assert_eq!(controlled, metas.len());
}

#[test]
fn no_policies_render_an_explicit_empty_list() {
    // The broker refuses a policies file without any YAML value; `[]` is an empty list.
    assert_eq!(config_file(&render(spec()), files::POLICIES).trim(), "[]");
}
