//! Batches: written with their tasks and outbox rows in one go, read back as progress,
//! closed exactly once when their last task ends (and announced to the webhooks then).

use super::status::TaskStatus;
use super::targets::touched_ids;
use crate::schema::{ai_batches, ai_tasks};
use crate::{Result, StorageError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use foxflow_domain::ai_text::{TargetType, TextKind};
use foxflow_domain::messages::{Message, QueueKind};
use foxflow_domain::webhooks::WebhookEvent;
use serde::Serialize;
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Building batches
// ---------------------------------------------------------------------------

/// What a batch asks for.
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub target: TargetType,
    /// Distinct kinds, each one the target has.
    pub kinds: Vec<TextKind>,
    pub force: bool,
    pub import_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    /// How the targets were chosen, kept for operators.
    pub selection: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CreatedBatch {
    pub id: Uuid,
    pub target_type: TargetType,
    pub total: i64,
}

/// Writes a batch, one task per (target id, kind) and one outbox message per
/// task. Call it inside the transaction that decided on the ids: the
/// messages exist if and only if the tasks do. `target_ids` must exist and
/// be distinct.
pub async fn create_batch(
    conn: &mut AsyncPgConnection,
    new: &NewBatch,
    target_ids: &[i64],
    traceparent: Option<&str>,
) -> Result<CreatedBatch> {
    let id = Uuid::now_v7();
    let n = target_ids.len() * new.kinds.len();
    let total = i32::try_from(n).map_err(|_| {
        StorageError::Conflict(foxflow_domain::text!(
            "{n} tâches, c’est trop pour un seul lot",
            "{n} tasks is too many for one batch"
        ))
    })?;
    diesel::insert_into(ai_batches::table)
        .values((
            ai_batches::id.eq(id),
            ai_batches::target_type.eq(new.target.as_str()),
            ai_batches::kinds.eq(new.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>()),
            ai_batches::force.eq(new.force),
            ai_batches::import_id.eq(new.import_id),
            ai_batches::owner_id.eq(new.owner_id),
            ai_batches::total.eq(total),
            ai_batches::selection.eq(&new.selection),
            // An empty batch is complete at once.
            ai_batches::completed_at.eq((n == 0).then(Utc::now)),
        ))
        .execute(conn)
        .await?;
    if n == 0 {
        announce_completion(conn, id).await?;
        return Ok(CreatedBatch {
            id,
            target_type: new.target,
            total: 0,
        });
    }
    let mut task_ids = Vec::with_capacity(n);
    let mut task_targets = Vec::with_capacity(n);
    let mut task_kinds = Vec::with_capacity(n);
    let mut message_ids = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    for &target_id in target_ids {
        for kind in &new.kinds {
            let task_id = Uuid::now_v7();
            task_ids.push(task_id);
            task_targets.push(target_id);
            task_kinds.push(kind.as_str());
            message_ids.push(Uuid::now_v7());
            payloads.push(
                serde_json::to_value(Message::ai_generation_requested(task_id))
                    .expect("messages always serialise"),
            );
        }
    }
    diesel::sql_query(
        "INSERT INTO ai_tasks (id, batch_id, target_type, target_id, kind)
         SELECT t.id, $4, $5, t.target_id, t.kind FROM UNNEST($1::uuid[], $2::int8[], $3::text[]) AS t(id, target_id, kind)",
    )
    .bind::<Array<SqlUuid>, _>(&task_ids)
    .bind::<Array<BigInt>, _>(&task_targets)
    .bind::<Array<Text>, _>(&task_kinds)
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(new.target.as_str())
    .execute(conn)
    .await?;
    // The outbox rows `outbox::enqueue` would write, in one statement.
    diesel::sql_query(
        "INSERT INTO outbox (routing_key, message_id, payload, traceparent)
         SELECT $3, m.id, m.payload, $4 FROM UNNEST($1::uuid[], $2::jsonb[]) WITH ORDINALITY AS m(id, payload, n)
         ORDER BY m.n",
    )
    .bind::<Array<SqlUuid>, _>(&message_ids)
    .bind::<Array<Jsonb>, _>(&payloads)
    .bind::<Text, _>(QueueKind::AiGeneration.as_str())
    .bind::<Nullable<Text>, _>(traceparent)
    .execute(conn)
    .await?;
    Ok(CreatedBatch {
        id,
        target_type: new.target,
        total: n as i64,
    })
}

/// The hand-over of an import with `generate_ai=true` (docs/spec.md §4.4): one batch
/// per target type the import created or updated (from `import_touched`),
/// every kind of text, forced — the entities changed, so their texts are
/// rewritten even when recent. Call it inside the transaction that marks the
/// import final, after its last batch is committed; it writes nothing when
/// the import touched nothing. Expects `import_touched.target_type` to be a
/// `TargetType::as_str()` or `entreprise` (which stands for its pages).
pub async fn create_batch_for_import(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    owner_id: Option<Uuid>,
    traceparent: Option<&str>,
) -> Result<Vec<CreatedBatch>> {
    let mut created = Vec::new();
    for target in TargetType::ALL {
        let ids = touched_ids(conn, job_id, target).await?;
        if ids.is_empty() {
            continue;
        }
        let new = NewBatch {
            target,
            kinds: target.kinds().to_vec(),
            force: true,
            import_id: Some(job_id),
            owner_id,
            selection: serde_json::json!({ "import_id": job_id }),
        };
        created.push(create_batch(conn, &new, &ids, traceparent).await?);
    }
    Ok(created)
}

// ---------------------------------------------------------------------------
// Reading batches
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ai_batches)]
pub struct BatchRow {
    pub id: Uuid,
    pub target_type: String,
    pub kinds: Vec<String>,
    pub force: bool,
    pub import_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub total: i32,
    pub created_at: DateTime<Utc>,
    pub selection: Option<serde_json::Value>,
}

