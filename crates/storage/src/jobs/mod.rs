//! Import jobs: created with their outbox message in one transaction, claimed
//! under a lease by one worker, advanced batch by batch, finished once.
//!
//! This file holds the job row and the API's side (create, read, list,
//! retry, cancel); `run` the worker's side (claim, progress, finish); `errors` the
//! error rows; `view` the job as the outside world sees it (the API, the
//! events stream, the `import.completed` webhook); `stats` the dashboard's
//! totals. Everything is re-exported here: `foxflow_storage::jobs::finish`
//! is the path callers use.

mod apply;
mod changes;
mod errors;
mod revert;
mod run;
mod stats;
mod view;

pub use crate::run_state::RunState;
pub use errors::{
    ErrorCursor, ImportErrorRow, NewImportError, Severity, error_columns, errors_after, errors_page,
};
pub use run::{
    AfterCommit, Claim, Progress, claim, count_past_lease, fail, finish, record_progress, record_touched,
    release, renew_lease, run_state, set_file_facts,
};
pub use stats::{JobStats, RowTotals, stats};
pub use view::{JobView, PREVIEW_ERRORS};

use crate::schema::{import_errors, import_jobs};
use crate::{Result, StorageError, outbox};
pub use apply::apply_dry_run;
pub use changes::{ChangeView, PREVIEW_CHANGES, capture_for, changes_page, keep_preview};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use foxflow_domain::messages::Message;
use foxflow_domain::{ImportOptions, ImportType, JobStatus, text};
pub use revert::{request_revert, run_revert};
use uuid::Uuid;

/// One row of `import_jobs`, typed. The outside world never sees it as is:
/// it sees a [`JobView`].
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = import_jobs)]
pub struct ImportJob {
    pub id: Uuid,
    pub import_type: ImportType,
    pub status: JobStatus,
    pub file_id: Option<Uuid>,
    pub file_name: String,
    pub file_size: i64,
    pub file_sha256: String,
    pub file_purged_at: Option<DateTime<Utc>>,
    pub dry_run: bool,
    pub generate_ai: bool,
    pub owner_id: Option<Uuid>,
    pub total_rows: i64,
    pub processed_rows: i64,
    pub created_rows: i64,
    pub updated_rows: i64,
    pub unchanged_rows: i64,
    pub error_rows: i64,
    pub normalized_values: i64,
    pub unknown_columns: Vec<String>,
    pub attempts: i32,
    /// French (the default language); English in `last_error_en`.
    pub last_error: Option<String>,
    /// `None` on jobs that ended before messages had two languages: read
    /// `last_error` then, whatever the language asked.
    pub last_error_en: Option<String>,
    pub checkpoint_row: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Workers that died holding the job (expired leases taken over).
    pub lost_workers: i32,
    /// Running time summed over attempts, at the last checkpoint.
    pub run_ms: i64,
    /// Who asked to cancel the job (the user's name then). While a worker
    /// holds the job, this is the request: it stops at its next batch commit.
    pub cancel_requested_by: Option<String>,
    /// Rows imported with a warning (a lossy normalisation).
    pub warning_rows: i64,
    /// A revert job: the import it undoes.
    pub reverts_job_id: Option<Uuid>,
    /// A revert job: rows it deleted (those its import had created).
    pub deleted_rows: i64,
}

/// What the API knows when a file has been stored.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub import_type: ImportType,
    pub file_id: Uuid,
    pub file_name: String,
    pub file_size: i64,
    pub file_sha256: String,
    pub options: ImportOptions,
    pub owner_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
}

