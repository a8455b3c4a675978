//! How often to ask brokers whether they run a newly rendered configuration.
//!
//! No watch event says when a broker has loaded the configuration the operator rendered: the
//! kubelet refreshes the volume, the broker reloads, and only the broker's `/revision` tells.
//! So a cluster whose brokers are behind is reconciled again soon, and then less and less
//! often: a broker that refuses a configuration for good (its log says why) must not keep its
//! cluster reconciled every two seconds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The first re-check after a revision is rendered, and the shortest.
const FIRST_CHECK: Duration = Duration::from_secs(2);
/// The longest wait between checks of a cluster still behind.
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// Since when each cluster (`namespace/name`) has had brokers behind its rendered revision.
#[derive(Debug, Default)]
pub struct PropagationChecks {
    behind_since: Mutex<HashMap<String, Behind>>,
}

/// A cluster with brokers behind.
#[derive(Debug)]
struct Behind {
    /// The rendered revision they have not loaded yet.
    revision: String,
    /// When that was first seen.
    since: Instant,
}

impl PropagationChecks {
    /// Cluster `key` has brokers behind `revision`: how long until it is looked at again. As
    /// long as it has already waited for this revision (so checks come after 2, 4, 8, … s,
    /// however many other events reconcile it meanwhile), between 2 s and a minute.
    pub fn next_check(&self, key: &str, revision: &str) -> Duration {
        self.next_check_at(key, revision, Instant::now())
    }

    fn next_check_at(&self, key: &str, revision: &str, now: Instant) -> Duration {
        let mut behind = self.behind_since.lock();
        let entry = behind.entry(key.to_string()).or_insert_with(|| Behind {
            revision: revision.to_string(),
            since: now,
        });
        if entry.revision != revision {
            entry.revision = revision.to_string();
            entry.since = now;
        }
        now.saturating_duration_since(entry.since)
            .clamp(FIRST_CHECK, LONGEST_WAIT)
    }

    /// Cluster `key` needs no more checks: every broker of it that answers runs the rendered
    /// revision, or the cluster is being deleted.
    pub fn settled(&self, key: &str) {
        self.behind_since.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_slow_down_as_the_wait_grows() {
        let checks = PropagationChecks::default();
        let start = Instant::now();
        let after = |secs| checks.next_check_at("ns/a", "r1", start + Duration::from_secs(secs));
        assert_eq!(after(0), FIRST_CHECK);
        // Other events reconcile the cluster meanwhile: no faster, no slower.
        assert_eq!(after(1), FIRST_CHECK);
        assert_eq!(after(2), FIRST_CHECK);
        assert_eq!(after(4), Duration::from_secs(4));
        assert_eq!(after(8), Duration::from_secs(8));
        assert_eq!(after(600), LONGEST_WAIT);
    }

    #[test]
    fn a_new_revision_or_settling_starts_over() {
        let checks = PropagationChecks::default();
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        checks.next_check_at("ns/a", "r1", at(0));
        assert_eq!(
            checks.next_check_at("ns/a", "r1", at(30)),
            Duration::from_secs(30)
        );
        assert_eq!(checks.next_check_at("ns/a", "r2", at(31)), FIRST_CHECK);
        assert_eq!(checks.next_check_at("ns/b", "r2", at(40)), FIRST_CHECK);
        checks.settled("ns/a");
        assert_eq!(checks.next_check_at("ns/a", "r2", at(50)), FIRST_CHECK);
    }
}
