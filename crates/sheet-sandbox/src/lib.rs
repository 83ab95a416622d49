//! Reads an untrusted upload in a child process, `foxflow-sheet-reader`, so that no file can
//! take the import-worker down or hold it (docs/security.md, "Hard budgets per file").
//!
//! The worker starts one child per file with the file as its stdin; the child sets its own
//! CPU, memory, core and file limits before it reads a byte, runs `foxflow_sheets` on the file
//! and streams the rows back on a pipe ([`protocol`]). The worker copies that stream to a
//! temporary file, at most [`Budget::output_bytes`] of it, and holds the child to twice its CPU
//! budget in wall time. A parser that loops, allocates without end, aborts or crashes ends that
//! file's job with `file_too_complex` or `file_unreadable`; the worker carries on.
//!
//! The file is parsed once per attempt: the rows are counted from the spool ([`Spool`]) before
//! the first one is imported, and imported from it afterwards.

mod child;
mod error;
mod parent;
pub mod protocol;
mod spool;

pub use child::serve;
pub use error::SandboxError;
pub use parent::{Budget, READER_BIN, Sandbox};
pub use spool::Spool;
