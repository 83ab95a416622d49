//! The offline provider: French text assembled from the entity's own data
//! (name, activity, NAF label, town, department, reviews). Deterministic —
//! the same facts always give the same text, with the phrasing varied per
//! entity by a stable hash so that neighbouring pages do not read alike —
//! and written to pass the validator, so `make run` works with no key and no
//! network.

use crate::{Generation, Provider, ProviderError};
use foxflow_domain::ai_text::{
    CategorieFacts, Draft, Facts, FaqEntry, PageFacts, SousCategorieFacts, TextKind, VilleFacts,
    capitalize_first, truncate_to,
};
use futures::future::{self, BoxFuture};

/// Recorded as the prompt version of every template text.
pub const TEMPLATE_VERSION: &str = "template-v1";

pub struct TemplateProvider;

impl Provider for TemplateProvider {
    fn name(&self) -> &'static str {
        "template"
    }

    fn generate<'a>(
        &'a self,
        kind: TextKind,
        facts: &'a Facts,
    ) -> BoxFuture<'a, Result<Generation, ProviderError>> {
        let result = write(kind, facts).map(|draft| Generation {
            draft,
            model: "template".into(),
            prompt_version: format!("{TEMPLATE_VERSION}/{}", kind.as_str()),
            tokens_in: None,
            tokens_out: None,
        });
        Box::pin(future::ready(result))
    }
}

/// The draft of `kind` for `facts`; an error only for a kind the target
/// does not have.
pub fn write(kind: TextKind, facts: &Facts) -> Result<Draft, ProviderError> {
    let unsupported =
        || ProviderError::BadAnswer(format!("a {} has no `{}` text", facts.target(), kind.as_str()));
    Ok(match (facts, kind) {
        (Facts::Prolocalisation(p), TextKind::TexteLong) => Draft::Text(page_long(p)),
        (Facts::Prolocalisation(p), TextKind::MetaDescription) => Draft::Text(page_meta(p)),
        (Facts::Prolocalisation(p), TextKind::Faq) => Draft::Faq(page_faq(p)),
        (Facts::Prolocalisation(p), TextKind::AvisDecrypte) => Draft::Text(page_avis(p)),
        (Facts::Categorie(c), TextKind::Description) => Draft::Text(categorie_description(c)),
        (Facts::Categorie(c), TextKind::MetaDescription) => Draft::Text(meta(&[
            format!(
                "{} : trouvez un professionnel près de chez vous, comparez les avis clients et les coordonnées des entreprises.",
                cap(&short(&c.nom, 60))
            ),
            format!(
                "{} : professionnels, avis clients et coordonnées.",
                cap(&short(&c.nom, 80))
            ),
        ])),
        (Facts::SousCategorie(s), TextKind::Description) => Draft::Text(sous_categorie_description(s)),
        (Facts::SousCategorie(s), TextKind::MetaDescription) => Draft::Text(meta(&[
            format!(
                "{} : comparez les professionnels près de chez vous, leurs avis clients et leurs coordonnées sur FoxReviews.",
                cap(&short(&s.nom, 60))
            ),
            format!(
                "{} : professionnels, avis clients et coordonnées.",
                cap(&short(&s.nom, 80))
            ),
        ])),
        (Facts::Ville(v), TextKind::Description) => Draft::Text(ville_description(v)),
        (Facts::Ville(v), TextKind::MetaDescription) => Draft::Text(meta(&[
            format!(
                "Professionnels à {} ({}) : coordonnées, activités et avis clients des entreprises de la commune.",
                short(&v.nom, 60),
                v.code_postal
            ),
            format!(
                "Professionnels à {} : coordonnées et avis clients.",
                short(&v.nom, 80)
            ),
        ])),
        _ => return Err(unsupported()),
    })
}

// ---------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------

