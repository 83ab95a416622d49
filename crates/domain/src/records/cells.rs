//! Reading one row's cells: each helper cleans a cell, turns it into a value,
//! counts the normalisation and records the error or warning against its
//! column, so a record builder only says which field becomes what.

use super::columns::ColumnMap;
use super::types::{ReferenceData, RowError};
use crate::headers::Field;
use crate::normalize::{clean_multiline, clean_text, excel_digits, may_be_scientific, parse_bool};
use crate::text;
use crate::text::Text;
use crate::values::{NafCode, Slug, ValueError, codes};

/// One row being parsed: collects every error rather than stopping at the
/// first, so the operator fixes a row in one go.
pub(super) struct RowParser<'a> {
    pub(super) map: &'a ColumnMap,
    pub(super) fields: &'a [String],
    pub(super) errors: Vec<RowError>,
    pub(super) warnings: Vec<RowError>,
    pub(super) normalized: u32,
}

impl<'a> RowParser<'a> {
    fn column(&self, field: Field) -> Option<usize> {
        self.map.mapping.column(field)
    }

    fn header(&self, field: Field) -> Option<String> {
        self.column(field).and_then(|i| self.map.headers.get(i)).cloned()
    }

    /// Whether the file has a column for `field`.
    pub(super) fn has(&self, field: Field) -> bool {
        self.column(field).is_some()
    }

    /// The cell as written; `None` when the file has no such column. A short
    /// row (fewer cells than headers) has empty cells at its end, and so
    /// does a cell INSEE marks `[ND]` (see [`not_disseminated`]).
    pub(super) fn raw(&self, field: Field) -> Option<&'a str> {
        let fields = self.fields;
        self.column(field).map(|i| {
            fields
                .get(i)
                .map_or("", |c| if not_disseminated(c) { "" } else { c.as_str() })
        })
    }

    pub(super) fn is_blank(&self, field: Field) -> bool {
        self.raw(field).is_none_or(|r| clean_text(r).value.is_empty())
    }

    /// Records the cell's error: the first one only, so a row has at most
    /// one error per known field, whatever the cell holds, and the value is
    /// kept at most [`ERROR_VALUE_CHARS`] long (docs/security.md).
    pub(super) fn error(&mut self, field: Field, e: ValueError) {
        let column = self.header(field);
        if self.errors.iter().any(|known| known.column == column) {
            return;
        }
        let value = self.raw(field).filter(|r| !r.is_empty()).map(shorten);
        self.errors.push(RowError {
            column,
            value,
            code: e.code,
            message: e.message,
        });
    }

    pub(super) fn warn(&mut self, field: Field, code: &'static str, message: Text) {
        let value = self.raw(field).map(shorten);
        self.warnings.push(RowError {
            column: self.header(field),
            value,
            code,
            message,
        });
    }

    pub(super) fn require(&mut self, field: Field) {
        self.error(
            field,
            ValueError::new(
                codes::REQUIRED,
                text!(
                    "`{name}` est obligatoire et cette cellule est vide",
                    "`{name}` is required and this cell is empty",
                    name = field.name()
                ),
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

    pub(super) fn check_len(&mut self, field: Field, value: String, max: usize) -> Option<String> {
        let len = value.chars().count();
        if len > max {
            self.error(
                field,
                ValueError::too_long(text!("`{name}`", "`{name}`", name = field.name()), len, max),
            );
            return None;
        }
        Some(value)
    }

    pub(super) fn text(&mut self, field: Field, max: usize) -> Option<String> {
        let value = self.cleaned(field)?;
        self.check_len(field, value, max)
    }

    pub(super) fn multiline(&mut self, field: Field, max: usize) -> Option<String> {
        let cleaned = clean_multiline(self.raw(field)?);
        if cleaned.value.is_empty() {
            return None;
        }
        self.normalized += u32::from(cleaned.altered);
        let value = cleaned.value.into_owned();
        self.check_len(field, value, max)
    }

    pub(super) fn required_text(&mut self, field: Field, max: usize) -> Option<String> {
        if self.is_blank(field) {
            self.require(field);
            return None;
        }
        self.text(field, max)
    }

    /// A domain value from a cleaned cell. Warns when Excel's scientific
    /// notation may have eaten digits, even if the result happens to pass
    /// its checks.
    pub(super) fn value<T: AsRef<str>>(
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
                if may_be_scientific(&cleaned) && excel_digits(&cleaned).is_some_and(|n| n.lossy) {
                    self.warn(
                        field,
                        codes::EXCEL_PRECISION,
                        text!(
                            "`{name}` a été enregistré par Excel en notation scientifique, qui a pu \
                             remplacer des chiffres par des zéros : vérifiez {value}",
                            "`{name}` was stored by Excel in scientific notation, which may have replaced \
                             digits with zeros: check {value}",
                            name = field.name(),
                            value = v.as_ref()
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

    pub(super) fn required_value<T: AsRef<str>>(
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

    pub(super) fn boolean(&mut self, field: Field) -> Option<bool> {
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
                        text!(
                            "`{name}` vaut oui ou non : oui/non, vrai/faux, true/false, 1/0",
                            "`{name}` is yes or no: true/false, oui/non, vrai/faux, 1/0",
                            name = field.name()
                        ),
                    ),
                );
                None
            }
        }
    }

    /// A whole number, as Excel may have written it (`12.0`, `1 234`).
    pub(super) fn integer<T: TryFrom<i64> + ToString>(
        &mut self,
        field: Field,
        min: i64,
        example: &str,
    ) -> Option<T> {
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
                let (kind_fr, kind_en) = if min >= 0 {
                    ("un nombre entier ≥ 0", "a whole number ≥ 0")
                } else {
                    ("un nombre entier", "a whole number")
                };
                self.error(
                    field,
                    ValueError::new(
                        codes::INVALID_NUMBER,
                        text!(
                            "`{name}` est {kind_fr}, par exemple {example}",
                            "`{name}` is {kind_en}, e.g. {example}",
                            name = field.name()
                        ),
                    ),
                );
                None
            }
        }
    }

    /// A coordinate in decimal degrees; a decimal comma is accepted.
    pub(super) fn coordinate(&mut self, field: Field, bound: f64) -> Option<f64> {
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
                    text!(
                        "`{name}` est un nombre de degrés décimaux, par exemple 45.9578 ou 45,9578",
                        "`{name}` is a number of decimal degrees, e.g. 45.9578",
                        name = field.name()
                    ),
                ),
            );
            return None;
        };
        if v.abs() > bound {
            self.error(
                field,
                ValueError::new(
                    codes::OUT_OF_RANGE,
                    text!(
                        "`{name}` doit être compris entre -{bound} et {bound}",
                        "`{name}` must be between -{bound} and {bound}",
                        name = field.name()
                    ),
                ),
            );
            return None;
        }
        self.normalized += u32::from(v.to_string() != raw);
        Some(v)
    }

    /// An explicit slug cell: canonicalised, and cut to length with a
    /// warning rather than refused (it is an address, not data).
    pub(super) fn slug(&mut self, field: Field) -> Option<Slug> {
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
                        text!(
                            "le slug dépassait {max} caractères et a été coupé en {slug}",
                            "the slug was longer than {max} characters and was cut to {slug}",
                            max = crate::values::MAX_SLUG_LEN,
                            slug = n.value
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
    pub(super) fn derived_slug(&mut self, nom: Option<&str>) -> Option<Slug> {
        match Slug::from_name(nom?) {
            Ok(n) => Some(n.value),
            Err(e) => {
                self.error(Field::Nom, e);
                None
            }
        }
    }

    pub(super) fn naf_code(
        &mut self,
        field: Field,
        ctx: &dyn ReferenceData,
    ) -> Option<(NafCode, Option<String>)> {
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
    pub(super) fn naf_codes(&mut self, ctx: &dyn ReferenceData) -> Vec<NafCode> {
        let Some(raw) = self.raw(Field::NafCodes) else {
            return Vec::new();
        };
        let cleaned = clean_text(raw).value.into_owned();
        let mut codes_found: Vec<NafCode> = Vec::new();
        let mut altered = cleaned != raw;
        // One error for the cell, however many codes it refuses: a cell of
        // 16,000 bad tokens is one error row, not 16,000 copies of itself.
        let mut first_refusal: Option<ValueError> = None;
        let mut refused = 0usize;
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
                let refusal = match NafCode::parse(token) {
                    Ok(code) if ctx.naf_libelle(&code).is_none() => unknown_naf(&code),
                    Ok(code) => {
                        altered |= code.as_str() != token || codes_found.contains(&code);
                        if !codes_found.contains(&code) {
                            codes_found.push(code);
                        }
                        continue;
                    }
                    Err(e) => ValueError::new(
                        e.code,
                        e.message.prefixed(
                            &format!("`{}` : ", shorten(token)),
                            &format!("`{}`: ", shorten(token)),
                        ),
                    ),
                };
                refused += 1;
                first_refusal.get_or_insert(refusal);
            }
        }
        if let Some(mut e) = first_refusal {
            if refused > 1 {
                let more = refused - 1;
                let Text { fr, en } = &e.message;
                e.message = text!(
                    "{fr} (et {more} autre(s) refusé(s) dans cette cellule)",
                    "{en} (and {more} more refused in this cell)"
                );
            }
            self.error(Field::NafCodes, e);
        }
        self.normalized += u32::from(altered && !codes_found.is_empty());
        codes_found
    }
}

