//! The scheduled retention cleanup (docs/spec.md §9). Every replica wakes at each
//! `CLEANUP_SCHEDULE` time; the advisory lock in
//! `foxflow_storage::maintenance::cleanup` lets one of them do the work and
//! the others return at once.

use chrono::{DateTime, Utc};
use chrono_tz::Europe::Paris;
use foxflow_storage::DbPool;
use foxflow_storage::maintenance::{self, Retention};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// Attempts per scheduled run when the database is briefly unavailable.
const ATTEMPTS: u32 = 3;
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// A `CLEANUP_SCHEDULE`: a standard 5-field crontab line (minute, hour,
/// day of month, month, day of week with 0 or 7 = Sunday, names allowed) or
/// `@daily`/`@weekly`/…, read in Europe/Paris time; `off` disables the
/// in-process schedule (e.g. when only the Kubernetes CronJob should run).
#[derive(Debug, Clone)]
pub struct CleanupSchedule {
    expr: String,
    schedule: cron::Schedule,
}

impl CleanupSchedule {
    /// `Ok(None)` for `off`.
    pub fn parse(expr: &str) -> Result<Option<CleanupSchedule>, String> {
        let expr = expr.trim();
        if matches!(expr.to_ascii_lowercase().as_str(), "off" | "none" | "disabled") {
            return Ok(None);
        }
        let translated = to_cron_crate(expr)?;
        let schedule = cron::Schedule::from_str(&translated).map_err(|e| format!("`{expr}`: {e}"))?;
        Ok(Some(CleanupSchedule {
            expr: expr.to_owned(),
            schedule,
        }))
    }

    /// The first run strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&now.with_timezone(&Paris))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// The `cron` crate wants seconds first and numbers Sunday 1 to Saturday 7;
/// operators write crontab lines (Sunday 0 or 7), like the Kubernetes
/// CronJob's `schedule`.
fn to_cron_crate(expr: &str) -> Result<String, String> {
    if expr.starts_with('@') {
        return Ok(expr.to_owned());
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = fields.as_slice() else {
        return Err(format!(
            "`{expr}` is not a crontab line of 5 fields (minute hour day-of-month month day-of-week)"
        ));
    };
    Ok(format!("0 {minute} {hour} {dom} {month} {}", day_of_week(dow)?))
}

fn day_of_week(field: &str) -> Result<String, String> {
    let day = |s: &str| -> Result<String, String> {
        match s.parse::<u8>() {
            Ok(n @ 0..=7) => Ok((n % 7 + 1).to_string()),
            Ok(n) => Err(format!("day of week {n} is not in 0-7")),
            Err(_) => Ok(s.to_owned()),
        }
    };
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let mapped = match range.split_once('-') {
            _ if range == "*" || range == "?" => range.to_owned(),
            // `5-7`: Friday to Sunday, which the cron crate must see as 6-7,1.
            Some((a, "7")) if step.is_none() => format!("{}-7,1", day(a)?),
            Some((_, "7")) => {
                return Err(format!(
                    "`{field}`: write a day-of-week range ending on Sunday by name"
                ));
            }
            Some((a, b)) => format!("{}-{}", day(a)?, day(b)?),
            None => day(range)?,
        };
        out.push(match step {
            Some(s) => format!("{mapped}/{s}"),
            None => mapped,
        });
    }
    Ok(out.join(","))
}

/// Runs the cleanup at every scheduled time until shutdown.
pub async fn run_scheduled_cleanup(
    pool: DbPool,
    schedule: CleanupSchedule,
    retention: Retention,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let now = Utc::now();
        let Some(next) = schedule.next_after(now) else {
            tracing::warn!(schedule = %schedule.expr, "the cleanup schedule has no future run");
            return;
        };
        tracing::debug!(%next, "next cleanup");
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        run_once(&pool, retention, &mut shutdown)
            .instrument(tracing::info_span!("cleanup", otel.name = "scheduled cleanup"))
            .await;
    }
}

async fn run_once(pool: &DbPool, retention: Retention, shutdown: &mut watch::Receiver<bool>) {
    for attempt in 1..=ATTEMPTS {
        let result = async {
            let mut conn = foxflow_storage::pool::conn(pool).await?;
            maintenance::cleanup(&mut conn, retention, false).await
        }
        .await;
        match result {
            Ok(r) if r.ran => {
                tracing::info!(
                    jobs_deleted = r.jobs_deleted,
                    errors_deleted = r.errors_deleted,
                    files_purged = r.files_purged,
                    bytes_purged = r.bytes_purged,
                    orphan_files_deleted = r.orphan_files_deleted,
                    outbox_rows_deleted = r.outbox_rows_deleted,
                    "scheduled cleanup done"
                );
                return;
            }
            Ok(_) => {
                tracing::info!("scheduled cleanup already running on another replica");
                return;
            }
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "scheduled cleanup failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_AFTER) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "scheduled cleanup failed; next attempt at the next scheduled time");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn paris(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Paris
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_default_runs_on_sunday_at_three_paris_time() {
        let s = CleanupSchedule::parse("0 3 * * SUN").unwrap().unwrap();
        // Wednesday 2026-11-25 → Sunday 2026-11-29 03:00 CET (02:00 UTC).
        let next = s.next_after(paris(2026, 11, 25, 12, 0)).unwrap();
        assert_eq!(next, paris(2026, 11, 29, 3, 0));
        assert_eq!(next.to_rfc3339(), "2026-11-29T02:00:00+00:00");
        // In summer time the same wall-clock hour is 01:00 UTC.
        let next = s.next_after(paris(2026, 7, 1, 12, 0)).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-07-05T01:00:00+00:00");
        // Strictly after: at 03:00 on a Sunday, the next run is a week later.
        let at = paris(2026, 11, 29, 3, 0);
        assert_eq!(s.next_after(at).unwrap(), paris(2026, 12, 6, 3, 0));
    }

    #[test]
    fn numeric_days_follow_crontab() {
        for expr in ["0 3 * * 0", "0 3 * * 7", "0 3 * * sun"] {
            let s = CleanupSchedule::parse(expr).unwrap().unwrap();
            assert_eq!(
                s.next_after(paris(2026, 11, 25, 12, 0)).unwrap(),
                paris(2026, 11, 29, 3, 0),
                "{expr}"
            );
        }
        // Monday to Friday.
        let s = CleanupSchedule::parse("30 2 * * 1-5").unwrap().unwrap();
        assert_eq!(
            s.next_after(paris(2026, 11, 28, 12, 0)).unwrap(),
            paris(2026, 11, 30, 2, 30)
        );
        // Friday to Sunday.
        let s = CleanupSchedule::parse("0 4 * * 5-7").unwrap().unwrap();
        assert_eq!(
            s.next_after(paris(2026, 11, 25, 12, 0)).unwrap(),
            paris(2026, 11, 27, 4, 0)
        );
        assert_eq!(
            s.next_after(paris(2026, 11, 28, 12, 0)).unwrap(),
            paris(2026, 11, 29, 4, 0)
        );
    }

    #[test]
    fn off_and_errors() {
        assert!(CleanupSchedule::parse("off").unwrap().is_none());
        assert!(CleanupSchedule::parse("@daily").unwrap().is_some());
        assert!(CleanupSchedule::parse("0 3 * *").is_err());
        assert!(CleanupSchedule::parse("0 3 * * 8").is_err());
        assert!(CleanupSchedule::parse("0 25 * * *").is_err());
    }
}
