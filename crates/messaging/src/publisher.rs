//! Publishing with confirms. A publish returns only once the broker has
//! taken responsibility for the message (or fails, and the caller keeps it).

use crate::{MessagingError, Topology, broker, headers};
use lapin::message::BasicReturnMessage;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;
use uuid::Uuid;

const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// One message ready to go.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub exchange: String,
    pub routing_key: String,
    pub message_id: Uuid,
    pub body: Vec<u8>,
    pub headers: FieldTable,
}

impl Envelope {
    pub fn new(exchange: String, routing_key: &str, message_id: Uuid, body: Vec<u8>) -> Self {
        Envelope {
            exchange,
            routing_key: routing_key.to_owned(),
            message_id,
            body,
            headers: FieldTable::default(),
        }
    }

    /// A copy of a received message bound elsewhere: same message id (a new
    /// one if it had none), body and headers.
    pub fn copy_of(delivery: &lapin::message::Delivery, exchange: String, routing_key: &str) -> Self {
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .and_then(|m| Uuid::parse_str(m.as_str()).ok())
            .unwrap_or_else(Uuid::now_v7);
        let mut env = Envelope::new(exchange, routing_key, message_id, delivery.data.clone());
        if let Some(h) = delivery.properties.headers() {
            env.headers = h.clone();
        }
        env
    }

    pub fn with_str_header(mut self, key: &str, value: &str) -> Self {
        headers::set_str(&mut self.headers, key, value);
        self
    }

    pub fn with_i64_header(mut self, key: &str, value: i64) -> Self {
        headers::set_i64(&mut self.headers, key, value);
        self
    }
}

struct Link {
    // Kept so the connection lives as long as its channel.
    _connection: Connection,
    channel: Channel,
}

/// A confirm-mode channel that reconnects on demand. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    url: Arc<String>,
    name: Arc<String>,
    topology: Arc<Topology>,
    app_id: Arc<String>,
    link: Arc<Mutex<Option<Link>>>,
    connected: Arc<AtomicBool>,
}

