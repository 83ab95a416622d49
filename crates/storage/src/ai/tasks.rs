//! One task's run: claimed under a lease, ended (`skipped` or `failed` here; `succeeded`
//! with its text in `generations`), or handed back for a retry.
//!
//! The lease is what makes a task run at most once at a time. The broker may hold several
//! copies of its message (a redelivery after a lost ack, a row the relay sent twice); a copy
//! that finds a live lease leaves the task alone and comes back later. A lease belongs to
//! one claim, not to a process: two deliveries in one worker are two claims, so the holder
//! is a token the caller makes per delivery, and only that token ends or hands back the
//! task. A lease that runs out means its holder died (or lost the database): the next
//! delivery takes the task over and counts a lost worker, and past the limit ends it
//! `failed` with `worker_lost`, so a task that kills its workers still ends.

use super::batches::complete_batch_if_done;
use super::status::TaskStatus;
use crate::RunState;
use crate::prepared::prepared;
use crate::schema::ai_tasks;
use crate::{Result, StorageError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use foxflow_domain::ai_text::{TargetType, TextKind};
use std::time::Duration;
use uuid::Uuid;

/// A task as the worker sees it.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: Uuid,
    pub batch_id: Uuid,
    pub target: TargetType,
    pub target_id: i64,
    pub kind: TextKind,
    /// Counted with this delivery.
    pub attempts: i32,
    pub force: bool,
}

#[derive(Debug)]
pub enum TaskClaim {
    /// Yours until the lease runs out: end it or hand it back with the same token.
    Claimed(TaskRow),
    /// Already succeeded, failed or skipped: a redelivery.
    Final(TaskStatus),
    /// Another live claim holds it until then: a duplicate delivery, which
    /// must neither touch the task nor wait for it.
    Leased {
        until: DateTime<Utc>,
    },
    /// Ended `failed` (`worker_lost`) by this claim: `lost` workers died
    /// holding it, more than allowed. Nothing left to do but acknowledge.
    WorkerLost {
        lost: i32,
    },
    NotFound,
    /// The row names a target type or kind this build does not know.
    Invalid(String),
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    batch_id: Uuid,
    #[diesel(sql_type = Text)]
    target_type: String,
    #[diesel(sql_type = BigInt)]
    target_id: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Bool)]
    force: bool,
    #[diesel(sql_type = Integer)]
    lost_workers: i32,
}

/// What an operator reads on a task given up because its workers kept dying.
fn worker_lost(lost: i32, max_lost: u32) -> String {
    format!(
        "worker_lost: the worker generating this text stopped {lost} times before finishing \
         (killed, crashed or cut off from the database), more than the {max_lost} allowed \
         (AI_MAX_RETRIES); it was not tried again. Look for ai-worker restarts or out-of-memory \
         kills, then ask for this text again"
    )
}

/// The claim itself: a pending task, or a processing one whose lease ran out (its holder
/// died: a lost worker) or that has none. SET reads the row as it was: a takeover is a
/// processing row with a holder. Two claims at once meet on the row lock; the second
/// re-reads the row, finds the first one's live lease and matches nothing. `$6`, when not
/// null, leaves alone a task that this claim would find past the lost-worker limit.
const CLAIM: &str = "UPDATE ai_tasks t SET status = $2, attempts = t.attempts + 1,
        started_at = COALESCE(t.started_at, now()),
        lease_owner = $4, lease_expires_at = now() + make_interval(secs => $5),
        lost_workers = t.lost_workers + (t.status = $2 AND t.lease_owner IS NOT NULL)::int
   FROM ai_batches b
  WHERE t.id = $1 AND b.id = t.batch_id
    AND (t.status = $3
         OR (t.status = $2 AND (t.lease_owner IS NULL OR t.lease_expires_at < now())))
    AND ($6::int4 IS NULL OR t.lost_workers + (t.status = $2 AND t.lease_owner IS NOT NULL)::int <= $6)
 RETURNING t.id, t.batch_id, t.target_type, t.target_id, t.kind, t.attempts, b.force, t.lost_workers";

