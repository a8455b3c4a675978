//! A compiled, immutable set of ACL policies: what a reload swaps in, and what each connection
//! asks for its own [`ClientAcl`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::client::{ClientAcl, ClientIdentity};
use super::error::AclError;
use super::load::load_policies;
use super::policy::AclPolicy;
use super::principal::PrincipalIndex;
use super::rule::{CompiledRule, Substitutions};
use super::rule_set::RuleSet;
use super::validate::validate_policies;
use crate::config::{AclConfig, DefaultAction};

/// Validated, indexed ACL policies plus the default action.
///
/// Compiling does the expensive work once per reload: rules for everyone without placeholders
/// go into tries shared by every client; the other rules are indexed by principal (exact
/// usernames, client ids and groups in hash maps, `*` patterns and placeholder rules in short
/// lists), so [`for_client`](AclSnapshot::for_client) touches only the rules that can concern
/// the connecting client, even with 10,000 rules.
#[derive(Debug)]
pub struct AclSnapshot {
    /// Unique among the snapshots of this process (see [`AclSnapshot::id`]).
    id: u64,
    default_action: DefaultAction,
    /// Rules for everyone that name no placeholder, already in decision form.
    shared: Arc<RuleSet>,
    /// The view of a client no principal-specific rule applies to, shared by all such
    /// clients (most of them, typically) instead of one copy per connection.
    everyone: Arc<ClientAcl>,
    /// Rules that depend on who the client is, looked up through `index`.
    client_rules: Vec<CompiledRule>,
    index: PrincipalIndex,
    policy_count: usize,
    rule_count: usize,
}

impl AclSnapshot {
    /// Reads the policy files of `config` (relative to `base_dir`) and compiles them with the
    /// configured default action. No files and no default action: everything is allowed.
    pub fn load(config: &AclConfig, base_dir: &Path) -> Result<AclSnapshot, AclError> {
        let policies = load_policies(&config.files, base_dir)?;
        AclSnapshot::compile(policies, config.effective_default_action())
    }

    /// Validates `policies` as a whole and compiles them. The first invalid policy or rule
    /// refuses everything, with a message naming the policy, the rule and the value.
    pub fn compile(
        policies: Vec<AclPolicy>,
        default_action: DefaultAction,
    ) -> Result<AclSnapshot, AclError> {
        validate_policies(&policies)?;
        let mut shared = RuleSet::default();
        let mut client_rules = Vec::new();
        let mut index = PrincipalIndex::default();
        let mut rule_count = 0;
        for rule in policies.iter().flat_map(|policy| &policy.rules) {
            rule_count += 1;
            let compiled = CompiledRule::new(rule);
            if !rule.principals.is_empty() {
                index.insert(client_rules.len(), &rule.principals);
                client_rules.push(compiled);
                continue;
            }
            let (plain, templated) = compiled.split_by_placeholders();
            if let Some(plain) = plain {
                shared.add(&plain, Substitutions::default());
            }
            if let Some(templated) = templated {
                index.insert(client_rules.len(), &[]);
                client_rules.push(templated);
            }
        }
        /// Source of snapshot ids; 0 is never handed out.
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(shared);
        let everyone = Arc::new(ClientAcl::new(
            id,
            Arc::clone(&shared),
            RuleSet::default(),
            default_action == DefaultAction::Allow,
        ));
        Ok(AclSnapshot {
            id,
            default_action,
            shared,
            everyone,
            client_rules,
            index,
            policy_count: policies.len(),
            rule_count,
        })
    }

    /// The rules that apply to `identity`, with `%u` and `%c` filled in: principals are matched
    /// here, once per connection (and again after a reload), not on every packet.
    pub fn for_client(&self, identity: &ClientIdentity) -> ClientAcl {
        ClientAcl::clone(&self.shared_view(identity))
    }

    /// Like [`AclSnapshot::for_client`], but a client no principal-specific rule applies to
    /// gets the one view shared by all such clients: what a connection keeps.
    pub fn shared_view(&self, identity: &ClientIdentity) -> Arc<ClientAcl> {
        let values = Substitutions {
            username: identity.username.as_deref(),
            client_id: Some(&identity.client_id),
        };
        let mut own = RuleSet::default();
        for rule in self
            .index
            .rules_for(identity)
            .into_iter()
            .filter_map(|id| self.client_rules.get(id))
        {
            own.add(rule, values);
        }
        if own.is_empty() {
            return Arc::clone(&self.everyone);
        }
        Arc::new(ClientAcl::new(
            self.id,
            Arc::clone(&self.shared),
            own,
            self.default_action == DefaultAction::Allow,
        ))
    }

    /// Identifies this snapshot among all compiled in this process: the views it hands out
    /// carry it ([`ClientAcl::snapshot_id`]), so a connection can tell that its view is out of
    /// date without keeping the snapshot alive.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// What happens to requests no rule is about.
    pub fn default_action(&self) -> DefaultAction {
        self.default_action
    }

    /// Number of policies compiled (for logs after a reload).
    pub fn policy_count(&self) -> usize {
        self.policy_count
    }

    /// Number of rules compiled, over all policies (for logs after a reload).
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }
}
