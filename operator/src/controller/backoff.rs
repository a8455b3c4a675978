//! Per-object exponential backoff for failed reconciliations.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

/// The first retry delay after a failure.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest retry delay, reached after about nine consecutive failures.
const MAX_RETRY: Duration = Duration::from_secs(300);

/// Counts consecutive failures per object (`namespace/name`): each doubles the retry delay, up
/// to five minutes; a success starts over.
#[derive(Debug, Default)]
pub struct ErrorBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl ErrorBackoff {
    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub fn next_delay(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock();
        let count = failures.entry(key.to_string()).or_insert(0);
        let delay = FIRST_RETRY
            .saturating_mul(2u32.saturating_pow(*count))
            .min(MAX_RETRY);
        *count = count.saturating_add(1);
        delay
    }

    /// Records a success of `key`.
    pub fn reset(&self, key: &str) {
        self.failures.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_consecutive_failure() {
        let backoff = ErrorBackoff::default();
        let delays: Vec<u64> = (0..4)
            .map(|_| backoff.next_delay("ns/a").as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8]);
    }

    #[test]
    fn delays_are_capped() {
        let backoff = ErrorBackoff::default();
        let last = (0..40).map(|_| backoff.next_delay("ns/a")).last();
        assert_eq!(last, Some(MAX_RETRY));
    }

    #[test]
    fn a_success_starts_over() {
        let backoff = ErrorBackoff::default();
        backoff.next_delay("ns/a");
        backoff.next_delay("ns/a");
        backoff.reset("ns/a");
        assert_eq!(backoff.next_delay("ns/a"), FIRST_RETRY);
    }

    #[test]
    fn objects_back_off_independently() {
        let backoff = ErrorBackoff::default();
        backoff.next_delay("ns/a");
        assert_eq!(backoff.next_delay("ns/b"), FIRST_RETRY);
    }
}
