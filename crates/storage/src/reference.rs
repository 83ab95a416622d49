//! Reference data: the NAF rév. 2 sous-classes.

use crate::Result;
use crate::entities::MergeCounts;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use foxflow_domain::naf_reference::NafEntry as NafRow;

#[derive(diesel::QueryableByName)]
struct Counts {
    #[diesel(sql_type = BigInt)]
    created: i64,
    #[diesel(sql_type = BigInt)]
    updated: i64,
}

/// How many sous-classes lack a short label (`libelle_65` or `libelle_40`):
/// all 732 on a fresh database, whose migration seeds codes and long labels
/// only.
pub async fn naf_without_short_labels(conn: &mut AsyncPgConnection) -> Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let r: N = diesel::sql_query(
        "SELECT count(*) AS n FROM naf_codes WHERE libelle_65 IS NULL OR libelle_40 IS NULL",
    )
    .get_result(conn)
    .await?;
    Ok(r.n)
}

/// Upserts the sous-classes in one statement; labels the file leaves empty
/// keep their stored value.
pub async fn upsert_naf(conn: &mut AsyncPgConnection, rows: &[NafRow]) -> Result<MergeCounts> {
    let col = |f: fn(&NafRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let c: Counts = diesel::sql_query(
        "WITH input AS (
            SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                 $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
                AS t(code, libelle, libelle_65, libelle_40, classe_code, classe_libelle, groupe_code, groupe_libelle,
                     division_code, division_libelle, section_code, section_libelle)
        ), up AS (
            INSERT INTO naf_codes AS n SELECT * FROM input
            ON CONFLICT (code) DO UPDATE SET
                libelle = EXCLUDED.libelle,
                libelle_65 = COALESCE(EXCLUDED.libelle_65, n.libelle_65),
                libelle_40 = COALESCE(EXCLUDED.libelle_40, n.libelle_40),
                classe_code = EXCLUDED.classe_code, classe_libelle = EXCLUDED.classe_libelle,
                groupe_code = EXCLUDED.groupe_code, groupe_libelle = EXCLUDED.groupe_libelle,
                division_code = EXCLUDED.division_code, division_libelle = EXCLUDED.division_libelle,
                section_code = EXCLUDED.section_code, section_libelle = EXCLUDED.section_libelle
            WHERE (n.libelle, n.libelle_65, n.libelle_40, n.classe_code, n.classe_libelle, n.groupe_code,
                   n.groupe_libelle, n.division_code, n.division_libelle, n.section_code, n.section_libelle)
                  IS DISTINCT FROM
                  (EXCLUDED.libelle, COALESCE(EXCLUDED.libelle_65, n.libelle_65),
                   COALESCE(EXCLUDED.libelle_40, n.libelle_40), EXCLUDED.classe_code, EXCLUDED.classe_libelle,
                   EXCLUDED.groupe_code, EXCLUDED.groupe_libelle, EXCLUDED.division_code, EXCLUDED.division_libelle,
                   EXCLUDED.section_code, EXCLUDED.section_libelle)
            RETURNING (xmax = 0) AS inserted
        ) SELECT count(*) FILTER (WHERE inserted) AS created, count(*) FILTER (WHERE NOT inserted) AS updated FROM up",
    )
    .bind::<Array<Text>, _>(col(|r| r.code.clone()))
    .bind::<Array<Text>, _>(col(|r| r.libelle.clone()))
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.libelle_65.clone()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.libelle_40.clone()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(col(|r| r.classe_code.clone()))
    .bind::<Array<Text>, _>(col(|r| r.classe_libelle.clone()))
    .bind::<Array<Text>, _>(col(|r| r.groupe_code.clone()))
    .bind::<Array<Text>, _>(col(|r| r.groupe_libelle.clone()))
    .bind::<Array<Text>, _>(col(|r| r.division_code.clone()))
    .bind::<Array<Text>, _>(col(|r| r.division_libelle.clone()))
    .bind::<Array<Text>, _>(col(|r| r.section_code.clone()))
    .bind::<Array<Text>, _>(col(|r| r.section_libelle.clone()))
    .get_result(conn)
    .await?;
    Ok(MergeCounts {
        created: c.created,
        updated: c.updated,
    })
}
