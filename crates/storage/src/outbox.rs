//! The transactional outbox: a message is a row written in the same
//! transaction as the state it announces, and a relay publishes it later.

use crate::Result;
use crate::schema::outbox;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
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
/// relay holds. Call inside a transaction that marks them sent after the
/// broker confirmed them.
pub async fn lock_unsent(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<OutboxRow>> {
    Ok(outbox::table
        .filter(outbox::sent_at.is_null())
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
