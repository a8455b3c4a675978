//! Authentication and ACLs from mounted files, changed live: a password file made by
//! `mosquitto_passwd`, users added and removed, passwords changed, ACL policies tightened and
//! loosened while clients stay connected.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use tern_broker::protocol::{QoS, ReasonCode};
use tern_e2e::broker::free_port;
use tern_e2e::clients::{connect_packet, publish_packet, ProtocolVersion, RawClient};
use tern_e2e::live::{file, LiveBroker};
use tern_e2e::projected::VolumeFile;

const V5: ProtocolVersion = ProtocolVersion::V5;

/// The line the real `mosquitto_passwd` writes for `user` with `password`. Hashed once per
/// pair and reused: hashing again picks a new salt, which the broker rightly sees as a changed
/// credential.
fn passwd_line(user: &str, password: &str) -> String {
    static LINES: Mutex<BTreeMap<(String, String), String>> = Mutex::new(BTreeMap::new());
    let key = (user.to_string(), password.to_string());
    if let Some(line) = LINES.lock().unwrap().get(&key) {
        return line.clone();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    let status = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&path)
        .args([user, password])
        .status()
        .expect("running mosquitto_passwd (Debian package mosquitto)");
    assert!(status.success(), "mosquitto_passwd failed");
    let line = std::fs::read_to_string(&path).unwrap();
    LINES.lock().unwrap().insert(key, line.clone());
    line
}

/// A password file for `(user, password)` pairs, in `mosquitto_passwd`'s format.
fn passwd(users: &[(&str, &str)]) -> String {
    users
        .iter()
        .map(|(user, password)| passwd_line(user, password))
        .collect()
}

/// The policies file: alice may use `sensors/#` (and `devices/%u/#`), plus `extra` YAML rules.
fn policies(extra: &str) -> VolumeFile {
    file(
        "acl/policies.yaml",
        format!(
            "- name: base\n  rules:\n\
             \x20   - {{ effect: Allow, principals: [{{ username: alice }}], actions: [publish, subscribe], topics: [\"sensors/#\"] }}\n\
             \x20   - {{ effect: Allow, actions: [publish, subscribe], topics: [\"devices/%u/#\"] }}\n{extra}"
        ),
    )
}

struct Setup {
    port: u16,
    metrics: u16,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            port: free_port().unwrap(),
            metrics: free_port().unwrap(),
        }
    }

    fn volume(&self, users: &[(&str, &str)], acl_extra: &str) -> Vec<VolumeFile> {
        self.volume_with_auth(users, acl_extra, "")
    }

    /// The volume with `auth_extra` (say `, groups: {...}`) added to the `auth` section.
    fn volume_with_auth(
        &self,
        users: &[(&str, &str)],
        acl_extra: &str,
        auth_extra: &str,
    ) -> Vec<VolumeFile> {
        let yaml = format!(
            "listeners: [ {{ name: mqtt, port: {}, bind: 127.0.0.1 }} ]\n\
             metrics: {{ bind: 127.0.0.1, port: {} }}\n\
             auth: {{ allowAnonymous: false, passwordFile: users/passwd{auth_extra} }}\n\
             acl: {{ defaultAction: deny, files: [acl/policies.yaml] }}\n\
             reload: {{ debounceMillis: 50 }}\n",
            self.port, self.metrics
        );
        vec![
            file("broker.yaml", yaml),
            file("users/passwd", passwd(users)),
            policies(acl_extra),
        ]
    }

    fn start(&self, users: &[(&str, &str)], acl_extra: &str) -> LiveBroker {
        LiveBroker::start(self.port, &self.volume(users, acl_extra), self.metrics)
    }

    async fn connect(&self, user: &str, password: &str) -> (RawClient, ReasonCode) {
        let mut connect = connect_packet(V5, &format!("{user}-client"));
        connect.username = Some(user.into());
        connect.password = Some(password.as_bytes().to_vec().into());
        let (client, connack) =
            RawClient::connect_with(&format!("127.0.0.1:{}", self.port), connect).await;
        (client, connack.reason_code)
    }

    async fn connected(&self, user: &str, password: &str) -> RawClient {
        let (client, reason) = self.connect(user, password).await;
        assert_eq!(reason, ReasonCode::Success, "CONNACK for {user}");
        client
    }
}

#[tokio::test]
async fn a_mosquitto_passwd_file_admits_its_users_and_refuses_wrong_passwords() {
    let setup = Setup::new();
    let _broker = setup.start(&[("alice", "wonderland")], "");

    let (_, right) = setup.connect("alice", "wonderland").await;
    let (_, wrong) = setup.connect("alice", "looking-glass").await;

    assert_eq!(
        (right, wrong),
        (ReasonCode::Success, ReasonCode::BadUserNameOrPassword)
    );
}

