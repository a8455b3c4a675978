//! One client's connection, from the first byte to the last: read CONNECT, agree on terms, then
//! run a single event loop that reads packets, hands messages to the router, drains the
//! session's queue onto the socket, and enforces keep alive and flow control.
//!
//! One task per connection, no separate reader and writer: the loop waits on socket readability,
//! writability, new messages and timers at once. While no data flows it holds no read or write
//! buffer, which is what keeps thousands of idle connections cheap.

mod handshake;
mod inbound;
mod io;
mod outbound;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use bytestring::ByteString;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info};

use crate::broker::{Blocked, Broker};
use crate::message::Message;
use crate::protocol::{
    decode, encode, Connect, Disconnect, LastWill, Packet, ProtocolVersion, QoS, ReasonCode,
};
use crate::router::Route;
use crate::session::SessionRef;

pub use handshake::ClientLimits;

/// Stop filling the write buffer past this many bytes until the socket takes them.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// Why the event loop ended; decides what is sent before closing and whether the will goes out.
#[derive(Debug, Clone, PartialEq)]
enum Exit {
    /// The client sent DISCONNECT; `publish_will` for 5.0's "Disconnect with Will Message".
    ClientDisconnect { publish_will: bool },
    /// The socket closed or failed.
    Closed,
    /// The client broke the protocol.
    ProtocolError(ReasonCode, String),
    /// No packet within 1.5 × keep alive.
    KeepAliveTimeout,
    /// The broker asked the connection to close (takeover, revoked credentials).
    Kicked(ReasonCode),
    /// The broker is shutting down.
    Shutdown,
}

/// A QoS 1/2 PUBLISH the broker has not acknowledged yet because some subscriber's queue was
/// full; the connection stops reading until it is placed or refused.
struct Stalled {
    blocked: Vec<Blocked>,
    packet_id: u16,
    qos: QoS,
    deadline: Instant,
}

/// Everything one connection owns.
struct Connection<R, W> {
    broker: Arc<Broker>,
    session: SessionRef,
    generation: u64,
    version: ProtocolVersion,
    listener: Arc<str>,
    peer: SocketAddr,
    reader: R,
    writer: W,
    read_buf: BytesMut,
    write_buf: BytesMut,
    keep_alive: Option<Duration>,
    last_packet_at: Instant,
    client: ClientLimits,
    inbound_aliases: HashMap<u16, ByteString>,
    outbound_aliases: HashMap<ByteString, u16>,
    will: Option<LastWill>,
    stalled: Option<Stalled>,
    routes: Vec<Route<SessionRef>>,
}

/// Serves one accepted stream until it closes.
pub async fn serve<S>(stream: S, peer: SocketAddr, listener: Arc<str>, broker: Arc<Broker>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut read_buf = BytesMut::new();
    let connect = match read_connect(&broker, &mut reader, &mut writer, &mut read_buf).await {
        Some(connect) => connect,
        None => return,
    };
    let Some(mut connection) =
        accept(broker, connect, peer, listener, reader, writer, read_buf).await
    else {
        return;
    };
    connection.broker.metrics.connections_current.inc();
    let listener_gauge = connection
        .broker
        .metrics
        .listener_connections
        .with_label_values(&[&*connection.listener]);
    listener_gauge.inc();
    let exit = connection.run().await;
    connection.finish(exit).await;
    listener_gauge.dec();
}