/// Writes the job and the message that announces it in one transaction: the
/// message exists if and only if the job does. With an `Idempotency-Key`
/// seen before for the same owner, returns the earlier job instead (and
/// `false`).
pub async fn create_job(
    conn: &mut AsyncPgConnection,
    new: NewJob,
    traceparent: Option<String>,
) -> Result<(ImportJob, bool)> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        if let Some(key) = &new.idempotency_key {
            let existing = import_jobs::table
                .filter(import_jobs::idempotency_key.eq(key))
                .filter(import_jobs::owner_id.is_not_distinct_from(new.owner_id))
                .select(ImportJob::as_select())
                .first(conn)
                .await
                .optional()?;
            if let Some(job) = existing {
                return Ok((job, false));
            }
        }
        let id = Uuid::now_v7();
        let job = diesel::insert_into(import_jobs::table)
            .values((
                import_jobs::id.eq(id),
                import_jobs::import_type.eq(new.import_type),
                import_jobs::file_id.eq(new.file_id),
                import_jobs::file_name.eq(&new.file_name),
                import_jobs::file_size.eq(new.file_size),
                import_jobs::file_sha256.eq(&new.file_sha256),
                import_jobs::dry_run.eq(new.options.dry_run),
                import_jobs::generate_ai.eq(new.options.generate_ai),
                import_jobs::owner_id.eq(new.owner_id),
                import_jobs::idempotency_key.eq(&new.idempotency_key),
            ))
            .returning(ImportJob::as_returning())
            .get_result(conn)
            .await?;
        outbox::enqueue(conn, &Message::import_requested(id), traceparent.as_deref()).await?;
        Ok((job, true))
    })
    .await
}

pub async fn get_job(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<ImportJob>> {
    Ok(import_jobs::table
        .find(id)
        .select(ImportJob::as_select())
        .first(conn)
        .await
        .optional()?)
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub import_type: Option<ImportType>,
    /// Staff see only their own jobs.
    pub owner_id: Option<Uuid>,
    pub page: i64,
    pub per_page: i64,
}

/// One page of jobs, newest first, and the total matching the filter.
pub async fn list_jobs(conn: &mut AsyncPgConnection, filter: &JobFilter) -> Result<(Vec<ImportJob>, i64)> {
    let query = || {
        let mut q = import_jobs::table.into_boxed();
        if let Some(s) = filter.status {
            q = q.filter(import_jobs::status.eq(s));
        }
        if let Some(t) = filter.import_type {
            q = q.filter(import_jobs::import_type.eq(t));
        }
        if let Some(o) = filter.owner_id {
            q = q.filter(import_jobs::owner_id.eq(o));
        }
        q
    };
    let total: i64 = query().count().get_result(conn).await?;
    let items = query()
        .order(import_jobs::created_at.desc())
        .then_order_by(import_jobs::id.desc())
        .limit(filter.per_page)
        .offset((filter.page - 1) * filter.per_page)
        .select(ImportJob::as_select())
        .load(conn)
        .await?;
    Ok((items, total))
}

/// Puts a job that is not running back to `pending` from the start (counts,
/// checkpoint, error rows, lost workers and any cancel request cleared) and
/// queues its message, in one transaction. "Not running" is final with a
/// file to read again (`error`, `partial`, `cancelled`: an operator who
/// cancelled a run may want it after all), or not final with no live lease
/// (waiting for a worker, or its message lost): a duplicate message is
/// harmless, a live lease means a worker is on it. `Conflict` for a running
/// or `success` job.
pub async fn retry(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    traceparent: Option<String>,
) -> Result<ImportJob> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        let job: Option<ImportJob> = diesel::update(import_jobs::table.find(job_id))
            .filter(
                import_jobs::status
                    .eq_any([JobStatus::Partial, JobStatus::Error, JobStatus::Cancelled])
                    .or(import_jobs::status
                        .eq_any([JobStatus::Pending, JobStatus::Processing])
                        .and(
                            import_jobs::lease_owner
                                .is_null()
                                .or(import_jobs::lease_expires_at.lt(diesel::dsl::now)),
                        )),
            )
            .filter(import_jobs::file_purged_at.is_null())
            .set((
                import_jobs::status.eq(JobStatus::Pending),
                import_jobs::total_rows.eq(0i64),
                import_jobs::processed_rows.eq(0i64),
                import_jobs::created_rows.eq(0i64),
                import_jobs::updated_rows.eq(0i64),
                import_jobs::unchanged_rows.eq(0i64),
                import_jobs::error_rows.eq(0i64),
                import_jobs::warning_rows.eq(0i64),
                import_jobs::normalized_values.eq(0i64),
                import_jobs::checkpoint_row.eq(0i64),
                import_jobs::attempts.eq(0),
                import_jobs::lost_workers.eq(0),
                import_jobs::run_ms.eq(0i64),
                import_jobs::last_error.eq(None::<String>),
                import_jobs::started_at.eq(None::<DateTime<Utc>>),
                import_jobs::completed_at.eq(None::<DateTime<Utc>>),
                import_jobs::lease_owner.eq(None::<String>),
                import_jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                import_jobs::cancel_requested_by.eq(None::<String>),
                import_jobs::updated_at.eq(diesel::dsl::now),
            ))
            .returning(ImportJob::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        let Some(job) = job else {
            return match get_job(conn, job_id).await? {
                None => Err(StorageError::NotFound),
                Some(j) if j.file_purged_at.is_some() => Err(StorageError::Conflict(text!(
                    "le fichier de cet import a été purgé : téléversez-le à nouveau",
                    "the file of this import was purged; upload it again"
                ))),
                Some(j) if j.status == JobStatus::Success => Err(StorageError::Conflict(text!(
                    "cet import a réussi : téléversez le fichier à nouveau pour le réimporter",
                    "this import succeeded; upload the file again to import it again"
                ))),
                Some(_) => Err(StorageError::Conflict(text!(
                    "cet import tourne sur un worker en ce moment : il ne peut être relancé qu’une fois terminé",
                    "this import is running on a worker now; it cannot be retried until it ends"
                ))),
            };
        };
        diesel::delete(import_errors::table.filter(import_errors::job_id.eq(job_id)))
            .execute(conn)
            .await?;
        diesel::sql_query("DELETE FROM import_touched WHERE job_id = $1")
            .bind::<diesel::sql_types::Uuid, _>(job_id)
            .execute(conn)
            .await?;
        outbox::enqueue(conn, &Message::import_requested(job_id), traceparent.as_deref()).await?;
        Ok(job)
    })
    .await
}

