//! Maintenance (docs/spec.md §9): the retention cleanup and the repair of placeholder
//! sous-catégorie names. Both are a handful of set-based statements in one
//! transaction, whatever the number of rows; the cleanup then deletes sent
//! outbox rows in batches of their own (there can be hundreds of thousands).
//!
//! Cleanup runs on every import-worker replica's schedule and from
//! `foxctl cleanup`; `pg_try_advisory_xact_lock` lets exactly one run at a
//! time do the work and the others return at once ([`CleanupReport::ran`] is
//! false). A run that starts after another finished finds nothing left to
//! delete, so the work is done once however many replicas wake up.

use crate::{Result, StorageError};
use diesel::sql_types::{Array, BigInt, Bool, Double, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use foxflow_domain::values::Slug;
use std::collections::HashSet;
use std::time::Duration;

/// The advisory lock key of the cleanup ("foxclean"). Advisory locks are per
/// database, so test databases never contend.
pub const CLEANUP_LOCK: i64 = 0x666f_7863_6c65_616e;

/// How long every cleanup keeps outbox rows after they were sent. A sent row
/// is only history (its `traceparent` leads to a fresh job's trace): the
/// relay never reads it again, and an AI batch writes up to 200,000 of them.
/// An hour covers looking into what just happened; it is a constant, not a
/// [`Retention`] setting, because nothing depends on a longer one.
pub const SENT_OUTBOX_RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// How long cleanup keeps things (`IMPORT_LOG_RETENTION`, `IMPORT_FILE_RETENTION`).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Import jobs, with their error rows, are deleted past this age.
    pub logs: Duration,
    /// Uploaded file contents are deleted past this age; the job stays and
    /// records `file_purged_at`.
    pub files: Duration,
}

/// What one cleanup did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanupReport {
    /// False when another cleanup held the lock: this one did nothing.
    pub ran: bool,
    pub dry_run: bool,
    pub jobs_deleted: i64,
    pub errors_deleted: i64,
    /// Files whose content was purged (their job keeps a note of it).
    pub files_purged: i64,
    pub bytes_purged: i64,
    /// Files no remaining job references: abandoned uploads and the files of
    /// deleted jobs.
    pub orphan_files_deleted: i64,
    pub orphan_bytes_deleted: i64,
    /// Settled webhook deliveries (delivered or failed) past the log retention.
    pub webhook_deliveries_deleted: i64,
    /// Outbox rows sent more than [`SENT_OUTBOX_RETENTION`] ago. Unsent and
    /// set-aside rows are never deleted.
    pub outbox_rows_deleted: i64,
}

#[derive(diesel::QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

#[derive(diesel::QueryableByName)]
struct Counts {
    #[diesel(sql_type = BigInt)]
    a: i64,
    #[diesel(sql_type = BigInt)]
    b: i64,
}

// `$1` is the log retention and `$2` the file retention, in seconds. Each
// fragment goes into several statements with their own binds, so statuses
// are spelled out in them; a test keeps the spellings those of the enums.
// Jobs past the log retention.
const OLD_JOBS: &str =
    "SELECT j.id FROM import_jobs j WHERE j.created_at < now() - make_interval(secs => $1)";

// Settled webhook deliveries past the log retention (pending ones are kept:
// they are still owed to their receiver).
const OLD_DELIVERIES: &str = "
SELECT d.id FROM webhook_deliveries d
WHERE d.status <> 'pending' AND d.created_at < now() - make_interval(secs => $1)";

// Files no job kept by this run references, older than an hour: by then an
// unreferenced file is an abandoned upload (an upload is at most a few MB
// streamed in seconds).
const ORPHAN_FILES: &str = "
SELECT f.id, f.size_bytes FROM stored_files f
WHERE f.created_at < now() - interval '1 hour'
  AND NOT EXISTS (SELECT 1 FROM import_jobs j
                  WHERE j.file_id = f.id AND j.created_at >= now() - make_interval(secs => $1))";

// Contents past the file retention, of files a kept job references, unless a
// job is still pending or running on them.
const PURGEABLE_FILES: &str = "
SELECT f.id, f.size_bytes FROM stored_files f
WHERE f.purged_at IS NULL
  AND f.created_at < now() - make_interval(secs => $2)
  AND EXISTS (SELECT 1 FROM import_jobs j
              WHERE j.file_id = f.id AND j.created_at >= now() - make_interval(secs => $1))
  AND NOT EXISTS (SELECT 1 FROM import_jobs j
                  WHERE j.file_id = f.id AND j.status IN ('pending', 'processing'))";

