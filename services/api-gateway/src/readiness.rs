//! `/readyz`'s answer about the database, sampled in the background.
//!
//! A probe that checked a connection out of the pool on every call would wait behind the uploads
//! holding it — a busy API would look down and be taken out of rotation just when it is needed —
//! and every probe would take a connection from an upload. Instead one task checks the database
//! every [`EVERY`] through the pool, and the probe reads the time of its last success: the
//! database counts as down only when no check has succeeded for [`STALE_AFTER`], longer than a
//! checkout may wait behind busy uploads (5 s).

use foxflow_storage::{DbPool, pool};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const EVERY: Duration = Duration::from_secs(2);
const STALE_AFTER: Duration = Duration::from_secs(15);

/// The last time the database answered. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DbReadiness {
    origin: Instant,
    /// Milliseconds from `origin` to the last success, plus one (0: never).
    last_ok: Arc<AtomicU64>,
}

impl Default for DbReadiness {
    fn default() -> Self {
        DbReadiness {
            origin: Instant::now(),
            last_ok: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl DbReadiness {
    fn answered(&self) {
        let now = self.origin.elapsed().as_millis() as u64 + 1;
        self.last_ok.store(now, Ordering::Relaxed);
    }

    /// True when the database answered within [`STALE_AFTER`].
    pub fn is_up(&self) -> bool {
        match self.last_ok.load(Ordering::Relaxed) {
            0 => false,
            at => {
                self.origin
                    .elapsed()
                    .saturating_sub(Duration::from_millis(at - 1))
                    <= STALE_AFTER
            }
        }
    }

    /// One check; the gateway runs one before it listens, so its first
    /// `/readyz` already knows.
    pub async fn check(&self, pool: &DbPool) {
        let checked = async {
            let mut conn = pool::conn(pool).await?;
            use diesel_async::RunQueryDsl;
            diesel::sql_query("SELECT 1").execute(&mut conn).await?;
            Ok::<_, foxflow_storage::StorageError>(())
        }
        .await;
        match checked {
            Ok(()) => self.answered(),
            Err(e) => tracing::debug!(error = %e, "readiness: the database did not answer"),
        }
    }

    /// Checks the database every [`EVERY`] until shutdown.
    pub async fn run(self, pool: DbPool, mut shutdown: watch::Receiver<bool>) {
        loop {
            self.check(&pool).await;
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_checked_is_not_up_and_a_fresh_success_is() {
        let r = DbReadiness::default();
        assert!(!r.is_up());
        r.answered();
        assert!(r.clone().is_up());
    }
}
