//! Reconciling one `MqttCluster`: gather, render, apply, signal pods, report status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tern_broker::acl::AclPolicy as BrokerAclPolicy;

use super::apply::{apply, apply_disruption_budget, apply_params};
use super::cluster_status::{cluster_conditions, ClusterObservation, RolloutState};
use super::context::{Context, Error};
use super::material::gather_secret_material;
use super::pod_revision::running_revision;
use super::policy_rules::validate_rules;
use crate::crd::{set_condition, AclPolicy, MqttCluster, MqttClusterStatus, PodConfigRevision};
use crate::render::{
    render_cluster, ClusterNames, ClusterObjects, RenderInputs, CONFIG_REVISION_ANNOTATION,
};

/// How often a settled cluster is reconciled anyway, to repair drift nobody reported.
const RESYNC_INTERVAL: Duration = Duration::from_secs(300);

/// Brings one cluster's children and status in line with its spec.
pub async fn reconcile_cluster(
    cluster: Arc<MqttCluster>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let key = object_key(cluster.as_ref());
    let result = if cluster.meta().deletion_timestamp.is_some() {
        // Children carry owner references: the garbage collector removes them.
        ctx.propagation.settled(&key);
        Ok(Action::await_change())
    } else {
        converge_cluster(&cluster, &ctx)
            .await
            .map(|propagation| match propagation {
                Propagation::Pending { revision } => {
                    Action::requeue(ctx.propagation.next_check(&key, &revision))
                }
                Propagation::Done => {
                    ctx.propagation.settled(&key);
                    Action::requeue(RESYNC_INTERVAL)
                }
            })
    };
    ctx.metrics
        .observe("MqttCluster", started.elapsed(), &result);
    if result.is_ok() {
        ctx.backoff.reset(&key);
    }
    result
}

/// `namespace/name` of an object, the key of its backoffs.
pub fn object_key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

/// A problem with the user's spec or the Secrets it references, as (reason, message): reported
/// in the `Degraded` condition, not retried until something changes.
type SpecProblem = (&'static str, String);

/// Whether every broker that reports its configuration runs the rendered one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Propagation {
    /// Some broker still reports an older revision than `revision`, the one rendered.
    Pending {
        /// The rendered configuration revision.
        revision: String,
    },
    /// None does (brokers that cannot be asked do not count).
    Done,
}

/// One full pass over a cluster. Also run by the `AclPolicy` finalizer, so a deleted policy's
/// rules are gone from the configuration before the policy itself disappears.
pub async fn converge_cluster(cluster: &MqttCluster, ctx: &Context) -> Result<Propagation, Error> {
    let Ok(names) = ClusterNames::of(cluster) else {
        // Not stored yet: the watch will bring it back once it is.
        return Ok(Propagation::Done);
    };
    let desired = desired_objects(ctx, cluster, &names).await?;
    if let Ok(objects) = &desired {
        apply_children(ctx, objects).await?;
    }
    let revision = desired
        .as_ref()
        .ok()
        .map(|objects| objects.config_revision.as_str());
    let rollout = observe_rollout(ctx, &names).await?;
    let pods = signal_pods(ctx, &names, revision, cluster.spec.metrics_port).await?;

    let propagation = match revision {
        Some(revision)
            if pods
                .iter()
                .any(|pod| pod.reports_running_other_than(revision)) =>
        {
            Propagation::Pending {
                revision: revision.to_string(),
            }
        }
        _ => Propagation::Done,
    };
    let previous = cluster.status.clone().unwrap_or_default();
    let spec_problem = desired.as_ref().err();
    let status = next_status(
        cluster,
        &names,
        &previous,
        spec_problem,
        revision,
        rollout,
        pods,
    );
    publish_events(ctx, cluster, &previous, &status, spec_problem).await;
    if status != previous {
        write_status(ctx, &names, &status).await?;
    }
    Ok(propagation)
}

