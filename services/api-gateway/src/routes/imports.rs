//! Upload and read import jobs.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::Paging;
use crate::state::AppState;
use crate::upload;
use crate::views::{JobView, Page};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use foxflow_domain::{ImportType, JobStatus};
use foxflow_storage::auth::Role;
use foxflow_storage::jobs::{self, ImportJob, JobFilter};
use foxflow_storage::{AsyncPgConnection, pool};
use uuid::Uuid;

const PREVIEW_ERRORS: i64 = 10;

/// Registers this module's routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create).service(list).service(get).service(errors);
}

/// `POST /api/v1/imports`: stores the file, writes the job and its message
/// in one transaction, answers 202 at once. The work happens in a worker.
#[post("/imports")]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Staff)?;
    let idempotency_key = req
        .headers()
        .get("Idempotency-Key")
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1-200 visible characters",
                    )
                })
        })
        .transpose()?;
    let upload = upload::receive(&req, payload, &state).await?;
    let new = jobs::NewJob {
        import_type: upload.import_type,
        file_id: upload.file_id,
        file_name: upload.file_name,
        file_size: upload.size,
        file_sha256: upload.sha256_hex,
        options: upload.options,
        owner_id: Some(caller.0.user_id),
        idempotency_key,
    };
    let file_id = new.file_id;
    let mut conn = pool::conn(&state.pool).await?;
    let (job, created) = match jobs::create_job(&mut conn, new, None).await {
        Ok(r) => r,
        Err(e) => {
            let _ = foxflow_storage::files::delete_file(&mut conn, file_id).await;
            return Err(e.into());
        }
    };
    if created {
        state.relay_wake.notify_one();
    } else {
        // A replay of an earlier request: the new copy of the file is not needed.
        let _ = foxflow_storage::files::delete_file(&mut conn, file_id).await;
    }
    let location = format!("/api/v1/imports/{}", job.id);
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, location))
        .json(JobView::new(job, Vec::new())))
}

#[derive(Debug, serde::Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
    pub import_type: Option<String>,
    // Not `#[serde(flatten)]`: flattened query fields arrive as strings and
    // numbers then fail to parse.
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// `GET /api/v1/imports`: newest first; staff see their own jobs.
#[get("/imports")]
pub async fn list(
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let status = query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<JobStatus>()
                .map_err(|e| ApiError::bad_request("invalid_status", e.to_string()))
        })
        .transpose()?;
    let import_type = query
        .import_type
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ImportType>()
                .map_err(|e| ApiError::bad_request("invalid_import_type", e.to_string()))
        })
        .transpose()?;
    let (page, per_page) = Paging {
        page: query.page,
        per_page: query.per_page,
    }
    .bounds();
    let filter = JobFilter {
        status,
        import_type,
        owner_id: caller.owner_filter(),
        page,
        per_page,
    };
    let mut conn = pool::conn(&state.pool).await?;
    let (items, total) = jobs::list_jobs(&mut conn, &filter).await?;
    let items = items.into_iter().map(|j| JobView::new(j, Vec::new())).collect();
    Ok(HttpResponse::Ok().json(Page {
        items,
        total,
        page,
        per_page,
    }))
}

/// Loads a job the caller may see; another staff member's job is 404, not
/// 403, so ids do not leak.
pub async fn visible_job(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: &str,
) -> Result<ImportJob, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound("import"))?;
    let job = jobs::get_job(conn, id)
        .await?
        .ok_or(ApiError::NotFound("import"))?;
    match caller.owner_filter() {
        Some(owner) if job.owner_id != Some(owner) => Err(ApiError::NotFound("import")),
        _ => Ok(job),
    }
}

/// `GET /api/v1/imports/{id}`.
#[get("/imports/{id}")]
pub async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::conn(&state.pool).await?;
    let job = visible_job(&mut conn, &caller, &path).await?;
    let (preview, _) = jobs::errors_page(&mut conn, job.id, 1, PREVIEW_ERRORS).await?;
    Ok(HttpResponse::Ok().json(JobView::new(job, preview)))
}

/// `GET /api/v1/imports/{id}/errors?page=&per_page=`, in row order.
#[get("/imports/{id}/errors")]
pub async fn errors(
    path: web::Path<String>,
    paging: web::Query<Paging>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::conn(&state.pool).await?;
    let job = visible_job(&mut conn, &caller, &path).await?;
    let (page, per_page) = paging.bounds();
    let (items, total) = jobs::errors_page(&mut conn, job.id, page, per_page).await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        total,
        page,
        per_page,
    }))
}
