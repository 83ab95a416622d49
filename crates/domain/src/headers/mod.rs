//! Header matching (docs/spec.md §4.1): which column of an uploaded file holds which
//! field, whatever the operator's spreadsheet called it.

mod aliases;
mod field;
mod matching;

pub use aliases::{aliases, bookkeeping_columns};
pub use field::Field;
pub use matching::{
    HeaderMapping, HeaderMatch, IgnoredColumn, IgnoredReason, match_header, normalize_header,
};