/// Everything the cluster should consist of now, or why its spec cannot be honoured.
async fn desired_objects(
    ctx: &Context,
    cluster: &MqttCluster,
    names: &ClusterNames,
) -> Result<Result<ClusterObjects, SpecProblem>, Error> {
    let applied_secret = Api::<Secret>::namespaced(ctx.client.clone(), &names.namespace)
        .get_opt(&names.secret())
        .await
        .map_err(Error::kube(format!("read Secret {}", names.secret())))?;
    let policies = accepted_policies(ctx, names).await?;
    let material = match gather_secret_material(&ctx.client, cluster, applied_secret.as_ref()).await
    {
        Ok(material) => material,
        Err(error) if error.is_user_error() => {
            return Ok(Err(("SecretUnavailable", error.to_string())))
        }
        Err(error) => return Err(error.into()),
    };
    let inputs = RenderInputs {
        cluster,
        default_image: &ctx.default_image,
        policies: &policies,
        secret_material: &material,
    };
    Ok(render_cluster(&inputs).map_err(|error| ("InvalidSpec", error.to_string())))
}

/// The status after this pass: counts from the StatefulSet, the revision rendered (or, when
/// nothing could be rendered, the one still in force), per-pod signals and the conditions.
fn next_status(
    cluster: &MqttCluster,
    names: &ClusterNames,
    previous: &MqttClusterStatus,
    spec_problem: Option<&SpecProblem>,
    rendered_revision: Option<&str>,
    rollout: RolloutState,
    pods: Vec<PodConfigRevision>,
) -> MqttClusterStatus {
    let config_revision = rendered_revision
        .map(str::to_string)
        .or_else(|| previous.config_revision.clone());
    let seen = ClusterObservation {
        requested_replicas: cluster.spec.replicas,
        spec_problem: spec_problem.cloned(),
        rollout: rollout.clone(),
        pods_behind_config: pods
            .iter()
            .filter(|pod| match config_revision.as_deref() {
                Some(current) => {
                    pod.config_revision != current || pod.reports_running_other_than(current)
                }
                None => true,
            })
            .count(),
    };
    let generation = cluster.meta().generation;
    let mut status = MqttClusterStatus {
        observed_generation: generation,
        conditions: previous.conditions.clone(),
        replicas: rollout.replicas,
        ready_replicas: rollout.ready_replicas,
        selector: Some(names.selector_string()),
        config_revision,
        pods,
    };
    let now = Timestamp::now();
    for update in cluster_conditions(&seen) {
        set_condition(&mut status.conditions, update, generation, now);
    }
    status
}

/// The cluster's policies that are valid and not being deleted, sorted by name so the policies
/// file (and with it the revision) only changes when a rule does.
async fn accepted_policies(
    ctx: &Context,
    names: &ClusterNames,
) -> Result<Vec<BrokerAclPolicy>, Error> {
    let api: Api<AclPolicy> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let all = api
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("list AclPolicies"))?;
    let mut policies: Vec<BrokerAclPolicy> = all
        .items
        .into_iter()
        .filter(|policy| policy.spec.cluster_ref.name == names.cluster)
        .filter(|policy| policy.meta().deletion_timestamp.is_none())
        .filter(|policy| validate_rules(&policy.spec.rules).is_ok())
        .map(|policy| BrokerAclPolicy {
            name: policy.name_any(),
            rules: policy.spec.rules,
        })
        .collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(policies)
}

/// Applies every child. Configuration first, StatefulSet last, so a new pod never starts
/// against configuration objects that do not exist yet.
async fn apply_children(ctx: &Context, objects: &ClusterObjects) -> Result<(), Error> {
    apply(ctx, &objects.service_account).await?;
    apply(ctx, &objects.config_map).await?;
    apply(ctx, &objects.secret).await?;
    apply(ctx, &objects.headless_service).await?;
    apply(ctx, &objects.client_service).await?;
    apply_disruption_budget(ctx, &objects.disruption_budget).await?;
    apply(ctx, &objects.stateful_set).await?;
    Ok(())
}

