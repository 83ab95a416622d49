//! Writing one parsed batch. An import commits the batch's entities, its
//! error rows and the job's progress and checkpoint in one transaction, so a
//! batch is either wholly done (and never redone) or not done at all. A dry
//! run writes the same entities inside the run's one transaction, which is
//! rolled back at the end, and commits only its counts. Each batch's commit
//! also says whether the job was cancelled meanwhile: the run stops there.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use foxflow_domain::records::{
    CategorieRecord, EntrepriseRecord, Record, RowError, SousCategorieRecord, VilleRecord,
    chosen_establishments,
};
use foxflow_domain::text;
use foxflow_domain::values::Slug;
use foxflow_storage::StorageError;
use foxflow_storage::entities::{
    self, CategorieRow, EntrepriseRow, MergeCounts, Merged, ParentCache, SousCategorieRow, VilleRow,
};
use foxflow_storage::jobs::{self, AfterCommit, NewImportError, Progress, Severity};
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;
use uuid::Uuid;

/// What writing a batch needs to know about its run: whose job it is, under
/// which lease, and what the upload asked for.
#[derive(Debug, Clone, Copy)]
pub struct BatchScope<'a> {
    pub job_id: Uuid,
    /// This claim's lease token; a batch commits only while the lease is ours.
    pub lease_token: &'a str,
    /// Renewed with every commit.
    pub lease: Duration,
    /// Records what was touched, for the AI hand-over at the end of the job.
    pub generate_ai: bool,
}

/// A row with errors (it failed parsing or validation) or with warnings (it
/// was imported after a lossy normalisation), with the original cells.
#[derive(Debug)]
pub struct ErrorRow {
    pub line: u64,
    pub errors: Vec<RowError>,
    pub raw: serde_json::Value,
}

/// Consecutive data rows of one file, parsed.
#[derive(Debug, Default)]
pub struct Batch {
    /// The position of the batch's last row in processing order (the file's
    /// row number, except in a term export, whose parents go first: see
    /// `pipeline::Pass`): the checkpoint once it commits.
    pub last_line: u64,
    pub records: Vec<(u64, Record)>,
    pub errors: Vec<ErrorRow>,
    /// Rows imported with warnings, as far as they are stored (the first
    /// `pipeline::MAX_STORED_WARNING_ROWS` of a job).
    pub warnings: Vec<ErrorRow>,
    /// Rows with warnings, stored or not.
    pub warning_rows: i64,
    /// Well-formed rows that are not for this import type (term exports).
    pub skipped: i64,
    pub normalized: i64,
    /// Rows an earlier attempt of this dry run counted: written again so
    /// that the rows after them see what they wrote, and counted no more.
    pub replay: bool,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.records.len() + self.errors.len() + self.skipped as usize
    }
}

/// What writing one batch did.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    /// What it counted (nothing for a replay).
    pub progress: Option<Progress>,
    /// A cancel was requested: the run ends after this batch.
    pub cancel: bool,
}

/// Where a run's batches are written.
pub enum Writer<'c> {
    /// An import: each batch commits with its progress and checkpoint.
    Import(&'c mut AsyncPgConnection),
    /// A dry run: `run` is inside the run's one transaction, which the
    /// caller rolls back at the end; `job` commits the counts and error rows
    /// as they come, so the job shows its progress.
    DryRun {
        run: &'c mut AsyncPgConnection,
        job: &'c mut AsyncPgConnection,
    },
}

impl Writer<'_> {
    /// The connection that writes the job row. Never a dry run's `run`: its
    /// transaction would hold the row's lock until the end, and the lease's
    /// heartbeat and `job` itself would wait for it.
    pub fn job(&mut self) -> &mut AsyncPgConnection {
        match self {
            Writer::Import(conn) => conn,
            Writer::DryRun { job, .. } => job,
        }
    }

    /// Writes one batch; returns what it counted and whether to stop.
    pub async fn write(
        &mut self,
        scope: BatchScope<'_>,
        parents: &mut ParentCache,
        batch: Batch,
    ) -> Result<Written, StorageError> {
        let recorded = match self {
            Writer::Import(conn) => Some(commit_batch(conn, scope, parents, batch).await?),
            Writer::DryRun { run, job } => dry_run_batch(run, job, scope, parents, batch).await?,
        };
        Ok(Written {
            progress: recorded.map(|(p, _)| p),
            cancel: matches!(recorded, Some((_, AfterCommit::Cancel))),
        })
    }
}

/// Commits one batch of an import; returns what it counted and what the
/// commit learned about the job.
async fn commit_batch(
    conn: &mut AsyncPgConnection,
    scope: BatchScope<'_>,
    parents: &mut ParentCache,
    batch: Batch,
) -> Result<(Progress, AfterCommit), StorageError> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        // What the batch changes is kept with it, for a revert.
        jobs::capture_for(conn, scope.job_id).await?;
        let merged = merge(conn, &batch.records, parents, scope.generate_ai).await?;
        if scope.generate_ai && !merged.touched.is_empty() {
            jobs::record_touched(conn, scope.job_id, &merged.touched).await?;
        }
        record(conn, scope, batch, merged).await
    })
    .await
}

