//! What the AI worker does with one `ai_generation_requested` message.
//!
//! Retry policy, in one sentence: a timeout, a refused connection or a 5xx
//! from the provider (or a database hiccup) hands the task back and retries
//! it after `AI_RETRY_DELAY`, at most `AI_MAX_RETRIES` times, then the task
//! is `failed` with the reason and the message parked; a 429 pauses the
//! whole queue's budget for `Retry-After` (30 s when absent) and requeues the
//! message without counting an attempt; a refused request (4xx), an
//! unparseable answer or a text that fails validation after its one repair
//! ends the task `failed` at once, with the reason stored.

use crate::metrics::Metrics;
use foxflow_ai::{Generation, Provider, ProviderError};
use foxflow_domain::ai_text::{self, Decision, Review};
use foxflow_domain::messages::Message;
use foxflow_messaging::{Delivered, Handler, HandlerOutcome};
use foxflow_ratelimit::ClusterLimiter;
use foxflow_storage::ai::{self, GenerationRecord, TaskClaim, TaskRow, TaskStatus, Validation};
use foxflow_storage::{DbPool, StorageError, pool};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

/// A 429 without `Retry-After` pauses the budget this long.
pub const DEFAULT_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AiHandler {
    inner: Arc<Inner>,
}

struct Inner {
    pool: DbPool,
    provider: Arc<dyn Provider>,
    /// The queue's cluster-wide budget, paused on a 429; `None` in setups
    /// without one (a 429 is then an ordinary transient failure).
    limiter: Option<ClusterLimiter>,
    metrics: Metrics,
}

impl AiHandler {
    pub fn new(
        pool: DbPool,
        provider: Arc<dyn Provider>,
        limiter: Option<ClusterLimiter>,
        metrics: Metrics,
    ) -> Self {
        AiHandler {
            inner: Arc::new(Inner {
                pool,
                provider,
                limiter,
                metrics,
            }),
        }
    }
}

impl Inner {
    async fn run(&self, task_id: Uuid, shutdown: watch::Receiver<bool>) -> HandlerOutcome {
        let started = Instant::now();
        let outcome = match self.try_run(task_id, shutdown).await {
            Ok(o) => o,
            // Transient or not, a database failure is retried (and parked,
            // with the task failed, once the retries are spent).
            Err(e) => {
                self.release(task_id, &e.to_string()).await;
                HandlerOutcome::Retry(e.to_string())
            }
        };
        let label = match &outcome {
            HandlerOutcome::Done => None,
            HandlerOutcome::Retry(_) => Some("retried"),
            HandlerOutcome::Park(_) => Some("parked"),
            HandlerOutcome::Requeue => Some("requeued"),
            HandlerOutcome::Defer => Some("deferred"),
        };
        if let Some(label) = label {
            self.metrics.job(label);
        }
        self.metrics.job_duration(started.elapsed());
        outcome
    }

    async fn try_run(
        &self,
        task_id: Uuid,
        shutdown: watch::Receiver<bool>,
    ) -> Result<HandlerOutcome, StorageError> {
        let mut conn = pool::conn(&self.pool).await?;
        let task = match ai::claim_task(&mut conn, task_id).await? {
            TaskClaim::Claimed(task) => task,
            TaskClaim::Final(status) => {
                tracing::info!(%task_id, %status, "task already final; acknowledging");
                return Ok(HandlerOutcome::Done);
            }
            TaskClaim::NotFound => return Ok(HandlerOutcome::Park(format!("no AI task with id {task_id}"))),
            TaskClaim::Invalid(reason) => {
                ai::finish_task(&mut conn, task_id, TaskStatus::Failed, &reason).await?;
                self.metrics.job("failed");
                return Ok(HandlerOutcome::Done);
            }
        };
        let Some(subject) = ai::load_subject(&mut conn, task.target, task.target_id, task.kind).await? else {
            let reason = format!("{} {} no longer exists", task.target, task.target_id);
            ai::finish_task(&mut conn, task_id, TaskStatus::Failed, &reason).await?;
            self.metrics.job("failed");
            return Ok(HandlerOutcome::Done);
        };
        let because = match ai_text::decide(
            task.kind,
            subject.current.as_ref(),
            subject.generated_at,
            chrono::Utc::now(),
            task.force,
        ) {
            Decision::Skip => {
                let reason = format!(
                    "present, valid and generated {}",
                    subject.generated_at.map(|d| d.to_rfc3339()).unwrap_or_default()
                );
                ai::finish_task(&mut conn, task_id, TaskStatus::Skipped, &reason).await?;
                self.metrics.job("skipped");
                return Ok(HandlerOutcome::Done);
            }
            Decision::Generate(because) => because,
        };
        // No connection is held while the provider thinks.
        drop(conn);
        if *shutdown.borrow() {
            self.release(task_id, "handed back at shutdown").await;
            return Ok(HandlerOutcome::Requeue);
        }
        let provider = self.provider.name();
        let called = Instant::now();
        let result = self.provider.generate(task.kind, &subject.facts).await;
        let latency = called.elapsed();
        self.metrics
            .provider_latency
            .with_label_values(&[provider])
            .observe(latency.as_secs_f64());
        match result {
            Ok(generation) => self.store(task, generation, latency, because.to_string()).await,
            Err(e) => {
                self.metrics
                    .provider_errors
                    .with_label_values(&[provider, e.label()])
                    .inc();
                self.provider_failed(task, e).await
            }
        }
    }

