//! The Prometheus families of docs/spec.md §10, in one registry per process, so that
//! every crate (the consumer loop, the AI client) adds to the same `/metrics`
//! without passing handles around; crates with their own collectors (the rate
//! limiter's `foxflow_rate_limiter_*`) [`register`] them here. `docs/metrics.md`
//! describes each family and the queries built on them.
//!
//! Families are registered on first use of [`registry`] or any accessor;
//! label values known in advance are created at zero so that `rate()` has a
//! baseline and dashboards show the series before the first event.

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::LazyLock;

/// Request latencies: 1 ms to 30 s, fine enough around the upload target
/// (25 ms p99) for `histogram_quantile` to be meaningful.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Job durations: 100 ms to the 2000 s hard limit.
const JOB_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 2400.0,
];
/// Outcomes of an import job (its final status) pre-created at zero.
const IMPORT_OUTCOMES: &[&str] = &["success", "partial", "error"];
const QUEUES: &[&str] = &["imports", "ai_generation"];
const MESSAGE_OUTCOMES: &[&str] = &["acked", "retried", "parked", "requeued"];
const ROW_OUTCOMES: &[&str] = &["created", "updated", "unchanged", "error"];

struct Families {
    registry: Registry,
    http_duration: HistogramVec,
    jobs: IntCounterVec,
    messages: IntCounterVec,
    job_duration: HistogramVec,
    import_rows: IntCounterVec,
    queue_ready: IntGaugeVec,
    queue_unacked: IntGaugeVec,
    queue_consumers: IntGaugeVec,
    ai_tokens: IntCounterVec,
}

fn valid<T>(r: Result<T, prometheus::Error>) -> T {
    r.expect("metric definitions are static and valid")
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let registry = Registry::new();
    let http_duration = valid(HistogramVec::new(
        HistogramOpts::new(
            "foxflow_http_request_duration_seconds",
            "HTTP request duration, by method, route pattern and status",
        )
        .buckets(HTTP_BUCKETS.to_vec()),
        &["method", "route", "status"],
    ));
    let jobs = valid(IntCounterVec::new(
        Opts::new("foxflow_jobs_total", "Jobs handled, by queue and outcome"),
        &["queue", "outcome"],
    ));
    let messages = valid(IntCounterVec::new(
        Opts::new(
            "foxflow_messages_total",
            "Deliveries settled by the consumer loop, by queue and outcome (acked, retried, parked, requeued, deferred)",
        ),
        &["queue", "outcome"],
    ));
    let job_duration = valid(HistogramVec::new(
        HistogramOpts::new("foxflow_job_duration_seconds", "Time from claim to final status")
            .buckets(JOB_BUCKETS.to_vec()),
        &["queue"],
    ));
    let import_rows = valid(IntCounterVec::new(
        Opts::new("foxflow_import_rows_total", "Imported rows, by outcome"),
        &["outcome"],
    ));
    let queue_ready = valid(IntGaugeVec::new(
        Opts::new(
            "foxflow_queue_messages_ready",
            "Messages ready for delivery, per queue, as sampled by this process (take max() across processes)",
        ),
        &["queue"],
    ));
    let queue_unacked = valid(IntGaugeVec::new(
        Opts::new(
            "foxflow_queue_messages_unacked",
            "Messages delivered to this process and not yet acknowledged, per queue (take sum() across processes)",
        ),
        &["queue"],
    ));
    let queue_consumers = valid(IntGaugeVec::new(
        Opts::new(
            "foxflow_queue_consumers",
            "Consumers attached to the queue, as sampled by this process",
        ),
        &["queue"],
    ));
    // The same family the ai-worker declares (provider, direction `in` or
    // `out`), so either registration renders the same series.
    let ai_tokens = valid(IntCounterVec::new(
        Opts::new(
            "foxflow_ai_tokens_total",
            "Tokens sent to and received from the provider",
        ),
        &["provider", "direction"],
    ));
    for c in [
        Box::new(http_duration.clone()) as Box<dyn Collector>,
        Box::new(jobs.clone()),
        Box::new(messages.clone()),
        Box::new(job_duration.clone()),
        Box::new(import_rows.clone()),
        Box::new(queue_ready.clone()),
        Box::new(queue_unacked.clone()),
        Box::new(queue_consumers.clone()),
        Box::new(ai_tokens.clone()),
    ] {
        valid(registry.register(c));
    }
    for o in IMPORT_OUTCOMES {
        jobs.with_label_values(&["imports", o]);
    }
    job_duration.with_label_values(&["imports"]);
    for q in QUEUES {
        for o in MESSAGE_OUTCOMES {
            messages.with_label_values(&[q, o]);
        }
    }
    for o in ROW_OUTCOMES {
        import_rows.with_label_values(&[o]);
    }
    Families {
        registry,
        http_duration,
        jobs,
        messages,
        job_duration,
        import_rows,
        queue_ready,
        queue_unacked,
        queue_consumers,
        ai_tokens,
    }
});

/// The process's registry. Other crates may register their own collectors
/// here (see [`register`]).
pub fn registry() -> &'static Registry {
    &FAMILIES.registry
}

