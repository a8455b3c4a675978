//! The ACL policy file format: a YAML list of [`AclPolicy`]. An `AclPolicy` custom resource's
//! `rules` are exactly [`AclRule`]s, so the operator renders a policy file by concatenating
//! specs, and the CRD schema is generated from these types (feature `schema`).

use serde::{Deserialize, Serialize};

/// A named group of rules, as one `AclPolicy` resource contributes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AclPolicy {
    /// Policy name, shown in logs and in the ACL metrics' `policy` label.
    pub name: String,
    /// The rules, in no particular order: a matching `Deny` always wins over an `Allow`.
    pub rules: Vec<AclRule>,
}

/// One rule: who (principals) may or may not do what (actions) on which topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AclRule {
    /// `Allow` or `Deny`. A request matched by any `Deny` rule is refused, whatever else
    /// allows it.
    pub effect: Effect,
    /// Who the rule applies to; any one matching principal is enough. Empty: everyone,
    /// including anonymous clients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<Principal>,
    /// The actions the rule covers.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub actions: Vec<Action>,
    /// Topic filters (`+`, `#` allowed) the rule covers. `%u` and `%c` stand for the client's
    /// username and client id; they must fill a whole topic level (`devices/%u/#`).
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub topics: Vec<String>,
    /// For `Allow`: the highest QoS allowed. Publishes above it are refused; subscriptions
    /// are granted at most this QoS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0, max = 2)))]
    pub max_qos: Option<u8>,
    /// For `Allow`: `false` refuses retained publishes under this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<bool>,
}

/// Whether a rule grants or refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Effect {
    /// Grants the request (unless a `Deny` also matches).
    Allow,
    /// Refuses the request.
    Deny,
}

/// Something a client does that an ACL decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Sending a PUBLISH to the topic (also: a will message's topic).
    Publish,
    /// Subscribing with a filter, and so receiving messages on the topics it covers.
    Subscribe,
}

/// Whom a rule applies to: exactly one of the three fields.
///
/// `username` and `clientId` may contain `*`, matching any run of characters
/// (`sensor-*`). A username principal never matches an anonymous client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(extend("minProperties" = 1, "maxProperties" = 1))
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Principal {
    /// The authenticated username (glob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The MQTT client identifier (glob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A group the user belongs to (`auth.groups`, or the JWT groups claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}
