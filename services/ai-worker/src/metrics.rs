//! The AI worker's Prometheus metrics (docs/spec.md §10, `docs/metrics.md`). Jobs,
//! job durations and tokens go to the process's shared families
//! (`foxflow_telemetry::metrics`); the provider and validation families are
//! this worker's own, exposed first on its `/metrics`.

use foxflow_telemetry::metrics as shared;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::time::Duration;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub provider_latency: HistogramVec,
    pub provider_errors: IntCounterVec,
    /// Answers by validation outcome: valid, repaired, rejected.
    pub validation: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let provider_latency = HistogramVec::new(
            HistogramOpts::new(
                "foxflow_ai_provider_latency_seconds",
                "Duration of one provider call",
            )
            .buckets(vec![0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
            &["provider"],
        )
        .expect("valid metric");
        let provider_errors = IntCounterVec::new(
            Opts::new(
                "foxflow_ai_provider_errors_total",
                "Failed provider calls, by kind of error",
            ),
            &["provider", "error"],
        )
        .expect("valid metric");
        let validation = IntCounterVec::new(
            Opts::new(
                "foxflow_ai_validation_total",
                "Provider answers by validation outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for c in [
            Box::new(provider_latency.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(provider_errors.clone()),
            Box::new(validation.clone()),
        ] {
            registry.register(c).expect("metrics registered once");
        }
        for outcome in ["valid", "repaired", "rejected"] {
            validation.with_label_values(&[outcome]);
        }
        Metrics {
            registry,
            provider_latency,
            provider_errors,
            validation,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `foxflow_jobs_total{queue="ai_generation", outcome}`: succeeded,
    /// failed, skipped; retried, parked, requeued per attempt.
    pub fn job(&self, outcome: &str) {
        shared::jobs()
            .with_label_values(&["ai_generation", outcome])
            .inc();
    }

    pub fn job_duration(&self, d: Duration) {
        shared::job_duration()
            .with_label_values(&["ai_generation"])
            .observe(d.as_secs_f64());
    }

    pub fn tokens(&self, provider: &str, input: Option<i32>, output: Option<i32>) {
        let n = |t: Option<i32>| t.and_then(|t| u64::try_from(t).ok()).unwrap_or(0);
        if input.is_some() || output.is_some() {
            shared::add_ai_tokens(provider, n(input), n(output));
        }
    }

    /// This worker's own families, in the text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