async fn observe_rollout(ctx: &Context, names: &ClusterNames) -> Result<RolloutState, Error> {
    let stateful_set = Api::<StatefulSet>::namespaced(ctx.client.clone(), &names.namespace)
        .get_opt(&names.cluster)
        .await
        .map_err(Error::kube(format!("read StatefulSet {}", names.cluster)))?;
    let Some(stateful_set) = stateful_set else {
        return Ok(RolloutState::default());
    };
    let generation = stateful_set.metadata.generation;
    let status = stateful_set.status.unwrap_or_default();
    Ok(RolloutState {
        replicas: status.replicas,
        ready_replicas: status.ready_replicas.unwrap_or(0),
        updated_replicas: status.updated_replicas.unwrap_or(0),
        spec_observed: status.observed_generation >= generation,
    })
}

/// Annotates every running broker pod with `revision` (when there is one), which makes the
/// kubelet refresh the pod's projected configuration volume right away instead of at its next
/// periodic sync. The pod template is never touched. Returns each pod's signalled revision and
/// the one its broker reports running (asked on `metrics_port`, all pods at once).
async fn signal_pods(
    ctx: &Context,
    names: &ClusterNames,
    revision: Option<&str>,
    metrics_port: u16,
) -> Result<Vec<PodConfigRevision>, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let selector = names.selector_string();
    let pods = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube("list broker pods"))?;
    let mut signalled = Vec::new();
    let mut asks = Vec::new();
    for pod in pods.items {
        let name = pod.name_any();
        let pod_ip = pod
            .status
            .as_ref()
            .and_then(|status| status.pod_ip.as_deref())
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
        let current = pod.annotations().get(CONFIG_REVISION_ANNOTATION).cloned();
        let now_signalled = match revision {
            Some(revision) if current.as_deref() != Some(revision) => {
                let patch = json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": { "name": name, "annotations": { CONFIG_REVISION_ANNOTATION: revision } },
                });
                api.patch(&name, &apply_params(), &Patch::Apply(&patch))
                    .await
                    .map_err(Error::kube(format!("annotate pod {name}")))?;
                Some(revision.to_string())
            }
            _ => current,
        };
        if let Some(config_revision) = now_signalled {
            asks.push(async move {
                match pod_ip {
                    Some(ip) => running_revision(ip, metrics_port).await,
                    None => None,
                }
            });
            signalled.push(PodConfigRevision {
                name,
                config_revision,
                running_revision: None,
            });
        }
    }
    let running = futures::future::join_all(asks).await;
    for (pod, running) in signalled.iter_mut().zip(running) {
        pod.running_revision = running;
    }
    signalled.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(signalled)
}

async fn write_status(
    ctx: &Context,
    names: &ClusterNames,
    status: &MqttClusterStatus,
) -> Result<(), Error> {
    let api: Api<MqttCluster> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let patch = json!({
        "apiVersion": MqttCluster::api_version(&()),
        "kind": MqttCluster::kind(&()),
        "status": status,
    });
    api.patch_status(&names.cluster, &apply_params(), &Patch::Apply(&patch))
        .await
        .map_err(Error::kube(format!(
            "write status of MqttCluster {}",
            names.cluster
        )))?;
    Ok(())
}

/// Events for what changed: a new configuration revision, a newly refused spec.
async fn publish_events(
    ctx: &Context,
    cluster: &MqttCluster,
    previous: &MqttClusterStatus,
    status: &MqttClusterStatus,
    spec_problem: Option<&SpecProblem>,
) {
    let mut events = Vec::new();
    if status.config_revision != previous.config_revision {
        if let Some(revision) = &status.config_revision {
            events.push(Event {
                type_: EventType::Normal,
                reason: "ConfigRendered".into(),
                note: Some(format!("configuration revision {revision} rendered")),
                action: "Render".into(),
                secondary: None,
            });
        }
    }
    let degraded_before = previous
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .map(|c| (c.status.clone(), c.reason.clone()));
    let degraded_now = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
    if let Some((state, reason, message)) = degraded_now {
        let changed = degraded_before != Some((state.clone(), reason.clone()));
        if changed && state == "True" {
            events.push(Event {
                type_: EventType::Warning,
                reason: spec_problem.map(|(r, _)| *r).unwrap_or("Degraded").into(),
                note: Some(message),
                action: "Reconcile".into(),
                secondary: None,
            });
        }
    }
    let reference = cluster.object_ref(&());
    for event in events {
        if let Err(error) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(%error, cluster = %cluster.name_any(), "cannot publish event");
        }
    }
}
