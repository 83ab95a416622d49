//! Read side of the directory for the API: what imports and generation
//! wrote, as JSON objects built by PostgreSQL (`jsonb_build_object`), so the
//! field names below are the API's and nothing is mapped twice. Lists are
//! paginated and ordered by a unique key, so pages never overlap.

use crate::Result;
use diesel::OptionalExtension;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

#[derive(diesel::QueryableByName)]
struct Item {
    #[diesel(sql_type = Jsonb)]
    item: Value,
}

#[derive(diesel::QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

fn offset(page: i64, per_page: i64) -> i64 {
    (page.max(1) - 1).saturating_mul(per_page)
}

const ENTREPRISE_JSON: &str = "jsonb_build_object(
    'id', e.id, 'siren', e.siren, 'siret', e.siret, 'nom', e.nom, 'nom_commercial', e.nom_commercial,
    'adresse', e.adresse, 'code_postal', e.code_postal, 'ville_nom', e.ville_nom, 'naf_code', e.naf_code,
    'naf_libelle', e.naf_libelle, 'telephone', e.telephone, 'email_contact', e.email_contact,
    'site_web', e.site_web, 'is_active', e.is_active, 'created_at', e.created_at, 'updated_at', e.updated_at)";

/// A page with its entreprise, activity and town, and its generated texts.
pub async fn prolocalisation(conn: &mut AsyncPgConnection, id: i64) -> Result<Option<Value>> {
    let sql = format!(
        "SELECT jsonb_build_object(
            'id', p.id,
            'entreprise', {ENTREPRISE_JSON},
            'sous_categorie', jsonb_build_object('id', s.id, 'nom', s.nom, 'slug', s.slug),
            'categorie', jsonb_build_object('id', c.id, 'nom', c.nom, 'slug', c.slug),
            'ville', jsonb_build_object('id', v.id, 'nom', v.nom, 'slug', v.slug,
                                        'code_postal', v.code_postal_principal, 'departement', v.departement),
            'texte_long_entreprise', p.texte_long_entreprise, 'meta_description', p.meta_description,
            'faq', p.faq, 'avis_decrypte', p.avis_decrypte,
            'date_derniere_generation_ia', p.date_derniere_generation_ia,
            'note_moyenne', p.note_moyenne::float8, 'nb_avis', p.nb_avis, 'score_global', p.score_global::float8,
            'is_verified', p.is_verified, 'is_active', p.is_active,
            'created_at', p.created_at, 'updated_at', p.updated_at) AS item
           FROM prolocalisations p
           JOIN entreprises e ON e.id = p.entreprise_id
           JOIN sous_categories s ON s.id = p.sous_categorie_id
           JOIN categories c ON c.id = s.categorie_id
           JOIN villes v ON v.id = p.ville_id
          WHERE p.id = $1"
    );
    let item: Option<Item> = diesel::sql_query(sql)
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .await
        .optional()?;
    Ok(item.map(|i| i.item))
}

/// An entreprise by SIREN, with (up to 200 of) its pages.
pub async fn entreprise(conn: &mut AsyncPgConnection, siren: &str) -> Result<Option<Value>> {
    let sql = format!(
        "SELECT {ENTREPRISE_JSON} || jsonb_build_object('pages', COALESCE((
            SELECT jsonb_agg(jsonb_build_object(
                       'id', p.id, 'sous_categorie', s.nom, 'ville', v.nom, 'code_postal', v.code_postal_principal,
                       'date_derniere_generation_ia', p.date_derniere_generation_ia) ORDER BY p.id)
              FROM (SELECT * FROM prolocalisations WHERE entreprise_id = e.id ORDER BY id LIMIT 200) p
              JOIN sous_categories s ON s.id = p.sous_categorie_id
              JOIN villes v ON v.id = p.ville_id), '[]'::jsonb)) AS item
           FROM entreprises e WHERE e.siren = $1"
    );
    let item: Option<Item> = diesel::sql_query(sql)
        .bind::<Text, _>(siren)
        .get_result(conn)
        .await
        .optional()?;
    Ok(item.map(|i| i.item))
}