async fn claim_row(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    holder: &str,
    lease: Duration,
    within: Option<i32>,
) -> Result<Option<ClaimedRow>> {
    Ok(prepared(
        diesel::sql_query(CLAIM)
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(TaskStatus::Processing)
            .bind::<Text, _>(TaskStatus::Pending)
            .bind::<Text, _>(holder)
            .bind::<Double, _>(lease.as_secs_f64())
            .bind::<Nullable<Integer>, _>(within),
    )
    .get_result(conn)
    .await
    .optional()?)
}

/// Takes a lease of `lease` on the task for `holder` (one token per
/// delivery) and counts the attempt: a pending task, or a processing one
/// whose lease ran out (its holder died: a lost worker) or that has none.
/// Once more than `max_lost` workers died holding it, the task ends
/// `failed` (`worker_lost`) instead.
pub async fn claim_task(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    holder: &str,
    lease: Duration,
    max_lost: u32,
) -> Result<TaskClaim> {
    // Nearly every claim succeeds within the limit: one statement, its own transaction.
    let within = i32::try_from(max_lost).unwrap_or(i32::MAX);
    let claimed = match claim_row(conn, id, holder, lease, Some(within)).await? {
        Some(row) => Some(row),
        // Not claimable (final, leased, missing), or only past the limit: in one
        // transaction, so the claim that gives up commits with its ending.
        None => {
            conn.transaction::<_, StorageError, _>(async |conn| {
                let row = claim_row(conn, id, holder, lease, None).await?;
                if let Some(r) = &row
                    && i64::from(r.lost_workers) > i64::from(max_lost)
                {
                    let words = worker_lost(r.lost_workers, max_lost);
                    end(conn, id, Some(holder), TaskStatus::Failed, &words).await?;
                }
                Ok(row)
            })
            .await?
        }
    };
    let Some(row) = claimed else {
        let found: Option<(TaskStatus, Uuid, Option<DateTime<Utc>>)> = ai_tasks::table
            .find(id)
            .select((ai_tasks::status, ai_tasks::batch_id, ai_tasks::lease_expires_at))
            .first(conn)
            .await
            .optional()?;
        let Some((status, batch_id, until)) = found else {
            return Ok(TaskClaim::NotFound);
        };
        if status.is_open() {
            // Held by a live claim (or handed back an instant ago: the copy
            // comes back later all the same).
            return Ok(TaskClaim::Leased {
                until: until.unwrap_or_else(Utc::now),
            });
        }
        // A redelivery of a final task: the worker that ended it may have died
        // before its batch check (see `complete_batch_if_done`).
        complete_batch_if_done(conn, batch_id).await?;
        return Ok(TaskClaim::Final(status));
    };
    if i64::from(row.lost_workers) > i64::from(max_lost) {
        complete_batch_if_done(conn, row.batch_id).await?;
        return Ok(TaskClaim::WorkerLost {
            lost: row.lost_workers,
        });
    }
    let (Ok(target), Ok(kind)) = (
        row.target_type.parse::<TargetType>(),
        row.kind.parse::<TextKind>(),
    ) else {
        return Ok(TaskClaim::Invalid(format!(
            "task {id} names `{}` / `{}`",
            row.target_type, row.kind
        )));
    };
    if !target.has_kind(kind) {
        return Ok(TaskClaim::Invalid(format!("a {target} has no `{kind}` text")));
    }
    Ok(TaskClaim::Claimed(TaskRow {
        id: row.id,
        batch_id: row.batch_id,
        target,
        target_id: row.target_id,
        kind,
        attempts: row.attempts,
        force: row.force,
    }))
}

#[derive(QueryableByName)]
struct RunStateRow {
    #[diesel(sql_type = Text)]
    status: TaskStatus,
    #[diesel(sql_type = Bool)]
    live: bool,
}

/// A cheap look at whether a task can be claimed, without claiming it.
pub async fn task_run_state(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<RunState>> {
    let row: Option<RunStateRow> = prepared(
        diesel::sql_query(
            "SELECT status, COALESCE(lease_owner IS NOT NULL AND lease_expires_at > clock_timestamp(), false) AS live
               FROM ai_tasks WHERE id = $1",
        )
        .bind::<SqlUuid, _>(id),
    )
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|RunStateRow { status, live }| {
        if !status.is_open() {
            RunState::Final
        } else if live && status == TaskStatus::Processing {
            RunState::Running
        } else {
            RunState::Open
        }
    }))
}

