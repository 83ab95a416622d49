//! The start-up both workers share: database pool, worker id, topology, probe server, queue-depth
//! sampler and the consumer loop, all stopping with the process's [`Shutdown`].
//!
//! A worker's `start` builds a [`Worker`], adds what is its own (handler, rate gate, extra tasks)
//! and ends with [`Worker::consume`]:
//!
//! ```text
//! let mut worker = Worker::new(&config, "ai-worker", shutdown)?;   // pool, id, topology
//! // … the worker's own set-up, which may still fail …
//! worker.serve_probes(move || metrics.render()).await?;            // METRICS_ADDR, if set
//! worker.spawn(|shutdown| some_task(pool, shutdown));              // tasks of its own
//! Ok(worker.consume(QueueKind::AiGeneration, config.ai_max_retries, handler, Some(gate)))
//! ```

use crate::{Probes, Shutdown, serve_probes};
use foxflow_config::Config;
use foxflow_domain::messages::QueueKind;
use foxflow_messaging::{
    ConsumerSettings, Handler, LoopBeat, StartGate, Topology, depth, run_consumer, run_depth_sampler,
};
use foxflow_storage::{DbPool, StorageError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A started worker: where it answers probes, and the tasks that end once
/// shutdown triggers (the job in hand finished or checkpointed first).
pub struct Running {
    /// Where `/metrics`, `/healthz` and `/readyz` answer.
    pub metrics_addr: Option<SocketAddr>,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits for every task; they end after shutdown triggers.
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// A worker being started. Nothing runs until [`Worker::serve_probes`],
/// [`Worker::spawn`] or [`Worker::consume`] is called, so the worker's own
/// set-up can still fail in between without leaving tasks behind.
pub struct Worker {
    /// `<name>/<host>/<8 hex digits>`: the job lease holder, the consumer's
    /// and publisher's name in the management console.
    pub id: String,
    pub pool: DbPool,
    pub topology: Topology,
    amqp_url: String,
    prefetch: u16,
    probe_addr: Option<SocketAddr>,
    /// Set by the consumer loop while it is connected; `/readyz` reports it.
    ready: Arc<AtomicBool>,
    /// Beaten by the consumer loop; `/healthz` reports it.
    beat: LoopBeat,
    shutdown: Shutdown,
    metrics_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Worker {
    /// The pool (named `name` in `pg_stat_activity`), the worker's id and
    /// the topology of `config`.
    pub fn new(config: &Config, name: &str, shutdown: Shutdown) -> Result<Worker, StorageError> {
        let pool = crate::db_pool(config, name)?;
        Ok(Worker {
            id: worker_id(name),
            pool,
            topology: Topology::from_config(config),
            amqp_url: config.amqp_url().to_owned(),
            prefetch: config.prefetch,
            probe_addr: config.metrics_addr,
            ready: Arc::new(AtomicBool::new(false)),
            beat: LoopBeat::default(),
            shutdown,
            metrics_addr: None,
            tasks: Vec::new(),
        })
    }

    /// Serves `/healthz`, `/readyz` and `/metrics` (`metrics` renders the
    /// worker's own families, followed by its pool's `foxflow_db_pool_*`) on
    /// `METRICS_ADDR`; nothing when it is unset.
    pub async fn serve_probes(
        &mut self,
        metrics: impl Fn() -> String + Send + Sync + 'static,
    ) -> std::io::Result<()> {
        if let Some(addr) = self.probe_addr {
            let pool = self.pool.clone();
            let probes = Probes {
                ready: self.ready.clone(),
                beat: self.beat.clone(),
                max_silence: foxflow_messaging::liveness::MAX_SILENCE,
                metrics: Arc::new(move || {
                    let mut text = metrics();
                    if !text.is_empty() && !text.ends_with('\n') {
                        text.push('\n');
                    }
                    text.push_str(&pool.metrics_text());
                    text
                }),
            };
            self.metrics_addr = Some(serve_probes(addr, probes, self.shutdown.clone()).await?);
        }
        Ok(())
    }

    /// Runs a task of the worker's own; it is handed the shutdown flag and
    /// must return once it turns true.
    pub fn spawn<F>(&mut self, task: impl FnOnce(watch::Receiver<bool>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(task(self.shutdown.subscribe())));
    }

    /// Starts the queue-depth sampler and the consumer loop on `queue`, the
    /// last step of a start: every start-up step has succeeded by now.
    pub fn consume(
        mut self,
        queue: QueueKind,
        max_retries: u32,
        handler: Arc<dyn Handler>,
        gate: Option<Arc<dyn StartGate>>,
    ) -> Running {
        // Every process exposes the queue depths (docs/spec.md §10), so a
        // scrape of any one of them shows the backlog KEDA scales on.
        let (amqp_url, topology, id) = (self.amqp_url.clone(), self.topology.clone(), self.id.clone());
        self.spawn(|shutdown| run_depth_sampler(amqp_url, topology, id, depth::SAMPLE_EVERY, shutdown));
        let settings = ConsumerSettings {
            amqp_url: self.amqp_url,
            topology: self.topology,
            queue,
            prefetch: self.prefetch,
            max_retries,
            name: self.id,
        };
        let ready = self.ready;
        self.tasks.push(tokio::spawn(run_consumer(
            settings,
            handler,
            gate,
            foxflow_messaging::Vitals {
                ready,
                beat: self.beat,
            },
            self.shutdown.subscribe(),
        )));
        Running {
            metrics_addr: self.metrics_addr,
            tasks: self.tasks,
        }
    }
}

/// Unique per process, and readable: which host, which worker.
fn worker_id(name: &str) -> String {
    let mut suffix = uuid::Uuid::new_v4().simple().to_string();
    suffix.truncate(8);
    format!("{name}/{}/{suffix}", hostname())
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "local".to_owned())
}

#[cfg(test)]
mod tests {
    use super::worker_id;

    #[test]
    fn a_worker_id_names_the_worker_and_its_host() {
        let id = worker_id("import-worker");
        let parts: Vec<&str> = id.split('/').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0], "import-worker");
        assert!(!parts[1].is_empty());
        assert_eq!(parts[2].len(), 8);
        assert_ne!(worker_id("import-worker"), id, "two starts, two ids");
    }
}
