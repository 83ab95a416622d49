#![doc = include_str!("../README.md")]

mod metrics;
mod store;

pub use metrics::{metrics_text, register_metrics};

use foxflow_config::Rate;
use foxflow_messaging::StartGate;
use foxflow_storage::{DbPool, StorageError};
use futures::future::BoxFuture;
use governor::Jitter;
use metrics::KeyMetrics;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What `try_acquire` answers when the database cannot be asked: fail
/// closed, try again in a second.
const UNAVAILABLE_RETRY: Duration = Duration::from_secs(1);
/// Backoff between attempts while the database is unreachable.
const ERROR_BACKOFF_MIN: Duration = Duration::from_millis(100);
const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A waiter looks again at least this often, so an operator who resets a
/// key (`DELETE FROM rate_limits WHERE key = …`) is seen within this delay.
const MAX_POLL: Duration = Duration::from_secs(30);
/// The shortest sleep between two polls: a waiter never spins.
const MIN_POLL: Duration = Duration::from_millis(1);
/// A longer `Retry-After` is taken for a mistake and capped: the retried
/// call meets the provider again and pauses again if it still refuses.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// Why a unit was not granted.
#[derive(Debug)]
pub enum Denied {
    /// Over the budget, or the key is paused: one unit will be free in this long.
    Wait(Duration),
    /// The shared state could not be read or written.
    Unavailable(StorageError),
}

/// `Retry-After` is whole seconds; rounding down would invite a retry that
/// is refused again.
pub fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

/// The GCRA's two constants, in microseconds (PostgreSQL's resolution).
#[derive(Debug, Clone, Copy)]
struct Gcra {
    /// T: one unit is earned back every T.
    interval_us: i64,
    /// τ = T·(burst − 1): how far ahead of the clock `tat` may run.
    tolerance_us: i64,
    burst: i64,
}

impl Gcra {
    fn of(rate: Rate) -> Option<Gcra> {
        let Rate::PerPeriod { n, .. } = rate else {
            return None;
        };
        let interval = rate.interval()?;
        // A rate finer than a microsecond is, in practice, no limit at all.
        let interval_us = i64::try_from(interval.as_micros()).unwrap_or(i64::MAX).max(1);
        let burst = i64::from(n.max(1));
        Some(Gcra {
            interval_us,
            tolerance_us: interval_us.saturating_mul(burst - 1),
            burst,
        })
    }

    /// Units that could be granted at once, given `tat − t`.
    fn budget(self, tat_ahead_us: i64) -> i64 {
        let free = self.tolerance_us - tat_ahead_us.max(0);
        if free < 0 {
            0
        } else {
            (free / self.interval_us + 1).min(self.burst)
        }
    }
}

/// A cluster-wide limiter for one key. Cheap to clone; clones share the
/// in-process state (the queue of local waiters, a local pause).
#[derive(Clone)]
pub struct ClusterLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    pool: DbPool,
    key: String,
    rate: Rate,
    gcra: Option<Gcra>,
    metrics: KeyMetrics,
    /// In-process smoothing: this process's waiters on the key line up here,
    /// first come first served, and only the head polls the database, so
    /// prefetching more deliveries does not multiply the polling.
    turn: tokio::sync::Mutex<()>,
    /// The end of a pause this process asked for but could not record in the
    /// database: honoured here at least. (A recorded pause lives in the row.)
    local_pause: Mutex<Option<Instant>>,
}

impl ClusterLimiter {
    /// `key` e.g. `queue:imports`, `queue:ai_generation`, `upload:<user-id>`.
    /// Burst = `n` of the rate, as with governor's `Quota`. Metrics are
    /// labelled with the key; see [`ClusterLimiter::with_metric_label`].
    pub fn new(pool: DbPool, key: impl Into<String>, rate: Rate) -> Self {
        let key = key.into();
        let label = key.clone();
        Self::build(pool, key, rate, &label)
    }

    /// Reports this limiter's metrics under `label` instead of its key, so
    /// per-user keys (`upload:<id>`) share one series (`upload`) instead of
    /// growing one per user. A builder: call it right after `new`, before
    /// cloning (clones made earlier keep their own local state).
    pub fn with_metric_label(self, label: &str) -> Self {
        let i = &self.inner;
        Self::build(i.pool.clone(), i.key.clone(), i.rate, label)
    }

