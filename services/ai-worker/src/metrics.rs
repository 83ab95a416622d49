//! The AI worker's Prometheus metrics (SPEC §10).

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Tasks by outcome: succeeded, failed, skipped, retried, requeued.
    pub jobs: IntCounterVec,
    pub job_duration: HistogramVec,
    /// Tokens by provider and direction (`in`, `out`).
    pub tokens: IntCounterVec,
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
        let jobs = IntCounterVec::new(
            Opts::new("foxflow_jobs_total", "Jobs handled, by queue and outcome"),
            &["queue", "outcome"],
        )
        .expect("valid metric");
        let job_duration = HistogramVec::new(
            HistogramOpts::new("foxflow_job_duration_seconds", "Time from claim to final status").buckets(
                vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0],
            ),
            &["queue"],
        )
        .expect("valid metric");
        let tokens = IntCounterVec::new(
            Opts::new(
                "foxflow_ai_tokens_total",
                "Tokens sent to and received from the provider",
            ),
            &["provider", "direction"],
        )
        .expect("valid metric");
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
            Box::new(jobs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(job_duration.clone()),
            Box::new(tokens.clone()),
            Box::new(provider_latency.clone()),
            Box::new(provider_errors.clone()),
            Box::new(validation.clone()),
        ] {
            registry.register(c).expect("metrics registered once");
        }
        Metrics {
            registry,
            jobs,
            job_duration,
            tokens,
            provider_latency,
            provider_errors,
            validation,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn job(&self, outcome: &str) {
        self.jobs.with_label_values(&["ai_generation", outcome]).inc();
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
