//! What can be generated: the targets, the kinds of text each one has, the
//! limits a text of each kind must respect, and the shape a provider's draft takes.

use serde::{Deserialize, Serialize};
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
