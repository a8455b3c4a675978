//! A minimal raw MQTT client for the load generator: TCP plus Tern's codec, nothing else.
//!
//! There is no session logic, retransmission or keep-alive timer here: benchmark connections
//! live for seconds. What matters is cost per message, so packets are encoded into one buffer
//! and written with a single `write_all` per batch, and reads decode every complete packet in
//! the buffer at once.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use tern_broker::protocol::{
    decode, encode, AckProperties, ConnAck, Connect, ConnectProperties, Packet, ProtocolVersion,
    PubAck, Publish, PublishProperties, QoS, ReasonCode, Subscribe, SubscribeFilter,
    SubscribeProperties, SubscriptionOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Largest packet the load generator accepts from a broker.
const MAX_PACKET_SIZE: u32 = 1 << 20;
/// Bound on the TCP connect, CONNACK and SUBACK waits.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;
/// Initial buffer size: small, so thousands of idle connections stay cheap; busy connections
/// grow their buffers on first use.
const INITIAL_BUFFER: usize = 512;

/// What to put in CONNECT.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Client identifier (unique per connection in a scenario).
    pub client_id: String,
    /// Keep alive in seconds.
    pub keep_alive: u16,
    /// Protocol version to speak.
    pub version: ProtocolVersion,
    /// Receive Maximum the client announces (5.0 only); `None` leaves the default (65,535).
    pub receive_maximum: Option<u16>,
}

impl ConnectOptions {
    /// Clean-start options with keep alive 60 and no Receive Maximum.
    pub fn new(client_id: impl Into<String>, version: ProtocolVersion) -> ConnectOptions {
        ConnectOptions {
            client_id: client_id.into(),
            keep_alive: 60,
            version,
            receive_maximum: None,
        }
    }
}

/// An established MQTT connection, split into its read and write halves.
#[derive(Debug)]
pub struct Connection {
    /// Incoming packets.
    pub reader: PacketReader,
    /// Outgoing packets.
    pub writer: PacketWriter,
    /// The broker's CONNACK.
    pub connack: ConnAck,
}

impl Connection {
    /// The broker's Receive Maximum (65,535 when absent, as the specification says).
    pub fn server_receive_maximum(&self) -> u16 {
        self.connack.properties.receive_maximum.unwrap_or(u16::MAX)
    }
}

/// Connects over TCP (with TCP_NODELAY), sends CONNECT and waits for a successful CONNACK.
pub async fn connect(addr: SocketAddr, options: &ConnectOptions) -> anyhow::Result<Connection> {
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("TCP connect to {addr} timed out"))?
        .with_context(|| format!("TCP connect to {addr}"))?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    let (read, write) = stream.into_split();
    let mut reader = PacketReader::new(read, options.version);
    let mut writer = PacketWriter::new(write, options.version);

    let connect = Connect {
        protocol_version: options.version,
        clean_start: true,
        keep_alive: options.keep_alive,
        client_id: ByteString::from(options.client_id.as_str()),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties {
            receive_maximum: options.receive_maximum,
            ..ConnectProperties::default()
        },
    };
    writer.push(&Packet::Connect(Box::new(connect)))?;
    writer.flush().await.context("sending CONNECT")?;
    let packet = tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.next_packet())
        .await
        .map_err(|_| anyhow!("no CONNACK from {addr} for {}", options.client_id))?
        .with_context(|| format!("waiting for CONNACK for {}", options.client_id))?;
    let connack = match packet {
        Packet::ConnAck(connack) => connack,
        other => bail!("expected CONNACK, got {}", other.kind()),
    };
    if connack.reason_code != ReasonCode::Success {
        bail!(
            "CONNACK for {} refused: {:?}",
            options.client_id,
            connack.reason_code
        );
    }
    Ok(Connection {
        reader,
        writer,
        connack,
    })
}

