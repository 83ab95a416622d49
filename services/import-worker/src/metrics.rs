//! The import worker's Prometheus metrics (docs/spec.md §10): handles on the
//! process-wide families of `foxflow_telemetry::metrics`, whose names are
//! `foxflow_jobs_total{queue,outcome}`, `foxflow_import_rows_total{outcome}`
//! and `foxflow_job_duration_seconds{queue}`.

use foxflow_telemetry::metrics;
use prometheus::{HistogramVec, IntCounterVec};

#[derive(Clone)]
pub struct Metrics {
    pub jobs: IntCounterVec,
    pub rows: IntCounterVec,
    pub job_duration: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            jobs: metrics::jobs().clone(),
            rows: metrics::import_rows().clone(),
            job_duration: metrics::job_duration().clone(),
        }
    }

    /// Everything the process exposes, these families and the others.
    pub fn render(&self) -> String {
        metrics::render()
    }
}
