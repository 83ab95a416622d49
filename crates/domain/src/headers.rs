//! Header matching (docs/spec.md §4.1): which column of an uploaded file holds which
//! field, whatever the operator's spreadsheet called it.

use crate::ImportType;
use crate::normalize::fold_accents;

/// Every field an import can read. Which ones apply depends on the
/// [`ImportType`]; see [`aliases`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Siren,
    Siret,
    Nom,
    NomCommercial,
    Adresse,
    CodePostal,
    VilleNom,
    NafCode,
    NafLibelle,
    Telephone,
    EmailContact,
    SiteWeb,
    IsActive,
    Slug,
    Description,
    MetaDescription,
    Ordre,
    /// `categories` only: the parent term of a hierarchical export. A row
    /// with a parent is a sous-catégorie and is skipped by a `categories`
    /// import (docs/spec.md §4.1: it "creates the top-level terms").
    Parent,
    /// `sous_categories`: the name of the parent catégorie.
    Categorie,
    MotsCles,
    NafCodes,
    Departement,
    Region,
    Lat,
    Lng,
    Population,
}

impl Field {
    pub const ALL: [Field; 26] = [
        Field::Siren,
        Field::Siret,
        Field::Nom,
        Field::NomCommercial,
        Field::Adresse,
        Field::CodePostal,
        Field::VilleNom,
        Field::NafCode,
        Field::NafLibelle,
        Field::Telephone,
        Field::EmailContact,
        Field::SiteWeb,
        Field::IsActive,
        Field::Slug,
        Field::Description,
        Field::MetaDescription,
        Field::Ordre,
        Field::Parent,
        Field::Categorie,
        Field::MotsCles,
        Field::NafCodes,
        Field::Departement,
        Field::Region,
        Field::Lat,
        Field::Lng,
        Field::Population,
    ];

    /// The canonical column name, as in docs/spec.md §4.1 and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Field::Siren => "siren",
            Field::Siret => "siret",
            Field::Nom => "nom",
            Field::NomCommercial => "nom_commercial",
            Field::Adresse => "adresse",
            Field::CodePostal => "code_postal",
            Field::VilleNom => "ville_nom",
            Field::NafCode => "naf_code",
            Field::NafLibelle => "naf_libelle",
            Field::Telephone => "telephone",
            Field::EmailContact => "email_contact",
            Field::SiteWeb => "site_web",
            Field::IsActive => "is_active",
            Field::Slug => "slug",
            Field::Description => "description",
            Field::MetaDescription => "meta_description",
            Field::Ordre => "ordre",
            Field::Parent => "parent",
            Field::Categorie => "categorie",
            Field::MotsCles => "mots_cles",
            Field::NafCodes => "naf_codes",
            Field::Departement => "departement",
            Field::Region => "region",
            Field::Lat => "lat",
            Field::Lng => "lng",
            Field::Population => "population",
        }
    }

    /// Position in [`Field::ALL`], for dense per-field tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The fields of each import type and the headers that name them, written
