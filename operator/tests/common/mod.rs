//! The harness the operator's integration tests share: a real kube-apiserver (v1.20, see
//! `tests/KUBE.md`) with the CRDs installed, the operator running in this process, and helpers
//! to drive both.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::FutureExt;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tern_e2e::control_plane::{ControlPlane, ControlPlaneOptions};
use tern_operator::app::{build_context, install_crypto_provider};
use tern_operator::controller::run_controllers;
use tern_operator::crd::AclPolicy;
use tern_operator::metrics::OperatorMetrics;

/// The namespace every test works in.
pub const NAMESPACE: &str = "iot";
/// The image the operator puts in pod templates (never pulled: pods do not run).
pub const IMAGE: &str = "ghcr.io/tern-mqtt/tern:test";
/// How long the operator may take to converge after a change.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// What a test needs besides the API server.
#[derive(Clone, Copy)]
pub struct Setup {
    /// Run the operator in this process.
    pub operator: bool,
    /// Run kube-controller-manager's garbage collector.
    pub garbage_collector: bool,
}

/// The API server with the CRDs installed and the operator running.
pub const WITH_OPERATOR: Setup = Setup {
    operator: true,
    garbage_collector: false,
};

/// A control plane with the CRDs installed and the operator running in this process.
pub struct Harness {
    /// The API server (and kubectl configured for it).
    pub plane: ControlPlane,
    /// A client of the API server, as the operator's.
    pub client: Client,
    stop_operator: Option<tokio::sync::oneshot::Sender<()>>,
    operator: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    /// Starts the control plane, installs the CRDs and the test namespace, and runs the
    /// operator if `setup` asks for it.
    pub async fn start(setup: Setup) -> Harness {
        install_crypto_provider();
        let plane = ControlPlane::start(ControlPlaneOptions {
            controller_manager: setup.garbage_collector,
        })
        .unwrap_or_else(|error| panic!("{error:#}"));
        let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
        for file in ["mqttclusters.yaml", "aclpolicies.yaml"] {
            let path = crds.join(file);
            kubectl_ok(&plane, &["apply", "-f", &path.to_string_lossy()], "");
        }
        plane
            .wait_established(&["mqttclusters.mqtt.tern.dev", "aclpolicies.mqtt.tern.dev"])
            .unwrap_or_else(|error| panic!("{error:#}"));
        kubectl_ok(&plane, &["create", "namespace", NAMESPACE], "");
        let kubeconfig = Kubeconfig::read_from(plane.kubeconfig_path())
            .unwrap_or_else(|error| panic!("{error}"));
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let client = Client::try_from(config).unwrap_or_else(|error| panic!("{error}"));
        let mut harness = Harness {
            plane,
            client,
            stop_operator: None,
            operator: None,
        };
        if setup.operator {
            harness.start_operator().await;
        }
        harness
    }

    async fn start_operator(&mut self) {
        self.start_operator_watching(vec![NAMESPACE.into()]).await;
    }

    /// Runs the operator in this process, watching `namespaces` (all when empty).
    pub async fn start_operator_watching(&mut self, namespaces: Vec<String>) {
        let metrics = OperatorMetrics::new().unwrap_or_else(|error| panic!("{error}"));
        let ctx = build_context(self.client.clone(), metrics, IMAGE, "test")
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        }
        .boxed()
        .shared();
        self.stop_operator = Some(stop);
        self.operator = Some(tokio::spawn(run_controllers(
            Arc::new(ctx),
            namespaces,
            shutdown,
        )));
    }

    /// The API of `K` objects in the test namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// `kubectl apply` of `yaml` in the test namespace; returns once kubectl has.
    pub fn apply_yaml(&self, yaml: &str) {
        kubectl_ok(&self.plane, &["apply", "-n", NAMESPACE, "-f", "-"], yaml);
    }

    /// Stops the operator (the control plane stops when dropped).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop_operator.take() {
            let _ = stop.send(());
        }
        if let Some(operator) = self.operator.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), operator).await;
        }
    }
}

/// Runs kubectl with `stdin` and returns its output; fails the test with the control plane's
/// logs if kubectl fails.
pub fn kubectl_ok(plane: &ControlPlane, args: &[&str], stdin: &str) -> String {
    let output = plane
        .kubectl_with_stdin(args, stdin)
        .unwrap_or_else(|error| panic!("{error:#}"));
    assert!(
        output.status.success(),
        "kubectl {} failed: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr),
        plane.log_tails()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Polls `probe` every 200 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `(status, reason)` of the policy's condition `type_`, once it has one.
pub async fn policy_condition(
    harness: &Harness,
    name: &str,
    type_: &str,
) -> Option<(String, String)> {
    let policy = harness.api::<AclPolicy>().get_opt(name).await.ok()??;
    let status = policy.status?;
    let condition = status.conditions.iter().find(|c| c.type_ == type_)?;
    Some((condition.status.clone(), condition.reason.clone()))
}