/// Deletes what the retention allows; see the module documentation for how
/// replicas share it. With `dry_run`, counts without changing anything.
pub async fn cleanup(
    conn: &mut AsyncPgConnection,
    retention: Retention,
    dry_run: bool,
) -> Result<CleanupReport> {
    let mut report = cleanup_in_one_transaction(conn, retention, dry_run).await?;
    if report.ran {
        // After the transaction, batch by batch: deleting 200,000 rows in it
        // would hold their locks until the end. The advisory lock is gone by
        // then; a cleanup that starts meanwhile skips the rows this one holds.
        let cutoff = chrono::Utc::now() - SENT_OUTBOX_RETENTION;
        report.outbox_rows_deleted = if dry_run {
            crate::outbox::count_sent_before(conn, cutoff).await?
        } else {
            crate::outbox::delete_sent_before(conn, cutoff).await?
        };
    }
    Ok(report)
}

async fn cleanup_in_one_transaction(
    conn: &mut AsyncPgConnection,
    retention: Retention,
    dry_run: bool,
) -> Result<CleanupReport> {
    let logs = retention.logs.as_secs_f64();
    let files = retention.files.as_secs_f64();
    conn.transaction::<_, StorageError, _>(async |conn| {
        // Deleting months of chunks may take longer than the pool's default.
        conn.batch_execute("SET LOCAL statement_timeout = '30min'").await?;
        let mut report = CleanupReport {
            ran: true,
            dry_run,
            ..Default::default()
        };
        if dry_run {
            let c = counts(
                conn,
                &format!(
                    "old AS ({OLD_JOBS}) SELECT (SELECT count(*) FROM old) AS a,
                     (SELECT count(*) FROM import_errors e JOIN old ON old.id = e.job_id) AS b"
                ),
                logs,
                files,
            )
            .await?;
            (report.jobs_deleted, report.errors_deleted) = (c.a, c.b);
            let c = counts(
                conn,
                &format!("t AS ({ORPHAN_FILES}) SELECT count(*) AS a, coalesce(sum(size_bytes), 0)::int8 AS b FROM t"),
                logs,
                files,
            )
            .await?;
            (report.orphan_files_deleted, report.orphan_bytes_deleted) = (c.a, c.b);
            let c = counts(
                conn,
                &format!("t AS ({PURGEABLE_FILES}) SELECT count(*) AS a, coalesce(sum(size_bytes), 0)::int8 AS b FROM t"),
                logs,
                files,
            )
            .await?;
            (report.files_purged, report.bytes_purged) = (c.a, c.b);
            let c = counts(
                conn,
                &format!("t AS ({OLD_DELIVERIES}) SELECT count(*) AS a, 0::int8 AS b FROM t"),
                logs,
                files,
            )
            .await?;
            report.webhook_deliveries_deleted = c.a;
            return Ok(report);
        }

        let locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<BigInt, _>(CLEANUP_LOCK)
            .get_result::<Locked>(conn)
            .await?
            .locked;
        if !locked {
            return Ok(CleanupReport {
                ran: false,
                dry_run,
                ..Default::default()
            });
        }
        // 1. Old jobs, their error rows and their undo data (the rest of what hangs off a job
        //    goes with it through ON DELETE CASCADE / SET NULL).
        let c = counts(
            conn,
            &format!(
                "old AS ({OLD_JOBS}),
                 errs AS (DELETE FROM import_errors e USING old WHERE e.job_id = old.id RETURNING 1),
                 -- What an import changed (for its revert) goes with its log.
                 chg AS (DELETE FROM import_changes c USING old WHERE c.job_id = old.id)
                 SELECT (SELECT count(*) FROM old) AS a, (SELECT count(*) FROM errs) AS b"
            ),
            logs,
            files,
        )
        .await?;
        report.errors_deleted = c.b;
        report.jobs_deleted = diesel::sql_query(OLD_JOBS.replacen("SELECT j.id FROM", "DELETE FROM", 1))
            .bind::<Double, _>(logs)
            .execute(conn)
            .await? as i64;
        debug_assert_eq!(report.jobs_deleted, c.a);
        // 2. Files nothing references any more (chunks first, explicitly, so
        //    the bytes can be counted).
        let c = counts(
            conn,
            &format!(
                "t AS ({ORPHAN_FILES}),
                 chunks AS (DELETE FROM file_chunks c USING t WHERE c.file_id = t.id RETURNING octet_length(c.data) AS n),
                 gone AS (DELETE FROM stored_files f USING t WHERE f.id = t.id RETURNING 1)
                 SELECT (SELECT count(*) FROM gone) AS a, (SELECT coalesce(sum(n), 0)::int8 FROM chunks) AS b"
            ),
            logs,
            files,
        )
        .await?;
        (report.orphan_files_deleted, report.orphan_bytes_deleted) = (c.a, c.b);
        // 3. Old contents of files whose job is kept: the job records the purge.
        let c = counts(
            conn,
            &format!(
                "t AS ({PURGEABLE_FILES}),
                 chunks AS (DELETE FROM file_chunks c USING t WHERE c.file_id = t.id RETURNING octet_length(c.data) AS n),
                 files AS (UPDATE stored_files f SET purged_at = now() FROM t WHERE f.id = t.id RETURNING 1),
                 jobs AS (UPDATE import_jobs j SET file_purged_at = now() FROM t WHERE j.file_id = t.id RETURNING 1)
                 SELECT (SELECT count(*) FROM files) AS a, (SELECT coalesce(sum(n), 0)::int8 FROM chunks) AS b
                 FROM (SELECT count(*) FROM jobs) j"
            ),
            logs,
            files,
        )
        .await?;
        (report.files_purged, report.bytes_purged) = (c.a, c.b);
        // 4. Old webhook deliveries, delivered or given up.
        let c = counts(
            conn,
            &format!(
                "t AS ({OLD_DELIVERIES}),
                 gone AS (DELETE FROM webhook_deliveries d USING t WHERE d.id = t.id RETURNING 1)
                 SELECT (SELECT count(*) FROM gone) AS a, 0::int8 AS b"
            ),
            logs,
            files,
        )
        .await?;
        report.webhook_deliveries_deleted = c.a;
        Ok(report)
    })
    .await
}

