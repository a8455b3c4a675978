//! The operator's HTTP endpoint: `/metrics`, `/healthz` and `/readyz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::OperatorMetrics;

/// What the endpoint reports.
#[derive(Clone)]
pub struct HttpState {
    /// The metrics to expose.
    pub metrics: OperatorMetrics,
    /// Set once the operator is connected and either running its controllers or waiting as a
    /// standby for the leader lease — both are healthy states for a rollout to proceed.
    pub ready: Arc<AtomicBool>,
}

/// The routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Serves the routes on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: HttpState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(ready: bool, path: &str) -> (u16, String) {
        let state = HttpState {
            metrics: OperatorMetrics::new().unwrap_or_else(|error| panic!("{error}")),
            ready: Arc::new(AtomicBool::new(ready)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("{error}"));
        let server = tokio::spawn(serve(listener, state, std::future::pending()));
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let mut response = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut response)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        server.abort();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        (status, body)
    }

    #[tokio::test]
    async fn readyz_is_503_until_the_operator_is_ready() {
        assert_eq!(get(false, "/readyz").await.0, 503);
    }

    #[tokio::test]
    async fn readyz_is_200_once_ready() {
        assert_eq!(get(true, "/readyz").await.0, 200);
    }

    #[tokio::test]
    async fn metrics_serve_the_operator_metric_families() {
        let (_, body) = get(true, "/metrics").await;
        assert!(body.contains("tern_operator_leader"), "{body}");
    }
}
