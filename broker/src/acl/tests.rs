//! The decision contract of the module documentation, as executable examples: policies written
//! as YAML, as users write them, and the decisions clients get.

use std::path::Path;

use super::*;
use crate::config::{AclConfig, DefaultAction};
use crate::protocol::QoS;

const Q0: QoS = QoS::AtMostOnce;
const Q1: QoS = QoS::AtLeastOnce;
const Q2: QoS = QoS::ExactlyOnce;

fn snapshot(yaml: &str, default_action: DefaultAction) -> AclSnapshot {
    let policies = parse_policies(yaml.as_bytes(), Path::new("test.yaml")).unwrap();
    AclSnapshot::compile(policies, default_action).unwrap()
}

fn user(name: &str, client_id: &str, groups: &[&str]) -> ClientIdentity {
    ClientIdentity {
        username: Some(name.into()),
        client_id: client_id.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn anonymous(client_id: &str) -> ClientIdentity {
    ClientIdentity {
        username: None,
        client_id: client_id.into(),
        groups: Vec::new(),
    }
}

/// The example from the configuration documentation.
const SENSORS: &str = r##"
- name: sensors
  rules:
    - effect: Allow
      principals: [ { username: "sensor-*" }, { clientId: "gw-1" }, { group: ops } ]
      actions: [publish, subscribe]
      topics: ["sensors/%u/#", "cmd/%c/+"]
      maxQos: 1
"##;

fn sensors() -> AclSnapshot {
    snapshot(SENSORS, DefaultAction::Deny)
}

#[test]
fn example_a_sensor_publishes_under_its_own_name() {
    let acl = sensors().for_client(&user("sensor-7", "s7", &[]));
    assert!(acl.check_publish("sensors/sensor-7/temp", Q1, false));
}

#[test]
fn example_a_sensor_may_not_publish_under_another_name() {
    let acl = sensors().for_client(&user("sensor-7", "s7", &[]));
    assert!(!acl.check_publish("sensors/sensor-8/temp", Q0, false));
}

#[test]
fn example_max_qos_refuses_qos_2() {
    let acl = sensors().for_client(&user("sensor-7", "s7", &[]));
    assert!(!acl.check_publish("sensors/sensor-7/temp", Q2, false));
}

#[test]
fn example_a_sensor_receives_commands_for_its_client_id() {
    let acl = sensors().for_client(&user("sensor-7", "s7", &[]));
    assert_eq!(acl.check_subscribe("cmd/s7/+", Q2), Some(Q1));
}

#[test]
fn example_the_gateway_client_id_matches_whatever_its_username() {
    let acl = sensors().for_client(&user("gateway", "gw-1", &[]));
    assert!(acl.check_publish("cmd/gw-1/reboot", Q0, false));
}

#[test]
fn example_an_anonymous_gateway_gets_its_client_id_topics_only() {
    let acl = sensors().for_client(&anonymous("gw-1"));
    assert!(acl.check_publish("cmd/gw-1/reboot", Q0, false));
    assert!(!acl.check_publish("sensors/gw-1/temp", Q0, false));
}

#[test]
fn example_an_ops_member_is_matched_by_group() {
    let acl = sensors().for_client(&user("carol", "c", &["ops"]));
    assert!(acl.check_publish("sensors/carol/x", Q1, false));
}

#[test]
fn example_anyone_else_gets_the_default_deny() {
    let acl = sensors().for_client(&user("mallory", "m", &["dev"]));
    assert!(!acl.check_publish("sensors/mallory/x", Q0, false));
    assert_eq!(acl.check_subscribe("cmd/m/+", Q0), None);
}

#[test]
fn a_deny_wins_over_an_allow_for_the_same_topic() {
    let acl = snapshot(
        r##"
- name: p
  rules:
    - { effect: Allow, actions: [publish], topics: ["a/#"] }
    - { effect: Deny, actions: [publish], topics: ["a/secret"] }
"##,
        DefaultAction::Allow,
    )
    .for_client(&user("u", "c", &[]));
    assert!(acl.check_publish("a/open", Q0, false));
    assert!(!acl.check_publish("a/secret", Q0, false));
}

#[test]
fn a_deny_for_everyone_wins_over_an_allow_for_one_user() {
    let acl = snapshot(
        r##"
- name: everyone
  rules: [ { effect: Deny, actions: [publish], topics: ["x/#"] } ]
- name: alice
  rules: [ { effect: Allow, principals: [ { username: alice } ], actions: [publish], topics: ["#"] } ]
"##,
        DefaultAction::Deny,
    )
    .for_client(&user("alice", "c", &[]));
    assert!(!acl.check_publish("x/y", Q0, false));
    assert!(acl.check_publish("y", Q0, false));
}

#[test]
fn a_deny_only_covers_its_actions() {
    let acl = snapshot(
        "- { name: p, rules: [ { effect: Deny, actions: [subscribe], topics: [a] } ] }",
        DefaultAction::Allow,
    )
    .for_client(&user("u", "c", &[]));
    assert!(acl.check_publish("a", Q0, false));
    assert_eq!(acl.check_subscribe("a", Q0), None);
}

#[test]
fn without_rules_and_with_default_allow_everything_is_allowed_at_once() {
    let acl = snapshot("[]", DefaultAction::Allow).for_client(&anonymous("c"));
    assert!(acl.allows_everything());
    assert!(acl.check_publish("$SYS/anything", Q2, true));
    assert_eq!(acl.check_subscribe("#", Q2), Some(Q2));
}

#[test]
fn without_rules_and_with_default_deny_everything_is_refused() {
    let acl = snapshot("[]", DefaultAction::Deny).for_client(&anonymous("c"));
    assert!(!acl.allows_everything());
    assert!(!acl.check_publish("a", Q0, false));
    assert_eq!(acl.check_subscribe("a", Q0), None);
}

#[test]
fn rules_for_other_clients_leave_the_default_in_force() {
    let acl = snapshot(
        "- { name: p, rules: [ { effect: Deny, principals: [ { username: bob } ], actions: [publish], topics: ['#'] } ] }",
        DefaultAction::Allow,
    )
    .for_client(&user("alice", "c", &[]));
    assert!(acl.allows_everything());
}

#[test]
fn an_unconfigured_acl_allows_everything() {
    let snapshot = AclSnapshot::load(&AclConfig::default(), Path::new("/nonexistent")).unwrap();
    assert_eq!(snapshot.default_action(), DefaultAction::Allow);
    assert!(snapshot.for_client(&anonymous("c")).allows_everything());
}

const PERSONAL: &str = r##"
- name: personal
  rules:
    - { effect: Allow, actions: [publish, subscribe], topics: ["users/%u/#", "clients/%c"] }
"##;

#[test]
fn placeholders_are_filled_with_the_clients_own_names() {
    let acl = snapshot(PERSONAL, DefaultAction::Deny).for_client(&user("ann", "phone", &[]));
    assert!(acl.check_publish("users/ann/notes", Q0, false));
    assert!(acl.check_publish("clients/phone", Q0, false));
    assert!(!acl.check_publish("users/bob/notes", Q0, false));
    assert!(!acl.check_publish("clients/laptop", Q0, false));
}

#[test]
fn a_username_placeholder_does_not_apply_to_anonymous_clients() {
    let acl = snapshot(PERSONAL, DefaultAction::Deny).for_client(&anonymous("phone"));
    assert!(!acl.check_publish("users//notes", Q0, false));
    assert!(acl.check_publish("clients/phone", Q0, false));
}

#[test]
fn a_username_that_looks_like_a_wildcard_stays_literal() {
    let snapshot = snapshot(PERSONAL, DefaultAction::Deny);
    let plus = snapshot.for_client(&user("+", "c", &[]));
    assert!(!plus.check_publish("users/bob/notes", Q0, false));
    assert_eq!(plus.check_subscribe("users/+/notes", Q0), None);
    let hash = snapshot.for_client(&user("#", "c", &[]));
    assert_eq!(hash.check_subscribe("users/#", Q0), None);
    let slash = snapshot.for_client(&user("bob/notes", "c", &[]));
    assert!(!slash.check_publish("users/bob/notes", Q0, false));
}

#[test]
fn a_deny_placeholder_still_refuses_a_wildcard_subscription_over_it() {
    let acl = snapshot(
        "- { name: p, rules: [ { effect: Deny, actions: [subscribe], topics: ['private/%u/#'] } ] }",
        DefaultAction::Allow,
    )
    .for_client(&user("+", "c", &[]));
    assert_eq!(acl.check_subscribe("private/+/x", Q0), None);
}

const GLOBS: &str = r##"
- name: globs
  rules:
    - { effect: Allow, principals: [ { username: "sensor-*" } ], actions: [publish], topics: [sensors] }
    - { effect: Allow, principals: [ { clientId: "*-gw" } ], actions: [publish], topics: [gateways] }
    - { effect: Allow, principals: [ { username: "*" } ], actions: [publish], topics: [members] }
"##;

#[test]
fn username_globs_match_runs_of_characters() {
    let snapshot = snapshot(GLOBS, DefaultAction::Deny);
    assert!(snapshot
        .for_client(&user("sensor-12", "c", &[]))
        .check_publish("sensors", Q0, false));
    assert!(!snapshot
        .for_client(&user("actuator-12", "c", &[]))
        .check_publish("sensors", Q0, false));
}

#[test]
fn client_id_globs_match_anonymous_clients_too() {
    let acl = snapshot(GLOBS, DefaultAction::Deny).for_client(&anonymous("site1-gw"));
    assert!(acl.check_publish("gateways", Q0, false));
}

#[test]
fn a_username_star_matches_every_authenticated_client_but_no_anonymous_one() {
    let snapshot = snapshot(GLOBS, DefaultAction::Deny);
    assert!(snapshot
        .for_client(&user("x", "c", &[]))
        .check_publish("members", Q0, false));
    assert!(!snapshot
        .for_client(&anonymous("c"))
        .check_publish("members", Q0, false));
}

#[test]
fn group_principals_match_any_of_the_clients_groups() {
    let snapshot = snapshot(
        "- { name: p, rules: [ { effect: Allow, principals: [ { group: ops } ], actions: [subscribe], topics: ['#'] } ] }",
        DefaultAction::Deny,
    );
    let member = snapshot.for_client(&user("u", "c", &["dev", "ops"]));
    let outsider = snapshot.for_client(&user("u", "c", &["dev"]));
    assert_eq!(member.check_subscribe("a/b", Q1), Some(Q1));
    assert_eq!(outsider.check_subscribe("a/b", Q1), None);
}

const LIMITED: &str = r##"
- name: limited
  rules:
    - { effect: Allow, actions: [publish], topics: ["t/#"], maxQos: 1, retain: false }
"##;

#[test]
fn max_qos_refuses_higher_publishes() {
    let acl = snapshot(LIMITED, DefaultAction::Allow).for_client(&anonymous("c"));
    assert!(acl.check_publish("t/x", Q1, false));
    assert!(!acl.check_publish("t/x", Q2, false));
}

#[test]
fn retain_false_refuses_retained_publishes() {
    let acl = snapshot(LIMITED, DefaultAction::Allow).for_client(&anonymous("c"));
    assert!(!acl.check_publish("t/x", Q0, true));
}

#[test]
fn a_failed_constraint_refuses_even_under_default_allow() {
    let acl = snapshot(LIMITED, DefaultAction::Allow).for_client(&anonymous("c"));
    assert!(!acl.check_publish("t/x", Q2, false));
    assert!(acl.check_publish("elsewhere", Q2, true));
}

#[test]
fn another_allow_without_the_constraint_permits() {
    let acl = snapshot(
        r##"
- name: p
  rules:
    - { effect: Allow, actions: [publish], topics: ["t/#"], maxQos: 0, retain: false }
    - { effect: Allow, principals: [ { username: boss } ], actions: [publish], topics: ["t/x"], retain: true }
"##,
        DefaultAction::Deny,
    )
    .for_client(&user("boss", "c", &[]));
    assert!(acl.check_publish("t/x", Q2, true));
    assert!(!acl.check_publish("t/y", Q1, false));
}

#[test]
fn a_subscription_is_granted_at_most_the_rules_max_qos() {
    let acl = snapshot(
        "- { name: p, rules: [ { effect: Allow, actions: [subscribe], topics: ['a/#'], maxQos: 1 } ] }",
        DefaultAction::Deny,
    )
    .for_client(&anonymous("c"));
    assert_eq!(acl.check_subscribe("a/+", Q2), Some(Q1));
    assert_eq!(acl.check_subscribe("a/b", Q0), Some(Q0));
}

#[test]
fn a_subscription_gets_the_highest_max_qos_among_covering_rules() {
    let acl = snapshot(
        r##"
- name: p
  rules:
    - { effect: Allow, actions: [subscribe], topics: ["a/#"], maxQos: 0 }
    - { effect: Allow, principals: [ { clientId: c } ], actions: [subscribe], topics: ["a/+"], maxQos: 1 }
    - { effect: Allow, actions: [subscribe], topics: ["a/b"] }
"##,
        DefaultAction::Deny,
    )
    .for_client(&anonymous("c"));
    assert_eq!(acl.check_subscribe("a/+", Q2), Some(Q1));
    assert_eq!(acl.check_subscribe("a/b", Q2), Some(Q2));
    assert_eq!(acl.check_subscribe("a/#", Q2), Some(Q0));
}

#[test]
fn a_subscription_wider_than_the_allowed_filter_is_refused() {
    let acl = snapshot(
        "- { name: p, rules: [ { effect: Allow, actions: [subscribe], topics: ['a/+'] } ] }",
        DefaultAction::Deny,
    )
    .for_client(&anonymous("c"));
    assert_eq!(acl.check_subscribe("a/#", Q0), None);
    assert_eq!(acl.check_subscribe("#", Q0), None);
}

#[test]
fn an_allow_overlapping_a_subscription_without_covering_it_refuses_even_under_default_allow() {
    let acl = snapshot(
        "- { name: p, rules: [ { effect: Allow, actions: [subscribe], topics: ['a/b'], maxQos: 0 } ] }",
        DefaultAction::Allow,
    )
    .for_client(&anonymous("c"));
    assert_eq!(acl.check_subscribe("a/+", Q1), None);
    assert_eq!(acl.check_subscribe("z/+", Q1), Some(Q1));
}

#[test]
fn a_deny_anywhere_under_a_wildcard_subscription_refuses_it() {
    let acl = snapshot(
        r##"
- name: p
  rules:
    - { effect: Allow, actions: [subscribe], topics: ["#"] }
    - { effect: Deny, actions: [subscribe], topics: ["a/secret/+"] }
"##,
        DefaultAction::Deny,
    )
    .for_client(&anonymous("c"));
    assert_eq!(acl.check_subscribe("#", Q0), None);
    assert_eq!(acl.check_subscribe("a/#", Q0), None);
    assert_eq!(acl.check_subscribe("+/secret/x", Q0), None);
    assert_eq!(acl.check_subscribe("a/public/#", Q0), Some(Q0));
    assert_eq!(acl.check_subscribe("a/secret", Q0), Some(Q0));
}

#[test]
fn a_deny_on_a_parent_refuses_a_multi_level_subscription_below_it() {
    let acl = snapshot(
        "- { name: p, rules: [ { effect: Deny, actions: [subscribe], topics: [a] } ] }",
        DefaultAction::Allow,
    )
    .for_client(&anonymous("c"));
    assert_eq!(acl.check_subscribe("a/#", Q0), None);
    assert_eq!(acl.check_subscribe("a/+", Q0), Some(Q0));
}

#[test]
fn hash_rules_do_not_reach_dollar_topics() {
    let acl = snapshot(
        "- { name: p, rules: [ { effect: Allow, actions: [publish, subscribe], topics: ['#'] } ] }",
        DefaultAction::Deny,
    )
    .for_client(&anonymous("c"));
    assert_eq!(acl.check_subscribe("$SYS/#", Q0), None);
    assert!(!acl.check_publish("$SYS/x", Q0, false));
    assert_eq!(acl.check_subscribe("#", Q0), Some(Q0));
}

#[test]
fn a_hash_deny_does_not_block_dollar_topics() {
    let acl = snapshot(
        "- { name: p, rules: [ { effect: Deny, actions: [subscribe], topics: ['#'] } ] }",
        DefaultAction::Allow,
    )
    .for_client(&anonymous("c"));
    assert_eq!(acl.check_subscribe("$SYS/broker/load", Q1), Some(Q1));
    assert_eq!(acl.check_subscribe("a", Q1), None);
}

#[test]
fn dollar_sys_needs_a_rule_naming_it() {
    let acl = snapshot(
        "- { name: p, rules: [ { effect: Allow, actions: [subscribe], topics: ['$SYS/#'] } ] }",
        DefaultAction::Deny,
    )
    .for_client(&anonymous("c"));
    assert_eq!(acl.check_subscribe("$SYS/broker/+", Q1), Some(Q1));
    assert_eq!(acl.check_subscribe("+/broker/+", Q1), None);
}

#[test]
fn may_receive_applies_the_subscribe_rules_to_one_topic() {
    let acl = snapshot(
        r##"
- name: p
  rules:
    - { effect: Allow, actions: [subscribe], topics: ["a/#"] }
    - { effect: Deny, actions: [subscribe], topics: ["a/secret"] }
"##,
        DefaultAction::Deny,
    )
    .for_client(&anonymous("c"));
    assert!(acl.may_receive("a/b"));
    assert!(!acl.may_receive("a/secret"));
    assert!(!acl.may_receive("b"));
}

#[test]
fn invalid_policies_are_refused_as_a_whole() {
    let policies = parse_policies(
        b"- { name: ok, rules: [ { effect: Allow, actions: [publish], topics: [a] } ] }\n\
          - { name: bad, rules: [ { effect: Allow, actions: [publish], topics: ['a/b#'] } ] }\n",
        Path::new("test.yaml"),
    )
    .unwrap();
    let error = AclSnapshot::compile(policies, DefaultAction::Deny)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "ACL policy `bad` rules[0]: topic `a/b#`: multi-level wildcard '#' must be alone in the \
         last level of the filter"
    );
}

#[test]
fn the_snapshot_counts_policies_and_rules() {
    let snapshot = snapshot(
        r##"
- { name: a, rules: [ { effect: Allow, actions: [publish], topics: [x] } ] }
- { name: b, rules: [ { effect: Allow, actions: [publish], topics: [y, "%u"] }, { effect: Deny, actions: [publish], topics: [z] } ] }
"##,
        DefaultAction::Deny,
    );
    assert_eq!((snapshot.policy_count(), snapshot.rule_count()), (2, 3));
}

/// 10,000 device rules (one per user, each Allow `devices/dev-N/#`) plus a few shared rules.
fn ten_thousand_rules() -> AclSnapshot {
    let mut device_rules = Vec::new();
    for n in 0..10_000 {
        device_rules.push(AclRule {
            effect: Effect::Allow,
            principals: vec![Principal {
                username: Some(format!("dev-{n}")),
                ..Principal::default()
            }],
            actions: vec![Action::Publish, Action::Subscribe],
            topics: vec![format!("devices/dev-{n}/#")],
            max_qos: Some(1),
            retain: None,
        });
    }
    let shared = parse_policies(
        br##"
- name: shared
  rules:
    - { effect: Deny, actions: [publish], topics: ["devices/+/firmware"] }
    - { effect: Allow, actions: [subscribe], topics: ["public/#"], maxQos: 0 }
    - { effect: Allow, actions: [publish, subscribe], topics: ["inbox/%c/#"] }
    - { effect: Allow, principals: [ { group: ops } ], actions: [subscribe], topics: ["devices/#"] }
    - { effect: Allow, principals: [ { username: "admin-*" } ], actions: [publish], topics: ["#"] }
"##,
        Path::new("shared.yaml"),
    )
    .unwrap();
    let mut policies = shared;
    policies.push(AclPolicy {
        name: "devices".into(),
        rules: device_rules,
    });
    AclSnapshot::compile(policies, DefaultAction::Deny).unwrap()
}

#[test]
fn with_ten_thousand_rules_each_device_gets_only_its_own() {
    let snapshot = ten_thousand_rules();
    assert_eq!(snapshot.rule_count(), 10_005);
    for n in [0, 4_999, 9_999] {
        let acl = snapshot.for_client(&user(&format!("dev-{n}"), &format!("c{n}"), &[]));
        // Its device rule (publish + subscribe) and the `%c` inbox rule (publish + subscribe).
        assert_eq!(acl.own_rule_count(), 4, "dev-{n}");
        assert!(acl.check_publish(&format!("devices/dev-{n}/temp"), Q1, true));
        assert!(!acl.check_publish(&format!("devices/dev-{n}/temp"), Q2, false));
        assert!(!acl.check_publish(&format!("devices/dev-{n}/firmware"), Q0, false));
        assert!(!acl.check_publish(&format!("devices/dev-{}/temp", n + 1), Q0, false));
        assert_eq!(
            acl.check_subscribe(&format!("devices/dev-{n}/#"), Q2),
            Some(Q1)
        );
        assert_eq!(acl.check_subscribe("devices/+/temp", Q0), None);
        assert_eq!(acl.check_subscribe("public/news", Q1), Some(Q0));
        assert!(acl.check_publish(&format!("inbox/c{n}/x"), Q2, false));
    }
}

#[test]
fn with_ten_thousand_rules_shared_principals_still_apply() {
    let snapshot = ten_thousand_rules();
    let ops = snapshot.for_client(&user("carol", "c", &["ops"]));
    assert_eq!(ops.check_subscribe("devices/#", Q1), Some(Q1));
    assert!(!ops.check_publish("devices/dev-1/temp", Q0, false));
    let admin = snapshot.for_client(&user("admin-1", "a", &[]));
    assert!(admin.check_publish("devices/dev-1/temp", Q2, true));
    assert!(!admin.check_publish("devices/dev-1/firmware", Q0, false));
    let stranger = snapshot.for_client(&anonymous("x"));
    assert!(!stranger.check_publish("devices/dev-1/temp", Q0, false));
}