/// Reads the first packet, which must be CONNECT, within the connect timeout.
async fn read_connect<R, W>(
    broker: &Broker,
    reader: &mut R,
    writer: &mut W,
    read_buf: &mut BytesMut,
) -> Option<Box<Connect>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let limits = broker.config().config.limits.clone();
    let deadline = Instant::now() + Duration::from_secs(u64::from(limits.connect_timeout));
    loop {
        match decode(read_buf, None, limits.max_packet_size) {
            Ok(Some(Packet::Connect(connect))) => return Some(connect),
            Ok(Some(_)) => return None,
            Ok(None) => {}
            Err(error) => {
                let reason = error.reason_code();
                debug!(%error, "refusing connection before CONNECT completed");
                broker
                    .metrics
                    .connections_rejected
                    .with_label_values(&["malformed_connect"])
                    .inc();
                if reason == ReasonCode::UnsupportedProtocolVersion {
                    // Answer in the oldest form every client understands (3.1.1 return 0x01).
                    let mut out = BytesMut::new();
                    let ack = Packet::ConnAck(handshake::refusal(reason));
                    if encode(&ack, ProtocolVersion::V311, &mut out).is_ok() {
                        let _ = tokio::time::timeout(Duration::from_secs(1), writer.write_all(&out))
                            .await;
                    }
                }
                return None;
            }
        }
        match tokio::time::timeout_at(deadline, io::read_some(reader, read_buf)).await {
            Ok(Ok(n)) if n > 0 => broker.metrics.bytes_received.inc_by(n as u64),
            _ => return None,
        }
    }
}

/// Applies the CONNECT: negotiates terms, authenticates, opens the session and sends CONNACK.
async fn accept<R, W>(
    broker: Arc<Broker>,
    connect: Box<Connect>,
    peer: SocketAddr,
    listener: Arc<str>,
    reader: R,
    mut writer: W,
    read_buf: BytesMut,
) -> Option<Connection<R, W>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let version = connect.protocol_version;
    let limits = broker.config().config.limits.clone();
    let refuse = |reason: ReasonCode, label: &str| {
        broker
            .metrics
            .connections_rejected
            .with_label_values(&[label])
            .inc();
        info!(%peer, client_id = %connect.client_id, %reason, "connection refused");
        let mut out = BytesMut::new();
        let _ = encode(&Packet::ConnAck(handshake::refusal(reason)), version, &mut out);
        out
    };
    let verdict = handshake::negotiate(&connect, &limits)
        .map_err(|reason| refuse(reason, "invalid_connect"))
        .and_then(|terms| {
            crate::auth::authenticate(&broker.config().config.auth, &connect)
                .map(|()| terms)
                .map_err(|reason| refuse(reason, "not_authorized"))
        })
        .and_then(|terms| {
            if broker.metrics.connections_current.get() as usize >= limits.max_connections {
                Err(refuse(ReasonCode::QuotaExceeded, "max_connections"))
            } else {
                Ok(terms)
            }
        });
    let terms = match verdict {
        Ok(terms) => terms,
        Err(refusal) => {
            let _ = tokio::time::timeout(Duration::from_secs(1), writer.write_all(&refusal)).await;
            let _ = writer.shutdown().await;
            return None;
        }
    };

    let opened = broker.open_session(
        terms.client_id.clone(),
        connect.clean_start,
        terms.session_expiry,
    );
    debug!(%peer, client_id = %terms.client_id, ?version, session_present = opened.session_present, "client connected");
    let connack = handshake::connack(&connect, &terms, &limits, opened.session_present);
    let now = Instant::now();
    let connect = *connect;
    let mut connection = Connection {
        session: SessionRef(opened.session),
        generation: opened.generation,
        version,
        listener,
        peer,
        reader,
        writer,
        read_buf,
        write_buf: BytesMut::new(),
        keep_alive: (terms.keep_alive > 0)
            .then(|| Duration::from_millis(u64::from(terms.keep_alive) * 1500)),
        last_packet_at: now,
        client: terms.client,
        inbound_aliases: HashMap::new(),
        outbound_aliases: HashMap::new(),
        will: connect.will,
        stalled: None,
        routes: Vec::new(),
        broker,
    };
    connection.send(&Packet::ConnAck(connack));
    if opened.session_present {
        connection.resend_inflight();
    }
    Some(connection)
}

