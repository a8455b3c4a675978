//! The README's configuration reference is real: its `broker.yaml` example and its policies
//! example parse and validate with the broker's own types, so a documented key cannot drift.

use std::path::Path;

use tern_broker::acl::{parse_policies, AclSnapshot};
use tern_broker::config::{parse_config, DefaultAction};

const README: &str = include_str!("../../README.md");

/// The YAML code blocks of the README's section `heading`, in order.
fn yaml_blocks(heading: &str) -> Vec<&'static str> {
    let section = README
        .split_once(heading)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("README has no section {heading}"));
    let section = section.split("\n### ").next().unwrap_or(section);
    section
        .split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(yaml, _)| yaml))
        .collect()
}

#[test]
fn the_documented_broker_yaml_parses_and_validates() {
    let blocks = yaml_blocks("### `broker.yaml`");
    let config = parse_config(blocks[0].as_bytes(), Path::new("README.md"))
        .unwrap_or_else(|error| panic!("README broker.yaml: {error}"));
    assert_eq!(config.listeners.len(), 3);
}

#[test]
fn the_documented_policies_file_compiles() {
    let blocks = yaml_blocks("### `broker.yaml`");
    let policies = parse_policies(blocks[1].as_bytes(), Path::new("README.md"))
        .unwrap_or_else(|error| panic!("README policies: {error}"));
    let acl = AclSnapshot::compile(policies, DefaultAction::Deny)
        .unwrap_or_else(|error| panic!("README policies: {error}"));
    assert_eq!(acl.rule_count(), 1);
}
