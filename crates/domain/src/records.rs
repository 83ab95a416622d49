//! From spreadsheet rows to typed records (docs/spec.md §4.1–§4.4): the one place
//! where an import's cells are cleaned, parsed and validated. The import
//! worker builds a [`ColumnMap`] from the header row, then calls
//! [`ColumnMap::parse_row`] (or [`ColumnMap::parse_row_detailed`]) per row
//! and only ever sees domain types or a list of [`RowError`]s.
//!
//! Merge semantics are carried by `Option`: `None` means the column is
//! absent or the cell empty, and the stored value must be left alone
//! (docs/spec.md §4.4).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use serde::Serialize;

use crate::ImportType;
use crate::headers::{Field, HeaderMapping, IgnoredReason};
use crate::normalize::{clean_multiline, clean_text, excel_digits, parse_bool};
use crate::values::{CodePostal, Email, NafCode, Phone, Siren, Siret, Slug, ValueError, WebUrl, codes};

/// Length limits of text columns, in characters (PostgreSQL's `varchar(n)`
/// counts characters). Those the schema fixes (docs/spec.md §3) are mirrored so that
/// a long value is an error row, never a database error; the others are
/// generous bounds on `text` columns so one runaway cell cannot bloat a row.
pub mod limits {
    /// `entreprises.nom`, `nom_commercial`, `adresse`.
    pub const NOM_ENTREPRISE: usize = 255;
    pub const NOM_COMMERCIAL: usize = 255;
    pub const ADRESSE: usize = 255;
    pub const VILLE_NOM: usize = 100;
    pub const NAF_LIBELLE: usize = 255;
    /// `categories.nom`, `sous_categories.nom`, `villes.nom` (docs/spec.md §3).
    pub const NOM: usize = 100;
    pub const META_DESCRIPTION: usize = 160;
    pub const DESCRIPTION: usize = 10_000;
    pub const MOTS_CLES: usize = 2_000;
    pub const REGION: usize = 100;
}

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
    pub message: String,
}

