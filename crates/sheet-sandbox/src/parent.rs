//! The worker's side: start the child on a file, hold it to its budget, spool what it says.

use crate::child::{EXIT_BAD_REQUEST, EXIT_LIMITS};
use crate::protocol::Request;
use crate::{SandboxError, Spool};
use foxflow_domain::text;
use foxflow_sheets::Limits;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// The reader binary's name; it ships beside the import-worker.
pub const READER_BIN: &str = "foxflow-sheet-reader";

/// What one file may cost the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// CPU time of the child (whole seconds, at least 1); also bounds its wall time, at twice
    /// this plus 5 s, for a reader that would block instead of working.
    pub cpu: Duration,
    /// Address space of the child, bytes.
    pub memory_bytes: u64,
    /// What the child may write back (the spooled rows), bytes.
    pub output_bytes: u64,
}

/// Runs the reader child. Cheap to clone; one per worker.
#[derive(Debug, Clone)]
pub struct Sandbox {
    reader: PathBuf,
    budget: Budget,
}

impl Sandbox {
    /// `reader`: the `foxflow-sheet-reader` binary, or `None` to look for it beside the running
    /// executable (and one directory up, where cargo puts binaries for test executables).
    pub fn new(reader: Option<&Path>, budget: Budget) -> Result<Sandbox, SandboxError> {
        let reader = match reader {
            Some(path) => path.to_owned(),
            None => locate()?,
        };
        if !reader.is_file() {
            return Err(SandboxError::Worker(format!(
                "{} is not a file (IMPORT_READER_BIN)",
                reader.display()
            )));
        }
        Ok(Sandbox { reader, budget })
    }

    pub fn reader(&self) -> &Path {
        &self.reader
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Reads `file` (an upload named `file_name`) in a child process and returns its rows,
    /// spooled. Dropping the future kills the child.
    pub async fn read(
        &self,
        mut file: File,
        file_name: &str,
        limits: &Limits,
    ) -> Result<Spool, SandboxError> {
        let worker = |what: &str, e: std::io::Error| SandboxError::Worker(format!("{what}: {e}"));
        // The child reads from the start (a pipe, as in the tests, cannot be rewound).
        if file.metadata().is_ok_and(|m| m.is_file()) {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| worker("cannot rewind the file", e))?;
        }
        let request = Request {
            file_name: file_name.to_owned(),
            limits: limits.clone(),
            cpu: self.budget.cpu,
            memory_bytes: self.budget.memory_bytes,
        };
        let spool = tempfile::tempfile().map_err(|e| worker("cannot create a temporary file", e))?;
        let mut child = tokio::process::Command::new(&self.reader)
            .args(request.to_args())
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::from(file))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| worker(&format!("cannot start {}", self.reader.display()), e))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(SandboxError::Worker("the reader's pipes are missing".into()));
        };
        let output = tokio::fs::File::from_std(
            spool
                .try_clone()
                .map_err(|e| worker("cannot reopen the spool", e))?,
        );
        let wall = self.budget.cpu.saturating_mul(2) + Duration::from_secs(5);
        let cap = self.budget.output_bytes;
        let ran = tokio::time::timeout(wall, async {
            // Both pipes are drained to their end, or the child would block on one of them.
            let (copied, said) = tokio::join!(pump(stdout, output, cap), last_words(stderr));
            (copied, said, child.wait().await)
        })
        .await;
        let Ok((copied, said, status)) = ran else {
            let secs = wall.as_secs();
            return Err(SandboxError::too_complex(text!(
                "la lecture du fichier a pris plus de {secs} s et a été arrêtée",
                "reading the file took longer than {secs} s and was stopped"
            )));
        };
        let copied = copied.map_err(|e| worker("cannot spool the reader's rows", e))?;
        let status = status.map_err(|e| worker("cannot wait for the reader", e))?;
        if copied > cap {
            let mib = cap >> 20;
            return Err(SandboxError::too_complex(text!(
                "ses lignes occupent plus de {mib} Mio une fois lues",
                "its rows take more than {mib} MiB once read"
            )));
        }
        self.judge(status, &said)?;
        tokio::task::spawn_blocking(move || Spool::open(spool))
            .await
            .map_err(|e| SandboxError::Worker(format!("the spool check stopped: {e}")))?
    }

    /// How the child ended, as the job will be told.
    fn judge(&self, status: ExitStatus, said: &str) -> Result<(), SandboxError> {
        let cpu = self.budget.cpu.as_secs().max(1);
        let memory = self.budget.memory_bytes >> 20;
        if status.success() {
            return Ok(());
        }
        let said = said.trim();
        tracing::warn!(%status, stderr = said, "the file reader ended abnormally");
        // Rust reports a failed allocation on stderr, then aborts.
        if said.contains("memory allocation of") {
            return Err(SandboxError::too_complex(text!(
                "sa lecture demande plus que les {memory} Mio de mémoire permis à un fichier",
                "reading it needs more than the {memory} MiB of memory a file may use"
            )));
        }
        match (status.signal(), status.code()) {
            (Some(SIGXCPU | SIGKILL), _) => Err(SandboxError::too_complex(text!(
                "sa lecture demande plus que les {cpu} s de CPU permises à un fichier",
                "reading it takes more than the {cpu} s of CPU a file may use"
            ))),
            (_, Some(code)) if code == i32::from(EXIT_BAD_REQUEST) || code == i32::from(EXIT_LIMITS) => Err(
                SandboxError::Worker(format!("the file reader refused to start: {said}")),
            ),
            _ => Err(SandboxError::unreadable(text!(
                "le lecteur de fichiers a échoué sur ce fichier ({status})",
                "the file reader failed on this file ({status})"
            ))),
        }
    }
}

const SIGKILL: i32 = 9;
const SIGXCPU: i32 = 24;

/// Copies the child's stdout into the spool, up to `cap + 1` bytes; then hangs up, so a child
/// with more to say fails on its next write instead of filling the disk.
async fn pump(stdout: impl AsyncRead + Unpin, output: tokio::fs::File, cap: u64) -> std::io::Result<u64> {
    let mut output = tokio::io::BufWriter::with_capacity(256 * 1024, output);
    let copied = tokio::io::copy(&mut stdout.take(cap.saturating_add(1)), &mut output).await?;
    output.flush().await?;
    Ok(copied)
}

/// The first few KB of the child's stderr (it only writes there when it dies); the rest is read
/// and dropped.
async fn last_words(mut stderr: impl AsyncRead + Unpin) -> String {
    const KEEP: usize = 4096;
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = KEEP.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

fn locate() -> Result<PathBuf, SandboxError> {
    let exe = std::env::current_exe()
        .map_err(|e| SandboxError::Worker(format!("cannot find the running executable: {e}")))?;
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(READER_BIN))
        .collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        SandboxError::Worker(format!(
            "{READER_BIN} was not found beside {} (looked at {}); install it there or set IMPORT_READER_BIN",
            exe.display(),
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}
