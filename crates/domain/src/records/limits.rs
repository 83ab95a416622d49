//! Length limits of text columns, in characters (PostgreSQL's `varchar(n)`
//! counts characters). Those the schema fixes (docs/spec.md §3) are mirrored so that
//! a long value is an error row, never a database error; the others are
//! generous bounds on `text` columns so one runaway cell cannot bloat a row.

/// `entreprises.nom`, `nom_commercial`, `adresse`.
pub const NOM_ENTREPRISE: usize = 255;
pub const NOM_COMMERCIAL: usize = 255;
pub const ADRESSE: usize = 255;
pub const VILLE_NOM: usize = 100;
pub const NAF_LIBELLE: usize = 255;
/// `categories.nom`, `sous_categories.nom`, `villes.nom` (docs/spec.md §3).
pub const NOM: usize = 100;
pub const META_DESCRIPTION: usize = 160;
pub const DESCRIPTION: usize = 10_000;
pub const MOTS_CLES: usize = 2_000;
pub const REGION: usize = 100;
