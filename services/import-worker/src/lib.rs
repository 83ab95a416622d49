#![doc = include_str!("../README.md")]

mod handler;
pub mod metrics;
mod pipeline;
mod write;

use foxflow_config::Config;
use foxflow_domain::messages::QueueKind;
use foxflow_process::{Running, Shutdown, Worker};
use std::sync::Arc;

/// What one file's reader may write back, spooled on the worker's disk: far
/// more than any file within the row and cell limits produces.
const READER_OUTPUT_BYTES: u64 = 1 << 30;

/// Starts consuming on the current runtime; stops when `shutdown` triggers,
/// after the job in hand is finished or checkpointed.
pub async fn start(config: Config, shutdown: Shutdown) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let mut worker = Worker::new(&config, "import-worker", shutdown)?;
    let pool = worker.pool.clone();
    let metrics = metrics::Metrics::new();
    // The rate limiter's series (waits, budget) are its own collectors.
    foxflow_ratelimit::register_metrics(foxflow_telemetry::metrics::registry())?;
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
    // Refuse to start without a file reader: every job would fail later.
    let sandbox = foxflow_sheet_sandbox::Sandbox::new(
        config.import_reader_bin.as_deref(),
        foxflow_sheet_sandbox::Budget {
            cpu: config.import_parse_cpu,
            memory_bytes: config.import_parse_memory_mb << 20,
            output_bytes: READER_OUTPUT_BYTES,
        },
    )?;
    tracing::info!(reader = %sandbox.reader().display(), "files are read in a sandboxed child process");
    let handler = Arc::new(handler::ImportHandler::new(
        pool.clone(),
        config.clone(),
        worker.id.clone(),
        metrics,
        relay_wake.clone(),
        sandbox,
    ));
    let publisher = foxflow_messaging::Publisher::new(config.amqp_url(), &worker.id, worker.topology.clone());
    worker
        .spawn(|shutdown| foxflow_messaging::relay::run_outbox_relay(pool, publisher, relay_wake, shutdown));
    Ok(worker.consume(QueueKind::Imports, config.import_max_retries, handler, Some(gate)))
}
