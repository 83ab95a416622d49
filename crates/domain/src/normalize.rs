//! Pure normalisers for spreadsheet cells (docs/spec.md §4.2). Each one reports
//! whether it changed the value, because the import counts normalisations,
//! and whether the change may have lost information, which the import
//! reports as a row warning.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A normalised value and what normalising did to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized<T> {
    pub value: T,
    /// The value differs from the input as written.
    pub altered: bool,
    /// The input may have carried information the value no longer has (Excel
    /// scientific notation that dropped digits, a slug cut to length).
    pub lossy: bool,
}

impl<T> Normalized<T> {
    pub fn new(value: T, altered: bool) -> Self {
        Normalized {
            value,
            altered,
            lossy: false,
        }
    }
}

/// Single-line text as it should be stored: trimmed, HTML entities decoded
/// (`&amp;` → `&`, `&#039;` → `'`, `&eacute;` → `é`), every Unicode space
/// (NBSP, U+202F, tabs, line breaks…) turned into one plain space, runs of
/// spaces collapsed, invisible characters (zero-width spaces and joiners,
/// BOM, word joiner, soft hyphen, bidi marks, control characters — NUL would
/// make PostgreSQL refuse the row) removed. Typographic apostrophes and
/// dashes are kept as they are: they are the author's spelling.
pub fn clean_text(raw: &str) -> Normalized<Cow<'_, str>> {
    clean(raw, false)
}

/// Like [`clean_text`] but keeps line breaks, for long texts such as
/// descriptions: `\r\n` and `\r` become `\n`, spaces around a break are
/// dropped, and at most one blank line is kept between paragraphs.
pub fn clean_multiline(raw: &str) -> Normalized<Cow<'_, str>> {
    clean(raw, true)
}

fn clean(raw: &str, keep_newlines: bool) -> Normalized<Cow<'_, str>> {
    if !needs_cleaning(raw) {
        return Normalized::new(Cow::Borrowed(raw), false);
    }
    let decoded = html_escape::decode_html_entities(raw);
    let mut out = String::with_capacity(decoded.len());
    // Separators seen since the last visible character, written only once the
    // next visible one arrives, which trims and collapses in one pass.
    let mut pending_space = false;
    let mut pending_newlines = 0u8;
    let mut chars = decoded.chars().peekable();
    while let Some(c) = chars.next() {
        if is_invisible(c) {
            continue;
        }
        let is_break = matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}');
        if is_break && keep_newlines {
            if c == '\r' && chars.peek() == Some(&'\n') {
                continue;
            }
            pending_newlines = pending_newlines.saturating_add(1);
        } else if c.is_whitespace() {
            pending_space = true;
        } else {
            if !out.is_empty() {
                if pending_newlines > 0 {
                    out.push_str(if pending_newlines > 1 { "\n\n" } else { "\n" });
                } else if pending_space {
                    out.push(' ');
                }
            }
            pending_space = false;
            pending_newlines = 0;
            out.push(c);
        }
    }
    let altered = out != raw;
    Normalized::new(Cow::Owned(out), altered)
}

/// The fast path: most cells are already clean and are returned borrowed.
fn needs_cleaning(s: &str) -> bool {
    let mut prev_space = true; // a leading space needs trimming
    for c in s.chars() {
        if c == '&' || is_invisible(c) || (c.is_whitespace() && c != ' ') || (c == ' ' && prev_space) {
            return true;
        }
        prev_space = c == ' ';
    }
    prev_space && !s.is_empty()
}

/// Characters that render as nothing and only break comparisons and slugs.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    ) || (c.is_control() && !c.is_whitespace())
}

