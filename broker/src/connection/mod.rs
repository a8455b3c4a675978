//! One client's connection, from the first byte to the last: read CONNECT, agree on terms, then
//! run a single event loop that reads packets, hands messages to the router, drains the
//! session's queue onto the socket, and enforces keep alive and flow control.
//!
//! One task per connection, no separate reader and writer: the loop waits on socket readability,
//! writability, new messages and timers at once. While no data flows it holds no read or write
//! buffer, which is what keeps thousands of idle connections cheap. A plain TCP connection
//! quiet for a few seconds gives up even its task and its place in tokio's reactor (see
//! [`park`]) until its client or its session needs it again.

mod access;
mod handshake;
mod inbound;
mod io;
mod outbound;
pub mod park;

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use bytestring::ByteString;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::auth::{Credentials, Identity};
use crate::broker::{Blocked, Broker};
use crate::message::Message;
use crate::protocol::{
    decode, encode, Connect, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode,
};
use crate::session::{ConnectedClient, SessionRef, WakeState};

pub use handshake::ClientLimits;

/// Stop filling the write buffer past this many bytes until the socket takes them.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// Event-loop turns one poll may take before yielding to other tasks, so that a connection
/// kept busy by a stream of incoming messages cannot monopolise a worker thread.
const MAX_TURNS_PER_POLL: usize = 32;

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
    /// Not an end: the connection is idle and was asked to park (see [`park`]).
    Idle,
}

/// A byte stream an MQTT connection runs on: plain TCP, TLS or WebSocket.
///
/// Only plain TCP connections park when idle: their whole transport state is the kernel's
/// socket, whereas a TLS session or a WebSocket adapter holds state tokio's reactor would
/// have to give back first.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin + Sized + 'static {
    /// Whether an idle connection on this transport can give up its task.
    const PARKABLE: bool = false;

    /// Sets an idle connection aside until its socket or its session wakes it; the
    /// connection is handed back when this transport cannot park.
    fn park(connection: Box<Connection<Self>>) -> Option<Box<Connection<Self>>> {
        // Not asked again (a parked predecessor on the same session may have said it could).
        connection.session.keep_alive.set_parkable(false);
        Some(connection)
    }
}

impl Transport for TcpStream {
    const PARKABLE: bool = true;

    fn park(connection: Box<Connection<Self>>) -> Option<Box<Connection<Self>>> {
        park::park(connection);
        None
    }
}

impl<S> Transport for tokio_rustls::server::TlsStream<S> where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static
{
}

/// WebSocket streams: a reader of frame payloads joined with a writer of frames.
impl<R, W> Transport for tokio::io::Join<R, W>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
}

/// In-memory streams, for tests.
impl Transport for tokio::io::DuplexStream {}

/// A QoS 1/2 PUBLISH the broker has not acknowledged yet because some subscriber's queue was
/// full; the connection stops reading until it is placed or refused.
struct Stalled {
    blocked: Vec<Blocked>,
    packet_id: u16,
    qos: QoS,
    deadline: Instant,
    /// Completes when a blocked subscriber may have room, or at the deadline.
    wait: Option<BoxFuture<'static, ()>>,
}

/// Topic alias maps of one connection (aliases never outlive it).
#[derive(Default)]
struct TopicAliases {
    /// Alias → topic, as defined by the client.
    inbound: HashMap<u16, ByteString>,
    /// Topic → alias, as assigned by the broker.
    outbound: HashMap<ByteString, u16>,
}

