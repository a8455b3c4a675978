//! The connection's copy of its ACL: built from the live snapshot when the client connects and
//! rebuilt, lazily, the first time it is consulted after a reload brought a new snapshot. The
//! per-packet cost is one comparison of snapshot ids; the checks themselves do not allocate.
//!
//! Publishers mostly publish to the same few topics again and again, so the connection also
//! remembers its last few publish decisions ([`RecentPublishes`]). They belong to the view they
//! were made with and go with it when a reload rebuilds it, so a cached decision never outlives
//! the rules that made it.

use std::sync::Arc;

use super::Connection;
use crate::acl::{AclSnapshot, ClientAcl, ClientIdentity};
use crate::metrics::DropReason;
use crate::protocol::QoS;

/// One client's ACL and the publish decisions made with it.
pub(super) struct ConnectionAcl {
    /// Knows which snapshot it came from ([`ClientAcl::snapshot_id`]).
    view: Arc<ClientAcl>,
    /// Allocated at the first publish the view does not simply allow: idle clients and
    /// clients no rule concerns carry only the pointer.
    recent: Option<Box<RecentPublishes>>,
}

impl ConnectionAcl {
    /// The view of `snapshot` for `identity`.
    pub(super) fn new(snapshot: &AclSnapshot, identity: &ClientIdentity) -> ConnectionAcl {
        ConnectionAcl {
            view: snapshot.shared_view(identity),
            recent: None,
        }
    }

    /// The view's publish decision, from the recent ones when the same request was decided.
    fn check_publish(&mut self, topic: &str, qos: QoS, retain: bool) -> bool {
        if self.view.allows_everything() {
            return true;
        }
        let recent = self.recent.get_or_insert_with(Box::default);
        let fingerprint = fingerprint(topic);
        if let Some(allowed) = recent.find(fingerprint, topic, qos, retain) {
            return allowed;
        }
        let allowed = self.view.check_publish(topic, qos, retain);
        recent.remember(fingerprint, topic, qos, retain, allowed);
        allowed
    }
}

/// How many publish decisions a connection remembers: enough for a device cycling through a
/// few readings, small enough that looking through all of them costs less than one rule lookup.
const RECENT_PUBLISHES: usize = 4;

/// The last [`RECENT_PUBLISHES`] publish decisions of one connection, replaced oldest first.
#[derive(Debug, Default)]
struct RecentPublishes {
    /// The [`fingerprint`] of each entry's topic, compared before the topics themselves: a
    /// publisher's topics often differ only in their last level and are as long as each other.
    fingerprints: [u64; RECENT_PUBLISHES],
    entries: [Option<PublishDecision>; RECENT_PUBLISHES],
    /// The entry the next new decision replaces.
    next: usize,
}

/// One remembered decision: the request it answered and the answer.
#[derive(Debug)]
struct PublishDecision {
    topic: String,
    qos: QoS,
    retain: bool,
    allowed: bool,
}

impl RecentPublishes {
    /// The remembered decision about publishing to `topic` (whose [`fingerprint`] is given).
    fn find(&self, fingerprint: u64, topic: &str, qos: QoS, retain: bool) -> Option<bool> {
        self.fingerprints
            .iter()
            .zip(&self.entries)
            .filter(|(known, _)| **known == fingerprint)
            .find_map(|(_, entry)| {
                let entry = entry.as_ref()?;
                (entry.qos == qos && entry.retain == retain && entry.topic == topic)
                    .then_some(entry.allowed)
            })
    }

    /// Remembers a decision in place of the oldest one.
    fn remember(&mut self, fingerprint: u64, topic: &str, qos: QoS, retain: bool, allowed: bool) {
        let index = self.next;
        self.next = (index + 1) % RECENT_PUBLISHES;
        self.fingerprints[index] = fingerprint;
        match &mut self.entries[index] {
            // Reuse the replaced entry's string: a publisher cycling through topics of similar
            // length stops allocating after its first few publishes.
            Some(entry) => {
                entry.topic.clear();
                entry.topic.push_str(topic);
                (entry.qos, entry.retain, entry.allowed) = (qos, retain, allowed);
            }
            slot @ None => {
                *slot = Some(PublishDecision {
                    topic: topic.to_owned(),
                    qos,
                    retain,
                    allowed,
                })
            }
        }
    }
}

