//! The dashboard's totals over `import_jobs` (`GET /api/v1/imports/stats`).

use crate::Result;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use foxflow_domain::{ImportType, JobStatus};
use serde::Serialize;
use uuid::Uuid;

/// Jobs counted by status and by type, their rows summed, and the mean of
/// the per-job success rates (jobs with at least one processed row).
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStats {
    pub total: i64,
    /// Every status, 0 when none.
    pub by_status: std::collections::BTreeMap<String, i64>,
    /// Every import type, 0 when none.
    pub by_type: std::collections::BTreeMap<String, i64>,
    pub rows: RowTotals,
    /// Percentage, rounded to 2 decimals; null before any job processed a row.
    pub average_success_rate: Option<f64>,
}

impl JobStats {
    /// Every status and type as a key at zero, so a client never meets a missing one.
    fn zeroed() -> JobStats {
        JobStats {
            by_status: JobStatus::ALL
                .iter()
                .map(|s| (s.as_str().to_owned(), 0))
                .collect(),
            by_type: ImportType::ALL
                .iter()
                .map(|t| (t.as_str().to_owned(), 0))
                .collect(),
            ..JobStats::default()
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RowTotals {
    pub total: i64,
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub errors: i64,
}

#[derive(QueryableByName)]
struct StatsGroup {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: JobStatus,
    #[diesel(sql_type = diesel::sql_types::Text)]
    import_type: ImportType,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    jobs: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total_rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    processed_rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    created_rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    updated_rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    unchanged_rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    error_rows: i64,
    /// Sum of the per-job success rates and how many jobs have one, so the
    /// groups combine into one mean.
    #[diesel(sql_type = diesel::sql_types::Double)]
    rate_sum: f64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rated: i64,
}

/// The dashboard's totals in one aggregate pass over `import_jobs`
/// (`owner` narrows it to one user's jobs).
pub async fn stats(conn: &mut AsyncPgConnection, owner: Option<Uuid>) -> Result<JobStats> {
    let groups: Vec<StatsGroup> = diesel::sql_query(
        "SELECT status, import_type, count(*) AS jobs,
                COALESCE(sum(total_rows), 0)::int8 AS total_rows,
                COALESCE(sum(processed_rows), 0)::int8 AS processed_rows,
                COALESCE(sum(created_rows), 0)::int8 AS created_rows,
                COALESCE(sum(updated_rows), 0)::int8 AS updated_rows,
                COALESCE(sum(unchanged_rows), 0)::int8 AS unchanged_rows,
                COALESCE(sum(error_rows), 0)::int8 AS error_rows,
                COALESCE(sum((processed_rows - error_rows)::float8 * 100 / processed_rows)
                         FILTER (WHERE processed_rows > 0), 0)::float8 AS rate_sum,
                count(*) FILTER (WHERE processed_rows > 0) AS rated
         FROM import_jobs
         WHERE $1::uuid IS NULL OR owner_id = $1
         GROUP BY status, import_type",
    )
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Uuid>, _>(owner)
    .load(conn)
    .await?;
    let mut stats = JobStats::zeroed();
    let (mut rate_sum, mut rated) = (0.0, 0i64);
    for g in groups {
        stats.total += g.jobs;
        *stats.by_status.entry(g.status.as_str().to_owned()).or_default() += g.jobs;
        *stats
            .by_type
            .entry(g.import_type.as_str().to_owned())
            .or_default() += g.jobs;
        stats.rows.total += g.total_rows;
        stats.rows.processed += g.processed_rows;
        stats.rows.created += g.created_rows;
        stats.rows.updated += g.updated_rows;
        stats.rows.unchanged += g.unchanged_rows;
        stats.rows.errors += g.error_rows;
        rate_sum += g.rate_sum;
        rated += g.rated;
    }
    stats.average_success_rate = mean_rate(rate_sum, rated);
    Ok(stats)
}

/// The mean of `rated` success rates summing to `rate_sum`, in percent
/// rounded to 2 decimals; none before any job processed a row.
fn mean_rate(rate_sum: f64, rated: i64) -> Option<f64> {
    (rated > 0).then(|| (rate_sum / rated as f64 * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_rate_is_rounded_and_absent_before_any_row() {
        assert_eq!(mean_rate(0.0, 0), None);
        assert_eq!(mean_rate(100.0 + 50.0 + 33.333, 3), Some(61.11));
        assert_eq!(mean_rate(66.666_666, 1), Some(66.67));
    }

    #[test]
    fn every_status_and_type_is_a_key_even_at_zero() {
        let json = serde_json::to_value(JobStats::zeroed()).unwrap();
        assert_eq!(json["by_status"].as_object().unwrap().len(), JobStatus::ALL.len());
        assert_eq!(json["by_type"]["sous_categories"], 0);
        assert!(json["average_success_rate"].is_null());
    }
}