/// The digits of an integer however a spreadsheet wrote it: `123 456 789`,
/// `12345678901234.0`, `1.2345678901234E13`, `1,2345678901234E+13`. Works on
/// the decimal string, never through `f64`, so 14-digit SIRETs stay exact.
/// `None` when the input is not an integer (`12.5`, `abc`, empty).
///
/// Leading zeros written in plain digits are kept (`01500` stays `01500`);
/// a number in scientific notation has none. The result is `lossy` when the
/// exponent had to pad zeros beyond the written digits: Excel prints at most
/// 15 significant digits and often fewer (`1.23457E+13`), so those zeros may
/// stand for digits that were lost.
pub fn excel_digits(raw: &str) -> Option<Normalized<String>> {
    // Most cells are plain digits already (every SIREN, SIRET and postal
    // code of a clean file): nothing to compact, split or pad.
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Normalized::new(raw.to_owned(), false));
    }
    let compact: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && !is_invisible(*c))
        .collect();
    let (mantissa, exponent) = match compact.find(['e', 'E']) {
        Some(i) => (&compact[..i], Some(parse_exponent(&compact[i + 1..])?)),
        None => (compact.as_str(), None),
    };
    let (int_part, frac_part) = match mantissa.find(['.', ',']) {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() || !all_digits(int_part) || !all_digits(frac_part) {
        return None;
    }
    let Some(exp) = exponent else {
        if frac_part.bytes().any(|b| b != b'0') {
            return None;
        }
        let altered = int_part != raw;
        return Some(Normalized::new(int_part.to_owned(), altered));
    };
    let mut digits = format!("{int_part}{frac_part}");
    let point = int_part.len() as i64 + exp;
    let mut lossy = false;
    if point <= 0 {
        // Below 1: only zero itself is an integer.
        if digits.bytes().any(|b| b != b'0') {
            return None;
        }
        digits = "0".to_owned();
    } else if point as usize >= digits.len() {
        let padding = point as usize - digits.len();
        lossy = padding > 0;
        digits.extend(std::iter::repeat_n('0', padding));
    } else {
        let (int, frac) = digits.split_at(point as usize);
        if frac.bytes().any(|b| b != b'0') {
            return None;
        }
        digits = int.to_owned();
    }
    let trimmed = digits.trim_start_matches('0');
    let value = if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    };
    Some(Normalized {
        altered: value != raw,
        value,
        lossy,
    })
}

/// Whether [`excel_digits`] could find Excel's scientific notation in `s`
/// (an exponent after a leading digit): a cheap test that spares the
/// lossy-notation check on every e-mail, URL and name.
pub fn may_be_scientific(s: &str) -> bool {
    s.trim_start().starts_with(|c: char| c.is_ascii_digit()) && s.bytes().any(|b| b == b'e' || b == b'E')
}

/// Exponents beyond ±30 are no identifier a spreadsheet could hold; refusing
/// them also bounds the zeros we would write.
fn parse_exponent(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    if n > 30 {
        return None;
    }
    Some(if s.starts_with('-') { -n } else { n })
}

/// A yes/no cell: `true 1 oui yes vrai o y x t actif` and
/// `false 0 non no faux n f inactif`, any case (French Excel writes `VRAI` and
/// `FAUX`), plus Excel's `1.0`/`0.0`. `altered` is false only for `true`
/// and `false` written in lower case. `None` when the cell is neither.
pub fn parse_bool(raw: &str) -> Option<Normalized<bool>> {
    let t = raw.trim().to_lowercase();
    let value = match t.as_str() {
        "true" | "1" | "oui" | "yes" | "vrai" | "o" | "y" | "x" | "t" | "actif" | "active" => true,
        "false" | "0" | "non" | "no" | "faux" | "n" | "f" | "inactif" | "inactive" => false,
        _ => match excel_digits(&t)?.value.as_str() {
            "1" => true,
            "0" => false,
            _ => return None,
        },
    };
    Some(Normalized::new(
        value,
        raw != if value { "true" } else { "false" },
    ))
}

