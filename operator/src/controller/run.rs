//! Wiring: which watches trigger which reconciler, and running both until shutdown.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::cluster::{object_key, reconcile_cluster};
use super::context::{Context, Error};
use super::policy::reconcile_policy;
use crate::crd::{AclPolicy, MqttCluster};
use crate::render::FIELD_MANAGER;

/// Selects the objects the operator created (its children), so watches ignore everything else.
fn children() -> watcher::Config {
    watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={FIELD_MANAGER}"))
}

/// An API over one namespace, or all of them.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()> + DeserializeOwned,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Runs the `MqttCluster` and `AclPolicy` controllers until `shutdown` completes; in-flight
/// reconciliations finish first.
pub async fn run_controllers<S>(ctx: Arc<Context>, namespace: Option<String>, shutdown: S)
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let client = ctx.client.clone();
    let namespace = namespace.as_deref();

    let clusters = Controller::new(
        scoped::<MqttCluster>(&client, namespace),
        watcher::Config::default(),
    );
    let cluster_store = clusters.store();
    let secret_cluster_store = cluster_store.clone();
    let clusters = clusters
        .owns(scoped::<StatefulSet>(&client, namespace), children())
        .owns(scoped::<ConfigMap>(&client, namespace), children())
        .owns(scoped::<Service>(&client, namespace), children())
        .watches(
            scoped::<AclPolicy>(&client, namespace),
            watcher::Config::default(),
            |policy| {
                let namespace = policy.namespace().unwrap_or_default();
                Some(ObjectRef::new(&policy.spec.cluster_ref.name).within(&namespace))
            },
        )
        // Every Secret: a user's password or a certificate Secret changes without the cluster
        // changing, and must still reach the brokers. Also the operator's own Secret (drift).
        .watches(
            scoped::<Secret>(&client, namespace),
            watcher::Config::default(),
            move |secret| {
                let namespace = secret.namespace().unwrap_or_default();
                let name = secret.name_any();
                secret_cluster_store
                    .state()
                    .into_iter()
                    .filter(|cluster| cluster.namespace().as_deref() == Some(namespace.as_str()))
                    .filter(|cluster| {
                        cluster.spec.referenced_secrets().contains(name.as_str())
                            || secret.owner_references().iter().any(|owner| {
                                owner.kind == "MqttCluster" && owner.name == cluster.name_any()
                            })
                    })
                    .map(|cluster| ObjectRef::from_obj(cluster.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile_cluster, retry_later, ctx.clone())
        .for_each(|result| {
            ctx.metrics
                .set_managed("MqttCluster", cluster_store.state().len());
            log_outcome(result)
        });

    let policies = Controller::new(
        scoped::<AclPolicy>(&client, namespace),
        watcher::Config::default(),
    );
    let policy_store = policies.store();
    let by_cluster = |store: kube::runtime::reflector::Store<AclPolicy>| {
        move |namespace: String, cluster: String| {
            store
                .state()
                .into_iter()
                .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
                .filter(|p| p.spec.cluster_ref.name == cluster)
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    let policies_of_config = by_cluster(policy_store.clone());
    let policies_of_cluster = by_cluster(policy_store.clone());
    let policies = policies
        // The cluster's ConfigMap decides `Applied`.
        .watches(
            scoped::<ConfigMap>(&client, namespace),
            children(),
            move |config_map| {
                let owner = config_map
                    .owner_references()
                    .iter()
                    .find(|owner| owner.kind == "MqttCluster")
                    .map(|owner| owner.name.clone());
                match owner {
                    Some(cluster) => {
                        policies_of_config(config_map.namespace().unwrap_or_default(), cluster)
                    }
                    None => Vec::new(),
                }
            },
        )
        // A cluster appearing or disappearing decides `Accepted`.
        .watches(
            scoped::<MqttCluster>(&client, namespace),
            watcher::Config::default(),
            move |cluster| {
                policies_of_cluster(cluster.namespace().unwrap_or_default(), cluster.name_any())
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile_policy, retry_later, ctx.clone())
        .for_each(|result| {
            ctx.metrics
                .set_managed("AclPolicy", policy_store.state().len());
            log_outcome(result)
        });

    futures::join!(clusters, policies);
}

/// The error policy of both controllers: log, and retry with per-object exponential backoff.
fn retry_later<K: Resource>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = object_key(object.as_ref());
    let delay = ctx.backoff.next_delay(&key);
    tracing::warn!(object = %key, %error, retry_in = ?delay, "reconciliation failed");
    Action::requeue(delay)
}

async fn log_outcome<K, E1, E2>(
    result: Result<(ObjectRef<K>, Action), kube::runtime::controller::Error<E1, E2>>,
) where
    K: Resource,
    K::DynamicType: std::fmt::Debug + Clone + Eq + std::hash::Hash,
    E1: std::error::Error + 'static,
    E2: std::error::Error + 'static,
{
    match result {
        Ok((object, _)) => tracing::debug!(%object, "reconciled"),
        // Reconciler errors are logged by `retry_later`; these are watch and queue errors.
        Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
        Err(error) => tracing::warn!(%error, "controller error"),
    }
}
