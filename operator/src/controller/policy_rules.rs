//! Checking an `AclPolicy`'s rules before they reach any broker.
//!
//! The broker refuses a whole policies file if one rule is invalid, so a single bad policy must
//! be caught here and left out, or it would block every other policy of its cluster. This is
//! the one place that decides validity; it uses the broker's own topic-filter parser and can
//! move to the broker's ACL compiler once that is available to the operator.

use tern_broker::acl::{AclRule, Principal};
use tern_broker::protocol::topic::parse_filter;

/// What is wrong with a rule, for the policy's `Accepted` condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    /// A topic filter is not a valid MQTT topic filter.
    #[error("rules[{rule}].topics[{topic}] `{filter}`: {reason}")]
    InvalidFilter {
        /// Index of the rule.
        rule: usize,
        /// Index of the filter within the rule.
        topic: usize,
        /// The filter as written.
        filter: String,
        /// Why it is invalid.
        reason: String,
    },
    /// `%u` or `%c` shares a topic level with other characters.
    #[error("rules[{rule}].topics[{topic}] `{filter}`: %u and %c must fill a whole topic level")]
    PartialPlaceholder {
        /// Index of the rule.
        rule: usize,
        /// Index of the filter within the rule.
        topic: usize,
        /// The filter as written.
        filter: String,
    },
    /// A principal names none or several of `username`, `clientId`, `group`.
    #[error("rules[{rule}].principals[{principal}]: set exactly one of username, clientId, group")]
    AmbiguousPrincipal {
        /// Index of the rule.
        rule: usize,
        /// Index of the principal within the rule.
        principal: usize,
    },
    /// `maxQos` above 2.
    #[error("rules[{rule}].maxQos {max_qos}: must be 0, 1 or 2")]
    InvalidMaxQos {
        /// Index of the rule.
        rule: usize,
        /// The value given.
        max_qos: u8,
    },
}

/// Checks every rule; the first problem found is returned.
pub fn validate_rules(rules: &[AclRule]) -> Result<(), RuleProblem> {
    for (rule_index, rule) in rules.iter().enumerate() {
        for (topic_index, filter) in rule.topics.iter().enumerate() {
            validate_filter(rule_index, topic_index, filter)?;
        }
        for (principal_index, principal) in rule.principals.iter().enumerate() {
            if fields_set(principal) != 1 {
                return Err(RuleProblem::AmbiguousPrincipal {
                    rule: rule_index,
                    principal: principal_index,
                });
            }
        }
        if let Some(max_qos) = rule.max_qos.filter(|&qos| qos > 2) {
            return Err(RuleProblem::InvalidMaxQos {
                rule: rule_index,
                max_qos,
            });
        }
    }
    Ok(())
}

fn validate_filter(rule: usize, topic: usize, filter: &str) -> Result<(), RuleProblem> {
    let partial_placeholder = filter
        .split('/')
        .any(|level| (level.contains("%u") || level.contains("%c")) && level.len() != 2);
    if partial_placeholder {
        return Err(RuleProblem::PartialPlaceholder {
            rule,
            topic,
            filter: filter.to_string(),
        });
    }
    parse_filter(filter)
        .map(|_| ())
        .map_err(|error| RuleProblem::InvalidFilter {
            rule,
            topic,
            filter: filter.to_string(),
            reason: error.to_string(),
        })
}

fn fields_set(principal: &Principal) -> usize {
    [
        principal.username.is_some(),
        principal.client_id.is_some(),
        principal.group.is_some(),
    ]
    .into_iter()
    .filter(|&set| set)
    .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_broker::acl::{Action, Effect};

    fn rule(topics: &[&str]) -> AclRule {
        AclRule {
            effect: Effect::Allow,
            principals: vec![],
            actions: vec![Action::Subscribe],
            topics: topics.iter().map(|t| t.to_string()).collect(),
            max_qos: None,
            retain: None,
        }
    }

    #[test]
    fn wildcards_and_whole_level_placeholders_are_valid() {
        assert_eq!(
            validate_rules(&[rule(&["sensors/%u/#", "cmd/%c/+"])]),
            Ok(())
        );
    }

    #[test]
    fn a_misplaced_multi_level_wildcard_is_reported_with_its_position() {
        let problem = validate_rules(&[rule(&["ok"]), rule(&["a", "a/#/b"])]);
        assert!(matches!(
            problem,
            Err(RuleProblem::InvalidFilter {
                rule: 1,
                topic: 1,
                ..
            })
        ));
    }

    #[test]
    fn a_placeholder_inside_a_level_is_refused() {
        let problem = validate_rules(&[rule(&["devices/user-%u"])]);
        assert!(matches!(
            problem,
            Err(RuleProblem::PartialPlaceholder { .. })
        ));
    }

    #[test]
    fn a_principal_with_two_fields_is_refused() {
        let mut with_principal = rule(&["a"]);
        with_principal.principals.push(Principal {
            username: Some("u".into()),
            group: Some("g".into()),
            client_id: None,
        });
        assert!(matches!(
            validate_rules(&[with_principal]),
            Err(RuleProblem::AmbiguousPrincipal { .. })
        ));
    }
}
