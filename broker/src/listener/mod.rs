//! The broker's listening sockets, reconciled against the live configuration.
//!
//! [`Listeners`] keeps one accept loop per configured listener and, on every configuration
//! change, brings the running set in line with the new one:
//! - an unchanged listener (same name, address) is left alone — its socket is never closed, and
//!   a new protocol, path or TLS material applies to the next accepted client, because the
//!   accept loop reads its listener's settings from the live configuration at every accept;
//! - a new listener is bound and starts accepting;
//! - a moved listener (new port or bind address) binds its new socket *before* the old one
//!   stops, so a port move never refuses a client;
//! - a removed listener stops accepting; its connections stay unless
//!   `reload.closeRemovedListenerConnections` asks for them to be closed with 0x8B.
//!
//! A socket that cannot be bound on reload is retried every [`RETRY_INTERVAL`] while
//! `/readyz` reports it; at start-up the broker refuses to start instead.

mod accept;
mod websocket;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::config::ListenerConfig;
use crate::protocol::ReasonCode;

/// Pending connections the kernel may queue per listener.
///
/// Large (the kernel caps it at `net.core.somaxconn`) so that a reconnect storm — every client
/// of a restarted pod coming back at once — queues in the kernel instead of having SYNs dropped
/// and retried a second later.
const ACCEPT_BACKLOG: u32 = 4096;

/// How often listeners that could not be bound are tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(2);

/// A listener that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("listener `{name}` cannot bind {address}: {source}")]
pub struct BindError {
    /// Listener name.
    pub name: String,
    /// Address it tried.
    pub address: SocketAddr,
    /// Underlying error.
    pub source: std::io::Error,
}

/// One accept loop that is running.
struct RunningListener {
    /// The address the loop was bound for (as configured; port 0 stays 0).
    configured: SocketAddr,
    /// The address actually bound.
    bound: SocketAddr,
    /// Stops the accept loop.
    stop: CancellationToken,
}

/// The set of running listeners of one broker.
pub struct Listeners {
    broker: Arc<Broker>,
    running: Mutex<HashMap<String, RunningListener>>,
    /// Why the last reconcile left listeners unbound (shown by `/readyz`), by listener name.
    unbound: Mutex<HashMap<String, String>>,
}

impl Listeners {
    /// An empty set; connections it accepts are tracked by the broker's `connections`, so
    /// shutdown can wait for them.
    pub fn new(broker: Arc<Broker>) -> Listeners {
        Listeners {
            broker,
            running: Mutex::new(HashMap::new()),
            unbound: Mutex::new(HashMap::new()),
        }
    }

    /// Binds every listener of `desired` or fails on the first that cannot be bound; used at
    /// start-up, where a port conflict should stop the process with a clear error.
    pub async fn start(&self, desired: &[ListenerConfig]) -> Result<(), BindError> {
        for listener in desired {
            let socket = bind(listener).await?;
            self.launch(listener, socket);
        }
        Ok(())
    }

    /// Brings the running listeners in line with `desired` (see the module documentation).
    /// Returns whether every desired listener is now bound.
    pub async fn reconcile(&self, desired: &[ListenerConfig], close_removed: bool) -> bool {
        let removed: Vec<String> = {
            let running = self.running.lock();
            running
                .keys()
                .filter(|name| !desired.iter().any(|l| &l.name == *name))
                .cloned()
                .collect()
        };
        // Removals first: a new listener may want the address a removed one holds.
        for name in removed {
            self.stop(&name, close_removed);
        }
        let mut unbound = HashMap::new();
        for listener in desired {
            let address = configured_address(listener);
            let current = self
                .running
                .lock()
                .get(&listener.name)
                .map(|r| r.configured);
            if current == Some(address) {
                continue;
            }
            if let Some(old) = current {
                // Moving: if another listener still holds the new address it will not bind,
                // and the old socket keeps serving until it does.
                info!(listener = %listener.name, from = %old, to = %address, "moving listener");
            }
            match bind(listener).await {
                Ok(socket) => {
                    if current.is_some() {
                        self.stop(&listener.name, false);
                    }
                    self.launch(listener, socket);
                }
                Err(error) => {
                    warn!(%error, "listener not bound; retrying");
                    unbound.insert(listener.name.clone(), error.to_string());
                }
            }
        }
        let all_bound = unbound.is_empty();
        *self.unbound.lock() = unbound;
        all_bound
    }

