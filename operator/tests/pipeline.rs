//! The whole path of an ACL change, with the real component at every step but the kubelet:
//! `kubectl apply` of an `AclPolicy` → the API server → the operator (in this process) renders
//! the cluster's ConfigMap → a kubelet stand-in projects the ConfigMap and Secret into a
//! directory with the kubelet's own atomic `..data` swap → a real `tern-broker` watching that
//! directory reloads → a client that stays connected is refused.
//!
//! The kubelet stand-in re-projects as soon as it sees a new `resourceVersion`. A real kubelet
//! adds its own sync delay (up to its sync period plus cache TTL), which is the cluster's to
//! tune; what is measured here is everything Tern owns.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, policy_condition, Harness, CONVERGE, WITH_OPERATOR};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;
use tern_broker::protocol::{QoS, ReasonCode};
use tern_e2e::broker::free_port;
use tern_e2e::clients::{publish_packet, ProtocolVersion, RawClient};
use tern_e2e::live::LiveBroker;
use tern_e2e::projected::{ProjectedVolume, VolumeFile};
use tern_operator::crd::{AclPolicy, MqttCluster};
use tern_operator::render::files;

/// What the issue promises: a policy applied is enforced within this.
const ENFORCED_WITHIN: Duration = Duration::from_secs(2);
/// How long the test keeps trying before it gives up (past the promise, so a slow run reports
/// its latency instead of a timeout).
const GIVE_UP_AFTER: Duration = Duration::from_secs(15);
/// How often the kubelet stand-in looks at the API server and the client publishes.
const POLL_EVERY: Duration = Duration::from_millis(25);
/// The topic the new policy locks.
const DOOR: &str = "demo/locked/door";

/// An anonymous-friendly cluster that denies by default, with its listener and metrics on the
/// given ports so the broker can run on this machine.
fn cluster_yaml(mqtt_port: u16, metrics_port: u16) -> String {
    format!(
        r#"
apiVersion: mqtt.tern.dev/v1alpha1
kind: MqttCluster
metadata: {{ name: demo }}
spec:
  listeners: [ {{ name: mqtt, port: {mqtt_port} }} ]
  metricsPort: {metrics_port}
  auth: {{ allowAnonymous: true }}
  acl: {{ defaultAction: deny }}
"#
    )
}

/// Everyone may use `demo/#`.
const DEMO_ALLOWED: &str = r#"
apiVersion: mqtt.tern.dev/v1alpha1
kind: AclPolicy
metadata: { name: demo-devices }
spec:
  clusterRef: { name: demo }
  rules:
    - { effect: Allow, actions: [publish, subscribe], topics: ["demo/#"] }
"#;

/// No one may publish under `demo/locked/`.
const LOCKED_DENIED: &str = r#"
apiVersion: mqtt.tern.dev/v1alpha1
kind: AclPolicy
metadata: { name: lockdown }
spec:
  clusterRef: { name: demo }
  rules:
    - { effect: Deny, actions: [publish], topics: ["demo/locked/#"] }
"#;

/// The files the kubelet writes for the broker pod's configuration volume: every key of the
/// ConfigMap (text and binary) and of the Secret, side by side, as the pod template's single
/// projected volume asks. Secret values arrive base64-encoded; `ByteString` has decoded them.
fn project(config_map: &ConfigMap, secret: &Secret) -> Vec<VolumeFile> {
    let text = config_map
        .data
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.clone().into_bytes()));
    let binary = config_map
        .binary_data
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.0.clone()));
    let secret = secret
        .data
        .iter()
        .flatten()
        .map(|(key, value)| (key.clone(), value.0.clone()));
    text.chain(binary).chain(secret).collect()
}

/// Does the kubelet's part for one pod: keeps a projected volume in step with the cluster's
/// ConfigMap and Secret.
struct KubeletStandIn {
    /// `resourceVersion`s of the ConfigMap and Secret last projected.
    projected: (Option<String>, Option<String>),
}

impl KubeletStandIn {
    /// The cluster's ConfigMap and Secret, once the operator has written both.
    async fn sources(harness: &Harness) -> Option<(ConfigMap, Secret)> {
        let config_map = harness
            .api::<ConfigMap>()
            .get_opt("demo-config")
            .await
            .ok()??;
        let secret = harness
            .api::<Secret>()
            .get_opt("demo-secrets")
            .await
            .ok()??;
        Some((config_map, secret))
    }

    /// Projects `config_map` and `secret` into a new volume.
    fn mount(config_map: &ConfigMap, secret: &Secret) -> (KubeletStandIn, Vec<VolumeFile>) {
        let kubelet = KubeletStandIn {
            projected: (config_map.resource_version(), secret.resource_version()),
        };
        (kubelet, project(config_map, secret))
    }

    /// Re-projects into `volume` if either object changed since the last projection; returns
    /// whether it did.
    async fn sync(&mut self, harness: &Harness, volume: &mut ProjectedVolume) -> bool {
        let Some((config_map, secret)) = KubeletStandIn::sources(harness).await else {
            return false;
        };
        let current = (config_map.resource_version(), secret.resource_version());
        if current == self.projected {
            return false;
        }
        volume
            .update(&project(&config_map, &secret))
            .unwrap_or_else(|error| panic!("projecting the volume: {error:#}"));
        self.projected = current;
        true
    }
}