/// A batch with its tasks counted by status.
#[derive(Debug, Clone, Serialize)]
pub struct BatchProgress {
    pub id: Uuid,
    pub target: String,
    pub kinds: Vec<String>,
    pub force: bool,
    pub import_id: Option<Uuid>,
    #[serde(skip)]
    pub owner_id: Option<Uuid>,
    pub selection: Option<serde_json::Value>,
    /// `running` while any task is pending or processing, then `completed`.
    pub status: &'static str,
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
    /// Not final yet: queued or being generated.
    pub pending: i64,
    /// Of `pending`, those being generated now.
    pub processing: i64,
    pub created_at: DateTime<Utc>,
    /// When the last task ended; null while running.
    pub completed_at: Option<DateTime<Utc>>,
}

/// A batch's `status` and `completed_at`, from its open tasks: while any is
/// open it is `running`; then it completed when its last task ended, or when
/// it was created if it had nothing to do. One rule for one batch and for a
/// page of them.
fn completion(
    open_tasks: i64,
    last_task_end: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
) -> (&'static str, Option<DateTime<Utc>>) {
    if open_tasks == 0 {
        ("completed", Some(last_task_end.unwrap_or(created_at)))
    } else {
        ("running", None)
    }
}

#[derive(QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = Text)]
    status: TaskStatus,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last: Option<DateTime<Utc>>,
}

