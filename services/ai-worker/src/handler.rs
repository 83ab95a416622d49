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
//!
//! A task runs at most once at a time: each delivery claims it under a lease
//! of its own (see `foxflow_storage::ai::claim_task`). A copy that finds the
//! lease held by a live claim, in this process or another, is deferred: back
//! to the wait queue at once, without counting an attempt, so it neither
//! calls the provider nor keeps a prefetch slot while the other run lasts.

use crate::metrics::Metrics;
use foxflow_ai::{Generation, Provider, ProviderError};
use foxflow_domain::ai_text::{self, Decision, Review};
use foxflow_domain::messages::Message;
use foxflow_messaging::{Delivered, Handler, HandlerOutcome};
use foxflow_ratelimit::ClusterLimiter;
use foxflow_storage::ai::{self, GenerationRecord, TaskClaim, TaskRow, TaskStatus, Validation};
use foxflow_storage::{DbPool, RunState, StorageError, pool};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

/// A 429 without `Retry-After` pauses the budget this long.
pub const DEFAULT_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(30);

/// What a claim's lease must cover besides the provider call: reading the
/// facts before it, and after it a pool checkout (5 s at most) and the
/// transaction that stores the text — milliseconds each when the database is
/// well. A store slower than this may see a copy take the task over and call
/// the provider again; the store's final-status check still keeps one text.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// How the handler claims tasks.
#[derive(Debug, Clone)]
pub struct Claims {
    /// The process's id (`Worker::id`); each delivery's lease token starts with it.
    pub worker_id: String,
    /// The longest a provider call may take (`OPENAI_TIMEOUT`), enforced here
    /// whatever the provider, so a lease can be sized to outlast any call.
    pub call_limit: Duration,
    /// Workers that may die holding a task before it is failed `worker_lost`
    /// (`AI_MAX_RETRIES`: a death is a failed attempt too).
    pub max_lost_workers: u32,
}

impl Claims {
    /// Long enough for a whole run, so a live holder never needs to renew
    /// it: one provider call at most (`call_limit`) and the margin. A
    /// shorter lease renewed during the call would free a dead worker's task
    /// sooner, for a write per renewal; as it is, a task waits at most this
    /// long (plus the retry delay) after its worker died.
    fn lease(&self) -> Duration {
        self.call_limit + LEASE_MARGIN
    }

    /// A token per delivery: two deliveries of one task in this process are
    /// two claims, and the second must not find the first one's lease its own.
    fn token(&self) -> String {
        format!("{}#{}", self.worker_id, Uuid::new_v4().simple())
    }
}

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
    claims: Claims,
}

impl AiHandler {
    pub fn new(
        pool: DbPool,
        provider: Arc<dyn Provider>,
        limiter: Option<ClusterLimiter>,
        metrics: Metrics,
        claims: Claims,
    ) -> Self {
        AiHandler {
            inner: Arc::new(Inner {
                pool,
                provider,
                limiter,
                metrics,
                claims,
            }),
        }
    }
}

impl Inner {
    async fn run(&self, task_id: Uuid, shutdown: watch::Receiver<bool>) -> HandlerOutcome {
        let started = Instant::now();
        let token = self.claims.token();
        let outcome = match self.try_run(task_id, &token, shutdown).await {
            Ok(o) => o,
            // Transient or not, a database failure is retried (and parked,
            // with the task failed, once the retries are spent).
            Err(e) => {
                // The detail stays in the log; the task says what happened.
                tracing::warn!(%task_id, error = %e, "AI task attempt failed");
                let words = e.operator_message();
                self.release(task_id, &token, &words).await;
                HandlerOutcome::Retry(words)
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

    /// Runs the task under the claim `token`.
    async fn try_run(
        &self,
        task_id: Uuid,
        token: &str,
        shutdown: watch::Receiver<bool>,
    ) -> Result<HandlerOutcome, StorageError> {
        let mut conn = pool::conn(&self.pool).await?;
        let claims = &self.claims;
        let claim = ai::claim_task(&mut conn, task_id, token, claims.lease(), claims.max_lost_workers);
        let task = match claim.await? {
            TaskClaim::Claimed(task) => task,
            TaskClaim::Final(status) => {
                tracing::info!(%task_id, %status, "task already final; acknowledging");
                return Ok(HandlerOutcome::Done);
            }
            TaskClaim::Leased { until } => {
                tracing::info!(%task_id, lease_until = %until, "task being generated by another delivery; deferring this copy");
                return Ok(HandlerOutcome::Defer);
            }
            TaskClaim::WorkerLost { lost } => {
                tracing::warn!(%task_id, lost_workers = lost, "workers kept dying on this task; failed as worker_lost");
                self.metrics.job("failed");
                return Ok(HandlerOutcome::Done);
            }
            TaskClaim::NotFound => return Ok(HandlerOutcome::Park(format!("no AI task with id {task_id}"))),
            TaskClaim::Invalid(reason) => {
                ai::finish_claimed_task(&mut conn, task_id, token, TaskStatus::Failed, &reason).await?;
                self.metrics.job("failed");
                return Ok(HandlerOutcome::Done);
            }
        };
        let Some(subject) = ai::load_subject(&mut conn, task.target, task.target_id, task.kind).await? else {
            let reason = format!("{} {} no longer exists", task.target, task.target_id);
            ai::finish_claimed_task(&mut conn, task_id, token, TaskStatus::Failed, &reason).await?;
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
                ai::finish_claimed_task(&mut conn, task_id, token, TaskStatus::Skipped, &reason).await?;
                self.metrics.job("skipped");
                return Ok(HandlerOutcome::Done);
            }
            Decision::Generate(because) => because,
        };
        // No connection is held while the provider thinks.
        drop(conn);
        if *shutdown.borrow() {
            self.release(task_id, token, "handed back at shutdown").await;
            return Ok(HandlerOutcome::Requeue);
        }
        let provider = self.provider.name();
        let called = Instant::now();
        // Bounded whatever the provider: the lease is sized on this limit.
        let call = self.provider.generate(task.kind, &subject.facts);
        let result = tokio::time::timeout(claims.call_limit, call)
            .await
            .unwrap_or(Err(ProviderError::Timeout));
        let latency = called.elapsed();
        self.metrics
            .provider_latency
            .with_label_values(&[provider])
            .observe(latency.as_secs_f64());
        match result {
            Ok(generation) => {
                self.store(task, token, generation, latency, because.to_string())
                    .await
            }
            Err(e) => {
                self.metrics
                    .provider_errors
                    .with_label_values(&[provider, e.label()])
                    .inc();
                self.provider_failed(task, token, e).await
            }
        }
    }

    async fn store(
        &self,
        task: TaskRow,
        token: &str,
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
                ai::finish_claimed_task(&mut conn, task_id, token, TaskStatus::Failed, &reason).await?;
                self.metrics.job("failed");
                Ok(HandlerOutcome::Done)
            }
            Err(e) => Err(e),
        }
    }