fn page_long(p: &PageFacts) -> String {
    let nom = short(p.display_name(), 80);
    let activite = short(&p.activite, 80);
    let ville = short(&p.ville, 60);
    let lieu = lieu(
        &ville,
        &p.code_postal,
        p.departement.as_deref(),
        p.region.as_deref(),
    );
    let mut first = match variant(&p.siren, 3) {
        0 => format!("L'entreprise {nom} exerce dans le domaine « {activite} » à {lieu}."),
        1 => format!("Installée à {lieu}, l'entreprise {nom} intervient dans le domaine « {activite} »."),
        _ => format!("Professionnel du domaine « {activite} », l'entreprise {nom} est implantée à {lieu}."),
    };
    if let (Some(code), Some(libelle)) = (p.naf_code.as_deref(), p.naf_libelle.as_deref()) {
        first.push_str(&format!(
            " Son activité principale est enregistrée sous le code NAF {code} : {}.",
            lower_first(&short(libelle, 120))
        ));
    }
    if let Some(adresse) = p.adresse.as_deref().filter(|a| !a.trim().is_empty()) {
        first.push_str(&format!(
            " Adresse de l'établissement : {}, {} {ville}.",
            short(adresse, 120),
            p.code_postal
        ));
    }
    let mut second = format!(
        "Cette page rassemble ses coordonnées, son secteur d'intervention et les avis publiés par ses clients, afin d'aider les habitants {} et des communes voisines à choisir un professionnel de confiance.",
        de(&ville)
    );
    second.push(' ');
    second.push_str(&reviews_sentence(p));
    let third = "Pour obtenir un devis ou poser une question, contactez directement l'entreprise à partir des coordonnées indiquées sur cette page.";
    format!("{first}\n\n{second}\n\n{third}")
}

fn reviews_sentence(p: &PageFacts) -> String {
    match (p.nb_avis, p.note_moyenne) {
        (n, Some(note)) if n > 0 => format!(
            "À ce jour, {} publié{}, pour une note moyenne de {} sur 5.",
            plural(n, "avis a été", "avis ont été"),
            if n > 1 { "s" } else { "" },
            note_fr(note)
        ),
        (n, _) if n > 0 => format!(
            "À ce jour, {} publié{}.",
            plural(n, "avis a été", "avis ont été"),
            if n > 1 { "s" } else { "" }
        ),
        _ => "Les premiers avis de clients seront publiés ici dès leur vérification par l'équipe FoxReviews."
            .into(),
    }
}

fn page_meta(p: &PageFacts) -> String {
    let activite = cap(&short(&p.activite, 50));
    let ville = short(&p.ville, 40);
    meta(&[
        format!(
            "{activite} à {ville} ({}) : {}. Coordonnées, avis clients et informations pratiques.",
            p.code_postal,
            short(p.display_name(), 60)
        ),
        format!(
            "{activite} à {ville} : {}. Coordonnées et avis clients.",
            short(p.display_name(), 40)
        ),
    ])
}

fn page_faq(p: &PageFacts) -> Vec<FaqEntry> {
    let nom = short(p.display_name(), 60);
    let ville = short(&p.ville, 60);
    let activite = short(&p.activite, 80);
    let mut lieu = format!("{ville} ({})", p.code_postal);
    if let Some(dep) = p.departement.as_deref().filter(|d| !d.trim().is_empty()) {
        lieu.push_str(&format!(", dans le département {dep}"));
    }
    let mut activity = format!("L'entreprise {nom} exerce dans le domaine « {activite} »");
    if let (Some(code), Some(libelle)) = (p.naf_code.as_deref(), p.naf_libelle.as_deref()) {
        activity.push_str(&format!(
            ", sous le code NAF {code} ({})",
            lower_first(&short(libelle, 120))
        ));
    }
    activity.push('.');
    let avis = match (p.nb_avis, p.note_moyenne) {
        (n, Some(note)) if n > 0 => format!(
            "Les clients ont publié {} sur cette page, pour une note moyenne de {} sur 5.",
            plural(n, "avis", "avis"),
            note_fr(note)
        ),
        _ => "Les premiers avis de clients seront publiés sur cette page dès leur vérification.".into(),
    };
    vec![
        FaqEntry {
            question: format!("Où se situe l'entreprise {nom} ?"),
            reponse: format!("L'entreprise {nom} est installée à {lieu}, où elle reçoit ses clients."),
        },
        FaqEntry {
            question: format!("Quelle est l'activité de l'entreprise {nom} ?"),
            reponse: activity,
        },
        FaqEntry {
            question: format!("Comment contacter l'entreprise {nom} ?"),
            reponse: "Ses coordonnées connues, adresse, téléphone ou site internet, sont indiquées en haut de cette page.".into(),
        },
        FaqEntry {
            question: format!("Que disent les clients de l'entreprise {nom} ?"),
            reponse: avis,
        },
    ]
}

