//! A pool's Prometheus series (docs/metrics.md, alerts `FoxflowDbPoolSaturated` and
//! `FoxflowDbPoolWaits`):
//!
//! - `foxflow_db_pool_connections{state="in_use"|"idle"}`
//! - `foxflow_db_pool_max_connections` (`DB_POOL_SIZE`)
//! - `foxflow_db_pool_wait_seconds`, the time [`crate::DbPool::get`] took
//!
//! Each pool keeps its own registry, rendered by the service that owns the
//! pool on its `/metrics`, rather than adding to the process-wide one: tests
//! run several services, each with its pool, in one process, and a shared
//! family would mix their numbers (or keep only the first pool's).

use prometheus::{Encoder, Histogram, HistogramOpts, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use std::time::Duration;

/// From half a millisecond (an idle connection handed over) to the 5 s wait
/// timeout, past which the checkout fails (503, or a retried job).
const WAIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub(crate) struct PoolMetrics {
    registry: Registry,
    connections: IntGaugeVec,
    max: IntGauge,
    wait: Histogram,
}

fn valid<T>(r: prometheus::Result<T>) -> T {
    r.expect("metric definitions are static and valid")
}

impl PoolMetrics {
    pub(crate) fn new() -> PoolMetrics {
        let registry = Registry::new();
        let connections = valid(IntGaugeVec::new(
            Opts::new(
                "foxflow_db_pool_connections",
                "Connections of this process's database pool, checked out (in_use) or open and idle",
            ),
            &["state"],
        ));
        let max = valid(IntGauge::new(
            "foxflow_db_pool_max_connections",
            "The pool's ceiling (DB_POOL_SIZE)",
        ));
        let wait = valid(Histogram::with_opts(
            HistogramOpts::new(
                "foxflow_db_pool_wait_seconds",
                "Time to check a connection out of the pool, opening one included; failed checkouts too",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
        ));
        valid(registry.register(Box::new(connections.clone())));
        valid(registry.register(Box::new(max.clone())));
        valid(registry.register(Box::new(wait.clone())));
        PoolMetrics {
            registry,
            connections,
            max,
            wait,
        }
    }

    pub(crate) fn observe_wait(&self, waited: Duration) {
        self.wait.observe(waited.as_secs_f64());
    }

    /// The series in the Prometheus text format, the gauges read from
    /// `status` at this moment.
    pub(crate) fn render(&self, status: deadpool::Status) -> String {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.connections
            .with_label_values(&["in_use"])
            .set(gauge(status.size.saturating_sub(status.available)));
        self.connections
            .with_label_values(&["idle"])
            .set(gauge(status.available));
        self.max.set(gauge(status.max_size));
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode the pool's metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series() {
        let m = PoolMetrics::new();
        m.observe_wait(Duration::from_millis(3));
        let text = m.render(deadpool::Status {
            max_size: 8,
            size: 3,
            available: 1,
            waiting: 0,
        });
        for line in [
            "foxflow_db_pool_connections{state=\"in_use\"} 2",
            "foxflow_db_pool_connections{state=\"idle\"} 1",
            "foxflow_db_pool_max_connections 8",
            "foxflow_db_pool_wait_seconds_count 1",
            "foxflow_db_pool_wait_seconds_bucket{le=\"0.005\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
