//! `rumqttc` as an ordinary Rust application would use it, behind one type for both protocol
//! versions: its event loop runs in a task that forwards messages and acknowledgements.

use bytes::Bytes;
use tern_broker::protocol::{ProtocolVersion, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::STEP_TIMEOUT;

/// A message as `rumqttc` delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RumqttMessage {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS the broker delivered it with (0..=2).
    pub qos: u8,
    /// Retain flag as delivered.
    pub retain: bool,
}

/// Acknowledgements and failures reported by the event loop task.
#[derive(Debug)]
enum Signal {
    ConnAck { code: String },
    SubAck { granted: Vec<Option<u8>> },
    PubAck,
    PubComp,
    Failed(String),
}

#[derive(Clone)]
enum Handle {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// A connected `rumqttc` client (3.1.1 via `rumqttc`, 5.0 via `rumqttc::v5`).
pub struct RumqttClient {
    handle: Handle,
    messages: mpsc::UnboundedReceiver<RumqttMessage>,
    signals: mpsc::UnboundedReceiver<Signal>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for RumqttClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RumqttClient").finish_non_exhaustive()
    }
}

fn v4_qos(qos: QoS) -> rumqttc::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}

fn v5_qos(qos: QoS) -> rumqttc::v5::mqttbytes::QoS {
    use rumqttc::v5::mqttbytes::QoS as Q;
    match qos {
        QoS::AtMostOnce => Q::AtMostOnce,
        QoS::AtLeastOnce => Q::AtLeastOnce,
        QoS::ExactlyOnce => Q::ExactlyOnce,
    }
}

