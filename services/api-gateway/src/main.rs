use foxflow_config::{Config, LogFormat, Process};
use foxflow_process::Shutdown;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env(Process::ApiGateway)?;
    foxflow_telemetry::init("api-gateway", config.log_format == LogFormat::Json);
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    let running = api_gateway::start(config, shutdown).await?;
    for task in running.tasks {
        let _ = task.await;
    }
    Ok(())
}
