//! The transactional outbox: a message is a row written in the same
//! transaction as the state it announces, and a relay publishes it later.
//!
//! A row is in one of three states: unsent (`sent_at` and `failed_at` null,
//! the relay's work, index `outbox_unsent_idx`), sent (`sent_at`, deleted by
//! the cleanup an hour later, index `outbox_sent_at_idx`), or set aside
//! (`failed_at`, with `last_error`: the broker refused it; an operator
//! requeues it once the cause is fixed).

use crate::Result;
use crate::schema::outbox;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use foxflow_domain::messages::Message;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub routing_key: String,
    pub message_id: Uuid,
    pub payload: serde_json::Value,
    pub traceparent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
}

/// Queues a message; call it inside the transaction that writes its state.
pub async fn enqueue(conn: &mut AsyncPgConnection, msg: &Message, traceparent: Option<&str>) -> Result<Uuid> {
    let message_id = Uuid::now_v7();
    let payload = serde_json::to_value(msg).expect("messages always serialise");
    diesel::insert_into(outbox::table)
        .values((
            outbox::routing_key.eq(msg.routing_key()),
            outbox::message_id.eq(message_id),
            outbox::payload.eq(payload),
            outbox::traceparent.eq(traceparent),
        ))
        .execute(conn)
        .await?;
    Ok(message_id)
}

/// Locks up to `limit` unsent rows, oldest first, skipping rows another
/// relay holds and rows set aside. Call inside a transaction that marks them
/// sent after the broker confirmed them.
pub async fn lock_unsent(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<OutboxRow>> {
    Ok(outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::failed_at.is_null())
        .order(outbox::id.asc())
        .limit(limit)
        .for_update()
        .skip_locked()
        .select(OutboxRow::as_select())
        .load(conn)
        .await?)
}

pub async fn mark_sent(conn: &mut AsyncPgConnection, ids: &[i64]) -> Result<()> {
    diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
        .set((
            outbox::sent_at.eq(diesel::dsl::now),
            outbox::attempts.eq(outbox::attempts + 1),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes an unsent row out of the relay's way, with the reason an operator
/// reads in `foxctl outbox list`. Call in the transaction that locked it.
pub async fn set_aside(conn: &mut AsyncPgConnection, id: i64, reason: &str) -> Result<()> {
    diesel::update(
        outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::sent_at.is_null()),
    )
    .set((
        outbox::failed_at.eq(diesel::dsl::now),
        outbox::last_error.eq(reason),
        outbox::attempts.eq(outbox::attempts + 1),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// A row set aside, as `foxctl outbox list` shows it.
#[derive(Debug, Clone, PartialEq, Queryable, serde::Serialize)]
pub struct FailedRow {
    pub id: i64,
    pub routing_key: String,
    pub message_id: Uuid,
    pub failed_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// Publications tried, the ones before a requeue included.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

/// The rows set aside, oldest first.
pub async fn list_failed(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<FailedRow>> {
    Ok(outbox::table
        .filter(outbox::failed_at.is_not_null())
        .order(outbox::id.asc())
        .limit(limit)
        .select((
            outbox::id,
            outbox::routing_key,
            outbox::message_id,
            outbox::failed_at.assume_not_null(),
            outbox::last_error,
            outbox::attempts,
            outbox::created_at,
            outbox::payload,
        ))
        .load(conn)
        .await?)
}

/// Which set-aside rows [`requeue_failed`] hands back to the relay.
#[derive(Debug, Clone, Copy)]
pub enum Requeue<'a> {
    All,
    Ids(&'a [i64]),
}

/// Hands set-aside rows back to the relay (after the cause was fixed, e.g.
/// the missing queue declared); returns how many. A row still refused is set
/// aside again. `last_error` stays until then, as the row's history.
pub async fn requeue_failed(conn: &mut AsyncPgConnection, which: Requeue<'_>) -> Result<usize> {
    let failed = outbox::table.filter(outbox::failed_at.is_not_null());
    let n = match which {
        Requeue::All => {
            diesel::update(failed)
                .set(outbox::failed_at.eq(None::<DateTime<Utc>>))
                .execute(conn)
                .await?
        }
        Requeue::Ids(ids) => {
            diesel::update(failed.filter(outbox::id.eq_any(ids)))
                .set(outbox::failed_at.eq(None::<DateTime<Utc>>))
                .execute(conn)
                .await?
        }
    };
    Ok(n)
}

/// The outbox's backlog, for the relay's gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Waiting for the relay.
    pub unsent: i64,
    /// Set aside, waiting for an operator.
    pub failed: i64,
}

/// Counts unsent rows (through `outbox_unsent_idx`, whatever the number of
/// sent rows) and set-aside ones.
pub async fn counts(conn: &mut AsyncPgConnection) -> Result<Counts> {
    let unsent = outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::failed_at.is_null())
        .count()
        .get_result(conn)
        .await?;
    // No index serves this one yet: it reads the table, which the cleanup
    // keeps to the last hour of sent rows (plus what arrived since its last
    // run). A partial index `(id) WHERE failed_at IS NOT NULL` would make it
    // as cheap as the other; this predicate is written to match it.
    let failed = outbox::table
        .filter(outbox::failed_at.is_not_null())
        .count()
        .get_result(conn)
        .await?;
    Ok(Counts { unsent, failed })
}

/// Rows per `DELETE` in [`delete_sent_before`]: each batch is its own short
/// transaction, so an AI batch's 200,000 sent rows never make one long one.
const DELETE_BATCH: i64 = 10_000;

/// Deletes rows sent before `cutoff`, [`DELETE_BATCH`] at a time; returns
/// how many. Call it outside a transaction, so that each batch commits (and
/// releases its locks) on its own; rows another deleter holds are skipped.
pub async fn delete_sent_before(conn: &mut AsyncPgConnection, cutoff: DateTime<Utc>) -> Result<i64> {
    // `sent_at IS NOT NULL` spells out the predicate of `outbox_sent_at_idx`.
    let sql = "DELETE FROM outbox WHERE id IN (
                   SELECT id FROM outbox
                   WHERE sent_at IS NOT NULL AND sent_at < $1
                   LIMIT $2
                   FOR UPDATE SKIP LOCKED)";
    let mut total = 0;
    loop {
        let n = diesel::sql_query(sql)
            .bind::<Timestamptz, _>(cutoff)
            .bind::<BigInt, _>(DELETE_BATCH)
            .execute(conn)
            .await? as i64;
        total += n;
        if n < DELETE_BATCH {
            return Ok(total);
        }
    }
}

/// How many rows [`delete_sent_before`] would delete.
pub async fn count_sent_before(conn: &mut AsyncPgConnection, cutoff: DateTime<Utc>) -> Result<i64> {
    Ok(outbox::table
        .filter(outbox::sent_at.is_not_null())
        .filter(outbox::sent_at.lt(cutoff))
        .count()
        .get_result(conn)
        .await?)
}
