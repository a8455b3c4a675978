//! A trie of rule topic filters that answers, for a filter F asked about (a topic name is a
//! filter without wildcards), the two questions ACL decisions need:
//!
//! - **covering**: which stored filters R cover F — every topic matching F also matches R;
//! - **overlapping**: does some stored filter R overlap F — some topic matches both.
//!
//! For a topic name the two coincide with ordinary matching. Both follow MQTT §4.7: `+` is one
//! level, `#` is any number of trailing levels including none (`a/#` matches `a`), and a topic
//! whose first level starts with `$` is not matched by a wildcard in the first level
//! (MQTT-4.7.2-1), exactly as [`filter_matches`](crate::protocol::topic::filter_matches) does.
//!
//! Stored levels are [`Level`]s, not text: a level that came from a `%u`/`%c` placeholder is
//! always an exact level even if the name it holds is `+`, `#` or contains `/`, so a client
//! named `+` cannot turn `devices/%u/#` into a wildcard rule. Such a level matches no topic
//! level (topic names hold no wildcards and levels hold no `/`); when asked about a subscription
//! with `+` there, it counts as overlapping (so a Deny still refuses) but never as covering.
//!
//! Lookups walk the trie recursively, but only into nodes that exist: the depth is bounded by
//! the deepest stored filter (at most [`MAX_RULE_FILTER_LEVELS`](super::MAX_RULE_FILTER_LEVELS)
//! levels), never by what a client sends. They do not allocate.
//!
//! Exact levels are looked up with foldhash rather than the standard library's SipHash: every
//! PUBLISH asks the trie about its topic, and hashing the level dominated that lookup. The
//! keys are rule levels: the operator's filters, plus a client's own username and client id
//! in the tries of its own placeholder rules (a handful of keys per client). Clients only ask
//! about their topics; they cannot fill a map with colliding keys, and each map is seeded
//! randomly anyway.

use std::collections::HashMap;
use std::ops::ControlFlow;

use crate::protocol::topic::{levels, Levels};

/// The hasher of a node's exact levels.
type LevelHasher = foldhash::fast::RandomState;

/// One level of a stored filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level<'a> {
    /// Matches exactly this level text.
    Exact(&'a str),
    /// `+`: any single level.
    SingleWildcard,
    /// `#`: any number of levels, including none. Only ever the last level.
    MultiWildcard,
}

/// Stored filters, each with a value (`T`: what the rule grants, or nothing for a Deny).
///
/// Invariant: every node has at least one value in its subtree, because nodes are only created
/// on the way to inserting a value. The overlap test relies on it.
#[derive(Debug, Clone)]
pub(super) struct FilterTrie<T> {
    root: Node<T>,
    len: usize,
}

#[derive(Debug, Clone)]
struct Node<T> {
    /// Children reached by an exact level.
    exact: HashMap<Box<str>, Node<T>, LevelHasher>,
    /// The lengths of the `exact` levels, as bit `min(length, 63)`: a level of a length no
    /// child has is refused without hashing it. Most lookups miss near the root (a topic
    /// under `sensors/` asked about rules under `devices/` and `restricted/`), and this
    /// settles most of those misses with one bit test.
    exact_lengths: u64,
    /// Child reached by `+`.
    single: Option<Box<Node<T>>>,
    /// Values of filters that end in `#` right below this node (`prefix/#`).
    multi: Vec<T>,
    /// Values of filters that end at this node.
    terminal: Vec<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Node<T> {
        Node {
            exact: HashMap::default(),
            exact_lengths: 0,
            single: None,
            multi: Vec::new(),
            terminal: Vec::new(),
        }
    }
}

