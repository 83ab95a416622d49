//! The JSON shapes scripts and the dashboard rely on (SPEC §5).

use chrono::{DateTime, Utc};
use foxflow_storage::jobs::{ImportErrorRow, ImportJob};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: Uuid,
    pub import_type: String,
    pub status: String,
    pub file_name: String,
    pub file_size: i64,
    pub dry_run: bool,
    pub generate_ai: bool,
    pub total_rows: i64,
    pub processed_rows: i64,
    pub created_rows: i64,
    pub updated_rows: i64,
    pub unchanged_rows: i64,
    pub error_rows: i64,
    /// Percentage of processed rows that were not errors; null before any row.
    pub success_rate: Option<f64>,
    pub normalized_values: i64,
    pub unknown_columns: Vec<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub file_purged: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    pub errors_preview: Vec<ImportErrorRow>,
}

impl JobView {
    pub fn new(job: ImportJob, errors_preview: Vec<ImportErrorRow>) -> Self {
        let success_rate = (job.processed_rows > 0).then(|| {
            let ok = (job.processed_rows - job.error_rows) as f64;
            (ok / job.processed_rows as f64 * 10_000.0).round() / 100.0
        });
        let duration_seconds = job.started_at.map(|start| {
            let end = job.completed_at.unwrap_or_else(Utc::now);
            ((end - start).num_milliseconds().max(0) as f64) / 1000.0
        });
        JobView {
            id: job.id,
            import_type: job.import_type,
            status: job.status,
            file_name: job.file_name,
            file_size: job.file_size,
            dry_run: job.dry_run,
            generate_ai: job.generate_ai,
            total_rows: job.total_rows,
            processed_rows: job.processed_rows,
            created_rows: job.created_rows,
            updated_rows: job.updated_rows,
            unchanged_rows: job.unchanged_rows,
            error_rows: job.error_rows,
            success_rate,
            normalized_values: job.normalized_values,
            unknown_columns: job.unknown_columns,
            attempts: job.attempts,
            last_error: job.last_error,
            file_purged: job.file_purged_at.is_some(),
            created_at: job.created_at,
            started_at: job.started_at,
            completed_at: job.completed_at,
            duration_seconds,
            errors_preview,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Page<T: Serialize> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}
