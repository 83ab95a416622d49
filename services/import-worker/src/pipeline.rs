//! One import run: the file is copied from storage to a temporary file and
//! read once, in a sandboxed child process (`foxflow_sheet_sandbox`), into a
//! spool; then a blocking thread validates the spooled rows into batches and
//! this task writes the batches while the thread prepares the next ones (a
//! bounded pipeline: at most `QUEUED_BATCHES` batches wait in memory).

use crate::write::{Batch, BatchScope, ErrorRow, Writer};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use foxflow_domain::ImportType;
use foxflow_domain::records::{ColumnMap, Record, ReferenceData, shorten};
use foxflow_domain::{Text, text};
use foxflow_sheet_sandbox::{Sandbox, SandboxError, Spool};
use foxflow_sheets::{Limits, SheetRow};
use foxflow_storage::entities::ParentCache;
use foxflow_storage::jobs::{self, Progress};
use foxflow_storage::{DbPool, StorageError, files};
use std::convert::Infallible;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;
use uuid::Uuid;

const QUEUED_BATCHES: usize = 2;
/// A batch is sent when full or when this old, so progress is committed at
/// least about once a second even on slow rows.
const BATCH_MAX_AGE: Duration = Duration::from_millis(500);

/// How a run ended, short of a storage failure.
#[derive(Debug)]
pub enum RunEnd {
    Completed,
    /// The file as a whole cannot be imported; committed rows stay.
    FileError {
        code: &'static str,
        /// French and English (stored in `last_error`/`last_error_en`).
        message: Text,
    },
    /// Shutdown was requested; the checkpoint is committed.
    Interrupted,
    /// A batch commit saw a cancel request; committed rows stay.
    Cancelled,
    /// The worker could not read the file (no reader process, no disk): not
    /// the file's fault, so the attempt is retried.
    WorkerFault(String),
}

pub struct RunContext {
    pub pool: DbPool,
    pub job_id: Uuid,
    pub file_id: Uuid,
    pub file_name: String,
    pub import_type: ImportType,
    pub dry_run: bool,
    pub generate_ai: bool,
    pub checkpoint_row: u64,
    /// Error rows committed by earlier attempts (counted against the cap).
    pub prior_error_rows: i64,
    /// Warning rows committed by earlier attempts (the first
    /// [`MAX_STORED_WARNING_ROWS`] are stored).
    pub prior_warning_rows: i64,
    /// This delivery's claim on the job (`<worker id>#<random>`).
    pub lease_token: String,
    pub lease: Duration,
    pub batch_rows: usize,
    pub limits: Limits,
    pub sandbox: Sandbox,
    pub soft_deadline: Instant,
    pub soft_limit: Duration,
    pub reference: std::sync::Arc<dyn ReferenceData + Send + Sync>,
    pub shutdown: watch::Receiver<bool>,
}

enum Parsed {
    Start {
        total_rows: u64,
        unknown_columns: Vec<String>,
    },
    Batch(Batch),
    Failed {
        code: &'static str,
        message: Text,
    },
    /// Reading the spool back failed (the worker's disk).
    Fault(String),
}

pub async fn run(ctx: RunContext, metrics: &crate::metrics::Metrics) -> Result<RunEnd, StorageError> {
    let file = match download(&ctx.pool, ctx.file_id).await? {
        Some(f) => f,
        None => {
            return Ok(RunEnd::FileError {
                code: "file_purged",
                message: Text::new(
                    "le fichier envoyé n’est plus conservé (supprimé par la politique de rétention) ; \
                     envoyez-le à nouveau",
                    "the uploaded file is no longer stored (purged by the retention policy); upload it again",
                ),
            });
        }
    };
    let spool = match read(&ctx, file).await {
        Ok(spool) => spool,
        Err(end) => return Ok(end),
    };
    let (tx, mut rx) = mpsc::channel::<Parsed>(QUEUED_BATCHES);
    let parse = ParseJob {
        spool: Some(spool),
        import_type: ctx.import_type,
        checkpoint_row: ctx.checkpoint_row,
        error_rows: ctx.prior_error_rows,
        warning_rows: ctx.prior_warning_rows,
        replay: ctx.dry_run,
        batch_rows: ctx.batch_rows,
        reference: ctx.reference.clone(),
    };
    let parser = tokio::task::spawn_blocking(move || parse.run(&tx));

    let scope = BatchScope {
        job_id: ctx.job_id,
        lease_token: &ctx.lease_token,
        lease: ctx.lease,
        generate_ai: ctx.generate_ai,
    };
    let mut conn = foxflow_storage::pool::conn(&ctx.pool).await?;
    let end = if ctx.dry_run {
        let mut job = foxflow_storage::pool::conn(&ctx.pool).await?;
        dry_run(&mut conn, &mut job, &ctx, &mut rx, scope, metrics).await?
    } else {
        write_batches(&ctx, &mut rx, scope, Writer::Import(&mut conn), metrics).await?
    };
    // Dropping the receiver stops the parser at its next send.
    drop(rx);
    Ok(settle(end, parser.await))
}