impl RumqttClient {
    /// Connects `client_id` with a clean session to the broker on 127.0.0.1:`port` and waits
    /// for a successful CONNACK.
    ///
    /// # Panics
    /// If the connection fails or is refused within [`STEP_TIMEOUT`].
    pub async fn connect(port: u16, version: ProtocolVersion, client_id: &str) -> RumqttClient {
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let (signals_tx, signals) = mpsc::unbounded_channel();
        let (handle, task) = match version {
            ProtocolVersion::V311 => {
                let options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
                let (client, eventloop) = rumqttc::AsyncClient::new(options, 100);
                let task = tokio::spawn(drive_v4(eventloop, messages_tx, signals_tx));
                (Handle::V4(client), task)
            }
            ProtocolVersion::V5 => {
                let options = rumqttc::v5::MqttOptions::new(client_id, "127.0.0.1", port);
                let (client, eventloop) = rumqttc::v5::AsyncClient::new(options, 100);
                let task = tokio::spawn(drive_v5(eventloop, messages_tx, signals_tx));
                (Handle::V5(client), task)
            }
        };
        let mut client = RumqttClient {
            handle,
            messages,
            signals,
            task,
        };
        match client.signal("CONNACK").await {
            Signal::ConnAck { code } => assert_eq!(code, "Success", "rumqttc CONNACK"),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        client
    }

    async fn signal(&mut self, what: &str) -> Signal {
        match timeout(STEP_TIMEOUT, self.signals.recv()).await {
            Ok(Some(Signal::Failed(error))) => panic!("rumqttc failed waiting for {what}: {error}"),
            Ok(Some(signal)) => signal,
            Ok(None) => panic!("rumqttc event loop ended waiting for {what}"),
            Err(_) => panic!("rumqttc: no {what} within {STEP_TIMEOUT:?}"),
        }
    }

    /// Subscribes and waits for SUBACK; returns the granted QoS (`None` for a failure code).
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Option<u8> {
        let sent = match &self.handle {
            Handle::V4(client) => client
                .subscribe(filter, v4_qos(qos))
                .await
                .map_err(|e| e.to_string()),
            Handle::V5(client) => client
                .subscribe(filter, v5_qos(qos))
                .await
                .map_err(|e| e.to_string()),
        };
        sent.unwrap_or_else(|error| panic!("rumqttc subscribe: {error}"));
        match self.signal("SUBACK").await {
            Signal::SubAck { granted } => granted[0],
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes and, for QoS 1/2, waits until the handshake is complete (PUBACK / PUBCOMP).
    /// Publishes must not overlap: this waits for the next acknowledgement of that kind.
    pub async fn publish(&mut self, topic: &str, payload: &str, qos: QoS, retain: bool) {
        let payload = payload.as_bytes().to_vec();
        let sent = match &self.handle {
            Handle::V4(client) => client
                .publish(topic, v4_qos(qos), retain, payload)
                .await
                .map_err(|e| e.to_string()),
            Handle::V5(client) => client
                .publish(topic, v5_qos(qos), retain, payload)
                .await
                .map_err(|e| e.to_string()),
        };
        sent.unwrap_or_else(|error| panic!("rumqttc publish: {error}"));
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => match self.signal("PUBACK").await {
                Signal::PubAck => {}
                other => panic!("expected PUBACK, got {other:?}"),
            },
            QoS::ExactlyOnce => match self.signal("PUBCOMP").await {
                Signal::PubComp => {}
                other => panic!("expected PUBCOMP, got {other:?}"),
            },
        }
    }

    /// The next message (acknowledged automatically by `rumqttc`).
    ///
    /// # Panics
    /// If none arrives within [`STEP_TIMEOUT`].
    pub async fn recv(&mut self) -> RumqttMessage {
        match timeout(STEP_TIMEOUT, self.messages.recv()).await {
            Ok(Some(message)) => message,
            Ok(None) => panic!("rumqttc event loop ended while waiting for a message"),
            Err(_) => panic!("rumqttc: no message within {STEP_TIMEOUT:?}"),
        }
    }

    /// Sends DISCONNECT and stops the event loop.
    pub async fn disconnect(self) {
        let _ = match &self.handle {
            Handle::V4(client) => client.disconnect().await.map_err(|e| e.to_string()),
            Handle::V5(client) => client.disconnect().await.map_err(|e| e.to_string()),
        };
        let _ = timeout(STEP_TIMEOUT, self.task).await;
    }
}

async fn drive_v4(
    mut eventloop: rumqttc::EventLoop,
    messages: mpsc::UnboundedSender<RumqttMessage>,
    signals: mpsc::UnboundedSender<Signal>,
) {
    use rumqttc::{Event, Packet, SubscribeReasonCode};
    loop {
        let signal = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let _ = messages.send(RumqttMessage {
                    topic: p.topic.clone(),
                    payload: p.payload.clone(),
                    qos: p.qos as u8,
                    retain: p.retain,
                });
                continue;
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => Signal::ConnAck {
                code: format!("{:?}", ack.code),
            },
            Ok(Event::Incoming(Packet::SubAck(ack))) => Signal::SubAck {
                granted: ack
                    .return_codes
                    .iter()
                    .map(|code| match code {
                        SubscribeReasonCode::Success(qos) => Some(*qos as u8),
                        SubscribeReasonCode::Failure => None,
                    })
                    .collect(),
            },
            Ok(Event::Incoming(Packet::PubAck(_))) => Signal::PubAck,
            Ok(Event::Incoming(Packet::PubComp(_))) => Signal::PubComp,
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => continue,
            Err(error) => {
                let _ = signals.send(Signal::Failed(error.to_string()));
                return;
            }
        };
        let _ = signals.send(signal);
    }
}

async fn drive_v5(
    mut eventloop: rumqttc::v5::EventLoop,
    messages: mpsc::UnboundedSender<RumqttMessage>,
    signals: mpsc::UnboundedSender<Signal>,
) {
    use rumqttc::v5::mqttbytes::v5::{Packet, SubscribeReasonCode};
    use rumqttc::v5::Event;
    loop {
        let signal = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let _ = messages.send(RumqttMessage {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload.clone(),
                    qos: p.qos as u8,
                    retain: p.retain,
                });
                continue;
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => Signal::ConnAck {
                code: format!("{:?}", ack.code),
            },
            Ok(Event::Incoming(Packet::SubAck(ack))) => Signal::SubAck {
                granted: ack
                    .return_codes
                    .iter()
                    .map(|code| match code {
                        SubscribeReasonCode::Success(qos) => Some(*qos as u8),
                        _ => None,
                    })
                    .collect(),
            },
            Ok(Event::Incoming(Packet::PubAck(_))) => Signal::PubAck,
            Ok(Event::Incoming(Packet::PubComp(_))) => Signal::PubComp,
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => continue,
            Err(error) => {
                let _ = signals.send(Signal::Failed(error.to_string()));
                return;
            }
        };
        let _ = signals.send(signal);
    }
}
