//! Webhooks: the registered hooks, and one delivery row per (event, hook).
//!
//! Deliveries are written by [`enqueue`] inside the transaction that makes an
//! import job or an AI batch final, so an event is announced if and only if
//! it happened; the delivery loop (`foxflow-webhooks`) claims due rows with
//! `FOR UPDATE SKIP LOCKED` under a short lease and records every attempt.
//! What an event says is its caller's business (`jobs` and `ai` build their
//! payloads): this module only fans it out and delivers it.

use crate::schema::{webhook_deliveries, webhooks};
use crate::sql_text::text_enum;
use crate::{Result, StorageError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use foxflow_domain::webhooks::{WebhookEvent, WebhookUrl};
use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// A hook as listed; its secret is never part of it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = webhooks)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub owner_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A new random signing secret: 32 bytes, shown as `whsec_` + hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    url: &WebhookUrl,
    events: &[WebhookEvent],
    secret: &str,
    owner_id: Option<Uuid>,
) -> Result<Webhook> {
    let mut names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    Ok(diesel::insert_into(webhooks::table)
        .values((
            webhooks::id.eq(Uuid::now_v7()),
            webhooks::url.eq(url.as_str()),
            webhooks::events.eq(names),
            webhooks::secret.eq(secret),
            webhooks::owner_id.eq(owner_id),
        ))
        .returning(Webhook::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn list(conn: &mut AsyncPgConnection) -> Result<Vec<Webhook>> {
    Ok(webhooks::table
        .order(webhooks::created_at.asc())
        .select(Webhook::as_select())
        .load(conn)
        .await?)
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Webhook>> {
    Ok(webhooks::table
        .find(id)
        .select(Webhook::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Deletes a hook and its delivery history; `NotFound` when there is none.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<()> {
    let n = diesel::delete(webhooks::table.find(id)).execute(conn).await?;
    if n == 0 {
        return Err(StorageError::NotFound);
    }
    Ok(())
}

/// Where a delivery stands (`webhook_deliveries.status`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = Text)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Owed to the receiver: due at `next_attempt_at`.
    Pending,
    Delivered,
    /// Every attempt was spent.
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

text_enum!(DeliveryStatus, "webhook delivery status");

/// One delivery as operators see it (the payload included: it is what the
/// receiver got).
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = webhook_deliveries)]
pub struct Delivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    pub payload: Value,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One page of a hook's deliveries, newest first, and their total.
pub async fn deliveries(
    conn: &mut AsyncPgConnection,
    webhook_id: Uuid,
    page: i64,
    per_page: i64,
) -> Result<(Vec<Delivery>, i64)> {
    let total: i64 = webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .count()
        .get_result(conn)
        .await?;
    let items = webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .order((
            webhook_deliveries::created_at.desc(),
            webhook_deliveries::id.desc(),
        ))
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(Delivery::as_select())
        .load(conn)
        .await?;
    Ok((items, total))
}

// ---------------------------------------------------------------------------
// Fan-out: called inside the transactions that end jobs and batches
// ---------------------------------------------------------------------------

/// Queues `data` for every hook subscribed to `event`, in one statement
/// whatever the number of hooks. Call it inside the transaction that made
/// the event happen. Returns how many deliveries were queued.
pub async fn enqueue(conn: &mut AsyncPgConnection, event: WebhookEvent, data: Value) -> Result<usize> {
    let payload = json!({
        "event": event.as_str(),
        "occurred_at": Utc::now(),
        "data": data,
    });
    Ok(diesel::sql_query(
        "INSERT INTO webhook_deliveries (webhook_id, event, payload)
         SELECT w.id, $1, $2 FROM webhooks w WHERE w.events @> ARRAY[$1]",
    )
    .bind::<Text, _>(event.as_str())
    .bind::<Jsonb, _>(payload)
    .execute(conn)
    .await?)
}

// ---------------------------------------------------------------------------
// Delivering
// ---------------------------------------------------------------------------

/// A delivery claimed for one attempt, with where and how to send it.
#[derive(Debug, Clone, QueryableByName)]
pub struct DueDelivery {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub webhook_id: Uuid,
    #[diesel(sql_type = Text)]
    pub event: String,
    #[diesel(sql_type = Jsonb)]
    pub payload: Value,
    /// Counting this one.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Text)]
    pub secret: String,
}

/// The claim of [`claim_due`]. `status = 'pending'` is spelled out, not
/// bound: the planner can then prove the predicate of the partial index
/// `webhook_deliveries_due_idx` (WHERE status = 'pending') and use it on
/// every execution of the prepared statement. A test keeps the spelling
/// that of [`DeliveryStatus::Pending`].
const CLAIM_DUE: &str = "UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1,
        next_attempt_at = clock_timestamp() + $2 * interval '1 millisecond'
   FROM webhooks w
  WHERE w.id = d.webhook_id
    AND d.id IN (SELECT id FROM webhook_deliveries
                  WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
                  ORDER BY next_attempt_at LIMIT $1
                  FOR UPDATE SKIP LOCKED)
 RETURNING d.id, d.webhook_id, d.event, d.payload, d.attempts, w.url, w.secret";

/// Claims up to `limit` due deliveries, oldest first, skipping rows another
/// sender holds: counts the attempt and pushes `next_attempt_at` past the
/// lease, in one short statement, so no transaction stays open while the
/// receiver answers. A sender that dies mid-attempt leaves the row to be
/// claimed again when the lease ends.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease: Duration,
) -> Result<Vec<DueDelivery>> {
    Ok(diesel::sql_query(CLAIM_DUE)
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
        .load(conn)
        .await?)
}

/// When the next due delivery is, if any (the loop sleeps until then).
pub async fn next_due(conn: &mut AsyncPgConnection) -> Result<Option<DateTime<Utc>>> {
    Ok(webhook_deliveries::table
        .filter(webhook_deliveries::status.eq(DeliveryStatus::Pending))
        .select(diesel::dsl::min(webhook_deliveries::next_attempt_at))
        .first(conn)
        .await?)
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum AttemptResult {
    /// The receiver answered 2xx.
    Delivered { status_code: u16 },
    /// Anything else; `retry_in` is `None` when the attempts are spent.
    Failed {
        status_code: Option<u16>,
        error: String,
        retry_in: Option<Duration>,
    },
}

pub async fn record_attempt(conn: &mut AsyncPgConnection, id: Uuid, result: &AttemptResult) -> Result<()> {
    match result {
        AttemptResult::Delivered { status_code } => {
            diesel::update(webhook_deliveries::table.find(id))
                .set((
                    webhook_deliveries::status.eq(DeliveryStatus::Delivered),
                    webhook_deliveries::last_status_code.eq(Some(i32::from(*status_code))),
                    webhook_deliveries::last_error.eq(None::<String>),
                    webhook_deliveries::delivered_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
        }
        AttemptResult::Failed {
            status_code,
            error,
            retry_in,
        } => {
            let (status, delay_ms) = match retry_in {
                Some(d) => (
                    DeliveryStatus::Pending,
                    i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
                ),
                None => (DeliveryStatus::Failed, 0),
            };
            diesel::sql_query(
                "UPDATE webhook_deliveries
                    SET status = $2, last_status_code = $3, last_error = $4,
                        next_attempt_at = clock_timestamp() + $5 * interval '1 millisecond'
                  WHERE id = $1",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(status)
            .bind::<Nullable<Integer>, _>(status_code.map(i32::from))
            .bind::<Text, _>(error)
            .bind::<BigInt, _>(delay_ms)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_statuses_round_trip() {
        for d in DeliveryStatus::ALL {
            assert_eq!(d.as_str().parse::<DeliveryStatus>(), Ok(d));
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
        assert!("sent".parse::<DeliveryStatus>().is_err());
    }

    #[test]
    fn the_claim_spells_pending_as_the_enum_does() {
        let pending = format!("status = '{}'", DeliveryStatus::Pending);
        assert!(CLAIM_DUE.contains(&pending), "{CLAIM_DUE}");
    }

    #[test]
    fn a_new_secret_is_32_random_bytes_in_hex() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("whsec_") && a.len() == 6 + 64, "{a}");
        assert!(a[6..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