/// Reads the whole file in the sandbox; a file that cannot be imported, a
/// worker fault or a shutdown ends the run before anything is written.
async fn read(ctx: &RunContext, file: std::fs::File) -> Result<Spool, RunEnd> {
    let mut shutdown = ctx.shutdown.clone();
    // Dropping the read on shutdown kills the child.
    let read = tokio::select! {
        read = ctx.sandbox.read(file, &ctx.file_name, &ctx.limits) => read,
        _ = shutdown.wait_for(|stop| *stop) => return Err(RunEnd::Interrupted),
    };
    read.map_err(|e| match e {
        SandboxError::File { code, message } => RunEnd::FileError { code, message },
        SandboxError::Worker(message) => RunEnd::WorkerFault(message),
    })
}

/// How a dry run's transaction ends: always rolled back.
enum Unwind {
    Done(RunEnd),
    Failed(StorageError),
}

impl From<StorageError> for Unwind {
    fn from(e: StorageError) -> Self {
        Unwind::Failed(e)
    }
}

impl From<diesel::result::Error> for Unwind {
    fn from(e: diesel::result::Error) -> Self {
        Unwind::Failed(e.into())
    }
}

/// Writes a dry run's batches in one transaction on `conn`, rolled back at
/// the end: each batch sees what the earlier ones wrote, exactly as the
/// import would, and so does the parent cache. Rolling back each batch
/// instead made a key repeated in a later batch `created` twice, and left
/// the cache holding the ids of catégories that no longer existed.
///
/// The transaction lives as long as the run (the hard time limit bounds
/// it). It only writes rows it rolls back, but it holds their locks until
/// then: an import or an AI write touching the same rows meanwhile waits for
/// the dry run to end, or fails on its `statement_timeout` and is retried.
///
/// A dry run resumed after an interruption has nothing committed to resume
/// from: it starts again from row 0, and the rows up to the checkpoint
/// (counted, with their error rows, by the earlier attempt) are written
/// again without being counted again.
async fn dry_run(
    conn: &mut AsyncPgConnection,
    job: &mut AsyncPgConnection,
    ctx: &RunContext,
    rx: &mut mpsc::Receiver<Parsed>,
    scope: BatchScope<'_>,
    metrics: &crate::metrics::Metrics,
) -> Result<RunEnd, StorageError> {
    let unwound = conn
        .transaction::<Infallible, Unwind, _>(async |run| {
            jobs::capture_for(run, ctx.job_id).await?;
            let end = write_batches(ctx, rx, scope, Writer::DryRun { run, job }, metrics).await?;
            Err(Unwind::Done(end))
        })
        .await;
    match unwound {
        Ok(never) => match never {},
        Err(Unwind::Done(end)) => Ok(end),
        Err(Unwind::Failed(e)) => Err(e),
    }
}

