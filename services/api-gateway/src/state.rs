//! The state every handler shares.

use foxflow_config::Config;
use foxflow_messaging::Publisher;
use foxflow_process::Shutdown;
use foxflow_storage::DbPool;
use std::sync::Arc;
use tokio::sync::Notify;

/// What every handler may use; cloned per worker thread.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: DbPool,
    pub publisher: Publisher,
    /// Wakes the outbox relay right after a job is committed.
    pub relay_wake: Arc<Notify>,
    /// Ends long-lived responses (the events streams) so a graceful stop
    /// does not wait for them.
    pub shutdown: Shutdown,
    /// The open events streams, counted against `EVENTS_STREAMS_PER_TOKEN`
    /// and `EVENTS_STREAMS_TOTAL`.
    pub event_streams: Arc<crate::streams::StreamSlots>,
    /// The database's last answer to the background check `/readyz` reads.
    pub db_readiness: crate::readiness::DbReadiness,
    /// Scans every upload before it is stored; `None` when `CLAMD_ADDR` is unset.
    pub scanner: Option<Arc<crate::scan::Scanner>>,
}
