//! Reading the NAF rév. 2 reference from its two published forms: INSEE's
//! five-level list (`int_courts_naf_rev_2.xls`) and the flat CSV of the
//! 732 sous-classes with their parents (`naf_rev2_sous_classes.csv`).

use crate::normalize::clean_text;
use crate::values::NafCode;

/// One sous-classe with its place in the hierarchy; labels cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NafEntry {
    pub code: String,
    pub libelle: String,
    pub libelle_65: Option<String>,
    pub libelle_40: Option<String>,
    pub classe_code: String,
    pub classe_libelle: String,
    pub groupe_code: String,
    pub groupe_libelle: String,
    pub division_code: String,
    pub division_libelle: String,
    pub section_code: String,
    pub section_libelle: String,
}

fn clean(s: &str) -> String {
    clean_text(s).value.into_owned()
}

fn non_empty(s: &str) -> Option<String> {
    Some(clean(s)).filter(|s| !s.is_empty())
}

/// The level a code of INSEE's list sits at, by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Section,
    Division,
    Groupe,
    Classe,
    SousClasse,
}

fn level(code: &str) -> Option<Level> {
    let b = code.as_bytes();
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    match b.len() {
        1 if b[0].is_ascii_uppercase() => Some(Level::Section),
        2 if d(0) && d(1) => Some(Level::Division),
        4 if d(0) && d(1) && b[2] == b'.' && d(3) => Some(Level::Groupe),
        5 if d(0) && d(1) && b[2] == b'.' && d(3) && d(4) => Some(Level::Classe),
        6 if d(0) && d(1) && b[2] == b'.' && d(3) && d(4) && b[5].is_ascii_uppercase() => {
            Some(Level::SousClasse)
        }
        _ => None,
    }
}

/// Reads INSEE's list: rows of (line no., code, label, 65-char label,
/// 40-char label), the five levels mixed in file order, blank rows between.
/// Sections are found by "Section X" codes or single letters; every other
/// parent is named by the code's prefix.
pub fn from_insee_rows(rows: impl IntoIterator<Item = Vec<String>>) -> Result<Vec<NafEntry>, String> {
    use std::collections::HashMap;
    let mut labels: HashMap<String, String> = HashMap::new();
    let mut section_of_division: HashMap<String, (String, String)> = HashMap::new();
    let mut current_section: Option<(String, String)> = None;
    let mut sous_classes: Vec<(String, String, Option<String>, Option<String>)> = Vec::new();
    for row in rows {
        let cell = |i: usize| row.get(i).map(String::as_str).unwrap_or("");
        let raw_code = clean(cell(1));
        // Sections are written `SECTION A` in INSEE's file.
        let code = match raw_code.get(..8) {
            Some(p) if p.eq_ignore_ascii_case("section ") => raw_code[8..].trim().to_owned(),
            _ => raw_code.clone(),
        };
        let Some(lvl) = level(&code) else { continue };
        let label = clean(cell(2));
        match lvl {
            Level::Section => current_section = Some((code.clone(), label.clone())),
            Level::Division => {
                if let Some(s) = &current_section {
                    section_of_division.insert(code.clone(), s.clone());
                }
            }
            Level::SousClasse => sous_classes.push((
                code.clone(),
                label.clone(),
                non_empty(cell(3)),
                non_empty(cell(4)),
            )),
            Level::Groupe | Level::Classe => {}
        }
        labels.insert(code, label);
    }
    let mut out = Vec::with_capacity(sous_classes.len());
    for (code, libelle, l65, l40) in sous_classes {
        let classe = code[..5].to_owned();
        let groupe = code[..4].to_owned();
        let division = code[..2].to_owned();
        let (section_code, section_libelle) = section_of_division
            .get(&division)
            .cloned()
            .ok_or_else(|| format!("division {division} of {code} has no section before it"))?;
        let find = |c: &str| {
            labels
                .get(c)
                .cloned()
                .ok_or_else(|| format!("{code}: parent {c} is missing from the file"))
        };
        out.push(NafEntry {
            libelle,
            libelle_65: l65,
            libelle_40: l40,
            classe_libelle: find(&classe)?,
            groupe_libelle: find(&groupe)?,
            division_libelle: find(&division)?,
            classe_code: classe,
            groupe_code: groupe,
            division_code: division,
            section_code,
            section_libelle,
            code,
        });
    }
    Ok(out)
}

/// Reads the flat CSV form: a header naming `code`, `libelle`,
/// `classe_code` … `section_libelle`.
pub fn from_flat_rows(
    headers: &[String],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Vec<NafEntry>, String> {
    let idx = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| format!("column `{name}` is missing"))
    };
    let cols = [
        idx("code")?,
        idx("libelle")?,
        idx("classe_code")?,
        idx("classe_libelle")?,
        idx("groupe_code")?,
        idx("groupe_libelle")?,
        idx("division_code")?,
        idx("division_libelle")?,
        idx("section_code")?,
        idx("section_libelle")?,
    ];
    let mut out = Vec::new();
    for row in rows {
        let get = |i: usize| clean(row.get(cols[i]).map(String::as_str).unwrap_or(""));
        let code = NafCode::parse(&get(0)).map_err(|e| e.message.en)?;
        out.push(NafEntry {
            code: code.as_str().to_owned(),
            libelle: get(1),
            libelle_65: None,
            libelle_40: None,
            classe_code: get(2),
            classe_libelle: get(3),
            groupe_code: get(4),
            groupe_libelle: get(5),
            division_code: get(6),
            division_libelle: get(7),
            section_code: get(8),
            section_libelle: get(9),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn insee_rows_keep_only_sous_classes_with_their_parents() {
        let rows = vec![
            row(&["", "Code", "Intitulés de la  NAF rév. 2, version finale", "", ""]),
            row(&["1", "", "", "", ""]),
            row(&["2", "SECTION A", "AGRICULTURE, SYLVICULTURE ET PÊCHE", "", ""]),
            row(&[
                "2",
                "01",
                "Culture et production animale, chasse et services annexes",
                "",
                "",
            ]),
            row(&["3", "01.1", "Cultures non permanentes", "", ""]),
            row(&[
                "4",
                "01.11",
                "Culture de céréales (à l'exception du riz), de légumineuses et de graines oléagineuses ",
                "",
                "",
            ]),
            row(&[
                "5",
                "01.11Z",
                "Culture de céréales (à l'exception du riz), de légumineuses\u{a0}et de graines oléagineuses",
                "Culture de céréales",
                "Cult. céréales",
            ]),
            row(&["", "", "", "", ""]),
        ];
        let out = from_insee_rows(rows).unwrap();
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(e.code, "01.11Z");
        assert_eq!(
            e.libelle,
            "Culture de céréales (à l'exception du riz), de légumineuses et de graines oléagineuses"
        );
        assert_eq!(e.classe_code, "01.11");
        assert_eq!(e.groupe_libelle, "Cultures non permanentes");
        assert_eq!(e.section_code, "A");
        assert_eq!(e.section_libelle, "AGRICULTURE, SYLVICULTURE ET PÊCHE");
        assert_eq!(e.libelle_40.as_deref(), Some("Cult. céréales"));
    }

    #[test]
    fn a_sous_classe_without_its_section_is_an_error() {
        let rows = vec![row(&["", "01.11Z", "X", "", ""])];
        assert!(from_insee_rows(rows).is_err());
    }
}
