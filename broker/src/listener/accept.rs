//! From an accepted TCP socket to an MQTT byte stream: the TLS handshake and WebSocket upgrade a
//! listener asks for, each within the connect timeout, then the connection proper.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use super::websocket;
use crate::broker::Broker;
use crate::config::{ListenerConfig, ListenerProtocol};
use crate::connection::{self, ClientOrigin, Transport};

/// Serves one accepted socket of listener `config` until the client goes away.
///
/// The listener's TLS material is looked up in the live configuration at this moment, so a
/// certificate rotated by a reload applies to this handshake while open connections keep the
/// session they negotiated.
///
/// The returned future is every client's task, so it is kept small: the decisions that need
/// the listener's configuration are made here, before the future exists, rather than in an
/// async fn that would carry its arguments for the connection's whole life. A plain MQTT
/// client — the common case — is served by the connection's own small future; TLS and
/// WebSocket clients through a boxed future: a rustls handshake alone is over ten kilobytes,
/// which every idle plain client would otherwise carry.
pub fn serve_socket(
    stream: TcpStream,
    peer: SocketAddr,
    config: &ListenerConfig,
    broker: Arc<Broker>,
) -> impl Future<Output = ()> + Send + 'static {
    let _ = stream.set_nodelay(true);
    let live = broker.config();
    let tls = config.tls.as_ref().and(live.tls.get(&config.name).cloned());
    let settings = Settings {
        timeout: Duration::from_secs(u64::from(live.config.limits.connect_timeout.max(1))),
        max_frame: live.config.limits.max_packet_size as usize,
    };
    drop(live);
    let origin = ClientOrigin {
        peer,
        listener: Arc::from(config.name.as_str()),
        peer_certificate: None,
    };
    if tls.is_none() && config.protocol == ListenerProtocol::Mqtt {
        return Either::Left(connection::serve(stream, origin, broker));
    }
    Either::Right(Box::pin(serve_upgraded(
        stream,
        tls,
        origin,
        config.clone(),
        settings,
        broker,
    )))
}

/// Handshake limits taken from the live configuration when the client arrived.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// Time allowed for each handshake step (`limits.connectTimeout`).
    timeout: Duration,
    /// Largest WebSocket frame accepted (`limits.maxPacketSize`).
    max_frame: usize,
}

/// Completes the TLS handshake (with `tls`) and the WebSocket upgrade (on WebSocket
/// listeners), then serves the client over the resulting stream.
async fn serve_upgraded(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut origin: ClientOrigin,
    config: ListenerConfig,
    settings: Settings,
    broker: Arc<Broker>,
) {
    let Some(server_config) = tls else {
        return serve_protocol(stream, origin, &config, settings, broker).await;
    };
    let handshake = TlsAcceptor::from(server_config).accept(stream);
    let stream = match tokio::time::timeout(settings.timeout, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            debug!(listener = %config.name, peer = %origin.peer, %error, "TLS handshake failed");
            broker.metrics.connection_rejected("tls_handshake");
            return;
        }
        Err(_) => {
            broker.metrics.connection_rejected("tls_handshake");
            return;
        }
    };
    origin.peer_certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.as_ref().to_vec().into_boxed_slice());
    Box::pin(serve_protocol(stream, origin, &config, settings, broker)).await
}

/// Serves MQTT on `stream`, directly or inside WebSocket frames as the listener says.
async fn serve_protocol<S: Transport>(
    stream: S,
    origin: ClientOrigin,
    config: &ListenerConfig,
    settings: Settings,
    broker: Arc<Broker>,
) {
    match config.protocol {
        ListenerProtocol::Mqtt => connection::serve(stream, origin, broker).await,
        ListenerProtocol::Websocket => {
            let upgrade = websocket::accept(stream, config.websocket_path(), settings.max_frame);
            match tokio::time::timeout(settings.timeout, upgrade).await {
                Ok(Ok(stream)) => Box::pin(connection::serve(stream, origin, broker)).await,
                Ok(Err(error)) => {
                    debug!(listener = %config.name, peer = %origin.peer, %error, "WebSocket upgrade failed");
                    broker.metrics.connection_rejected("websocket_upgrade");
                }
                Err(_) => broker.metrics.connection_rejected("websocket_upgrade"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, LoadedConfig};

    /// Every client's task is a `serve_socket` future: TLS and WebSocket state must live in
    /// boxes of their own, or an idle plain TCP client carries them (a rustls handshake alone
    /// is over 10 KiB).
    #[tokio::test]
    async fn a_client_task_is_not_sized_for_tls() {
        let broker = Broker::new(
            LoadedConfig::from_config(BrokerConfig::embedded_default(), Default::default())
                .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let config = BrokerConfig::embedded_default().listeners.remove(0);
        let peer = client.local_addr().unwrap();

        let task = serve_socket(client, peer, &config, broker);

        assert!(
            std::mem::size_of_val(&task) <= 64,
            "{} bytes",
            std::mem::size_of_val(&task)
        );
    }
}
