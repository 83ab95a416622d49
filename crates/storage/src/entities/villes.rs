//! Villes, keyed on (`nom`, `code_postal_principal`).

use super::{Ids, Merged, free_slug_sql};
use crate::Result;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VilleRow {
    pub ord: i64,
    pub nom: String,
    pub code_postal: String,
    /// `nom-code_postal` slugified; suffixed on a clash.
    pub slug: String,
    /// Written when the town is created (from the file, or derived from the
    /// postal code).
    pub departement: Option<String>,
    /// Whether `departement` came from the file: only then does it replace
    /// a stored value.
    pub departement_from_file: bool,
    pub region: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub population: Option<i64>,
}

const STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS staging_villes (
    ord bigint, nom text, code_postal text, slug text, departement text, departement_update text,
    region text, lat double precision, lng double precision, population bigint,
    PRIMARY KEY (nom, code_postal)
) ON COMMIT DELETE ROWS;
TRUNCATE staging_villes;";

const FILL: &str = "
INSERT INTO staging_villes
SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::float8[], $9::float8[], $10::int8[])";

fn insert() -> String {
    format!(
        "WITH new AS (
            SELECT s.*, s.slug AS base FROM staging_villes s
            WHERE NOT EXISTS (SELECT 1 FROM villes v WHERE v.nom = s.nom AND v.code_postal_principal = s.code_postal)
        ), numbered AS (
            SELECT new.*, row_number() OVER (PARTITION BY base ORDER BY ord) AS rn FROM new
        ), ins AS (
            INSERT INTO villes (nom, code_postal_principal, codes_postaux, slug, departement, region, lat, lng, population)
            SELECT nom, code_postal, ARRAY[code_postal], {slug}, departement, region, lat, lng, population
            FROM numbered ORDER BY ord
            ON CONFLICT (nom, code_postal_principal) DO NOTHING
            RETURNING id
        ) SELECT COALESCE(array_agg(id), '{{}}') AS ids FROM ins",
        slug = free_slug_sql("villes")
    )
}

const UPDATE: &str = "
WITH upd AS (
    UPDATE villes v SET
        departement = COALESCE(s.departement_update, v.departement),
        region = COALESCE(s.region, v.region),
        lat = COALESCE(s.lat, v.lat),
        lng = COALESCE(s.lng, v.lng),
        population = COALESCE(s.population, v.population),
        updated_at = now()
    FROM staging_villes s
    WHERE v.nom = s.nom AND v.code_postal_principal = s.code_postal
      AND (v.departement, v.region, v.lat, v.lng, v.population) IS DISTINCT FROM
          (COALESCE(s.departement_update, v.departement), COALESCE(s.region, v.region), COALESCE(s.lat, v.lat),
           COALESCE(s.lng, v.lng), COALESCE(s.population, v.population))
    RETURNING v.id
) SELECT COALESCE(array_agg(id), '{}') AS ids FROM upd";

/// Merges villes keyed on (nom, code postal) (unique within the call).
pub async fn merge_villes(conn: &mut AsyncPgConnection, rows: &[VilleRow]) -> Result<Merged> {
    if rows.is_empty() {
        return Ok(Merged::default());
    }
    conn.batch_execute(STAGING).await?;
    diesel::sql_query(FILL)
        .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.ord).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.nom.clone()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.code_postal.clone()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.slug.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.departement.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            rows.iter()
                .map(|r| r.departement.clone().filter(|_| r.departement_from_file))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.region.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Double>>, _>(rows.iter().map(|r| r.lat).collect::<Vec<_>>())
        .bind::<Array<Nullable<Double>>, _>(rows.iter().map(|r| r.lng).collect::<Vec<_>>())
        .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.population).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    let created = diesel::sql_query(insert()).get_result::<Ids>(conn).await?.ids;
    let updated = diesel::sql_query(UPDATE).get_result::<Ids>(conn).await?.ids;
    Ok(Merged { created, updated })
}
