//! The small HTTP server a worker answers probes and scrapes on, and the one way an actix
//! server of ours stops when the process shuts down.

use crate::Shutdown;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use foxflow_messaging::LoopBeat;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::JoinHandle;

/// What a worker's probe server reports.
#[derive(Clone)]
pub struct Probes {
    /// Set while the worker can do its job (database and broker reachable).
    pub ready: Arc<AtomicBool>,
    /// The consumer loop's beat: `/healthz` fails once it has been silent
    /// for `max_silence` (`foxflow_messaging::liveness::MAX_SILENCE`).
    pub beat: LoopBeat,
    pub max_silence: std::time::Duration,
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
                web::get().to(|p: web::Data<Probes>| async move {
                    let silent = p.beat.silent_for();
                    if silent <= p.max_silence {
                        HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
                    } else {
                        // A restart is the cure: the loop no longer turns.
                        HttpResponse::ServiceUnavailable().json(
                            serde_json::json!({"status": "stuck", "consumer_silent_s": silent.as_secs()}),
                        )
                    }
                }),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn status_of(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer.lines().next().unwrap_or_default().to_owned()
    }

    /// `/healthz` follows the consumer loop's beat over real HTTP: alive
    /// while it beats, 503 once silent past the limit, alive again on the
    /// next beat.
    #[tokio::test]
    async fn healthz_fails_while_the_consumer_loop_is_silent() {
        let shutdown = Shutdown::new();
        let beat = LoopBeat::default();
        let probes = Probes {
            ready: Arc::new(AtomicBool::new(true)),
            beat: beat.clone(),
            max_silence: Duration::from_millis(300),
            metrics: Arc::new(String::new),
        };
        let addr = serve_probes("127.0.0.1:0".parse().unwrap(), probes, shutdown.clone())
            .await
            .unwrap();
        beat.beat();
        assert!(status_of(addr, "/healthz").await.contains("200"));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            status_of(addr, "/healthz").await.contains("503"),
            "a silent loop is not alive"
        );
        beat.beat();
        assert!(status_of(addr, "/healthz").await.contains("200"));
        shutdown.trigger();
    }
}