    fn build(pool: DbPool, key: String, rate: Rate, label: &str) -> Self {
        let gcra = Gcra::of(rate);
        ClusterLimiter {
            inner: Arc::new(Inner {
                pool,
                key,
                rate,
                gcra,
                metrics: KeyMetrics::new(label, gcra.is_some()),
                turn: tokio::sync::Mutex::new(()),
                local_pause: Mutex::new(None),
            }),
        }
    }

    pub fn key(&self) -> &str {
        &self.inner.key
    }

    pub fn rate(&self) -> Rate {
        self.inner.rate
    }

    /// Takes one unit if allowed now; `Err(wait)` says how long until one
    /// is. `Rate::Off` is always `Ok` unless the key is paused. If the
    /// database cannot be asked this fails closed with a one-second wait;
    /// use [`ClusterLimiter::check`] to tell that case apart.
    pub async fn try_acquire(&self) -> Result<(), Duration> {
        match self.check().await {
            Ok(()) => Ok(()),
            Err(Denied::Wait(w)) => Err(w),
            Err(Denied::Unavailable(e)) => {
                tracing::warn!(key = %self.inner.key, error = %e, "rate limit state unavailable; refusing for now");
                Err(UNAVAILABLE_RETRY)
            }
        }
    }

    /// Like [`ClusterLimiter::try_acquire`], but says when the refusal is
    /// the database's fault (the API answers 503 then, not 429).
    pub async fn check(&self) -> Result<(), Denied> {
        let result = self.attempt().await;
        if let Err(Denied::Wait(_)) = &result {
            self.inner.metrics.waits.inc();
        }
        result
    }

    /// Waits until one unit is taken: polls the shared state when the last
    /// answer says one may be free, with jitter so replicas do not poll in
    /// step, and with capped backoff while the database is unreachable (fail
    /// closed: nothing starts that the cluster has not granted).
    pub async fn acquire(&self) {
        let inner = &self.inner;
        let _turn = inner.turn.lock().await;
        let started = Instant::now();
        let mut waited = false;
        let mut backoff = ERROR_BACKOFF_MIN;
        let mut failing = false;
        loop {
            let delay = match self.attempt().await {
                Ok(()) => break,
                Err(Denied::Wait(w)) => {
                    if failing {
                        tracing::info!(key = %inner.key, "rate limit state reachable again");
                        failing = false;
                    }
                    backoff = ERROR_BACKOFF_MIN;
                    if !waited {
                        waited = true;
                        inner.metrics.waits.inc();
                        tracing::debug!(key = %inner.key, wait_ms = w.as_millis() as u64, "waiting for the shared budget");
                    }
                    jittered(w.clamp(MIN_POLL, MAX_POLL))
                }
                Err(Denied::Unavailable(e)) => {
                    if !failing {
                        failing = true;
                        tracing::warn!(key = %inner.key, error = %e, "rate limit state unavailable; waiting (fail closed)");
                    }
                    waited = true;
                    let d = jittered(backoff);
                    backoff = (backoff * 2).min(ERROR_BACKOFF_MAX);
                    d
                }
            };
            tokio::time::sleep(delay).await;
        }
        if waited {
            inner.metrics.wait_seconds.inc_by(started.elapsed().as_secs_f64());
        }
    }

    /// Pauses the whole budget of this key, across replicas, for `d` (an
    /// upstream 429): nothing is granted anywhere before it ends, and starts
    /// then resume at the steady rate, without a burst. Pauses never shorten
    /// one another. If the database cannot record it, this process still
    /// honours it.
    pub async fn pause_for(&self, d: Duration) {
        let inner = &self.inner;
        let d = d.min(MAX_PAUSE);
        if d.is_zero() {
            return;
        }
        inner.metrics.pauses.inc();
        inner.metrics.set_budget(0);
        let until = Instant::now() + d;
        let pause_us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let tolerance_us = inner.gcra.map_or(0, |g| g.tolerance_us);
        let mut backoff = ERROR_BACKOFF_MIN;
        for attempt in 1..=3 {
            match store::pause(&inner.pool, &inner.key, pause_us, tolerance_us).await {
                Ok(()) => {
                    tracing::info!(key = %inner.key, pause_ms = d.as_millis() as u64, "budget paused across replicas");
                    return;
                }
                Err(e) if e.is_transient() && attempt < 3 => {
                    tokio::time::sleep(jittered(backoff)).await;
                    backoff *= 4;
                }
                Err(e) => {
                    inner.metrics.unavailable.inc();
                    tracing::error!(key = %inner.key, error = %e, "cannot record the pause; only this process honours it");
                    let mut local = inner.local_pause.lock().unwrap_or_else(|p| p.into_inner());
                    *local = Some(local.map_or(until, |u| u.max(until)));
                    return;
                }
            }
        }
    }

