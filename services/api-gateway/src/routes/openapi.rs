//! `GET /api/openapi.json`: the OpenAPI document of every route the gateway
//! serves, assembled from the handlers' `#[utoipa::path]` annotations (so a
//! route and its description live side by side). The dashboard's API
//! reference (`/docs`) renders it; the schemathesis run fuzzes it.

use crate::routes::{ai, dashboard, entities, events, health, imports, metrics, queues, webhooks};
use crate::views;
use actix_web::{HttpResponse, get, web};
use std::sync::LazyLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(document);
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Foxflow API",
        description = "Imports of entreprises, catégories, sous-catégories and villes; AI texts; \
                       the operators' dashboard. Errors are always \
                       `{\"error\": {\"code\", \"message\", \"details\"}}`. See docs/api.md.",
        license(name = "MIT")
    ),
    paths(
        health::healthz,
        health::readyz,
        metrics::scrape,
        document,
        dashboard::index,
        dashboard::api_reference,
        dashboard::asset_app_js,
        dashboard::asset_docs_js,
        dashboard::asset_css,
        dashboard::asset_icon,
        imports::create,
        imports::list,
        imports::stats,
        imports::get,
        imports::errors,
        imports::warnings,
        imports::report,
        imports::retry,
        imports::apply,
        imports::cancel,
        imports::revert,
        imports::changes,
        events::events,
        ai::create,
        ai::list,
        ai::get,
        entities::prolocalisation,
        entities::entreprise,
        entities::entreprises,
        entities::categories,
        entities::sous_categories,
        entities::villes,
        crate::routes::exports::export_csv, crate::routes::exports::export_xlsx, crate::routes::exports::export,
        queues::queues,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::delete_webhook,
        webhooks::list_deliveries,
    ),
    components(schemas(
        views::ErrorBody,
        views::ErrorDetail,
        views::JobView,
        views::ImportErrorRow,
        foxflow_storage::jobs::ChangeView,
        views::StatsView,
        views::RowTotalsView,
        views::BatchView,
        views::BatchDetailView,
        views::FailedTaskView,
        views::QueuesView,
        views::QueueView,
        views::UploadForm,
        ai::CreateBatch,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "imports", description = "Upload files and follow import jobs"),
        (name = "ai", description = "AI text generation batches"),
        (name = "directory", description = "What imports and generation wrote"),
        (name = "webhooks", description = "Signed notifications of finished imports and AI batches (admin)"),
        (name = "operations", description = "Probes, metrics, queue depths"),
        (name = "dashboard", description = "The operators' web pages (HTML, no token needed to load)"),
    )
)]
pub struct ApiDoc;

/// The `bearer` scheme every `/api/v1` operation names: a token from
/// `foxctl token create`, sent as `Authorization: Bearer <token>`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (`foxctl token create`)"))
                    .build(),
            ),
        );
    }
}

/// Rendered once: the document cannot change while the process runs.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned())
});

#[utoipa::path(
    operation_id = "openapi_document",
    tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)),
)]
#[get("/api/openapi.json")]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `DUMP_OPENAPI=path cargo test -p api-gateway openapi` writes the document.
    #[test]
    fn dump_when_asked() {
        if let Ok(path) = std::env::var("DUMP_OPENAPI") {
            std::fs::write(path, DOCUMENT.as_str()).unwrap();
        }
    }

    #[test]
    fn every_operation_has_a_unique_id_and_errors_use_the_standard_body() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            // The probes answer their own small bodies, not errors.
            let probe = path == "/readyz";
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default().to_owned();
                assert!(
                    ids.insert(id.clone()),
                    "duplicate operationId {id} ({method} {path})"
                );
                for (status, resp) in op["responses"].as_object().unwrap() {
                    if !probe && (status.starts_with('4') || status.starts_with('5')) {
                        let schema = &resp["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(
                            schema, "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }
}
