//! What an operator reads, in French (the product's language, the default)
//! and in English (on request). Codes never change with the language: a
//! message is for a person, a code for a program.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A language Foxflow speaks to operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    /// The language of an HTTP `Accept-Language` header: English when the
    /// client prefers it to French (by order and `q`), French otherwise,
    /// including for a missing or unreadable header.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|v| v.trim().parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("fr") => Lang::Fr,
                Some("en") => Lang::En,
                _ => continue,
            };
            // The first of equal weights wins, as the header lists them by preference.
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.filter(|(q, _)| *q > 0.0).map_or(Lang::Fr, |(_, l)| l)
    }

    /// A setting's value (`fr`, `en`, `en_GB.UTF-8`…): English for `en…`,
    /// French for anything else.
    pub fn from_setting(value: &str) -> Lang {
        if value.trim().to_ascii_lowercase().starts_with("en") {
            Lang::En
        } else {
            Lang::Fr
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }
}

/// One message in both languages. `Display` writes the French one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Text {
    pub fr: String,
    pub en: String,
}

impl Text {
    pub fn new(fr: impl Into<String>, en: impl Into<String>) -> Text {
        Text {
            fr: fr.into(),
            en: en.into(),
        }
    }

    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Fr => &self.fr,
            Lang::En => &self.en,
        }
    }

    /// Both messages with the same prefix (a column name, a row number).
    pub fn prefixed(&self, fr: &str, en: &str) -> Text {
        Text::new(format!("{fr}{}", self.fr), format!("{en}{}", self.en))
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fr)
    }
}

/// A `Text` from two format strings sharing their arguments:
/// `text!("la valeur {v} …", "the value {v} …")`.
#[macro_export]
macro_rules! text {
    ($fr:literal, $en:literal $(,)?) => {
        $crate::text::Text::new(format!($fr), format!($en))
    };
    ($fr:literal, $en:literal, $($arg:tt)+) => {
        $crate::text::Text::new(format!($fr, $($arg)+), format!($en, $($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_prefers_by_weight_then_order() {
        assert_eq!(Lang::from_accept_language("en"), Lang::En);
        assert_eq!(Lang::from_accept_language("en-GB,en;q=0.9"), Lang::En);
        assert_eq!(Lang::from_accept_language("fr-FR,fr;q=0.9,en;q=0.8"), Lang::Fr);
        assert_eq!(Lang::from_accept_language("de, en;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language("fr;q=0.2, en;q=0.7"), Lang::En);
        assert_eq!(Lang::from_accept_language("en;q=0"), Lang::Fr);
        assert_eq!(Lang::from_accept_language(""), Lang::Fr);
        assert_eq!(Lang::from_accept_language("*"), Lang::Fr);
    }

    #[test]
    fn a_setting_is_english_only_when_it_says_so() {
        assert_eq!(Lang::from_setting("en_GB.UTF-8"), Lang::En);
        assert_eq!(Lang::from_setting("fr_FR.UTF-8"), Lang::Fr);
        assert_eq!(Lang::from_setting(""), Lang::Fr);
    }

    #[test]
    fn the_macro_formats_both_languages() {
        let v = 3;
        let t = text!("{v} lignes", "{v} rows");
        assert_eq!(t.get(Lang::Fr), "3 lignes");
        assert_eq!(t.get(Lang::En), "3 rows");
        assert_eq!(t.to_string(), "3 lignes");
    }
}
