//! The state every connection shares: live configuration, sessions, the router, the retained
//! store and the metrics — and the operations that touch more than one session (publishing,
//! opening and ending sessions).

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytestring::ByteString;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::LoadedConfig;
use crate::connection::park::{self, LotSlot};
use crate::credential_expiry::{unix_now, CredentialExpiries};
use crate::message::{Delivery, Message};
use crate::metrics::{DropReason, Metrics};
use crate::protocol::{QoS, ReasonCode, RetainHandling, SubscriptionOptions};
use crate::router::{RetainedStore, Route, Router, SubscribeError};
use crate::session::{Enqueued, Session, SessionRef, SubscriptionRecord};

/// A message that could not be queued because a connected subscriber's queue is full; the
/// publisher holds it and retries when space frees up.
pub type Blocked = (SessionRef, Delivery);

thread_local! {
    /// Scratch space for one publish's routes, reused by every publish on the thread, so that
    /// routing allocates nothing in steady state and no connection keeps a vector of its own.
    static ROUTES: Cell<Vec<Route<SessionRef>>> = const { Cell::new(Vec::new()) };
}

/// The broker: one per process, shared by every task behind an `Arc`.
pub struct Broker {
    live_config: ArcSwap<LoadedConfig>,
    /// Subscriptions, and where a PUBLISH goes.
    pub router: Router<SessionRef>,
    /// Retained messages by topic.
    pub retained: RetainedStore<Arc<Message>>,
    sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    /// Counters and gauges.
    pub metrics: Metrics,
    next_session_id: AtomicU64,
    /// When the broker started, for `$SYS/broker/uptime`.
    pub started_at: Instant,
    /// Cancelled when the broker begins shutting down.
    pub shutdown: CancellationToken,
    not_ready: Mutex<Option<String>>,
    /// Connections to close when their token expires.
    pub credential_expiries: CredentialExpiries,
    /// Where idle connections park (see `connection::park`), started by the first.
    pub(crate) parking_lot: LotSlot,
    /// The task of every connection, so shutdown can wait for all of them to flush and close:
    /// those the listeners accepted and those resumed from the parking lot alike.
    pub connections: TaskTracker,
}

/// What opening a session for a CONNECT produced.
pub struct OpenedSession {
    /// The session now owned by the connection.
    pub session: Arc<Session>,
    /// The connection's generation (ownership token).
    pub generation: u64,
    /// Whether an existing session was resumed (CONNACK Session Present).
    pub session_present: bool,
}

impl Broker {
    /// A broker running `config`.
    pub fn new(config: LoadedConfig) -> Arc<Broker> {
        Arc::new(Broker {
            live_config: ArcSwap::from_pointee(config),
            router: Router::new(),
            retained: RetainedStore::new(),
            sessions: Mutex::new(HashMap::new()),
            metrics: Metrics::new(),
            next_session_id: AtomicU64::new(1),
            started_at: Instant::now(),
            shutdown: CancellationToken::new(),
            not_ready: Mutex::new(Some("starting".into())),
            credential_expiries: CredentialExpiries::default(),
            parking_lot: LotSlot::new(),
            connections: TaskTracker::new(),
        })
    }

    /// The configuration in force right now. Cheap; never blocks.
    pub fn config(&self) -> arc_swap::Guard<Arc<LoadedConfig>> {
        self.live_config.load()
    }

    /// Replaces the configuration atomically.
    pub fn swap_config(&self, config: LoadedConfig) {
        self.live_config.store(Arc::new(config));
    }

    /// Why the broker is not ready to serve (`/readyz`), or `None` when it is.
    pub fn readiness_problem(&self) -> Option<String> {
        self.not_ready.lock().clone()
    }

    /// Records whether the broker is ready; `problem` is shown by `/readyz` while it is not.
    pub fn set_readiness(&self, problem: Option<String>) {
        *self.not_ready.lock() = problem;
    }

    /// Number of sessions (online and offline).
    pub fn session_count(&self) -> usize {
        self.sessions.lock().len()
    }

