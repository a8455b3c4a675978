//! Session state that outlives a connection: subscriptions, the queue of messages waiting to be
//! sent, the window of unacknowledged (inflight) messages, and QoS 2 packet ids received.
//!
//! A session is shared between the connection that currently owns it and every publisher that
//! routes a message to it, so its state sits behind one short-lived mutex per session — never a
//! global lock. Ownership by a connection is tracked with a generation number: a takeover bumps
//! it, and the old connection, seeing it no longer owns the session, stops touching it.

mod queue;
mod wake;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use bytestring::ByteString;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::acl::ClientIdentity;
use crate::auth::Identity;
use crate::protocol::{ReasonCode, SubscriptionOptions};
use crate::router::Subscriber;

pub use queue::{Enqueued, Inflight, InflightStage, OutboundQueue};
pub use wake::{ConnectionWaker, WakeState};

/// A subscription as the session remembers it (the router holds the matching structure).
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRecord {
    /// Options granted.
    pub options: SubscriptionOptions,
    /// Subscription identifier, if the client gave one.
    pub identifier: Option<u32>,
}

/// Mutable session state, guarded by [`Session::state`].
#[derive(Debug, Default)]
pub struct SessionState {
    /// Filters (as sent, including `$share/` prefixes) and their options.
    pub subscriptions: HashMap<ByteString, SubscriptionRecord>,
    /// Messages waiting to be sent and the inflight window.
    pub outbound: OutboundQueue,
    /// QoS 2 packet ids received and acknowledged with PUBREC, awaiting PUBREL. A duplicate
    /// PUBLISH with one of these ids is not routed again.
    pub incoming_qos2: PacketIdSet,
    /// Session Expiry Interval in seconds (`u32::MAX` = never).
    pub expiry_interval: u32,
    /// Generation of the connection that owns the session; bumped on every (re)connect.
    pub generation: u64,
    /// The client of the connection that owns (or last owned) the session, so that a reload
    /// can re-check its credential, subscriptions and queued messages.
    pub client: Option<Arc<ConnectedClient>>,
}

/// Who a session's client is and where it connected from, as established at CONNECT.
///
/// One allocation shared by the connection and its session; a reload that changes the
/// client's groups replaces it (see `enforce::refresh_identities`). The client identifier is
/// the session's own.
#[derive(Debug, Clone)]
pub struct ConnectedClient {
    /// What admitted the client (username, groups), re-checked after a reload.
    pub authenticated: Identity,
    /// Name of the listener that accepted the connection.
    pub listener: Arc<str>,
    /// The client's address.
    pub peer: SocketAddr,
}

impl ConnectedClient {
    /// The client as ACL principals and `%u`/`%c` placeholders see it, for the session of
    /// `client_id`. Built when an ACL view is (at CONNECT and after a reload), not per packet.
    pub fn acl_identity(&self, client_id: &str) -> ClientIdentity {
        ClientIdentity {
            username: self.authenticated.username.clone(),
            client_id: client_id.to_owned(),
            groups: self.authenticated.groups.clone(),
        }
    }
}

/// Packet ids of received QoS 2 messages awaiting PUBREL: a sorted vector, smaller than a
/// hash set for the handful of ids a client has open (an empty one allocates nothing).
#[derive(Debug, Default)]
pub struct PacketIdSet(Vec<u16>);

