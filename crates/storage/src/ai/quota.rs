//! The per-user cap on unfinished AI tasks (`AI_MAX_PENDING_TASKS_PER_USER`).

use super::batches::{CreatedBatch, NewBatch, create_batch};
use crate::{Result, StorageError};
use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// A batch the quota had no room for: the user's unfinished tasks now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota {
    pub pending: u64,
}

/// Creates the batch if its tasks fit in what `quota` leaves the batch's
/// owner, checked and written under one per-user lock: two requests at once
/// cannot both fit in the room that was left for one. A batch without owner
/// is not counted against anyone.
pub async fn create_batch_within_quota(
    conn: &mut AsyncPgConnection,
    new: &NewBatch,
    target_ids: &[i64],
    quota: u64,
) -> Result<std::result::Result<CreatedBatch, OverQuota>> {
    let asked = (target_ids.len() as u64).saturating_mul(new.kinds.len() as u64);
    conn.transaction::<_, StorageError, _>(async |conn| {
        if let Some(owner) = new.owner_id {
            let pending = lock_and_count_unfinished(conn, owner).await?;
            if pending.saturating_add(asked) > quota {
                return Ok(Err(OverQuota { pending }));
            }
        }
        create_batch(conn, new, target_ids, None).await.map(Ok)
    })
    .await
}

/// Takes the user's AI-quota lock for the rest of the transaction (the
/// `_xact_` variant: safe behind a transaction-mode pooler) and counts their
/// tasks still `pending` or `processing`. Only batches not yet completed are
/// looked at; their tasks are found through `ai_tasks_batch_status_idx`.
async fn lock_and_count_unfinished(conn: &mut AsyncPgConnection, user: Uuid) -> Result<u64> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('ai-quota:' || $1::text, 0))")
        .bind::<SqlUuid, _>(user)
        .execute(conn)
        .await?;
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n
           FROM ai_batches b
           JOIN ai_tasks t ON t.batch_id = b.id AND t.status IN ('pending', 'processing')
          WHERE b.owner_id = $1 AND b.completed_at IS NULL",
    )
    .bind::<SqlUuid, _>(user)
    .get_result(conn)
    .await?;
    Ok(u64::try_from(count.n).unwrap_or(0))
}
