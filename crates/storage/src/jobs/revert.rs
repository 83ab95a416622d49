//! Reverting an import (docs/imports.md, "Revert"): a job of its own that
//! undoes, from the changes the import captured (`changes.rs`), what is
//! still the import's doing — fields are put back where they still hold the
//! import's value, rows it created are deleted where nobody changed or
//! linked them since, rows it deleted are created again where the key is
//! still free. Everything else is a conflict, reported line by line and left
//! as it is. The whole revert is one transaction, set-based per table, and
//! captures its own changes: a revert can be reverted.

use super::changes::{ENTITIES, Entity, capture_for};
use super::{ImportJob, get_job};
use crate::schema::import_jobs;
use crate::{Result, StorageError};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use foxflow_domain::{JobStatus, text};
use uuid::Uuid;

/// Queues the revert of `target_id` for `owner`: 202 material. `Conflict`
/// when the job is a dry run (it changed nothing) or has not ended. The same
/// user asking twice gets the revert already queued (idempotency key
/// `revert:<id>`).
pub async fn request_revert(
    conn: &mut AsyncPgConnection,
    target_id: Uuid,
    owner: Option<Uuid>,
    traceparent: Option<String>,
) -> Result<(ImportJob, bool)> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        let target = import_jobs::table
            .find(target_id)
            .for_share()
            .select(ImportJob::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or(StorageError::NotFound)?;
        if target.dry_run {
            return Err(StorageError::Conflict(text!(
                "une simulation n’a rien modifié : il n’y a rien à défaire",
                "a dry run changed nothing: there is nothing to revert"
            )));
        }
        if !target.status.is_final() {
            return Err(StorageError::Conflict(text!(
                "cet import n’est pas terminé : annulez-le d’abord, puis défaites ce qu’il a enregistré",
                "this import has not ended: cancel it first, then revert what it committed"
            )));
        }
        let key = format!("revert:{target_id}");
        if let Some(job) = import_jobs::table
            .filter(import_jobs::idempotency_key.eq(&key))
            .filter(import_jobs::owner_id.is_not_distinct_from(owner))
            .select(ImportJob::as_select())
            .first(conn)
            .await
            .optional()?
        {
            return Ok((job, false));
        }
        let id = Uuid::now_v7();
        let job = diesel::insert_into(import_jobs::table)
            .values((
                import_jobs::id.eq(id),
                import_jobs::import_type.eq(target.import_type),
                import_jobs::file_id.eq(None::<Uuid>),
                import_jobs::file_name.eq(format!("annulation de {}", target.file_name)),
                import_jobs::file_size.eq(0i64),
                import_jobs::file_sha256.eq(""),
                import_jobs::dry_run.eq(false),
                import_jobs::generate_ai.eq(false),
                import_jobs::owner_id.eq(owner),
                import_jobs::idempotency_key.eq(&key),
                import_jobs::reverts_job_id.eq(target_id),
            ))
            .returning(ImportJob::as_returning())
            .get_result(conn)
            .await?;
        crate::outbox::enqueue(
            conn,
            &foxflow_domain::messages::Message::import_requested(id),
            traceparent.as_deref(),
        )
        .await?;
        Ok((job, true))
    })
    .await
}

/// Runs revert job `revert_id` (which this worker holds under
/// `lease_token`) against the import it names, in one transaction, and
/// records its counts and conflicts; the caller then ends it with
/// [`super::finish`].
pub async fn run_revert(conn: &mut AsyncPgConnection, revert_id: Uuid, lease_token: &str) -> Result<()> {
    let job = get_job(conn, revert_id).await?.ok_or(StorageError::NotFound)?;
    let Some(target) = job.reverts_job_id else {
        return Err(StorageError::Conflict(text!(
            "le job {revert_id} n’est pas une annulation d’import",
            "job {revert_id} is not a revert"
        )));
    };
    conn.transaction::<_, StorageError, _>(async |conn| {
        capture_for(conn, revert_id).await?;
        stage(conn, target).await?;
        for t in &ENTITIES {
            recreate(conn, t).await?;
        }
        for t in &ENTITIES {
            restore(conn, t).await?;
        }
        for t in ENTITIES.iter().rev() {
            delete_created(conn, t).await?;
        }
        record(conn, revert_id, lease_token).await
    })
    .await
}

