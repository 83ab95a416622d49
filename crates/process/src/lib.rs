#![doc = include_str!("../README.md")]

pub mod cleanup;
pub mod dead_letters;
mod probes;
mod shutdown;
pub mod worker;

pub use probes::{Probes, serve_probes, stop_server_on_shutdown};
pub use shutdown::Shutdown;
pub use worker::{Running, Worker};

use foxflow_config::{Config, DatabasePooler};
use foxflow_storage::{DbPool, Pooler, StorageError};

/// A service's pool: `DB_POOL_SIZE` connections named `application_name`, through the pooler
/// `DATABASE_POOLER` says sits in front of PostgreSQL.
pub fn db_pool(config: &Config, application_name: &str) -> Result<DbPool, StorageError> {
    let pooler = match config.database_pooler {
        DatabasePooler::None => Pooler::None,
        DatabasePooler::Transaction => Pooler::Transaction,
    };
    foxflow_storage::build_pool_via(
        config.database_url(),
        config.db_pool_size,
        application_name,
        pooler,
    )
}
