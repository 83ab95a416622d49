//! Read what was imported and generated (docs/spec.md §5): pages, entreprises,
//! catégories, sous-catégories, villes. Any valid token may read.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::Paging;
use crate::state::AppState;
use crate::views::{ErrorBody, Page, Record, RecordPage};
use actix_web::{HttpResponse, get, web};
use foxflow_domain::ai_text::TargetType;
use foxflow_domain::values::{CodePostal, NafCode, Siren};
use foxflow_storage::directory::{self, EntrepriseFilter, VilleFilter};
use foxflow_storage::{ai, pool};
use serde::Deserialize;
use serde_json::Value;

/// Registers this module's routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(prolocalisation)
        .service(entreprise)
        .service(entreprises)
        .service(categories)
        .service(sous_categories)
        .service(villes);
}

fn page_of(items: Vec<Value>, total: i64, (page, per_page): (i64, i64)) -> HttpResponse {
    HttpResponse::Ok().json(Page {
        items,
        total,
        page,
        per_page,
    })
}

/// An empty query value means "no filter".
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /api/v1/prolocalisations/{id}`: the page, its texts, and the
/// provenance of each text.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "get_prolocalisation",
    tag = "directory",
    params(("id" = String, Path, description = "The page's numeric id")),
    responses(
        (status = 200, description = "The page, its entreprise, activity, town, texts and their provenance", body = Record),
        (status = 400, description = "An invalid filter value", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/prolocalisations/{id}")]
pub async fn prolocalisation(
    path: web::Path<String>,
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id: i64 = path.parse().map_err(|_| ApiError::NotFound("prolocalisation"))?;
    let mut conn = pool::conn(&state.pool).await?;
    let mut page = directory::prolocalisation(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound("prolocalisation"))?;
    let provenance = ai::latest_provenance(&mut conn, TargetType::Prolocalisation, id).await?;
    page["generations"] = serde_json::to_value(provenance).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/v1/entreprises/{siren}`, with its pages.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "get_entreprise",
    tag = "directory",
    params(("siren" = String, Path, description = "9 digits, Luhn-valid")),
    responses(
        (status = 200, description = "The entreprise and its pages", body = Record),
        (status = 400, description = "An invalid filter value", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/entreprises/{siren}")]
pub async fn entreprise(
    path: web::Path<String>,
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let siren = Siren::parse(&path).map_err(|e| ApiError::bad_request("invalid_siren", e.message))?;
    let mut conn = pool::conn(&state.pool).await?;
    let entreprise = directory::entreprise(&mut conn, siren.as_str())
        .await?
        .ok_or(ApiError::NotFound("entreprise"))?;
    Ok(HttpResponse::Ok().json(entreprise))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntreprisesQuery {
    pub q: Option<String>,
    pub naf_code: Option<String>,
    pub code_postal: Option<String>,
    pub ville: Option<String>,
    pub is_active: Option<bool>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// `GET /api/v1/entreprises?q=&naf_code=&code_postal=&ville=&is_active=&page=&per_page=`, by SIREN.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "list_entreprises",
    tag = "directory",
    params(EntreprisesQuery),
    responses(
        (status = 200, description = "One page of entreprises, by SIREN", body = RecordPage),
        (status = 400, description = "An invalid filter value", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/entreprises")]
pub async fn entreprises(
    query: web::Query<EntreprisesQuery>,
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let naf_code = given(&query.naf_code)
        .map(|c| NafCode::parse(c).map_err(|e| ApiError::bad_request("invalid_naf_code", e.message)))
        .transpose()?;
    let code_postal = given(&query.code_postal)
        .map(|c| CodePostal::parse(c).map_err(|e| ApiError::bad_request("invalid_code_postal", e.message)))
        .transpose()?;
    let filter = EntrepriseFilter {
        q: given(&query.q).map(str::to_owned),
        naf_code: naf_code.map(|c| c.as_str().to_owned()),
        code_postal: code_postal.map(|c| c.as_str().to_owned()),
        ville: given(&query.ville).map(str::to_owned),
        is_active: query.is_active,
    };
    let bounds = Paging {
        page: query.page,
        per_page: query.per_page,
    }
    .bounds();
    let mut conn = pool::conn(&state.pool).await?;
    let (items, total) = directory::entreprises(&mut conn, &filter, bounds.0, bounds.1).await?;
    Ok(page_of(items, total, bounds))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NamedQuery {
    pub q: Option<String>,
    pub categorie_id: Option<i64>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// `GET /api/v1/categories?q=&page=&per_page=`.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "list_categories",
    tag = "directory",
    params(NamedQuery),
    responses(
        (status = 200, description = "One page of catégories", body = RecordPage),
        (status = 400, description = "An invalid filter value", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/categories")]
pub async fn categories(
    query: web::Query<NamedQuery>,
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let bounds = Paging {
        page: query.page,
        per_page: query.per_page,
    }
    .bounds();
    let mut conn = pool::conn(&state.pool).await?;
    let (items, total) = directory::categories(&mut conn, given(&query.q), bounds.0, bounds.1).await?;
    Ok(page_of(items, total, bounds))
}

/// `GET /api/v1/sous-categories?categorie_id=&q=&page=&per_page=`.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "list_sous_categories",
    tag = "directory",
    params(NamedQuery),
    responses(
        (status = 200, description = "One page of sous-catégories", body = RecordPage),
        (status = 400, description = "An invalid filter value", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/sous-categories")]
pub async fn sous_categories(
    query: web::Query<NamedQuery>,
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let bounds = Paging {
        page: query.page,
        per_page: query.per_page,
    }
    .bounds();
    let mut conn = pool::conn(&state.pool).await?;
    let (items, total) =
        directory::sous_categories(&mut conn, query.categorie_id, given(&query.q), bounds.0, bounds.1)
            .await?;
    Ok(page_of(items, total, bounds))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VillesQuery {
    pub q: Option<String>,
    pub departement: Option<String>,
    pub code_postal: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// `GET /api/v1/villes?q=&departement=&code_postal=&page=&per_page=`.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "list_villes",
    tag = "directory",
    params(VillesQuery),
    responses(
        (status = 200, description = "One page of villes", body = RecordPage),
        (status = 400, description = "An invalid filter value", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/villes")]
pub async fn villes(
    query: web::Query<VillesQuery>,
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let code_postal = given(&query.code_postal)
        .map(|c| CodePostal::parse(c).map_err(|e| ApiError::bad_request("invalid_code_postal", e.message)))
        .transpose()?;
    let filter = VilleFilter {
        q: given(&query.q).map(str::to_owned),
        departement: given(&query.departement).map(str::to_owned),
        code_postal: code_postal.map(|c| c.as_str().to_owned()),
    };
    let bounds = Paging {
        page: query.page,
        per_page: query.per_page,
    }
    .bounds();
    let mut conn = pool::conn(&state.pool).await?;
    let (items, total) = directory::villes(&mut conn, &filter, bounds.0, bounds.1).await?;
    Ok(page_of(items, total, bounds))
}
