//! Writing one parsed batch: entities merged set-based, error rows and the
//! job's progress and checkpoint in the same transaction, so a batch is
//! either wholly done (and never redone) or not done at all.

use crate::pipeline::RunContext;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use foxflow_domain::records::{EntrepriseRecord, Record, RowError};
use foxflow_storage::StorageError;
use foxflow_storage::entities::{self, EntrepriseRow, MergeCounts};
use foxflow_storage::jobs::{self, NewImportError, Progress};
use std::collections::HashMap;
use std::hash::Hash;

/// A row that failed parsing or validation, with the original cells.
#[derive(Debug)]
pub struct ErrorRow {
    pub line: u64,
    pub errors: Vec<RowError>,
    pub raw: serde_json::Value,
}

/// Consecutive data rows of one file, parsed.
#[derive(Debug, Default)]
pub struct Batch {
    /// The last data row in the batch: the checkpoint once it commits.
    pub last_line: u64,
    pub records: Vec<(u64, Record)>,
    pub errors: Vec<ErrorRow>,
    /// Well-formed rows that are not for this import type (term exports).
    pub skipped: i64,
    pub normalized: i64,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.records.len() + self.errors.len() + self.skipped as usize
    }
}

#[derive(Debug, thiserror::Error)]
enum TxError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Not a failure: unwinds a dry run's writes, carrying what they counted.
    #[error("dry run")]
    DryRun(MergeCounts),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Storage(e.into())
    }
}

/// Commits one batch; returns what it counted.
pub async fn commit_batch(
    conn: &mut AsyncPgConnection,
    ctx: &RunContext,
    batch: Batch,
) -> Result<Progress, StorageError> {
    let error_rows = to_error_rows(ctx, &batch.errors);
    let valid = batch.records.len() as i64;
    let base = Progress {
        processed: batch.len() as i64,
        errors: batch.errors.len() as i64,
        unchanged: batch.skipped,
        normalized: batch.normalized,
        ..Progress::default()
    };
    let records = batch.records;
    let result = conn
        .transaction::<_, TxError, _>(async |conn| {
            let counts = if ctx.dry_run {
                // Same statements, inside a savepoint that is rolled back.
                match conn
                    .transaction::<MergeCounts, TxError, _>(async |c| {
                        Err(TxError::DryRun(merge(c, &records).await?))
                    })
                    .await
                {
                    Err(TxError::DryRun(counts)) => counts,
                    Err(e) => return Err(e),
                    Ok(counts) => counts,
                }
            } else {
                merge(conn, &records).await?
            };
            let progress = Progress {
                created: counts.created,
                updated: counts.updated,
                unchanged: base.unchanged + valid - counts.created - counts.updated,
                ..base
            };
            jobs::record_progress(
                conn,
                ctx.job_id,
                &ctx.worker_id,
                ctx.lease,
                progress,
                batch.last_line as i64,
                &error_rows,
            )
            .await?;
            Ok(progress)
        })
        .await;
    match result {
        Ok(p) => Ok(p),
        Err(TxError::Storage(e)) => Err(e),
        Err(TxError::DryRun(_)) => unreachable!("the dry-run savepoint is handled inside the transaction"),
    }
}

/// Merges the batch's records. Rows repeating a key already in the batch go
/// to a later round, so each row's outcome is what it did to the stored data
/// when applied in file order (a repeated identical row is `unchanged`).
async fn merge(conn: &mut AsyncPgConnection, records: &[(u64, Record)]) -> Result<MergeCounts, StorageError> {
    let entreprises: Vec<&EntrepriseRecord> = records
        .iter()
        .filter_map(|(_, r)| match r {
            Record::Entreprise(e) => Some(e),
            _ => None,
        })
        .collect();
    let mut total = MergeCounts::default();
    for round in rounds(&entreprises, |e| e.siren.as_str().to_owned()) {
        let rows: Vec<EntrepriseRow> = round.into_iter().map(entreprise_row).collect();
        let c = entities::merge_entreprises(conn, &rows).await?;
        total.created += c.created;
        total.updated += c.updated;
    }
    Ok(total)
}

/// Splits items into rounds where each key appears at most once, keeping
/// file order within and across rounds.
fn rounds<T: Copy, K: Eq + Hash>(items: &[T], key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
    let mut seen: HashMap<K, usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<Vec<T>> = Vec::new();
    for item in items {
        let n = seen.entry(key(item)).or_insert(0);
        if out.len() <= *n {
            out.push(Vec::new());
        }
        out[*n].push(*item);
        *n += 1;
    }
    out
}

fn entreprise_row(e: &EntrepriseRecord) -> EntrepriseRow {
    EntrepriseRow {
        siren: e.siren.as_str().to_owned(),
        siret: e.siret.as_ref().map(|s| s.as_str().to_owned()),
        nom: e.nom.clone(),
        nom_commercial: e.nom_commercial.clone(),
        adresse: e.adresse.clone(),
        code_postal: e.code_postal.as_ref().map(|c| c.as_str().to_owned()),
        ville_nom: e.ville_nom.clone(),
        naf_code: e.naf_code.as_ref().map(|c| c.as_str().to_owned()),
        naf_libelle: e.naf_libelle.clone(),
        telephone: e.telephone.as_ref().map(|p| p.as_str().to_owned()),
        email_contact: e.email_contact.as_ref().map(|m| m.as_str().to_owned()),
        site_web: e.site_web.as_ref().map(|u| u.as_str().to_owned()),
        is_active: e.is_active,
    }
}

/// One stored error per problem, each carrying its row's original cells.
fn to_error_rows(ctx: &RunContext, rows: &[ErrorRow]) -> Vec<NewImportError> {
    rows.iter()
        .flat_map(|row| {
            row.errors.iter().map(move |e| NewImportError {
                job_id: ctx.job_id,
                row: row.line as i64,
                column: e.column.clone(),
                value: e.value.clone(),
                code: e.code.to_owned(),
                message: e.message.clone(),
                raw: Some(row.raw.clone()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::rounds;

    #[test]
    fn rounds_keep_order_and_unique_keys() {
        let items = [("a", 1), ("b", 2), ("a", 3), ("a", 4), ("c", 5)];
        let r = rounds(&items, |x| x.0);
        assert_eq!(
            r,
            vec![vec![("a", 1), ("b", 2), ("c", 5)], vec![("a", 3)], vec![("a", 4)]]
        );
    }
}
