//! The broker's configuration: the types (shared with the operator, which renders them), loading
//! from `broker.yaml`, and validation.
//!
//! Keys are camelCase and unknown keys are rejected, so a typo is an error with a line number
//! rather than a silently ignored setting.

mod load;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use load::{load_config, parse_config, revision_of, ConfigError, LoadedConfig};

/// Everything the broker needs to run, as read from `broker.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BrokerConfig {
    /// Sockets that accept MQTT clients. At least one.
    pub listeners: Vec<ListenerConfig>,
    /// Resource limits and protocol maxima.
    #[serde(default)]
    pub limits: Limits,
    /// The Prometheus / health HTTP endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The `$SYS/broker/...` statistics topics.
    #[serde(default)]
    pub sys: SysConfig,
    /// Who may connect.
    #[serde(default)]
    pub auth: AuthConfig,
}

impl BrokerConfig {
    /// The configuration used when `tern-broker` starts without `--config`: like Mosquitto 2's
    /// local-only mode, one plain MQTT listener on 127.0.0.1:1883, anonymous clients allowed,
    /// metrics on 127.0.0.1:9090.
    pub fn embedded_default() -> BrokerConfig {
        BrokerConfig {
            listeners: vec![ListenerConfig {
                name: "mqtt".into(),
                port: 1883,
                bind: IpAddr::from([127, 0, 0, 1]),
                protocol: ListenerProtocol::Mqtt,
            }],
            limits: Limits::default(),
            metrics: MetricsConfig::default(),
            sys: SysConfig::default(),
            auth: AuthConfig {
                allow_anonymous: true,
            },
        }
    }
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerConfig {
    /// Unique name, used in logs and as the `listener` metric label.
    pub name: String,
    /// TCP port.
    pub port: u16,
    /// Address to bind; all IPv4 interfaces by default.
    #[serde(default = "default_listener_bind")]
    pub bind: IpAddr,
    /// Wire protocol spoken on the socket.
    #[serde(default)]
    pub protocol: ListenerProtocol,
}

fn default_listener_bind() -> IpAddr {
    IpAddr::from([0, 0, 0, 0])
}

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ListenerProtocol {
    /// MQTT directly over TCP.
    #[default]
    Mqtt,
}

/// Limits with defaults close to Mosquitto's, so an unconfigured broker behaves like one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Limits {
    /// Highest keep alive (seconds) a client may use; larger (or zero) requests are capped and
    /// the client is told via Server Keep Alive (5.0). 0 means no cap.
    pub max_keep_alive: u16,
    /// Receive Maximum the broker advertises: unacknowledged QoS 1/2 PUBLISHes a client may
    /// have in flight towards the broker.
    pub receive_maximum: u16,
    /// Largest packet accepted from clients, in bytes (advertised as Maximum Packet Size).
    pub max_packet_size: u32,
    /// Topic aliases a client may use towards the broker.
    pub topic_alias_maximum: u16,
    /// Messages the broker keeps per session waiting to be sent (offline queue, and the
    /// backlog of a slow connected subscriber).
    pub max_queued_messages: usize,
    /// Unacknowledged QoS 1/2 messages the broker sends a client at once (further capped by
    /// the client's own Receive Maximum).
    pub max_inflight: u16,
    /// Simultaneous client connections; further connections are refused (0x97 / 0x03).
    pub max_connections: usize,
    /// Levels allowed in a topic name or filter.
    pub max_topic_levels: usize,
    /// Highest Session Expiry Interval (seconds) granted to a client.
    pub max_session_expiry: u32,
    /// Seconds a publisher may be held back while a subscriber's queue is full before its
    /// QoS 1/2 PUBLISH is refused (5.0: 0x97 Quota exceeded; 3.1.1: connection closed so the
    /// client retransmits).
    pub backpressure_timeout: u32,
    /// Seconds a new connection has to send CONNECT.
    pub connect_timeout: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_keep_alive: 65_535,
            receive_maximum: 100,
            max_packet_size: 1_048_576,
            topic_alias_maximum: 10,
            max_queued_messages: 1000,
            max_inflight: 100,
            max_connections: 100_000,
            max_topic_levels: 128,
            max_session_expiry: u32::MAX,
            backpressure_timeout: 10,
            connect_timeout: 10,
        }
    }
}

/// The HTTP server for `/metrics`, `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Whether the HTTP server runs at all.
    pub enabled: bool,
    /// Address to bind.
    pub bind: IpAddr,
    /// TCP port.
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig {
            enabled: true,
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 9090,
        }
    }
}

/// `$SYS` statistics publishing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SysConfig {
    /// Seconds between updates; 0 disables `$SYS` topics.
    pub interval_seconds: u32,
}

impl Default for SysConfig {
    fn default() -> SysConfig {
        SysConfig {
            interval_seconds: 10,
        }
    }
}

/// Client authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Whether clients without credentials may connect. Off unless configured (like Mosquitto 2
    /// with explicit listeners); the embedded default turns it on for its loopback listener.
    pub allow_anonymous: bool,
}