/// A cheap summary of a topic, equal for equal topics: its length and its last eight bytes.
/// Only ever a pre-filter: equal fingerprints are confirmed by comparing the topics.
fn fingerprint(topic: &str) -> u64 {
    let bytes = topic.as_bytes();
    let tail = match bytes.last_chunk::<8>() {
        Some(tail) => u64::from_le_bytes(*tail),
        None => bytes
            .iter()
            .fold(0, |tail, &byte| (tail << 8) | u64::from(byte)),
    };
    tail ^ (bytes.len() as u64).rotate_right(8)
}

impl<S> Connection<S> {
    /// The client's ACL as of the live configuration.
    fn acl(&mut self) -> &mut ConnectionAcl {
        let live = self.broker.config();
        if live.acl.id() != self.acl.view.snapshot_id() {
            // The session's record, not the connection's: a reload may have refreshed the
            // client's groups there (unless a newer connection owns the session by now).
            let current = {
                let state = self.session.state.lock();
                state
                    .client
                    .clone()
                    .filter(|_| state.generation == self.generation)
            };
            let connected = current.unwrap_or_else(|| Arc::clone(&self.connected));
            let identity = connected.acl_identity(&self.session.client_id);
            self.acl = ConnectionAcl::new(&live.acl, &identity);
        }
        &mut self.acl
    }

    /// Whether the client may publish to `topic`; a refusal is counted as a drop.
    pub(super) fn may_publish(&mut self, topic: &str, qos: QoS, retain: bool) -> bool {
        let allowed = self.acl().check_publish(topic, qos, retain);
        self.broker.metrics.acl_decision(false, allowed);
        if !allowed {
            self.broker.metrics.dropped(DropReason::AclDenied);
            tracing::debug!(client_id = %self.session.client_id, %topic, "publish denied by ACL");
        }
        allowed
    }

    /// The QoS the ACL grants for subscribing to `filter` (without `$share/`/`$exclusive/`
    /// prefix) at `requested`, or `None` when it refuses.
    pub(super) fn subscription_grant(&mut self, filter: &str, requested: QoS) -> Option<QoS> {
        let granted = self.acl().view.check_subscribe(filter, requested);
        self.broker.metrics.acl_decision(true, granted.is_some());
        if granted.is_none() {
            tracing::debug!(client_id = %self.session.client_id, %filter, "subscribe denied by ACL");
        }
        granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_decisions_answer_only_the_same_request() {
        let mut recent = RecentPublishes::default();
        let topic = "sensors/1/temperature";
        recent.remember(fingerprint(topic), topic, QoS::AtLeastOnce, false, true);
        let find = |recent: &RecentPublishes, topic: &str, qos, retain| {
            recent.find(fingerprint(topic), topic, qos, retain)
        };
        assert_eq!(find(&recent, topic, QoS::AtLeastOnce, false), Some(true));
        assert_eq!(find(&recent, topic, QoS::ExactlyOnce, false), None);
        assert_eq!(find(&recent, topic, QoS::AtLeastOnce, true), None);
        // Same length and same last eight bytes: equal fingerprints, different topics.
        let twin = "sensors/2/temperature";
        assert_eq!(fingerprint(twin), fingerprint(topic));
        assert_eq!(find(&recent, twin, QoS::AtLeastOnce, false), None);
    }

    #[test]
    fn the_oldest_decision_makes_room() {
        let mut recent = RecentPublishes::default();
        let topics: Vec<String> = (0..=RECENT_PUBLISHES).map(|n| format!("t/{n}")).collect();
        for (n, topic) in topics.iter().enumerate() {
            recent.remember(
                fingerprint(topic),
                topic,
                QoS::AtMostOnce,
                false,
                n % 2 == 0,
            );
        }
        let find = |topic: &str| recent.find(fingerprint(topic), topic, QoS::AtMostOnce, false);
        assert_eq!(find(&topics[0]), None);
        for (n, topic) in topics.iter().enumerate().skip(1) {
            assert_eq!(find(topic), Some(n % 2 == 0), "{topic}");
        }
    }

    #[test]
    fn short_topics_have_distinct_fingerprints() {
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_ne!(fingerprint(""), fingerprint("\0"));
        assert_ne!(fingerprint("ab"), fingerprint("ba"));
    }
}
