//! Publishing with confirms. A publish returns only once the broker has
//! taken responsibility for the message (or fails, and the caller keeps it).

use crate::{MessagingError, Topology, broker, headers};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
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
    /// instead of one per message (the outbox relay's batches). Returns how
    /// many envelopes, from the first, are confirmed, and the error that
    /// stopped the rest; those may have reached the broker all the same, so
    /// a caller that publishes them again can deliver them twice, never zero
    /// times.
    pub async fn publish_all(&self, envs: &[Envelope]) -> (usize, Option<MessagingError>) {
        if envs.is_empty() {
            return (0, None);
        }
        if let Err(e) = self.ensure_connected().await {
            return (0, Some(e));
        }
        let channel = {
            let link = self.link.lock().await;
            match link.as_ref() {
                Some(l) => l.channel.clone(),
                None => return (0, Some(MessagingError::Timeout(Duration::ZERO))),
            }
        };
        let mut confirmed = 0;
        // Bounded as a whole: a write to a socket nobody reads (the peer gone
        // without a FIN) must not hold the relay's outbox locks for ever.
        let result = tokio::time::timeout(CONFIRM_TIMEOUT, self.publish_on(&channel, envs, &mut confirmed))
            .await
            .unwrap_or(Err(MessagingError::Timeout(CONFIRM_TIMEOUT)));
        if let Err(
            MessagingError::Unavailable(_) | MessagingError::Timeout(_) | MessagingError::NotConfirmed,
        ) = &result
        {
            // Drop the link so the next call reconnects.
            self.connected.store(false, Ordering::Relaxed);
            *self.link.lock().await = None;
        }
        (confirmed, result.err())
    }

    /// Sends every envelope, then checks their confirms in order, counting
    /// the confirmed ones in `confirmed` (kept when the caller's timeout
    /// drops this future halfway).
    async fn publish_on(
        &self,
        channel: &Channel,
        envs: &[Envelope],
        confirmed: &mut usize,
    ) -> Result<(), MessagingError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut pending = Vec::with_capacity(envs.len());
        let mut send_error = None;
        for env in envs {
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
                Ok(confirm) => pending.push((env, confirm)),
                Err(e) => {
                    // The ones already sent still get their answer below.
                    send_error = Some(MessagingError::from(e));
                    break;
                }
            }
        }
        for (env, confirm) in pending {
            let outcome = match confirm.await? {
                // Acked but returned: no queue was bound for this key.
                Confirmation::Ack(Some(_)) => Err(MessagingError::Unroutable {
                    exchange: env.exchange.clone(),
                    routing_key: env.routing_key.clone(),
                }),
                Confirmation::Ack(None) => Ok(()),
                Confirmation::Nack(_) => Err(MessagingError::Nacked),
                // Only an explicit ack is a confirm: a channel that lost confirm
                // mode must not let the outbox mark a row sent.
                Confirmation::NotRequested => Err(MessagingError::NotConfirmed),
            };
            outcome?;
            *confirmed += 1;
        }
        send_error.map_or(Ok(()), Err)
    }
}
