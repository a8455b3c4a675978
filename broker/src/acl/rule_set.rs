//! Rules instantiated for a client (or for every client), sorted by action and effect into
//! filter tries, and the per-action decision ingredients read from them.

use std::ops::ControlFlow;

use super::filter_trie::FilterTrie;
use super::policy::Effect;
use super::rule::{CompiledRule, Grant, Substitutions};
use crate::protocol::QoS;

/// Rules ready for decisions: one pair of tries per action.
#[derive(Debug, Clone, Default)]
pub(super) struct RuleSet {
    pub(super) publish: ActionRules,
    pub(super) subscribe: ActionRules,
}

/// The Allow and Deny filters for one action.
#[derive(Debug, Clone, Default)]
pub(super) struct ActionRules {
    pub(super) allow: FilterTrie<Grant>,
    pub(super) deny: FilterTrie<()>,
}

impl RuleSet {
    /// Adds `rule`'s topics, placeholders filled from `values`; topics whose placeholder has no
    /// value are left out.
    pub(super) fn add(&mut self, rule: &CompiledRule, values: Substitutions<'_>) {
        for topic in &rule.topics {
            let Some(levels) = topic.instantiate(values) else {
                continue;
            };
            for (applies, rules) in [
                (rule.publish, &mut self.publish),
                (rule.subscribe, &mut self.subscribe),
            ] {
                if !applies {
                    continue;
                }
                match rule.effect {
                    Effect::Allow => rules.allow.insert(levels.iter().copied(), rule.grant),
                    Effect::Deny => rules.deny.insert(levels.iter().copied(), ()),
                }
            }
        }
    }

    /// Whether the set holds no rule at all.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of (topic, action) entries held.
    pub(super) fn len(&self) -> usize {
        [&self.publish, &self.subscribe]
            .iter()
            .map(|rules| rules.allow.len() + rules.deny.len())
            .sum()
    }
}

/// What the Allow rules of one action say about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AllowVerdict {
    /// No Allow rule is about this topic or filter: the default action decides.
    NoneApplies,
    /// Allow rules are about it, but none grants it (QoS, retain, or not covering).
    NotGranted,
    /// Granted; for subscriptions, up to this QoS.
    Granted(QoS),
}

impl ActionRules {
    /// The Allow verdict for publishing to `topic` at `qos` with the `retain` flag.
    pub(super) fn publish_verdict(&self, topic: &str, qos: QoS, retain: bool) -> AllowVerdict {
        let mut matched = false;
        let granted = self.allow.for_each_covering(topic, |grant| {
            matched = true;
            if grant.permits_publish(qos, retain) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        match (granted.is_break(), matched) {
            (true, _) => AllowVerdict::Granted(qos),
            (false, true) => AllowVerdict::NotGranted,
            (false, false) => AllowVerdict::NoneApplies,
        }
    }

    /// The Allow verdict for subscribing to `filter`: granted up to the highest `maxQos` among
    /// covering rules; not granted when rules only overlap it.
    pub(super) fn subscribe_verdict(&self, filter: &str) -> AllowVerdict {
        let mut best = None;
        let _ = self.allow.for_each_covering(filter, |grant| {
            best = best.max(Some(grant.max_qos));
            if grant.max_qos == QoS::ExactlyOnce {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        match best {
            Some(max_qos) => AllowVerdict::Granted(max_qos),
            None if self.allow.any_overlapping(filter) => AllowVerdict::NotGranted,
            None => AllowVerdict::NoneApplies,
        }
    }
}

impl AllowVerdict {
    /// The verdict of two rule sets together: a grant in either grants (at the higher QoS),
    /// otherwise a rule that applied without granting refuses.
    pub(super) fn combine(self, other: AllowVerdict) -> AllowVerdict {
        use AllowVerdict::*;
        match (self, other) {
            (Granted(a), Granted(b)) => Granted(a.max(b)),
            (Granted(qos), _) | (_, Granted(qos)) => Granted(qos),
            (NotGranted, _) | (_, NotGranted) => NotGranted,
            (NoneApplies, NoneApplies) => NoneApplies,
        }
    }
}
