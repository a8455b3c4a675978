//! Leader election with a `coordination.k8s.io/v1` Lease, so two operator replicas never
//! reconcile at once. kube 5 has no ready-made elector; this is the usual protocol in a few
//! small steps:
//!
//! - a replica may take the Lease when nobody holds it, when it already holds it, or when the
//!   holder has not renewed it for `leaseDurationSeconds`;
//! - every write carries the `resourceVersion` it read, so of two replicas racing for an expired
//!   Lease exactly one wins (the other gets 409 Conflict);
//! - the leader renews well within the duration, and gives up (stops reconciling) as soon as it
//!   cannot prove it still holds the Lease; on shutdown it releases the Lease so a standby takes
//!   over at once instead of after the duration.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;

/// Settings of the election.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Lease name; every replica of one operator uses the same.
    pub name: String,
    /// Namespace of the Lease.
    pub namespace: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the leader renews (and a standby retries).
    pub retry_period: Duration,
}

/// Why a Lease operation failed.
#[derive(Debug, thiserror::Error)]
#[error("Lease {namespace}/{name}: {source}")]
pub struct LeaseError {
    name: String,
    namespace: String,
    source: kube::Error,
}

/// One replica's side of the election.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
}

impl LeaderElector {
    /// An elector for `settings`.
    pub fn new(client: Client, settings: LeaseSettings) -> LeaderElector {
        LeaderElector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
        }
    }

    /// Waits until this replica holds the Lease, retrying every `retry_period`.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {
                    tracing::debug!(lease = %self.settings.name, "lease held by another replica")
                }
                Err(error) => tracing::warn!(%error, "cannot acquire the leader lease"),
            }
            tokio::time::sleep(self.settings.retry_period).await;
        }
    }

    /// Renews the Lease every `retry_period` and returns once leadership is lost: another
    /// replica holds the Lease, or no renewal succeeded for a whole `lease_duration`.
    pub async fn hold(&self) {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!("another replica took the leader lease");
                    return;
                }
                Err(error) if last_renewal.elapsed() >= self.settings.lease_duration => {
                    tracing::error!(%error, "leader lease expired without renewal");
                    return;
                }
                Err(error) => tracing::warn!(%error, "cannot renew the leader lease, retrying"),
            }
        }
    }

    /// Gives the Lease up if this replica holds it, so a standby need not wait for it to
    /// expire.
    pub async fn release(&self) -> Result<(), LeaseError> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.settings.name)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        self.api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// One round: takes or renews the Lease if allowed. `Ok(false)` means another replica
    /// holds it (or won the race for it).
    async fn try_acquire_or_renew(&self) -> Result<bool, LeaseError> {
        let now = Timestamp::now();
        let existing = self
            .api
            .get_opt(&self.settings.name)
            .await
            .map_err(|e| self.error(e))?;
        let result = match existing {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.settings.name.clone()),
                        namespace: Some(self.settings.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.held_spec(None, now)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                let current = lease.spec.clone().unwrap_or_default();
                if !may_take(&current, &self.settings.identity, now) {
                    return Ok(false);
                }
                lease.spec = Some(self.held_spec(Some(&current), now));
                // `replace` sends the resourceVersion that was read: a concurrent writer wins
                // and this call fails with 409 Conflict.
                self.api
                    .replace(&self.settings.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(self.error(error)),
        }
    }

    /// The Lease spec with this replica as the holder, renewed `now`.
    fn held_spec(&self, previous: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
        let me = Some(self.settings.identity.clone());
        let already_mine = previous.is_some_and(|p| p.holder_identity == me);
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: me,
            lease_duration_seconds: Some(
                i32::try_from(self.settings.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: match previous {
                Some(p) if already_mine => p.acquire_time.clone(),
                _ => Some(MicroTime(now)),
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if already_mine {
                transitions
            } else {
                transitions.saturating_add(1)
            }),
            ..LeaseSpec::default()
        }
    }

    fn error(&self, source: kube::Error) -> LeaseError {
        LeaseError {
            name: self.settings.name.clone(),
            namespace: self.settings.namespace.clone(),
            source,
        }
    }
}

/// Whether `identity` may take (or renew) a Lease in state `lease` at `now`: nobody holds it,
/// `identity` holds it, or its holder let it expire.
pub fn may_take(lease: &LeaseSpec, identity: &str, now: Timestamp) -> bool {
    let holder = lease.holder_identity.as_deref().filter(|h| !h.is_empty());
    match holder {
        None => true,
        Some(holder) if holder == identity => true,
        Some(_) => {
            let Some(renewed) = lease.renew_time.as_ref() else {
                return true;
            };
            let duration =
                SignedDuration::from_secs(i64::from(lease.lease_duration_seconds.unwrap_or(0)));
            renewed
                .0
                .checked_add(duration)
                .map_or(true, |expiry| expiry < now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn held_by(holder: &str, renewed: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(at(renewed))),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn an_unheld_lease_may_be_taken() {
        assert!(may_take(&LeaseSpec::default(), "b", at(100)));
    }

    #[test]
    fn the_holder_may_renew() {
        assert!(may_take(&held_by("a", 100, 15), "a", at(105)));
    }

    #[test]
    fn a_fresh_lease_of_another_replica_may_not_be_taken() {
        assert!(!may_take(&held_by("a", 100, 15), "b", at(110)));
    }

    #[test]
    fn an_expired_lease_of_another_replica_may_be_taken() {
        assert!(may_take(&held_by("a", 100, 15), "b", at(116)));
    }

    #[test]
    fn a_released_lease_may_be_taken() {
        let mut released = held_by("a", 100, 15);
        released.holder_identity = None;
        assert!(may_take(&released, "b", at(101)));
    }
}