/// Writes one batch of a dry run with `run`, inside the run's transaction,
/// and commits its counts and error rows at once with `job`; returns what it
/// counted. A replayed batch is written and not counted (nor read for a
/// cancel: the next counted batch is).
async fn dry_run_batch(
    run: &mut AsyncPgConnection,
    job: &mut AsyncPgConnection,
    scope: BatchScope<'_>,
    parents: &mut ParentCache,
    batch: Batch,
) -> Result<Option<(Progress, AfterCommit)>, StorageError> {
    let merged = merge(run, &batch.records, parents, false).await?;
    if batch.replay {
        return Ok(None);
    }
    // The preview: the first changes, copied out of the run's transaction
    // (which captures them, `pipeline::dry_run`) before it is rolled back.
    jobs::keep_preview(run, job, scope.job_id).await?;
    job.transaction::<_, StorageError, _>(async |job| record(job, scope, batch, merged).await)
        .await
        .map(Some)
}

/// Adds a batch's counts and error rows to the job and moves its checkpoint
/// past the batch; reads whether the job was cancelled meanwhile.
async fn record(
    conn: &mut AsyncPgConnection,
    scope: BatchScope<'_>,
    batch: Batch,
    merged: BatchMerge,
) -> Result<(Progress, AfterCommit), StorageError> {
    let processed = batch.len() as i64;
    let mut errors = batch.errors;
    errors.extend(merged.late_errors);
    let error_count = errors.len() as i64;
    let progress = Progress {
        processed,
        created: merged.counts.created,
        updated: merged.counts.updated,
        unchanged: processed - error_count - merged.counts.created - merged.counts.updated,
        errors: error_count,
        warnings: batch.warning_rows,
        normalized: batch.normalized,
    };
    let mut stored = to_error_rows(scope.job_id, Severity::Error, &errors);
    stored.extend(to_error_rows(scope.job_id, Severity::Warning, &batch.warnings));
    let next = jobs::record_progress(
        conn,
        scope.job_id,
        scope.lease_token,
        scope.lease,
        progress,
        batch.last_line as i64,
        &stored,
    )
    .await?;
    Ok((progress, next))
}

