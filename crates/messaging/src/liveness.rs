//! Whether a consumer loop still turns: the worker's liveness probe.
//!
//! The loop beats once a second (its connection watchdog) and while it waits to reconnect; a
//! loop that stops beating is stuck — a blocked runtime thread, a future that never wakes — and
//! no broker or database outage explains it (those are readiness, and the loop keeps beating
//! through them). `/healthz` answers 503 once the loop has been silent for [`MAX_SILENCE`], so
//! Kubernetes restarts the pod; the jobs it held are taken over when their lease expires.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a loop may go without a beat before it counts as stuck: thirty of its one-second
/// ticks missed, far past any scheduling hiccup.
pub const MAX_SILENCE: Duration = Duration::from_secs(30);

/// The loop's last beat, shared with the probe server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LoopBeat {
    origin: Instant,
    /// Milliseconds from `origin` to the last beat.
    last: Arc<AtomicU64>,
}

impl Default for LoopBeat {
    fn default() -> Self {
        LoopBeat {
            origin: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl LoopBeat {
    pub fn beat(&self) {
        self.last
            .store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Time since the last beat (since creation when there was none).
    pub fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }

    /// True while the loop has beaten within `max`.
    pub fn is_alive(&self, max: Duration) -> bool {
        self.silent_for() <= max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_is_alive_until_it_stops_beating() {
        let beat = LoopBeat::default();
        assert!(beat.is_alive(Duration::from_millis(50)));
        std::thread::sleep(Duration::from_millis(80));
        assert!(
            !beat.is_alive(Duration::from_millis(50)),
            "silent for {:?}",
            beat.silent_for()
        );
        beat.clone().beat();
        assert!(
            beat.is_alive(Duration::from_millis(50)),
            "a clone beats for the original"
        );
    }
}
