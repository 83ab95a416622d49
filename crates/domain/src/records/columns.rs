//! The columns of one file: resolved once from its header row, refused
//! when a required one is missing (a file-level error, before any row).

use super::establishments::ChosenEstablishments;
use super::types::FileError;
use super::types::{EntrepriseRecord, SkipReason};
use crate::ImportType;
use crate::headers::{Field, HeaderMapping, IgnoredReason};
use crate::normalize::clean_text;
use crate::text;
use crate::values::codes;

/// The columns of one file, resolved once from its header row. The row
/// parser (`cells`, `parser`) reads the fields directly, hence `pub(super)`.
///
/// For a Sirene file it also remembers, per SIREN, the establishment the
/// entreprise takes its SIRET and address from so far: its rows must go
/// through [`ColumnMap::parse_row_detailed`] once each, in file order, from
/// the first (a resumed import parses the rows before its checkpoint again).
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
    /// `Some` for a Sirene file, which ranks the establishments of a SIREN.
    pub(super) establishments: Option<ChosenEstablishments>,
}

impl ColumnMap {
    /// Fails with a file-level error when a required column is missing.
    pub fn new(import_type: ImportType, headers: &[String]) -> Result<ColumnMap, FileError> {
        let mapping = HeaderMapping::new(import_type, headers);
        let missing: Vec<&str> = required_columns(import_type)
            .iter()
            .filter(|any_of| any_of.iter().all(|f| mapping.column(*f).is_none()))
            .map(|any_of| any_of[0].name())
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
        let term_export = matches!(import_type, ImportType::Categories | ImportType::SousCategories)
            && mapping
                .ignored()
                .iter()
                .any(|c| c.reason == IgnoredReason::Bookkeeping);
        // Only INSEE's files carry these two; elsewhere rows of one SIREN
        // apply in file order, as every key does.
        let establishments = (import_type == ImportType::Entreprises
            && [Field::EtablissementSiege, Field::EtatAdministratif]
                .iter()
                .any(|f| mapping.column(*f).is_some()))
        .then(ChosenEstablishments::default);
        Ok(ColumnMap {
            import_type,
            headers: headers.to_vec(),
            mapping,
            unknown,
            term_export,
            establishments,
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

/// Each required column, as the fields any one of which will do (the first
/// names it in the error).
fn required_columns(import_type: ImportType) -> &'static [&'static [Field]] {
    match import_type {
        // A Sirene file names its entreprises through the columns the
        // register has (docs/imports.md "Sirene (INSEE) files").
        ImportType::Entreprises => &[
            &[Field::Siren],
            &[
                Field::Nom,
                Field::DenominationUsuelle,
                Field::Enseigne,
                Field::NomPersonne,
            ],
        ],
        ImportType::Categories => &[&[Field::Nom]],
        ImportType::SousCategories => &[&[Field::Nom], &[Field::Categorie]],
        // The postal code may come inside the name (`Amberieu En Bugey (1500)`),
        // so its absence is checked per row.
        ImportType::Villes => &[&[Field::Nom]],
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
    let found = headers
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let count = headers.len();
    let (found_fr, found_en) = match (headers.is_empty(), count > SHOWN) {
        (true, _) => ("aucune colonne".to_owned(), "no columns".to_owned()),
        (false, true) => (
            format!("{found}, … ({count} colonnes)"),
            format!("{found}, … ({count} columns)"),
        ),
        (false, false) => (found.clone(), found),
    };
    let message = if missing.len() == 1 {
        text!(
            "la colonne obligatoire {names} est absente (colonnes trouvées : {found_fr})",
            "required column {names} is missing (found: {found_en})"
        )
    } else {
        text!(
            "les colonnes obligatoires {names} sont absentes (colonnes trouvées : {found_fr})",
            "required columns {names} are missing (found: {found_en})"
        )
    };
    FileError {
        code: codes::MISSING_COLUMN,
        message,
    }
}

impl ColumnMap {
    /// For a Sirene file: why this establishment is skipped, if it ranks no
    /// better than one already taken for its SIREN.
    pub(in crate::records) fn skip_other_establishment(&self, e: &EntrepriseRecord) -> Option<SkipReason> {
        let (Some(chosen), Some(rank)) = (&self.establishments, e.establishment) else {
            return None;
        };
        chosen.offer(e, rank)
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
            err.message.en,
            "required columns `siren`, `nom` are missing (found: a, b, c)"
        );
        assert_eq!(
            err.message.fr,
            "les colonnes obligatoires `siren`, `nom` sont absentes (colonnes trouvées : a, b, c)"
        );
        let err =
            ColumnMap::new(ImportType::Entreprises, &strings(&["a", "Raison sociale", "c"])).unwrap_err();
        assert_eq!(
            err.message.en,
            "required column `siren` is missing (found: a, Raison sociale, c)"
        );
        let err = ColumnMap::new(ImportType::SousCategories, &strings(&["nom"])).unwrap_err();
        assert_eq!(
            err.message.en,
            "required column `categorie` is missing (found: nom)"
        );
        let err = ColumnMap::new(ImportType::Categories, &[]).unwrap_err();
        assert_eq!(
            err.message.en,
            "required column `nom` is missing (found: no columns)"
        );
        assert_eq!(
            err.message.fr,
            "la colonne obligatoire `nom` est absente (colonnes trouvées : aucune colonne)"
        );
    }

    /// A Sirene file names its entreprises without a `nom` column.
    #[test]
    fn a_sirene_file_needs_no_nom_column() {
        for name in [
            "denominationUsuelleEtablissement",
            "enseigne1Etablissement",
            "nomUniteLegale",
        ] {
            let m = ColumnMap::new(ImportType::Entreprises, &strings(&["siren", "siret", name])).unwrap();
            assert!(m.unknown_columns().is_empty());
            assert!(m.establishments.is_none(), "not without its siège or state");
        }
        let err = ColumnMap::new(
            ImportType::Entreprises,
            &strings(&["siren", "prenom1UniteLegale"]),
        )
        .unwrap_err();
        assert_eq!(
            err.message.en,
            "required column `nom` is missing (found: siren, prenom1UniteLegale)"
        );
        let m = ColumnMap::new(
            ImportType::Entreprises,
            &strings(&["siren", "etablissementSiege", "denominationUniteLegale"]),
        )
        .unwrap();
        assert!(m.establishments.is_some());
        assert!(!m.term_export);
    }

    #[test]
    fn blank_rows() {
        assert!(ColumnMap::is_blank_row(&strings(&["", " ", "\u{a0}"])));
        assert!(!ColumnMap::is_blank_row(&strings(&["", "x"])));
    }
}