/// One line per row the import changed (`revert_undo`, numbered in the
/// order the import made its changes) and one per field it updated
/// (`revert_fields`: the value before its first change, the value after its
/// last); and where the outcomes go.
async fn stage(conn: &mut AsyncPgConnection, target: Uuid) -> Result<()> {
    // A statement's created rows are one line (`pks`): one row each here.
    diesel::sql_query(
        "CREATE TEMP TABLE revert_undo ON COMMIT DROP AS
         WITH ch AS (
             SELECT c.id, c.entity, u.p AS pk, c.action, c.key, c.before
               FROM import_changes c, unnest(c.pks) AS u(p)
              WHERE c.job_id = $1 AND NOT c.preview AND c.pks IS NOT NULL
             UNION ALL
             SELECT id, entity, pk, action, key, before FROM import_changes
              WHERE job_id = $1 AND NOT preview AND pks IS NULL)
         SELECT entity, pk, row_number() OVER (ORDER BY min(id), entity, pk) AS n,
                (array_agg(action ORDER BY id))[1] AS first_action,
                (array_agg(key ORDER BY id DESC) FILTER (WHERE key IS NOT NULL))[1] AS key,
                (array_agg(before ORDER BY id) FILTER (WHERE action = 'deleted'))[1] AS deleted
           FROM ch GROUP BY entity, pk",
    )
    .bind::<diesel::sql_types::Uuid, _>(target)
    .execute(conn)
    .await?;
    // Rows another job updated after this one's last change: a row it
    // created and someone changed since is theirs too, and stays.
    diesel::sql_query(
        "CREATE TEMP TABLE revert_later ON COMMIT DROP AS
         SELECT DISTINCT entity, pk FROM import_changes
          WHERE id > (SELECT coalesce(max(id), 0) FROM import_changes WHERE job_id = $1 AND NOT preview)
            AND job_id <> $1 AND NOT preview AND action = 'updated'",
    )
    .bind::<diesel::sql_types::Uuid, _>(target)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "CREATE TEMP TABLE revert_fields ON COMMIT DROP AS
         SELECT x.entity, x.pk, b.key AS k,
                (array_agg(b.value ORDER BY x.id))[1] AS vb,
                (array_agg(x.after -> b.key ORDER BY x.id DESC))[1] AS va
           FROM import_changes x, jsonb_each(x.before) b
          WHERE x.job_id = $1 AND NOT x.preview AND x.action = 'updated'
          GROUP BY x.entity, x.pk, b.key",
    )
    .bind::<diesel::sql_types::Uuid, _>(target)
    .execute(conn)
    .await?;
    conn_batch(
        conn,
        "CREATE INDEX ON revert_undo (entity, pk);
         CREATE INDEX ON revert_fields (entity, pk);
         CREATE INDEX ON revert_later (entity, pk);
         ANALYZE revert_undo; ANALYZE revert_fields; ANALYZE revert_later;
         CREATE TEMP TABLE revert_outcome (entity text, pk text, outcome text) ON COMMIT DROP;
         -- reason: field (k changed since: `now` is its value), gone, changed, linked, taken
         CREATE TEMP TABLE revert_conflict (entity text, pk text, reason text, k text, now jsonb, key text) ON COMMIT DROP;",
    )
    .await
}

async fn conn_batch(conn: &mut AsyncPgConnection, sql: &str) -> Result<()> {
    use diesel_async::SimpleAsyncConnection;
    conn.batch_execute(sql).await?;
    Ok(())
}

/// Rows the import deleted (only a revert deletes), created again with
/// their id where nothing has taken their key since.
async fn recreate(conn: &mut AsyncPgConnection, t: &Entity) -> Result<()> {
    let Entity {
        name, pk, pk_type, ..
    } = t;
    let sql = format!(
        "WITH ins AS (
             INSERT INTO {name} OVERRIDING SYSTEM VALUE
             SELECT (jsonb_populate_record(NULL::{name}, u.deleted)).* FROM revert_undo u
              WHERE u.entity = '{name}' AND u.first_action = 'deleted'
             ON CONFLICT DO NOTHING
             RETURNING {name}.{pk}::text AS pk),
         done AS (INSERT INTO revert_outcome SELECT '{name}', pk, 'created' FROM ins RETURNING pk)
         INSERT INTO revert_conflict
         SELECT '{name}', u.pk, 'taken', NULL, NULL FROM revert_undo u
          WHERE u.entity = '{name}' AND u.first_action = 'deleted'
            AND NOT EXISTS (SELECT 1 FROM done WHERE done.pk = u.pk)
            AND NOT EXISTS (SELECT 1 FROM {name} x WHERE x.{pk} = u.pk::{pk_type}
                             AND to_jsonb(x) = u.deleted)"
    );
    diesel::sql_query(sql).execute(conn).await?;
    Ok(())
}