/// Writes the parsed batches as they come, until the file ends, fails, or
/// the run must stop.
async fn write_batches(
    ctx: &RunContext,
    rx: &mut mpsc::Receiver<Parsed>,
    scope: BatchScope<'_>,
    mut writer: Writer<'_>,
    metrics: &crate::metrics::Metrics,
) -> Result<RunEnd, StorageError> {
    let mut parents = ParentCache::default();
    while let Some(msg) = rx.recv().await {
        match msg {
            Parsed::Start {
                total_rows,
                unknown_columns,
            } => {
                jobs::set_file_facts(writer.job(), ctx.job_id, total_rows as i64, &unknown_columns).await?;
            }
            Parsed::Failed { code, message } => {
                return Ok(RunEnd::FileError { code, message });
            }
            Parsed::Fault(message) => return Ok(RunEnd::WorkerFault(message)),
            Parsed::Batch(batch) => {
                // One span per committed batch: the trace of an upload ends
                // with its database writes.
                let span = tracing::info_span!(
                    "batch_commit",
                    otel.name = "import batch commit",
                    batch.rows = batch.len(),
                    batch.last_line = batch.last_line,
                    rows.created = tracing::field::Empty,
                    rows.updated = tracing::field::Empty,
                    rows.errors = tracing::field::Empty,
                );
                let written = writer
                    .write(scope, &mut parents, batch)
                    .instrument(span.clone())
                    .await?;
                if let Some(progress) = written.progress {
                    span.record("rows.created", progress.created);
                    span.record("rows.updated", progress.updated);
                    span.record("rows.errors", progress.errors);
                    count(metrics, progress);
                }
                drop(span);
                if written.cancel {
                    return Ok(RunEnd::Cancelled);
                }
                if *ctx.shutdown.borrow() {
                    return Ok(RunEnd::Interrupted);
                }
                if Instant::now() >= ctx.soft_deadline {
                    return Ok(RunEnd::FileError {
                        code: "soft_time_limit",
                        message: text!(
                            "l’import a dépassé sa limite de temps souple ({secs} s) et a été arrêté ; les lignes \
                             déjà enregistrées sont gardées",
                            "the import took longer than its soft time limit ({secs}s) and was stopped; rows \
                             committed so far are kept",
                            secs = ctx.soft_limit.as_secs()
                        ),
                    });
                }
            }
        }
    }
    Ok(RunEnd::Completed)
}

fn count(metrics: &crate::metrics::Metrics, progress: Progress) {
    for (outcome, n) in [
        ("created", progress.created),
        ("updated", progress.updated),
        ("unchanged", progress.unchanged),
        ("error", progress.errors),
    ] {
        metrics.rows.with_label_values(&[outcome]).inc_by(n as u64);
    }
}

/// The run's end once the parsing thread has stopped. A parser that
/// panicked closed its channel early, which looks like the end of the file:
/// without this, the rows after the panic would be silently missing from a
/// job that says `success`. The parser's failure is the job's failure.
fn settle(end: RunEnd, parser: Result<(), tokio::task::JoinError>) -> RunEnd {
    match (end, parser) {
        (RunEnd::Completed, Err(e)) => {
            tracing::error!(error = %e, "the file reader stopped unexpectedly");
            RunEnd::FileError {
                code: "file_unreadable",
                message: Text::new(
                    "le lecteur de fichiers s’est arrêté de façon inattendue pendant la lecture de ce fichier ; \
                     les lignes déjà enregistrées sont gardées",
                    "the file reader stopped unexpectedly while reading this file; rows committed so far are kept",
                ),
            }
        }
        (end, _) => end,
    }
}

/// Copies the stored chunks into an anonymous temporary file: constant
/// memory, and the readers get the `Seek` that XLSX needs. `None` when the
/// file was purged.
async fn download(pool: &DbPool, file_id: Uuid) -> Result<Option<std::fs::File>, StorageError> {
    let mut conn = foxflow_storage::pool::conn(pool).await?;
    if !files::file_available(&mut conn, file_id).await? {
        return Ok(None);
    }
    let mut file = tempfile::tempfile()
        .map_err(|e| StorageError::Migration(format!("cannot create a temporary file: {e}")))?;
    let mut seq = 0;
    while let Some(chunk) = files::read_chunk(&mut conn, file_id, seq).await? {
        file.write_all(&chunk)
            .map_err(|e| StorageError::Migration(format!("cannot write a temporary file: {e}")))?;
        seq += 1;
    }
    Ok(Some(file))
}

struct ParseJob {
    /// The file's rows, read by the sandboxed reader; taken by `run`.
    spool: Option<Spool>,
    import_type: ImportType,
    /// Rows up to here were counted by an earlier attempt.
    checkpoint_row: u64,
    /// Error rows counted so far, earlier attempts included.
    error_rows: i64,
    /// Warning rows counted so far, earlier attempts included.
    warning_rows: i64,
    /// Sends those rows again, as replayed batches (a dry run, whose earlier
    /// writes were rolled back); an import skips them (they are committed).
    replay: bool,
    batch_rows: usize,
    reference: std::sync::Arc<dyn ReferenceData + Send + Sync>,
}

/// Why the parse stopped early.
enum Stop {
    /// The file cannot be imported (`code`, message).
    File(&'static str, Text),
    Fault(String),
}

impl From<SandboxError> for Stop {
    fn from(e: SandboxError) -> Self {
        match e {
            SandboxError::File { code, message } => Stop::File(code, message),
            SandboxError::Worker(message) => Stop::Fault(message),
        }
    }
}

impl ParseJob {
    fn run(mut self, tx: &mpsc::Sender<Parsed>) {
        let stopped = match self.spool.take() {
            Some(spool) => self.parse(spool, tx),
            None => Ok(()),
        };
        let message = match stopped {
            Ok(()) => return,
            Err(Stop::File(code, message)) => Parsed::Failed { code, message },
            Err(Stop::Fault(message)) => Parsed::Fault(message),
        };
        let _ = tx.blocking_send(message);
    }

