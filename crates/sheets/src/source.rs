//! What every format reader hands to [`crate::RowReader`]: raw rows, before the common rules.
//!
//! A leaf of the crate: the readers (`csv_source`, `xlsx`, `xls`) implement [`RawSource`] and
//! `reader` drives them, so neither side has to name the other.

/// A row as a format source produces it, before the common rules apply.
pub(crate) struct RawRow {
    /// 1-based row as a spreadsheet program numbers it (CSV: the line where the record starts).
    pub(crate) row: u64,
    /// Cells at their column position (index 0 = column A).
    pub(crate) cells: Vec<String>,
}

pub(crate) trait RawSource: Send {
    /// `None` at the end; after an `Err` the reader stops asking.
    fn next_raw(&mut self) -> Option<Result<RawRow, crate::SheetError>>;
}
