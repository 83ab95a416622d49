//! The `api-gateway` process: configuration from the environment, telemetry, signals, then
//! [`api_gateway::start`] until shutdown.

use foxflow_config::{Config, LogFormat, Process};
use foxflow_process::Shutdown;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env(Process::ApiGateway)?;
    foxflow_telemetry::install(foxflow_telemetry::Settings {
        service: "api-gateway",
        json: config.log_format == LogFormat::Json,
        otlp_endpoint: config.otel_endpoint.as_deref(),
    })?;
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    let running = api_gateway::start(config, shutdown).await?;
    for task in running.tasks {
        let _ = task.await;
    }
    foxflow_telemetry::shutdown();
    Ok(())
}
