//! A byte-exact MQTT client built on Tern's codec, for protocol-level assertions.
//!
//! It does nothing behind the test's back: no automatic acknowledgements, no keep-alive pings,
//! no reconnects. Packets that arrive while a helper waits for something else are kept, in
//! order, for the next [`RawClient::recv`].

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use tern_broker::protocol::{
    decode, encode, ConnAck, Connect, ConnectProperties, Disconnect, Packet, ProtocolVersion,
    PubAck, Publish, PublishProperties, QoS, ReasonCode, SubAck, Subscribe, SubscribeFilter,
    SubscribeProperties, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use super::{mosquitto_note, on_mosquitto, STEP_TIMEOUT};

/// Largest packet the raw client accepts from the broker (the protocol maximum).
const MAX_INCOMING: u32 = 268_435_460;

/// What [`RawClient::next_event`] observed.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // a short-lived return value; boxing would only add noise
pub enum Event {
    /// A complete packet from the broker.
    Packet(Packet),
    /// The broker closed (or reset) the connection.
    Closed,
    /// Nothing arrived in time.
    Timeout,
}

/// One MQTT connection driven packet by packet.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    read_buf: BytesMut,
    version: ProtocolVersion,
    next_packet_id: u16,
    stash: VecDeque<Packet>,
    closed: bool,
}

/// A CONNECT for `client_id` with clean start, keep alive 60 s and nothing else set.
pub fn connect_packet(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol_version: version,
        clean_start: true,
        keep_alive: 60,
        client_id: ByteString::from(client_id),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }
}

/// A CONNECT that resumes or creates a session which outlives the connection: clean session 0
/// in 3.1.1; clean start 0 with a session expiry of 300 s in 5.0.
pub fn persistent_connect_packet(version: ProtocolVersion, client_id: &str) -> Connect {
    let mut connect = connect_packet(version, client_id);
    connect.clean_start = false;
    if version == ProtocolVersion::V5 {
        connect.properties.session_expiry_interval = Some(300);
    }
    connect
}

/// A PUBLISH of `payload` to `topic` at `qos`, without packet identifier (the sending helper
/// assigns one) or properties.
pub fn publish_packet(topic: &str, payload: impl Into<Bytes>, qos: QoS) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: ByteString::from(topic),
        packet_id: None,
        properties: PublishProperties::default(),
        payload: payload.into(),
    }
}

/// Encodes `packet` as `version` would put it on the wire.
///
/// # Panics
/// If the codec refuses the packet (a bug in the test).
pub fn encode_packet(packet: &Packet, version: ProtocolVersion) -> BytesMut {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out)
        .unwrap_or_else(|error| panic!("encoding {}: {error:?}", packet.kind()));
    out
}

