//! Sessions: persistence across connections, clean session / clean start, session expiry
//! (5.0), re-delivery of unacknowledged messages with DUP on resume, offline queueing,
//! session takeover and client identifiers assigned by the broker.

use std::time::Duration;

use tern_broker::protocol::{Disconnect, DisconnectProperties, Packet, PubAck, QoS, ReasonCode};
use tern_e2e::clients::{
    connect_packet, mosquitto_pub, paho, persistent_connect_packet, start_broker, version_tag,
    MosquittoSub, ProtocolVersion, RawClient, SubOptions, QUIET_PERIOD,
};
use tern_e2e::per_version;

per_version!(
    persistent_session_is_resumed_with_its_subscriptions,
    clean_start_discards_the_previous_session,
    unacknowledged_qos1_message_is_resent_with_dup_on_resume,
    unacknowledged_qos2_message_is_resent_with_dup_on_resume,
    pubrel_is_resent_on_resume_when_pubcomp_is_missing,
    messages_published_while_offline_are_delivered_on_reconnect_to_mosquitto_sub,
    messages_published_while_offline_are_delivered_on_reconnect_to_paho,
    second_connection_with_same_client_id_takes_over,
    taken_over_session_is_present_for_the_new_connection,
);

/// Subscribes `client_id` in a persistent session to `filter` at `qos`, then disconnects
/// normally, leaving the session offline.
async fn offline_session(
    addr: &str,
    version: ProtocolVersion,
    client_id: &str,
    filter: &str,
    qos: QoS,
) {
    let (mut client, _) = RawClient::connect_persistent(addr, version, client_id).await;
    client.subscribe(filter, qos).await;
    client.disconnect().await;
}

async fn persistent_session_is_resumed_with_its_subscriptions(version: ProtocolVersion) {
    let broker = start_broker();
    let addr = broker.addr();
    let (mut first, present) = RawClient::connect_persistent(&addr, version, "keeper").await;
    assert!(!present, "a new session is not present");
    first.subscribe("s/keep", QoS::AtLeastOnce).await;
    first.disconnect().await;

    let (mut again, present) = RawClient::connect_persistent(&addr, version, "keeper").await;
    assert!(present, "CONNACK session present on resume");
    let mut publisher = RawClient::connect(&addr, version, "pub").await;
    publisher
        .publish("s/keep", "kept", QoS::AtLeastOnce, false)
        .await;

    let publish = again.expect_publish().await;
    assert_eq!(
        &publish.payload[..],
        b"kept",
        "delivered through the resumed subscription"
    );
}

async fn clean_start_discards_the_previous_session(version: ProtocolVersion) {
    let broker = start_broker();
    let addr = broker.addr();
    offline_session(&addr, version, "cleaner", "s/clean", QoS::AtLeastOnce).await;

    let (mut fresh, connack) =
        RawClient::connect_with(&addr, connect_packet(version, "cleaner")).await;
    assert!(!connack.session_present, "clean start must not resume");
    let mut publisher = RawClient::connect(&addr, version, "pub").await;
    publisher
        .publish("s/clean", "lost", QoS::AtLeastOnce, false)
        .await;

    fresh.ping().await;
    fresh.expect_no_publish(QUIET_PERIOD).await;
}

/// Delivers one message at `qos` to a persistent subscriber that does not acknowledge it and
/// then loses its connection; asserts that resuming the session re-sends it with DUP=1.
async fn resend_after_resume(version: ProtocolVersion, qos: QoS) {
    let broker = start_broker();
    let addr = broker.addr();
    let (mut subscriber, _) = RawClient::connect_persistent(&addr, version, "forgetful").await;
    subscriber.subscribe("s/dup", qos).await;
    let mut publisher = RawClient::connect(&addr, version, "pub").await;
    publisher.publish("s/dup", "again", qos, false).await;
    let original = subscriber.expect_publish().await;
    assert!(!original.dup, "first delivery has DUP=0");
    subscriber.drop_connection();

    let (mut resumed, present) = RawClient::connect_persistent(&addr, version, "forgetful").await;
    assert!(present, "session present");
    let resent = resumed.expect_publish().await;
    assert!(resent.dup, "re-delivery must have DUP=1: {resent:?}");
    assert_eq!(
        (resent.packet_id, resent.qos, &resent.payload),
        (original.packet_id, original.qos, &original.payload),
        "same message, same packet identifier"
    );
    resumed.ack(&resent).await;
    resumed.ping().await;
}