/// A problem with one cell (or the row as a whole when `column` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The header as written in the file.
    pub column: Option<String>,
    /// The cell as written in the file; `None` for an empty cell.
    pub value: Option<String>,
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "{c}: {}", self.message),
            None => f.write_str(&self.message),
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
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::ChildTerm { parent } => {
                write!(f, "sub-category of `{parent}`: skipped by a categories import")
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
    /// Only from WordPress-style term exports; see [`SkipReason`].
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

/// The columns of one file, resolved once from its header row.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    import_type: ImportType,
    /// As written, to name columns in errors.
    headers: Vec<String>,
    mapping: HeaderMapping,
    unknown: Vec<String>,
    /// The file is a WordPress term export (it has the term bookkeeping
    /// columns), where an empty parent means a top-level term rather than a
    /// forgotten value.
    term_export: bool,
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

    pub fn import_type(&self) -> ImportType {
        self.import_type
    }

    /// Columns whose data is not imported, to report once per file: headers
    /// no alias matches, and later columns naming a field an earlier column
    /// already gives (the first column wins). A column without a header is
    /// listed as `column N (no header)`. Known bookkeeping columns
    /// (WordPress's `Term ID`, `Parent ID`, `Parent Slug`, `Count`) are not
    /// listed; [`ColumnMap::mapping`] has the full detail.
    pub fn unknown_columns(&self) -> &[String] {
        &self.unknown
    }

    /// Which column holds which field, and why each other column is ignored.
    pub fn mapping(&self) -> &HeaderMapping {
        &self.mapping
    }

    /// Whether every cell is empty: such rows (trailing `;;;;` lines) are
    /// better skipped than reported, which is the worker's call.
    pub fn is_blank_row(fields: &[String]) -> bool {
        fields.iter().all(|f| clean_text(f).value.is_empty())
    }

    /// Parses one data row. `ctx` gives reference data lookups.
    pub fn parse_row(&self, fields: &[String], ctx: &dyn ReferenceData) -> Result<Record, Vec<RowError>> {
        self.parse_row_detailed(fields, ctx).map(|p| p.record)
    }

    /// [`ColumnMap::parse_row`] with the normalisation count and warnings.
    /// All the row's errors are returned, in column-field order.
    pub fn parse_row_detailed(
        &self,
        fields: &[String],
        ctx: &dyn ReferenceData,
    ) -> Result<ParsedRow, Vec<RowError>> {
        let mut row = RowParser {
            map: self,
            fields,
            errors: Vec::new(),
            warnings: Vec::new(),
            normalized: 0,
        };
        let record = match self.import_type {
            ImportType::Entreprises => row.entreprise(ctx).map(Record::Entreprise),
            ImportType::Categories => row.categorie(),
            ImportType::SousCategories => row.sous_categorie(ctx),
            ImportType::Villes => row.ville().map(Record::Ville),
        };
        match record {
            Some(record) if row.errors.is_empty() => Ok(ParsedRow {
                record,
                normalized: row.normalized,
                warnings: row.warnings,
            }),
            _ => Err(row.errors),
        }
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

/// One row being parsed: collects every error rather than stopping at the
/// first, so the operator fixes a row in one go.
struct RowParser<'a> {
    map: &'a ColumnMap,
    fields: &'a [String],
    errors: Vec<RowError>,
    warnings: Vec<RowError>,
    normalized: u32,
}

impl<'a> RowParser<'a> {
    fn column(&self, field: Field) -> Option<usize> {
        self.map.mapping.column(field)
    }

    fn header(&self, field: Field) -> Option<String> {
        self.column(field).and_then(|i| self.map.headers.get(i)).cloned()
    }

    /// The cell as written; `None` when the file has no such column. A short
    /// row (fewer cells than headers) has empty cells at its end.
    fn raw(&self, field: Field) -> Option<&'a str> {
        let fields = self.fields;
        self.column(field)
            .map(|i| fields.get(i).map_or("", String::as_str))
    }

    fn is_blank(&self, field: Field) -> bool {
        self.raw(field).is_none_or(|r| clean_text(r).value.is_empty())
    }

    fn error(&mut self, field: Field, e: ValueError) {
        let value = self.raw(field).filter(|r| !r.is_empty()).map(str::to_owned);
        self.errors.push(RowError {
            column: self.header(field),
            value,
            code: e.code,
            message: e.message,
        });
    }

    fn warn(&mut self, field: Field, code: &'static str, message: String) {
        let value = self.raw(field).map(str::to_owned);
        self.warnings.push(RowError {
            column: self.header(field),
            value,
            code,
            message,
        });
    }

    fn require(&mut self, field: Field) {
        self.error(
            field,
            ValueError::new(
                codes::REQUIRED,
                format!("`{}` is required and this cell is empty", field.name()),
            ),
        );
    }

    /// Cleaned single-line text; `None` for an absent column or empty cell.
    fn cleaned(&mut self, field: Field) -> Option<String> {
        let raw = self.raw(field)?;
        let cleaned = clean_text(raw);
        if cleaned.value.is_empty() {
            return None;
        }
        self.normalized += u32::from(cleaned.altered);
        Some(cleaned.value.into_owned())
    }

    fn check_len(&mut self, field: Field, value: String, max: usize) -> Option<String> {
        let len = value.chars().count();
        if len > max {
            self.error(
                field,
                ValueError::too_long(&format!("`{}`", field.name()), len, max),
            );
            return None;
        }
        Some(value)
    }

    fn text(&mut self, field: Field, max: usize) -> Option<String> {
        let value = self.cleaned(field)?;
        self.check_len(field, value, max)
    }

    fn multiline(&mut self, field: Field, max: usize) -> Option<String> {
        let cleaned = clean_multiline(self.raw(field)?);
        if cleaned.value.is_empty() {
            return None;
        }
        self.normalized += u32::from(cleaned.altered);
        let value = cleaned.value.into_owned();
        self.check_len(field, value, max)
    }

    fn required_text(&mut self, field: Field, max: usize) -> Option<String> {
        if self.is_blank(field) {
            self.require(field);
            return None;
        }
        self.text(field, max)
    }

    /// A domain value from a cleaned cell. Warns when Excel's scientific
    /// notation may have eaten digits, even if the result happens to pass
    /// its checks.
    fn value<T: AsRef<str>>(
        &mut self,
        field: Field,
        parse: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        let raw = self.raw(field)?;
        let cleaned = clean_text(raw).value;
        if cleaned.is_empty() {
            return None;
        }
        match parse(&cleaned) {
            Ok(v) => {
                self.normalized += u32::from(v.as_ref() != raw);
                if excel_digits(&cleaned).is_some_and(|n| n.lossy) {
                    self.warn(
                        field,
                        codes::EXCEL_PRECISION,
                        format!(
                            "`{}` was stored by Excel in scientific notation, which may have replaced \
                             digits with zeros: check {}",
                            field.name(),
                            v.as_ref()
                        ),
                    );
                }
                Some(v)
            }
            Err(e) => {
                self.error(field, e);
                None
            }
        }
    }

    fn required_value<T: AsRef<str>>(
        &mut self,
        field: Field,
        parse: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        if self.is_blank(field) {
            self.require(field);
            return None;
        }
        self.value(field, parse)
    }

    fn boolean(&mut self, field: Field) -> Option<bool> {
        let raw = self.raw(field)?;
        if clean_text(raw).value.is_empty() {
            return None;
        }
        match parse_bool(&clean_text(raw).value) {
            Some(b) => {
                self.normalized += u32::from(raw != if b.value { "true" } else { "false" });
                Some(b.value)
            }
            None => {
                self.error(
                    field,
                    ValueError::new(
                        codes::INVALID_BOOLEAN,
                        format!(
                            "`{}` is yes or no: true/false, oui/non, vrai/faux, 1/0",
                            field.name()
                        ),
                    ),
                );
                None
            }
        }
    }

    /// A whole number, as Excel may have written it (`12.0`, `1 234`).
    fn integer<T: TryFrom<i64> + ToString>(&mut self, field: Field, min: i64, example: &str) -> Option<T> {
        let raw = self.raw(field)?;
        let cleaned = clean_text(raw).value;
        if cleaned.is_empty() {
            return None;
        }
        let (negative, digits) = match cleaned.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, cleaned.as_ref()),
        };
        let parsed = excel_digits(digits)
            .and_then(|d| d.value.parse::<i64>().ok())
            .map(|n| if negative { -n } else { n })
            .filter(|n| *n >= min)
            .and_then(|n| T::try_from(n).ok());
        match parsed {
            Some(n) => {
                self.normalized += u32::from(n.to_string() != raw);
                Some(n)
            }
            None => {
                let kind = if min >= 0 {
                    "a whole number ≥ 0"
                } else {
                    "a whole number"
                };
                self.error(
                    field,
                    ValueError::new(
                        codes::INVALID_NUMBER,
                        format!("`{}` is {kind}, e.g. {example}", field.name()),
                    ),
                );
                None
            }
        }
    }

    /// A coordinate in decimal degrees; a decimal comma is accepted.
    fn coordinate(&mut self, field: Field, bound: f64) -> Option<f64> {
        let raw = self.raw(field)?;
        let cleaned = clean_text(raw).value;
        if cleaned.is_empty() {
            return None;
        }
        let Some(v) = cleaned
            .replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
        else {
            self.error(
                field,
                ValueError::new(
                    codes::INVALID_NUMBER,
                    format!("`{}` is a number of decimal degrees, e.g. 45.9578", field.name()),
                ),
            );
            return None;
        };
        if v.abs() > bound {
            self.error(
                field,
                ValueError::new(
                    codes::OUT_OF_RANGE,
                    format!("`{}` must be between -{bound} and {bound}", field.name()),
                ),
            );
            return None;
        }
        self.normalized += u32::from(v.to_string() != raw);
        Some(v)
    }

    /// An explicit slug cell: canonicalised, and cut to length with a
    /// warning rather than refused (it is an address, not data).
    fn slug(&mut self, field: Field) -> Option<Slug> {
        let raw = self.raw(field)?;
        if clean_text(raw).value.is_empty() {
            return None;
        }
        match Slug::from_name(raw) {
            Ok(n) => {
                self.normalized += u32::from(n.altered);
                if n.lossy {
                    self.warn(
                        field,
                        codes::SLUG_TRUNCATED,
                        format!(
                            "the slug was longer than {} characters and was cut to {}",
                            crate::values::MAX_SLUG_LEN,
                            n.value
                        ),
                    );
                }
                Some(n.value)
            }
            Err(e) => {
                self.error(field, e);
                None
            }
        }
    }

    /// The slug a new row gets when the file gives none.
    fn derived_slug(&mut self, nom: Option<&str>) -> Option<Slug> {
        match Slug::from_name(nom?) {
            Ok(n) => Some(n.value),
            Err(e) => {
                self.error(Field::Nom, e);
                None
            }
        }
    }

    fn naf_code(&mut self, field: Field, ctx: &dyn ReferenceData) -> Option<(NafCode, Option<String>)> {
        let code = self.value(field, NafCode::parse)?;
        match ctx.naf_libelle(&code) {
            Some(libelle) => Some((code, Some(libelle.to_owned()))),
            None => {
                self.error(field, unknown_naf(&code));
                None
            }
        }
    }

    /// `naf_codes`: separated by `,` `;` `|` or spaces. A part between
    /// separators is first read whole, so `43 22A` stays one code.
    fn naf_codes(&mut self, ctx: &dyn ReferenceData) -> Vec<NafCode> {
        let Some(raw) = self.raw(Field::NafCodes) else {
            return Vec::new();
        };
        let cleaned = clean_text(raw).value.into_owned();
        let mut codes_found: Vec<NafCode> = Vec::new();
        let mut altered = cleaned != raw;
        for part in cleaned
            .split([',', ';', '|'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let tokens: Vec<&str> = if NafCode::parse(part).is_ok() {
                vec![part]
            } else {
                part.split_whitespace().collect()
            };
            for token in tokens {
                match NafCode::parse(token) {
                    Ok(code) if ctx.naf_libelle(&code).is_none() => {
                        self.error(Field::NafCodes, unknown_naf(&code))
                    }
                    Ok(code) => {
                        altered |= code.as_str() != token || codes_found.contains(&code);
                        if !codes_found.contains(&code) {
                            codes_found.push(code);
                        }
                    }
                    Err(e) => self.error(
                        Field::NafCodes,
                        ValueError::new(e.code, format!("`{token}`: {}", e.message)),
                    ),
                }
            }
        }
        self.normalized += u32::from(altered && !codes_found.is_empty());
        codes_found
    }

    fn entreprise(&mut self, ctx: &dyn ReferenceData) -> Option<EntrepriseRecord> {
        let siren = self.required_value(Field::Siren, Siren::parse);
        let siret = self.value(Field::Siret, Siret::parse);
        if let (Some(siren), Some(siret)) = (&siren, &siret)
            && siret.siren() != *siren
        {
            self.error(
                Field::Siret,
                ValueError::new(
                    codes::SIRET_SIREN_MISMATCH,
                    format!(
                        "the SIRET must start with the row's SIREN ({siren}); it belongs to SIREN {}",
                        siret.siren()
                    ),
                ),
            );
        }
        let nom = self.required_text(Field::Nom, limits::NOM_ENTREPRISE);
        let nom_commercial = self.text(Field::NomCommercial, limits::NOM_COMMERCIAL);
        let adresse = self.text(Field::Adresse, limits::ADRESSE);
        let code_postal = self.value(Field::CodePostal, CodePostal::parse);
        let ville_nom = self.text(Field::VilleNom, limits::VILLE_NOM);
        let naf = self.naf_code(Field::NafCode, ctx);
        let mut naf_libelle = self.text(Field::NafLibelle, limits::NAF_LIBELLE);
        let naf_code = naf.map(|(code, reference_libelle)| {
            if naf_libelle.is_none() && self.is_blank(Field::NafLibelle) {
                self.normalized += 1;
                naf_libelle = reference_libelle;
            }
            code
        });
        let telephone = self.value(Field::Telephone, Phone::parse);
        let email_contact = self.value(Field::EmailContact, Email::parse);
        let site_web = self.value(Field::SiteWeb, WebUrl::parse);
        let is_active = self.boolean(Field::IsActive);
        Some(EntrepriseRecord {
            siren: siren?,
            siret,
            nom: nom?,
            nom_commercial,
            adresse,
            code_postal,
            ville_nom,
            naf_code,
            naf_libelle,
            telephone,
            email_contact,
            site_web,
            is_active,
        })
    }

    fn categorie(&mut self) -> Option<Record> {
        if let Some(parent) = self
            .raw(Field::Parent)
            .map(|r| clean_text(r).value)
            .filter(|p| !p.is_empty())
        {
            return Some(Record::Skipped(SkipReason::ChildTerm {
                parent: parent.into_owned(),
            }));
        }
        let nom = self.required_text(Field::Nom, limits::NOM);
        let derived_slug = self.derived_slug(nom.as_deref());
        let slug = self.slug(Field::Slug);
        let description = self.multiline(Field::Description, limits::DESCRIPTION);
        let meta_description = self.text(Field::MetaDescription, limits::META_DESCRIPTION);
        let ordre = self.integer(Field::Ordre, i64::from(i32::MIN), "10");
        Some(Record::Categorie(CategorieRecord {
            nom: nom?,
            slug,
            derived_slug: derived_slug?,
            description,
            meta_description,
            ordre,
        }))
    }

    fn sous_categorie(&mut self, ctx: &dyn ReferenceData) -> Option<Record> {
        // A term export carries the parents beside the children: a top-level
        // term is the catégorie its children need, so it is imported as one
        // (a file can then be imported on an empty database).
        if self.map.term_export && self.is_blank(Field::Categorie) {
            return self.categorie();
        }
        let nom = self.required_text(Field::Nom, limits::NOM);
        let derived_slug = self.derived_slug(nom.as_deref());
        let categorie = self.required_text(Field::Categorie, limits::NOM);
        let slug = self.slug(Field::Slug);
        let description = self.multiline(Field::Description, limits::DESCRIPTION);
        let meta_description = self.text(Field::MetaDescription, limits::META_DESCRIPTION);
        let mots_cles = self.text(Field::MotsCles, limits::MOTS_CLES);
        let ordre = self.integer(Field::Ordre, i64::from(i32::MIN), "10");
        let naf_codes = self.naf_codes(ctx);
        Some(Record::SousCategorie(SousCategorieRecord {
            nom: nom?,
            categorie: categorie?,
            slug,
            derived_slug: derived_slug?,
            description,
            meta_description,
            mots_cles,
            ordre,
            naf_codes,
        }))
    }

    fn ville(&mut self) -> Option<VilleRecord> {
        // The name may carry the postal code: `Amberieu En Bugey (1500)`.
        let mut nom = None;
        let mut cp_in_nom = None;
        let mut cp_in_nom_invalid = false;
        if self.is_blank(Field::Nom) {
            self.require(Field::Nom);
        } else if let Some(raw) = self.raw(Field::Nom) {
            let cleaned = clean_text(raw).value;
            let (name, cp) = split_postal_suffix(&cleaned);
            if let Some(cp) = cp {
                match CodePostal::parse(cp) {
                    Ok(cp) => cp_in_nom = Some(cp),
                    Err(e) => {
                        cp_in_nom_invalid = true;
                        self.error(Field::Nom, e);
                    }
                }
            }
            if name.is_empty() {
                self.require(Field::Nom);
            } else {
                self.normalized += u32::from(name != raw);
                nom = self.check_len(Field::Nom, name.to_owned(), limits::NOM);
            }
        }
        let cp_cell = self.value(Field::CodePostal, CodePostal::parse);
        let code_postal = match (cp_cell, cp_in_nom) {
            (Some(cell), Some(in_nom)) if cell != in_nom => {
                self.error(
                    Field::CodePostal,
                    ValueError::new(
                        codes::POSTAL_CODE_MISMATCH,
                        format!(
                            "the town's name gives the postal code {in_nom} but this column gives {cell}"
                        ),
                    ),
                );
                None
            }
            (Some(cp), _) | (None, Some(cp)) => Some(cp),
            (None, None) => {
                if self.is_blank(Field::CodePostal) && !cp_in_nom_invalid {
                    self.error(
                        Field::CodePostal,
                        ValueError::new(
                            codes::REQUIRED,
                            "`code_postal` is required: fill the code_postal column or write the town as \
                             `Name (postal code)`, e.g. `Amberieu En Bugey (01500)`",
                        ),
                    );
                }
                None
            }
        };
        let (departement, departement_derived) = match self.value(Field::Departement, parse_departement) {
            Some(d) => (Some(d), false),
            None if self.is_blank(Field::Departement) => {
                (code_postal.as_ref().map(|cp| cp.departement().to_owned()), true)
            }
            None => (None, false),
        };
        let region = self.text(Field::Region, limits::REGION);
        let lat = self.coordinate(Field::Lat, 90.0);
        let lng = self.coordinate(Field::Lng, 180.0);
        let population = self.integer(Field::Population, 0, "15234");
        let (nom, code_postal) = (nom?, code_postal?);
        let slug = match Slug::from_name(&format!("{nom} {code_postal}")) {
            Ok(s) => s.value,
            Err(e) => {
                self.error(Field::Nom, e);
                return None;
            }
        };
        Some(VilleRecord {
            nom,
            code_postal,
            slug,
            departement,
            departement_derived,
            region,
            lat,
            lng,
            population,
        })
    }
}

