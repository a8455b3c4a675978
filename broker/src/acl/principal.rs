//! Which rules apply to whom: an index from principals to rules, so that finding a client's
//! rules costs a few hash lookups plus one pass over the (usually few) glob principals, not a
//! glob match against every rule.

use std::collections::HashMap;

use super::client::ClientIdentity;
use super::policy::Principal;

/// Index of a rule in the snapshot's rule list.
pub(super) type RuleId = usize;

/// Rules by the principals they name. A rule with several principals is listed under each.
#[derive(Debug, Default)]
pub(super) struct PrincipalIndex {
    /// Rules without principals (they apply to everyone).
    everyone: Vec<RuleId>,
    /// Rules naming an exact username.
    by_username: HashMap<String, Vec<RuleId>>,
    /// Rules naming an exact client identifier.
    by_client_id: HashMap<String, Vec<RuleId>>,
    /// Rules naming a group (group names are exact, never globs).
    by_group: HashMap<String, Vec<RuleId>>,
    /// Rules naming a username pattern with `*`.
    username_globs: Vec<(Glob, RuleId)>,
    /// Rules naming a client identifier pattern with `*`.
    client_id_globs: Vec<(Glob, RuleId)>,
}

impl PrincipalIndex {
    /// Records that rule `rule` applies to `principals` (empty: everyone). Principals are
    /// validated: each sets exactly one field.
    pub(super) fn insert(&mut self, rule: RuleId, principals: &[Principal]) {
        if principals.is_empty() {
            self.everyone.push(rule);
        }
        for principal in principals {
            if let Some(username) = &principal.username {
                insert_name(
                    &mut self.by_username,
                    &mut self.username_globs,
                    username,
                    rule,
                );
            } else if let Some(client_id) = &principal.client_id {
                insert_name(
                    &mut self.by_client_id,
                    &mut self.client_id_globs,
                    client_id,
                    rule,
                );
            } else if let Some(group) = &principal.group {
                self.by_group.entry(group.clone()).or_default().push(rule);
            }
        }
    }

    /// The rules that apply to `identity`, each once, in rule order. A username principal
    /// never matches an anonymous client.
    pub(super) fn rules_for(&self, identity: &ClientIdentity) -> Vec<RuleId> {
        let mut rules = self.everyone.clone();
        if let Some(username) = &identity.username {
            extend_matching(
                &mut rules,
                &self.by_username,
                &self.username_globs,
                username,
            );
        }
        extend_matching(
            &mut rules,
            &self.by_client_id,
            &self.client_id_globs,
            &identity.client_id,
        );
        for group in &identity.groups {
            if let Some(group_rules) = self.by_group.get(group) {
                rules.extend_from_slice(group_rules);
            }
        }
        rules.sort_unstable();
        rules.dedup();
        rules
    }
}

fn insert_name(
    exact: &mut HashMap<String, Vec<RuleId>>,
    globs: &mut Vec<(Glob, RuleId)>,
    pattern: &str,
    rule: RuleId,
) {
    match Glob::new(pattern) {
        Some(glob) => globs.push((glob, rule)),
        None => exact.entry(pattern.to_owned()).or_default().push(rule),
    }
}

fn extend_matching(
    rules: &mut Vec<RuleId>,
    exact: &HashMap<String, Vec<RuleId>>,
    globs: &[(Glob, RuleId)],
    name: &str,
) {
    if let Some(exact_rules) = exact.get(name) {
        rules.extend_from_slice(exact_rules);
    }
    rules.extend(
        globs
            .iter()
            .filter(|(glob, _)| glob.matches(name))
            .map(|(_, rule)| *rule),
    );
}

/// A name pattern in which `*` matches any run of characters (including none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Glob {
    /// Text before the first `*`.
    prefix: String,
    /// Texts between consecutive `*`s, in order.
    middle: Vec<String>,
    /// Text after the last `*`.
    suffix: String,
}

impl Glob {
    /// The glob for `pattern`, or `None` when it has no `*` (an exact name).
    pub(super) fn new(pattern: &str) -> Option<Glob> {
        let mut parts = pattern.split('*');
        let prefix = parts.next()?.to_owned();
        let mut middle: Vec<String> = parts.map(str::to_owned).collect();
        let suffix = middle.pop()?;
        Some(Glob {
            prefix,
            middle,
            suffix,
        })
    }

