//! XLSX: a ZIP pre-check with the same `zip` crate calamine uses, then calamine's streaming cell
//! reader on a helper thread (the reader borrows the workbook, so both live on that thread), rows
//! handed over through a bounded channel.
//!
//! What the pre-check stops before calamine allocates for it (see docs/crates.md §4):
//! - decompression bombs: declared sizes, then the real decompressed sizes, against
//!   `max_decompressed_bytes` (total) and `max_compression_ratio` (per entry above 1 MiB);
//! - DTDs / entity declarations in any entry;
//! - a shared-string table whose `uniqueCount` (calamine reserves it at open) or real number of
//!   `<si>` exceeds `max_shared_strings`;
//! - a first sheet whose declared `<dimension>` is wider than `max_columns` or taller than Excel.

use std::io::{self, BufReader, Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use calamine::{Dimensions, Reader, SheetType, Xlsx, XlsxError, open_workbook_from_rs};
use quick_xml::events::Event;
use zip::ZipArchive;
use zip::result::ZipError;

use crate::cell::data_ref_to_string;
use crate::detect::ZIP_MAGIC;
use crate::source::{RawRow, RawSource};
use crate::{Limits, SheetError};
use foxflow_domain::{Text, text};

const FORMAT: &str = "xlsx";
/// Entries smaller than this are not judged on their compression ratio (tiny XML parts compress
/// very well and cannot hurt).
const RATIO_FLOOR: u64 = 1024 * 1024;
/// Rows buffered between the parsing thread and the reader.
const CHANNEL_ROWS: usize = 256;
const EXCEL_MAX_ROWS: u64 = 1_048_576;

type RowResult = Result<RawRow, SheetError>;

pub(crate) struct XlsxSource {
    /// `None` once dropped: the parsing thread then stops at its next send.
    rows: Option<Receiver<RowResult>>,
    /// Joined on drop, so no parse outlives its reader: the worker's memory and CPU are back
    /// when the reader goes, whether the file was read to the end or abandoned halfway.
    parser: Option<JoinHandle<()>>,
}

impl RawSource for XlsxSource {
    fn next_raw(&mut self) -> Option<RowResult> {
        // A closed channel means the parsing thread is done (it sends its error before leaving).
        self.rows.as_ref()?.recv().ok()
    }
}

impl Drop for XlsxSource {
    fn drop(&mut self) {
        // Hang up first, or a thread blocked on a full channel would never see the end. Its
        // remaining work is bounded by the pre-checked limits.
        drop(self.rows.take());
        if let Some(parser) = self.parser.take() {
            // A panic was caught inside the thread already; nothing else can escape it.
            let _ = parser.join();
        }
    }
}

pub(crate) fn open(bytes: Vec<u8>, limits: &Limits) -> Result<XlsxSource, SheetError> {
    if !bytes.starts_with(ZIP_MAGIC) {
        return Err(SheetError::FormatMismatch {
            extension: FORMAT.to_owned(),
            detail: Text::new(
                "son contenu n’est pas une archive ZIP",
                "its content is not a ZIP archive",
            ),
        });
    }
    precheck(&bytes, limits)?;
    let (tx, rx) = sync_channel(CHANNEL_ROWS);
    let limits = limits.clone();
    let parser = std::thread::Builder::new()
        .name("foxflow-sheets-xlsx".to_owned())
        .spawn(move || {
            // Last line of defence: calamine must not take the process down with it.
            let outcome = catch_unwind(AssertUnwindSafe(|| stream_rows(bytes, &limits, &tx)));
            let error = match outcome {
                Ok(Ok(())) | Ok(Err(Stop::ReceiverGone)) => return,
                Ok(Err(Stop::Failed(error))) => error,
                Err(panic) => SheetError::from_panic(FORMAT, panic.as_ref()),
            };
            // The reader may be gone already; nothing left to tell then.
            let _ = tx.send(Err(error));
        })?;
    Ok(XlsxSource {
        rows: Some(rx),
        parser: Some(parser),
    })
}

enum Stop {
    Failed(SheetError),
    /// The `RowReader` was dropped: stop parsing quietly.
    ReceiverGone,
}

impl From<SheetError> for Stop {
    fn from(error: SheetError) -> Self {
        Self::Failed(error)
    }
}

fn calamine_error(error: XlsxError) -> SheetError {
    SheetError::unreadable(FORMAT, error.to_string())
}

fn stream_rows(bytes: Vec<u8>, limits: &Limits, tx: &SyncSender<RowResult>) -> Result<(), Stop> {
    let mut workbook: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).map_err(calamine_error)?;
    let first_sheet = workbook
        .sheets_metadata()
        .iter()
        .find(|sheet| sheet.typ == SheetType::WorkSheet)
        .map(|sheet| sheet.name.clone())
        .ok_or_else(|| SheetError::unreadable(FORMAT, "the workbook has no worksheet"))?;
    let mut cells = workbook
        .worksheet_cells_reader(&first_sheet)
        .map_err(calamine_error)?;
    check_dimensions(cells.dimensions(), limits)?;

    let send = |row: RawRow| tx.send(Ok(row)).map_err(|_| Stop::ReceiverGone);
    let mut row_no = 0u64;
    let mut row_cells: Vec<String> = Vec::new();
    while let Some(cell) = cells.next_cell().map_err(calamine_error)? {
        let value = data_ref_to_string(cell.get_value());
        if value.is_empty() {
            // Styled empty cells cost nothing and do not widen the row.
            continue;
        }
        let (r, c) = cell.get_position();
        let (row, col) = (u64::from(r) + 1, c as usize);
        if col >= limits.max_columns {
            return Err(SheetError::TooManyColumns {
                location: text!("la ligne {row}", "row {row}"),
                columns: col + 1,
                max: limits.max_columns,
            }
            .into());
        }
        if row != row_no {
            if row < row_no {
                return Err(SheetError::unreadable(
                    FORMAT,
                    format!("the sheet's rows are out of order (row {row} after row {row_no})"),
                )
                .into());
            }
            if !row_cells.is_empty() {
                send(RawRow {
                    row: row_no,
                    cells: std::mem::take(&mut row_cells),
                })?;
            }
            row_no = row;
        }
        if row_cells.len() <= col {
            row_cells.resize(col + 1, String::new());
        }
        row_cells[col] = value;
    }
    if !row_cells.is_empty() {
        send(RawRow {
            row: row_no,
            cells: row_cells,
        })?;
    }
    Ok(())
}

