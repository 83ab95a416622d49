//! The outbox relay: publishes what transactions wrote to `outbox`, marking
//! each row sent only after the broker confirmed it. Runs in every process
//! that writes outbox rows; `SKIP LOCKED` lets several run side by side.
//!
//! Retry policy: a broker that is down, slow or refusing (no connection, a
//! nack, no confirm within 10 s) leaves the rows queued and is tried again
//! after a backoff of 200 ms doubling to 10 s for as long as it lasts (the
//! fault is the broker's, and the outbox is where messages wait for it);
//! a row the broker returns as unroutable even after the topology was
//! declared again, or one that cannot be made into an AMQP message at all,
//! is set aside at once (`failed_at`, with the reason in `last_error`) for an
//! operator (`foxctl outbox list`, `foxctl outbox retry`), and the rows
//! behind it go on.

use crate::publisher::{Outcome, Return};
use crate::{Backoff, Envelope, Publisher, headers};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use foxflow_storage::outbox::{self, OutboxRow};
use foxflow_storage::{DbPool, StorageError};
use prometheus::{IntGaugeVec, Opts};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

const BATCH: i64 = 100;
/// Rows written by another replica are found at least this often.
const POLL: Duration = Duration::from_millis(250);
/// AMQP carries a routing key as a short string.
const MAX_ROUTING_KEY_BYTES: usize = 255;
/// RabbitMQ's default `max_message_size` (4.x). A larger message closes the
/// channel, which would look like a broker outage and hold up every row
/// behind it; Foxflow's messages are a few hundred bytes.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Runs until `shutdown` turns true. `wake` is notified by code that just
/// committed an outbox row, so publishing starts at once instead of at the
/// next poll.
pub async fn run_outbox_relay(
    pool: DbPool,
    publisher: Publisher,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let gauges = Gauges::new(&publisher.topology().namespace);
    let mut sampled_at: Option<Instant> = None;
    let mut backoff = Backoff::default();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let result = relay_once(&pool, &publisher).await;
        // Every scrape interval, and at once when this relay set a row
        // aside, so the alert does not wait for the next sample.
        let set_aside = matches!(&result, Ok(pass) if pass.set_aside > 0);
        if set_aside || sampled_at.is_none_or(|at| at.elapsed() >= crate::depth::SAMPLE_EVERY) {
            gauges.sample(&pool).await;
            sampled_at = Some(Instant::now());
        }
        match result {
            Ok(pass) if pass.handled() as i64 == BATCH => {
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

/// What one batch came to. Rows neither sent nor set aside stay queued.
#[derive(Debug, Default)]
struct Pass {
    sent: usize,
    set_aside: usize,
}

impl Pass {
    fn handled(&self) -> usize {
        self.sent + self.set_aside
    }
}

/// Publishes one batch: marks the rows the broker confirmed sent, sets aside
/// the ones it refused for good, in one transaction with the row locks.
async fn relay_once(pool: &DbPool, publisher: &Publisher) -> Result<Pass, RelayError> {
    let mut conn = foxflow_storage::pool::conn(pool).await?;
    let publisher = publisher.clone();
    conn.transaction::<_, RelayError, _>(async move |conn| {
        let rows = outbox::lock_unsent(conn, BATCH).await?;
        if rows.is_empty() {
            return Ok(Pass::default());
        }
        // Make sure the broker is there before holding row locks any longer.
        publisher.ensure_connected().await?;
        let exchange = publisher.topology().jobs_exchange();
        let mut pass = Pass::default();
        let mut batch_rows = Vec::with_capacity(rows.len());
        let mut envs = Vec::with_capacity(rows.len());
        // A producer span per message in its request's trace, open while the
        // batch is published; the consumer continues from it, so the trace
        // shows how long the message waited here.
        let mut spans = Vec::with_capacity(rows.len());
        for row in &rows {
            match envelope(&exchange, row) {
                Ok((env, span)) => {
                    batch_rows.push(row);
                    envs.push(env);
                    spans.extend(span);
                }
                Err(reason) => {
                    set_aside(conn, row, &reason).await?;
                    pass.set_aside += 1;
                }
            }
        }
        // Pipelined: one round trip of confirms for the whole batch.
        let mut batch = publisher.publish_batch(&envs).await;
        let returned: Vec<usize> = (0..envs.len())
            .filter(|&i| matches!(batch.outcomes[i], Outcome::Returned(_)))
            .collect();
        if !returned.is_empty() {
            // A queue deleted behind the process's back (a broker reset
            // without its definitions) makes every message unroutable until
            // the topology is declared again: do that, and give the returned
            // ones one more chance before judging them.
            match publisher.declare_topology().await {
                Ok(()) => {
                    let again: Vec<Envelope> = returned.iter().map(|&i| envs[i].clone()).collect();
                    let second = publisher.publish_batch(&again).await;
                    for (&i, outcome) in returned.iter().zip(second.outcomes) {
                        batch.outcomes[i] = outcome;
                    }
                    batch.error = batch.error.or(second.error);
                }
                Err(e) => {
                    // Not judged: they stay queued with the broker's trouble.
                    for &i in &returned {
                        batch.outcomes[i] = Outcome::Unconfirmed;
                    }
                    batch.error = batch.error.or(Some(e));
                }
            }
        }
        drop(spans);
        let mut sent = Vec::with_capacity(envs.len());
        for (row, outcome) in batch_rows.iter().zip(&batch.outcomes) {
            match outcome {
                Outcome::Confirmed => sent.push(row.id),
                Outcome::Returned(r) => {
                    set_aside(conn, row, &unroutable(&exchange, &row.routing_key, r)).await?;
                    pass.set_aside += 1;
                }
                Outcome::Unconfirmed => {}
            }
        }
        outbox::mark_sent(conn, &sent).await?;
        pass.sent = sent.len();
        match batch.error {
            Some(e) if pass.handled() == 0 => return Err(e.into()),
            Some(e) => tracing::warn!(
                error = %e,
                sent = pass.sent,
                set_aside = pass.set_aside,
                "outbox relay stopped mid-batch; the rest stays queued"
            ),
            None => {}
        }
        Ok(pass)
    })
    .await
}

/// The row as a message on `exchange`, with its producer span when the row
/// carries a trace; or why it can never be published.
fn envelope(exchange: &str, row: &OutboxRow) -> Result<(Envelope, Option<tracing::Span>), String> {
    let key_len = row.routing_key.len();
    if key_len > MAX_ROUTING_KEY_BYTES {
        return Err(format!(
            "cannot be published: its routing key is {key_len} bytes long, AMQP allows at most {MAX_ROUTING_KEY_BYTES}"
        ));
    }
    let body = serde_json::to_vec(&row.payload).expect("json values serialise");
    if body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "cannot be published: its payload is {} bytes, above RabbitMQ's default limit of {MAX_BODY_BYTES} (max_message_size)",
            body.len()
        ));
    }
    let mut env = Envelope::new(exchange.to_owned(), &row.routing_key, row.message_id, body)
        .with_i64_header(headers::ATTEMPT, 0);
    let Some(tp) = &row.traceparent else {
        return Ok((env, None));
    };
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
    Ok((env, Some(span)))
}