    async fn store(
        &self,
        task: TaskRow,
        generation: Generation,
        latency: Duration,
        reason: String,
    ) -> Result<HandlerOutcome, StorageError> {
        let Generation {
            draft,
            model,
            prompt_version,
            tokens_in,
            tokens_out,
        } = generation;
        let provider = self.provider.name();
        self.metrics.tokens(provider, tokens_in, tokens_out);
        let review = ai_text::review(task.kind, draft);
        let validation = review.outcome();
        self.metrics.validation.with_label_values(&[validation]).inc();
        let notes = (!review.violations().is_empty()).then(|| ai_text::describe(review.violations()));
        let (task_id, target, target_id, kind) = (task.id, task.target, task.target_id, task.kind);
        let record = GenerationRecord {
            task,
            provider: provider.to_owned(),
            model,
            prompt_version,
            tokens_in,
            tokens_out,
            latency_ms: i32::try_from(latency.as_millis()).unwrap_or(i32::MAX),
            validation: Validation::of(&review),
            notes,
            draft: review.draft().clone(),
            reason,
        };
        let mut conn = pool::conn(&self.pool).await?;
        match ai::store_generation(&mut conn, &record).await {
            Ok(true) => {
                let outcome = match review {
                    Review::Rejected { .. } => "failed",
                    _ => "succeeded",
                };
                self.metrics.job(outcome);
                tracing::info!(%task_id, %target, target_id, %kind, validation, outcome, "text generated");
                Ok(HandlerOutcome::Done)
            }
            Ok(false) => Ok(HandlerOutcome::Done),
            Err(StorageError::NotFound) => {
                let reason = format!("{target} {target_id} was deleted during generation");
                ai::finish_task(&mut conn, task_id, TaskStatus::Failed, &reason).await?;
                self.metrics.job("failed");
                Ok(HandlerOutcome::Done)
            }
            Err(e) => Err(e),
        }
    }

    async fn provider_failed(&self, task: TaskRow, e: ProviderError) -> Result<HandlerOutcome, StorageError> {
        let reason = e.to_string();
        match e {
            ProviderError::RateLimited { retry_after } if self.limiter.is_some() => {
                let pause = retry_after.unwrap_or(DEFAULT_RATE_LIMIT_PAUSE);
                tracing::warn!(task_id = %task.id, pause_ms = pause.as_millis() as u64, "provider rate limit; pausing the queue's budget");
                if let Some(limiter) = &self.limiter {
                    limiter.pause_for(pause).await;
                }
                self.release(task.id, &reason).await;
                // Not a failure: back to the queue, behind the paused budget.
                Ok(HandlerOutcome::Requeue)
            }
            e if e.is_transient() => {
                tracing::warn!(task_id = %task.id, attempt = task.attempts, error = %reason, "provider failed; will retry");
                self.release(task.id, &reason).await;
                Ok(HandlerOutcome::Retry(reason))
            }
            _ => {
                tracing::warn!(task_id = %task.id, error = %reason, "provider answer unusable; task failed");
                let mut conn = pool::conn(&self.pool).await?;
                ai::finish_task(&mut conn, task.id, TaskStatus::Failed, &reason).await?;
                self.metrics.job("failed");
                Ok(HandlerOutcome::Done)
            }
        }
    }

    /// Best effort: the task shows `pending` again, with why.
    async fn release(&self, task_id: Uuid, error: &str) {
        let result = async {
            let mut conn = pool::conn(&self.pool).await?;
            ai::release_task(&mut conn, task_id, Some(error)).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(%task_id, error = %e, "cannot hand the task back; it stays `processing` until redelivered");
        }
    }
}

impl Handler for AiHandler {
    fn handle(
        &self,
        delivered: Delivered,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, HandlerOutcome> {
        let inner = self.inner.clone();
        async move {
            match delivered.message {
                Message::AiGenerationRequested { task_id, .. } => inner.run(task_id, shutdown).await,
                other => HandlerOutcome::Park(format!(
                    "unexpected message on the ai_generation queue: {other:?}"
                )),
            }
        }
        .boxed()
    }

    /// Retries exhausted (or the message named nothing): the task says why.
    fn parked(&self, message: Message, reason: String) -> BoxFuture<'static, ()> {
        let inner = self.inner.clone();
        async move {
            let Message::AiGenerationRequested { task_id, .. } = message else {
                return;
            };
            let result = async {
                let mut conn = pool::conn(&inner.pool).await?;
                ai::finish_task(&mut conn, task_id, TaskStatus::Failed, &reason).await
            }
            .await;
            match result {
                Ok(true) => inner.metrics.job("failed"),
                Ok(false) => {}
                Err(e) => tracing::error!(%task_id, error = %e, "cannot mark the parked task as failed"),
            }
        }
        .boxed()
    }
}
