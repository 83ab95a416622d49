//! Generated editorial text (docs/spec.md §8): what can be generated for which
//! target, the facts a provider writes from, the validator and its single
//! repair pass, and the regeneration policy. Pure functions only: the worker
//! calls them around the provider and the database.
//!
//! The validator keeps the old system's rules. Each [`Rule`] is either about
//! *form* (whitespace, markup, a missing capital or final point, a text cut
//! too long) — which [`review`] repairs once and re-checks — or about
//! *content* (too short, JSON, placeholders, "aucune information
//! disponible", generic filler) — which no repair can fix, so the text is
//! rejected with the reasons.

use crate::normalize::{clean_multiline, clean_text, fold_accents};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// What a text is written for (`ai_tasks.target_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetType {
    /// A directory page: one entreprise × sous-catégorie × ville.
    Prolocalisation,
    Categorie,
    SousCategorie,
    Ville,
}

impl TargetType {
    pub const ALL: [TargetType; 4] = [
        TargetType::Prolocalisation,
        TargetType::Categorie,
        TargetType::SousCategorie,
        TargetType::Ville,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Prolocalisation => "prolocalisation",
            TargetType::Categorie => "categorie",
            TargetType::SousCategorie => "sous_categorie",
            TargetType::Ville => "ville",
        }
    }

    /// The kinds of text this target has, in generation order.
    pub fn kinds(self) -> &'static [TextKind] {
        match self {
            TargetType::Prolocalisation => &[
                TextKind::TexteLong,
                TextKind::MetaDescription,
                TextKind::Faq,
                TextKind::AvisDecrypte,
            ],
            TargetType::Categorie | TargetType::SousCategorie | TargetType::Ville => {
                &[TextKind::Description, TextKind::MetaDescription]
            }
        }
    }

    pub fn has_kind(self, kind: TextKind) -> bool {
        self.kinds().contains(&kind)
    }
}

impl fmt::Display for TargetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown target `{0}` (expected prolocalisation, categorie, sous_categorie or ville)")]
pub struct UnknownTarget(pub String);

impl FromStr for TargetType {
    type Err = UnknownTarget;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace('-', "_");
        TargetType::ALL
            .into_iter()
            .find(|k| k.as_str() == t)
            .ok_or_else(|| UnknownTarget(s.to_owned()))
    }
}

/// One kind of generated text; each is one task and one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextKind {
    /// `prolocalisations.texte_long_entreprise`.
    TexteLong,
    /// `meta_description` of any target (≤ 160 characters).
    MetaDescription,
    /// `prolocalisations.faq`: question/answer pairs.
    Faq,
    /// `prolocalisations.avis_decrypte`: the short review synthesis.
    AvisDecrypte,
    /// `texte_description_ia` of a catégorie, sous-catégorie or ville.
    Description,
}

impl TextKind {
    pub const ALL: [TextKind; 5] = [
        TextKind::TexteLong,
        TextKind::MetaDescription,
        TextKind::Faq,
        TextKind::AvisDecrypte,
        TextKind::Description,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TextKind::TexteLong => "texte_long",
            TextKind::MetaDescription => "meta_description",
            TextKind::Faq => "faq",
            TextKind::AvisDecrypte => "avis_decrypte",
            TextKind::Description => "description",
        }
    }

    /// The column the text is stored in, on the target's table.
    pub fn column(self) -> &'static str {
        match self {
            TextKind::TexteLong => "texte_long_entreprise",
            TextKind::MetaDescription => "meta_description",
            TextKind::Faq => "faq",
            TextKind::AvisDecrypte => "avis_decrypte",
            TextKind::Description => "texte_description_ia",
        }
    }

    /// The limits a plain text of this kind must respect (the FAQ's
    /// questions and answers have their own, see [`QUESTION`] and [`ANSWER`]).
    pub fn spec(self) -> TextSpec {
        match self {
            TextKind::TexteLong => TextSpec {
                min_chars: 300,
                max_chars: 3000,
                multiline: true,
                terminal: &['.', '!', '?'],
            },
            TextKind::Description => TextSpec {
                min_chars: 150,
                max_chars: 2000,
                multiline: true,
                terminal: &['.', '!', '?'],
            },
            TextKind::MetaDescription => TextSpec {
                min_chars: 50,
                max_chars: 160,
                multiline: false,
                terminal: &['.', '!', '?'],
            },
            // The old "review text" rule: 50 to 500 characters.
            TextKind::AvisDecrypte | TextKind::Faq => ANSWER_REVIEW,
        }
    }
}

impl fmt::Display for TextKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind `{0}` (expected texte_long, meta_description, faq, avis_decrypte or description)")]
pub struct UnknownKind(pub String);

impl FromStr for TextKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace('-', "_");
        TextKind::ALL
            .into_iter()
            .find(|k| k.as_str() == t || k.column() == t)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// Length and shape limits of one text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextSpec {
    pub min_chars: usize,
    pub max_chars: usize,
    /// Paragraph breaks allowed (long texts); otherwise one line.
    pub multiline: bool,
    /// The characters the text may end with.
    pub terminal: &'static [char],
}

const ANSWER_REVIEW: TextSpec = TextSpec {
    min_chars: 50,
    max_chars: 500,
    multiline: false,
    terminal: &['.', '!', '?'],
};

