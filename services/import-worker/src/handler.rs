//! What the import worker does with one `import_requested` message.

use crate::metrics::Metrics;
use crate::pipeline::{self, RunContext, RunEnd};
use foxflow_config::Config;
use foxflow_domain::messages::Message;
use foxflow_domain::values::NafCode;
use foxflow_domain::{Text, text};
use foxflow_messaging::{Delivered, Handler, HandlerOutcome};
use foxflow_sheet_sandbox::Sandbox;
use foxflow_sheets::Limits;
use foxflow_storage::jobs::{self, Claim, RunState};
use foxflow_storage::{DbPool, StorageError, entities};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

#[derive(Clone)]
pub struct ImportHandler {
    pool: DbPool,
    config: Arc<Config>,
    worker_id: String,
    metrics: Metrics,
    /// Wakes the outbox relay when a finished import queued AI work.
    relay_wake: Arc<tokio::sync::Notify>,
    /// Reads each file in a child process held to the per-file budget.
    sandbox: Sandbox,
}

impl ImportHandler {
    pub fn new(
        pool: DbPool,
        config: Arc<Config>,
        worker_id: String,
        metrics: Metrics,
        relay_wake: Arc<tokio::sync::Notify>,
        sandbox: Sandbox,
    ) -> Self {
        ImportHandler {
            pool,
            config,
            worker_id,
            metrics,
            relay_wake,
            sandbox,
        }
    }

