//! Applying a finished dry run: the real import of the same stored file.

use super::{ImportJob, NewJob, create_job};
use crate::schema::import_jobs;
use crate::{Result, StorageError};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use foxflow_domain::{ImportOptions, JobStatus, Text, text};
use uuid::Uuid;

/// Queues the real import of dry run `dry_run_id`'s file for `owner`, with
/// the dry run's options but `dry_run` off: no upload again, the very bytes
/// the preview read. `Conflict` (with the reason) when the job is not a dry
/// run, has not ended, ended without a result to apply (`error`,
/// `cancelled`), or its file was purged. Applying the same dry run again as
/// the same user answers the import it already queued (an idempotency key
/// `apply:<dry run id>`), so a double click queues one import.
pub async fn apply_dry_run(
    conn: &mut AsyncPgConnection,
    dry_run_id: Uuid,
    owner: Option<Uuid>,
    traceparent: Option<String>,
) -> Result<(ImportJob, bool)> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        let job: ImportJob = import_jobs::table
            .find(dry_run_id)
            .for_update()
            .select(ImportJob::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or(StorageError::NotFound)?;
        let refuse = |why: Text| Err(StorageError::Conflict(why));
        if !job.dry_run {
            return refuse(text!(
                "cet import n’est pas une simulation : il n’y a rien à appliquer",
                "this import is not a dry run: there is nothing to apply"
            ));
        }
        match job.status {
            JobStatus::Success | JobStatus::Partial => {}
            JobStatus::Pending | JobStatus::Processing => {
                return refuse(text!(
                    "cette simulation n’est pas terminée : appliquez-la une fois finie",
                    "this dry run has not finished: apply it once it has"
                ));
            }
            JobStatus::Error | JobStatus::Cancelled => {
                return refuse(text!(
                    "cette simulation n’a pas terminé son aperçu (erreur ou annulée) : téléversez le fichier à nouveau",
                    "this dry run did not finish its preview (error or cancelled): upload the file again"
                ));
            }
        }
        let Some(file_id) = job.file_id.filter(|_| job.file_purged_at.is_none()) else {
            return refuse(text!(
                "le fichier de cette simulation a été purgé (durée de conservation) : téléversez-le à nouveau",
                "this dry run's file was purged by the retention policy: upload it again"
            ));
        };
        create_job(
            conn,
            NewJob {
                import_type: job.import_type,
                file_id,
                file_name: job.file_name.clone(),
                file_size: job.file_size,
                file_sha256: job.file_sha256.clone(),
                options: ImportOptions {
                    dry_run: false,
                    generate_ai: job.generate_ai,
                },
                owner_id: owner,
                idempotency_key: Some(format!("apply:{dry_run_id}")),
            },
            traceparent,
        )
        .await
    })
    .await
}
