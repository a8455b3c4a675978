//! The clients the end-to-end tests drive brokers with, and the broker selection they share.
//!
//! * [`RawClient`]: a byte-exact client over a tokio `TcpStream` using Tern's own codec, for
//!   tests that check reason codes, flags and flow control, or send malformed bytes.
//! * [`RumqttClient`]: the `rumqttc` crate (3.1.1 and 5.0) as an ordinary Rust application.
//! * [`MosquittoSub`] / [`mosquitto_pub`]: the Mosquitto command-line clients.
//! * [`paho`]: Python scripts in `tests/paho/` using paho-mqtt 2.x, one scenario each.
//!
//! Every wait is bounded: a hung broker fails the test within seconds instead of hanging CI.
//!
//! Tests pick the broker with [`start_broker`]; the environment variable `TERN_E2E_BROKER`
//! (`tern`, the default, or `mosquitto`) decides which implementation runs, so the same suite
//! validates itself against Mosquitto, the reference implementation.

mod raw;
mod rumqtt;
mod tools;

use std::time::Duration;

pub use raw::{
    connect_packet, encode_packet, persistent_connect_packet, publish_packet, Bystander, Event,
    RawClient,
};
pub use rumqtt::{RumqttClient, RumqttMessage};
pub use tools::{mosquitto_pub, paho, MosquittoSub, SubOptions};

pub use tern_broker::protocol::ProtocolVersion;

use crate::broker::{BrokerConfig, BrokerKind, BrokerProcess};

/// Environment variable choosing the broker under test: `tern` (default) or `mosquitto`.
pub const BROKER_ENV: &str = "TERN_E2E_BROKER";

/// Upper bound for any single step of a test (a CONNACK, a SUBACK, one expected message).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long tests wait to be reasonably sure that something does *not* happen, when no
/// sentinel message can prove it sooner.
pub const QUIET_PERIOD: Duration = Duration::from_millis(300);

/// The broker implementation selected by `TERN_E2E_BROKER`.
///
/// # Panics
/// On any value other than `tern` or `mosquitto`, so a typo cannot silently test Tern.
pub fn broker_kind() -> BrokerKind {
    match std::env::var(BROKER_ENV) {
        Err(_) => BrokerKind::Tern,
        Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
            "" | "tern" => BrokerKind::Tern,
            "mosquitto" => BrokerKind::Mosquitto,
            other => panic!("{BROKER_ENV}={other}: expected `tern` or `mosquitto`"),
        },
    }
}

/// Whether the suite runs against Mosquitto (the reference) rather than Tern.
pub fn on_mosquitto() -> bool {
    broker_kind() == BrokerKind::Mosquitto
}

/// Starts the selected broker with its default configuration.
pub fn start_broker() -> BrokerProcess {
    start_broker_with(&BrokerConfig::default())
}

/// Starts the selected broker with `config`.
///
/// # Panics
/// If the broker does not start; the message contains the broker's log.
pub fn start_broker_with(config: &BrokerConfig) -> BrokerProcess {
    let kind = broker_kind();
    BrokerProcess::start(kind, config).unwrap_or_else(|error| panic!("starting {kind}: {error:#}"))
}

/// For tests of Tern-only behaviour: returns `true` (and prints why) when running against
/// Mosquitto, in which case the test should return early.
pub fn skip_on_mosquitto(why: &str) -> bool {
    if on_mosquitto() {
        eprintln!("note: skipped on mosquitto: {why}");
        return true;
    }
    false
}

/// Prints a note that Mosquitto legitimately deviates here, so only the part of the check both
/// brokers share was made.
pub fn mosquitto_note(what: &str) {
    eprintln!("note: mosquitto differs, check relaxed: {what}");
}

/// Generates one `#[tokio::test]` per protocol version for an `async fn(ProtocolVersion)`.
///
/// `per_version!(retained_message_is_replayed);` turns
/// `async fn retained_message_is_replayed(version: ProtocolVersion)` into the tests
/// `retained_message_is_replayed::v311` and `retained_message_is_replayed::v5`.
#[macro_export]
macro_rules! per_version {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn v311() {
                    super::$scenario($crate::clients::ProtocolVersion::V311).await
                }

                #[tokio::test]
                async fn v5() {
                    super::$scenario($crate::clients::ProtocolVersion::V5).await
                }
            }
        )+
    };
}

/// `"v311"` or `"v5"`, for client identifiers and topics that should say which test made them.
pub fn version_tag(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V311 => "v311",
        ProtocolVersion::V5 => "v5",
    }
}

/// Polls `condition` every 20 ms until it holds or `within` elapses; returns whether it held.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
