//! Reconciling one `AclPolicy`: validate it, report whether its cluster's configuration holds
//! its rules, and — through a finalizer — take its rules out before it is deleted.
//!
//! Only the cluster reconciler writes a cluster's configuration (from all of its valid
//! policies); this reconciler judges and reports, so the two never race over the ConfigMap.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tern_broker::acl::AclPolicy as BrokerAclPolicy;

use super::apply::apply_params;
use super::cluster::{converge_cluster, object_key};
use super::context::{Context, Error};
use super::policy_rules::validate_rules;
use crate::crd::{
    set_condition, AclPolicy, AclPolicyStatus, ConditionUpdate, MqttCluster, PodConfigRevision,
};
use crate::render::{config_map_name, files, CONFIG_REVISION_ANNOTATION};

/// Keeps a deleted `AclPolicy` until its rules are out of its cluster's configuration.
pub const POLICY_FINALIZER: &str = "mqtt.tern.dev/acl-rules";

/// How often a policy is re-checked anyway.
const RESYNC_INTERVAL: Duration = Duration::from_secs(300);

/// Condition types of an `AclPolicy`.
pub mod types {
    /// The rules are valid and the cluster exists.
    pub const ACCEPTED: &str = "Accepted";
    /// The rules are in the cluster's rendered configuration.
    pub const APPLIED: &str = "Applied";
}

/// Brings one policy's status (and, on deletion, its cluster) in line.
pub async fn reconcile_policy(policy: Arc<AclPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let key = object_key(policy.as_ref());
    let api: Api<AclPolicy> =
        Api::namespaced(ctx.client.clone(), &policy.namespace().unwrap_or_default());
    let result = finalizer(&api, POLICY_FINALIZER, policy, |event| async {
        match event {
            FinalizerEvent::Apply(policy) => report_policy(&policy, &ctx).await,
            FinalizerEvent::Cleanup(policy) => remove_rules(&policy, &ctx).await,
        }
    })
    .await
    .map_err(|error| Error::Finalizer(Box::new(error)));
    ctx.metrics.observe("AclPolicy", started.elapsed(), &result);
    if result.is_ok() {
        ctx.backoff.reset(&key);
    }
    result
}

async fn find_cluster(ctx: &Context, policy: &AclPolicy) -> Result<Option<MqttCluster>, Error> {
    let namespace = policy.namespace().unwrap_or_default();
    let name = &policy.spec.cluster_ref.name;
    Api::<MqttCluster>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(name)
        .await
        .map_err(Error::kube(format!("read MqttCluster {namespace}/{name}")))
}

/// The policy is going away: re-render its cluster without it (the cluster reconciler skips
/// policies being deleted), then let the finalizer go.
async fn remove_rules(policy: &AclPolicy, ctx: &Context) -> Result<Action, Error> {
    if let Some(cluster) = find_cluster(ctx, policy).await? {
        converge_cluster(&cluster, ctx).await?;
    }
    Ok(Action::await_change())
}

async fn report_policy(policy: &AclPolicy, ctx: &Context) -> Result<Action, Error> {
    let cluster = find_cluster(ctx, policy).await?;
    let accepted = accepted_condition(policy, cluster.is_some());
    let (applied, config_revision) = if accepted.status {
        let pods = cluster
            .as_ref()
            .and_then(|cluster| cluster.status.as_ref())
            .map(|status| status.pods.as_slice())
            .unwrap_or_default();
        applied_condition(ctx, policy, pods).await?
    } else {
        (
            ConditionUpdate::fails(types::APPLIED, "NotAccepted", "the policy is not accepted"),
            None,
        )
    };

    let previous = policy.status.clone().unwrap_or_default();
    let generation = policy.meta().generation;
    let mut status = AclPolicyStatus {
        observed_generation: generation,
        conditions: previous.conditions.clone(),
        config_revision,
    };
    let now = Timestamp::now();
    let refused = (!accepted.status).then(|| (accepted.reason, accepted.message.clone()));
    set_condition(&mut status.conditions, accepted, generation, now);
    set_condition(&mut status.conditions, applied, generation, now);
    if status != previous {
        if let Some((reason, message)) = refused {
            let was_refused_alike = previous
                .conditions
                .iter()
                .any(|c| c.type_ == types::ACCEPTED && c.status == "False" && c.reason == reason);
            if !was_refused_alike {
                publish_refusal(ctx, policy, reason, message).await;
            }
        }
        write_status(ctx, policy, &status).await?;
    }
    Ok(Action::requeue(RESYNC_INTERVAL))
}

