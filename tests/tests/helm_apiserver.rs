//! What users apply is valid for a real API server: the chart's rendered manifests (default,
//! fully customized, and per-namespace RBAC) and every example in `examples/` pass
//! `kubectl apply --dry-run=server` against the test control plane (Kubernetes v1.20), with the
//! chart's CRDs installed for real first so the custom resources are validated by their schemas.
//!
//! Objects of APIs the test server cannot serve — the Prometheus Operator's and cert-manager's —
//! are left out and listed; every other object must pass.
//!
//! One control plane serves every check (starting one takes seconds), so the checks are steps
//! of a single test.

use std::collections::BTreeSet;

use serde_json::Value;
use tern_e2e::broker::workspace_root;
use tern_e2e::control_plane::{ControlPlane, ControlPlaneOptions};
use tern_e2e::helm::{custom_values_file, parse_manifests, Helm, Manifest};

/// API groups whose CRDs the test server does not have; objects of these groups are skipped.
const UNSERVED_GROUPS: [&str; 2] = ["monitoring.coreos.com", "cert-manager.io"];

/// Namespaces the renderings and examples put objects in.
const NAMESPACES: [&str; 5] = ["tern-system", "mqtt-a", "mqtt-b", "mqtt-prod", "monitoring"];

fn api_group(object: &Manifest) -> &str {
    object
        .str_at("/apiVersion")
        .rsplit_once('/')
        .map_or("", |(group, _)| group)
}

/// Runs kubectl and fails the test with its output (and the control plane's logs) if it fails.
fn kubectl(cluster: &ControlPlane, args: &[&str], stdin: &str) -> String {
    let output = cluster
        .kubectl_with_stdin(args, stdin)
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {args:?} failed:\n{}{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        cluster.log_tails()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Server-side dry-run of `objects` (the unserved ones left out); returns the objects as the
/// server would have stored them, in order.
fn dry_run_apply(cluster: &ControlPlane, label: &str, objects: &[Manifest]) -> Vec<Manifest> {
    let served: Vec<&Manifest> = objects
        .iter()
        .filter(|o| !UNSERVED_GROUPS.contains(&api_group(o)))
        .collect();
    assert!(!served.is_empty(), "{label}: nothing to apply");
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": served.iter().map(|o| o.0.clone()).collect::<Vec<_>>(),
    });
    let stored = kubectl(
        cluster,
        &["apply", "--dry-run=server", "-o", "json", "-f", "-"],
        &list.to_string(),
    );
    let stored: Value = serde_json::from_str(&stored).expect("kubectl prints JSON");
    match stored.get("items").and_then(Value::as_array) {
        Some(items) => items.iter().cloned().map(Manifest).collect(),
        None => vec![Manifest(stored)],
    }
}

/// Paths of `sent` missing from `stored`: fields the server dropped, i.e. ones the schema does
/// not know.
fn pruned_fields(sent: &Value, stored: &Value, path: &str, out: &mut Vec<String>) {
    match (sent, stored) {
        (Value::Object(sent), Value::Object(stored)) => {
            for (key, value) in sent {
                let child = format!("{path}.{key}");
                match stored.get(key) {
                    Some(stored_value) => pruned_fields(value, stored_value, &child, out),
                    None => out.push(child),
                }
            }
        }
        (Value::Array(sent), Value::Array(stored)) => {
            for (index, (value, stored_value)) in sent.iter().zip(stored).enumerate() {
                pruned_fields(value, stored_value, &format!("{path}[{index}]"), out);
            }
        }
        _ => {}
    }
}

/// Installs the CRDs for real, exactly as the chart ships them, and waits until they are served.
fn install_crds(cluster: &ControlPlane) {
    let crds = workspace_root().join("charts/tern-operator/crds");
    kubectl(cluster, &["apply", "-f", &crds.to_string_lossy()], "");
    cluster
        .wait_established(&["mqttclusters.mqtt.tern.dev", "aclpolicies.mqtt.tern.dev"])
        .expect("the CRDs are established");
}

fn render(helm: &Helm, args: &[&str]) -> Vec<Manifest> {
    let mut full = vec!["--namespace", "tern-system"];
    full.extend_from_slice(args);
    helm.template(&full).expect("chart renders")
}

