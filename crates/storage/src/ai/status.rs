//! The two AI enums stored as text: a task's status (`ai_tasks.status`) and how a generated
//! text fared with the validator (`ai_generations.validation`). The CHECK constraints of the
//! `ai` migration list the same spellings.

use crate::sql_text::text_enum;
use diesel::sql_types::Text;
use foxflow_domain::ai_text::Review;
use serde::Serialize;

/// A task's status (`ai_tasks.status`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = Text)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Processing,
    Succeeded,
    Failed,
    Skipped,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Pending,
        TaskStatus::Processing,
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::Skipped,
    ];

    /// Not final yet: a task in one of these may still be claimed, and keeps its batch open.
    pub const OPEN: [TaskStatus; 2] = [TaskStatus::Pending, TaskStatus::Processing];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Processing => "processing",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
        }
    }

    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }
}

text_enum!(TaskStatus, "AI task status");

/// What the validator made of a generated text (`ai_generations.validation`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = Text)]
#[serde(rename_all = "snake_case")]
pub enum Validation {
    /// Passed as written.
    Valid,
    /// Passed after the one repair pass.
    Repaired,
    /// Failed even after the repair: kept in the history, never written to the target.
    Rejected,
}

impl Validation {
    pub const ALL: [Validation; 3] = [Validation::Valid, Validation::Repaired, Validation::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Validation::Valid => "valid",
            Validation::Repaired => "repaired",
            Validation::Rejected => "rejected",
        }
    }

    /// Of the validator's verdict on a draft.
    pub fn of(review: &Review) -> Validation {
        match review {
            Review::Valid(_) => Validation::Valid,
            Review::Repaired { .. } => Validation::Repaired,
            Review::Rejected { .. } => Validation::Rejected,
        }
    }

    /// The text may replace the target's current one (and counts as "generated").
    pub fn is_accepted(self) -> bool {
        self != Validation::Rejected
    }
}

text_enum!(Validation, "validation outcome");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_unknown_ones_are_errors() {
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
            // The JSON spelling is the SQL one.
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for v in Validation::ALL {
            assert_eq!(v.as_str().parse::<Validation>(), Ok(v));
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        let err = "cancelled".parse::<TaskStatus>().unwrap_err();
        assert_eq!(err.to_string(), "unknown AI task status `cancelled`");
        assert!("Valid".parse::<Validation>().is_err(), "spellings are exact");
    }

    #[test]
    fn open_statuses_are_the_ones_not_final() {
        let open: Vec<_> = TaskStatus::ALL.into_iter().filter(|s| s.is_open()).collect();
        assert_eq!(open, [TaskStatus::Pending, TaskStatus::Processing]);
    }

    #[test]
    fn the_validation_of_a_review_matches_its_outcome_label() {
        use foxflow_domain::ai_text::Draft;
        let draft = Draft::Text("Un texte.".into());
        let reviews = [
            Review::Valid(draft.clone()),
            Review::Repaired {
                draft: draft.clone(),
                fixed: Vec::new(),
            },
            Review::Rejected {
                draft,
                violations: Vec::new(),
            },
        ];
        for review in &reviews {
            // The metric label and the stored value must agree.
            assert_eq!(Validation::of(review).as_str(), review.outcome());
        }
        assert!(Validation::Repaired.is_accepted());
        assert!(!Validation::Rejected.is_accepted());
    }
}
