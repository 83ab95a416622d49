//! The one consumer loop both workers run.
//!
//! Retry policy, in one sentence: a handler's transient failure (or panic)
//! goes to the queue's wait queue with its attempt number incremented and
//! comes back after the retry delay, at most `max_retries` times, after which
//! the message is parked in the dead queue with the reason (and the
//! dead-letter recorder ends its job `error` with it); a message that cannot
//! be parsed, or names nothing, is parked at once. Every republish is
//! confirmed before the original is acknowledged, so no message is ever
//! dropped.

use crate::{Backoff, Envelope, LoopBeat, Publisher, Topology, broker, headers};
use foxflow_domain::messages::{Message, QueueKind};
use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{FieldTable, ShortString};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

/// What a handler decided about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerOutcome {
    /// The effect is committed (or was already): acknowledge.
    Done,
    /// A transient failure: try again after the retry delay.
    Retry(String),
    /// A permanent failure: park it now.
    Park(String),
    /// Not started or checkpointed for shutdown: give it back to the queue
    /// as it is, without counting an attempt.
    Requeue,
    /// Someone else is running it right now (a duplicate delivery): come
    /// back after the retry delay, without counting an attempt, so the copy
    /// holds no prefetch slot while the other run lasts.
    Defer,
}

/// One parsed message with what the loop knows about it.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub message: Message,
    /// 0 for the first delivery, n after n retries.
    pub attempt: i64,
    pub redelivered: bool,
    pub traceparent: Option<String>,
}

/// Decides when a message may start: the cluster-wide rate limit of its
/// queue. `acquire` resolves when the caller may start one job; while it
/// waits, the delivery stays unacknowledged (at most `prefetch` of them).
pub trait StartGate: Send + Sync + 'static {
    fn acquire(&self) -> BoxFuture<'static, ()>;
}

pub trait Handler: Send + Sync + 'static {
    /// Settles a delivery that needs no work before it waits for the rate
    /// gate: `Done` for a job already final, `Defer` for one a live claim is
    /// running. `None` (the default) goes on to the gate and `handle`. A
    /// cheap read; `handle` checks again when it claims.
    fn precheck(&self, _delivered: &Delivered) -> BoxFuture<'static, Option<HandlerOutcome>> {
        Box::pin(async { None })
    }

    /// Does the work. Must be idempotent: a message can arrive twice.
    fn handle(
        &self,
        delivered: Delivered,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, HandlerOutcome>;
}

#[derive(Clone)]
pub struct ConsumerSettings {
    pub amqp_url: String,
    pub topology: Topology,
    pub queue: QueueKind,
    pub prefetch: u16,
    pub max_retries: u32,
    /// Shown in the management console.
    pub name: String,
}

// By hand: `amqp_url` carries the broker password and must never be printed.
impl std::fmt::Debug for ConsumerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerSettings")
            .field("queue", &self.queue)
            .field("prefetch", &self.prefetch)
            .field("max_retries", &self.max_retries)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Consumes until `shutdown` turns true, reconnecting with capped backoff