/// A FAQ question: one line ending with a question mark.
pub const QUESTION: TextSpec = TextSpec {
    min_chars: 10,
    max_chars: 200,
    multiline: false,
    terminal: &['?'],
};

/// A FAQ answer: shorter than a review text may be, but never a stub.
pub const ANSWER: TextSpec = TextSpec {
    min_chars: 30,
    max_chars: 500,
    multiline: false,
    terminal: &['.', '!', '?'],
};

/// A FAQ has this many pairs.
pub const FAQ_MIN_ENTRIES: usize = 2;
pub const FAQ_MAX_ENTRIES: usize = 8;

/// Texts older than this are regenerated (docs/spec.md §8).
pub const REGENERATE_AFTER_DAYS: i64 = 90;

/// One question/answer pair of a page's FAQ, stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqEntry {
    pub question: String,
    pub reponse: String,
}

/// What a provider produced for one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Draft {
    Text(String),
    Faq(Vec<FaqEntry>),
}

impl Draft {
    /// The text as stored in `ai_generations.content`: plain text, or the
    /// FAQ as JSON.
    pub fn to_content(&self) -> String {
        match self {
            Draft::Text(t) => t.clone(),
            Draft::Faq(entries) => serde_json::to_string(entries).expect("FAQ entries always serialise"),
        }
    }

    /// Whether the draft has the shape `kind` stores.
    pub fn fits(&self, kind: TextKind) -> bool {
        matches!(
            (self, kind),
            (Draft::Faq(_), TextKind::Faq)
                | (Draft::Text(_), TextKind::TexteLong)
                | (Draft::Text(_), TextKind::MetaDescription)
                | (Draft::Text(_), TextKind::AvisDecrypte)
                | (Draft::Text(_), TextKind::Description)
        )
    }
}

// ---------------------------------------------------------------------------
// Facts: what the text is written from.
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// The validator.
// ---------------------------------------------------------------------------

/// One rule of the validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Leading or trailing spaces, runs of spaces, line breaks where one line is expected.
    Whitespace,
    /// HTML tags or entities.
    Html,
    /// Markdown emphasis, headings, bullets or code fences, wrapping quotes.
    Markup,
    StartsWithCapital,
    EndsWithPunctuation,
    TooLong,
    TooShort,
    Json,
    /// `lorem`, `todo`, `à compléter`…
    Placeholder,
    /// The "aucune information disponible" family, and AI disclaimers.
    EmptyPhrase,
    /// Too few meaningful words, or one word over 30 % of the text.
    Generic,
    /// The FAQ has too few or too many pairs, or the draft has the wrong shape.
    Shape,
}

impl Rule {
    /// Form rules are repaired once; content rules reject the text.
    pub fn is_form(self) -> bool {
        matches!(
            self,
            Rule::Whitespace
                | Rule::Html
                | Rule::Markup
                | Rule::StartsWithCapital
                | Rule::EndsWithPunctuation
                | Rule::TooLong
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Whitespace => "whitespace",
            Rule::Html => "html",
            Rule::Markup => "markup",
            Rule::StartsWithCapital => "starts_with_capital",
            Rule::EndsWithPunctuation => "ends_with_punctuation",
            Rule::TooLong => "too_long",
            Rule::TooShort => "too_short",
            Rule::Json => "json",
            Rule::Placeholder => "placeholder",
            Rule::EmptyPhrase => "empty_phrase",
            Rule::Generic => "generic",
            Rule::Shape => "shape",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A broken rule, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: Rule,
    /// `faq[2].reponse` for a part of a FAQ; `None` for the whole text.
    pub field: Option<String>,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {} ({})", self.rule, self.detail),
            None => write!(f, "{} ({})", self.rule, self.detail),
        }
    }
}

/// Joins violations into one line, for `ai_tasks.last_error`.
pub fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Checks a draft of `kind`; an empty list means the text is valid.
pub fn check(kind: TextKind, draft: &Draft) -> Vec<Violation> {
    match (kind, draft) {
        (TextKind::Faq, Draft::Faq(entries)) => check_faq(entries),
        (TextKind::Faq, Draft::Text(_)) => vec![shape("a FAQ must be a list of question/answer pairs")],
        (_, Draft::Faq(_)) => vec![shape("expected a text, got a FAQ")],
        (kind, Draft::Text(text)) => check_text(&kind.spec(), text, None),
    }
}

fn shape(detail: &str) -> Violation {
    Violation {
        rule: Rule::Shape,
        field: None,
        detail: detail.to_owned(),
    }
}

fn check_faq(entries: &[FaqEntry]) -> Vec<Violation> {
    let mut out = Vec::new();
    if !(FAQ_MIN_ENTRIES..=FAQ_MAX_ENTRIES).contains(&entries.len()) {
        out.push(shape(&format!(
            "{} pairs; a FAQ has {FAQ_MIN_ENTRIES} to {FAQ_MAX_ENTRIES}",
            entries.len()
        )));
    }
    for (i, e) in entries.iter().enumerate() {
        out.extend(check_text(
            &QUESTION,
            &e.question,
            Some(format!("faq[{i}].question")),
        ));
        out.extend(check_text(&ANSWER, &e.reponse, Some(format!("faq[{i}].reponse"))));
    }
    out
}

