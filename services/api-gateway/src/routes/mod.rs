//! Every route. Each module registers its own services; add a module and
//! one line here.

pub mod ai;
pub mod entities;
pub mod health;
pub mod imports;
pub mod metrics;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz).service(health::readyz);
    cfg.configure(metrics::configure);
    cfg.service(
        web::scope("/api/v1")
            .configure(imports::configure)
            .configure(ai::configure)
            .configure(entities::configure),
    );
}

/// `?page=&per_page=` with sane bounds.
#[derive(Debug, serde::Deserialize)]
pub struct Paging {
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

impl Paging {
    pub fn bounds(&self) -> (i64, i64) {
        (
            self.page.unwrap_or(1).max(1),
            self.per_page.unwrap_or(50).clamp(1, 500),
        )
    }
}
