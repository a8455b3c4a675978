//! The real `tern-operator`, started with the arguments of the chart's Deployment and holding
//! only the chart's RBAC (its ServiceAccount impersonated), reconciles the examples on the
//! test API server without a single "forbidden" error: the chart grants everything the
//! operator uses.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tern_e2e::broker::{free_port, workspace_root};
use tern_e2e::control_plane::{ControlPlane, ControlPlaneOptions};
use tern_e2e::helm::{read_yaml, Helm};

/// How long the operator may take to create a cluster's children and accept a policy.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(500);
/// The ServiceAccount the chart creates for release "tern" in "tern-system".
const OPERATOR_ACCOUNT: &str = "system:serviceaccount:tern-system:tern-tern-operator";

/// Kills the operator when the test ends, however it ends.
struct OperatorProcess(Child);

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds `tern-operator` (a no-op when `cargo test --workspace` already did) and returns it.
fn tern_operator_binary() -> PathBuf {
    let target_dir = match option_env!("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "-p", "tern-operator", "--bin", "tern-operator"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building tern-operator failed");
    target_dir.join("debug").join("tern-operator")
}

fn kubectl(cluster: &ControlPlane, args: &[&str], stdin: &str) -> String {
    let output = cluster
        .kubectl_with_stdin(args, stdin)
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The admin kubeconfig, acting as the operator's ServiceAccount.
fn impersonating_kubeconfig(cluster: &ControlPlane, dir: &Path) -> PathBuf {
    let mut config = read_yaml(cluster.kubeconfig_path()).expect("admin kubeconfig parses");
    for user in config["users"]
        .as_array_mut()
        .expect("kubeconfig has users")
    {
        user["user"]["as"] = Value::from(OPERATOR_ACCOUNT);
    }
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// Status code of `GET path` on 127.0.0.1:port, if the server answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Polls `done` until it holds or the reconcile timeout passes.
fn eventually(what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + RECONCILE_TIMEOUT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; operator log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(POLL);
    }
}

#[test]
fn operator_reconciles_the_examples_with_only_the_charts_rbac() {
    let helm = Helm::locate().expect("helm is available (scripts/install-helm.sh)");
    let operator = tern_operator_binary();
    let cluster = ControlPlane::start(ControlPlaneOptions::default())
        .expect("test control plane starts (scripts/kube-test-env.sh)");
    let crds = workspace_root().join("charts/tern-operator/crds");
    kubectl(&cluster, &["apply", "-f", &crds.to_string_lossy()], "");
    cluster
        .wait_established(&["mqttclusters.mqtt.tern.dev", "aclpolicies.mqtt.tern.dev"])
        .expect("the CRDs are established");
    kubectl(&cluster, &["create", "namespace", "tern-system"], "");

    // The chart's ServiceAccount and RBAC, for real.
    let rendered = helm
        .template(&["--namespace", "tern-system"])
        .expect("chart renders");
    let rbac: Vec<Value> = rendered
        .iter()
        .filter(|o| o.kind() == "ServiceAccount" || o.str_at("/apiVersion").starts_with("rbac."))
        .map(|o| o.0.clone())
        .collect();
    let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": rbac });
    kubectl(&cluster, &["apply", "-f", "-"], &list.to_string());

    // The operator with the Deployment's own arguments, its metrics on a free loopback port.
    let deployment = rendered
        .iter()
        .find(|o| o.kind() == "Deployment")
        .expect("the chart renders a Deployment");
    let metrics_port = free_port().unwrap();
    let args: Vec<String> = deployment
        .at("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .expect("the Deployment has args")
        .iter()
        .filter_map(Value::as_str)
        .map(|arg| {
            if arg.starts_with("--metrics-bind=") {
                format!("--metrics-bind=127.0.0.1:{metrics_port}")
            } else {
                arg.to_owned()
            }
        })
        .collect();
    let log_path = cluster.dir().join("tern-operator.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let _operator = OperatorProcess(
        Command::new(&operator)
            .args(&args)
            .env(
                "KUBECONFIG",
                impersonating_kubeconfig(&cluster, cluster.dir()),
            )
            .env("POD_NAMESPACE", "tern-system")
            .env("POD_NAME", "tern-tern-operator-0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("tern-operator starts"),
    );
    eventually("/readyz to answer 200", &log_path, || {
        http_status(metrics_port, "/readyz") == Some(200)
    });

    let examples = workspace_root().join("examples");
    for example in ["mqttcluster-minimal.yaml", "aclpolicy-deny.yaml"] {
        let path = examples.join(example);
        kubectl(
            &cluster,
            &[
                "apply",
                "--namespace",
                "default",
                "-f",
                &path.to_string_lossy(),
            ],
            "",
        );
    }
    eventually(
        "the minimal cluster's StatefulSet and ConfigMap",
        &log_path,
        || {
            let output = cluster
                .kubectl(&[
                    "get",
                    "--namespace",
                    "default",
                    "statefulset/minimal",
                    "configmap/minimal-config",
                ])
                .expect("kubectl runs");
            output.status.success()
        },
    );
    eventually("AclPolicy lock-demo to be Accepted", &log_path, || {
        let output = cluster
            .kubectl(&[
                "get",
                "--namespace",
                "default",
                "aclpolicy/lock-demo",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Accepted\")].status}",
            ])
            .expect("kubectl runs");
        String::from_utf8_lossy(&output.stdout).trim() == "True"
    });
    let lease = cluster
        .kubectl(&[
            "get",
            "--namespace",
            "tern-system",
            "lease/tern-tern-operator-leader",
        ])
        .expect("kubectl runs");
    assert!(
        lease.status.success(),
        "the operator holds its Lease in the release namespace"
    );

    let operator_log = std::fs::read_to_string(&log_path).unwrap();
    let forbidden: Vec<&str> = operator_log
        .lines()
        .filter(|line| line.to_lowercase().contains("forbidden"))
        .collect();
    assert!(
        forbidden.is_empty(),
        "the chart's RBAC refused the operator:\n{}",
        forbidden.join("\n")
    );
}
