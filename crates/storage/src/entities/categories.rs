//! Catégories (keyed on `nom`) and sous-catégories (keyed on their
//! catégorie and `nom`), with the NAF codes each sous-catégorie covers.

use super::{Ids, Merged, free_slug_sql};
use crate::Result;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CategorieRow {
    /// Position in the file: orders slug suffixes deterministically.
    pub ord: i64,
    pub nom: String,
    /// The slug the file gives, if any; used only when the row is created.
    pub slug: Option<String>,
    /// The slug built from `nom`, for a new row when the file gives none.
    pub derived_slug: String,
    pub description: Option<String>,
    pub meta_description: Option<String>,
    pub ordre: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SousCategorieRow {
    pub ord: i64,
    pub categorie_id: i64,
    pub nom: String,
    pub slug: Option<String>,
    pub derived_slug: String,
    pub description: Option<String>,
    pub meta_description: Option<String>,
    pub mots_cles: Option<String>,
    pub ordre: Option<i32>,
    /// Codes this sous-catégorie covers; empty leaves the stored links alone.
    pub naf_codes: Vec<String>,
}

const CAT_STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS staging_categories (
    ord bigint, nom text PRIMARY KEY, slug_given text, slug_derived text, description text,
    meta_description text, ordre integer
) ON COMMIT DELETE ROWS;
TRUNCATE staging_categories;";

const CAT_FILL: &str = "
INSERT INTO staging_categories
SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int4[])";

fn cat_insert() -> String {
    format!(
        "WITH new AS (
            SELECT s.*, COALESCE(s.slug_given, s.slug_derived) AS base FROM staging_categories s
            WHERE NOT EXISTS (SELECT 1 FROM categories c WHERE c.nom = s.nom)
        ), numbered AS (
            SELECT new.*, row_number() OVER (PARTITION BY base ORDER BY ord) AS rn FROM new
        ), ins AS (
            INSERT INTO categories (nom, slug, description, meta_description, ordre)
            SELECT nom, {slug}, description, meta_description, COALESCE(ordre, 0) FROM numbered ORDER BY ord
            ON CONFLICT (nom) DO NOTHING
            RETURNING id
        ) SELECT COALESCE(array_agg(id), '{{}}') AS ids FROM ins",
        slug = free_slug_sql("categories")
    )
}

// Slugs are set once, at creation: they are page addresses, and moving a
// page is an SEO decision rather than a side effect of an import.
const CAT_UPDATE: &str = "
WITH upd AS (
    UPDATE categories c SET
        description = COALESCE(s.description, c.description),
        meta_description = COALESCE(s.meta_description, c.meta_description),
        ordre = COALESCE(s.ordre, c.ordre),
        updated_at = now()
    FROM staging_categories s
    WHERE c.nom = s.nom
      AND (c.description, c.meta_description, c.ordre) IS DISTINCT FROM
          (COALESCE(s.description, c.description), COALESCE(s.meta_description, c.meta_description),
           COALESCE(s.ordre, c.ordre))
    RETURNING c.id
) SELECT COALESCE(array_agg(id), '{}') AS ids FROM upd";

/// Merges catégories keyed on `nom` (unique within the call).
pub async fn merge_categories(conn: &mut AsyncPgConnection, rows: &[CategorieRow]) -> Result<Merged> {
    if rows.is_empty() {
        return Ok(Merged::default());
    }
    conn.batch_execute(CAT_STAGING).await?;
    diesel::sql_query(CAT_FILL)
        .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.ord).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.nom.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.slug.clone()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.derived_slug.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.description.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            rows.iter()
                .map(|r| r.meta_description.clone())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Integer>>, _>(rows.iter().map(|r| r.ordre).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    let created = diesel::sql_query(cat_insert()).get_result::<Ids>(conn).await?.ids;
    let updated = diesel::sql_query(CAT_UPDATE).get_result::<Ids>(conn).await?.ids;
    Ok(Merged { created, updated })
}

/// Catégorie ids by name, looked up once per distinct name for a whole
/// import (not once per row).
#[derive(Debug, Default)]
pub struct ParentCache {
    ids: HashMap<String, Option<i64>>,
}

#[derive(diesel::QueryableByName)]
struct NamedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    nom: String,
}

