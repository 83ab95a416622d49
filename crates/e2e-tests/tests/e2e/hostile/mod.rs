//! Issue 9's hostile-file corpus at job level: each file is uploaded through the API and
//! either refused at the door (4xx, nothing stored), or ends its job as `error` with a
//! file-level reason, or imports with its formula text inert — and the worker, a real
//! `import-worker` process, survives all of it with flat memory and imports the next file.
//! The files are built here (no committed binaries); `crates/sheets/tests/sheets.rs` checks
//! the same shapes against the reader itself, with exact error codes.

use foxflow_testkit::chaos::ServiceProcess;
use foxflow_testkit::{TestApp, TestOptions};
use serde_json::Value;
use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);

mod build;

fn repo_file(rel: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)).expect("repo file")
}

async fn code_of(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_are_refused_at_upload_when_their_content_betrays_them() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01".to_vec();
    let mut nul_early = b"siren,nom\n732829320,Acme".to_vec();
    nul_early.extend_from_slice(&[0, 0, 0]);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "wrong magic: a PNG named .xlsx",
            "logo.xlsx",
            png.clone(),
            415,
            "unsupported_media_type",
        ),
        (
            "wrong magic: a PNG named .xls",
            "logo.xls",
            png.clone(),
            415,
            "unsupported_media_type",
        ),
        (
            "wrong magic: a PNG named .csv",
            "logo.csv",
            png,
            415,
            "unsupported_media_type",
        ),
        (
            "an XLS renamed .csv",
            "entreprises.csv",
            repo_file("crates/sheets/tests/fixtures/entreprises_xlwt.xls"),
            415,
            "unsupported_media_type",
        ),
        (
            "an XLSX renamed .xls",
            "entreprises.xls",
            build::good_xlsx(),
            415,
            "unsupported_media_type",
        ),
        (
            "NUL bytes in the first 8 KiB",
            "nul.csv",
            nul_early,
            415,
            "unsupported_media_type",
        ),
        (
            "an empty .xlsx",
            "empty.xlsx",
            Vec::new(),
            415,
            "unsupported_media_type",
        ),
        (
            "a path-traversal name without an extension",
            "../../etc/passwd",
            b"siren,nom\n".to_vec(),
            415,
            "unsupported_media_type",
        ),
    ];
    for (what, name, bytes, status, code) in cases {
        let resp = app.upload(name, bytes, "entreprises", &[]).await;
        assert_eq!(code_of(resp).await, (status, code.to_owned()), "{what}");
    }
    let db = app.pg().await;
    let stored: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM stored_files) + (SELECT count(*) FROM import_jobs)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "a refused upload leaves nothing behind");
}

/// `VmHWM` (peak resident memory) of a process, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the worker is alive");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib / 1024
}

async fn error_rows(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, errors) = app
        .get_json(&format!("/api/v1/imports/{id}/errors?per_page=50"))
        .await;
    assert_eq!(status, 200, "{errors}");
    errors["items"].as_array().cloned().unwrap_or_default()
}

