//! `foxctl cleanup` and `foxctl fix-sous-categorie-names` (docs/spec.md §9, §13).

use foxflow_config::Config;
use foxflow_storage::maintenance::{self, Retention};

/// Runs the retention cleanup once (the same one the import workers run on
/// `CLEANUP_SCHEDULE`; the advisory lock keeps two from overlapping).
pub async fn cleanup(config: &Config, dry_run: bool) -> anyhow::Result<()> {
    let pool = crate::db_pool(config)?;
    let mut conn = foxflow_storage::pool::conn(&pool).await?;
    let retention = Retention {
        logs: config.import_log_retention,
        files: config.import_file_retention,
    };
    let r = maintenance::cleanup(&mut conn, retention, dry_run).await?;
    if !r.ran {
        eprintln!("another cleanup is running (advisory lock held); nothing done");
        return Ok(());
    }
    let verb = if dry_run { "would be " } else { "" };
    eprintln!(
        "retention: jobs and logs {}, file contents {}{}",
        humantime::format_duration(retention.logs),
        humantime::format_duration(retention.files),
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    println!("import jobs {verb}deleted      {:>10}", r.jobs_deleted);
    println!("error rows {verb}deleted       {:>10}", r.errors_deleted);
    println!(
        "file contents {verb}purged     {:>10}  ({})",
        r.files_purged,
        bytes(r.bytes_purged)
    );
    println!(
        "orphan files {verb}deleted     {:>10}  ({})",
        r.orphan_files_deleted,
        bytes(r.orphan_bytes_deleted)
    );
    println!(
        "webhook deliveries {verb}deleted {:>8}",
        r.webhook_deliveries_deleted
    );
    println!("sent outbox rows {verb}deleted {:>9}", r.outbox_rows_deleted);
    Ok(())
}

/// Renames placeholder sous-catégories from the NAF labels; with `dry_run`,
/// prints what would change and writes nothing.
pub async fn fix_sous_categorie_names(config: &Config, dry_run: bool) -> anyhow::Result<()> {
    let pool = crate::db_pool(config)?;
    let mut conn = foxflow_storage::pool::conn(&pool).await?;
    let started = std::time::Instant::now();
    let fixes = maintenance::fix_sous_categorie_names(&mut conn, dry_run).await?;
    if dry_run {
        for f in &fixes {
            println!(
                "{}\t{} → {}\t{} → {}\t{}",
                f.id, f.old_nom, f.nom, f.old_slug, f.slug, f.description
            );
        }
        eprintln!(
            "{} sous-catégorie(s) would be renamed (dry run: nothing changed)",
            fixes.len()
        );
    } else {
        eprintln!(
            "renamed {} sous-catégorie(s) in {} ms",
            fixes.len(),
            started.elapsed().as_millis()
        );
    }
    Ok(())
}

fn bytes(n: i64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