/// the way operators write them; matching goes through [`normalize_header`]
/// on both sides, so `N° SIREN`, `n_siren` and `NSIREN` are one alias. The
/// canonical name comes first.
pub fn aliases(import_type: ImportType) -> &'static [(Field, &'static [&'static str])] {
    use Field::*;
    match import_type {
        ImportType::Entreprises => &[
            (
                Siren,
                &["siren", "n° siren", "numéro siren", "num siren", "siren siège"],
            ),
            (
                Siret,
                &["siret", "n° siret", "numéro siret", "num siret", "siret siège"],
            ),
            (
                Nom,
                &[
                    "nom",
                    "raison sociale",
                    "dénomination",
                    "dénomination sociale",
                    "name",
                    "nom entreprise",
                    "nom de l'entreprise",
                    "entreprise",
                    "société",
                ],
            ),
            (
                NomCommercial,
                &[
                    "nom_commercial",
                    "enseigne",
                    "nom commercial",
                    "enseigne commerciale",
                ],
            ),
            (
                Adresse,
                &["adresse", "address", "adresse postale", "adresse complète"],
            ),
            (
                CodePostal,
                &[
                    "code_postal",
                    "cp",
                    "code postal",
                    "zip",
                    "zip code",
                    "postal code",
                ],
            ),
            (VilleNom, &["ville_nom", "ville", "commune", "city", "localité"]),
            (
                NafCode,
                &[
                    "naf_code",
                    "code naf",
                    "naf",
                    "ape",
                    "code ape",
                    "naf/ape",
                    "code naf/ape",
                    "code naf ape",
                    "code activité",
                ],
            ),
            (
                NafLibelle,
                &[
                    "naf_libelle",
                    "libellé naf",
                    "activité",
                    "libellé ape",
                    "libellé activité",
                    "libellé naf/ape",
                ],
            ),
            (
                Telephone,
                &[
                    "telephone",
                    "tél",
                    "téléphone",
                    "phone",
                    "tel.",
                    "numéro de téléphone",
                    "tél fixe",
                ],
            ),
            (
                EmailContact,
                &[
                    "email_contact",
                    "email",
                    "e-mail",
                    "mail",
                    "courriel",
                    "adresse email",
                    "adresse mail",
                ],
            ),
            (
                SiteWeb,
                &[
                    "site_web",
                    "site",
                    "site internet",
                    "site web",
                    "website",
                    "url",
                    "web",
                ],
            ),
            (IsActive, &["is_active", "actif", "active", "est actif"]),
        ],
        ImportType::Categories => &[
            (
                Nom,
                &[
                    "nom",
                    "name",
                    "term name",
                    "catégorie",
                    "nom catégorie",
                    "category",
                ],
            ),
            (Slug, &["slug", "term slug"]),
            (Description, &["description"]),
            (
                MetaDescription,
                &["meta_description", "meta description", "méta description"],
            ),
            (Ordre, &["ordre", "order", "position"]),
            (Parent, &["parent", "parent name", "catégorie parente"]),
        ],
        ImportType::SousCategories => &[
            (
                Nom,
                &[
                    "nom",
                    "name",
                    "term name",
                    "sous-catégorie",
                    "nom sous-catégorie",
                    "subcategory",
                ],
            ),
            (
                Categorie,
                &[
                    "categorie",
                    "parent",
                    "catégorie",
                    "parent name",
                    "catégorie parente",
                    "category",
                ],
            ),
            (Slug, &["slug", "term slug"]),
            (Description, &["description"]),
            (
                MetaDescription,
                &["meta_description", "meta description", "méta description"],
            ),
            (
                MotsCles,
                &["mots_cles", "mots clés", "mots-clefs", "mot clé", "keywords"],
            ),
            (Ordre, &["ordre", "order", "position"]),
            (
                NafCodes,
                &[
                    "naf_codes",
                    "codes naf",
                    "code naf",
                    "naf",
                    "codes ape",
                    "code ape",
                    "ape",
                ],
            ),
        ],
        ImportType::Villes => &[
            (
                Nom,
                &[
                    "nom",
                    "ville",
                    "commune",
                    "villes",
                    "nom commune",
                    "nom ville",
                    "city",
                ],
            ),
            (
                CodePostal,
                &["code_postal", "cp", "code postal", "zip", "postal code"],
            ),
            (
                Departement,
                &["departement", "département", "dept", "dep", "code département"],
            ),
            (Region, &["region", "région"]),
            (Lat, &["lat", "latitude"]),
            (Lng, &["lng", "lon", "long", "longitude"]),
            (Population, &["population", "habitants", "nombre d'habitants"]),
        ],
    }
}

/// Columns that a known export always carries and that this import has no
/// use for: WordPress's term bookkeeping. They are ignored without being
/// reported as unknown, so importing an unmodified export gives a clean
/// report. (The parent's id and slug are redundant with its name.)
pub fn bookkeeping_columns(import_type: ImportType) -> &'static [&'static str] {
    match import_type {
        ImportType::Categories | ImportType::SousCategories => {
            &["term id", "parent id", "parent slug", "count"]
        }
        ImportType::Entreprises | ImportType::Villes => &[],
    }
}

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

    #[test]
    fn field_index_matches_all() {
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }
}