#[tokio::test]
async fn a_user_added_by_a_reload_can_connect_at_once() {
    let setup = Setup::new();
    let mut broker = setup.start(&[("alice", "a")], "");
    let mut alice = setup.connected("alice", "a").await;

    broker.apply(&setup.volume(&[("alice", "a"), ("bob", "b")], ""));

    setup.connected("bob", "b").await;
    alice.ping().await;
}

#[tokio::test]
async fn a_removed_users_connection_is_closed_with_not_authorized() {
    let setup = Setup::new();
    let mut broker = setup.start(&[("alice", "a"), ("bob", "b")], "");
    let mut alice = setup.connected("alice", "a").await;
    let mut bob = setup.connected("bob", "b").await;

    broker.apply(&setup.volume(&[("alice", "a")], ""));

    bob.expect_disconnect(ReasonCode::NotAuthorized).await;
    alice.ping().await;
}

#[tokio::test]
async fn a_changed_password_closes_the_connection_with_administrative_action() {
    let setup = Setup::new();
    let mut broker = setup.start(&[("alice", "old")], "");
    let mut alice = setup.connected("alice", "old").await;

    broker.apply(&setup.volume(&[("alice", "new")], ""));

    alice
        .expect_disconnect(ReasonCode::AdministrativeAction)
        .await;
    setup.connected("alice", "new").await;
}

#[tokio::test]
async fn a_publish_the_acl_denies_is_refused_with_not_authorized() {
    let setup = Setup::new();
    let _broker = setup.start(&[("alice", "a")], "");
    let mut alice = setup.connected("alice", "a").await;

    let allowed = alice
        .publish_with(publish_packet("sensors/t", "1", QoS::AtLeastOnce))
        .await;
    let denied = alice
        .publish_with(publish_packet("elsewhere", "1", QoS::AtLeastOnce))
        .await;

    assert_eq!(
        (allowed, denied),
        (ReasonCode::Success, ReasonCode::NotAuthorized)
    );
}

#[tokio::test]
async fn the_username_placeholder_limits_each_user_to_its_own_devices() {
    let setup = Setup::new();
    let _broker = setup.start(&[("alice", "a")], "");
    let mut alice = setup.connected("alice", "a").await;

    let own = alice.subscribe("devices/alice/#", QoS::AtLeastOnce).await;
    let other = alice.subscribe("devices/bob/#", QoS::AtLeastOnce).await;

    assert_eq!(
        (own, other),
        (ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized)
    );
}

#[tokio::test]
async fn a_tightened_acl_revokes_an_existing_subscription_and_the_client_stays() {
    let setup = Setup::new();
    let mut broker = setup.start(&[("alice", "a")], "");
    let mut alice = setup.connected("alice", "a").await;
    assert_eq!(
        alice.subscribe("sensors/#", QoS::AtLeastOnce).await,
        ReasonCode::GrantedQoS1
    );
    let deny = "- name: lockdown\n  rules:\n    - { effect: Deny, actions: [subscribe], topics: [\"sensors/secret/#\"] }\n";

    broker.apply(&[
        setup.volume(&[("alice", "a")], "")[0].clone(),
        setup.volume(&[("alice", "a")], "")[1].clone(),
        policies(deny),
    ]);
    alice
        .publish("sensors/t", "after", QoS::AtLeastOnce, false)
        .await;

    alice.expect_no_publish(Duration::from_millis(500)).await;
    assert_eq!(broker.metric("tern_acl_revoked_subscriptions_total"), 1.0);
}

/// A connection remembers its recent publish decisions; a reload must not let it reuse one
/// that the new rules contradict.
#[tokio::test]
async fn a_publish_allowed_before_a_reload_is_refused_after_one_that_denies_it() {
    let setup = Setup::new();
    let mut broker = setup.start(&[("alice", "a")], "");
    let mut alice = setup.connected("alice", "a").await;
    for _ in 0..3 {
        let allowed = alice
            .publish_with(publish_packet("sensors/t", "before", QoS::AtLeastOnce))
            .await;
        assert_eq!(allowed, ReasonCode::Success);
    }
    let deny = "- name: lockdown\n  rules:\n    - { effect: Deny, actions: [publish], topics: [\"sensors/t\"] }\n";

    let mut files = setup.volume(&[("alice", "a")], "");
    files[2] = policies(deny);
    broker.apply(&files);

    let denied = alice
        .publish_with(publish_packet("sensors/t", "after", QoS::AtLeastOnce))
        .await;
    assert_eq!(denied, ReasonCode::NotAuthorized);
}

