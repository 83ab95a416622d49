//! Import jobs: created with their outbox message in one transaction, claimed
//! under a lease by one worker, advanced batch by batch, finished once.

use crate::schema::{import_errors, import_jobs};
use crate::{Result, StorageError, outbox};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use foxflow_domain::messages::Message;
use foxflow_domain::{ImportOptions, ImportType, JobStatus};
use serde::Serialize;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = import_jobs)]
pub struct ImportJob {
    pub id: Uuid,
    pub import_type: String,
    pub status: String,
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
    pub last_error: Option<String>,
    pub checkpoint_row: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl ImportJob {
    /// The stored status, parsed; the CHECK constraint keeps it valid.
    pub fn status(&self) -> JobStatus {
        self.status.parse().unwrap_or(JobStatus::Error)
    }

    pub fn import_type(&self) -> Option<ImportType> {
        self.import_type.parse().ok()
    }

    pub fn options(&self) -> ImportOptions {
        ImportOptions {
            dry_run: self.dry_run,
            generate_ai: self.generate_ai,
        }
    }
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
                import_jobs::import_type.eq(new.import_type.as_str()),
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
            q = q.filter(import_jobs::status.eq(s.as_str()));
        }
        if let Some(t) = filter.import_type {
            q = q.filter(import_jobs::import_type.eq(t.as_str()));
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

/// Takes (or renews, or takes over an expired) lease on a pending or
/// processing job, counting the attempt.
pub async fn claim(conn: &mut AsyncPgConnection, id: Uuid, worker: &str, lease: Duration) -> Result<Claim> {
    let lease_s = lease.as_secs_f64();
    let claimed: Option<ImportJob> = diesel::update(import_jobs::table.find(id))
        .filter(import_jobs::status.eq_any([JobStatus::Pending.as_str(), JobStatus::Processing.as_str()]))
        .filter(
            import_jobs::lease_owner
                .is_null()
                .or(import_jobs::lease_owner.eq(worker))
                .or(import_jobs::lease_expires_at.lt(diesel::dsl::now)),
        )
        .set((
            import_jobs::status.eq(JobStatus::Processing.as_str()),
            import_jobs::lease_owner.eq(worker),
            import_jobs::lease_expires_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >(&format!(
                "clock_timestamp() + interval '{lease_s} seconds'"
            ))),
            import_jobs::started_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >("COALESCE(started_at, clock_timestamp())")),
            import_jobs::attempts.eq(import_jobs::attempts + 1),
            import_jobs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(ImportJob::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    if let Some(job) = claimed {
        return Ok(Claim::Claimed(job));
    }
    match get_job(conn, id).await? {
        None => Ok(Claim::NotFound),
        Some(job) if job.status().is_final() => Ok(Claim::Final(job)),
        Some(job) => Ok(Claim::Leased {
            until: job.lease_expires_at.unwrap_or_else(Utc::now),
        }),
    }
}

/// Counts of one committed batch, added to the job's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub errors: i64,
    pub normalized: i64,
}

impl Progress {
    pub fn add(&mut self, other: Progress) {
        self.processed += other.processed;
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.errors += other.errors;
        self.normalized += other.normalized;
    }
}

/// One error row (row 0 = the whole file).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = import_errors)]
pub struct NewImportError {
    pub job_id: Uuid,
    pub row: i64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub code: String,
    pub message: String,
    pub raw: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = import_errors)]
pub struct ImportErrorRow {
    pub row: i64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub code: String,
    pub message: String,
    pub raw: Option<serde_json::Value>,
}

/// Adds a batch's counts and error rows and moves the checkpoint to
/// `checkpoint_row`, renewing the lease. Call it inside the transaction that
/// wrote the batch's entities: the checkpoint is the "done" marker. Fails
/// with `Conflict` when this worker no longer holds the job (its lease was
/// taken over), which rolls the batch back.
pub async fn record_progress(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    worker: &str,
    lease: Duration,
    progress: Progress,
    checkpoint_row: i64,
    errors: &[NewImportError],
) -> Result<()> {
    if !errors.is_empty() {
        // Chunked: one INSERT carries at most 65,535 binds.
        for chunk in errors.chunks(5_000) {
            diesel::insert_into(import_errors::table)
                .values(chunk)
                .execute(conn)
                .await?;
        }
    }
    let lease_s = lease.as_secs_f64();
    let n = diesel::update(import_jobs::table.find(job_id))
        .filter(import_jobs::lease_owner.eq(worker))
        .filter(import_jobs::status.eq(JobStatus::Processing.as_str()))
        .set((
            import_jobs::processed_rows.eq(import_jobs::processed_rows + progress.processed),
            import_jobs::created_rows.eq(import_jobs::created_rows + progress.created),
            import_jobs::updated_rows.eq(import_jobs::updated_rows + progress.updated),
            import_jobs::unchanged_rows.eq(import_jobs::unchanged_rows + progress.unchanged),
            import_jobs::error_rows.eq(import_jobs::error_rows + progress.errors),
            import_jobs::normalized_values.eq(import_jobs::normalized_values + progress.normalized),
            import_jobs::checkpoint_row.eq(checkpoint_row),
            import_jobs::lease_expires_at.eq(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
            >(&format!(
                "clock_timestamp() + interval '{lease_s} seconds'"
            ))),
            import_jobs::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    if n == 0 {
        return Err(StorageError::Conflict(format!(
            "job {job_id} is no longer leased by {worker}"
        )));
    }
    Ok(())
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
/// `file_error`, when set, makes it `error` with a row-0 error row.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    worker: &str,
    file_error: Option<(&str, &str)>,
) -> Result<ImportJob> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        let job = get_job(conn, job_id).await?.ok_or(StorageError::NotFound)?;
        if job.lease_owner.as_deref() != Some(worker) || job.status().is_final() {
            return Err(StorageError::Conflict(format!(
                "job {job_id} is no longer leased by {worker}"
            )));
        }
        let (status, last_error) = match file_error {
            Some((code, message)) => {
                diesel::insert_into(import_errors::table)
                    .values(NewImportError {
                        job_id,
                        row: 0,
                        column: None,
                        value: None,
                        code: code.to_owned(),
                        message: message.to_owned(),
                        raw: None,
                    })
                    .execute(conn)
                    .await?;
                (JobStatus::Error, Some(message.to_owned()))
            }
            None => (JobStatus::from_counts(job.total_rows, job.error_rows), None),
        };
        // The AI hand-over commits with the final status: exactly what this
        // import created or updated, once (docs/spec.md §4.4).
        if job.generate_ai && !job.dry_run && status != JobStatus::Error {
            crate::ai::create_batch_for_import(conn, job_id, job.owner_id, None).await?;
        }
        let job = diesel::update(import_jobs::table.find(job_id))
            .set((
                import_jobs::status.eq(status.as_str()),
                import_jobs::last_error.eq(last_error),
                import_jobs::completed_at.eq(diesel::dsl::now),
                import_jobs::lease_owner.eq(None::<String>),
                import_jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                import_jobs::updated_at.eq(diesel::dsl::now),
            ))
            .returning(ImportJob::as_returning())
            .get_result(conn)
            .await?;
        // Announced if and only if the final status commits.
        crate::webhooks::enqueue_import_completed(conn, &job).await?;
        Ok(job)
    })
    .await
}

