//! `$SYS` statistics: published periodically (sys interval 1 s in these tests), with the
//! Mosquitto-compatible names `$SYS/broker/{uptime,version,clients/connected,messages/received}`,
//! and hidden from subscriptions that start with a wildcard.

use tern_broker::protocol::{Publish, QoS};
use tern_e2e::broker::{BrokerConfig, BrokerProcess};
use tern_e2e::clients::{
    mosquitto_note, on_mosquitto, start_broker_with, ProtocolVersion, RawClient,
};

// `$SYS` does not depend on the protocol version; the tests alternate between the two.
const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn broker_with_sys() -> BrokerProcess {
    start_broker_with(&BrokerConfig {
        sys_interval_secs: Some(1),
        ..BrokerConfig::default()
    })
}

/// The number a `$SYS` payload starts with ("42" or "42 seconds").
fn leading_number(publish: &Publish) -> u64 {
    let text = String::from_utf8_lossy(&publish.payload);
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{} is not numeric: {text:?}", publish.topic))
}

/// A client subscribed to `topic` at QoS 0.
async fn watch(broker: &BrokerProcess, version: ProtocolVersion, topic: &str) -> RawClient {
    let mut client = RawClient::connect(&broker.addr(), version, "sys-watcher").await;
    client.subscribe(topic, QoS::AtMostOnce).await;
    client
}

/// Reads updates of the watched topic until one satisfies `done`; returns the values seen.
async fn until_value(client: &mut RawClient, done: impl Fn(u64) -> bool) -> Vec<u64> {
    let mut seen = Vec::new();
    loop {
        let value = leading_number(&client.expect_publish().await);
        seen.push(value);
        if done(value) {
            return seen;
        }
    }
}

#[tokio::test]
async fn uptime_is_published_periodically_and_increases() {
    let version = V5;
    let broker = broker_with_sys();
    let mut watcher = watch(&broker, version, "$SYS/broker/uptime").await;

    let first = leading_number(&watcher.expect_publish().await);
    let seen = until_value(&mut watcher, |uptime| uptime > first).await;

    assert!(
        seen.len() <= 4,
        "about one update per second: {first} then {seen:?}"
    );
}

#[tokio::test]
async fn version_is_published() {
    let version = V311;
    let broker = broker_with_sys();
    let mut watcher = watch(&broker, version, "$SYS/broker/version").await;

    let publish = watcher.expect_publish().await;

    let text = String::from_utf8_lossy(&publish.payload).into_owned();
    if on_mosquitto() {
        mosquitto_note("Mosquitto names itself in $SYS/broker/version");
        assert!(text.starts_with("mosquitto"), "{text}");
    } else {
        assert!(text.starts_with("tern "), "{text}");
    }
}

#[tokio::test]
async fn clients_connected_counts_the_connected_clients() {
    let version = V311;
    let broker = broker_with_sys();
    let mut watcher = watch(&broker, version, "$SYS/broker/clients/connected").await;
    let mut others = Vec::new();
    for i in 0..3 {
        others.push(RawClient::connect(&broker.addr(), version, &format!("extra-{i}")).await);
    }

    // The watcher plus three others; earlier updates may still show fewer.
    until_value(&mut watcher, |connected| connected == 4).await;
}

#[tokio::test]
async fn messages_received_counts_published_messages() {
    let version = V5;
    let broker = broker_with_sys();
    let mut watcher = watch(&broker, version, "$SYS/broker/messages/received").await;
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;
    for i in 0..5 {
        publisher
            .publish("counted", &i.to_string(), QoS::AtLeastOnce, false)
            .await;
    }

    until_value(&mut watcher, |received| received >= 5).await;
}

#[tokio::test]
async fn sys_topics_are_not_delivered_to_a_hash_subscription() {
    let version = V311;
    let broker = broker_with_sys();
    let mut everything = RawClient::connect(&broker.addr(), version, "all").await;
    everything.subscribe("#", QoS::AtMostOnce).await;
    let mut sys = watch(&broker, version, "$SYS/broker/uptime").await;

    // Two uptime updates: at least one periodic publication happened after `#` subscribed.
    sys.expect_publish().await;
    sys.expect_publish().await;
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;
    publisher
        .publish("plain", "sentinel", QoS::AtMostOnce, false)
        .await;

    let first = everything.expect_publish().await;
    assert_eq!(
        &first.payload[..],
        b"sentinel",
        "no $SYS message: {first:?}"
    );
}