impl ParentCache {
    /// Looks up every name not seen yet, in one query.
    pub async fn resolve(&mut self, conn: &mut AsyncPgConnection, names: &[&str]) -> Result<()> {
        let mut missing: Vec<String> = names
            .iter()
            .filter(|n| !self.ids.contains_key(**n))
            .map(|n| (*n).to_owned())
            .collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let found: Vec<NamedId> =
            diesel::sql_query("SELECT id, nom::text AS nom FROM categories WHERE nom = ANY($1)")
                .bind::<Array<Text>, _>(&missing)
                .load(conn)
                .await?;
        for name in missing {
            self.ids.insert(name, None);
        }
        for f in found {
            self.ids.insert(f.nom, Some(f.id));
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<i64> {
        self.ids.get(name).copied().flatten()
    }

    /// Forgets that these names were missing: the batch just created them.
    pub fn forget_missing<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for n in names {
            if self.ids.get(n) == Some(&None) {
                self.ids.remove(n);
            }
        }
    }

    /// How many lookups the cache made (distinct names): for tests.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

const SC_STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS staging_sous_categories (
    ord bigint, categorie_id bigint, nom text, slug_given text, slug_derived text, description text,
    meta_description text, mots_cles text, ordre integer, naf_codes text,
    PRIMARY KEY (categorie_id, nom)
) ON COMMIT DELETE ROWS;
TRUNCATE staging_sous_categories;";

const SC_FILL: &str = "
INSERT INTO staging_sous_categories
SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::int4[], $10::text[])";

fn sc_insert() -> String {
    format!(
        "WITH new AS (
            SELECT s.*, COALESCE(s.slug_given, s.slug_derived) AS base FROM staging_sous_categories s
            WHERE NOT EXISTS (SELECT 1 FROM sous_categories c WHERE c.categorie_id = s.categorie_id AND c.nom = s.nom)
        ), numbered AS (
            SELECT new.*, row_number() OVER (PARTITION BY base ORDER BY ord) AS rn FROM new
        ), ins AS (
            INSERT INTO sous_categories (categorie_id, nom, slug, description, meta_description, mots_cles, ordre)
            SELECT categorie_id, nom, {slug}, description, meta_description, mots_cles, COALESCE(ordre, 0)
            FROM numbered ORDER BY ord
            ON CONFLICT (categorie_id, nom) DO NOTHING
            RETURNING id
        ) SELECT COALESCE(array_agg(id), '{{}}') AS ids FROM ins",
        slug = free_slug_sql("sous_categories")
    )
}

const SC_UPDATE: &str = "
WITH upd AS (
    UPDATE sous_categories c SET
        description = COALESCE(s.description, c.description),
        meta_description = COALESCE(s.meta_description, c.meta_description),
        mots_cles = COALESCE(s.mots_cles, c.mots_cles),
        ordre = COALESCE(s.ordre, c.ordre),
        updated_at = now()
    FROM staging_sous_categories s
    WHERE c.categorie_id = s.categorie_id AND c.nom = s.nom
      AND (c.description, c.meta_description, c.mots_cles, c.ordre) IS DISTINCT FROM
          (COALESCE(s.description, c.description), COALESCE(s.meta_description, c.meta_description),
           COALESCE(s.mots_cles, c.mots_cles), COALESCE(s.ordre, c.ordre))
    RETURNING c.id
) SELECT COALESCE(array_agg(id), '{}') AS ids FROM upd";

/// A NAF code belongs to one sous-catégorie; when a file names the same code
/// twice, the later row wins.
const SC_LINKS: &str = "
WITH links AS (
    SELECT DISTINCT ON (code) code AS naf_code, sc.id AS sous_categorie_id
    FROM staging_sous_categories s
    JOIN sous_categories sc ON sc.categorie_id = s.categorie_id AND sc.nom = s.nom
    CROSS JOIN LATERAL unnest(string_to_array(s.naf_codes, ',')) AS code
    WHERE s.naf_codes IS NOT NULL
    ORDER BY code, s.ord DESC
), up AS (
    INSERT INTO naf_sous_categories (naf_code, sous_categorie_id)
    SELECT naf_code, sous_categorie_id FROM links
    ON CONFLICT (naf_code) DO UPDATE SET sous_categorie_id = EXCLUDED.sous_categorie_id
    WHERE naf_sous_categories.sous_categorie_id IS DISTINCT FROM EXCLUDED.sous_categorie_id
    RETURNING sous_categorie_id
) SELECT COALESCE(array_agg(DISTINCT sous_categorie_id), '{}') AS ids FROM up";

/// Merges sous-catégories keyed on (catégorie, `nom`) (unique within the
/// call) and their NAF links. A row whose only change is a NAF link counts
/// as updated.
pub async fn merge_sous_categories(
    conn: &mut AsyncPgConnection,
    rows: &[SousCategorieRow],
) -> Result<Merged> {
    if rows.is_empty() {
        return Ok(Merged::default());
    }
    conn.batch_execute(SC_STAGING).await?;
    let naf: Vec<Option<String>> = rows
        .iter()
        .map(|r| (!r.naf_codes.is_empty()).then(|| r.naf_codes.join(",")))
        .collect();
    diesel::sql_query(SC_FILL)
        .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.ord).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.categorie_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.nom.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.slug.clone()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.derived_slug.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.description.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            rows.iter()
                .map(|r| r.meta_description.clone())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.mots_cles.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Integer>>, _>(rows.iter().map(|r| r.ordre).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(naf)
        .execute(conn)
        .await?;
    let created = diesel::sql_query(sc_insert()).get_result::<Ids>(conn).await?.ids;
    let mut updated = diesel::sql_query(SC_UPDATE).get_result::<Ids>(conn).await?.ids;
    let relinked = diesel::sql_query(SC_LINKS).get_result::<Ids>(conn).await?.ids;
    for id in relinked {
        if !created.contains(&id) && !updated.contains(&id) {
            updated.push(id);
        }
    }
    Ok(Merged { created, updated })
}
