//! Topic names, topic filters and how they match (MQTT §4.7).
//!
//! The decoder only checks what makes a packet unreadable; whether a filter is acceptable is
//! decided here so the router and the session layer apply one set of rules and can answer
//! "Topic Filter invalid" per filter instead of closing the connection.

/// Longest topic name or filter the wire format can carry (a UTF-8 string has a 16-bit length).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Prefix of a shared subscription filter: `$share/{group}/{filter}` (MQTT 5.0 §4.8.2).
pub const SHARED_PREFIX: &str = "$share/";

/// Prefix of an exclusive subscription filter: `$exclusive/{filter}` (a broker extension: only
/// one client at a time may hold the subscription).
pub const EXCLUSIVE_PREFIX: &str = "$exclusive/";

/// The levels of a topic name or filter: the same items as `topic.split('/')`, found with
/// `memchr`. Every PUBLISH is split several times (level limit, routing, ACL), and the
/// standard library's general char searcher cost more than the rest of those lookups.
pub fn levels(topic: &str) -> Levels<'_> {
    Levels { rest: Some(topic) }
}

/// Iterator returned by [`levels`].
#[derive(Debug, Clone)]
pub struct Levels<'a> {
    /// What is left to split; `None` once the last level was returned.
    rest: Option<&'a str>,
}

impl<'a> Iterator for Levels<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (level, rest) = split_level(self.rest?);
        self.rest = rest;
        Some(level)
    }
}

/// Splits the first level off a topic: `("a", Some("b/c"))` for `"a/b/c"`, `("c", None)` for
/// `"c"`, `("", Some(""))` for `"/"`. No allocation.
///
/// A plain byte loop: topic levels are a few bytes long, where `memchr`'s vectorised search
/// spends more setting up than it saves (`scripts/bench-acl.sh`: ~20 instructions less per
/// split, ~100 less per routed message), and `str::split`'s char searcher costs more still.
pub fn split_level(topic: &str) -> (&str, Option<&str>) {
    match topic.bytes().position(|byte| byte == b'/') {
        // `/` is ASCII, so both sides of it are char boundaries.
        Some(slash) => (&topic[..slash], Some(&topic[slash + 1..])),
        None => (topic, None),
    }
}

/// Number of levels in a topic name or filter (one more than its `/` separators).
pub fn level_count(topic: &str) -> usize {
    memchr::memchr_iter(b'/', topic.as_bytes()).count() + 1
}

/// Why a topic name or topic filter was rejected.
///
/// The messages are written to follow a subject such as "PUBLISH " or "SUBSCRIBE filter ", so
/// callers can prefix them with context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// A topic name must contain at least one character (MQTT-4.7.3-1).
    #[error("topic name is empty")]
    EmptyName,
    /// A topic filter must contain at least one character (MQTT-4.7.3-1).
    #[error("topic filter is empty")]
    EmptyFilter,
    /// Longer than a UTF-8 string on the wire can be (MQTT-4.7.3-3).
    #[error("topic is {0} bytes long, the maximum is 65535")]
    TooLong(usize),
    /// Topic names must not contain `+` or `#` (MQTT-3.3.2-2).
    #[error("topic name contains wildcard '{0}'")]
    WildcardInName(char),
    /// Topic names and filters must not contain U+0000 (MQTT-4.7.3-2).
    #[error("topic contains the null character U+0000")]
    NullCharacter,
    /// `#` must be alone in the last level of a filter (MQTT-4.7.1-1).
    #[error("multi-level wildcard '#' must be alone in the last level of the filter")]
    MisplacedMultiLevelWildcard,
    /// `+` must occupy a whole level of a filter (MQTT-4.7.1-2).
    #[error("single-level wildcard '+' must occupy a whole level of the filter")]
    MisplacedSingleLevelWildcard,
    /// `$share/` must be followed by a non-empty share name (MQTT-4.8.2-1).
    #[error("shared subscription has an empty share name")]
    EmptyShareName,
    /// The share name must not contain `/`, `+` or `#` (MQTT-4.8.2-2).
    #[error("shared subscription share name contains '{0}'")]
    InvalidShareName(char),
    /// `$share/{group}` must be followed by `/` and a topic filter (MQTT-4.8.2-1).
    #[error("shared subscription has no topic filter after the share name")]
    MissingSharedFilter,
}

