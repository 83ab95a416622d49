#![doc = include_str!("../README.md")]

pub mod auth;
pub mod error;
mod gauges;
pub mod lang;
pub mod observe;
mod readiness;
mod report;
pub mod routes;
mod scan;
pub mod state;
mod streams;
pub mod upload;
pub mod views;

use actix_web::{App, HttpServer, web};
use foxflow_config::Config;
use foxflow_messaging::{Publisher, Topology, relay};
use foxflow_process::Shutdown;
use state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A started gateway: where it listens and how to wait for it.
pub struct Running {
    pub addr: SocketAddr,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Builds and starts everything on the current tokio runtime; returns once
/// the socket is bound. Stops when `shutdown` triggers.
pub async fn start(config: Config, shutdown: Shutdown) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let pool = foxflow_process::db_pool(&config, "api-gateway")?;
    let cleanup_schedule = foxflow_process::cleanup::CleanupSchedule::parse(&config.cleanup_schedule)
        .map_err(|reason| foxflow_config::ConfigError {
            var: "CLEANUP_SCHEDULE",
            reason,
        })?;
    let topology = Topology::from_config(&config);
    let publisher = Publisher::new(config.amqp_url(), "api-gateway", topology.clone());
    let relay_wake = Arc::new(Notify::new());
    // The rate limiter's series (the upload throttle) are its own collectors.
    foxflow_ratelimit::register_metrics(foxflow_telemetry::metrics::registry())?;
    let state = AppState {
        config: config.clone(),
        pool: pool.clone(),
        publisher: publisher.clone(),
        relay_wake: relay_wake.clone(),
        shutdown: shutdown.clone(),
        event_streams: Default::default(),
        db_readiness: Default::default(),
        scanner: config
            .virus_scan
            .as_ref()
            .map(|scan| Arc::new(scan::Scanner::new(scan))),
    };

    let depth_task = tokio::spawn(foxflow_messaging::run_depth_sampler(
        config.amqp_url().to_owned(),
        topology.clone(),
        "api-gateway".to_owned(),
        foxflow_messaging::depth::SAMPLE_EVERY,
        shutdown.subscribe(),
    ));
    let relay_task = tokio::spawn(relay::run_outbox_relay(
        pool.clone(),
        publisher,
        relay_wake,
        shutdown.subscribe(),
    ));
    // The API is the process that is always running (workers may scale to
    // zero), so what must run while no job is queued runs here: webhook
    // deliveries, the scheduled cleanup, and ending the jobs whose messages
    // were parked.
    let webhooks = foxflow_webhooks::Settings {
        max_attempts: config.webhook_max_attempts,
        retry_base: config.webhook_retry_base,
        timeout: config.webhook_timeout,
    };
    let targets = foxflow_webhooks::Targets::new(config.webhook_allow_private_networks.clone());
    let mut tasks = vec![tokio::spawn(foxflow_webhooks::run_webhook_deliveries(
        pool.clone(),
        webhooks,
        targets,
        shutdown.subscribe(),
    ))];
    state.db_readiness.check(&pool).await;
    tasks.push(tokio::spawn(
        state.db_readiness.clone().run(pool.clone(), shutdown.subscribe()),
    ));
    tasks.push(tokio::spawn(gauges::run_job_gauges(
        pool.clone(),
        config.namespace.clone(),
        foxflow_messaging::depth::SAMPLE_EVERY,
        shutdown.subscribe(),
    )));
    if let Some(schedule) = cleanup_schedule {
        let retention = foxflow_storage::maintenance::Retention {
            logs: config.import_log_retention,
            files: config.import_file_retention,
        };
        tasks.push(tokio::spawn(foxflow_process::cleanup::run_scheduled_cleanup(
            pool.clone(),
            schedule,
            retention,
            shutdown.subscribe(),
        )));
    }
    let recorder_task = tokio::spawn(foxflow_messaging::dead_letters::run_dead_letter_recorder(
        config.amqp_url().to_owned(),
        topology.clone(),
        "api-gateway".to_owned(),
        Arc::new(foxflow_process::dead_letters::RecordInDatabase(pool)),
        shutdown.subscribe(),
    ));

    let data = web::Data::new(state);
    let max_json = 64 * 1024;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::JsonConfig::default().limit(max_json).error_handler(|e, _| {
                error::ApiError::bad_request("invalid_json", lang::detail("corps JSON invalide", &e)).into()
            }))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                error::ApiError::bad_request(
                    "invalid_query",
                    lang::detail("paramètres de requête invalides", &e),
                )
                .into()
            }))
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                error::ApiError::bad_request("invalid_path", lang::detail("chemin invalide", &e)).into()
            }))
            .wrap(actix_web::middleware::from_fn(lang::localize_errors))
            .wrap(actix_web::middleware::from_fn(observe::observe))
            .configure(routes::configure)
            .default_service(web::to(not_found))
    })
    .disable_signals()
    .shutdown_timeout(10)
    .bind(config.api_addr)?;
    let addr = server.addrs().first().copied().unwrap_or(config.api_addr);
    let server = server.run();
    let handle = server.handle();
    let server_task = tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "http server failed");
        }
    });
    let stopper = foxflow_process::stop_server_on_shutdown(handle, &shutdown);
    tracing::info!(%addr, "api-gateway listening");
    Ok(Running {
        addr,
        tasks: tasks
            .into_iter()
            .chain([relay_task, recorder_task, depth_task, server_task, stopper])
            .collect(),
    })
}

async fn not_found() -> Result<actix_web::HttpResponse, error::ApiError> {
    Err(error::ApiError::NotFound("route"))
}
