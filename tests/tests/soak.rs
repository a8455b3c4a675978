//! Soak: 200 clients with persistent sessions (100 publishers, 100 subscribers) exchange a
//! steady QoS 1 stream while the configuration is swapped 100 times through a kubelet-style
//! volume. Nobody may be disconnected and no QoS 1 message may be lost or reordered; the swap
//! latency (volume swap → new revision live) is printed.
//!
//! Bounded: the stream runs only while the swaps do, every wait has a deadline.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_broker::protocol::{Packet, QoS};
use tern_e2e::broker::{free_port, BrokerProcess};
use tern_e2e::clients::{publish_packet, Event, ProtocolVersion, RawClient};
use tern_e2e::http;
use tern_e2e::projected::{ProjectedVolume, VolumeFile};

const PAIRS: usize = 100;
const SWAPS: usize = 100;
/// Pause between two messages of one publisher (100 publishers: about 1000 messages/s).
const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);
/// A subscriber whose stream has been silent this long (publishers send every 100 ms) has
/// received everything.
const END_OF_STREAM: Duration = Duration::from_secs(2);

/// The `i`-th configuration: every swap changes listeners, users and ACLs — an extra listener
/// comes and goes, a user is added and removed, an ACL policy appears and disappears, limits
/// change — while the soak clients' own listener, anonymous access and `soak/#` rights stay.
fn configuration(i: usize, port: u16, extra_port: u16, metrics_port: u16) -> Vec<VolumeFile> {
    let odd = i % 2 == 1;
    let extra_listener = if odd {
        format!("  - {{ name: extra, port: {extra_port}, bind: 127.0.0.1 }}\n")
    } else {
        String::new()
    };
    let yaml = format!(
        "listeners:\n  - {{ name: mqtt, port: {port}, bind: 127.0.0.1 }}\n{extra_listener}\
         limits: {{ maxQueuedMessages: {queue}, backpressureTimeout: 30 }}\n\
         sys: {{ intervalSeconds: {sys} }}\n\
         metrics: {{ bind: 127.0.0.1, port: {metrics_port} }}\n\
         auth: {{ allowAnonymous: true, passwordFile: passwd }}\n\
         acl: {{ defaultAction: deny, files: [policies.yaml] }}\n\
         reload: {{ debounceMillis: 20 }}\n",
        queue = 1000 + i,
        sys = 5 + i % 3,
    );
    // Users: a fixed `$7$` line (from mosquitto_passwd) for `operator`, plus one that comes
    // and goes. No soak client authenticates, so none may be disconnected by these changes.
    let mut users = String::from(OPERATOR_PASSWD_LINE);
    if odd {
        users.push_str(&format!(
            "visitor-{i}:{}",
            &OPERATOR_PASSWD_LINE["operator:".len()..]
        ));
    }
    let mut policies = String::from(
        "- name: soak\n  rules:\n    - { effect: Allow, actions: [publish, subscribe], topics: [\"soak/#\"] }\n",
    );
    if odd {
        policies.push_str(&format!(
            "- name: churn-{i}\n  rules:\n    - {{ effect: Deny, actions: [subscribe], topics: [\"private/{i}/#\"] }}\n"
        ));
    }
    vec![
        ("broker.yaml".to_string(), yaml.into_bytes()),
        ("passwd".to_string(), users.into_bytes()),
        ("policies.yaml".to_string(), policies.into_bytes()),
    ]
}

/// `mosquitto_passwd -b passwd operator secret` (Mosquitto 2.0.11).
const OPERATOR_PASSWD_LINE: &str =
    "operator:$7$101$pU8WJiX965NdQnBt$9fqSyrIuZQsY+lesxr4gvWZbb33vVr6N1GN9Zm03xLm6NJbzraXk9HH03a/KwAxh3CHlJxBpP/JDSgI7WqPcOg==\n";

