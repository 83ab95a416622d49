//! Import jobs: what kind of file, where a job stands, what the uploader asked for.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The four kinds of spreadsheet an operator can import (docs/spec.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportType {
    Entreprises,
    Categories,
    SousCategories,
    Villes,
}

impl ImportType {
    pub const ALL: [ImportType; 4] = [
        ImportType::Entreprises,
        ImportType::Categories,
        ImportType::SousCategories,
        ImportType::Villes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportType::Entreprises => "entreprises",
            ImportType::Categories => "categories",
            ImportType::SousCategories => "sous_categories",
            ImportType::Villes => "villes",
        }
    }
}

impl fmt::Display for ImportType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown import type `{0}` (expected entreprises, categories, sous_categories or villes)")]
pub struct UnknownImportType(pub String);

impl FromStr for ImportType {
    type Err = UnknownImportType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace('-', "_");
        ImportType::ALL
            .into_iter()
            .find(|k| k.as_str() == t)
            .ok_or_else(|| UnknownImportType(s.to_owned()))
    }
}

/// Where a job stands (docs/spec.md §4.5). `pending` → `processing` → one of the finals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Processing,
    Success,
    Partial,
    Error,
    /// Stopped on request: before it started, or at a batch commit, the
    /// rows committed until then kept and counted (docs/imports.md, "Cancel").
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Pending,
        JobStatus::Processing,
        JobStatus::Success,
        JobStatus::Partial,
        JobStatus::Error,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Success => "success",
            JobStatus::Partial => "partial",
            JobStatus::Error => "error",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Success | JobStatus::Partial | JobStatus::Error | JobStatus::Cancelled
        )
    }

    /// The final status of a finished run, from its counts: no error rows is
    /// a success (an empty file included), errors beside imported rows is
    /// partial, and nothing imported at all is an error.
    pub fn from_counts(total_rows: i64, error_rows: i64) -> JobStatus {
        if error_rows == 0 {
            JobStatus::Success
        } else if error_rows < total_rows {
            JobStatus::Partial
        } else {
            JobStatus::Error
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status `{0}`")]
pub struct UnknownJobStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownJobStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownJobStatus(s.to_owned()))
    }
}

/// What the uploader asked for besides the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOptions {
    pub dry_run: bool,
    pub generate_ai: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_from_counts() {
        assert_eq!(JobStatus::from_counts(0, 0), JobStatus::Success);
        assert_eq!(JobStatus::from_counts(10, 0), JobStatus::Success);
        assert_eq!(JobStatus::from_counts(10, 3), JobStatus::Partial);
        assert_eq!(JobStatus::from_counts(10, 10), JobStatus::Error);
    }

    #[test]
    fn only_pending_and_processing_are_not_final() {
        let open: Vec<_> = JobStatus::ALL.into_iter().filter(|s| !s.is_final()).collect();
        assert_eq!(open, [JobStatus::Pending, JobStatus::Processing]);
        assert_eq!("cancelled".parse::<JobStatus>(), Ok(JobStatus::Cancelled));
    }

    #[test]
    fn import_type_round_trip() {
        for t in ImportType::ALL {
            assert_eq!(t.as_str().parse::<ImportType>(), Ok(t));
        }
        assert_eq!(
            "sous-categories".parse::<ImportType>(),
            Ok(ImportType::SousCategories)
        );
        assert!("companies".parse::<ImportType>().is_err());
    }
}
