//! The `ai-worker` binary: configuration, telemetry and signals, then [`ai_worker::start`].

use foxflow_config::{Config, LogFormat, Process};
use foxflow_process::Shutdown;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env(Process::AiWorker)?;
    foxflow_telemetry::install(foxflow_telemetry::Settings {
        service: "ai-worker",
        json: config.log_format == LogFormat::Json,
        otlp_endpoint: config.otel_endpoint.as_deref(),
    })?;
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    ai_worker::start(config, shutdown).await?.wait().await;
    foxflow_telemetry::shutdown();
    Ok(())
}
