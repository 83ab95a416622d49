//! The outbox relay: publishes what transactions wrote to `outbox`, marking
//! each row sent only after the broker confirmed it. Runs in every process
//! that writes outbox rows; `SKIP LOCKED` lets several run side by side.

use crate::{Backoff, Envelope, Publisher, headers};
use diesel_async::AsyncConnection;
use foxflow_storage::{DbPool, StorageError, outbox};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

const BATCH: i64 = 100;
/// Rows written by another replica are found at least this often.
const POLL: Duration = Duration::from_millis(250);

/// Runs until `shutdown` turns true. `wake` is notified by code that just
/// committed an outbox row, so publishing starts at once instead of at the
/// next poll.
pub async fn run_outbox_relay(
    pool: DbPool,
    publisher: Publisher,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match relay_once(&pool, &publisher).await {
            Ok(n) if n as i64 == BATCH => {
                backoff.reset();
                continue;
            }
            Ok(_) => {
                backoff.reset();
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "outbox relay cannot publish; messages stay queued in the outbox");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Messaging(#[from] crate::MessagingError),
}

impl From<diesel::result::Error> for RelayError {
    fn from(e: diesel::result::Error) -> Self {
        RelayError::Storage(e.into())
    }
}

/// Publishes one batch; returns how many rows were sent.
async fn relay_once(pool: &DbPool, publisher: &Publisher) -> Result<usize, RelayError> {
    let mut conn = foxflow_storage::pool::conn(pool).await?;
    let publisher = publisher.clone();
    conn.transaction::<_, RelayError, _>(async move |conn| {
        let rows = outbox::lock_unsent(conn, BATCH).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // Make sure the broker is there before holding row locks any longer.
        publisher.ensure_connected().await?;
        let exchange = publisher.topology().jobs_exchange();
        let mut envs = Vec::with_capacity(rows.len());
        // A producer span per message in its request's trace, open while the
        // batch is published; the consumer continues from it, so the trace
        // shows how long the message waited here.
        let mut spans = Vec::with_capacity(rows.len());
        for row in &rows {
            let body = serde_json::to_vec(&row.payload).expect("json values serialise");
            let mut env = Envelope::new(exchange.clone(), &row.routing_key, row.message_id, body)
                .with_i64_header(headers::ATTEMPT, 0);
            if let Some(tp) = &row.traceparent {
                let span = tracing::info_span!(
                    "publish",
                    otel.name = %format!("{exchange} publish"),
                    otel.kind = "producer",
                    messaging.system = "rabbitmq",
                    messaging.destination.name = %exchange,
                    messaging.rabbitmq.destination.routing_key = %row.routing_key,
                    messaging.message.id = %row.message_id,
                );
                foxflow_telemetry::set_parent_from_traceparent(&span, Some(tp));
                let tp = foxflow_telemetry::propagation::traceparent_of(&span).unwrap_or_else(|| tp.clone());
                env = env.with_str_header(headers::TRACEPARENT, &tp);
                spans.push(span);
            }
            envs.push(env);
        }
        // Pipelined: one round trip of confirms for the whole batch.
        let (confirmed, error) = publisher.publish_all(&envs).await;
        drop(spans);
        match error {
            Some(e) if confirmed == 0 => return Err(e.into()),
            Some(e) => {
                tracing::warn!(error = %e, confirmed, "outbox relay stopped mid-batch; the rest stays queued")
            }
            None => {}
        }
        let sent: Vec<_> = rows[..confirmed].iter().map(|row| row.id).collect();
        outbox::mark_sent(conn, &sent).await?;
        Ok(sent.len())
    })
    .await
}
