//! Resolving headers: one header to a field (through the alias tables,
//! compared in a normal form), and a whole header row to a [`HeaderMapping`].

use super::aliases::{aliases, bookkeeping_columns};
use super::field::Field;
use crate::ImportType;
use crate::normalize::fold_accents;

/// The form headers are compared in: accents folded, lower-case, and only
/// letters and digits kept, so case, spaces, `_`, `-`, `°`, `.` (and any other
/// punctuation) do not matter. `N° SIREN` → `nsiren`, `Code-Postal` →
/// `codepostal`, `Libellé NAF` → `libellenaf`.
pub fn normalize_header(raw: &str) -> String {
    // `º` and `ª` (ordinal indicators, typed for `°`) would fold to letters.
    let without_ordinals: String = raw.chars().filter(|c| !matches!(c, '°' | 'º' | 'ª')).collect();
    fold_accents(&without_ordinals)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What one header means for an import type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderMatch {
    Field(Field),
    /// A known export's bookkeeping column, ignored on purpose.
    Bookkeeping,
}

/// The meaning of one header, or `None` when it is unknown.
pub fn match_header(import_type: ImportType, header: &str) -> Option<HeaderMatch> {
    let key = normalize_header(header);
    if key.is_empty() {
        return None;
    }
    aliases(import_type)
        .iter()
        .find(|(_, names)| names.iter().any(|n| normalize_header(n) == key))
        .map(|(field, _)| HeaderMatch::Field(*field))
        .or_else(|| {
            bookkeeping_columns(import_type)
                .iter()
                .any(|n| normalize_header(n) == key)
                .then_some(HeaderMatch::Bookkeeping)
        })
}

/// Why a column of the file is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoredReason {
    /// No alias matches it.
    Unknown,
    /// Its field is already read from an earlier column (the first wins).
    Duplicate(Field),
    /// A known export's bookkeeping column.
    Bookkeeping,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredColumn {
    /// The header as written in the file.
    pub header: String,
    /// 0-based position in the file.
    pub position: usize,
    pub reason: IgnoredReason,
}

/// Every header of a file resolved: the column of each field found, and the
/// columns that are not read, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMapping {
    /// Column position of each field, indexed by [`Field::index`].
    columns: [Option<usize>; Field::ALL.len()],
    ignored: Vec<IgnoredColumn>,
}

impl HeaderMapping {
    /// When two columns name the same field the first one is read and the
    /// later ones are ignored as duplicates: the leftmost column is the one
    /// an operator sees first, and the choice must not depend on content.
    pub fn new(import_type: ImportType, headers: &[String]) -> HeaderMapping {
        let mut columns = [None; Field::ALL.len()];
        let mut ignored = Vec::new();
        for (position, header) in headers.iter().enumerate() {
            let reason = match match_header(import_type, header) {
                Some(HeaderMatch::Field(field)) => match columns[field.index()] {
                    None => {
                        columns[field.index()] = Some(position);
                        continue;
                    }
                    Some(_) => IgnoredReason::Duplicate(field),
                },
                Some(HeaderMatch::Bookkeeping) => IgnoredReason::Bookkeeping,
                None => IgnoredReason::Unknown,
            };
            ignored.push(IgnoredColumn {
                header: header.clone(),
                position,
                reason,
            });
        }
        HeaderMapping { columns, ignored }
    }

    /// The 0-based column holding `field`, if the file has one.
    pub fn column(&self, field: Field) -> Option<usize> {
        self.columns[field.index()]
    }

