#![doc = include_str!("../README.md")]

mod cell;
mod csv_source;
mod detect;
mod error;
mod reader;
mod source;
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
