//! Foxflow's vocabulary: the values, records, job states and messages every
//! process agrees on. Parsing happens here, once; nothing in this crate does I/O.

pub mod ai_text;
pub mod headers;
pub mod job;
pub mod messages;
pub mod naf_reference;
pub mod normalize;
pub mod records;
pub mod values;
pub mod webhooks;

pub use job::{ImportOptions, ImportType, JobStatus, Outcome};
pub use values::ValueError;
