//! Reading ACL policy files: each is a YAML list of [`AclPolicy`], the shape of an `AclPolicy`
//! resource's spec, so the operator renders a file by concatenating specs.

use std::path::{Path, PathBuf};

use super::error::AclError;
use super::policy::AclPolicy;

/// Reads the policy files `files` (relative paths are resolved against `base_dir`, the
/// configuration directory) and returns their policies in file order.
///
/// Only the syntax and the schema are checked here (unknown fields are errors naming the field,
/// the file and the line); [`AclSnapshot::compile`](super::AclSnapshot::compile) checks the
/// meaning.
pub fn load_policies(files: &[PathBuf], base_dir: &Path) -> Result<Vec<AclPolicy>, AclError> {
    let mut policies = Vec::new();
    for file in files {
        let path = base_dir.join(file);
        let bytes = std::fs::read(&path).map_err(|source| AclError::Read {
            path: path.clone(),
            source,
        })?;
        policies.extend(parse_policies(&bytes, &path)?);
    }
    Ok(policies)
}

/// Parses the text of one policy file; `path` only labels error messages.
///
/// A file without any YAML value (empty, or only comments) is refused rather than read as "no
/// policies": a policy file caught half-written must not silently drop every rule. A file that
/// really holds no policies says so with `[]`.
pub fn parse_policies(bytes: &[u8], path: &Path) -> Result<Vec<AclPolicy>, AclError> {
    let policies: Option<Vec<AclPolicy>> =
        yaml_serde::from_slice(bytes).map_err(|error| AclError::Parse {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
    policies.ok_or_else(|| AclError::Parse {
        path: path.to_path_buf(),
        message: "the file holds no YAML value; write `[]` for an empty list of policies".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::policy::{Action, Effect};

    fn parse(text: &str) -> Result<Vec<AclPolicy>, AclError> {
        parse_policies(text.as_bytes(), Path::new("acl/policies.yaml"))
    }

    const EXAMPLE: &str = r#"
- name: sensors                       # policy name, shown in logs and metrics
  rules:
    - effect: Allow                   # Allow | Deny; a matching Deny always wins
      principals: [ { username: "sensor-*" }, { clientId: "gw-1" }, { group: ops } ]  # none = everyone
      actions: [publish, subscribe]
      topics: ["sensors/%u/#", "cmd/%c/+"]   # filters; %u username, %c client id, whole levels
      maxQos: 1                       # optional; retain: false forbids retained publishes
"#;

    #[test]
    fn the_documented_example_parses() {
        let policies = parse(EXAMPLE).unwrap();
        assert_eq!(policies.len(), 1);
        let rule = &policies[0].rules[0];
        assert_eq!(rule.effect, Effect::Allow);
        assert_eq!(rule.actions, vec![Action::Publish, Action::Subscribe]);
        assert_eq!(rule.principals[1].client_id.as_deref(), Some("gw-1"));
        assert_eq!(rule.max_qos, Some(1));
    }

    #[test]
    fn an_unknown_field_is_named_with_file_and_line() {
        let text = "- name: p\n  rules:\n    - effect: Allow\n      actions: [publish]\n      \
                    topics: [a]\n      maxQoS: 1\n";
        let message = parse(text).unwrap_err().to_string();
        assert!(
            message.starts_with("ACL policy file acl/policies.yaml: "),
            "{message}"
        );
        assert!(message.contains("unknown field `maxQoS`"), "{message}");
        assert!(message.contains("line 6"), "{message}");
    }

    #[test]
    fn an_unknown_effect_is_named_with_its_line() {
        let text = "- name: p\n  rules:\n    - effect: Permit\n      actions: [publish]\n      \
                    topics: [a]\n";
        let message = parse(text).unwrap_err().to_string();
        assert!(message.contains("Permit"), "{message}");
        assert!(message.contains("line 3"), "{message}");
    }

    #[test]
    fn invalid_yaml_is_reported_with_its_line() {
        let message = parse("- name: p\n  rules: [\n").unwrap_err().to_string();
        assert!(message.contains("line"), "{message}");
    }

    #[test]
    fn an_empty_list_is_no_policies() {
        assert_eq!(parse("[]").unwrap(), Vec::new());
    }

    #[test]
    fn an_empty_file_is_refused() {
        for text in ["", "# only a comment\n"] {
            let message = parse(text).unwrap_err().to_string();
            assert!(message.contains("write `[]`"), "{message}");
        }
    }

    #[test]
    fn files_are_read_relative_to_the_base_directory_in_order() {
        let dir = std::env::temp_dir().join(format!("tern-acl-load-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("acl")).unwrap();
        std::fs::write(dir.join("acl/a.yaml"), "- { name: a, rules: [] }\n").unwrap();
        std::fs::write(dir.join("acl/b.yaml"), "- { name: b, rules: [] }\n").unwrap();
        let files = [PathBuf::from("acl/b.yaml"), PathBuf::from("acl/a.yaml")];
        let names: Vec<String> = load_policies(&files, &dir)
            .unwrap()
            .into_iter()
            .map(|policy| policy.name)
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["b", "a"]);
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = load_policies(
            &[PathBuf::from("nope.yaml")],
            Path::new("/nonexistent-tern"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("cannot read ACL policy file /nonexistent-tern/nope.yaml: "),
            "{error}"
        );
    }
}
