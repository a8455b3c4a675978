//! Running the operator: connect, serve metrics, win the leader election, reconcile until told
//! to stop (or until leadership is lost), then release the lease.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{FusedFuture, FutureExt};
use kube::runtime::events::{Recorder, Reporter};
use kube::Client;

use crate::controller::{run_controllers, Context, ErrorBackoff, PropagationChecks};
use crate::http::{self, HttpState};
use crate::leader::{LeaderElector, LeaseSettings};
use crate::metrics::{MetricsError, OperatorMetrics};
use crate::shutdown::shutdown_signal;

/// Everything the operator is started with (the binary's flags).
#[derive(Debug, Clone)]
pub struct OperatorSettings {
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub metrics_bind: SocketAddr,
    /// Watch these namespaces only; all namespaces when empty.
    pub watch_namespaces: Vec<String>,
    /// Whether to take part in leader election (needed with more than one replica).
    pub leader_election: bool,
    /// Name of the leader Lease.
    pub lease_name: String,
    /// Namespace of the leader Lease; the client's default namespace when `None`.
    pub lease_namespace: Option<String>,
    /// This replica's identity in the election and in Events.
    pub identity: String,
    /// Broker image for clusters that name none.
    pub broker_image: String,
}

/// Why the operator stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("cannot create a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The API server does not serve PodDisruptionBudgets (or discovery failed).
    #[error("cannot discover the PodDisruptionBudget API: {0}")]
    Discovery(String),
    /// Metrics could not be registered.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The metrics endpoint could not bind.
    #[error("cannot serve metrics on {bind}: {source}")]
    Http {
        /// The address.
        bind: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another replica took the leader lease; exiting lets Kubernetes restart this one as a
    /// standby, with no reconciliation in flight.
    #[error("leadership lost")]
    LeadershipLost,
}

/// Selects rustls' `ring` provider for the Kubernetes client's TLS. Call before creating a
/// client; calling again is harmless.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs the operator until SIGTERM/Ctrl-C (Ok) or a fatal error.
pub async fn run(settings: OperatorSettings) -> Result<(), AppError> {
    install_crypto_provider();
    let shutdown = shutdown_signal();
    let client = Client::try_default().await.map_err(AppError::Client)?;
    let metrics = OperatorMetrics::new()?;
    let ready = Arc::new(AtomicBool::new(false));

    let http_state = HttpState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let bind = settings.metrics_bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| AppError::Http { bind, source })?;
    tracing::info!(%bind, "serving /metrics, /healthz and /readyz");
    let http_task = tokio::spawn(http::serve(listener, http_state, shutdown.clone()));

    let ctx = Arc::new(
        build_context(
            client.clone(),
            metrics.clone(),
            &settings.broker_image,
            &settings.identity,
        )
        .await?,
    );

    let elector = settings.leader_election.then(|| {
        LeaderElector::new(
            client.clone(),
            LeaseSettings {
                name: settings.lease_name.clone(),
                namespace: settings
                    .lease_namespace
                    .clone()
                    .unwrap_or_else(|| client.default_namespace().to_string()),
                identity: settings.identity.clone(),
                lease_duration: Duration::from_secs(15),
                retry_period: Duration::from_secs(4),
            },
        )
    });
    // A standby waiting for the lease is healthy: ready now.
    ready.store(true, Ordering::Relaxed);
    if let Some(elector) = &elector {
        tracing::info!(identity = %settings.identity, "waiting for the leader lease");
        tokio::select! {
            () = elector.acquire() => {}
            () = shutdown.clone() => return finish(http_task).await,
        }
        tracing::info!("acquired the leader lease");
    }
    metrics.set_leader(true);

    let (stop_controllers, controllers_stopped) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        let _ = controllers_stopped.await;
    }
    .boxed()
    .shared();
    let controllers = run_controllers(ctx, settings.watch_namespaces.clone(), stop).fuse();
    let lease_lost = async {
        match &elector {
            Some(elector) => elector.hold().await,
            None => std::future::pending().await,
        }
    };
    futures::pin_mut!(controllers);
    let mut leadership_lost = false;
    tokio::select! {
        () = shutdown.clone() => {}
        () = lease_lost => leadership_lost = true,
        () = &mut controllers => {}
    }
    let _ = stop_controllers.send(());
    if !controllers.is_terminated() {
        controllers.await;
    }
    metrics.set_leader(false);
    if let Some(elector) = &elector {
        if let Err(error) = elector.release().await {
            tracing::warn!(%error, "cannot release the leader lease");
        }
    }
    if leadership_lost {
        return Err(AppError::LeadershipLost);
    }
    finish(http_task).await
}

async fn finish(http_task: tokio::task::JoinHandle<std::io::Result<()>>) -> Result<(), AppError> {
    match http_task.await {
        Ok(Err(error)) => tracing::warn!(%error, "metrics endpoint failed"),
        Err(error) => tracing::warn!(%error, "metrics endpoint task failed"),
        Ok(Ok(())) => {}
    }
    Ok(())
}

/// The reconcilers' shared context for `client`: discovers the PodDisruptionBudget version the
/// server serves and sets up the Event recorder under `identity`.
pub async fn build_context(
    client: Client,
    metrics: OperatorMetrics,
    broker_image: &str,
    identity: &str,
) -> Result<Context, AppError> {
    let disruption_budget_api = discover_disruption_budget_api(&client).await?;
    Ok(Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "tern-operator".into(),
                instance: Some(identity.to_string()),
            },
        ),
        client,
        metrics,
        default_image: broker_image.to_string(),
        disruption_budget_api,
        backoff: ErrorBackoff::default(),
        propagation: PropagationChecks::default(),
    })
}

/// The PodDisruptionBudget API the server prefers: `policy/v1` where served, `policy/v1beta1`
/// on servers older than Kubernetes 1.21.
async fn discover_disruption_budget_api(
    client: &Client,
) -> Result<kube::api::ApiResource, AppError> {
    let group = kube::discovery::group(client, "policy")
        .await
        .map_err(|error| AppError::Discovery(error.to_string()))?;
    group
        .recommended_kind("PodDisruptionBudget")
        .map(|(resource, _)| resource)
        .ok_or_else(|| {
            AppError::Discovery("the policy API group has no PodDisruptionBudget".into())
        })
}
