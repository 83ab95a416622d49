//! Queue depth for `/metrics` without the management plugin: a passive
//! `queue.declare` answers with the queue's ready-message and consumer
//! counts. Unacknowledged messages are not in that answer; each consumer
//! loop counts the deliveries it holds instead
//! (`foxflow_queue_messages_unacked`, summed across processes).

use crate::{Backoff, Topology, broker};
use foxflow_domain::messages::QueueKind;
use foxflow_telemetry::metrics;
use lapin::options::QueueDeclareOptions;
use lapin::types::{FieldTable, ShortString};
use std::time::Duration;
use tokio::sync::watch;

/// How soon a sample is retried while some queue does not exist yet.
const MISSING_RETRY: Duration = Duration::from_secs(1);

/// How often services sample queue depth: a Prometheus scrape interval.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(15);

/// Samples every queue of the topology each `every` until shutdown,
/// reconnecting with backoff when the broker goes away. A queue that does
/// not exist (deleted by hand) is skipped; its channel is reopened for the
/// next one.
pub async fn run_depth_sampler(
    amqp_url: String,
    topology: Topology,
    name: String,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    while !*shutdown.borrow() {
        let wait = match sample_session(&amqp_url, &topology, &name, every, shutdown.clone()).await {
            Ok(()) => return,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::debug!(error = %e, "queue depth sampler cannot reach the broker");
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn sample_session(
    amqp_url: &str,
    topology: &Topology,
    name: &str,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), lapin::Error> {
    let connection = broker::connect(amqp_url, &format!("{name}-metrics")).await?;
    // Like every process, declare the topology first (idempotent, identical
    // arguments): the queues then exist and the passive declares below do
    // not fail on a fresh broker.
    let mut channel = broker::bounded("the sampler's channel", async {
        let channel = connection.create_channel().await?;
        topology.declare(&channel).await?;
        Ok(channel)
    })
    .await?;
    let queues = topology.all_queues();
    // Every process reports the work queues' unacked count, at 0 when it
    // consumes nothing, so each `/metrics` has the whole family.
    for q in QueueKind::ALL {
        metrics::queue_unacked().with_label_values(&[topology.work_queue(q).as_str()]);
    }
    loop {
        let mut missing = false;
        for queue in &queues {
            if !channel.status().connected() {
                channel = broker::bounded("the sampler's channel", connection.create_channel()).await?;
            }
            let declare = channel.queue_declare(
                ShortString::from(queue.as_str()),
                QueueDeclareOptions::default().passive(),
                FieldTable::default(),
            );
            match broker::bounded("a queue's depth", declare).await {
                Ok(q) => {
                    metrics::queue_ready()
                        .with_label_values(&[queue.as_str()])
                        .set(i64::from(q.message_count()));
                    metrics::queue_consumers()
                        .with_label_values(&[queue.as_str()])
                        .set(i64::from(q.consumer_count()));
                }
                // 404: not declared yet; the channel is closed and reopened above.
                Err(e) if connection.status().connected() => {
                    tracing::debug!(queue = %queue, error = %e, "cannot sample queue");
                    missing = true;
                }
                Err(e) => return Err(e),
            }
        }
        // At start-up the queues may not be declared yet: look again soon.
        let next = if missing { every.min(MISSING_RETRY) } else { every };
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = shutdown.changed() => {
                let _ = broker::bounded("closing the connection", connection.close(200, ShortString::from("shutdown"))).await;
                return Ok(());
            }
        }
    }
}
