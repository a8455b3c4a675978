//! Live configuration: the broker's configuration directory is a kubelet-style projected
//! volume (`..data` symlink swapped atomically), rewritten while clients stay connected.
//!
//! "Stays connected" is proven by delivery: a client subscribed before the change receives a
//! message published after it, on the same TCP connection.

use std::net::TcpListener;
use std::time::Duration;

use tern_broker::protocol::{QoS, ReasonCode};
use tern_e2e::broker::free_port;
use tern_e2e::certs::TestCa;
use tern_e2e::clients::{
    mosquitto_pub, paho, MosquittoSub, ProtocolVersion, RawClient, SubOptions,
};
use tern_e2e::http::{self, metric};
use tern_e2e::live::{file, LiveBroker, APPLY_WITHIN};
use tern_e2e::projected::VolumeFile;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;

/// `broker.yaml` with the given listener entries (YAML flow maps) and extra top-level YAML.
fn broker_yaml(metrics_port: u16, listeners: &[String], extra: &str) -> VolumeFile {
    let mut yaml = String::from("listeners:\n");
    for listener in listeners {
        yaml.push_str(&format!("  - {listener}\n"));
    }
    yaml.push_str(&format!(
        "metrics: {{ bind: 127.0.0.1, port: {metrics_port} }}\n\
         auth: {{ allowAnonymous: true }}\n\
         reload: {{ debounceMillis: 50 }}\n{extra}"
    ));
    file("broker.yaml", yaml)
}

fn mqtt_listener(name: &str, port: u16) -> String {
    format!("{{ name: {name}, port: {port}, bind: 127.0.0.1 }}")
}

/// Publishes on `port` and asserts that `subscriber` (subscribed to `t/#`) receives it.
async fn assert_still_delivers(subscriber: &mut RawClient, port: u16, payload: &str) {
    let mut publisher = RawClient::connect(&format!("127.0.0.1:{port}"), V5, "publisher").await;
    publisher
        .publish("t/x", payload, QoS::AtLeastOnce, false)
        .await;
    let received = subscriber.expect_publish().await;
    assert_eq!(&received.payload[..], payload.as_bytes());
    publisher.disconnect().await;
}

