//! Helpers shared by the tests of the row parser's modules.

use std::collections::HashMap;

use super::columns::ColumnMap;
use super::types::{ParsedRow, RowError};
use crate::ImportType;
use crate::values::NafCode;

pub(super) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A few rows of the NAF reference table.
pub(super) fn naf() -> HashMap<NafCode, String> {
    [
        ("43.22A", "Travaux d'installation d'eau et de gaz en tous locaux"),
        ("43.21A", "Travaux d'installation électrique dans tous locaux"),
        ("56.10A", "Restauration traditionnelle"),
        ("62.01Z", "Programmation informatique"),
    ]
    .into_iter()
    .map(|(c, l)| (NafCode::parse(c).unwrap(), l.to_owned()))
    .collect()
}

pub(super) fn map(t: ImportType, headers: &[&str]) -> ColumnMap {
    ColumnMap::new(t, &strings(headers)).unwrap()
}

pub(super) fn parse(m: &ColumnMap, row: &[&str]) -> Result<ParsedRow, Vec<RowError>> {
    m.parse_row_detailed(&strings(row), &naf())
}

pub(super) fn error_codes(errors: &[RowError]) -> Vec<(Option<&str>, &str)> {
    errors.iter().map(|e| (e.column.as_deref(), e.code)).collect()
}