async fn unacknowledged_qos1_message_is_resent_with_dup_on_resume(version: ProtocolVersion) {
    resend_after_resume(version, QoS::AtLeastOnce).await;
}

async fn unacknowledged_qos2_message_is_resent_with_dup_on_resume(version: ProtocolVersion) {
    resend_after_resume(version, QoS::ExactlyOnce).await;
}

async fn pubrel_is_resent_on_resume_when_pubcomp_is_missing(version: ProtocolVersion) {
    let broker = start_broker();
    let addr = broker.addr();
    let (mut subscriber, _) = RawClient::connect_persistent(&addr, version, "half-done").await;
    subscriber.subscribe("s/rel", QoS::ExactlyOnce).await;
    let mut publisher = RawClient::connect(&addr, version, "pub").await;
    publisher
        .publish("s/rel", "x", QoS::ExactlyOnce, false)
        .await;
    let publish = subscriber.expect_publish().await;
    let packet_id = publish.packet_id.expect("packet id");
    subscriber
        .send(&Packet::PubRec(PubAck::success(packet_id)))
        .await;
    assert!(matches!(subscriber.recv().await, Packet::PubRel(rel) if rel.packet_id == packet_id));
    subscriber.drop_connection();

    let (mut resumed, _) = RawClient::connect_persistent(&addr, version, "half-done").await;
    match resumed.recv().await {
        Packet::PubRel(rel) => assert_eq!(rel.packet_id, packet_id, "PUBREL for the same id"),
        other => panic!("expected the PUBREL to be re-sent, got {other:?}"),
    }
    resumed
        .send(&Packet::PubComp(PubAck::success(packet_id)))
        .await;
    resumed.ping().await;
    resumed.expect_no_publish(QUIET_PERIOD).await;
}

async fn messages_published_while_offline_are_delivered_on_reconnect_to_mosquitto_sub(
    version: ProtocolVersion,
) {
    let broker = start_broker();
    let client_id = format!("cli-persistent-{}", version_tag(version));
    let options = SubOptions::new(version, "s/offline")
        .qos(1)
        .client_id(&client_id)
        .persistent()
        .count(3);
    MosquittoSub::subscribe_and_exit(broker.port(), &options).await;

    for payload in ["o1", "o2", "o3"] {
        mosquitto_pub(
            broker.port(),
            version,
            &["-t", "s/offline", "-q", "1", "-m", payload],
        )
        .await;
    }

    let resumed = MosquittoSub::spawn(broker.port(), &options).await;
    assert_eq!(
        resumed.messages().await,
        ["s/offline o1", "s/offline o2", "s/offline o3"]
    );
}

async fn messages_published_while_offline_are_delivered_on_reconnect_to_paho(
    version: ProtocolVersion,
) {
    let broker = start_broker();
    let result = paho(
        "persistent_session.py",
        broker.port(),
        version,
        &["--qos", "2", "--count", "4"],
    )
    .await;

    assert_eq!(result["session_present"], true, "{result}");
    let payloads: Vec<&str> = result["received"]
        .as_array()
        .expect("received")
        .iter()
        .filter_map(|m| m["payload"].as_str())
        .collect();
    assert_eq!(
        payloads,
        ["offline-0", "offline-1", "offline-2", "offline-3"]
    );
}

async fn second_connection_with_same_client_id_takes_over(version: ProtocolVersion) {
    let broker = start_broker();
    let addr = broker.addr();
    let mut first = RawClient::connect(&addr, version, "twin").await;

    let mut second = RawClient::connect(&addr, version, "twin").await;

    first
        .expect_disconnect_on_tern(
            ReasonCode::SessionTakenOver,
            "Mosquitto 2.0 closes the old connection without DISCONNECT 0x8E",
        )
        .await;
    second.ping().await;
}