/// Cancels a job for `by` (a user's name), in one transaction:
/// - not held by a live worker (`pending`, or `processing` between two
///   deliveries): `cancelled` at once, announced like any final status; its
///   message, when it comes, is acknowledged without running it;
/// - held by a live worker: the request is recorded and the job returned as
///   it is, still `processing`; the worker reads the request in the
///   transaction of its next batch commit and ends the job `cancelled` there,
///   so the counts are exactly the rows committed (docs/imports.md, "Cancel").
///
/// Asking again while a request waits changes nothing (the first asker is
/// kept). `Conflict` for a job already final, `cancelled` included.
pub async fn cancel(conn: &mut AsyncPgConnection, job_id: Uuid, by: &str) -> Result<ImportJob> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        if let Some(job) = run::cancel_unheld(conn, job_id, by).await? {
            return Ok(job);
        }
        let requested: Option<ImportJob> = diesel::update(import_jobs::table.find(job_id))
            .filter(import_jobs::status.eq(JobStatus::Processing))
            .set((
                import_jobs::cancel_requested_by.eq(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::Text>,
                >("COALESCE(cancel_requested_by, ")
                .bind::<diesel::sql_types::Text, _>(by)
                .sql(")")),
                import_jobs::updated_at.eq(diesel::dsl::now),
            ))
            .returning(ImportJob::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        if let Some(job) = requested {
            return Ok(job);
        }
        match get_job(conn, job_id).await? {
            None => Err(StorageError::NotFound),
            Some(j) => Err(StorageError::Conflict(text!(
                "cet import est déjà terminé (« {} ») : il n’y a plus rien à annuler",
                "this import has already ended `{}`; there is nothing left to cancel",
                j.status
            ))),
        }
    })
    .await
}
