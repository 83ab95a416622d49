//! What the import worker does with one `import_requested` message.

use crate::metrics::Metrics;
use crate::pipeline::{self, RunContext, RunEnd};
use foxflow_config::Config;
use foxflow_domain::messages::Message;
use foxflow_domain::values::NafCode;
use foxflow_messaging::{Delivered, Handler, HandlerOutcome};
use foxflow_sheets::Limits;
use foxflow_storage::jobs::{self, Claim};
use foxflow_storage::{DbPool, StorageError, entities};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

/// A lease outlives a few batch commits; a dead worker's job is taken over
/// this long after its last commit.
const LEASE: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct ImportHandler {
    pool: DbPool,
    config: Arc<Config>,
    worker_id: String,
    metrics: Metrics,
    /// Wakes the outbox relay when a finished import queued AI work.
    relay_wake: Arc<tokio::sync::Notify>,
}

impl ImportHandler {
    pub fn new(
        pool: DbPool,
        config: Arc<Config>,
        worker_id: String,
        metrics: Metrics,
        relay_wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        ImportHandler {
            pool,
            config,
            worker_id,
            metrics,
            relay_wake,
        }
    }

    async fn run(&self, job_id: Uuid, shutdown: watch::Receiver<bool>) -> HandlerOutcome {
        match self.try_run(job_id, shutdown).await {
            Ok(outcome) => outcome,
            // Our lease was taken over: the job is someone else's now.
            Err(StorageError::Conflict(m)) => {
                tracing::warn!(%job_id, reason = %m, "lost the job's lease; leaving it to its new holder");
                HandlerOutcome::Done
            }
            Err(e) => {
                // Let go of the lease so the retry, on whichever worker, can
                // claim the job at once; a dead connection cannot release it,
                // and then the lease expires by itself.
                if let Ok(mut conn) = foxflow_storage::pool::conn(&self.pool).await {
                    let _ = jobs::release(&mut conn, job_id, &self.worker_id).await;
                }
                HandlerOutcome::Retry(e.to_string())
            }
        }
    }

