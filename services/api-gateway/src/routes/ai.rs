//! AI generation batches (docs/spec.md §5, §8): ask for texts, follow a batch.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::Paging;
use crate::state::AppState;
use crate::views::{BatchDetailView, BatchView, ErrorBody, Page};
use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use foxflow_domain::JobStatus;
use foxflow_domain::ai_text::{TargetType, TextKind};
use foxflow_domain::{Text, text};
use foxflow_storage::ai::{self, NewBatch, TargetFilter};
use foxflow_storage::auth::Role;
use foxflow_storage::{jobs, pool};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// Explicit ids per request; more is a job for the filter form.
const MAX_IDS: usize = 10_000;
/// Targets one filter may select; narrow the filter beyond that.
const MAX_FILTERED: i64 = 50_000;
/// Failed tasks shown with a batch.
const FAILURES_PREVIEW: i64 = 20;
/// What a user over the AI quota is told to wait: tasks drain at the
/// provider's pace, so a minute is a fair first retry.
const RETRY_AFTER_QUOTA_S: u64 = 60;

/// Registers this module's routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create).service(list).service(get);
}

/// `{target, ids? | import_id? | filter?, kinds?, force?}`: exactly one
/// way of choosing the targets.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    /// `entreprise`, `prolocalisation`, `categorie`, `sous_categorie` or `ville`.
    pub target: String,
    pub ids: Option<Vec<i64>>,
    pub import_id: Option<Uuid>,
    /// `{ville_id?, sous_categorie_id?, categorie_id?, departement?, never_generated?}`.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<TargetFilter>,
    /// Every kind the target has when absent.
    pub kinds: Option<Vec<String>>,
    #[serde(default)]
    pub force: bool,
}