    fn parse(&mut self, mut spool: Spool, tx: &mpsc::Sender<Parsed>) -> Result<(), Stop> {
        // The reader has read the whole file: its row count and every
        // file-level problem are known before a single row is written (too
        // many rows imports nothing).
        if spool.headers().is_empty() {
            let _ = tx.blocking_send(Parsed::Start {
                total_rows: 0,
                unknown_columns: Vec::new(),
            });
            return Ok(());
        }
        let headers = spool.headers().to_vec();
        let columns =
            ColumnMap::new(self.import_type, &headers).map_err(|e| Stop::File(e.code, e.message))?;
        if tx
            .blocking_send(Parsed::Start {
                total_rows: spool.total_rows(),
                unknown_columns: columns.unknown_columns().to_vec(),
            })
            .is_err()
        {
            return Ok(());
        }

        // Validate and batch, resuming after the checkpoint. The checkpoint
        // is a row's position in processing order: the file's order, except
        // that a term export's parents (its top-level terms, imported as
        // catégories) go first, wherever they are in the file, so every
        // child finds its parent. The order is the same on every attempt.
        let passes: &[Pass] = if self.import_type == ImportType::SousCategories {
            &[Pass::Parents, Pass::Others]
        } else {
            &[Pass::All]
        };
        let mut batch = Batch::default();
        let mut born = Instant::now();
        let mut position = 0u64;
        for (i, pass) in passes.iter().enumerate() {
            if i > 0 {
                spool.rewind()?;
            }
            for row in &mut spool {
                let SheetRow { line, fields } = row?;
                let parsed = columns.parse_row_detailed(&fields, self.reference.as_ref());
                let parent = matches!(&parsed, Ok(p) if matches!(p.record, Record::Categorie(_)));
                match pass {
                    Pass::Parents if !parent => continue,
                    Pass::Others if parent => continue,
                    _ => {}
                }
                position += 1;
                let replay = position <= self.checkpoint_row;
                if replay && !self.replay {
                    continue;
                }
                // A batch is either all replayed or all counted.
                if batch.replay != replay && batch.len() > 0 {
                    if tx
                        .blocking_send(Parsed::Batch(std::mem::take(&mut batch)))
                        .is_err()
                    {
                        return Ok(());
                    }
                    born = Instant::now();
                }
                batch.replay = replay;
                batch.last_line = position;
                match parsed {
                    Ok(parsed) => {
                        batch.normalized += i64::from(parsed.normalized);
                        if !parsed.warnings.is_empty() && !matches!(parsed.record, Record::Skipped(_)) {
                            batch.warning_rows += 1;
                            if !replay {
                                self.warning_rows += 1;
                                if self.warning_rows <= MAX_STORED_WARNING_ROWS {
                                    batch.warnings.push(ErrorRow {
                                        line,
                                        errors: parsed.warnings,
                                        raw: raw_row(&headers, &fields),
                                    });
                                }
                            }
                        }
                        match parsed.record {
                            Record::Skipped(_) => batch.skipped += 1,
                            record => batch.records.push((line, record)),
                        }
                    }
                    Err(errors) => {
                        if !replay {
                            self.error_rows += 1;
                            if self.error_rows > MAX_ERROR_ROWS {
                                return Err(Stop::File(
                                    "too_many_errors",
                                    text!(
                                        "plus de {MAX_ERROR_ROWS} lignes de ce fichier sont en erreur ; l’import \
                                         s’est arrêté à la ligne {line}. Le rapport liste les premières : corrigez \
                                         le fichier (est-ce le bon type d’import ?) et envoyez-le à nouveau",
                                        "more than {MAX_ERROR_ROWS} rows of this file are in error; the import \
                                         stopped at row {line}. The report lists the first ones: fix the file \
                                         (is it the right type of import?) and upload it again"
                                    ),
                                ));
                            }
                        }
                        batch.errors.push(ErrorRow {
                            line,
                            errors,
                            raw: raw_row(&headers, &fields),
                        })
                    }
                }
                if batch.len() >= self.batch_rows || born.elapsed() >= BATCH_MAX_AGE {
                    if tx
                        .blocking_send(Parsed::Batch(std::mem::take(&mut batch)))
                        .is_err()
                    {
                        return Ok(());
                    }
                    born = Instant::now();
                }
            }
        }
        if batch.len() > 0 {
            let _ = tx.blocking_send(Parsed::Batch(batch));
        }
        Ok(())
    }
}

/// One walk over the spooled rows.
enum Pass {
    /// Every row, in file order.
    All,
    /// A term export's top-level terms (the catégories its children need).
    Parents,
    /// Every other row, in file order.
    Others,
}

/// A file with more error rows than this stops with `too_many_errors`
/// instead of storing them all: with at most one error per field and the
/// original row kept under [`RAW_MAX_BYTES`], a hostile file stores at most
/// a few hundred megabytes of errors, a wrong one (the wrong import type)
/// stops early with a reason (docs/security.md).
const MAX_ERROR_ROWS: i64 = 20_000;

/// A job stores the lines of its first this-many warning rows and counts
/// the rest (`warning_rows`): a warning does not stop a file, so without a
/// cap a million lossy rows would store a million lines nobody reads.
pub const MAX_STORED_WARNING_ROWS: i64 = 20_000;

/// What an error row keeps of its original row: its non-empty cells, at most
/// this many, each cut like an error's value. A wide row of empty cells (512
/// columns of `,`) keeps only what it holds.
const RAW_MAX_CELLS: usize = 64;
/// And at most about this many bytes of them in all.
const RAW_MAX_BYTES: usize = 4_096;

/// The original row as `{header: value}`, kept with its errors for the
/// report: the non-empty cells only, at most [`RAW_MAX_CELLS`] of them, each
/// at most `ERROR_VALUE_CHARS` (200) characters; what is left out is counted
/// under `…`.
fn raw_row(headers: &[String], fields: &[String]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    let mut left_out = 0usize;
    let mut bytes = 0;
    for (i, value) in fields.iter().enumerate() {
        if value.trim().is_empty() {
            continue;
        }
        if map.len() == RAW_MAX_CELLS || bytes >= RAW_MAX_BYTES {
            left_out += 1;
            continue;
        }
        let key = headers
            .get(i)
            .map(|h| shorten(h))
            .unwrap_or_else(|| format!("column_{}", i + 1));
        let value = shorten(value);
        bytes += key.len() + value.len();
        map.insert(key, serde_json::Value::String(value));
    }
    if left_out > 0 {
        map.insert(
            "…".into(),
            serde_json::Value::String(format!("{left_out} more cells")),
        );
    }
    serde_json::Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_row_keeps_its_filled_cells_only_and_at_most_64() {
        let headers: Vec<String> = (0..512).map(|i| format!("h{i}")).collect();
        let mut fields = vec![String::new(); 512];
        fields[1] = "x".into();
        let raw = raw_row(&headers, &fields);
        assert_eq!(raw, serde_json::json!({"h1": "x"}));
        let full: Vec<String> = (0..512).map(|i| "y".repeat(i % 3 + 1)).collect();
        let raw = raw_row(&headers, &full);
        let map = raw.as_object().unwrap();
        assert_eq!(map.len(), RAW_MAX_CELLS + 1);
        assert_eq!(map["…"], "448 more cells");
        let long = vec!["z".repeat(10_000)];
        let raw = raw_row(&headers, &long);
        assert!(raw["h0"].as_str().unwrap().chars().count() < 260);
        let wide: Vec<String> = (0..512).map(|_| "w".repeat(500)).collect();
        let raw = raw_row(&headers, &wide);
        assert!(
            raw.to_string().len() < RAW_MAX_BYTES + 600,
            "{}",
            raw.to_string().len()
        );
    }

    #[tokio::test]
    async fn a_parser_that_panics_fails_the_run_instead_of_ending_it() {
        let panicked = tokio::task::spawn_blocking(|| panic!("a reader bug")).await;
        match settle(RunEnd::Completed, panicked) {
            RunEnd::FileError { code, .. } => assert_eq!(code, "file_unreadable"),
            other => panic!("a parser panic ended the run as {other:?}"),
        }
        let finished = tokio::task::spawn_blocking(|| ()).await;
        assert!(matches!(settle(RunEnd::Completed, finished), RunEnd::Completed));
        // An end already decided (shutdown, a file error) stays as it is.
        let panicked = tokio::task::spawn_blocking(|| panic!("a reader bug")).await;
        assert!(matches!(
            settle(RunEnd::Interrupted, panicked),
            RunEnd::Interrupted
        ));
    }
}
