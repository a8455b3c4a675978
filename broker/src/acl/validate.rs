//! Checks on policies that the YAML schema cannot express: unique names, one field per
//! principal, well-formed topic filters and placeholders, constraints only where they mean
//! something. Everything is checked before anything is compiled, so a bad policy refuses the
//! whole set with a message naming the policy, the rule and the value.

use std::collections::HashSet;

use super::error::{AclError, RuleProblem};
use super::policy::{AclPolicy, AclRule, Effect, Principal};
use crate::protocol::topic::{validate_topic_filter, EXCLUSIVE_PREFIX, SHARED_PREFIX};

/// Deepest topic filter a rule may use. Decisions walk rule filters recursively, one stack
/// frame per level, so this bound keeps that recursion shallow; it is far beyond any filter a
/// real deployment writes (the broker's own default `maxTopicLevels` is 128).
pub const MAX_RULE_FILTER_LEVELS: usize = 1024;

/// The placeholder replaced by the client's username.
pub(super) const USERNAME_PLACEHOLDER: &str = "%u";
/// The placeholder replaced by the client's client identifier.
pub(super) const CLIENT_ID_PLACEHOLDER: &str = "%c";

/// Checks every policy; the first problem found is returned.
pub(super) fn validate_policies(policies: &[AclPolicy]) -> Result<(), AclError> {
    let mut names = HashSet::new();
    for (index, policy) in policies.iter().enumerate() {
        if policy.name.is_empty() {
            return Err(AclError::EmptyPolicyName { index });
        }
        if !names.insert(policy.name.as_str()) {
            return Err(AclError::DuplicatePolicyName {
                name: policy.name.clone(),
            });
        }
        for (rule_index, rule) in policy.rules.iter().enumerate() {
            validate_rule(rule).map_err(|problem| AclError::InvalidRule {
                policy: policy.name.clone(),
                rule: rule_index,
                problem,
            })?;
        }
    }
    Ok(())
}

/// Checks one rule on its own: what [`validate_policies`] checks of each rule.
pub fn validate_rule(rule: &AclRule) -> Result<(), RuleProblem> {
    if rule.actions.is_empty() {
        return Err(RuleProblem::NoActions);
    }
    if rule.topics.is_empty() {
        return Err(RuleProblem::NoTopics);
    }
    for (index, principal) in rule.principals.iter().enumerate() {
        validate_principal(index, principal)?;
    }
    for topic in &rule.topics {
        validate_rule_topic(topic)?;
    }
    if let Some(max_qos) = rule.max_qos {
        if max_qos > 2 {
            return Err(RuleProblem::MaxQosOutOfRange(max_qos));
        }
    }
    if rule.effect == Effect::Deny {
        if rule.max_qos.is_some() {
            return Err(RuleProblem::AllowOnlyField("maxQos"));
        }
        if rule.retain.is_some() {
            return Err(RuleProblem::AllowOnlyField("retain"));
        }
    }
    Ok(())
}

fn validate_principal(index: usize, principal: &Principal) -> Result<(), RuleProblem> {
    let fields = [
        ("username", &principal.username),
        ("clientId", &principal.client_id),
        ("group", &principal.group),
    ];
    let set: Vec<&str> = fields
        .iter()
        .filter(|(_, value)| value.is_some())
        .map(|(name, _)| *name)
        .collect();
    if set.len() != 1 {
        let found = if set.is_empty() {
            "sets none".to_owned()
        } else {
            format!("sets `{}`", set.join("` and `"))
        };
        return Err(RuleProblem::PrincipalFieldCount { index, found });
    }
    for (field, value) in fields {
        if value.as_deref() == Some("") {
            return Err(RuleProblem::EmptyPrincipal { index, field });
        }
    }
    Ok(())
}

