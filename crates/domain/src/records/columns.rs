//! The columns of one file: resolved once from its header row, refused
//! when a required one is missing (a file-level error, before any row).

use super::types::FileError;
use crate::ImportType;
use crate::headers::{Field, HeaderMapping, IgnoredReason};
use crate::normalize::clean_text;
use crate::values::codes;

/// The columns of one file, resolved once from its header row. The row
/// parser (`cells`, `parser`) reads the fields directly, hence `pub(super)`.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    pub(super) import_type: ImportType,
    /// As written, to name columns in errors.
    pub(super) headers: Vec<String>,
    pub(super) mapping: HeaderMapping,
    unknown: Vec<String>,
    /// The file is a WordPress term export (it has the term bookkeeping
    /// columns), where an empty parent means a top-level term rather than a
    /// forgotten value.
    pub(super) term_export: bool,
}

impl ColumnMap {
    /// Fails with a file-level error when a required column is missing.
    pub fn new(import_type: ImportType, headers: &[String]) -> Result<ColumnMap, FileError> {
        let mapping = HeaderMapping::new(import_type, headers);
        let missing: Vec<&str> = required_columns(import_type)
            .iter()
            .filter(|f| mapping.column(**f).is_none())
            .map(|f| f.name())
            .collect();
        if !missing.is_empty() {
            return Err(missing_columns(&missing, headers));
        }
        let unknown = mapping
            .ignored()
            .iter()
            .filter(|c| c.reason != IgnoredReason::Bookkeeping)
            .map(|c| {
                if c.header.trim().is_empty() {
                    format!("column {} (no header)", c.position + 1)
                } else {
                    c.header.clone()
                }
            })
            .collect();
        let term_export = mapping
            .ignored()
            .iter()
            .any(|c| c.reason == IgnoredReason::Bookkeeping);
        Ok(ColumnMap {
            import_type,
            headers: headers.to_vec(),
            mapping,
            unknown,
            term_export,
        })
    }

    /// Columns whose data is not imported, to report once per file: headers
    /// no alias matches, and later columns naming a field an earlier column
    /// already gives (the first column wins). A column without a header is
    /// listed as `column N (no header)`. Known bookkeeping columns
    /// (WordPress's `Term ID`, `Parent ID`, `Parent Slug`, `Count`) are not
    /// listed.
    pub fn unknown_columns(&self) -> &[String] {
        &self.unknown
    }

    /// Whether every cell is empty: such rows (trailing `;;;;` lines) are
    /// better skipped than reported, which is the worker's call.
    pub fn is_blank_row(fields: &[String]) -> bool {
        fields.iter().all(|f| clean_text(f).value.is_empty())
    }
}

fn required_columns(import_type: ImportType) -> &'static [Field] {
    match import_type {
        ImportType::Entreprises => &[Field::Siren, Field::Nom],
        ImportType::Categories => &[Field::Nom],
        ImportType::SousCategories => &[Field::Nom, Field::Categorie],
        // The postal code may come inside the name (`Amberieu En Bugey (1500)`),
        // so its absence is checked per row.
        ImportType::Villes => &[Field::Nom],
    }
}

fn missing_columns(missing: &[&str], headers: &[String]) -> FileError {
    /// Enough to recognise the file; a 500-column sheet is not worth quoting.
    const SHOWN: usize = 30;
    let names = missing
        .iter()
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut found = headers
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if headers.len() > SHOWN {
        found.push_str(&format!(", … ({} columns)", headers.len()));
    }
    if headers.is_empty() {
        found = "no columns".to_owned();
    }
    let message = if missing.len() == 1 {
        format!("required column {names} is missing (found: {found})")
    } else {
        format!("required columns {names} are missing (found: {found})")
    };
    FileError {
        code: codes::MISSING_COLUMN,
        message,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn missing_required_column_is_a_file_error() {
        let err = ColumnMap::new(ImportType::Entreprises, &strings(&["a", "b", "c"])).unwrap_err();
        assert_eq!(err.code, codes::MISSING_COLUMN);
        assert_eq!(
            err.message,
            "required columns `siren`, `nom` are missing (found: a, b, c)"
        );
        let err =
            ColumnMap::new(ImportType::Entreprises, &strings(&["a", "Raison sociale", "c"])).unwrap_err();
        assert_eq!(
            err.message,
            "required column `siren` is missing (found: a, Raison sociale, c)"
        );
        let err = ColumnMap::new(ImportType::SousCategories, &strings(&["nom"])).unwrap_err();
        assert_eq!(err.message, "required column `categorie` is missing (found: nom)");
        let err = ColumnMap::new(ImportType::Categories, &[]).unwrap_err();
        assert_eq!(
            err.message,
            "required column `nom` is missing (found: no columns)"
        );
    }

    #[test]
    fn blank_rows() {
        assert!(ColumnMap::is_blank_row(&strings(&["", " ", "\u{a0}"])));
        assert!(!ColumnMap::is_blank_row(&strings(&["", "x"])));
    }
}
