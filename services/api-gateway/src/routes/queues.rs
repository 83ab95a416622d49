//! `GET /api/v1/queues`: the queue depths the gateway's own sampler last
//! read from RabbitMQ (`foxflow_messaging::run_depth_sampler`, the same
//! numbers `/metrics` exports), for the dashboard. No broker round trip per
//! request: a page refreshing every few seconds must not load the broker.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::{ErrorBody, QueueView, QueuesView};
use actix_web::{HttpResponse, get, web};
use foxflow_domain::messages::QueueKind;
use foxflow_telemetry::metrics;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(queues);
}

#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "list_queues",
    tag = "operations",
    responses(
        (status = 200, description = "Work, retry and dead-letter queues with their last sampled depth",
         body = QueuesView),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 503, description = "Database unavailable (token check)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/queues")]
pub async fn queues(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let topology = state.publisher.topology();
    let mut out = Vec::new();
    for kind in QueueKind::ALL {
        for (role, name) in [
            ("work", topology.work_queue(kind)),
            ("retry", topology.retry_queue(kind)),
            ("dead", topology.dead_queue(kind)),
        ] {
            out.push(QueueView {
                ready: metrics::queue_ready().with_label_values(&[name.as_str()]).get(),
                consumers: metrics::queue_consumers()
                    .with_label_values(&[name.as_str()])
                    .get(),
                name,
                kind: kind.as_str().to_owned(),
                role: role.to_owned(),
            });
        }
    }
    Ok(HttpResponse::Ok().json(QueuesView {
        sampled_every_s: foxflow_messaging::depth::SAMPLE_EVERY.as_secs(),
        queues: out,
    }))
}
