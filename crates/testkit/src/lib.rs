//! The test harness: real PostgreSQL and RabbitMQ, a fresh database cloned
//! from a migrated template and a random broker namespace per test, the real
//! services started in-process on port 0, and helpers that talk HTTP.

pub mod chaos;
pub mod data;
mod harness;

pub use harness::{TestApp, TestOptions};