fn example_objects() -> Vec<Manifest> {
    let dir = workspace_root().join("examples");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .filter(|path| !path.ends_with("broker.yaml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .flat_map(|path| parse_manifests(&std::fs::read_to_string(path).unwrap()).unwrap())
        .collect()
}

#[test]
fn chart_and_examples_are_accepted_by_a_real_api_server() {
    let helm = Helm::locate().expect("helm is available (scripts/install-helm.sh)");
    let cluster = ControlPlane::start(ControlPlaneOptions::default())
        .expect("test control plane starts (scripts/kube-test-env.sh)");

    install_crds(&cluster);
    for namespace in NAMESPACES {
        kubectl(&cluster, &["create", "namespace", namespace], "");
    }

    let custom = custom_values_file().to_string_lossy().into_owned();
    let renderings = [
        ("default values", render(&helm, &[])),
        ("values-custom.yaml", render(&helm, &["--values", &custom])),
        (
            "watchNamespaces",
            render(
                &helm,
                &[
                    "--set",
                    "watchNamespaces={mqtt-a,mqtt-b}",
                    "--set",
                    "metrics.serviceMonitor.mode=always",
                ],
            ),
        ),
    ];
    for (label, objects) in &renderings {
        let stored = dry_run_apply(&cluster, label, objects);
        assert_eq!(
            stored.len(),
            objects
                .iter()
                .filter(|o| !UNSERVED_GROUPS.contains(&api_group(o)))
                .count(),
            "{label}: every object comes back from the server"
        );
    }

    let examples = example_objects();
    let skipped: BTreeSet<String> = examples
        .iter()
        .filter(|o| UNSERVED_GROUPS.contains(&api_group(o)))
        .map(|o| format!("{}/{}", o.kind(), o.name()))
        .collect();
    assert_eq!(
        skipped,
        ["Certificate/secure-mqtt", "Issuer/secure-mqtt-selfsigned"]
            .map(String::from)
            .into(),
        "only cert-manager objects are left out"
    );
    let stored = dry_run_apply(&cluster, "examples", &examples);
    let sent: Vec<&Manifest> = examples
        .iter()
        .filter(|o| !UNSERVED_GROUPS.contains(&api_group(o)))
        .collect();
    let mut pruned = Vec::new();
    for (sent, stored) in sent.iter().zip(&stored) {
        if api_group(sent) == "mqtt.tern.dev" {
            let label = format!("{}/{}", sent.kind(), sent.name());
            pruned_fields(&sent.0["spec"], &stored.0["spec"], &label, &mut pruned);
        }
    }
    assert!(
        pruned.is_empty(),
        "the server dropped these example fields: {pruned:?}"
    );
}

/// Asks the server whether the operator's ServiceAccount may `verb` `resource` (`--subresource`
/// and namespace optional), through impersonation as `kubectl auth can-i` does.
fn operator_can(cluster: &ControlPlane, verb: &str, resource: &str, namespace: &str) -> bool {
    let account = "system:serviceaccount:tern-system:tern-tern-operator";
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let mut args = vec!["auth", "can-i", verb, resource, "--as", account];
    if !subresource.is_empty() {
        args.extend(["--subresource", subresource]);
    }
    if namespace.is_empty() {
        args.push("--all-namespaces");
    } else {
        args.extend(["--namespace", namespace]);
    }
    let output = cluster.kubectl(&args).expect("kubectl runs");
    String::from_utf8_lossy(&output.stdout).trim() == "yes"
}

/// Installs the RBAC part of a rendering for real (ServiceAccount, roles, bindings).
fn install_rbac(cluster: &ControlPlane, objects: &[Manifest]) {
    let rbac: Vec<Value> = objects
        .iter()
        .filter(|o| o.kind() == "ServiceAccount" || api_group(o) == "rbac.authorization.k8s.io")
        .map(|o| o.0.clone())
        .collect();
    let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": rbac });
    kubectl(cluster, &["apply", "-f", "-"], &list.to_string());
}

#[test]
fn chart_rbac_grants_the_operator_what_it_uses_and_nothing_more() {
    let helm = Helm::locate().expect("helm is available (scripts/install-helm.sh)");
    let cluster = ControlPlane::start(ControlPlaneOptions::default())
        .expect("test control plane starts (scripts/kube-test-env.sh)");
    for namespace in ["tern-system", "mqtt-a", "mqtt-b"] {
        kubectl(&cluster, &["create", "namespace", namespace], "");
    }
    install_crds(&cluster);

    install_rbac(&cluster, &render(&helm, &[]));
    let cluster_wide = [
        ("patch", "pods", "default", true),
        ("watch", "secrets", "", true),
        ("create", "statefulsets.apps", "mqtt-a", true),
        ("patch", "poddisruptionbudgets.policy", "mqtt-a", true),
        ("patch", "mqttclusters.mqtt.tern.dev/status", "mqtt-a", true),
        (
            "update",
            "mqttclusters.mqtt.tern.dev/finalizers",
            "mqtt-a",
            true,
        ),
        ("create", "events.events.k8s.io", "mqtt-a", true),
        ("update", "leases.coordination.k8s.io", "tern-system", true),
        ("create", "leases.coordination.k8s.io", "default", false),
        ("delete", "secrets", "default", false),
        ("create", "pods", "default", false),
        ("delete", "statefulsets.apps", "default", false),
        ("get", "nodes", "", false),
        (
            "create",
            "customresourcedefinitions.apiextensions.k8s.io",
            "",
            false,
        ),
    ];
    let mut wrong = Vec::new();
    for (verb, resource, namespace, expected) in cluster_wide {
        if operator_can(&cluster, verb, resource, namespace) != expected {
            wrong.push(format!(
                "{verb} {resource} in {namespace:?}: expected {expected}"
            ));
        }
    }

    // Watching two namespaces: the same rights in both, none elsewhere. The cluster-wide
    // objects from above are removed first so they cannot mask the namespaced ones.
    kubectl(
        &cluster,
        &["delete", "clusterrolebinding", "tern-tern-operator"],
        "",
    );
    install_rbac(
        &cluster,
        &render(&helm, &["--set", "watchNamespaces={mqtt-a,mqtt-b}"]),
    );
    let listed_namespaces = [
        ("watch", "secrets", "mqtt-a", true),
        ("patch", "pods", "mqtt-a", true),
        ("watch", "mqttclusters.mqtt.tern.dev", "mqtt-b", true),
        ("patch", "statefulsets.apps", "mqtt-b", true),
        ("watch", "secrets", "default", false),
        ("watch", "secrets", "", false),
        ("update", "leases.coordination.k8s.io", "tern-system", true),
    ];
    for (verb, resource, namespace, expected) in listed_namespaces {
        if operator_can(&cluster, verb, resource, namespace) != expected {
            wrong.push(format!(
                "watchNamespaces: {verb} {resource} in {namespace:?}: expected {expected}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Runs helm against the test control plane; returns (success, stdout + stderr).
fn helm_on(helm: &Helm, cluster: &ControlPlane, args: &[&str]) -> (bool, String) {
    let kubeconfig = cluster.kubeconfig_path().to_string_lossy().into_owned();
    let mut full = args.to_vec();
    full.extend(["--kubeconfig", &kubeconfig]);
    let output = helm.run(&full).expect("helm runs");
    (
        output.success,
        format!("{}{}", output.stdout, output.stderr),
    )
}

#[test]
fn helm_installs_upgrades_and_uninstalls_the_chart_on_a_real_api_server() {
    let helm = Helm::locate().expect("helm is available (scripts/install-helm.sh)");
    let cluster = ControlPlane::start(ControlPlaneOptions::default())
        .expect("test control plane starts (scripts/kube-test-env.sh)");
    let chart = tern_e2e::helm::chart_dir().to_string_lossy().into_owned();

    let (installed, notes) = helm_on(
        &helm,
        &cluster,
        &[
            "install",
            "tern",
            &chart,
            "--namespace",
            "tern-system",
            "--create-namespace",
        ],
    );
    assert!(installed, "helm install failed:\n{notes}");
    assert!(
        notes.contains(
            "kubectl --namespace tern-system rollout status deployment/tern-tern-operator"
        ),
        "NOTES name the next command:\n{notes}"
    );
    kubectl(
        &cluster,
        &[
            "get",
            "crd/mqttclusters.mqtt.tern.dev",
            "crd/aclpolicies.mqtt.tern.dev",
        ],
        "",
    );
    kubectl(
        &cluster,
        &[
            "get",
            "--namespace",
            "tern-system",
            "deployment/tern-tern-operator",
            "service/tern-tern-operator-metrics",
        ],
        "",
    );

    let custom = custom_values_file().to_string_lossy().into_owned();
    kubectl(&cluster, &["create", "namespace", "monitoring"], "");
    kubectl(&cluster, &["create", "namespace", "mqtt-prod"], "");
    kubectl(&cluster, &["create", "namespace", "mqtt-a"], "");
    let (upgraded, output) = helm_on(
        &helm,
        &cluster,
        &[
            "upgrade",
            "tern",
            &chart,
            "--namespace",
            "tern-system",
            "--values",
            &custom,
            // The PodMonitor needs the Prometheus Operator's CRDs, which this server lacks.
            "--set",
            "brokerMetrics.podMonitor.mode=never",
        ],
    );
    assert!(upgraded, "helm upgrade failed:\n{output}");
    // values-custom.yaml watches two namespaces: the NOTES' commands use the first.
    assert!(
        output.contains("AclPolicies of mqtt-prod, mqtt-a only")
            && output.contains("kubectl --namespace mqtt-prod apply -f examples/"),
        "NOTES name the watched namespaces:\n{output}"
    );
    kubectl(
        &cluster,
        &[
            "get",
            "--namespace",
            "monitoring",
            "configmap/tern-dashboard",
        ],
        "",
    );

    let (uninstalled, output) = helm_on(
        &helm,
        &cluster,
        &["uninstall", "tern", "--namespace", "tern-system"],
    );
    assert!(uninstalled, "helm uninstall failed:\n{output}");
    let deployment = cluster
        .kubectl(&["get", "--namespace", "tern-system", "deployment/tern"])
        .expect("kubectl runs");
    assert!(
        !deployment.status.success(),
        "uninstall removes the operator"
    );
    // As the README's upgrade notes say: the CRDs, and so every MqttCluster, stay.
    kubectl(&cluster, &["get", "crd/mqttclusters.mqtt.tern.dev"], "");
}
