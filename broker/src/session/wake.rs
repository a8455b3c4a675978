//! How publishers, the reload enforcer and the keep-alive sweeper wake the connection that owns
//! a session, without that connection holding a wait future.
//!
//! A `tokio::sync::Notify` would do the job, but waiting on it means keeping a `Notified`
//! future (about 80 bytes) in every connection task for its whole life. This slot stores just
//! the owner's `Waker`; the connection registers it from its hand-written poll loop. Ownership
//! matters because a session outlives its connections: after a takeover the old connection may
//! still poll once more, and it must neither steal the new owner's registration nor sleep
//! forever — it is told it was superseded.

use std::task::{Context, Waker};

use parking_lot::Mutex;

/// The waker of the connection that owns a session, and whether a wake-up is pending for it.
#[derive(Debug, Default)]
pub struct ConnectionWaker {
    slot: Mutex<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    /// The newest connection generation that registered.
    generation: u64,
    /// Its waker, until a wake-up consumes it.
    waker: Option<Waker>,
    /// A wake-up arrived that the owner has not yet seen.
    pending: bool,
}

/// What [`ConnectionWaker::poll`] tells the connection of a given generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeState {
    /// Something happened since the last poll: look at the queue and the kick flag.
    Woken,
    /// Nothing yet; the task will be woken.
    Waiting,
    /// A newer connection owns the session; this one must close.
    Superseded,
}

impl ConnectionWaker {
    /// Wakes the owning connection, or leaves the wake-up pending until it next polls.
    pub fn wake(&self) {
        let waker = {
            let mut slot = self.slot.lock();
            slot.pending = true;
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Consumes a pending wake-up for the connection of `generation`, or registers its waker.
    pub fn poll(&self, generation: u64, cx: &mut Context<'_>) -> WakeState {
        let mut slot = self.slot.lock();
        if generation < slot.generation {
            return WakeState::Superseded;
        }
        if generation > slot.generation {
            // A new owner: the previous one's waker is of no use any more.
            slot.generation = generation;
            slot.waker = None;
        }
        if slot.pending {
            slot.pending = false;
            return WakeState::Woken;
        }
        match &mut slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            other => *other = Some(cx.waker().clone()),
        }
        WakeState::Waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter::default());
        (counter.clone(), Waker::from(counter))
    }

    #[test]
    fn a_wake_before_the_first_poll_is_not_lost() {
        let slot = ConnectionWaker::default();
        let (_, waker) = counter();
        slot.wake();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(slot.poll(1, &mut cx), WakeState::Woken);
        assert_eq!(slot.poll(1, &mut cx), WakeState::Waiting);
    }

    #[test]
    fn a_registered_owner_is_woken_once() {
        let slot = ConnectionWaker::default();
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(slot.poll(1, &mut cx), WakeState::Waiting);
        slot.wake();
        slot.wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(slot.poll(1, &mut cx), WakeState::Woken);
    }

    #[test]
    fn an_old_owner_cannot_take_the_registration_back() {
        let slot = ConnectionWaker::default();
        let (old_count, old_waker) = counter();
        let (new_count, new_waker) = counter();
        assert_eq!(
            slot.poll(1, &mut Context::from_waker(&old_waker)),
            WakeState::Waiting
        );
        assert_eq!(
            slot.poll(2, &mut Context::from_waker(&new_waker)),
            WakeState::Waiting
        );
        assert_eq!(
            slot.poll(1, &mut Context::from_waker(&old_waker)),
            WakeState::Superseded
        );
        slot.wake();
        assert_eq!(new_count.0.load(Ordering::SeqCst), 1);
        assert_eq!(old_count.0.load(Ordering::SeqCst), 0);
    }
}
