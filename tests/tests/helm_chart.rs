//! The Helm chart `charts/tern-operator`, rendered and linted by the real helm binary.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tern_e2e::helm::{chart_dir, custom_values_file, read_yaml, Helm, Manifest};

const NAMESPACE: &str = "tern-system";

fn helm() -> Helm {
    Helm::locate().expect("helm is available (scripts/install-helm.sh)")
}

fn render(extra: &[&str]) -> Vec<Manifest> {
    let mut args = vec!["--namespace", NAMESPACE];
    args.extend_from_slice(extra);
    helm().template(&args).expect("chart renders")
}

fn custom_values() -> String {
    custom_values_file().to_string_lossy().into_owned()
}

fn kinds(objects: &[Manifest]) -> BTreeSet<String> {
    objects.iter().map(|o| o.kind().to_owned()).collect()
}

fn only<'a>(objects: &'a [Manifest], kind: &str) -> &'a Manifest {
    let matching: Vec<_> = objects.iter().filter(|o| o.kind() == kind).collect();
    assert_eq!(matching.len(), 1, "expected exactly one {kind}");
    matching[0]
}

fn operator_container(objects: &[Manifest]) -> Value {
    only(objects, "Deployment")
        .at("/spec/template/spec/containers/0")
        .cloned()
        .expect("the Deployment has a container")
}

/// Every leaf of a values tree, by dotted path. Maps and lists that are empty count as leaves,
/// as do lists (a list is one value in Helm's merge semantics).
fn leaves(value: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(child, &path, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned(), value.clone());
        }
    }
}

fn default_values() -> Value {
    read_yaml(&chart_dir().join("values.yaml")).expect("values.yaml parses")
}

#[test]
fn chart_passes_helm_lint_strict_with_default_values() {
    let chart = chart_dir().to_string_lossy().into_owned();
    let output = helm().run(&["lint", "--strict", &chart]).unwrap();
    assert!(output.success, "{}{}", output.stdout, output.stderr);
}

#[test]
fn chart_passes_helm_lint_strict_with_every_value_customized() {
    let chart = chart_dir().to_string_lossy().into_owned();
    let output = helm()
        .run(&["lint", "--strict", &chart, "--values", &custom_values()])
        .unwrap();
    assert!(output.success, "{}{}", output.stdout, output.stderr);
}

#[test]
fn default_install_is_the_operator_with_cluster_wide_rbac_and_a_metrics_service() {
    let expected: BTreeSet<String> = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    ]
    .map(String::from)
    .into();
    assert_eq!(kinds(&render(&[])), expected);
}

#[test]
fn operator_pod_runs_non_root_read_only_without_capabilities() {
    let objects = render(&[]);
    let pod = only(&objects, "Deployment")
        .at("/spec/template/spec")
        .cloned()
        .unwrap();
    let container = operator_container(&objects);
    let facts = [
        (&pod["securityContext"]["runAsNonRoot"], Value::from(true)),
        (&pod["securityContext"]["runAsUser"], Value::from(65532)),
        (
            &pod["securityContext"]["seccompProfile"]["type"],
            Value::from("RuntimeDefault"),
        ),
        (
            &container["securityContext"]["readOnlyRootFilesystem"],
            Value::from(true),
        ),
        (
            &container["securityContext"]["allowPrivilegeEscalation"],
            Value::from(false),
        ),
        (
            &container["securityContext"]["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
        ),
    ];
    for (actual, expected) in facts {
        assert_eq!(actual, &expected, "pod spec: {pod:#}");
    }
}

#[test]
fn operator_probes_are_healthz_and_readyz_on_port_8080() {
    let container = operator_container(&render(&[]));
    assert_eq!(
        (
            &container["livenessProbe"]["httpGet"]["path"],
            &container["readinessProbe"]["httpGet"]["path"],
            &container["livenessProbe"]["httpGet"]["port"],
            &container["ports"][0]["name"],
            &container["ports"][0]["containerPort"],
        ),
        (
            &Value::from("/healthz"),
            &Value::from("/readyz"),
            &Value::from("metrics"),
            &Value::from("metrics"),
            &Value::from(8080),
        )
    );
}

#[test]
fn operator_has_requests_and_a_memory_limit_by_default() {
    let container = operator_container(&render(&[]));
    let resources = &container["resources"];
    assert!(
        resources["requests"]["cpu"].is_string()
            && resources["requests"]["memory"].is_string()
            && resources["limits"]["memory"].is_string(),
        "{resources:#}"
    );
}

#[test]
fn operator_flags_name_the_metrics_port_broker_image_and_lease() {
    let container = operator_container(&render(&[]));
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        args,
        [
            "--metrics-bind=0.0.0.0:8080",
            "--broker-image=ghcr.io/tern-mqtt/tern:0.1.0",
            "--log-format=text",
            "--leader-election",
            "--lease-name=tern-tern-operator-leader",
        ]
    );
}

