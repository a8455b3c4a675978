//! The operator against a real kube-apiserver (v1.20, see `tests/KUBE.md`): the CRDs install,
//! an `MqttCluster` becomes its children with owner references and status, an ACL change
//! touches only the ConfigMap, and invalid policies are reported while valid ones apply.
//!
//! There is no kubelet: pods never run, so the tests create a broker pod object themselves and
//! write the StatefulSet's status as its controller would.

mod common;

use std::time::Duration;

use common::{
    eventually, kubectl_ok, policy_condition, Harness, Setup, CONVERGE, IMAGE, NAMESPACE,
    WITH_OPERATOR,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;
use tern_operator::crd::{condition_status, AclPolicy, MqttCluster};
use tern_operator::leader::{LeaderElector, LeaseSettings};
use tern_operator::render::{files, CONFIG_REVISION_ANNOTATION};

const CRDS_ONLY: Setup = Setup {
    operator: false,
    garbage_collector: false,
};

const CLUSTER: &str = r#"
apiVersion: mqtt.tern.dev/v1alpha1
kind: MqttCluster
metadata: { name: edge }
spec:
  listeners:
    - { name: mqtt, port: 1883 }
    - { name: ws, port: 8083, protocol: websocket, path: /mqtt }
"#;

fn policy_yaml(name: &str, cluster: &str, topic: &str) -> String {
    format!(
        r#"
apiVersion: mqtt.tern.dev/v1alpha1
kind: AclPolicy
metadata: {{ name: {name} }}
spec:
  clusterRef: {{ name: {cluster} }}
  rules:
    - effect: Allow
      actions: [publish, subscribe]
      topics: ["{topic}"]
"#
    )
}

/// Writes the StatefulSet's status as its controller would for one ready, current broker.
async fn report_one_ready_broker(harness: &Harness) {
    let generation = harness
        .api::<StatefulSet>()
        .get("edge")
        .await
        .map(|sts| sts.metadata.generation)
        .unwrap_or_else(|error| panic!("{error}"));
    harness
        .api::<StatefulSet>()
        .patch_status(
            "edge",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": {
                "observedGeneration": generation, "replicas": 1, "readyReplicas": 1,
                "updatedReplicas": 1, "currentReplicas": 1
            }})),
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));
}

/// Waits until the cluster reports `Ready=True` and returns its status.
async fn wait_until_ready(harness: &Harness) -> tern_operator::crd::MqttClusterStatus {
    eventually("Ready=True", CONVERGE, || async {
        let status = harness
            .api::<MqttCluster>()
            .get("edge")
            .await
            .ok()?
            .status?;
        (condition_status(&status.conditions, "Ready") == Some("True")).then_some(status)
    })
    .await
}

async fn policies_file(harness: &Harness) -> Option<String> {
    let config_map = harness
        .api::<ConfigMap>()
        .get_opt("edge-config")
        .await
        .ok()??;
    config_map.data?.get(files::POLICIES).cloned()
}