/// Registers a collector of another crate. Registering the same collector
/// twice (two services started in one test process) is not an error.
pub fn register(collector: Box<dyn Collector>) -> Result<(), prometheus::Error> {
    match FAMILIES.registry.register(collector) {
        Ok(()) | Err(prometheus::Error::AlreadyReg) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Everything registered, in the Prometheus text format (0.0.4).
pub fn render() -> String {
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&FAMILIES.registry.gather(), &mut buf) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// `own` (a service's own exposition) followed by this process's families
/// that `own` does not already declare: a service that keeps a registry of
/// its own still exposes the shared families (queue depth, messages), and a
/// family is never declared twice.
pub fn render_with(own: &str) -> String {
    let declared: std::collections::HashSet<&str> = own
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    let rest: Vec<_> = FAMILIES
        .registry
        .gather()
        .into_iter()
        .filter(|f| !declared.contains(f.name()))
        .collect();
    let mut buf = own.as_bytes().to_vec();
    if !buf.is_empty() && !buf.ends_with(b"\n") {
        buf.push(b'\n');
    }
    if let Err(e) = TextEncoder::new().encode(&rest, &mut buf) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `foxflow_http_request_duration_seconds{method, route, status}`. `route`
/// is the matched pattern (`/api/v1/imports/{id}`), never the raw path, so
/// the label set stays bounded.
pub fn http_request_duration() -> &'static HistogramVec {
    &FAMILIES.http_duration
}

/// `foxflow_jobs_total{queue, outcome}`: `queue` is `imports` or
/// `ai_generation`; `outcome` the job's final status.
pub fn jobs() -> &'static IntCounterVec {
    &FAMILIES.jobs
}

/// `foxflow_messages_total{queue, outcome}`: what the consumer loop did with
/// each delivery; `parked` ones are in the dead queue.
pub fn messages() -> &'static IntCounterVec {
    &FAMILIES.messages
}

/// `foxflow_job_duration_seconds{queue}`.
pub fn job_duration() -> &'static HistogramVec {
    &FAMILIES.job_duration
}

/// `foxflow_import_rows_total{outcome}`: created, updated, unchanged, error.
pub fn import_rows() -> &'static IntCounterVec {
    &FAMILIES.import_rows
}

/// `foxflow_queue_messages_ready{queue}` (full queue name, `fox.imports`).
pub fn queue_ready() -> &'static IntGaugeVec {
    &FAMILIES.queue_ready
}

/// `foxflow_queue_messages_unacked{queue}`: deliveries this process holds.
pub fn queue_unacked() -> &'static IntGaugeVec {
    &FAMILIES.queue_unacked
}

/// `foxflow_queue_consumers{queue}`.
pub fn queue_consumers() -> &'static IntGaugeVec {
    &FAMILIES.queue_consumers
}

/// `foxflow_ai_tokens_total{provider, direction}`.
pub fn ai_tokens() -> &'static IntCounterVec {
    &FAMILIES.ai_tokens
}

/// Adds the tokens one LLM call reported: `input` sent (prompt), `output`
/// received (completion).
pub fn add_ai_tokens(provider: &str, input: u64, output: u64) {
    FAMILIES
        .ai_tokens
        .with_label_values(&[provider, "in"])
        .inc_by(input);
    FAMILIES
        .ai_tokens
        .with_label_values(&[provider, "out"])
        .inc_by(output);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_renders() {
        http_request_duration()
            .with_label_values(&["GET", "/healthz", "200"])
            .observe(0.002);
        queue_ready().with_label_values(&["x.imports"]).set(3);
        queue_unacked().with_label_values(&["x.imports"]).set(1);
        queue_consumers().with_label_values(&["x.imports"]).set(1);
        add_ai_tokens("template", 10, 5);
        let text = render();
        for family in [
            "foxflow_http_request_duration_seconds",
            "foxflow_jobs_total",
            "foxflow_messages_total",
            "foxflow_job_duration_seconds",
            "foxflow_import_rows_total",
            "foxflow_queue_messages_ready",
            "foxflow_queue_messages_unacked",
            "foxflow_queue_consumers",
            "foxflow_ai_tokens_total",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing:\n{text}"
            );
        }
        assert!(text.contains("foxflow_ai_tokens_total{direction=\"in\",provider=\"template\"} 10"));
    }

    #[test]
    fn a_services_own_families_win_and_none_is_declared_twice() {
        let own = "# HELP foxflow_jobs_total Mine.\n# TYPE foxflow_jobs_total counter\nfoxflow_jobs_total{queue=\"ai_generation\",outcome=\"succeeded\"} 2\n";
        let text = render_with(own);
        assert!(text.starts_with(own));
        assert_eq!(text.matches("# TYPE foxflow_jobs_total ").count(), 1);
        assert!(text.contains("# TYPE foxflow_import_rows_total counter"));
        assert_eq!(
            render_with(&render())
                .matches("# TYPE foxflow_jobs_total ")
                .count(),
            1
        );
    }

    #[test]
    fn registering_twice_is_fine() {
        let c = IntCounterVec::new(Opts::new("foxflow_test_twice_total", "t"), &["a"]).unwrap();
        register(Box::new(c.clone())).unwrap();
        register(Box::new(c)).unwrap();
    }
}