    async fn provider_failed(
        &self,
        task: TaskRow,
        token: &str,
        e: ProviderError,
    ) -> Result<HandlerOutcome, StorageError> {
        let reason = e.to_string();
        match e {
            ProviderError::RateLimited { retry_after } if self.limiter.is_some() => {
                let pause = retry_after.unwrap_or(DEFAULT_RATE_LIMIT_PAUSE);
                tracing::warn!(task_id = %task.id, pause_ms = pause.as_millis() as u64, "provider rate limit; pausing the queue's budget");
                if let Some(limiter) = &self.limiter {
                    limiter.pause_for(pause).await;
                }
                self.release(task.id, token, &reason).await;
                // Not a failure: back to the queue, behind the paused budget.
                Ok(HandlerOutcome::Requeue)
            }
            e if e.is_transient() => {
                tracing::warn!(task_id = %task.id, attempt = task.attempts, error = %reason, "provider failed; will retry");
                self.release(task.id, token, &reason).await;
                Ok(HandlerOutcome::Retry(reason))
            }
            _ => {
                tracing::warn!(task_id = %task.id, error = %reason, "provider answer unusable; task failed");
                let mut conn = pool::conn(&self.pool).await?;
                ai::finish_claimed_task(&mut conn, task.id, token, TaskStatus::Failed, &reason).await?;
                self.metrics.job("failed");
                Ok(HandlerOutcome::Done)
            }
        }
    }

    /// Best effort: the task shows `pending` again, with why, if the claim
    /// `token` still holds it.
    async fn release(&self, task_id: Uuid, token: &str, error: &str) {
        let result = async {
            let mut conn = pool::conn(&self.pool).await?;
            ai::release_task(&mut conn, task_id, token, Some(error)).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(%task_id, error = %e, "cannot hand the task back; it stays `processing` until its lease runs out");
        }
    }
}

impl Handler for AiHandler {
    fn precheck(&self, delivered: &Delivered) -> BoxFuture<'static, Option<HandlerOutcome>> {
        let Message::AiGenerationRequested { task_id, .. } = delivered.message else {
            return async { None }.boxed();
        };
        // The read settles a copy before it spends a unit of the start budget.
        // With no budget to spend (no limiter, or its rate off) the gate costs
        // such a copy nothing, and the claim in `handle` settles it just the
        // same (a final task acknowledged, a running one deferred): skip the
        // round trip. A copy may then wait out a 429 pause behind the gate
        // before it is settled.
        let spends_budget = self
            .inner
            .limiter
            .as_ref()
            .is_some_and(|l| l.rate().interval().is_some());
        if !spends_budget {
            return async { None }.boxed();
        }
        let inner = self.inner.clone();
        async move {
            // Any doubt (no connection, no row) goes on to `handle`, which
            // decides; a final task's batch check happens there too.
            let mut conn = pool::conn(&inner.pool).await.ok()?;
            match ai::task_run_state(&mut conn, task_id).await.ok()?? {
                RunState::Running => Some(HandlerOutcome::Defer),
                RunState::Final | RunState::Open => None,
            }
        }
        .boxed()
    }

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
}
