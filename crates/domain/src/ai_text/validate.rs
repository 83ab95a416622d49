//! The validator: every [`Rule`] a text is checked against, and the
//! [`Violation`]s it reports. Form rules are repaired by `repair`; content
//! rules reject the text.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

use super::kind::{ANSWER, Draft, FAQ_MAX_ENTRIES, FAQ_MIN_ENTRIES, FaqEntry, QUESTION, TextKind, TextSpec};
use super::stopwords::STOPWORDS;
use crate::normalize::fold_accents;

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

pub(super) fn has_html(text: &str) -> bool {
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
pub(super) fn wrapped_in_quotes(t: &str) -> Option<&str> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai_text::test_support::GOOD_REVIEW;

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
    fn html_detection_is_not_fooled_by_prose() {
        assert!(!has_html("Note de 4 < 5 et R&D & co ; tout va bien."));
        assert!(has_html("Texte<br>suite"));
        assert!(has_html("Prix &euro; affiché."));
    }
}
