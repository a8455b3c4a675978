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
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use bytestring::ByteString;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::Instant;
use tracing::{debug, info};

use crate::broker::{Blocked, Broker};
use crate::message::Message;
use crate::protocol::{
    decode, encode, Connect, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode,
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

/// Topic alias maps of one connection (aliases never outlive it).
#[derive(Default)]
struct TopicAliases {
    /// Alias → topic, as defined by the client.
    inbound: HashMap<u16, ByteString>,
    /// Topic → alias, as assigned by the broker.
    outbound: HashMap<ByteString, u16>,
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
    client: ClientLimits,
    /// Topic aliases in both directions; allocated on first use (most clients use none).
    aliases: Option<Box<TopicAliases>>,
    /// The will, already copied out of the read buffer, and its delay in seconds.
    will: Option<(Box<Message>, u32)>,
    stalled: Option<Stalled>,
    routes: Vec<Route<SessionRef>>,
}

/// Serves one accepted stream until it closes.
///
/// The handshake and the teardown run as boxed futures: an async fn's state is as large as its
/// largest phase, and their timers would otherwise stay part of every idle connection.
pub async fn serve<S>(stream: S, peer: SocketAddr, listener: Arc<str>, broker: Arc<Broker>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Some(mut connection) = Box::pin(handshake(stream, peer, listener, broker)).await else {
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
    Box::pin(connection.finish(exit)).await;
    listener_gauge.dec();
}

/// Reads CONNECT and answers it; `None` if the connection was refused or went away.
async fn handshake<S>(
    stream: S,
    peer: SocketAddr,
    listener: Arc<str>,
    broker: Arc<Broker>,
) -> Option<Box<Connection<ReadHalf<S>, WriteHalf<S>>>>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut read_buf = BytesMut::new();
    let connect = read_connect(&broker, &mut reader, &mut writer, &mut read_buf).await?;
    accept(broker, connect, peer, listener, reader, writer, read_buf).await
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
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), writer.write_all(&out))
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
) -> Option<Box<Connection<R, W>>>
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
        let _ = encode(
            &Packet::ConnAck(handshake::refusal(reason)),
            version,
            &mut out,
        );
        out
    };
    let verdict = handshake::negotiate(&connect, &limits)
        .map_err(|reason| refuse(reason, "invalid_connect"))
        .and_then(|terms| {
            // Interim until the Authenticator is built once per configuration revision and
            // called on a blocking thread: build it here from the live configuration.
            let live = broker.config();
            crate::auth::Authenticator::load(&live.config.auth, &live.base_dir)
                .map_err(|error| {
                    info!(%error, "authentication configuration unusable");
                    ReasonCode::ServerUnavailable
                })
                .and_then(|authenticator| {
                    authenticator
                        .authenticate(&crate::auth::Credentials::from_connect(&connect, None))
                })
                .map(|_identity| terms)
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

    // The id outlives the read buffer it was decoded from: own it.
    let opened = broker.open_session(
        crate::message::owned_string(&terms.client_id),
        connect.clean_start,
        terms.session_expiry,
    );
    debug!(%peer, client_id = %terms.client_id, ?version, session_present = opened.session_present, "client connected");
    let connack = handshake::connack(&connect, &terms, &limits, opened.session_present);
    let connect = *connect;
    let mut connection = Box::new(Connection {
        session: SessionRef(opened.session),
        generation: opened.generation,
        version,
        listener,
        peer,
        reader,
        writer,
        read_buf,
        write_buf: BytesMut::new(),
        client: terms.client,
        aliases: None,
        will: connect.will.map(|will| {
            let delay = will.properties.will_delay_interval.unwrap_or(0);
            (
                Box::new(Message::from_will(will, 0, std::time::Instant::now())),
                delay,
            )
        }),
        stalled: None,
        routes: Vec::new(),
        broker,
    });
    let keep_alive = &connection.session.keep_alive;
    keep_alive
        .last_packet_ms
        .store(connection.broker.clock_ms(), Ordering::Relaxed);
    keep_alive
        .timeout_ms
        .store(u64::from(terms.keep_alive) * 1500, Ordering::Relaxed);
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
    ///
    /// Deliberately small in what it keeps across iterations: one wake-up registration, the
    /// read or write in progress, and (rarely) a stalled publish. Keep alive is checked by the
    /// broker's sweeper, shutdown arrives as a kick.
    async fn run(&mut self) -> Exit {
        let session = self.session.clone();
        let mut woken = pin!(session.wake.notified());
        let mut space_wait: Option<BoxFuture<'static, ()>> = None;
        if self.broker.shutdown.is_cancelled() {
            return Exit::Shutdown;
        }
        loop {
            if let Some(reason) = session.kicked(self.generation) {
                match reason {
                    ReasonCode::ServerShuttingDown => return Exit::Shutdown,
                    ReasonCode::KeepAliveTimeout => return Exit::KeepAliveTimeout,
                    reason => return Exit::Kicked(reason),
                }
            }
            self.drain_session();
            if self.stalled.is_some() && space_wait.is_none() {
                space_wait = Some(self.wait_for_space());
            }
            let can_read = self.stalled.is_none();
            let can_write = !self.write_buf.is_empty();
            tokio::select! {
                biased;
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
                            self.session.keep_alive.last_packet_ms.store(self.broker.clock_ms(), Ordering::Relaxed);
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
        if let (true, Some((will, delay))) = (publish_will, self.will.take()) {
            self.publish_will(*will, delay);
        }
        self.broker.metrics.connections_current.dec();
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

    /// Idle connections must stay cheap: this prints what each one costs in task state.
    #[test]
    fn report_connection_sizes() {
        type Half<T> = T;
        let broker = Broker::new(crate::config::LoadedConfig {
            config: crate::config::BrokerConfig::embedded_default(),
            revision: String::new(),
            base_dir: Default::default(),
        });
        let (client, _server) = tokio::io::duplex(64);
        let future = serve(
            client,
            "127.0.0.1:1".parse().unwrap(),
            Arc::from("x"),
            broker,
        );
        println!("serve future: {} bytes", std::mem::size_of_val(&future));
        println!(
            "Connection: {} bytes",
            std::mem::size_of::<
                Connection<
                    Half<tokio::io::ReadHalf<tokio::net::TcpStream>>,
                    tokio::io::WriteHalf<tokio::net::TcpStream>,
                >,
            >()
        );
        println!(
            "Session: {} bytes",
            std::mem::size_of::<crate::session::Session>()
        );
        println!("Message: {} bytes", std::mem::size_of::<Message>());
        println!(
            "Delivery: {} bytes",
            std::mem::size_of::<crate::message::Delivery>()
        );
    }
}