/// What a SUBSCRIBE filter asks for once its `$share/` or `$exclusive/` prefix is understood.
///
/// The router stores the three kinds differently, so it needs the prefix peeled off and the
/// remaining filter already validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKind<'a> {
    /// An ordinary subscription on this filter.
    Normal(&'a str),
    /// A shared subscription: each matching message goes to one member of `group`.
    Shared {
        /// The share name.
        group: &'a str,
        /// The topic filter after the share name.
        filter: &'a str,
    },
    /// An exclusive subscription: only one client at a time may hold this filter.
    Exclusive(&'a str),
}

impl<'a> FilterKind<'a> {
    /// The topic filter used for matching, without any prefix.
    pub fn filter(&self) -> &'a str {
        match *self {
            FilterKind::Normal(filter)
            | FilterKind::Shared { filter, .. }
            | FilterKind::Exclusive(filter) => filter,
        }
    }
}

/// Checks that `topic` may be used as the topic name of a PUBLISH (or a will).
///
/// Rejects empty names, wildcards, U+0000 and names longer than 65,535 bytes.
pub fn validate_topic_name(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::EmptyName);
    }
    check_length(topic)?;
    for byte in topic.bytes() {
        match byte {
            b'+' => return Err(TopicError::WildcardInName('+')),
            b'#' => return Err(TopicError::WildcardInName('#')),
            0 => return Err(TopicError::NullCharacter),
            _ => {}
        }
    }
    Ok(())
}

/// Checks that `filter` is a syntactically valid topic filter (without `$share/` handling:
/// use [`parse_filter`] for filters coming from SUBSCRIBE).
///
/// `#` may only appear alone as the last level, `+` only alone in a level.
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::EmptyFilter);
    }
    check_length(filter)?;
    if filter.as_bytes().contains(&0) {
        return Err(TopicError::NullCharacter);
    }
    let mut levels = levels(filter).peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        check_filter_level(level, is_last)?;
    }
    Ok(())
}

/// Splits a SUBSCRIBE filter into its kind and validates every part.
///
/// `$share/{group}/{filter}` needs a non-empty group without `/`, `+` or `#` and a valid filter;
/// `$exclusive/{filter}` needs a valid filter; anything else must be a valid filter itself.
pub fn parse_filter(filter: &str) -> Result<FilterKind<'_>, TopicError> {
    check_length(filter)?;
    if let Some(rest) = filter.strip_prefix(SHARED_PREFIX) {
        return parse_shared(rest);
    }
    if let Some(rest) = filter.strip_prefix(EXCLUSIVE_PREFIX) {
        validate_topic_filter(rest)?;
        return Ok(FilterKind::Exclusive(rest));
    }
    validate_topic_filter(filter)?;
    Ok(FilterKind::Normal(filter))
}

/// Whether the topic name `topic` matches the topic filter `filter` (§4.7).
///
/// This is the reference definition the router's trie must agree with. `filter` must be a plain
/// filter (strip `$share/`/`$exclusive/` with [`parse_filter`] first); a `#` that is not the last
/// level never matches. Topics starting with `$` are not matched by filters starting with a
/// wildcard (MQTT-4.7.2-1).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut filter_levels = levels(filter);
    let mut topic_levels = levels(topic);
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            // `#` also matches the parent level: "sport/#" matches "sport".
            (Some("#"), _) => return filter_levels.next().is_none(),
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn check_length(topic: &str) -> Result<(), TopicError> {
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong(topic.len()));
    }
    Ok(())
}

fn check_filter_level(level: &str, is_last: bool) -> Result<(), TopicError> {
    if level.contains('#') && (level != "#" || !is_last) {
        return Err(TopicError::MisplacedMultiLevelWildcard);
    }
    if level.contains('+') && level != "+" {
        return Err(TopicError::MisplacedSingleLevelWildcard);
    }
    Ok(())
}