#[test]
fn cluster_role_grants_exactly_what_the_operator_touches() {
    let objects = render(&[]);
    let role = only(&objects, "ClusterRole");
    let mut granted = BTreeMap::new();
    for rule in role.at("/rules").and_then(Value::as_array).unwrap() {
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                let verbs: BTreeSet<&str> = rule["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                let key = format!("{}/{}", group.as_str().unwrap(), resource.as_str().unwrap());
                granted.insert(key, verbs.into_iter().collect::<Vec<_>>().join(","));
            }
        }
    }
    let owned = "create,get,list,patch,watch";
    let expected: BTreeMap<String, String> = [
        ("mqtt.tern.dev/mqttclusters", "get,list,patch,watch"),
        ("mqtt.tern.dev/aclpolicies", "get,list,patch,watch"),
        ("mqtt.tern.dev/mqttclusters/status", "get,patch"),
        ("mqtt.tern.dev/aclpolicies/status", "get,patch"),
        ("mqtt.tern.dev/mqttclusters/finalizers", "update"),
        ("mqtt.tern.dev/aclpolicies/finalizers", "update"),
        ("/configmaps", owned),
        ("/secrets", owned),
        ("/services", owned),
        ("/serviceaccounts", owned),
        ("apps/statefulsets", owned),
        ("policy/poddisruptionbudgets", owned),
        ("/pods", "get,list,patch,watch"),
        ("/events", "create,patch"),
        ("events.k8s.io/events", "create,patch"),
    ]
    .into_iter()
    .map(|(resource, verbs)| (resource.to_owned(), verbs.to_owned()))
    .collect();
    assert_eq!(granted, expected);
}

#[test]
fn leases_are_granted_only_in_the_release_namespace() {
    let objects = render(&[]);
    let lease_roles: Vec<&Manifest> = objects
        .iter()
        .filter(|o| o.kind() == "Role")
        .filter(|o| o.0.to_string().contains("leases"))
        .collect();
    assert_eq!(
        lease_roles
            .iter()
            .map(|role| (role.name(), role.namespace()))
            .collect::<Vec<_>>(),
        [("tern-tern-operator-leader-election", NAMESPACE)]
    );
}

#[test]
fn watched_namespaces_replace_the_cluster_role_with_a_role_in_each() {
    let objects = render(&["--set", "watchNamespaces={mqtt-a,mqtt-b}"]);
    let cluster_wide = objects
        .iter()
        .filter(|o| o.kind().starts_with("Cluster"))
        .count();
    let bound_namespaces: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o.kind() == "RoleBinding" && !o.name().ends_with("leader-election"))
        .map(Manifest::namespace)
        .collect();
    assert_eq!(
        (cluster_wide, bound_namespaces),
        (0, ["mqtt-a", "mqtt-b"].into())
    );
}

#[test]
fn the_watched_namespaces_reach_the_operator_as_watch_namespace() {
    let container = operator_container(&render(&["--set", "watchNamespaces={mqtt-a,mqtt-b}"]));
    let env = container["env"].as_array().unwrap();
    let watch = env
        .iter()
        .find(|var| var["name"] == "WATCH_NAMESPACE")
        .unwrap();
    assert_eq!(watch["value"], "mqtt-a,mqtt-b");
}

#[test]
fn without_watched_namespaces_the_operator_gets_no_watch_namespace() {
    let container = operator_container(&render(&[]));
    let names: Vec<&Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|var| &var["name"])
        .collect();
    assert!(
        !names.contains(&&Value::from("WATCH_NAMESPACE")),
        "{names:?}"
    );
}

#[test]
fn monitors_are_not_rendered_without_the_prometheus_operator_api() {
    let objects = render(&[]);
    assert!(!kinds(&objects).contains("ServiceMonitor") && !kinds(&objects).contains("PodMonitor"));
}

#[test]
fn monitors_are_rendered_when_the_cluster_serves_the_prometheus_operator_api() {
    let objects = render(&["--api-versions", "monitoring.coreos.com/v1"]);
    let kinds = kinds(&objects);
    assert!(kinds.contains("ServiceMonitor") && kinds.contains("PodMonitor"));
}

