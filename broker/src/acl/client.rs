//! One connected client's view of the ACL, built once when it connects (and again after each
//! reload), answering the per-packet questions without looking at anyone else's rules.

use std::sync::Arc;

use super::rule_set::{AllowVerdict, RuleSet};
use crate::protocol::QoS;

/// Who a client is, as far as ACL principals and placeholders are concerned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientIdentity {
    /// The authenticated username; `None` for an anonymous client. Username principals and
    /// `%u` topics never apply to an anonymous client.
    pub username: Option<String>,
    /// The MQTT client identifier (after the broker assigned one, if the client sent none).
    pub client_id: String,
    /// The groups the user belongs to (from `auth.groups` or the JWT groups claim).
    pub groups: Vec<String>,
}

/// The ACL rules that apply to one client, with `%u`/`%c` already filled in, answering publish
/// and subscribe checks. Obtained from [`AclSnapshot::for_client`](super::AclSnapshot::for_client);
/// the decision semantics are described in the [module documentation](super).
///
/// Checks do not allocate. Rules that apply to every client and name no placeholder are shared
/// with the snapshot, so a client's own memory is proportional to the rules naming it.
#[derive(Debug, Clone)]
pub struct ClientAcl {
    /// The [`AclSnapshot::id`](super::AclSnapshot::id) of the snapshot this view came from.
    snapshot_id: u64,
    /// Rules for everyone without placeholders, shared by all clients of a snapshot.
    shared: Arc<RuleSet>,
    /// Rules selected for this client by its principals, and placeholder rules filled in.
    own: RuleSet,
    /// Whether a request no rule is about is allowed.
    default_allows: bool,
    /// No rule applies to this client and the default allows: every check passes at once.
    allow_all: bool,
}

impl ClientAcl {
    pub(super) fn new(
        snapshot_id: u64,
        shared: Arc<RuleSet>,
        own: RuleSet,
        default_allows: bool,
    ) -> ClientAcl {
        let allow_all = default_allows && shared.is_empty() && own.is_empty();
        ClientAcl {
            snapshot_id,
            shared,
            own,
            default_allows,
            allow_all,
        }
    }

    /// The [`AclSnapshot::id`](super::AclSnapshot::id) of the snapshot this view came from.
    pub fn snapshot_id(&self) -> u64 {
        self.snapshot_id
    }

    /// Whether the client may publish to `topic` (a valid topic name) at `qos`, with the
    /// retain flag `retain`. Also the check for a will message at CONNECT.
    pub fn check_publish(&self, topic: &str, qos: QoS, retain: bool) -> bool {
        if self.allow_all {
            return true;
        }
        let rule_sets = [&*self.shared, &self.own];
        if rule_sets
            .iter()
            .any(|rules| rules.publish.deny.any_covering(topic))
        {
            return false;
        }
        let mut verdict = AllowVerdict::NoneApplies;
        for rules in rule_sets {
            verdict = verdict.combine(rules.publish.publish_verdict(topic, qos, retain));
            if let AllowVerdict::Granted(_) = verdict {
                return true;
            }
        }
        verdict == AllowVerdict::NoneApplies && self.default_allows
    }

    /// The QoS at which the client may subscribe to `filter` having asked for `requested`, or
    /// `None` if it may not subscribe at all.
    ///
    /// `filter` must be a valid plain topic filter: the caller removes a `$share/{group}/` or
    /// `$exclusive/` prefix first (see [`parse_filter`](crate::protocol::topic::parse_filter)),
    /// so rules decide on the topics a subscription receives, however it is delivered.
    pub fn check_subscribe(&self, filter: &str, requested: QoS) -> Option<QoS> {
        if self.allow_all {
            return Some(requested);
        }
        let rule_sets = [&*self.shared, &self.own];
        if rule_sets
            .iter()
            .any(|rules| rules.subscribe.deny.any_overlapping(filter))
        {
            return None;
        }
        let verdict = rule_sets
            .iter()
            .map(|rules| rules.subscribe.subscribe_verdict(filter))
            .fold(AllowVerdict::NoneApplies, AllowVerdict::combine);
        match verdict {
            AllowVerdict::Granted(max_qos) => Some(requested.min(max_qos)),
            AllowVerdict::NotGranted => None,
            AllowVerdict::NoneApplies => self.default_allows.then_some(requested),
        }
    }

    /// Whether a message on `topic` may still be delivered to the client: what its
    /// subscription rules say about that single topic. For re-checking messages that were
    /// queued or retained before a reload; subscriptions granted under the current rules
    /// already only receive allowed topics.
    pub fn may_receive(&self, topic: &str) -> bool {
        self.check_subscribe(topic, QoS::AtMostOnce).is_some()
    }

    /// Whether every check passes without looking at rules (no rule applies to the client and
    /// the default action is allow).
    pub fn allows_everything(&self) -> bool {
        self.allow_all
    }

    /// Number of rule entries (one per topic and action) that apply to this client only, not
    /// counting those shared by every client. For logs and tests.
    pub fn own_rule_count(&self) -> usize {
        self.own.len()
    }
}
