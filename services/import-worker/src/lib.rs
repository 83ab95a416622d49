//! The import worker: consumes `{ns}.imports`, streams each file through the
//! readers and the domain's parsing into set-based writes, and commits every
//! batch together with the job's progress and checkpoint.

mod cleanup;
mod handler;
pub mod metrics;
mod pipeline;
mod write;

use foxflow_config::Config;
use foxflow_domain::messages::QueueKind;
use foxflow_messaging::{ConsumerSettings, Topology, run_consumer};
use foxflow_process::{Probes, Shutdown, serve_probes};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::task::JoinHandle;

pub struct Running {
    /// Where `/metrics`, `/healthz` and `/readyz` answer.
    pub metrics_addr: Option<SocketAddr>,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Starts consuming on the current runtime; stops when `shutdown` triggers,
/// after the job in hand is finished or checkpointed.
pub async fn start(config: Config, shutdown: Shutdown) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let pool = foxflow_storage::build_pool(config.database_url(), config.db_pool_size, "import-worker")?;
    let ready = Arc::new(AtomicBool::new(false));
    let metrics = metrics::Metrics::new();
    // The rate limiter's series (waits, budget) are its own collectors.
    foxflow_ratelimit::register_metrics(foxflow_telemetry::metrics::registry())?;
    let cleanup_schedule = cleanup::CleanupSchedule::parse(&config.cleanup_schedule).map_err(|reason| {
        foxflow_config::ConfigError {
            var: "CLEANUP_SCHEDULE",
            reason,
        }
    })?;
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
        "import-worker/{}/{}",
        hostname(),
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .get(..8)
            .unwrap_or_default()
    );
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
        worker_id.clone(),
        metrics,
        relay_wake.clone(),
    ));
    let topology = Topology::new(
        &config.namespace,
        config.import_retry_delay,
        config.ai_retry_delay,
    );
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(foxflow_messaging::relay::run_outbox_relay(
        pool.clone(),
        foxflow_messaging::Publisher::new(config.amqp_url(), &worker_id, topology.clone()),
        relay_wake,
        shutdown.subscribe(),
    )));
    tasks.push(tokio::spawn(foxflow_messaging::run_depth_sampler(
        config.amqp_url().to_owned(),
        topology.clone(),
        worker_id.clone(),
        foxflow_messaging::depth::SAMPLE_EVERY,
        shutdown.subscribe(),
    )));
    // Webhook deliveries queued when jobs and AI batches end: their own
    // task, so a slow receiver never holds up an import.
    tasks.push(tokio::spawn(foxflow_webhooks::run_webhook_deliveries(
        pool.clone(),
        foxflow_webhooks::Settings {
            max_attempts: config.webhook_max_attempts,
            retry_base: config.webhook_retry_base,
            timeout: config.webhook_timeout,
        },
        shutdown.subscribe(),
    )));
    if let Some(schedule) = cleanup_schedule {
        let retention = foxflow_storage::maintenance::Retention {
            logs: config.import_log_retention,
            files: config.import_file_retention,
        };
        tasks.push(tokio::spawn(cleanup::run_scheduled_cleanup(
            pool,
            schedule,
            retention,
            shutdown.subscribe(),
        )));
    }
    let settings = ConsumerSettings {
        amqp_url: config.amqp_url().to_owned(),
        topology,
        queue: QueueKind::Imports,
        prefetch: config.prefetch,
        max_retries: config.import_max_retries,
        name: worker_id,
    };
    tasks.push(tokio::spawn(run_consumer(
        settings,
        handler,
        Some(gate),
        ready,
        shutdown.subscribe(),
    )));
    Ok(Running { metrics_addr, tasks })
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
