//! Bringing existing sessions in line with a configuration that was just swapped in.
//!
//! New connections simply meet the new rules. Sessions that already exist hold state granted
//! under the old ones, so on every reload:
//! - before the swap, each session's groups are recomputed under the new `auth` section, so
//!   the ACL views built after the swap see the new memberships;
//! - after it, connected clients whose credential no longer stands (user removed: 0x87,
//!   password or key changed: 0x8C) are disconnected, unless `reload.disconnectRevokedClients`
//!   is off;
//! - and each session is re-checked against the new ACL:
//! - a subscription the ACL no longer allows is removed (the client stops receiving; nothing
//!   tells an MQTT client its subscription ended, as with Mosquitto's ACL reload);
//! - a subscription now capped at a lower QoS keeps going at that QoS;
//! - queued messages (not yet sent) the client may no longer receive are dropped and counted
//!   as `acl_denied`. Messages already in flight were sent before the change and complete.

use std::sync::Arc;

use bytestring::ByteString;

use crate::acl::ClientIdentity;
use crate::auth::Authenticator;
use crate::broker::Broker;
use crate::metrics::DropReason;
use crate::protocol::topic::parse_filter;
use crate::protocol::SubscriptionOptions;
use crate::session::{ConnectedClient, Session, SessionRef};

/// What re-checking the sessions against a new ACL changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AclEnforcement {
    /// Subscriptions removed.
    pub revoked_subscriptions: usize,
    /// Subscriptions kept at a lower QoS.
    pub downgraded_subscriptions: usize,
    /// Queued messages dropped.
    pub dropped_messages: usize,
}

/// Recomputes every session's ACL groups under `new_auth`, the authenticator about to go live.
pub fn refresh_identities(broker: &Broker, new_auth: &Authenticator) {
    for session in broker.all_sessions() {
        let mut state = session.state.lock();
        let Some(client) = &state.client else {
            continue;
        };
        let groups = new_auth.current_groups(&client.authenticated);
        if groups != client.authenticated.groups {
            let mut updated = ConnectedClient::clone(client);
            updated.authenticated.groups = groups;
            state.client = Some(Arc::new(updated));
        }
    }
}

/// Disconnects connected clients whose credential the live authenticator no longer accepts;
/// returns how many were asked to leave.
pub fn enforce_auth(broker: &Broker) -> usize {
    let authenticator = Arc::clone(&broker.config().auth);
    let mut disconnected = 0;
    for session in broker.all_sessions() {
        if !session.is_online() {
            continue;
        }
        let state = session.state.lock();
        let Some(authenticated) = state.client.as_ref().map(|client| &client.authenticated) else {
            continue;
        };
        if let Some(reason) = authenticator.recheck(authenticated).disconnect_reason() {
            tracing::info!(
                client_id = %session.client_id,
                username = authenticated.username.as_deref().unwrap_or(""),
                %reason,
                "disconnecting a client whose credential was revoked"
            );
            session.kick(state.generation, reason);
            disconnected += 1;
        }
    }
    disconnected
}

/// Re-checks every session's subscriptions and queued messages against the live ACL.
pub fn enforce_acl(broker: &Broker) -> AclEnforcement {
    let acl = Arc::clone(&broker.config().acl);
    let mut outcome = AclEnforcement::default();
    for session in broker.all_sessions() {
        let Some(client) = session.state.lock().client.clone() else {
            continue;
        };
        let identity = client.acl_identity(&session.client_id);
        let view = acl.shared_view(&identity);
        if view.allows_everything() {
            continue;
        }
        let subscriptions: Vec<(ByteString, SubscriptionOptions, Option<u32>)> = session
            .state
            .lock()
            .subscriptions
            .iter()
            .map(|(filter, record)| (filter.clone(), record.options, record.identifier))
            .collect();
        for (filter, options, identifier) in subscriptions {
            let Ok(kind) = parse_filter(&filter) else {
                continue;
            };
            match view.check_subscribe(kind.filter(), options.qos) {
                None => {
                    broker.unsubscribe(&session, &filter);
                    broker.metrics.acl_revoked_subscriptions.inc();
                    outcome.revoked_subscriptions += 1;
                    log_revocation(&identity, &filter);
                }
                Some(granted) if granted < options.qos => {
                    let downgraded = SubscriptionOptions {
                        qos: granted,
                        ..options
                    };
                    replace_subscription(broker, &session, &filter, downgraded, identifier);
                    outcome.downgraded_subscriptions += 1;
                }
                Some(_) => {}
            }
        }
        let dropped = session
            .state
            .lock()
            .outbound
            .retain_pending(|delivery| view.may_receive(&delivery.message.topic));
        if dropped > 0 {
            broker.metrics.queued_messages.sub(dropped as i64);
            broker
                .metrics
                .dropped_many(DropReason::AclDenied, dropped as u64);
            outcome.dropped_messages += dropped;
        }
    }
    outcome
}

/// Re-subscribes `filter` with new options, keeping its identifier. The router replaces the
/// entry in place, so no message matching it is missed in between.
fn replace_subscription(
    broker: &Broker,
    session: &Arc<Session>,
    filter: &ByteString,
    options: SubscriptionOptions,
    identifier: Option<u32>,
) {
    let subscriber = SessionRef(Arc::clone(session));
    if broker
        .router
        .subscribe(subscriber, filter, options, identifier)
        .is_ok()
    {
        if let Some(record) = session.state.lock().subscriptions.get_mut(filter) {
            record.options = options;
        }
    }
}

fn log_revocation(identity: &ClientIdentity, filter: &str) {
    tracing::info!(
        client_id = %identity.client_id,
        username = identity.username.as_deref().unwrap_or(""),
        %filter,
        "subscription revoked by the reloaded ACL"
    );
}