/// Everything one connection owns: the state of its session's current connection, and its
/// stream.
pub struct Connection<S> {
    broker: Arc<Broker>,
    session: SessionRef,
    generation: u64,
    version: ProtocolVersion,
    /// Who the client is and where it came from (the session holds the same record).
    connected: Arc<ConnectedClient>,
    stream: S,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// Bytes were written but the transport not yet flushed (see [`io::write_some`]).
    unflushed: bool,
    /// Bytes were written since the connection last considered parking.
    sent_since_park_check: bool,
    client: ClientLimits,
    /// Topic aliases in both directions; allocated on first use (most clients use none).
    aliases: Option<Box<TopicAliases>>,
    /// The will, already copied out of the read buffer, and its delay in seconds.
    will: Option<Box<(Message, u32)>>,
    /// What the ACL lets this client do.
    acl: access::ConnectionAcl,
    /// A publish held back by backpressure (rare, so boxed).
    stalled: Option<Box<Stalled>>,
}

/// Where a client came from: what the listener knows about it before MQTT starts.
#[derive(Debug, Clone)]
pub struct ClientOrigin {
    /// The client's address.
    pub peer: SocketAddr,
    /// Name of the listener that accepted it.
    pub listener: Arc<str>,
    /// The client's verified TLS certificate (DER), on listeners that ask for one.
    pub peer_certificate: Option<Box<[u8]>>,
}

/// Serves one accepted stream (TCP, TLS or WebSocket) until it closes.
///
/// This future is most of what an idle connection's task holds, so it is kept to a few
/// pointers: the handshake (with the stream and origin it consumes) is boxed before the
/// returned future is built — an async fn would keep its arguments' space for its whole life —
/// and the teardown is boxed when it starts. The connection itself lives in one box.
pub fn serve<S: Transport>(
    stream: S,
    origin: ClientOrigin,
    broker: Arc<Broker>,
) -> impl Future<Output = ()> + Send + 'static {
    let handshake = Box::pin(handshake(stream, origin, broker));
    async move {
        let Some(connection) = handshake.await else {
            return;
        };
        connection.broker.metrics.connections_current.inc();
        connection.listener_gauge().inc();
        drive(connection).await
    }
}

/// Runs `connection` until it ends or parks. A parked connection that wakes up continues
/// here, in a new task.
async fn drive<S: Transport>(mut connection: Box<Connection<S>>) {
    loop {
        match connection.run().await {
            Exit::Idle => match S::park(connection) {
                Some(declined) => connection = declined,
                None => return,
            },
            exit => return Box::pin(connection.finish(exit)).await,
        }
    }
}

/// Reads CONNECT and answers it; `None` if the connection was refused or went away.
async fn handshake<S: Transport>(
    mut stream: S,
    origin: ClientOrigin,
    broker: Arc<Broker>,
) -> Option<Box<Connection<S>>> {
    let mut read_buf = BytesMut::new();
    let connect = read_connect(&broker, &mut stream, &mut read_buf).await?;
    accept(broker, connect, origin, stream, read_buf).await
}

/// Reads the first packet, which must be CONNECT, within the connect timeout.
async fn read_connect<S>(
    broker: &Broker,
    stream: &mut S,
    read_buf: &mut BytesMut,
) -> Option<Box<Connect>>
where
    S: AsyncRead + AsyncWrite + Unpin,
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
                        let answer = async {
                            stream.write_all(&out).await?;
                            stream.shutdown().await
                        };
                        let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
                    }
                }
                return None;
            }
        }
        match tokio::time::timeout_at(deadline, io::read_some(stream, read_buf)).await {
            Ok(Ok(n)) if n > 0 => broker.metrics.bytes_received.inc_by(n as u64),
            _ => return None,
        }
    }
}

