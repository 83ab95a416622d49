//! `GET /api/v1/exports/{entity}.csv` and `.xlsx`: the directory's own data
//! (entreprises, villes, catégories, sous-catégories) for an operator to fix
//! in Excel and import back. The columns are the importer's canonical ones
//! for that import type and the values the stored ones, so an unmodified
//! export re-imports with every row `unchanged` (docs/api.md, "Exports").
//!
//! Any valid token may export, as any may read the directory's lists
//! (`routes::entities`): an export shows nothing a viewer cannot page through.
//!
//! Memory stays flat at any table size: rows come from PostgreSQL in keyset
//! pages of [`PAGE_ROWS`]; the CSV goes to the client page by page as it is
//! produced, and the XLSX sheet is written in constant-memory mode to a
//! temporary file, then streamed (as the import report is, `crate::report`).
//! How a row becomes CSV fields and sheet cells is in `encode`.

mod encode;

use self::encode::{
    Cell, XLSX_MAX_DATA_ROWS, XlsxExport, XlsxExportError, categorie_cells, columns, csv_chunk,
    entreprise_cells, sous_categorie_cells, ville_cells,
};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::{Binary, ErrorBody};
use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use foxflow_domain::ImportType;
use foxflow_domain::{Text, text};
use foxflow_storage::exports::{
    self, CategorieExport, EntrepriseExport, ExportFilter, ExportRow, SousCategorieExport, VilleExport,
};
use foxflow_storage::{DbPool, StorageError, pool};
use futures::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;

/// Registers this module's routes under `/api/v1`,
/// before `routes::entities`, whose `/entreprises/{siren}` would
/// otherwise take `/entreprises/export`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(export_csv).service(export_xlsx).service(export);
}

/// Rows read from PostgreSQL at a time: one page is what the gateway holds
/// per export (a few MB of entreprises), and one statement per page.
const PAGE_ROWS: i64 = 5_000;

/// One keyset page, as cells.
struct Page {
    rows: Vec<Vec<Cell>>,
    /// Where the next page starts; `None` after the last one.
    next: Option<i64>,
}

fn page_of<T: ExportRow>(rows: Vec<T>, cells: fn(T) -> Vec<Cell>) -> Page {
    let next = match rows.last() {
        Some(last) if rows.len() as i64 == PAGE_ROWS => Some(last.id()),
        _ => None,
    };
    Page {
        rows: rows.into_iter().map(cells).collect(),
        next,
    }
}

/// Reads one page on a connection of its own: a slow client holds no pool
/// connection between pages.
async fn read_page(
    pool: &DbPool,
    import_type: ImportType,
    after: i64,
    filter: &ExportFilter,
) -> Result<Page, StorageError> {
    let mut conn = pool::conn(pool).await?;
    let conn = &mut *conn;
    Ok(match import_type {
        ImportType::Entreprises => page_of(
            exports::page::<EntrepriseExport>(conn, after, filter, PAGE_ROWS).await?,
            entreprise_cells,
        ),
        ImportType::Villes => page_of(
            exports::page::<VilleExport>(conn, after, filter, PAGE_ROWS).await?,
            ville_cells,
        ),
        ImportType::Categories => page_of(
            exports::page::<CategorieExport>(conn, after, filter, PAGE_ROWS).await?,
            categorie_cells,
        ),
        ImportType::SousCategories => page_of(
            exports::page::<SousCategorieExport>(conn, after, filter, PAGE_ROWS).await?,
            sous_categorie_cells,
        ),
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only rows created or changed at or after this instant: RFC 3339
    /// (`2026-12-01T08:00:00Z`) or a date (`2026-12-01`, midnight UTC).
    pub updated_since: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportFormatQuery {
    /// `csv` (the default) or `xlsx`.
    pub format: Option<String>,
    /// Only rows created or changed at or after this instant: RFC 3339
    /// (`2026-12-01T08:00:00Z`) or a date (`2026-12-01`, midnight UTC).
    pub updated_since: Option<String>,
}

fn filter(updated_since: Option<&str>) -> Result<ExportFilter, ApiError> {
    let updated_since = updated_since
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&chrono::Utc))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
                })
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_updated_since",
                        Text::new(
                            "updated_since est un instant RFC 3339 (2026-12-01T08:00:00Z) ou une date (2026-12-01)",
                            "updated_since is an RFC 3339 instant (2026-12-01T08:00:00Z) or a date (2026-12-01)",
                        ),
                    )
                })
        })
        .transpose()?;
    Ok(ExportFilter { updated_since })
}

