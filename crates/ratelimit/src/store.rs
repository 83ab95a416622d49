//! The shared state: one `rate_limits` row per key, read and advanced on
//! PostgreSQL's clock so replicas with drifting clocks still agree.
//!
//! `clock_timestamp()`, not `now()`: `now()` is frozen at the start of the
//! transaction, and is read once per statement (the `c` CTE) so every
//! comparison in it uses the same instant.
//!
//! Every statement is a constant, kept prepared on its connection (`prepared`): a
//! queue's gate runs one per delivery.

use diesel::OptionalExtension;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::RunQueryDsl;
use foxflow_storage::prepared::prepared;
use foxflow_storage::{DbPool, StorageError, pool};

/// The GCRA step (governor's, see docs/crates.md §6) as one statement. With
/// `t` = the database clock, `T` the emission interval and `τ` = T·(burst−1):
/// a unit is granted iff the key is not paused at `t` and `tat − τ ≤ t`,
/// and then `tat := max(tat, t) + T`. A missing row is inserted already
/// holding the first unit (`tat = t + T`).
///
/// `EXCLUDED.tat` is `t + T`, which is how the conflict arm reads `t`. A
/// refused arm returns no row from `taken`; the outer `SELECT` then reads
/// the row as the statement's snapshot saw it, to say how long to wait
/// (advisory: at worst slightly early, and the next poll corrects it).
const TAKE: &str = "
WITH c AS MATERIALIZED (SELECT clock_timestamp() AS t),
taken AS (
    INSERT INTO rate_limits AS r (key, tat)
    SELECT $1, c.t + $2::float8 * interval '1 microsecond' FROM c
    ON CONFLICT (key) DO UPDATE
       SET tat = GREATEST(r.tat + $2::float8 * interval '1 microsecond', EXCLUDED.tat)
     WHERE r.tat - $3::float8 * interval '1 microsecond'
               <= EXCLUDED.tat - $2::float8 * interval '1 microsecond'
       AND (r.paused_until IS NULL
            OR r.paused_until <= EXCLUDED.tat - $2::float8 * interval '1 microsecond')
    RETURNING r.tat
)
SELECT EXISTS (SELECT 1 FROM taken) AS granted,
       (EXTRACT(EPOCH FROM COALESCE((SELECT tat FROM taken),
                                    (SELECT tat FROM rate_limits WHERE key = $1)) - c.t)
        * 1000000)::int8 AS tat_ahead_us,
       (EXTRACT(EPOCH FROM (SELECT paused_until FROM rate_limits WHERE key = $1) - c.t)
        * 1000000)::int8 AS paused_us
FROM c";

/// Pauses a key: nothing is granted before `t + d`, and the budget is left
/// empty then (`tat = t + d + τ`), so starts resume at the steady rate rather
/// than in a burst. Never shortens a pause or moves `tat` back.
const PAUSE: &str = "
WITH c AS MATERIALIZED (SELECT clock_timestamp() AS t)
INSERT INTO rate_limits AS r (key, tat, paused_until)
SELECT $1,
       c.t + ($2::float8 + $3::float8) * interval '1 microsecond',
       c.t + $2::float8 * interval '1 microsecond'
FROM c
ON CONFLICT (key) DO UPDATE
   SET paused_until = GREATEST(r.paused_until, EXCLUDED.paused_until),
       tat = GREATEST(r.tat, EXCLUDED.tat)";

/// How long a key stays paused, for a limiter whose rate is off.
const PAUSED: &str = "
SELECT (EXTRACT(EPOCH FROM paused_until - clock_timestamp()) * 1000000)::int8 AS paused_us
FROM rate_limits
WHERE key = $1 AND paused_until > clock_timestamp()";

#[derive(Debug, diesel::QueryableByName)]
pub(crate) struct Taken {
    #[diesel(sql_type = Bool)]
    pub granted: bool,
    /// `tat − t` after the step (granted) or before it (refused); `None` only
    /// when a concurrent first insert hid the row from our snapshot.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub tat_ahead_us: Option<i64>,
    /// `paused_until − t`, positive while paused.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub paused_us: Option<i64>,
}

#[derive(Debug, diesel::QueryableByName)]
struct Paused {
    #[diesel(sql_type = BigInt)]
    paused_us: i64,
}

pub(crate) async fn take(
    pool: &DbPool,
    key: &str,
    interval_us: i64,
    tolerance_us: i64,
) -> Result<Taken, StorageError> {
    let mut conn = pool::conn(pool).await?;
    Ok(prepared(
        diesel::sql_query(TAKE)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(interval_us)
            .bind::<BigInt, _>(tolerance_us),
    )
    .get_result::<Taken>(&mut conn)
    .await?)
}

pub(crate) async fn pause(
    pool: &DbPool,
    key: &str,
    pause_us: i64,
    tolerance_us: i64,
) -> Result<(), StorageError> {
    let mut conn = pool::conn(pool).await?;
    prepared(
        diesel::sql_query(PAUSE)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(pause_us)
            .bind::<BigInt, _>(tolerance_us),
    )
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// `Some(µs)` while the key is paused.
pub(crate) async fn paused(pool: &DbPool, key: &str) -> Result<Option<i64>, StorageError> {
    let mut conn = pool::conn(pool).await?;
    Ok(prepared(diesel::sql_query(PAUSED).bind::<Text, _>(key))
        .get_result::<Paused>(&mut conn)
        .await
        .optional()?
        .map(|p| p.paused_us))
}
