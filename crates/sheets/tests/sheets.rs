//! End-to-end tests of foxflow-sheets: real files from /work/shared/data, fixtures written by
//! openpyxl / xlwt (tests/fixtures/make_fixtures.py, committed), and hostile files built here.
//! Every hostile case asserts the exact error code — and none may take the test process down.
//!
//! Over 600 lines on purpose: a table of real and hostile files, one short test each, sharing
//! the file builders at the top.

use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use foxflow_sheets::{
    FileFormat, Limits, RowReader, SheetError, SheetRow, TextEncoding, detect_format, open,
};

const SHARED_DATA: &str = "/work/shared/data";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn shared(rel: &str) -> PathBuf {
    Path::new(SHARED_DATA).join(rel)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Detect from the first 64 KiB and the name, then stream the file, as the worker does.
fn open_path(path: &Path, limits: &Limits) -> Result<RowReader, SheetError> {
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut head = Vec::new();
    (&mut file)
        .take(64 * 1024)
        .read_to_end(&mut head)
        .expect("read head");
    let name = path.file_name().and_then(|n| n.to_str()).expect("file name");
    let format = detect_format(&head, name)?;
    let body = Cursor::new(head).chain(file);
    open(format, Box::new(body), limits)
}

fn open_bytes(format: FileFormat, bytes: Vec<u8>) -> Result<RowReader, SheetError> {
    open(format, Box::new(Cursor::new(bytes)), &Limits::default())
}

fn all_rows(reader: RowReader) -> Result<Vec<SheetRow>, SheetError> {
    reader.collect()
}

/// The error code of whatever failed first: opening or reading any row.
fn failure(opened: Result<RowReader, SheetError>) -> &'static str {
    match opened.and_then(all_rows) {
        Ok(rows) => panic!("expected an error, got {} rows", rows.len()),
        Err(e) => {
            // Every message must be printable for an operator.
            assert!(!e.to_string().is_empty());
            e.code()
        }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// Real data
// ---------------------------------------------------------------------------------------------

#[test]
fn villes_france_csv() {
    let reader = open_path(&shared("real/villes_france.csv"), &Limits::default()).expect("open");
    assert_eq!(reader.headers(), ["Villes"]);
    let info = reader.csv_info().expect("csv info");
    assert_eq!((info.encoding, info.delimiter), (TextEncoding::Utf8, b','));
    let rows = all_rows(reader).expect("rows");
    assert_eq!(rows.len(), 39_192);
    assert_eq!(
        rows[0],
        SheetRow {
            line: 1,
            fields: strings(&["L Abergement Clemenciat (1400)"])
        }
    );
    let last = rows.last().expect("last row");
    assert_eq!(
        (last.line, last.fields.as_slice()),
        (39_192, &strings(&["Monaco (98000)"])[..])
    );
    assert!(rows.iter().enumerate().all(|(i, r)| r.line == i as u64 + 1));
}

#[test]
fn wordpress_export_csv() {
    let reader = open_path(
        &shared("real/wordpress_categories_export.csv"),
        &Limits::default(),
    )
    .expect("open");
    assert_eq!(
        reader.headers(),
        [
            "Term ID",
            "Term Name",
            "Term Slug",
            "Description",
            "Parent ID",
            "Parent Name",
            "Parent Slug",
            "Count"
        ]
    );
    let rows = all_rows(reader).expect("rows");
    assert_eq!(rows.len(), 2_236);
    // A quoted field with a typographic apostrophe, returned without its quotes.
    assert_eq!(
        rows[0].fields[..3],
        strings(&["7", "Artisanat d’art", "artisanat-dart"])
    );
    // HTML entities are the normaliser's business: returned raw.
    let row = rows.iter().find(|r| r.fields[0] == "14").expect("term 14");
    assert_eq!(row.fields[1], "Services à la personne – Aide &amp; Entretien");
    assert_eq!(rows.iter().filter(|r| r.fields[1].contains("&amp;")).count(), 67);
    assert!(rows.iter().all(|r| r.fields.len() >= 8));
}

#[test]
fn naf_sous_classes_csv_with_embedded_newlines() {
    let reader = open_path(&shared("naf/naf_rev2_sous_classes.csv"), &Limits::default()).expect("open");
    assert_eq!(reader.headers()[..2], strings(&["code", "libelle"]));
    let rows = all_rows(reader).expect("rows");
    assert_eq!(rows.len(), 732);
    assert_eq!(rows[0].fields[0], "01.11Z");
    let row = rows.iter().find(|r| r.fields[0] == "88.99A").expect("88.99A");
    assert_eq!(
        row.fields[1],
        "Autre accueil ou accompagnement sans hébergement d’enfants\n et d’adolescents\n"
    );
}

#[test]
fn naf_xls_from_insee() {
    let path = shared("naf/int_courts_naf_rev_2.xls");
    assert_eq!(
        detect_format(&read(&path)[..512], "int_courts_naf_rev_2.xls").ok(),
        Some(FileFormat::Xls)
    );
    let reader = open_path(&path, &Limits::default()).expect("open");
    let headers = reader.headers().to_vec();
    assert_eq!(headers.len(), 5, "{headers:?}");
    assert!(headers[1].to_lowercase().contains("code"), "{headers:?}");
    let rows = all_rows(reader).expect("rows");
    // 21 sections + 88 divisions + 272 groups + 615 classes + 732 sous-classes.
    // 2,109 rows under the header; the 381 "blank" ones still carry their line number in
    // column A, so they are data rows with an empty code.
    assert_eq!(rows.len(), 2_109);
    assert_eq!(rows[1].fields[..2], strings(&["2", "SECTION A"]));
    assert_eq!(rows.iter().filter(|r| !r.fields[1].is_empty()).count(), 1_728);
    let row = rows.iter().find(|r| r.fields[1] == "01.11Z").expect("01.11Z");
    assert!(row.fields[2].starts_with("Culture de céréales"), "{row:?}");
    assert_eq!(
        rows.iter()
            .filter(|r| r.fields[1].len() == 6 && r.fields[1].as_bytes()[2] == b'.')
            .count(),
        732
    );
}

// ---------------------------------------------------------------------------------------------
// Fixtures written by other programs
// ---------------------------------------------------------------------------------------------

fn expected_entreprises() -> Vec<SheetRow> {
    let row = |line, fields: &[&str]| SheetRow {
        line,
        fields: strings(fields),
    };
    vec![
        row(
            1,
            &[
                "732829320",
                "73282932000074",
                "Boulangerie & Fils",
                "01500",
                "2024-03-15",
                "true",
                "0.3",
            ],
        ),
        row(
            2,
            &[
                "356000000",
                "35600000000048",
                "La Poste",
                "75001",
                "2019-07-01T10:30:00",
                "false",
                "2.5",
            ],
        ),
        row(3, &["552100554", "", "Short row", "", "", "", ""]),
    ]
}

const ENTREPRISES_HEADER: [&str; 7] = [
    "siren",
    "siret",
    "nom",
    "code_postal",
    "date_creation",
    "actif",
    "ratio",
];

#[test]
fn xlsx_written_by_openpyxl() {
    let reader = open_path(&fixture("entreprises_openpyxl.xlsx"), &Limits::default()).expect("open");
    assert_eq!(reader.format(), FileFormat::Xlsx);
    assert_eq!(reader.headers(), ENTREPRISES_HEADER);
    assert_eq!(all_rows(reader).expect("rows"), expected_entreprises());
}

#[test]
fn xls_written_by_xlwt() {
    let reader = open_path(&fixture("entreprises_xlwt.xls"), &Limits::default()).expect("open");
    assert_eq!(reader.format(), FileFormat::Xls);
    assert_eq!(reader.headers(), ENTREPRISES_HEADER);
    assert_eq!(all_rows(reader).expect("rows"), expected_entreprises());
}

#[test]
fn windows_1252_semicolon_csv() {
    let reader = open_path(&fixture("windows1252_semicolon.csv"), &Limits::default()).expect("open");
    let info = reader.csv_info().expect("csv info");
    assert_eq!((info.encoding, info.delimiter), (TextEncoding::Windows1252, b';'));
    assert_eq!(reader.headers(), ["nom", "ville", "description", "montant"]);
    let rows = all_rows(reader).expect("rows");
    assert_eq!(
        rows,
        vec![
            SheetRow {
                line: 1,
                fields: strings(&[
                    "Café de l'Église",
                    "Orléans",
                    "Ouvert le dimanche\r\nFermé le \"lundi\"",
                    "12,50 €"
                ])
            },
            // The blank line in between is skipped and not counted.
            SheetRow {
                line: 2,
                fields: strings(&["Crêperie", "Besançon", "simple", "8"])
            },
        ]
    );
}

#[test]
fn utf8_bom_tab_csv() {
    let reader = open_path(&fixture("utf8_bom_tab.csv"), &Limits::default()).expect("open");
    let info = reader.csv_info().expect("csv info");
    assert_eq!((info.encoding, info.delimiter), (TextEncoding::Utf8Bom, b'\t'));
    // BOM removed, trailing empty header cell dropped.
    assert_eq!(reader.headers(), ["Nom", "Code postal", "Ville"]);
    let rows = all_rows(reader).expect("rows");
    assert_eq!(
        rows[0].fields,
        strings(&["Boulangerie\u{a0}Martin", "01500", "Ambérieu-en-Bugey"])
    );
    assert_eq!(rows[1].fields, strings(&["Œuvre d’art", "97400", "Saint-Denis"]));
}

// ---------------------------------------------------------------------------------------------
// Reader behaviour
// ---------------------------------------------------------------------------------------------

#[test]
fn row_reader_is_send() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync + std::error::Error + 'static>() {}
    assert_send::<RowReader>();
    assert_send_sync::<SheetError>();
}

#[test]
fn empty_and_blank_files_have_no_header_and_no_rows() {
    for bytes in [&b""[..], b"\n\n", b";;;\r\n ; \r\n"] {
        let reader = open_bytes(FileFormat::Csv, bytes.to_vec()).expect("open");
        assert!(reader.headers().is_empty());
        assert_eq!(all_rows(reader).expect("rows").len(), 0);
    }
}

#[test]
fn blank_rows_before_the_header_padding_and_extra_cells() {
    let csv = b"\n;;\n nom ; ville ;;\nA;B;;\n;;\nC\nD;E;F;;\n".to_vec();
    let reader = open_bytes(FileFormat::Csv, csv).expect("open");
    assert_eq!(reader.headers(), ["nom", "ville"]);
    let rows = all_rows(reader).expect("rows");
    let fields: Vec<_> = rows.iter().map(|r| (r.line, r.fields.clone())).collect();
    assert_eq!(
        fields,
        vec![
            (1, strings(&["A", "B"])),
            (2, strings(&["C", ""])),
            (3, strings(&["D", "E", "F"]))
        ]
    );
}

#[test]
fn max_rows_is_enforced_on_data_rows() {
    let limits = Limits {
        max_rows: Some(1_000),
        ..Limits::default()
    };
    let mut reader = open_path(&shared("real/villes_france.csv"), &limits).expect("open");
    let mut ok = 0;
    let error = loop {
        match reader.next_row() {
            Some(Ok(_)) => ok += 1,
            Some(Err(e)) => break e,
            None => panic!("expected too_many_rows"),
        }
    };
    assert_eq!((ok, error.code()), (1_000, "too_many_rows"));
    assert!(reader.next_row().is_none(), "errors are final");
}

/// Generates `rows` CSV lines on demand and counts what was pulled from it.
struct Generated {
    rows: u64,
    next: u64,
    pending: Vec<u8>,
    pulled: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            if self.next > self.rows {
                return Ok(0);
            }
            self.pending = if self.next == 0 {
                b"siren;nom\n".to_vec()
            } else {
                format!("{:09};Entreprise numéro {}\n", self.next, self.next).into_bytes()
            };
            self.next += 1;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        self.pulled
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn csv_is_streamed_not_loaded() {
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    // About 60 MB if it were read whole.
    let source = Generated {
        rows: 2_000_000,
        next: 0,
        pending: Vec::new(),
        pulled: pulled.clone(),
    };
    let mut reader = open(FileFormat::Csv, Box::new(source), &Limits::default()).expect("open");
    let first = reader.next_row().expect("a row").expect("ok");
    assert_eq!(first.fields, strings(&["000000001", "Entreprise numéro 1"]));
    let pulled = pulled.load(std::sync::atomic::Ordering::Relaxed);
    assert!(pulled < 512 * 1024, "read {pulled} bytes to return one row");
}

#[test]
fn dropping_an_xlsx_reader_early_stops_its_thread() {
    for _ in 0..20 {
        let reader = open_path(&fixture("entreprises_openpyxl.xlsx"), &Limits::default()).expect("open");
        drop(reader);
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile CSV
// ---------------------------------------------------------------------------------------------

#[test]
fn csv_with_16385_columns() {
    let mut csv = String::from("a,b\n");
    csv.push_str(&vec!["x"; 16_385].join(","));
    csv.push('\n');
    assert_eq!(
        failure(open_bytes(FileFormat::Csv, csv.into_bytes())),
        "too_many_columns"
    );
    // A wide header is refused as well.
    let header = vec!["h"; 16_385].join(";");
    assert_eq!(
        failure(open_bytes(FileFormat::Csv, header.into_bytes())),
        "too_many_columns"
    );
}

#[test]
fn csv_with_a_10_mb_line() {
    let mut csv = b"siren,nom\n123456789,".to_vec();
    csv.resize(csv.len() + 10 * 1024 * 1024, b'a');
    let error = open_bytes(FileFormat::Csv, csv)
        .and_then(all_rows)
        .expect_err("too long");
    assert_eq!(error.code(), "cell_too_long");
    assert!(error.to_string().contains("row 2, column 2"), "{error}");
}

#[test]
fn csv_with_nul_bytes() {
    let head = b"siren;nom\n123;a\0b\n";
    assert_eq!(
        detect_format(head, "upload.csv").err().map(|e| e.code()),
        Some("format_mismatch")
    );
    // Past the sniffed prefix: the rows before are returned, then the file is refused.
    let mut csv = b"siren;nom\n".to_vec();
    for i in 0..10_000 {
        csv.extend_from_slice(format!("{i:09};nom {i}\n").as_bytes());
    }
    csv.extend_from_slice(b"999999999;bad\0row\n");
    let mut reader = open_bytes(FileFormat::Csv, csv).expect("open");
    let good = reader.by_ref().take_while(Result::is_ok).count();
    assert_eq!(good, 10_000);
    let error = open_bytes(FileFormat::Csv, b"a\n\0".to_vec())
        .and_then(all_rows)
        .expect_err("nul");
    assert_eq!(error.code(), "format_mismatch");
}

#[test]
fn csv_with_invalid_utf8_after_the_sniffed_prefix() {
    let mut csv = "siren;ville\n".as_bytes().to_vec();
    for i in 0..10_000 {
        csv.extend_from_slice(format!("{i:09};Besançon\n").as_bytes());
    }
    assert!(csv.len() > 64 * 1024);
    csv.extend_from_slice(b"123456789;Orl\xe9ans\n");
    let mut reader = open_bytes(FileFormat::Csv, csv).expect("open");
    assert_eq!(reader.csv_info().map(|i| i.encoding), Some(TextEncoding::Utf8));
    let mut good = 0;
    let error = loop {
        match reader.next_row() {
            Some(Ok(row)) => {
                assert_eq!(row.fields[1], "Besançon");
                good += 1;
            }
            Some(Err(e)) => break e,
            None => panic!("expected an encoding error"),
        }
    };
    assert_eq!((good, error.code()), (10_000, "encoding"));
    assert!(error.to_string().contains("invalid UTF-8 at byte"), "{error}");
}

#[test]
fn utf16_csv_is_refused() {
    let utf16: Vec<u8> = "\u{feff}a;b\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(
        detect_format(&utf16, "x.csv").err().map(|e| e.code()),
        Some("encoding")
    );
    assert_eq!(failure(open_bytes(FileFormat::Csv, utf16)), "encoding");
}

// ---------------------------------------------------------------------------------------------
// Hostile XLSX (built here with the zip crate)
// ---------------------------------------------------------------------------------------------

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#;
const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Feuil1" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;
const SHARED_STRINGS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3" uniqueCount="3"><si><t>siret</t></si><si><t>nom</t></si><si><t>Café &amp; Co</t></si></sst>"#;
const SHEET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:B2"/><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row><row r="2"><c r="A2"><v>73282932000074</v></c><c r="B2" t="s"><v>2</v></c></row></sheetData></worksheet>"#;

/// The parts of a small valid workbook, to be altered by each test.
fn workbook_parts() -> Vec<(String, Vec<u8>)> {
    [
        ("[Content_Types].xml", CONTENT_TYPES),
        ("_rels/.rels", ROOT_RELS),
        ("xl/workbook.xml", WORKBOOK),
        ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
        ("xl/sharedStrings.xml", SHARED_STRINGS),
        ("xl/worksheets/sheet1.xml", SHEET),
    ]
    .into_iter()
    .map(|(name, text)| (name.to_owned(), text.as_bytes().to_vec()))
    .collect()
}

fn replace_part(parts: &mut [(String, Vec<u8>)], name: &str, content: &str) {
    let part = parts.iter_mut().find(|(n, _)| n == name).expect("part");
    part.1 = content.as_bytes().to_vec();
}

fn zip_parts(parts: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in parts {
        zip.start_file(name.as_str(), options).expect("start_file");
        zip.write_all(content).expect("write");
    }
    zip.finish().expect("finish").into_inner()
}

/// A zip entry of `size` zero bytes, written in 1 MiB slices.
fn zip_with_zeros(mut parts: Vec<(String, Vec<u8>)>, name: &str, size: usize) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(size as u64 >= u32::MAX as u64);
    for (name, content) in parts.drain(..) {
        zip.start_file(name, options).expect("start_file");
        zip.write_all(&content).expect("write");
    }
    zip.start_file(name, options).expect("start_file");
    let slice = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(slice.len());
        zip.write_all(&slice[..n]).expect("write");
        left -= n;
    }
    zip.finish().expect("finish").into_inner()
}

fn xlsx_failure(bytes: Vec<u8>) -> &'static str {
    failure(open_bytes(FileFormat::Xlsx, bytes))
}

