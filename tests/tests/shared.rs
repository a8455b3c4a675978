//! Shared subscriptions (`$share/{group}/{filter}`): round-robin balancing inside a group,
//! independent groups, coexistence with normal subscriptions, re-delivery of an unacknowledged
//! message to another member; and Tern's exclusive subscriptions (`$exclusive/{filter}`).

use std::time::Duration;

use tern_broker::protocol::{Packet, Publish, QoS, ReasonCode};
use tern_e2e::clients::{
    paho, skip_on_mosquitto, start_broker, Event, ProtocolVersion, RawClient, STEP_TIMEOUT,
};
use tern_e2e::per_version;
use tokio::time::Instant;

per_version!(
    shared_subscription_balances_messages_round_robin,
    every_group_receives_each_message_once,
    shared_and_normal_subscriptions_both_receive_the_message,
    unacknowledged_message_goes_to_another_member_when_its_receiver_disconnects,
    paho_group_members_share_the_load,
    second_exclusive_subscriber_is_refused,
    exclusive_filter_is_free_again_after_its_holder_disconnects,
);

/// Connects `count` clients named `{prefix}-{i}`, each subscribed to `filter` at QoS 1.
async fn members(
    addr: &str,
    version: ProtocolVersion,
    prefix: &str,
    filter: &str,
    count: usize,
) -> Vec<RawClient> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let mut member = RawClient::connect(addr, version, &format!("{prefix}-{i}")).await;
        let granted = member.subscribe(filter, QoS::AtLeastOnce).await;
        assert_eq!(granted, ReasonCode::GrantedQoS1, "{filter}");
        out.push(member);
    }
    out
}

/// Reads from all `clients` (acknowledging everything) until `total` messages arrived in
/// all; returns the payloads each one received.
async fn collect(clients: &mut [RawClient], total: usize) -> Vec<Vec<String>> {
    let mut received = vec![Vec::new(); clients.len()];
    let deadline = Instant::now() + STEP_TIMEOUT;
    while received.iter().map(Vec::len).sum::<usize>() < total {
        assert!(
            Instant::now() < deadline,
            "only {received:?} of {total} arrived"
        );
        for (client, got) in clients.iter_mut().zip(received.iter_mut()) {
            if let Event::Packet(Packet::Publish(publish)) =
                client.next_event(Duration::from_millis(20)).await
            {
                client.ack(&publish).await;
                got.push(String::from_utf8_lossy(&publish.payload).into_owned());
            }
        }
    }
    received
}

async fn publish_numbered(publisher: &mut RawClient, topic: &str, count: usize) {
    for i in 0..count {
        publisher
            .publish(topic, &format!("{i:03}"), QoS::AtLeastOnce, false)
            .await;
    }
}

async fn shared_subscription_balances_messages_round_robin(version: ProtocolVersion) {
    let broker = start_broker();
    let mut group = members(&broker.addr(), version, "member", "$share/g/sh/t", 3).await;
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;

    publish_numbered(&mut publisher, "sh/t", 30).await;

    let received = collect(&mut group, 30).await;
    let counts: Vec<usize> = received.iter().map(Vec::len).collect();
    assert!(
        counts.iter().all(|&n| (9..=11).contains(&n)),
        "10 ± 1 each: {counts:?}"
    );
    let mut all: Vec<String> = received.concat();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        30,
        "each message delivered to exactly one member"
    );
}

async fn every_group_receives_each_message_once(version: ProtocolVersion) {
    let broker = start_broker();
    let mut red = members(&broker.addr(), version, "red", "$share/red/sh/t", 2).await;
    let mut blue = members(&broker.addr(), version, "blue", "$share/blue/sh/t", 2).await;
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;

    publish_numbered(&mut publisher, "sh/t", 6).await;

    for (name, group) in [("red", &mut red), ("blue", &mut blue)] {
        let mut all = collect(group, 6).await.concat();
        all.sort();
        assert_eq!(
            all,
            ["000", "001", "002", "003", "004", "005"],
            "group {name}"
        );
    }
}