fn parse_shared(rest: &str) -> Result<FilterKind<'_>, TopicError> {
    let Some((group, filter)) = rest.split_once('/') else {
        return Err(if rest.is_empty() {
            TopicError::EmptyShareName
        } else {
            TopicError::MissingSharedFilter
        });
    };
    if group.is_empty() {
        return Err(TopicError::EmptyShareName);
    }
    if let Some(bad) = group.chars().find(|c| matches!(c, '+' | '#')) {
        return Err(TopicError::InvalidShareName(bad));
    }
    if filter.is_empty() {
        return Err(TopicError::MissingSharedFilter);
    }
    validate_topic_filter(filter)?;
    Ok(FilterKind::Shared { group, filter })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_accepts_plain_levels_including_empty_ones() {
        for topic in [
            "a",
            "sport/tennis/player1",
            "/finance",
            "a//b",
            "/",
            "$SYS/x",
            "é/ü",
        ] {
            assert_eq!(validate_topic_name(topic), Ok(()), "{topic}");
        }
    }

    #[test]
    fn topic_name_rejects_empty_wildcards_null_and_overlong() {
        assert_eq!(validate_topic_name(""), Err(TopicError::EmptyName));
        assert_eq!(
            validate_topic_name("a/+/b"),
            Err(TopicError::WildcardInName('+'))
        );
        assert_eq!(
            validate_topic_name("a/#"),
            Err(TopicError::WildcardInName('#'))
        );
        assert_eq!(
            validate_topic_name("a+b"),
            Err(TopicError::WildcardInName('+'))
        );
        assert_eq!(validate_topic_name("a\0b"), Err(TopicError::NullCharacter));
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(
            validate_topic_name(&long),
            Err(TopicError::TooLong(MAX_TOPIC_LEN + 1))
        );
        assert_eq!(validate_topic_name(&long[1..]), Ok(()));
    }

    #[test]
    fn topic_filter_accepts_spec_examples() {
        for filter in [
            "sport/tennis/player1/#",
            "sport/#",
            "#",
            "+",
            "+/tennis/#",
            "sport/+/player1",
            "+/+",
            "/+",
            "/finance",
            "a//b",
            "$SYS/#",
        ] {
            assert_eq!(validate_topic_filter(filter), Ok(()), "{filter}");
        }
    }

    #[test]
    fn topic_filter_rejects_misplaced_wildcards() {
        for filter in ["sport/tennis#", "sport/tennis/#/ranking", "#/a", "a/##"] {
            assert_eq!(
                validate_topic_filter(filter),
                Err(TopicError::MisplacedMultiLevelWildcard),
                "{filter}"
            );
        }
        for filter in ["sport+", "sport/+tennis", "a/++/b", "+a"] {
            assert_eq!(
                validate_topic_filter(filter),
                Err(TopicError::MisplacedSingleLevelWildcard),
                "{filter}"
            );
        }
    }

    #[test]
    fn topic_filter_rejects_empty_null_and_overlong() {
        assert_eq!(validate_topic_filter(""), Err(TopicError::EmptyFilter));
        assert_eq!(
            validate_topic_filter("a/\0"),
            Err(TopicError::NullCharacter)
        );
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(
            validate_topic_filter(&long),
            Err(TopicError::TooLong(MAX_TOPIC_LEN + 1))
        );
    }

    #[test]
    fn parse_filter_recognises_shared_subscriptions() {
        assert_eq!(
            parse_filter("$share/consumers/sport/+"),
            Ok(FilterKind::Shared {
                group: "consumers",
                filter: "sport/+"
            })
        );
        assert_eq!(
            parse_filter("$share/g/#"),
            Ok(FilterKind::Shared {
                group: "g",
                filter: "#"
            })
        );
        assert_eq!(parse_filter("$share/g/a/b").map(|k| k.filter()), Ok("a/b"));
    }

    #[test]
    fn parse_filter_rejects_bad_shared_subscriptions() {
        assert_eq!(parse_filter("$share/"), Err(TopicError::EmptyShareName));
        assert_eq!(parse_filter("$share//a"), Err(TopicError::EmptyShareName));
        assert_eq!(
            parse_filter("$share/g"),
            Err(TopicError::MissingSharedFilter)
        );
        assert_eq!(
            parse_filter("$share/g/"),
            Err(TopicError::MissingSharedFilter)
        );
        assert_eq!(
            parse_filter("$share/g+/a"),
            Err(TopicError::InvalidShareName('+'))
        );
        assert_eq!(
            parse_filter("$share/#/a"),
            Err(TopicError::InvalidShareName('#'))
        );
        assert_eq!(
            parse_filter("$share/g/a#"),
            Err(TopicError::MisplacedMultiLevelWildcard)
        );
    }

    #[test]
    fn parse_filter_recognises_exclusive_subscriptions() {
        assert_eq!(
            parse_filter("$exclusive/a/+"),
            Ok(FilterKind::Exclusive("a/+"))
        );
        assert_eq!(parse_filter("$exclusive/"), Err(TopicError::EmptyFilter));
        assert_eq!(
            parse_filter("$exclusive/a+"),
            Err(TopicError::MisplacedSingleLevelWildcard)
        );
    }

    #[test]
    fn parse_filter_treats_other_dollar_prefixes_as_normal_filters() {
        assert_eq!(parse_filter("$share"), Ok(FilterKind::Normal("$share")));
        assert_eq!(
            parse_filter("$sharex/a"),
            Ok(FilterKind::Normal("$sharex/a"))
        );
        assert_eq!(parse_filter("$SYS/#"), Ok(FilterKind::Normal("$SYS/#")));
        assert_eq!(
            parse_filter("a/#/b"),
            Err(TopicError::MisplacedMultiLevelWildcard)
        );
        assert_eq!(parse_filter(""), Err(TopicError::EmptyFilter));
    }

    #[test]
    fn multi_level_wildcard_matches_parent_and_children() {
        // §4.7.1.2 example.
        let filter = "sport/tennis/player1/#";
        assert!(filter_matches(filter, "sport/tennis/player1"));
        assert!(filter_matches(filter, "sport/tennis/player1/ranking"));
        assert!(filter_matches(
            filter,
            "sport/tennis/player1/score/wimbledon"
        ));
        assert!(!filter_matches(filter, "sport/tennis/player2"));
        assert!(filter_matches("sport/#", "sport"));
        assert!(filter_matches("#", "sport/tennis"));
        assert!(filter_matches("#", "/"));
    }

    #[test]
    fn single_level_wildcard_matches_exactly_one_level() {
        // §4.7.1.3 examples.
        assert!(filter_matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(filter_matches("sport/tennis/+", "sport/tennis/player2"));
        assert!(!filter_matches(
            "sport/tennis/+",
            "sport/tennis/player1/ranking"
        ));
        assert!(!filter_matches("sport/+", "sport"));
        assert!(filter_matches("sport/+", "sport/"));
        assert!(filter_matches("+/+", "/finance"));
        assert!(filter_matches("/+", "/finance"));
        assert!(!filter_matches("+", "/finance"));
        assert!(filter_matches("+/tennis/#", "sport/tennis/x/y"));
        assert!(filter_matches("sport/+/player1", "sport/tennis/player1"));
    }

    #[test]
    fn exact_filters_match_only_the_same_levels() {
        assert!(filter_matches("a/b", "a/b"));
        assert!(!filter_matches("a/b", "a/b/c"));
        assert!(!filter_matches("a/b/c", "a/b"));
        assert!(!filter_matches("a/b", "a/B"));
        assert!(!filter_matches("a", "/a"));
        assert!(filter_matches("a//b", "a//b"));
        assert!(!filter_matches("a/b", "a//b"));
    }

    #[test]
    fn wildcards_at_the_start_do_not_match_dollar_topics() {
        // §4.7.2 examples (MQTT-4.7.2-1).
        assert!(!filter_matches("#", "$SYS/broker/load"));
        assert!(!filter_matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(filter_matches("$SYS/#", "$SYS/monitor/Clients"));
        assert!(filter_matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
        assert!(filter_matches("$SYS/#", "$SYS"));
    }

    #[test]
    fn multi_level_wildcard_not_last_never_matches() {
        assert!(!filter_matches("a/#/b", "a/x/b"));
        assert!(!filter_matches("a/#/b", "a"));
    }

    #[test]
    fn filter_kind_exposes_the_matching_filter() {
        assert_eq!(FilterKind::Normal("a/b").filter(), "a/b");
        assert_eq!(FilterKind::Exclusive("x").filter(), "x");
    }

    #[test]
    fn levels_are_what_splitting_at_slashes_gives() {
        for topic in ["a", "", "/", "a//b", "/a/", "sport/tennis/#", "é/ü/+"] {
            let expected: Vec<&str> = topic.split('/').collect();
            assert_eq!(levels(topic).collect::<Vec<_>>(), expected, "{topic:?}");
            assert_eq!(level_count(topic), expected.len(), "{topic:?}");
        }
        assert_eq!(split_level("a/b/c"), ("a", Some("b/c")));
        assert_eq!(split_level("c"), ("c", None));
        assert_eq!(split_level("/"), ("", Some("")));
    }

    proptest::proptest! {
        #[test]
        fn levels_agree_with_str_split(topic in "[a/é+#$]{0,12}") {
            let expected: Vec<&str> = topic.split('/').collect();
            proptest::prop_assert_eq!(levels(&topic).collect::<Vec<_>>(), expected.clone());
            proptest::prop_assert_eq!(level_count(&topic), expected.len());
        }
    }
}
