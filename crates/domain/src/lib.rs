#![doc = include_str!("../README.md")]

pub mod ai_text;
pub mod headers;
pub mod job;
pub mod messages;
pub mod naf_reference;
pub mod normalize;
pub mod records;
#[cfg(feature = "diesel")]
mod sql;
pub mod text;
pub mod values;
pub mod webhooks;

pub use job::{ImportOptions, ImportType, JobStatus};
pub use text::{Lang, Text};
pub use values::ValueError;