/// `last_error` of a row the broker returned, in an operator's words.
fn unroutable(exchange: &str, routing_key: &str, r: &Return) -> String {
    format!(
        "unroutable: no queue is bound to routing key `{routing_key}` on exchange `{exchange}` \
         (the broker returned the message: {} {}), even after the topology was declared again",
        r.reply_code, r.reply_text
    )
}

async fn set_aside(conn: &mut AsyncPgConnection, row: &OutboxRow, reason: &str) -> Result<(), StorageError> {
    outbox::set_aside(conn, row.id, reason).await?;
    tracing::warn!(
        outbox_id = row.id,
        routing_key = %row.routing_key,
        message_id = %row.message_id,
        reason,
        "outbox row set aside; the rows behind it go on (`foxctl outbox list`)"
    );
    Ok(())
}

/// `foxflow_outbox_unsent_messages` and `foxflow_outbox_failed_messages`.
/// Both count rows in the database, so every relay on it reports the same
/// numbers (aggregate with `max`). The `namespace` label tells deployments
/// apart when one process serves several (the tests do).
struct Gauges {
    unsent: prometheus::IntGauge,
    failed: prometheus::IntGauge,
}

static FAMILIES: LazyLock<(IntGaugeVec, IntGaugeVec)> = LazyLock::new(|| {
    let gauge = |name: &str, help: &str| {
        let g = IntGaugeVec::new(Opts::new(name, help), &["namespace"])
            .expect("a static, valid metric definition");
        if let Err(e) = foxflow_telemetry::metrics::register(Box::new(g.clone())) {
            tracing::error!(error = %e, metric = name, "cannot register the outbox gauge");
        }
        g
    };
    (
        gauge(
            "foxflow_outbox_unsent_messages",
            "Outbox rows waiting for the relay (not sent, not set aside), sampled from PostgreSQL",
        ),
        gauge(
            "foxflow_outbox_failed_messages",
            "Outbox rows the relay set aside as unpublishable, waiting for an operator (foxctl outbox)",
        ),
    )
});

impl Gauges {
    fn new(namespace: &str) -> Self {
        let (unsent, failed) = &*FAMILIES;
        Gauges {
            unsent: unsent.with_label_values(&[namespace]),
            failed: failed.with_label_values(&[namespace]),
        }
    }

    /// Reads both counts; a database that does not answer keeps the last
    /// values (its own alerts say it is down).
    async fn sample(&self, pool: &DbPool) {
        let counts = async {
            let mut conn = foxflow_storage::pool::conn(pool).await?;
            outbox::counts(&mut conn).await
        }
        .await;
        match counts {
            Ok(c) => {
                self.unsent.set(c.unsent);
                self.failed.set(c.failed);
            }
            Err(e) => tracing::debug!(error = %e, "cannot count the outbox"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn row(routing_key: &str, payload: serde_json::Value) -> OutboxRow {
        OutboxRow {
            id: 1,
            routing_key: routing_key.to_owned(),
            message_id: Uuid::nil(),
            payload,
            traceparent: None,
            created_at: Default::default(),
            attempts: 0,
        }
    }

    #[test]
    fn rows_amqp_cannot_carry_are_refused_with_the_reason() {
        let ok = envelope("ns.jobs", &row("imports", serde_json::json!({"a": 1})));
        assert!(ok.is_ok());
        let long = envelope("ns.jobs", &row(&"k".repeat(256), serde_json::json!({})));
        assert!(long.unwrap_err().contains("256 bytes"));
        let huge = "x".repeat(MAX_BODY_BYTES);
        let big = envelope("ns.jobs", &row("imports", serde_json::json!(huge)));
        assert!(big.unwrap_err().contains("max_message_size"));
    }

    #[test]
    fn an_unroutable_reason_names_the_key_and_the_exchange() {
        let r = Return {
            reply_code: 312,
            reply_text: "NO_ROUTE".to_owned(),
        };
        let reason = unroutable("ns.jobs", "nowhere", &r);
        assert!(reason.starts_with("unroutable: "), "{reason}");
        assert!(
            reason.contains("`nowhere`") && reason.contains("`ns.jobs`") && reason.contains("312 NO_ROUTE")
        );
    }
}