impl Publisher {
    /// No I/O happens until the first publish (or [`Publisher::ensure_connected`]).
    pub fn new(url: &str, name: &str, topology: Topology) -> Self {
        Publisher {
            url: Arc::new(url.to_owned()),
            name: Arc::new(format!("{name}-publisher")),
            app_id: Arc::new(name.to_owned()),
            topology: Arc::new(topology),
            link: Arc::new(Mutex::new(None)),
            connected: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether the last attempt to talk to the broker worked.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    async fn open(&self) -> Result<Link, MessagingError> {
        let connection = broker::connect(&self.url, &self.name).await?;
        let channel = broker::bounded("the publisher's channel", async {
            let channel = connection.create_channel().await?;
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
            self.topology.declare(&channel).await?;
            Ok(channel)
        })
        .await?;
        Ok(Link {
            _connection: connection,
            channel,
        })
    }

    /// Connects (and declares the topology) if not connected.
    pub async fn ensure_connected(&self) -> Result<(), MessagingError> {
        let mut link = self.link.lock().await;
        let alive = link.as_ref().is_some_and(|l| l.channel.status().connected());
        if !alive {
            *link = None;
            match self.open().await {
                Ok(l) => *link = Some(l),
                Err(e) => {
                    self.connected.store(false, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        self.connected.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Declares the topology again on the publishing channel (idempotent):
    /// a queue deleted behind a running process's back is back before a
    /// message the broker returned for want of it is judged unroutable.
    pub async fn declare_topology(&self) -> Result<(), MessagingError> {
        self.ensure_connected().await?;
        let link = self.link.lock().await;
        let Some(l) = link.as_ref() else {
            return Err(MessagingError::Timeout(Duration::ZERO));
        };
        broker::bounded("declaring the topology", self.topology.declare(&l.channel)).await?;
        Ok(())
    }

    /// Publishes persistently and waits for the broker's confirm. A message
    /// that reaches no queue is an error, not a silent success.
    pub async fn publish(&self, env: &Envelope) -> Result<(), MessagingError> {
        match self.publish_all(std::slice::from_ref(env)).await {
            (1, _) => Ok(()),
            (_, error) => Err(error.unwrap_or(MessagingError::NotConfirmed)),
        }
    }

    /// Publishes `envs` in order on one channel without waiting between
    /// them, then waits for their confirms: one round trip for the lot
    /// instead of one per message. Returns how many envelopes, from the
    /// first, are confirmed, and the error that stopped the rest; those may
    /// have reached the broker all the same, so a caller that publishes them
    /// again can deliver them twice, never zero times. [`Publisher::publish_batch`]
    /// says what became of each one.
    pub async fn publish_all(&self, envs: &[Envelope]) -> (usize, Option<MessagingError>) {
        let batch = self.publish_batch(envs).await;
        let confirmed = batch
            .outcomes
            .iter()
            .take_while(|o| **o == Outcome::Confirmed)
            .count();
        let error = match batch.outcomes.get(confirmed) {
            Some(Outcome::Returned(_)) => Some(MessagingError::Unroutable {
                exchange: envs[confirmed].exchange.clone(),
                routing_key: envs[confirmed].routing_key.clone(),
            }),
            Some(Outcome::Unconfirmed) => Some(batch.error.unwrap_or(MessagingError::NotConfirmed)),
            // Past the end: every one confirmed.
            None | Some(Outcome::Confirmed) => None,
        };
        (confirmed, error)
    }

    /// Publishes `envs` pipelined, like [`Publisher::publish_all`], and
    /// answers for every one of them (the outbox relay's batches: a message
    /// the broker returns must not hold back those behind it). Message ids
    /// must be unique within the batch: they tell which one was returned.
    pub async fn publish_batch(&self, envs: &[Envelope]) -> Batch {
        let mut answers = Answers::new(envs.len());
        if envs.is_empty() {
            return answers.into_batch(envs);
        }
        if let Err(e) = self.ensure_connected().await {
            answers.fail(e);
            return answers.into_batch(envs);
        }
        let channel = {
            let link = self.link.lock().await;
            match link.as_ref() {
                Some(l) => l.channel.clone(),
                None => {
                    answers.fail(MessagingError::Timeout(Duration::ZERO));
                    return answers.into_batch(envs);
                }
            }
        };
        // Bounded as a whole: a write to a socket nobody reads (the peer gone
        // without a FIN) must not hold the relay's outbox locks for ever.
        let timed_out = tokio::time::timeout(CONFIRM_TIMEOUT, self.publish_on(&channel, envs, &mut answers))
            .await
            .is_err();
        if timed_out {
            answers.fail(MessagingError::Timeout(CONFIRM_TIMEOUT));
        }
        if let Some(
            MessagingError::Unavailable(_) | MessagingError::Timeout(_) | MessagingError::NotConfirmed,
        ) = &answers.error
        {
            // Drop the link so the next call reconnects.
            self.connected.store(false, Ordering::Relaxed);
            *self.link.lock().await = None;
        }
        answers.into_batch(envs)
    }

    /// Sends every envelope, then collects all their confirms into
    /// `answers` (kept when the caller's timeout drops this future halfway).
    async fn publish_on(&self, channel: &Channel, envs: &[Envelope], answers: &mut Answers) {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut pending = Vec::with_capacity(envs.len());
        for (i, env) in envs.iter().enumerate() {
            let props = BasicProperties::default()
                .with_content_type(ShortString::from("application/json"))
                .with_delivery_mode(2)
                .with_message_id(ShortString::from(env.message_id.to_string()))
                .with_timestamp(timestamp)
                .with_app_id(ShortString::from(self.app_id.as_str()))
                .with_headers(env.headers.clone());
            let sent = channel
                .basic_publish(
                    ShortString::from(env.exchange.as_str()),
                    ShortString::from(env.routing_key.as_str()),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &env.body,
                    props,
                )
                .await;
            match sent {
                Ok(confirm) => pending.push((i, confirm)),
                Err(e) => {
                    // The ones already sent still get their answer below.
                    answers.fail(e.into());
                    break;
                }
            }
        }
        // Every confirm is awaited, not just up to the first refusal: lapin
        // hands a returned message to whichever confirm it resolves next
        // (with a `multiple` ack, any of the tags it covers), so the return
        // of one message may ride on another's confirm. The message id in
        // the returned properties says whose it is.
        for (i, confirm) in pending {
            match confirm.await {
                Ok(Confirmation::Ack(returned)) => {
                    answers.acked[i] = true;
                    answers.returned(returned);
                }
                Ok(Confirmation::Nack(returned)) => {
                    answers.returned(returned);
                    answers.fail(MessagingError::Nacked);
                }
                // Only an explicit ack is a confirm: a channel that lost confirm
                // mode must not let the outbox mark a row sent.
                Ok(Confirmation::NotRequested) => answers.fail(MessagingError::NotConfirmed),
                Err(e) => answers.fail(e.into()),
            }
        }
    }
}

/// What the broker made of one envelope of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged and routed: the broker is responsible for it now.
    Confirmed,
    /// Acknowledged but handed back (`mandatory`): no queue is bound for its
    /// routing key, so it is in no queue.
    Returned(Return),
    /// No acknowledgement (nacked, timed out, channel lost, not sent): it may
    /// or may not be in a queue; publishing it again is safe.
    Unconfirmed,
}

/// The broker's reason for returning a message (`basic.return`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Return {
    /// 312 `NO_ROUTE` for a routing key no queue is bound to.
    pub reply_code: u16,
    pub reply_text: String,
}

/// What [`Publisher::publish_batch`] found out.
#[derive(Debug)]
pub struct Batch {
    /// One per envelope, in order.
    pub outcomes: Vec<Outcome>,
    /// The first reason an envelope is [`Outcome::Unconfirmed`], if one is.
    pub error: Option<MessagingError>,
}

/// Confirms as they come in.
struct Answers {
    acked: Vec<bool>,
    /// Returned messages by message id.
    returns: HashMap<String, Return>,
    error: Option<MessagingError>,
}

impl Answers {
    fn new(n: usize) -> Self {
        Answers {
            acked: vec![false; n],
            returns: HashMap::new(),
            error: None,
        }
    }

    fn fail(&mut self, e: MessagingError) {
        self.error.get_or_insert(e);
    }

    fn returned(&mut self, message: Option<BasicReturnMessage>) {
        let Some(m) = message else { return };
        let id = m
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default();
        self.returns.insert(
            id,
            Return {
                reply_code: m.reply_code,
                reply_text: m.reply_text.as_str().to_owned(),
            },
        );
    }

    fn into_batch(mut self, envs: &[Envelope]) -> Batch {
        let outcomes = envs
            .iter()
            .zip(&self.acked)
            .map(
                |(env, &acked)| match self.returns.remove(&env.message_id.to_string()) {
                    Some(r) => Outcome::Returned(r),
                    None if acked => Outcome::Confirmed,
                    None => Outcome::Unconfirmed,
                },
            )
            .collect::<Vec<_>>();
        let error = if outcomes.contains(&Outcome::Unconfirmed) {
            Some(self.error.unwrap_or(MessagingError::NotConfirmed))
        } else {
            None
        };
        Batch { outcomes, error }
    }
}
