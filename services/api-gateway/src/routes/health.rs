//! The probes: `/healthz` (the process answers) and `/readyz` (the database answers).

use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use serde_json::json;

/// Liveness: the process answers. Depends on nothing else on purpose.
#[utoipa::path(
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)),
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: the database answered within the last 15 s. The broker is reported but does not
/// make the API unready: uploads are accepted while it is down (the outbox
/// keeps their messages), so taking the API out of rotation would only turn
/// a delay into an outage.
#[utoipa::path(
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "`{status: ready, database: up, broker: up|down}`", body = Object),
        (status = 503, description = "`{status: unavailable, database: down, …}`", body = Object),
    ),
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    // Sampled in the background (crate::readiness): a probe never waits
    // for, nor takes, a connection an upload needs.
    let db_ok = state.db_readiness.is_up();
    let broker_ok = state.publisher.is_connected();
    let body = json!({
        "status": if db_ok { "ready" } else { "unavailable" },
        "database": if db_ok { "up" } else { "down" },
        "broker": if broker_ok { "up" } else { "down" },
    });
    if db_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
