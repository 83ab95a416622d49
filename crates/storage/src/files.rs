//! Uploaded file contents, stored in PostgreSQL in chunks so that any worker
//! host can read them and neither writing nor reading holds a whole file.

use crate::schema::{file_chunks, stored_files};
use crate::{Result, StorageError};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Chunks are written at this size (the last one is shorter); readers take
/// chunks of any size, in `seq` order. One chunk is buffered in memory per
/// upload in progress; a 1 MB upload is one or two writes.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// Writes chunk `seq` of a file in one transaction, and with the first
/// chunk the file's row: `finish` (size, SHA-256) completes the file in the
/// same transaction. Nothing is written for a file before its first chunk,
/// so an upload refused early (size, type) never stored anything.
///
/// The transaction commits with `synchronous_commit = off`: it does not wait
/// for its WAL to reach the disk. That is safe because a file is only ever
/// used through its job, and the job's own transaction (job + outbox, a
/// normal synchronous commit) comes later in the WAL: once that commit is
/// flushed, so is everything before it, chunks included. A crash before it
/// loses at most a file without a job, which the client was never told was
/// accepted and cleanup sweeps. This turns the per-chunk fsyncs of an upload
/// into none, leaving one per upload (the job).
pub async fn write_chunk(
    conn: &mut AsyncPgConnection,
    file_id: Uuid,
    seq: i32,
    data: &[u8],
    finish: Option<(i64, &[u8])>,
) -> Result<()> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, StorageError, _>(async |conn| {
        diesel::sql_query("SET LOCAL synchronous_commit = off")
            .execute(conn)
            .await?;
        if seq == 0 {
            let (size, sha256) = finish.unwrap_or((0, &[]));
            diesel::insert_into(stored_files::table)
                .values((
                    stored_files::id.eq(file_id),
                    stored_files::size_bytes.eq(size),
                    stored_files::sha256.eq(sha256),
                ))
                .execute(conn)
                .await?;
        } else if let Some((size, sha256)) = finish {
            finish_file(conn, file_id, size, sha256).await?;
        }
        if !data.is_empty() {
            append_chunk(conn, file_id, seq, data).await?;
        }
        Ok(())
    })
    .await
}

async fn append_chunk(conn: &mut AsyncPgConnection, file_id: Uuid, seq: i32, data: &[u8]) -> Result<()> {
    diesel::insert_into(file_chunks::table)
        .values((
            file_chunks::file_id.eq(file_id),
            file_chunks::seq.eq(seq),
            file_chunks::data.eq(data),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

async fn finish_file(conn: &mut AsyncPgConnection, file_id: Uuid, size: i64, sha256: &[u8]) -> Result<()> {
    diesel::update(stored_files::table.find(file_id))
        .set((stored_files::size_bytes.eq(size), stored_files::sha256.eq(sha256)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes a file and its chunks (an upload that failed half-way).
pub async fn delete_file(conn: &mut AsyncPgConnection, file_id: Uuid) -> Result<()> {
    diesel::delete(stored_files::table.find(file_id))
        .execute(conn)
        .await?;
    Ok(())
}

/// Reads chunk `seq` of a file, `None` past the end.
pub async fn read_chunk(conn: &mut AsyncPgConnection, file_id: Uuid, seq: i32) -> Result<Option<Vec<u8>>> {
    Ok(file_chunks::table
        .find((file_id, seq))
        .select(file_chunks::data)
        .first(conn)
        .await
        .optional()?)
}

/// Whether the file still has content (cleanup may have purged it).
pub async fn file_available(conn: &mut AsyncPgConnection, file_id: Uuid) -> Result<bool> {
    let purged: Option<Option<chrono::DateTime<chrono::Utc>>> = stored_files::table
        .find(file_id)
        .select(stored_files::purged_at)
        .first(conn)
        .await
        .optional()?;
    match purged {
        None => Err(StorageError::NotFound),
        Some(p) => Ok(p.is_none()),
    }
}
