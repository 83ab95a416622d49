//! The regeneration policy: whether a stored text is generated again.

use chrono::{DateTime, Utc};
use std::fmt;

use super::kind::{Draft, TextKind};
use super::validate::{Violation, check, describe};

/// Texts older than this are regenerated (docs/spec.md §8).
pub const REGENERATE_AFTER_DAYS: i64 = 90;

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
    use crate::ai_text::test_support::GOOD_REVIEW;

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
}