/// `GET /api/v1/entreprises?q=&naf_code=&code_postal=&ville=&is_active=`.
#[derive(Debug, Clone, Default)]
pub struct EntrepriseFilter {
    /// Part of the name or trade name, any case.
    pub q: Option<String>,
    pub naf_code: Option<String>,
    pub code_postal: Option<String>,
    /// Part of the town name, any case.
    pub ville: Option<String>,
    pub is_active: Option<bool>,
}

pub async fn entreprises(
    conn: &mut AsyncPgConnection,
    f: &EntrepriseFilter,
    page: i64,
    per_page: i64,
) -> Result<(Vec<Value>, i64)> {
    let filter = "($1::text IS NULL OR strpos(lower(e.nom), lower($1)) > 0 OR strpos(lower(COALESCE(e.nom_commercial, '')), lower($1)) > 0)
              AND ($2::text IS NULL OR e.naf_code = $2)
              AND ($3::text IS NULL OR e.code_postal = $3)
              AND ($4::text IS NULL OR strpos(lower(COALESCE(e.ville_nom, '')), lower($4)) > 0)
              AND ($5::bool IS NULL OR e.is_active = $5)";
    macro_rules! bound {
        ($q:expr) => {
            $q.bind::<Nullable<Text>, _>(f.q.as_deref())
                .bind::<Nullable<Text>, _>(f.naf_code.as_deref())
                .bind::<Nullable<Text>, _>(f.code_postal.as_deref())
                .bind::<Nullable<Text>, _>(f.ville.as_deref())
                .bind::<Nullable<diesel::sql_types::Bool>, _>(f.is_active)
        };
    }
    let items: Vec<Item> = bound!(diesel::sql_query(format!(
        "SELECT {ENTREPRISE_JSON} AS item FROM entreprises e WHERE {filter} ORDER BY e.siren LIMIT $6 OFFSET $7"
    )))
    .bind::<BigInt, _>(per_page)
    .bind::<BigInt, _>(offset(page, per_page))
    .load(conn)
    .await?;
    let total: Total = bound!(diesel::sql_query(format!(
        "SELECT count(*) AS total FROM entreprises e WHERE {filter}"
    )))
    .get_result(conn)
    .await?;
    Ok((items.into_iter().map(|i| i.item).collect(), total.total))
}

/// `GET /api/v1/categories?q=`: by `ordre`, then name.
pub async fn categories(
    conn: &mut AsyncPgConnection,
    q: Option<&str>,
    page: i64,
    per_page: i64,
) -> Result<(Vec<Value>, i64)> {
    let filter = "($1::text IS NULL OR strpos(lower(c.nom), lower($1)) > 0)";
    let items: Vec<Item> = diesel::sql_query(format!(
        "SELECT jsonb_build_object(
            'id', c.id, 'nom', c.nom, 'slug', c.slug, 'description', c.description,
            'texte_description_ia', c.texte_description_ia, 'meta_description', c.meta_description,
            'ordre', c.ordre,
            'nb_sous_categories', (SELECT count(*) FROM sous_categories s WHERE s.categorie_id = c.id)) AS item
           FROM categories c WHERE {filter} ORDER BY c.ordre, c.nom, c.id LIMIT $2 OFFSET $3"
    ))
    .bind::<Nullable<Text>, _>(q)
    .bind::<BigInt, _>(per_page)
    .bind::<BigInt, _>(offset(page, per_page))
    .load(conn)
    .await?;
    let total: Total = diesel::sql_query(format!(
        "SELECT count(*) AS total FROM categories c WHERE {filter}"
    ))
    .bind::<Nullable<Text>, _>(q)
    .get_result(conn)
    .await?;
    Ok((items.into_iter().map(|i| i.item).collect(), total.total))
}

