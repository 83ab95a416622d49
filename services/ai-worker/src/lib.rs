//! The AI worker: consumes `{ns}.ai_generation`. For now it starts,
//! declares the topology, reports readiness and idles; generation arrives
//! with the providers.

use foxflow_config::Config;
use foxflow_messaging::{Publisher, Topology};
use foxflow_process::{Probes, Shutdown, serve_probes};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::JoinHandle;

pub struct Running {
    pub metrics_addr: Option<SocketAddr>,
    pub tasks: Vec<JoinHandle<()>>,
}

pub async fn start(config: Config, shutdown: Shutdown) -> anyhow::Result<Running> {
    let ready = Arc::new(AtomicBool::new(false));
    let metrics_addr = match config.metrics_addr {
        Some(addr) => {
            let probes = Probes {
                ready: ready.clone(),
                metrics: Arc::new(String::new),
            };
            Some(serve_probes(addr, probes, shutdown.clone()).await?)
        }
        None => None,
    };
    let topology = Topology::new(
        &config.namespace,
        config.import_retry_delay,
        config.ai_retry_delay,
    );
    let publisher = Publisher::new(config.amqp_url(), "ai-worker", topology);
    let mut rx = shutdown.subscribe();
    let idle = tokio::spawn(async move {
        let mut backoff = foxflow_messaging::Backoff::default();
        loop {
            let ok = publisher.ensure_connected().await.is_ok();
            ready.store(ok, Ordering::Relaxed);
            let wait = if ok {
                backoff.reset();
                std::time::Duration::from_secs(5)
            } else {
                backoff.next_delay()
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = rx.wait_for(|s| *s) => break,
            }
        }
    });
    Ok(Running {
        metrics_addr,
        tasks: vec![idle],
    })
}
