//! `GET /api/v1/imports/{id}/events`: a job's progress as Server-Sent Events
//! (the contract the dashboard and `foxctl` share, docs/api.md).
//!
//! The stream polls the job row (cheap: one primary-key read) instead of
//! listening for notifications: progress is committed batch by batch by
//! another process, and a poll needs nothing besides the pool. It holds no
//! connection between polls.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::job_access::visible_job;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use bytes::Bytes;
use foxflow_domain::JobStatus;
use foxflow_storage::jobs::{self, ImportJob, JobView};
use foxflow_storage::pool;
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
/// clients do not take a quiet import for a dead connection.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(15);

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
        (status = 503, description = "Database unavailable", body = crate::views::ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/imports/{id}/events")]
pub async fn events(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    // Access is decided once, before the stream starts: a 404 is a JSON error, not a stream.
    let job = {
        let mut conn = pool::conn(&state.pool).await?;
        visible_job(&mut conn, &caller, &path).await?
    };
    let stream = EventStream {
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
    state: std::sync::Arc<AppState>,
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
