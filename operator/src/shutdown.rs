//! Graceful shutdown: one future, cloneable to every part that must stop, that completes on
//! SIGTERM (what the kubelet sends) or Ctrl-C.

use futures::future::{BoxFuture, FutureExt, Shared};

/// Completes once the process is asked to stop; clones complete together.
pub type ShutdownSignal = Shared<BoxFuture<'static, ()>>;

/// Listens for SIGTERM and Ctrl-C. If a handler cannot be installed, that signal is only
/// logged as unavailable; the other still works.
pub fn shutdown_signal() -> ShutdownSignal {
    async {
        let ctrl_c = async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::warn!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        };
        let terminate = async {
            #[cfg(unix)]
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
            #[cfg(not(unix))]
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = ctrl_c => {}
            () = terminate => {}
        }
        tracing::info!("shutting down");
    }
    .boxed()
    .shared()
}