/// The `<dimension ref>` of the sheet, when present (calamine reports A1:A1 otherwise).
fn check_dimensions(dimensions: Dimensions, limits: &Limits) -> Result<(), SheetError> {
    let columns = dimensions.end.1 as usize + 1;
    let rows = u64::from(dimensions.end.0) + 1;
    if columns > limits.max_columns {
        return Err(SheetError::TooManyColumns {
            location: text!(
                "l’étendue déclarée de la feuille ({rows} lignes × {columns} colonnes)",
                "the sheet's declared extent ({rows} rows × {columns} columns)"
            ),
            columns,
            max: limits.max_columns,
        });
    }
    if rows > EXCEL_MAX_ROWS {
        return Err(SheetError::TooManyRows {
            detail: text!(
                "la feuille déclare {rows} lignes, plus qu’une feuille Excel ne peut en contenir ({EXCEL_MAX_ROWS})",
                "the sheet declares {rows} rows, more than an Excel sheet can hold ({EXCEL_MAX_ROWS})"
            ),
        });
    }
    Ok(())
}

fn zip_error(error: ZipError) -> SheetError {
    SheetError::unreadable(FORMAT, format!("invalid ZIP container: {error}"))
}

fn check_ratio(name: &str, size: u64, compressed: u64, limits: &Limits) -> Result<(), SheetError> {
    if size > RATIO_FLOOR && size / compressed.max(1) > limits.max_compression_ratio {
        return Err(SheetError::ZipBomb {
            detail: format!(
                "entry {name:?} expands {compressed} bytes into more than {size}, a ratio above {}",
                limits.max_compression_ratio
            ),
        });
    }
    Ok(())
}

fn precheck(bytes: &[u8], limits: &Limits) -> Result<(), SheetError> {
    let max_total = limits.max_decompressed_bytes;
    let mut zip = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| SheetError::unreadable(FORMAT, format!("not a readable ZIP archive ({e})")))?;

    // 1. What the central directory declares: cheap, before inflating anything.
    let mut names = Vec::with_capacity(zip.len());
    let mut declared_total = 0u64;
    for index in 0..zip.len() {
        let entry = zip.by_index_raw(index).map_err(zip_error)?;
        let name = entry.name().map_err(zip_error)?.into_owned();
        declared_total = declared_total.saturating_add(entry.size());
        if declared_total > max_total {
            return Err(SheetError::ZipBomb {
                detail: format!("its entries declare more than {max_total} bytes once decompressed"),
            });
        }
        check_ratio(&name, entry.size(), entry.compressed_size(), limits)?;
        names.push(name);
    }
    // calamine looks parts up case-insensitively, with `\` read as `/`.
    let normalized: Vec<String> = names
        .iter()
        .map(|n| n.replace('\\', "/").to_ascii_lowercase())
        .collect();
    let has = |part: &str| normalized.iter().any(|n| n == part);
    if !has("[content_types].xml") || !has("xl/workbook.xml") {
        return Err(SheetError::FormatMismatch {
            extension: FORMAT.to_owned(),
            detail: Text::new(
                "c’est une archive ZIP sans les parties OOXML [Content_Types].xml et xl/workbook.xml : \
                 ce n’est pas un classeur XLSX",
                "it is a ZIP archive without the OOXML parts [Content_Types].xml and xl/workbook.xml: \
                 not an XLSX workbook",
            ),
        });
    }

    // 2. Inflate every entry for real (declared sizes can lie), scanning for DTDs on the way.
    // Every entry, whatever its name: relationships can point calamine at any of them.
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    for (index, name) in names.iter().enumerate() {
        let mut entry = zip.by_index(index).map_err(zip_error)?;
        let compressed = entry.compressed_size();
        let mut size = 0u64;
        let mut scan = DeclarationScan::default();
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(SheetError::unreadable(
                        FORMAT,
                        format!("entry {name:?} is corrupt ({e})"),
                    ));
                }
            };
            size += n as u64;
            total += n as u64;
            if total > max_total {
                return Err(SheetError::ZipBomb {
                    detail: format!("its content is more than {max_total} bytes once decompressed"),
                });
            }
            check_ratio(name, size, compressed, limits)?;
            if scan.feed(&buf[..n]) {
                return Err(SheetError::XmlEntities { part: name.clone() });
            }
        }
    }

    // 3. Shared strings, read the way calamine reads them.
    for (index, name) in normalized.iter().enumerate() {
        if name.ends_with("sharedstrings.xml") {
            let entry = zip.by_index(index).map_err(zip_error)?;
            check_shared_strings(entry, limits.max_shared_strings)?;
        }
    }
    Ok(())
}

