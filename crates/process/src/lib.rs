//! What every long-running Foxflow process shares besides telemetry: one
//! shutdown path, and the small HTTP server a worker answers probes on.

use actix_web::{App, HttpResponse, HttpServer, web};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// A shutdown flag every task can watch. `trigger` flips it once.
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Triggers on SIGTERM or Ctrl-C: the one signal path of a process.
    pub fn on_signals(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            this.trigger();
        });
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

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
    let mut rx = shutdown.subscribe();
    tokio::spawn(async move {
        let _ = rx.wait_for(|s| *s).await;
        handle.stop(true).await;
    });
    Ok(bound)
}