async fn shared_and_normal_subscriptions_both_receive_the_message(version: ProtocolVersion) {
    let broker = start_broker();
    let mut shared = members(&broker.addr(), version, "shared", "$share/g/sh/t", 1).await;
    let mut normal = members(&broker.addr(), version, "normal", "sh/t", 1).await;
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;

    publisher
        .publish("sh/t", "both", QoS::AtLeastOnce, false)
        .await;

    assert_eq!(&shared[0].expect_publish().await.payload[..], b"both");
    assert_eq!(&normal[0].expect_publish().await.payload[..], b"both");
}

async fn unacknowledged_message_goes_to_another_member_when_its_receiver_disconnects(
    version: ProtocolVersion,
) {
    if skip_on_mosquitto("Mosquitto 2.0 does not re-deliver to another group member") {
        return;
    }
    let broker = start_broker();
    let mut group = members(&broker.addr(), version, "member", "$share/g/sh/t", 2).await;
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;

    publisher
        .publish("sh/t", "orphan", QoS::AtLeastOnce, false)
        .await;
    let (receiver, first) = first_publish(&mut group).await;
    let mut other = group.remove(1 - receiver);
    group.remove(0).drop_connection();

    let again = other.expect_publish().await;
    assert_eq!(
        again.payload, first.payload,
        "the unacknowledged message moves on"
    );
}

/// Waits until one of `clients` receives a PUBLISH (not acknowledged); returns its index.
async fn first_publish(clients: &mut [RawClient]) -> (usize, Publish) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        assert!(Instant::now() < deadline, "nobody received the message");
        for (i, client) in clients.iter_mut().enumerate() {
            if let Event::Packet(Packet::Publish(publish)) =
                client.next_event(Duration::from_millis(20)).await
            {
                return (i, publish);
            }
        }
    }
}

async fn paho_group_members_share_the_load(version: ProtocolVersion) {
    let broker = start_broker();
    let result = paho(
        "shared.py",
        broker.port(),
        version,
        &["--members", "3", "--count", "30"],
    )
    .await;

    let counts: Vec<u64> = result["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .filter_map(|c| c.as_u64())
        .collect();
    assert!(
        counts.iter().all(|&n| (9..=11).contains(&n)),
        "10 ± 1 each: {result}"
    );
    assert_eq!(
        result["payloads"].as_array().map(Vec::len),
        Some(30),
        "{result}"
    );
}

/// The SUBACK code refusing a second exclusive subscriber: 0x97 Quota exceeded in 5.0, the
/// generic failure 0x80 in 3.1.1.
fn exclusive_refusal(version: ProtocolVersion) -> ReasonCode {
    match version {
        ProtocolVersion::V5 => ReasonCode::QuotaExceeded,
        ProtocolVersion::V311 => ReasonCode::UnspecifiedError,
    }
}

async fn second_exclusive_subscriber_is_refused(version: ProtocolVersion) {
    if skip_on_mosquitto("$exclusive/ subscriptions are a Tern extension") {
        return;
    }
    let broker = start_broker();
    let mut holder = RawClient::connect(&broker.addr(), version, "holder").await;
    let granted = holder.subscribe("$exclusive/ex/t", QoS::AtLeastOnce).await;
    assert_eq!(granted, ReasonCode::GrantedQoS1, "first subscriber gets it");

    let mut second = RawClient::connect(&broker.addr(), version, "second").await;
    let refused = second.subscribe("$exclusive/ex/t", QoS::AtLeastOnce).await;

    assert_eq!(refused, exclusive_refusal(version));
}

async fn exclusive_filter_is_free_again_after_its_holder_disconnects(version: ProtocolVersion) {
    if skip_on_mosquitto("$exclusive/ subscriptions are a Tern extension") {
        return;
    }
    let broker = start_broker();
    let mut holder = RawClient::connect(&broker.addr(), version, "holder").await;
    holder.subscribe("$exclusive/ex/t", QoS::AtLeastOnce).await;
    holder.disconnect().await;

    let mut next = RawClient::connect(&broker.addr(), version, "next").await;
    let granted = next.subscribe("$exclusive/ex/t", QoS::AtLeastOnce).await;
    assert_eq!(granted, ReasonCode::GrantedQoS1);
    let mut publisher = RawClient::connect(&broker.addr(), version, "pub").await;
    publisher
        .publish("ex/t", "mine", QoS::AtLeastOnce, false)
        .await;

    assert_eq!(&next.expect_publish().await.payload[..], b"mine");
}