    async fn try_run(
        &self,
        job_id: Uuid,
        shutdown: watch::Receiver<bool>,
    ) -> Result<HandlerOutcome, StorageError> {
        let started = Instant::now();
        let mut conn = foxflow_storage::pool::conn(&self.pool).await?;
        let job = loop {
            match jobs::claim(&mut conn, job_id, &self.worker_id, LEASE).await? {
                Claim::Claimed(job) => break job,
                Claim::Final(job) => {
                    tracing::info!(%job_id, status = %job.status, "job already final; acknowledging");
                    return Ok(HandlerOutcome::Done);
                }
                Claim::NotFound => {
                    return Ok(HandlerOutcome::Park(format!("no import job with id {job_id}")));
                }
                Claim::Leased { until } => {
                    // Another worker holds it (or died holding it): wait for
                    // the lease to end, then try again.
                    let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default()
                        + Duration::from_millis(100);
                    if *shutdown.borrow() {
                        return Ok(HandlerOutcome::Requeue);
                    }
                    tracing::info!(%job_id, wait_ms = wait.as_millis() as u64, "job leased by another worker; waiting");
                    tokio::time::sleep(wait.min(LEASE * 2)).await;
                }
            }
        };
        drop(conn);
        let import_type = job.import_type;
        let Some(file_id) = job.file_id else {
            let mut conn = foxflow_storage::pool::conn(&self.pool).await?;
            jobs::finish(
                &mut conn,
                job_id,
                &self.worker_id,
                Some(("file_purged", "the uploaded file is no longer stored")),
            )
            .await?;
            return Ok(HandlerOutcome::Done);
        };
        let reference = self.reference_data().await?;
        // The soft limit counts from the job's first start, across retries.
        let elapsed = job
            .started_at
            .map(|s| (chrono::Utc::now() - s).to_std().unwrap_or_default())
            .unwrap_or_default();
        let soft_left = self.config.import_soft_time_limit.saturating_sub(elapsed);
        let ctx = RunContext {
            pool: self.pool.clone(),
            job_id,
            file_id,
            file_name: job.file_name.clone(),
            import_type,
            dry_run: job.dry_run,
            generate_ai: job.generate_ai,
            checkpoint_row: job.checkpoint_row.max(0) as u64,
            worker_id: self.worker_id.clone(),
            lease: LEASE,
            batch_rows: self.config.import_batch_rows,
            limits: Limits {
                max_rows: Some(self.config.max_import_rows),
                ..Limits::default()
            },
            soft_deadline: Instant::now() + soft_left,
            soft_limit: self.config.import_soft_time_limit,
            reference,
            shutdown: shutdown.clone(),
        };
        let hard = self.config.import_time_limit;
        let end = match tokio::time::timeout(hard, pipeline::run(ctx, &self.metrics)).await {
            Ok(r) => r?,
            Err(_) => RunEnd::FileError {
                code: "time_limit",
                message: format!(
                    "the import exceeded its hard time limit ({}s) and was aborted",
                    hard.as_secs()
                ),
            },
        };
        let mut conn = foxflow_storage::pool::conn(&self.pool).await?;
        let outcome = match end {
            RunEnd::Interrupted => {
                jobs::release(&mut conn, job_id, &self.worker_id).await?;
                tracing::info!(%job_id, "shutdown: checkpoint committed, job handed back");
                return Ok(HandlerOutcome::Requeue);
            }
            RunEnd::Completed => jobs::finish(&mut conn, job_id, &self.worker_id, None).await?,
            RunEnd::FileError { code, message } => {
                jobs::finish(&mut conn, job_id, &self.worker_id, Some((code, &message))).await?
            }
        };
        if outcome.generate_ai {
            self.relay_wake.notify_one();
        }
        tracing::Span::current().record("job.status", outcome.status.as_str());
        self.metrics
            .jobs
            .with_label_values(&["imports", outcome.status.as_str()])
            .inc();
        self.metrics
            .job_duration
            .with_label_values(&["imports"])
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            %job_id, status = %outcome.status, total = outcome.total_rows, created = outcome.created_rows,
            updated = outcome.updated_rows, unchanged = outcome.unchanged_rows, errors = outcome.error_rows,
            "import finished"
        );
        Ok(HandlerOutcome::Done)
    }

    /// The NAF table, read per job so a `foxctl naf load` is seen at once
    /// (732 rows: cheaper than any cache invalidation).
    async fn reference_data(
        &self,
    ) -> Result<Arc<dyn foxflow_domain::records::ReferenceData + Send + Sync>, StorageError> {
        let mut conn = foxflow_storage::pool::conn(&self.pool).await?;
        let labels = entities::naf_labels(&mut conn).await?;
        let map: HashMap<NafCode, String> = labels
            .into_iter()
            .filter_map(|(code, label)| NafCode::parse(&code).ok().map(|c| (c, label)))
            .collect();
        Ok(Arc::new(map))
    }
}

impl Handler for ImportHandler {
    fn handle(
        &self,
        delivered: Delivered,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, HandlerOutcome> {
        let this = self.clone();
        async move {
            match delivered.message {
                Message::ImportRequested { job_id, .. } => {
                    let span = tracing::info_span!(
                        "import_job",
                        otel.name = "import job",
                        job.id = %job_id,
                        job.attempt = delivered.attempt,
                        job.status = tracing::field::Empty,
                        trace_id = tracing::field::Empty,
                    );
                    // The consumer loop's span already continues the
                    // message's trace; without one, continue it here.
                    if tracing::Span::current().is_none() {
                        foxflow_telemetry::set_parent_from_traceparent(
                            &span,
                            delivered.traceparent.as_deref(),
                        );
                    }
                    if let Some(id) = foxflow_telemetry::trace_id_of(&span) {
                        span.record("trace_id", id);
                    }
                    this.run(job_id, shutdown).instrument(span).await
                }
                other => HandlerOutcome::Park(format!("unexpected message on the imports queue: {other:?}")),
            }
        }
        .boxed()
    }

    fn parked(&self, message: Message, reason: String) -> BoxFuture<'static, ()> {
        let pool = self.pool.clone();
        async move {
            if let Message::ImportRequested { job_id, .. } = message {
                match foxflow_storage::pool::conn(&pool).await {
                    Ok(mut conn) => {
                        if let Err(e) = jobs::fail(&mut conn, job_id, &reason).await {
                            tracing::error!(%job_id, error = %e, "cannot mark the parked job as failed");
                        }
                    }
                    Err(e) => tracing::error!(%job_id, error = %e, "cannot mark the parked job as failed"),
                }
            }
        }
        .boxed()
    }
}
