//! What every reconciliation shares, and how it fails.

use kube::api::ApiResource;
use kube::runtime::events::Recorder;
use kube::Client;

use super::backoff::ErrorBackoff;
use super::material::MaterialError;
use super::propagation::PropagationChecks;
use crate::metrics::OperatorMetrics;

/// Shared state of both reconcilers.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Publishes Kubernetes Events about the resources being reconciled.
    pub recorder: Recorder,
    /// The operator's Prometheus metrics.
    pub metrics: OperatorMetrics,
    /// The broker image for clusters whose spec names none.
    pub default_image: String,
    /// The PodDisruptionBudget API the server serves (`policy/v1`, or `policy/v1beta1` before
    /// Kubernetes 1.21), found once at startup.
    pub disruption_budget_api: ApiResource,
    /// Retry delays of objects whose reconciliation failed.
    pub backoff: ErrorBackoff,
    /// When to look again at clusters whose brokers do not run the rendered configuration.
    pub propagation: PropagationChecks,
}

/// Why a reconciliation failed. API errors are retried with backoff; problems with the user's
/// resources are reported in status conditions instead and are not errors here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What the operator was doing.
        action: String,
        /// The client's error.
        source: kube::Error,
    },
    /// An object could not be converted for the API.
    #[error("{action}: {source}")]
    Json {
        /// What the operator was doing.
        action: String,
        /// The serializer's error.
        source: serde_json::Error,
    },
    /// Adding or removing the `AclPolicy` finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Reading a referenced Secret failed for a reason other than a user mistake.
    #[error(transparent)]
    Material(#[from] MaterialError),
}

impl Error {
    /// Wraps a client error with what was being done.
    pub fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }

    /// A short, bounded label for the errors metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Json { .. } => "serialization",
            Error::Finalizer(_) => "finalizer",
            Error::Material(_) => "secret",
        }
    }
}
