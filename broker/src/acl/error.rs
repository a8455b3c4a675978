//! Why ACL policies were refused: the file that could not be read or parsed, or the policy and
//! rule that does not make sense, with the offending value.

use std::path::PathBuf;

use crate::protocol::topic::TopicError;

/// Why a set of ACL policies could not be loaded or compiled. An error refuses the whole set,
/// so the rules in force before a reload stay in force.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// A policy file could not be read.
    #[error("cannot read ACL policy file {path}: {source}")]
    Read {
        /// The file, as resolved against the configuration directory.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// A policy file is not valid YAML or does not have the policy shape (unknown field,
    /// wrong type).
    #[error("ACL policy file {path}: {message}")]
    Parse {
        /// The file that failed.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A policy has an empty name (names label logs and metrics, so they must say something).
    #[error("ACL policy number {index} (counting from 0 across all files) has an empty name")]
    EmptyPolicyName {
        /// Position of the policy in the concatenated list.
        index: usize,
    },
    /// Two policies share a name.
    #[error("duplicate ACL policy name `{name}`: names must be unique across all policy files")]
    DuplicatePolicyName {
        /// The repeated name.
        name: String,
    },
    /// One rule of a policy is invalid.
    #[error("ACL policy `{policy}` rules[{rule}]: {problem}")]
    InvalidRule {
        /// The policy's name.
        policy: String,
        /// Index of the rule in the policy's `rules` list, from 0.
        rule: usize,
        /// What is wrong with it.
        problem: RuleProblem,
    },
}

/// What is wrong with one ACL rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    /// `actions` is empty, so the rule could never apply.
    #[error("`actions` is empty; list `publish`, `subscribe` or both")]
    NoActions,
    /// `topics` is empty, so the rule could never apply.
    #[error("`topics` is empty; list at least one topic filter")]
    NoTopics,
    /// A topic is not a valid MQTT topic filter.
    #[error("topic `{topic}`: {reason}")]
    InvalidTopic {
        /// The topic as written.
        topic: String,
        /// Why it is not a valid filter.
        reason: TopicError,
    },
    /// A topic starts with `$share/` or `$exclusive/`: those prefixes select how a subscription
    /// is delivered and are removed before a subscription is checked, so a rule naming them
    /// could never match.
    #[error(
        "topic `{topic}`: ACL topics are plain filters; `$share/{{group}}/` and `$exclusive/` \
         prefixes are removed from subscriptions before they are checked"
    )]
    PrefixedTopic {
        /// The topic as written.
        topic: String,
    },
    /// `%u` or `%c` shares a topic level with other text (`dev-%u`).
    #[error("topic `{topic}`: `%u` and `%c` must fill a whole topic level (`devices/%u/#`)")]
    PartialPlaceholder {
        /// The topic as written.
        topic: String,
    },
    /// A topic has more levels than ACL filters may have.
    #[error("topic `{topic}` has {levels} levels; ACL topic filters may have at most {max}")]
    TooManyLevels {
        /// The topic as written.
        topic: String,
        /// How many levels it has.
        levels: usize,
        /// The limit.
        max: usize,
    },
    /// A principal sets none or several of `username`, `clientId`, `group`.
    #[error(
        "principals[{index}] must set exactly one of `username`, `clientId`, `group`, but {found}"
    )]
    PrincipalFieldCount {
        /// Index of the principal in the rule's `principals` list.
        index: usize,
        /// What it sets instead ("sets none", "sets `username` and `group`").
        found: String,
    },
    /// A principal field is the empty string.
    #[error("principals[{index}].{field} is empty")]
    EmptyPrincipal {
        /// Index of the principal in the rule's `principals` list.
        index: usize,
        /// The field that is empty.
        field: &'static str,
    },
    /// `maxQos` is not 0, 1 or 2.
    #[error("maxQos {0} is not a QoS level (0, 1 or 2)")]
    MaxQosOutOfRange(u8),
    /// `maxQos` or `retain` on a `Deny` rule, where they would mean nothing.
    #[error("`{0}` only applies to Allow rules; a Deny rule refuses whatever it matches")]
    AllowOnlyField(&'static str),
}
