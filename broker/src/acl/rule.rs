//! A validated rule in the form decisions use: which actions, what an Allow grants, and its
//! topics as templates whose `%u`/`%c` levels are filled in per client.

use super::filter_trie::Level;
use super::policy::{AclRule, Action, Effect};
use super::validate::{CLIENT_ID_PLACEHOLDER, USERNAME_PLACEHOLDER};
use crate::protocol::QoS;

/// What an Allow rule permits beyond the topic: the highest QoS and whether retained publishes
/// are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Grant {
    /// Highest QoS a publish may use, and the highest a subscription is granted.
    pub(super) max_qos: QoS,
    /// Whether publishes with the retain flag are allowed.
    pub(super) retain: bool,
}

impl Grant {
    /// Whether a publish at `qos` with the `retain` flag stays within this grant.
    pub(super) fn permits_publish(self, qos: QoS, retain: bool) -> bool {
        qos <= self.max_qos && (self.retain || !retain)
    }
}

/// One rule, compiled.
#[derive(Debug, Clone)]
pub(super) struct CompiledRule {
    pub(super) effect: Effect,
    pub(super) publish: bool,
    pub(super) subscribe: bool,
    pub(super) grant: Grant,
    pub(super) topics: Vec<TopicTemplate>,
}

impl CompiledRule {
    /// Compiles a rule that passed validation.
    pub(super) fn new(rule: &AclRule) -> CompiledRule {
        CompiledRule {
            effect: rule.effect,
            publish: rule.actions.contains(&Action::Publish),
            subscribe: rule.actions.contains(&Action::Subscribe),
            grant: Grant {
                max_qos: rule
                    .max_qos
                    .and_then(QoS::from_u8)
                    .unwrap_or(QoS::ExactlyOnce),
                retain: rule.retain.unwrap_or(true),
            },
            topics: rule
                .topics
                .iter()
                .map(|t| TopicTemplate::parse(t))
                .collect(),
        }
    }

    /// Splits the rule into one with the topics that need no placeholder and one with the
    /// topics that do (either may be absent). A rule is the union of its topics, so the two
    /// halves decide exactly what the whole did; the plain half can be shared by all clients.
    pub(super) fn split_by_placeholders(self) -> (Option<CompiledRule>, Option<CompiledRule>) {
        let (templated, plain): (Vec<_>, Vec<_>) = self
            .topics
            .iter()
            .cloned()
            .partition(TopicTemplate::has_placeholders);
        let with_topics = |topics: Vec<TopicTemplate>| {
            (!topics.is_empty()).then(|| CompiledRule {
                topics,
                ..self.clone()
            })
        };
        (with_topics(plain), with_topics(templated))
    }
}

/// The values placeholders stand for when a rule is instantiated; `None` where there is none
/// (an anonymous client has no username; rules shared by all clients have neither).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Substitutions<'a> {
    pub(super) username: Option<&'a str>,
    pub(super) client_id: Option<&'a str>,
}

/// A rule topic, level by level, with placeholders kept apart from literal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TopicTemplate {
    levels: Vec<TemplateLevel>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplateLevel {
    Exact(Box<str>),
    SingleWildcard,
    MultiWildcard,
    Username,
    ClientId,
}

impl TopicTemplate {
    /// Reads a validated rule topic.
    pub(super) fn parse(topic: &str) -> TopicTemplate {
        let levels = topic
            .split('/')
            .map(|level| match level {
                "+" => TemplateLevel::SingleWildcard,
                "#" => TemplateLevel::MultiWildcard,
                USERNAME_PLACEHOLDER => TemplateLevel::Username,
                CLIENT_ID_PLACEHOLDER => TemplateLevel::ClientId,
                exact => TemplateLevel::Exact(exact.into()),
            })
            .collect();
        TopicTemplate { levels }
    }

    /// Whether the topic mentions `%u` or `%c`.
    pub(super) fn has_placeholders(&self) -> bool {
        self.levels
            .iter()
            .any(|level| matches!(level, TemplateLevel::Username | TemplateLevel::ClientId))
    }

    /// The filter's levels with placeholders filled in from `values`, or `None` when a
    /// placeholder has no value: then the topic does not apply (a `%u` topic never applies to
    /// an anonymous client). A filled-in level is always exact, whatever text it holds.
    pub(super) fn instantiate<'a>(&'a self, values: Substitutions<'a>) -> Option<Vec<Level<'a>>> {
        self.levels
            .iter()
            .map(|level| match level {
                TemplateLevel::Exact(text) => Some(Level::Exact(text)),
                TemplateLevel::SingleWildcard => Some(Level::SingleWildcard),
                TemplateLevel::MultiWildcard => Some(Level::MultiWildcard),
                TemplateLevel::Username => values.username.map(Level::Exact),
                TemplateLevel::ClientId => values.client_id.map(Level::Exact),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(username: Option<&'a str>, client_id: &'a str) -> Substitutions<'a> {
        Substitutions {
            username,
            client_id: Some(client_id),
        }
    }

    #[test]
    fn placeholders_are_filled_as_exact_levels() {
        let template = TopicTemplate::parse("devices/%u/%c/+/#");
        assert_eq!(
            template.instantiate(values(Some("#"), "c/1")),
            Some(vec![
                Level::Exact("devices"),
                Level::Exact("#"),
                Level::Exact("c/1"),
                Level::SingleWildcard,
                Level::MultiWildcard,
            ])
        );
    }

    #[test]
    fn a_username_placeholder_without_username_does_not_apply() {
        let template = TopicTemplate::parse("devices/%u/#");
        assert_eq!(template.instantiate(values(None, "c")), None);
    }

    #[test]
    fn a_plain_topic_needs_no_values() {
        let template = TopicTemplate::parse("a/+");
        assert!(!template.has_placeholders());
        assert_eq!(
            template.instantiate(Substitutions::default()),
            Some(vec![Level::Exact("a"), Level::SingleWildcard])
        );
    }

    #[test]
    fn a_grant_limits_qos_and_retain() {
        let grant = Grant {
            max_qos: QoS::AtLeastOnce,
            retain: false,
        };
        assert!(grant.permits_publish(QoS::AtLeastOnce, false));
        assert!(!grant.permits_publish(QoS::ExactlyOnce, false));
        assert!(!grant.permits_publish(QoS::AtMostOnce, true));
    }

    #[test]
    fn splitting_separates_plain_from_templated_topics() {
        let rule = CompiledRule::new(&AclRule {
            effect: Effect::Deny,
            principals: Vec::new(),
            actions: vec![Action::Subscribe],
            topics: vec!["a".into(), "u/%u".into(), "b".into()],
            max_qos: None,
            retain: None,
        });
        let (plain, templated) = rule.split_by_placeholders();
        let topic_count = |rule: Option<CompiledRule>| rule.map(|r| r.topics.len());
        assert_eq!(
            (topic_count(plain), topic_count(templated)),
            (Some(2), Some(1))
        );
    }
}
