//! Graceful shutdown: on SIGTERM the broker tells 5.0 clients why (DISCONNECT 0x8B Server
//! shutting down), closes 3.1.1 connections, and exits successfully.

use tern_broker::protocol::ReasonCode;
use tern_e2e::clients::{start_broker, ProtocolVersion, RawClient};
use tern_e2e::per_version;

per_version!(sigterm_disconnects_clients_with_server_shutting_down);

async fn sigterm_disconnects_clients_with_server_shutting_down(version: ProtocolVersion) {
    let broker = start_broker();
    let mut client = RawClient::connect(&broker.addr(), version, "stayer").await;

    broker.signal(libc::SIGTERM).expect("SIGTERM");

    client
        .expect_disconnect_on_tern(
            ReasonCode::ServerShuttingDown,
            "Mosquitto 2.0 closes connections on SIGTERM without DISCONNECT",
        )
        .await;
}

#[tokio::test]
async fn broker_exits_successfully_after_sigterm() {
    let broker = start_broker();
    let _client = RawClient::connect(&broker.addr(), ProtocolVersion::V5, "stayer").await;

    let status = tokio::task::spawn_blocking(move || broker.stop())
        .await
        .expect("join")
        .expect("stop");

    assert!(status.success(), "exit status after SIGTERM: {status}");
}