/// `Accepted`: the rules are valid and the cluster they name exists.
fn accepted_condition(policy: &AclPolicy, cluster_exists: bool) -> ConditionUpdate {
    if let Err(problem) = validate_rules(&policy.spec.rules) {
        return ConditionUpdate::fails(types::ACCEPTED, "InvalidRules", problem.to_string());
    }
    if !cluster_exists {
        return ConditionUpdate::fails(
            types::ACCEPTED,
            "ClusterNotFound",
            format!(
                "MqttCluster `{}` does not exist in this namespace",
                policy.spec.cluster_ref.name
            ),
        );
    }
    ConditionUpdate::holds(types::ACCEPTED, "Valid", "the rules are valid")
}

/// `Applied`: the cluster's ConfigMap holds exactly these rules under this policy's name. Read
/// from the ConfigMap itself rather than assumed, and paired with that ConfigMap's revision.
async fn applied_condition(
    ctx: &Context,
    policy: &AclPolicy,
    pods: &[PodConfigRevision],
) -> Result<(ConditionUpdate, Option<String>), Error> {
    let namespace = policy.namespace().unwrap_or_default();
    let config_map_name = config_map_name(&policy.spec.cluster_ref.name);
    let config_map = Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&config_map_name)
        .await
        .map_err(Error::kube(format!("read ConfigMap {config_map_name}")))?;
    let revision = config_map
        .as_ref()
        .and_then(|cm| cm.annotations().get(CONFIG_REVISION_ANNOTATION).cloned());
    let written: Vec<BrokerAclPolicy> = config_map
        .as_ref()
        .and_then(|cm| cm.data.as_ref())
        .and_then(|data| data.get(files::POLICIES))
        .and_then(|text| yaml_serde::from_str(text).ok())
        .unwrap_or_default();
    let name = policy.name_any();
    let in_config = written
        .iter()
        .any(|entry| entry.name == name && entry.rules == policy.spec.rules);
    Ok(if in_config {
        let running = revision.as_deref().map_or(0, |revision| {
            pods.iter()
                .filter(|pod| pod.reports_running(revision))
                .count()
        });
        (
            ConditionUpdate::holds(
                types::APPLIED,
                "InConfiguration",
                format!(
                    "the rules are in configuration revision {}; {running} of {} broker(s) \
                     report running it",
                    revision.as_deref().unwrap_or("unknown"),
                    pods.len()
                ),
            ),
            revision,
        )
    } else {
        (
            ConditionUpdate::fails(
                types::APPLIED,
                "Pending",
                "waiting for the cluster's configuration to include the rules",
            ),
            None,
        )
    })
}

async fn write_status(
    ctx: &Context,
    policy: &AclPolicy,
    status: &AclPolicyStatus,
) -> Result<(), Error> {
    let namespace = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let api: Api<AclPolicy> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = json!({
        "apiVersion": AclPolicy::api_version(&()),
        "kind": AclPolicy::kind(&()),
        "status": status,
    });
    api.patch_status(&name, &apply_params(), &Patch::Apply(&patch))
        .await
        .map_err(Error::kube(format!(
            "write status of AclPolicy {namespace}/{name}"
        )))?;
    Ok(())
}

async fn publish_refusal(ctx: &Context, policy: &AclPolicy, reason: &str, message: String) {
    let event = Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(message),
        action: "Validate".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &policy.object_ref(&())).await {
        tracing::warn!(%error, policy = %policy.name_any(), "cannot publish event");
    }
}