    async fn run(&self, job_id: Uuid, shutdown: watch::Receiver<bool>) -> HandlerOutcome {
        // Unique to this delivery: two copies of one job's message in this
        // process are two claimants, and only one gets the lease.
        let lease_token = format!("{}#{}", self.worker_id, &Uuid::new_v4().simple().to_string()[..8]);
        match self.try_run(job_id, &lease_token, shutdown).await {
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
                    let _ = jobs::release(&mut conn, job_id, &lease_token).await;
                }
                // The detail stays in the log; the job says what happened.
                tracing::warn!(%job_id, error = %e, "import attempt failed");
                HandlerOutcome::Retry(e.operator_message())
            }
        }
    }

    async fn try_run(
        &self,
        job_id: Uuid,
        lease_token: &str,
        shutdown: watch::Receiver<bool>,
    ) -> Result<HandlerOutcome, StorageError> {
        let started = Instant::now();
        let lease = self.config.import_lease;
        let mut conn = foxflow_storage::pool::conn(&self.pool).await?;
        // Worker deaths count against the same budget as failed attempts.
        let max_lost = i32::try_from(self.config.import_max_retries).unwrap_or(i32::MAX);
        let job = match jobs::claim(&mut conn, job_id, lease_token, lease, max_lost).await? {
            Claim::Claimed(job) => job,
            Claim::Final(job) => {
                tracing::info!(%job_id, status = %job.status, "job already final; acknowledging");
                return Ok(HandlerOutcome::Done);
            }
            Claim::NotFound => {
                return Ok(HandlerOutcome::Park(format!("no import job with id {job_id}")));
            }
            Claim::Leased { until } => {
                // A duplicate: another live claim runs it. This copy comes
                // back after the retry delay, by when the job has ended (then
                // it is acknowledged) or its holder has died (then its lease
                // expires and this copy takes over).
                tracing::info!(%job_id, %until, "job run by another claim; deferring this copy");
                return Ok(HandlerOutcome::Defer);
            }
        };
        drop(conn);
        let _heartbeat = Heartbeat::start(self.pool.clone(), job_id, lease_token.to_owned(), lease);
        let import_type = job.import_type;
        if job.reverts_job_id.is_some() {
            // A revert reads no file: one transaction undoes the import's
            // changes (docs/imports.md, "Revert"); a failure rolls it all
            // back and the attempt is retried like an import's.
            let mut conn = foxflow_storage::pool::conn(&self.pool).await?;
            jobs::run_revert(&mut conn, job_id, lease_token).await?;
            let outcome = jobs::finish(&mut conn, job_id, lease_token, None).await?;
            tracing::info!(
                %job_id, status = %outcome.status, restored = outcome.updated_rows, deleted = outcome.deleted_rows,
                recreated = outcome.created_rows, conflicts = outcome.error_rows, "revert finished"
            );
            return Ok(HandlerOutcome::Done);
        }
        let Some(file_id) = job.file_id else {
            let mut conn = foxflow_storage::pool::conn(&self.pool).await?;
            jobs::finish(
                &mut conn,
                job_id,
                lease_token,
                Some((
                    "file_purged",
                    &Text::new(
                        "le fichier envoyé n’est plus conservé",
                        "the uploaded file is no longer stored",
                    ),
                )),
            )
            .await?;
            return Ok(HandlerOutcome::Done);
        };
        let reference = self.reference_data().await?;
        // The soft limit counts running time across attempts (the
        // heartbeat sums it), not time spent waiting in a queue.
        let ran = Duration::from_millis(job.run_ms.max(0) as u64);
        let soft_left = self.config.import_soft_time_limit.saturating_sub(ran);
        let ctx = RunContext {
            pool: self.pool.clone(),
            job_id,
            file_id,
            file_name: job.file_name.clone(),
            import_type,
            dry_run: job.dry_run,
            generate_ai: job.generate_ai,
            checkpoint_row: job.checkpoint_row.max(0) as u64,
            prior_error_rows: job.error_rows,
            prior_warning_rows: job.warning_rows,
            lease_token: lease_token.to_owned(),
            lease,
            batch_rows: self.config.import_batch_rows,
            limits: Limits {
                max_rows: Some(self.config.max_import_rows),
                ..Limits::default()
            },
            sandbox: self.sandbox.clone(),
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
                message: text!(
                    "l’import a dépassé sa limite de temps stricte ({secs} s) et a été interrompu",
                    "the import exceeded its hard time limit ({secs}s) and was aborted",
                    secs = hard.as_secs()
                ),
            },
        };
        let mut conn = foxflow_storage::pool::conn(&self.pool).await?;
        let outcome = match end {
            RunEnd::Interrupted => {
                jobs::release(&mut conn, job_id, lease_token).await?;
                tracing::info!(%job_id, "shutdown: checkpoint committed, job handed back");
                return Ok(HandlerOutcome::Requeue);
            }
            RunEnd::WorkerFault(message) => {
                jobs::release(&mut conn, job_id, lease_token).await?;
                tracing::warn!(%job_id, reason = %message, "the file could not be read on this worker; retrying");
                return Ok(HandlerOutcome::Retry(message));
            }
            // `finish` makes it `cancelled`: the request is on the job row.
            RunEnd::Completed | RunEnd::Cancelled => {
                jobs::finish(&mut conn, job_id, lease_token, None).await?
            }
            RunEnd::FileError { code, message } => {
                jobs::finish(&mut conn, job_id, lease_token, Some((code, &message))).await?
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

/// Keeps a claim's lease alive while its job runs, whatever the job is
/// doing (a long first pass, a slow batch), so a lease only expires when the
/// worker holding it is gone; and sums the job's running time. Stops when
/// dropped, or when the claim is lost.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(pool: foxflow_storage::DbPool, job_id: Uuid, lease_token: String, lease: Duration) -> Heartbeat {
        Heartbeat(tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(lease / 3).await;
                let ran = last.elapsed();
                last = Instant::now();
                let renewed = match foxflow_storage::pool::conn(&pool).await {
                    Ok(mut conn) => jobs::renew_lease(&mut conn, job_id, &lease_token, lease, ran).await,
                    Err(e) => Err(e),
                };
                match renewed {
                    Ok(true) => {}
                    Ok(false) => return,
                    // The next beat tries again; the batch commit renews too.
                    Err(e) => tracing::warn!(%job_id, error = %e, "cannot renew the job's lease"),
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Handler for ImportHandler {
    fn precheck(&self, delivered: &Delivered) -> BoxFuture<'static, Option<HandlerOutcome>> {
        let Message::ImportRequested { job_id, .. } = delivered.message else {
            return async { None }.boxed();
        };
        let pool = self.pool.clone();
        async move {
            // Any doubt (no connection, no row) goes on to `handle`, which decides.
            let mut conn = foxflow_storage::pool::conn(&pool).await.ok()?;
            match jobs::run_state(&mut conn, job_id).await.ok()?? {
                RunState::Final => Some(HandlerOutcome::Done),
                RunState::Running => Some(HandlerOutcome::Defer),
                RunState::Open => None,
            }
        }
        .boxed()
    }

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
}