fn port_accepts(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[tokio::test]
async fn a_listener_added_by_a_volume_swap_accepts_clients_and_no_one_is_dropped() {
    let (a, b, metrics) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let mut broker = LiveBroker::start(
        a,
        &[broker_yaml(metrics, &[mqtt_listener("a", a)], "")],
        metrics,
    );
    let mut subscriber = RawClient::connect(&format!("127.0.0.1:{a}"), V311, "sub").await;
    subscriber.subscribe("t/#", QoS::AtLeastOnce).await;

    broker.apply(&[broker_yaml(
        metrics,
        &[mqtt_listener("a", a), mqtt_listener("b", b)],
        "",
    )]);

    assert_still_delivers(&mut subscriber, b, "via the new listener").await;
}

#[tokio::test]
async fn a_removed_listener_refuses_new_clients_but_keeps_its_connections() {
    let (a, b, metrics) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let both = [mqtt_listener("a", a), mqtt_listener("b", b)];
    let mut broker = LiveBroker::start(a, &[broker_yaml(metrics, &both, "")], metrics);
    let mut on_b = RawClient::connect(&format!("127.0.0.1:{b}"), V5, "on-b").await;
    on_b.subscribe("t/#", QoS::AtLeastOnce).await;

    broker.apply(&[broker_yaml(metrics, &[mqtt_listener("a", a)], "")]);

    assert!(!port_accepts(b), "removed listener still accepts");
    assert_still_delivers(&mut on_b, a, "still here").await;
}

#[tokio::test]
async fn a_removed_listener_closes_its_connections_with_0x8b_when_configured() {
    let (a, b, metrics) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let close = "reload: { debounceMillis: 50, closeRemovedListenerConnections: true }\n";
    let yaml = |listeners: &[String]| {
        let (name, content) = broker_yaml(metrics, listeners, "");
        let text = String::from_utf8(content)
            .unwrap()
            .replace("reload: { debounceMillis: 50 }\n", close);
        (name, text.into_bytes())
    };
    let mut broker = LiveBroker::start(
        a,
        &[yaml(&[mqtt_listener("a", a), mqtt_listener("b", b)])],
        metrics,
    );
    let mut on_b = RawClient::connect(&format!("127.0.0.1:{b}"), V5, "on-b").await;

    broker.apply(&[yaml(&[mqtt_listener("a", a)])]);

    on_b.expect_disconnect(ReasonCode::ServerShuttingDown).await;
}

#[tokio::test]
async fn a_moved_listener_serves_on_its_new_port_without_dropping_clients() {
    let (old, new, metrics) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let mut broker = LiveBroker::start(
        old,
        &[broker_yaml(metrics, &[mqtt_listener("a", old)], "")],
        metrics,
    );
    let mut subscriber = RawClient::connect(&format!("127.0.0.1:{old}"), V5, "sub").await;
    subscriber.subscribe("t/#", QoS::AtLeastOnce).await;

    broker.apply(&[broker_yaml(metrics, &[mqtt_listener("a", new)], "")]);

    assert!(!port_accepts(old), "the old port still accepts");
    assert_still_delivers(&mut subscriber, new, "moved").await;
}

#[tokio::test]
async fn invalid_yaml_is_refused_and_the_running_revision_stays_in_force() {
    let (a, metrics) = (free_port().unwrap(), free_port().unwrap());
    let mut broker = LiveBroker::start(
        a,
        &[broker_yaml(metrics, &[mqtt_listener("a", a)], "")],
        metrics,
    );
    let info = format!(
        "tern_config_info{{revision=\"{}\"}}",
        broker.revision().unwrap()
    );

    let log = broker.apply_rejected(&[file("broker.yaml", "listeners: [ {name: a, port: ")]);

    assert!(log.contains("configuration rejected"), "{log}");
    assert_eq!(
        metric(metrics, &info).unwrap(),
        1.0,
        "tern_config_info lost the old revision"
    );
}

#[tokio::test]
async fn an_unknown_key_is_refused_naming_the_key_and_line() {
    let (a, metrics) = (free_port().unwrap(), free_port().unwrap());
    let mut broker = LiveBroker::start(
        a,
        &[broker_yaml(metrics, &[mqtt_listener("a", a)], "")],
        metrics,
    );

    let log = broker.apply_rejected(&[broker_yaml(
        metrics,
        &[mqtt_listener("a", a)],
        "limitz: {}\n",
    )]);

    assert!(
        log.contains("unknown field `limitz`") && log.contains("line 6"),
        "{log}"
    );
}

#[tokio::test]
async fn a_missing_tls_file_is_refused_naming_the_file() {
    let (a, b, metrics) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let mut broker = LiveBroker::start(
        a,
        &[broker_yaml(metrics, &[mqtt_listener("a", a)], "")],
        metrics,
    );
    let tls = format!("{{ name: tls, port: {b}, bind: 127.0.0.1, tls: {{ certFile: tls/tls.crt, keyFile: tls/tls.key }} }}");

    let log = broker.apply_rejected(&[broker_yaml(metrics, &[mqtt_listener("a", a), tls], "")]);

    assert!(log.contains("tls/tls.crt"), "{log}");
    assert!(
        !port_accepts(b),
        "a listener of the refused configuration was bound"
    );
}

#[tokio::test]
async fn an_empty_volume_mid_swap_is_refused() {
    let (a, metrics) = (free_port().unwrap(), free_port().unwrap());
    let mut broker = LiveBroker::start(
        a,
        &[broker_yaml(metrics, &[mqtt_listener("a", a)], "")],
        metrics,
    );
    let mut subscriber = RawClient::connect(&format!("127.0.0.1:{a}"), V5, "sub").await;
    subscriber.subscribe("t/#", QoS::AtLeastOnce).await;

    let log = broker.apply_rejected(&[]);

    assert!(log.contains("broker.yaml"), "{log}");
    assert_still_delivers(&mut subscriber, a, "unaffected").await;
}

#[tokio::test]
async fn sighup_reloads_at_once_whatever_the_debounce() {
    let (a, b, metrics) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let slow = |listeners: &[String]| {
        let (name, content) = broker_yaml(metrics, listeners, "");
        let text = String::from_utf8(content)
            .unwrap()
            .replace("debounceMillis: 50", "debounceMillis: 60000");
        (name, text.into_bytes())
    };
    let mut broker = LiveBroker::start(a, &[slow(&[mqtt_listener("a", a)])], metrics);
    broker
        .volume
        .update(&[slow(&[mqtt_listener("a", a), mqtt_listener("b", b)])])
        .unwrap();

    broker.process.signal(libc::SIGHUP).unwrap();

    assert!(http::poll(APPLY_WITHIN, || port_accepts(b).then_some(())).is_some());
}

#[tokio::test]
async fn readyz_reports_a_listener_that_cannot_bind_until_its_port_is_free() {
    let (a, metrics) = (free_port().unwrap(), free_port().unwrap());
    let occupier = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = occupier.local_addr().unwrap().port();
    let mut broker = LiveBroker::start(
        a,
        &[broker_yaml(metrics, &[mqtt_listener("a", a)], "")],
        metrics,
    );
    broker
        .volume
        .update(&[broker_yaml(
            metrics,
            &[mqtt_listener("a", a), mqtt_listener("busy", busy)],
            "",
        )])
        .unwrap();

    let unready = http::poll(APPLY_WITHIN, || {
        let (status, body) = http::get(metrics, "/readyz").ok()?;
        (status == 503).then_some(body)
    });
    assert!(
        unready.is_some_and(|body| body.contains("busy")),
        "readyz did not report the unbound listener"
    );

    drop(occupier);
    assert!(
        http::poll(APPLY_WITHIN, || broker.revision()).is_some(),
        "never became ready"
    );
}

/// TLS rotation, driven by Mosquitto's own clients: a subscriber that connected with the old
/// certificate keeps its session and receives a message published by a client that trusts
/// only the new CA.
#[tokio::test]
async fn a_rotated_certificate_serves_new_handshakes_and_open_connections_stay() {
    let (plain, tls_port, metrics) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (
        TestCa::new("old ca").unwrap(),
        TestCa::new("new ca").unwrap(),
    );
    let (old_ca_file, new_ca_file) = (dir.path().join("old.pem"), dir.path().join("new.pem"));
    std::fs::write(&old_ca_file, &old_ca.cert_pem).unwrap();
    std::fs::write(&new_ca_file, &new_ca.cert_pem).unwrap();
    let listeners = [
        mqtt_listener("plain", plain),
        format!("{{ name: tls, port: {tls_port}, bind: 127.0.0.1, tls: {{ certFile: tls/tls.crt, keyFile: tls/tls.key }} }}"),
    ];
    let volume = |ca: &TestCa| {
        let server = ca.server().unwrap();
        vec![
            broker_yaml(metrics, &listeners, ""),
            file("tls/tls.crt", server.cert),
            file("tls/tls.key", server.key),
        ]
    };
    let mut broker = LiveBroker::start(plain, &volume(&old_ca), metrics);
    let old_ca_arg = old_ca_file.to_string_lossy().into_owned();
    let subscriber = MosquittoSub::spawn(
        tls_port,
        &SubOptions::new(V5, "t/#")
            .qos(1)
            .timeout_secs(15)
            .arg("--cafile")
            .arg(&old_ca_arg),
    )
    .await;

    broker.apply(&volume(&new_ca));

    let new_ca_arg = new_ca_file.to_string_lossy().into_owned();
    mosquitto_pub(
        tls_port,
        V5,
        &[
            "--cafile",
            &new_ca_arg,
            "-t",
            "t/x",
            "-m",
            "rotated",
            "-q",
            "1",
        ],
    )
    .await;
    let lines = subscriber.messages().await;
    assert_eq!(lines, vec!["t/x rotated".to_string()]);
}

/// MQTT over WebSocket with a real third-party client (paho-mqtt's websockets transport), on a
/// listener added by a reload, in both protocol versions.
#[tokio::test]
async fn a_websocket_listener_added_live_serves_paho_over_websockets() {
    let (a, ws, metrics) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let mut broker = LiveBroker::start(
        a,
        &[broker_yaml(metrics, &[mqtt_listener("a", a)], "")],
        metrics,
    );
    let websocket =
        format!("{{ name: ws, port: {ws}, bind: 127.0.0.1, protocol: websocket, path: /mqtt }}");
    broker.apply(&[broker_yaml(
        metrics,
        &[mqtt_listener("a", a), websocket],
        "",
    )]);

    for version in [V311, V5] {
        let args = [
            "--transport",
            "websockets",
            "--ws-path",
            "/mqtt",
            "--count",
            "5",
        ];
        let result = paho("roundtrip.py", ws, version, &args).await;
        assert_eq!(
            result["received"].as_array().map(Vec::len),
            Some(5),
            "{result}"
        );
    }
}

#[tokio::test]
async fn a_websocket_upgrade_on_another_path_is_refused_with_404() {
    use std::io::{Read, Write};
    let (ws, metrics) = (free_port().unwrap(), free_port().unwrap());
    let websocket =
        format!("{{ name: ws, port: {ws}, bind: 127.0.0.1, protocol: websocket, path: /mqtt }}");
    let _broker = LiveBroker::start(ws, &[broker_yaml(metrics, &[websocket], "")], metrics);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", ws)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    write!(
        stream,
        "GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: mqtt\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);

    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}
