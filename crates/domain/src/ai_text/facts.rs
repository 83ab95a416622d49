//! Facts: what a text is written from, one struct per target, as the provider sees them.

use serde::{Deserialize, Serialize};

use super::kind::TargetType;

/// A directory page: the entreprise, its activity and its town.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PageFacts {
    pub entreprise: String,
    pub nom_commercial: Option<String>,
    pub siren: String,
    pub adresse: Option<String>,
    /// The sous-catégorie's name.
    pub activite: String,
    pub categorie: Option<String>,
    pub naf_code: Option<String>,
    pub naf_libelle: Option<String>,
    pub ville: String,
    pub code_postal: String,
    pub departement: Option<String>,
    pub region: Option<String>,
    pub nb_avis: i32,
    pub note_moyenne: Option<f64>,
}

impl PageFacts {
    /// The name shown to readers: the trade name when there is one.
    pub fn display_name(&self) -> &str {
        self.nom_commercial
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(&self.entreprise)
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CategorieFacts {
    pub nom: String,
    pub description: Option<String>,
    /// A few of its sous-catégories, by name.
    pub sous_categories: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SousCategorieFacts {
    pub nom: String,
    pub categorie: String,
    pub description: Option<String>,
    pub mots_cles: Option<String>,
    /// Official labels of the NAF codes mapped to it.
    pub naf_libelles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VilleFacts {
    pub nom: String,
    pub code_postal: String,
    pub departement: Option<String>,
    pub region: Option<String>,
    pub population: Option<i64>,
    /// Active pages in the town.
    pub nb_pages: i64,
}

/// The data of one target, as the provider sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "target", rename_all = "snake_case")]
pub enum Facts {
    Prolocalisation(PageFacts),
    Categorie(CategorieFacts),
    SousCategorie(SousCategorieFacts),
    Ville(VilleFacts),
}

impl Facts {
    pub fn target(&self) -> TargetType {
        match self {
            Facts::Prolocalisation(_) => TargetType::Prolocalisation,
            Facts::Categorie(_) => TargetType::Categorie,
            Facts::SousCategorie(_) => TargetType::SousCategorie,
            Facts::Ville(_) => TargetType::Ville,
        }
    }
}