fn page_avis(p: &PageFacts) -> String {
    let nom = short(p.display_name(), 60);
    let ville = short(&p.ville, 60);
    match (p.nb_avis, p.note_moyenne) {
        (n, Some(note)) if n > 0 => {
            let tone = if note >= 4.5 {
                "est très appréciée de sa clientèle"
            } else if note >= 3.5 {
                "obtient de bons retours de sa clientèle"
            } else if note >= 2.5 {
                "recueille des avis partagés de sa clientèle"
            } else {
                "recueille des avis plutôt critiques de sa clientèle"
            };
            format!(
                "Avec {} et une note moyenne de {} sur 5, l'entreprise {nom} {tone} à {ville}. Cette synthèse évolue à mesure que de nouveaux avis vérifiés sont publiés.",
                plural(n, "avis publié", "avis publiés"),
                note_fr(note)
            )
        }
        _ => format!(
            "L'entreprise {nom} n'a pas encore reçu d'avis vérifiés à {ville}. Ses clients peuvent partager leur expérience pour aider d'autres habitants à choisir un professionnel dans le domaine « {} ».",
            short(&p.activite, 80)
        ),
    }
}

// ---------------------------------------------------------------------------
// Catégories, sous-catégories, villes
// ---------------------------------------------------------------------------

const DIRECTORY_SENTENCE: &str = "Chaque fiche présente les coordonnées d'une entreprise, sa localisation et les avis de ses clients, afin de comparer facilement les prestataires installés près de chez vous.";

fn categorie_description(c: &CategorieFacts) -> String {
    let nom = short(&c.nom, 100);
    let mut first = format!(
        "La catégorie « {nom} » regroupe les professionnels référencés sur FoxReviews dans ce secteur d'activité."
    );
    let subs: Vec<String> = c
        .sous_categories
        .iter()
        .filter(|s| !s.trim().is_empty())
        .take(6)
        .map(|s| lower_first(&short(s, 60)))
        .collect();
    if !subs.is_empty() {
        first.push_str(&format!(
            " Elle comprend notamment les activités suivantes : {}.",
            enumerate(&subs)
        ));
    }
    format!("{first}\n\n{DIRECTORY_SENTENCE}")
}

fn sous_categorie_description(s: &SousCategorieFacts) -> String {
    let nom = short(&s.nom, 100);
    let mut first = format!(
        "L'activité « {nom} » fait partie de la catégorie « {} » de l'annuaire FoxReviews.",
        short(&s.categorie, 100)
    );
    let labels: Vec<String> = s
        .naf_libelles
        .iter()
        .filter(|l| !l.trim().is_empty())
        .take(4)
        .map(|l| lower_first(&short(l, 100)))
        .collect();
    match labels.len() {
        0 => {}
        1 => first.push_str(&format!(
            " Elle correspond à l'activité officielle suivante : {}.",
            labels[0]
        )),
        _ => first.push_str(&format!(
            " Elle correspond aux activités officielles suivantes : {}.",
            enumerate(&labels)
        )),
    }
    format!("{first}\n\n{DIRECTORY_SENTENCE}")
}

