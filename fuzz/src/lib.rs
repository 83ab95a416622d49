//! What the fuzz targets share: reading a file the way the import worker does, and the
//! invariants every successful read must keep. A panic anywhere here is a finding; an `Err`
//! from the library is the expected answer to a bad file.

use std::io::{Cursor, Write};
use std::sync::Once;

use foxflow_sheets::{FileFormat, Limits, SheetError};

/// The production limits, scaled down so one input stays cheap: the point is that the limits
/// hold (nothing allocates past them, nothing panics), and that does not depend on their size.
/// `-rss_limit_mb` in `scripts/fuzz.sh` is far above what these limits allow, so an input that
/// trips it is a real escape.
pub fn limits() -> Limits {
    Limits {
        max_cell_chars: 32_767,
        max_columns: 512,
        max_decompressed_bytes: 32 * 1024 * 1024,
        max_compression_ratio: 100,
        max_shared_strings: 200_000,
        max_rows: Some(20_000),
    }
}

/// libfuzzer-sys makes every panic abort, even one the code under test catches on purpose.
/// `foxflow-sheets` runs calamine under `catch_unwind` by design (calamine 0.38 still slices short
/// BIFF records without checking, e.g. `parse_bof` on a BOF of 0 bytes): a panic raised inside
/// calamine is left to unwind to that `catch_unwind`, and `read_all` then checks it became an
/// `unreadable_file` error. Any other panic — in our code, or one escaping to the harness — still
/// aborts and is a finding.
pub fn contain_calamine_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_calamine = info.location().is_some_and(|l| l.file().contains("/calamine-"));
            if !in_calamine {
                abort(info);
            }
        }));
    });
}

/// Detects the format the way the upload and the worker do (from the head and a name), then
/// opens the file as `format` whatever detection said — the readers' own checks must hold on
/// their own — and reads every row, checking the reader's promises.
pub fn read_all(format: FileFormat, data: &[u8]) {
    contain_calamine_panics();
    let name = match format {
        FileFormat::Csv => "upload.csv",
        FileFormat::Xlsx => "upload.xlsx",
        FileFormat::Xls => "upload.xls",
    };
    let head = &data[..data.len().min(64 * 1024)];
    if let Ok(detected) = foxflow_sheets::detect_format(head, name) {
        assert_eq!(detected, format, "detection may only confirm the extension");
    }
    let limits = limits();
    let reader = match foxflow_sheets::open(format, Box::new(Cursor::new(data.to_vec())), &limits) {
        Ok(reader) => reader,
        Err(e) => return check_error(&e),
    };
    let headers = reader.headers().to_vec();
    assert!(headers.len() <= limits.max_columns, "header wider than the limit");
    assert!(
        headers.last().is_none_or(|h| !h.is_empty()),
        "trailing empty headers are dropped"
    );
    let mut reader = reader;
    let mut expected_line = 1u64;
    while let Some(row) = reader.next_row() {
        match row {
            Ok(row) => {
                assert_eq!(row.line, expected_line, "data rows are numbered 1, 2, 3…");
                expected_line += 1;
                assert!(row.fields.len() >= headers.len(), "rows are padded to the header");
                assert!(
                    row.fields.len() <= limits.max_columns.max(headers.len()),
                    "a row wider than the limit was returned"
                );
                assert!(
                    row.fields.iter().any(|f| !f.trim().is_empty()),
                    "blank rows are skipped"
                );
                for f in &row.fields {
                    assert!(f.chars().count() <= limits.max_cell_chars, "cell over the limit");
                }
                assert!(
                    limits.max_rows.is_none_or(|max| row.line <= max),
                    "more rows than max_rows"
                );
            }
            Err(e) => {
                check_error(&e);
                assert!(reader.next_row().is_none(), "an error is final");
                break;
            }
        }
    }
}

fn check_error(e: &SheetError) {
    // Every error is explainable and coded; the message must be buildable without panicking.
    assert!(!e.code().is_empty());
    let _ = e.to_string();
    // Only a failing source is transient, and the fuzz source (a Cursor) never fails.
    assert!(!e.is_transient(), "a file problem reported as transient: {e}");
}

/// A ZIP built from `(name, content)` parts, as a structure-aware XLSX input.
pub fn zip_parts(parts: &[(String, &[u8])], deflate: bool) -> Vec<u8> {
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in parts {
        // Duplicate or invalid names are refused by the writer: skip that part.
        if zip.start_file(name.as_str(), options).is_err() {
            continue;
        }
        let _ = zip.write_all(content);
    }
    zip.finish().map(Cursor::into_inner).unwrap_or_default()
}

/// Splits a structure-aware XLSX input into parts: `\0\0PART:` starts a part, its name runs to
/// the first newline, the content follows. Written this way so that seeds are readable and
/// libFuzzer's mutations of the XML stay local.
pub fn split_parts(data: &[u8]) -> Vec<(String, &[u8])> {
    const MARK: &[u8] = b"\0\0PART:";
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = find(rest, MARK) {
        rest = &rest[at + MARK.len()..];
        let end = find(rest, MARK).unwrap_or(rest.len());
        let chunk = &rest[..end];
        let (name, content) = match chunk.iter().position(|&b| b == b'\n') {
            Some(nl) => (&chunk[..nl], &chunk[nl + 1..]),
            None => (chunk, &[][..]),
        };
        parts.push((String::from_utf8_lossy(name).into_owned(), content));
        rest = &rest[end..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An OLE2 compound file holding `workbook` as its `Workbook` stream, as a structure-aware XLS
/// input (libFuzzer then mutates BIFF records, not sector tables).
pub fn compound_file(workbook: &[u8]) -> Option<Vec<u8>> {
    let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).ok()?;
    let mut stream = file.create_stream("/Workbook").ok()?;
    stream.write_all(workbook).ok()?;
    drop(stream);
    file.flush().ok()?;
    Some(file.into_inner().into_inner())
}

/// Text cut into rows (lines) of cells (`\t`, `;` or `,`, whichever comes first), for the
/// domain targets.
pub fn rows_of(text: &str) -> Vec<Vec<String>> {
    let sep = text
        .chars()
        .find(|c| matches!(c, '\t' | ';' | ','))
        .unwrap_or(',');
    text.lines()
        .map(|line| line.split(sep).map(str::to_owned).collect())
        .collect()
}