pub async fn batch_progress(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<BatchProgress>> {
    let Some(batch) = ai_batches::table
        .find(id)
        .select(BatchRow::as_select())
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let counts: Vec<StatusCount> = diesel::sql_query(
        "SELECT status, count(*) AS n, max(completed_at) AS last FROM ai_tasks WHERE batch_id = $1 GROUP BY status",
    )
    .bind::<SqlUuid, _>(id)
    .load(conn)
    .await?;
    let get = |s: TaskStatus| counts.iter().find(|c| c.status == s).map_or(0, |c| c.n);
    let processing = get(TaskStatus::Processing);
    let pending = get(TaskStatus::Pending) + processing;
    let (status, completed_at) = completion(
        pending,
        counts.iter().filter_map(|c| c.last).max(),
        batch.created_at,
    );
    Ok(Some(BatchProgress {
        id: batch.id,
        target: batch.target_type,
        kinds: batch.kinds,
        force: batch.force,
        import_id: batch.import_id,
        owner_id: batch.owner_id,
        selection: batch.selection,
        status,
        total: i64::from(batch.total),
        succeeded: get(TaskStatus::Succeeded),
        failed: get(TaskStatus::Failed),
        skipped: get(TaskStatus::Skipped),
        pending,
        processing,
        created_at: batch.created_at,
        completed_at,
    }))
}

/// One failed task, for the batch's failure preview.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = ai_tasks)]
pub struct FailedTask {
    pub id: Uuid,
    pub target_id: i64,
    pub kind: String,
    pub last_error: Option<String>,
}

pub async fn failed_tasks(
    conn: &mut AsyncPgConnection,
    batch_id: Uuid,
    limit: i64,
) -> Result<Vec<FailedTask>> {
    Ok(ai_tasks::table
        .filter(ai_tasks::batch_id.eq(batch_id))
        .filter(ai_tasks::status.eq(TaskStatus::Failed))
        .order((ai_tasks::target_id.asc(), ai_tasks::kind.asc()))
        .limit(limit)
        .select(FailedTask::as_select())
        .load(conn)
        .await?)
}

#[derive(QueryableByName)]
struct BatchListRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    target_type: String,
    #[diesel(sql_type = Array<Text>)]
    kinds: Vec<String>,
    #[diesel(sql_type = Bool)]
    force: bool,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    import_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    owner_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    selection: Option<serde_json::Value>,
    #[diesel(sql_type = Integer)]
    total: i32,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    succeeded: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
    #[diesel(sql_type = BigInt)]
    skipped: i64,
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = BigInt)]
    processing: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last: Option<DateTime<Utc>>,
}

/// One page of batches, newest first, each with its tasks counted by status
/// (one statement for the page, whatever its size), and the total.
/// `owner` narrows it to one user's batches.
pub async fn list_batches(
    conn: &mut AsyncPgConnection,
    owner: Option<Uuid>,
    page: i64,
    per_page: i64,
) -> Result<(Vec<BatchProgress>, i64)> {
    let total: i64 = {
        let mut q = ai_batches::table.into_boxed();
        if let Some(o) = owner {
            q = q.filter(ai_batches::owner_id.eq(o));
        }
        q.count().get_result(conn).await?
    };
    let rows: Vec<BatchListRow> = diesel::sql_query(
        "SELECT b.id, b.target_type, b.kinds, b.force, b.import_id, b.owner_id, b.selection, b.total,
                b.created_at,
                count(t.id) FILTER (WHERE t.status = $4) AS succeeded,
                count(t.id) FILTER (WHERE t.status = $5) AS failed,
                count(t.id) FILTER (WHERE t.status = $6) AS skipped,
                count(t.id) FILTER (WHERE t.status = ANY($7)) AS pending,
                count(t.id) FILTER (WHERE t.status = $8) AS processing,
                max(t.completed_at) AS last
         FROM (SELECT * FROM ai_batches
               WHERE $1::uuid IS NULL OR owner_id = $1
               ORDER BY created_at DESC, id DESC
               LIMIT $2 OFFSET $3) b
         LEFT JOIN ai_tasks t ON t.batch_id = b.id
         GROUP BY b.id, b.target_type, b.kinds, b.force, b.import_id, b.owner_id, b.selection, b.total,
                  b.created_at
         ORDER BY b.created_at DESC, b.id DESC",
    )
    .bind::<Nullable<SqlUuid>, _>(owner)
    .bind::<BigInt, _>(per_page)
    .bind::<BigInt, _>((page - 1) * per_page)
    .bind::<Text, _>(TaskStatus::Succeeded)
    .bind::<Text, _>(TaskStatus::Failed)
    .bind::<Text, _>(TaskStatus::Skipped)
    .bind::<Array<Text>, _>(&TaskStatus::OPEN[..])
    .bind::<Text, _>(TaskStatus::Processing)
    .load(conn)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let (status, completed_at) = completion(r.pending, r.last, r.created_at);
            BatchProgress {
                id: r.id,
                target: r.target_type,
                kinds: r.kinds,
                force: r.force,
                import_id: r.import_id,
                owner_id: r.owner_id,
                selection: r.selection,
                status,
                total: i64::from(r.total),
                succeeded: r.succeeded,
                failed: r.failed,
                skipped: r.skipped,
                pending: r.pending,
                processing: r.processing,
                created_at: r.created_at,
                completed_at,
            }
        })
        .collect();
    Ok((items, total))
}

// ---------------------------------------------------------------------------
// Completing batches
// ---------------------------------------------------------------------------

