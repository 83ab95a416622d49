//! What an import changed (migration `2026-12-04-000080_import_changes`):
//! captured by triggers in the transaction that writes each batch, once that
//! transaction names its job with [`capture_for`]. An UPDATE keeps the
//! changed fields before and after; an INSERT keeps the new rows' keys, one
//! line per statement. An import keeps all of it (for a revert); a dry run,
//! whose writes are rolled back, keeps a copy of its first
//! [`PREVIEW_CHANGES`] as its preview, with the created rows written out.

use crate::Result;
use crate::schema::import_changes;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// How many changes a dry run keeps for its preview.
pub const PREVIEW_CHANGES: i64 = 500;

/// A table imports write, parents before children.
pub(super) struct Entity {
    pub name: &'static str,
    pub pk: &'static str,
    pub pk_type: &'static str,
    /// What an operator knows a row by, over the table aliased `t`.
    pub key: &'static str,
    /// Rows of other tables that point at this one: (table, column).
    pub children: &'static [(&'static str, &'static str)],
}

pub(super) const ENTITIES: [Entity; 6] = [
    Entity {
        name: "villes",
        pk: "id",
        pk_type: "bigint",
        key: "concat_ws(' ', t.nom, t.code_postal_principal)",
        children: &[("prolocalisations", "ville_id")],
    },
    Entity {
        name: "categories",
        pk: "id",
        pk_type: "bigint",
        key: "t.nom::text",
        children: &[("sous_categories", "categorie_id")],
    },
    Entity {
        name: "sous_categories",
        pk: "id",
        pk_type: "bigint",
        key: "t.nom::text",
        children: &[
            ("prolocalisations", "sous_categorie_id"),
            ("naf_sous_categories", "sous_categorie_id"),
        ],
    },
    Entity {
        name: "naf_sous_categories",
        pk: "naf_code",
        pk_type: "text",
        key: "t.naf_code",
        children: &[],
    },
    Entity {
        name: "entreprises",
        pk: "id",
        pk_type: "bigint",
        key: "t.siren::text",
        children: &[("prolocalisations", "entreprise_id")],
    },
    Entity {
        name: "prolocalisations",
        pk: "id",
        pk_type: "bigint",
        key: "concat_ws(' ', t.entreprise_id, t.sous_categorie_id, t.ville_id)",
        children: &[],
    },
];

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
#[derive(Debug, Clone, PartialEq, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct ChangeView {
    /// `entreprises`, `villes`, `categories`, `sous_categories`,
    /// `naf_sous_categories` or `prolocalisations` (the pages).
    #[diesel(sql_type = Text)]
    pub entity: String,
    /// The row's primary key.
    #[diesel(sql_type = Text)]
    pub pk: String,
    /// What the row is known by: the SIREN, the name, name and postal code…
    #[diesel(sql_type = Nullable<Text>)]
    pub key: Option<String>,
    /// `created`, `updated` or `deleted`.
    #[diesel(sql_type = Text)]
    pub action: String,
    /// For an update, the changed fields' values before; for a deletion, the row.
    #[diesel(sql_type = Nullable<Jsonb>)]
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// For an update, the changed fields' values after; for a creation, the
    /// row (as it is now; null once deleted).
    #[diesel(sql_type = Nullable<Jsonb>)]
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
    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let total = diesel::sql_query(
        "SELECT coalesce(sum(coalesce(cardinality(pks), 1)), 0)::int8 AS n
           FROM import_changes WHERE job_id = $1 AND preview = $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(job_id)
    .bind::<Bool, _>(preview)
    .get_result::<Total>(conn)
    .await?
    .n;
    let items = expanded(conn, job_id, preview, (page - 1) * per_page, per_page).await?;
    Ok((items, total))
}

/// Changes `offset..offset + limit` of a job, one per row (a statement's
/// created rows written out one by one), created rows with their key and
/// their values read from the table.
async fn expanded(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    preview: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<ChangeView>> {
    let mut items: Vec<ChangeView> = diesel::sql_query(
        "WITH c AS (SELECT * FROM import_changes WHERE job_id = $1 AND preview = $2),
              x AS (SELECT c.id, u.ord, c.entity, u.p AS pk, c.key, c.action, c.before, c.after
                      FROM c, unnest(c.pks) WITH ORDINALITY AS u(p, ord) WHERE c.pks IS NOT NULL
                    UNION ALL
                    SELECT c.id, 1, c.entity, c.pk, c.key, c.action, c.before, c.after FROM c WHERE c.pks IS NULL)
         SELECT entity, pk, key, action, before, after FROM x ORDER BY id, ord OFFSET $3 LIMIT $4",
    )
    .bind::<diesel::sql_types::Uuid, _>(job_id)
    .bind::<Bool, _>(preview)
    .bind::<BigInt, _>(offset)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    // Created rows: their key and values, from the table, one query per table.
    for entity in &ENTITIES {
        let unread = |c: &ChangeView| c.entity == entity.name && c.action == "created" && c.after.is_none();
        let pks: Vec<String> = items.iter().filter(|c| unread(c)).map(|c| c.pk.clone()).collect();
        if pks.is_empty() {
            continue;
        }
        #[derive(QueryableByName)]
        struct Current {
            #[diesel(sql_type = Text)]
            pk: String,
            #[diesel(sql_type = Nullable<Text>)]
            key: Option<String>,
            #[diesel(sql_type = Jsonb)]
            row: serde_json::Value,
        }
        let Entity {
            name,
            pk,
            pk_type,
            key,
            ..
        } = entity;
        let rows: Vec<Current> = diesel::sql_query(format!(
            "SELECT t.{pk}::text AS pk, {key} AS key, foxflow_captured(to_jsonb(t)) AS row
               FROM {name} t WHERE t.{pk} = ANY($1::text[]::{pk_type}[])"
        ))
        .bind::<diesel::sql_types::Array<Text>, _>(&pks)
        .load(conn)
        .await?;
        let mut by_pk: HashMap<String, Current> = rows.into_iter().map(|r| (r.pk.clone(), r)).collect();
        for c in items.iter_mut().filter(|c| unread(c)) {
            if let Some(cur) = by_pk.remove(&c.pk) {
                c.key = cur.key;
                c.after = Some(cur.row);
            }
        }
    }
    Ok(items)
}

/// A dry run's changes captured by `run` (its rolled-back transaction) so
/// far, copied through `job` (committed) as its preview, up to
/// [`PREVIEW_CHANGES`] in all, created rows written out. Reads nothing once
/// the preview is full.
pub async fn keep_preview(
    run: &mut AsyncPgConnection,
    job: &mut AsyncPgConnection,
    job_id: Uuid,
) -> Result<()> {
    let kept: i64 = import_changes::table
        .filter(import_changes::job_id.eq(job_id))
        .filter(import_changes::preview.eq(true))
        .count()
        .get_result(job)
        .await?;
    if kept >= PREVIEW_CHANGES {
        return Ok(());
    }
    // The run's own lines are the uncommitted ones with `preview` false.
    let rows = expanded(run, job_id, false, kept, PREVIEW_CHANGES - kept).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<_> = rows
        .into_iter()
        .map(|c| {
            (
                import_changes::job_id.eq(job_id),
                import_changes::preview.eq(true),
                import_changes::entity.eq(c.entity),
                import_changes::pk.eq(Some(c.pk)),
                import_changes::key.eq(c.key),
                import_changes::action.eq(c.action),
                import_changes::before.eq(c.before),
                import_changes::after.eq(c.after),
            )
        })
        .collect();
    diesel::insert_into(import_changes::table)
        .values(values)
        .execute(job)
        .await?;
    Ok(())
}
