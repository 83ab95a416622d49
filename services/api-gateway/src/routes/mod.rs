//! Every route. Each module registers its own services; add a module and
//! one line here.

pub mod ai;
pub mod dashboard;
pub mod entities;
pub mod events;
pub mod exports;
pub mod health;
pub mod imports;
pub mod job_access;
pub mod metrics;
pub mod openapi;
pub mod queues;
pub mod webhooks;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz).service(health::readyz);
    cfg.configure(metrics::configure);
    cfg.configure(openapi::configure);
    cfg.configure(dashboard::configure);
    cfg.service(
        web::scope("/api/v1")
            .configure(imports::configure)
            .configure(events::configure)
            .configure(ai::configure)
            .configure(exports::configure)
            .configure(entities::configure)
            .configure(queues::configure)
            .configure(webhooks::configure),
    );
}

/// `?page=&per_page=` with sane bounds.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// From 1 (default 1).
    pub page: Option<i64>,
    /// 1 to 500 (default 50).
    pub per_page: Option<i64>,
}

impl Paging {
    pub fn bounds(&self) -> (i64, i64) {
        (
            // Capped so `(page - 1) * per_page` cannot overflow; past the
            // last page a list is simply empty.
            self.page.unwrap_or(1).clamp(1, 1_000_000),
            self.per_page.unwrap_or(50).clamp(1, 500),
        )
    }
}