/// Accents and ligatures folded to their ASCII letters (`Éœ` → `Eoe`), case
/// kept; characters with no ASCII form are left as they are for the caller
/// to drop. Compatibility decomposition also folds `²` → `2`, `ﬁ` → `fi`.
pub fn fold_accents(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'ß' => out.push_str("ss"),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'đ' | 'ð' => out.push('d'),
            'Đ' | 'Ð' => out.push('D'),
            'þ' => out.push_str("th"),
            'Þ' => out.push_str("TH"),
            'ı' => out.push('i'),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_cases() {
        // (input, expected, altered)
        let cases: &[(&str, &str, bool)] = &[
            ("Nettoyage", "Nettoyage", false),
            ("Artisanat d’art", "Artisanat d’art", false),
            (
                "Éducation – Formation – E-learning",
                "Éducation – Formation – E-learning",
                false,
            ),
            ("  Plomberie  ", "Plomberie", true),
            (
                "Services à la personne – Aide &amp; Entretien",
                "Services à la personne – Aide & Entretien",
                true,
            ),
            ("L&#039;atelier", "L'atelier", true),
            ("Cr&eacute;ation", "Création", true),
            ("Artisan\u{a0}électricien", "Artisan électricien", true),
            (
                "\u{202f}Rénovation tous\u{202f}corps d’état",
                "Rénovation tous corps d’état",
                true,
            ),
            (
                "Ze\u{200b}ro\u{200c}wi\u{200d}dth\u{feff}\u{2060}",
                "Zerowidth",
                true,
            ),
            ("a \t\n  b", "a b", true),
            ("a\u{2003}\u{2009}b", "a b", true),
            ("nul\u{0}byte", "nulbyte", true),
            ("IVRY‑SUR‑SEINE", "IVRY‑SUR‑SEINE", false),
            ("AT&T", "AT&T", false),
            ("", "", false),
            ("   ", "", true),
            ("\u{a0}", "", true),
        ];
        for (raw, want, altered) in cases {
            let got = clean_text(raw);
            assert_eq!(got.value, *want, "{raw:?}");
            assert_eq!(got.altered, *altered, "{raw:?}");
            assert!(!got.lossy);
        }
    }

    #[test]
    fn clean_text_borrows_clean_input() {
        assert!(matches!(clean_text("Plomberie générale").value, Cow::Borrowed(_)));
    }

    #[test]
    fn clean_multiline_cases() {
        let cases: &[(&str, &str)] = &[
            ("Un.\r\nDeux.", "Un.\nDeux."),
            ("Un.  \n\n\n\n  Deux.", "Un.\n\nDeux."),
            ("\n Un \u{a0} deux \n", "Un deux"),
            ("a\rb", "a\nb"),
        ];
        for (raw, want) in cases {
            assert_eq!(clean_multiline(raw).value, *want, "{raw:?}");
        }
    }

    #[test]
    fn excel_digits_cases() {
        // (input, Some((digits, lossy)) or None)
        let cases: &[(&str, Option<(&str, bool)>)] = &[
            ("12345678901234", Some(("12345678901234", false))),
            ("12345678901234.0", Some(("12345678901234", false))),
            ("12345678901234,00", Some(("12345678901234", false))),
            ("1.2345678901234E13", Some(("12345678901234", false))),
            ("1,2345678901234E+13", Some(("12345678901234", false))),
            ("1.2345678901234e+013", Some(("12345678901234", false))),
            ("7.3282932000074E13", Some(("73282932000074", false))),
            ("1.23457E+13", Some(("12345700000000", true))),
            ("1E3", Some(("1000", true))),
            ("1500.0", Some(("1500", false))),
            ("01500", Some(("01500", false))),
            (" 123 456 789 ", Some(("123456789", false))),
            ("123\u{a0}456\u{202f}789", Some(("123456789", false))),
            ("0", Some(("0", false))),
            ("12.5", None),
            ("1.25E1", None),
            ("1.5E-1", None),
            ("0.0E-3", Some(("0", false))),
            ("", None),
            ("   ", None),
            ("abc", None),
            ("12a", None),
            ("-12", None),
            ("1.2.3", None),
            (".5", None),
            ("1E", None),
            ("1E99999", None),
            ("1E31", None),
        ];
        for (raw, want) in cases {
            let got = excel_digits(raw).map(|n| (n.value, n.lossy));
            assert_eq!(got, want.map(|(d, l)| (d.to_owned(), l)), "{raw:?}");
            // The cheap pre-check never hides a lossy value.
            if want.is_some_and(|(_, lossy)| lossy) {
                assert!(may_be_scientific(raw), "{raw:?}");
            }
        }
        assert!(!may_be_scientific("contact@exemple.fr"));
        assert!(!may_be_scientific("12345678901234"));
        assert!(!excel_digits("123").unwrap().altered);
        assert!(excel_digits("123.0").unwrap().altered);
    }

    #[test]
    fn parse_bool_cases() {
        for t in [
            "true", "TRUE", "1", "oui", "Oui", "yes", "vrai", "VRAI", "o", "y", "x", "X", " 1 ", "1.0",
            "actif",
        ] {
            assert_eq!(parse_bool(t).map(|b| b.value), Some(true), "{t:?}");
        }
        for f in [
            "false", "0", "non", "NON", "no", "faux", "FAUX", "n", "0.0", "inactif",
        ] {
            assert_eq!(parse_bool(f).map(|b| b.value), Some(false), "{f:?}");
        }
        for bad in ["", "maybe", "2", "oui!", "-1", "10"] {
            assert_eq!(parse_bool(bad), None, "{bad:?}");
        }
        assert!(!parse_bool("true").unwrap().altered);
        assert!(parse_bool("oui").unwrap().altered);
    }

    #[test]
    fn fold_accents_cases() {
        assert_eq!(fold_accents("Éducation"), "Education");
        assert_eq!(fold_accents("cœur Æ ß"), "coeur AE ss");
        assert_eq!(fold_accents("N° SIREN"), "N° SIREN");
        assert_eq!(fold_accents("CO₂ ﬁn"), "CO2 fin");
    }
}