impl<R, W> Connection<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    /// The event loop. Returns why it ended.
    async fn run(&mut self) -> Exit {
        let session = self.session.clone();
        let shutdown_token = self.broker.shutdown.clone();
        let mut shutdown = pin!(shutdown_token.cancelled());
        let mut kicked = pin!(session.kick.notified());
        let mut woken = pin!(session.wake.notified());
        let keep_alive_timer = pin!(sleep_until(self.next_keep_alive_check()));
        let mut keep_alive_timer = keep_alive_timer;
        let mut space_wait: Option<BoxFuture<'static, ()>> = None;

        loop {
            self.drain_session();
            if self.stalled.is_some() && space_wait.is_none() {
                space_wait = Some(self.wait_for_space());
            }
            let can_read = self.stalled.is_none();
            let can_write = !self.write_buf.is_empty();
            tokio::select! {
                biased;
                _ = &mut shutdown => return Exit::Shutdown,
                _ = &mut kicked => {
                    kicked.set(session.kick.notified());
                    if let Some(reason) = session.kicked(self.generation) {
                        return Exit::Kicked(reason);
                    }
                }
                written = self.writer.write_buf(&mut self.write_buf), if can_write => {
                    match written {
                        Ok(0) | Err(_) => return Exit::Closed,
                        Ok(n) => {
                            self.broker.metrics.bytes_sent.inc_by(n as u64);
                            if self.write_buf.is_empty() && self.write_buf.capacity() > 4 * WRITE_HIGH_WATER {
                                self.write_buf = BytesMut::new();
                            }
                        }
                    }
                }
                read = io::read_some(&mut self.reader, &mut self.read_buf), if can_read => {
                    match read {
                        Ok(0) | Err(_) => return Exit::Closed,
                        Ok(n) => {
                            self.broker.metrics.bytes_received.inc_by(n as u64);
                            self.last_packet_at = Instant::now();
                            if let Err(exit) = self.process_read_buffer() {
                                return exit;
                            }
                        }
                    }
                }
                _ = &mut woken => {
                    woken.set(session.wake.notified());
                }
                _ = async { space_wait.as_mut().expect("guarded").await }, if space_wait.is_some() => {
                    space_wait = None;
                    if let Err(exit) = self.retry_stalled() {
                        return exit;
                    }
                }
                _ = &mut keep_alive_timer => {
                    if self.stalled.is_none() && self.keep_alive_expired() {
                        return Exit::KeepAliveTimeout;
                    }
                    keep_alive_timer.as_mut().reset(self.next_keep_alive_check());
                }
            }
        }
    }

    /// Decodes and handles every complete packet in the read buffer.
    fn process_read_buffer(&mut self) -> Result<(), Exit> {
        let max_packet_size = self.broker.config().config.limits.max_packet_size;
        while self.stalled.is_none() {
            match decode(&mut self.read_buf, Some(self.version), max_packet_size) {
                Ok(Some(packet)) => self.handle_packet(packet)?,
                Ok(None) => break,
                Err(error) => {
                    return Err(Exit::ProtocolError(error.reason_code(), error.to_string()))
                }
            }
        }
        if self.read_buf.is_empty() {
            // Release the read buffer while idle; the next read allocates afresh.
            self.read_buf = BytesMut::new();
        }
        Ok(())
    }

    fn next_keep_alive_check(&self) -> Instant {
        match self.keep_alive {
            Some(timeout) => self.last_packet_at + timeout,
            None => Instant::now() + Duration::from_secs(24 * 3600),
        }
    }

    fn keep_alive_expired(&self) -> bool {
        self.keep_alive
            .is_some_and(|timeout| self.last_packet_at.elapsed() >= timeout)
    }

    /// Appends a control packet to the write buffer.
    fn send(&mut self, packet: &Packet) {
        if encode(packet, self.version, &mut self.write_buf).is_ok() {
            self.broker.metrics.packet_sent(packet_type_code(packet));
        }
    }

    /// Sends what is appropriate for `exit`, publishes the will if due and releases the session.
    async fn finish(mut self, exit: Exit) {
        let v5 = self.version == ProtocolVersion::V5;
        let goodbye = match &exit {
            Exit::Shutdown => Some(ReasonCode::ServerShuttingDown),
            Exit::Kicked(reason) => Some(*reason),
            Exit::KeepAliveTimeout => Some(ReasonCode::KeepAliveTimeout),
            Exit::ProtocolError(reason, _) => Some(*reason),
            Exit::ClientDisconnect { .. } | Exit::Closed => None,
        };
        match &exit {
            Exit::ProtocolError(reason, message) => {
                self.broker
                    .metrics
                    .protocol_errors
                    .with_label_values(&[&format!("{reason:?}")])
                    .inc();
                info!(peer = %self.peer, client_id = %self.session.client_id, %reason, %message, "closing connection: protocol error");
            }
            other => {
                debug!(peer = %self.peer, client_id = %self.session.client_id, exit = ?other, "connection closing")
            }
        }
        if let (true, Some(reason)) = (v5, goodbye) {
            self.send(&Packet::Disconnect(Disconnect::with_reason(reason)));
        }
        if !self.write_buf.is_empty() && exit != Exit::Closed {
            let flush = self.writer.write_all(&self.write_buf);
            let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.writer.shutdown()).await;

        let publish_will = match exit {
            Exit::ClientDisconnect { publish_will } => publish_will,
            Exit::Shutdown => false,
            _ => true,
        };
        if let (true, Some(will)) = (publish_will, self.will.take()) {
            self.publish_will(will);
        }
        self.broker.metrics.connections_current.dec();
        self.broker.close_session(&self.session.0, self.generation);
    }

    /// Publishes the will now, or after the Will Delay Interval unless the session resumes.
    fn publish_will(&self, will: LastWill) {
        let topic = will.topic.clone();
        let delay = will.properties.will_delay_interval.unwrap_or(0);
        let expiry = self.session.state.lock().expiry_interval;
        let message = will_message(will, self.session.id);
        let broker = Arc::clone(&self.broker);
        if delay == 0 || expiry == 0 {
            debug!(client_id = %self.session.client_id, %topic, "publishing will");
            let mut routes = Vec::new();
            // Will messages never wait for space: a full subscriber queue drops them.
            let _ = broker.publish(Arc::new(message), &mut routes);
            return;
        }
        let session = self.session.clone();
        let generation = self.generation;
        let wait = Duration::from_secs(u64::from(delay.min(expiry)));
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = broker.shutdown.cancelled() => return,
            }
            let resumed = session.state.lock().generation != generation;
            if !resumed {
                let mut routes = Vec::new();
                let _ = broker.publish(Arc::new(message), &mut routes);
            }
        });
    }
}

