//! Entreprises, keyed on `siren`, and the pages they link to.

use super::{Ids, Merged};
use crate::Result;
use diesel::sql_types::{Array, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

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
    /// `ville_nom` slugified, to pick the right town among those sharing a
    /// postal code.
    pub ville_slug: Option<String>,
    pub naf_code: Option<String>,
    pub naf_libelle: Option<String>,
    pub telephone: Option<String>,
    pub email_contact: Option<String>,
    pub site_web: Option<String>,
    pub is_active: Option<bool>,
}

const STAGING: &str = "
CREATE TEMP TABLE IF NOT EXISTS staging_entreprises (
    siren text PRIMARY KEY, siret text, nom text, nom_commercial text, adresse text, code_postal text,
    ville_nom text, ville_slug text, naf_code text, naf_libelle text, telephone text, email_contact text,
    site_web text, is_active boolean
) ON COMMIT DELETE ROWS;
TRUNCATE staging_entreprises;";

const FILL: &str = "
INSERT INTO staging_entreprises
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::boolean[])";

const INSERT: &str = "
WITH ins AS (
    INSERT INTO entreprises (siren, siret, nom, nom_commercial, adresse, code_postal, ville_nom, naf_code,
                             naf_libelle, telephone, email_contact, site_web, is_active)
    SELECT siren, siret, nom, nom_commercial, adresse, code_postal, ville_nom, naf_code, naf_libelle,
           telephone, email_contact, site_web, COALESCE(is_active, true)
    FROM staging_entreprises
    ON CONFLICT (siren) DO NOTHING
    RETURNING id
) SELECT COALESCE(array_agg(id), '{}') AS ids FROM ins";

const UPDATE: &str = "
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
    RETURNING e.id
) SELECT COALESCE(array_agg(id), '{}') AS ids FROM upd";

/// Creates the missing page of every staged entreprise whose NAF code maps
/// to a sous-catégorie and whose postal code resolves to a town: the town
/// whose slug matches the entreprise's town name, else the first town with
/// that postal code. Uses the stored (merged) values, so a page appears as
/// soon as its three parts exist, whichever file came last.
const LINK_PAGES: &str = "
WITH ins AS (
    INSERT INTO prolocalisations (entreprise_id, sous_categorie_id, ville_id)
    SELECT e.id, nsc.sous_categorie_id, v.id
    FROM staging_entreprises s
    JOIN entreprises e ON e.siren = s.siren
    JOIN naf_sous_categories nsc ON nsc.naf_code = e.naf_code
    JOIN LATERAL (
        SELECT v.id FROM villes v
        WHERE v.code_postal_principal = e.code_postal
        ORDER BY (s.ville_slug IS NOT NULL AND v.slug = s.ville_slug || '-' || e.code_postal) DESC, v.id
        LIMIT 1
    ) v ON true
    ON CONFLICT (entreprise_id, sous_categorie_id, ville_id) DO NOTHING
    RETURNING id
) SELECT COALESCE(array_agg(id), '{}') AS ids FROM ins";

/// The pages of the given entreprises.
const PAGES_OF: &str =
    "SELECT COALESCE(array_agg(id), '{}') AS ids FROM prolocalisations WHERE entreprise_id = ANY($1)";

/// Merges a batch of entreprises keyed on `siren` (unique within the call).
/// Run it inside the transaction that also records the job's progress.
pub async fn merge_entreprises(conn: &mut AsyncPgConnection, rows: &[EntrepriseRow]) -> Result<Merged> {
    if rows.is_empty() {
        return Ok(Merged::default());
    }
    conn.batch_execute(STAGING).await?;
    let col = |f: fn(&EntrepriseRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    diesel::sql_query(FILL)
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.siren.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.siret.clone()))
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.nom.clone()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.nom_commercial.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.adresse.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.code_postal.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.ville_nom.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.ville_slug.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.naf_code.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.naf_libelle.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.telephone.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.email_contact.clone()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.site_web.clone()))
        .bind::<Array<Nullable<Bool>>, _>(rows.iter().map(|r| r.is_active).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    let created = diesel::sql_query(INSERT).get_result::<Ids>(conn).await?.ids;
    let updated = diesel::sql_query(UPDATE).get_result::<Ids>(conn).await?.ids;
    Ok(Merged { created, updated })
}

/// Links the entreprises of the last [`merge_entreprises`] call (same
/// transaction) to their pages; returns the pages created.
pub async fn link_pages(conn: &mut AsyncPgConnection) -> Result<Vec<i64>> {
    Ok(diesel::sql_query(LINK_PAGES).get_result::<Ids>(conn).await?.ids)
}

/// Every page of these entreprises (the pages an import's AI hand-over covers).
pub async fn pages_of(conn: &mut AsyncPgConnection, entreprise_ids: &[i64]) -> Result<Vec<i64>> {
    Ok(diesel::sql_query(PAGES_OF)
        .bind::<Array<diesel::sql_types::BigInt>, _>(entreprise_ids)
        .get_result::<Ids>(conn)
        .await?
        .ids)
}
