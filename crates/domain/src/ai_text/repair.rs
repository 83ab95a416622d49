//! The single repair pass: [`repair_text`] fixes what can be fixed without
//! changing what a text says, and [`review`] validates, repairs once and
//! validates again (docs/spec.md §8).

use super::kind::{ANSWER, Draft, FaqEntry, QUESTION, TextKind, TextSpec};
use super::validate::{Violation, check, has_html, wrapped_in_quotes};
use crate::normalize::{clean_multiline, clean_text};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai_text::test_support::GOOD_REVIEW;
    use crate::ai_text::validate::Rule;

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
}
