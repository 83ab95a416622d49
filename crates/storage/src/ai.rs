//! AI generation batches, tasks and the history of generated texts (docs/spec.md §8).
//!
//! A batch is one request ("these pages, these kinds"); a task is one
//! (target, kind) and travels as one `ai_generation_requested` message. The
//! batch, its tasks and their outbox rows are written in the caller's
//! transaction, in three set-based statements whatever the batch size. A
//! task's final status is written in the same transaction as its effect (the
//! text, the history row), so a redelivered message finds it final and stops.

use crate::schema::{ai_batches, ai_tasks};
use crate::{Result, StorageError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use foxflow_domain::ai_text::{
    CategorieFacts, Draft, Facts, FaqEntry, PageFacts, SousCategorieFacts, TargetType, TextKind, VilleFacts,
};
use foxflow_domain::messages::{Message, QueueKind};
use serde::Serialize;
use uuid::Uuid;

/// A task's status (`ai_tasks.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Processing,
    Succeeded,
    Failed,
    Skipped,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Processing => "processing",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
        }
    }
}

fn table_of(target: TargetType) -> &'static str {
    match target {
        TargetType::Prolocalisation => "prolocalisations",
        TargetType::Categorie => "categories",
        TargetType::SousCategorie => "sous_categories",
        TargetType::Ville => "villes",
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

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

/// Of `ids`, those that exist, in order.
pub async fn existing_ids(conn: &mut AsyncPgConnection, target: TargetType, ids: &[i64]) -> Result<Vec<i64>> {
    let sql = format!(
        "SELECT id FROM {} WHERE id = ANY($1) ORDER BY id",
        table_of(target)
    );
    Ok(diesel::sql_query(sql)
        .bind::<Array<BigInt>, _>(ids)
        .load::<Id>(conn)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// The targets of type `target` that import `job_id` created or updated,
/// from `import_touched`. Pages are also reached through their entreprise:
/// a touched `entreprise` row stands for all of its pages.
pub async fn touched_ids(conn: &mut AsyncPgConnection, job_id: Uuid, target: TargetType) -> Result<Vec<i64>> {
    let sql = match target {
        TargetType::Prolocalisation => {
            "SELECT p.id FROM import_touched t JOIN prolocalisations p ON p.id = t.target_id
              WHERE t.job_id = $1 AND t.target_type = 'prolocalisation'
             UNION
             SELECT p.id FROM import_touched t JOIN prolocalisations p ON p.entreprise_id = t.target_id
              WHERE t.job_id = $1 AND t.target_type = 'entreprise'
             ORDER BY 1"
                .to_owned()
        }
        other => format!(
            "SELECT x.id FROM import_touched t JOIN {} x ON x.id = t.target_id
              WHERE t.job_id = $1 AND t.target_type = '{}' ORDER BY 1",
            table_of(other),
            other.as_str()
        ),
    };
    Ok(diesel::sql_query(sql)
        .bind::<SqlUuid, _>(job_id)
        .load::<Id>(conn)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// The filter form of a batch: every target of a type, narrowed down.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFilter {
    /// Pages of one town.
    pub ville_id: Option<i64>,
    /// Pages of one sous-catégorie.
    pub sous_categorie_id: Option<i64>,
    /// Pages or sous-catégories of one catégorie.
    pub categorie_id: Option<i64>,
    /// Pages or towns of one département (`69`, `2A`, `974`).
    pub departement: Option<String>,
    /// Only targets whose texts were never generated.
    #[serde(default)]
    pub never_generated: bool,
}

/// The ids a filter selects, at most `limit` (+1, so the caller can tell
/// "too many" from "exactly the limit").
pub async fn filter_ids(
    conn: &mut AsyncPgConnection,
    target: TargetType,
    filter: &TargetFilter,
    limit: i64,
) -> Result<Vec<i64>> {
    let never = "($5 = false OR NOT EXISTS (SELECT 1 FROM ai_generations g WHERE g.target_type = $6 AND g.target_id = x.id AND g.validation <> 'rejected'))";
    let sql = match target {
        TargetType::Prolocalisation => format!(
            "SELECT x.id FROM prolocalisations x
              JOIN sous_categories s ON s.id = x.sous_categorie_id
              JOIN villes v ON v.id = x.ville_id
              WHERE x.is_active
                AND ($1::int8 IS NULL OR x.ville_id = $1)
                AND ($2::int8 IS NULL OR x.sous_categorie_id = $2)
                AND ($3::int8 IS NULL OR s.categorie_id = $3)
                AND ($4::text IS NULL OR v.departement = $4)
                AND {never}
              ORDER BY x.id LIMIT $7"
        ),
        TargetType::Ville => format!(
            "SELECT x.id FROM villes x
              WHERE ($1::int8 IS NULL OR x.id = $1)
                AND ($2::int8 IS NULL OR EXISTS (SELECT 1 FROM prolocalisations p WHERE p.ville_id = x.id AND p.sous_categorie_id = $2))
                AND ($3::int8 IS NULL OR EXISTS (SELECT 1 FROM prolocalisations p JOIN sous_categories s ON s.id = p.sous_categorie_id WHERE p.ville_id = x.id AND s.categorie_id = $3))
                AND ($4::text IS NULL OR x.departement = $4)
                AND {never}
              ORDER BY x.id LIMIT $7"
        ),
        TargetType::SousCategorie => format!(
            "SELECT x.id FROM sous_categories x
              WHERE ($1::int8 IS NULL OR EXISTS (SELECT 1 FROM prolocalisations p WHERE p.sous_categorie_id = x.id AND p.ville_id = $1))
                AND ($2::int8 IS NULL OR x.id = $2)
                AND ($3::int8 IS NULL OR x.categorie_id = $3)
                AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM prolocalisations p JOIN villes v ON v.id = p.ville_id WHERE p.sous_categorie_id = x.id AND v.departement = $4))
                AND {never}
              ORDER BY x.id LIMIT $7"
        ),
        TargetType::Categorie => format!(
            "SELECT x.id FROM categories x
              WHERE ($1::int8 IS NULL OR EXISTS (SELECT 1 FROM sous_categories s JOIN prolocalisations p ON p.sous_categorie_id = s.id WHERE s.categorie_id = x.id AND p.ville_id = $1))
                AND ($2::int8 IS NULL OR EXISTS (SELECT 1 FROM sous_categories s WHERE s.categorie_id = x.id AND s.id = $2))
                AND ($3::int8 IS NULL OR x.id = $3)
                AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM sous_categories s JOIN prolocalisations p ON p.sous_categorie_id = s.id JOIN villes v ON v.id = p.ville_id WHERE s.categorie_id = x.id AND v.departement = $4))
                AND {never}
              ORDER BY x.id LIMIT $7"
        ),
    };
    Ok(diesel::sql_query(sql)
        .bind::<Nullable<BigInt>, _>(filter.ville_id)
        .bind::<Nullable<BigInt>, _>(filter.sous_categorie_id)
        .bind::<Nullable<BigInt>, _>(filter.categorie_id)
        .bind::<Nullable<Text>, _>(filter.departement.as_deref())
        .bind::<Bool, _>(filter.never_generated)
        .bind::<Text, _>(target.as_str())
        .bind::<BigInt, _>(limit.saturating_add(1))
        .load::<Id>(conn)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
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
    let total = i32::try_from(n)
        .map_err(|_| StorageError::Conflict(format!("{n} tasks is too many for one batch")))?;
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

#[derive(QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = Text)]
    status: String,
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
    let get = |s: TaskStatus| counts.iter().find(|c| c.status == s.as_str()).map_or(0, |c| c.n);
    let processing = get(TaskStatus::Processing);
    let pending = get(TaskStatus::Pending) + processing;
    let completed_at = if pending == 0 {
        counts
            .iter()
            .filter_map(|c| c.last)
            .max()
            .or(Some(batch.created_at))
    } else {
        None
    };
    Ok(Some(BatchProgress {
        id: batch.id,
        target: batch.target_type,
        kinds: batch.kinds,
        force: batch.force,
        import_id: batch.import_id,
        owner_id: batch.owner_id,
        selection: batch.selection,
        status: if pending == 0 { "completed" } else { "running" },
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
        .filter(ai_tasks::status.eq(TaskStatus::Failed.as_str()))
        .order((ai_tasks::target_id.asc(), ai_tasks::kind.asc()))
        .limit(limit)
        .select(FailedTask::as_select())
        .load(conn)
        .await?)
}

// ---------------------------------------------------------------------------
// Running tasks
// ---------------------------------------------------------------------------

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
    Final(String),
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
        "UPDATE ai_tasks t SET status = 'processing', attempts = t.attempts + 1,
                started_at = COALESCE(t.started_at, now())
           FROM ai_batches b
          WHERE t.id = $1 AND b.id = t.batch_id AND t.status IN ('pending', 'processing')
         RETURNING t.id, t.batch_id, t.target_type, t.target_id, t.kind, t.attempts, b.force",
    )
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await
    .optional()?;
    let Some(row) = row else {
        let found: Option<(String, Uuid)> = ai_tasks::table
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

/// Ends a task that produced nothing to store (`skipped`, or `failed` with
/// the reason). Returns false when it was already final.
pub async fn finish_task(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: TaskStatus,
    reason: &str,
) -> Result<bool> {
    let (reason, error) = match status {
        TaskStatus::Failed => (None, Some(reason)),
        _ => (Some(reason), None),
    };
    // One statement: it commits on its own, before the batch check.
    let batch: Option<BatchOf> = diesel::sql_query(
        "UPDATE ai_tasks SET status = $2, reason = COALESCE($3, reason), last_error = $4, completed_at = now()
          WHERE id = $1 AND status IN ('pending', 'processing')
         RETURNING batch_id",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(status.as_str())
    .bind::<Nullable<Text>, _>(reason)
    .bind::<Nullable<Text>, _>(error)
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
/// unacknowledged, and [`claim_task`] checks again on the redelivery.
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
        .filter(ai_tasks::status.eq_any([TaskStatus::Pending.as_str(), TaskStatus::Processing.as_str()]));
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
                                 WHERE t.batch_id = b.id AND t.status IN ('pending', 'processing'))",
        )
        .bind::<SqlUuid, _>(batch_id)
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
            foxflow_domain::webhooks::WebhookEvent::AiBatchCompleted,
            serde_json::to_value(&progress).expect("batch progress serialises"),
        )
        .await?;
    }
    Ok(())
}