/// The message a will turns into.
fn will_message(will: LastWill, publisher: u64) -> Message {
    let props = will.properties;
    let now = std::time::Instant::now();
    Message {
        topic: will.topic,
        payload: will.payload,
        qos: will.qos,
        retain: will.retain,
        properties: crate::protocol::PublishProperties {
            payload_format_indicator: props.payload_format_indicator,
            message_expiry_interval: props.message_expiry_interval,
            response_topic: props.response_topic,
            correlation_data: props.correlation_data,
            user_properties: props.user_properties,
            content_type: props.content_type,
            ..Default::default()
        },
        expires_at: props
            .message_expiry_interval
            .map(|secs| now + Duration::from_secs(u64::from(secs))),
        received_at: now,
        publisher,
    }
}

/// The fixed-header packet type of `packet`, for per-type counters.
fn packet_type_code(packet: &Packet) -> u8 {
    match packet {
        Packet::Connect(_) => 1,
        Packet::ConnAck(_) => 2,
        Packet::Publish(_) => 3,
        Packet::PubAck(_) => 4,
        Packet::PubRec(_) => 5,
        Packet::PubRel(_) => 6,
        Packet::PubComp(_) => 7,
        Packet::Subscribe(_) => 8,
        Packet::SubAck(_) => 9,
        Packet::Unsubscribe(_) => 10,
        Packet::UnsubAck(_) => 11,
        Packet::PingReq => 12,
        Packet::PingResp => 13,
        Packet::Disconnect(_) => 14,
        Packet::Auth(_) => 15,
    }
}
