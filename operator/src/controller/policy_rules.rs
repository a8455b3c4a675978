//! Checking an `AclPolicy`'s rules before they reach any broker.
//!
//! The broker refuses a whole policies file if one rule is invalid, so a single bad policy must
//! be caught here and left out, or it would block every other policy of its cluster. The
//! verdict is the broker's own: the rules are compiled with the broker's ACL compiler, so the
//! operator can never accept a rule the broker would refuse, nor refuse one it would accept.

use tern_broker::acl::{AclError, AclPolicy, AclRule, AclSnapshot};
use tern_broker::config::DefaultAction;

pub use tern_broker::acl::RuleProblem as BrokerRuleProblem;

/// What is wrong with a policy's rules, for its `Accepted` condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    /// One rule is invalid.
    #[error("rules[{rule}]: {problem}")]
    InvalidRule {
        /// Index of the rule.
        rule: usize,
        /// The broker's description of the problem.
        problem: BrokerRuleProblem,
    },
    /// The rules were refused as a whole (not expected for a single policy's rules).
    #[error("{0}")]
    Refused(String),
}

/// Checks every rule with the broker's ACL compiler; the first problem found is returned.
pub fn validate_rules(rules: &[AclRule]) -> Result<(), RuleProblem> {
    let policy = AclPolicy {
        name: "policy".into(),
        rules: rules.to_vec(),
    };
    match AclSnapshot::compile(vec![policy], DefaultAction::Deny) {
        Ok(_) => Ok(()),
        Err(AclError::InvalidRule { rule, problem, .. }) => {
            Err(RuleProblem::InvalidRule { rule, problem })
        }
        Err(other) => Err(RuleProblem::Refused(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_broker::acl::{Action, Effect, Principal};

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
    fn a_misplaced_multi_level_wildcard_is_reported_with_its_rule() {
        let problem = validate_rules(&[rule(&["ok"]), rule(&["a", "a/#/b"])]);
        assert!(matches!(
            problem,
            Err(RuleProblem::InvalidRule {
                rule: 1,
                problem: BrokerRuleProblem::InvalidTopic { .. }
            })
        ));
    }

    #[test]
    fn a_placeholder_inside_a_level_is_refused() {
        let problem = validate_rules(&[rule(&["devices/user-%u"])]);
        assert!(matches!(
            problem,
            Err(RuleProblem::InvalidRule {
                problem: BrokerRuleProblem::PartialPlaceholder { .. },
                ..
            })
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
            Err(RuleProblem::InvalidRule {
                problem: BrokerRuleProblem::PrincipalFieldCount { .. },
                ..
            })
        ));
    }

    /// A rule only the broker's compiler refuses: the operator must not accept it, or the
    /// broker would refuse the cluster's whole policies file.
    #[test]
    fn max_qos_on_a_deny_rule_is_refused_as_the_broker_would() {
        let mut deny = rule(&["a"]);
        deny.effect = Effect::Deny;
        deny.max_qos = Some(1);
        assert!(matches!(
            validate_rules(&[deny]),
            Err(RuleProblem::InvalidRule {
                problem: BrokerRuleProblem::AllowOnlyField(_),
                ..
            })
        ));
    }
}