    /// Why some listeners are not bound, for `/readyz`; `None` when all are.
    pub fn problem(&self) -> Option<String> {
        let unbound = self.unbound.lock();
        if unbound.is_empty() {
            return None;
        }
        let mut problems: Vec<&String> = unbound.values().collect();
        problems.sort();
        Some(
            problems
                .into_iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// Names and bound addresses of the running listeners, sorted by name.
    pub fn addresses(&self) -> Vec<(String, SocketAddr)> {
        let mut addresses: Vec<(String, SocketAddr)> = self
            .running
            .lock()
            .iter()
            .map(|(name, running)| (name.clone(), running.bound))
            .collect();
        addresses.sort();
        addresses
    }

    /// Stops every accept loop (shutdown).
    pub fn stop_all(&self) {
        for (_, running) in self.running.lock().drain() {
            running.stop.cancel();
        }
    }

    fn stop(&self, name: &str, close_connections: bool) {
        let Some(running) = self.running.lock().remove(name) else {
            return;
        };
        running.stop.cancel();
        info!(listener = %name, address = %running.bound, "listener removed");
        if close_connections {
            self.broker
                .kick_listener(name, ReasonCode::ServerShuttingDown);
        }
    }

    fn launch(&self, config: &ListenerConfig, socket: TcpListener) {
        let bound = socket
            .local_addr()
            .unwrap_or_else(|_| configured_address(config));
        let stop = self.broker.shutdown.child_token();
        info!(listener = %config.name, address = %bound, protocol = ?config.protocol, tls = config.tls.is_some(), "listening");
        self.broker.connections.spawn(accept_loop(
            socket,
            config.name.clone(),
            self.broker.clone(),
            stop.clone(),
        ));
        self.running.lock().insert(
            config.name.clone(),
            RunningListener {
                configured: configured_address(config),
                bound,
                stop,
            },
        );
    }
}

fn configured_address(listener: &ListenerConfig) -> SocketAddr {
    SocketAddr::new(listener.bind, listener.port)
}

/// Binds the socket of `config`. SO_REUSEADDR lets a restarted broker bind while old
/// connections sit in TIME_WAIT.
async fn bind(config: &ListenerConfig) -> Result<TcpListener, BindError> {
    let address = configured_address(config);
    let bind_error = |source| BindError {
        name: config.name.clone(),
        address,
        source,
    };
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind_error)?;
    socket.set_reuseaddr(true).map_err(bind_error)?;
    socket.bind(address).map_err(bind_error)?;
    socket.listen(ACCEPT_BACKLOG).map_err(bind_error)
}

/// Accepts clients until `stop`, serving each on its own task.
async fn accept_loop(
    socket: TcpListener,
    name: String,
    broker: Arc<Broker>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = socket.accept() => accepted,
            _ = stop.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                broker.metrics.connections_accepted.inc();
                // The listener's settings as of now: a reload may have changed its protocol,
                // path or TLS material since the socket was bound.
                let live = broker.config();
                let Some(config) = live.config.listeners.iter().find(|l| l.name == name) else {
                    continue;
                };
                let serve = accept::serve_socket(stream, peer, config, broker.clone());
                broker.connections.spawn(serve);
            }
            Err(error) => {
                // Typically EMFILE: back off briefly instead of spinning.
                warn!(listener = %name, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    info!(listener = %name, "listener stopped accepting");
}
