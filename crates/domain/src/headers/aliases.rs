//! The alias tables: every header operators write for each field of each
//! import type, and the bookkeeping columns of known exports. Data only; the
//! matching is in `matching`.

use super::field::Field;
use crate::ImportType;

/// The fields of each import type and the headers that name them, written
/// the way operators write them; matching goes through [`normalize_header`](super::normalize_header)
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
                    "denominationUniteLegale",
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
                    "codePostalEtablissement",
                ],
            ),
            (
                VilleNom,
                &[
                    "ville_nom",
                    "ville",
                    "commune",
                    "city",
                    "localité",
                    "libelleCommuneEtablissement",
                ],
            ),
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
                    "activitePrincipaleUniteLegale",
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
            // INSEE's Sirene files (StockEtablissement, joined with
            // StockUniteLegale): their own headers, which no operator types.
            (Nic, &["nic"]),
            (EtablissementSiege, &["etablissementSiege"]),
            (NumeroVoie, &["numeroVoieEtablissement"]),
            (IndiceRepetition, &["indiceRepetitionEtablissement"]),
            (TypeVoie, &["typeVoieEtablissement"]),
            (LibelleVoie, &["libelleVoieEtablissement"]),
            (ComplementAdresse, &["complementAdresseEtablissement"]),
            (EtatAdministratif, &["etatAdministratifEtablissement"]),
            (Enseigne, &["enseigne1Etablissement"]),
            (DenominationUsuelle, &["denominationUsuelleEtablissement"]),
            (NomPersonne, &["nomUniteLegale"]),
            (PrenomPersonne, &["prenom1UniteLegale"]),
            (NafEtablissement, &["activitePrincipaleEtablissement"]),
            (NafNomenclature, &["nomenclatureActivitePrincipaleUniteLegale"]),
            (
                NafNomenclatureEtablissement,
                &["nomenclatureActivitePrincipaleEtablissement"],
            ),
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
/// use for: WordPress's term bookkeeping, the rest of INSEE's Sirene
/// columns. They are ignored without being reported as unknown, so importing
/// an unmodified export gives a clean report. (The parent's id and slug are
/// redundant with its name.)
pub fn bookkeeping_columns(import_type: ImportType) -> &'static [&'static str] {
    match import_type {
        ImportType::Categories | ImportType::SousCategories => {
            &["term id", "parent id", "parent slug", "count"]
        }
        ImportType::Entreprises => SIRENE_UNUSED,
        ImportType::Villes => &[],
    }
}

/// The columns of INSEE's `StockEtablissement` and `StockUniteLegale` files
/// (2024 layout, with the NAF 2025 columns INSEE added) that an entreprise
/// has no place for: dates, head counts, legal categories, the second
/// address, Lambert coordinates, the other enseignes and first names. The
/// statut de diffusion is among them: the `[ND]` marks it announces are
/// read as empty cells wherever they are.
const SIRENE_UNUSED: &[&str] = &[
    // StockEtablissement
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement",
    "nombrePeriodesEtablissement",
    "dernierNumeroVoieEtablissement",
    "indiceRepetitionDernierNumeroVoieEtablissement",
    "libelleCommuneEtrangerEtablissement",
    "distributionSpecialeEtablissement",
    "codeCommuneEtablissement",
    "codeCedexEtablissement",
    "libelleCedexEtablissement",
    "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement",
    "identifiantAdresseEtablissement",
    "coordonneeLambertAbscisseEtablissement",
    "coordonneeLambertOrdonneeEtablissement",
    "complementAdresse2Etablissement",
    "numeroVoie2Etablissement",
    "indiceRepetition2Etablissement",
    "typeVoie2Etablissement",
    "libelleVoie2Etablissement",
    "codePostal2Etablissement",
    "libelleCommune2Etablissement",
    "libelleCommuneEtranger2Etablissement",
    "distributionSpeciale2Etablissement",
    "codeCommune2Etablissement",
    "codeCedex2Etablissement",
    "libelleCedex2Etablissement",
    "codePaysEtranger2Etablissement",
    "libellePaysEtranger2Etablissement",
    "dateDebut",
    "enseigne2Etablissement",
    "enseigne3Etablissement",
    "caractereEmployeurEtablissement",
    "activitePrincipaleNAF25Etablissement",
    // StockUniteLegale, in joined extracts
    "statutDiffusionUniteLegale",
    "unitePurgeeUniteLegale",
    "dateCreationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "prenom2UniteLegale",
    "prenom3UniteLegale",
    "prenom4UniteLegale",
    "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale",
    "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale",
    "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "etatAdministratifUniteLegale",
    "nomUsageUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "societeMissionUniteLegale",
    "caractereEmployeurUniteLegale",
    "activitePrincipaleNAF25UniteLegale",
];