#[test]
fn the_base_workbook_reads() {
    let reader = open_bytes(FileFormat::Xlsx, zip_parts(&workbook_parts())).expect("open");
    assert_eq!(reader.headers(), ["siret", "nom"]);
    let rows = all_rows(reader).expect("rows");
    assert_eq!(
        rows,
        vec![SheetRow {
            line: 1,
            fields: strings(&["73282932000074", "Café & Co"])
        }]
    );
}

#[test]
fn xlsx_zip_bomb_300_mb_of_zeros() {
    let bytes = zip_with_zeros(workbook_parts(), "xl/media/image1.bin", 300 * 1024 * 1024);
    assert!(bytes.len() < 1024 * 1024, "compressed to {} bytes", bytes.len());
    assert_eq!(xlsx_failure(bytes), "zip_bomb");
}

#[test]
fn xlsx_compression_ratio() {
    // 20 MiB is under the size budget, but 20 MiB of zeros deflates a thousandfold.
    let bytes = zip_with_zeros(workbook_parts(), "xl/worksheets/sheet2.xml", 20 * 1024 * 1024);
    assert_eq!(xlsx_failure(bytes), "zip_bomb");
}

#[test]
fn xlsx_entry_that_lies_about_its_size() {
    // Declares 1 KiB in both headers but inflates to 20 MiB.
    let name = "xl/worksheets/sheet2.xml";
    let mut bytes = zip_with_zeros(workbook_parts(), name, 20 * 1024 * 1024);
    let real = (20u32 * 1024 * 1024).to_le_bytes();
    let lie = 1024u32.to_le_bytes();
    let mut patched = 0;
    for (signature, size_at) in [(&b"PK\x03\x04"[..], 22usize), (&b"PK\x01\x02"[..], 24)] {
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(4).position(|w| w == signature) {
            let start = at + i;
            if bytes[start + size_at..start + size_at + 4] == real {
                bytes[start + size_at..start + size_at + 4].copy_from_slice(&lie);
                patched += 1;
            }
            at = start + 4;
        }
    }
    assert_eq!(patched, 2);
    // zip 9 (calamine's own) refuses to inflate past the declared size, so calamine would stop
    // there too; the declared sizes checked first are therefore the ones that count.
    let error = open_bytes(FileFormat::Xlsx, bytes).expect_err("lying entry");
    assert_eq!(error.code(), "unreadable_file");
    assert!(
        error.to_string().contains("declared uncompressed size"),
        "{error}"
    );
}