impl RawClient {
    /// Opens a TCP connection to `addr` without sending anything; `version` is used to encode
    /// and decode later packets.
    pub async fn open(addr: &str, version: ProtocolVersion) -> RawClient {
        let stream = timeout(STEP_TIMEOUT, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| panic!("TCP connect to {addr} timed out"))
            .unwrap_or_else(|error| panic!("TCP connect to {addr}: {error}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        RawClient {
            stream,
            read_buf: BytesMut::with_capacity(4096),
            version,
            next_packet_id: 0,
            stash: VecDeque::new(),
            closed: false,
        }
    }

    /// Connects with clean start and keep alive 60 s and asserts a successful CONNACK.
    pub async fn connect(addr: &str, version: ProtocolVersion, client_id: &str) -> RawClient {
        let (client, connack) =
            RawClient::connect_with(addr, connect_packet(version, client_id)).await;
        assert_eq!(
            connack.reason_code,
            ReasonCode::Success,
            "CONNACK for {client_id}: {connack:?}"
        );
        client
    }

    /// Sends `connect` and returns the client with the broker's CONNACK, whatever its code.
    ///
    /// # Panics
    /// If the broker answers with anything but CONNACK, or not within [`STEP_TIMEOUT`].
    pub async fn connect_with(addr: &str, connect: Connect) -> (RawClient, ConnAck) {
        let mut client = RawClient::open(addr, connect.protocol_version).await;
        client.send(&Packet::Connect(Box::new(connect))).await;
        match client.recv().await {
            Packet::ConnAck(connack) => (client, connack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects with [`persistent_connect_packet`], asserts success and returns the client and
    /// the CONNACK's session-present flag.
    pub async fn connect_persistent(
        addr: &str,
        version: ProtocolVersion,
        client_id: &str,
    ) -> (RawClient, bool) {
        let connect = persistent_connect_packet(version, client_id);
        let (client, connack) = RawClient::connect_with(addr, connect).await;
        assert_eq!(
            connack.reason_code,
            ReasonCode::Success,
            "CONNACK: {connack:?}"
        );
        (client, connack.session_present)
    }

    /// The protocol version this client encodes with.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// A fresh packet identifier (1, 2, ... wrapping, never 0).
    pub fn next_packet_id(&mut self) -> u16 {
        self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
        self.next_packet_id
    }

    /// Encodes and sends one packet.
    pub async fn send(&mut self, packet: &Packet) {
        let bytes = encode_packet(packet, self.version);
        self.send_bytes(&bytes).await;
    }

    /// Sends raw bytes, well-formed or not.
    ///
    /// Write errors are ignored: a broker may legitimately close the connection while a test
    /// is still sending, and the test then asserts on what it reads.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = timeout(STEP_TIMEOUT, self.stream.write_all(bytes)).await;
    }

    /// The next packet, connection close or timeout within `within`.
    ///
    /// # Panics
    /// If the broker sends bytes the codec cannot decode.
    pub async fn next_event(&mut self, within: Duration) -> Event {
        if let Some(packet) = self.stash.pop_front() {
            return Event::Packet(packet);
        }
        let deadline = Instant::now() + within;
        loop {
            if let Some(packet) = self.try_decode() {
                return Event::Packet(packet);
            }
            if self.closed {
                return Event::Closed;
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.read_buf));
            match read.await {
                Err(_) => return Event::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => self.closed = true,
                Ok(Ok(_)) => {}
            }
        }
    }

    fn try_decode(&mut self) -> Option<Packet> {
        match decode(&mut self.read_buf, Some(self.version), MAX_INCOMING) {
            Ok(packet) => packet,
            Err(error) => panic!(
                "broker sent undecodable bytes ({error:?}): {:02x?}",
                &self.read_buf[..]
            ),
        }
    }

    /// The next packet from the broker.
    ///
    /// # Panics
    /// If the connection closes or nothing arrives within [`STEP_TIMEOUT`].
    pub async fn recv(&mut self) -> Packet {
        match self.next_event(STEP_TIMEOUT).await {
            Event::Packet(packet) => packet,
            Event::Closed => panic!("connection closed while waiting for a packet"),
            Event::Timeout => panic!("no packet within {STEP_TIMEOUT:?}"),
        }
    }

    /// Reads exactly `n` raw bytes (for answers the codec is not meant to parse, such as a
    /// CONNACK to an unsupported protocol level). Returns fewer if the connection closes.
    pub async fn recv_bytes(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        while self.read_buf.len() < n && !self.closed {
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.read_buf));
            match read.await {
                Err(_) => panic!("only {:02x?} within {STEP_TIMEOUT:?}", &self.read_buf[..]),
                Ok(Ok(0)) | Ok(Err(_)) => self.closed = true,
                Ok(Ok(_)) => {}
            }
        }
        let take = n.min(self.read_buf.len());
        self.read_buf.split_to(take).to_vec()
    }

