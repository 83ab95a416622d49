//! The sandbox against the real reader binary: rows come back, file errors keep their code, and
//! each budget (CPU, memory, output, wall) ends the read with `file_too_complex` instead of
//! taking the caller with it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use foxflow_sheet_sandbox::{Budget, Sandbox, SandboxError};
use foxflow_sheets::Limits;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const READER: &str = env!("CARGO_BIN_EXE_foxflow-sheet-reader");

fn sandbox(budget: Budget) -> Sandbox {
    Sandbox::new(Some(Path::new(READER)), budget).expect("the reader binary")
}

fn generous() -> Budget {
    Budget {
        cpu: Duration::from_secs(30),
        memory_bytes: 512 << 20,
        output_bytes: 1 << 30,
    }
}

fn file_of(bytes: &[u8]) -> std::fs::File {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    f
}

fn file_error(result: Result<foxflow_sheet_sandbox::Spool, SandboxError>) -> (&'static str, String) {
    match result {
        Err(SandboxError::File { code, message }) => {
            assert!(!message.fr.is_empty() && message.fr != message.en, "{message:?}");
            (code, message.en)
        }
        Err(e) => panic!("a worker error instead of a file error: {e}"),
        Ok(spool) => panic!("read: {:?}", spool.headers()),
    }
}

#[tokio::test]
async fn rows_come_back_counted_and_in_order() {
    let csv = "siren;nom\n732829320;Besançon\n\n552100554;Orléans\n";
    let spool = sandbox(generous())
        .read(file_of(csv.as_bytes()), "a.csv", &Limits::default())
        .await
        .unwrap();
    assert_eq!(spool.headers(), ["siren", "nom"]);
    assert_eq!(spool.total_rows(), 2);
    let rows: Vec<_> = spool.map(|r| r.unwrap()).collect();
    assert_eq!(rows[0].fields, ["732829320", "Besançon"]);
    assert_eq!((rows[1].line, rows[1].fields[1].as_str()), (2, "Orléans"));
}

#[tokio::test]
async fn an_xlsx_is_read_in_the_child_too() {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write(0, 0, "nom").unwrap();
    sheet.write(1, 0, "Plombier").unwrap();
    sheet.write(2, 0, 42).unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let spool = sandbox(generous())
        .read(file_of(&bytes), "c.xlsx", &Limits::default())
        .await
        .unwrap();
    assert_eq!(spool.format(), foxflow_sheets::FileFormat::Xlsx);
    let cells: Vec<String> = spool.map(|r| r.unwrap().fields[0].clone()).collect();
    assert_eq!(cells, ["Plombier", "42"]);
}

#[tokio::test]
async fn a_file_level_error_keeps_the_readers_code() {
    let limits = Limits {
        max_rows: Some(1),
        ..Limits::default()
    };
    let (code, message) = file_error(
        sandbox(generous())
            .read(file_of(b"nom\nA\nB\n"), "r.csv", &limits)
            .await,
    );
    assert_eq!(code, "too_many_rows", "{message}");
    let (code, _) = file_error(
        sandbox(generous())
            .read(file_of(b"PK\x03\x04 not really a zip"), "z.csv", &limits)
            .await,
    );
    assert_eq!(code, "format_mismatch");
}

/// A 15 MB row of 512 legal cells needs ~50 MB to read; with 32 MiB the child's allocation
/// fails and it aborts, and the caller gets a reason, not a crash.
#[tokio::test]
async fn the_memory_budget_ends_the_read_not_the_caller() {
    let mut csv = (0..512).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
    csv.push('\n');
    csv.push_str(&vec!["x".repeat(30_000); 512].join(","));
    csv.push('\n');
    let tight = Budget {
        memory_bytes: 32 << 20,
        ..generous()
    };
    let (code, message) = file_error(
        sandbox(tight)
            .read(file_of(csv.as_bytes()), "w.csv", &Limits::default())
            .await,
    );
    assert_eq!(code, "file_too_complex");
    assert!(message.contains("32 MiB of memory"), "{message}");
    // The same file within a normal budget reads.
    let spool = sandbox(generous())
        .read(file_of(csv.as_bytes()), "w.csv", &Limits::default())
        .await
        .unwrap();
    assert_eq!(spool.total_rows(), 1);
}

/// A file without end (a FIFO fed forever with blank CSV lines, which the reader skips): the
/// child spends its one CPU-second and the kernel stops it.
#[tokio::test]
async fn the_cpu_budget_ends_a_read_that_never_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("endless.csv");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let writer_path = fifo.clone();
    let feeder = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(writer_path).unwrap();
        let _ = w.write_all(b"nom\n");
        let blank = ",,,,\n".repeat(16 * 1024);
        // Ends when the reader is gone (EPIPE).
        while w.write_all(blank.as_bytes()).is_ok() {}
    });
    let file = std::fs::File::open(&fifo).unwrap();
    let one_second = Budget {
        cpu: Duration::from_secs(1),
        ..generous()
    };
    let started = Instant::now();
    let (code, message) = file_error(
        sandbox(one_second)
            .read(file, "endless.csv", &Limits::default())
            .await,
    );
    assert_eq!(code, "file_too_complex");
    assert!(
        message.contains("1 s of CPU") || message.contains("longer than"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    feeder.join().unwrap();
}

#[tokio::test]
async fn the_output_budget_stops_a_reader_that_says_too_much() {
    let mut csv = b"siren,nom\n".to_vec();
    for i in 0..10_000 {
        csv.extend_from_slice(format!("{},name {i}\n", 100_000_000 + i).as_bytes());
    }
    let small = Budget {
        output_bytes: 64 * 1024,
        ..generous()
    };
    let (code, _) = file_error(
        sandbox(small)
            .read(file_of(&csv), "o.csv", &Limits::default())
            .await,
    );
    assert_eq!(code, "file_too_complex");
}

/// Whatever the child writes, the caller decodes it safely: here the "reader" is `echo`, whose
/// output is no frame at all.
#[tokio::test]
async fn output_that_is_not_the_protocol_is_an_unreadable_file() {
    let echo = Sandbox::new(Some(Path::new("/bin/echo")), generous()).unwrap();
    let (code, _) = file_error(echo.read(file_of(b"nom\nA\n"), "e.csv", &Limits::default()).await);
    assert_eq!(code, "file_unreadable");
}

#[tokio::test]
async fn a_missing_reader_is_the_workers_problem() {
    let missing = Sandbox::new(Some(Path::new("/nonexistent/foxflow-sheet-reader")), generous());
    assert!(matches!(missing, Err(SandboxError::Worker(_))));
}
