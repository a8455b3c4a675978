//! End-to-end flow control for the throughput scenarios, inside the load generator.
//!
//! Publishers that write as fast as the broker accepts would only fill the broker's queues (a
//! PUBACK says the broker took the message, not that the subscriber got it) and measure who
//! buffers more, or who drops first. Instead, publishers stop while more than `window`
//! deliveries are outstanding (published but not yet seen by the subscribers), so the measured
//! rate is the rate the broker sustains end to end. If deliveries stop for [`STALL`] while
//! messages are outstanding, the broker is assumed to have dropped them: they are written off
//! (and show up as loss), so publishing resumes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How long without any delivery before outstanding messages are written off as dropped.
pub const STALL: Duration = Duration::from_millis(250);
/// Poll interval while waiting for room.
const POLL: Duration = Duration::from_millis(1);

/// Shared counters between publishers and subscribers of one scenario.
#[derive(Debug)]
pub struct FlowWindow {
    expected: AtomicU64,
    delivered: AtomicU64,
    written_off: AtomicU64,
    stalls: AtomicU64,
    window: u64,
}

impl FlowWindow {
    /// A window allowing `window` outstanding deliveries.
    pub fn new(window: u64) -> FlowWindow {
        FlowWindow {
            expected: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            written_off: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            window,
        }
    }

    /// Records that a publisher sent messages that should produce `deliveries` deliveries.
    pub fn add_expected(&self, deliveries: u64) {
        self.expected.fetch_add(deliveries, Ordering::Relaxed);
    }

    /// Records `deliveries` messages received by subscribers.
    pub fn add_delivered(&self, deliveries: u64) {
        self.delivered.fetch_add(deliveries, Ordering::Relaxed);
    }

    /// Deliveries expected so far.
    pub fn expected(&self) -> u64 {
        self.expected.load(Ordering::Relaxed)
    }

    /// Deliveries seen so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Deliveries written off as dropped by the broker.
    pub fn written_off(&self) -> u64 {
        self.written_off.load(Ordering::Relaxed)
    }

    /// How many times deliveries stalled for [`STALL`] with messages outstanding.
    pub fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    /// A remark for the report if deliveries stalled, `None` otherwise.
    pub fn stall_note(&self) -> Option<String> {
        match self.stalls() {
            0 => None,
            stalls => Some(format!(
                "deliveries stalled {stalls} time(s) for {} ms with messages outstanding; \
                 publishing resumed past {} outstanding deliveries",
                STALL.as_millis(),
                self.written_off()
            )),
        }
    }

    /// Whether a publisher may send now (fewer than `window` deliveries outstanding). Does not
    /// write anything off; use [`wait_for_room`](Self::wait_for_room) to wait.
    pub fn has_room(&self) -> bool {
        self.outstanding() < self.window
    }

    fn outstanding(&self) -> u64 {
        self.expected()
            .saturating_sub(self.delivered())
            .saturating_sub(self.written_off())
    }

    /// Waits until fewer than `window` deliveries are outstanding, or until `deadline`.
    /// Returns `false` if the deadline passed.
    pub async fn wait_for_room(&self, deadline: Instant) -> bool {
        let mut last_delivered = self.delivered();
        let mut last_progress = Instant::now();
        loop {
            if self.outstanding() < self.window {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let delivered = self.delivered();
            if delivered != last_delivered {
                last_delivered = delivered;
                last_progress = now;
            } else if now - last_progress >= STALL {
                // Nothing arrived for a while: whatever is still outstanding was dropped.
                let outstanding = self.outstanding();
                self.written_off.fetch_add(outstanding, Ordering::Relaxed);
                self.stalls.fetch_add(1, Ordering::Relaxed);
                last_progress = now;
                continue;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// After publishing stopped: waits until every expected delivery arrived, deliveries stall
    /// for [`STALL`] × 4, or `deadline`.
    pub async fn drain(&self, deadline: Instant) {
        let mut last_delivered = self.delivered();
        let mut last_progress = Instant::now();
        loop {
            let delivered = self.delivered();
            let now = Instant::now();
            if delivered >= self.expected() || now >= deadline {
                return;
            }
            if delivered != last_delivered {
                last_delivered = delivered;
                last_progress = now;
            } else if now - last_progress >= STALL * 16 {
                return;
            }
            tokio::time::sleep(POLL * 5).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_when_below_window_and_write_off_after_stall() {
        let flow = FlowWindow::new(10);
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(flow.wait_for_room(deadline).await);
        flow.add_expected(15);
        flow.add_delivered(5);
        // 10 outstanding, nothing delivered: written off after the stall.
        let started = Instant::now();
        assert!(flow.wait_for_room(deadline).await);
        assert!(started.elapsed() >= STALL);
        assert_eq!(flow.written_off(), 10);
        assert_eq!(flow.stalls(), 1);
        let past = Instant::now();
        flow.add_expected(20);
        assert!(!flow.wait_for_room(past).await);
    }
}
