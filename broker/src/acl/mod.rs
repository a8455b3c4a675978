//! Access control: what an authenticated client may publish and subscribe to.
//!
//! Pure decisions, no I/O beyond reading the policy files: [`load_policies`] reads the YAML,
//! [`AclSnapshot::compile`] validates and indexes it (one snapshot per configuration revision),
//! [`AclSnapshot::for_client`] picks out one client's rules when it connects, and the
//! [`ClientAcl`] it returns answers every PUBLISH and SUBSCRIBE.
//!
//! # Which rules apply to a client
//!
//! A rule applies when any of its principals matches, or when it has none (everyone, anonymous
//! clients included). `username` and `clientId` principals match exactly or as `*` patterns
//! (`sensor-*`); a `group` principal matches when the client's identity lists that group. A
//! username principal never matches an anonymous client.
//!
//! In rule topics, a `%u` level stands for the client's username and `%c` for its client id.
//! The value fills exactly one level and is compared as plain text, never as a wildcard: a
//! username `+` or `a/b` does not widen `devices/%u/#`. A topic with `%u` does not apply to an
//! anonymous client (the rule's other topics still do).
//!
//! # Publishing (`check_publish`)
//!
//! Rules whose actions include `publish` and whose topic filters match the topic decide:
//! 1. a matching **Deny** refuses, whatever else matches;
//! 2. otherwise a matching **Allow** whose `maxQos` (default 2) is at least the publish QoS,
//!    and whose `retain` is not `false` when the publish is retained, allows;
//! 3. otherwise, if some Allow matched but its `maxQos`/`retain` did not permit, refused;
//! 4. otherwise (no rule matches) the default action decides.
//!
//! # Subscribing (`check_subscribe`)
//!
//! A subscription must not leak a single message the client could not be allowed to receive,
//! so a filter is judged by every topic it can match:
//! 1. a **Deny** rule (action `subscribe`) whose filter **overlaps** the requested filter —
//!    some topic matches both — refuses it (`#` is refused when anything is denied);
//! 2. otherwise, if some **Allow** rule's filter **covers** the requested filter — every topic
//!    the requested filter matches, the rule's filter matches too — it is granted at
//!    `min(requested QoS, highest maxQos among covering Allow rules)`;
//! 3. otherwise, if some Allow rule overlaps it without covering it, refused;
//! 4. otherwise (no rule overlaps) the default action decides, at the requested QoS.
//!
//! The caller removes a `$share/{group}/` or `$exclusive/` prefix before checking (rule topics
//! may not carry one): ACLs are about the topics a subscription receives, not how.
//!
//! # Topic matching
//!
//! As in MQTT §4.7 and [`crate::protocol::topic::filter_matches`]: `+` matches one level, `#`
//! any number of trailing levels including none (`a/#` matches `a`), and a filter starting with
//! a wildcard never matches a topic starting with `$` (MQTT-4.7.2-1): `#` does not grant
//! `$SYS/...`; a rule must name `$SYS/#` for that.
//!
//! # Cost
//!
//! Compiling indexes rules by principal, so `for_client` is a few hash lookups plus the `*`
//! patterns, whatever the number of rules. A [`ClientAcl`] holds its rules in tries walked level
//! by level; checks do not allocate, and with no rules and a default of allow they return at
//! once.

mod client;
mod error;
mod filter_trie;
mod load;
mod mosquitto;
mod policy;
mod principal;
mod rule;
mod rule_set;
mod snapshot;
mod validate;

#[cfg(test)]
mod tests;

pub use client::{ClientAcl, ClientIdentity};
pub use error::{AclError, RuleProblem};
pub use load::{load_policies, parse_policies};
pub use mosquitto::{convert_acl_file, ConvertError, ConvertedAcl};
pub use policy::{AclPolicy, AclRule, Action, Effect, Principal};
pub use snapshot::AclSnapshot;
pub use validate::{validate_rule, MAX_RULE_FILTER_LEVELS};
