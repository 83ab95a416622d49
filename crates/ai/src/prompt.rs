//! Versioned prompt templates. The text lives in `prompts/<version>/*.md`
//! (reviewable by non-programmers, diffable), is embedded at build time, and
//! every stored text records `<version>/<template>` so a change of wording
//! is visible in the provenance. Change a prompt by adding a new version
//! directory and bumping [`PROMPT_VERSION`]; never edit a released one.

use foxflow_domain::ai_text::{Facts, TextKind};

/// The prompt set in use.
pub const PROMPT_VERSION: &str = "v1";

const SYSTEM: &str = include_str!("../prompts/v1/system.md");
const TEXTE_LONG: &str = include_str!("../prompts/v1/texte_long.md");
const META_DESCRIPTION: &str = include_str!("../prompts/v1/meta_description.md");
const FAQ: &str = include_str!("../prompts/v1/faq.md");
const AVIS_DECRYPTE: &str = include_str!("../prompts/v1/avis_decrypte.md");
const DESCRIPTION: &str = include_str!("../prompts/v1/description.md");

/// The two messages of one chat-completions call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
    /// `v1/texte_long`: stored with the text.
    pub version: String,
}

/// Fills the template of `kind` with the target's facts.
pub fn render(kind: TextKind, facts: &Facts) -> Prompt {
    let (name, template) = match kind {
        TextKind::TexteLong => ("texte_long", TEXTE_LONG),
        TextKind::MetaDescription => ("meta_description", META_DESCRIPTION),
        TextKind::Faq => ("faq", FAQ),
        TextKind::AvisDecrypte => ("avis_decrypte", AVIS_DECRYPTE),
        TextKind::Description => ("description", DESCRIPTION),
    };
    let spec = kind.spec();
    let user = template
        .replace("{{sujet}}", &subject(facts))
        .replace("{{donnees}}", &data_lines(facts))
        .replace("{{min}}", &spec.min_chars.to_string())
        .replace("{{max}}", &spec.max_chars.to_string());
    Prompt {
        system: SYSTEM.trim_end().to_owned(),
        user: user.trim_end().to_owned(),
        version: format!("{PROMPT_VERSION}/{name}"),
    }
}

fn subject(facts: &Facts) -> String {
    match facts {
        Facts::Prolocalisation(p) => format!(
            "l'entreprise « {} » ({}) à {}",
            p.display_name(),
            p.activite,
            p.ville
        ),
        Facts::Categorie(c) => format!("la catégorie d'activités « {} »", c.nom),
        Facts::SousCategorie(s) => format!("l'activité « {} » (catégorie « {} »)", s.nom, s.categorie),
        Facts::Ville(v) => format!("la ville de {} ({})", v.nom, v.code_postal),
    }
}

/// The facts as `- Libellé : valeur` lines; absent values are left out so
/// the model is never tempted to comment on them.
fn data_lines(facts: &Facts) -> String {
    let mut lines: Vec<(&str, String)> = Vec::new();
    let mut opt = |label: &'static str, v: Option<&str>| {
        if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
            lines.push((label, v.to_owned()));
        }
    };
    match facts {
        Facts::Prolocalisation(p) => {
            opt("Entreprise", Some(&p.entreprise));
            opt("Nom commercial", p.nom_commercial.as_deref());
            opt("SIREN", Some(&p.siren));
            opt("Activité", Some(&p.activite));
            opt("Catégorie", p.categorie.as_deref());
            opt("Code NAF", p.naf_code.as_deref());
            opt("Libellé NAF", p.naf_libelle.as_deref());
            opt("Adresse", p.adresse.as_deref());
            opt("Ville", Some(&format!("{} ({})", p.ville, p.code_postal)));
            opt("Département", p.departement.as_deref());
            opt("Région", p.region.as_deref());
            opt("Nombre d'avis", Some(&p.nb_avis.to_string()));
            let note = p.note_moyenne.map(|n| format!("{n:.1} sur 5"));
            opt("Note moyenne", note.as_deref());
        }
        Facts::Categorie(c) => {
            opt("Catégorie", Some(&c.nom));
            opt("Description", c.description.as_deref());
            let subs = c.sous_categories.join(", ");
            opt("Sous-catégories", Some(&subs));
        }
        Facts::SousCategorie(s) => {
            opt("Activité", Some(&s.nom));
            opt("Catégorie", Some(&s.categorie));
            opt("Description", s.description.as_deref());
            opt("Mots-clés", s.mots_cles.as_deref());
            let naf = s.naf_libelles.join(" ; ");
            opt("Activités NAF", Some(&naf));
        }
        Facts::Ville(v) => {
            opt("Ville", Some(&v.nom));
            opt("Code postal", Some(&v.code_postal));
            opt("Département", v.departement.as_deref());
            opt("Région", v.region.as_deref());
            let pop = v.population.map(|p| p.to_string());
            opt("Population", pop.as_deref());
            opt("Professionnels référencés", Some(&v.nb_pages.to_string()));
        }
    }
    lines
        .into_iter()
        .map(|(label, value)| format!("- {label} : {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use foxflow_domain::ai_text::{PageFacts, VilleFacts};

    #[test]
    fn templates_are_filled_and_versioned() {
        let facts = Facts::Prolocalisation(PageFacts {
            entreprise: "Dupont Plomberie".into(),
            siren: "732829320".into(),
            activite: "Plombier".into(),
            ville: "Lyon".into(),
            code_postal: "69003".into(),
            ..Default::default()
        });
        for kind in [
            TextKind::TexteLong,
            TextKind::MetaDescription,
            TextKind::Faq,
            TextKind::AvisDecrypte,
            TextKind::Description,
        ] {
            let p = render(kind, &facts);
            assert!(!p.user.contains("{{"), "{kind}: {}", p.user);
            assert!(p.user.contains("Dupont Plomberie"));
            assert!(p.system.contains("JSON"));
            assert_eq!(p.version, format!("v1/{}", kind.as_str()));
        }
        // Absent facts are not mentioned at all.
        assert!(!render(TextKind::TexteLong, &facts).user.contains("Adresse"));
        let ville = Facts::Ville(VilleFacts {
            nom: "Annecy".into(),
            code_postal: "74000".into(),
            ..Default::default()
        });
        assert!(
            render(TextKind::Description, &ville)
                .user
                .contains("- Ville : Annecy")
        );
    }
}
