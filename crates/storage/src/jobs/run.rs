//! The worker's side of a job: claim it under a lease, commit its progress
//! batch by batch (learning there whether it was cancelled), end it once
//! (with its AI hand-over and its webhook in the same transaction), or let
//! go of it.

use super::errors::{NewImportError, Severity};
use super::view::JobView;
use super::{ImportJob, get_job};
use crate::run_state::RunState;
use crate::schema::{import_errors, import_jobs};
use crate::{Result, StorageError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use foxflow_domain::webhooks::WebhookEvent;
use foxflow_domain::{JobStatus, Text, text};
use std::time::Duration;
use uuid::Uuid;

/// The answer to "may I work on this job now?".
#[derive(Debug)]
pub enum Claim {
    /// Yours, under a lease; `checkpoint_row` says where to resume.
    Claimed(ImportJob),
    /// Already final: acknowledge and move on.
    Final(ImportJob),
    /// Another live worker holds it until then.
    Leased {
        until: DateTime<Utc>,
    },
    NotFound,
}

/// Takes the lease on a pending or processing job that no live worker holds
/// (no lease, or an expired one), counting the attempt. `lease_token` is
/// unique to this claim, not to the worker, so a second delivery of the same
/// job in the same process is refused like any other duplicate.
///
/// Taking over an expired lease means a worker died holding the job (a
/// graceful stop or a handled failure releases it): that is counted in
/// `lost_workers`, and past `max_lost_workers` the job ends `error` with
/// `worker_lost` instead of being run again — a file that kills its worker
/// (out of memory, a crash) would otherwise do so until the broker drops the
/// message, and the job would never end.
///
/// A job cancelled while pending is final: acknowledged, never started. A
/// job whose cancel was requested while a worker held it, and that no live
/// worker holds any more (it was handed back, or its worker died), is not
/// run again: it ends `cancelled` here.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    lease_token: &str,
    lease: Duration,
    max_lost_workers: i32,
) -> Result<Claim> {
    let claimed: Option<ImportJob> = diesel::update(import_jobs::table.find(id))
        .filter(import_jobs::status.eq_any([JobStatus::Pending, JobStatus::Processing]))
        .filter(
            import_jobs::lease_owner
                .is_null()
                .or(import_jobs::lease_expires_at.lt(diesel::dsl::now)),
        )
        .filter(import_jobs::cancel_requested_by.is_null())
        .set((
            import_jobs::status.eq(JobStatus::Processing),
            import_jobs::lease_owner.eq(lease_token),
            import_jobs::lease_expires_at.eq(lease_end(lease)),
            import_jobs::started_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >("COALESCE(started_at, clock_timestamp())")),
            import_jobs::attempts.eq(import_jobs::attempts + 1),
            import_jobs::lost_workers.eq(diesel::dsl::sql::<diesel::sql_types::Integer>(
                "lost_workers + (lease_owner IS NOT NULL)::int",
            )),
            import_jobs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(ImportJob::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    if let Some(job) = claimed {
        if job.lost_workers <= max_lost_workers {
            return Ok(Claim::Claimed(job));
        }
        let lost = job.lost_workers;
        let reason = text!(
            "worker_lost : le worker qui exécutait cet import s’est arrêté {lost} fois sans le terminer \
             (tué, à court de mémoire ou planté) ; il n’a pas été relancé. Vérifiez les journaux et les \
             limites de mémoire des workers, puis relancez-le (docs/reliability.md)",
            "worker_lost: the worker running this import stopped {lost} times without finishing it \
             (killed, out of memory or crashed); it was not started again. Check the workers' \
             logs and memory limits, then retry it (docs/reliability.md)"
        );
        fail(conn, id, &reason).await?;
    }
    // Cancelled while a worker held it, and no live worker holds it now:
    // ended here rather than run again. (Still held: that worker stops at
    // its next batch commit, and this copy is `Leased`.)
    if let Some(job) = get_job(conn, id).await?
        && !job.status.is_final()
        && let Some(by) = &job.cancel_requested_by
    {
        cancel_unheld(conn, id, by).await?;
    }
    match get_job(conn, id).await? {
        None => Ok(Claim::NotFound),
        Some(job) if job.status.is_final() => Ok(Claim::Final(job)),
        Some(job) => Ok(Claim::Leased {
            until: job.lease_expires_at.unwrap_or_else(Utc::now),
        }),
    }
}

/// The running job's heartbeat: pushes the lease this claim still holds
/// `lease` into the future and adds `ran` (the time since the last beat) to
/// the job's running time, which the soft time limit counts. Returns false
/// when the claim no longer holds the job (taken over, or ended).
pub async fn renew_lease(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    lease_token: &str,
    lease: Duration,
    ran: Duration,
) -> Result<bool> {
    let n = diesel::update(import_jobs::table.find(job_id))
        .filter(import_jobs::lease_owner.eq(lease_token))
        .filter(import_jobs::status.eq(JobStatus::Processing))
        .set((
            import_jobs::lease_expires_at.eq(lease_end(lease)),
            import_jobs::run_ms.eq(import_jobs::run_ms + ran.as_millis() as i64),
        ))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// `clock_timestamp() + lease`: the database's clock, so workers on hosts
/// with skewed clocks agree on when a lease ends.
fn lease_end(
    lease: Duration,
) -> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>> {
    diesel::dsl::sql(&format!(
        "clock_timestamp() + interval '{} milliseconds'",
        lease.as_millis()
    ))
}

/// A cheap look at whether a job can be claimed, without claiming it.
pub async fn run_state(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<RunState>> {
    let row: Option<(JobStatus, bool)> = import_jobs::table
        .find(id)
        .select((
            import_jobs::status,
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "COALESCE(lease_owner IS NOT NULL AND lease_expires_at > clock_timestamp(), false)",
            ),
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(status, live)| match (status.is_final(), live) {
        (true, _) => RunState::Final,
        (false, true) => RunState::Running,
        (false, false) => RunState::Open,
    }))
}

/// Jobs `processing` whose lease has expired and that no claim has taken
/// over yet (`foxflow_jobs_past_lease`). A few seconds of it are normal (a
/// worker just died; the next delivery takes the job over); a lasting count
/// means a message that is nowhere (docs/operations.md, "Stuck jobs").
pub async fn count_past_lease(conn: &mut AsyncPgConnection) -> Result<i64> {
    Ok(import_jobs::table
        .filter(import_jobs::status.eq(JobStatus::Processing))
        .filter(import_jobs::lease_expires_at.lt(diesel::dsl::now))
        .count()
        .get_result(conn)
        .await?)
}

/// Counts of one committed batch, added to the job's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub errors: i64,
    /// Rows imported with a warning (a lossy normalisation).
    pub warnings: i64,
    pub normalized: i64,
}

impl Progress {
    pub fn add(&mut self, other: Progress) {
        self.processed += other.processed;
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.errors += other.errors;
        self.warnings += other.warnings;
        self.normalized += other.normalized;
    }
}

/// What a batch commit learned about its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCommit {
    Continue,
    /// A cancel was requested: this batch is the run's last; end the job
    /// with [`finish`], which makes it `cancelled`.
    Cancel,
}

/// Adds a batch's counts and error rows and moves the checkpoint to
/// `checkpoint_row`, renewing the lease. Call it inside the transaction that
/// wrote the batch's entities: the checkpoint is the "done" marker. Fails
/// with `Conflict` when this worker no longer holds the job (its lease was
/// taken over, or the job was cancelled as abandoned), which rolls the batch
/// back.
///
/// Also reads whether a cancel was requested, from the row this statement
/// updates: a request committed before it is seen (the update waits for the
/// request's row lock and reads its result), one committed after waits for
/// this batch and is seen at the next. So a cancelled job's counts are
/// exactly the batches that committed.
pub async fn record_progress(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    lease_token: &str,
    lease: Duration,
    progress: Progress,
    checkpoint_row: i64,
    errors: &[NewImportError],
) -> Result<AfterCommit> {
    if !errors.is_empty() {
        // Chunked: one INSERT carries at most 65,535 binds.
        for chunk in errors.chunks(5_000) {
            diesel::insert_into(import_errors::table)
                .values(chunk)
                .execute(conn)
                .await?;
        }
    }
    let cancel_requested_by: Option<Option<String>> = diesel::update(import_jobs::table.find(job_id))
        .filter(import_jobs::lease_owner.eq(lease_token))
        .filter(import_jobs::status.eq(JobStatus::Processing))
        .set((
            import_jobs::processed_rows.eq(import_jobs::processed_rows + progress.processed),
            import_jobs::created_rows.eq(import_jobs::created_rows + progress.created),
            import_jobs::updated_rows.eq(import_jobs::updated_rows + progress.updated),
            import_jobs::unchanged_rows.eq(import_jobs::unchanged_rows + progress.unchanged),
            import_jobs::error_rows.eq(import_jobs::error_rows + progress.errors),
            import_jobs::warning_rows.eq(import_jobs::warning_rows + progress.warnings),
            import_jobs::normalized_values.eq(import_jobs::normalized_values + progress.normalized),
            import_jobs::checkpoint_row.eq(checkpoint_row),
            import_jobs::lease_expires_at.eq(lease_end(lease)),
            import_jobs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(import_jobs::cancel_requested_by)
        .get_result(conn)
        .await
        .optional()?;
    match cancel_requested_by {
        None => Err(StorageError::Conflict(text!(
            "le job {job_id} n’est plus tenu par {lease_token}",
            "job {job_id} is no longer leased by {lease_token}"
        ))),
        Some(None) => Ok(AfterCommit::Continue),
        Some(Some(_)) => Ok(AfterCommit::Cancel),
    }
}

/// Records what the first pass over the file found: how many data rows it
/// has (so progress has a denominator) and the columns no field matched.
pub async fn set_file_facts(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    total_rows: i64,
    unknown_columns: &[String],
) -> Result<()> {
    diesel::update(import_jobs::table.find(job_id))
        .set((
            import_jobs::total_rows.eq(total_rows),
            import_jobs::unknown_columns.eq(unknown_columns),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a job from its counts (docs/spec.md §4.5) and releases the lease.
/// `file_error`, when set, makes it `error` with a row-0 error row. Else a
/// job whose cancel was requested ends `cancelled`, whatever was left to
/// do: the request was answered 202, so it is honoured (docs/imports.md,
/// "Cancel"); a cancelled job hands nothing over to the AI.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    lease_token: &str,
    file_error: Option<(&str, &Text)>,
) -> Result<ImportJob> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        // Locked: a cancel request waits for the final status, and is then
        // refused as too late, instead of being recorded on a job that ends
        // `success` without it.
        let job = import_jobs::table
            .find(job_id)
            .select(ImportJob::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or(StorageError::NotFound)?;
        if job.lease_owner.as_deref() != Some(lease_token) || job.status.is_final() {
            return Err(StorageError::Conflict(text!(
                "le job {job_id} n’est plus tenu par {lease_token}",
                "job {job_id} is no longer leased by {lease_token}"
            )));
        }
        let (status, last_error) = match (file_error, &job.cancel_requested_by) {
            (Some((code, message)), _) => {
                diesel::insert_into(import_errors::table)
                    .values(NewImportError {
                        job_id,
                        row: 0,
                        column: None,
                        value: None,
                        code: code.to_owned(),
                        message: message.fr.clone(),
                        message_en: Some(message.en.clone()),
                        raw: None,
                        severity: Severity::Error.as_str(),
                    })
                    .execute(conn)
                    .await?;
                (JobStatus::Error, Some(message.clone()))
            }
            (None, Some(by)) => (JobStatus::Cancelled, Some(cancel_note(by))),
            (None, None) => (JobStatus::from_counts(job.total_rows, job.error_rows), None),
        };
        // The AI hand-over commits with the final status: exactly what this
        // import created or updated, once (docs/spec.md §4.4).
        if job.generate_ai && !job.dry_run && matches!(status, JobStatus::Success | JobStatus::Partial) {
            crate::ai::create_batch_for_import(conn, job_id, job.owner_id, None).await?;
        }
        let job = diesel::update(import_jobs::table.find(job_id))
            .set((
                import_jobs::status.eq(status),
                import_jobs::last_error.eq(last_error.as_ref().map(|t| t.fr.clone())),
                import_jobs::last_error_en.eq(last_error.map(|t| t.en)),
                import_jobs::completed_at.eq(diesel::dsl::now),
                import_jobs::lease_owner.eq(None::<String>),
                import_jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                import_jobs::updated_at.eq(diesel::dsl::now),
            ))
            .returning(ImportJob::as_returning())
            .get_result(conn)
            .await?;
        // Announced if and only if the final status commits.
        announce_completion(conn, &job).await?;
        Ok(job)
    })
    .await
}

/// Marks a job `error` whatever its lease (retries exhausted, message parked).
/// `reason` is stored in French (`last_error`) and English (`last_error_en`).
pub async fn fail(conn: &mut AsyncPgConnection, job_id: Uuid, reason: &Text) -> Result<()> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        let job: Option<ImportJob> = diesel::update(import_jobs::table.find(job_id))
            .filter(import_jobs::status.eq_any([JobStatus::Pending, JobStatus::Processing]))
            .set((
                import_jobs::status.eq(JobStatus::Error),
                import_jobs::last_error.eq(&reason.fr),
                import_jobs::last_error_en.eq(&reason.en),
                import_jobs::completed_at.eq(diesel::dsl::now),
                import_jobs::lease_owner.eq(None::<String>),
                import_jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                import_jobs::updated_at.eq(diesel::dsl::now),
            ))
            .returning(ImportJob::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        // Only the call that made it final announces it.
        if let Some(job) = job {
            announce_completion(conn, &job).await?;
        }
        Ok(())
    })
    .await
}

/// Lets go of a job without finishing it (graceful shutdown): the next
/// delivery resumes from the checkpoint at once instead of waiting for the
/// lease to expire.
pub async fn release(conn: &mut AsyncPgConnection, job_id: Uuid, lease_token: &str) -> Result<()> {
    diesel::update(import_jobs::table.find(job_id))
        .filter(import_jobs::lease_owner.eq(lease_token))
        .set((
            import_jobs::lease_owner.eq(None::<String>),
            import_jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends `cancelled` a job that is not final and that no live worker holds
/// (pending, or processing between two deliveries), for `by`; `None` when
/// it is final or held. Guarded like [`claim`], so of a claim and a cancel
/// racing for the job exactly one wins. Announced like any final status.
pub(super) async fn cancel_unheld(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    by: &str,
) -> Result<Option<ImportJob>> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        let job: Option<ImportJob> = diesel::update(import_jobs::table.find(job_id))
            .filter(import_jobs::status.eq_any([JobStatus::Pending, JobStatus::Processing]))
            .filter(
                import_jobs::lease_owner
                    .is_null()
                    .or(import_jobs::lease_expires_at.lt(diesel::dsl::now)),
            )
            .set((
                import_jobs::status.eq(JobStatus::Cancelled),
                import_jobs::last_error.eq(cancel_note(by).fr),
                import_jobs::last_error_en.eq(cancel_note(by).en),
                import_jobs::cancel_requested_by.eq(by),
                import_jobs::completed_at.eq(diesel::dsl::now),
                import_jobs::lease_owner.eq(None::<String>),
                import_jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                import_jobs::updated_at.eq(diesel::dsl::now),
            ))
            .returning(ImportJob::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        if let Some(job) = &job {
            announce_completion(conn, job).await?;
        }
        Ok(job)
    })
    .await
}

/// The `last_error` of a cancelled job: who stopped it.
fn cancel_note(by: &str) -> Text {
    text!("annulé par {by}", "cancelled by {by}")
}

/// Queues `import.completed` for a job that has just become final, in the
/// transaction that made it so. Its `data` is the job exactly as
/// `GET /api/v1/imports/{id}` shows it at that moment (docs/webhooks.md).
async fn announce_completion(conn: &mut AsyncPgConnection, job: &ImportJob) -> Result<()> {
    let view = JobView::load(conn, job.clone()).await?;
    crate::webhooks::enqueue(
        conn,
        WebhookEvent::ImportCompleted,
        serde_json::to_value(&view).expect("a job view serialises"),
    )
    .await?;
    Ok(())
}

/// Remembers what a job created or updated, for its AI hand-over. Call it
/// inside the batch's transaction.
pub async fn record_touched(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    touched: &[(&str, i64)],
) -> Result<()> {
    use diesel::sql_types::{Array, BigInt, Text};
    diesel::sql_query(
        "INSERT INTO import_touched (job_id, target_type, target_id)
         SELECT $1, t, i FROM UNNEST($2::text[], $3::int8[]) AS x(t, i)
         ON CONFLICT DO NOTHING",
    )
    .bind::<diesel::sql_types::Uuid, _>(job_id)
    .bind::<Array<Text>, _>(touched.iter().map(|(t, _)| (*t).to_owned()).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(touched.iter().map(|(_, i)| *i).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_adds_up_every_count() {
        let batch = Progress {
            processed: 5,
            created: 2,
            updated: 1,
            unchanged: 1,
            errors: 1,
            warnings: 1,
            normalized: 7,
        };
        let mut total = Progress::default();
        total.add(batch);
        total.add(batch);
        assert_eq!(
            total,
            Progress {
                processed: 10,
                created: 4,
                updated: 2,
                unchanged: 2,
                errors: 2,
                warnings: 2,
                normalized: 14,
            }
        );
    }
}