impl PacketIdSet {
    /// Adds `id`; false if it was already present.
    pub fn insert(&mut self, id: u16) -> bool {
        match self.0.binary_search(&id) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, id);
                true
            }
        }
    }

    /// Removes `id`; false if it was not present.
    pub fn remove(&mut self, id: &u16) -> bool {
        match self.0.binary_search(id) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// How many ids are held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One client's session.
#[derive(Debug)]
pub struct Session {
    /// Unique id for the life of the broker process (identity in the router).
    pub id: u64,
    /// The client identifier.
    pub client_id: Arc<str>,
    /// Guarded state; hold the lock only briefly and never across an await.
    pub state: Mutex<SessionState>,
    online: AtomicBool,
    /// Wakes the owning connection: messages were queued, or it was asked to close (see
    /// [`Session::kicked`]). One signal for both keeps an idle connection to a single waiter.
    pub wake: ConnectionWaker,
    /// Woken when queue space was freed and a publisher is waiting for it.
    pub space: Notify,
    kicked_generation: AtomicU64,
    kick_reason: AtomicU8,
    /// Keep-alive bookkeeping read by the broker's sweeper (see [`KeepAlive`]).
    pub keep_alive: KeepAlive,
}

/// When the owning connection last received a packet and how long it may stay silent.
///
/// One broker-wide task checks these once a second instead of every connection arming a timer
/// of its own: an idle connection then costs no timer, and traffic costs one relaxed store.
#[derive(Debug, Default)]
pub struct KeepAlive {
    /// Milliseconds since broker start of the last packet received.
    pub last_packet_ms: AtomicU64,
    /// Allowed silence in milliseconds (1.5 × keep alive, at most 98,302,500); 0 = unlimited.
    pub timeout_ms: AtomicU32,
    /// Set while the connection deliberately does not read (publisher held back).
    pub paused: AtomicBool,
    /// Whether the connection may be, or is, parked (see `connection::park`): one of the
    /// `PARK_*` states.
    park: AtomicU8,
}

/// The connection's transport cannot park (TLS, WebSocket), so the sweeper never asks.
const PARK_NEVER: u8 = 0;
/// The connection runs in a task of its own.
const PARK_RUNNING: u8 = 1;
/// The sweeper asked the connection to park; it decides at its next idle moment.
const PARK_ASKED: u8 = 2;
/// The connection is parked: it has no task until its socket or session wakes it.
const PARK_PARKED: u8 = 3;

impl KeepAlive {
    /// Whether the connection has been silent longer than allowed at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        let timeout = u64::from(self.timeout_ms.load(Ordering::Relaxed));
        timeout > 0 && !self.paused.load(Ordering::Relaxed) && self.silent_for(now_ms) > timeout
    }

    /// Milliseconds since the connection last received a packet, at `now_ms`.
    pub fn silent_for(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_packet_ms.load(Ordering::Relaxed))
    }

    /// Records whether the connection that now owns the session can park.
    pub fn set_parkable(&self, parkable: bool) {
        let state = if parkable { PARK_RUNNING } else { PARK_NEVER };
        self.park.store(state, Ordering::Release);
    }

    /// Asks a running, parkable connection to park if it has been silent for `quiet_ms` at
    /// `now_ms`; true if it was asked (and should be woken to decide).
    pub fn ask_to_park(&self, now_ms: u64, quiet_ms: u64) -> bool {
        self.silent_for(now_ms) >= quiet_ms
            && !self.paused.load(Ordering::Relaxed)
            && self
                .park
                .compare_exchange(
                    PARK_RUNNING,
                    PARK_ASKED,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Whether the sweeper asked the connection to park.
    pub fn park_asked(&self) -> bool {
        self.park.load(Ordering::Acquire) == PARK_ASKED
    }

    /// The connection declined to park, or was woken from parking: it runs in a task.
    pub fn set_running(&self) {
        self.park.store(PARK_RUNNING, Ordering::Release);
    }

    /// The connection parked.
    pub fn set_parked(&self) {
        self.park.store(PARK_PARKED, Ordering::Release);
    }
}

impl Session {
    /// A new, offline, empty session.
    pub fn new(id: u64, client_id: Arc<str>) -> Session {
        Session {
            id,
            client_id,
            state: Mutex::new(SessionState::default()),
            online: AtomicBool::new(false),
            wake: ConnectionWaker::default(),
            space: Notify::new(),
            kicked_generation: AtomicU64::new(0),
            kick_reason: AtomicU8::new(0),
            keep_alive: KeepAlive::default(),
        }
    }

    /// Whether a connection currently owns the session.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Marks the session owned by a connection or not.
    pub fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::Release);
    }

    /// Asks the connection of `generation` to close with `reason`.
    pub fn kick(&self, generation: u64, reason: ReasonCode) {
        self.kick_reason.store(reason.as_u8(), Ordering::Release);
        self.kicked_generation.store(generation, Ordering::Release);
        self.wake.wake();
    }

    /// The reason the connection of `generation` was asked to close, if it was.
    pub fn kicked(&self, generation: u64) -> Option<ReasonCode> {
        if self.kicked_generation.load(Ordering::Acquire) == generation {
            ReasonCode::from_u8(self.kick_reason.load(Ordering::Acquire))
        } else {
            None
        }
    }
}

/// The router's handle on a session: cheap to clone, compared by session id.
#[derive(Debug, Clone)]
pub struct SessionRef(pub Arc<Session>);

impl Subscriber for SessionRef {
    fn id(&self) -> u64 {
        self.0.id
    }

    fn is_online(&self) -> bool {
        self.0.is_online()
    }
}

impl std::ops::Deref for SessionRef {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keep-alive record whose connection last received a packet at time 0.
    fn keep_alive(parkable: bool) -> KeepAlive {
        let keep_alive = KeepAlive::default();
        keep_alive.set_parkable(parkable);
        keep_alive
    }

    #[test]
    fn only_a_quiet_running_parkable_connection_is_asked_to_park_and_only_once() {
        let never = keep_alive(false);
        assert!(!never.ask_to_park(10_000, 5_000), "TLS/WebSocket asked");

        let running = keep_alive(true);
        assert!(
            !running.ask_to_park(4_999, 5_000),
            "asked before its quiet time"
        );
        assert!(running.ask_to_park(5_000, 5_000));
        assert!(running.park_asked());
        assert!(!running.ask_to_park(6_000, 5_000), "asked twice");

        running.set_parked();
        assert!(!running.park_asked());
        assert!(
            !running.ask_to_park(7_000, 5_000),
            "a parked connection asked"
        );

        running.set_running();
        assert!(
            running.ask_to_park(8_000, 5_000),
            "not asked again after resuming"
        );
    }

    #[test]
    fn a_held_back_publisher_is_not_asked_to_park() {
        let paused = keep_alive(true);
        paused.paused.store(true, Ordering::Relaxed);
        assert!(!paused.ask_to_park(60_000, 5_000));
    }
}