    /// Opens the session for `client_id`: resumes it (clean start off), or replaces it with a
    /// fresh one. A connection that owned it is told to close with Session taken over.
    pub fn open_session(
        &self,
        client_id: Arc<str>,
        clean_start: bool,
        expiry_interval: u32,
    ) -> OpenedSession {
        let mut sessions = self.sessions.lock();
        if let Some(existing) = sessions.get(&client_id).cloned() {
            // Ownership moves under the session lock: the generation bump and the online flag
            // change together, so a closing connection cannot mark a resumed session offline.
            let mut state = existing.state.lock();
            let was_online = existing.is_online();
            let old_generation = state.generation;
            state.generation += 1;
            if was_online {
                existing.kick(old_generation, ReasonCode::SessionTakenOver);
            } else {
                self.metrics.sessions_offline.dec();
            }
            if !clean_start {
                state.expiry_interval = expiry_interval;
                let generation = state.generation;
                existing.set_online(true);
                drop(state);
                if !was_online {
                    self.metrics.sessions_online.inc();
                }
                return OpenedSession {
                    session: existing,
                    generation,
                    session_present: true,
                };
            }
            existing.set_online(false);
            drop(state);
            if was_online {
                self.metrics.sessions_online.dec();
            }
            sessions.remove(&client_id);
            self.discard_session_state(&existing);
        }
        let id = self.next_session_id.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Session::new(id, client_id.clone()));
        {
            let mut state = session.state.lock();
            state.generation = 1;
            state.expiry_interval = expiry_interval;
        }
        session.set_online(true);
        self.metrics.sessions_online.inc();
        sessions.insert(client_id, session.clone());
        OpenedSession {
            session,
            generation: 1,
            session_present: false,
        }
    }

    /// Called when the connection of `generation` ends. Returns false if it no longer owned the
    /// session (taken over), in which case nothing is changed.
    pub fn close_session(self: &Arc<Self>, session: &Arc<Session>, generation: u64) -> bool {
        let expiry = {
            let state = session.state.lock();
            if state.generation != generation {
                return false;
            }
            session.set_online(false);
            state.expiry_interval
        };
        self.metrics.sessions_online.dec();
        self.redeliver_shared(session);
        if expiry == 0 {
            self.end_session(session, generation);
        } else {
            self.metrics.sessions_offline.inc();
            if expiry != u32::MAX {
                let broker = Arc::clone(self);
                let session = Arc::clone(session);
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(u64::from(expiry))) => {}
                        _ = broker.shutdown.cancelled() => return,
                    }
                    if broker.end_session(&session, generation) {
                        broker.metrics.sessions_offline.dec();
                    }
                });
            }
        }
        true
    }

    /// Removes the session if it is still the one registered and still at `generation`.
    fn end_session(&self, session: &Arc<Session>, generation: u64) -> bool {
        let mut sessions = self.sessions.lock();
        let current = sessions
            .get(&session.client_id)
            .is_some_and(|s| Arc::ptr_eq(s, session));
        if !current || session.state.lock().generation != generation {
            return false;
        }
        sessions.remove(&session.client_id);
        drop(sessions);
        self.discard_session_state(session);
        true
    }

    /// Drops a session's subscriptions and queued messages.
    fn discard_session_state(&self, session: &Session) {
        let (filters, discarded) = {
            let mut state = session.state.lock();
            let filters: Vec<ByteString> = state.subscriptions.drain().map(|(f, _)| f).collect();
            let discarded = state.outbound.clear();
            (filters, discarded)
        };
        self.metrics.queued_messages.sub(discarded as i64);
        for filter in filters {
            self.router.unsubscribe(session.id, &filter);
        }
        self.refresh_subscription_gauges();
    }

    /// Hands messages a departing shared-subscription member had not acknowledged to other
    /// members of the same group.
    fn redeliver_shared(&self, session: &Session) {
        let taken = session.state.lock().outbound.take_shared_unacknowledged();
        for delivery in taken {
            let Some(group) = delivery.shared_group.clone() else {
                continue;
            };
            match self.router.pick_shared_member(&group, session.id) {
                Some(route) => {
                    let delivery = Delivery {
                        qos: delivery.message.qos.min(route.qos),
                        subscription_ids: route.subscription_ids,
                        ..delivery
                    };
                    self.enqueue(&route.subscriber, delivery);
                }
                None => self.metrics.dropped(DropReason::NoSubscribers),
            }
        }
    }

    /// Routes a published message to every matching subscriber and stores/clears it as
    /// retained. Deliveries that met a full queue of a connected subscriber are returned so the
    /// publisher can hold back its acknowledgement and retry.
    pub fn publish(&self, message: Arc<Message>) -> Vec<Blocked> {
        if message.retain {
            self.store_retained(&message);
        }
        // The thread's scratch vector, taken for the call: a nested publish would simply start
        // with an empty one.
        let mut routes = ROUTES.take();
        routes.clear();
        self.router
            .route(&message.topic, message.publisher, &mut routes);
        let blocked = self.deliver(&message, &mut routes);
        ROUTES.set(routes);
        blocked
    }

    /// Offers `message` along each of `routes` (emptying it); returns the blocked deliveries.
    fn deliver(&self, message: &Arc<Message>, routes: &mut Vec<Route<SessionRef>>) -> Vec<Blocked> {
        if routes.is_empty() {
            // The broker's own `$SYS` updates routinely have no audience; only count clients'.
            if message.publisher != 0 {
                self.metrics.dropped(DropReason::NoSubscribers);
            }
            return Vec::new();
        }
        let capacity = self.config().config.limits.max_queued_messages;
        let mut blocked = Vec::new();
        let mut queued = 0;
        for route in routes.drain(..) {
            let delivery = Delivery {
                message: Arc::clone(message),
                qos: message.qos.min(route.qos),
                retain: message.retain && route.retain_as_published,
                subscription_ids: route.subscription_ids,
                shared_group: route.shared_group,
            };
            if let Some(delivery) =
                self.enqueue_within(&route.subscriber, delivery, capacity, &mut queued)
            {
                blocked.push((route.subscriber, delivery));
            }
        }
        // One update of the shared gauge per publish, not one per subscriber.
        self.metrics.queued_messages.add(queued);
        blocked
    }

    /// Publishes a message no client can be held back for (wills, `$SYS`): deliveries that
    /// meet a connected subscriber's full queue are queued beyond the limit rather than lost.
    /// Their number is bounded by the number of sessions, so this cannot grow without end.
    pub fn publish_internal(&self, message: Arc<Message>) {
        for (session, delivery) in self.publish(message) {
            session.state.lock().outbound.push_unbounded(delivery);
            self.metrics.queued_messages.inc();
            session.wake.wake();
        }
    }

    /// Offers one delivery to a session; returns it back if the session is connected and full.
    pub fn enqueue(&self, session: &SessionRef, delivery: Delivery) -> Option<Delivery> {
        let capacity = self.config().config.limits.max_queued_messages;
        let mut queued = 0;
        let blocked = self.enqueue_within(session, delivery, capacity, &mut queued);
        self.metrics.queued_messages.add(queued);
        blocked
    }

    /// [`Broker::enqueue`] under a known capacity, adding to `queued` (for the caller to add to
    /// the gauge) instead of updating the gauge itself.
    fn enqueue_within(
        &self,
        session: &SessionRef,
        delivery: Delivery,
        capacity: usize,
        queued: &mut i64,
    ) -> Option<Delivery> {
        let online = session.is_online();
        let result = session
            .state
            .lock()
            .outbound
            .push(delivery, capacity, online);
        match result {
            Enqueued::Queued => {
                *queued += 1;
                if online {
                    session.wake.wake();
                }
                None
            }
            Enqueued::Dropped(reason) => {
                self.metrics.dropped(reason);
                None
            }
            Enqueued::Full(delivery) => Some(delivery),
        }
    }

    fn store_retained(&self, message: &Arc<Message>) {
        if message.payload.is_empty() {
            self.retained.set(&message.topic, None);
        } else {
            self.retained.set(&message.topic, Some(Arc::clone(message)));
        }
        self.metrics
            .retained_messages
            .set(self.retained.len() as i64);
    }

    /// Adds a subscription for `session` and queues the retained messages it should receive.
    /// Returns the SUBACK reason code for this filter.
    pub fn subscribe(
        &self,
        session: &SessionRef,
        filter: &ByteString,
        options: SubscriptionOptions,
        identifier: Option<u32>,
    ) -> ReasonCode {
        let outcome = match self
            .router
            .subscribe(session.clone(), filter, options, identifier)
        {
            Ok(outcome) => outcome,
            Err(SubscribeError::ExclusiveTaken) => return ReasonCode::QuotaExceeded,
            Err(_) => return ReasonCode::TopicFilterInvalid,
        };
        session.state.lock().subscriptions.insert(
            filter.clone(),
            SubscriptionRecord {
                options,
                identifier,
            },
        );
        self.refresh_subscription_gauges();
        let send_retained = match options.retain_handling {
            RetainHandling::SendAlways => true,
            RetainHandling::SendIfNew => !outcome.existed,
            RetainHandling::Never => false,
        };
        if send_retained && !filter.starts_with("$share/") {
            self.replay_retained(session, filter, options.qos, identifier);
        }
        match options.qos {
            QoS::AtMostOnce => ReasonCode::Success,
            QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
            QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
        }
    }

    fn replay_retained(
        &self,
        session: &SessionRef,
        filter: &str,
        granted: QoS,
        identifier: Option<u32>,
    ) {
        let filter = filter.strip_prefix("$exclusive/").unwrap_or(filter);
        let mut matches = Vec::new();
        self.retained.matching(filter, &mut matches);
        if matches.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut state = session.state.lock();
        let mut queued = 0;
        for message in matches {
            if message.is_expired(now) {
                self.metrics.dropped(DropReason::Expired);
                continue;
            }
            state.outbound.push_unbounded(Delivery {
                qos: message.qos.min(granted),
                message,
                retain: true,
                subscription_ids: identifier.into_iter().collect(),
                shared_group: None,
            });
            queued += 1;
        }
        drop(state);
        self.metrics.queued_messages.add(queued);
        session.wake.wake();
    }

    /// Removes a subscription; returns whether it existed.
    pub fn unsubscribe(&self, session: &Session, filter: &ByteString) -> bool {
        let existed = self.router.unsubscribe(session.id, filter);
        session.state.lock().subscriptions.remove(filter);
        self.refresh_subscription_gauges();
        existed
    }

    fn refresh_subscription_gauges(&self) {
        self.metrics
            .subscriptions
            .set(self.router.subscription_count() as i64);
        self.metrics
            .shared_subscriptions
            .set(self.router.shared_subscription_count() as i64);
    }

    /// Asks every connection to close with `reason`.
    pub fn kick_all(&self, reason: ReasonCode) {
        for session in self.online_sessions() {
            let generation = session.state.lock().generation;
            session.kick(generation, reason);
        }
    }

    /// Every session, online and offline (a snapshot: sessions may come and go meanwhile).
    pub fn all_sessions(&self) -> Vec<Arc<Session>> {
        self.sessions.lock().values().cloned().collect()
    }

    /// Asks the connections accepted by listener `name` to close with `reason`.
    pub fn kick_listener(&self, name: &str, reason: ReasonCode) {
        for session in self.online_sessions() {
            let state = session.state.lock();
            if state.client.as_ref().is_some_and(|c| &*c.listener == name) {
                session.kick(state.generation, reason);
            }
        }
    }

    fn online_sessions(&self) -> Vec<Arc<Session>> {
        self.sessions
            .lock()
            .values()
            .filter(|s| s.is_online())
            .cloned()
            .collect()
    }

    /// Milliseconds since the broker started: the clock of keep-alive bookkeeping.
    pub fn clock_ms(&self) -> u64 {
        self.started_at.elapsed().as_millis() as u64
    }

    /// Closes connections silent for longer than 1.5 × their keep alive (MQTT-3.1.2-22), and
    /// connections whose token expired, checking once a second until shutdown. Asks plain TCP
    /// connections quiet for a few seconds to park (see `connection::park`).
    pub async fn sweep_connections(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = self.shutdown.cancelled() => return,
            }
            let now = self.clock_ms();
            for session in self.online_sessions() {
                if session.keep_alive.expired(now) {
                    let generation = session.state.lock().generation;
                    session.kick(generation, ReasonCode::KeepAliveTimeout);
                } else if session.keep_alive.ask_to_park(now, park::QUIET_MS) {
                    session.wake.wake();
                }
            }
            for (session, generation) in self.credential_expiries.take_due(unix_now()) {
                tracing::info!(client_id = %session.client_id, "token expired: closing the connection");
                session.kick(generation, ReasonCode::MaximumConnectTime);
            }
        }
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("revision", &self.config().revision)
            .finish_non_exhaustive()
    }
}