    /// Registers the rate-limiter metrics (all keys of this process) in a
    /// service's registry; see [`register_metrics`].
    pub fn register(&self, registry: &prometheus::Registry) -> prometheus::Result<()> {
        register_metrics(registry)
    }

    /// One attempt, without counting a wait.
    async fn attempt(&self) -> Result<(), Denied> {
        let inner = &self.inner;
        if let Some(left) = self.local_pause_left() {
            return Err(Denied::Wait(left));
        }
        let Some(gcra) = inner.gcra else {
            return match store::paused(&inner.pool, &inner.key).await {
                Ok(Some(us)) if us > 0 => Err(Denied::Wait(micros(us))),
                Ok(_) => {
                    inner.metrics.acquired.inc();
                    Ok(())
                }
                // No limit to enforce: an unreadable pause is not worth
                // stopping the queue for.
                Err(e) => {
                    inner.metrics.unavailable.inc();
                    tracing::debug!(key = %inner.key, error = %e, "cannot read the pause of an unlimited key; going ahead");
                    inner.metrics.acquired.inc();
                    Ok(())
                }
            };
        };
        let taken = match store::take(&inner.pool, &inner.key, gcra.interval_us, gcra.tolerance_us).await {
            Ok(t) => t,
            Err(e) => {
                inner.metrics.unavailable.inc();
                return Err(Denied::Unavailable(e));
            }
        };
        let paused_us = taken.paused_us.unwrap_or(0);
        if taken.granted {
            inner.metrics.acquired.inc();
            let budget = taken.tat_ahead_us.map_or(0, |a| gcra.budget(a));
            inner.metrics.set_budget(if paused_us > 0 { 0 } else { budget });
            return Ok(());
        }
        inner.metrics.set_budget(0);
        let wait_us = match taken.tat_ahead_us {
            Some(ahead) => (ahead - gcra.tolerance_us).max(paused_us),
            // The row was inserted concurrently, after our snapshot: look again soon.
            None => paused_us.max(10_000),
        };
        Err(Denied::Wait(micros(wait_us).max(MIN_POLL)))
    }

    fn local_pause_left(&self) -> Option<Duration> {
        let mut local = self.inner.local_pause.lock().unwrap_or_else(|p| p.into_inner());
        let until = (*local)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            *local = None;
            None
        } else {
            Some(left)
        }
    }
}

impl std::fmt::Debug for ClusterLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLimiter")
            .field("key", &self.inner.key)
            .field("rate", &self.inner.rate.to_string())
            .finish_non_exhaustive()
    }
}

/// The consumer loop calls this before each delivery's handler; the
/// delivery stays unacknowledged (within the prefetch) while it waits, and
/// the wait is dropped, not finished, when the worker shuts down.
impl StartGate for ClusterLimiter {
    fn acquire(&self) -> BoxFuture<'static, ()> {
        let this = self.clone();
        Box::pin(async move { ClusterLimiter::acquire(&this).await })
    }
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// `d` plus up to a tenth of it (at most 250 ms) of governor's jitter, so
/// waiters on different replicas spread their polls.
fn jittered(d: Duration) -> Duration {
    let spread = (d / 10).clamp(Duration::from_millis(1), Duration::from_millis(250));
    Jitter::up_to(spread) + d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcra(rate: &str) -> Gcra {
        Gcra::of(rate.parse().unwrap()).unwrap()
    }

    #[test]
    fn constants_follow_governor() {
        let g = gcra("30/m");
        assert_eq!(g.interval_us, 2_000_000);
        assert_eq!(g.tolerance_us, 58_000_000);
        assert_eq!(g.burst, 30);
        assert!(Gcra::of(Rate::Off).is_none());
    }

    #[test]
    fn budget_from_tat() {
        let g = gcra("5/h");
        // Idle (tat in the past): the whole burst.
        assert_eq!(g.budget(-1_000_000), 5);
        // After one unit: tat = t + T.
        assert_eq!(g.budget(g.interval_us), 4);
        // After five: tat = t + 5T > τ.
        assert_eq!(g.budget(5 * g.interval_us), 0);
        assert_eq!(g.budget(g.tolerance_us), 1);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(2000)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(2001)), 3);
        assert_eq!(ceil_secs(Duration::ZERO), 1);
    }

    #[test]
    fn jitter_stays_bounded() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(2));
            assert!(
                j >= Duration::from_secs(2) && j <= Duration::from_millis(2200),
                "{j:?}"
            );
        }
    }
}
