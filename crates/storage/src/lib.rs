#![doc = include_str!("../README.md")]

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
mod run_state;
pub mod schema;
mod sql_text;
pub mod webhooks;

pub use diesel_async::AsyncPgConnection;
pub use error::StorageError;
pub use pool::{DbPool, PooledConn, build_pool};
pub use run_state::RunState;
pub use sql_text::UnknownValue;

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