/// Runs `sql`, the rest of a `WITH` list ending in a `SELECT … AS a, … AS b`,
/// with `$1` the log retention and `$2` the file retention in seconds. The
/// leading CTE types both parameters whether or not `sql` uses them, and
/// keeps data-modifying CTEs at the top level where Postgres requires them.
async fn counts(conn: &mut AsyncPgConnection, sql: &str, logs: f64, files: f64) -> Result<Counts> {
    let sql = format!("WITH _params AS (SELECT $1::float8 AS logs, $2::float8 AS files), {sql}");
    Ok(diesel::sql_query(sql)
        .bind::<Double, _>(logs)
        .bind::<Double, _>(files)
        .get_result::<Counts>(conn)
        .await?)
}

/// One sous-catégorie renamed by [`fix_sous_categorie_names`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NameFix {
    pub id: i64,
    pub categorie_id: i64,
    pub code: String,
    pub old_nom: String,
    pub old_slug: String,
    pub nom: String,
    pub slug: String,
    pub description: String,
}

#[derive(diesel::QueryableByName)]
struct Placeholder {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    categorie_id: i64,
    #[diesel(sql_type = Text)]
    nom: String,
    #[diesel(sql_type = Text)]
    slug: String,
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Text)]
    libelle: String,
    #[diesel(sql_type = Nullable<Text>)]
    libelle_65: Option<String>,
}

#[derive(diesel::QueryableByName)]
struct Taken {
    #[diesel(sql_type = BigInt)]
    categorie_id: i64,
    #[diesel(sql_type = Text)]
    nom: String,
    #[diesel(sql_type = Text)]
    slug: String,
}

