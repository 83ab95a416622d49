//! Turns an uploaded CSV, XLSX or XLS file into a stream of string rows, in bounded memory, without
//! letting a hostile file crash or balloon the process (docs/spec.md §4, §12).
//!
//! ```no_run
//! use foxflow_sheets::{detect_format, open, Limits};
//! # fn run(head: &[u8], body: Box<dyn std::io::Read + Send>) -> Result<(), foxflow_sheets::SheetError> {
//! let format = detect_format(head, "entreprises.xlsx")?;
//! let mut reader = open(format, body, &Limits::default())?;
//! println!("columns: {:?}", reader.headers());
//! while let Some(row) = reader.next_row() {
//!     let row = row?; // any error is file-level: stop the job
//!     println!("{}: {:?}", row.line, row.fields);
//! }
//! # Ok(()) }
//! ```
//!
//! Decisions worth knowing:
//! - **Rows.** The header is the first row with a non-blank cell (trimmed, trailing empty cells
//!   dropped). Rows whose cells are all blank are skipped everywhere and do **not** consume a line
//!   number: `SheetRow::line` counts returned data rows (1 = first data row), so it adds up with the
//!   job's row counts. Errors, which are about the file, quote the row as a spreadsheet program
//!   numbers it (CSV: the physical line where the record starts).
//! - **CSV encoding.** Decided from the first 64 KiB: a UTF-8 BOM or valid UTF-8 → UTF-8, otherwise
//!   Windows-1252 (every byte decodes). If a file judged UTF-8 has an invalid byte further on, the
//!   rows before it are returned and then an `encoding` error naming the byte offset ends the read.
//!   NUL bytes anywhere mean "not a text file" (`format_mismatch`). UTF-16 is refused.
//! - **CSV delimiter.** `;`, tab or `,`, whichever occurs most (outside quotes) in the first
//!   non-blank line; ties go `;` then tab then `,`; none → `,` (single-column file).
//! - **CSV streams**; XLSX and XLS are read into memory (capped at `max_decompressed_bytes`),
//!   pre-checked, then parsed by calamine under `catch_unwind`. XLSX cells are streamed from the
//!   sheet XML on a helper thread through a bounded channel (the thread is joined when the reader
//!   is dropped, so no parse outlives its reader); XLS sheets are bounded by the
//!   pre-check (BIFF records are scanned for the sheet extent before calamine allocates for it).
//! - **Cells → text.** Integral numbers without `.0` or exponent (`73282932000074`), other numbers
//!   as Excel displays them (15 significant digits, shortest form), booleans `true`/`false`, dates
//!   ISO 8601 (`2024-03-15`, `2019-07-01T10:30:00`), error cells (`#N/A`) empty, strings verbatim.
//!   Only the first worksheet is read.

mod cell;
mod csv_source;
mod detect;
mod error;
mod reader;
mod xls;
mod xlsx;

pub use csv_source::{CsvInfo, TextEncoding};
pub use detect::detect_format;
pub use error::SheetError;
pub use reader::{RowReader, open};

/// The three formats we import; decided by [`detect_format`] from content **and** extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    Csv,
    Xlsx,
    Xls,
}

impl FileFormat {
    /// Lower-case name, as in messages and metrics (`csv`, `xlsx`, `xls`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
            Self::Xls => "xls",
        }
    }
}

impl std::fmt::Display for FileFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetRow {
    /// 1-based number of this data row among the rows returned (blank rows are not counted).
    pub line: u64,
    /// At least as many cells as [`RowReader::headers`] (padded with `""`); extra non-empty cells
    /// beyond the header are kept, trailing empty ones are not.
    pub fields: Vec<String>,
}

/// What a file may cost before it is refused. Every limit violation is a [`SheetError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest cell, in characters (Excel's own limit is 32,767).
    pub max_cell_chars: usize,
    /// Most non-empty columns in a row (a wider sheet is refused, not truncated).
    pub max_columns: usize,
    /// XLSX: total decompressed size of all ZIP entries. Also caps how much of an XLSX/XLS is
    /// read into memory and the memory an XLS sheet may make calamine allocate.
    pub max_decompressed_bytes: u64,
    /// XLSX: largest decompressed/compressed ratio of an entry above 1 MiB decompressed.
    pub max_compression_ratio: u64,
    /// XLSX: most shared strings (declared `uniqueCount` or actually present).
    pub max_shared_strings: u64,
    /// Most data rows (docs/spec.md `MAX_IMPORT_ROWS`); `None` for no limit.
    pub max_rows: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_cell_chars: 32_767,
            max_columns: 512,
            max_decompressed_bytes: 200 * 1024 * 1024,
            max_compression_ratio: 100,
            max_shared_strings: 2_000_000,
            max_rows: Some(50_000),
        }
    }
}
