#![doc = include_str!("../README.md")]

pub mod chaos;
pub mod clamd;
pub mod data;
mod harness;
pub mod pgbouncer;
pub mod tls_postgres;

pub use harness::{TestApp, TestOptions};
