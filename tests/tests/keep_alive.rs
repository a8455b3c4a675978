//! Keep alive: the broker caps a client's keep alive (5.0 Server Keep Alive), closes a silent
//! client after one and a half keep-alive periods (5.0: DISCONNECT 0x8D), and keeps a client
//! that pings in time.

use std::time::Duration;

use tern_broker::protocol::{Packet, ReasonCode};
use tern_e2e::broker::{BrokerConfig, Limits};
use tern_e2e::clients::{
    connect_packet, mosquitto_note, on_mosquitto, start_broker, start_broker_with, Event,
    ProtocolVersion, RawClient,
};
use tern_e2e::per_version;
use tokio::time::Instant;

per_version!(
    silent_client_is_disconnected_after_one_and_a_half_keep_alives,
    client_that_pings_within_its_keep_alive_stays_connected,
);

/// Connects with a keep alive of one second.
async fn connect_keep_alive_1s(addr: &str, version: ProtocolVersion, id: &str) -> RawClient {
    let mut connect = connect_packet(version, id);
    connect.keep_alive = 1;
    let (client, connack) = RawClient::connect_with(addr, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::Success);
    client
}

async fn silent_client_is_disconnected_after_one_and_a_half_keep_alives(version: ProtocolVersion) {
    let broker = start_broker();
    let started = Instant::now();
    let mut client = connect_keep_alive_1s(&broker.addr(), version, "silent").await;

    // Mosquitto only notices after several seconds; Tern must be much faster (checked below).
    let disconnect = client.expect_closed_within(Duration::from_secs(12)).await;

    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400),
        "closed too early: {elapsed:?}"
    );
    if on_mosquitto() {
        mosquitto_note("Mosquitto 2.0 checks keep alives every ~5 s and sends no DISCONNECT");
        return;
    }
    assert!(
        elapsed <= Duration::from_millis(2500),
        "1.5 × keep alive, got {elapsed:?}"
    );
    let reason = disconnect.map(|d| d.reason_code);
    match version {
        ProtocolVersion::V5 => assert_eq!(reason, Some(ReasonCode::KeepAliveTimeout)),
        ProtocolVersion::V311 => assert_eq!(reason, None, "3.1.1: plain close"),
    }
}

async fn client_that_pings_within_its_keep_alive_stays_connected(version: ProtocolVersion) {
    let broker = start_broker();
    let mut client = connect_keep_alive_1s(&broker.addr(), version, "pinger").await;

    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.ping().await;
    }

    match client.next_event(Duration::ZERO).await {
        Event::Timeout => {}
        other => panic!("connection should be idle and open, got {other:?}"),
    }
}

#[tokio::test]
async fn server_keep_alive_caps_a_longer_client_keep_alive_v5() {
    let broker = start_broker_with(&BrokerConfig {
        limits: Limits {
            max_keep_alive: Some(60),
            ..Limits::default()
        },
        ..BrokerConfig::default()
    });
    let mut connect = connect_packet(ProtocolVersion::V5, "sleepy");
    connect.keep_alive = 600;

    let (_client, connack) = RawClient::connect_with(&broker.addr(), connect).await;

    assert_eq!(connack.reason_code, ReasonCode::Success);
    assert_eq!(connack.properties.server_keep_alive, Some(60));
}

#[tokio::test]
async fn no_server_keep_alive_when_the_client_keep_alive_is_acceptable_v5() {
    let broker = start_broker_with(&BrokerConfig {
        limits: Limits {
            max_keep_alive: Some(60),
            ..Limits::default()
        },
        ..BrokerConfig::default()
    });
    let mut connect = connect_packet(ProtocolVersion::V5, "reasonable");
    connect.keep_alive = 30;

    let (mut client, connack) = RawClient::connect_with(&broker.addr(), connect).await;

    assert_eq!(connack.properties.server_keep_alive, None);
    client.send(&Packet::PingReq).await;
    assert_eq!(client.recv().await, Packet::PingResp);
}