/// Marks a batch completed when none of its tasks is pending or processing
/// any more, and queues `ai_batch.completed` for the webhooks, once. Call it
/// after the transaction that ended one of its tasks has committed, never
/// inside it.
///
/// Why after: of two tasks ending at the same moment, each transaction still
/// sees the other one running, so a check inside them could leave the batch
/// open for ever (unless every task end locked the batch row, which
/// serialised every commit of a batch behind that one lock). A check after
/// the commit cannot miss: the task that commits last checks last, and sees
/// every task final. Two checks that both see it done meet on the row lock
/// of the `UPDATE`; the second finds `completed_at` set and does nothing. A
/// worker that dies between its commit and this check leaves its message
/// unacknowledged, and `claim_task` checks again on the redelivery.
pub async fn complete_batch_if_done(conn: &mut AsyncPgConnection, batch_id: Uuid) -> Result<bool> {
    // Every task end asks; nearly every answer is "not yet". One read says
    // so without a transaction; only a batch that looks done goes on to the
    // write, which checks again under the row lock.
    let open_batch = ai_batches::table
        .find(batch_id)
        .filter(ai_batches::completed_at.is_null())
        .select(ai_batches::id);
    let open_task = ai_tasks::table
        .filter(ai_tasks::batch_id.eq(batch_id))
        .filter(ai_tasks::status.eq_any(TaskStatus::OPEN));
    let looks_done: bool =
        diesel::select(diesel::dsl::exists(open_batch).and(diesel::dsl::not(diesel::dsl::exists(open_task))))
            .get_result(conn)
            .await?;
    if !looks_done {
        return Ok(false);
    }
    conn.transaction::<_, StorageError, _>(async |conn| {
        // NOT EXISTS stops at the first open task: the check costs the same
        // for the first task of a 50,000-task batch as for the last.
        let completed = diesel::sql_query(
            "UPDATE ai_batches b SET completed_at = now()
              WHERE b.id = $1 AND b.completed_at IS NULL
                AND NOT EXISTS (SELECT 1 FROM ai_tasks t
                                 WHERE t.batch_id = b.id AND t.status = ANY($2))",
        )
        .bind::<SqlUuid, _>(batch_id)
        .bind::<Array<Text>, _>(&TaskStatus::OPEN[..])
        .execute(conn)
        .await?;
        if completed == 0 {
            return Ok(false);
        }
        announce_completion(conn, batch_id).await?;
        Ok(true)
    })
    .await
}

/// Queues `ai_batch.completed` with the batch's final counts, in the
/// transaction that marks it completed.
async fn announce_completion(conn: &mut AsyncPgConnection, batch_id: Uuid) -> Result<()> {
    if let Some(progress) = batch_progress(conn, batch_id).await? {
        crate::webhooks::enqueue(
            conn,
            WebhookEvent::AiBatchCompleted,
            serde_json::to_value(&progress).expect("batch progress serialises"),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_batch_completes_when_its_last_task_ends() {
        let created = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let ended = Utc.with_ymd_and_hms(2026, 12, 1, 9, 5, 0).unwrap();
        assert_eq!(completion(3, Some(ended), created), ("running", None));
        assert_eq!(completion(0, Some(ended), created), ("completed", Some(ended)));
        // Nothing to do: complete from the start.
        assert_eq!(completion(0, None, created), ("completed", Some(created)));
    }

    #[test]
    fn the_webhook_payload_is_the_progress_without_its_owner() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let progress = BatchProgress {
            id: Uuid::nil(),
            target: "ville".into(),
            kinds: vec!["description".into()],
            force: false,
            import_id: None,
            owner_id: Some(Uuid::nil()),
            selection: None,
            status: "completed",
            total: 2,
            succeeded: 1,
            failed: 1,
            skipped: 0,
            pending: 0,
            processing: 0,
            created_at: at,
            completed_at: Some(at),
        };
        let json = serde_json::to_value(&progress).unwrap();
        assert!(json.get("owner_id").is_none(), "{json}");
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "id",
                "target",
                "kinds",
                "force",
                "import_id",
                "selection",
                "status",
                "total",
                "succeeded",
                "failed",
                "skipped",
                "pending",
                "processing",
                "created_at",
                "completed_at"
            ]
        );
    }
}