    /// Waits (up to [`STEP_TIMEOUT`]) for the first packet `pick` accepts, keeping every other
    /// packet for later `recv`s.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&Packet) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut skipped = VecDeque::new();
        let result = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.next_event(remaining).await {
                Event::Packet(packet) => match pick(&packet) {
                    Some(found) => break found,
                    None => skipped.push_back(packet),
                },
                Event::Closed => {
                    panic!("connection closed while waiting for {what}; got {skipped:?}")
                }
                Event::Timeout => panic!("no {what} within {STEP_TIMEOUT:?}; got {skipped:?}"),
            }
        };
        skipped.append(&mut self.stash);
        self.stash = skipped;
        result
    }

    /// The next application message, skipping nothing: any other packet fails the test.
    pub async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// `count` application messages in arrival order, each acknowledged as it arrives.
    pub async fn expect_publishes_acked(&mut self, count: usize) -> Vec<Publish> {
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let publish = self.expect_publish().await;
            self.ack(&publish).await;
            out.push(publish);
        }
        out
    }

    /// Asserts that no PUBLISH arrives within `within` (other packets are kept for later).
    pub async fn expect_no_publish(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut kept = VecDeque::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.next_event(remaining).await {
                Event::Packet(Packet::Publish(publish)) => {
                    panic!("expected no message, got {publish:?}")
                }
                Event::Packet(other) => kept.push_back(other),
                Event::Closed | Event::Timeout => break,
            }
        }
        kept.append(&mut self.stash);
        self.stash = kept;
    }

    /// Waits until the broker closes the connection and returns the DISCONNECT it sent first,
    /// if any. Packets other than DISCONNECT are ignored.
    ///
    /// # Panics
    /// If the connection is still open after [`STEP_TIMEOUT`].
    pub async fn expect_closed(&mut self) -> Option<Disconnect> {
        self.expect_closed_within(STEP_TIMEOUT).await
    }

    /// [`RawClient::expect_closed`] with an explicit deadline.
    pub async fn expect_closed_within(&mut self, within: Duration) -> Option<Disconnect> {
        let deadline = Instant::now() + within;
        let mut disconnect = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.next_event(remaining).await {
                Event::Packet(Packet::Disconnect(d)) => disconnect = Some(d),
                Event::Packet(_) => {}
                Event::Closed => return disconnect,
                Event::Timeout => panic!("connection still open after {within:?}"),
            }
        }
    }

    /// Asserts that the broker ends the connection the way the protocol version prescribes:
    /// a DISCONNECT with `reason` and then close in 5.0, a plain close in 3.1.1.
    pub async fn expect_disconnect(&mut self, reason: ReasonCode) {
        let disconnect = self.expect_closed().await;
        match self.version {
            ProtocolVersion::V5 => {
                let got = disconnect.map(|d| d.reason_code);
                assert_eq!(got, Some(reason), "DISCONNECT reason before close");
            }
            ProtocolVersion::V311 => {
                assert_eq!(disconnect, None, "3.1.1 has no server DISCONNECT");
            }
        }
    }

    /// Like [`RawClient::expect_disconnect`] for Tern; against Mosquitto, which is known to
    /// differ here as `mosquitto_differs` explains, only requires that the connection ends.
    pub async fn expect_disconnect_on_tern(&mut self, reason: ReasonCode, mosquitto_differs: &str) {
        if on_mosquitto() {
            mosquitto_note(mosquitto_differs);
            self.expect_closed().await;
        } else {
            self.expect_disconnect(reason).await;
        }
    }

    /// Subscribes to `filter` at `qos` with default options; returns the SUBACK's code.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> ReasonCode {
        let options = SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        };
        let suback = self
            .subscribe_with(&[(filter, options)], SubscribeProperties::default())
            .await;
        suback.reason_codes[0]
    }

    /// Sends one SUBSCRIBE with these filters and properties and returns the SUBACK.
    pub async fn subscribe_with(
        &mut self,
        filters: &[(&str, SubscriptionOptions)],
        properties: SubscribeProperties,
    ) -> SubAck {
        let packet_id = self.next_packet_id();
        let filters = filters
            .iter()
            .map(|(filter, options)| SubscribeFilter {
                filter: ByteString::from(*filter),
                options: *options,
            })
            .collect();
        self.send(&Packet::Subscribe(Subscribe {
            packet_id,
            properties,
            filters,
        }))
        .await;
        self.wait_for("SUBACK", |packet| match packet {
            Packet::SubAck(suback) if suback.packet_id == packet_id => Some(suback.clone()),
            _ => None,
        })
        .await
    }

    /// Unsubscribes from `filter` and returns the UNSUBACK.
    pub async fn unsubscribe(&mut self, filter: &str) -> UnsubAck {
        let packet_id = self.next_packet_id();
        self.send(&Packet::Unsubscribe(Unsubscribe {
            packet_id,
            user_properties: Vec::new(),
            filters: vec![ByteString::from(filter)],
        }))
        .await;
        self.wait_for("UNSUBACK", |packet| match packet {
            Packet::UnsubAck(ack) if ack.packet_id == packet_id => Some(ack.clone()),
            _ => None,
        })
        .await
    }

    /// Publishes and completes the QoS handshake; asserts the broker accepted the message.
    pub async fn publish(&mut self, topic: &str, payload: &str, qos: QoS, retain: bool) {
        let mut publish = publish_packet(topic, payload.to_owned(), qos);
        publish.retain = retain;
        let reason = self.publish_with(publish).await;
        assert!(
            !reason.is_error(),
            "broker refused PUBLISH to {topic}: {reason}"
        );
    }

    /// Sends `publish` (assigning a packet identifier for QoS 1/2 if it has none) and completes
    /// the handshake: waits for PUBACK, or PUBREC → PUBREL → PUBCOMP. Returns the broker's
    /// reason code (PUBACK's or PUBREC's); QoS 0 returns Success at once.
    pub async fn publish_with(&mut self, mut publish: Publish) -> ReasonCode {
        if publish.qos != QoS::AtMostOnce && publish.packet_id.is_none() {
            publish.packet_id = Some(self.next_packet_id());
        }
        let qos = publish.qos;
        let packet_id = publish.packet_id.unwrap_or(0);
        self.send(&Packet::Publish(publish)).await;
        match qos {
            QoS::AtMostOnce => ReasonCode::Success,
            QoS::AtLeastOnce => {
                self.wait_for("PUBACK", |packet| match packet {
                    Packet::PubAck(ack) if ack.packet_id == packet_id => Some(ack.reason_code),
                    _ => None,
                })
                .await
            }
            QoS::ExactlyOnce => {
                let reason = self
                    .wait_for("PUBREC", |packet| match packet {
                        Packet::PubRec(ack) if ack.packet_id == packet_id => Some(ack.reason_code),
                        _ => None,
                    })
                    .await;
                if reason.is_error() {
                    return reason;
                }
                self.send(&Packet::PubRel(PubAck::success(packet_id))).await;
                self.wait_for("PUBCOMP", |packet| match packet {
                    Packet::PubComp(ack) if ack.packet_id == packet_id => Some(()),
                    _ => None,
                })
                .await;
                reason
            }
        }
    }

    /// Acknowledges a received message as a well-behaved client: PUBACK for QoS 1; PUBREC,
    /// then waits for PUBREL and sends PUBCOMP for QoS 2; nothing for QoS 0.
    pub async fn ack(&mut self, publish: &Publish) {
        let packet_id = publish.packet_id.unwrap_or(0);
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(PubAck::success(packet_id))).await,
            QoS::ExactlyOnce => {
                self.send(&Packet::PubRec(PubAck::success(packet_id))).await;
                self.wait_for("PUBREL", |packet| match packet {
                    Packet::PubRel(ack) if ack.packet_id == packet_id => Some(()),
                    _ => None,
                })
                .await;
                self.send(&Packet::PubComp(PubAck::success(packet_id)))
                    .await;
            }
        }
    }

    /// Sends PINGREQ and waits for PINGRESP: a round trip proving that everything the broker
    /// sent before has been read.
    pub async fn ping(&mut self) {
        self.send(&Packet::PingReq).await;
        self.wait_for("PINGRESP", |packet| {
            matches!(packet, Packet::PingResp).then_some(())
        })
        .await;
    }

    /// Sends a normal DISCONNECT and waits (bounded) for the broker to close the socket.
    pub async fn disconnect(self) {
        self.disconnect_with(Disconnect::default()).await;
    }

    /// Sends this DISCONNECT and waits (bounded) for the broker to close the socket.
    pub async fn disconnect_with(mut self, disconnect: Disconnect) {
        self.send(&Packet::Disconnect(disconnect)).await;
        let _ = self.next_until_closed().await;
    }

    async fn next_until_closed(&mut self) -> bool {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.next_event(remaining).await {
                Event::Packet(_) => {}
                Event::Closed => return true,
                Event::Timeout => return false,
            }
        }
    }

    /// Ends the connection without DISCONNECT, as a crashed client or a broken network would:
    /// the socket is reset (SO_LINGER 0), so the broker must treat it as an abnormal end.
    pub fn drop_connection(self) {
        let _ = self.stream.set_zero_linger();
        drop(self.stream);
    }
}