/// Blocking calls (kubectl, the broker's readiness poll) run on one worker while the operator
/// keeps reconciling on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_acl_policy_denies_a_connected_client_within_two_seconds() {
    let harness = Harness::start(WITH_OPERATOR).await;
    let port = || free_port().unwrap_or_else(|error| panic!("{error:#}"));
    let (mqtt_port, metrics_port) = (port(), port());
    harness.apply_yaml(&cluster_yaml(mqtt_port, metrics_port));
    harness.apply_yaml(DEMO_ALLOWED);
    eventually("the demo policy to be applied", CONVERGE, || async {
        let applied = policy_condition(&harness, "demo-devices", "Applied").await?;
        (applied.0 == "True").then_some(())
    })
    .await;
    let (config_map, secret) = eventually("the ConfigMap and Secret", CONVERGE, || {
        KubeletStandIn::sources(&harness)
    })
    .await;
    let (mut kubelet, volume_files) = KubeletStandIn::mount(&config_map, &secret);
    let mut broker = LiveBroker::start(mqtt_port, &volume_files, metrics_port);
    // The broker's pod, as the StatefulSet and the kubelet would report it: its IP is this
    // machine's loopback, where the broker's metrics port answers `/revision`.
    create_running_pod(&harness, "demo", "127.0.0.1").await;
    let mut door_panel = RawClient::connect(
        &format!("127.0.0.1:{mqtt_port}"),
        ProtocolVersion::V5,
        "door-panel",
    )
    .await;
    let before = door_panel
        .publish_with(publish_packet(DOOR, "open", QoS::AtLeastOnce))
        .await;
    assert_eq!(before, ReasonCode::Success, "before the lockdown");

    harness.apply_yaml(LOCKED_DENIED);
    let applied_at = Instant::now();
    let mut projections = 0;
    // Every publish is acknowledged on the same connection: a closed one fails the test.
    let latency = loop {
        if kubelet.sync(&harness, &mut broker.volume).await {
            projections += 1;
        }
        let reason = door_panel
            .publish_with(publish_packet(DOOR, "open", QoS::AtLeastOnce))
            .await;
        if reason == ReasonCode::NotAuthorized {
            break applied_at.elapsed();
        }
        assert_eq!(
            reason,
            ReasonCode::Success,
            "while waiting for the lockdown"
        );
        assert!(
            applied_at.elapsed() < GIVE_UP_AFTER,
            "not denied after {GIVE_UP_AFTER:?} ({projections} projections); policies:\n{}\nbroker log:\n{}",
            config_map_policies(&harness).await,
            broker.process.log()
        );
        tokio::time::sleep(POLL_EVERY).await;
    };
    println!(
        "policy applied -> client denied: {} ms ({projections} projection(s))",
        latency.as_millis()
    );
    // Still the same connection, and still allowed elsewhere.
    let elsewhere = door_panel
        .publish_with(publish_packet("demo/lobby/light", "on", QoS::AtLeastOnce))
        .await;
    assert!(
        latency < ENFORCED_WITHIN && elsewhere == ReasonCode::Success,
        "denied after {latency:?} (limit {ENFORCED_WITHIN:?}); demo/lobby/light: {elsewhere:?}"
    );

    // The cluster's status says so too: the pod runs the revision the operator rendered.
    let (rendered, running) =
        eventually("the pod to report the new revision", CONVERGE, || async {
            let cluster = harness.api::<MqttCluster>().get("demo").await.ok()?;
            let status = cluster.status?;
            let rendered = status.config_revision?;
            let running = status.pods.first()?.running_revision.clone()?;
            let locked_rendered = config_map_policies(&harness)
                .await
                .contains("demo/locked/#");
            (locked_rendered && running == rendered).then_some((rendered, running))
        })
        .await;
    println!(
        "policy applied -> status.pods[0].runningRevision {running}: {} ms",
        applied_at.elapsed().as_millis()
    );
    assert_eq!(running, rendered);
    // And the policy that caused it says its rules run on the one broker there is.
    eventually(
        "the policy to report its rules running",
        CONVERGE,
        || async {
            let policy = harness.api::<AclPolicy>().get("lockdown").await.ok()?;
            let status = policy.status?;
            let applied = status.conditions.iter().find(|c| c.type_ == "Applied")?;
            (status.config_revision.as_deref() == Some(rendered.as_str())
                && applied
                    .message
                    .ends_with("1 of 1 broker(s) report running it"))
            .then_some(())
        },
    )
    .await;
    harness.stop().await;
}

/// Creates the broker pod of `cluster` as its StatefulSet would, and reports it running at
/// `ip` as its kubelet would.
async fn create_running_pod(harness: &Harness, cluster: &str, ip: &str) {
    let statefulset = eventually("the StatefulSet", CONVERGE, || async {
        harness.api::<StatefulSet>().get_opt(cluster).await.ok()?
    })
    .await;
    let labels = statefulset
        .spec
        .and_then(|spec| spec.selector.match_labels)
        .unwrap_or_default();
    let name = format!("{cluster}-0");
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "labels": labels },
        "spec": { "containers": [{ "name": "broker", "image": "ghcr.io/tern-mqtt/tern:test" }] }
    });
    let pods = harness.api::<Pod>();
    pods.create(
        &Default::default(),
        &serde_json::from_value(pod).unwrap_or_else(|error| panic!("{error}")),
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    let status = json!({ "status": { "phase": "Running", "podIP": ip, "podIPs": [{ "ip": ip }] } });
    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
}

/// The policies file as the ConfigMap holds it now, for failure messages.
async fn config_map_policies(harness: &Harness) -> String {
    KubeletStandIn::sources(harness)
        .await
        .and_then(|(config_map, _)| config_map.data?.get(files::POLICIES).cloned())
        .unwrap_or_else(|| "(no ConfigMap)".into())
}
