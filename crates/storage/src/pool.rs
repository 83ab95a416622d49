//! The one place connections are made.

use crate::Result;
use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use futures::FutureExt;
use std::time::Duration;

pub type DbPool = Pool<AsyncPgConnection>;
pub type PooledConn = Object<AsyncPgConnection>;

/// Builds the process's pool. Connections are checked before reuse (so a
/// backend killed by the server is replaced, not handed out), checkout waits
/// at most a few seconds (then the caller answers 503 or retries), and every
/// connection names its process in `pg_stat_activity`.
pub fn build_pool(database_url: &str, size: usize, application_name: &str) -> Result<DbPool> {
    let app = application_name.to_owned();
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Verified;
    config.custom_setup = Box::new(move |url| {
        let app = app.clone();
        let url = url.to_owned();
        async move {
            use diesel_async::{AsyncConnection, SimpleAsyncConnection};
            let mut conn = AsyncPgConnection::establish(&url).await?;
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
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| crate::StorageError::Pool(e.to_string()))
}

/// Checks out a connection, mapping pool errors once.
pub async fn conn(pool: &DbPool) -> Result<PooledConn> {
    Ok(pool.get().await?)
}