fn validate_rule_topic(topic: &str) -> Result<(), RuleProblem> {
    validate_topic_filter(topic).map_err(|reason| RuleProblem::InvalidTopic {
        topic: topic.to_owned(),
        reason,
    })?;
    if topic.starts_with(SHARED_PREFIX) || topic.starts_with(EXCLUSIVE_PREFIX) {
        return Err(RuleProblem::PrefixedTopic {
            topic: topic.to_owned(),
        });
    }
    let partial_placeholder = topic.split('/').any(|level| {
        (level.contains(USERNAME_PLACEHOLDER) || level.contains(CLIENT_ID_PLACEHOLDER))
            && level != USERNAME_PLACEHOLDER
            && level != CLIENT_ID_PLACEHOLDER
    });
    if partial_placeholder {
        return Err(RuleProblem::PartialPlaceholder {
            topic: topic.to_owned(),
        });
    }
    let levels = topic.split('/').count();
    if levels > MAX_RULE_FILTER_LEVELS {
        return Err(RuleProblem::TooManyLevels {
            topic: topic.to_owned(),
            levels,
            max: MAX_RULE_FILTER_LEVELS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::policy::Action;
    use crate::protocol::topic::TopicError;

    fn allow(topics: &[&str]) -> AclRule {
        AclRule {
            effect: Effect::Allow,
            principals: Vec::new(),
            actions: vec![Action::Publish],
            topics: topics.iter().map(|t| t.to_string()).collect(),
            max_qos: None,
            retain: None,
        }
    }

    fn policy(name: &str, rules: Vec<AclRule>) -> AclPolicy {
        AclPolicy {
            name: name.into(),
            rules,
        }
    }

    /// The problem reported for a single rule in policy `p`, as rule index 0.
    fn problem_of(rule: AclRule) -> RuleProblem {
        match validate_policies(&[policy("p", vec![rule])]) {
            Err(AclError::InvalidRule {
                policy,
                rule: 0,
                problem,
            }) if policy == "p" => problem,
            other => panic!("expected a rule problem, got {other:?}"),
        }
    }

    fn message_of(rule: AclRule) -> String {
        AclError::InvalidRule {
            policy: "p".into(),
            rule: 0,
            problem: problem_of(rule),
        }
        .to_string()
    }

    #[test]
    fn a_well_formed_rule_passes() {
        let mut rule = allow(&["sensors/%u/#", "cmd/%c/+", "$SYS/#", "#", "a//b"]);
        rule.principals = vec![Principal {
            username: Some("sensor-*".into()),
            ..Principal::default()
        }];
        rule.max_qos = Some(2);
        rule.retain = Some(false);
        assert!(validate_policies(&[policy("p", vec![rule])]).is_ok());
    }

    #[test]
    fn empty_actions_are_rejected() {
        let mut rule = allow(&["a"]);
        rule.actions.clear();
        assert_eq!(
            message_of(rule),
            "ACL policy `p` rules[0]: `actions` is empty; list `publish`, `subscribe` or both"
        );
    }

    #[test]
    fn empty_topics_are_rejected() {
        assert_eq!(
            message_of(allow(&[])),
            "ACL policy `p` rules[0]: `topics` is empty; list at least one topic filter"
        );
    }

    #[test]
    fn an_invalid_filter_is_rejected_with_the_topic_and_reason() {
        assert_eq!(
            message_of(allow(&["ok/#", "a/#/b"])),
            "ACL policy `p` rules[0]: topic `a/#/b`: multi-level wildcard '#' must be alone in \
             the last level of the filter"
        );
        assert_eq!(
            problem_of(allow(&[""])),
            RuleProblem::InvalidTopic {
                topic: String::new(),
                reason: TopicError::EmptyFilter
            }
        );
    }

    #[test]
    fn shared_and_exclusive_prefixes_are_rejected() {
        assert_eq!(
            problem_of(allow(&["$share/g/a"])),
            RuleProblem::PrefixedTopic {
                topic: "$share/g/a".into()
            }
        );
        assert!(message_of(allow(&["$exclusive/a"])).contains(
            "topic `$exclusive/a`: ACL topics are plain filters; `$share/{group}/` and \
             `$exclusive/` prefixes are removed"
        ));
    }

    #[test]
    fn a_placeholder_sharing_a_level_is_rejected() {
        for topic in ["dev-%u/#", "a/%c%u", "a/x%c"] {
            assert_eq!(
                message_of(allow(&[topic])),
                format!(
                    "ACL policy `p` rules[0]: topic `{topic}`: `%u` and `%c` must fill a whole \
                     topic level (`devices/%u/#`)"
                ),
            );
        }
    }

    #[test]
    fn a_percent_sign_without_placeholder_is_plain_text() {
        assert!(
            validate_policies(&[policy("p", vec![allow(&["load/100%/x", "%", "%x"])])]).is_ok()
        );
    }

    #[test]
    fn overly_deep_filters_are_rejected() {
        let deep = vec!["a"; MAX_RULE_FILTER_LEVELS + 1].join("/");
        assert_eq!(
            problem_of(allow(&[&deep])),
            RuleProblem::TooManyLevels {
                topic: deep.clone(),
                levels: MAX_RULE_FILTER_LEVELS + 1,
                max: MAX_RULE_FILTER_LEVELS
            }
        );
    }

    #[test]
    fn a_principal_without_fields_is_rejected() {
        let mut rule = allow(&["a"]);
        rule.principals = vec![Principal::default()];
        assert_eq!(
            message_of(rule),
            "ACL policy `p` rules[0]: principals[0] must set exactly one of `username`, \
             `clientId`, `group`, but sets none"
        );
    }

    #[test]
    fn a_principal_with_two_fields_is_rejected() {
        let mut rule = allow(&["a"]);
        rule.principals = vec![
            Principal {
                group: Some("ops".into()),
                ..Principal::default()
            },
            Principal {
                username: Some("u".into()),
                group: Some("ops".into()),
                client_id: None,
            },
        ];
        assert_eq!(
            message_of(rule),
            "ACL policy `p` rules[0]: principals[1] must set exactly one of `username`, \
             `clientId`, `group`, but sets `username` and `group`"
        );
    }

    #[test]
    fn an_empty_principal_value_is_rejected() {
        let mut rule = allow(&["a"]);
        rule.principals = vec![Principal {
            client_id: Some(String::new()),
            ..Principal::default()
        }];
        assert_eq!(
            message_of(rule),
            "ACL policy `p` rules[0]: principals[0].clientId is empty"
        );
    }

    #[test]
    fn max_qos_above_two_is_rejected() {
        let mut rule = allow(&["a"]);
        rule.max_qos = Some(3);
        assert_eq!(
            message_of(rule),
            "ACL policy `p` rules[0]: maxQos 3 is not a QoS level (0, 1 or 2)"
        );
    }

    #[test]
    fn max_qos_on_a_deny_rule_is_rejected() {
        let mut rule = allow(&["a"]);
        rule.effect = Effect::Deny;
        rule.max_qos = Some(1);
        assert_eq!(
            message_of(rule),
            "ACL policy `p` rules[0]: `maxQos` only applies to Allow rules; a Deny rule refuses \
             whatever it matches"
        );
    }

    #[test]
    fn retain_on_a_deny_rule_is_rejected() {
        let mut rule = allow(&["a"]);
        rule.effect = Effect::Deny;
        rule.retain = Some(false);
        assert_eq!(problem_of(rule), RuleProblem::AllowOnlyField("retain"));
    }

    #[test]
    fn the_rule_index_counts_from_zero_within_its_policy() {
        let error = validate_policies(&[policy("p", vec![allow(&["a"]), allow(&[])])])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("ACL policy `p` rules[1]: "), "{error}");
    }

    #[test]
    fn duplicate_policy_names_are_rejected() {
        let error = validate_policies(&[
            policy("sensors", vec![allow(&["a"])]),
            policy("other", vec![]),
            policy("sensors", vec![]),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "duplicate ACL policy name `sensors`: names must be unique across all policy files"
        );
    }

    #[test]
    fn an_empty_policy_name_is_rejected() {
        let error = validate_policies(&[policy("a", vec![]), policy("", vec![])])
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "ACL policy number 1 (counting from 0 across all files) has an empty name"
        );
    }
}
