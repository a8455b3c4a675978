//! `tern-acl-import`: turns a Mosquitto `acl_file` into an `AclPolicy` manifest (with
//! `--cluster`) or into a broker policy file (without), for migrating from Mosquitto.
//!
//! `cargo run -p tern-operator --bin tern-acl-import -- --cluster secure acl_file > policy.yaml`
//!
//! The conversion itself is the broker library's
//! [`convert_acl_file`](tern_broker::acl::convert_acl_file); this program picks the output form
//! and decides what to do with the anonymous section, which Tern rules cannot limit to
//! anonymous clients.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kube::api::ObjectMeta;
use tern_broker::acl::{convert_acl_file, AclPolicy as PolicyFileEntry, AclRule};
use tern_operator::crd::{AclPolicy, AclPolicySpec, ClusterRef};

/// Convert a Mosquitto acl_file into Tern ACL rules.
///
/// `user` sections become rules with a username principal, `pattern` lines rules for everyone
/// (with `%u`/`%c` placeholders), `read` the subscribe action, `write` publish, `deny` a Deny
/// rule. Lines Tern would read differently are refused with their line number.
#[derive(Debug, Parser)]
#[command(name = "tern-acl-import", version)]
struct Flags {
    /// The Mosquitto acl_file.
    acl_file: PathBuf,
    /// Write an AclPolicy for this MqttCluster; without it, write a broker policy file (the
    /// YAML list `acl.files` in broker.yaml names).
    #[arg(long, value_name = "MQTTCLUSTER")]
    cluster: Option<String>,
    /// Name of the AclPolicy (or of the policy in the policy file).
    #[arg(long, default_value = "from-mosquitto")]
    name: String,
    /// Namespace written into the AclPolicy's metadata (default: none, kubectl's namespace).
    #[arg(long, requires = "cluster")]
    namespace: Option<String>,
    /// Keep the rules of the anonymous section (lines before the first `user` line) as rules
    /// for every client. Without this flag they are left out with a warning: in Tern they
    /// would apply to authenticated users too.
    #[arg(long)]
    anonymous_rules_for_everyone: bool,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    match run(&flags) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("tern-acl-import: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The YAML to print, or why there is none.
fn run(flags: &Flags) -> Result<String, String> {
    let text = std::fs::read_to_string(&flags.acl_file)
        .map_err(|error| format!("cannot read {}: {error}", flags.acl_file.display()))?;
    let converted = convert_acl_file(&text)
        .map_err(|error| format!("{}: {error}", flags.acl_file.display()))?;
    let mut rules = converted.rules;
    if !converted.anonymous_rules.is_empty() {
        if flags.anonymous_rules_for_everyone {
            rules.extend(converted.anonymous_rules);
        } else {
            eprintln!(
                "tern-acl-import: warning: left out {} rule(s) of the anonymous section (before \
                 the first `user` line): Tern cannot limit a rule to anonymous clients; \
                 --anonymous-rules-for-everyone keeps them as rules for every client",
                converted.anonymous_rules.len()
            );
        }
    }
    if rules.is_empty() {
        return Err(format!(
            "{} holds no rule to convert (an AclPolicy needs at least one)",
            flags.acl_file.display()
        ));
    }
    match &flags.cluster {
        Some(cluster) => policy_manifest(flags, cluster, rules),
        None => yaml_serde::to_string(&[PolicyFileEntry {
            name: flags.name.clone(),
            rules,
        }])
        .map_err(|error| format!("cannot write the policy file: {error}")),
    }
}

/// The AclPolicy resource holding `rules` for `cluster`.
fn policy_manifest(flags: &Flags, cluster: &str, rules: Vec<AclRule>) -> Result<String, String> {
    let policy = AclPolicy {
        metadata: ObjectMeta {
            name: Some(flags.name.clone()),
            namespace: flags.namespace.clone(),
            ..ObjectMeta::default()
        },
        spec: AclPolicySpec {
            cluster_ref: ClusterRef {
                name: cluster.to_owned(),
            },
            rules,
        },
        status: None,
    };
    yaml_serde::to_string(&policy).map_err(|error| format!("cannot write the AclPolicy: {error}"))
}