/// Connects and subscribes to `filter` with maximum QoS `qos`; fails unless the SUBACK grants
/// it.
pub async fn connect_subscriber(
    addr: SocketAddr,
    options: &ConnectOptions,
    filter: &str,
    qos: QoS,
) -> anyhow::Result<Connection> {
    let mut connection = connect(addr, options).await?;
    let subscribe = Subscribe {
        packet_id: 1,
        properties: SubscribeProperties::default(),
        filters: vec![SubscribeFilter {
            filter: ByteString::from(filter),
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        }],
    };
    connection.writer.push(&Packet::Subscribe(subscribe))?;
    connection
        .writer
        .flush()
        .await
        .context("sending SUBSCRIBE")?;
    let packet = tokio::time::timeout(HANDSHAKE_TIMEOUT, connection.reader.next_packet())
        .await
        .map_err(|_| anyhow!("no SUBACK for {filter}"))?
        .context("waiting for SUBACK")?;
    match packet {
        Packet::SubAck(suback) => match suback.reason_codes.first() {
            Some(code) if (*code as u8) < 0x80 => Ok(connection),
            other => bail!("SUBSCRIBE {filter} refused: {other:?}"),
        },
        other => bail!("expected SUBACK, got {}", other.kind()),
    }
}

/// A PUBLISH for the benchmark: no properties, not retained.
pub fn publish(topic: &ByteString, qos: QoS, packet_id: Option<u16>, payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.clone(),
        packet_id,
        properties: PublishProperties::default(),
        payload,
    })
}

/// A successful PUBACK.
pub fn puback(packet_id: u16) -> Packet {
    Packet::PubAck(PubAck {
        packet_id,
        reason_code: ReasonCode::Success,
        properties: AckProperties::default(),
    })
}

/// The read half: buffers bytes and decodes whole packets.
#[derive(Debug)]
pub struct PacketReader {
    read: OwnedReadHalf,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl PacketReader {
    fn new(read: OwnedReadHalf, version: ProtocolVersion) -> PacketReader {
        PacketReader {
            read,
            buf: BytesMut::with_capacity(INITIAL_BUFFER),
            version,
        }
    }

    /// Appends every packet that is complete in the buffer to `out`, reading from the socket
    /// first if none is. Returns the number appended (at least one).
    ///
    /// Cancel-safe: bytes already read stay in the buffer if the future is dropped, so it can be
    /// used in `tokio::select!`.
    pub async fn read_batch(&mut self, out: &mut Vec<Packet>) -> anyhow::Result<usize> {
        loop {
            let before = out.len();
            while let Some(packet) = decode(&mut self.buf, Some(self.version), MAX_PACKET_SIZE)
                .map_err(|error| anyhow!("decoding a packet from the broker: {error}"))?
            {
                out.push(packet);
            }
            if out.len() > before {
                return Ok(out.len() - before);
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            let n = self
                .read
                .read_buf(&mut self.buf)
                .await
                .context("reading from the broker")?;
            if n == 0 {
                bail!("the broker closed the connection");
            }
        }
    }

    /// The next packet.
    pub async fn next_packet(&mut self) -> anyhow::Result<Packet> {
        let mut packets = Vec::with_capacity(1);
        loop {
            // Only CONNACK/SUBACK waits use this, where the broker sends exactly one packet.
            if let Some(packet) = packets.pop() {
                return Ok(packet);
            }
            self.read_batch(&mut packets).await?;
            packets.reverse();
        }
    }
}

/// The write half: packets are encoded into a buffer by [`push`](Self::push) and written
/// together by [`flush`](Self::flush).
#[derive(Debug)]
pub struct PacketWriter {
    write: OwnedWriteHalf,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl PacketWriter {
    fn new(write: OwnedWriteHalf, version: ProtocolVersion) -> PacketWriter {
        PacketWriter {
            write,
            buf: BytesMut::with_capacity(INITIAL_BUFFER),
            version,
        }
    }

    /// Encodes `packet` at the end of the pending buffer.
    pub fn push(&mut self, packet: &Packet) -> anyhow::Result<()> {
        encode(packet, self.version, &mut self.buf)
            .map_err(|error| anyhow!("encoding {}: {error}", packet.kind()))?;
        Ok(())
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Writes everything pushed so far in one `write_all`.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.write
            .write_all(&self.buf)
            .await
            .context("writing to the broker")?;
        self.buf.clear();
        Ok(())
    }

    /// Sends DISCONNECT and shuts the socket down, ignoring errors (the broker may be gone).
    pub async fn disconnect(mut self) {
        let disconnect = Packet::Disconnect(Default::default());
        if self.push(&disconnect).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.flush()).await;
        }
        let _ = self.write.shutdown().await;
    }
}
