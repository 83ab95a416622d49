//! Set-based writes of imported entities.
//!
//! A batch is staged in a temporary table with one UNNEST per column, then
//! merged in two statements: an `INSERT … ON CONFLICT DO NOTHING` that
//! creates the new keys, and an `UPDATE … WHERE (stored) IS DISTINCT FROM
//! (merged)` that touches only rows whose values change. The database counts
//! the outcomes; rows neither created nor updated are unchanged. A NULL in the
//! batch means "absent or empty in the file": `COALESCE(new, stored)` keeps
//! the stored value (SPEC §4.4). Keys must be unique within one call.

use crate::Result;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// How many rows of a batch were created and updated; the rest are unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeCounts {
    pub created: i64,
    pub updated: i64,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// One entreprise as the import worker hands it over: already parsed and
/// normalised, `None` for "leave the stored value alone".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntrepriseRow {
    pub siren: String,
    pub siret: Option<String>,
    pub nom: String,
    pub nom_commercial: Option<String>,
    pub adresse: Option<String>,
    pub code_postal: Option<String>,
    pub ville_nom: Option<String>,
    pub naf_code: Option<String>,
    pub naf_libelle: Option<String>,
    pub telephone: Option<String>,
    pub email_contact: Option<String>,
    pub site_web: Option<String>,
    pub is_active: Option<bool>,
}

const ENTREPRISE_STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS staging_entreprises (
    siren text PRIMARY KEY, siret text, nom text, nom_commercial text, adresse text, code_postal text,
    ville_nom text, naf_code text, naf_libelle text, telephone text, email_contact text, site_web text,
    is_active boolean
) ON COMMIT DELETE ROWS;
TRUNCATE staging_entreprises;";

const ENTREPRISE_FILL: &str = "
INSERT INTO staging_entreprises
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::boolean[])";

const ENTREPRISE_INSERT: &str = "
WITH ins AS (
    INSERT INTO entreprises (siren, siret, nom, nom_commercial, adresse, code_postal, ville_nom, naf_code,
                             naf_libelle, telephone, email_contact, site_web, is_active)
    SELECT siren, siret, nom, nom_commercial, adresse, code_postal, ville_nom, naf_code, naf_libelle,
           telephone, email_contact, site_web, COALESCE(is_active, true)
    FROM staging_entreprises
    ON CONFLICT (siren) DO NOTHING
    RETURNING 1
) SELECT count(*) AS n FROM ins";

const ENTREPRISE_UPDATE: &str = "
WITH upd AS (
    UPDATE entreprises e SET
        siret = COALESCE(s.siret, e.siret), nom = COALESCE(s.nom, e.nom),
        nom_commercial = COALESCE(s.nom_commercial, e.nom_commercial), adresse = COALESCE(s.adresse, e.adresse),
        code_postal = COALESCE(s.code_postal, e.code_postal), ville_nom = COALESCE(s.ville_nom, e.ville_nom),
        naf_code = COALESCE(s.naf_code, e.naf_code), naf_libelle = COALESCE(s.naf_libelle, e.naf_libelle),
        telephone = COALESCE(s.telephone, e.telephone), email_contact = COALESCE(s.email_contact, e.email_contact),
        site_web = COALESCE(s.site_web, e.site_web), is_active = COALESCE(s.is_active, e.is_active),
        updated_at = now()
    FROM staging_entreprises s
    WHERE e.siren = s.siren
      AND (e.siret, e.nom, e.nom_commercial, e.adresse, e.code_postal, e.ville_nom, e.naf_code, e.naf_libelle,
           e.telephone, e.email_contact, e.site_web, e.is_active)
          IS DISTINCT FROM
          (COALESCE(s.siret, e.siret), COALESCE(s.nom, e.nom), COALESCE(s.nom_commercial, e.nom_commercial),
           COALESCE(s.adresse, e.adresse), COALESCE(s.code_postal, e.code_postal),
           COALESCE(s.ville_nom, e.ville_nom), COALESCE(s.naf_code, e.naf_code),
           COALESCE(s.naf_libelle, e.naf_libelle), COALESCE(s.telephone, e.telephone),
           COALESCE(s.email_contact, e.email_contact), COALESCE(s.site_web, e.site_web),
           COALESCE(s.is_active, e.is_active))
    RETURNING 1
) SELECT count(*) AS n FROM upd";

/// Merges a batch of entreprises keyed on `siren`. Run it inside the
/// transaction that also records the job's progress.
pub async fn merge_entreprises(conn: &mut AsyncPgConnection, rows: &[EntrepriseRow]) -> Result<MergeCounts> {
    if rows.is_empty() {
        return Ok(MergeCounts::default());
    }
    conn.batch_execute(ENTREPRISE_STAGING).await?;
    let col = |f: fn(&EntrepriseRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    diesel::sql_query(ENTREPRISE_FILL)
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.siren.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.siret.clone()))
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.nom.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.nom_commercial.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.adresse.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.code_postal.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.ville_nom.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.naf_code.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.naf_libelle.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.telephone.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.email_contact.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.site_web.clone()))
        .bind::<Array<Nullable<Bool>>, _>(rows.iter().map(|r| r.is_active).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    let created = diesel::sql_query(ENTREPRISE_INSERT)
        .get_result::<Count>(conn)
        .await?
        .n;
    let updated = diesel::sql_query(ENTREPRISE_UPDATE)
        .get_result::<Count>(conn)
        .await?
        .n;
    Ok(MergeCounts { created, updated })
}

/// The NAF reference table as (code, libellé) pairs.
pub async fn naf_labels(conn: &mut AsyncPgConnection) -> Result<Vec<(String, String)>> {
    use crate::schema::naf_codes;
    use diesel::QueryDsl;
    Ok(naf_codes::table
        .select((naf_codes::code, naf_codes::libelle))
        .load(conn)
        .await?)
}
