//! From spreadsheet rows to typed records (docs/spec.md §4.1–§4.4): the one place
//! where an import's cells are cleaned, parsed and validated. The import
//! worker builds a [`ColumnMap`] from the header row, then calls
//! [`ColumnMap::parse_row_detailed`] per row and only ever sees domain
//! types or a list of [`RowError`]s.
//!
//! Merge semantics are carried by `Option`: `None` means the column is
//! absent or the cell empty, and the stored value must be left alone
//! (docs/spec.md §4.4).

mod address;
mod cells;
mod columns;
mod establishments;
pub mod limits;
mod parser;
mod sirene;
#[cfg(test)]
mod test_support;
mod types;
mod ville;

pub use cells::{ERROR_VALUE_CHARS, shorten};
pub use columns::ColumnMap;
pub use establishments::chosen_establishments;
pub use types::{
    CategorieRecord, EntrepriseRecord, Establishment, FileError, ParsedRow, Record, ReferenceData, RowError,
    SkipReason, SousCategorieRecord, VilleRecord,
};
