#![doc = include_str!("../README.md")]

pub mod cleanup;
pub mod dead_letters;
mod probes;
mod shutdown;
pub mod worker;

pub use probes::{Probes, serve_probes, stop_server_on_shutdown};
pub use shutdown::Shutdown;
pub use worker::{Running, Worker};