/// Files built to hurt a parser: each ends its job `error` with its file-level code.
async fn file_level_errors(app: &TestApp) {
    // (what, file name, bytes, file-level code the job must end with)
    let failing: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "a truncated XLSX",
            "cut.xlsx",
            build::truncated_xlsx(),
            "unreadable_file",
        ),
        (
            "a zip bomb (210 MiB of zeros)",
            "bomb.xlsx",
            build::zip_bomb(),
            "zip_bomb",
        ),
        (
            "an XML entity bomb",
            "lol.xlsx",
            build::entity_bomb(),
            "xml_entities",
        ),
        (
            "a 10 MB single line",
            "line.csv",
            build::csv_long_line(10_000_000),
            "cell_too_long",
        ),
        (
            "NUL bytes past the sniffed prefix",
            "nul.csv",
            [build::csv_prefix(2_000), b"732829320,a\0b\n".to_vec()].concat(),
            "format_mismatch",
        ),
        (
            "invalid UTF-8 in a UTF-8 file",
            "utf8.csv",
            [build::csv_prefix(4_000), b"732829320,Orl\xe9ans\n".to_vec()].concat(),
            "encoding",
        ),
        (
            "16,385 columns (CSV)",
            "wide.csv",
            build::csv_columns(16_385),
            "too_many_columns",
        ),
        (
            "a cell in column 16,385 (XLSX)",
            "wide.xlsx",
            build::xlsx_16385_columns(),
            "too_many_columns",
        ),
        (
            "an XLS formula padded with 16,000 spacing tokens (minutes of CPU unchecked)",
            "formula.xls",
            build::xls_formula_bomb(16_000),
            "file_too_complex",
        ),
    ];
    for (what, name, bytes, code) in failing {
        let id = app.submit(name, bytes, "entreprises").await;
        let job = app.wait_final(&id, WAIT).await;
        assert_eq!(job["status"], "error", "{what}: {job}");
        assert_eq!(
            job["total_rows"], 0,
            "{what}: nothing is counted from a bad file: {job}"
        );
        assert!(
            job["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: the reason is stored: {job}"
        );
        let errors = error_rows(app, &id).await;
        assert_eq!(errors.len(), 1, "{what}: one file-level error: {errors:?}");
        assert_eq!(errors[0]["row"], 0, "{what}: row 0 is the file: {errors:?}");
        assert_eq!(errors[0]["code"], code, "{what}: {errors:?}");
    }
    let imported: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        imported, 0,
        "a file that fails imports nothing, not even its good rows"
    );

    // Accepted, with an inert result.
    let traversal = app
        .upload(
            "../../../etc/cron.d/villes.csv",
            b"nom,code_postal\nLyon,69001\n".to_vec(),
            "villes",
            &[],
        )
        .await;
    assert_eq!(traversal.status(), 202);
    let job: Value = traversal.json().await.unwrap();
    assert_eq!(
        job["file_name"], "villes.csv",
        "the name is a label, never a path"
    );
    let job = app.wait_final(job["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(
        (job["status"].as_str(), job["created_rows"].as_i64()),
        (Some("success"), Some(1))
    );
    assert!(!std::path::Path::new("/etc/cron.d/villes.csv").exists());
    let backslashes = app
        .upload(
            "..\\..\\Windows\\evil.csv",
            b"nom\nA\n".to_vec(),
            "categories",
            &[],
        )
        .await;
    assert_eq!(backslashes.status(), 202);
    assert_eq!(
        backslashes.json::<Value>().await.unwrap()["file_name"],
        "evil.csv",
        "Windows separators are path separators too"
    );
    // Control characters are not valid in a part header: a line break would inject one. The
    // form is refused (and `sanitize_file_name` drops them anyway, see its unit test).
    let injected = app
        .upload(
            "evil\r\nContent-Type: text/html\r\n.csv",
            b"nom\nA\n".to_vec(),
            "categories",
            &[],
        )
        .await;
    assert_eq!(code_of(injected).await, (400, "invalid_multipart".to_owned()));

    for (what, name, bytes) in [
        ("an empty file", "empty.csv", Vec::new()),
        ("a header-only file", "header.csv", b"siren,nom\r\n".to_vec()),
        (
            "a header-only XLSX",
            "header.xlsx",
            build::xlsx(&build::sheet(""), build::SHARED_STRINGS),
        ),
    ] {
        let id = app.submit(name, bytes, "entreprises").await;
        let job = app.wait_final(&id, WAIT).await;
        assert_eq!(job["status"], "success", "{what}: {job}");
        assert_eq!(job["total_rows"], 0, "{what}: {job}");
    }

    // Formula cells: the cached value is imported as text, nothing is evaluated, and the
    // formula-looking text of the refused row comes back as text in the report.
    let id = app
        .submit("formulas.xlsx", build::formula_cells(), "entreprises")
        .await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "partial", "{job}");
    assert_eq!(
        (job["created_rows"].as_i64(), job["error_rows"].as_i64()),
        (Some(1), Some(1))
    );
    let nom: String = app
        .pg()
        .await
        .query_one("SELECT nom FROM entreprises WHERE siren = '732829320'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(nom, "Clic ici", "the cached value, never the formula");
    let errors = error_rows(app, &id).await;
    assert_eq!(
        errors[0]["raw"]["nom"],
        "=HYPERLINK(\"http://evil.example/\",\"x\")"
    );
    let report = app
        .client
        .get(app.url(&format!("/api/v1/imports/{id}/report.xlsx")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    let bytes = report.bytes().await.unwrap().to_vec();
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    use calamine::Reader;
    for sheet in wb.sheet_names() {
        let formulas = wb.worksheet_formula(&sheet).unwrap();
        assert!(
            formulas.used_cells().all(|(_, _, f)| f.is_empty()),
            "no formula in the exported report ({sheet})"
        );
    }
}

/// Issue 16: rows built to multiply error storage. A 32 KB `naf_codes` cell
/// of 16,383 bad tokens once made 16,383 error rows each holding the cell
/// and the row (3.3 GB of worker memory); 50,000 rows of a 512-column file
/// kept a 75 KB raw-row map per error. Now a cell is one error with its value
/// cut, a raw row keeps its filled cells under 4 KB, and past 20,000 error
/// rows the job stops with `too_many_errors`. The worker is the same process
/// afterwards, its peak memory stays under 256 MB, and it imports the next
/// file.
async fn rows_built_to_multiply_errors_are_bounded(app: &TestApp) {
    let db = app.pg().await;
    let started = std::time::Instant::now();

    let bomb = format!(
        "nom,categorie,naf_codes\nPlombier,Bâtiment,{}\n",
        vec!["a"; 16_383].join(" ")
    );
    let id = app.submit("naf.csv", bomb.into_bytes(), "sous_categories").await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["error_rows"], 1, "{job}");
    let stored: i64 = db
        .query_one(
            "SELECT COALESCE(sum(length(COALESCE(value, '')) + length(message) + length(COALESCE(raw::text, ''))), 0)::int8
             FROM import_errors WHERE job_id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        stored < 4_000,
        "one short error for the cell, not 16,383 copies: {stored} characters"
    );

    let mut wide = String::from("siren,nom");
    for i in 3..=512 {
        wide.push_str(&format!(",c{i}"));
    }
    wide.push('\n');
    for _ in 0..50_000 {
        wide.push_str(",x\n");
    }
    let id = app.submit("wide.csv", wide.into_bytes(), "entreprises").await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "error", "{job}");
    assert!(
        job["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("plus de 20000 lignes de ce fichier sont en erreur"),
        "{job}"
    );
    let (rows, bytes): (i64, i64) = {
        let r = db
            .query_one(
                "SELECT count(DISTINCT row)::int8, COALESCE(sum(length(COALESCE(raw::text, ''))), 0)::int8
                 FROM import_errors WHERE job_id = $1::text::uuid",
                &[&id],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(rows <= 20_001, "stopped at the cap: {rows} error rows");
    assert!(
        bytes < 20_001 * 100,
        "raw rows keep their filled cells only: {bytes} bytes"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// The whole hostile corpus through one real `import-worker` process: every
/// file ends as its reason says, and afterwards the worker is the same
/// process, never needed a second attempt, imports the next file, and its
/// peak memory over the whole corpus (printed) stayed under 256 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_corpus_ends_in_reasons_and_one_worker_survives_it_all() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let worker = ServiceProcess::start("import-worker", "hostile-worker", app.env());
    file_level_errors(&app).await;
    rows_built_to_multiply_errors_are_bounded(&app).await;
    worker_survived(&app, &worker, "the whole hostile corpus").await;
}

/// A file within every reader limit whose parse needs more memory than the
/// reader child may take (one 15 MB row, with `IMPORT_PARSE_MEMORY_MB=32`):
/// the child dies at its budget, the job says why, the worker carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_past_the_readers_memory_budget_ends_its_job_not_the_worker() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        env: vec![("MAX_IMPORT_FILE_BYTES".into(), "20000000".into())],
        ..Default::default()
    })
    .await;
    let mut env = app.env().clone();
    env.insert("IMPORT_PARSE_MEMORY_MB".into(), "32".into());
    let worker = ServiceProcess::start("import-worker", "budget-worker", &env);
    let mut csv = (0..512).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
    csv.push('\n');
    csv.push_str(&vec!["x".repeat(30_000); 512].join(","));
    csv.push('\n');
    let id = app.submit("wide.csv", csv.into_bytes(), "entreprises").await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "error", "{job}");
    let last_error = job["last_error"].as_str().unwrap_or_default();
    assert!(last_error.contains("32 Mio de mémoire"), "{job}");
    let errors = error_rows(&app, &id).await;
    assert_eq!(errors[0]["code"], "file_too_complex", "{errors:?}");
    worker_survived(&app, &worker, "a file past the memory budget").await;
}

/// The worker imports the next file, is still alive, never needed a second
/// attempt, and peaked under 256 MB.
async fn worker_survived(app: &TestApp, worker: &ServiceProcess, after: &str) {
    let id = app.submit("good.xlsx", build::good_xlsx(), "entreprises").await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");
    let peak = peak_rss_mib(worker.pid());
    println!("import-worker peak RSS after {after}: {peak} MiB");
    assert!(
        peak < 256,
        "the worker's peak memory was {peak} MiB after {after}"
    );
    let attempts: i64 = app
        .pg()
        .await
        .query_one("SELECT max(attempts)::int8 FROM import_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        attempts, 1,
        "no job needed a second attempt: the worker never died"
    );
}
