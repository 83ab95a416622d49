//! One task's run: claimed by a worker, ended (`skipped` or `failed` here; `succeeded` with
//! its text in `generations`), or handed back for a retry.

use super::batches::complete_batch_if_done;
use super::status::TaskStatus;
use crate::Result;
use crate::schema::ai_tasks;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use foxflow_domain::ai_text::{TargetType, TextKind};
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
    Claimed(TaskRow),
    /// Already succeeded, failed or skipped: a redelivery.
    Final(TaskStatus),
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
}

/// Marks a pending (or, after a crash, processing) task `processing` and
/// counts the attempt.
pub async fn claim_task(conn: &mut AsyncPgConnection, id: Uuid) -> Result<TaskClaim> {
    let row: Option<ClaimedRow> = diesel::sql_query(
        "UPDATE ai_tasks t SET status = $2, attempts = t.attempts + 1,
                started_at = COALESCE(t.started_at, now())
           FROM ai_batches b
          WHERE t.id = $1 AND b.id = t.batch_id AND t.status = ANY($3)
         RETURNING t.id, t.batch_id, t.target_type, t.target_id, t.kind, t.attempts, b.force",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(TaskStatus::Processing)
    .bind::<Array<Text>, _>(&TaskStatus::OPEN[..])
    .get_result(conn)
    .await
    .optional()?;
    let Some(row) = row else {
        let found: Option<(TaskStatus, Uuid)> = ai_tasks::table
            .find(id)
            .select((ai_tasks::status, ai_tasks::batch_id))
            .first(conn)
            .await
            .optional()?;
        let Some((status, batch_id)) = found else {
            return Ok(TaskClaim::NotFound);
        };
        // A redelivery of a final task: the worker that ended it may have died
        // before its batch check (see `complete_batch_if_done`).
        complete_batch_if_done(conn, batch_id).await?;
        return Ok(TaskClaim::Final(status));
    };
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

/// Where an ending's words go: a failure's are its `last_error`, anything
/// else's (a skip) its `reason`, the one column saying why it was run or not.
fn reason_or_error(status: TaskStatus, words: &str) -> (Option<&str>, Option<&str>) {
    match status {
        TaskStatus::Failed => (None, Some(words)),
        _ => (Some(words), None),
    }
}

/// Ends a task that produced nothing to store (`skipped`, or `failed` with
/// the reason). Returns false when it was already final.
pub async fn finish_task(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: TaskStatus,
    reason: &str,
) -> Result<bool> {
    let (reason, error) = reason_or_error(status, reason);
    // One statement: it commits on its own, before the batch check.
    let batch: Option<BatchOf> = diesel::sql_query(
        "UPDATE ai_tasks SET status = $2, reason = COALESCE($3, reason), last_error = $4, completed_at = now()
          WHERE id = $1 AND status = ANY($5)
         RETURNING batch_id",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(status)
    .bind::<Nullable<Text>, _>(reason)
    .bind::<Nullable<Text>, _>(error)
    .bind::<Array<Text>, _>(&TaskStatus::OPEN[..])
    .get_result(conn)
    .await
    .optional()?;
    match batch {
        Some(b) => {
            complete_batch_if_done(conn, b.batch_id).await?;
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

/// Hands a task back (a transient failure, or shutdown): `pending` again,
/// with the error for operators.
pub async fn release_task(conn: &mut AsyncPgConnection, id: Uuid, error: Option<&str>) -> Result<()> {
    diesel::update(ai_tasks::table.find(id))
        .filter(ai_tasks::status.eq(TaskStatus::Processing))
        .set((
            ai_tasks::status.eq(TaskStatus::Pending),
            ai_tasks::last_error.eq(error),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
