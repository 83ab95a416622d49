//! What an import changed (migration `2026-12-04-000080_import_changes`):
//! captured by triggers in the transaction that writes each batch, once that
//! transaction names its job with [`capture_for`]. An import keeps all of
//! its changes (for a revert); a dry run, whose writes are rolled back,
//! keeps a copy of its first [`PREVIEW_CHANGES`] as its preview.

use crate::Result;
use crate::schema::import_changes;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

/// How many changes a dry run keeps for its preview.
pub const PREVIEW_CHANGES: i64 = 500;

/// Makes the rest of the current transaction record its changes under
/// `job_id`; call it first thing in the transaction that writes a batch.
pub async fn capture_for(conn: &mut AsyncPgConnection, job_id: Uuid) -> Result<()> {
    diesel::sql_query("SELECT set_config('foxflow.job_id', $1, true)")
        .bind::<Text, _>(job_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// One change as the API, the dashboard and the report show it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = import_changes)]
pub struct ChangeView {
    /// `entreprises`, `villes`, `categories`, `sous_categories`,
    /// `naf_sous_categories` or `prolocalisations` (the pages).
    pub entity: String,
    /// What the row is known by: the SIREN, the name, name and postal code…
    pub key: Option<String>,
    /// `created`, `updated` or `deleted`.
    pub action: String,
    /// For an update, the changed fields' values before; for a deletion, the row.
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// For an update, the changed fields' values after; for a creation, the row.
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

/// A page of a job's changes in the order they were made: a dry run's
/// preview, or what an import (or a revert) did.
pub async fn changes_page(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    preview: bool,
    page: i64,
    per_page: i64,
) -> Result<(Vec<ChangeView>, i64)> {
    let scope = import_changes::job_id
        .eq(job_id)
        .and(import_changes::preview.eq(preview));
    let total: i64 = import_changes::table
        .filter(scope)
        .count()
        .get_result(conn)
        .await?;
    let items = import_changes::table
        .filter(scope)
        .order(import_changes::id.asc())
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(ChangeView::as_select())
        .load(conn)
        .await?;
    Ok((items, total))
}

/// A dry run's changes captured by `run` (its rolled-back transaction) so
/// far, copied through `job` (committed) as its preview, up to
/// [`PREVIEW_CHANGES`] in all. Cheap once the preview is full: it reads
/// nothing then.
pub async fn keep_preview(
    run: &mut AsyncPgConnection,
    job: &mut AsyncPgConnection,
    job_id: Uuid,
) -> Result<()> {
    #[derive(QueryableByName)]
    struct Kept {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let kept = diesel::sql_query("SELECT count(*) AS n FROM import_changes WHERE job_id = $1 AND preview")
        .bind::<diesel::sql_types::Uuid, _>(job_id)
        .get_result::<Kept>(job)
        .await?
        .n;
    if kept >= PREVIEW_CHANGES {
        return Ok(());
    }
    // The run's own rows are the uncommitted ones with `preview` false; it
    // reads the copies too (committed), which are told apart by the flag.
    let rows: Vec<(
        String,
        String,
        Option<String>,
        String,
        Option<serde_json::Value>,
        Option<serde_json::Value>,
    )> = import_changes::table
        .filter(import_changes::job_id.eq(job_id))
        .filter(import_changes::preview.eq(false))
        .order(import_changes::id.asc())
        .offset(kept)
        .limit(PREVIEW_CHANGES - kept)
        .select((
            import_changes::entity,
            import_changes::pk,
            import_changes::key,
            import_changes::action,
            import_changes::before,
            import_changes::after,
        ))
        .load(run)
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<_> = rows
        .into_iter()
        .map(|(entity, pk, key, action, before, after)| {
            (
                import_changes::job_id.eq(job_id),
                import_changes::preview.eq(true),
                import_changes::entity.eq(entity),
                import_changes::pk.eq(pk),
                import_changes::key.eq(key),
                import_changes::action.eq(action),
                import_changes::before.eq(before),
                import_changes::after.eq(after),
            )
        })
        .collect();
    diesel::insert_into(import_changes::table)
        .values(values)
        .execute(job)
        .await?;
    Ok(())
}