#[test]
fn monitor_mode_never_wins_over_a_served_prometheus_operator_api() {
    let objects = render(&[
        "--api-versions",
        "monitoring.coreos.com/v1",
        "--set",
        "metrics.serviceMonitor.mode=never",
        "--set",
        "brokerMetrics.podMonitor.mode=never",
    ]);
    assert!(!kinds(&objects).contains("ServiceMonitor") && !kinds(&objects).contains("PodMonitor"));
}

#[test]
fn monitor_mode_always_renders_without_the_api() {
    let objects = render(&["--set", "metrics.serviceMonitor.mode=always"]);
    let monitor = only(&objects, "ServiceMonitor");
    assert_eq!(monitor.str_at("/spec/endpoints/0/port"), "metrics");
}

#[test]
fn customized_install_renders_the_dashboard_and_broker_pod_monitor_only() {
    let objects = render(&["--values", &custom_values()]);
    let expected: BTreeSet<String> = ["ConfigMap", "Deployment", "PodMonitor"]
        .map(String::from)
        .into();
    assert_eq!(kinds(&objects), expected);
}

#[test]
fn customized_values_reach_the_operator_pod() {
    let objects = render(&["--values", &custom_values()]);
    let container = operator_container(&objects);
    let pod = only(&objects, "Deployment");
    assert_eq!(
        (
            container["image"].as_str().unwrap(),
            container["imagePullPolicy"].as_str().unwrap(),
            pod.str_at("/spec/template/spec/serviceAccountName"),
            pod.str_at("/spec/template/spec/priorityClassName"),
            pod.str_at("/spec/template/spec/nodeSelector/kubernetes.io~1os"),
            container["ports"][0]["containerPort"].as_u64().unwrap(),
        ),
        (
            "registry.example.com/mqtt/tern:0.1.0-rc.1",
            "Always",
            "tern-operator-sa",
            "system-cluster-critical",
            "linux",
            9443,
        )
    );
}

#[test]
fn dashboard_config_map_holds_the_dashboard_json_in_its_namespace() {
    let objects = render(&["--values", &custom_values()]);
    let config_map = only(&objects, "ConfigMap");
    let dashboard: Value =
        serde_json::from_str(config_map.str_at("/data/tern-brokers.json")).unwrap();
    assert_eq!(
        (config_map.namespace(), dashboard["uid"].as_str().unwrap()),
        ("monitoring", "tern-brokers")
    );
}

#[test]
fn the_custom_values_file_changes_every_default() {
    let mut defaults = BTreeMap::new();
    leaves(&default_values(), "", &mut defaults);
    let mut custom = BTreeMap::new();
    leaves(&read_yaml(&custom_values_file()).unwrap(), "", &mut custom);
    let unchanged: Vec<&String> = defaults
        .iter()
        .filter(|(path, default)| {
            // A customized map replaces an empty default map by a non-empty one, so its leaves
            // sit under the default's path.
            let customized = custom.get(*path).is_some_and(|value| value != *default)
                || custom
                    .keys()
                    .any(|key| key.starts_with(&format!("{path}.")));
            !customized
        })
        .map(|(path, _)| path)
        .collect();
    assert!(
        unchanged.is_empty(),
        "left at their defaults: {unchanged:?}"
    );
}

#[test]
fn every_value_is_described_in_the_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap(),
    )
    .unwrap();
    let mut defaults = BTreeMap::new();
    leaves(&default_values(), "", &mut defaults);
    let undescribed: Vec<&String> = defaults
        .keys()
        .filter(|path| {
            // Walk down to the value, stopping at a free-form map (no `properties`, e.g. labels):
            // its own description covers the keys inside it.
            let mut node = &schema;
            for key in path.split('.') {
                match node.get("properties") {
                    Some(properties) => node = &properties[key],
                    None => break,
                }
            }
            !node["description"].is_string()
        })
        .collect();
    assert!(
        undescribed.is_empty(),
        "no schema description: {undescribed:?}"
    );
}

