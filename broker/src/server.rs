//! Starting and stopping a whole broker: bind listeners, start background tasks, and shut down
//! gracefully (stop accepting, tell 5.0 clients 0x8B, flush, wait for connections to end).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::config::LoadedConfig;
use crate::listener::BoundListener;
use crate::sys;

/// How long shutdown waits for connections to flush and close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener's socket could not be bound.
    #[error("listener `{name}` cannot bind {address}: {source}")]
    Bind {
        /// Listener name.
        name: String,
        /// Address it tried.
        address: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// A running broker.
pub struct RunningServer {
    /// The shared broker state.
    pub broker: Arc<Broker>,
    /// Listener names and the addresses they are bound to.
    pub listeners: Vec<(String, SocketAddr)>,
    connections: TaskTracker,
    background: TaskTracker,
}

/// Binds every listener of `config` and starts serving.
pub async fn start(config: LoadedConfig) -> Result<RunningServer, StartError> {
    let listener_configs = config.config.listeners.clone();
    let metrics_config = config.config.metrics.clone();
    let sys_interval = config.config.sys.interval_seconds;
    info!(revision = %config.revision, "starting broker");
    let broker = Broker::new(config);
    let mut bound = Vec::new();
    for listener in listener_configs {
        let address = SocketAddr::new(listener.bind, listener.port);
        let name = listener.name.clone();
        let socket = BoundListener::bind(listener)
            .await
            .map_err(|source| StartError::Bind {
                name,
                address,
                source,
            })?;
        bound.push(socket);
    }
    let connections = TaskTracker::new();
    let background = TaskTracker::new();
    let mut listeners = Vec::new();
    for socket in bound {
        let address = socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new(socket.config.bind, socket.config.port));
        listeners.push((socket.config.name.clone(), address));
        background.spawn(socket.run(broker.clone(), connections.clone()));
    }
    if metrics_config.enabled {
        let address = SocketAddr::new(metrics_config.bind, metrics_config.port);
        let socket = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| StartError::Bind {
                name: "metrics".into(),
                address,
                source,
            })?;
        info!(%address, "metrics and health endpoints listening");
        background.spawn(crate::http::serve(broker.clone(), socket));
    }
    background.spawn(broker.clone().sweep_keep_alives());
    if sys_interval > 0 {
        let interval = Duration::from_secs(u64::from(sys_interval));
        background.spawn(sys::publish_periodically(broker.clone(), interval));
    }
    broker.set_readiness(None);
    Ok(RunningServer {
        broker,
        listeners,
        connections,
        background,
    })
}

impl RunningServer {
    /// Stops accepting, asks every connection to close (5.0 clients get DISCONNECT 0x8B),
    /// and waits up to a grace period for them to flush.
    pub async fn shutdown(self) {
        info!("shutting down");
        self.broker.shutdown.cancel();
        self.broker
            .kick_all(crate::protocol::ReasonCode::ServerShuttingDown);
        self.background.close();
        self.connections.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.connections.wait())
            .await
            .is_err()
        {
            warn!(
                remaining = self.connections.len(),
                "connections still open after the grace period"
            );
        }
        self.background.wait().await;
        info!("shutdown complete");
    }
}
