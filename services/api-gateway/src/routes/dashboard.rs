//! The operators' dashboard (`GET /`) and the API reference (`GET /docs`):
//! HTML, CSS and a little JavaScript compiled into the binary, so the pages
//! work offline and need nothing but the gateway. The pages load without a
//! token; their script asks for one and keeps it in `sessionStorage`.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(index)
        .service(api_reference)
        .service(asset_app_js)
        .service(asset_docs_js)
        .service(asset_css)
        .service(asset_icon);
}

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const DOCS_HTML: &str = include_str!("../../assets/docs.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const DOCS_JS: &str = include_str!("../../assets/docs.js");
const APP_CSS: &str = include_str!("../../assets/app.css");
const ICON_SVG: &[u8] = include_bytes!("../../assets/icon.svg");

/// Everything comes from this origin: no CDN, no inline script, so a page
/// that loads is a page that works offline.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn page(content_type: &'static str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // Small files; revalidating each load keeps a redeploy visible at once.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(body)
}

/// The dashboard: sign in, upload, imports with live progress, job pages,
/// AI batches, queue depths.
#[utoipa::path(
    operation_id = "dashboard",
    tag = "dashboard",
    responses((status = 200, description = "The dashboard page", content_type = "text/html; charset=utf-8", body = String)),
)]
#[get("/")]
pub async fn index() -> HttpResponse {
    page("text/html; charset=utf-8", INDEX_HTML.as_bytes())
}

/// The API reference, rendered from `/api/openapi.json` in the browser.
#[utoipa::path(
    operation_id = "api_reference",
    tag = "dashboard",
    responses((status = 200, description = "The API reference page", content_type = "text/html; charset=utf-8", body = String)),
)]
#[get("/docs")]
pub async fn api_reference() -> HttpResponse {
    page("text/html; charset=utf-8", DOCS_HTML.as_bytes())
}

#[utoipa::path(
    operation_id = "asset_app_js",
    tag = "dashboard",
    responses((status = 200, description = "The dashboard's script", content_type = "text/javascript; charset=utf-8", body = String)),
)]
#[get("/assets/app.js")]
pub async fn asset_app_js() -> HttpResponse {
    page("text/javascript; charset=utf-8", APP_JS.as_bytes())
}

#[utoipa::path(
    operation_id = "asset_docs_js",
    tag = "dashboard",
    responses((status = 200, description = "The API reference's script", content_type = "text/javascript; charset=utf-8", body = String)),
)]
#[get("/assets/docs.js")]
pub async fn asset_docs_js() -> HttpResponse {
    page("text/javascript; charset=utf-8", DOCS_JS.as_bytes())
}

#[utoipa::path(
    operation_id = "asset_css",
    tag = "dashboard",
    responses((status = 200, description = "The pages' style sheet", content_type = "text/css; charset=utf-8", body = String)),
)]
#[get("/assets/app.css")]
pub async fn asset_css() -> HttpResponse {
    page("text/css; charset=utf-8", APP_CSS.as_bytes())
}

#[utoipa::path(
    operation_id = "asset_icon",
    tag = "dashboard",
    responses((status = 200, description = "The icon", content_type = "image/svg+xml", body = String)),
)]
#[get("/assets/icon.svg")]
pub async fn asset_icon() -> HttpResponse {
    page("image/svg+xml", ICON_SVG)
}