/// Every rule against one piece of text.
pub fn check_text(spec: &TextSpec, text: &str, field: Option<String>) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut v = |rule: Rule, detail: String| {
        out.push(Violation {
            rule,
            field: field.clone(),
            detail,
        })
    };
    let len = text.chars().count();
    // Content.
    if looks_like_json(text) {
        v(Rule::Json, "the text contains JSON or template braces".into());
    }
    let folded = fold_for_matching(text);
    if let Some(p) = find_placeholder(&folded) {
        v(Rule::Placeholder, format!("contains the placeholder `{p}`"));
    }
    if let Some(p) = EMPTY_PHRASES.iter().find(|p| folded.contains(*p)) {
        v(Rule::EmptyPhrase, format!("contains the empty phrase `{p}`"));
    }
    if let Some(detail) = generic(text) {
        v(Rule::Generic, detail);
    }
    let trimmed_len = text.trim().chars().count();
    if trimmed_len < spec.min_chars {
        v(
            Rule::TooShort,
            format!("{trimmed_len} characters; at least {} expected", spec.min_chars),
        );
    }
    // Form.
    if len > spec.max_chars {
        v(
            Rule::TooLong,
            format!("{len} characters; at most {}", spec.max_chars),
        );
    }
    if has_html(text) {
        v(Rule::Html, "contains HTML tags or entities".into());
    }
    if has_markup(text) {
        v(Rule::Markup, "contains Markdown or wrapping quotes".into());
    }
    if has_bad_whitespace(text, spec.multiline) {
        v(Rule::Whitespace, "stray spaces or line breaks".into());
    }
    match text.trim_start().chars().next() {
        Some(c) if c.is_uppercase() || c.is_ascii_digit() => {}
        Some(c) => v(
            Rule::StartsWithCapital,
            format!("starts with `{c}`, not a capital letter"),
        ),
        None => v(Rule::StartsWithCapital, "the text is empty".into()),
    }
    match text.trim_end().chars().last() {
        Some(c) if spec.terminal.contains(&c) => {}
        last => v(
            Rule::EndsWithPunctuation,
            format!(
                "ends with `{}`; expected one of {}",
                last.map(String::from).unwrap_or_default(),
                spec.terminal
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
    }
    out
}

fn looks_like_json(text: &str) -> bool {
    let t = text.trim();
    t.contains('{')
        || t.contains('}')
        || (t.starts_with('[') && t.ends_with(']'))
        || t.contains("\":")
        || t.contains("\\n")
}

/// Lower-case, accents folded, typographic apostrophes made plain, so the
/// phrase lists can be written once in ASCII.
fn fold_for_matching(text: &str) -> String {
    fold_accents(text)
        .to_lowercase()
        .replace(['\u{2019}', '\u{2018}', '`', '\u{b4}'], "'")
}

/// Placeholders: single words matched as whole words, phrases as substrings.
const PLACEHOLDER_WORDS: &[&str] = &["lorem", "ipsum", "todo", "tbd", "fixme", "xxx", "placeholder"];
const PLACEHOLDER_PHRASES: &[&str] = &[
    "a completer",
    "a remplir",
    "a definir",
    "a preciser",
    "texte a venir",
    "[nom",
    "[ville",
    "[insert",
    "inserer ici",
];

fn find_placeholder(folded: &str) -> Option<&'static str> {
    if let Some(p) = PLACEHOLDER_PHRASES.iter().find(|p| folded.contains(*p)) {
        return Some(p);
    }
    words(folded).find_map(|w| PLACEHOLDER_WORDS.iter().find(|p| **p == w).copied())
}

/// The "aucune information disponible" family: texts that say nothing, or
/// that the model wrote about itself instead of the subject.
const EMPTY_PHRASES: &[&str] = &[
    "aucune information",
    "aucune info disponible",
    "pas d'information",
    "pas d'informations",
    "peu d'informations disponibles",
    "information non disponible",
    "informations non disponibles",
    "information indisponible",
    "informations indisponibles",
    "aucune donnee",
    "donnees non disponibles",
    "donnees indisponibles",
    "non renseigne",
    "non communique",
    "je ne dispose pas",
    "nous ne disposons pas",
    "je n'ai pas acces",
    "je n'ai pas d'information",
    "je ne peux pas fournir",
    "je ne peux pas repondre",
    "je ne peux pas resumer",
    "en tant qu'ia",
    "en tant qu'intelligence artificielle",
    "en tant que modele de langage",
    "as an ai",
    "no information available",
];

fn has_html(text: &str) -> bool {
    let b = text.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'<' {
            let next = b.get(i + 1).copied().unwrap_or(0);
            if (next.is_ascii_alphabetic() || next == b'/' || next == b'!') && text[i..].contains('>') {
                return true;
            }
        }
        if c == b'&' {
            let rest = &text[i + 1..];
            let end = rest.find(';');
            if let Some(end) = end.filter(|&e| (2..=8).contains(&e)) {
                let name = &rest[..end];
                if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '#') {
                    return true;
                }
            }
        }
    }
    false
}

