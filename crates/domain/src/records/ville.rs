//! Town rules (docs/spec.md §4.1–§4.3): a postal code written inside the
//! name, the département derived from it or checked, coordinates and
//! population.

use super::cells::RowParser;
use super::limits;
use super::types::VilleRecord;
use crate::headers::Field;
use crate::normalize::{clean_text, excel_digits};
use crate::text;
use crate::text::Text;
use crate::values::{CodePostal, Slug, ValueError, codes};

impl RowParser<'_> {
    pub(super) fn ville(&mut self) -> Option<VilleRecord> {
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
                        text!(
                            "le nom de la ville donne le code postal {in_nom} mais cette colonne donne {cell}",
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
                            Text::new(
                                "`code_postal` est obligatoire : remplissez la colonne code_postal ou écrivez \
                                 la ville sous la forme `Nom (code postal)`, par exemple `Amberieu En Bugey (01500)`",
                                "`code_postal` is required: fill the code_postal column or write the town as \
                                 `Name (postal code)`, e.g. `Amberieu En Bugey (01500)`",
                            ),
                        ),
                    );
                }
                None
            }
        };
        let (departement, departement_derived) = match self.departement(code_postal.as_ref()) {
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

impl RowParser<'_> {
    /// The `departement` cell. `20`, Corsica's code until 1976 and what a
    /// sheet deriving the département from the postal code's first two
    /// digits writes, is read as `2A` or `2B` when the postal code is
    /// Corsican: the intent is certain, so it is a normalisation, not an
    /// error. With any other postal code (or none) it stays an error.
    fn departement(&mut self, code_postal: Option<&CodePostal>) -> Option<String> {
        let corsica = code_postal.and_then(corsican_departement);
        let legacy = self
            .raw(Field::Departement)
            .and_then(|raw| excel_digits(&clean_text(raw).value))
            .is_some_and(|d| d.value == "20");
        match (legacy, corsica) {
            (true, Some(d)) => {
                self.normalized += 1;
                Some(d.to_owned())
            }
            (true, None) => {
                let message = match code_postal {
                    Some(cp) => text!(
                        "`20` (la Corse avant 1976) s’écrit aujourd’hui 2A ou 2B, et le code postal {cp} n’est \
                         pas un code corse qui dirait lequel : écrivez 2A (Corse-du-Sud) ou 2B (Haute-Corse)",
                        "`20` (Corsica before 1976) is now 2A or 2B, and the postal code {cp} is not a Corsican \
                         one that would say which: write 2A (Corse-du-Sud) or 2B (Haute-Corse)"
                    ),
                    None => Text::new(
                        "`20` (la Corse avant 1976) s’écrit aujourd’hui 2A (Corse-du-Sud) ou 2B (Haute-Corse)",
                        "`20` (Corsica before 1976) is now 2A (Corse-du-Sud) or 2B (Haute-Corse)",
                    ),
                };
                self.error(
                    Field::Departement,
                    ValueError::new(codes::INVALID_DEPARTEMENT, message),
                );
                None
            }
            (false, _) => self.value(Field::Departement, parse_departement),
        }
    }
}

/// The Corsican département of a postal code: `20000`–`20190` are
/// Corse-du-Sud's (Ajaccio `20000`, Porto-Vecchio `20137`), `20200`–`20620`
/// Haute-Corse's (Bastia `20200`, Biguglia `20620`). No town has a code in
/// between or above, so those say nothing.
fn corsican_departement(cp: &CodePostal) -> Option<&'static str> {
    match cp.as_str().parse::<u32>().ok()? {
        20_000..=20_190 => Some("2A"),
        20_200..=20_620 => Some("2B"),
        _ => None,
    }
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
            Text::new(
                "un département s’écrit avec son code : 2 chiffres (01, 75), 2A ou 2B pour la Corse, \
                 3 chiffres outre-mer (974)",
                "a département is its code: 2 digits (01, 75), 2A or 2B for Corsica, 3 digits overseas (974)",
            ),
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
    use crate::ImportType;
    use crate::records::test_support::{error_codes, map, parse};
    use crate::records::types::Record;

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

    /// `20`, Corsica's code before 1976, with a Corsican postal code.
    #[test]
    fn departement_20_is_read_from_the_postal_code() {
        let m = map(ImportType::Villes, &["nom", "code_postal", "departement"]);
        for (nom, cp, dep, want) in [
            ("Ajaccio", "20000", "20", "2A"),
            ("Porto-Vecchio", "20137", "20", "2A"),
            ("Olmeto", "20113", "20.0", "2A"),
            ("Bastia", "20200", "20", "2B"),
            ("Corte", "20250", " 20 ", "2B"),
            ("Biguglia", "20620", "20", "2B"),
        ] {
            let p = parse(&m, &[nom, cp, dep]).unwrap();
            let Record::Ville(v) = p.record else { panic!() };
            assert_eq!(v.departement.as_deref(), Some(want), "{nom}");
            assert!(!v.departement_derived, "{nom}");
            assert_eq!(p.normalized, 1, "{nom}");
        }
        // The département as written is never second-guessed.
        let Record::Ville(v) = parse(&m, &["Ajaccio", "20000", "2B"]).unwrap().record else {
            panic!()
        };
        assert_eq!(v.departement.as_deref(), Some("2B"));
        // Not a Corsican postal code, or none that exists: `20` stays an error.
        for cp in ["75001", "20700", "20195"] {
            let errors = parse(&m, &["Paris", cp, "20"]).unwrap_err();
            assert_eq!(
                error_codes(&errors),
                [(Some("departement"), codes::INVALID_DEPARTEMENT)],
                "{cp}"
            );
            assert!(errors[0].message.en.contains(cp), "{}", errors[0].message.en);
            assert!(errors[0].message.fr.contains(cp), "{}", errors[0].message);
        }
        let m = map(ImportType::Villes, &["nom", "departement"]);
        let errors = parse(&m, &["Ajaccio", "20"]).unwrap_err();
        assert_eq!(
            error_codes(&errors),
            [
                (None, codes::REQUIRED),
                (Some("departement"), codes::INVALID_DEPARTEMENT)
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
}
