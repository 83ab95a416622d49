//! The fields an import can read, and their canonical column names (docs/spec.md §4.1).

/// Every field an import can read. Which ones apply depends on the
/// [`ImportType`](crate::ImportType); see [`aliases`](fn@super::aliases).
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
    // The columns of INSEE's Sirene files that have no field of their own
    // above (docs/imports.md "Sirene (INSEE) files"): the record builder
    // combines them into `siret`, `nom`, `adresse`, `naf_code`, `is_active`.
    /// `nic`: with `siren`, the SIRET when the file has no `siret` column.
    Nic,
    /// `etablissementSiege`: this establishment is its company's head office.
    EtablissementSiege,
    NumeroVoie,
    IndiceRepetition,
    TypeVoie,
    LibelleVoie,
    ComplementAdresse,
    /// `etatAdministratifEtablissement`: `A` (active) or `F` (closed).
    EtatAdministratif,
    Enseigne,
    DenominationUsuelle,
    /// `nomUniteLegale`: an individual's surname (no `denominationUniteLegale`).
    NomPersonne,
    PrenomPersonne,
    /// `activitePrincipaleEtablissement`, when the legal unit's code is absent.
    NafEtablissement,
    /// Which nomenclature `naf_code` is written in (`NAFRev2`, `NAFRev1`…).
    NafNomenclature,
    NafNomenclatureEtablissement,
}

impl Field {
    pub const ALL: [Field; 41] = [
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
        Field::Nic,
        Field::EtablissementSiege,
        Field::NumeroVoie,
        Field::IndiceRepetition,
        Field::TypeVoie,
        Field::LibelleVoie,
        Field::ComplementAdresse,
        Field::EtatAdministratif,
        Field::Enseigne,
        Field::DenominationUsuelle,
        Field::NomPersonne,
        Field::PrenomPersonne,
        Field::NafEtablissement,
        Field::NafNomenclature,
        Field::NafNomenclatureEtablissement,
    ];

    /// The canonical column name, as in docs/spec.md §4.1 and in messages;
    /// for the Sirene fields, the register's own header.
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
            Field::Nic => "nic",
            Field::EtablissementSiege => "etablissementSiege",
            Field::NumeroVoie => "numeroVoieEtablissement",
            Field::IndiceRepetition => "indiceRepetitionEtablissement",
            Field::TypeVoie => "typeVoieEtablissement",
            Field::LibelleVoie => "libelleVoieEtablissement",
            Field::ComplementAdresse => "complementAdresseEtablissement",
            Field::EtatAdministratif => "etatAdministratifEtablissement",
            Field::Enseigne => "enseigne1Etablissement",
            Field::DenominationUsuelle => "denominationUsuelleEtablissement",
            Field::NomPersonne => "nomUniteLegale",
            Field::PrenomPersonne => "prenom1UniteLegale",
            Field::NafEtablissement => "activitePrincipaleEtablissement",
            Field::NafNomenclature => "nomenclatureActivitePrincipaleUniteLegale",
            Field::NafNomenclatureEtablissement => "nomenclatureActivitePrincipaleEtablissement",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_index_matches_all() {
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }
}
