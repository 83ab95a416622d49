//! A Sirene establishment's address, assembled from the register's parts
//! (docs/imports.md "Sirene (INSEE) files"): `complement, number index
//! type street`, e.g. `ZI DES PRES, 12 BIS AVENUE DE LA REPUBLIQUE`.
//!
//! The street type and the repetition index are written out (`AV` →
//! `AVENUE`, `B` → `BIS`): `CHE`, `IMP` or `RPT` mean nothing to a reader of
//! a directory page. Everything else is kept as INSEE writes it, upper case
//! without accents, since restoring accents would be a guess; the words
//! written out follow the case of the street name, so a file that spells
//! `de la République` gets `avenue`, not `AVENUE`.

use crate::normalize::{excel_digits, fold_accents};

/// INSEE's street types (`typeVoieEtablissement`) and what they stand for,
/// in lower case with accents; upper-cased, the accents are dropped, as
/// INSEE writes. A type that is not here is kept as written.
const STREET_TYPES: &[(&str, &str)] = &[
    ("ALL", "allée"),
    ("AV", "avenue"),
    ("BD", "boulevard"),
    ("CAR", "carrefour"),
    ("CHE", "chemin"),
    ("CHS", "chaussée"),
    ("CITE", "cité"),
    ("COR", "corniche"),
    ("CRS", "cours"),
    ("DOM", "domaine"),
    ("DSC", "descente"),
    ("ECA", "écart"),
    ("ESP", "esplanade"),
    ("FG", "faubourg"),
    ("GR", "grande rue"),
    ("HAM", "hameau"),
    ("HLE", "halle"),
    ("IMP", "impasse"),
    ("LD", "lieu-dit"),
    ("LOT", "lotissement"),
    ("MAR", "marché"),
    ("MTE", "montée"),
    ("PAS", "passage"),
    ("PL", "place"),
    ("PLN", "plaine"),
    ("PLT", "plateau"),
    ("PRO", "promenade"),
    ("PRV", "parvis"),
    ("QUA", "quartier"),
    ("QUAI", "quai"),
    ("RES", "résidence"),
    ("RLE", "ruelle"),
    ("ROC", "rocade"),
    ("RPT", "rond-point"),
    ("RTE", "route"),
    ("RUE", "rue"),
    // INSEE's label is "Sente - Sentier": the two are one type.
    ("SEN", "sentier"),
    ("SQ", "square"),
    ("TPL", "terre-plein"),
    ("TRA", "traverse"),
    ("VLA", "villa"),
    ("VLGE", "village"),
];

/// `indiceRepetitionEtablissement`: `B`, `T`, `Q`, `C`; any other letter
/// (`A`, `D`…, used where a street numbers `12A`) is kept as written.
const REPETITION_INDICES: &[(&str, &str)] =
    &[("B", "bis"), ("T", "ter"), ("Q", "quater"), ("C", "quinquies")];

/// The address parts of one row, cleaned, `None` for an empty cell (or
/// `[ND]`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct AddressParts<'a> {
    pub numero: Option<&'a str>,
    pub indice: Option<&'a str>,
    pub type_voie: Option<&'a str>,
    pub libelle: Option<&'a str>,
    pub complement: Option<&'a str>,
}

/// An assembled address, and whether an abbreviation was written out (a
/// normalisation: the text differs from the cells as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Assembled {
    pub value: String,
    pub expanded: bool,
}

impl AddressParts<'_> {
    /// `None` when every part is empty: the stored address stays.
    pub fn assemble(&self) -> Option<Assembled> {
        let lower = [self.libelle, self.complement]
            .iter()
            .flatten()
            .any(|s| s.chars().any(char::is_lowercase));
        let mut expanded = false;
        let mut write_out = |code: &str, table: &[(&str, &str)]| -> String {
            match table.iter().find(|(c, _)| c.eq_ignore_ascii_case(code.trim())) {
                Some((_, long)) => {
                    expanded = true;
                    if lower {
                        (*long).to_owned()
                    } else {
                        fold_accents(long).to_uppercase()
                    }
                }
                None => code.to_owned(),
            }
        };
        // Excel may have stored the number as `12.0`.
        let numero = self
            .numero
            .map(|n| excel_digits(n).map_or_else(|| n.to_owned(), |d| d.value));
        let street: Vec<String> = [
            numero,
            self.indice.map(|i| write_out(i, REPETITION_INDICES)),
            self.type_voie.map(|t| write_out(t, STREET_TYPES)),
            self.libelle.map(str::to_owned),
        ]
        .into_iter()
        .flatten()
        .collect();
        let street = street.join(" ");
        let value = match (self.complement, street.is_empty()) {
            (None, true) => return None,
            (None, false) => street,
            (Some(c), true) => c.to_owned(),
            (Some(c), false) => format!("{c}, {street}"),
        };
        Some(Assembled { value, expanded })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts<'a>(
        numero: &'a str,
        indice: &'a str,
        type_voie: &'a str,
        libelle: &'a str,
        complement: &'a str,
    ) -> AddressParts<'a> {
        let some = |s: &'a str| (!s.is_empty()).then_some(s);
        AddressParts {
            numero: some(numero),
            indice: some(indice),
            type_voie: some(type_voie),
            libelle: some(libelle),
            complement: some(complement),
        }
    }

    #[test]
    fn addresses_as_insee_writes_them() {
        let cases = [
            (
                parts("12", "B", "AV", "DE LA REPUBLIQUE", ""),
                Some(("12 BIS AVENUE DE LA REPUBLIQUE", true)),
            ),
            (
                parts("3", "", "RUE", "DES LILAS", ""),
                Some(("3 RUE DES LILAS", true)),
            ),
            (
                parts("7", "T", "CHS", "DU PORT", "ZI DES PRES"),
                Some(("ZI DES PRES, 7 TER CHAUSSEE DU PORT", true)),
            ),
            (
                parts("", "", "LD", "LES GRANGES", ""),
                Some(("LIEU-DIT LES GRANGES", true)),
            ),
            // An index that is a plain letter, a type INSEE does not list.
            (
                parts("12", "A", "ZAC", "DU MOULIN", ""),
                Some(("12 A ZAC DU MOULIN", false)),
            ),
            (
                parts("", "", "", "", "CENTRE COMMERCIAL"),
                Some(("CENTRE COMMERCIAL", false)),
            ),
            (
                parts("12.0", "q", "bd", "Victor Hugo", ""),
                Some(("12 quater boulevard Victor Hugo", true)),
            ),
            (
                parts("5", "", "ESP", "de l'Europe", ""),
                Some(("5 esplanade de l'Europe", true)),
            ),
            (
                parts("5", "", "RES", "LES PINS", "Bâtiment B"),
                Some(("Bâtiment B, 5 résidence LES PINS", true)),
            ),
            (parts("", "", "", "", ""), None),
        ];
        for (p, want) in cases {
            let got = p.assemble().map(|a| (a.value, a.expanded));
            assert_eq!(got.as_ref().map(|(v, e)| (v.as_str(), *e)), want, "{p:?}");
        }
    }

    #[test]
    fn the_tables_hold_codes_once() {
        for table in [STREET_TYPES, REPETITION_INDICES] {
            let mut codes: Vec<&str> = table.iter().map(|(c, _)| *c).collect();
            codes.sort_unstable();
            codes.dedup();
            assert_eq!(codes.len(), table.len());
        }
    }
}
