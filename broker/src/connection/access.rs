//! The connection's copy of its ACL: built from the live snapshot when the client connects and
//! rebuilt, lazily, the first time it is consulted after a reload brought a new snapshot. The
//! per-packet cost is one pointer comparison; the checks themselves do not allocate.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use super::Connection;
use crate::acl::{AclSnapshot, ClientAcl, ClientIdentity};
use crate::metrics::DropReason;
use crate::protocol::QoS;

/// One client's ACL and the snapshot it was built from.
pub(super) struct ConnectionAcl {
    source: Arc<AclSnapshot>,
    view: Arc<ClientAcl>,
}

impl ConnectionAcl {
    /// The view of `snapshot` for `identity`.
    pub(super) fn new(snapshot: &Arc<AclSnapshot>, identity: &ClientIdentity) -> ConnectionAcl {
        ConnectionAcl {
            source: Arc::clone(snapshot),
            view: snapshot.shared_view(identity),
        }
    }
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// The client's ACL as of the live configuration.
    fn acl(&mut self) -> &ClientAcl {
        let live = self.broker.config();
        if !Arc::ptr_eq(&live.acl, &self.acl.source) {
            // The session's record, not the connection's: a reload may have refreshed the
            // client's groups there (unless a newer connection owns the session by now).
            let current = {
                let state = self.session.state.lock();
                state
                    .client
                    .clone()
                    .filter(|_| state.generation == self.generation)
            };
            let connected = current.unwrap_or_else(|| Arc::clone(&self.connected));
            let identity = connected.acl_identity(&self.session.client_id);
            self.acl = ConnectionAcl::new(&live.acl, &identity);
        }
        &self.acl.view
    }

    /// Whether the client may publish to `topic`; a refusal is counted as a drop.
    pub(super) fn may_publish(&mut self, topic: &str, qos: QoS, retain: bool) -> bool {
        let allowed = self.acl().check_publish(topic, qos, retain);
        self.broker.metrics.acl_decision(false, allowed);
        if !allowed {
            self.broker.metrics.dropped(DropReason::AclDenied);
            tracing::debug!(client_id = %self.session.client_id, %topic, "publish denied by ACL");
        }
        allowed
    }

    /// The QoS the ACL grants for subscribing to `filter` (without `$share/`/`$exclusive/`
    /// prefix) at `requested`, or `None` when it refuses.
    pub(super) fn subscription_grant(&mut self, filter: &str, requested: QoS) -> Option<QoS> {
        let granted = self.acl().check_subscribe(filter, requested);
        self.broker.metrics.acl_decision(true, granted.is_some());
        if granted.is_none() {
            tracing::debug!(client_id = %self.session.client_id, %filter, "subscribe denied by ACL");
        }
        granted
    }
}