const WRAPPING_QUOTES: &[(char, char)] = &[
    ('"', '"'),
    ('\u{201c}', '\u{201d}'),
    ('\u{ab}', '\u{bb}'),
    ('\'', '\''),
];

fn has_markup(text: &str) -> bool {
    let t = text.trim();
    if t.contains("**") || t.contains("__") || t.contains("```") {
        return true;
    }
    if t.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with('#') || l.starts_with("- ") || l.starts_with("* ") || l.starts_with("• ")
    }) {
        return true;
    }
    wrapped_in_quotes(t).is_some()
}

/// The inside of a text wholly wrapped in one pair of quotes.
fn wrapped_in_quotes(t: &str) -> Option<&str> {
    WRAPPING_QUOTES.iter().find_map(|&(open, close)| {
        let inner = t.strip_prefix(open)?.strip_suffix(close)?;
        // `« Chez Paul » est ouvert et « le meilleur »` is not wrapped.
        (!inner.contains(open) && !inner.contains(close)).then_some(inner)
    })
}

fn has_bad_whitespace(text: &str, multiline: bool) -> bool {
    if text != text.trim() || text.contains("  ") || text.contains('\t') || text.contains('\r') {
        return true;
    }
    if multiline {
        text.contains("\n\n\n") || text.contains(" \n") || text.contains("\n ")
    } else {
        text.contains('\n')
    }
}

/// Words as lower-case runs of letters and digits; apostrophes split
/// (`l'entreprise` → `l`, `entreprise`).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Function words and filler: a text made mostly of these says nothing.
/// Compared after folding accents.
const STOPWORDS: &[&str] = &[
    // articles, pronouns, prepositions, conjunctions
    "le",
    "la",
    "les",
    "l",
    "un",
    "une",
    "des",
    "du",
    "de",
    "d",
    "au",
    "aux",
    "a",
    "et",
    "ou",
    "en",
    "dans",
    "par",
    "pour",
    "sur",
    "sous",
    "avec",
    "sans",
    "chez",
    "vers",
    "entre",
    "depuis",
    "pendant",
    "que",
    "qui",
    "quoi",
    "dont",
    "ce",
    "cet",
    "cette",
    "ces",
    "c",
    "ca",
    "cela",
    "ceci",
    "il",
    "elle",
    "ils",
    "elles",
    "on",
    "nous",
    "vous",
    "je",
    "j",
    "tu",
    "me",
    "m",
    "te",
    "t",
    "se",
    "s",
    "lui",
    "leur",
    "leurs",
    "son",
    "sa",
    "ses",
    "mon",
    "ma",
    "mes",
    "ton",
    "ta",
    "tes",
    "notre",
    "nos",
    "votre",
    "vos",
    "y",
    "ne",
    "n",
    "pas",
    "plus",
    "moins",
    "si",
    "mais",
    "donc",
    "or",
    "ni",
    "car",
    "comme",
    "aussi",
    "ainsi",
    "qu",
    "est",
    "sont",
    "etre",
    "ete",
    "etait",
    "sera",
    "a",
    "ont",
    "avoir",
    "fait",
    "faire",
    "peut",
    "peuvent",
    "tout",
    "tous",
    "toute",
    "toutes",
    "meme",
    "autre",
    "autres",
    "chaque",
    "the",
    "and",
    "of",
    "to",
    "is",
    // filler that makes a text generic
    "tres",
    "bien",
    "bon",
    "bonne",
    "bons",
    "bonnes",
    "super",
    "top",
    "genial",
    "excellent",
    "excellente",
    "vraiment",
    "beaucoup",
    "trop",
    "parfait",
    "parfaite",
    "qualite",
    "service",
    "services",
    "choses",
    "chose",
    "truc",
    "etc",
    "oui",
    "non",
    "merci",
];

/// Below this share of meaningful words, a text is generic.
pub const MIN_MEANINGFUL_SHARE: f64 = 0.30;
/// No single word may make up more than this share of the words.
pub const MAX_WORD_SHARE: f64 = 0.30;
/// Shorter texts (a FAQ question) are judged by the other rules alone:
/// shares of a handful of words say nothing.
const GENERIC_MIN_WORDS: usize = 8;

