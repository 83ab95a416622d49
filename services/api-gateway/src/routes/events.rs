//! `GET /api/v1/imports/{id}/events`: a job's progress as Server-Sent Events
//! (the contract the dashboard and `foxctl` share, docs/api.md).
//!
//! The stream polls the job row (cheap: one primary-key read) instead of
//! listening for notifications: progress is committed batch by batch by
//! another process, and a poll needs nothing besides the pool. It holds no
//! connection between polls.
//!
//! Each open stream costs a poll every half second on a small pool, so
//! streams are counted per token and in all on this replica
//! (`EVENTS_STREAMS_PER_TOKEN`, `EVENTS_STREAMS_TOTAL`) and refused with 429
//! past either; and a stream re-reads its token every few seconds, so a
//! revoked token does not keep its streams.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::job_access::visible_job;
use crate::state::AppState;
use crate::streams::StreamSlot;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use bytes::Bytes;
use foxflow_domain::JobStatus;
use foxflow_storage::jobs::{self, ImportJob, JobView};
use foxflow_storage::{StorageError, pool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

/// Registers the stream under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(events);
}

/// How often the job is looked at.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// A comment line when nothing changed for that long, so proxies and
/// clients do not take a quiet import for a dead connection. It is also how
/// a client that left is noticed: the server does not watch the read side
/// of a streaming response, so only a failed write (the second after the
/// peer's reset) ends the stream and gives its place back; 5 s keeps a
/// departed client's place held for about 10 s.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(5);
/// How often an open stream checks that its token is still valid: the
/// longest a revoked token keeps a stream.
const TOKEN_RECHECK_EVERY: Duration = Duration::from_secs(2);
/// What a refused stream is told to wait: streams end as imports do.
const RETRY_AFTER_FULL_S: u64 = 10;

/// The bearer token as sent; the [`Caller`] extractor already checked it.
fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned())
}

/// Streams the job: one `job` frame at once and on every change, then
/// `job` + `end` on a final status. Ends early on server shutdown.
#[utoipa::path(
    context_path = "/api/v1",
    operation_id = "import_events",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id (UUID)")),
    responses(
        (status = 200, description = "`event: job` frames (the job JSON) until a final status, then `event: end`",
         content_type = "text/event-stream", body = String),
        (status = 401, description = "No valid bearer token", body = crate::views::ErrorBody),
        (status = 404, description = "No such import (or another user's)", body = crate::views::ErrorBody),
        (status = 429, description = "Too many open streams for this token or on this server; see Retry-After",
         body = crate::views::ErrorBody),
        (status = 503, description = "Database unavailable", body = crate::views::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/imports/{id}/events")]
pub async fn events(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    // Access is decided once, before the stream starts: a 404 is a JSON error, not a stream.
    let job = {
        let mut conn = pool::conn(&state.pool).await?;
        visible_job(&mut conn, &caller, &path).await?
    };
    let token = bearer(&req).ok_or(ApiError::Unauthorized)?;
    let slot = state
        .event_streams
        .acquire(
            foxflow_storage::auth::hash_token(&token),
            state.config.events_streams_per_token,
            state.config.events_streams_total,
        )
        .ok_or(ApiError::TooManyRequests {
            retry_after_s: RETRY_AFTER_FULL_S,
        })?;
    let stream = EventStream {
        _slot: slot,
        token,
        token_checked: Instant::now(),
        shutdown: state.shutdown.subscribe(),
        state: state.into_inner(),
        job_id: job.id,
        last: None,
        last_sent: Instant::now(),
        polled: false,
        done: false,
    };
    let body = futures::stream::unfold(stream, |mut s| async move {
        let frame = s.next_frame().await?;
        Some((Ok::<_, actix_web::Error>(frame), s))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

struct EventStream {
    /// Counted among the open streams while this lives.
    _slot: StreamSlot,
    /// Re-read every `TOKEN_RECHECK_EVERY`; never logged.
    token: String,
    token_checked: Instant,
    state: Arc<AppState>,
    job_id: Uuid,
    /// What was last sent, to send only changes.
    last: Option<Fingerprint>,
    last_sent: Instant,
    shutdown: watch::Receiver<bool>,
    /// The first poll happens at once; every later one after `POLL_EVERY`.
    polled: bool,
    /// The final frames went out: close.
    done: bool,
}

/// The parts of a job that a frame reports; `duration_seconds` moves on its
/// own while running and is left out on purpose.
#[derive(PartialEq, Eq)]
struct Fingerprint {
    status: JobStatus,
    counts: [i64; 7],
    attempts: i32,
    last_error: Option<String>,
    finished: bool,
    purged: bool,
}

impl Fingerprint {
    fn of(j: &ImportJob) -> Self {
        Fingerprint {
            status: j.status,
            counts: [
                j.total_rows,
                j.processed_rows,
                j.created_rows,
                j.updated_rows,
                j.unchanged_rows,
                j.error_rows,
                j.normalized_values,
            ],
            attempts: j.attempts,
            last_error: j.last_error.clone(),
            finished: j.completed_at.is_some(),
            purged: j.file_purged_at.is_some(),
        }
    }
}

impl EventStream {
    /// The next chunk to write, or `None` to close the stream.
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if self.done || *self.shutdown.borrow() {
                return None;
            }
            if self.polled {
                tokio::select! {
                    _ = tokio::time::sleep(POLL_EVERY) => {}
                    // Server stopping: close the stream; clients reconnect or poll.
                    _ = self.shutdown.changed() => return None,
                }
            }
            self.polled = true;
            match self.poll().await {
                Ok(Some(frame)) => return Some(frame),
                Ok(None) => {}
                // A missed poll is retried on the next tick; the client
                // only sees a later frame.
                Err(e) => tracing::debug!(job = %self.job_id, error = %e, "events poll failed"),
            }
            if self.last_sent.elapsed() >= KEEPALIVE_EVERY {
                self.last_sent = Instant::now();
                return Some(Bytes::from_static(b": keepalive\n\n"));
            }
        }
    }

    /// Reads the job; a frame when it changed (two when it became final).
    async fn poll(&mut self) -> Result<Option<Bytes>, ApiError> {
        let mut conn = pool::conn(&self.state.pool).await?;
        if self.token_checked.elapsed() >= TOKEN_RECHECK_EVERY {
            match foxflow_storage::auth::authenticate(&mut conn, &self.token).await {
                Ok(_) => self.token_checked = Instant::now(),
                Err(StorageError::NotFound) => {
                    // Revoked (or its user deleted): close without a final
                    // frame; reconnecting gets the 401.
                    tracing::info!(job = %self.job_id, "events stream closed: token revoked");
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let Some(job) = jobs::get_job(&mut conn, self.job_id).await? else {
            // Deleted under us (retention): nothing more will come.
            self.done = true;
            return Ok(Some(Bytes::from_static(b"event: end\ndata: null\n\n")));
        };
        let fp = Fingerprint::of(&job);
        if self.last.as_ref() == Some(&fp) {
            return Ok(None);
        }
        let is_final = job.status.is_final();
        let id = format!("{}-{}", job.processed_rows, job.status);
        let view = JobView::load(&mut conn, job).await?;
        drop(conn);
        let data = serde_json::to_string(&view).map_err(|e| ApiError::Internal(e.into()))?;
        let mut frame = format!("id: {id}\nevent: job\ndata: {data}\n\n");
        if is_final {
            frame.push_str(&format!("id: {id}\nevent: end\ndata: {data}\n\n"));
            self.done = true;
        }
        self.last = Some(fp);
        self.last_sent = Instant::now();
        Ok(Some(Bytes::from(frame)))
    }
}
