//! Converting a Mosquitto `acl_file` into Tern ACL rules, for migrating a broker.
//!
//! Mosquitto's format (`mosquitto.conf(5)`, `acl_file`): one statement per line, `#` at the
//! start of a line for comments.
//!
//! - `topic [read|write|readwrite|deny] <topic>` grants (or, with `deny`, refuses) a topic to
//!   the clients of the current section; without an access word it is `readwrite`.
//! - `user <username>` starts the section of that user. Lines before the first `user` line
//!   apply to anonymous clients only.
//! - `pattern [read|write|readwrite|deny] <topic>` applies to every client, wherever it
//!   appears; `%u` and `%c` in its topic stand for the client's username and client id.
//!
//! `read` becomes the `subscribe` action, `write` becomes `publish`. The conversion is exact
//! except for two things Tern rules cannot say, which are reported rather than guessed:
//! anonymous-only rules (Tern has no principal for "anonymous"; the caller decides whether they
//! become rules for everyone) and literal text that Tern would read as a pattern (`%u`/`%c` in a
//! `topic` line, `*` in a username), which are errors naming the line.

use super::policy::{AclRule, Action, Effect, Principal};
use super::validate::validate_rule;

/// The rules converted from one `acl_file`, and what the caller should know about them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConvertedAcl {
    /// Rules for named users and patterns, merged where principal, effect and actions agree,
    /// in the order their first line appeared.
    pub rules: Vec<AclRule>,
    /// The anonymous section's rules (lines before the first `user` line), without principals:
    /// as Tern rules they would apply to every client, not only anonymous ones.
    pub anonymous_rules: Vec<AclRule>,
}

/// A line of the `acl_file` that has no Tern equivalent or is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ConvertError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong with the line.
    pub problem: String,
}

/// Converts the text of a Mosquitto `acl_file`.
pub fn convert_acl_file(text: &str) -> Result<ConvertedAcl, ConvertError> {
    let mut converted = ConvertedAcl::default();
    let mut user: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let fail = |problem: String| ConvertError { line, problem };
        let statement = raw.trim();
        if statement.is_empty() || statement.starts_with('#') {
            continue;
        }
        let (keyword, rest) = statement
            .split_once(char::is_whitespace)
            .map(|(keyword, rest)| (keyword, rest.trim()))
            .unwrap_or((statement, ""));
        match keyword {
            "user" => {
                if rest.is_empty() {
                    return Err(fail("`user` needs a username".into()));
                }
                if rest.contains('*') {
                    return Err(fail(format!(
                        "username `{rest}` contains `*`, which Tern principals read as a \
                         wildcard; no Tern rule names it exactly"
                    )));
                }
                user = Some(rest.to_owned());
            }
            "topic" | "pattern" => {
                let (access, topic) = split_access(rest);
                if topic.is_empty() {
                    return Err(fail(format!("`{keyword}` needs a topic")));
                }
                let is_pattern = keyword == "pattern";
                if !is_pattern && (topic.contains("%u") || topic.contains("%c")) {
                    return Err(fail(format!(
                        "topic `{topic}`: in a `topic` line Mosquitto reads `%u`/`%c` as \
                         text, Tern would read them as placeholders; use a `pattern` line if \
                         placeholders were meant"
                    )));
                }
                let principals = match (&user, is_pattern) {
                    (Some(user), false) => vec![Principal {
                        username: Some(user.clone()),
                        ..Principal::default()
                    }],
                    _ => Vec::new(),
                };
                let (effect, actions) = access.rule_terms();
                let rule = AclRule {
                    effect,
                    principals,
                    actions,
                    topics: vec![topic.to_owned()],
                    max_qos: None,
                    retain: None,
                };
                validate_rule(&rule).map_err(|problem| fail(problem.to_string()))?;
                let anonymous = user.is_none() && !is_pattern;
                let target = if anonymous {
                    &mut converted.anonymous_rules
                } else {
                    &mut converted.rules
                };
                merge(target, rule);
            }
            other => {
                return Err(fail(format!(
                    "unknown statement `{other}`; an acl_file has `user`, `topic` and \
                     `pattern` lines"
                )))
            }
        }
    }
    Ok(converted)
}

/// The access word of a `topic`/`pattern` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Access {
    /// The effect and actions of a Tern rule granting (or refusing) this access.
    fn rule_terms(self) -> (Effect, Vec<Action>) {
        match self {
            Access::Read => (Effect::Allow, vec![Action::Subscribe]),
            Access::Write => (Effect::Allow, vec![Action::Publish]),
            Access::ReadWrite => (Effect::Allow, vec![Action::Publish, Action::Subscribe]),
            Access::Deny => (Effect::Deny, vec![Action::Publish, Action::Subscribe]),
        }
    }
}

