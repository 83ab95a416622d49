#![doc = include_str!("../README.md")]

pub mod ai;
pub mod auth;
pub mod connect;
pub mod directory;
pub mod entities;
mod error;
pub mod exports;
pub mod files;
pub mod jobs;
pub mod maintenance;
pub mod migrate;
pub mod outbox;
pub mod pool;
mod pool_metrics;
pub mod pooler;
pub mod prepared;
pub mod reference;
mod run_state;
pub mod schema;
mod sql_text;
pub mod target;
mod tls;
mod unnamed;
pub mod webhooks;

pub use connect::{ConnectError, connect};
pub use diesel_async::AsyncPgConnection;
pub use error::StorageError;
pub use pool::{DbPool, PooledConn, build_pool, build_pool_via};
pub use pooler::Pooler;
pub use run_state::RunState;
pub use sql_text::UnknownValue;
pub use target::{DbTarget, TargetError, TlsMode};

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