/// `POST /api/v1/ai/generations`: writes the batch, its tasks and one
/// message per task in one transaction and answers 202 with the batch.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "create_ai_batch",
    tag = "ai",
    request_body = CreateBatch,
    responses(
        (status = 202, description = "The batch, queued", body = BatchView,
         headers(("Location" = String, description = "The batch's URL"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Needs the staff role", body = ErrorBody),
        (status = 404, description = "No such import", body = ErrorBody),
        (status = 409, description = "The import has no imported rows yet", body = ErrorBody),
        (status = 422, description = "Unknown target, kind or ids; not exactly one selection", body = ErrorBody),
        (status = 429, description = "The user's pending and processing tasks plus this request's would pass \
         AI_MAX_PENDING_TASKS_PER_USER; nothing was created. See Retry-After", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/ai/generations")]
pub async fn create(
    body: web::Json<CreateBatch>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Staff)?;
    let body = body.into_inner();
    let target: TargetType = body
        .target
        .parse()
        .map_err(|e: foxflow_domain::ai_text::UnknownTarget| {
            ApiError::unprocessable("invalid_target", crate::lang::detail("cible inconnue", &e))
        })?;
    let kinds = kinds_for(target, body.kinds.as_deref())?;
    let mut conn = pool::conn(&state.pool).await?;
    let (ids, import_id, selection) = match (body.ids, body.import_id, body.filter) {
        (Some(ids), None, None) => {
            let mut ids = ids;
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() || ids.len() > MAX_IDS {
                return Err(ApiError::unprocessable(
                    "invalid_ids",
                    text!(
                        "`ids` doit lister de 1 à {MAX_IDS} identifiants",
                        "`ids` must list 1 to {MAX_IDS} ids"
                    ),
                ));
            }
            let found = ai::existing_ids(&mut conn, target, &ids).await?;
            if found.len() != ids.len() {
                let unknown: Vec<i64> = ids
                    .iter()
                    .filter(|i| found.binary_search(i).is_err())
                    .copied()
                    .collect();
                return Err(ApiError::Unprocessable {
                    code: "unknown_ids",
                    message: Box::new(text!(
                        "{n} des identifiants ne désignent aucun(e) {target}",
                        "{n} of the ids name no {target}",
                        n = unknown.len()
                    )),
                    details: Some(json!({ "unknown_ids": unknown.iter().take(50).collect::<Vec<_>>() })),
                });
            }
            let selection = json!({ "ids": ids.len() });
            (ids, None, selection)
        }
        (None, Some(import_id), None) => {
            let job = jobs::get_job(&mut conn, import_id)
                .await?
                .filter(|j| caller.owner_filter().is_none_or(|o| j.owner_id == Some(o)))
                .ok_or(ApiError::NotFound("import"))?;
            if !matches!(job.status, JobStatus::Success | JobStatus::Partial) {
                return Err(ApiError::Conflict(text!(
                    "l’import {import_id} est `{status}` ; les textes peuvent être générés une fois des lignes importées",
                    "import {import_id} is `{status}`; texts can be generated once it has imported rows",
                    status = job.status
                )));
            }
            let ids = ai::touched_ids(&mut conn, import_id, target).await?;
            (ids, Some(import_id), json!({ "import_id": import_id }))
        }
        (None, None, Some(filter)) => {
            let ids = ai::filter_ids(&mut conn, target, &filter, MAX_FILTERED).await?;
            if ids.len() as i64 > MAX_FILTERED {
                return Err(ApiError::unprocessable(
                    "too_many_targets",
                    text!(
                        "le filtre sélectionne plus de {MAX_FILTERED} cibles ; restreignez-le",
                        "the filter selects more than {MAX_FILTERED} targets; narrow it down"
                    ),
                ));
            }
            (ids, None, json!({ "filter": filter }))
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_selection",
                Text::new(
                    "donnez exactement un de `ids`, `import_id` ou `filter`",
                    "give exactly one of `ids`, `import_id` or `filter`",
                ),
            ));
        }
    };
    let new = NewBatch {
        target,
        kinds,
        force: body.force,
        import_id,
        owner_id: Some(caller.0.user_id),
        selection,
    };
    let quota = state.config.ai_max_pending_tasks_per_user;
    let created = ai::create_batch_within_quota(&mut conn, &new, &ids, quota)
        .await?
        .map_err(|over| {
            tracing::info!(user = %caller.0.user_id, pending = over.pending, quota, "AI batch refused: over the per-user quota");
            ApiError::TooManyRequests {
                retry_after_s: RETRY_AFTER_QUOTA_S,
            }
        })?;
    state.relay_wake.notify_one();
    let progress = ai::batch_progress(&mut conn, created.id)
        .await?
        .ok_or(ApiError::NotFound("batch"))?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/ai/generations/{}", created.id)))
        .json(progress))
}

fn kinds_for(target: TargetType, asked: Option<&[String]>) -> Result<Vec<TextKind>, ApiError> {
    let Some(asked) = asked else {
        return Ok(target.kinds().to_vec());
    };
    let mut kinds = Vec::new();
    for k in asked {
        let kind: TextKind = k.parse().map_err(|e: foxflow_domain::ai_text::UnknownKind| {
            ApiError::unprocessable("invalid_kind", crate::lang::detail("type de texte inconnu", &e))
        })?;
        if !target.has_kind(kind) {
            return Err(ApiError::unprocessable(
                "invalid_kind",
                text!(
                    "un(e) {target} n’a pas de texte `{kind}` (il/elle a {has})",
                    "a {target} has no `{kind}` text (it has {has})",
                    has = target
                        .kinds()
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_kind",
            Text::new("`kinds` est vide", "`kinds` is empty"),
        ));
    }
    Ok(kinds)
}

/// `GET /api/v1/ai/generations/{id}`: counts by status, and the first
/// failures with their reasons.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "get_ai_batch",
    tag = "ai",
    params(("id" = String, Path, description = "The batch's id (UUID)")),
    responses(
        (status = 200, description = "The batch's progress and first failures", body = BatchDetailView),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such batch (or another user's)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/ai/generations/{id}")]
pub async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&path).map_err(|_| ApiError::NotFound("batch"))?;
    let mut conn = pool::conn(&state.pool).await?;
    let progress = ai::batch_progress(&mut conn, id)
        .await?
        .filter(|b| caller.owner_filter().is_none_or(|o| b.owner_id == Some(o)))
        .ok_or(ApiError::NotFound("batch"))?;
    let failures = if progress.failed > 0 {
        ai::failed_tasks(&mut conn, id, FAILURES_PREVIEW).await?
    } else {
        Vec::new()
    };
    let mut body = serde_json::to_value(&progress).map_err(|e| ApiError::Internal(e.into()))?;
    body["failures"] = serde_json::to_value(failures).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/v1/ai/generations?page=&per_page=`: batches newest first with
/// their progress; staff see their own.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "list_ai_batches",
    tag = "ai",
    params(Paging),
    responses(
        (status = 200, description = "One page of batches, newest first", body = Page<BatchView>),
        (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/ai/generations")]
pub async fn list(
    paging: web::Query<Paging>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let (page, per_page) = paging.bounds();
    let mut conn = pool::conn(&state.pool).await?;
    let (items, total) = ai::list_batches(&mut conn, caller.owner_filter(), page, per_page).await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        total,
        page,
        per_page,
    }))
}
