//! What a row becomes: the typed records, the errors of a file or a row, and
//! the reference data a row is checked against.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use serde::Serialize;

use crate::text::Text;
use crate::values::{CodePostal, Email, NafCode, Phone, Siren, Siret, Slug, WebUrl};

/// Reference data a row is checked against.
pub trait ReferenceData {
    /// The official label of a NAF code; `None` when the code is not one of
    /// the 732 sous-classes.
    fn naf_libelle(&self, code: &NafCode) -> Option<&str>;
}

impl<S: BuildHasher> ReferenceData for HashMap<NafCode, String, S> {
    fn naf_libelle(&self, code: &NafCode) -> Option<&str> {
        self.get(code).map(String::as_str)
    }
}

impl ReferenceData for BTreeMap<NafCode, String> {
    fn naf_libelle(&self, code: &NafCode) -> Option<&str> {
        self.get(code).map(String::as_str)
    }
}

/// A problem with the whole file: the job fails before any row is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct FileError {
    pub code: &'static str,
    pub message: Text,
}

/// A problem with one cell (or the row as a whole when `column` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The header as written in the file.
    pub column: Option<String>,
    /// The cell as written in the file; `None` for an empty cell.
    pub value: Option<String>,
    pub code: &'static str,
    pub message: Text,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "{c}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntrepriseRecord {
    pub siren: Siren,
    pub siret: Option<Siret>,
    pub nom: String,
    pub nom_commercial: Option<String>,
    pub adresse: Option<String>,
    pub code_postal: Option<CodePostal>,
    pub ville_nom: Option<String>,
    pub naf_code: Option<NafCode>,
    /// From the file, or from the reference table when the file gives a NAF
    /// code and no label.
    pub naf_libelle: Option<String>,
    pub telephone: Option<Phone>,
    pub email_contact: Option<Email>,
    pub site_web: Option<WebUrl>,
    pub is_active: Option<bool>,
    /// In a Sirene file (one with `etablissementSiege` or
    /// `etatAdministratifEtablissement`), where this establishment stands
    /// among its SIREN's: the entreprise takes its SIRET and address from
    /// the best one. `None` elsewhere, where rows of one SIREN apply in file
    /// order.
    pub establishment: Option<Establishment>,
}

/// How an establishment of a Sirene file ranks when several share a SIREN:
/// the siège first, then an active one, then a closed one; among equals,
/// the first in the file (docs/imports.md "Sirene (INSEE) files").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Establishment {
    Closed,
    Active,
    /// `etablissementSiege` true, whatever its state.
    Siege,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategorieRecord {
    pub nom: String,
    /// The slug the file gives, if any.
    pub slug: Option<Slug>,
    /// The slug built from `nom`, for a new row when the file gives none.
    /// Built here so that a name with no letter or digit is an error row
    /// rather than a failure in the worker.
    pub derived_slug: Slug,
    pub description: Option<String>,
    pub meta_description: Option<String>,
    pub ordre: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SousCategorieRecord {
    pub nom: String,
    /// The parent catégorie's name (`categories.nom`).
    pub categorie: String,
    pub slug: Option<Slug>,
    /// See [`CategorieRecord::derived_slug`].
    pub derived_slug: Slug,
    pub description: Option<String>,
    pub meta_description: Option<String>,
    pub mots_cles: Option<String>,
    pub ordre: Option<i32>,
    /// Each one exists in the reference table; no duplicates, file order.
    /// Empty when the column is absent or the cell empty: leave the stored
    /// links alone (an empty cell never clears data, docs/spec.md §4.4).
    pub naf_codes: Vec<NafCode>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VilleRecord {
    pub nom: String,
    pub code_postal: CodePostal,
    /// `nom-code_postal` slugified (docs/spec.md §3), e.g. `amberieu-en-bugey-01500`.
    pub slug: Slug,
    /// Always `Some`: the file's value, or derived from the postal code.
    pub departement: Option<String>,
    /// `departement` was derived from the postal code, not read from the
    /// file: a worker may prefer a stored value over it (a few towns have a
    /// neighbouring département's postal code).
    pub departement_derived: bool,
    pub region: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub population: Option<i64>,
}

/// Why a well-formed row is not for this import. The worker counts it as
/// `unchanged`: it changes nothing and is no error (docs/spec.md §4.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SkipReason {
    /// A `categories` import of a hierarchical export (WordPress) creates the
    /// top-level terms only; this row has a parent.
    ChildTerm { parent: String },
    /// A Sirene file's establishment that ranks no better than one of its
    /// SIREN's already taken from the file (see [`Establishment`]).
    OtherEstablishment {
        siret: Option<Siret>,
        /// The rank of the establishment the entreprise keeps.
        kept: Establishment,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::ChildTerm { parent } => {
                write!(f, "sub-category of `{parent}`: skipped by a categories import")
            }
            SkipReason::OtherEstablishment { siret, kept } => {
                let kept = match kept {
                    Establishment::Siege => "its siège",
                    Establishment::Active => "its first active establishment",
                    Establishment::Closed => "its first establishment",
                };
                match siret {
                    Some(s) => write!(f, "establishment {s}: "),
                    None => f.write_str("establishment: "),
                }?;
                write!(
                    f,
                    "the entreprise takes its SIRET and address from {kept} in this file"
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Record {
    Entreprise(EntrepriseRecord),
    Categorie(CategorieRecord),
    SousCategorie(SousCategorieRecord),
    Ville(VilleRecord),
    /// From WordPress-style term exports and Sirene files; see [`SkipReason`].
    Skipped(SkipReason),
}

/// A parsed row with what parsing did to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParsedRow {
    pub record: Record,
    /// How many cells are stored differently from how they were written
    /// (trimmed, entities decoded, `1500` → `01500`, a phone put in E.164,
    /// `naf_libelle` filled from the reference table…).
    pub normalized: u32,
    /// Lossy normalisations (codes `excel_precision`, `slug_truncated`): the
    /// row imports, and the report should show them.
    pub warnings: Vec<RowError>,
}
