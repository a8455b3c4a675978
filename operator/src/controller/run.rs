//! Wiring: which watches trigger which reconciler, and running both until shutdown.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
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
///
/// `namespaces` empty: one pair of controllers watches every namespace. Otherwise one pair per
/// listed namespace, each with its own watches, so the operator needs rights in those
/// namespaces only (a Role in each, no ClusterRole).
pub async fn run_controllers<S>(ctx: Arc<Context>, namespaces: Vec<String>, shutdown: S)
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let clusters = scopes
        .iter()
        .map(|namespace| cluster_controller(&ctx.client, namespace.as_deref()))
        .collect();
    let policies = scopes
        .iter()
        .map(|namespace| policy_controller(&ctx.client, namespace.as_deref()))
        .collect();
    futures::join!(
        drive(clusters, reconcile_cluster, &ctx, &shutdown),
        drive(policies, reconcile_policy, &ctx, &shutdown),
    );
}

/// Runs `controllers` (one per watched scope) with `reconcile` until `shutdown`, keeping the
/// managed-object gauge of their kind at the count over all of their caches.
async fn drive<K, R, Fut, S>(
    controllers: Vec<Controller<K>>,
    reconcile: R,
    ctx: &Arc<Context>,
    shutdown: &S,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync,
    K: 'static,
    R: FnMut(Arc<K>, Arc<Context>) -> Fut + Clone,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let stores: Arc<Vec<Store<K>>> = Arc::new(controllers.iter().map(Controller::store).collect());
    let runs = controllers.into_iter().map(|controller| {
        let (ctx, stores) = (ctx.clone(), stores.clone());
        controller
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile.clone(), retry_later, ctx.clone())
            .for_each(move |result| {
                ctx.metrics.set_managed(&K::kind(&()), cached(&stores));
                log_outcome(result)
            })
    });
    futures::future::join_all(runs).await;
}

/// Objects in a set of caches.
fn cached<K>(stores: &[Store<K>]) -> usize
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    stores.iter().map(|store| store.state().len()).sum()
}

/// `MqttCluster`s are reconciled when they change, when one of their children changes, when a
/// policy naming them changes, and when a Secret they read changes.
fn cluster_controller(client: &Client, namespace: Option<&str>) -> Controller<MqttCluster> {
    let controller = Controller::new(
        scoped::<MqttCluster>(client, namespace),
        watcher::Config::default(),
    );
    let known_clusters = controller.store();
    controller
        .owns(scoped::<StatefulSet>(client, namespace), children())
        .owns(scoped::<ConfigMap>(client, namespace), children())
        .owns(scoped::<Service>(client, namespace), children())
        .watches(
            scoped::<AclPolicy>(client, namespace),
            watcher::Config::default(),
            |policy| Some(cluster_of_policy(&policy)),
        )
        // Every Secret: a user's password or a certificate Secret changes without the cluster
        // changing, and must still reach the brokers. Also the operator's own Secret (drift).
        .watches(
            scoped::<Secret>(client, namespace),
            watcher::Config::default(),
            move |secret| clusters_reading_secret(&known_clusters, &secret),
        )
}

/// `AclPolicy`s are reconciled when they change, when their cluster's ConfigMap changes (which
/// decides `Applied`) and when their cluster appears or disappears (which decides `Accepted`).
fn policy_controller(client: &Client, namespace: Option<&str>) -> Controller<AclPolicy> {
    let controller = Controller::new(
        scoped::<AclPolicy>(client, namespace),
        watcher::Config::default(),
    );
    let policies = controller.store();
    let (for_config_maps, for_clusters) = (policies.clone(), policies);
    controller
        .watches(
            scoped::<ConfigMap>(client, namespace),
            children(),
            move |config_map| {
                let cluster = config_map
                    .owner_references()
                    .iter()
                    .find(|owner| owner.kind == MqttCluster::kind(&()))
                    .map(|owner| owner.name.clone());
                let namespace = config_map.namespace().unwrap_or_default();
                match cluster {
                    Some(cluster) => policies_naming(&for_config_maps, &namespace, &cluster),
                    None => Vec::new(),
                }
            },
        )
        .watches(
            scoped::<MqttCluster>(client, namespace),
            watcher::Config::default(),
            move |cluster| {
                let namespace = cluster.namespace().unwrap_or_default();
                policies_naming(&for_clusters, &namespace, &cluster.name_any())
            },
        )
}

/// The cluster a policy names (same namespace).
fn cluster_of_policy(policy: &AclPolicy) -> ObjectRef<MqttCluster> {
    let namespace = policy.namespace().unwrap_or_default();
    ObjectRef::new(&policy.spec.cluster_ref.name).within(&namespace)
}

/// The clusters that read `secret`, or own it (the operator's rendered Secret).
fn clusters_reading_secret(
    clusters: &Store<MqttCluster>,
    secret: &Secret,
) -> Vec<ObjectRef<MqttCluster>> {
    let namespace = secret.namespace();
    let name = secret.name_any();
    clusters
        .state()
        .into_iter()
        .filter(|cluster| cluster.namespace() == namespace)
        .filter(|cluster| {
            cluster.spec.referenced_secrets().contains(name.as_str())
                || secret.owner_references().iter().any(|owner| {
                    owner.kind == MqttCluster::kind(&()) && owner.name == cluster.name_any()
                })
        })
        .map(|cluster| ObjectRef::from_obj(cluster.as_ref()))
        .collect()
}

/// The policies in `namespace` that name the cluster `cluster`.
fn policies_naming(
    policies: &Store<AclPolicy>,
    namespace: &str,
    cluster: &str,
) -> Vec<ObjectRef<AclPolicy>> {
    policies
        .state()
        .into_iter()
        .filter(|policy| policy.namespace().as_deref() == Some(namespace))
        .filter(|policy| policy.spec.cluster_ref.name == cluster)
        .map(|policy| ObjectRef::from_obj(policy.as_ref()))
        .collect()
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