/// What one batch's merge did.
#[derive(Debug, Default)]
struct BatchMerge {
    counts: MergeCounts,
    /// (target type, id) of what was created or updated, for the AI hand-over.
    touched: Vec<(&'static str, i64)>,
    /// Rows that parsed but cannot be written (a sous-catégorie whose
    /// catégorie does not exist).
    late_errors: Vec<ErrorRow>,
}

impl BatchMerge {
    fn add(&mut self, target: &'static str, merged: &Merged) {
        let c = merged.counts();
        self.counts.created += c.created;
        self.counts.updated += c.updated;
        self.touched.extend(merged.touched().map(|id| (target, id)));
    }
}

/// Merges the batch's records, catégories before sous-catégories so a term
/// export's children find the parents it just created. Rows repeating a key
/// already in the batch go to a later round, so each row's outcome is what
/// it did to the stored data when applied in file order (a repeated
/// identical row is `unchanged`).
/// `pages` asks for the pages of the entreprises written (the AI hand-over);
/// without it they are not looked up.
async fn merge(
    conn: &mut AsyncPgConnection,
    records: &[(u64, Record)],
    parents: &mut ParentCache,
    pages: bool,
) -> Result<BatchMerge, StorageError> {
    let mut out = BatchMerge::default();

    let categories: Vec<(u64, &CategorieRecord)> = pick(records, |r| match r {
        Record::Categorie(c) => Some(c),
        _ => None,
    });
    for round in rounds(&categories, |(_, c)| c.nom.clone()) {
        let rows: Vec<CategorieRow> = round
            .iter()
            .map(|(line, c)| CategorieRow {
                ord: *line as i64,
                nom: c.nom.clone(),
                slug: c.slug.as_ref().map(|s| s.as_str().to_owned()),
                derived_slug: c.derived_slug.as_str().to_owned(),
                description: c.description.clone(),
                meta_description: c.meta_description.clone(),
                ordre: c.ordre,
            })
            .collect();
        out.add("categorie", &entities::merge_categories(conn, &rows).await?);
        parents.forget_missing(rows.iter().map(|r| r.nom.as_str()));
    }

    let sous: Vec<(u64, &SousCategorieRecord)> = pick(records, |r| match r {
        Record::SousCategorie(c) => Some(c),
        _ => None,
    });
    if !sous.is_empty() {
        let names: Vec<&str> = sous.iter().map(|(_, s)| s.categorie.as_str()).collect();
        parents.resolve(conn, &names).await?;
        let mut known = Vec::with_capacity(sous.len());
        for (line, s) in sous {
            match parents.get(&s.categorie) {
                Some(id) => known.push((line, id, s)),
                None => out.late_errors.push(ErrorRow {
                    line,
                    errors: vec![RowError {
                        column: Some("categorie".into()),
                        value: Some(s.categorie.clone()),
                        code: "unknown_categorie",
                        message: text!(
                            "aucune catégorie ne s’appelle `{name}` : importez-la d’abord (import `categories`), \
                             ou ajoutez-la à ce fichier",
                            "no catégorie is named `{name}`: import it first (as `categories`), or add it to this file",
                            name = s.categorie
                        ),
                    }],
                    raw: serde_json::json!({"nom": s.nom, "categorie": s.categorie}),
                }),
            }
        }
        for round in rounds(&known, |(_, id, s)| (*id, s.nom.clone())) {
            let rows: Vec<SousCategorieRow> = round
                .iter()
                .map(|(line, categorie_id, s)| SousCategorieRow {
                    ord: *line as i64,
                    categorie_id: *categorie_id,
                    nom: s.nom.clone(),
                    slug: s.slug.as_ref().map(|x| x.as_str().to_owned()),
                    derived_slug: s.derived_slug.as_str().to_owned(),
                    description: s.description.clone(),
                    meta_description: s.meta_description.clone(),
                    mots_cles: s.mots_cles.clone(),
                    ordre: s.ordre,
                    naf_codes: s.naf_codes.iter().map(|c| c.as_str().to_owned()).collect(),
                })
                .collect();
            out.add(
                "sous_categorie",
                &entities::merge_sous_categories(conn, &rows).await?,
            );
        }
    }

    let villes: Vec<(u64, &VilleRecord)> = pick(records, |r| match r {
        Record::Ville(v) => Some(v),
        _ => None,
    });
    for round in rounds(&villes, |(_, v)| {
        (v.nom.clone(), v.code_postal.as_str().to_owned())
    }) {
        let rows: Vec<VilleRow> = round
            .iter()
            .map(|(line, v)| VilleRow {
                ord: *line as i64,
                nom: v.nom.clone(),
                code_postal: v.code_postal.as_str().to_owned(),
                slug: v.slug.as_str().to_owned(),
                departement: v.departement.clone(),
                departement_from_file: !v.departement_derived,
                region: v.region.clone(),
                lat: v.lat,
                lng: v.lng,
                population: v.population,
            })
            .collect();
        out.add("ville", &entities::merge_villes(conn, &rows).await?);
    }

    // A Sirene file's establishments of one SIREN: only the best one is
    // written (the others count as unchanged), so the entreprise holds the
    // siège's SIRET and address, not a mix of its establishments'.
    let entreprises: Vec<(u64, &EntrepriseRecord)> = chosen_establishments(pick(records, |r| match r {
        Record::Entreprise(e) => Some(e),
        _ => None,
    }));
    for round in rounds(&entreprises, |(_, e)| e.siren.as_str().to_owned()) {
        let rows: Vec<EntrepriseRow> = round.iter().map(|(_, e)| entreprise_row(e)).collect();
        let merged = entities::merge_entreprises(conn, &rows).await?;
        let c = merged.counts();
        out.counts.created += c.created;
        out.counts.updated += c.updated;
        let new_pages = entities::link_pages(conn, &rows).await?;
        if !pages {
            continue;
        }
        // The pages of what changed, and pages that appeared only now.
        let touched: Vec<i64> = merged.touched().collect();
        let mut pages = if touched.is_empty() {
            Vec::new()
        } else {
            entities::pages_of(conn, &touched).await?
        };
        pages.extend(new_pages);
        pages.sort_unstable();
        pages.dedup();
        out.touched
            .extend(pages.into_iter().map(|id| ("prolocalisation", id)));
    }
    Ok(out)
}

fn pick<'a, T>(records: &'a [(u64, Record)], f: impl Fn(&'a Record) -> Option<&'a T>) -> Vec<(u64, &'a T)> {
    records
        .iter()
        .filter_map(|(line, r)| f(r).map(|x| (*line, x)))
        .collect()
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
        ville_slug: e
            .ville_nom
            .as_deref()
            .and_then(|n| Slug::from_name(n).ok())
            .map(|s| s.value.as_str().to_owned()),
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

/// One stored line per problem, each carrying its row's original cells.
fn to_error_rows(job_id: Uuid, severity: Severity, rows: &[ErrorRow]) -> Vec<NewImportError> {
    // The original row goes with the row's first error only: one copy per
    // row, not one per error.
    rows.iter()
        .flat_map(|row| {
            row.errors.iter().enumerate().map(move |(i, e)| NewImportError {
                job_id,
                row: row.line as i64,
                column: e.column.clone(),
                value: e.value.clone(),
                code: e.code.to_owned(),
                message: e.message.fr.clone(),
                message_en: Some(e.message.en.clone()),
                raw: (i == 0).then(|| row.raw.clone()),
                severity: severity.as_str(),
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