/// INSEE's mark for a value the register may not disseminate (`[ND]`, "non
/// diffusible"): it stands for a value nobody may read, so it is read as an
/// empty cell, in every import — never stored, and never an error of its own.
pub(super) fn not_disseminated(cell: &str) -> bool {
    cell.trim() == "[ND]"
}

/// The longest cell value an error or a warning keeps, in characters; a
/// longer one is cut there and marked with how long it was.
pub const ERROR_VALUE_CHARS: usize = 200;

/// A value as an error keeps it: at most [`ERROR_VALUE_CHARS`] characters,
/// cut with its full length said.
pub fn shorten(value: &str) -> String {
    match value.char_indices().nth(ERROR_VALUE_CHARS) {
        None => value.to_owned(),
        Some((cut, _)) => format!("{}… ({} characters in all)", &value[..cut], value.chars().count()),
    }
}

fn unknown_naf(code: &NafCode) -> ValueError {
    ValueError::new(
        codes::UNKNOWN_NAF,
        text!(
            "le code NAF {code} n’est pas l’une des 732 sous-classes de la NAF rév. 2 (voir naf_codes)",
            "NAF code {code} is not one of the 732 sous-classes of NAF rév. 2 (see naf_codes)"
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::ImportType;
    use crate::records::test_support::{error_codes, map, parse};
    use crate::records::types::Record;
    use crate::values::{Slug, codes};

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
}
