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

mod facts;
mod kind;
mod policy;
mod repair;
mod stopwords;
#[cfg(test)]
mod test_support;
mod validate;

pub use facts::{CategorieFacts, Facts, PageFacts, SousCategorieFacts, VilleFacts};
pub use kind::{
    ANSWER, Draft, FAQ_MAX_ENTRIES, FAQ_MIN_ENTRIES, FaqEntry, QUESTION, TargetType, TextKind, TextSpec,
    UnknownKind, UnknownTarget,
};
pub use policy::{Because, Decision, REGENERATE_AFTER_DAYS, decide};
pub use repair::{Review, capitalize_first, repair_text, review, truncate_to};
pub use validate::{MAX_WORD_SHARE, MIN_MEANINGFUL_SHARE, Rule, Violation, check, check_text, describe};