fn entity(path: &str) -> Result<ImportType, ApiError> {
    path.parse::<ImportType>()
        .map_err(|_| ApiError::NotFound("export"))
}

fn attachment(import_type: ImportType, extension: &str) -> (header::HeaderName, String) {
    let day = chrono::Utc::now().format("%Y-%m-%d");
    (
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{import_type}-{day}.{extension}\""),
    )
}

/// `GET /api/v1/exports/{entity}.csv`.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "export_csv",
    tag = "directory",
    params(
        ("entity" = String, Path, description = "`entreprises`, `villes`, `categories` or `sous_categories`"),
        ExportQuery,
    ),
    responses(
        (status = 200, description = "UTF-8 with a byte-order mark, `;`-separated, CRLF; the header row \
         is the importer's canonical column names (docs/api.md, \"Exports\"). Streamed as it is read",
         content_type = "text/csv", body = String,
         headers(("Content-Disposition" = String, description = "attachment; filename=…"))),
        (status = 400, description = "Bad `updated_since`", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "Not one of the four entities", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/exports/{entity}.csv")]
pub async fn export_csv(
    path: web::Path<String>,
    query: web::Query<ExportQuery>,
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    csv_response(&state, entity(&path)?, filter(query.updated_since.as_deref())?).await
}

async fn csv_response(
    state: &AppState,
    import_type: ImportType,
    filter: ExportFilter,
) -> Result<HttpResponse, ApiError> {
    // The first page is read before answering, so an unreachable database
    // is a 503 rather than a 200 with a cut body.
    let first = read_page(&state.pool, import_type, 0, &filter).await?;
    let head = csv_chunk(Some(columns(import_type)), &first.rows).map_err(ApiError::Internal)?;
    let pool = state.pool.clone();
    let rest = stream::try_unfold(first.next, move |cursor| {
        let pool = pool.clone();
        async move {
            let Some(after) = cursor else {
                return Ok(None);
            };
            let page = read_page(&pool, import_type, after, &filter).await?;
            if page.rows.is_empty() {
                return Ok(None);
            }
            Ok(Some((csv_chunk(None, &page.rows)?, page.next)))
        }
    });
    let body = stream::once(async move { Ok::<_, anyhow::Error>(head) })
        .chain(rest)
        // The status is sent already: the client sees the body end early
        // (the chunked transfer is not closed properly), and the cause is
        // logged here, once.
        .inspect_err(move |e| {
            tracing::error!(error = ?e, %import_type, "csv export stopped before its last row");
        });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(attachment(import_type, "csv"))
        .streaming(body))
}

/// `GET /api/v1/exports/{entity}.xlsx`.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "export_xlsx",
    tag = "directory",
    params(
        ("entity" = String, Path, description = "`entreprises`, `villes`, `categories` or `sous_categories`"),
        ExportQuery,
    ),
    responses(
        (status = 200, description = "One sheet: the importer's canonical column names, then one row per \
         record; text as text (leading zeros kept, formula-safe). Built in constant memory, then streamed",
         content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         body = Binary,
         headers(("Content-Disposition" = String, description = "attachment; filename=…"))),
        (status = 400, description = "Bad `updated_since`", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "Not one of the four entities", body = ErrorBody),
        (status = 422, description = "`too_many_rows`: more rows than a sheet holds (1,048,575); \
         use the CSV or `updated_since`", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/exports/{entity}.xlsx")]
pub async fn export_xlsx(
    path: web::Path<String>,
    query: web::Query<ExportQuery>,
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    xlsx_response(&state, entity(&path)?, filter(query.updated_since.as_deref())?).await
}

async fn xlsx_response(
    state: &AppState,
    import_type: ImportType,
    filter: ExportFilter,
) -> Result<HttpResponse, ApiError> {
    // Pages flow from the database to a blocking thread that writes them
    // into the sheet; the finished workbook goes to a temporary file that is
    // streamed back. At most two pages wait in between.
    let (pages, mut received) = tokio::sync::mpsc::channel::<Vec<Vec<Cell>>>(2);
    let builder = web::block(move || -> Result<std::fs::File, XlsxExportError> {
        let mut sheet = XlsxExport::new(import_type)?;
        while let Some(rows) = received.blocking_recv() {
            sheet.add(&rows)?;
        }
        let mut file = tempfile::tempfile()?;
        sheet.finish(&mut file)?;
        std::io::Seek::rewind(&mut file)?;
        Ok(file)
    });
    let mut cursor = Some(0);
    while let Some(after) = cursor {
        let page = read_page(&state.pool, import_type, after, &filter).await?;
        cursor = page.next;
        if page.rows.is_empty() || pages.send(page.rows).await.is_err() {
            break; // done, or the builder failed: its error is reported below
        }
    }
    drop(pages);
    let file = match builder.await.map_err(|e| ApiError::Internal(e.into()))? {
        Ok(file) => file,
        Err(XlsxExportError::TooManyRows) => {
            return Err(ApiError::unprocessable(
                "too_many_rows",
                text!(
                    "cet export compte plus de {XLSX_MAX_DATA_ROWS} lignes, plus qu’une feuille n’en contient : \
                     téléchargez le CSV, ou restreignez-le avec updated_since",
                    "this export has more than {XLSX_MAX_DATA_ROWS} rows, more than a sheet holds: \
                     download the CSV, or narrow it with updated_since"
                ),
            ));
        }
        Err(e) => return Err(ApiError::Internal(e.into())),
    };
    let body = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        .insert_header(attachment(import_type, "xlsx"))
        .streaming(body))
}

/// `GET /api/v1/{entity}/export?format=csv|xlsx`: the same exports beside
/// the lists they come from (docs/spec.md §5).
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "export_directory",
    tag = "directory",
    params(
        ("entity" = String, Path, description = "`entreprises`, `villes`, `categories` or `sous-categories`"),
        ExportFormatQuery,
    ),
    responses(
        (status = 200, description = "As `/exports/{entity}.csv` or `.xlsx`",
         content((String = "text/csv"),
                 (Binary = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")),
         headers(("Content-Disposition" = String, description = "attachment; filename=…"))),
        (status = 400, description = "Bad `format` or `updated_since`", body = ErrorBody),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 404, description = "Not one of the four entities (`entreprises`, `villes`, `categories`, `sous-categories`)", body = ErrorBody),
        (status = 422, description = "`too_many_rows` (XLSX only)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/{entity:entreprises|villes|categories|sous-categories|sous_categories}/export")]
pub async fn export(
    path: web::Path<String>,
    query: web::Query<ExportFormatQuery>,
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let import_type = entity(&path)?;
    let filter = filter(query.updated_since.as_deref())?;
    match query.format.as_deref().map(str::trim).unwrap_or("csv") {
        "" | "csv" => csv_response(&state, import_type, filter).await,
        "xlsx" => xlsx_response(&state, import_type, filter).await,
        _ => Err(ApiError::bad_request(
            "invalid_format",
            Text::new("format vaut `csv` ou `xlsx`", "format is `csv` or `xlsx`"),
        )),
    }
}