/// The columns a restore may set: all but the key and identity columns.
async fn columns(conn: &mut AsyncPgConnection, t: &Entity) -> Result<Vec<String>> {
    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        column_name: String,
    }
    let cols: Vec<Column> = diesel::sql_query(
        "SELECT column_name::text AS column_name FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = $1 AND column_name <> $2
            AND is_identity = 'NO' AND is_generated = 'NEVER'
          ORDER BY ordinal_position",
    )
    .bind::<Text, _>(t.name)
    .bind::<Text, _>(t.pk)
    .load(conn)
    .await?;
    Ok(cols.into_iter().map(|c| c.column_name).collect())
}

/// Fields the import updated, put back where they still hold the import's
/// value; `updated_at` too when the whole row could be put back.
async fn restore(conn: &mut AsyncPgConnection, t: &Entity) -> Result<()> {
    let Entity {
        name, pk, pk_type, ..
    } = t;
    let cols = columns(conn, t).await?;
    let set = cols
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let from = cols
        .iter()
        .map(|c| format!("r.\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "WITH f AS (
             SELECT rf.pk, rf.k, rf.vb, rf.va, to_jsonb(t) -> rf.k AS now
               FROM revert_fields rf
               JOIN revert_undo u ON u.entity = rf.entity AND u.pk = rf.pk
               JOIN {name} t ON t.{pk} = rf.pk::{pk_type}
              WHERE rf.entity = '{name}' AND u.first_action = 'updated'),
         conflicts AS (
             INSERT INTO revert_conflict
             SELECT '{name}', pk, 'field', k, now, NULL FROM f
              WHERE k <> 'updated_at' AND now IS DISTINCT FROM va RETURNING pk),
         gone AS (
             INSERT INTO revert_conflict
             SELECT '{name}', u.pk, 'gone', NULL, NULL, NULL FROM revert_undo u
              WHERE u.entity = '{name}' AND u.first_action = 'updated'
                AND NOT EXISTS (SELECT 1 FROM {name} x WHERE x.{pk} = u.pk::{pk_type}) RETURNING pk),
         patch AS (
             SELECT pk,
                    coalesce(jsonb_object_agg(k, vb) FILTER (WHERE k <> 'updated_at' AND now IS NOT DISTINCT FROM va), '{{}}')
                    || CASE WHEN bool_and(now IS NOT DISTINCT FROM va) FILTER (WHERE k <> 'updated_at')
                            THEN jsonb_strip_nulls(jsonb_build_object('updated_at', max(vb::text) FILTER (WHERE k = 'updated_at')::jsonb))
                            ELSE jsonb_build_object('updated_at', now()) END AS p,
                    bool_or(k <> 'updated_at' AND now IS NOT DISTINCT FROM va) AS any_back
               FROM f GROUP BY pk),
         upd AS (
             UPDATE {name} t SET ({set}) = (SELECT {from} FROM jsonb_populate_record(t, patch.p) r)
               FROM patch WHERE patch.any_back AND t.{pk} = patch.pk::{pk_type}
             RETURNING t.{pk}::text AS pk)
         INSERT INTO revert_outcome SELECT '{name}', pk, 'updated' FROM upd"
    );
    diesel::sql_query(sql).execute(conn).await?;
    Ok(())
}

/// Rows the import created, deleted (children first) unless another job
/// changed them since or something that stays points at them.
async fn delete_created(conn: &mut AsyncPgConnection, t: &Entity) -> Result<()> {
    let Entity {
        name,
        pk,
        pk_type,
        key,
        children,
    } = t;
    let linked = if children.is_empty() {
        "false".to_owned()
    } else {
        children
            .iter()
            .map(|(child, fk)| format!("EXISTS (SELECT 1 FROM {child} c WHERE c.{fk} = t.{pk})"))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let sql = format!(
        "WITH cand AS (
             SELECT u.pk, {key} AS key,
                    EXISTS (SELECT 1 FROM revert_later l WHERE l.entity = u.entity AND l.pk = u.pk) AS changed,
                    ({linked}) AS linked
               FROM revert_undo u JOIN {name} t ON t.{pk} = u.pk::{pk_type}
              WHERE u.entity = '{name}' AND u.first_action = 'created'),
         conflicts AS (
             INSERT INTO revert_conflict
             SELECT '{name}', pk, CASE WHEN changed THEN 'changed' ELSE 'linked' END, NULL, NULL, key FROM cand
              WHERE changed OR linked RETURNING pk),
         del AS (
             DELETE FROM {name} t USING cand
              WHERE t.{pk} = cand.pk::{pk_type} AND NOT cand.changed AND NOT cand.linked
             RETURNING t.{pk}::text AS pk)
         INSERT INTO revert_outcome SELECT '{name}', pk, 'deleted' FROM del"
    );
    diesel::sql_query(sql).execute(conn).await?;
    Ok(())
}

/// The revert's counts (each row the import changed counts once: a row
/// with a conflict is an error row, even if some of its fields went back)
/// and one error line per conflict.
async fn record(conn: &mut AsyncPgConnection, revert_id: Uuid, lease_token: &str) -> Result<()> {
    diesel::sql_query(
        "INSERT INTO import_errors (job_id, \"row\", \"column\", value, code, message, message_en, severity)
         SELECT $1, u.n, c.k, left(coalesce(c.now #>> '{}', c.key, u.key), 200), 'revert_conflict',
                CASE c.reason
                  WHEN 'field' THEN format('%s %s : « %s » a été modifié depuis cet import ; la valeur actuelle est gardée', c.entity, coalesce(c.key, u.key), c.k)
                  WHEN 'gone' THEN format('%s %s : la ligne a été supprimée depuis cet import', c.entity, coalesce(c.key, u.key))
                  WHEN 'changed' THEN format('%s %s : créée par cet import puis modifiée depuis ; elle est gardée', c.entity, coalesce(c.key, u.key))
                  WHEN 'linked' THEN format('%s %s : créée par cet import, d''autres lignes y sont liées depuis ; elle est gardée', c.entity, coalesce(c.key, u.key))
                  ELSE format('%s %s : supprimée par cet import, sa clé a été reprise depuis ; elle n''est pas recréée', c.entity, coalesce(c.key, u.key))
                END,
                CASE c.reason
                  WHEN 'field' THEN format('%s %s: `%s` was changed since this import; its current value is kept', c.entity, coalesce(c.key, u.key), c.k)
                  WHEN 'gone' THEN format('%s %s: the row was deleted since this import', c.entity, coalesce(c.key, u.key))
                  WHEN 'changed' THEN format('%s %s: created by this import and changed since; it is kept', c.entity, coalesce(c.key, u.key))
                  WHEN 'linked' THEN format('%s %s: created by this import, other rows point at it since; it is kept', c.entity, coalesce(c.key, u.key))
                  ELSE format('%s %s: deleted by this import, its key was taken since; it is not created again', c.entity, coalesce(c.key, u.key))
                END,
                'error'
           FROM revert_conflict c JOIN revert_undo u ON u.entity = c.entity AND u.pk = c.pk",
    )
    .bind::<diesel::sql_types::Uuid, _>(revert_id)
    .execute(conn)
    .await?;
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = BigInt)]
        total: i64,
        #[diesel(sql_type = BigInt)]
        errors: i64,
        #[diesel(sql_type = BigInt)]
        created: i64,
        #[diesel(sql_type = BigInt)]
        updated: i64,
        #[diesel(sql_type = BigInt)]
        deleted: i64,
    }
    let c: Counts = diesel::sql_query(
        "WITH bad AS (SELECT DISTINCT entity, pk FROM revert_conflict),
              good AS (SELECT o.* FROM revert_outcome o
                        WHERE NOT EXISTS (SELECT 1 FROM bad WHERE bad.entity = o.entity AND bad.pk = o.pk))
         SELECT (SELECT count(*) FROM revert_undo) AS total,
                (SELECT count(*) FROM bad) AS errors,
                (SELECT count(*) FROM good WHERE outcome = 'created') AS created,
                (SELECT count(*) FROM good WHERE outcome = 'updated') AS updated,
                (SELECT count(*) FROM good WHERE outcome = 'deleted') AS deleted",
    )
    .get_result(conn)
    .await?;
    let done = diesel::update(import_jobs::table.find(revert_id))
        .filter(import_jobs::lease_owner.eq(lease_token))
        .filter(import_jobs::status.eq(JobStatus::Processing))
        .set((
            import_jobs::total_rows.eq(c.total),
            import_jobs::processed_rows.eq(c.total),
            import_jobs::created_rows.eq(c.created),
            import_jobs::updated_rows.eq(c.updated),
            import_jobs::deleted_rows.eq(c.deleted),
            import_jobs::error_rows.eq(c.errors),
            import_jobs::unchanged_rows.eq(c.total - c.errors - c.created - c.updated - c.deleted),
            import_jobs::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    if done == 0 {
        return Err(StorageError::Conflict(text!(
            "le job {revert_id} n’est plus tenu par {lease_token}",
            "job {revert_id} is no longer leased by {lease_token}"
        )));
    }
    Ok(())
}
