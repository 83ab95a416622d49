//! Builders for hostile spreadsheets: a minimal valid workbook, then what breaks it.

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
    let mut out =
        cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new())).expect("create");
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