/// Marks a job `error` whatever its lease (retries exhausted, message parked).
pub async fn fail(conn: &mut AsyncPgConnection, job_id: Uuid, reason: &str) -> Result<()> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        let job: Option<ImportJob> = diesel::update(import_jobs::table.find(job_id))
            .filter(import_jobs::status.eq_any([JobStatus::Pending.as_str(), JobStatus::Processing.as_str()]))
            .set((
                import_jobs::status.eq(JobStatus::Error.as_str()),
                import_jobs::last_error.eq(reason),
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
            crate::webhooks::enqueue_import_completed(conn, &job).await?;
        }
        Ok(())
    })
    .await
}

/// Lets go of a job without finishing it (graceful shutdown): the next
/// delivery resumes from the checkpoint at once instead of waiting for the
/// lease to expire.
pub async fn release(conn: &mut AsyncPgConnection, job_id: Uuid, worker: &str) -> Result<()> {
    diesel::update(import_jobs::table.find(job_id))
        .filter(import_jobs::lease_owner.eq(worker))
        .set((
            import_jobs::lease_owner.eq(None::<String>),
            import_jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The first error rows of a job, in row order.
pub async fn errors_page(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    page: i64,
    per_page: i64,
) -> Result<(Vec<ImportErrorRow>, i64)> {
    let total: i64 = import_errors::table
        .filter(import_errors::job_id.eq(job_id))
        .count()
        .get_result(conn)
        .await?;
    let items = import_errors::table
        .filter(import_errors::job_id.eq(job_id))
        .order((import_errors::row.asc(), import_errors::id.asc()))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(ImportErrorRow::as_select())
        .load(conn)
        .await?;
    Ok((items, total))
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

/// Puts a failed or partial job back to `pending` from the start (counts,
/// checkpoint and error rows cleared) and queues its message, in one
/// transaction. `Conflict` from any other status.
pub async fn retry(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    traceparent: Option<String>,
) -> Result<ImportJob> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        let job: Option<ImportJob> = diesel::update(import_jobs::table.find(job_id))
            .filter(import_jobs::status.eq_any([JobStatus::Partial.as_str(), JobStatus::Error.as_str()]))
            .filter(import_jobs::file_purged_at.is_null())
            .set((
                import_jobs::status.eq(JobStatus::Pending.as_str()),
                import_jobs::total_rows.eq(0i64),
                import_jobs::processed_rows.eq(0i64),
                import_jobs::created_rows.eq(0i64),
                import_jobs::updated_rows.eq(0i64),
                import_jobs::unchanged_rows.eq(0i64),
                import_jobs::error_rows.eq(0i64),
                import_jobs::normalized_values.eq(0i64),
                import_jobs::checkpoint_row.eq(0i64),
                import_jobs::attempts.eq(0),
                import_jobs::last_error.eq(None::<String>),
                import_jobs::started_at.eq(None::<DateTime<Utc>>),
                import_jobs::completed_at.eq(None::<DateTime<Utc>>),
                import_jobs::lease_owner.eq(None::<String>),
                import_jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                import_jobs::updated_at.eq(diesel::dsl::now),
            ))
            .returning(ImportJob::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        let Some(job) = job else {
            return match get_job(conn, job_id).await? {
                None => Err(StorageError::NotFound),
                Some(j) if j.file_purged_at.is_some() => Err(StorageError::Conflict(
                    "the file of this import was purged; upload it again".into(),
                )),
                Some(j) => Err(StorageError::Conflict(format!(
                    "only an import in `error` or `partial` can be retried; this one is `{}`",
                    j.status
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

/// Jobs counted by status and by type, their rows summed, and the mean of
/// the per-job success rates (jobs with at least one processed row).
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStats {
    pub total: i64,
    /// Every status, 0 when none.
    pub by_status: std::collections::BTreeMap<String, i64>,
    /// Every import type, 0 when none.
    pub by_type: std::collections::BTreeMap<String, i64>,
    pub rows: RowTotals,
    /// Percentage, rounded to 2 decimals; null before any job processed a row.
    pub average_success_rate: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RowTotals {
    pub total: i64,
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub errors: i64,
}

#[derive(QueryableByName)]
struct StatsGroup {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    import_type: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    jobs: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total_rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    processed_rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    created_rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    updated_rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    unchanged_rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    error_rows: i64,
    /// Sum of the per-job success rates and how many jobs have one, so the
    /// groups combine into one mean.
    #[diesel(sql_type = diesel::sql_types::Double)]
    rate_sum: f64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rated: i64,
}

/// The dashboard's totals in one aggregate pass over `import_jobs`
/// (`owner` narrows it to one user's jobs).
pub async fn stats(conn: &mut AsyncPgConnection, owner: Option<Uuid>) -> Result<JobStats> {
    let groups: Vec<StatsGroup> = diesel::sql_query(
        "SELECT status, import_type, count(*) AS jobs,
                COALESCE(sum(total_rows), 0)::int8 AS total_rows,
                COALESCE(sum(processed_rows), 0)::int8 AS processed_rows,
                COALESCE(sum(created_rows), 0)::int8 AS created_rows,
                COALESCE(sum(updated_rows), 0)::int8 AS updated_rows,
                COALESCE(sum(unchanged_rows), 0)::int8 AS unchanged_rows,
                COALESCE(sum(error_rows), 0)::int8 AS error_rows,
                COALESCE(sum((processed_rows - error_rows)::float8 * 100 / processed_rows)
                         FILTER (WHERE processed_rows > 0), 0)::float8 AS rate_sum,
                count(*) FILTER (WHERE processed_rows > 0) AS rated
         FROM import_jobs
         WHERE $1::uuid IS NULL OR owner_id = $1
         GROUP BY status, import_type",
    )
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(owner)
    .load(conn)
    .await?;
    let mut stats = JobStats {
        by_status: JobStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0))
            .collect(),
        by_type: ImportType::ALL
            .iter()
            .map(|t| (t.as_str().to_owned(), 0))
            .collect(),
        ..JobStats::default()
    };
    let (mut rate_sum, mut rated) = (0.0, 0i64);
    for g in groups {
        stats.total += g.jobs;
        *stats.by_status.entry(g.status).or_default() += g.jobs;
        *stats.by_type.entry(g.import_type).or_default() += g.jobs;
        stats.rows.total += g.total_rows;
        stats.rows.processed += g.processed_rows;
        stats.rows.created += g.created_rows;
        stats.rows.updated += g.updated_rows;
        stats.rows.unchanged += g.unchanged_rows;
        stats.rows.errors += g.error_rows;
        rate_sum += g.rate_sum;
        rated += g.rated;
    }
    stats.average_success_rate = (rated > 0).then(|| (rate_sum / rated as f64 * 100.0).round() / 100.0);
    Ok(stats)
}