fn ville_description(v: &VilleFacts) -> String {
    let nom = short(&v.nom, 80);
    let mut first = format!("La commune de {nom}");
    if let Some(dep) = v.departement.as_deref().filter(|d| !d.trim().is_empty()) {
        first.push_str(&format!(", dans le département {dep}"));
    }
    if let Some(region) = v.region.as_deref().filter(|r| !r.trim().is_empty()) {
        first.push_str(&format!(" en région {}", short(region, 60)));
    }
    first.push_str(&format!(", a pour code postal principal le {}.", v.code_postal));
    if let Some(pop) = v.population.filter(|p| *p > 0) {
        first.push_str(&format!(" Elle compte environ {} habitants.", thousands(pop)));
    }
    let second = if v.nb_pages > 0 {
        format!(
            "L'annuaire FoxReviews y référence {}, classés par activité, avec leurs coordonnées et les avis de leurs clients.",
            plural(v.nb_pages, "professionnel", "professionnels")
        )
    } else {
        format!(
            "L'annuaire FoxReviews présente les professionnels installés à {nom} et dans les communes voisines, classés par activité, avec leurs coordonnées et les avis de leurs clients."
        )
    };
    format!("{first}\n\n{second}")
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The first candidate that fits a meta description, else the last one cut
/// to size.
fn meta(candidates: &[String]) -> String {
    let max = TextKind::MetaDescription.spec().max_chars;
    candidates
        .iter()
        .find(|c| c.chars().count() <= max)
        .cloned()
        .unwrap_or_else(|| {
            let last = candidates.last().cloned().unwrap_or_default();
            format!("{}.", truncate_to(&last, max - 1, &['.']).trim_end_matches('.'))
        })
}

/// `Lyon (69003), dans le département 69, en région Auvergne-Rhône-Alpes`.
fn lieu(ville: &str, cp: &str, dep: Option<&str>, region: Option<&str>) -> String {
    let mut s = format!("{ville} ({cp})");
    if let Some(dep) = dep.filter(|d| !d.trim().is_empty()) {
        s.push_str(&format!(", dans le département {dep}"));
    }
    if let Some(region) = region.filter(|r| !r.trim().is_empty()) {
        s.push_str(&format!(", en région {}", short(region, 60)));
    }
    s
}

/// At most `max` characters, cut at a word, without trailing punctuation,
/// so that it can sit inside a sentence.
fn short(s: &str, max: usize) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let s = if s.chars().count() <= max {
        s
    } else {
        truncate_to(&s, max, &[])
    };
    s.trim_end_matches(['.', ',', ';', ':', '!', '?', ' ']).to_owned()
}

fn cap(s: &str) -> String {
    capitalize_first(s)
}

/// Lower-cases the first letter of a label unless it starts an acronym
/// (`Plomberie` → `plomberie`, `BTP` stays).
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && b.is_lowercase() => {
            a.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s.to_owned(),
    }
}

/// `de Lyon`, `d'Annecy`.
fn de(name: &str) -> String {
    let elide = name
        .chars()
        .next()
        .is_some_and(|c| "AEIOUYHÉÈÊÂÎÔaeiouyhéèêâîô".contains(c));
    if elide {
        format!("d'{name}")
    } else {
        format!("de {name}")
    }
}

fn plural(n: impl Into<i64>, one: &str, many: &str) -> String {
    let n = n.into();
    if n > 1 {
        format!("{} {many}", thousands(n))
    } else {
        format!("{n} {one}")
    }
}

/// `4,5` — French decimals.
fn note_fr(note: f64) -> String {
    format!("{note:.1}").replace('.', ",")
}

/// `12 345` — French thousands.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// `a, b et c`.
fn enumerate(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} et {last}", init.join(", ")),
    }
}

/// A stable choice among `n` phrasings (FNV-1a; never `std`'s randomised hasher).
fn variant(seed: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % n
}

#[cfg(test)]
mod tests {
    use super::*;
    use foxflow_domain::ai_text::{Review, TargetType, check, review};

