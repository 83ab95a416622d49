//! Foxflow's PostgreSQL layer: the pool, the migrations, the diesel schema and
//! every query the services run. Functions take a connection, not the pool,
//! so callers decide what shares a transaction.

pub mod ai;
pub mod auth;
pub mod directory;
pub mod entities;
mod error;
pub mod files;
pub mod jobs;
pub mod maintenance;
pub mod migrate;
pub mod outbox;
pub mod pool;
pub mod reference;
pub mod schema;
pub mod webhooks;

pub use diesel_async::AsyncPgConnection;
pub use error::StorageError;
pub use pool::{DbPool, PooledConn, build_pool};

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
