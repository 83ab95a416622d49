//! From a row to a record: the entreprise, catégorie and sous-catégorie
//! builders, and the dispatch by import type (villes have their own module).

use super::cells::{RowParser, not_disseminated};
use super::columns::ColumnMap;
use super::limits;
use super::types::{
    CategorieRecord, EntrepriseRecord, ParsedRow, Record, ReferenceData, RowError, SkipReason,
    SousCategorieRecord,
};
use crate::ImportType;
use crate::headers::Field;
use crate::normalize::clean_text;
use crate::text;
use crate::values::{CodePostal, Email, Phone, Siren, ValueError, WebUrl, codes};

impl ColumnMap {
    /// Parses one data row, with the normalisation count and warnings. `ctx`
    /// gives reference data lookups. All the row's errors are returned, in
    /// column-field order. In a Sirene file an establishment that ranks no
    /// better than one of its SIREN's already parsed is
    /// [`SkipReason::OtherEstablishment`]: call this once per row, in file
    /// order (see [`ColumnMap`]).
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
        // An `[ND]` cell is read as empty (see `cells::not_disseminated`):
        // counted once here, however often the builders read it.
        row.normalized += Field::ALL
            .iter()
            .filter_map(|f| self.mapping.column(*f))
            .filter(|i| fields.get(*i).is_some_and(|c| not_disseminated(c)))
            .count() as u32;
        let record = match self.import_type {
            ImportType::Entreprises => row.entreprise(ctx).map(Record::Entreprise),
            ImportType::Categories => row.categorie(),
            ImportType::SousCategories => row.sous_categorie(ctx),
            ImportType::Villes => row.ville().map(Record::Ville),
        };
        match record {
            Some(Record::Entreprise(e)) if row.errors.is_empty() => {
                // A Sirene establishment that loses to one already taken
                // stores nothing: nothing of it is normalised or warned about.
                if let Some(skip) = self.skip_other_establishment(&e) {
                    return Ok(ParsedRow {
                        record: Record::Skipped(skip),
                        normalized: 0,
                        warnings: Vec::new(),
                    });
                }
                Ok(ParsedRow {
                    record: Record::Entreprise(e),
                    normalized: row.normalized,
                    warnings: row.warnings,
                })
            }
            Some(record) if row.errors.is_empty() => Ok(ParsedRow {
                record,
                normalized: row.normalized,
                warnings: row.warnings,
            }),
            _ => Err(row.errors),
        }
    }
}

impl RowParser<'_> {
    /// An entreprise row, from a file of any shape or from INSEE's Sirene
    /// files, whose columns `sirene` combines.
    fn entreprise(&mut self, ctx: &dyn ReferenceData) -> Option<EntrepriseRecord> {
        let siren = self.required_value(Field::Siren, Siren::parse);
        let siret = self.siret_or_nic(siren.as_ref());
        if let (Some(siren), Some(siret)) = (&siren, &siret)
            && siret.siren() != *siren
        {
            self.error(
                Field::Siret,
                ValueError::new(
                    codes::SIRET_SIREN_MISMATCH,
                    text!(
                        "le SIRET doit commencer par le SIREN de la ligne ({siren}) ; il appartient au SIREN {other}",
                        "the SIRET must start with the row's SIREN ({siren}); it belongs to SIREN {other}",
                        other = siret.siren()
                    ),
                ),
            );
        }
        let enseigne = self.text(Field::Enseigne, limits::NOM_COMMERCIAL);
        let denomination_usuelle = self.text(Field::DenominationUsuelle, limits::NOM_COMMERCIAL);
        let nom = self.entreprise_nom(denomination_usuelle.as_deref(), enseigne.as_deref());
        let nom_commercial = self
            .text(Field::NomCommercial, limits::NOM_COMMERCIAL)
            .or(enseigne)
            .or(denomination_usuelle);
        let adresse = self.adresse();
        let code_postal = self.value(Field::CodePostal, CodePostal::parse);
        let ville_nom = self.text(Field::VilleNom, limits::VILLE_NOM);
        let naf = self.entreprise_naf(ctx);
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
        let is_active = match self.boolean(Field::IsActive) {
            None if self.is_blank(Field::IsActive) => self.etat_administratif(),
            given => given,
        };
        let establishment = self.establishment(is_active);
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
            establishment,
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::records::test_support::{error_codes, map, parse};
    use crate::values::{NafCode, Siret, Slug};

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
            errors[3].message.en,
            "NAF code 99.99Z is not one of the 732 sous-classes of NAF rév. 2 (see naf_codes)"
        );
        assert_eq!(
            errors[3].message.fr,
            "le code NAF 99.99Z n’est pas l’une des 732 sous-classes de la NAF rév. 2 (voir naf_codes)"
        );
        assert_eq!(
            errors[0].message.fr,
            "ce SIREN ne passe pas le contrôle de sa clé (Luhn) : un chiffre est sans doute mal saisi"
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
        // One error per cell: the first refusal, saying how many more.
        assert_eq!(
            error_codes(&errors),
            [
                (Some("meta_description"), codes::TOO_LONG),
                (Some("codes naf"), codes::UNKNOWN_NAF),
            ]
        );
        assert!(errors[1].message.en.starts_with("NAF code 99.99Z is not"));
        assert!(
            errors[1]
                .message
                .en
                .ends_with("(and 1 more refused in this cell)")
        );
        assert!(errors[1].message.fr.starts_with("le code NAF 99.99Z n’est pas"));
        assert!(
            errors[1]
                .message
                .fr
                .ends_with("(et 1 autre(s) refusé(s) dans cette cellule)")
        );
    }

    /// The issue 16 bomb: one cell of 16,383 bad tokens is one error whose
    /// value is cut to a stated size, not 16,383 copies of the cell.
    #[test]
    fn a_cell_of_thousands_of_bad_codes_is_one_short_error() {
        let m = map(ImportType::SousCategories, &["nom", "categorie", "naf_codes"]);
        let bomb = vec!["a"; 16_383].join(" ");
        let errors = parse(&m, &["Plombier", "Bâtiment", &bomb]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .message
                .en
                .ends_with("(and 16382 more refused in this cell)"),
            "{}",
            errors[0].message
        );
        let value = errors[0].value.as_deref().unwrap();
        assert!(value.chars().count() < 260, "{value}");
        assert!(value.ends_with("(32765 characters in all)"), "{value}");
    }
}
