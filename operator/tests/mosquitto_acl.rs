//! `tern-acl-import` against the real thing: one Mosquitto `acl_file`, enforced by Mosquitto
//! itself and, converted, by Tern. Every probe (may this user publish to, or receive from, this
//! topic?) must get the same answer from both brokers, and the answers Mosquitto gives are
//! checked too, so a probe set both brokers simply refuse would not pass.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tern_broker::protocol::Packet;
use tern_broker::protocol::{QoS, ReasonCode};
use tern_e2e::broker::{BrokerConfig, BrokerKind, BrokerProcess};
use tern_e2e::clients::{connect_packet, publish_packet, Event, ProtocolVersion, RawClient};

const ACL_FILE: &str = "\
# Anonymous clients (the brokers refuse them here; the converter leaves this section out).
topic read $SYS/#

user root
topic readwrite #

user dashboard
topic read devices/#

user alice
topic readwrite home/alice/#
topic deny home/alice/secret/#
topic write cmd/all

# Every user: its own telemetry, its own client's configuration.
pattern write devices/%u/telemetry/#
pattern read devices/%c/config
";

/// Users and passwords, hashed by the real `mosquitto_passwd`.
const USERS: [(&str, &str); 4] = [
    ("root", "r00t"),
    ("dashboard", "dash"),
    ("alice", "alice-pw"),
    ("bob", "bob-pw"),
];

/// What a probe asks.
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// May `user` publish (QoS 1) to the topic?
    Publish(&'static str, &'static str),
    /// Does `user`, subscribed to exactly the topic, receive what `root` publishes there?
    Receive(&'static str, &'static str),
}

/// Each probe with the answer Mosquitto gives.
const PROBES: [(Probe, bool); 14] = [
    (Probe::Publish("alice", "home/alice/x"), true),
    (Probe::Publish("alice", "home/alice/secret/x"), false),
    (Probe::Publish("alice", "home/bob/x"), false),
    (Probe::Publish("alice", "cmd/all"), true),
    (Probe::Publish("alice", "devices/alice/telemetry/t"), true),
    (Probe::Publish("alice", "devices/bob/telemetry/t"), false),
    (Probe::Publish("dashboard", "devices/x"), false),
    (Probe::Publish("bob", "devices/bob/telemetry/t"), true),
    (
        Probe::Receive("dashboard", "devices/alice/telemetry/t"),
        true,
    ),
    (Probe::Receive("alice", "home/alice/x"), true),
    (Probe::Receive("alice", "home/alice/secret/x"), false),
    (Probe::Receive("alice", "cmd/all"), false),
    (Probe::Receive("bob", "devices/bob-probe/config"), true),
    (Probe::Receive("bob", "devices/alice-probe/config"), false),
];

#[tokio::test]
async fn a_converted_acl_file_decides_like_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("acl_file");
    std::fs::write(&acl_file, ACL_FILE).unwrap();
    let passwd = dir.path().join("passwd");
    write_passwd(&passwd);

    let mosquitto = BrokerProcess::start(
        BrokerKind::Mosquitto,
        &BrokerConfig {
            allow_anonymous: false,
            extra_mosquitto_conf: Some(format!(
                "password_file {}\nacl_file {}\n",
                passwd.display(),
                acl_file.display()
            )),
            ..BrokerConfig::default()
        },
    )
    .expect("starting mosquitto");

    let import = Command::new(env!("CARGO_BIN_EXE_tern-acl-import"))
        .arg(&acl_file)
        .output()
        .expect("running tern-acl-import");
    assert!(
        import.status.success(),
        "tern-acl-import failed: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    assert!(
        String::from_utf8_lossy(&import.stderr).contains("left out 1 rule(s) of the anonymous"),
        "the anonymous section is reported"
    );
    std::fs::write(dir.path().join("policies.yaml"), &import.stdout).unwrap();
    let tern = BrokerProcess::start_tern_in(
        dir.path(),
        "auth: { allowAnonymous: false, passwordFile: passwd }\n\
         acl: { defaultAction: deny, files: [policies.yaml] }\n",
    )
    .expect("starting tern");

    let mut answers = Vec::new();
    for (probe, expected) in PROBES {
        let from_mosquitto = ask(&mosquitto.addr(), probe).await;
        let from_tern = ask(&tern.addr(), probe).await;
        answers.push((probe, expected, from_mosquitto, from_tern));
    }
    let wrong: Vec<_> = answers
        .iter()
        .filter(|(_, expected, mosquitto, tern)| mosquitto != expected || tern != mosquitto)
        .collect();
    assert!(
        wrong.is_empty(),
        "(probe, expected, mosquitto, tern) that disagree: {wrong:#?}\npolicies:\n{}\ntern log:\n{}",
        String::from_utf8_lossy(&import.stdout),
        tern.log()
    );
}

/// The password file of [`USERS`], written by `mosquitto_passwd`.
fn write_passwd(path: &Path) {
    for (index, (user, password)) in USERS.iter().enumerate() {
        let mut command = Command::new("mosquitto_passwd");
        if index == 0 {
            command.arg("-c");
        }
        let status = command
            .arg("-b")
            .arg(path)
            .args([user, password])
            .status()
            .expect("running mosquitto_passwd (Debian package mosquitto)");
        assert!(status.success(), "mosquitto_passwd failed for {user}");
    }
}

/// Connects `user` (client id `{user}-probe`) over MQTT 5.
async fn connect(addr: &str, user: &str) -> RawClient {
    let password = USERS.iter().find(|(name, _)| *name == user).unwrap().1;
    let mut connect = connect_packet(ProtocolVersion::V5, &format!("{user}-probe"));
    connect.username = Some(user.into());
    connect.password = Some(password.as_bytes().to_vec().into());
    let (client, connack) = RawClient::connect_with(addr, connect).await;
    assert_eq!(
        connack.reason_code,
        ReasonCode::Success,
        "CONNACK for {user} at {addr}"
    );
    client
}

/// The broker's answer to `probe`: whether it allowed it.
async fn ask(addr: &str, probe: Probe) -> bool {
    match probe {
        Probe::Publish(user, topic) => {
            let mut client = connect(addr, user).await;
            let reason = client
                .publish_with(publish_packet(topic, "probe", QoS::AtLeastOnce))
                .await;
            client.disconnect().await;
            !reason.is_error()
        }
        Probe::Receive(user, topic) => {
            let mut reader = connect(addr, user).await;
            // Mosquitto accepts the subscription and filters on delivery, Tern refuses it;
            // either way nothing may arrive.
            let _ = reader.subscribe(topic, QoS::AtLeastOnce).await;
            let mut root = connect(addr, "root").await;
            let reason = root
                .publish_with(publish_packet(topic, "probe", QoS::AtLeastOnce))
                .await;
            assert!(!reason.is_error(), "root may publish to {topic} at {addr}");
            root.disconnect().await;
            let received = matches!(
                reader.next_event(Duration::from_millis(500)).await,
                Event::Packet(Packet::Publish(_))
            );
            reader.disconnect().await;
            received
        }
    }
}
