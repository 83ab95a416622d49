//! The directory's own tables read for an export, one keyset page at a time:
//! `id > after ORDER BY id LIMIT n` walks the primary key, so a page costs
//! the same at row 10 as at row 1,000,000 and no statement ever holds the
//! whole table. Each page is its own statement: an export that runs while an
//! import writes sees every row once, each as it was when its page was read.
//!
//! The values are the stored ones, already in the form the importer writes
//! (docs/spec.md §4.2), which is what makes an export re-import `unchanged`.

use crate::Result;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Which rows an export takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Only rows whose `updated_at` is at or after this instant. A
    /// sous-catégorie whose only change was a NAF link keeps its
    /// `updated_at` (the link lives in `naf_sous_categories`).
    pub updated_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct EntrepriseExport {
    /// The keyset cursor: the next page starts after the last row's id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub siren: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub siret: Option<String>,
    #[diesel(sql_type = Text)]
    pub nom: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub nom_commercial: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub adresse: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub code_postal: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub ville_nom: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub naf_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub naf_libelle: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub telephone: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub email_contact: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub site_web: Option<String>,
    #[diesel(sql_type = Bool)]
    pub is_active: bool,
}

#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct VilleExport {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub nom: String,
    /// `code_postal_principal`: the key the importer matches on with `nom`.
    #[diesel(sql_type = Text)]
    pub code_postal: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub departement: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub region: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    pub lat: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub lng: Option<f64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub population: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct CategorieExport {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub nom: String,
    #[diesel(sql_type = Text)]
    pub slug: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub meta_description: Option<String>,
    #[diesel(sql_type = Integer)]
    pub ordre: i32,
}

#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct SousCategorieExport {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub nom: String,
    /// The parent catégorie's name: what the importer resolves it by.
    #[diesel(sql_type = Text)]
    pub categorie: String,
    #[diesel(sql_type = Text)]
    pub slug: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub meta_description: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub mots_cles: Option<String>,
    #[diesel(sql_type = Integer)]
    pub ordre: i32,
    /// The NAF codes linked to it, in code order (empty when none).
    #[diesel(sql_type = Array<Text>)]
    pub naf_codes: Vec<String>,
}

// Columns are cast to `text` so that `char(n)` and `varchar(n)` read as the
// `Text` the row types declare. `$2 IS NULL OR …` keeps one statement (and
// one plan shape) whether or not the filter is given; the walk stays on the
// primary key either way, since no index covers `updated_at`.

const ENTREPRISES: &str = "
SELECT id, siren::text AS siren, siret::text AS siret, nom::text AS nom, nom_commercial::text AS nom_commercial,
       adresse::text AS adresse, code_postal::text AS code_postal, ville_nom::text AS ville_nom, naf_code,
       naf_libelle, telephone::text AS telephone, email_contact::text AS email_contact,
       site_web::text AS site_web, is_active
FROM entreprises
WHERE id > $1 AND ($2::timestamptz IS NULL OR updated_at >= $2)
ORDER BY id LIMIT $3";

const VILLES: &str = "
SELECT id, nom::text AS nom, code_postal_principal::text AS code_postal, departement::text AS departement,
       region::text AS region, lat, lng, population
FROM villes
WHERE id > $1 AND ($2::timestamptz IS NULL OR updated_at >= $2)
ORDER BY id LIMIT $3";

const CATEGORIES: &str = "
SELECT id, nom::text AS nom, slug::text AS slug, description, meta_description::text AS meta_description, ordre
FROM categories
WHERE id > $1 AND ($2::timestamptz IS NULL OR updated_at >= $2)
ORDER BY id LIMIT $3";

/// The codes come from `naf_sous_categories_sous_categorie_idx`, one index
/// probe per row of the page.
const SOUS_CATEGORIES: &str = "
SELECT sc.id, sc.nom::text AS nom, c.nom::text AS categorie, sc.slug::text AS slug, sc.description,
       sc.meta_description::text AS meta_description, sc.mots_cles, sc.ordre,
       ARRAY(SELECT n.naf_code FROM naf_sous_categories n WHERE n.sous_categorie_id = sc.id
             ORDER BY n.naf_code) AS naf_codes
FROM sous_categories sc
JOIN categories c ON c.id = sc.categorie_id
WHERE sc.id > $1 AND ($2::timestamptz IS NULL OR sc.updated_at >= $2)
ORDER BY sc.id LIMIT $3";

/// A row an export reads, and the statement that reads a page of them
/// (`$1` the cursor, `$2` `updated_since`, `$3` the page size).
pub trait ExportRow: diesel::QueryableByName<diesel::pg::Pg> + Send + 'static {
    const SQL: &'static str;
    /// The keyset cursor: the next page starts after the last row's id.
    fn id(&self) -> i64;
}

impl ExportRow for EntrepriseExport {
    const SQL: &'static str = ENTREPRISES;
    fn id(&self) -> i64 {
        self.id
    }
}

impl ExportRow for VilleExport {
    const SQL: &'static str = VILLES;
    fn id(&self) -> i64 {
        self.id
    }
}

impl ExportRow for CategorieExport {
    const SQL: &'static str = CATEGORIES;
    fn id(&self) -> i64 {
        self.id
    }
}

/// Each with its catégorie's name and its NAF codes.
impl ExportRow for SousCategorieExport {
    const SQL: &'static str = SOUS_CATEGORIES;
    fn id(&self) -> i64 {
        self.id
    }
}

/// Up to `limit` rows of `T`'s table with `id > after`, by id.
pub async fn page<T: ExportRow>(
    conn: &mut AsyncPgConnection,
    after: i64,
    filter: &ExportFilter,
    limit: i64,
) -> Result<Vec<T>> {
    Ok(diesel::sql_query(T::SQL)
        .bind::<BigInt, _>(after)
        .bind::<Nullable<Timestamptz>, _>(filter.updated_since)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?)
}
