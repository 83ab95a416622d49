//! The job as the outside world sees it (docs/spec.md §5): one shape, built here once, for
//! `GET /api/v1/imports/{id}`, the lists, every frame of the events stream and the `data` of
//! the `import.completed` webhook, so the success rate and the duration cannot drift apart.

use super::ImportJob;
use super::errors::{ImportErrorRow, Severity, errors_page};
use crate::Result;
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use foxflow_domain::{ImportType, JobStatus, Lang};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// How many error rows a job view carries (`errors_preview`).
pub const PREVIEW_ERRORS: i64 = 10;

/// An import job (docs/spec.md §5): the body of `GET /api/v1/imports/{id}` and of
/// every `job` event.
// Also the `data` of `import.completed`. The field order is the JSON's; the
// doc comments are the OpenAPI document's descriptions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub import_type: ImportType,
    #[schema(value_type = String)]
    pub status: JobStatus,
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
    /// Why the job failed or who cancelled it, in the request's language
    /// (docs/api.md "Languages").
    pub last_error: Option<String>,
    /// English `last_error`, read with the job; see [`JobView::in_lang`].
    #[serde(skip)]
    #[schema(ignore)]
    pub last_error_en: Option<String>,
    pub file_purged: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    /// The first error rows (at most 10 on `GET /imports/{id}`; empty in lists).
    pub errors_preview: Vec<ImportErrorRow>,
    /// Who asked to cancel it (`POST …/cancel`); null when nobody did. On a
    /// `processing` job: the worker has yet to reach its next batch commit,
    /// where it stops and the job becomes `cancelled`.
    pub cancel_requested_by: Option<String>,
    /// Rows imported with a warning: a value was normalised with a loss
    /// (listed by `GET /api/v1/imports/{id}/warnings`). Added after the
    /// contract's fields, so their order is unchanged.
    pub warning_rows: i64,
    /// A revert job: the import it undoes (null for an import).
    pub reverts_job_id: Option<Uuid>,
    /// A revert job: the rows it deleted (those its import had created).
    pub deleted_rows: i64,
}

impl JobView {
    /// The view with the error rows given (none, in lists and right after an upload).
    pub fn new(job: ImportJob, errors_preview: Vec<ImportErrorRow>) -> Self {
        JobView {
            success_rate: success_rate(job.processed_rows, job.error_rows),
            duration_seconds: duration_seconds(job.started_at, job.completed_at, Utc::now()),
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
            normalized_values: job.normalized_values,
            unknown_columns: job.unknown_columns,
            attempts: job.attempts,
            last_error: job.last_error,
            last_error_en: job.last_error_en,
            file_purged: job.file_purged_at.is_some(),
            created_at: job.created_at,
            started_at: job.started_at,
            completed_at: job.completed_at,
            errors_preview,
            cancel_requested_by: job.cancel_requested_by,
            warning_rows: job.warning_rows,
            reverts_job_id: job.reverts_job_id,
            deleted_rows: job.deleted_rows,
        }
    }

    /// The view with its messages (`last_error`, the error rows') in `lang`;
    /// French is how it is built. Old jobs have one message for both.
    pub fn in_lang(mut self, lang: Lang) -> Self {
        if lang == Lang::En {
            if let Some(en) = self.last_error_en.take() {
                self.last_error = Some(en);
            }
            self.errors_preview = self.errors_preview.into_iter().map(|e| e.in_lang(lang)).collect();
        }
        self
    }

    /// The full view: with its first [`PREVIEW_ERRORS`] error rows, read only when the job
    /// has some to show (error rows, or a file-level error at row 0).
    pub async fn load(conn: &mut AsyncPgConnection, job: ImportJob) -> Result<Self> {
        let preview = if job.error_rows > 0 || job.status == JobStatus::Error {
            errors_page(conn, job.id, Severity::Error, 1, PREVIEW_ERRORS)
                .await?
                .0
        } else {
            Vec::new()
        };
        Ok(JobView::new(job, preview))
    }
}