/// Finds `<!DOCTYPE` / `<!ENTITY` (any case) across chunk boundaries.
#[derive(Default)]
struct DeclarationScan {
    carry: Vec<u8>,
}

impl DeclarationScan {
    const PATTERNS: [&'static [u8]; 2] = [b"<!doctype", b"<!entity"];
    /// Longest pattern minus one: enough to catch a pattern split between two chunks.
    const KEEP: usize = 8;

    fn feed(&mut self, chunk: &[u8]) -> bool {
        let mut junction = std::mem::take(&mut self.carry);
        junction.extend_from_slice(&chunk[..chunk.len().min(Self::KEEP)]);
        let found = Self::has_declaration(&junction) || Self::has_declaration(chunk);
        let keep_from = junction.len().saturating_sub(Self::KEEP);
        self.carry = if chunk.len() >= Self::KEEP {
            chunk[chunk.len() - Self::KEEP..].to_vec()
        } else {
            junction[keep_from..].to_vec()
        };
        found
    }

    fn has_declaration(haystack: &[u8]) -> bool {
        haystack
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'<')
            .any(|(i, _)| {
                Self::PATTERNS.iter().any(|p| {
                    haystack
                        .get(i..i + p.len())
                        .is_some_and(|s| s.eq_ignore_ascii_case(p))
                })
            })
    }
}

/// calamine reserves `uniqueCount` strings at open, then pushes one per `<si>`: check both with the
/// same XML reader and settings, before it does.
fn check_shared_strings(entry: impl Read, max: u64) -> Result<(), SheetError> {
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(entry));
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    let mut buf = Vec::with_capacity(1024);
    let mut seen_sst = false;
    let mut count = 0u64;
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                "sst" if !seen_sst => {
                    seen_sst = true;
                    if let Some(declared) = declared_unique_count(e.attributes_raw())
                        && declared > max
                    {
                        return Err(SheetError::TooManySharedStrings { count: declared, max });
                    }
                }
                "si" => {
                    count += 1;
                    if count > max {
                        return Err(SheetError::TooManySharedStrings { count, max });
                    }
                }
                _ => {}
            },
            Ok(Event::DocType(_)) => {
                return Err(SheetError::XmlEntities {
                    part: "sharedStrings.xml".to_owned(),
                });
            }
            // Malformed XML is calamine's to report, with its own message.
            Ok(Event::Eof) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

/// The largest number any `uniqueCount=` in the raw attributes could be read as (leading digits,
/// optional `+`), so that a lenient integer parser cannot see more than we checked.
fn declared_unique_count(raw_attributes: &str) -> Option<u64> {
    let mut largest = None;
    let mut rest = raw_attributes;
    while let Some(at) = rest.find("uniqueCount") {
        rest = &rest[at + "uniqueCount".len()..];
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let value = value.strip_prefix(['"', '\'']).unwrap_or(value).trim_start();
        let value = value.strip_prefix('+').unwrap_or(value);
        let digits = value.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            continue;
        }
        let n = value[..digits].parse::<u64>().unwrap_or(u64::MAX);
        largest = largest.max(Some(n));
    }
    largest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_found_across_chunks() {
        let text = b"<?xml version=\"1.0\"?>\n<!DocType lol [<!ENTITY a \"b\">]><root/>";
        for split in 0..text.len() {
            let mut scan = DeclarationScan::default();
            let (a, b) = text.split_at(split);
            assert!(scan.feed(a) | scan.feed(b), "split at {split}");
        }
        let mut scan = DeclarationScan::default();
        assert!(!scan.feed(b"<!-- comment --><![CDATA[x]]><sst>"));
    }

    #[test]
    fn unique_count_is_read_leniently() {
        assert_eq!(
            declared_unique_count(r#"xmlns="x" count="5" uniqueCount="100000000000""#),
            Some(100_000_000_000)
        );
        assert_eq!(declared_unique_count(r#"uniqueCount = '+42abc'"#), Some(42));
        assert_eq!(declared_unique_count(r#"count="5""#), None);
        assert_eq!(
            declared_unique_count(r#"uniqueCount="99999999999999999999999""#),
            Some(u64::MAX)
        );
    }
}
