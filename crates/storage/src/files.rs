//! Uploaded file contents, stored in PostgreSQL in chunks so that any worker
//! host can read them and neither writing nor reading holds a whole file.

use crate::schema::{file_chunks, stored_files};
use crate::{Result, StorageError};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Chunks are written and read at this size.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Starts a file; chunks follow with [`append_chunk`], then [`finish_file`].
/// A file never finished is swept by cleanup (it has no job).
pub async fn begin_file(conn: &mut AsyncPgConnection) -> Result<Uuid> {
    let id = Uuid::now_v7();
    diesel::insert_into(stored_files::table)
        .values((
            stored_files::id.eq(id),
            stored_files::size_bytes.eq(0i64),
            stored_files::sha256.eq(Vec::<u8>::new()),
        ))
        .execute(conn)
        .await?;
    Ok(id)
}

pub async fn append_chunk(conn: &mut AsyncPgConnection, file_id: Uuid, seq: i32, data: &[u8]) -> Result<()> {
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

pub async fn finish_file(
    conn: &mut AsyncPgConnection,
    file_id: Uuid,
    size: i64,
    sha256: &[u8],
) -> Result<()> {
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
