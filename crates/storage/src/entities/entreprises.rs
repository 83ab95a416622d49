//! Entreprises, keyed on `siren`, and the pages they link to.

use super::{Ids, Merged};
use crate::Result;
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use std::sync::LazyLock;

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

/// The batch's rows reach the statements as one array per column, unnested
/// in the statement itself: no staging table to fill, empty and truncate at
/// every commit (that fill was ~8 ms of every 5,000-row batch,
/// docs/benchmarks.md). An unnamed statement is planned with its arrays'
/// actual lengths, but the planner still knows nothing of their values, so
/// against a large `entreprises` it may pick a hash or merge join that reads
/// the whole table (O(table) per batch) and, from an inflated estimate, JIT
/// compilation (1.4 s per batch measured once). Every statement below looks
/// rows up by key: index nested loops keep a batch O(batch · log table).
/// Sequential scans are off too: a batch planned while `entreprises` is
/// empty (a new directory's first batch) otherwise scans the table once per
/// row, and when concurrent imports fill it during that statement the scans
/// grow with them (4 concurrent first imports: 43 s instead of 6,
/// docs/benchmarks.md). `SET LOCAL` ends with the batch's transaction.
const SETTINGS: &str = "
SET LOCAL jit = off;
SET LOCAL enable_hashjoin = off;
SET LOCAL enable_mergejoin = off;
SET LOCAL enable_seqscan = off;";

/// The batch's rows, as the statements below bind them ($1 … $14).
const ROWS: &str = "UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::boolean[])
    AS s(siren, siret, nom, nom_commercial, adresse, code_postal, ville_nom, ville_slug, naf_code, naf_libelle,
         telephone, email_contact, site_web, is_active)";

/// The columns page linking needs, bound by [`link_pages`] ($1 … $4).
const LINK_ROWS: &str =
    "UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS s(siren, naf_code, code_postal, ville_slug)";

static MERGE_SQL: LazyLock<String> = LazyLock::new(|| MERGE.replace("{ROWS}", ROWS));
static LINK_SQL: LazyLock<String> = LazyLock::new(|| LINK_PAGES.replace("{ROWS}", LINK_ROWS));

