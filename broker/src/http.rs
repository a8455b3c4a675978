//! The HTTP side of the broker: `/metrics` for Prometheus, `/healthz` and `/readyz` for
//! Kubernetes probes, `/revision` for the operator (which rendering is in force).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, TextEncoder};
use tokio::net::TcpListener;

use crate::broker::Broker;
use crate::config::RenderedRevision;

/// Serves the endpoints on `socket` until the broker shuts down.
pub async fn serve(broker: Arc<Broker>, socket: TcpListener) {
    let shutdown = broker.shutdown.clone();
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/revision", get(revision))
        .with_state(broker);
    let result = axum::serve(socket, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = result {
        tracing::warn!(%error, "metrics server stopped");
    }
}

async fn metrics(State(broker): State<Arc<Broker>>) -> Response {
    let families = broker.metrics.registry.gather();
    let mut body = Vec::new();
    match TextEncoder::new().encode(&families, &mut body) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: a valid configuration is loaded and every listener is bound.
/// The revision in force, ready or not: the one the operator rendered (from the
/// `renderedRevisionFiles`), else the broker's own content hash. 503 while the mounted files
/// disagree, i.e. the volume holds parts of two renderings.
async fn revision(State(broker): State<Arc<Broker>>) -> Response {
    let config = broker.config();
    match &config.rendered_revision {
        RenderedRevision::Is(revision) => (StatusCode::OK, format!("{revision}\n")),
        RenderedRevision::Unknown => (StatusCode::OK, format!("{}\n", config.revision)),
        RenderedRevision::Mixed(revisions) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "rendered revision files disagree: {}\n",
                revisions.join(", ")
            ),
        ),
    }
    .into_response()
}

async fn readyz(State(broker): State<Arc<Broker>>) -> Response {
    match broker.readiness_problem() {
        None => (
            StatusCode::OK,
            format!("ready revision={}\n", broker.config().revision),
        )
            .into_response(),
        Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n")).into_response(),
    }
}