fn unknown_naf(code: &NafCode) -> ValueError {
    ValueError::new(
        codes::UNKNOWN_NAF,
        format!("NAF code {code} is not one of the 732 sous-classes of NAF rév. 2 (see naf_codes)"),
    )
}

/// `Amberieu En Bugey (1500)` → (`Amberieu En Bugey`, `1500`). A bracket
/// that holds no digits is part of the name (`Rochelle (La)`).
fn split_postal_suffix(s: &str) -> (&str, Option<&str>) {
    let parsed = s.strip_suffix(')').and_then(|inner| {
        let open = inner.rfind('(')?;
        let code = inner[open + 1..].trim();
        let digits = !code.is_empty() && code.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == '.');
        digits.then(|| (inner[..open].trim_end(), code))
    });
    match parsed {
        Some((name, code)) => (name, Some(code)),
        None => (s, None),
    }
}

/// A département code as stored in `villes.departement`: `01`–`95`
/// (Excel's `1` gets its zero back), `2A`/`2B`, or three digits overseas.
fn parse_departement(raw: &str) -> Result<String, ValueError> {
    let invalid = || {
        ValueError::new(
            codes::INVALID_DEPARTEMENT,
            "a département is its code: 2 digits (01, 75), 2A or 2B for Corsica, 3 digits overseas (974)",
        )
    };
    let t = raw.trim().to_ascii_uppercase();
    if t == "2A" || t == "2B" {
        return Ok(t);
    }
    let digits = excel_digits(&t).ok_or_else(invalid)?.value;
    let code = match digits.len() {
        1 => format!("0{digits}"),
        2 | 3 => digits,
        _ => return Err(invalid()),
    };
    let valid = match code.len() {
        2 => code.as_str() >= "01" && code.as_str() <= "95" && code != "20",
        _ => code.starts_with("97") || code.starts_with("98"),
    };
    if valid { Ok(code) } else { Err(invalid()) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A few rows of the NAF reference table.
    fn naf() -> HashMap<NafCode, String> {
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

    fn map(t: ImportType, headers: &[&str]) -> ColumnMap {
        ColumnMap::new(t, &strings(headers)).unwrap()
    }

    fn parse(m: &ColumnMap, row: &[&str]) -> Result<ParsedRow, Vec<RowError>> {
        m.parse_row_detailed(&strings(row), &naf())
    }

    fn error_codes(errors: &[RowError]) -> Vec<(Option<&str>, &str)> {
        errors.iter().map(|e| (e.column.as_deref(), e.code)).collect()
    }

    const ENTREPRISE_HEADERS: &[&str] = &[
        "N° SIREN",
        "SIRET",
        "Raison sociale",
        "Enseigne",
        "Adresse",
        "CP",
        "Ville",
        "Code APE",
        "Activité",
        "Tél",
        "E-mail",
        "Site internet",
        "Actif",
        "Chiffre d'affaires",
    ];

    #[test]
    fn full_entreprise_row() {
        let m = map(ImportType::Entreprises, ENTREPRISE_HEADERS);
        assert_eq!(m.unknown_columns(), ["Chiffre d'affaires"]);
        let row = [
            "732829320",
            "7.3282932000074E13",
            "  Plomberie Dupont &amp; Fils ",
            "Dupont\u{a0}Plomberie",
            "12 rue de la République",
            "1500",
            "Ambérieu-en-Bugey",
            "4322a",
            "",
            "04.74.38.00.00",
            "Contact@Dupont-Plomberie.FR",
            "www.dupont-plomberie.fr",
            "oui",
            "1 000 000",
        ];
        let parsed = parse(&m, &row).unwrap();
        let Record::Entreprise(e) = parsed.record else {
            panic!("not an entreprise")
        };
        assert_eq!(e.siren.as_str(), "732829320");
        assert_eq!(e.siret.as_ref().map(Siret::as_str), Some("73282932000074"));
        assert_eq!(e.nom, "Plomberie Dupont & Fils");
        assert_eq!(e.nom_commercial.as_deref(), Some("Dupont Plomberie"));
        assert_eq!(e.adresse.as_deref(), Some("12 rue de la République"));
        assert_eq!(e.code_postal.as_ref().map(CodePostal::as_str), Some("01500"));
        assert_eq!(e.ville_nom.as_deref(), Some("Ambérieu-en-Bugey"));
        assert_eq!(e.naf_code.as_ref().map(NafCode::as_str), Some("43.22A"));
        assert_eq!(
            e.naf_libelle.as_deref(),
            Some("Travaux d'installation d'eau et de gaz en tous locaux")
        );
        assert_eq!(e.telephone.as_ref().map(Phone::as_str), Some("+33474380000"));
        assert_eq!(
            e.email_contact.as_ref().map(Email::as_str),
            Some("contact@dupont-plomberie.fr")
        );
        assert_eq!(
            e.site_web.as_ref().map(WebUrl::as_str),
            Some("https://www.dupont-plomberie.fr")
        );
        assert_eq!(e.is_active, Some(true));
        // siret, nom, nom_commercial, cp, naf_code, naf_libelle (filled),
        // telephone, email, site, actif.
        assert_eq!(parsed.normalized, 10);
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn absent_columns_and_empty_cells_are_none() {
        let m = map(
            ImportType::Entreprises,
            &["siren", "nom", "telephone", "naf_code", "naf_libelle"],
        );
        let parsed = parse(
            &m,
            &[
                "552100554",
                "Société Exemple",
                "",
                "62.01Z",
                "Développement de logiciels",
            ],
        )
        .unwrap();
        let Record::Entreprise(e) = parsed.record else {
            panic!("not an entreprise")
        };
        assert_eq!(e.siret, None);
        assert_eq!(e.telephone, None);
        assert_eq!(e.is_active, None);
        // The file's label wins over the reference's.
        assert_eq!(e.naf_libelle.as_deref(), Some("Développement de logiciels"));
        assert_eq!(parsed.normalized, 0);
        // A short row: the missing cells are empty.
        assert!(parse(&m, &["552100554", "Société Exemple"]).is_ok());
    }

    #[test]
    fn row_with_three_errors() {
        let m = map(ImportType::Entreprises, ENTREPRISE_HEADERS);
        let row = [
            "732829321",
            "",
            "",
            "",
            "",
            "123456",
            "",
            "99.99Z",
            "",
            "",
            "pas-un-mail",
            "",
            "",
            "",
        ];
        let errors = parse(&m, &row).unwrap_err();
        assert_eq!(
            error_codes(&errors),
            [
                (Some("N° SIREN"), codes::SIREN_CHECKSUM),
                (Some("Raison sociale"), codes::REQUIRED),
                (Some("CP"), codes::INVALID_POSTAL_CODE),
                (Some("Code APE"), codes::UNKNOWN_NAF),
                (Some("E-mail"), codes::INVALID_EMAIL),
            ]
        );
        assert_eq!(errors[0].value.as_deref(), Some("732829321"));
        assert_eq!(errors[1].value, None);
        assert_eq!(
            errors[3].message,
            "NAF code 99.99Z is not one of the 732 sous-classes of NAF rév. 2 (see naf_codes)"
        );
    }

    #[test]
    fn entreprise_rules() {
        let m = map(ImportType::Entreprises, &["siren", "siret", "nom", "is_active"]);
        let codes_of = |row: &[&str]| match parse(&m, row) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.code).collect::<Vec<_>>(),
        };
        assert_eq!(
            codes_of(&["732829320", "55210055400013", "X", ""]),
            [codes::SIRET_SIREN_MISMATCH]
        );
        assert_eq!(codes_of(&["", "55210055400013", "X", ""]), [codes::REQUIRED]);
        assert_eq!(
            codes_of(&["356000000", "35600000000001", "La Poste", "vrai"]),
            Vec::<&str>::new()
        );
        assert_eq!(
            codes_of(&["552100554", "", "X", "peut-être"]),
            [codes::INVALID_BOOLEAN]
        );
        let long = "x".repeat(limits::NOM_ENTREPRISE + 1);
        assert_eq!(codes_of(&["552100554", "", &long, ""]), [codes::TOO_LONG]);
        let ok = "x".repeat(limits::NOM_ENTREPRISE);
        assert_eq!(codes_of(&["552100554", "", &ok, ""]), Vec::<&str>::new());
    }

    #[test]
    fn excel_precision_is_a_warning() {
        let m = map(ImportType::Entreprises, &["siren", "nom"]);
        // Excel's 5.521E8 is 552100000: Luhn-valid by chance, but the four
        // zeros may stand for lost digits.
        let p = parse(&m, &["5.521E8", "X"]).unwrap();
        assert_eq!(
            error_codes(&p.warnings),
            [(Some("siren"), codes::EXCEL_PRECISION)]
        );
        // All 9 digits written: nothing to warn about.
        assert!(parse(&m, &["5.52100554E8", "X"]).unwrap().warnings.is_empty());
        assert_eq!(
            error_codes(&parse(&m, &["5.5E8", "X"]).unwrap_err()),
            [(Some("siren"), codes::SIREN_CHECKSUM)]
        );
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
    fn duplicate_and_blank_headers_are_reported() {
        let m = map(ImportType::Categories, &["Nom", "name", "", "ordre"]);
        assert_eq!(m.unknown_columns(), ["name", "column 3 (no header)"]);
        let parsed = parse(&m, &["Plomberie", "Autre", "x", "3.0"]).unwrap();
        let Record::Categorie(c) = parsed.record else {
            panic!("not a categorie")
        };
        assert_eq!(c.nom, "Plomberie");
        assert_eq!(c.ordre, Some(3));
    }

    /// `real/wordpress_categories_export.csv`: its header and a few lines,
    /// split as a CSV reader would.
    const WP_HEADER: &[&str] = &[
        "Term ID",
        "Term Name",
        "Term Slug",
        "Description",
        "Parent ID",
        "Parent Name",
        "Parent Slug",
        "Count",
    ];
    // 7,"Artisanat d’art",artisanat-dart,,,,,
    const WP_ARTISANAT: &[&str] = &["7", "Artisanat d’art", "artisanat-dart", "", "", "", "", ""];
    // 14,"Services à la personne – Aide &amp; Entretien",services-a-la-personne-aide-entretien,,,,,
    const WP_SERVICES: &[&str] = &[
        "14",
        "Services à la personne – Aide &amp; Entretien",
        "services-a-la-personne-aide-entretien",
        "",
        "",
        "",
        "",
        "",
    ];
    // 1688,Haguenau,haguenau,,1687,"Crépissage et façade",crepissage-et-facade,
    const WP_HAGUENAU: &[&str] = &[
        "1688",
        "Haguenau",
        "haguenau",
        "",
        "1687",
        "Crépissage et façade",
        "crepissage-et-facade",
        "",
    ];

    #[test]
    fn wordpress_export_as_categories() {
        let m = map(ImportType::Categories, WP_HEADER);
        assert!(m.unknown_columns().is_empty());
        let Record::Categorie(c) = parse(&m, WP_ARTISANAT).unwrap().record else {
            panic!()
        };
        assert_eq!(c.nom, "Artisanat d’art");
        assert_eq!(c.slug.as_ref().map(Slug::as_str), Some("artisanat-dart"));
        assert_eq!(c.derived_slug.as_str(), "artisanat-dart");
        assert_eq!(c.description, None);
        let p = parse(&m, WP_SERVICES).unwrap();
        let Record::Categorie(c) = p.record else { panic!() };
        assert_eq!(c.nom, "Services à la personne – Aide & Entretien");
        assert_eq!(p.normalized, 1);
        assert_eq!(
            parse(&m, WP_HAGUENAU).unwrap().record,
            Record::Skipped(SkipReason::ChildTerm {
                parent: "Crépissage et façade".to_owned()
            })
        );
        let long_name = "Boutique en ligne de soins de la peau - cosmétiques coréens et produits de beauté naturels importés d’Asie";
        let errors = parse(&m, &["1", long_name, "", "", "", "", "", ""]).unwrap_err();
        assert_eq!(error_codes(&errors), [(Some("Term Name"), codes::TOO_LONG)]);
    }

    #[test]
    fn wordpress_export_as_sous_categories() {
        let m = map(ImportType::SousCategories, WP_HEADER);
        assert_eq!(
            parse(&m, WP_ARTISANAT).unwrap().record,
            Record::Categorie(CategorieRecord {
                nom: "Artisanat d’art".into(),
                slug: Some(Slug::parse("artisanat-dart").unwrap()),
                derived_slug: Slug::parse("artisanat-dart").unwrap(),
                description: None,
                meta_description: None,
                ordre: None,
            })
        );
        let Record::SousCategorie(s) = parse(&m, WP_HAGUENAU).unwrap().record else {
            panic!()
        };
        assert_eq!(s.nom, "Haguenau");
        assert_eq!(s.categorie, "Crépissage et façade");
        assert_eq!(s.slug.as_ref().map(Slug::as_str), Some("haguenau"));
        assert!(s.naf_codes.is_empty());
        // Outside a term export an empty parent is an error.
        let plain = map(ImportType::SousCategories, &["nom", "categorie"]);
        assert_eq!(
            error_codes(&parse(&plain, &["Haguenau", ""]).unwrap_err()),
            [(Some("categorie"), codes::REQUIRED)]
        );
    }

    #[test]
    fn sous_categorie_naf_codes() {
        let m = map(
            ImportType::SousCategories,
            &["nom", "categorie", "codes naf", "meta_description"],
        );
        let p = parse(&m, &["Plombier", "Bâtiment", "43.22A; 4321a | 43 22A", ""]).unwrap();
        let Record::SousCategorie(s) = p.record else {
            panic!()
        };
        let got: Vec<&str> = s.naf_codes.iter().map(NafCode::as_str).collect();
        assert_eq!(got, ["43.22A", "43.21A"]);
        let p = parse(&m, &["Plombier", "Bâtiment", "43.22A 43.21A,56.10A", ""]).unwrap();
        let Record::SousCategorie(s) = p.record else {
            panic!()
        };
        assert_eq!(s.naf_codes.len(), 3);
        let errors = parse(
            &m,
            &["Plombier", "Bâtiment", "43.22A, 99.99Z, 4322", &"m".repeat(161)],
        )
        .unwrap_err();
        assert_eq!(
            error_codes(&errors),
            [
                (Some("meta_description"), codes::TOO_LONG),
                (Some("codes naf"), codes::UNKNOWN_NAF),
                (Some("codes naf"), codes::INVALID_NAF),
            ]
        );
        assert!(errors[2].message.starts_with("`4322`: "));
    }

    #[test]
    fn slug_cells() {
        let m = map(ImportType::Categories, &["nom", "slug"]);
        let Record::Categorie(c) = parse(&m, &["Bien-être", "coach-bien%e2%80%91etre"])
            .unwrap()
            .record
        else {
            panic!()
        };
        assert_eq!(c.slug.as_ref().map(Slug::as_str), Some("coach-bien-etre"));
        let long = "paris-createur-francais-de-poufs-assises-et-decorations-ecoresponsables-fabriquees-a-partir-de-materiaux-recycles-toiles-de-montgolfiere-tissus-upcycles-2";
        let p = parse(&m, &["Paris", long]).unwrap();
        assert_eq!(p.warnings[0].code, codes::SLUG_TRUNCATED);
        let errors = parse(&m, &["–", ""]).unwrap_err();
        assert_eq!(error_codes(&errors), [(Some("nom"), codes::INVALID_SLUG)]);
    }

    /// Lines of `real/villes_france.csv`, as is.
    const VILLES: &[&str] = &[
        "L Abergement Clemenciat (1400)",
        "Amberieu En Bugey (1500)",
        "Neuilly St Front (2470)",
        "St Ouen Du Mesnil Oger (14670)",
        "Afa (20167)",
        "Centuri (20238)",
        "Les Avirons (97425)",
    ];

    #[test]
    fn villes_single_column() {
        let m = map(ImportType::Villes, &["Villes"]);
        let want = [
            (
                "L Abergement Clemenciat",
                "01400",
                "01",
                "l-abergement-clemenciat-01400",
            ),
            ("Amberieu En Bugey", "01500", "01", "amberieu-en-bugey-01500"),
            ("Neuilly St Front", "02470", "02", "neuilly-st-front-02470"),
            (
                "St Ouen Du Mesnil Oger",
                "14670",
                "14",
                "st-ouen-du-mesnil-oger-14670",
            ),
            ("Afa", "20167", "2A", "afa-20167"),
            ("Centuri", "20238", "2B", "centuri-20238"),
            ("Les Avirons", "97425", "974", "les-avirons-97425"),
        ];
        for (line, (nom, cp, dep, slug)) in VILLES.iter().zip(want) {
            let p = parse(&m, &[line]).unwrap();
            let Record::Ville(v) = p.record else { panic!() };
            assert_eq!(
                (
                    v.nom.as_str(),
                    v.code_postal.as_str(),
                    v.departement.as_deref(),
                    v.slug.as_str()
                ),
                (nom, cp, Some(dep), slug),
                "{line}"
            );
            assert!(v.departement_derived);
            assert_eq!((v.lat, v.lng, v.population, v.region), (None, None, None, None));
        }
        let errors = parse(&m, &["Paris"]).unwrap_err();
        assert_eq!(error_codes(&errors), [(None, codes::REQUIRED)]);
        let errors = parse(&m, &["Nulle Part (123456)"]).unwrap_err();
        assert_eq!(
            error_codes(&errors),
            [(Some("Villes"), codes::INVALID_POSTAL_CODE)]
        );
        let errors = parse(&m, &[" (1500)"]).unwrap_err();
        assert_eq!(error_codes(&errors), [(Some("Villes"), codes::REQUIRED)]);
    }

    #[test]
    fn villes_columns() {
        let m = map(
            ImportType::Villes,
            &[
                "commune",
                "CP",
                "Département",
                "Région",
                "latitude",
                "lon",
                "population",
            ],
        );
        let p = parse(
            &m,
            &[
                "Rochelle (La)",
                "17000",
                "",
                "Nouvelle-Aquitaine",
                "46,1591",
                "-1.1520",
                "77 205",
            ],
        )
        .unwrap();
        let Record::Ville(v) = p.record else { panic!() };
        assert_eq!(v.nom, "Rochelle (La)");
        assert_eq!(v.departement.as_deref(), Some("17"));
        assert_eq!(
            (v.lat, v.lng, v.population),
            (Some(46.1591), Some(-1.152), Some(77205))
        );
        let p = parse(&m, &["Ajaccio (20000)", "20000", "2a", "", "", "", ""]).unwrap();
        let Record::Ville(v) = p.record else { panic!() };
        assert_eq!(
            (v.nom.as_str(), v.departement.as_deref(), v.departement_derived),
            ("Ajaccio", Some("2A"), false)
        );
        let errors = parse(&m, &["Ajaccio (20000)", "20090", "Corse", "", "91", "x", "-3"]).unwrap_err();
        assert_eq!(
            error_codes(&errors),
            [
                (Some("CP"), codes::POSTAL_CODE_MISMATCH),
                (Some("Département"), codes::INVALID_DEPARTEMENT),
                (Some("latitude"), codes::OUT_OF_RANGE),
                (Some("lon"), codes::INVALID_NUMBER),
                (Some("population"), codes::INVALID_NUMBER),
            ]
        );
    }

    #[test]
    fn departement_codes() {
        for (raw, want) in [
            ("1", "01"),
            ("01", "01"),
            ("75", "75"),
            ("2B", "2B"),
            ("974", "974"),
            ("1.0", "01"),
        ] {
            assert_eq!(parse_departement(raw).unwrap(), want, "{raw}");
        }
        for raw in ["20", "00", "96", "999", "Ain", "123"] {
            assert_eq!(
                parse_departement(raw).unwrap_err().code,
                codes::INVALID_DEPARTEMENT,
                "{raw}"
            );
        }
    }

    #[test]
    fn blank_rows() {
        assert!(ColumnMap::is_blank_row(&strings(&["", " ", "\u{a0}"])));
        assert!(!ColumnMap::is_blank_row(&strings(&["", "x"])));
    }
}
