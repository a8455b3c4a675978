//! From an accepted TCP socket to an MQTT byte stream: the TLS handshake and WebSocket upgrade a
//! listener asks for, each within the connect timeout, then the connection proper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use super::websocket;
use crate::broker::Broker;
use crate::config::{ListenerConfig, ListenerProtocol};
use crate::connection::{self, ClientOrigin};

/// Serves one accepted socket of listener `config` until the client goes away.
///
/// The listener's TLS material is looked up in the live configuration at this moment, so a
/// certificate rotated by a reload applies to this handshake while open connections keep the
/// session they negotiated.
pub async fn serve_socket(
    stream: TcpStream,
    peer: SocketAddr,
    config: ListenerConfig,
    broker: Arc<Broker>,
) {
    let _ = stream.set_nodelay(true);
    let live = broker.config();
    let timeout = Duration::from_secs(u64::from(live.config.limits.connect_timeout.max(1)));
    let max_frame = live.config.limits.max_packet_size as usize;
    let tls = config.tls.as_ref().and(live.tls.get(&config.name).cloned());
    drop(live);
    let listener: Arc<str> = Arc::from(config.name.as_str());
    let origin = |peer_certificate| ClientOrigin {
        peer,
        listener: listener.clone(),
        peer_certificate,
    };
    match tls {
        None => upgrade_and_serve(stream, origin(None), &config, max_frame, timeout, broker).await,
        Some(server_config) => {
            let handshake = TlsAcceptor::from(server_config).accept(stream);
            let stream = match tokio::time::timeout(timeout, handshake).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    debug!(listener = %config.name, %peer, %error, "TLS handshake failed");
                    broker.metrics.connection_rejected("tls_handshake");
                    return;
                }
                Err(_) => {
                    broker.metrics.connection_rejected("tls_handshake");
                    return;
                }
            };
            let peer_certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| leaf.as_ref().to_vec().into_boxed_slice());
            upgrade_and_serve(
                stream,
                origin(peer_certificate),
                &config,
                max_frame,
                timeout,
                broker,
            )
            .await
        }
    }
}

async fn upgrade_and_serve<S>(
    stream: S,
    origin: ClientOrigin,
    config: &ListenerConfig,
    max_frame: usize,
    timeout: Duration,
    broker: Arc<Broker>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    match config.protocol {
        ListenerProtocol::Mqtt => connection::serve(stream, origin, broker).await,
        ListenerProtocol::Websocket => {
            let upgrade = websocket::accept(stream, config.websocket_path(), max_frame);
            match tokio::time::timeout(timeout, upgrade).await {
                Ok(Ok(stream)) => connection::serve(stream, origin, broker).await,
                Ok(Err(error)) => {
                    debug!(listener = %config.name, peer = %origin.peer, %error, "WebSocket upgrade failed");
                    broker.metrics.connection_rejected("websocket_upgrade");
                }
                Err(_) => broker.metrics.connection_rejected("websocket_upgrade"),
            }
        }
    }
}