/// What one subscriber saw.
struct Received {
    /// Messages per publisher sequence: the count received in order.
    in_order: u64,
    /// Whether the connection ended unexpectedly.
    disconnected: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_keep_a_qos1_stream_through_a_hundred_swaps() {
    let (port, extra_port, metrics_port) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let mut volume =
        ProjectedVolume::new(&configuration(0, port, extra_port, metrics_port)).unwrap();
    let broker =
        BrokerProcess::start_tern_with_config(volume.path(), port, Some(metrics_port)).unwrap();
    let address = format!("127.0.0.1:{port}");

    let mut subscribers = Vec::new();
    for i in 0..PAIRS {
        let version = if i % 2 == 0 {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V311
        };
        let (mut client, _) =
            RawClient::connect_persistent(&address, version, &format!("soak-sub-{i}")).await;
        client
            .subscribe(&format!("soak/{i}"), QoS::AtLeastOnce)
            .await;
        subscribers.push(client);
    }
    let publishing = Arc::new(AtomicBool::new(true));
    let published = Arc::new(AtomicU64::new(0));
    let mut publisher_tasks = Vec::new();
    for i in 0..PAIRS {
        let version = if i % 2 == 0 {
            ProtocolVersion::V311
        } else {
            ProtocolVersion::V5
        };
        let (mut client, _) =
            RawClient::connect_persistent(&address, version, &format!("soak-pub-{i}")).await;
        let publishing = publishing.clone();
        let published = published.clone();
        publisher_tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while publishing.load(Ordering::Relaxed) {
                let publish =
                    publish_packet(&format!("soak/{i}"), sent.to_string(), QoS::AtLeastOnce);
                let reason = client.publish_with(publish).await;
                assert!(!reason.is_error(), "publisher {i} refused: {reason}");
                sent += 1;
                published.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(PUBLISH_INTERVAL).await;
            }
            client.disconnect().await;
            sent
        }));
    }
    let subscriber_tasks: Vec<_> = subscribers
        .into_iter()
        .map(|client| tokio::spawn(receive_stream(client)))
        .collect();

    let mut latencies = Vec::with_capacity(SWAPS);
    for i in 1..=SWAPS {
        let before = http::ready_revision(metrics_port).ok().flatten();
        let swapped_at = Instant::now();
        volume
            .update(&configuration(i, port, extra_port, metrics_port))
            .unwrap();
        let applied = http::poll(Duration::from_secs(10), || {
            http::ready_revision(metrics_port)
                .ok()
                .flatten()
                .filter(|revision| Some(revision) != before.as_ref())
        });
        assert!(
            applied.is_some(),
            "swap {i} not applied; log:\n{}",
            broker.log()
        );
        latencies.push(swapped_at.elapsed());
    }
    publishing.store(false, Ordering::Relaxed);

    let mut sent_per_publisher = Vec::new();
    for task in publisher_tasks {
        sent_per_publisher.push(task.await.expect("publisher task"));
    }
    let mut lost = 0;
    let mut disconnected = 0;
    for (i, task) in subscriber_tasks.into_iter().enumerate() {
        let expected = sent_per_publisher[i];
        let received = task.await.expect("subscriber task");
        lost += expected.saturating_sub(received.in_order);
        disconnected += usize::from(received.disconnected);
    }
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    let max = latencies[latencies.len() - 1];
    println!(
        "soak: {} messages, {SWAPS} swaps, swap latency p50 {p50:?} p99 {p99:?} max {max:?}, \
         lost {lost}, unexpected disconnects {disconnected}",
        published.load(Ordering::Relaxed)
    );
    assert_eq!(disconnected, 0, "unexpected disconnects");
    assert_eq!(lost, 0, "QoS 1 messages lost");
    assert!(max < Duration::from_secs(3), "a swap took {max:?}");
}

/// Reads one subscriber's stream, acknowledging each message, until it has been quiet for a
/// while after the publishers stopped. Counts messages that arrive in sequence (0, 1, 2, …):
/// a gap or reordering stops the count, so `in_order < sent` means loss.
async fn receive_stream(mut client: RawClient) -> Received {
    let mut next = 0u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut quiet_since: Option<Instant> = None;
    loop {
        if Instant::now() >= deadline {
            break;
        }
        match client.next_event(Duration::from_millis(500)).await {
            Event::Packet(Packet::Publish(publish)) => {
                quiet_since = None;
                let value: u64 = std::str::from_utf8(&publish.payload)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .unwrap_or(u64::MAX);
                // A redelivered duplicate (DUP) of an earlier message is allowed by QoS 1.
                if value == next {
                    next += 1;
                }
                client.ack(&publish).await;
            }
            Event::Packet(_) => {}
            Event::Closed => {
                return Received {
                    in_order: next,
                    disconnected: true,
                };
            }
            Event::Timeout => {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= END_OF_STREAM {
                    break;
                }
            }
        }
    }
    client.disconnect().await;
    Received {
        in_order: next,
        disconnected: false,
    }
}