async fn taken_over_session_is_present_for_the_new_connection(version: ProtocolVersion) {
    let broker = start_broker();
    let addr = broker.addr();
    let (mut first, _) = RawClient::connect_persistent(&addr, version, "twin").await;
    first.subscribe("s/twin", QoS::AtLeastOnce).await;

    let (mut second, present) = RawClient::connect_persistent(&addr, version, "twin").await;
    assert!(present, "the live session is handed over");
    let mut publisher = RawClient::connect(&addr, version, "pub").await;
    publisher
        .publish("s/twin", "to the new one", QoS::AtLeastOnce, false)
        .await;

    let publish = second.expect_publish().await;
    assert_eq!(&publish.payload[..], b"to the new one");
}

#[tokio::test]
async fn session_is_discarded_after_its_expiry_interval_v5() {
    let broker = start_broker();
    let addr = broker.addr();
    let mut connect = persistent_connect_packet(ProtocolVersion::V5, "short-lived");
    connect.properties.session_expiry_interval = Some(1);
    let (client, _) = RawClient::connect_with(&addr, connect.clone()).await;
    client.disconnect().await;

    tokio::time::sleep(Duration::from_millis(2200)).await;

    let (_, connack) = RawClient::connect_with(&addr, connect).await;
    assert!(!connack.session_present, "session must have expired");
}

#[tokio::test]
async fn session_is_kept_within_its_expiry_interval_v5() {
    let broker = start_broker();
    let addr = broker.addr();
    let mut connect = persistent_connect_packet(ProtocolVersion::V5, "long-lived");
    connect.properties.session_expiry_interval = Some(60);
    let (client, _) = RawClient::connect_with(&addr, connect.clone()).await;
    client.disconnect().await;

    let (_, connack) = RawClient::connect_with(&addr, connect).await;
    assert!(connack.session_present, "session must still exist");
}

#[tokio::test]
async fn session_with_zero_expiry_ends_with_the_connection_v5() {
    let broker = start_broker();
    let addr = broker.addr();
    let mut connect = connect_packet(ProtocolVersion::V5, "no-expiry");
    connect.clean_start = false;
    let (client, _) = RawClient::connect_with(&addr, connect.clone()).await;
    client.disconnect().await;

    let (_, connack) = RawClient::connect_with(&addr, connect).await;
    assert!(!connack.session_present, "expiry 0: nothing to resume");
}

#[tokio::test]
async fn disconnect_can_set_session_expiry_to_zero_v5() {
    let broker = start_broker();
    let addr = broker.addr();
    let connect = persistent_connect_packet(ProtocolVersion::V5, "changes-mind");
    let (client, _) = RawClient::connect_with(&addr, connect.clone()).await;
    client
        .disconnect_with(Disconnect {
            reason_code: ReasonCode::Success,
            properties: DisconnectProperties {
                session_expiry_interval: Some(0),
                ..DisconnectProperties::default()
            },
        })
        .await;

    let (_, connack) = RawClient::connect_with(&addr, connect).await;
    assert!(!connack.session_present, "DISCONNECT set the expiry to 0");
}

#[tokio::test]
async fn empty_client_id_is_assigned_an_identifier_in_connack_v5() {
    let broker = start_broker();
    let (mut client, connack) =
        RawClient::connect_with(&broker.addr(), connect_packet(ProtocolVersion::V5, "")).await;

    assert_eq!(connack.reason_code, ReasonCode::Success);
    let assigned = connack
        .properties
        .assigned_client_identifier
        .expect("Assigned Client Identifier");
    assert!(!assigned.is_empty(), "assigned identifier is not empty");
    client.ping().await;
}

#[tokio::test]
async fn empty_client_id_with_clean_session_is_accepted_v311() {
    let broker = start_broker();
    let (mut client, connack) =
        RawClient::connect_with(&broker.addr(), connect_packet(ProtocolVersion::V311, "")).await;

    assert_eq!(connack.reason_code, ReasonCode::Success);
    client.ping().await;
}

#[tokio::test]
async fn empty_client_id_without_clean_session_is_rejected_as_identifier_rejected_v311() {
    let broker = start_broker();
    let mut client = RawClient::open(&broker.addr(), ProtocolVersion::V311).await;
    let connect = persistent_connect_packet(ProtocolVersion::V311, "");
    client.send(&Packet::Connect(Box::new(connect))).await;

    // CONNACK, remaining length 2, session present 0, return code 0x02 identifier rejected.
    assert_eq!(client.recv_bytes(4).await, [0x20, 0x02, 0x00, 0x02]);
    client.expect_closed().await;
}