    fn page(i: usize) -> PageFacts {
        let names = [
            "Dupont Plomberie",
            "sarl martin et fils",
            "A",
            "ÉLECTRICITÉ GÉNÉRALE DU RHÔNE ET DES ALPES SOCIÉTÉ PAR ACTIONS SIMPLIFIÉE À ASSOCIÉ UNIQUE ET CAPITAL VARIABLE",
            "3F Habitat",
            "Boulangerie L'Épi d'Or",
            "O'Tacos",
            "AB",
        ];
        let villes = [
            "Lyon",
            "Annecy",
            "Saint-Rémy-de-Provence",
            "Y",
            "Évry-Courcouronnes",
        ];
        PageFacts {
            entreprise: names[i % names.len()].into(),
            nom_commercial: i.is_multiple_of(5).then(|| "Chez Paul".into()),
            siren: format!("{:09}", 100_000_000 + i * 7919),
            adresse: i.is_multiple_of(2).then(|| "12 rue de la République".into()),
            activite: ["Plombier", "Électricien", "BTP", "Activité 43.22A", "a"][i % 5].into(),
            categorie: Some("Bâtiment".into()),
            naf_code: (!i.is_multiple_of(3)).then(|| "43.22A".into()),
            naf_libelle: (!i.is_multiple_of(3))
                .then(|| "Travaux d'installation d'eau et de gaz en tous locaux".into()),
            ville: villes[i % villes.len()].into(),
            code_postal: "69003".into(),
            departement: (!i.is_multiple_of(4)).then(|| "69".into()),
            region: (i % 4 == 1).then(|| "Auvergne-Rhône-Alpes".into()),
            nb_avis: [0, 1, 12, 1234][i % 4],
            note_moyenne: [None, Some(4.8), Some(3.6), Some(1.9)][i % 4],
        }
    }

    fn assert_valid(kind: TextKind, facts: &Facts) {
        let draft = write(kind, facts).unwrap();
        let found = check(kind, &draft);
        assert!(found.is_empty(), "{kind} for {facts:?}:\n{draft:?}\n{found:?}");
        assert!(matches!(review(kind, draft), Review::Valid(_)));
    }

    #[test]
    fn every_page_text_passes_the_validator() {
        for i in 0..200 {
            let facts = Facts::Prolocalisation(page(i));
            for kind in TargetType::Prolocalisation.kinds() {
                assert_valid(*kind, &facts);
            }
        }
    }

    #[test]
    fn every_other_text_passes_the_validator() {
        let long = "Travaux spécialisés de construction et de rénovation énergétique des bâtiments anciens et modernes";
        for (i, nom) in ["Bâtiment", "a", long, "Santé & bien-être", "BTP"]
            .iter()
            .enumerate()
        {
            let facts = [
                Facts::Categorie(CategorieFacts {
                    nom: (*nom).into(),
                    description: None,
                    sous_categories: (0..i).map(|j| format!("Activité {j}")).collect(),
                }),
                Facts::SousCategorie(SousCategorieFacts {
                    nom: (*nom).into(),
                    categorie: "Bâtiment".into(),
                    description: None,
                    mots_cles: None,
                    naf_libelles: (0..i).map(|j| format!("Travaux de type {j}")).collect(),
                }),
                Facts::Ville(VilleFacts {
                    nom: (*nom).into(),
                    code_postal: "74000".into(),
                    departement: i.is_multiple_of(2).then(|| "74".into()),
                    region: i.is_multiple_of(3).then(|| "Auvergne-Rhône-Alpes".into()),
                    population: (i % 2 == 1).then_some(130_721),
                    nb_pages: i as i64 * 3,
                }),
            ];
            for f in &facts {
                for kind in f.target().kinds() {
                    assert_valid(*kind, f);
                }
            }
        }
    }

    #[test]
    fn deterministic_and_specific() {
        let f = Facts::Prolocalisation(page(0));
        assert_eq!(
            write(TextKind::TexteLong, &f).unwrap(),
            write(TextKind::TexteLong, &f).unwrap()
        );
        let Draft::Text(t) = write(TextKind::TexteLong, &f).unwrap() else {
            panic!()
        };
        assert!(
            t.contains("Chez Paul") && t.contains("Lyon") && t.contains("Plombier"),
            "{t}"
        );
        assert!(write(TextKind::Faq, &Facts::Ville(VilleFacts::default())).is_err());
    }

    #[test]
    fn helpers() {
        assert_eq!(thousands(1234567), "1 234 567");
        assert_eq!(thousands(999), "999");
        assert_eq!(de("Annecy"), "d'Annecy");
        assert_eq!(de("Lyon"), "de Lyon");
        assert_eq!(lower_first("Plomberie"), "plomberie");
        assert_eq!(lower_first("BTP"), "BTP");
        assert_eq!(enumerate(&["a".into(), "b".into(), "c".into()]), "a, b et c");
        assert_eq!(short("Un nom. ", 50), "Un nom");
    }
}