fn generic(text: &str) -> Option<String> {
    let folded = fold_for_matching(text);
    // Numbers (`4,8 sur 5`, `12 avis`) are neither filler nor words: left out.
    let all: Vec<&str> = words(&folded)
        .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    if all.len() < GENERIC_MIN_WORDS {
        return None;
    }
    let total = all.len() as f64;
    let meaningful = all
        .iter()
        .filter(|w| w.chars().count() >= 3 && !STOPWORDS.contains(w))
        .count();
    let share = meaningful as f64 / total;
    if share < MIN_MEANINGFUL_SHARE {
        return Some(format!(
            "only {:.0} % meaningful words; at least {:.0} % expected",
            share * 100.0,
            MIN_MEANINGFUL_SHARE * 100.0
        ));
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in &all {
        *counts.entry(w).or_default() += 1;
    }
    let (word, n) = counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .expect("at least one word");
    let word_share = n as f64 / total;
    if word_share > MAX_WORD_SHARE {
        return Some(format!(
            "`{word}` is {:.0} % of the words; at most {:.0} %",
            word_share * 100.0,
            MAX_WORD_SHARE * 100.0
        ));
    }
    None
}

// ---------------------------------------------------------------------------
// The single repair pass.
// ---------------------------------------------------------------------------

/// Fixes what can be fixed without changing what the text says: wrapping
/// quotes and code fences, Markdown and HTML, whitespace, the first capital,
/// an over-long text cut at its last sentence that fits, the final point.
pub fn repair_text(spec: &TextSpec, text: &str) -> String {
    let mut t = text.trim().to_owned();
    if let Some(inner) = t.strip_prefix("```") {
        let inner = inner.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        t = inner.trim_end().trim_end_matches("```").trim().to_owned();
    }
    while let Some(inner) = wrapped_in_quotes(t.trim()) {
        t = inner.trim().to_owned();
    }
    t = strip_tags(&t);
    t = strip_markdown(&t);
    // Decodes entities and normalises every kind of space.
    t = if spec.multiline {
        clean_multiline(&t).value.into_owned()
    } else {
        clean_text(&t).value.into_owned()
    };
    t = capitalize_first(&t);
    if t.chars().count() > spec.max_chars {
        t = truncate_to(&t, spec.max_chars, spec.terminal);
    }
    ensure_terminal(&t, spec.terminal)
}

/// What [`review`] decided about a draft.
#[derive(Debug, Clone, PartialEq)]
pub enum Review {
    /// Valid as produced.
    Valid(Draft),
    /// Valid after the repair pass; the rules it fixed.
    Repaired { draft: Draft, fixed: Vec<Violation> },
    /// Still invalid (or invalid in content): the reasons, to be stored.
    Rejected {
        draft: Draft,
        violations: Vec<Violation>,
    },
}

impl Review {
    /// `valid`, `repaired` or `rejected`, for `ai_generations.validation`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Review::Valid(_) => "valid",
            Review::Repaired { .. } => "repaired",
            Review::Rejected { .. } => "rejected",
        }
    }

    pub fn draft(&self) -> &Draft {
        match self {
            Review::Valid(d) | Review::Repaired { draft: d, .. } | Review::Rejected { draft: d, .. } => d,
        }
    }

    /// The violations found (fixed ones for a repaired text).
    pub fn violations(&self) -> &[Violation] {
        match self {
            Review::Valid(_) => &[],
            Review::Repaired { fixed, .. } => fixed,
            Review::Rejected { violations, .. } => violations,
        }
    }
}

/// Validates a draft; a draft that fails only on form is repaired once and
/// validated again (docs/spec.md §8).
pub fn review(kind: TextKind, draft: Draft) -> Review {
    let found = check(kind, &draft);
    if found.is_empty() {
        return Review::Valid(draft);
    }
    if !found.iter().all(|v| v.rule.is_form()) {
        return Review::Rejected {
            draft,
            violations: found,
        };
    }
    let repaired = match (kind, &draft) {
        (TextKind::Faq, Draft::Faq(entries)) => Draft::Faq(
            entries
                .iter()
                .map(|e| FaqEntry {
                    question: repair_text(&QUESTION, &e.question),
                    reponse: repair_text(&ANSWER, &e.reponse),
                })
                .collect(),
        ),
        (kind, Draft::Text(t)) => Draft::Text(repair_text(&kind.spec(), t)),
        // Shape is a content rule: unreachable, but never panic on it.
        (_, other) => other.clone(),
    };
    let after = check(kind, &repaired);
    if after.is_empty() {
        Review::Repaired {
            draft: repaired,
            fixed: found,
        }
    } else {
        Review::Rejected {
            draft: repaired,
            violations: after,
        }
    }
}