/// Applies the CONNECT: negotiates terms, authenticates, opens the session and sends CONNACK.
async fn accept<S: Transport>(
    broker: Arc<Broker>,
    connect: Box<Connect>,
    origin: ClientOrigin,
    mut stream: S,
    read_buf: BytesMut,
) -> Option<Box<Connection<S>>> {
    let version = connect.protocol_version;
    let limits = broker.config().config.limits.clone();
    let ClientOrigin {
        peer,
        listener,
        peer_certificate,
    } = origin;
    let refuse = |reason: ReasonCode, label: &str| {
        broker.metrics.connection_rejected(label);
        info!(%peer, client_id = %connect.client_id, %reason, "connection refused");
        let mut out = BytesMut::new();
        let _ = encode(
            &Packet::ConnAck(handshake::refusal(reason)),
            version,
            &mut out,
        );
        out
    };
    let verdict = match handshake::negotiate(&connect, &limits) {
        Err(reason) => Err(refuse(reason, "invalid_connect")),
        Ok(terms) => {
            let authenticated =
                authenticate(&broker, &connect, peer_certificate, &terms.client_id).await;
            match authenticated {
                Err(reason) => Err(refuse(reason, "not_authorized")),
                Ok(_)
                    if broker.metrics.connections_current.get() as usize
                        >= limits.max_connections =>
                {
                    Err(refuse(ReasonCode::QuotaExceeded, "max_connections"))
                }
                Ok(identity) => Ok((terms, identity)),
            }
        }
    };
    let (terms, authenticated) = match verdict {
        Ok(accepted) => accepted,
        Err(refusal) => {
            let answer = async {
                stream.write_all(&refusal).await?;
                stream.shutdown().await
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
            return None;
        }
    };

    // The id outlives the read buffer it was decoded from: own it.
    let opened = broker.open_session(
        Arc::from(&*terms.client_id),
        connect.clean_start,
        terms.session_expiry,
    );
    debug!(%peer, client_id = %terms.client_id, ?version, method = authenticated.method.label(), session_present = opened.session_present, "client connected");
    let connected = Arc::new(ConnectedClient {
        authenticated,
        listener,
        peer,
    });
    opened.session.state.lock().client = Some(Arc::clone(&connected));
    if let Some(valid_until) = connected.authenticated.valid_until {
        broker
            .credential_expiries
            .schedule(valid_until, &opened.session, opened.generation);
    }
    let acl = access::ConnectionAcl::new(
        &broker.config().acl,
        &connected.acl_identity(&opened.session.client_id),
    );
    let connack = handshake::connack(&connect, &terms, &limits, opened.session_present);
    let connect = *connect;
    let mut connection = Box::new(Connection {
        session: SessionRef(opened.session),
        generation: opened.generation,
        version,
        connected,
        stream,
        read_buf,
        write_buf: BytesMut::new(),
        unflushed: false,
        sent_since_park_check: false,
        client: terms.client,
        aliases: None,
        will: connect.will.map(|will| {
            let delay = will.properties.will_delay_interval.unwrap_or(0);
            Box::new((
                Message::from_will(will, 0, std::time::Instant::now()),
                delay,
            ))
        }),
        acl,
        stalled: None,
        broker,
    });
    let keep_alive = &connection.session.keep_alive;
    keep_alive
        .last_packet_ms
        .store(connection.broker.clock_ms(), Ordering::Relaxed);
    keep_alive
        .timeout_ms
        .store(u32::from(terms.keep_alive) * 1500, Ordering::Relaxed);
    keep_alive.set_parkable(S::PARKABLE);
    connection.send(&Packet::ConnAck(connack));
    if opened.session_present {
        connection.resend_inflight();
    }
    Some(connection)
}

/// Checks the CONNECT's credentials with the live configuration's authenticator, counting the
/// attempt. Password and JWT checks are CPU-heavy by design (PBKDF2, argon2, signatures), so
/// they run on a blocking thread, with reference-counted copies of the credentials.
async fn authenticate(
    broker: &Broker,
    connect: &Connect,
    peer_certificate: Option<Box<[u8]>>,
    client_id: &ByteString,
) -> Result<Identity, ReasonCode> {
    let authenticator = Arc::clone(&broker.config().auth);
    let username = connect.username.clone();
    let password = connect.password.clone();
    let method = connect.properties.authentication_method.clone();
    let client_id = client_id.clone();
    let check = move || {
        let credentials = Credentials {
            username: username.as_deref(),
            password: password.as_deref(),
            client_id: &client_id,
            peer_certificate: peer_certificate.as_deref(),
            authentication_method: method.as_deref(),
        };
        (
            authenticator.method_for(&credentials),
            authenticator.authenticate(&credentials),
        )
    };
    let (method, result) = if connect.password.is_some() {
        match tokio::task::spawn_blocking(check).await {
            Ok(checked) => checked,
            Err(error) => {
                tracing::error!(%error, "authentication task failed");
                return Err(ReasonCode::ServerUnavailable);
            }
        }
    } else {
        check()
    };
    broker.metrics.auth_attempt(method, result.is_ok());
    result
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// The event loop. Returns why it ended.
    ///
    /// Written as a poll function over the connection's own fields rather than a `select!` of
    /// futures: the task then keeps no future of its own across iterations (no wait on the
    /// session, no read or write in progress), so an idle connection's task is a pointer to
    /// this struct. Keep alive is checked by the broker's sweeper, shutdown arrives as a kick
    /// (or is seen at the first poll, by a connection that began after the kicks went out).
    fn run(&mut self) -> impl Future<Output = Exit> + '_ {
        poll_fn(|cx| {
            if self.broker.shutdown.is_cancelled() {
                return Poll::Ready(Exit::Shutdown);
            }
            self.poll_run(cx)
        })
    }

    /// One turn of the event loop: works until nothing can make progress (every source has
    /// registered the task's waker) or the connection must end.
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<Exit> {
        for _ in 0..MAX_TURNS_PER_POLL {
            if let Some(reason) = self.session.kicked(self.generation) {
                return Poll::Ready(match reason {
                    ReasonCode::ServerShuttingDown => Exit::Shutdown,
                    ReasonCode::KeepAliveTimeout => Exit::KeepAliveTimeout,
                    reason => Exit::Kicked(reason),
                });
            }
            let mut progressed = match self.session.wake.poll(self.generation, cx) {
                WakeState::Superseded => {
                    return Poll::Ready(Exit::Kicked(ReasonCode::SessionTakenOver))
                }
                WakeState::Woken => true,
                WakeState::Waiting => false,
            };
            self.drain_session();
            if self.stalled.is_some() && self.poll_space(cx).is_ready() {
                if let Err(exit) = self.retry_stalled() {
                    return Poll::Ready(exit);
                }
                progressed = true;
            }
            if !self.write_buf.is_empty() || self.unflushed {
                match io::poll_write_some(
                    &mut self.stream,
                    &mut self.write_buf,
                    &mut self.unflushed,
                    cx,
                ) {
                    Poll::Ready(Ok(io::Written::Closed) | Err(_)) => {
                        return Poll::Ready(Exit::Closed)
                    }
                    Poll::Ready(Ok(io::Written::Bytes(n))) => {
                        self.broker.metrics.bytes_sent.inc_by(n as u64);
                        self.sent_since_park_check = true;
                        if self.write_buf.is_empty()
                            && self.write_buf.capacity() > 4 * WRITE_HIGH_WATER
                        {
                            self.write_buf = BytesMut::new();
                        }
                        progressed = true;
                    }
                    Poll::Ready(Ok(io::Written::Flushed)) | Poll::Pending => {}
                }
            }
            if self.stalled.is_none() {
                match io::poll_read_some(&mut self.stream, &mut self.read_buf, cx) {
                    Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Exit::Closed),
                    Poll::Ready(Ok(n)) => {
                        self.broker.metrics.bytes_received.inc_by(n as u64);
                        self.session
                            .keep_alive
                            .last_packet_ms
                            .store(self.broker.clock_ms(), Ordering::Relaxed);
                        if let Err(exit) = self.process_read_buffer() {
                            return Poll::Ready(exit);
                        }
                        progressed = true;
                    }
                    Poll::Pending => {}
                }
            }
            if !progressed {
                // Idle until the next wake-up: hold no write buffer meanwhile.
                if self.write_buf.is_empty() {
                    self.write_buf = BytesMut::new();
                }
                if self.session.keep_alive.park_asked() && self.ready_to_park() {
                    return Poll::Ready(Exit::Idle);
                }
                return Poll::Pending;
            }
        }
        // Busy for a while: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Answers the sweeper's request to park: true when the connection holds nothing that
    /// needs its task (no buffered bytes, no held-back publish) and neither received nor sent
    /// anything for a while; otherwise it goes on running and may be asked again.
    fn ready_to_park(&mut self) -> bool {
        let keep_alive = &self.session.keep_alive;
        let quiet = !self.sent_since_park_check
            && self.read_buf.is_empty()
            && self.write_buf.is_empty()
            && !self.unflushed
            && self.stalled.is_none()
            && keep_alive.silent_for(self.broker.clock_ms()) >= park::QUIET_MS;
        self.sent_since_park_check = false;
        if !quiet {
            keep_alive.set_running();
        }
        quiet
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

    /// Appends a control packet to the write buffer.
    fn send(&mut self, packet: &Packet) {
        if encode(packet, self.version, &mut self.write_buf).is_ok() {
            self.broker.metrics.packet_sent(packet_type_code(packet));
        }
    }

    /// Sends what is appropriate for `exit`, publishes the will if due and releases the session.
    async fn finish(mut self: Box<Self>, exit: Exit) {
        let v5 = self.version == ProtocolVersion::V5;
        let goodbye = match &exit {
            Exit::Shutdown => Some(ReasonCode::ServerShuttingDown),
            Exit::Kicked(reason) => Some(*reason),
            Exit::KeepAliveTimeout => Some(ReasonCode::KeepAliveTimeout),
            Exit::ProtocolError(reason, _) => Some(*reason),
            Exit::ClientDisconnect { .. } | Exit::Closed | Exit::Idle => None,
        };
        match &exit {
            Exit::ProtocolError(reason, message) => {
                self.broker
                    .metrics
                    .protocol_errors
                    .with_label_values(&[&format!("{reason:?}")])
                    .inc();
                info!(peer = %self.connected.peer, client_id = %self.session.client_id, %reason, %message, "closing connection: protocol error");
            }
            other => {
                debug!(peer = %self.connected.peer, client_id = %self.session.client_id, exit = ?other, "connection closing")
            }
        }
        if let (true, Some(reason)) = (v5, goodbye) {
            self.send(&Packet::Disconnect(Disconnect::with_reason(reason)));
        }
        if !self.write_buf.is_empty() && exit != Exit::Closed {
            let flush = self.stream.write_all(&self.write_buf);
            let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
        }
        self.release(&exit);
        // Only now does the client see its connection end: once it has, its clean session is
        // gone and an exclusive subscription it held is free for the next client to take.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await;
    }
}

impl<S> Connection<S> {
    /// The same connection on another stream: parking moves it out of tokio's reactor and
    /// back (`moving` says which way, for the log). When `convert` fails the stream is lost:
    /// the connection ends there, as if its client had gone, and `None` is returned.
    fn map_stream<T>(
        self,
        moving: &str,
        convert: impl FnOnce(S) -> std::io::Result<T>,
    ) -> Option<Box<Connection<T>>> {
        let Connection {
            broker,
            session,
            generation,
            version,
            connected,
            stream,
            read_buf,
            write_buf,
            unflushed,
            sent_since_park_check,
            client,
            aliases,
            will,
            acl,
            stalled,
        } = self;
        // Builds the connection around a stream of either type.
        macro_rules! with_stream {
            ($stream:expr) => {
                Box::new(Connection {
                    broker,
                    session,
                    generation,
                    version,
                    connected,
                    stream: $stream,
                    read_buf,
                    write_buf,
                    unflushed,
                    sent_since_park_check,
                    client,
                    aliases,
                    will,
                    acl,
                    stalled,
                })
            };
        }
        match convert(stream) {
            Ok(stream) => Some(with_stream!(stream)),
            Err(error) => {
                let mut lost = with_stream!(());
                debug!(%error, client_id = %lost.session.client_id, "cannot {moving}: closing the connection");
                lost.release(&Exit::Closed);
                None
            }
        }
    }

    /// The connection gauge of the listener the client came through.
    fn listener_gauge(&self) -> prometheus::IntGauge {
        self.broker
            .metrics
            .listener_connections
            .with_label_values(&[&*self.connected.listener])
    }

    /// Ends the connection's hold on the broker: publishes the will if `exit` calls for it,
    /// updates the gauges and releases the session. Everything but the stream.
    fn release(&mut self, exit: &Exit) {
        let publish_will = match exit {
            Exit::ClientDisconnect { publish_will } => *publish_will,
            Exit::Shutdown => false,
            _ => true,
        };
        if let (true, Some(will)) = (publish_will, self.will.take()) {
            let (will, delay) = *will;
            if self.may_publish(&will.topic, will.qos, will.retain) {
                self.publish_will(will, delay);
            }
        }
        self.broker.metrics.connections_current.dec();
        self.listener_gauge().dec();
        if let Some(valid_until) = self.connected.authenticated.valid_until {
            self.broker
                .credential_expiries
                .cancel(valid_until, &self.session.0, self.generation);
        }
        self.broker.close_session(&self.session.0, self.generation);
    }

    /// Publishes the will now, or after the Will Delay Interval unless the session resumes.
    fn publish_will(&self, will: Message, delay: u32) {
        let expiry = self.session.state.lock().expiry_interval;
        let broker = Arc::clone(&self.broker);
        let publisher = self.session.id;
        let publish = move |broker: &Broker| {
            // Message expiry counts from publication, not from CONNECT.
            let now = std::time::Instant::now();
            let message = Message {
                expires_at: will
                    .properties
                    .message_expiry_interval
                    .map(|secs| now + Duration::from_secs(u64::from(secs))),
                received_at: now,
                publisher,
                ..will
            };
            debug!(topic = %message.topic, "publishing will");
            broker.publish_internal(Arc::new(message));
        };
        if delay == 0 || expiry == 0 {
            publish(&broker);
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
                publish(&broker);
            }
        });
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

#[cfg(test)]
mod size_tests {
    use super::*;

    /// An idle connection is its task (the `serve` future), its boxed `Connection`, its
    /// session and the client record they share, plus what tokio keeps per socket (256 bytes)
    /// and per task (a 256-byte cell for a future this small) until it parks, after which
    /// those two give way to a 48-byte `Parked` record. Mosquitto needs well under 1 KiB per
    /// idle client. The budgets are jemalloc size classes (the broker binary's
    /// allocator) that today's sizes fill: 64, 192, 320 - 16 (an `Arc`'s counts) and
    /// 160 - 16, so a timer, buffer or wait future accidentally kept across the event loop,
    /// or a field that tips a struct into the next class, fails here first.
    #[test]
    fn an_idle_connection_stays_within_its_memory_budget() {
        let broker = Broker::new(
            crate::config::LoadedConfig::from_config(
                crate::config::BrokerConfig::embedded_default(),
                Default::default(),
            )
            .unwrap(),
        );
        let (client, _server) = tokio::io::duplex(64);
        let origin = ClientOrigin {
            peer: "127.0.0.1:1".parse().unwrap(),
            listener: Arc::from("x"),
            peer_certificate: None,
        };
        let future = serve(client, origin, broker);
        let sizes = (
            std::mem::size_of_val(&future),
            std::mem::size_of::<Connection<tokio::net::TcpStream>>(),
            std::mem::size_of::<crate::session::Session>(),
            std::mem::size_of::<ConnectedClient>(),
        );
        assert!(
            sizes.0 <= 64 && sizes.1 <= 192 && sizes.2 <= 304 && sizes.3 <= 144,
            "serve future, Connection, Session, ConnectedClient: {sizes:?}"
        );
    }
}
