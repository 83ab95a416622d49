//! Triage of the parking queues (`foxctl dlq`): look without consuming,
//! hand messages back, or drop them.

use crate::{Envelope, MessagingError, Publisher, Topology, broker, headers};
use foxflow_domain::messages::QueueKind;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueuePurgeOptions};
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

/// Reads up to `limit` parked messages and leaves them all in place (they
/// are returned to the queue when the channel closes unacknowledged).
pub async fn list(
    url: &str,
    topology: &Topology,
    queue: QueueKind,
    limit: usize,
) -> Result<Vec<Parked>, MessagingError> {
    let conn = broker::connect(url, "foxctl-dlq").await?;
    let ch = conn.create_channel().await?;
    let name = ShortString::from(topology.dead_queue(queue));
    let mut out = Vec::new();
    while out.len() < limit {
        match ch
            .basic_get(name.clone(), BasicGetOptions { no_ack: false })
            .await?
        {
            Some(m) => out.push(parked(&m)),
            None => break,
        }
    }
    let _ = ch.close(200, ShortString::from("listed")).await;
    let _ = conn.close(200, ShortString::from("listed")).await;
    Ok(out)
}

/// Takes up to `limit` parked messages one by one; `decide` returns the
/// envelope to publish instead (or `None` to drop it after the decision was
/// recorded elsewhere). Each is acknowledged only after its replacement is
/// confirmed. Returns how many were handled.
pub async fn drain<F, Fut>(
    url: &str,
    topology: &Topology,
    queue: QueueKind,
    limit: usize,
    mut decide: F,
) -> Result<usize, MessagingError>
where
    F: FnMut(Parked) -> Fut,
    Fut: std::future::Future<Output = Option<Vec<u8>>>,
{
    let publisher = Publisher::new(url, "foxctl-dlq", topology.clone());
    let conn = broker::connect(url, "foxctl-dlq").await?;
    let ch = conn.create_channel().await?;
    let name = ShortString::from(topology.dead_queue(queue));
    let mut n = 0;
    while n < limit {
        let Some(m) = ch
            .basic_get(name.clone(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        if let Some(body) = decide(parked(&m)).await {
            let env = Envelope::new(topology.jobs_exchange(), queue.as_str(), Uuid::now_v7(), body)
                .with_i64_header(headers::ATTEMPT, 0);
            publisher.publish(&env).await?;
        }
        m.delivery.acker.ack(BasicAckOptions::default()).await?;
        n += 1;
    }
    let _ = ch.close(200, ShortString::from("done")).await;
    let _ = conn.close(200, ShortString::from("done")).await;
    Ok(n)
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
