//! The `import-worker` binary: configuration, telemetry and signals, then [`import_worker::start`].

use foxflow_config::{Config, LogFormat, Process};
use foxflow_process::Shutdown;

/// An import allocates and frees a few strings per cell on two threads at
/// once; with glibc's allocator that was about a quarter of the worker's CPU
/// (docs/benchmarks.md). Only this process: the sandboxed reader keeps the
/// system allocator under its address-space limit.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env(Process::ImportWorker)?;
    foxflow_telemetry::install(foxflow_telemetry::Settings {
        service: "import-worker",
        json: config.log_format == LogFormat::Json,
        otlp_endpoint: config.otel_endpoint.as_deref(),
    })?;
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    import_worker::start(config, shutdown).await?.wait().await;
    foxflow_telemetry::shutdown();
    Ok(())
}
