//! The dead-letter recorder: every message that leaves a work queue for the
//! parking queue — parked by a handler, dead-lettered by the broker at its
//! delivery limit, moved by an operator — is also routed to a recorder queue
//! beside the parking queue (`<ns>.<queue>.dead.recorder`, bound to the same
//! dead exchange and key). This loop reads that copy and has the job or task
//! it names recorded as failed, with the reason, before acknowledging it.
//!
//! So the rule "a job whose message left its work queue ends" does not depend
//! on the process that parked it having reached the database at that moment
//! (it may be down), nor on a handler running at all (the broker
//! dead-letters a message whose workers all died holding it). The parked
//! copy stays in the parking queue for `foxctl dlq`; only the recorder's
//! copy is consumed.

use crate::{Backoff, Topology, broker, headers};
use foxflow_domain::messages::{Message, QueueKind};
use foxflow_domain::{Text, text};
use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where the recorder writes what it read.
pub trait DeadLetterSink: Send + Sync + 'static {
    /// Marks what `message` names as failed for `reason`; idempotent (a
    /// record can be redelivered). `Err` means "not now" (the database is
    /// unreachable): the copy is kept and offered again.
    fn record(&self, message: Message, reason: Text) -> BoxFuture<'static, Result<(), String>>;
}

/// Why the broker or a consumer sent a message to the parking queue, in
/// words: Foxflow's own `x-reason` when it parked it, else the broker's
/// `x-death` record.
pub fn reason_of(headers: Option<&FieldTable>) -> Text {
    if let Some(reason) = headers::get_str(headers, headers::REASON) {
        let fr = headers::get_str(headers, headers::REASON_FR).unwrap_or_else(|| reason.clone());
        return Text::new(fr, reason);
    }
    let death = headers
        .and_then(|h| h.inner().get("x-death"))
        .and_then(|v| match v {
            AMQPValue::FieldArray(a) => a.as_slice().first().cloned(),
            _ => None,
        })
        .and_then(|v| match v {
            AMQPValue::FieldTable(t) => Some(t),
            _ => None,
        });
    let Some(death) = death else {
        return Text::new(
            "mis de côté sans raison enregistrée (déplacé à la main dans la file de mise à l’écart ?)",
            "dead-lettered with no reason recorded (moved to the parking queue by hand?)",
        );
    };
    let why = headers::get_str(Some(&death), "reason").unwrap_or_default();
    let queue = headers::get_str(Some(&death), "queue").unwrap_or_else(|| "its queue".into());
    match why.as_str() {
        "delivery_limit" => text!(
            "delivery_limit : le broker a abandonné ce message après {limit} livraisons depuis {queue} \
             jamais acquittées — à chaque fois, le worker qui le tenait a été tué, a manqué de mémoire \
             ou a perdu sa connexion ; relancez-le une fois la cause corrigée (docs/reliability.md)",
            "delivery_limit: the broker gave up on this message after {limit} deliveries from {queue} \
             that were never acknowledged — each time, the worker holding it was killed, ran out \
             of memory or lost its connection; retry it once the cause is fixed (docs/reliability.md)",
            limit = crate::topology::DELIVERY_LIMIT
        ),
        "rejected" => text!(
            "rejected : un consommateur de {queue} a refusé ce message",
            "rejected: a consumer of {queue} refused this message"
        ),
        "" => Text::new(
            "mis de côté par le broker sans raison enregistrée",
            "dead-lettered by the broker with no reason recorded",
        ),
        other => text!(
            "{other} : le broker a mis ce message de côté depuis {queue}",
            "{other}: the broker dead-lettered this message from {queue}"
        ),
    }
}