fn strip_tags(text: &str) -> String {
    if !has_html(text) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = text[i + c.len_utf8()..].chars().next();
        let opens_tag = c == '<' && next.is_some_and(|n| n.is_ascii_alphabetic() || n == '/' || n == '!');
        if opens_tag && let Some(end) = text[i..].find('>') {
            let tag = text[i + 1..i + end].to_ascii_lowercase();
            // Block tags become breaks so words do not run together.
            let block = ["p", "/p", "br", "br/", "br /", "div", "/div", "li", "/li"]
                .iter()
                .any(|b| tag == *b || tag.starts_with(&format!("{b} ")));
            out.push(if block { '\n' } else { ' ' });
            while chars.peek().is_some_and(|(j, _)| *j <= i + end) {
                chars.next();
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn strip_markdown(text: &str) -> String {
    let text = text.replace("**", "").replace("__", "").replace("```", "");
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            let t = t.trim_start_matches('#').trim_start();
            t.strip_prefix("- ")
                .or_else(|| t.strip_prefix("* "))
                .or_else(|| t.strip_prefix("• "))
                .unwrap_or(t)
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Upper-cases the first letter when it is lower-case.
pub fn capitalize_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) if c.is_lowercase() => c.to_uppercase().chain(chars).collect(),
        _ => text.to_owned(),
    }
}

/// Cuts `text` to at most `max` characters: at the last sentence end that
/// fits when one leaves at least half the budget, else at the last word,
/// keeping room for the final point.
pub fn truncate_to(text: &str, max: usize, terminal: &[char]) -> String {
    let fitting: String = text.chars().take(max).collect();
    let sentence_end = fitting
        .char_indices()
        .filter(|(_, c)| terminal.contains(c) || matches!(c, '.' | '!' | '?'))
        .map(|(i, c)| i + c.len_utf8())
        .rfind(|&end| {
            // A sentence end is followed by a space, a break or the end.
            text[end..].chars().next().is_none_or(char::is_whitespace)
        });
    if let Some(end) = sentence_end
        && fitting[..end].chars().count() * 2 >= max
    {
        return fitting[..end].trim_end().to_owned();
    }
    let budget: String = text.chars().take(max.saturating_sub(1)).collect();
    let cut = match budget.rfind(char::is_whitespace) {
        Some(i) if i > 0 => &budget[..i],
        _ => budget.as_str(),
    };
    cut.trim_end_matches(|c: char| !c.is_alphanumeric()).to_owned()
}

fn ensure_terminal(text: &str, terminal: &[char]) -> String {
    // An ellipsis or a run of points is not an ending: make it one point.
    let mut t = text.trim_end_matches(['\u{2026}', ' ']).to_owned();
    while t.ends_with("..") {
        t.pop();
    }
    if t.chars().last().is_some_and(|c| terminal.contains(&c)) {
        return t;
    }
    let t = t.trim_end_matches([',', ';', ':', '-', '.', '!', '?', ' ']);
    let mark = if terminal.contains(&'.') { '.' } else { terminal[0] };
    // French typography puts a space before `?` and `!`.
    if mark == '?' {
        format!("{t} ?")
    } else {
        format!("{t}{mark}")
    }
}

// ---------------------------------------------------------------------------
// The regeneration policy.
// ---------------------------------------------------------------------------

/// Why a text is (re)generated, or why not.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Generate(Because),
    /// Present, valid and recent: the task ends `skipped`.
    Skip,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Because {
    Forced,
    Missing,
    LowQuality(Vec<Violation>),
    /// Older than [`REGENERATE_AFTER_DAYS`], or of unknown age.
    Stale {
        generated_at: Option<DateTime<Utc>>,
    },
}

impl fmt::Display for Because {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Because::Forced => f.write_str("forced"),
            Because::Missing => f.write_str("missing"),
            Because::LowQuality(v) => write!(f, "low quality: {}", describe(v)),
            Because::Stale {
                generated_at: Some(at),
            } => write!(f, "generated {}", at.to_rfc3339()),
            Because::Stale { generated_at: None } => f.write_str("of unknown age"),
        }
    }
}

