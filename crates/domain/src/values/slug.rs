//! URL slugs of categories, sous-catégories and towns.

use std::borrow::Cow;

use super::{ValueError, codes, string_value};
use crate::normalize::{Normalized, clean_text, fold_accents};
use crate::text::Text;

/// A URL slug: lower-case ASCII letters and digits in words joined by single
/// dashes, e.g. `artisanat-dart`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

string_value!(Slug);

/// The `slug` columns (`varchar(120)`).
pub const MAX_SLUG_LEN: usize = 120;

/// Apostrophes join the letters around them (`d’art` → `dart`) instead of
/// splitting words, which is what WordPress does and what our existing
/// slugs look like.
const APOSTROPHES: &[char] = &['\'', '’', '‘', 'ʼ', '`', '´', '′'];

impl Slug {
    /// Canonicalises any text or existing slug: HTML entities and
    /// percent-encoding decoded (WordPress exports `bien%e2%80%91etre`),
    /// accents folded, apostrophes dropped, every other run of
    /// non-alphanumerics turned into one dash, no dash at either end.
    /// `Artisanat d’art` → `artisanat-dart`. Idempotent on a slug.
    /// Fails when nothing alphanumeric is left, or beyond [`MAX_SLUG_LEN`].
    pub fn parse(raw: &str) -> Result<Slug, ValueError> {
        let slug = slugify(raw)?;
        let len = slug.len();
        if len > MAX_SLUG_LEN {
            return Err(ValueError::too_long(
                Text::new("un slug", "a slug"),
                len,
                MAX_SLUG_LEN,
            ));
        }
        Ok(Slug(slug))
    }

    /// Like [`Slug::parse`], but a slug longer than [`MAX_SLUG_LEN`] is cut
    /// at the last word boundary that fits, and marked `lossy` so the caller
    /// can warn: a slug is an address derived from data, not data itself.
    /// `altered` says whether the slug differs from the input.
    pub fn from_name(raw: &str) -> Result<Normalized<Slug>, ValueError> {
        let slug = slugify(raw)?;
        let cut = truncate_at_word(&slug, MAX_SLUG_LEN);
        let lossy = cut.len() < slug.len();
        Ok(Normalized {
            altered: cut != raw,
            value: Slug(cut.to_owned()),
            lossy,
        })
    }

    /// The `n`-th candidate when this slug is taken: `-2`, `-3`, … appended
    /// (the base is shortened at a word boundary if the result would exceed
    /// [`MAX_SLUG_LEN`]). `n` ≤ 1 is the slug itself. Deterministic, so
    /// re-running an import proposes the same slugs.
    pub fn with_suffix(&self, n: u32) -> Slug {
        if n <= 1 {
            return self.clone();
        }
        let suffix = format!("-{n}");
        let base = truncate_at_word(&self.0, MAX_SLUG_LEN - suffix.len());
        Slug(format!("{base}{suffix}"))
    }
}

fn slugify(raw: &str) -> Result<String, ValueError> {
    let decoded = percent_decode(raw);
    let cleaned = clean_text(&decoded).value;
    let folded = fold_accents(&cleaned);
    let mut out = String::with_capacity(folded.len());
    let mut pending_dash = false;
    for c in folded.chars() {
        if APOSTROPHES.contains(&c) {
            continue;
        }
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    if out.is_empty() {
        return Err(ValueError::new(
            codes::INVALID_SLUG,
            Text::new(
                "un slug contient au moins une lettre ou un chiffre (des mots en minuscules reliés par des tirets, par exemple artisanat-dart)",
                "a slug needs at least one letter or digit (lower-case words joined by dashes, e.g. artisanat-dart)",
            ),
        ));
    }
    Ok(out)
}

/// The longest prefix of `slug` (ASCII) within `max` bytes that ends on a
/// whole word; a single word longer than `max` is cut where it must be.
fn truncate_at_word(slug: &str, max: usize) -> &str {
    if slug.len() <= max {
        return slug;
    }
    let head = &slug[..max];
    if slug.as_bytes()[max] == b'-' {
        return head.trim_end_matches('-');
    }
    match head.rfind('-') {
        Some(i) if i > 0 => &head[..i],
        _ => head,
    }
}

/// `%xx` sequences decoded when together they form UTF-8; anything else is
/// left as written (a literal `100%` stays).
fn percent_decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(raw),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slug_cases() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("Artisanat d’art", Ok("artisanat-dart")),
            (
                "Éducation – Formation – E-learning",
                Ok("education-formation-e-learning"),
            ),
            ("Centres de formation", Ok("centres-de-formation")),
            (
                "Services à la personne – Aide &amp; Entretien",
                Ok("services-a-la-personne-aide-entretien"),
            ),
            (
                "\u{202f}Rénovation tous\u{202f}corps d’état",
                Ok("renovation-tous-corps-detat"),
            ),
            ("Cœur de Maçon", Ok("coeur-de-macon")),
            ("L'Atelier  du  Bois!", Ok("latelier-du-bois")),
            ("--Déjà--vu--", Ok("deja-vu")),
            ("Émission de CO₂", Ok("emission-de-co2")),
            ("ivry%e2%80%91sur%e2%80%91seine", Ok("ivry-sur-seine")),
            ("coach-bien%e2%80%91etre", Ok("coach-bien-etre")),
            ("100% bio", Ok("100-bio")),
            ("artisanat-dart", Ok("artisanat-dart")),
            ("Amberieu En Bugey 01500", Ok("amberieu-en-bugey-01500")),
            ("", Err(codes::INVALID_SLUG)),
            ("– ’ –", Err(codes::INVALID_SLUG)),
            ("日本", Err(codes::INVALID_SLUG)),
        ];
        for (raw, want) in cases {
            let got = Slug::parse(raw)
                .map(|s| s.as_str().to_owned())
                .map_err(|e| e.code);
            assert_eq!(got, want.map(str::to_owned), "{raw:?}");
        }
        assert_eq!(Slug::parse(&"mot-".repeat(40)).unwrap_err().code, codes::TOO_LONG);
    }

    #[test]
    fn from_name_truncates_at_a_word() {
        let long = "Atelier de création et d’édition de mobilier contemporain sur mesure - design et ébénisterie haut de gamme, livraison et pose partout en France";
        let n = Slug::from_name(long).unwrap();
        assert!(n.lossy && n.altered);
        assert!(n.value.as_str().len() <= MAX_SLUG_LEN);
        assert!(
            n.value
                .as_str()
                .starts_with("atelier-de-creation-et-dedition-de-mobilier")
        );
        assert!(!n.value.as_str().ends_with('-'));
        assert!(long.starts_with("Atelier"));
        let short = Slug::from_name("plomberie").unwrap();
        assert!(!short.lossy && !short.altered);
        assert!(Slug::from_name("Plomberie").unwrap().altered);
        let one_word = "a".repeat(200);
        assert_eq!(
            Slug::from_name(&one_word).unwrap().value.as_str().len(),
            MAX_SLUG_LEN
        );
    }

    #[test]
    fn suffixes() {
        let s = Slug::parse("paris").unwrap();
        assert_eq!(s.with_suffix(1), s);
        assert_eq!(s.with_suffix(2).as_str(), "paris-2");
        assert_eq!(s.with_suffix(13).as_str(), "paris-13");
        let long = Slug::from_name(&"mot ".repeat(60)).unwrap().value;
        let suffixed = long.with_suffix(2);
        assert!(suffixed.as_str().len() <= MAX_SLUG_LEN);
        assert!(suffixed.as_str().ends_with("mot-2"));
    }
}
