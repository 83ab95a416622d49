//! The one pool builder; connections are opened by [`crate::connect`].

use crate::Result;
use crate::pool_metrics::PoolMetrics;
use crate::pooler::Pooler;
use crate::target::DbTarget;
use deadpool::managed::{Manager, Metrics, Object, Pool, RecycleError, RecycleResult};
use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::PoolError;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
};
use futures::FutureExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type PooledConn = Object<ConnectionManager>;

/// A connection checked out again within this long of its previous checkout is handed out
/// without the check query (see [`ConnectionManager`]).
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// diesel-async's manager, with the check query at checkout only for connections that sat
/// idle. `RecyclingMethod::Verified` runs `SELECT 1` at every checkout: on the AI path three or
/// four checkouts a task, a round trip each, and PostgreSQL's CPU is what bounds it. A
/// connection whose previous checkout was under [`TRUSTED_FOR`] ago was in use a moment ago;
/// what can have broken it since is seen without a round trip: a failed or unfinished
/// transaction (diesel's transaction manager says broken), or a backend terminated by the
/// server or a closed socket (the connection's task reads the `FATAL` or the end of stream
/// as it arrives, and `is_closed` turns true). What only a query would see is a peer that
/// vanished without a word (a host gone, a NAT or firewall that dropped a quiet flow): that
/// takes idleness, and an idle connection is still checked. At worst a connection broken in
/// the last second fails its first statement, like one broken just after its check; every
/// caller treats that as a transient failure and retries.
pub struct ConnectionManager {
    inner: AsyncDieselConnectionManager<AsyncPgConnection>,
}

impl Manager for ConnectionManager {
    type Type = AsyncPgConnection;
    type Error = diesel_async::pooled_connection::PoolError;

    async fn create(&self) -> Result<AsyncPgConnection, Self::Error> {
        self.inner.create().await
    }

    async fn recycle(&self, conn: &mut AsyncPgConnection, metrics: &Metrics) -> RecycleResult<Self::Error> {
        if metrics.last_used() >= TRUSTED_FOR {
            return self.inner.recycle(conn, metrics).await;
        }
        if std::thread::panicking() || PoolableConnection::is_broken(conn) {
            return Err(RecycleError::Message("Broken connection".into()));
        }
        Ok(())
    }
}

/// A process's pool, and the series it reports (`foxflow_db_pool_*`).
/// Cloning shares both.
#[derive(Clone)]
pub struct DbPool {
    pool: Pool<ConnectionManager>,
    metrics: Arc<PoolMetrics>,
}

impl DbPool {
    /// Checks a connection out, waiting at most the pool's wait timeout; the
    /// wait is recorded, failed ones included.
    pub async fn get(&self) -> Result<PooledConn, PoolError> {
        let started = Instant::now();
        let conn = self.pool.get().await;
        self.metrics.observe_wait(started.elapsed());
        conn
    }

    pub fn status(&self) -> deadpool::Status {
        self.pool.status()
    }

    /// `foxflow_db_pool_connections`, `_max_connections` and `_wait_seconds`
    /// in the Prometheus text format, for the owning service's `/metrics`.
    pub fn metrics_text(&self) -> String {
        self.metrics.render(self.pool.status())
    }
}

/// Builds the process's pool. Connections are checked before reuse (so a
/// backend killed by the server is replaced, not handed out; see
/// [`ConnectionManager`] for which checks cost a round trip), checkout waits
/// at most a few seconds (then the caller answers 503 or retries), and every
/// connection names its process in `pg_stat_activity`. A `database_url` that
/// cannot be used (a bad `sslmode`, an unreadable `sslrootcert`) fails here,
/// at start, before any connection is tried.
pub fn build_pool(database_url: &str, size: usize, application_name: &str) -> Result<DbPool> {
    build_pool_via(database_url, size, application_name, Pooler::None)
}

/// [`build_pool`] for a process whose `DATABASE_URL` may point at a transaction-mode pooler
/// (`DATABASE_POOLER`): then connections come from [`crate::pooler`], which keeps statements
/// and session settings from outliving a transaction.
pub fn build_pool_via(
    database_url: &str,
    size: usize,
    application_name: &str,
    pooler: Pooler,
) -> Result<DbPool> {
    let target = Arc::new(DbTarget::parse(database_url)?);
    let app = application_name.to_owned();
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Verified;
    config.custom_setup = Box::new(move |_url| {
        let app = app.clone();
        let target = target.clone();
        async move {
            use diesel_async::SimpleAsyncConnection;
            if pooler == Pooler::Transaction {
                return Ok(crate::pooler::connect(&target, &app).await?);
            }
            let mut conn = crate::connect::connect(&target).await?;
            conn.batch_execute(&format!(
                "SET application_name = '{app}'; SET statement_timeout = '300s';"
            ))
            .await
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = ConnectionManager {
        inner: AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config),
    };
    let pool = Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| crate::StorageError::Pool(e.to_string()))?;
    Ok(DbPool {
        pool,
        metrics: Arc::new(PoolMetrics::new()),
    })
}

/// Checks out a connection, mapping pool errors once.
pub async fn conn(pool: &DbPool) -> Result<PooledConn> {
    Ok(pool.get().await?)
}