/// The percentage of processed rows that were not errors, to 2 decimals;
/// none before the first row.
fn success_rate(processed_rows: i64, error_rows: i64) -> Option<f64> {
    (processed_rows > 0).then(|| {
        let ok = (processed_rows - error_rows) as f64;
        (ok / processed_rows as f64 * 10_000.0).round() / 100.0
    })
}

/// Seconds since the start, up to the end once there is one (so a running
/// job's duration grows); none before the start. Never negative, whatever
/// two clocks said.
fn duration_seconds(
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<f64> {
    started_at.map(|start| {
        let end = completed_at.unwrap_or(now);
        ((end - start).num_milliseconds().max(0) as f64) / 1000.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, s).unwrap()
    }

    #[test]
    fn the_success_rate_is_a_rounded_percentage_of_processed_rows() {
        assert_eq!(success_rate(0, 0), None);
        assert_eq!(success_rate(3, 1), Some(66.67));
        assert_eq!(success_rate(3, 0), Some(100.0));
        assert_eq!(success_rate(3, 3), Some(0.0));
        assert_eq!(success_rate(1_000, 1), Some(99.9));
    }

    #[test]
    fn the_duration_runs_until_the_end() {
        assert_eq!(duration_seconds(None, None, at(9)), None);
        // Running: up to now.
        assert_eq!(duration_seconds(Some(at(1)), None, at(4)), Some(3.0));
        // Finished: up to the end, whenever asked.
        assert_eq!(duration_seconds(Some(at(1)), Some(at(2)), at(59)), Some(1.0));
        // A start after the end (clock skew between hosts) is zero, not negative.
        assert_eq!(duration_seconds(Some(at(5)), Some(at(2)), at(9)), Some(0.0));
    }

    fn job() -> ImportJob {
        ImportJob {
            id: Uuid::nil(),
            import_type: ImportType::SousCategories,
            status: JobStatus::Partial,
            file_id: None,
            file_name: "f.csv".into(),
            file_size: 10,
            file_sha256: String::new(),
            file_purged_at: Some(at(3)),
            dry_run: false,
            generate_ai: true,
            owner_id: None,
            total_rows: 3,
            processed_rows: 3,
            created_rows: 2,
            updated_rows: 0,
            unchanged_rows: 0,
            error_rows: 1,
            normalized_values: 4,
            unknown_columns: vec!["x".into()],
            attempts: 1,
            last_error: None,
            last_error_en: None,
            checkpoint_row: 3,
            lease_owner: None,
            lease_expires_at: None,
            created_at: at(0),
            started_at: Some(at(1)),
            completed_at: Some(at(2)),
            lost_workers: 0,
            run_ms: 0,
            cancel_requested_by: None,
            warning_rows: 0,
            reverts_job_id: None,
            deleted_rows: 0,
        }
    }

    /// The names scripts, the dashboard and webhook receivers read (docs/spec.md §5,
    /// docs/webhooks.md), in the order the API has always sent them.
    #[test]
    fn the_json_has_the_contract_names_in_order() {
        let json = serde_json::to_value(JobView::new(job(), Vec::new())).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "id",
                "import_type",
                "status",
                "file_name",
                "file_size",
                "dry_run",
                "generate_ai",
                "total_rows",
                "processed_rows",
                "created_rows",
                "updated_rows",
                "unchanged_rows",
                "error_rows",
                "success_rate",
                "normalized_values",
                "unknown_columns",
                "attempts",
                "last_error",
                "file_purged",
                "created_at",
                "started_at",
                "completed_at",
                "duration_seconds",
                "errors_preview",
                "cancel_requested_by",
                "warning_rows",
                "reverts_job_id",
                "deleted_rows"
            ]
        );
        assert_eq!(json["import_type"], "sous_categories");
        assert_eq!(json["status"], "partial");
        assert_eq!(json["success_rate"], 66.67);
        assert_eq!(json["duration_seconds"], 1.0);
        assert_eq!(json["file_purged"], true);
        assert_eq!(json["completed_at"], "2026-12-01T09:00:02Z");
    }
}