/// `--set` arguments the schema (or a template check) must refuse, with the text the error
/// has to contain so the user knows which value is wrong.
const WRONG_VALUES: &[(&[&str], &str)] = &[
    (
        &["image.pullPolicy=Sometimes"],
        "image.pullPolicy must be one of the following",
    ),
    (&["imag.tag=1.0"], "Additional property imag is not allowed"),
    (
        &["replicaCount=-1"],
        "replicaCount: Must be greater than or equal to 0",
    ),
    (
        &["metrics.port=70000"],
        "metrics.port: Must be less than or equal to 65535",
    ),
    (
        &["watchNamespaces={Bad_Namespace}"],
        "watchNamespaces.0: Does not match pattern",
    ),
    (
        &["metrics.serviceMonitor.mode=yes"],
        "metrics.serviceMonitor.mode must be one of the following",
    ),
    (
        &["metrics.serviceMonitor.interval=often"],
        "metrics.serviceMonitor.interval: Does not match pattern",
    ),
    (&["resources.limits.memory=lots"], "resources.limits.memory"),
    (
        &["replicaCount=2", "leaderElection.enabled=false"],
        "replicaCount > 1 needs leaderElection.enabled=true",
    ),
    (
        &["serviceAccount.create=false"],
        "serviceAccount.name must name an existing ServiceAccount",
    ),
];

#[test]
fn wrong_values_are_refused_with_a_message_naming_the_value() {
    let helm = helm();
    let chart = chart_dir().to_string_lossy().into_owned();
    for (settings, expected) in WRONG_VALUES {
        let mut args = vec!["template", "tern", chart.as_str()];
        for setting in *settings {
            args.extend(["--set", setting]);
        }
        let output = helm.run(&args).unwrap();
        assert!(
            !output.success && output.stderr.contains(expected),
            "helm {args:?} should fail with {expected:?}, got success={} stderr:\n{}",
            output.success,
            output.stderr
        );
    }
}

/// Metric names a PromQL expression refers to (`tern_*` and `process_*`), histogram series
/// suffixes removed.
fn metric_names(expression: &str) -> BTreeSet<String> {
    expression
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|token| token.starts_with("tern_") || token.starts_with("process_"))
        .map(|token| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| token.strip_suffix(suffix))
                .unwrap_or(token)
                .to_owned()
        })
        .collect()
}

/// Every metric name the broker registers: string literals `"tern_..."` in its sources (a
/// labelled metric appears in a scrape only once a label value is used, so the registry alone
/// does not list them all) plus what its registry reports (the process collector's names).
fn broker_metric_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = tern_broker::metrics::Metrics::new()
        .registry
        .gather()
        .iter()
        .map(|family| family.name().to_owned())
        .collect();
    let mut pending = vec![tern_e2e::broker::workspace_root().join("broker/src")];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let source = std::fs::read_to_string(&path).unwrap();
            for literal in source.split('"').skip(1).step_by(2) {
                if literal.starts_with("tern_")
                    && literal.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                {
                    names.insert(literal.to_owned());
                }
            }
        }
    }
    names
}

#[test]
fn dashboard_queries_only_metrics_the_broker_exports() {
    let text = std::fs::read_to_string(chart_dir().join("dashboards/tern-brokers.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queried.extend(metric_names(target["expr"].as_str().unwrap()));
        }
    }
    let exported = broker_metric_names();
    let unknown: Vec<&String> = queried.difference(&exported).collect();
    assert!(
        queried.len() >= 10 && unknown.is_empty(),
        "dashboard queries metrics the broker does not export: {unknown:?} (queried {queried:?})"
    );
}

/// The `*.yaml` files of a directory, by file name, with their bytes.
fn yaml_files(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

#[test]
fn chart_crds_are_byte_identical_to_the_generated_crds() {
    let generated = yaml_files(&tern_e2e::broker::workspace_root().join("crds"));
    let packaged = yaml_files(&chart_dir().join("crds"));
    assert!(!generated.is_empty(), "crds/ holds no CRDs");
    assert!(
        generated == packaged,
        "charts/tern-operator/crds/ differs from crds/ ({:?} vs {:?}): run `cp crds/*.yaml charts/tern-operator/crds/`",
        packaged.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>()
    );
}

#[test]
fn rendering_with_crds_includes_both_custom_resource_definitions() {
    let objects = render(&["--include-crds"]);
    let crds: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o.kind() == "CustomResourceDefinition")
        .map(Manifest::name)
        .collect();
    assert_eq!(
        crds,
        ["aclpolicies.mqtt.tern.dev", "mqttclusters.mqtt.tern.dev"].into()
    );
}

#[test]
fn every_key_in_values_yaml_has_a_comment_above_it() {
    let text = std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap();
    let mut previous = "";
    let mut undocumented = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let declares_key =
            !trimmed.is_empty() && !trimmed.starts_with('#') && trimmed.contains(':');
        // Each key needs its own comment on the line directly above it.
        if declares_key && !previous.trim_start().starts_with('#') {
            undocumented.push(format!("line {}: {line}", index + 1));
        }
        previous = line;
    }
    assert!(
        undocumented.is_empty(),
        "undocumented values: {undocumented:#?}"
    );
}