/// One statement per batch. `cmp` looks each staged row up once through the
/// `siren` index (the cast makes the `char(9)` index usable: comparing as
/// `text` would scan the table) and computes the merged values (`COALESCE`:
/// an empty cell keeps the stored value) and whether they equal the stored
/// ones. Unchanged rows stop there: they are neither locked nor rewritten
/// (an `ON CONFLICT DO UPDATE … WHERE` would still lock, and WAL-log the
/// lock of, every conflicting row). The rest go through one
/// `INSERT … ON CONFLICT DO UPDATE`, whose `WHERE` re-checks against the row
/// as it is now, in case a concurrent import changed it since the snapshot.
const MERGE: &str = "
WITH cmp AS MATERIALIZED (
    SELECT s.siren, e.id AS eid,
           COALESCE(s.siret, e.siret) AS siret, s.nom, COALESCE(s.nom_commercial, e.nom_commercial) AS nom_commercial,
           COALESCE(s.adresse, e.adresse) AS adresse, COALESCE(s.code_postal, e.code_postal) AS code_postal,
           COALESCE(s.ville_nom, e.ville_nom) AS ville_nom, COALESCE(s.naf_code, e.naf_code) AS naf_code,
           COALESCE(s.naf_libelle, e.naf_libelle) AS naf_libelle, COALESCE(s.telephone, e.telephone) AS telephone,
           COALESCE(s.email_contact, e.email_contact) AS email_contact, COALESCE(s.site_web, e.site_web) AS site_web,
           COALESCE(s.is_active, e.is_active, true) AS is_active,
           e.id IS NOT NULL
           AND (e.siret, e.nom, e.nom_commercial, e.adresse, e.code_postal, e.ville_nom, e.naf_code, e.naf_libelle,
                e.telephone, e.email_contact, e.site_web, e.is_active)
               IS NOT DISTINCT FROM
               (COALESCE(s.siret, e.siret), s.nom, COALESCE(s.nom_commercial, e.nom_commercial),
                COALESCE(s.adresse, e.adresse), COALESCE(s.code_postal, e.code_postal),
                COALESCE(s.ville_nom, e.ville_nom), COALESCE(s.naf_code, e.naf_code),
                COALESCE(s.naf_libelle, e.naf_libelle), COALESCE(s.telephone, e.telephone),
                COALESCE(s.email_contact, e.email_contact), COALESCE(s.site_web, e.site_web),
                COALESCE(s.is_active, e.is_active)) AS same
    FROM {ROWS}
    LEFT JOIN entreprises e ON e.siren = s.siren::char(9)
), up AS (
    INSERT INTO entreprises AS e (siren, siret, nom, nom_commercial, adresse, code_postal, ville_nom, naf_code,
                                  naf_libelle, telephone, email_contact, site_web, is_active)
    SELECT siren, siret, nom, nom_commercial, adresse, code_postal, ville_nom, naf_code, naf_libelle,
           telephone, email_contact, site_web, is_active
    FROM cmp WHERE NOT same
    ON CONFLICT (siren) DO UPDATE SET
        siret = COALESCE(EXCLUDED.siret, e.siret), nom = EXCLUDED.nom,
        nom_commercial = COALESCE(EXCLUDED.nom_commercial, e.nom_commercial),
        adresse = COALESCE(EXCLUDED.adresse, e.adresse), code_postal = COALESCE(EXCLUDED.code_postal, e.code_postal),
        ville_nom = COALESCE(EXCLUDED.ville_nom, e.ville_nom), naf_code = COALESCE(EXCLUDED.naf_code, e.naf_code),
        naf_libelle = COALESCE(EXCLUDED.naf_libelle, e.naf_libelle),
        telephone = COALESCE(EXCLUDED.telephone, e.telephone),
        email_contact = COALESCE(EXCLUDED.email_contact, e.email_contact),
        site_web = COALESCE(EXCLUDED.site_web, e.site_web), is_active = EXCLUDED.is_active,
        updated_at = now()
    WHERE (e.siret, e.nom, e.nom_commercial, e.adresse, e.code_postal, e.ville_nom, e.naf_code, e.naf_libelle,
           e.telephone, e.email_contact, e.site_web, e.is_active)
          IS DISTINCT FROM
          (COALESCE(EXCLUDED.siret, e.siret), EXCLUDED.nom, COALESCE(EXCLUDED.nom_commercial, e.nom_commercial),
           COALESCE(EXCLUDED.adresse, e.adresse), COALESCE(EXCLUDED.code_postal, e.code_postal),
           COALESCE(EXCLUDED.ville_nom, e.ville_nom), COALESCE(EXCLUDED.naf_code, e.naf_code),
           COALESCE(EXCLUDED.naf_libelle, e.naf_libelle), COALESCE(EXCLUDED.telephone, e.telephone),
           COALESCE(EXCLUDED.email_contact, e.email_contact), COALESCE(EXCLUDED.site_web, e.site_web),
           EXCLUDED.is_active)
    RETURNING e.id, e.siren
)
SELECT (SELECT COALESCE(array_agg(id), '{}') FROM up) AS written,
       (SELECT COALESCE(array_agg(eid), '{}') FROM cmp WHERE NOT same AND eid IS NOT NULL) AS existing";

/// Creates the missing page of every staged entreprise whose NAF code maps
/// to a sous-catégorie and whose postal code resolves to a town: the town
/// whose slug matches the entreprise's town name, else the first town with
/// that postal code. Uses the stored (merged) values, so a page appears as
/// soon as its three parts exist, whichever file came last.
const LINK_PAGES: &str = "
WITH ins AS (
    INSERT INTO prolocalisations (entreprise_id, sous_categorie_id, ville_id)
    SELECT e.id, nsc.sous_categorie_id, v.id
    FROM {ROWS}
    JOIN entreprises e ON e.siren = s.siren::char(9)
    JOIN naf_sous_categories nsc ON nsc.naf_code = e.naf_code
    JOIN LATERAL (
        SELECT v.id FROM villes v
        WHERE v.code_postal_principal = e.code_postal
        ORDER BY (s.ville_slug IS NOT NULL AND v.slug = s.ville_slug || '-' || e.code_postal) DESC, v.id
        LIMIT 1
    ) v ON true
    -- Cheap pre-filters on the staged values, so rows that cannot link
    -- skip the entreprise lookup (a NULL means the stored value applies).
    WHERE (s.naf_code IS NULL OR EXISTS (SELECT 1 FROM naf_sous_categories x WHERE x.naf_code = s.naf_code))
      AND (s.code_postal IS NULL OR EXISTS (SELECT 1 FROM villes x WHERE x.code_postal_principal = s.code_postal))
    ON CONFLICT (entreprise_id, sous_categorie_id, ville_id) DO NOTHING
    RETURNING id
) SELECT COALESCE(array_agg(id), '{}') AS ids FROM ins";

#[derive(diesel::QueryableByName)]
struct Written {
    /// Ids inserted or updated by the statement.
    #[diesel(sql_type = Array<BigInt>)]
    written: Vec<i64>,
    /// Ids of the rows sent to the write that existed before it.
    #[diesel(sql_type = Array<BigInt>)]
    existing: Vec<i64>,
}

