//! The limiters' Prometheus metrics (docs/spec.md §10: rate-limiter waits).
//!
//! One set of collectors per process, labelled by key, so limiters built per
//! request (the upload throttle) add to the same series instead of losing
//! their counts; a service exposes them by registering them in its registry.

use prometheus::core::Collector;
use prometheus::{
    Counter, CounterVec, Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::LazyLock;

struct Collectors {
    /// Our own registry, for [`metrics_text`].
    registry: Registry,
    waits: IntCounterVec,
    wait_seconds: CounterVec,
    acquired: IntCounterVec,
    budget: IntGaugeVec,
    pauses: IntCounterVec,
    unavailable: IntCounterVec,
}

impl Collectors {
    fn all(&self) -> [Box<dyn Collector>; 6] {
        [
            Box::new(self.waits.clone()),
            Box::new(self.wait_seconds.clone()),
            Box::new(self.acquired.clone()),
            Box::new(self.budget.clone()),
            Box::new(self.pauses.clone()),
            Box::new(self.unavailable.clone()),
        ]
    }
}

static COLLECTORS: LazyLock<Collectors> = LazyLock::new(|| {
    let labels = &["key"];
    let c = Collectors {
        registry: Registry::new(),
        waits: IntCounterVec::new(
            Opts::new(
                "foxflow_rate_limiter_waits_total",
                "Times a caller could not start at once: a gate that had to wait, or a refused try (429)",
            ),
            labels,
        )
        .expect("valid metric"),
        wait_seconds: CounterVec::new(
            Opts::new(
                "foxflow_rate_limiter_wait_seconds_total",
                "Time spent waiting at a gate for the shared budget",
            ),
            labels,
        )
        .expect("valid metric"),
        acquired: IntCounterVec::new(
            Opts::new("foxflow_rate_limiter_acquired_total", "Units taken from the shared budget"),
            labels,
        )
        .expect("valid metric"),
        budget: IntGaugeVec::new(
            Opts::new(
                "foxflow_rate_limiter_budget",
                "Units the shared budget could still grant at once, as this process last saw it (0 while paused)",
            ),
            labels,
        )
        .expect("valid metric"),
        pauses: IntCounterVec::new(
            Opts::new(
                "foxflow_rate_limiter_pauses_total",
                "Pauses of a whole budget asked by this process (upstream 429s)",
            ),
            labels,
        )
        .expect("valid metric"),
        unavailable: IntCounterVec::new(
            Opts::new(
                "foxflow_rate_limiter_unavailable_total",
                "Times the shared state in PostgreSQL could not be read or written",
            ),
            labels,
        )
        .expect("valid metric"),
    };
    for collector in c.all() {
        c.registry
            .register(collector)
            .expect("rate-limiter metrics registered once");
    }
    c
});

/// Registers the rate-limiter metrics in a service's registry. Calling it
/// again with the same registry is harmless.
pub fn register_metrics(registry: &Registry) -> prometheus::Result<()> {
    for collector in COLLECTORS.all() {
        match registry.register(collector) {
            Ok(()) | Err(prometheus::Error::AlreadyReg) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The rate-limiter metrics alone, in the Prometheus text format, for a
/// service that renders its own registry and appends these.
pub fn metrics_text() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&COLLECTORS.registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// One key's handles, resolved once per limiter.
#[derive(Clone)]
pub(crate) struct KeyMetrics {
    pub waits: IntCounter,
    pub wait_seconds: Counter,
    pub acquired: IntCounter,
    /// `None` when the rate is off: there is no budget to report.
    pub budget: Option<IntGauge>,
    pub pauses: IntCounter,
    pub unavailable: IntCounter,
}

impl KeyMetrics {
    pub fn new(label: &str, limited: bool) -> KeyMetrics {
        let c = &*COLLECTORS;
        let l = &[label];
        KeyMetrics {
            waits: c.waits.with_label_values(l),
            wait_seconds: c.wait_seconds.with_label_values(l),
            acquired: c.acquired.with_label_values(l),
            budget: limited.then(|| c.budget.with_label_values(l)),
            pauses: c.pauses.with_label_values(l),
            unavailable: c.unavailable.with_label_values(l),
        }
    }

    pub fn set_budget(&self, units: i64) {
        if let Some(g) = &self.budget {
            g.set(units);
        }
    }
}