#[tokio::test]
async fn a_loosened_acl_allows_what_it_refused_before() {
    let setup = Setup::new();
    let mut broker = setup.start(&[("alice", "a")], "");
    let mut alice = setup.connected("alice", "a").await;
    assert_eq!(
        alice.subscribe("alerts/#", QoS::AtLeastOnce).await,
        ReasonCode::NotAuthorized
    );
    let allow = "- name: alerts\n  rules:\n    - { effect: Allow, actions: [subscribe], topics: [\"alerts/#\"], maxQos: 0 }\n";

    let mut files = setup.volume(&[("alice", "a")], "");
    files[2] = policies(allow);
    broker.apply(&files);

    assert_eq!(
        alice.subscribe("alerts/#", QoS::AtLeastOnce).await,
        ReasonCode::Success
    );
}

/// A reload that puts a connected user into a group gives it that group's rights at once, on
/// the same connection.
#[tokio::test]
async fn a_group_membership_added_by_a_reload_applies_to_a_connected_client() {
    let setup = Setup::new();
    let users = [("alice", "a")];
    let ops = "- name: ops\n  rules:\n    - { effect: Allow, principals: [ { group: ops } ], actions: [publish], topics: [\"ops/#\"] }\n";
    let mut broker = setup.start(&users, ops);
    let mut alice = setup.connected("alice", "a").await;
    let before = alice
        .publish_with(publish_packet("ops/restart", "1", QoS::AtLeastOnce))
        .await;

    broker.apply(&setup.volume_with_auth(&users, ops, ", groups: { ops: [alice] }"));
    let after = alice
        .publish_with(publish_packet("ops/restart", "2", QoS::AtLeastOnce))
        .await;

    assert_eq!(
        (before, after),
        (ReasonCode::NotAuthorized, ReasonCode::Success)
    );
}

#[tokio::test]
async fn an_invalid_policy_file_is_refused_naming_the_policy() {
    let setup = Setup::new();
    let mut broker = setup.start(&[("alice", "a")], "");
    let bad = "- name: broken\n  rules:\n    - { effect: Allow, actions: [publish], topics: [\"a/#/b\"] }\n";

    let mut files = setup.volume(&[("alice", "a")], "");
    files[2] = policies(bad);
    let log = broker.apply_rejected(&files);

    assert!(log.contains("ACL policy `broken`"), "{log}");
}

/// Mutual TLS with `tlsIdentity: commonName`: the certificate's CN is the username, so `%u`
/// rules apply to it; driven by Mosquitto's own clients.
#[tokio::test]
async fn a_client_certificate_common_name_is_the_username_for_acls() {
    use tern_e2e::certs::TestCa;
    use tern_e2e::clients::{mosquitto_pub, MosquittoSub, SubOptions};
    let (port, metrics) = (free_port().unwrap(), free_port().unwrap());
    let ca = TestCa::new("devices ca").unwrap();
    let server = ca.server().unwrap();
    let yaml = format!(
        "listeners:\n  - {{ name: mtls, port: {port}, bind: 127.0.0.1, tls: {{ certFile: tls/tls.crt, keyFile: tls/tls.key, clientCaFile: tls/ca.crt }} }}\n\
         metrics: {{ bind: 127.0.0.1, port: {metrics} }}\n\
         auth: {{ allowAnonymous: false, tlsIdentity: commonName }}\n\
         acl: {{ defaultAction: deny, files: [acl/policies.yaml] }}\n"
    );
    let _broker = LiveBroker::start(
        port,
        &[
            file("broker.yaml", yaml),
            file("tls/tls.crt", server.cert),
            file("tls/tls.key", server.key),
            file("tls/ca.crt", ca.cert_pem.clone()),
            policies(""),
        ],
        metrics,
    );
    let dir = tempfile::tempdir().unwrap();
    let client = ca.client("sensor-7").unwrap();
    let paths = ["ca.pem", "client.pem", "client.key"].map(|name| dir.path().join(name));
    std::fs::write(&paths[0], &ca.cert_pem).unwrap();
    std::fs::write(&paths[1], &client.cert).unwrap();
    std::fs::write(&paths[2], &client.key).unwrap();
    let [ca_file, cert_file, key_file] = paths.map(|p| p.to_string_lossy().into_owned());
    let tls_args = [
        "--cafile", &ca_file, "--cert", &cert_file, "--key", &key_file,
    ];

    let mut options = SubOptions::new(V5, "devices/sensor-7/#")
        .qos(1)
        .timeout_secs(10);
    for arg in tls_args {
        options = options.arg(arg);
    }
    let subscriber = MosquittoSub::spawn(port, &options).await;
    let mut publish_args = tls_args.to_vec();
    publish_args.extend(["-t", "devices/sensor-7/temp", "-m", "21", "-q", "1"]);
    mosquitto_pub(port, V5, &publish_args).await;

    assert_eq!(
        subscriber.messages().await,
        vec!["devices/sensor-7/temp 21".to_string()]
    );
}