impl<T> Default for FilterTrie<T> {
    fn default() -> FilterTrie<T> {
        FilterTrie {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<T> FilterTrie<T> {
    /// Whether no filter is stored.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of stored filters.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Stores a filter given as its levels. A `#` must be the last level; levels after it are
    /// ignored (validation never lets such a filter through).
    pub(super) fn insert<'a>(&mut self, levels: impl IntoIterator<Item = Level<'a>>, value: T) {
        let mut node = &mut self.root;
        for level in levels {
            node = match level {
                Level::Exact(text) => {
                    node.exact_lengths |= length_bit(text);
                    node.exact.entry(text.into()).or_default()
                }
                Level::SingleWildcard => node.single.get_or_insert_with(Box::default),
                Level::MultiWildcard => {
                    node.multi.push(value);
                    self.len += 1;
                    return;
                }
            };
        }
        node.terminal.push(value);
        self.len += 1;
    }

    /// Calls `visit` with the value of every stored filter that covers `filter`, until `visit`
    /// breaks; returns whether it did. `filter` must be a valid topic name or plain topic
    /// filter (no `$share/` prefix).
    pub(super) fn for_each_covering(
        &self,
        filter: &str,
        mut visit: impl FnMut(&T) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        if self.is_empty() {
            return ControlFlow::Continue(());
        }
        covering(&self.root, levels(filter), true, &mut visit)
    }

    /// Whether any stored filter covers `filter` (for a topic name: matches it).
    pub(super) fn any_covering(&self, filter: &str) -> bool {
        self.for_each_covering(filter, |_| ControlFlow::Break(()))
            .is_break()
    }

    /// Whether any stored filter overlaps `filter`: some topic matches both.
    pub(super) fn any_overlapping(&self, filter: &str) -> bool {
        !self.is_empty() && overlapping(&self.root, levels(filter), true)
    }
}

impl<T> Node<T> {
    /// The child reached by the exact level `level`, if there is one.
    fn exact_child(&self, level: &str) -> Option<&Node<T>> {
        if self.exact_lengths & length_bit(level) == 0 {
            return None;
        }
        self.exact.get(level)
    }
}

/// The bit of [`Node::exact_lengths`] that stands for `level`'s length.
fn length_bit(level: &str) -> u64 {
    1 << level.len().min(63)
}

/// Whether a stored wildcard may stand for `level` of the filter asked about: not when it is
/// the first level and starts with `$` (MQTT-4.7.2-1).
fn wildcards_reach(level: Option<&str>, at_root: bool) -> bool {
    !(at_root && level.is_some_and(|level| level.starts_with('$')))
}

fn covering<T>(
    node: &Node<T>,
    mut rest: Levels<'_>,
    at_root: bool,
    visit: &mut impl FnMut(&T) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let level = rest.next();
    let wildcards = wildcards_reach(level, at_root);
    // A stored `prefix/#` covers whatever remains, including nothing (`a/#` matches `a`).
    if wildcards {
        node.multi.iter().try_for_each(&mut *visit)?;
    }
    match level {
        None => node.terminal.iter().try_for_each(&mut *visit)?,
        // A stored `#` covers a `#`, handled above. At the root a stored `+/#` does too: a
        // topic has at least one level, so both match every topic not starting with `$`.
        Some("#") => {
            if let (true, Some(single)) = (at_root, &node.single) {
                single.multi.iter().try_for_each(&mut *visit)?;
            }
        }
        // Only a stored `+` (or `#`) covers a `+`.
        Some("+") => {
            if let Some(single) = &node.single {
                covering(single, rest, false, visit)?;
            }
        }
        Some(exact) => {
            if let Some(child) = node.exact_child(exact) {
                covering(child, rest.clone(), false, visit)?;
            }
            if let (true, Some(single)) = (wildcards, &node.single) {
                covering(single, rest, false, visit)?;
            }
        }
    }
    ControlFlow::Continue(())
}

fn overlapping<T>(node: &Node<T>, mut rest: Levels<'_>, at_root: bool) -> bool {
    let level = rest.next();
    let wildcards = wildcards_reach(level, at_root);
    // A stored `prefix/#` overlaps whatever remains: some topic extends both.
    if wildcards && !node.multi.is_empty() {
        return true;
    }
    // Stored exact levels a wildcard of the asked filter may stand for (not `$...` first levels:
    // the asked wildcard does not match those topics).
    let mut reachable_exact = node
        .exact
        .iter()
        .filter(|(text, _)| !(at_root && text.starts_with('$')));
    match level {
        None => !node.terminal.is_empty(),
        // The asked `#` matches this level's topic (stored filters ending here) and every
        // stored extension below it; every node holds some filter, so any child will do.
        Some("#") => {
            !node.terminal.is_empty() || node.single.is_some() || reachable_exact.next().is_some()
        }
        Some("+") => {
            node.single
                .as_deref()
                .is_some_and(|single| overlapping(single, rest.clone(), false))
                || reachable_exact.any(|(_, child)| overlapping(child, rest.clone(), false))
        }
        Some(exact) => {
            node.exact_child(exact)
                .is_some_and(|child| overlapping(child, rest.clone(), false))
                || (wildcards
                    && node
                        .single
                        .as_deref()
                        .is_some_and(|single| overlapping(single, rest, false)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::topic::filter_matches;
    use proptest::prelude::*;

    /// The level written as `text` in a filter: `+` and `#` are wildcards.
    fn parse_level(text: &str) -> Level<'_> {
        match text {
            "+" => Level::SingleWildcard,
            "#" => Level::MultiWildcard,
            exact => Level::Exact(exact),
        }
    }

    fn trie(filters: &[&str]) -> FilterTrie<()> {
        let mut trie = FilterTrie::default();
        for filter in filters {
            trie.insert(filter.split('/').map(parse_level), ());
        }
        trie
    }

    fn covers(stored: &str, asked: &str) -> bool {
        trie(&[stored]).any_covering(asked)
    }

    fn overlaps(stored: &str, asked: &str) -> bool {
        trie(&[stored]).any_overlapping(asked)
    }

    #[test]
    fn an_empty_trie_covers_and_overlaps_nothing() {
        assert!(!trie(&[]).any_covering("a"));
        assert!(!trie(&[]).any_overlapping("#"));
    }

    #[test]
    fn exact_filters_cover_only_themselves() {
        assert!(covers("a/b", "a/b"));
        assert!(!covers("a/b", "a/b/c"));
        assert!(!covers("a/b", "a"));
        assert!(!covers("a/b", "a/+"));
        assert!(!covers("a/b", "a/#"));
        assert!(covers("a//b", "a//b"));
        assert!(!covers("a/b", "a//b"));
    }

    #[test]
    fn a_multi_level_wildcard_covers_its_parent_and_everything_below() {
        assert!(covers("a/#", "a"));
        assert!(covers("a/#", "a/b/c"));
        assert!(covers("a/#", "a/+"));
        assert!(covers("a/#", "a/#"));
        assert!(covers("a/#", "a/+/#"));
        assert!(!covers("a/#", "b"));
        assert!(!covers("a/#", "+"));
        assert!(!covers("a/#", "#"));
        assert!(covers("+/#", "#"));
        assert!(!covers("a/+/#", "a/#"));
    }

    #[test]
    fn a_filter_ending_at_a_level_does_not_cover_its_multi_level_extension() {
        assert!(!covers("a", "a/#"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("a/+/#", "a/#"));
    }

    #[test]
    fn a_single_level_wildcard_covers_one_level_of_anything_but_hash() {
        assert!(covers("a/+", "a/b"));
        assert!(covers("a/+", "a/+"));
        assert!(covers("a/+", "a/"));
        assert!(!covers("a/+", "a"));
        assert!(!covers("a/+", "a/b/c"));
        assert!(covers("+/+", "a/+"));
        assert!(covers("+/b", "+/b"));
    }

    #[test]
    fn hash_covers_every_filter_except_dollar_ones() {
        for asked in ["a", "a/b", "+", "+/#", "#", "/", "/a"] {
            assert!(covers("#", asked), "{asked}");
        }
        assert!(!covers("#", "$SYS/x"));
        assert!(!covers("#", "$SYS/#"));
        assert!(!covers("+/#", "$SYS"));
        assert!(!covers("+", "$SYS"));
    }

    #[test]
    fn dollar_filters_are_covered_by_dollar_rules() {
        assert!(covers("$SYS/#", "$SYS/broker/load"));
        assert!(covers("$SYS/#", "$SYS/#"));
        assert!(covers("$SYS/#", "$SYS"));
        assert!(covers("$SYS/+", "$SYS/+"));
        assert!(!covers("$SYS/+", "$SYS/#"));
    }

    #[test]
    fn a_wildcard_below_the_first_level_matches_dollar_levels() {
        assert!(covers("a/+", "a/$x"));
        assert!(overlaps("a/#", "a/$x"));
    }

    #[test]
    fn overlap_between_exact_filters_is_equality() {
        assert!(overlaps("a/b", "a/b"));
        assert!(!overlaps("a/b", "a/c"));
        assert!(!overlaps("a/b", "a"));
    }

    #[test]
    fn a_hash_overlaps_its_parent_and_everything_below() {
        assert!(overlaps("a/#", "a"));
        assert!(overlaps("a", "a/#"));
        assert!(overlaps("a/b/c", "a/#"));
        assert!(overlaps("a/#", "a/+/c"));
        assert!(overlaps("#", "a/+"));
        assert!(overlaps("a/+", "#"));
        assert!(!overlaps("a/#", "b/#"));
    }

    #[test]
    fn a_plus_overlaps_one_level_only() {
        assert!(overlaps("a/+", "a/b"));
        assert!(overlaps("a/b", "a/+"));
        assert!(overlaps("+/b", "a/+"));
        assert!(!overlaps("a", "a/+"));
        assert!(!overlaps("a/+", "a"));
        assert!(!overlaps("a/+", "a/b/c"));
        assert!(!overlaps("+/+/+", "a/+"));
    }

    #[test]
    fn leading_wildcards_do_not_overlap_dollar_filters() {
        assert!(!overlaps("#", "$SYS/x"));
        assert!(!overlaps("$SYS/#", "#"));
        assert!(!overlaps("+/x", "$SYS/+"));
        assert!(!overlaps("$SYS/x", "+/x"));
        assert!(overlaps("$SYS/#", "$SYS/+"));
        assert!(overlaps("$SYS/+", "$SYS/#"));
    }

    #[test]
    fn a_hash_overlaps_any_stored_filter_below_it() {
        assert!(overlaps("a/b/c/d", "a/#"));
        assert!(overlaps("+/b", "#"));
        assert!(overlaps("a", "#"));
    }

    #[test]
    fn exact_levels_from_placeholders_stay_exact() {
        let mut stored = FilterTrie::default();
        stored.insert(
            [
                Level::Exact("devices"),
                Level::Exact("+"),
                Level::MultiWildcard,
            ],
            (),
        );
        assert!(!stored.any_covering("devices/other/x"));
        assert!(!stored.any_covering("devices/+/x"));
        assert!(stored.any_overlapping("devices/+/x"));
        assert!(!stored.any_overlapping("devices/other/x"));
    }

    #[test]
    fn covering_visits_every_covering_value_until_told_to_stop() {
        let mut stored = FilterTrie::default();
        for (filter, value) in [("a/#", 1), ("a/+", 2), ("+/b", 3), ("a/b", 4), ("a/c", 5)] {
            stored.insert(filter.split('/').map(parse_level), value);
        }
        let mut seen = Vec::new();
        let flow = stored.for_each_covering("a/b", |value| {
            seen.push(*value);
            ControlFlow::Continue(())
        });
        seen.sort_unstable();
        assert_eq!((flow.is_break(), seen), (false, vec![1, 2, 3, 4]));
        let mut count = 0;
        let flow = stored.for_each_covering("a/b", |_| {
            count += 1;
            ControlFlow::Break(())
        });
        assert_eq!((flow.is_break(), count), (true, 1));
    }

    #[test]
    fn levels_of_any_length_are_found_and_only_they() {
        let long = "x".repeat(70);
        let stored = trie(&["a/bc", &format!("{long}/#"), "d/+/e"]);
        let asks = |topic: &str| stored.any_covering(topic);
        assert!(asks("a/bc") && !asks("a/b") && !asks("a/bcd") && !asks("a/xy"));
        assert!(asks(&format!("{long}/tail")) && asks(&long));
        // 64 and 71 bytes share the length bit of 70 (everything from 63 up): the map decides.
        assert!(!asks(&"x".repeat(64)) && !asks(&"x".repeat(71)));
        assert!(asks("d/anything/e") && !asks("dd/anything/e"));
        assert!(stored.any_overlapping(&format!("{long}/+")) && !stored.any_overlapping("ab/+"));
    }

    #[test]
    fn len_counts_stored_filters() {
        assert_eq!(trie(&["a", "a", "b/#"]).len(), 3);
    }

    fn level() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("a"),
            Just("b"),
            Just(""),
            Just("$s"),
            Just("+"),
            Just("#")
        ]
    }

    /// A valid filter: `#` only as the last level.
    fn filter() -> impl Strategy<Value = String> {
        prop::collection::vec(level(), 1..5).prop_map(|levels| {
            let last = levels.len() - 1;
            let levels: Vec<&str> = levels
                .iter()
                .enumerate()
                .map(|(i, l)| if *l == "#" && i != last { "+" } else { *l })
                .collect();
            levels.join("/")
        })
    }

    fn topic() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![Just("a"), Just("b"), Just(""), Just("$s")],
            1..6,
        )
        .prop_map(|levels| levels.join("/"))
    }

    /// Every topic of up to 5 levels over the strategies' alphabet plus a level no filter
    /// names. Filters have at most 4 levels, so whenever a filter is not covered, or two filters
    /// overlap, some topic in this list shows it.
    fn witness_topics() -> &'static [String] {
        static TOPICS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        TOPICS.get_or_init(|| {
            let alphabet = ["a", "b", "", "$s", "c"];
            let mut topics: Vec<String> = alphabet.iter().map(|l| l.to_string()).collect();
            let mut longest = topics.clone();
            for _ in 1..5 {
                longest = longest
                    .iter()
                    .flat_map(|t| alphabet.iter().map(move |l| format!("{t}/{l}")))
                    .collect();
                topics.extend(longest.iter().cloned());
            }
            topics
        })
    }

    proptest! {
        #[test]
        fn matching_a_topic_agrees_with_the_protocol_definition(
            stored in filter(),
            topic in topic(),
        ) {
            prop_assert_eq!(covers(&stored, &topic), filter_matches(&stored, &topic));
            prop_assert_eq!(overlaps(&stored, &topic), filter_matches(&stored, &topic));
        }

        /// Covering and overlapping, checked against their definitions by brute force.
        #[test]
        fn covers_and_overlaps_agree_with_their_definitions(
            stored in filter(),
            asked in filter(),
        ) {
            let topics = witness_topics();
            let asked_topics = topics.iter().filter(|t| filter_matches(&asked, t));
            let covered = asked_topics.clone().all(|t| filter_matches(&stored, t));
            let overlapped = asked_topics.clone().any(|t| filter_matches(&stored, t));
            prop_assert_eq!(covers(&stored, &asked), covered);
            prop_assert_eq!(overlaps(&stored, &asked), overlapped);
        }
    }
}
