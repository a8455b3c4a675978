//! Starting and stopping a whole broker: bind listeners, start background tasks (metrics,
//! keep-alive sweeper, `$SYS`, configuration reloads), and shut down gracefully (stop
//! accepting, tell 5.0 clients 0x8B, flush, wait for connections to end).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::config::{watch, ConfigWatch, LoadedConfig};
use crate::listener::{BindError, Listeners};
use crate::reload::Reloader;
use crate::sys;

/// How long shutdown waits for connections to flush and close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener's (or the metrics endpoint's) socket could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The configuration directory cannot be watched for changes.
    #[error("cannot watch the configuration at {path}: {source}")]
    Watch {
        /// What was to be watched.
        path: PathBuf,
        /// Underlying error.
        source: notify::Error,
    },
}

/// A running broker.
pub struct RunningServer {
    /// The shared broker state.
    pub broker: Arc<Broker>,
    /// The listening sockets.
    pub listeners: Arc<Listeners>,
    /// Address of the metrics and health endpoint, when enabled.
    pub metrics_address: Option<SocketAddr>,
    reload_requests: Option<mpsc::Sender<()>>,
    _watch: Option<ConfigWatch>,
    background: TaskTracker,
}

/// Binds every listener of `config` and starts serving. With `source` (where the configuration
/// was read from) the broker also watches it and applies changes live.
pub async fn start(
    config: LoadedConfig,
    source: Option<PathBuf>,
) -> Result<RunningServer, StartError> {
    let listener_configs = config.config.listeners.clone();
    let metrics_config = config.config.metrics.clone();
    info!(revision = %config.revision, "starting broker");
    // Watch before anything else reads the files, so no change can slip between the read that
    // produced `config` and the start of the watch unnoticed (a late event costs a re-read).
    let watched = match &source {
        Some(path) => Some(watch(path).map_err(|source| StartError::Watch {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    let broker = Broker::new(config);
    let background = TaskTracker::new();
    let listeners = Arc::new(Listeners::new(broker.clone()));
    if let Err(error) = listeners.start(&listener_configs).await {
        listeners.stop_all();
        return Err(error.into());
    }
    let mut metrics_address = None;
    if metrics_config.enabled {
        let address = SocketAddr::new(metrics_config.bind, metrics_config.port);
        let socket = match tokio::net::TcpListener::bind(address).await {
            Ok(socket) => socket,
            Err(source) => {
                listeners.stop_all();
                return Err(StartError::Bind(BindError {
                    name: "metrics".into(),
                    address,
                    source,
                }));
            }
        };
        let bound = socket.local_addr().unwrap_or(address);
        info!(address = %bound, "metrics and health endpoints listening");
        metrics_address = Some(bound);
        background.spawn(crate::http::serve(broker.clone(), socket));
    }
    background.spawn(broker.clone().sweep_connections());
    background.spawn(sys::publish_periodically(broker.clone()));
    let mut reload_requests = None;
    let mut watch_handle = None;
    if let (Some(path), Some((handle, changes))) = (source, watched) {
        let (requests, requested) = mpsc::channel(1);
        let reloader = Reloader::new(broker.clone(), listeners.clone(), path);
        background.spawn(reloader.run(changes, requested));
        reload_requests = Some(requests);
        watch_handle = Some(handle);
    }
    broker.metrics.config_applied(&broker.config().revision);
    broker.set_readiness(None);
    Ok(RunningServer {
        broker,
        listeners,
        metrics_address,
        reload_requests,
        _watch: watch_handle,
        background,
    })
}

impl RunningServer {
    /// Asks for the configuration to be re-read now (SIGHUP). Does nothing for a broker
    /// running the embedded default, which has no files to re-read.
    pub fn request_reload(&self) {
        if let Some(requests) = &self.reload_requests {
            // A full channel means a reload is already pending: that one will do.
            let _ = requests.try_send(());
        }
    }

    /// Names and bound addresses of the listeners.
    pub fn listener_addresses(&self) -> Vec<(String, SocketAddr)> {
        self.listeners.addresses()
    }

    /// Stops accepting, asks every connection to close (5.0 clients get DISCONNECT 0x8B),
    /// and waits up to a grace period for them to flush.
    pub async fn shutdown(self) {
        info!("shutting down");
        self.broker.set_readiness(Some("shutting down".into()));
        self.broker.shutdown.cancel();
        self.listeners.stop_all();
        self.broker
            .kick_all(crate::protocol::ReasonCode::ServerShuttingDown);
        self.background.close();
        let connections = &self.broker.connections;
        connections.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait())
            .await
            .is_err()
        {
            warn!(
                remaining = connections.len(),
                "connections still open after the grace period"
            );
        }
        self.background.wait().await;
        info!("shutdown complete");
    }
}
