//! Binding listening sockets and accepting clients on them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::config::ListenerConfig;
use crate::connection;

/// Pending connections the kernel may queue per listener.
const ACCEPT_BACKLOG: u32 = 4096;

/// A bound listener, ready to accept.
pub struct BoundListener {
    /// Its configuration.
    pub config: ListenerConfig,
    /// The socket.
    pub socket: TcpListener,
}

impl BoundListener {
    /// Binds the socket described by `config`.
    ///
    /// The accept backlog is large (the kernel caps it at `net.core.somaxconn`) so that a
    /// reconnect storm — every client of a restarted pod coming back at once — queues in the
    /// kernel instead of having SYNs dropped and retried a second later. SO_REUSEADDR lets a
    /// restarted broker bind while old connections sit in TIME_WAIT.
    pub async fn bind(config: ListenerConfig) -> std::io::Result<BoundListener> {
        let address = SocketAddr::new(config.bind, config.port);
        let socket = if address.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(address)?;
        let socket = socket.listen(ACCEPT_BACKLOG)?;
        Ok(BoundListener { config, socket })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Accepts clients until the broker shuts down, serving each on its own task tracked by
    /// `connections` so shutdown can wait for them.
    pub async fn run(self, broker: Arc<Broker>, connections: TaskTracker) {
        let name: Arc<str> = Arc::from(self.config.name.as_str());
        info!(listener = %name, address = %self.local_addr().map(|a| a.to_string()).unwrap_or_default(), "listening");
        loop {
            let accepted = tokio::select! {
                accepted = self.socket.accept() => accepted,
                _ = broker.shutdown.cancelled() => break,
            };
            match accepted {
                Ok((stream, peer)) => {
                    broker.metrics.connections_accepted.inc();
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection::serve(
                        stream,
                        peer,
                        name.clone(),
                        broker.clone(),
                    ));
                }
                Err(error) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    warn!(listener = %name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        info!(listener = %name, "listener stopped");
    }
}