/// whenever the broker goes away. `ready` says whether a consumer is live.
pub async fn run_consumer(
    settings: ConsumerSettings,
    handler: Arc<dyn Handler>,
    gate: Option<Arc<dyn StartGate>>,
    vitals: Vitals,
    mut shutdown: watch::Receiver<bool>,
) {
    let Vitals { ready, beat } = vitals;
    let publisher = Publisher::new(&settings.amqp_url, &settings.name, settings.topology.clone());
    let mut backoff = Backoff::default();
    while !*shutdown.borrow() {
        match consume_session(
            &settings,
            &handler,
            &gate,
            &publisher,
            (&ready, &beat),
            &mut backoff,
            shutdown.clone(),
        )
        .await
        {
            Ok(()) => break,
            Err(e) => {
                ready.store(false, Ordering::Relaxed);
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, queue = settings.queue.as_str(), "consumer lost the broker; reconnecting");
                // Waiting for the broker is not being stuck: beat meanwhile.
                let until = tokio::time::Instant::now() + delay;
                while tokio::time::Instant::now() < until && !*shutdown.borrow() {
                    beat.beat();
                    tokio::select! {
                        _ = tokio::time::sleep_until(until.min(tokio::time::Instant::now() + Duration::from_secs(1))) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
    }
    ready.store(false, Ordering::Relaxed);
}

/// What a consumer loop tells the probes: whether it is connected
/// (`/readyz`) and that it still turns (`/healthz`).
#[derive(Debug, Clone, Default)]
pub struct Vitals {
    pub ready: Arc<AtomicBool>,
    pub beat: LoopBeat,
}

/// One connection's worth of consuming. Returns Ok on shutdown, Err when
/// the connection failed.
async fn consume_session(
    settings: &ConsumerSettings,
    handler: &Arc<dyn Handler>,
    gate: &Option<Arc<dyn StartGate>>,
    publisher: &Publisher,
    (ready, beat): (&AtomicBool, &LoopBeat),
    backoff: &mut Backoff,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), lapin::Error> {
    beat.beat();
    let connection = broker::connect(&settings.amqp_url, &settings.name).await?;
    let (channel, mut consumer) = broker::bounded("the consumer's channel", async {
        let channel = connection.create_channel().await?;
        settings.topology.declare(&channel).await?;
        channel
            .basic_qos(settings.prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!("{}-{}", settings.name, Uuid::new_v4().simple());
        let consumer = channel
            .basic_consume(
                ShortString::from(settings.topology.work_queue(settings.queue)),
                ShortString::from(tag.as_str()),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok((channel, consumer))
    })
    .await?;
    ready.store(true, Ordering::Relaxed);
    backoff.reset();
    tracing::info!(
        queue = settings.queue.as_str(),
        prefetch = settings.prefetch,
        "consuming"
    );

    let mut in_flight: JoinSet<()> = JoinSet::new();
    // The consumer stream does not always end when the connection dies (an
    // error seen by another channel's I/O, a heartbeat miss); checking the
    // status too means a dead session is always replaced, never kept.
    let mut watchdog = tokio::time::interval(Duration::from_secs(1));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        // Bounded: never more deliveries in hand than the prefetch.
        let can_take = in_flight.len() < usize::from(settings.prefetch);
        tokio::select! {
            biased;
            _ = shutdown.changed() => break Ok(()),
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = watchdog.tick() => {
                beat.beat();
                if !(connection.status().connected() && channel.status().connected()) {
                    break Err(lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(
                        lapin::ConnectionState::Error,
                    )));
                }
            }
            next = consumer.next(), if can_take => match next {
                Some(Ok(delivery)) => {
                    let task = process(settings.clone(), handler.clone(), gate.clone(), publisher.clone(), delivery, shutdown.clone());
                    in_flight.spawn(task);
                }
                Some(Err(e)) => break Err(e),
                None => break Err(lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(
                    lapin::ConnectionState::Closed,
                ))),
            },
        }
    };
    ready.store(false, Ordering::Relaxed);
    // Let the jobs in hand finish or checkpoint (they see the shutdown too);
    // after a lost connection that can take as long as a job, and the loop
    // is waiting, not stuck.
    while !in_flight.is_empty() {
        tokio::select! {
            _ = in_flight.join_next() => {}
            _ = watchdog.tick() => beat.beat(),
        }
    }
    // Deliveries prefetched but not started return to the queue on close
    // (or when the broker sees the socket go, if the close is not answered).
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

/// How long an ack or nack may take before the delivery is left to the
/// broker's own redelivery.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Counts a delivery in `foxflow_queue_messages_unacked` for as long as this
/// process holds it.
struct Held(prometheus::IntGauge);

impl Held {
    fn new(queue: &str) -> Held {
        let gauge = foxflow_telemetry::metrics::queue_unacked().with_label_values(&[queue]);
        gauge.inc();
        Held(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One delivery, in a consumer span that continues the publisher's trace
/// (the `traceparent` header), so the handler's spans join the upload's.
async fn process(
    settings: ConsumerSettings,
    handler: Arc<dyn Handler>,
    gate: Option<Arc<dyn StartGate>>,
    publisher: Publisher,
    delivery: Delivery,
    shutdown: watch::Receiver<bool>,
) {
    let queue = settings.topology.work_queue(settings.queue);
    let _held = Held::new(&queue);
    let props_headers = delivery.properties.headers().as_ref();
    let traceparent = headers::get_str(props_headers, headers::TRACEPARENT);
    let span = tracing::info_span!(
        "consume",
        otel.name = %format!("{queue} process"),
        otel.kind = "consumer",
        messaging.system = "rabbitmq",
        messaging.destination.name = %queue,
        messaging.message.id = delivery.properties.message_id().as_ref().map(|m| m.as_str()).unwrap_or_default(),
        trace_id = tracing::field::Empty,
    );
    foxflow_telemetry::set_parent_from_traceparent(&span, traceparent.as_deref());
    if let Some(id) = foxflow_telemetry::trace_id_of(&span) {
        span.record("trace_id", id);
    }
    process_delivery(
        settings,
        handler,
        gate,
        publisher,
        delivery,
        traceparent,
        shutdown,
    )
    .instrument(span)
    .await
}

async fn process_delivery(
    settings: ConsumerSettings,
    handler: Arc<dyn Handler>,
    gate: Option<Arc<dyn StartGate>>,
    publisher: Publisher,
    delivery: Delivery,
    traceparent: Option<String>,
    shutdown: watch::Receiver<bool>,
) {
    let props_headers = delivery.properties.headers().as_ref();
    let attempt = headers::get_i64(props_headers, headers::ATTEMPT).unwrap_or(0);
    let message = match Message::from_json(&delivery.data) {
        Ok(m) if m.routing_key() == settings.queue.as_str() => m,
        Ok(m) => {
            let reason = format!(
                "a `{}` message does not belong on the {} queue",
                m.routing_key(),
                settings.queue.as_str()
            );
            park(&settings, &publisher, &delivery, attempt, &reason, None).await;
            return;
        }
        Err(e) => {
            park(&settings, &publisher, &delivery, attempt, &e.to_string(), None).await;
            return;
        }
    };
    let delivered = Delivered {
        message,
        attempt,
        redelivered: delivery.redelivered,
        traceparent,
    };
    // A copy of a job that is final or running elsewhere is settled before
    // the rate gate: it starts nothing, so it must not spend the start
    // budget (a deferred copy comes back every retry delay while the other
    // run lasts).
    let precheck = handler.precheck(&delivered).await;
    let outcome = match precheck {
        Some(outcome) => outcome,
        None => {
            if let Some(gate) = gate {
                let mut rx = shutdown.clone();
                tokio::select! {
                    _ = gate.acquire() => {}
                    // Not started: back to the queue, no attempt counted.
                    _ = async move { let _ = rx.wait_for(|s| *s).await; } => {
                        hand_back(&settings, &publisher, &delivery, attempt).await;
                        return;
                    }
                }
            }
            // Run the handler in its own task so a panic is caught and counted.
            match tokio::spawn(handler.handle(delivered, shutdown).in_current_span()).await {
                Ok(o) => o,
                Err(e) => HandlerOutcome::Retry(format!("the handler panicked: {e}")),
            }
        }
    };
    match outcome {
        HandlerOutcome::Done => {
            count(&settings, "acked");
            ack(&delivery).await
        }
        HandlerOutcome::Requeue => {
            count(&settings, "requeued");
            hand_back(&settings, &publisher, &delivery, attempt).await;
        }
        HandlerOutcome::Defer => {
            let env = republish(&delivery, settings.topology.retry_exchange(), &settings, attempt);
            if forward(&publisher, &delivery, &env, "deferred copy").await {
                count(&settings, "deferred");
            }
        }
        // The job a parked message names is failed by the dead-letter
        // recorder, which reads a copy of everything parked (dead_letters).
        HandlerOutcome::Park(reason) => {
            park(&settings, &publisher, &delivery, attempt, &reason, None).await;
        }
        HandlerOutcome::Retry(reason) if attempt < i64::from(settings.max_retries) => {
            tracing::warn!(%reason, attempt = attempt + 1, max = settings.max_retries, "transient failure; retrying after the delay");
            let env = republish(
                &delivery,
                settings.topology.retry_exchange(),
                &settings,
                attempt + 1,
            )
            .with_str_header(headers::REASON, &reason);
            if forward(&publisher, &delivery, &env, "retry").await {
                count(&settings, "retried");
            }
        }
        HandlerOutcome::Retry(reason) => {
            let max = settings.max_retries;
            let reason_fr = format!("abandonné après {max} nouvelles tentatives : {reason}");
            let reason = format!("gave up after {max} retries: {reason}");
            park(
                &settings,
                &publisher,
                &delivery,
                attempt,
                &reason,
                Some(&reason_fr),
            )
            .await;
        }
    }
}

fn republish(delivery: &Delivery, exchange: String, settings: &ConsumerSettings, attempt: i64) -> Envelope {
    Envelope::copy_of(delivery, exchange, settings.queue.as_str()).with_i64_header(headers::ATTEMPT, attempt)
}

/// Returns a message to its work queue without counting an attempt. A
/// fresh copy is published (confirmed) and the delivery acked, rather than
/// nacked with requeue: RabbitMQ before 4.3 counts every requeue towards the
/// quorum queue's delivery limit, so a task handed back ten times (an
/// upstream 429 that lasts) would be dead-lettered with no failure of its
/// own. The nack stays as the fallback when the copy cannot be published.
async fn hand_back(settings: &ConsumerSettings, publisher: &Publisher, delivery: &Delivery, attempt: i64) {
    let env = republish(delivery, settings.topology.jobs_exchange(), settings, attempt);
    forward(publisher, delivery, &env, "hand-back").await;
}

/// Moves a message to the parking queue with its reason; acks the original
/// only once the parked copy is confirmed. Returns whether it was parked.
async fn park(
    settings: &ConsumerSettings,
    publisher: &Publisher,
    delivery: &Delivery,
    attempt: i64,
    reason: &str,
    reason_fr: Option<&str>,
) -> bool {
    tracing::error!(%reason, queue = settings.queue.as_str(), "parking message");
    let mut env = republish(delivery, settings.topology.dead_exchange(), settings, attempt)
        .with_str_header(headers::REASON, reason);
    if let Some(fr) = reason_fr {
        env = env.with_str_header(headers::REASON_FR, fr);
    }
    let parked = forward(publisher, delivery, &env, "parked copy").await;
    if parked {
        count(settings, "parked");
    }
    parked
}

/// Publishes `env`, a copy of the delivery bound elsewhere, and acks the
/// delivery only once the copy is confirmed; when the copy cannot be
/// published the delivery goes back to its queue instead, so the message is
/// never lost between the two. Returns whether the copy was published.
async fn forward(publisher: &Publisher, delivery: &Delivery, env: &Envelope, what: &str) -> bool {
    match publisher.publish(env).await {
        Ok(()) => {
            ack(delivery).await;
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot publish the {what}; requeueing");
            let nack = delivery.acker.nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            });
            // Bounded like the ack: on a dead connection the broker requeues anyway.
            let _ = tokio::time::timeout(ACK_TIMEOUT, nack).await;
            false
        }
    }
}

fn count(settings: &ConsumerSettings, outcome: &str) {
    foxflow_telemetry::metrics::messages()
        .with_label_values(&[settings.queue.as_str(), outcome])
        .inc();
}

async fn ack(delivery: &Delivery) {
    // A failed ack (the channel died) means the broker redelivers; handlers
    // are idempotent, so that is harmless.
    match tokio::time::timeout(ACK_TIMEOUT, delivery.acker.ack(BasicAckOptions::default())).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "ack failed; the message will be redelivered"),
        // An ack on a connection whose I/O loop has died may never resolve;
        // waiting on it would keep the session from being replaced.
        Err(_) => tracing::warn!("ack timed out; the message will be redelivered"),
    }
}