    /// Whether `name` matches. Taking each middle part at its leftmost occurrence is enough:
    /// an earlier match leaves the most room for the parts after it.
    pub(super) fn matches(&self, name: &str) -> bool {
        if name.len() < self.prefix.len() + self.suffix.len() {
            return false;
        }
        let Some(rest) = name.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        let Some(mut between) = rest.strip_suffix(self.suffix.as_str()) else {
            return false;
        };
        for part in &self.middle {
            match between.find(part.as_str()) {
                Some(at) => between = &between[at + part.len()..],
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str) -> Glob {
        Glob::new(pattern).unwrap()
    }

    #[test]
    fn a_pattern_without_star_is_not_a_glob() {
        assert_eq!(Glob::new("sensor-1"), None);
    }

    #[test]
    fn a_trailing_star_matches_any_suffix_including_none() {
        assert!(glob("sensor-*").matches("sensor-12"));
        assert!(glob("sensor-*").matches("sensor-"));
        assert!(!glob("sensor-*").matches("sensor"));
        assert!(!glob("sensor-*").matches("xsensor-1"));
    }

    #[test]
    fn a_lone_star_matches_everything() {
        assert!(glob("*").matches(""));
        assert!(glob("*").matches("anyone"));
    }

    #[test]
    fn stars_in_the_middle_and_front_match_runs() {
        assert!(glob("*-gw").matches("site1-gw"));
        assert!(!glob("*-gw").matches("site1-gw2"));
        assert!(glob("a*b*c").matches("abc"));
        assert!(glob("a*b*c").matches("axxbyybzc"));
        assert!(!glob("a*b*c").matches("axxc"));
        assert!(glob("a**c").matches("ac"));
    }

    #[test]
    fn prefix_and_suffix_may_not_overlap() {
        assert!(!glob("ab*ba").matches("aba"));
        assert!(glob("ab*ba").matches("abba"));
    }

    #[test]
    fn a_middle_part_must_lie_between_prefix_and_suffix() {
        assert!(glob("a*x*b").matches("axb"));
        assert!(!glob("a*x*b").matches("ab"));
        assert!(!glob("a*a*a").matches("aa"));
        assert!(glob("a*a*a").matches("aaa"));
    }

    #[test]
    fn globs_compare_whole_characters() {
        assert!(glob("é*").matches("éa"));
        assert!(glob("*ü").matches("aü"));
    }

    fn identity(username: Option<&str>, client_id: &str, groups: &[&str]) -> ClientIdentity {
        ClientIdentity {
            username: username.map(str::to_owned),
            client_id: client_id.to_owned(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn username(name: &str) -> Principal {
        Principal {
            username: Some(name.into()),
            ..Principal::default()
        }
    }

    fn client_id(id: &str) -> Principal {
        Principal {
            client_id: Some(id.into()),
            ..Principal::default()
        }
    }

    fn group(name: &str) -> Principal {
        Principal {
            group: Some(name.into()),
            ..Principal::default()
        }
    }

    fn index() -> PrincipalIndex {
        let mut index = PrincipalIndex::default();
        index.insert(0, &[]);
        index.insert(1, &[username("alice")]);
        index.insert(2, &[username("sensor-*")]);
        index.insert(3, &[client_id("gw-1")]);
        index.insert(4, &[client_id("*")]);
        index.insert(5, &[group("ops")]);
        index.insert(6, &[username("alice"), group("ops"), client_id("a*")]);
        index
    }

    #[test]
    fn everyone_rules_apply_to_anonymous_clients() {
        assert_eq!(index().rules_for(&identity(None, "x", &[])), [0, 4]);
    }

    #[test]
    fn username_principals_never_match_anonymous_clients() {
        let mut index = PrincipalIndex::default();
        index.insert(0, &[username("*")]);
        assert!(index.rules_for(&identity(None, "c", &[])).is_empty());
        assert_eq!(index.rules_for(&identity(Some(""), "c", &[])), [0]);
    }

    #[test]
    fn exact_and_glob_usernames_match() {
        assert_eq!(
            index().rules_for(&identity(Some("sensor-7"), "x", &[])),
            [0, 2, 4]
        );
    }

    #[test]
    fn client_ids_and_groups_match() {
        assert_eq!(
            index().rules_for(&identity(Some("bob"), "gw-1", &["ops", "dev"])),
            [0, 3, 4, 5, 6]
        );
    }

    #[test]
    fn a_rule_matched_by_several_principals_is_listed_once() {
        assert_eq!(
            index().rules_for(&identity(Some("alice"), "abc", &["ops"])),
            [0, 1, 4, 5, 6]
        );
    }
}
