//! MQTT over WebSocket (MQTT 5.0 §6, 3.1.1 §6): the HTTP upgrade, and a byte stream over binary
//! frames that the connection code reads and writes like a TCP socket.
//!
//! MQTT packets may span frames and frames may hold several packets, so the adapter simply
//! concatenates binary frame payloads (MQTT-6.0.0-2). A text frame is a protocol violation that
//! closes the connection (MQTT-6.0.0-1). Pings are answered by tungstenite itself.

use std::io;

use bytes::Bytes;
use futures_util::{future, SinkExt, StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::io::{CopyToBytes, SinkWriter, StreamReader};

use crate::connection::Transport;

/// Subprotocols a client may ask for, in order of preference: `mqtt` (3.1.1 and 5.0) and the
/// name some older 3.1 clients still send.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Completes the WebSocket upgrade on `stream`, refusing any path but `path` with 404, and
/// returns the MQTT byte stream carried in its binary frames.
///
/// `max_frame_size` bounds what one frame may make the broker buffer (the MQTT packet limit
/// applies on top, when packets are decoded).
pub async fn accept<S>(
    stream: S,
    path: &str,
    max_frame_size: usize,
) -> Result<impl Transport, io::Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    // The callback's signature, large error included, is tungstenite's.
    #[allow(clippy::result_large_err)]
    let check_request = |request: &Request, mut response: Response| {
        if request.uri().path() != path {
            let mut refusal = ErrorResponse::new(Some(format!(
                "no MQTT endpoint at {}",
                request.uri().path()
            )));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            return Err(refusal);
        }
        if let Some(chosen) = choose_subprotocol(request) {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(chosen),
            );
        }
        Ok(response)
    };
    let config = WebSocketConfig::default()
        .max_frame_size(Some(max_frame_size))
        .max_message_size(Some(max_frame_size));
    let websocket =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check_request, Some(config))
            .await
            .map_err(io::Error::other)?;
    let (sink, frames) = websocket.split();

    let payloads = frames.map_err(io::Error::other).try_filter_map(|message| {
        future::ready(match message {
            Message::Binary(payload) => Ok(Some(payload)),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(None),
            Message::Text(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "text frame on an MQTT WebSocket",
            )),
            Message::Close(_) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "WebSocket closed",
            )),
        })
    });
    let reader = StreamReader::new(payloads);
    let frame_sink = sink
        .sink_map_err(io::Error::other)
        .with(|payload: Bytes| future::ready(Ok::<_, io::Error>(Message::Binary(payload))));
    let writer = SinkWriter::new(CopyToBytes::new(frame_sink));
    Ok(tokio::io::join(reader, writer))
}

/// The subprotocol to confirm: the first of ours the client offered, or none when it offered
/// none (lenient, as Mosquitto is); `None` too when it offered only others, which the client
/// will then refuse itself.
fn choose_subprotocol(request: &Request) -> Option<&'static str> {
    let offered: Vec<&str> = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    SUBPROTOCOLS.into_iter().find(|ours| {
        offered
            .iter()
            .any(|theirs| theirs.eq_ignore_ascii_case(ours))
    })
}
