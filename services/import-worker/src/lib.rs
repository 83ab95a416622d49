#![doc = include_str!("../README.md")]

mod cleanup;
mod handler;
pub mod metrics;
mod pipeline;
mod write;

use foxflow_config::Config;
use foxflow_domain::messages::QueueKind;
use foxflow_process::{Running, Shutdown, Worker};
use std::sync::Arc;

/// Starts consuming on the current runtime; stops when `shutdown` triggers,
/// after the job in hand is finished or checkpointed.
pub async fn start(config: Config, shutdown: Shutdown) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let mut worker = Worker::new(&config, "import-worker", shutdown)?;
    let pool = worker.pool.clone();
    let metrics = metrics::Metrics::new();
    // The rate limiter's series (waits, budget) are its own collectors.
    foxflow_ratelimit::register_metrics(foxflow_telemetry::metrics::registry())?;
    let cleanup_schedule = cleanup::CleanupSchedule::parse(&config.cleanup_schedule).map_err(|reason| {
        foxflow_config::ConfigError {
            var: "CLEANUP_SCHEDULE",
            reason,
        }
    })?;
    let m = metrics.clone();
    worker.serve_probes(move || m.render()).await?;
    // The cluster-wide start rate (docs/spec.md §7): every replica takes from one budget.
    let gate = Arc::new(foxflow_ratelimit::ClusterLimiter::new(
        pool.clone(),
        "queue:imports",
        config.import_rate_limit,
    ));
    // An import with generate_ai=true writes its AI batch's messages to the
    // outbox when it finishes; this relay publishes them.
    let relay_wake = Arc::new(tokio::sync::Notify::new());
    let handler = Arc::new(handler::ImportHandler::new(
        pool.clone(),
        config.clone(),
        worker.id.clone(),
        metrics,
        relay_wake.clone(),
    ));
    let publisher = foxflow_messaging::Publisher::new(config.amqp_url(), &worker.id, worker.topology.clone());
    let relay_pool = pool.clone();
    worker.spawn(|shutdown| {
        foxflow_messaging::relay::run_outbox_relay(relay_pool, publisher, relay_wake, shutdown)
    });
    // Webhook deliveries queued when jobs and AI batches end: their own
    // task, so a slow receiver never holds up an import.
    let webhooks = foxflow_webhooks::Settings {
        max_attempts: config.webhook_max_attempts,
        retry_base: config.webhook_retry_base,
        timeout: config.webhook_timeout,
    };
    let webhook_pool = pool.clone();
    let targets = foxflow_webhooks::Targets::new(config.webhook_allow_private_networks.clone());
    worker.spawn(|shutdown| {
        foxflow_webhooks::run_webhook_deliveries(webhook_pool, webhooks, targets, shutdown)
    });
    if let Some(schedule) = cleanup_schedule {
        let retention = foxflow_storage::maintenance::Retention {
            logs: config.import_log_retention,
            files: config.import_file_retention,
        };
        worker.spawn(|shutdown| cleanup::run_scheduled_cleanup(pool, schedule, retention, shutdown));
    }
    Ok(worker.consume(QueueKind::Imports, config.import_max_retries, handler, Some(gate)))
}