/// Splits `[access] <topic>`: the access word is optional (default `readwrite`), and a line
/// holding a single word is a topic even if that word is `read`.
fn split_access(rest: &str) -> (Access, &str) {
    if let Some((word, topic)) = rest.split_once(char::is_whitespace) {
        let access = match word {
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            "readwrite" => Some(Access::ReadWrite),
            "deny" => Some(Access::Deny),
            _ => None,
        };
        if let Some(access) = access {
            return (access, topic.trim());
        }
    }
    (Access::ReadWrite, rest)
}

/// Adds `rule`'s topic to an earlier rule with the same principals, effect and actions, or
/// appends `rule`. Rule order means nothing in Tern (a matching `Deny` always wins), so merging
/// only makes the output shorter.
fn merge(rules: &mut Vec<AclRule>, rule: AclRule) {
    let same_terms = |known: &AclRule| {
        known.effect == rule.effect
            && known.principals == rule.principals
            && known.actions == rule.actions
    };
    match rules.iter_mut().find(|known| same_terms(known)) {
        Some(known) => {
            for topic in rule.topics {
                if !known.topics.contains(&topic) {
                    known.topics.push(topic);
                }
            }
        }
        None => rules.push(rule),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Vec<Principal> {
        vec![Principal {
            username: Some(name.into()),
            ..Principal::default()
        }]
    }

    fn rule(
        effect: Effect,
        principals: Vec<Principal>,
        actions: &[Action],
        topics: &[&str],
    ) -> AclRule {
        AclRule {
            effect,
            principals,
            actions: actions.to_vec(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            max_qos: None,
            retain: None,
        }
    }

    const PUB: Action = Action::Publish;
    const SUB: Action = Action::Subscribe;

    #[test]
    fn sections_access_words_and_patterns_become_rules() {
        let text = "\
# anonymous clients
topic read $SYS/#

user alice
topic readwrite home/alice/#
topic home/shared/#
topic write cmd/#
topic deny home/alice/secret/#
user bob
topic read sensors/#
pattern write devices/%u/telemetry/#
pattern read devices/%c/config
";
        let converted = convert_acl_file(text).unwrap();
        assert_eq!(
            converted.anonymous_rules,
            vec![rule(Effect::Allow, vec![], &[SUB], &["$SYS/#"])]
        );
        assert_eq!(
            converted.rules,
            vec![
                rule(
                    Effect::Allow,
                    user("alice"),
                    &[PUB, SUB],
                    &["home/alice/#", "home/shared/#"]
                ),
                rule(Effect::Allow, user("alice"), &[PUB], &["cmd/#"]),
                rule(
                    Effect::Deny,
                    user("alice"),
                    &[PUB, SUB],
                    &["home/alice/secret/#"]
                ),
                rule(Effect::Allow, user("bob"), &[SUB], &["sensors/#"]),
                rule(Effect::Allow, vec![], &[PUB], &["devices/%u/telemetry/#"]),
                rule(Effect::Allow, vec![], &[SUB], &["devices/%c/config"]),
            ]
        );
    }

    #[test]
    fn a_topic_may_contain_spaces_after_an_access_word_and_a_lone_word_is_a_topic() {
        let converted = convert_acl_file("user u\ntopic read a b/c\ntopic read\n").unwrap();
        assert_eq!(
            converted.rules,
            vec![
                rule(Effect::Allow, user("u"), &[SUB], &["a b/c"]),
                rule(Effect::Allow, user("u"), &[PUB, SUB], &["read"]),
            ]
        );
    }

    #[test]
    fn what_tern_would_read_differently_is_refused_with_its_line() {
        let placeholder = convert_acl_file("user u\n\ntopic a/%u\n").unwrap_err();
        assert_eq!(placeholder.line, 3);
        assert!(placeholder.problem.contains("pattern"), "{placeholder}");

        let star = convert_acl_file("user dev-*\n").unwrap_err();
        assert_eq!(star.line, 1);

        let partial = convert_acl_file("pattern read a/x%u\n").unwrap_err();
        assert!(partial.problem.contains("whole topic level"), "{partial}");

        let bad_filter = convert_acl_file("topic read a/#/b\n").unwrap_err();
        assert_eq!(bad_filter.line, 1);

        let unknown = convert_acl_file("topic read a\nclient x\n").unwrap_err();
        assert_eq!(
            (unknown.line, unknown.problem.contains("`client`")),
            (2, true)
        );

        assert_eq!(convert_acl_file("user\n").unwrap_err().line, 1);
        assert_eq!(convert_acl_file("topic\n").unwrap_err().line, 1);
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let converted = convert_acl_file("# c\n\n   \n  # indented\n").unwrap();
        assert_eq!(converted, ConvertedAcl::default());
    }
}