/// The pages of the given entreprises.
const PAGES_OF: &str =
    "SELECT COALESCE(array_agg(id), '{}') AS ids FROM prolocalisations WHERE entreprise_id = ANY($1)";

/// Merges a batch of entreprises keyed on `siren` (unique within the call).
/// Run it inside the transaction that also records the job's progress.
pub async fn merge_entreprises(conn: &mut AsyncPgConnection, rows: &[EntrepriseRow]) -> Result<Merged> {
    if rows.is_empty() {
        return Ok(Merged::default());
    }
    conn.batch_execute(SETTINGS).await?;
    let merged = with_rows(MERGE_SQL.as_str(), rows)
        .get_result::<Written>(conn)
        .await?;
    // Classified here rather than by a join in SQL: with hash and merge
    // joins off, a join of the two CTEs would be a quadratic nested loop.
    let existing: std::collections::HashSet<i64> = merged.existing.into_iter().collect();
    let (updated, created) = merged.written.into_iter().partition(|id| existing.contains(id));
    Ok(Merged { created, updated })
}

/// `sql` with the rows bound as [`ROWS`] expects them, one array per
/// column, borrowed: encoded straight from the rows.
fn with_rows<'a>(sql: &str, rows: &'a [EntrepriseRow]) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
    let col = |f: fn(&EntrepriseRow) -> Option<&str>| rows.iter().map(f).collect::<Vec<_>>();
    diesel::sql_query(sql)
        .into_boxed::<Pg>()
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.siren.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.siret.as_deref()))
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.nom.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.nom_commercial.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.adresse.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.code_postal.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.ville_nom.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.ville_slug.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.naf_code.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.naf_libelle.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.telephone.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.email_contact.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.site_web.as_deref()))
        .bind::<Array<Nullable<Bool>>, _>(rows.iter().map(|r| r.is_active).collect::<Vec<_>>())
}

/// The plan of the merge of these rows (`EXPLAIN`, one line per element),
/// under the batch's settings, in a transaction rolled back at once:
/// nothing is written. It is how an operator checks why a batch is slow,
/// and how the tests check that a batch looks each staged row up through
/// the `siren` index whatever the table's statistics say
/// (`crates/e2e-tests/tests/e2e/plans.rs`).
pub async fn merge_plan(conn: &mut AsyncPgConnection, rows: &[EntrepriseRow]) -> Result<Vec<String>> {
    use diesel_async::AsyncConnection;
    #[derive(diesel::QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    /// Ends the transaction either way; the plan leaves as the "error".
    enum Unwind {
        Plan(Vec<String>),
        Failed(crate::StorageError),
    }
    impl From<diesel::result::Error> for Unwind {
        fn from(e: diesel::result::Error) -> Self {
            Unwind::Failed(e.into())
        }
    }
    impl From<crate::StorageError> for Unwind {
        fn from(e: crate::StorageError) -> Self {
            Unwind::Failed(e)
        }
    }
    let unwound = conn
        .transaction::<(), Unwind, _>(async |conn| {
            conn.batch_execute(SETTINGS).await?;
            let explain = format!("EXPLAIN (COSTS OFF) {}", MERGE_SQL.as_str());
            let lines = with_rows(&explain, rows).load::<Line>(conn).await?;
            Err(Unwind::Plan(lines.into_iter().map(|l| l.line).collect()))
        })
        .await;
    match unwound {
        Err(Unwind::Plan(lines)) => Ok(lines),
        Err(Unwind::Failed(e)) => Err(e),
        Ok(()) => Ok(Vec::new()),
    }
}

/// Links the entreprises of a [`merge_entreprises`] call (same rows, same
/// transaction, after it) to their pages; returns the pages created.
pub async fn link_pages(conn: &mut AsyncPgConnection, rows: &[EntrepriseRow]) -> Result<Vec<i64>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let col = |f: fn(&EntrepriseRow) -> Option<&str>| rows.iter().map(f).collect::<Vec<_>>();
    Ok(diesel::sql_query(LINK_SQL.as_str())
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.siren.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.naf_code.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.code_postal.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(col(|r| r.ville_slug.as_deref()))
        .get_result::<Ids>(conn)
        .await?
        .ids)
}

/// Every page of these entreprises (the pages an import's AI hand-over covers).
pub async fn pages_of(conn: &mut AsyncPgConnection, entreprise_ids: &[i64]) -> Result<Vec<i64>> {
    Ok(diesel::sql_query(PAGES_OF)
        .bind::<Array<diesel::sql_types::BigInt>, _>(entreprise_ids)
        .get_result::<Ids>(conn)
        .await?
        .ids)
}
