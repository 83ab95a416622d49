//! Triage of the parking queues (`foxctl dlq`): look without consuming,
//! hand messages back, or drop them.

use crate::{Envelope, MessagingError, Publisher, Topology, broker, headers};
use foxflow_domain::messages::QueueKind;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions, QueuePurgeOptions};
use lapin::types::FieldTable;
use lapin::types::ShortString;
use uuid::Uuid;

/// One parked message as an operator sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Parked {
    pub message_id: Option<String>,
    pub reason: Option<String>,
    pub attempt: i64,
    pub body: String,
}

fn parked(d: &lapin::message::BasicGetMessage) -> Parked {
    let h = d.delivery.properties.headers().as_ref();
    Parked {
        message_id: d
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str().to_owned()),
        reason: headers::get_str(h, headers::REASON),
        attempt: headers::get_i64(h, headers::ATTEMPT).unwrap_or(0),
        body: String::from_utf8_lossy(&d.delivery.data).into_owned(),
    }
}

/// Shows up to `limit` parked messages without spending a delivery attempt
/// of theirs: each is read, parked again as a fresh copy at the back of the
/// parking queue (confirmed), then acknowledged. Reading and returning
/// (`basic.get` then a requeue) would count as a delivery on RabbitMQ 4.0+
/// quorum queues, where twenty of them drop the message. A second listing
/// shows the next ones; after a whole turn, the first again.
pub async fn list(
    url: &str,
    topology: &Topology,
    queue: QueueKind,
    limit: usize,
) -> Result<Vec<Parked>, MessagingError> {
    let publisher = Publisher::new(url, "foxctl-dlq", topology.clone());
    let conn = broker::connect(url, "foxctl-dlq").await?;
    let ch = conn.create_channel().await?;
    let name = ShortString::from(topology.dead_queue(queue));
    let mut out = Vec::new();
    for _ in 0..limit.min(parked_count(&ch, &name).await?) {
        let Some(m) = ch
            .basic_get(name.clone(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        park_again(&publisher, topology, queue, &m).await?;
        m.delivery.acker.ack(BasicAckOptions::default()).await?;
        out.push(parked(&m));
    }
    let _ = ch.close(200, ShortString::from("listed")).await;
    let _ = conn.close(200, ShortString::from("listed")).await;
    Ok(out)
}

/// How many messages the parking queue holds now.
async fn parked_count(ch: &lapin::Channel, name: &ShortString) -> Result<usize, MessagingError> {
    Ok(ch
        .queue_declare(
            name.clone(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?
        .message_count() as usize)
}

/// Publishes a copy of a parked message, headers and reason included, to the
/// back of its parking queue only: through the default exchange, so the
/// dead-letter recorder does not see it a second time.
async fn park_again(
    publisher: &Publisher,
    topology: &Topology,
    queue: QueueKind,
    m: &lapin::message::BasicGetMessage,
) -> Result<(), MessagingError> {
    let env = Envelope::copy_of(&m.delivery, String::new(), &topology.dead_queue(queue));
    publisher.publish(&env).await
}

/// What `drain` does with one parked message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Publish this body to the work queue (a fresh first attempt).
    Republish(Vec<u8>),
    /// Done with elsewhere (the job was reset and queued again through the
    /// outbox, or it names nothing): drop the parked copy.
    Handled,
    /// Not replayed: it stays parked, with its headers and reason.
    Keep,
}

/// Takes up to `limit` parked messages one by one, at most the ones parked
/// when it started, and does what `decide` says. Each is acknowledged only
/// after whatever replaces it is confirmed; a kept message is parked again
/// as a copy (at the end of the queue) before its original is acknowledged,
/// so a replay never removes a message it did not replay. Returns how many
/// were taken out of the parking queue (replayed or handled).
pub async fn drain<F, Fut>(
    url: &str,
    topology: &Topology,
    queue: QueueKind,
    limit: usize,
    mut decide: F,
) -> Result<usize, MessagingError>
where
    F: FnMut(Parked) -> Fut,
    Fut: std::future::Future<Output = Decision>,
{
    let publisher = Publisher::new(url, "foxctl-dlq", topology.clone());
    let conn = broker::connect(url, "foxctl-dlq").await?;
    let ch = conn.create_channel().await?;
    let name = ShortString::from(topology.dead_queue(queue));
    // Kept messages go back to the end of the queue: counting what was there
    // at the start keeps the loop from meeting them again.
    let parked_now = parked_count(&ch, &name).await?;
    let mut taken = 0;
    for _ in 0..limit.min(parked_now) {
        let Some(m) = ch
            .basic_get(name.clone(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        match decide(parked(&m)).await {
            Decision::Republish(body) => {
                let env = Envelope::new(topology.jobs_exchange(), queue.as_str(), Uuid::now_v7(), body)
                    .with_i64_header(headers::ATTEMPT, 0);
                publisher.publish(&env).await?;
                taken += 1;
            }
            Decision::Handled => taken += 1,
            Decision::Keep => park_again(&publisher, topology, queue, &m).await?,
        }
        m.delivery.acker.ack(BasicAckOptions::default()).await?;
    }
    let _ = ch.close(200, ShortString::from("done")).await;
    let _ = conn.close(200, ShortString::from("done")).await;
    Ok(taken)
}

/// Drops every parked message of a queue; returns how many.
pub async fn purge(url: &str, topology: &Topology, queue: QueueKind) -> Result<u32, MessagingError> {
    let conn = broker::connect(url, "foxctl-dlq").await?;
    let ch = conn.create_channel().await?;
    let n = ch
        .queue_purge(
            ShortString::from(topology.dead_queue(queue)),
            QueuePurgeOptions::default(),
        )
        .await?;
    let _ = conn.close(200, ShortString::from("purged")).await;
    Ok(n)
}
