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

/// Builders for hostile spreadsheets: a minimal valid workbook, then what breaks it.
mod build {
    use super::*;

    pub const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#;
    const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
    const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Feuil1" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;
    pub const SHARED_STRINGS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="2" uniqueCount="2"><si><t>siren</t></si><si><t>nom</t></si></sst>"#;

    /// A worksheet whose first row is `siren`, `nom` (shared strings 0 and 1) followed by `rows`
    /// (already serialised `<row>` elements).
    pub fn sheet(rows: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>{rows}</sheetData></worksheet>"#
        )
    }

    /// The six parts of a workbook, in a ZIP left open for more entries.
    fn workbook_zip(sheet_xml: &str, shared_strings: &str) -> zip::ZipWriter<Cursor<Vec<u8>>> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let parts: [(&str, &[u8]); 6] = [
            ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
            ("_rels/.rels", ROOT_RELS.as_bytes()),
            ("xl/workbook.xml", WORKBOOK.as_bytes()),
            ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.as_bytes()),
            ("xl/sharedStrings.xml", shared_strings.as_bytes()),
            ("xl/worksheets/sheet1.xml", sheet_xml.as_bytes()),
        ];
        for (name, content) in parts {
            zip.start_file(name, deflated()).expect("zip entry");
            zip.write_all(content).expect("zip write");
        }
        zip
    }

    fn deflated() -> zip::write::SimpleFileOptions {
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
    }

    /// A workbook from its sheet XML and shared strings.
    pub fn xlsx(sheet_xml: &str, shared_strings: &str) -> Vec<u8> {
        workbook_zip(sheet_xml, shared_strings)
            .finish()
            .expect("zip")
            .into_inner()
    }

    /// A valid workbook of one good company.
    pub fn good_xlsx() -> Vec<u8> {
        xlsx(
            &sheet(
                r#"<row r="2"><c r="A2"><v>732829320</v></c><c r="B2" t="inlineStr"><is><t>Acme</t></is></c></row>"#,
            ),
            SHARED_STRINGS,
        )
    }

    /// 210 MiB of zeros in one entry (about 200 KiB compressed): over the 200 MiB
    /// decompressed limit, and at a ratio of about 1000:1.
    pub fn zip_bomb() -> Vec<u8> {
        let mut zip = workbook_zip(&sheet(""), SHARED_STRINGS);
        zip.start_file("xl/media/padding.bin", deflated().compression_level(Some(9)))
            .expect("entry");
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..210 {
            zip.write_all(&zeros).expect("write");
        }
        zip.finish().expect("zip").into_inner()
    }

    /// "Billion laughs" in the shared strings: ten levels of ten references.
    pub fn entity_bomb() -> Vec<u8> {
        let mut dtd = String::from("<!DOCTYPE sst [<!ENTITY lol0 \"lol\">");
        for i in 1..10 {
            let refs = format!("&lol{};", i - 1).repeat(10);
            dtd.push_str(&format!("<!ENTITY lol{i} \"{refs}\">"));
        }
        dtd.push_str("]>");
        let shared = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>{dtd}<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3" uniqueCount="3"><si><t>siren</t></si><si><t>nom</t></si><si><t>&lol9;</t></si></sst>"#
        );
        xlsx(
            &sheet(r#"<row r="2"><c r="A2"><v>732829320</v></c><c r="B2" t="s"><v>2</v></c></row>"#),
            &shared,
        )
    }

    /// A real workbook cut in the middle of its ZIP data.
    pub fn truncated_xlsx() -> Vec<u8> {
        let mut bytes = good_xlsx();
        bytes.truncate(bytes.len() / 2);
        bytes
    }

    /// A cell in column 16,385 (one past Excel's XFD).
    pub fn xlsx_16385_columns() -> Vec<u8> {
        xlsx(
            &sheet(
                r#"<row r="2"><c r="A2"><v>732829320</v></c><c r="XFE2" t="inlineStr"><is><t>far</t></is></c></row>"#,
            ),
            SHARED_STRINGS,
        )
    }

    /// Real formula cells: `nom` is a HYPERLINK formula whose cached value is text, and a
    /// second row has a formula as its SIREN and formula-looking text as its name.
    pub fn formula_cells() -> Vec<u8> {
        xlsx(
            &sheet(
                r#"<row r="2"><c r="A2"><v>732829320</v></c><c r="B2" t="str"><f>HYPERLINK("http://evil.example/","Clic ici")</f><v>Clic ici</v></c></row><row r="3"><c r="A3"><f>1+2</f><v>3</v></c><c r="B3" t="inlineStr"><is><t>=HYPERLINK("http://evil.example/","x")</t></is></c></row>"#,
            ),
            SHARED_STRINGS,
        )
    }

    /// One CSV line of `len` bytes after the header: a single 10 MB cell.
    pub fn csv_long_line(len: usize) -> Vec<u8> {
        let mut csv = b"siren,nom\n732829320,".to_vec();
        csv.resize(csv.len() + len, b'a');
        csv.push(b'\n');
        csv
    }

    /// `rows` valid lines, so that what follows lies past the sniffed prefix (8 KiB at upload,
    /// 64 KiB for the CSV encoding).
    pub fn csv_prefix(rows: usize) -> Vec<u8> {
        let mut csv = b"siren,nom\n".to_vec();
        for i in 0..rows {
            csv.extend_from_slice(format!("{:09},Besançon {i}\n", 100_000_000 + i).as_bytes());
        }
        csv
    }

    /// An `.xls` whose one formula is a number padded with `tokens` PtgAttrSpace tokens of 255
    /// spaces (issue 16: 4,000 of them, 18 KB, cost calamine 11.6 CPU-seconds to open), built
    /// from the xlwt fixture in a new compound file.
    pub fn xls_formula_bomb(tokens: usize) -> Vec<u8> {
        use std::io::Read;
        let fixture = super::repo_file("crates/sheets/tests/fixtures/entreprises_xlwt.xls");
        let mut source = cfb::CompoundFile::open(Cursor::new(fixture)).expect("cfb");
        let mut stream = Vec::new();
        source
            .open_stream("/Workbook")
            .expect("Workbook")
            .read_to_end(&mut stream)
            .expect("read");
        let mut rgce = vec![0x1E, 1, 0]; // PtgInt 1
        for _ in 0..tokens {
            rgce.extend_from_slice(&[0x19, 0x40, 0x00, 0xFF]);
        }
        let mut formula = vec![0u8; 20];
        formula[0..2].copy_from_slice(&1u16.to_le_bytes());
        formula[6..14].copy_from_slice(&1.0f64.to_le_bytes());
        formula.extend_from_slice(&(rgce.len() as u16).to_le_bytes());
        formula.extend_from_slice(&rgce);
        let mut record = 0x0006u16.to_le_bytes().to_vec();
        record.extend_from_slice(&(formula.len() as u16).to_le_bytes());
        record.extend_from_slice(&formula);
        // After the last LabelSst (type 0x00FD, length 10): inside the last worksheet.
        let at = stream
            .windows(4)
            .rposition(|w| w == [0xFD, 0x00, 0x0A, 0x00])
            .expect("a LabelSst record")
            + 14;
        stream.splice(at..at, record);
        let mut out = cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new()))
            .expect("create");
        out.create_stream("/Workbook")
            .expect("stream")
            .write_all(&stream)
            .expect("write");
        out.flush().expect("flush");
        out.into_inner().into_inner()
    }

    pub fn csv_columns(n: usize) -> Vec<u8> {
        let mut csv = b"siren,nom\n".to_vec();
        csv.extend_from_slice(vec!["x"; n].join(",").as_bytes());
        csv.push(b'\n');
        csv
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_end_as_file_level_errors_and_the_worker_survives_them() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let worker = ServiceProcess::start("import-worker", "hostile-worker", app.env());

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
            "an XLS formula padded with 4,000 spacing tokens",
            "formula.xls",
            build::xls_formula_bomb(4_000),
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
        let errors = error_rows(&app, &id).await;
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
    let errors = error_rows(&app, &id).await;
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

    // The worker is still the same process, its memory stayed flat, and it imports the next file.
    let id = app.submit("good.xlsx", build::good_xlsx(), "entreprises").await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");
    let peak = peak_rss_mib(worker.pid());
    assert!(
        peak < 256,
        "the worker's peak memory was {peak} MiB after a 210 MiB zip bomb and a 10 MB line"
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

/// Issue 16: rows built to multiply error storage. A 32 KB `naf_codes` cell
/// of 16,383 bad tokens once made 16,383 error rows each holding the cell
/// and the row (3.3 GB of worker memory); 50,000 rows of a 512-column file
/// kept a 75 KB raw-row map per error. Now a cell is one error with its value
/// cut, a raw row keeps its filled cells under 4 KB, and past 20,000 error
/// rows the job stops with `too_many_errors`. The worker is the same process
/// afterwards, its peak memory stays under 256 MB, and it imports the next
/// file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_built_to_multiply_errors_are_bounded() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let worker = ServiceProcess::start("import-worker", "error-bomb-worker", app.env());
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
            .contains("more than 20000 rows of this file are in error"),
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

    let id = app.submit("good.xlsx", build::good_xlsx(), "entreprises").await;
    assert_eq!(app.wait_final(&id, WAIT).await["status"], "success");
    let peak = peak_rss_mib(worker.pid());
    println!("error-bomb worker peak RSS: {peak} MiB");
    assert!(peak < 256, "the worker's peak memory was {peak} MiB");
    let attempts: i64 = db
        .query_one("SELECT max(attempts)::int8 FROM import_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        attempts, 1,
        "no job needed a second attempt: the worker never died"
    );
}
