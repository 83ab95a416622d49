//! The one pool builder; connections are opened by [`crate::connect`].

use crate::Result;
use crate::pool_metrics::PoolMetrics;
use crate::pooler::Pooler;
use crate::target::DbTarget;
use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use futures::FutureExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type PooledConn = Object<AsyncPgConnection>;

/// A process's pool, and the series it reports (`foxflow_db_pool_*`).
/// Cloning shares both.
#[derive(Clone)]
pub struct DbPool {
    pool: Pool<AsyncPgConnection>,
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
/// backend killed by the server is replaced, not handed out), checkout waits
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
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
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