    pub fn ignored(&self) -> &[IgnoredColumn] {
        &self.ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn normalize_header_cases() {
        let cases = [
            ("N° SIREN", "nsiren"),
            ("n_siren", "nsiren"),
            ("Nº siren", "nsiren"),
            ("Code Postal", "codepostal"),
            ("CODE-POSTAL", "codepostal"),
            ("code.postal", "codepostal"),
            ("Libellé NAF", "libellenaf"),
            ("Dénomination", "denomination"),
            ("\u{feff}Term ID", "termid"),
            ("  Tél. ", "tel"),
            ("", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_header(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn entreprise_headers() {
        let t = ImportType::Entreprises;
        let cases = [
            ("N° SIREN", Field::Siren),
            ("SIREN", Field::Siren),
            ("n_siren", Field::Siren),
            ("Raison sociale", Field::Nom),
            ("DÉNOMINATION", Field::Nom),
            ("Enseigne", Field::NomCommercial),
            ("CP", Field::CodePostal),
            ("Code Postal", Field::CodePostal),
            ("CODE-POSTAL", Field::CodePostal),
            ("Ville", Field::VilleNom),
            ("Code APE", Field::NafCode),
            ("Code NAF/APE", Field::NafCode),
            ("Activité", Field::NafLibelle),
            ("Libellé NAF", Field::NafLibelle),
            ("Tél", Field::Telephone),
            ("Téléphone", Field::Telephone),
            ("E-mail", Field::EmailContact),
            ("Courriel", Field::EmailContact),
            ("Site internet", Field::SiteWeb),
            ("URL", Field::SiteWeb),
            ("Actif", Field::IsActive),
        ];
        for (header, field) in cases {
            assert_eq!(
                match_header(t, header),
                Some(HeaderMatch::Field(field)),
                "{header:?}"
            );
        }
        assert_eq!(match_header(t, "Chiffre d'affaires"), None);
        assert_eq!(match_header(t, ""), None);
    }

    #[test]
    fn other_types() {
        use ImportType::*;
        let cases = [
            (Categories, "Term Name", Field::Nom),
            (Categories, "Term Slug", Field::Slug),
            (Categories, "Parent Name", Field::Parent),
            (SousCategories, "Term Name", Field::Nom),
            (SousCategories, "Parent Name", Field::Categorie),
            (SousCategories, "Catégorie", Field::Categorie),
            (SousCategories, "parent", Field::Categorie),
            (SousCategories, "Codes NAF", Field::NafCodes),
            (SousCategories, "Mots-clés", Field::MotsCles),
            (Villes, "Villes", Field::Nom),
            (Villes, "Commune", Field::Nom),
            (Villes, "CP", Field::CodePostal),
            (Villes, "lon", Field::Lng),
            (Villes, "Longitude", Field::Lng),
            (Villes, "Latitude", Field::Lat),
            (Villes, "Département", Field::Departement),
        ];
        for (t, header, field) in cases {
            assert_eq!(
                match_header(t, header),
                Some(HeaderMatch::Field(field)),
                "{t} {header:?}"
            );
        }
    }

    /// INSEE's `StockEtablissement` header, as the register writes it,
    /// joined with four `StockUniteLegale` columns: every column is either
    /// read or known and ignored, none is reported as unknown.
    #[test]
    fn sirene_stock_etablissement() {
        let header = "siren,nic,siret,statutDiffusionEtablissement,dateCreationEtablissement,\
            trancheEffectifsEtablissement,anneeEffectifsEtablissement,activitePrincipaleRegistreMetiersEtablissement,\
            dateDernierTraitementEtablissement,etablissementSiege,nombrePeriodesEtablissement,\
            complementAdresseEtablissement,numeroVoieEtablissement,indiceRepetitionEtablissement,\
            dernierNumeroVoieEtablissement,indiceRepetitionDernierNumeroVoieEtablissement,typeVoieEtablissement,\
            libelleVoieEtablissement,codePostalEtablissement,libelleCommuneEtablissement,\
            libelleCommuneEtrangerEtablissement,distributionSpecialeEtablissement,codeCommuneEtablissement,\
            codeCedexEtablissement,libelleCedexEtablissement,codePaysEtrangerEtablissement,\
            libellePaysEtrangerEtablissement,identifiantAdresseEtablissement,\
            coordonneeLambertAbscisseEtablissement,coordonneeLambertOrdonneeEtablissement,\
            complementAdresse2Etablissement,numeroVoie2Etablissement,indiceRepetition2Etablissement,\
            typeVoie2Etablissement,libelleVoie2Etablissement,codePostal2Etablissement,\
            libelleCommune2Etablissement,libelleCommuneEtranger2Etablissement,distributionSpeciale2Etablissement,\
            codeCommune2Etablissement,codeCedex2Etablissement,libelleCedex2Etablissement,\
            codePaysEtranger2Etablissement,libellePaysEtranger2Etablissement,dateDebut,\
            etatAdministratifEtablissement,enseigne1Etablissement,enseigne2Etablissement,enseigne3Etablissement,\
            denominationUsuelleEtablissement,activitePrincipaleEtablissement,\
            nomenclatureActivitePrincipaleEtablissement,caractereEmployeurEtablissement,\
            denominationUniteLegale,nomUniteLegale,prenom1UniteLegale,activitePrincipaleUniteLegale";
        let headers: Vec<String> = header.split(',').map(str::to_owned).collect();
        let m = HeaderMapping::new(ImportType::Entreprises, &headers);
        let at = |name: &str| headers.iter().position(|h| h == name);
        let read = [
            (Field::Siren, "siren"),
            (Field::Nic, "nic"),
            (Field::Siret, "siret"),
            (Field::EtablissementSiege, "etablissementSiege"),
            (Field::ComplementAdresse, "complementAdresseEtablissement"),
            (Field::NumeroVoie, "numeroVoieEtablissement"),
            (Field::IndiceRepetition, "indiceRepetitionEtablissement"),
            (Field::TypeVoie, "typeVoieEtablissement"),
            (Field::LibelleVoie, "libelleVoieEtablissement"),
            (Field::CodePostal, "codePostalEtablissement"),
            (Field::VilleNom, "libelleCommuneEtablissement"),
            (Field::EtatAdministratif, "etatAdministratifEtablissement"),
            (Field::Enseigne, "enseigne1Etablissement"),
            (Field::DenominationUsuelle, "denominationUsuelleEtablissement"),
            (Field::NafEtablissement, "activitePrincipaleEtablissement"),
            (
                Field::NafNomenclatureEtablissement,
                "nomenclatureActivitePrincipaleEtablissement",
            ),
            (Field::Nom, "denominationUniteLegale"),
            (Field::NomPersonne, "nomUniteLegale"),
            (Field::PrenomPersonne, "prenom1UniteLegale"),
            (Field::NafCode, "activitePrincipaleUniteLegale"),
        ];
        for (field, name) in read {
            assert_eq!(m.column(field), at(name), "{name}");
        }
        assert!(
            m.ignored().iter().all(|c| c.reason == IgnoredReason::Bookkeeping),
            "{:?}",
            m.ignored()
        );
        assert_eq!(m.ignored().len(), headers.len() - read.len());
        // Elsewhere the register's names mean nothing.
        assert_eq!(
            match_header(ImportType::Villes, "libelleCommuneEtablissement"),
            None
        );
    }

    /// The header line of `real/wordpress_categories_export.csv`, as is.
    const WORDPRESS_HEADER: &str =
        r#""Term ID","Term Name","Term Slug",Description,"Parent ID","Parent Name","Parent Slug",Count"#;

    fn wordpress_headers() -> Vec<String> {
        WORDPRESS_HEADER
            .split(',')
            .map(|h| h.trim_matches('"').to_owned())
            .collect()
    }

    #[test]
    fn wordpress_export() {
        for t in [ImportType::Categories, ImportType::SousCategories] {
            let m = HeaderMapping::new(t, &wordpress_headers());
            assert_eq!(m.column(Field::Nom), Some(1));
            assert_eq!(m.column(Field::Slug), Some(2));
            assert_eq!(m.column(Field::Description), Some(3));
            let parent = if t == ImportType::Categories {
                Field::Parent
            } else {
                Field::Categorie
            };
            assert_eq!(m.column(parent), Some(5));
            let ignored: Vec<_> = m
                .ignored()
                .iter()
                .map(|c| (c.header.as_str(), &c.reason))
                .collect();
            assert_eq!(
                ignored,
                [
                    ("Term ID", &IgnoredReason::Bookkeeping),
                    ("Parent ID", &IgnoredReason::Bookkeeping),
                    ("Parent Slug", &IgnoredReason::Bookkeeping),
                    ("Count", &IgnoredReason::Bookkeeping),
                ]
            );
        }
    }

    #[test]
    fn first_column_wins() {
        let m = HeaderMapping::new(
            ImportType::Entreprises,
            &strings(&["SIREN", "Nom", "Raison sociale", "n° siren", "Foo"]),
        );
        assert_eq!(m.column(Field::Siren), Some(0));
        assert_eq!(m.column(Field::Nom), Some(1));
        let ignored: Vec<_> = m
            .ignored()
            .iter()
            .map(|c| (c.position, c.reason.clone()))
            .collect();
        assert_eq!(
            ignored,
            [
                (2, IgnoredReason::Duplicate(Field::Nom)),
                (3, IgnoredReason::Duplicate(Field::Siren)),
                (4, IgnoredReason::Unknown),
            ]
        );
    }

    /// Within one import type an alias names one field only, and each
    /// field's canonical name is among its aliases.
    #[test]
    fn alias_tables_are_consistent() {
        for t in ImportType::ALL {
            let mut seen = std::collections::HashMap::new();
            for (field, names) in aliases(t) {
                assert_eq!(
                    normalize_header(names[0]),
                    normalize_header(field.name()),
                    "{t} {field}"
                );
                for n in *names {
                    if let Some(other) = seen.insert(normalize_header(n), *field) {
                        assert_eq!(other, *field, "{t}: alias {n:?} names two fields");
                    }
                }
            }
            for b in bookkeeping_columns(t) {
                assert!(!seen.contains_key(&normalize_header(b)), "{t}: {b}");
            }
        }
    }
}
