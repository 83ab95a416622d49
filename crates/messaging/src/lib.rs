#![doc = include_str!("../README.md")]

mod broker;
pub mod consumer;
pub mod dead_letters;
pub mod depth;
pub mod dlq;
mod error;
pub mod headers;
pub mod liveness;
pub mod publisher;
pub mod relay;
pub mod topology;

pub use broker::{Backoff, connect};
pub use consumer::{ConsumerSettings, Delivered, Handler, HandlerOutcome, StartGate, Vitals, run_consumer};
pub use depth::run_depth_sampler;
pub use error::MessagingError;
pub use liveness::LoopBeat;
pub use publisher::{Envelope, Publisher};
pub use topology::Topology;
