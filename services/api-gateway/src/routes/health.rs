//! The probes: `/healthz` (the process answers) and `/readyz` (the database answers).

use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use diesel_async::RunQueryDsl;
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

/// Readiness: the database answers. The broker is reported but does not
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
    let db_ok = match state.pool.get().await {
        Ok(mut conn) => diesel::sql_query("SELECT 1").execute(&mut conn).await.is_ok(),
        Err(_) => false,
    };
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
