//! Upload and read import jobs.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::lang::RequestLang;
use crate::routes::Paging;
use crate::routes::job_access::visible_job;
use crate::state::AppState;
use crate::upload;
use crate::views::{ErrorBody, ImportErrorRow, JobView, Page, StatsView, UploadForm};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use foxflow_domain::{ImportType, JobStatus};
use foxflow_domain::{Lang, Text};
use foxflow_ratelimit::{ClusterLimiter, Denied};
use foxflow_storage::auth::Role;
use foxflow_storage::jobs::{self, ChangeView, JobFilter, Severity};
use foxflow_storage::pool;

/// Registers this module's routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // `stats` before `get`: otherwise "stats" would be taken for an id.
    cfg.service(create)
        .service(list)
        .service(stats)
        .service(get)
        .service(errors)
        .service(warnings)
        .service(report)
        .service(retry)
        .service(apply)
        .service(cancel)
        .service(revert)
        .service(changes);
}

/// `POST /api/v1/imports`: stores the file, writes the job and its message
/// in one transaction, answers 202 at once. The work happens in a worker.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "create_import",
    tag = "imports",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    params(("Idempotency-Key" = Option<String>, Header, nullable = false,
            description = "Replaying the same key (same user) returns the first job instead of a new one")),
    responses(
        (status = 202, description = "Accepted; the job is queued", body = JobView,
         headers(("Location" = String, description = "The job's URL"))),
        (status = 400, description = "Malformed form or header", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Needs the staff role", body = ErrorBody),
        (status = 413, description = "The file exceeds MAX_IMPORT_FILE_BYTES", body = ErrorBody),
        (status = 415, description = "Not multipart, or the content does not match the extension", body = ErrorBody),
        (status = 422, description = "Missing or unknown import type, bad flag; `infected_file`: clamd \
         found a virus (the signature is in `details.signature`), nothing was stored", body = ErrorBody),
        (status = 429, description = "Upload throttle", body = ErrorBody,
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable; `scanner_unavailable`: clamd gave no verdict \
         (CLAMD_ADDR set, CLAMD_FAIL_OPEN unset), nothing was stored", body = ErrorBody,
         headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
#[post("/imports")]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Staff)?;
    upload_throttle(&state, &caller).await?;
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
                        Text::new(
                            "Idempotency-Key compte de 1 à 200 caractères visibles",
                            "Idempotency-Key must be 1-200 visible characters",
                        ),
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
    let (job, created) =
        match upload::create_job(&mut conn, new, foxflow_telemetry::current_traceparent()).await {
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

/// `UPLOAD_THROTTLE`, per user and cluster-wide (docs/spec.md §7), checked before
/// the body is read so a refused upload stores nothing. 429 with
/// `Retry-After` when over; 503 when the shared state cannot be read.
async fn upload_throttle(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    if caller.0.role == Role::Admin && state.config.upload_throttle_exempt_admins {
        return Ok(());
    }
    let limiter = ClusterLimiter::new(
        state.pool.clone(),
        format!("upload:{}", caller.0.user_id),
        state.config.upload_throttle,
    )
    .with_metric_label("upload");
    match limiter.check().await {
        Ok(()) => Ok(()),
        Err(Denied::Wait(wait)) => Err(ApiError::TooManyRequests {
            retry_after_s: foxflow_ratelimit::ceil_secs(wait),
        }),
        Err(Denied::Unavailable(e)) => Err(e.into()),
    }
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `pending`, `processing`, `success`, `partial`, `error` or `cancelled`.
    pub status: Option<String>,
    /// `entreprises`, `categories`, `sous_categories` or `villes`.
    pub import_type: Option<String>,
    // Not `#[serde(flatten)]`: flattened query fields arrive as strings and
    // numbers then fail to parse.
    /// From 1 (default 1).
    pub page: Option<i64>,
    /// 1 to 500 (default 50).
    pub per_page: Option<i64>,
}

/// `GET /api/v1/imports`: newest first; staff see their own jobs.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "list_imports",
    tag = "imports",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of jobs, newest first", body = Page<JobView>),
        (status = 400, description = "Unknown status or import type, bad paging", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/imports")]
pub async fn list(
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
    caller: Caller,
    RequestLang(lang): RequestLang,
) -> Result<HttpResponse, ApiError> {
    let status = query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<JobStatus>().map_err(|e| {
                ApiError::bad_request("invalid_status", crate::lang::detail("statut inconnu", &e))
            })
        })
        .transpose()?;
    let import_type = query
        .import_type
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ImportType>().map_err(|e| {
                ApiError::bad_request("invalid_import_type", crate::upload::unknown_import_type(&e))
            })
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
    let items = items
        .into_iter()
        .map(|j| JobView::new(j, Vec::new()).in_lang(lang))
        .collect();
    Ok(HttpResponse::Ok().json(Page {
        items,
        total,
        page,
        per_page,
    }))
}

/// `GET /api/v1/imports/{id}`.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "get_import",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id (UUID)")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such import (or another user's)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/imports/{id}")]
pub async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
    RequestLang(lang): RequestLang,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::conn(&state.pool).await?;
    let job = visible_job(&mut conn, &caller, &path).await?;
    Ok(HttpResponse::Ok().json(JobView::load(&mut conn, job).await?.in_lang(lang)))
}

/// `GET /api/v1/imports/stats`: jobs by status and type, rows, the mean
/// success rate; staff count their own jobs only.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "import_stats",
    tag = "imports",
    responses(
        (status = 200, description = "Totals", body = StatsView),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/imports/stats")]
pub async fn stats(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::conn(&state.pool).await?;
    let stats = jobs::stats(&mut conn, caller.owner_filter()).await?;
    Ok(HttpResponse::Ok().json(stats))
}

/// `GET /api/v1/imports/{id}/errors?page=&per_page=`, in row order.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "import_errors",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id (UUID)"), Paging),
    responses(
        (status = 200, description = "One page of error rows, in row order", body = Page<ImportErrorRow>),
        (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such import (or another user's)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/imports/{id}/errors")]
pub async fn errors(
    path: web::Path<String>,
    paging: web::Query<Paging>,
    state: web::Data<AppState>,
    caller: Caller,
    RequestLang(lang): RequestLang,
) -> Result<HttpResponse, ApiError> {
    lines(&path, &paging, &state, &caller, Severity::Error, lang).await
}

/// `GET /api/v1/imports/{id}/warnings?page=&per_page=`, in row order: the
/// lossy normalisations of imported rows (docs/imports.md, "Warnings").
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "import_warnings",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id (UUID)"), Paging),
    responses(
        (status = 200, description = "One page of warnings, in row order (same shape as the error rows)", body = Page<ImportErrorRow>),
        (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such import (or another user's)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/imports/{id}/warnings")]
pub async fn warnings(
    path: web::Path<String>,
    paging: web::Query<Paging>,
    state: web::Data<AppState>,
    caller: Caller,
    RequestLang(lang): RequestLang,
) -> Result<HttpResponse, ApiError> {
    lines(&path, &paging, &state, &caller, Severity::Warning, lang).await
}

/// One page of a job's error or warning lines.
async fn lines(
    id: &str,
    paging: &Paging,
    state: &AppState,
    caller: &Caller,
    severity: Severity,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::conn(&state.pool).await?;
    let job = visible_job(&mut conn, caller, id).await?;
    let (page, per_page) = paging.bounds();
    let (items, total) = jobs::errors_page(&mut conn, job.id, severity, page, per_page).await?;
    Ok(HttpResponse::Ok().json(Page {
        items: items.into_iter().map(|e| e.in_lang(lang)).collect(),
        total,
        page,
        per_page,
    }))
}

/// What the report's builder is sent, page by page.
enum ReportPage {
    Lines(Severity, Vec<jobs::ImportErrorRow>),
    Changes(Vec<ChangeView>),
}

/// `?lang=` of the report.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// The report's language: `en` for English, anything else French; when
    /// absent, `Accept-Language` decides (docs/api.md "Languages").
    pub lang: Option<String>,
}

/// Error (and warning) lines in one report at most; past that the report says so.
const REPORT_MAX_ERRORS: i64 = 100_000;
/// Error rows read from the database at a time while a report is written.
const REPORT_PAGE: i64 = 2_000;

/// `GET /api/v1/imports/{id}/report.xlsx`.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "import_report",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id (UUID)"), ReportQuery),
    responses(
        (status = 200, description = "The report: a summary sheet, the error rows and the warnings, \
         in French, or in English with `?lang=en` or `Accept-Language: en`",
         content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         body = crate::views::Binary,
         headers(("Content-Disposition" = String, description = "attachment; filename=…"))),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such import (or another user's)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/imports/{id}/report.xlsx")]
pub async fn report(
    path: web::Path<String>,
    query: web::Query<ReportQuery>,
    state: web::Data<AppState>,
    caller: Caller,
    RequestLang(asked): RequestLang,
) -> Result<HttpResponse, ApiError> {
    // `?lang=` is the report's own setting (a link to share); the header otherwise.
    let lang = query.lang.as_deref().map_or(asked, Lang::from_setting);
    let mut conn = pool::conn(&state.pool).await?;
    let job = visible_job(&mut conn, &caller, &path).await?;
    let error_columns = jobs::error_columns(&mut conn, job.id, Severity::Error).await?;
    let warning_columns = jobs::error_columns(&mut conn, job.id, Severity::Warning).await?;
    let view = JobView::new(job, Vec::new()).in_lang(lang);
    let file_stem = view
        .file_name
        .rsplit_once('.')
        .map(|(s, _)| s)
        .unwrap_or(&view.file_name)
        .to_owned();
    let id = view.id;
    // Pages of error rows flow from the database to a blocking thread that
    // writes them into a constant-memory sheet; the finished workbook goes
    // to a temporary file streamed back. Memory stays flat at any size.
    let (pages, mut received) = tokio::sync::mpsc::channel::<ReportPage>(2);
    let dry_run = view.dry_run;
    let builder = web::block(move || -> Result<std::fs::File, anyhow::Error> {
        let mut report = crate::report::Report::new(error_columns, warning_columns, lang)?;
        while let Some(page) = received.blocking_recv() {
            match page {
                ReportPage::Lines(severity, lines) => {
                    let lines: Vec<_> = lines.into_iter().map(|e| e.in_lang(lang)).collect();
                    report.add(severity, &lines)?
                }
                ReportPage::Changes(made) => report.add_changes(&made)?,
            }
        }
        let mut file = tempfile::tempfile()?;
        report.finish(&view, &mut file)?;
        std::io::Seek::rewind(&mut file)?;
        Ok(file)
    });
    'sheets: for severity in [Severity::Error, Severity::Warning] {
        let mut cursor = None;
        let mut listed = 0;
        while listed < REPORT_MAX_ERRORS {
            let limit = REPORT_PAGE.min(REPORT_MAX_ERRORS - listed);
            let (page, next) = jobs::errors_after(&mut conn, id, severity, cursor, limit).await?;
            if page.is_empty() {
                break;
            }
            listed += page.len() as i64;
            cursor = next;
            if pages.send(ReportPage::Lines(severity, page)).await.is_err() {
                break 'sheets; // the builder failed; its error is reported below
            }
        }
    }
    // The changes (a dry run's preview), up to the same cap.
    let mut listed = 0;
    while listed < REPORT_MAX_ERRORS {
        let page = listed / REPORT_PAGE + 1;
        let (made, _) = jobs::changes_page(&mut conn, id, dry_run, page, REPORT_PAGE).await?;
        let n = made.len() as i64;
        if n == 0 || pages.send(ReportPage::Changes(made)).await.is_err() {
            break;
        }
        listed += n;
    }
    drop(pages);
    drop(conn);
    let file = builder
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Internal)?;
    let body = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let ascii: String = file_stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"rapport-{ascii}-{id}.xlsx\""),
        ))
        .streaming(body))
}

/// `POST /api/v1/imports/{id}/apply`: the real import of a finished dry
/// run's stored file (no re-upload), queued for the caller; its outcomes
/// equal the preview's when nothing changed in between.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "apply_dry_run",
    tag = "imports",
    params(("id" = String, Path, description = "The dry run's id (UUID)")),
    responses(
        (status = 202, description = "The real import, queued (the same one again when this user applied this dry run before)", body = JobView,
         headers(("Location" = String, description = "The new job's URL"))),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Needs the staff role", body = ErrorBody),
        (status = 404, description = "No such import (or another user's)", body = ErrorBody),
        (status = 409, description = "Not a dry run, not finished, ended `error`/`cancelled`, or its file was purged", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/imports/{id}/apply")]
pub async fn apply(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Staff)?;
    let mut conn = pool::conn(&state.pool).await?;
    let dry_run = visible_job(&mut conn, &caller, &path).await?;
    let (job, _created) = jobs::apply_dry_run(
        &mut conn,
        dry_run.id,
        Some(caller.0.user_id),
        foxflow_telemetry::current_traceparent(),
    )
    .await?;
    state.relay_wake.notify_one();
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/imports/{}", job.id)))
        .json(JobView::new(job, Vec::new())))
}

/// `POST /api/v1/imports/{id}/retry`: from `error`, `partial` or
/// `cancelled` (409 otherwise); the job runs again from its first row.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "retry_import",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id (UUID)")),
    responses(
        (status = 202, description = "Queued again from its first row", body = JobView,
         headers(("Location" = String, description = "The job's URL"))),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Needs the staff role", body = ErrorBody),
        (status = 404, description = "No such import (or another user's)", body = ErrorBody),
        (status = 409, description = "Running on a worker now, already `success`, or its file was purged", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/imports/{id}/retry")]
pub async fn retry(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Staff)?;
    let mut conn = pool::conn(&state.pool).await?;
    let job = visible_job(&mut conn, &caller, &path).await?;
    let job = jobs::retry(&mut conn, job.id, foxflow_telemetry::current_traceparent()).await?;
    state.relay_wake.notify_one();
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/imports/{}", job.id)))
        .json(JobView::new(job, Vec::new())))
}

/// `POST /api/v1/imports/{id}/cancel`: a job no worker runs (`pending`) is
/// `cancelled` at once and never starts; a running one is asked to stop and
/// is returned still `processing`, with `cancel_requested_by` set: its worker
/// ends it `cancelled` at its next batch commit, the rows committed until
/// then kept and counted (docs/imports.md, "Cancel"). 409 once it is final.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "cancel_import",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id (UUID)")),
    responses(
        (status = 202, description = "`cancelled` (it was not running), or still `processing` with \
         `cancel_requested_by` set: it stops at its next batch commit", body = JobView,
         headers(("Location" = String, description = "The job's URL"))),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Needs the staff role", body = ErrorBody),
        (status = 404, description = "No such import (or another user's)", body = ErrorBody),
        (status = 409, description = "Already final: `success`, `partial`, `error` or `cancelled`", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/imports/{id}/cancel")]
pub async fn cancel(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
    RequestLang(lang): RequestLang,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Staff)?;
    let mut conn = pool::conn(&state.pool).await?;
    let job = visible_job(&mut conn, &caller, &path).await?;
    let job = jobs::cancel(&mut conn, job.id, &caller.0.name).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/imports/{}", job.id)))
        .json(JobView::new(job, Vec::new()).in_lang(lang)))
}

/// `POST /api/v1/imports/{id}/revert`: queues a revert job that undoes what
/// the import changed, except what changed since (docs/imports.md, "Revert").
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "revert_import",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id (UUID)")),
    responses(
        (status = 202, description = "The revert job, queued (the same one again when this user asked before)", body = JobView,
         headers(("Location" = String, description = "The revert job's URL"))),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Needs the staff role", body = ErrorBody),
        (status = 404, description = "No such import (or another user's)", body = ErrorBody),
        (status = 409, description = "A dry run, or an import that has not ended", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/imports/{id}/revert")]
pub async fn revert(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Staff)?;
    let mut conn = pool::conn(&state.pool).await?;
    let target = visible_job(&mut conn, &caller, &path).await?;
    let (job, _created) = jobs::request_revert(
        &mut conn,
        target.id,
        Some(caller.0.user_id),
        foxflow_telemetry::current_traceparent(),
    )
    .await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/imports/{}", job.id)))
        .json(JobView::new(job, Vec::new())))
}

/// `GET /api/v1/imports/{id}/changes?page=&per_page=`: what the job changed,
/// in order — for a dry run, its preview (its first 500 changes); for an
/// import or a revert, every change it made.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "import_changes",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id (UUID)"), Paging),
    responses(
        (status = 200, description = "One page of changes: created rows with their key, updated fields before → after", body = Page<ChangeView>),
        (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "No such import (or another user's)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/imports/{id}/changes")]
pub async fn changes(
    path: web::Path<String>,
    paging: web::Query<Paging>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let mut conn = pool::conn(&state.pool).await?;
    let job = visible_job(&mut conn, &caller, &path).await?;
    let (page, per_page) = paging.bounds();
    let (items, total) = jobs::changes_page(&mut conn, job.id, job.dry_run, page, per_page).await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        total,
        page,
        per_page,
    }))
}