/// Runs until `shutdown` turns true, reconnecting with capped backoff.
pub async fn run_dead_letter_recorder(
    amqp_url: String,
    topology: Topology,
    name: String,
    sink: Arc<dyn DeadLetterSink>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::default();
    while !*shutdown.borrow() {
        match record_session(&amqp_url, &topology, &name, &sink, &mut backoff, shutdown.clone()).await {
            Ok(()) => return,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "dead-letter recorder lost the broker; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

async fn record_session(
    amqp_url: &str,
    topology: &Topology,
    name: &str,
    sink: &Arc<dyn DeadLetterSink>,
    backoff: &mut Backoff,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), lapin::Error> {
    let connection = broker::connect(amqp_url, &format!("{name}-dead-letters")).await?;
    let (channel, consumers) = broker::bounded("the recorder's channel", async {
        let channel = connection.create_channel().await?;
        topology.declare(&channel).await?;
        // One record at a time: while the database is away, one copy waits
        // in hand and the rest wait in the queue.
        channel.basic_qos(1, BasicQosOptions::default()).await?;
        let mut consumers = Vec::new();
        for q in QueueKind::ALL {
            let queue = topology.recorder_queue(q);
            let tag = format!("{name}-recorder-{}", q.as_str());
            consumers.push(
                channel
                    .basic_consume(
                        ShortString::from(queue),
                        ShortString::from(tag),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await?,
            );
        }
        Ok((channel, consumers))
    })
    .await?;
    backoff.reset();
    let mut deliveries = futures::stream::select_all(consumers);
    let mut watchdog = tokio::time::interval(Duration::from_secs(1));
    let result = loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => break Ok(()),
            _ = watchdog.tick() => {
                if !(connection.status().connected() && channel.status().connected()) {
                    break Err(lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(
                        lapin::ConnectionState::Error,
                    )));
                }
            }
            next = deliveries.next() => match next {
                Some(Ok(delivery)) => {
                    if !record_one(sink, &delivery, shutdown.clone()).await {
                        break Ok(());
                    }
                }
                Some(Err(e)) => break Err(e),
                None => break Err(lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(
                    lapin::ConnectionState::Closed,
                ))),
            },
        }
    };
    let _ = broker::bounded(
        "closing the channel",
        channel.close(200, ShortString::from("shutdown")),
    )
    .await;
    let _ = broker::bounded(
        "closing the connection",
        connection.close(200, ShortString::from("shutdown")),
    )
    .await;
    result
}

/// Records one copy, trying again with backoff for as long as the sink says
/// "not now", then acknowledges it. Returns false when shutdown came first
/// (the copy is left unacknowledged and returns to the queue on close).
async fn record_one(
    sink: &Arc<dyn DeadLetterSink>,
    delivery: &Delivery,
    mut shutdown: watch::Receiver<bool>,
) -> bool {
    let headers = delivery.properties.headers().as_ref();
    match Message::from_json(&delivery.data) {
        Ok(message) => {
            let reason = reason_of(headers);
            let mut backoff = Backoff::default();
            loop {
                match sink.record(message.clone(), reason.clone()).await {
                    Ok(()) => break,
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot record a dead-lettered message yet");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = shutdown.changed() => return false,
                        }
                    }
                }
            }
        }
        // Names nothing to record; the parked copy keeps it for an operator.
        Err(e) => tracing::warn!(error = %e, "dead-lettered message is not a Foxflow message"),
    }
    // A lost ack means a redelivery, and recording is idempotent.
    let ack = delivery.acker.ack(BasicAckOptions::default());
    if let Err(e) = broker::bounded("acknowledging a record", ack).await {
        tracing::warn!(error = %e, "dead-letter record not acknowledged; it will be recorded again");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{FieldArray, LongString};

    fn death(reason: &str) -> FieldTable {
        let mut d = FieldTable::default();
        headers::set_str(&mut d, "reason", reason);
        headers::set_str(&mut d, "queue", "fox.imports");
        let mut h = FieldTable::default();
        h.insert(
            ShortString::from("x-death"),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(d)])),
        );
        h
    }

    #[test]
    fn foxflow_reason_first_then_the_brokers() {
        let mut h = death("delivery_limit");
        assert!(
            reason_of(Some(&h))
                .en
                .starts_with("delivery_limit: the broker gave up")
        );
        assert!(
            reason_of(Some(&h))
                .fr
                .starts_with("delivery_limit : le broker a abandonné")
        );
        assert!(reason_of(Some(&h)).en.contains("fox.imports"));
        h.insert(
            ShortString::from(headers::REASON),
            AMQPValue::LongString(LongString::from(b"gave up after 3 retries".to_vec())),
        );
        assert_eq!(reason_of(Some(&h)).en, "gave up after 3 retries");
        assert_eq!(reason_of(Some(&h)).fr, "gave up after 3 retries");
        h.insert(
            ShortString::from(headers::REASON_FR),
            AMQPValue::LongString(LongString::from(
                "abandonné après 3 nouvelles tentatives".as_bytes().to_vec(),
            )),
        );
        assert_eq!(reason_of(Some(&h)).fr, "abandonné après 3 nouvelles tentatives");
        assert!(reason_of(Some(&death("rejected"))).en.starts_with("rejected:"));
        assert!(reason_of(None).en.contains("no reason recorded"));
    }
}