#[test]
fn xlsx_shared_strings_unique_count() {
    let mut parts = workbook_parts();
    let huge = SHARED_STRINGS.replace(r#"uniqueCount="3""#, r#"uniqueCount="100000000000""#);
    replace_part(&mut parts, "xl/sharedStrings.xml", &huge);
    assert_eq!(xlsx_failure(zip_parts(&parts)), "too_many_shared_strings");
}

#[test]
fn xlsx_more_shared_strings_than_declared() {
    let mut parts = workbook_parts();
    let many = SHARED_STRINGS.replace("</sst>", &format!("{}</sst>", "<si><t>x</t></si>".repeat(20)));
    replace_part(&mut parts, "xl/sharedStrings.xml", &many);
    let limits = Limits {
        max_shared_strings: 10,
        ..Limits::default()
    };
    let opened = open(
        FileFormat::Xlsx,
        Box::new(Cursor::new(zip_parts(&parts))),
        &limits,
    );
    assert_eq!(failure(opened), "too_many_shared_strings");
}

#[test]
fn xlsx_dimension_of_the_whole_grid() {
    let mut parts = workbook_parts();
    let sheet = SHEET.replace(
        r#"<dimension ref="A1:B2"/>"#,
        r#"<dimension ref="A1:XFD1048576"/>"#,
    );
    replace_part(&mut parts, "xl/worksheets/sheet1.xml", &sheet);
    assert_eq!(xlsx_failure(zip_parts(&parts)), "too_many_columns");
}

#[test]
fn xlsx_cells_at_a1_and_xfd1048576_without_a_dimension() {
    // The 5 KB file that makes `worksheet_range` abort the process: streamed, it is just too wide.
    let mut parts = workbook_parts();
    let sheet = SHEET.replace(r#"<dimension ref="A1:B2"/>"#, "").replace(
        "</sheetData>",
        r#"<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>"#,
    );
    replace_part(&mut parts, "xl/worksheets/sheet1.xml", &sheet);
    assert_eq!(xlsx_failure(zip_parts(&parts)), "too_many_columns");
}

#[test]
fn xlsx_doctype_and_entities() {
    let doctype =
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>"#;
    let mut parts = workbook_parts();
    replace_part(
        &mut parts,
        "xl/worksheets/sheet1.xml",
        &SHEET.replace(r#"<?xml version="1.0" encoding="UTF-8"?>"#, doctype),
    );
    assert_eq!(xlsx_failure(zip_parts(&parts)), "xml_entities");

    let mut parts = workbook_parts();
    replace_part(
        &mut parts,
        "xl/workbook.xml",
        &WORKBOOK.replace("<workbook ", "<!entity x 'y'><workbook "),
    );
    assert_eq!(xlsx_failure(zip_parts(&parts)), "xml_entities");

    // Whatever the entry is called: relationships can point anywhere.
    let mut parts = workbook_parts();
    parts.push(("xl/worksheets/sheet9.bin".to_owned(), doctype.as_bytes().to_vec()));
    assert_eq!(xlsx_failure(zip_parts(&parts)), "xml_entities");
}

#[test]
fn xlsx_truncated() {
    let bytes = read(&fixture("entreprises_openpyxl.xlsx"));
    for cut in [bytes.len() / 2, bytes.len() - 10, 100] {
        assert_eq!(
            xlsx_failure(bytes[..cut].to_vec()),
            "unreadable_file",
            "cut at {cut}"
        );
    }
}

#[test]
fn text_named_xlsx() {
    let text = b"siren;nom\n123456789;Boulangerie\n".to_vec();
    assert_eq!(
        detect_format(&text, "export.xlsx").err().map(|e| e.code()),
        Some("format_mismatch")
    );
    assert_eq!(xlsx_failure(text), "format_mismatch");
}

#[test]
fn zip_without_ooxml_parts() {
    let bytes = zip_parts(&[("readme.txt".to_owned(), b"hello".to_vec())]);
    assert_eq!(detect_format(&bytes, "archive.xlsx").ok(), Some(FileFormat::Xlsx));
    let error = open_bytes(FileFormat::Xlsx, bytes).expect_err("not a workbook");
    assert_eq!(error.code(), "format_mismatch");
    assert!(error.to_string().contains("not an XLSX workbook"), "{error}");
}

#[test]
fn xlsx_random_garbage_after_a_zip_magic() {
    let mut bytes = b"PK\x03\x04".to_vec();
    bytes.extend((0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    assert_eq!(xlsx_failure(bytes), "unreadable_file");
}

// ---------------------------------------------------------------------------------------------
// Hostile XLS (the xlwt fixture, patched)
// ---------------------------------------------------------------------------------------------

fn xls_failure(bytes: Vec<u8>) -> &'static str {
    failure(open_bytes(FileFormat::Xls, bytes))
}

/// Offsets of every BIFF record header `typ`/`len` in the file.
fn record_offsets(bytes: &[u8], typ: u16, len: u16) -> Vec<usize> {
    let mut needle = typ.to_le_bytes().to_vec();
    needle.extend_from_slice(&len.to_le_bytes());
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == needle.as_slice())
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn xls_renamed_csv() {
    let bytes = read(&fixture("entreprises_xlwt.xls"));
    let error = detect_format(&bytes[..512], "entreprises.csv").expect_err("mismatch");
    assert_eq!(error.code(), "format_mismatch");
    assert!(error.to_string().contains(".xls"), "{error}");
    // And if a caller skips detection anyway, the text decoder refuses the binary.
    assert_eq!(failure(open_bytes(FileFormat::Csv, bytes)), "format_mismatch");
}

#[test]
fn xls_dimensions_asking_for_billions_of_cells() {
    let mut bytes = read(&fixture("entreprises_xlwt.xls"));
    let dims = record_offsets(&bytes, 0x0200, 14);
    assert!(!dims.is_empty());
    for at in dims {
        // Last row + 1 (u32) := 0x7FFF_FFFF: calamine would reserve ~2^31 × 8 cells.
        bytes[at + 8..at + 12].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    }
    assert_eq!(xls_failure(bytes), "sheet_too_large");
}

#[test]
fn xls_cell_at_the_far_corner() {
    let mut bytes = read(&fixture("entreprises_xlwt.xls"));
    let labels = record_offsets(&bytes, 0x00FD, 10);
    let at = *labels.first().expect("a LabelSst record");
    // Row 65535, column 255: a dense 65,536 × 256 range.
    bytes[at + 4..at + 6].copy_from_slice(&0xFFFFu16.to_le_bytes());
    bytes[at + 6..at + 8].copy_from_slice(&0x00FFu16.to_le_bytes());
    assert_eq!(xls_failure(bytes), "sheet_too_large");
}

#[test]
fn xls_directory_chain_that_loops() {
    let mut bytes = read(&fixture("entreprises_xlwt.xls"));
    let le =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
    let (dir_start, fat_sector) = (le(48), le(76));
    // The FAT entry of the first directory sector points back to itself: calamine would follow it
    // forever, growing its buffer.
    let entry = 512 + fat_sector * 512 + 4 * dir_start;
    bytes[entry..entry + 4].copy_from_slice(&(dir_start as u32).to_le_bytes());
    assert_eq!(xls_failure(bytes), "unreadable_file");
}

#[test]
fn xls_truncated_and_garbage() {
    let bytes = read(&fixture("entreprises_xlwt.xls"));
    for cut in [bytes.len() / 2, 600, 100] {
        assert_eq!(
            xls_failure(bytes[..cut].to_vec()),
            "unreadable_file",
            "cut at {cut}"
        );
    }
    let text = b"not an xls".to_vec();
    assert_eq!(
        detect_format(&text, "x.xls").err().map(|e| e.code()),
        Some("format_mismatch")
    );
    assert_eq!(xls_failure(text), "format_mismatch");
}

/// Found by fuzzing (`fuzz/`, target `sheets_xls_biff`): calamine 0.38's `parse_bof` slices the
/// first two bytes of a BOF record without checking its length, and panics on a BOF of 0 bytes.
/// The panic is contained (calamine runs under `catch_unwind`) and the file is `unreadable_file`.
#[test]
fn xls_bof_record_too_short_for_calamine() {
    let mut bytes = read(&fixture("entreprises_xlwt.xls"));
    let bofs = record_offsets(&bytes, 0x0809, 16);
    let at = *bofs.first().expect("the workbook's BOF record");
    // Length 0: the 16 bytes that followed are now read as the next records.
    bytes[at + 2..at + 4].copy_from_slice(&0u16.to_le_bytes());
    let error = open_bytes(FileFormat::Xls, bytes)
        .and_then(all_rows)
        .expect_err("refused");
    assert_eq!(error.code(), "unreadable_file", "{error}");
}

#[test]
fn xls_every_single_byte_corruption_is_survived() {
    // Not a code assertion: whatever a flipped byte does, the process survives and answers.
    let original = read(&fixture("entreprises_xlwt.xls"));
    for at in (0..original.len()).step_by(7) {
        let mut bytes = original.clone();
        bytes[at] ^= 0xFF;
        let _ = open_bytes(FileFormat::Xls, bytes).and_then(all_rows);
    }
}

#[test]
fn xlsx_every_single_byte_corruption_is_survived() {
    let original = zip_parts(&workbook_parts());
    for at in 0..original.len() {
        let mut bytes = original.clone();
        bytes[at] ^= 0x55;
        let _ = open_bytes(FileFormat::Xlsx, bytes).and_then(all_rows);
    }
}

/// The issue 16 formula bomb, built from a real workbook: one FORMULA record (a number, then
/// `tokens` PtgAttrSpace tokens of 255 spaces each) inserted after the first worksheet's first
/// text cell, in a compound file written anew.
fn xls_with_formula_bomb(tokens: usize) -> Vec<u8> {
    let mut source =
        cfb::CompoundFile::open(Cursor::new(read(&fixture("entreprises_xlwt.xls")))).expect("cfb");
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
    formula[0..2].copy_from_slice(&1u16.to_le_bytes()); // row 1, column 0
    formula[6..14].copy_from_slice(&1.0f64.to_le_bytes());
    formula.extend_from_slice(&(rgce.len() as u16).to_le_bytes());
    formula.extend_from_slice(&rgce);
    let mut record = 0x0006u16.to_le_bytes().to_vec();
    record.extend_from_slice(&(formula.len() as u16).to_le_bytes());
    record.extend_from_slice(&formula);
    // After the last LabelSst of the stream: inside the last worksheet, so no BoundSheet offset moves.
    let at = record_offsets(&stream, 0x00FD, 10)
        .last()
        .copied()
        .expect("a LabelSst record")
        + 14;
    stream.splice(at..at, record);
    // Version 3 (512-byte sectors), as Excel and xlwt write them.
    let mut out =
        cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new())).expect("create");
    out.create_stream("/Workbook")
        .expect("stream")
        .write_all(&stream)
        .expect("write");
    out.flush().expect("flush");
    out.into_inner().into_inner()
}

#[test]
fn xls_formula_padded_with_spacing_tokens() {
    // The same construction with three tokens is an ordinary workbook.
    let reader = open_bytes(FileFormat::Xls, xls_with_formula_bomb(3)).expect("open");
    assert!(!all_rows(reader).expect("rows").is_empty());
    // 4,000 tokens: 11.6 CPU-seconds in calamine unchecked; refused before it runs.
    let started = std::time::Instant::now();
    assert_eq!(xls_failure(xls_with_formula_bomb(4_000)), "file_too_complex");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