/// Sous-catégories named like the placeholder `Activité 43.22A` (the code
/// written `4322A`, `43.22 a`, accent or not). The code is the one in the
/// name when it is a real NAF code, otherwise the sous-catégorie's only
/// mapped code in `naf_sous_categories`.
const PLACEHOLDERS: &str = r"
WITH p AS MATERIALIZED (
    SELECT s.id, s.categorie_id, s.nom::text AS nom, s.slug::text AS slug,
           regexp_match(lower(s.nom), '^\s*activit[eé]\s+(\d{2})\.?\s*(\d{2})\s*\.?\s*([a-z])\s*$') AS m
    FROM sous_categories s
    -- A cheap filter first; MATERIALIZED runs the regex once per row.
    WHERE s.nom ILIKE '%activit%'
)
SELECT p.id, p.categorie_id, p.nom, p.slug, n.code, n.libelle, n.libelle_65
FROM p
JOIN naf_codes n ON n.code = COALESCE(
    (SELECT c.code FROM naf_codes c WHERE c.code = upper(p.m[1] || '.' || p.m[2] || p.m[3])),
    (SELECT min(ns.naf_code) FROM naf_sous_categories ns WHERE ns.sous_categorie_id = p.id HAVING count(*) = 1))
WHERE p.m IS NOT NULL
ORDER BY p.id";

const APPLY_FIXES: &str = "
UPDATE sous_categories s
SET nom = v.nom, slug = v.slug, description = v.description, updated_at = now()
FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[]) AS v(id, nom, slug, description)
WHERE s.id = v.id";

/// `sous_categories.nom` is `varchar(100)`.
const MAX_NOM: usize = 100;

/// Gives placeholder sous-catégories their official NAF label, a unique slug
/// and the description `NAF 43.22A : <label>` (docs/spec.md §9): one read of the
/// placeholders and of the names and slugs in use, one `UPDATE … FROM
/// UNNEST`. With `dry_run`, returns the changes without writing them.
/// Running it again finds nothing to do.
pub async fn fix_sous_categorie_names(conn: &mut AsyncPgConnection, dry_run: bool) -> Result<Vec<NameFix>> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        let placeholders: Vec<Placeholder> = diesel::sql_query(PLACEHOLDERS).load(conn).await?;
        if placeholders.is_empty() {
            return Ok(Vec::new());
        }
        // Every name and slug in use now, the placeholders' own included:
        // a new value never equals a current one, so no row of the single
        // UPDATE can trip a unique index that another row is about to free.
        let taken: Vec<Taken> = diesel::sql_query(
            "SELECT categorie_id, nom::text AS nom, slug::text AS slug FROM sous_categories",
        )
        .load(conn)
        .await?;
        let mut names: HashSet<(i64, String)> =
            taken.iter().map(|t| (t.categorie_id, t.nom.clone())).collect();
        let mut slugs: HashSet<String> = taken.into_iter().map(|t| t.slug).collect();
        let mut fixes = Vec::with_capacity(placeholders.len());
        for p in placeholders {
            let nom = unique_name(&p, &mut names);
            let slug = unique_slug(&nom, &p.code, &mut slugs)?;
            fixes.push(NameFix {
                id: p.id,
                categorie_id: p.categorie_id,
                description: format!("NAF {} : {}", p.code, p.libelle),
                code: p.code,
                old_nom: p.nom,
                old_slug: p.slug,
                nom,
                slug,
            });
        }
        if !dry_run {
            diesel::sql_query(APPLY_FIXES)
                .bind::<Array<BigInt>, _>(fixes.iter().map(|f| f.id).collect::<Vec<_>>())
                .bind::<Array<Text>, _>(fixes.iter().map(|f| f.nom.clone()).collect::<Vec<_>>())
                .bind::<Array<Text>, _>(fixes.iter().map(|f| f.slug.clone()).collect::<Vec<_>>())
                .bind::<Array<Text>, _>(fixes.iter().map(|f| f.description.clone()).collect::<Vec<_>>())
                .execute(conn)
                .await?;
        }
        Ok(fixes)
    })
    .await
}

