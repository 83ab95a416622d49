//! The small HTTP server a worker answers probes and scrapes on, and the one way an actix
//! server of ours stops when the process shuts down.

use crate::Shutdown;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::JoinHandle;

/// What a worker's probe server reports.
#[derive(Clone)]
pub struct Probes {
    /// Set while the worker can do its job (database and broker reachable).
    pub ready: Arc<AtomicBool>,
    /// The service's Prometheus text, rendered on demand; the process-wide
    /// families of `foxflow_telemetry::metrics` it does not declare itself
    /// are appended.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
}

/// Serves `/healthz`, `/readyz` and `/metrics` until shutdown; returns the
/// bound address (port 0 picks a free one).
pub async fn serve_probes(
    addr: SocketAddr,
    probes: Probes,
    shutdown: Shutdown,
) -> std::io::Result<SocketAddr> {
    let data = web::Data::new(probes);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route(
                "/healthz",
                web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
            )
            .route(
                "/readyz",
                web::get().to(|p: web::Data<Probes>| async move {
                    if p.ready.load(Ordering::Relaxed) {
                        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
                    } else {
                        HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "unavailable"}))
                    }
                }),
            )
            .route(
                "/metrics",
                web::get().to(|p: web::Data<Probes>| async move {
                    HttpResponse::Ok()
                        .content_type(foxflow_telemetry::metrics::CONTENT_TYPE)
                        .body(foxflow_telemetry::metrics::render_with(&(p.metrics)()))
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .bind(addr)?;
    let bound = server.addrs().first().copied().unwrap_or(addr);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    stop_server_on_shutdown(handle, &shutdown);
    Ok(bound)
}

/// Stops an actix server (gracefully: requests in flight are answered) once
/// `shutdown` triggers. Our servers run with `disable_signals`, so this is
/// the only way they stop; the task ends once the server has.
pub fn stop_server_on_shutdown(handle: ServerHandle, shutdown: &Shutdown) -> JoinHandle<()> {
    let mut rx = shutdown.subscribe();
    tokio::spawn(async move {
        let _ = rx.wait_for(|s| *s).await;
        handle.stop(true).await;
    })
}
