//! The exchanges, queues and bindings of docs/spec.md §6, for one namespace.
//!
//! Every process declares the whole topology at start (and after every
//! reconnection); declarations are idempotent as long as the arguments are
//! identical, which is why `deploy/rabbitmq/definitions.json` is generated
//! from [`Topology::definitions`] and checked against it.

use foxflow_config::Config;
use foxflow_domain::messages::QueueKind;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};
use serde_json::{Value, json};
use std::time::Duration;

/// A quorum queue dead-letters a message redelivered this many times (a
/// worker crashing on it each time), so a poison message cannot loop forever.
pub const DELIVERY_LIMIT: i64 = 10;

#[derive(Debug, Clone)]
pub struct Topology {
    pub namespace: String,
    pub import_retry_delay: Duration,
    pub ai_retry_delay: Duration,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Str(String),
    Int(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct QueueDef {
    name: String,
    args: Vec<(&'static str, Arg)>,
    exchange: String,
    routing_key: &'static str,
}

impl Topology {
    /// The topology every process declares: its namespace and retry delays
    /// come from the configuration, so all processes of one deployment
    /// declare identical arguments.
    pub fn from_config(config: &Config) -> Self {
        Topology::new(
            &config.namespace,
            config.import_retry_delay,
            config.ai_retry_delay,
        )
    }

    /// With delays of one's own: a test that needs a topology the services
    /// would refuse, or names only.
    pub fn new(namespace: &str, import_retry_delay: Duration, ai_retry_delay: Duration) -> Self {
        Topology {
            namespace: namespace.to_owned(),
            import_retry_delay,
            ai_retry_delay,
        }
    }

    /// Direct exchange of the work queues.
    pub fn jobs_exchange(&self) -> String {
        format!("{}.jobs", self.namespace)
    }

    /// Direct exchange of the wait queues.
    pub fn retry_exchange(&self) -> String {
        format!("{}.retry", self.namespace)
    }

    /// Direct exchange of the parking queues.
    pub fn dead_exchange(&self) -> String {
        format!("{}.dead", self.namespace)
    }

    pub fn work_queue(&self, q: QueueKind) -> String {
        format!("{}.{}", self.namespace, q.as_str())
    }

    pub fn retry_queue(&self, q: QueueKind) -> String {
        format!("{}.{}.retry", self.namespace, q.as_str())
    }

    pub fn dead_queue(&self, q: QueueKind) -> String {
        format!("{}.{}.dead", self.namespace, q.as_str())
    }

    /// A second copy of every parked message, consumed by the dead-letter
    /// recorder (`dead_letters`) so the job it names ends; the parking
    /// queue's copy stays for operators.
    pub fn recorder_queue(&self, q: QueueKind) -> String {
        format!("{}.{}.dead.recorder", self.namespace, q.as_str())
    }

    fn retry_delay(&self, q: QueueKind) -> Duration {
        match q {
            QueueKind::Imports => self.import_retry_delay,
            QueueKind::AiGeneration => self.ai_retry_delay,
        }
    }

    fn exchanges(&self) -> [String; 3] {
        [self.jobs_exchange(), self.retry_exchange(), self.dead_exchange()]
    }

    fn queues(&self) -> Vec<QueueDef> {
        let mut out = Vec::new();
        for q in QueueKind::ALL {
            let key = q.as_str();
            out.push(QueueDef {
                name: self.work_queue(q),
                args: vec![
                    ("x-queue-type", Arg::Str("quorum".into())),
                    ("x-delivery-limit", Arg::Int(DELIVERY_LIMIT)),
                    ("x-dead-letter-exchange", Arg::Str(self.dead_exchange())),
                    ("x-dead-letter-routing-key", Arg::Str(key.into())),
                ],
                exchange: self.jobs_exchange(),
                routing_key: key,
            });
            out.push(QueueDef {
                name: self.retry_queue(q),
                args: vec![
                    ("x-queue-type", Arg::Str("classic".into())),
                    ("x-message-ttl", Arg::Int(self.retry_delay(q).as_millis() as i64)),
                    ("x-dead-letter-exchange", Arg::Str(self.jobs_exchange())),
                    ("x-dead-letter-routing-key", Arg::Str(key.into())),
                ],
                exchange: self.retry_exchange(),
                routing_key: key,
            });
            out.push(QueueDef {
                name: self.dead_queue(q),
                args: vec![("x-queue-type", Arg::Str("quorum".into()))],
                exchange: self.dead_exchange(),
                routing_key: key,
            });
            out.push(QueueDef {
                name: self.recorder_queue(q),
                args: vec![("x-queue-type", Arg::Str("quorum".into()))],
                exchange: self.dead_exchange(),
                routing_key: key,
            });
        }
        out
    }

    /// Declares everything; safe to call any number of times.
    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for ex in self.exchanges() {
            channel
                .exchange_declare(
                    ShortString::from(ex),
                    ExchangeKind::Direct,
                    durable,
                    FieldTable::default(),
                )
                .await?;
        }
        for q in self.queues() {
            let mut args = FieldTable::default();
            for (k, v) in &q.args {
                let v = match v {
                    Arg::Str(s) => AMQPValue::LongString(LongString::from(s.as_bytes().to_vec())),
                    Arg::Int(i) => AMQPValue::LongLongInt(*i),
                };
                args.insert(ShortString::from(*k), v);
            }
            channel
                .queue_declare(
                    ShortString::from(q.name.clone()),
                    QueueDeclareOptions::durable(),
                    args,
                )
                .await?;
            channel
                .queue_bind(
                    ShortString::from(q.name.clone()),
                    ShortString::from(q.exchange.clone()),
                    ShortString::from(q.routing_key),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// The same topology in RabbitMQ's definitions format (vhost `/`), for
    /// the management console and `deploy/rabbitmq/definitions.json`.
    pub fn definitions(&self) -> Value {
        let exchanges: Vec<Value> = self
            .exchanges()
            .iter()
            .map(|name| {
                json!({"name": name, "vhost": "/", "type": "direct", "durable": true,
                       "auto_delete": false, "internal": false, "arguments": {}})
            })
            .collect();
        let queues: Vec<Value> = self
            .queues()
            .iter()
            .map(|q| {
                let args: serde_json::Map<String, Value> = q
                    .args
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Arg::Str(s) => json!(s),
                            Arg::Int(i) => json!(i),
                        };
                        ((*k).to_owned(), v)
                    })
                    .collect();
                json!({"name": q.name, "vhost": "/", "durable": true, "auto_delete": false, "arguments": args})
            })
            .collect();
        let bindings: Vec<Value> = self
            .queues()
            .iter()
            .map(|q| {
                json!({"source": q.exchange, "vhost": "/", "destination": q.name, "destination_type": "queue",
                       "routing_key": q.routing_key, "arguments": {}})
            })
            .collect();
        json!({"exchanges": exchanges, "queues": queues, "bindings": bindings})
    }

    /// Every queue name, for deleting a test namespace.
    pub fn all_queues(&self) -> Vec<String> {
        self.queues().into_iter().map(|q| q.name).collect()
    }

    pub fn all_exchanges(&self) -> Vec<String> {
        self.exchanges().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec() {
        let t = Topology::new("fox", Duration::from_secs(5), Duration::from_secs(60));
        assert_eq!(t.jobs_exchange(), "fox.jobs");
        assert_eq!(t.work_queue(QueueKind::Imports), "fox.imports");
        assert_eq!(t.retry_queue(QueueKind::AiGeneration), "fox.ai_generation.retry");
        assert_eq!(t.dead_queue(QueueKind::Imports), "fox.imports.dead");
        assert_eq!(t.recorder_queue(QueueKind::Imports), "fox.imports.dead.recorder");
        let defs = t.definitions();
        let retry = defs["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == "fox.imports.retry")
            .unwrap();
        assert_eq!(retry["arguments"]["x-message-ttl"], 5000);
        assert_eq!(retry["arguments"]["x-dead-letter-exchange"], "fox.jobs");
    }

    #[test]
    fn from_config_takes_the_namespace_and_the_retry_delays() {
        let vars = [
            ("FOX_NAMESPACE", "ns1"),
            ("IMPORT_RETRY_DELAY", "7s"),
            ("AI_RETRY_DELAY", "2m"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = Config::from_map(foxflow_config::Process::Cli, &vars).unwrap();
        let t = Topology::from_config(&config);
        assert_eq!(t.namespace, "ns1");
        assert_eq!(t.import_retry_delay, Duration::from_secs(7));
        assert_eq!(t.ai_retry_delay, Duration::from_secs(120));
    }
}