/// A client pair on a quiet topic that proves the broker still serves others: used by tests
/// that misbehave on another connection.
#[derive(Debug)]
pub struct Bystander {
    subscriber: RawClient,
    publisher: RawClient,
}

impl Bystander {
    /// The topic the bystander listens on.
    pub const TOPIC: &'static str = "bystander/still-served";

    /// Connects a 5.0 subscriber (QoS 1 on [`Bystander::TOPIC`]) and a 3.1.1 publisher.
    pub async fn start(addr: &str) -> Bystander {
        let mut subscriber = RawClient::connect(addr, ProtocolVersion::V5, "bystander-sub").await;
        let granted = subscriber
            .subscribe(Bystander::TOPIC, QoS::AtLeastOnce)
            .await;
        assert_eq!(granted, ReasonCode::GrantedQoS1);
        let publisher = RawClient::connect(addr, ProtocolVersion::V311, "bystander-pub").await;
        Bystander {
            subscriber,
            publisher,
        }
    }

    /// Asserts both bystander connections still work: a QoS 1 message published now arrives.
    pub async fn assert_unaffected(mut self) {
        self.publisher
            .publish(Bystander::TOPIC, "still here", QoS::AtLeastOnce, false)
            .await;
        let publish = self.subscriber.expect_publish().await;
        assert_eq!(&publish.payload[..], b"still here", "bystander message");
        self.subscriber.ack(&publish).await;
        self.subscriber.disconnect().await;
        self.publisher.disconnect().await;
    }
}
