//! `GET /metrics`: the process's Prometheus families (docs/spec.md §10), no token
//! needed (like the probes; keep the port off the public internet).

use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use foxflow_telemetry::metrics;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(scrape);
}

#[utoipa::path(
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition (docs/spec.md §10)",
               content_type = "text/plain; version=0.0.4; charset=utf-8", body = String)),
)]
#[get("/metrics")]
pub async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    // The pool's series are this gateway's own (foxflow_db_pool_*), the rest process-wide.
    HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .body(metrics::render_with(&state.pool.metrics_text()))
}
