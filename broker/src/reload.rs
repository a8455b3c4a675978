//! Applying a new configuration to a running broker: re-read, validate as a whole, swap
//! atomically, then bring the parts that hold state (listeners, connections) in line.
//!
//! The order matters. Nothing changes until the whole new configuration — `broker.yaml` and
//! every file it references — has parsed and validated; a bad one is refused with a precise
//! message and the running revision stays in force. The swap itself is one `ArcSwap` store, so
//! every reader sees either the old or the new configuration, never a mix. Only then are
//! listeners reconciled (new sockets bound before old ones stop).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::broker::Broker;
use crate::config::{load_config, ConfigError, LoadedConfig};
use crate::enforce::{enforce_acl, enforce_auth, refresh_identities, AclEnforcement};
use crate::listener::{Listeners, RETRY_INTERVAL};

/// What a reload attempt did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The files hold the revision already running.
    Unchanged,
    /// The new revision is in force.
    Applied {
        /// The revision now running.
        revision: String,
    },
    /// The new configuration was refused; the previous one stays in force.
    Rejected(ConfigError),
}

/// Re-reads the configuration from `source` and applies it when it changed and is valid.
pub struct Reloader {
    broker: Arc<Broker>,
    listeners: Arc<Listeners>,
    source: PathBuf,
}

impl Reloader {
    /// A reloader for the broker whose configuration was read from `source`.
    pub fn new(broker: Arc<Broker>, listeners: Arc<Listeners>, source: PathBuf) -> Reloader {
        Reloader {
            broker,
            listeners,
            source,
        }
    }

    /// Reads, validates and (if changed) applies the configuration.
    pub async fn reload(&self) -> ReloadOutcome {
        let source = self.source.clone();
        let loaded = tokio::task::spawn_blocking(move || load_config(&source)).await;
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(join_error) => Err(ConfigError::Invalid {
                path: self.source.clone(),
                message: format!("loading failed: {join_error}"),
            }),
        };
        let current = self.broker.config().revision.clone();
        match loaded {
            Ok(new) if new.revision == current => ReloadOutcome::Unchanged,
            Ok(new) => {
                let revision = new.revision.clone();
                self.apply(new).await;
                self.broker.metrics.config_reload(true);
                ReloadOutcome::Applied { revision }
            }
            Err(error) => {
                self.broker.metrics.config_reload(false);
                ReloadOutcome::Rejected(error)
            }
        }
    }

    async fn apply(&self, new: LoadedConfig) {
        let old = self.broker.config();
        if old.config.metrics != new.config.metrics {
            warn!("metrics endpoint settings changed; they take effect at the next restart");
        }
        let listeners = new.config.listeners.clone();
        let close_removed = new.config.reload.close_removed_listener_connections;
        let disconnect_revoked = new.config.reload.disconnect_revoked_clients;
        drop(old);
        // Sessions are walked off the async workers: there may be very many.
        let broker = self.broker.clone();
        let new = run_blocking(move || {
            refresh_identities(&broker, &new.auth);
            new
        })
        .await;
        let Some(new) = new else { return };
        self.broker.swap_config(new);
        self.listeners.reconcile(&listeners, close_removed).await;
        self.broker.set_readiness(self.listeners.problem());
        let broker = self.broker.clone();
        let enforced = run_blocking(move || {
            let disconnected = if disconnect_revoked {
                enforce_auth(&broker)
            } else {
                0
            };
            (disconnected, enforce_acl(&broker))
        })
        .await;
        if let Some((disconnected, acl)) = enforced {
            if disconnected > 0 || acl != AclEnforcement::default() {
                info!(
                    disconnected,
                    ?acl,
                    "existing sessions brought in line with the new configuration"
                );
            }
        }
    }

    /// Binds listeners a previous reconcile could not bind, if any.
    async fn retry_unbound(&self) {
        if self.listeners.problem().is_none() {
            return;
        }
        let live = self.broker.config();
        let listeners = live.config.listeners.clone();
        let close_removed = live.config.reload.close_removed_listener_connections;
        drop(live);
        self.listeners.reconcile(&listeners, close_removed).await;
        self.broker.set_readiness(self.listeners.problem());
    }

    /// Reloads whenever the files change (after `reload.debounceMillis` of quiet) or a reload
    /// is requested (SIGHUP), and retries unbound listeners, until shutdown.
    pub async fn run(
        self,
        mut changes: mpsc::UnboundedReceiver<()>,
        mut requests: mpsc::Receiver<()>,
    ) {
        let mut retry = tokio::time::interval(RETRY_INTERVAL);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let started = tokio::select! {
                Some(()) = changes.recv() => {
                    let started = Instant::now();
                    self.settle(&mut changes, &mut requests).await;
                    started
                }
                Some(()) = requests.recv() => Instant::now(),
                _ = retry.tick() => {
                    self.retry_unbound().await;
                    continue;
                }
                _ = self.broker.shutdown.cancelled() => return,
            };
            match self.reload().await {
                ReloadOutcome::Unchanged => {}
                ReloadOutcome::Applied { revision } => info!(
                    %revision,
                    latency_ms = started.elapsed().as_millis() as u64,
                    "configuration applied"
                ),
                ReloadOutcome::Rejected(error) => error!(
                    %error,
                    running = %self.broker.config().revision,
                    "configuration rejected; the running revision stays in force"
                ),
            }
        }
    }

    /// Waits until no change has been reported for the debounce period (bounded: a directory
    /// that never stops changing is re-read at least every ten periods), or a reload is
    /// requested explicitly.
    async fn settle(
        &self,
        changes: &mut mpsc::UnboundedReceiver<()>,
        requests: &mut mpsc::Receiver<()>,
    ) {
        let quiet = Duration::from_millis(u64::from(
            self.broker.config().config.reload.debounce_millis,
        ));
        let deadline = tokio::time::Instant::now() + quiet * 10;
        loop {
            tokio::select! {
                more = changes.recv() => if more.is_none() { return },
                _ = requests.recv() => return,
                _ = tokio::time::sleep(quiet) => return,
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    }
}

/// Runs `work` on a blocking thread; `None` (logged) if it panicked.
async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Some(value),
        Err(error) => {
            error!(%error, "re-checking sessions after a reload failed");
            None
        }
    }
}
