//! Connections whose credential expires: a client admitted by a JSON Web Token may stay only
//! until the token's `exp` (plus the leeway). The broker's once-a-second sweeper asks
//! [`CredentialExpiries::take_due`] which connections to close, so no connection arms a timer
//! of its own and clients admitted by passwords or certificates cost nothing here.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::session::Session;

/// Pending expiries, soonest first.
#[derive(Debug, Default)]
pub struct CredentialExpiries {
    /// `(valid until, session id, connection generation)` → the session. Weak: a session that
    /// ends is not kept alive by an expiry nobody needs any more.
    pending: Mutex<BTreeMap<(u64, u64, u64), Weak<Session>>>,
}

impl CredentialExpiries {
    /// Closes the connection of `generation` on `session` once `valid_until` (Unix seconds)
    /// has passed.
    pub fn schedule(&self, valid_until: u64, session: &Arc<Session>, generation: u64) {
        self.pending.lock().insert(
            (valid_until, session.id, generation),
            Arc::downgrade(session),
        );
    }

    /// Forgets a scheduled expiry: the connection ended first.
    pub fn cancel(&self, valid_until: u64, session: &Session, generation: u64) {
        self.pending
            .lock()
            .remove(&(valid_until, session.id, generation));
    }

    /// Removes and returns the connections whose credential is no longer valid at `now` (Unix
    /// seconds), with their generation.
    pub fn take_due(&self, now: u64) -> Vec<(Arc<Session>, u64)> {
        let mut pending = self.pending.lock();
        // Everything at or before `now` is due: keys from `(now + 1, 0, 0)` on stay.
        let later = pending.split_off(&(now.saturating_add(1), 0, 0));
        let due = std::mem::replace(&mut *pending, later);
        drop(pending);
        due.into_iter()
            .filter_map(|((_, _, generation), session)| Some((session.upgrade()?, generation)))
            .collect()
    }

    /// Number of scheduled expiries.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.pending.lock().len()
    }
}

/// Seconds since the Unix epoch, the clock of token `exp` claims.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: u64) -> Arc<Session> {
        Arc::new(Session::new(id, Arc::from(format!("client-{id}"))))
    }

    #[test]
    fn due_expiries_come_out_once_and_in_order_later_ones_stay() {
        let expiries = CredentialExpiries::default();
        let (a, b, c) = (session(1), session(2), session(3));
        expiries.schedule(100, &b, 7);
        expiries.schedule(90, &a, 1);
        expiries.schedule(101, &c, 2);

        let due: Vec<(u64, u64)> = expiries
            .take_due(100)
            .iter()
            .map(|(session, generation)| (session.id, *generation))
            .collect();

        assert_eq!((due, expiries.len()), (vec![(1, 1), (2, 7)], 1));
        assert!(expiries.take_due(100).is_empty());
    }

    #[test]
    fn a_cancelled_expiry_and_an_ended_session_are_not_returned() {
        let expiries = CredentialExpiries::default();
        let (kept, cancelled) = (session(1), session(2));
        expiries.schedule(10, &kept, 1);
        expiries.schedule(10, &cancelled, 1);
        expiries.cancel(10, &cancelled, 1);
        let ended = session(3);
        expiries.schedule(10, &ended, 1);
        drop(ended);

        let due: Vec<u64> = expiries.take_due(10).iter().map(|(s, _)| s.id).collect();

        assert_eq!((due, expiries.len()), (vec![1], 0));
    }
}
