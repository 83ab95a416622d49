//! Why a sandboxed read gave no rows.

use foxflow_domain::Text;

/// The two ways a read fails, told apart because they are handled apart: a property of the file
/// ends its job, a problem of the worker retries it.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The file cannot be imported: the reader refused it (`code` is a `foxflow_sheets`
    /// code), or reading it went past a budget (`file_too_complex`), or the reader died on it
    /// (`file_unreadable`). Retrying the same file gives the same answer.
    /// `message` is in French and English (`Display` writes the French one).
    #[error("{message}")]
    File { code: &'static str, message: Text },
    /// The worker could not run the reader (missing binary, no process or file left): not the
    /// file's fault, so the job is retried.
    #[error("the file reader could not run: {0}")]
    Worker(String),
}

impl SandboxError {
    pub(crate) fn too_complex(message: Text) -> Self {
        Self::File {
            code: "file_too_complex",
            message,
        }
    }

    pub(crate) fn unreadable(message: Text) -> Self {
        Self::File {
            code: "file_unreadable",
            message,
        }
    }
}