/// `GET /api/v1/sous-categories?categorie_id=&q=`.
pub async fn sous_categories(
    conn: &mut AsyncPgConnection,
    categorie_id: Option<i64>,
    q: Option<&str>,
    page: i64,
    per_page: i64,
) -> Result<(Vec<Value>, i64)> {
    let filter = "($1::int8 IS NULL OR s.categorie_id = $1) AND ($2::text IS NULL OR strpos(lower(s.nom), lower($2)) > 0)";
    let items: Vec<Item> = diesel::sql_query(format!(
        "SELECT jsonb_build_object(
            'id', s.id, 'categorie_id', s.categorie_id, 'categorie', c.nom, 'nom', s.nom, 'slug', s.slug,
            'description', s.description, 'texte_description_ia', s.texte_description_ia,
            'mots_cles', s.mots_cles, 'meta_description', s.meta_description, 'ordre', s.ordre,
            'naf_codes', ARRAY(SELECT n.naf_code FROM naf_sous_categories n WHERE n.sous_categorie_id = s.id ORDER BY 1)) AS item
           FROM sous_categories s JOIN categories c ON c.id = s.categorie_id
          WHERE {filter} ORDER BY c.ordre, c.nom, s.ordre, s.nom, s.id LIMIT $3 OFFSET $4"
    ))
    .bind::<Nullable<BigInt>, _>(categorie_id)
    .bind::<Nullable<Text>, _>(q)
    .bind::<BigInt, _>(per_page)
    .bind::<BigInt, _>(offset(page, per_page))
    .load(conn)
    .await?;
    let total: Total = diesel::sql_query(format!(
        "SELECT count(*) AS total FROM sous_categories s WHERE {filter}"
    ))
    .bind::<Nullable<BigInt>, _>(categorie_id)
    .bind::<Nullable<Text>, _>(q)
    .get_result(conn)
    .await?;
    Ok((items.into_iter().map(|i| i.item).collect(), total.total))
}

/// `GET /api/v1/villes?q=&departement=&code_postal=`.
#[derive(Debug, Clone, Default)]
pub struct VilleFilter {
    pub q: Option<String>,
    pub departement: Option<String>,
    pub code_postal: Option<String>,
}

pub async fn villes(
    conn: &mut AsyncPgConnection,
    f: &VilleFilter,
    page: i64,
    per_page: i64,
) -> Result<(Vec<Value>, i64)> {
    let filter = "($1::text IS NULL OR strpos(lower(v.nom), lower($1)) > 0)
              AND ($2::text IS NULL OR v.departement = $2)
              AND ($3::text IS NULL OR v.code_postal_principal = $3 OR $3 = ANY(v.codes_postaux))";
    let items: Vec<Item> = diesel::sql_query(format!(
        "SELECT jsonb_build_object(
            'id', v.id, 'nom', v.nom, 'slug', v.slug, 'code_postal_principal', v.code_postal_principal,
            'codes_postaux', v.codes_postaux, 'departement', v.departement, 'region', v.region,
            'lat', v.lat, 'lng', v.lng, 'population', v.population,
            'texte_description_ia', v.texte_description_ia, 'meta_description', v.meta_description) AS item
           FROM villes v WHERE {filter} ORDER BY v.nom, v.code_postal_principal, v.id LIMIT $4 OFFSET $5"
    ))
    .bind::<Nullable<Text>, _>(f.q.as_deref())
    .bind::<Nullable<Text>, _>(f.departement.as_deref())
    .bind::<Nullable<Text>, _>(f.code_postal.as_deref())
    .bind::<BigInt, _>(per_page)
    .bind::<BigInt, _>(offset(page, per_page))
    .load(conn)
    .await?;
    let total: Total = diesel::sql_query(format!("SELECT count(*) AS total FROM villes v WHERE {filter}"))
        .bind::<Nullable<Text>, _>(f.q.as_deref())
        .bind::<Nullable<Text>, _>(f.departement.as_deref())
        .bind::<Nullable<Text>, _>(f.code_postal.as_deref())
        .get_result(conn)
        .await?;
    Ok((items.into_iter().map(|i| i.item).collect(), total.total))
}
