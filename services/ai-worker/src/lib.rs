//! The AI worker: consumes `{ns}.ai_generation` through the shared consumer
//! loop, one message per (target, kind). For each task it applies the
//! regeneration policy, asks the provider (`AI_PROVIDER`), validates and
//! repairs the draft once, and stores the text with its provenance — the
//! task's final status in the same transaction (docs/spec.md §8). Starts are gated
//! by the cluster-wide `AI_RATE_LIMIT`, which a provider 429 pauses.

mod handler;
pub mod metrics;

use foxflow_config::Config;
use foxflow_domain::messages::QueueKind;
use foxflow_messaging::{ConsumerSettings, StartGate, Topology, run_consumer};
use foxflow_process::{Probes, Shutdown, serve_probes};
use foxflow_ratelimit::ClusterLimiter;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::task::JoinHandle;

pub use handler::DEFAULT_RATE_LIMIT_PAUSE;

/// The limiter key of the queue's budget, shared by every replica.
pub const RATE_LIMIT_KEY: &str = "queue:ai_generation";

pub struct Running {
    /// Where `/metrics`, `/healthz` and `/readyz` answer.
    pub metrics_addr: Option<SocketAddr>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Starts consuming on the current runtime; stops when `shutdown` triggers,
/// after the tasks in hand are stored or handed back.
pub async fn start(config: Config, shutdown: Shutdown) -> anyhow::Result<Running> {
    let pool = foxflow_storage::build_pool(config.database_url(), config.db_pool_size, "ai-worker")?;
    let provider = foxflow_ai::from_config(&config)?;
    let ready = Arc::new(AtomicBool::new(false));
    let metrics = metrics::Metrics::new();
    let limiter = ClusterLimiter::new(pool.clone(), RATE_LIMIT_KEY, config.ai_rate_limit);
    limiter.register(metrics.registry())?;
    let metrics_addr = match config.metrics_addr {
        Some(addr) => {
            let m = metrics.clone();
            let probes = Probes {
                ready: ready.clone(),
                metrics: Arc::new(move || m.render()),
            };
            Some(serve_probes(addr, probes, shutdown.clone()).await?)
        }
        None => None,
    };
    let worker_id = format!(
        "ai-worker/{}/{}",
        hostname(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    tracing::info!(provider = provider.name(), rate = %config.ai_rate_limit, "ai-worker starting");
    let handler = Arc::new(handler::AiHandler::new(
        pool,
        provider,
        Some(limiter.clone()),
        metrics,
    ));
    let topology = Topology::new(
        &config.namespace,
        config.import_retry_delay,
        config.ai_retry_delay,
    );
    // Every process exposes the queue depths (docs/spec.md §10), so a scrape of any
    // one of them shows the backlog KEDA scales on.
    let depth = tokio::spawn(foxflow_messaging::run_depth_sampler(
        config.amqp_url().to_owned(),
        topology.clone(),
        worker_id.clone(),
        foxflow_messaging::depth::SAMPLE_EVERY,
        shutdown.subscribe(),
    ));
    let settings = ConsumerSettings {
        amqp_url: config.amqp_url().to_owned(),
        topology,
        queue: QueueKind::AiGeneration,
        prefetch: config.prefetch,
        max_retries: config.ai_max_retries,
        name: worker_id,
    };
    let gate: Arc<dyn StartGate> = Arc::new(limiter);
    let consumer = tokio::spawn(run_consumer(
        settings,
        handler,
        Some(gate),
        ready,
        shutdown.subscribe(),
    ));
    Ok(Running {
        metrics_addr,
        tasks: vec![consumer, depth],
    })
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "local".to_owned())
}