/// The label, or INSEE's short label when the label exceeds the column, or
/// the label cut at a word; then ` (43.22A)` if the category already has a
/// sous-catégorie of that name, then a number.
fn unique_name(p: &Placeholder, names: &mut HashSet<(i64, String)>) -> String {
    let base = if p.libelle.chars().count() <= MAX_NOM {
        p.libelle.clone()
    } else {
        match &p.libelle_65 {
            Some(short) if !short.trim().is_empty() && short.chars().count() <= MAX_NOM => short.clone(),
            _ => fit(&p.libelle, ""),
        }
    };
    let mut candidate = base.clone();
    let mut n = 1u32;
    while names.contains(&(p.categorie_id, candidate.clone())) {
        let suffix = if n == 1 {
            format!(" ({})", p.code)
        } else {
            format!(" ({}) {n}", p.code)
        };
        candidate = fit(&base, &suffix);
        n += 1;
    }
    names.insert((p.categorie_id, candidate.clone()));
    candidate
}

/// `text` cut at a word boundary so that `text…suffix` fits [`MAX_NOM`]
/// characters (no ellipsis when nothing was cut).
fn fit(text: &str, suffix: &str) -> String {
    let room = MAX_NOM - suffix.chars().count();
    if text.chars().count() <= room {
        return format!("{text}{suffix}");
    }
    let cut: String = text.chars().take(room - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > 0 => cut[..i].trim_end_matches([' ', ',', ';', '-']).to_owned(),
        _ => cut,
    };
    format!("{cut}…{suffix}")
}

/// The slug of the new name; if taken, with the NAF code; then numbered.
fn unique_slug(nom: &str, code: &str, slugs: &mut HashSet<String>) -> Result<String> {
    let invalid = |e: foxflow_domain::ValueError| {
        StorageError::Conflict(foxflow_domain::text!(
            "pas de slug pour « {nom} » : {}",
            "no slug for `{nom}`: {}",
            e.message.get(foxflow_domain::Lang::Fr),
        ))
    };
    let base = Slug::from_name(nom).map_err(invalid)?.value;
    let with_code = Slug::from_name(&format!("{nom} {code}")).map_err(invalid)?.value;
    let mut candidates = [base.clone(), with_code.clone()]
        .into_iter()
        .chain((2..).map(|n| with_code.with_suffix(n)));
    let slug = candidates
        .find(|s| !slugs.contains(s.as_str()))
        .expect("an unbounded sequence of distinct slugs has a free one");
    slugs.insert(slug.as_str().to_owned());
    Ok(slug.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_spelled_as_the_enums_do() {
        use crate::webhooks::DeliveryStatus;
        use foxflow_domain::JobStatus;
        assert!(OLD_DELIVERIES.contains(&format!("d.status <> '{}'", DeliveryStatus::Pending)));
        assert!(PURGEABLE_FILES.contains(&format!(
            "j.status IN ('{}', '{}')",
            JobStatus::Pending,
            JobStatus::Processing
        )));
    }

    #[test]
    fn long_labels_are_cut_at_a_word() {
        let label = "Fabrication d'articles en fils métalliques, de chaînes et de ressorts pour l'industrie et pour d'autres usages";
        let cut = fit(label, "");
        assert!(cut.chars().count() <= MAX_NOM, "{cut}");
        assert!(cut.ends_with('…') && !cut.ends_with(" …"), "{cut}");
        let with = fit(label, " (25.93Z)");
        assert!(
            with.chars().count() <= MAX_NOM && with.ends_with("… (25.93Z)"),
            "{with}"
        );
        assert_eq!(fit("Coiffure", " (96.02A)"), "Coiffure (96.02A)");
    }

    #[test]
    fn names_and_slugs_never_collide() {
        let p = |id, code: &str| Placeholder {
            id,
            categorie_id: 1,
            nom: format!("Activité {code}"),
            slug: format!("activite-{id}"),
            code: code.to_owned(),
            libelle: "Coiffure".to_owned(),
            libelle_65: None,
        };
        let mut names = HashSet::from([(1, "Coiffure".to_owned())]);
        let mut slugs = HashSet::from(["coiffure".to_owned()]);
        let a = unique_name(&p(1, "96.02A"), &mut names);
        let b = unique_name(&p(2, "96.02A"), &mut names);
        assert_eq!(a, "Coiffure (96.02A)");
        assert_eq!(b, "Coiffure (96.02A) 2");
        let s1 = unique_slug("Coiffure", "96.02A", &mut slugs).unwrap();
        let s2 = unique_slug("Coiffure", "96.02A", &mut slugs).unwrap();
        assert_eq!(s1, "coiffure-96-02a");
        assert_eq!(s2, "coiffure-96-02a-2");
    }
}