/// Regenerate when the text is missing, fails today's validator, is older
/// than 90 days (or has no known date), or when forced; otherwise skip.
pub fn decide(
    kind: TextKind,
    current: Option<&Draft>,
    generated_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    force: bool,
) -> Decision {
    if force {
        return Decision::Generate(Because::Forced);
    }
    let Some(current) = current.filter(|d| match d {
        Draft::Text(t) => !t.trim().is_empty(),
        Draft::Faq(e) => !e.is_empty(),
    }) else {
        return Decision::Generate(Because::Missing);
    };
    let found = check(kind, current);
    if !found.is_empty() {
        return Decision::Generate(Because::LowQuality(found));
    }
    match generated_at {
        Some(at) if now - at < chrono::Duration::days(REGENERATE_AFTER_DAYS) => Decision::Skip,
        other => Decision::Generate(Because::Stale { generated_at: other }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_REVIEW: &str = "Les clients saluent la ponctualité de l'équipe, la propreté du chantier et des devis clairs, \
                               remis sous quarante-huit heures.";

    fn rules(kind: TextKind, text: &str) -> Vec<Rule> {
        check(kind, &Draft::Text(text.to_owned()))
            .into_iter()
            .map(|v| v.rule)
            .collect()
    }

    /// Each old rule: a text that passes it and one that breaks it.
    #[test]
    fn each_rule_has_a_passing_and_a_failing_case() {
        let long_ok = GOOD_REVIEW;
        let cases: &[(Rule, TextKind, &str, &str)] = &[
            (
                Rule::TooShort,
                TextKind::AvisDecrypte,
                long_ok,
                "Plombier sérieux et ponctuel à Lyon.",
            ),
            (
                Rule::TooLong,
                TextKind::AvisDecrypte,
                long_ok,
                "Les clients saluent la ponctualité de l'équipe, la propreté du chantier et la clarté des devis, remis sous quarante-huit heures, puis détaillés poste par poste avec les fournitures, la main-d'œuvre et les délais annoncés dès la première visite technique sur place, ce qui rassure avant les travaux. Plusieurs clients mentionnent une intervention rapide un dimanche soir pour une fuite sous évier, facturée au tarif convenu par téléphone, et des conseils utiles pour entretenir la chaudière ensuite, avec un rappel annuel envoyé par courriel.",
            ),
            (
                Rule::Json,
                TextKind::AvisDecrypte,
                long_ok,
                r#"{"texte": "Les clients saluent la ponctualité de l'équipe et la propreté du chantier."}"#,
            ),
            (
                Rule::Html,
                TextKind::AvisDecrypte,
                long_ok,
                "<p>Les clients saluent la ponctualité de l'équipe, la propreté du chantier et des devis clairs.</p>",
            ),
            (
                Rule::Placeholder,
                TextKind::AvisDecrypte,
                long_ok,
                "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.",
            ),
            (
                Rule::Placeholder,
                TextKind::AvisDecrypte,
                long_ok,
                "TODO : rédiger la synthèse des avis de cette entreprise de plomberie lyonnaise.",
            ),
            (
                Rule::Placeholder,
                TextKind::AvisDecrypte,
                long_ok,
                "Synthèse des avis clients de cette entreprise de plomberie lyonnaise : à compléter.",
            ),
            (
                Rule::EmptyPhrase,
                TextKind::AvisDecrypte,
                long_ok,
                "Aucune information disponible sur les avis de cette entreprise de plomberie lyonnaise.",
            ),
            (
                Rule::EmptyPhrase,
                TextKind::AvisDecrypte,
                long_ok,
                "En tant qu'IA, je ne peux pas résumer les avis de cette entreprise de plomberie à Lyon.",
            ),
            (
                Rule::StartsWithCapital,
                TextKind::AvisDecrypte,
                long_ok,
                "les clients saluent la ponctualité de l'équipe, la propreté du chantier et des devis clairs.",
            ),
            (
                Rule::EndsWithPunctuation,
                TextKind::AvisDecrypte,
                long_ok,
                "Les clients saluent la ponctualité de l'équipe, la propreté du chantier et des devis clairs",
            ),
            (
                Rule::Generic,
                TextKind::AvisDecrypte,
                long_ok,
                "C'est très bien, vraiment très bien, et c'est super bon, on est très content de tout ça.",
            ),
            (
                Rule::Generic,
                TextKind::AvisDecrypte,
                long_ok,
                "Plomberie plomberie plomberie plomberie Lyon plomberie plomberie chauffage plomberie.",
            ),
            (
                Rule::TooLong,
                TextKind::MetaDescription,
                "Plombier à Lyon 3e : Dupont Plomberie, dépannage et installation sanitaire. Avis clients vérifiés.",
                "Plombier à Lyon 3e : Dupont Plomberie, dépannage, installation sanitaire, chauffe-eau, chaudières et salles de bains clés en main. Avis clients vérifiés et devis gratuit.",
            ),
            (
                Rule::Markup,
                TextKind::AvisDecrypte,
                long_ok,
                "**Les clients** saluent la ponctualité de l'équipe, la propreté du chantier et des devis clairs.",
            ),
            (
                Rule::Whitespace,
                TextKind::AvisDecrypte,
                long_ok,
                "Les clients saluent  la ponctualité de l'équipe, la propreté du chantier et des devis clairs. ",
            ),
        ];
        for (rule, kind, pass, fail) in cases {
            let ok = rules(*kind, pass);
            assert!(ok.is_empty(), "{rule:?}: the passing case broke {ok:?}: {pass}");
            let broken = rules(*kind, fail);
            assert!(
                broken.contains(rule),
                "{rule:?}: the failing case broke only {broken:?}: {fail}"
            );
        }
    }

    #[test]
    fn review_texts_are_50_to_500_characters() {
        let exactly = |n: usize| {
            let mut body: Vec<char> = "Avis clients détaillés et vérifiés "
                .repeat(20)
                .chars()
                .take(n - 1)
                .collect();
            if body.last() == Some(&' ') {
                *body.last_mut().unwrap() = 's';
            }
            format!("{}.", body.into_iter().collect::<String>())
        };
        assert_eq!(exactly(50).chars().count(), 50);
        assert!(!rules(TextKind::AvisDecrypte, &exactly(50)).contains(&Rule::TooShort));
        assert!(rules(TextKind::AvisDecrypte, &exactly(49)).contains(&Rule::TooShort));
        assert!(!rules(TextKind::AvisDecrypte, &exactly(500)).contains(&Rule::TooLong));
        assert!(rules(TextKind::AvisDecrypte, &exactly(501)).contains(&Rule::TooLong));
    }

    #[test]
    fn form_failures_are_repaired_once() {
        let cases = [
            "les clients saluent la ponctualité de l'équipe, la propreté du chantier et des devis clairs",
            "  \"Les clients saluent la ponctualité de l'équipe, la propreté du chantier et des devis clairs.\"  ",
            "<p>Les clients saluent la ponctualité de l&#39;équipe, la propreté du chantier et des devis clairs</p>",
            "**Les clients** saluent la ponctualité de l'équipe,\n la propreté du chantier et des devis clairs...",
        ];
        for raw in cases {
            match review(TextKind::AvisDecrypte, Draft::Text(raw.to_owned())) {
                Review::Repaired {
                    draft: Draft::Text(t),
                    fixed,
                } => {
                    assert!(!fixed.is_empty());
                    assert!(t.starts_with("Les clients saluent"), "{t}");
                    assert!(t.ends_with("clairs."), "{t}");
                    assert!(!t.contains('<') && !t.contains("**") && !t.contains("  "), "{t}");
                }
                other => panic!("{raw:?} should be repaired, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_long_meta_description_is_cut_at_a_sentence_or_word() {
        let raw = "Plombier à Lyon 3e : Dupont Plomberie, dépannage et installation sanitaire. Avis clients vérifiés, devis gratuit, intervention rapide sur toute la métropole lyonnaise et les communes voisines.";
        match review(TextKind::MetaDescription, Draft::Text(raw.into())) {
            Review::Repaired {
                draft: Draft::Text(t),
                ..
            } => {
                assert!(t.chars().count() <= 160, "{t}");
                assert!(t.ends_with('.'), "{t}");
            }
            other => panic!("should be repaired: {other:?}"),
        }
    }

    #[test]
    fn content_failures_are_rejected_without_repair() {
        let raw = "aucune information disponible pour cette entreprise de plomberie à Lyon";
        match review(TextKind::AvisDecrypte, Draft::Text(raw.into())) {
            Review::Rejected { violations, draft } => {
                assert_eq!(draft, Draft::Text(raw.into()));
                assert!(violations.iter().any(|v| v.rule == Rule::EmptyPhrase));
            }
            other => panic!("should be rejected: {other:?}"),
        }
        // A repair that cannot save it: too short stays too short.
        let short = "plombier à Lyon";
        assert!(matches!(
            review(TextKind::AvisDecrypte, Draft::Text(short.into())),
            Review::Rejected { .. }
        ));
    }

    #[test]
    fn faq_rules() {
        let good = vec![
            FaqEntry {
                question: "Où se trouve Dupont Plomberie ?".into(),
                reponse:
                    "L'entreprise est installée rue Garibaldi, dans le troisième arrondissement de Lyon."
                        .into(),
            },
            FaqEntry {
                question: "Dupont Plomberie intervient-elle en urgence ?".into(),
                reponse: "Oui, les clients signalent des dépannages rapides le soir et le week-end.".into(),
            },
        ];
        assert_eq!(check(TextKind::Faq, &Draft::Faq(good.clone())), vec![]);
        let mut one = good.clone();
        one.truncate(1);
        assert_eq!(check(TextKind::Faq, &Draft::Faq(one))[0].rule, Rule::Shape);
        let mut bad = good.clone();
        bad[1].question = "dupont Plomberie intervient-elle en urgence".into();
        match review(TextKind::Faq, Draft::Faq(bad)) {
            Review::Repaired {
                draft: Draft::Faq(e), ..
            } => {
                assert_eq!(e[1].question, "Dupont Plomberie intervient-elle en urgence ?")
            }
            other => panic!("should be repaired: {other:?}"),
        }
        let mut empty = good;
        empty[0].reponse = "Aucune information disponible à ce sujet pour le moment.".into();
        let v = check(TextKind::Faq, &Draft::Faq(empty));
        assert_eq!(v[0].field.as_deref(), Some("faq[0].reponse"));
        assert_eq!(v[0].rule, Rule::EmptyPhrase);
    }

    #[test]
    fn the_wrong_shape_is_rejected() {
        assert_eq!(
            check(TextKind::Faq, &Draft::Text(GOOD_REVIEW.into()))[0].rule,
            Rule::Shape
        );
        assert!(matches!(
            review(TextKind::AvisDecrypte, Draft::Faq(vec![])),
            Review::Rejected { .. }
        ));
    }

    #[test]
    fn regeneration_policy() {
        let now = Utc::now();
        let good = Draft::Text(GOOD_REVIEW.into());
        let bad = Draft::Text("Aucune information disponible.".into());
        let k = TextKind::AvisDecrypte;
        let recent = Some(now - chrono::Duration::days(10));
        let old = Some(now - chrono::Duration::days(91));
        assert_eq!(decide(k, Some(&good), recent, now, false), Decision::Skip);
        assert_eq!(
            decide(k, Some(&good), recent, now, true),
            Decision::Generate(Because::Forced)
        );
        assert_eq!(
            decide(k, None, None, now, false),
            Decision::Generate(Because::Missing)
        );
        assert_eq!(
            decide(k, Some(&Draft::Text("  ".into())), recent, now, false),
            Decision::Generate(Because::Missing)
        );
        assert!(matches!(
            decide(k, Some(&bad), recent, now, false),
            Decision::Generate(Because::LowQuality(_))
        ));
        assert!(matches!(
            decide(k, Some(&good), old, now, false),
            Decision::Generate(Because::Stale { .. })
        ));
        assert!(matches!(
            decide(k, Some(&good), None, now, false),
            Decision::Generate(Because::Stale { generated_at: None })
        ));
    }

    #[test]
    fn names_round_trip() {
        for t in TargetType::ALL {
            assert_eq!(t.as_str().parse::<TargetType>(), Ok(t));
        }
        for k in TextKind::ALL {
            assert_eq!(k.as_str().parse::<TextKind>(), Ok(k));
            assert_eq!(k.column().parse::<TextKind>(), Ok(k));
        }
        assert_eq!(
            "sous-categorie".parse::<TargetType>(),
            Ok(TargetType::SousCategorie)
        );
        assert!("page".parse::<TargetType>().is_err());
        assert!(TargetType::Ville.has_kind(TextKind::Description));
        assert!(!TargetType::Ville.has_kind(TextKind::Faq));
    }

    #[test]
    fn html_detection_is_not_fooled_by_prose() {
        assert!(!has_html("Note de 4 < 5 et R&D & co ; tout va bien."));
        assert!(has_html("Texte<br>suite"));
        assert!(has_html("Prix &euro; affiché."));
    }
}