/// The owner references of the `K` called `name` (none if it does not exist).
async fn owners_of<K>(
    harness: &Harness,
    name: &str,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match harness.api::<K>().get_opt(name).await {
        Ok(Some(object)) => object.owner_references().to_vec(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn crds_install_and_a_cluster_round_trips_with_defaults() {
    let harness = Harness::start(CRDS_ONLY).await;
    harness.apply_yaml(CLUSTER);
    let stored = harness
        .api::<MqttCluster>()
        .get("edge")
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        (
            stored.spec.replicas,
            stored.spec.metrics_port,
            stored.spec.listeners.len()
        ),
        (1, 9090, 2)
    );
    harness.stop().await;
}

#[tokio::test]
async fn the_api_server_enforces_the_schema() {
    let harness = Harness::start(CRDS_ONLY).await;
    let output = harness
        .plane
        .kubectl_with_stdin(
            &["apply", "-n", NAMESPACE, "-f", "-"],
            r#"
apiVersion: mqtt.tern.dev/v1alpha1
kind: MqttCluster
metadata: { name: bad }
spec:
  listeners: [ { name: Not_A_Port_Name, port: 70000, protocol: carrier-pigeon } ]
"#,
        )
        .unwrap_or_else(|error| panic!("{error:#}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let rejected = [
        "spec.listeners.name:",
        "spec.listeners.port:",
        "spec.listeners.protocol:",
    ]
    .iter()
    .filter(|field| stderr.contains(*field))
    .count();
    assert_eq!((output.status.success(), rejected), (false, 3), "{stderr}");
    harness.stop().await;
}

#[tokio::test]
async fn a_cluster_gets_all_children_with_owner_references_and_a_ready_status() {
    let harness = Harness::start(WITH_OPERATOR).await;
    harness.apply_yaml(CLUSTER);
    let cluster = eventually("the StatefulSet", CONVERGE, || async {
        harness.api::<StatefulSet>().get_opt("edge").await.ok()?
    })
    .await;
    let owner_uid = harness
        .api::<MqttCluster>()
        .get("edge")
        .await
        .map(|c| c.uid())
        .unwrap_or_default();
    let owners = [
        cluster.owner_references().to_vec(),
        owners_of::<ConfigMap>(&harness, "edge-config").await,
        owners_of::<Secret>(&harness, "edge-secrets").await,
        owners_of::<Service>(&harness, "edge").await,
        owners_of::<Service>(&harness, "edge-headless").await,
        owners_of::<ServiceAccount>(&harness, "edge").await,
    ];
    // policy/v1 does not exist on v1.20: the budget must have been applied as v1beta1.
    let budget_owner = kubectl_ok(
        &harness.plane,
        &[
            "get",
            "poddisruptionbudgets.v1beta1.policy",
            "edge",
            "-n",
            NAMESPACE,
            "-o",
            "jsonpath={.metadata.ownerReferences[0].uid}",
        ],
        "",
    );
    let owned = owners
        .iter()
        .filter(|refs| refs.len() == 1 && Some(&refs[0].uid) == owner_uid.as_ref())
        .count();
    assert_eq!(
        (owned, Some(budget_owner)),
        (6, owner_uid.clone()),
        "children with the cluster as owner"
    );

    report_one_ready_broker(&harness).await;
    let ready = wait_until_ready(&harness).await;
    assert_eq!(
        (
            ready.ready_replicas,
            ready.observed_generation,
            ready.config_revision.is_some()
        ),
        (1, Some(1), true)
    );
    harness.stop().await;
}

#[tokio::test]
async fn an_acl_change_touches_only_the_config_map_and_signals_running_pods() {
    let harness = Harness::start(WITH_OPERATOR).await;
    harness.apply_yaml(CLUSTER);
    harness.apply_yaml(&policy_yaml("sensors", "edge", "sensors/#"));
    eventually("the policy to be applied", CONVERGE, || async {
        let applied = policy_condition(&harness, "sensors", "Applied").await?;
        (applied.0 == "True").then_some(())
    })
    .await;
    // The ConfigMap (and so `Applied`) is written before the StatefulSet in each pass.
    let before = eventually("the StatefulSet", CONVERGE, || async {
        harness.api::<StatefulSet>().get_opt("edge").await.ok()?
    })
    .await;
    // A running broker pod, as the StatefulSet would have created it.
    let labels = before
        .spec
        .as_ref()
        .and_then(|spec| spec.selector.match_labels.clone())
        .unwrap_or_default();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "edge-0", "labels": labels },
        "spec": { "containers": [{ "name": "broker", "image": IMAGE }] }
    });
    harness
        .api::<Pod>()
        .create(
            &Default::default(),
            &serde_json::from_value(pod).unwrap_or_default(),
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    harness.apply_yaml(&policy_yaml("sensors", "edge", "telemetry/#"));
    let revision = eventually("the new rules in the ConfigMap", CONVERGE, || async {
        let policies = policies_file(&harness).await?;
        if !policies.contains("telemetry/#") {
            return None;
        }
        let config_map = harness.api::<ConfigMap>().get("edge-config").await.ok()?;
        config_map
            .annotations()
            .get(CONFIG_REVISION_ANNOTATION)
            .cloned()
    })
    .await;
    let pod_revision = eventually("the pod to be signalled", CONVERGE, || async {
        let pod = harness.api::<Pod>().get("edge-0").await.ok()?;
        let signalled = pod.annotations().get(CONFIG_REVISION_ANNOTATION).cloned()?;
        (signalled == revision).then_some(signalled)
    })
    .await;
    let after = harness
        .api::<StatefulSet>()
        .get("edge")
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let template = |sts: &StatefulSet| {
        serde_json::to_string(&sts.spec.as_ref().map(|s| &s.template)).unwrap_or_default()
    };
    assert_eq!(
        (
            after.metadata.generation,
            template(&after) == template(&before),
            pod_revision
        ),
        (before.metadata.generation, true, revision)
    );
    harness.stop().await;
}

#[tokio::test]
async fn invalid_policies_are_reported_while_valid_ones_apply_and_deletion_removes_rules() {
    let harness = Harness::start(WITH_OPERATOR).await;
    harness.apply_yaml(CLUSTER);
    harness.apply_yaml(&policy_yaml("good", "edge", "sensors/#"));
    harness.apply_yaml(&policy_yaml("bad-filter", "edge", "a/#/b"));
    harness.apply_yaml(&policy_yaml("orphan", "nowhere", "x/#"));

    let reasons = eventually("all three policies judged", CONVERGE, || async {
        let good = policy_condition(&harness, "good", "Applied").await?;
        let bad = policy_condition(&harness, "bad-filter", "Accepted").await?;
        let orphan = policy_condition(&harness, "orphan", "Accepted").await?;
        (good.0 == "True").then_some((good, bad, orphan))
    })
    .await;
    let policies = policies_file(&harness).await.unwrap_or_default();
    assert_eq!(
        (
            reasons,
            policies.contains("sensors/#"),
            policies.contains("a/#/b")
        ),
        (
            (
                ("True".to_string(), "InConfiguration".to_string()),
                ("False".to_string(), "InvalidRules".to_string()),
                ("False".to_string(), "ClusterNotFound".to_string())
            ),
            true,
            false
        )
    );

    let refusal_event = eventually(
        "a Warning Event for the invalid policy",
        CONVERGE,
        || async {
            let events = harness
                .api::<k8s_openapi::api::events::v1::Event>()
                .list(&Default::default())
                .await
                .ok()?;
            events.items.into_iter().find(|event| {
                event.reason.as_deref() == Some("InvalidRules")
                    && event.regarding.as_ref().and_then(|r| r.name.as_deref())
                        == Some("bad-filter")
            })
        },
    )
    .await;
    assert_eq!(refusal_event.type_.as_deref(), Some("Warning"));

    harness
        .api::<AclPolicy>()
        .delete("good", &DeleteParams::default())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    eventually(
        "the deleted policy's rules to leave the ConfigMap",
        CONVERGE,
        || async {
            let policies = policies_file(&harness).await?;
            let gone = harness
                .api::<AclPolicy>()
                .get_opt("good")
                .await
                .ok()?
                .is_none();
            (gone && !policies.contains("sensors/#")).then_some(())
        },
    )
    .await;
    harness.stop().await;
}

#[tokio::test]
async fn a_settled_cluster_with_users_is_not_rewritten() {
    let harness = Harness::start(WITH_OPERATOR).await;
    harness.apply_yaml(
        r#"
apiVersion: v1
kind: Secret
metadata: { name: alice }
stringData: { password: "s3cret" }
"#,
    );
    harness.apply_yaml(
        r#"
apiVersion: mqtt.tern.dev/v1alpha1
kind: MqttCluster
metadata: { name: edge }
spec:
  auth:
    users: [ { username: alice, passwordSecret: { name: alice } } ]
"#,
    );
    eventually("the StatefulSet", CONVERGE, || async {
        harness.api::<StatefulSet>().get_opt("edge").await.ok()?
    })
    .await;
    report_one_ready_broker(&harness).await;
    wait_until_ready(&harness).await;
    let versions = || async {
        (
            harness
                .api::<Secret>()
                .get("edge-secrets")
                .await
                .ok()
                .and_then(|o| o.resource_version()),
            harness
                .api::<ConfigMap>()
                .get("edge-config")
                .await
                .ok()
                .and_then(|o| o.resource_version()),
            harness
                .api::<StatefulSet>()
                .get("edge")
                .await
                .ok()
                .and_then(|o| o.resource_version()),
            harness
                .api::<MqttCluster>()
                .get("edge")
                .await
                .ok()
                .and_then(|o| o.resource_version()),
        )
    };
    let settled = versions().await;
    // Long enough for several reconciliations triggered by the operator's own writes.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(versions().await, settled);
    harness.stop().await;
}

#[tokio::test]
async fn deleting_a_cluster_garbage_collects_its_children() {
    let harness = Harness::start(Setup {
        operator: true,
        garbage_collector: true,
    })
    .await;
    harness.apply_yaml(CLUSTER);
    eventually("the StatefulSet", CONVERGE, || async {
        harness.api::<StatefulSet>().get_opt("edge").await.ok()?
    })
    .await;
    harness
        .api::<MqttCluster>()
        .delete("edge", &DeleteParams::default())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    eventually(
        "the children to be collected",
        Duration::from_secs(60),
        || async {
            let statefulset = harness.api::<StatefulSet>().get_opt("edge").await.ok()?;
            let config_map = harness
                .api::<ConfigMap>()
                .get_opt("edge-config")
                .await
                .ok()?;
            let service = harness.api::<Service>().get_opt("edge").await.ok()?;
            (statefulset.is_none() && config_map.is_none() && service.is_none()).then_some(())
        },
    )
    .await;
    harness.stop().await;
}

#[tokio::test]
async fn leadership_hands_over_when_the_leader_releases_or_stops_renewing() {
    let harness = Harness::start(CRDS_ONLY).await;
    let elector = |identity: &str| {
        LeaderElector::new(
            harness.client.clone(),
            LeaseSettings {
                name: "tern-operator".into(),
                namespace: NAMESPACE.into(),
                identity: identity.into(),
                lease_duration: Duration::from_secs(3),
                retry_period: Duration::from_millis(300),
            },
        )
    };
    let (first, second) = (elector("first"), elector("second"));
    first.acquire().await;
    let second_while_held = tokio::time::timeout(Duration::from_secs(2), second.acquire()).await;
    first
        .release()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let second_after_release = tokio::time::timeout(Duration::from_secs(3), second.acquire()).await;
    // `second` now leads but never renews: `first` takes over once the lease expires.
    let first_after_expiry = tokio::time::timeout(Duration::from_secs(6), first.acquire()).await;
    assert_eq!(
        (
            second_while_held.is_ok(),
            second_after_release.is_ok(),
            first_after_expiry.is_ok()
        ),
        (false, true, true)
    );
    harness.stop().await;
}

/// Watching several namespaces, the operator reconciles in each of them and in no other.
#[tokio::test]
async fn the_operator_manages_every_watched_namespace_and_no_other() {
    let mut harness = Harness::start(CRDS_ONLY).await;
    for namespace in ["iot-b", "iot-c"] {
        kubectl_ok(&harness.plane, &["create", "namespace", namespace], "");
    }
    harness
        .start_operator_watching(vec![NAMESPACE.into(), "iot-b".into()])
        .await;
    for namespace in [NAMESPACE, "iot-b", "iot-c"] {
        kubectl_ok(
            &harness.plane,
            &["apply", "-n", namespace, "-f", "-"],
            CLUSTER,
        );
    }
    let statefulsets =
        |namespace: &str| kube::Api::<StatefulSet>::namespaced(harness.client.clone(), namespace);
    for namespace in [NAMESPACE, "iot-b"] {
        eventually(
            &format!("the StatefulSet in {namespace}"),
            CONVERGE,
            || async { statefulsets(namespace).get_opt("edge").await.ok()? },
        )
        .await;
    }

    // The unwatched namespace's cluster was applied with the others, before they converged.
    let unwatched = kube::Api::<MqttCluster>::namespaced(harness.client.clone(), "iot-c")
        .get("edge")
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let unwatched_statefulset = statefulsets("iot-c").get_opt("edge").await.ok().flatten();
    assert_eq!(
        (unwatched.status.is_none(), unwatched_statefulset.is_none()),
        (true, true)
    );
    harness.stop().await;
}

/// `GET path` on 127.0.0.1:`port`; the status code, or 0 when nothing answers.
async fn http_status(port: u16, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return 0;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_operator_binary_leads_reconciles_and_releases_its_lease_on_sigterm() {
    use k8s_openapi::api::coordination::v1::Lease;

    let harness = Harness::start(CRDS_ONLY).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("{error}"));
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_tern-operator"))
        .args(["--metrics-bind", &format!("127.0.0.1:{port}")])
        .args(["--watch-namespace", NAMESPACE, "--leader-election"])
        .args(["--lease-namespace", NAMESPACE, "--identity", "binary"])
        .env("KUBECONFIG", harness.plane.kubeconfig_path())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("{error}"));
    harness.apply_yaml(CLUSTER);
    eventually("the StatefulSet", CONVERGE, || async {
        harness.api::<StatefulSet>().get_opt("edge").await.ok()?
    })
    .await;
    let holder = || async {
        harness
            .api::<Lease>()
            .get_opt("tern-operator")
            .await
            .ok()
            .flatten()
            .and_then(|lease| lease.spec)
            .and_then(|spec| spec.holder_identity)
    };
    let leading = holder().await;
    let readyz = http_status(port, "/readyz").await;

    let pid = operator.id().map(|pid| pid.to_string()).unwrap_or_default();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .is_ok_and(|status| status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), operator.wait()).await;
    let exited_cleanly = matches!(exit, Ok(Ok(status)) if status.success());
    assert_eq!(
        (leading, readyz, signalled, exited_cleanly, holder().await),
        (Some("binary".to_string()), 200, true, true, None)
    );
    harness.stop().await;
}
