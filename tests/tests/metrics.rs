//! The Prometheus endpoint: valid exposition format (checked by `promtool`), and counters that
//! move by exactly the traffic a test drives.

use std::io::Write;
use std::process::{Command, Stdio};

use tern_broker::protocol::QoS;
use tern_e2e::broker::{BrokerConfig, BrokerKind, BrokerProcess};
use tern_e2e::clients::{ProtocolVersion, RawClient};
use tern_e2e::http::{self, sample};

fn tern() -> BrokerProcess {
    BrokerProcess::start(BrokerKind::Tern, &BrokerConfig::default()).expect("starting tern")
}

fn scrape(broker: &BrokerProcess) -> String {
    let (status, body) = http::get(broker.metrics_port().unwrap(), "/metrics").unwrap();
    assert_eq!(status, 200);
    body
}

/// The values of `series` in two scrapes, subtracted.
fn delta(before: &str, after: &str, series: &str) -> f64 {
    sample(after, series).unwrap_or(0.0) - sample(before, series).unwrap_or(0.0)
}

#[tokio::test]
async fn the_metrics_output_passes_promtool_check() {
    let broker = tern();
    let mut client = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "lint").await;
    client.subscribe("a/#", QoS::AtLeastOnce).await;
    client.publish("a/b", "x", QoS::AtLeastOnce, false).await;
    let body = scrape(&broker);

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running promtool (scripts/install-test-deps.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();

    assert!(
        output.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn publish_counters_move_by_exactly_the_messages_sent() {
    let broker = tern();
    let mut subscriber = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "sub").await;
    subscriber.subscribe("counted/#", QoS::AtLeastOnce).await;
    let mut publisher = RawClient::connect(&broker.addr(), ProtocolVersion::V311, "pub").await;
    let before = scrape(&broker);

    for i in 0..3 {
        publisher
            .publish("counted/x", &i.to_string(), QoS::AtLeastOnce, false)
            .await;
    }
    for _ in 0..2 {
        publisher
            .publish("nobody/listens", "x", QoS::AtMostOnce, false)
            .await;
    }
    subscriber.expect_publishes_acked(3).await;
    // A PINGRESP on each connection proves the broker has read (and counted) everything the
    // client sent before it: the publisher's QoS 0 messages and the subscriber's PUBACKs.
    publisher.ping().await;
    subscriber.ping().await;
    let after = scrape(&broker);

    let expectations = [
        ("tern_messages_received_total{qos=\"1\"}", 3.0),
        ("tern_messages_received_total{qos=\"0\"}", 2.0),
        ("tern_messages_sent_total{qos=\"1\"}", 3.0),
        (
            "tern_messages_dropped_total{reason=\"no_subscribers\"}",
            2.0,
        ),
        ("tern_packets_received_total{type=\"PUBLISH\"}", 5.0),
        ("tern_packets_received_total{type=\"PUBACK\"}", 3.0),
        ("tern_packets_received_total{type=\"PINGREQ\"}", 2.0),
        ("tern_delivery_latency_seconds_count", 3.0),
    ];
    for (series, expected) in expectations {
        assert_eq!(delta(&before, &after, series), expected, "{series}");
    }
}

#[tokio::test]
async fn connection_gauges_follow_clients_per_listener() {
    let broker = tern();
    // The start-up readiness probe's TCP connection is accepted before this client's (the
    // accept queue is FIFO), so after its CONNACK the counters have settled.
    let _settled = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "settle").await;
    let before = scrape(&broker);

    let first = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "one").await;
    let mut second = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "two").await;
    second.ping().await;
    let during = scrape(&broker);
    first.disconnect().await;
    second.disconnect().await;

    assert_eq!(delta(&before, &during, "tern_connections"), 2.0);
    assert_eq!(
        delta(
            &before,
            &during,
            "tern_listener_connections{listener=\"mqtt\"}"
        ),
        2.0
    );
    assert_eq!(
        delta(&before, &during, "tern_connections_accepted_total"),
        2.0
    );
}

#[tokio::test]
async fn healthz_answers_while_the_process_runs() {
    let broker = tern();
    let (status, _) = http::get(broker.metrics_port().unwrap(), "/healthz").unwrap();
    assert_eq!(status, 200);
}