/// Hands a task back (a transient failure, or shutdown): `pending` again,
/// with the error for operators.
pub async fn release_task(conn: &mut AsyncPgConnection, id: Uuid, error: Option<&str>) -> Result<()> {
    diesel::update(ai_tasks::table.find(id))
        .filter(ai_tasks::status.eq(TaskStatus::Processing.as_str()))
        .set((
            ai_tasks::status.eq(TaskStatus::Pending.as_str()),
            ai_tasks::last_error.eq(error),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A target's facts and its current text of one kind.
#[derive(Debug, Clone)]
pub struct Subject {
    pub facts: Facts,
    pub current: Option<Draft>,
    /// When the current text was generated, if known.
    pub generated_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct PageRow {
    #[diesel(sql_type = Text)]
    entreprise: String,
    #[diesel(sql_type = Nullable<Text>)]
    nom_commercial: Option<String>,
    #[diesel(sql_type = Text)]
    siren: String,
    #[diesel(sql_type = Nullable<Text>)]
    adresse: Option<String>,
    #[diesel(sql_type = Text)]
    activite: String,
    #[diesel(sql_type = Nullable<Text>)]
    categorie: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    naf_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    naf_libelle: Option<String>,
    #[diesel(sql_type = Text)]
    ville: String,
    #[diesel(sql_type = Text)]
    code_postal: String,
    #[diesel(sql_type = Nullable<Text>)]
    departement: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    region: Option<String>,
    #[diesel(sql_type = Integer)]
    nb_avis: i32,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    note_moyenne: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    current_text: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    current_faq: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    generated_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct DescribedRow {
    #[diesel(sql_type = Text)]
    nom: String,
    #[diesel(sql_type = Nullable<Text>)]
    parent: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    description: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    mots_cles: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    names: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    code_postal: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    departement: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    region: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    population: Option<i64>,
    #[diesel(sql_type = BigInt)]
    nb_pages: i64,
    #[diesel(sql_type = Nullable<Text>)]
    current_text: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    generated_at: Option<DateTime<Utc>>,
}

/// The last accepted generation of this kind for this target.
const LAST_GENERATED: &str = "(SELECT max(g.created_at) FROM ai_generations g
    WHERE g.target_type = $3 AND g.target_id = x.id AND g.kind = $2 AND g.validation <> 'rejected')";

/// Loads what a provider writes from, and the text in place; `None` when
/// the target no longer exists.
pub async fn load_subject(
    conn: &mut AsyncPgConnection,
    target: TargetType,
    id: i64,
    kind: TextKind,
) -> Result<Option<Subject>> {
    let column = kind.column();
    if target == TargetType::Prolocalisation {
        let (text_col, faq_col) = if kind == TextKind::Faq {
            ("NULL::text".to_owned(), "x.faq".to_owned())
        } else {
            (format!("x.{column}::text"), "NULL::jsonb".to_owned())
        };
        let sql = format!(
            "SELECT e.nom::text AS entreprise, e.nom_commercial::text, e.siren::text, e.adresse::text,
                    s.nom::text AS activite, c.nom::text AS categorie, e.naf_code, e.naf_libelle,
                    v.nom::text AS ville, COALESCE(e.code_postal, v.code_postal_principal)::text AS code_postal,
                    v.departement::text, v.region::text, x.nb_avis, x.note_moyenne::float8 AS note_moyenne,
                    {text_col} AS current_text, {faq_col} AS current_faq,
                    COALESCE({LAST_GENERATED}, x.date_derniere_generation_ia) AS generated_at
               FROM prolocalisations x
               JOIN entreprises e ON e.id = x.entreprise_id
               JOIN sous_categories s ON s.id = x.sous_categorie_id
               JOIN categories c ON c.id = s.categorie_id
               JOIN villes v ON v.id = x.ville_id
              WHERE x.id = $1"
        );
        let row: Option<PageRow> = diesel::sql_query(sql)
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(kind.as_str())
            .bind::<Text, _>(target.as_str())
            .get_result(conn)
            .await
            .optional()?;
        return Ok(row.map(|r| {
            let current = match (kind, r.current_faq, r.current_text) {
                // A FAQ stored in another shape is kept as text: it fails
                // the validator, so the policy regenerates it.
                (TextKind::Faq, Some(json), _) => Some(
                    serde_json::from_value::<Vec<FaqEntry>>(json.clone())
                        .map(Draft::Faq)
                        .unwrap_or_else(|_| Draft::Text(json.to_string())),
                ),
                (_, _, Some(text)) => Some(Draft::Text(text)),
                _ => None,
            };
            Subject {
                facts: Facts::Prolocalisation(PageFacts {
                    entreprise: r.entreprise,
                    nom_commercial: r.nom_commercial,
                    siren: r.siren,
                    adresse: r.adresse,
                    activite: r.activite,
                    categorie: r.categorie,
                    naf_code: r.naf_code,
                    naf_libelle: r.naf_libelle,
                    ville: r.ville,
                    code_postal: r.code_postal,
                    departement: r.departement,
                    region: r.region,
                    nb_avis: r.nb_avis,
                    note_moyenne: r.note_moyenne,
                }),
                current,
                generated_at: r.generated_at,
            }
        }));
    }
    let select = match target {
        TargetType::Categorie => "SELECT x.nom::text AS nom, NULL::text AS parent, x.description, NULL::text AS mots_cles,
                    ARRAY(SELECT s.nom::text FROM sous_categories s WHERE s.categorie_id = x.id ORDER BY s.ordre, s.nom LIMIT 6) AS names,
                    NULL::text AS code_postal, NULL::text AS departement, NULL::text AS region,
                    NULL::int8 AS population, 0::int8 AS nb_pages
               FROM categories x",
        TargetType::SousCategorie => "SELECT x.nom::text AS nom, c.nom::text AS parent, x.description, x.mots_cles,
                    ARRAY(SELECT n.libelle FROM naf_sous_categories ns JOIN naf_codes n ON n.code = ns.naf_code
                           WHERE ns.sous_categorie_id = x.id ORDER BY n.code LIMIT 4) AS names,
                    NULL::text AS code_postal, NULL::text AS departement, NULL::text AS region,
                    NULL::int8 AS population, 0::int8 AS nb_pages
               FROM sous_categories x JOIN categories c ON c.id = x.categorie_id",
        TargetType::Ville => "SELECT x.nom::text AS nom, NULL::text AS parent, NULL::text AS description, NULL::text AS mots_cles,
                    ARRAY[]::text[] AS names, x.code_postal_principal::text AS code_postal,
                    x.departement::text, x.region::text, x.population,
                    (SELECT count(*) FROM prolocalisations p WHERE p.ville_id = x.id AND p.is_active) AS nb_pages
               FROM villes x",
        TargetType::Prolocalisation => unreachable!("handled above"),
    };
    let sql = format!(
        "SELECT q.*, x.{column}::text AS current_text, {LAST_GENERATED} AS generated_at
           FROM ({select} WHERE x.id = $1) q, {} x WHERE x.id = $1",
        table_of(target)
    );
    let row: Option<DescribedRow> = diesel::sql_query(sql)
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(kind.as_str())
        .bind::<Text, _>(target.as_str())
        .get_result(conn)
        .await
        .optional()?;
    Ok(row.map(|r| {
        let facts = match target {
            TargetType::Categorie => Facts::Categorie(CategorieFacts {
                nom: r.nom,
                description: r.description,
                sous_categories: r.names,
            }),
            TargetType::SousCategorie => Facts::SousCategorie(SousCategorieFacts {
                nom: r.nom,
                categorie: r.parent.unwrap_or_default(),
                description: r.description,
                mots_cles: r.mots_cles,
                naf_libelles: r.names,
            }),
            _ => Facts::Ville(VilleFacts {
                nom: r.nom,
                code_postal: r.code_postal.unwrap_or_default(),
                departement: r.departement,
                region: r.region,
                population: r.population,
                nb_pages: r.nb_pages,
            }),
        };
        Subject {
            facts,
            current: r.current_text.map(Draft::Text),
            generated_at: r.generated_at,
        }
    }))
}

/// One answer of a provider, with its provenance, for `ai_generations`.
#[derive(Debug, Clone)]
pub struct GenerationRecord {
    pub task: TaskRow,
    pub provider: String,
    pub model: String,
    pub prompt_version: String,
    pub tokens_in: Option<i32>,
    pub tokens_out: Option<i32>,
    pub latency_ms: i32,
    /// `valid`, `repaired` or `rejected`.
    pub validation: &'static str,
    /// What the validator found (fixed rules, or the reasons for rejection).
    pub notes: Option<String>,
    /// The text as checked (after the repair pass when there was one).
    pub draft: Draft,
    /// Why it was generated (`missing`, `forced`, …), for the task.
    pub reason: String,
}

/// Stores one answer: its history row always; for an accepted text also the
/// target's column (and the page's `date_derniere_generation_ia`) and the
/// task `succeeded`; for a rejected one the task `failed` with the reasons.
/// One transaction, so the task's final status and its effect go together.
/// Returns false (and writes nothing) when the task was already final.
pub async fn store_generation(conn: &mut AsyncPgConnection, rec: &GenerationRecord) -> Result<bool> {
    let stored = conn
        .transaction::<_, StorageError, _>(async |conn| {
            let accepted = rec.validation != "rejected";
            let status = if accepted {
                TaskStatus::Succeeded
            } else {
                TaskStatus::Failed
            };
            let error = (!accepted).then(|| {
                format!(
                    "the text failed validation: {}",
                    rec.notes.as_deref().unwrap_or("no detail")
                )
            });
            let n = diesel::update(ai_tasks::table.find(rec.task.id))
                .filter(
                    ai_tasks::status.eq_any([TaskStatus::Pending.as_str(), TaskStatus::Processing.as_str()]),
                )
                .set((
                    ai_tasks::status.eq(status.as_str()),
                    ai_tasks::last_error.eq(error),
                    ai_tasks::reason.eq(&rec.reason),
                    ai_tasks::completed_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            if n == 0 {
                return Ok(false);
            }
            let content = rec.draft.to_content();
            diesel::sql_query(
                "INSERT INTO ai_generations (task_id, target_type, target_id, kind, content, provider, model,
                 prompt_version, tokens_in, tokens_out, latency_ms, validation, validation_notes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind::<SqlUuid, _>(rec.task.id)
            .bind::<Text, _>(rec.task.target.as_str())
            .bind::<BigInt, _>(rec.task.target_id)
            .bind::<Text, _>(rec.task.kind.as_str())
            .bind::<Text, _>(&content)
            .bind::<Text, _>(&rec.provider)
            .bind::<Text, _>(&rec.model)
            .bind::<Text, _>(&rec.prompt_version)
            .bind::<Nullable<Integer>, _>(rec.tokens_in)
            .bind::<Nullable<Integer>, _>(rec.tokens_out)
            .bind::<Integer, _>(rec.latency_ms)
            .bind::<Text, _>(rec.validation)
            .bind::<Nullable<Text>, _>(rec.notes.as_deref())
            .execute(conn)
            .await?;
            if accepted {
                let table = table_of(rec.task.target);
                let column = rec.task.kind.column();
                let dated = if rec.task.target == TargetType::Prolocalisation {
                    ", date_derniere_generation_ia = now()"
                } else {
                    ""
                };
                let written = match &rec.draft {
                    Draft::Faq(entries) => {
                        diesel::sql_query(format!(
                            "UPDATE {table} SET {column} = $2, updated_at = now(){dated} WHERE id = $1"
                        ))
                        .bind::<BigInt, _>(rec.task.target_id)
                        .bind::<Jsonb, _>(
                            serde_json::to_value(entries).expect("FAQ entries always serialise"),
                        )
                        .execute(conn)
                        .await?
                    }
                    Draft::Text(text) => {
                        diesel::sql_query(format!(
                            "UPDATE {table} SET {column} = $2, updated_at = now(){dated} WHERE id = $1"
                        ))
                        .bind::<BigInt, _>(rec.task.target_id)
                        .bind::<Text, _>(text)
                        .execute(conn)
                        .await?
                    }
                };
                if written == 0 {
                    // The target was deleted while we generated: nothing to fill.
                    return Err(StorageError::NotFound);
                }
            }
            Ok(true)
        })
        .await?;
    if stored {
        complete_batch_if_done(conn, rec.task.batch_id).await?;
    }
    Ok(stored)
}

/// The latest provenance of each kind for one target, newest first.
#[derive(Debug, Clone, Queryable, Serialize)]
pub struct Provenance {
    pub kind: String,
    pub provider: String,
    pub model: String,
    pub prompt_version: String,
    pub tokens_in: Option<i32>,
    pub tokens_out: Option<i32>,
    pub latency_ms: i32,
    pub validation: String,
    pub validation_notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn latest_provenance(
    conn: &mut AsyncPgConnection,
    target: TargetType,
    id: i64,
) -> Result<Vec<Provenance>> {
    use crate::schema::ai_generations as g;
    Ok(g::table
        .filter(g::target_type.eq(target.as_str()))
        .filter(g::target_id.eq(id))
        .filter(g::validation.ne("rejected"))
        .distinct_on(g::kind)
        .order((g::kind.asc(), g::created_at.desc()))
        .select((
            g::kind,
            g::provider,
            g::model,
            g::prompt_version,
            g::tokens_in,
            g::tokens_out,
            g::latency_ms,
            g::validation,
            g::validation_notes,
            g::created_at,
        ))
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
                count(t.id) FILTER (WHERE t.status = 'succeeded') AS succeeded,
                count(t.id) FILTER (WHERE t.status = 'failed') AS failed,
                count(t.id) FILTER (WHERE t.status = 'skipped') AS skipped,
                count(t.id) FILTER (WHERE t.status IN ('pending', 'processing')) AS pending,
                count(t.id) FILTER (WHERE t.status = 'processing') AS processing,
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
    .load(conn)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| BatchProgress {
            id: r.id,
            target: r.target_type,
            kinds: r.kinds,
            force: r.force,
            import_id: r.import_id,
            owner_id: r.owner_id,
            selection: r.selection,
            status: if r.pending == 0 { "completed" } else { "running" },
            total: i64::from(r.total),
            succeeded: r.succeeded,
            failed: r.failed,
            skipped: r.skipped,
            pending: r.pending,
            processing: r.processing,
            created_at: r.created_at,
            // Same rule as `batch_progress`: the last task's end, or the
            // creation of a batch that had nothing to do.
            completed_at: (r.pending == 0).then(|| r.last.unwrap_or(r.created_at)),
        })
        .collect();
    Ok((items, total))
}
