#![doc = include_str!("../README.md")]

mod handler;
pub mod metrics;

use foxflow_config::Config;
use foxflow_domain::messages::QueueKind;
use foxflow_messaging::StartGate;
use foxflow_process::{Running, Shutdown, Worker};
use foxflow_ratelimit::ClusterLimiter;
use std::sync::Arc;

/// The limiter key of the queue's budget, shared by every replica.
pub const RATE_LIMIT_KEY: &str = "queue:ai_generation";

/// Starts consuming on the current runtime; stops when `shutdown` triggers,
/// after the tasks in hand are stored or handed back.
pub async fn start(config: Config, shutdown: Shutdown) -> anyhow::Result<Running> {
    let mut worker = Worker::new(&config, "ai-worker", shutdown)?;
    let provider = foxflow_ai::from_config(&config)?;
    let metrics = metrics::Metrics::new();
    let limiter = ClusterLimiter::new(worker.pool.clone(), RATE_LIMIT_KEY, config.ai_rate_limit);
    limiter.register(metrics.registry())?;
    let m = metrics.clone();
    worker.serve_probes(move || m.render()).await?;
    tracing::info!(provider = provider.name(), rate = %config.ai_rate_limit, "ai-worker starting");
    let claims = handler::Claims {
        worker_id: worker.id.clone(),
        call_limit: config.openai_timeout,
        max_lost_workers: config.ai_max_retries,
    };
    let handler = Arc::new(handler::AiHandler::new(
        worker.pool.clone(),
        provider,
        Some(limiter.clone()),
        metrics,
        claims,
    ));
    let gate: Arc<dyn StartGate> = Arc::new(limiter);
    Ok(worker.consume(
        QueueKind::AiGeneration,
        config.ai_max_retries,
        handler,
        Some(gate),
    ))
}
