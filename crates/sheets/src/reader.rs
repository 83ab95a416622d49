//! The format-independent part: header detection, blank rows, padding, limits, numbering.

use std::io::Read;

use crate::csv_source::{self, CsvInfo};
use crate::source::{RawRow, RawSource};
use crate::{FileFormat, Limits, SheetError, SheetRow, xls, xlsx};
use foxflow_domain::text;

/// Rows of one uploaded file, header first. Build it with [`open`]; it is `Send`, so it can move
/// into `spawn_blocking`. Also an `Iterator<Item = Result<SheetRow, SheetError>>`.
pub struct RowReader {
    source: Box<dyn RawSource>,
    format: FileFormat,
    csv_info: Option<CsvInfo>,
    headers: Vec<String>,
    limits: Limits,
    returned: u64,
    finished: bool,
}

/// Open an upload whose format was decided by [`crate::detect_format`].
///
/// CSV is streamed from `source`. XLSX and XLS are read into memory first (calamine needs
/// `Read + Seek`), at most `limits.max_decompressed_bytes` of them, then checked before calamine
/// sees them. The header row is read before this returns, so a file-level problem in the
/// container or the header is reported here. An empty file (or sheet) is not an error: it has no
/// headers and no rows.
pub fn open(
    format: FileFormat,
    source: Box<dyn Read + Send>,
    limits: &Limits,
) -> Result<RowReader, SheetError> {
    let (raw, csv_info): (Box<dyn RawSource>, _) = match format {
        FileFormat::Csv => {
            let (csv, info) = csv_source::open(source, limits)?;
            (Box::new(csv), Some(info))
        }
        FileFormat::Xlsx => {
            let bytes = read_capped(source, limits.max_decompressed_bytes)?;
            (Box::new(xlsx::open(bytes, limits)?), None)
        }
        FileFormat::Xls => {
            let bytes = read_capped(source, limits.max_decompressed_bytes)?;
            (Box::new(xls::open(bytes, limits)?), None)
        }
    };
    let mut reader = RowReader {
        source: raw,
        format,
        csv_info,
        headers: Vec::new(),
        limits: limits.clone(),
        returned: 0,
        finished: false,
    };
    reader.read_header()?;
    Ok(reader)
}

fn read_capped(source: Box<dyn Read + Send>, max: u64) -> Result<Vec<u8>, SheetError> {
    let mut bytes = Vec::new();
    source.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(SheetError::FileTooLarge { max });
    }
    Ok(bytes)
}

fn is_blank(cell: &str) -> bool {
    cell.trim().is_empty()
}

impl RowReader {
    /// The header row: the first row with a non-blank cell, each cell trimmed, trailing empty
    /// cells dropped. Empty for an empty file.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Encoding and delimiter detected for a CSV; `None` for spreadsheets.
    pub fn csv_info(&self) -> Option<CsvInfo> {
        self.csv_info
    }

    /// The next non-blank data row, `None` at the end. An `Err` is file-level and final: every
    /// later call returns `None`.
    pub fn next_row(&mut self) -> Option<Result<SheetRow, SheetError>> {
        if self.finished {
            return None;
        }
        let result = self.next_data_row();
        if !matches!(result, Some(Ok(_))) {
            self.finished = true;
        }
        result
    }

    fn next_data_row(&mut self) -> Option<Result<SheetRow, SheetError>> {
        let mut raw = match self.next_non_blank()? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        if let Some(max) = self.limits.max_rows
            && self.returned >= max
        {
            return Some(Err(SheetError::TooManyRows {
                detail: text!(
                    "le fichier compte plus de {max} lignes de données, le maximum accepté",
                    "the file has more than {max} data rows, the maximum allowed"
                ),
            }));
        }
        self.returned += 1;
        if raw.cells.len() < self.headers.len() {
            raw.cells.resize(self.headers.len(), String::new());
        }
        Some(Ok(SheetRow {
            line: self.returned,
            fields: raw.cells,
        }))
    }

    /// The next row with a non-blank cell, trailing blank cells removed and limits checked.
    fn next_non_blank(&mut self) -> Option<Result<RawRow, SheetError>> {
        loop {
            let mut raw = match self.source.next_raw()? {
                Ok(raw) => raw,
                Err(e) => return Some(Err(e)),
            };
            let used = raw.cells.iter().rposition(|c| !is_blank(c)).map_or(0, |i| i + 1);
            if used == 0 {
                continue;
            }
            raw.cells.truncate(used);
            return Some(self.check_limits(&raw).map(|()| raw));
        }
    }

    fn check_limits(&self, raw: &RawRow) -> Result<(), SheetError> {
        let (max_columns, max_chars) = (self.limits.max_columns, self.limits.max_cell_chars);
        if raw.cells.len() > max_columns {
            return Err(SheetError::TooManyColumns {
                location: text!("la ligne {row}", "row {row}", row = raw.row),
                columns: raw.cells.len(),
                max: max_columns,
            });
        }
        for (i, cell) in raw.cells.iter().enumerate() {
            // A char is at least one byte: only long cells need counting.
            if cell.len() > max_chars {
                let chars = cell.chars().count();
                if chars > max_chars {
                    return Err(SheetError::CellTooLong {
                        row: raw.row,
                        column: i + 1,
                        chars,
                        max: max_chars,
                    });
                }
            }
        }
        Ok(())
    }

    fn read_header(&mut self) -> Result<(), SheetError> {
        let Some(raw) = self.next_non_blank() else {
            self.finished = true;
            return Ok(());
        };
        let raw = raw.inspect_err(|_| self.finished = true)?;
        let mut headers: Vec<String> = raw.cells.iter().map(|c| c.trim().to_owned()).collect();
        if let Some(first) = headers.first_mut()
            && let Some(rest) = first.strip_prefix('\u{feff}')
        {
            *first = rest.trim_start().to_owned();
        }
        let used = headers.iter().rposition(|h| !h.is_empty()).map_or(0, |i| i + 1);
        headers.truncate(used);
        self.headers = headers;
        Ok(())
    }
}

impl Iterator for RowReader {
    type Item = Result<SheetRow, SheetError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_row()
    }
}

impl std::fmt::Debug for RowReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowReader")
            .field("format", &self.format)
            .field("csv_info", &self.csv_info)
            .field("headers", &self.headers)
            .field("returned", &self.returned)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