/// Where an ending's words go: a failure's are its `last_error`, anything
/// else's (a skip) its `reason`, the one column saying why it was run or not.
fn reason_or_error(status: TaskStatus, words: &str) -> (Option<&str>, Option<&str>) {
    match status {
        TaskStatus::Failed => (None, Some(words)),
        _ => (Some(words), None),
    }
}

/// Ends an open task (only while `holder` holds its lease, when given) and
/// drops its lease. Returns its batch, `None` when nothing was ended.
async fn end(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    holder: Option<&str>,
    status: TaskStatus,
    words: &str,
) -> Result<Option<Uuid>> {
    let (reason, error) = reason_or_error(status, words);
    let batch: Option<BatchOf> = prepared(
        diesel::sql_query(
            "UPDATE ai_tasks SET status = $2, reason = COALESCE($3, reason), last_error = $4, completed_at = now(),
                    lease_owner = NULL, lease_expires_at = NULL
              WHERE id = $1 AND status = ANY($5) AND ($6::text IS NULL OR lease_owner = $6)
             RETURNING batch_id",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(status)
        .bind::<Nullable<Text>, _>(reason)
        .bind::<Nullable<Text>, _>(error)
        .bind::<Array<Text>, _>(&TaskStatus::OPEN[..])
        .bind::<Nullable<Text>, _>(holder),
    )
    .get_result(conn)
    .await
    .optional()?;
    Ok(batch.map(|b| b.batch_id))
}

/// Ends a task that produced nothing to store (`skipped`, or `failed` with
/// the reason) for the claim `holder`, which must still hold it. Returns
/// false when it did not (already final, or taken over after its lease ran
/// out: the new holder ends it).
pub async fn finish_claimed_task(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    holder: &str,
    status: TaskStatus,
    reason: &str,
) -> Result<bool> {
    // One statement: it commits on its own, before the batch check.
    let batch = end(conn, id, Some(holder), status, reason).await?;
    ended(conn, batch).await
}

/// Ends a task whatever holds it: its message was parked, and may have been
/// its last copy. A live holder elsewhere then finds it final when it stores,
/// and writes nothing. Returns false when it was already final.
pub async fn finish_task(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: TaskStatus,
    reason: &str,
) -> Result<bool> {
    let batch = end(conn, id, None, status, reason).await?;
    ended(conn, batch).await
}

/// The batch check after a task ended (see `complete_batch_if_done`).
async fn ended(conn: &mut AsyncPgConnection, batch: Option<Uuid>) -> Result<bool> {
    match batch {
        Some(b) => {
            complete_batch_if_done(conn, b).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[derive(QueryableByName)]
struct BatchOf {
    #[diesel(sql_type = SqlUuid)]
    batch_id: Uuid,
}

/// Hands a task back (a transient failure, or shutdown): `pending` again and
/// free for any claim, with the error for operators. Only its holder can.
pub async fn release_task(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    holder: &str,
    error: Option<&str>,
) -> Result<()> {
    diesel::update(ai_tasks::table.find(id))
        .filter(ai_tasks::status.eq(TaskStatus::Processing))
        .filter(ai_tasks::lease_owner.eq(holder))
        .set((
            ai_tasks::status.eq(TaskStatus::Pending),
            ai_tasks::last_error.eq(error),
            ai_tasks::lease_owner.eq(None::<String>),
            ai_tasks::lease_expires_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_worker_ending_says_what_happened_and_starts_with_its_code() {
        let words = worker_lost(3, 2);
        assert!(words.starts_with("worker_lost: "), "{words}");
        assert!(
            words.contains("stopped 3 times") && words.contains("the 2 allowed"),
            "{words}"
        );
    }

    #[test]
    fn a_failure_keeps_its_words_as_the_error_a_skip_as_the_reason() {
        assert_eq!(
            reason_or_error(TaskStatus::Failed, "provider down"),
            (None, Some("provider down"))
        );
        assert_eq!(
            reason_or_error(TaskStatus::Skipped, "recent"),
            (Some("recent"), None)
        );
    }
}
