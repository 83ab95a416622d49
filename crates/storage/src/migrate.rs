//! `foxctl migrate` and the test harness: create the database when it is
//! missing, then apply the embedded migrations.

use crate::{DbTarget, Result, StorageError, connect};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Hides the password of a connection URL, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Creates the database named in `url` unless it exists. Returns whether it
/// was created.
pub async fn ensure_database(url: &str) -> Result<bool> {
    let target = DbTarget::parse(url)?;
    let name = target
        .dbname()
        .ok_or_else(|| {
            StorageError::Migration(format!("DATABASE_URL has no database name: {}", redact(url)))
        })?
        .to_owned();
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(StorageError::Migration(format!(
            "unsupported database name `{name}`"
        )));
    }
    // The maintenance database on the same server, with the same TLS.
    let mut conn = connect(&target.with_dbname("postgres")).await?;
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut conn)
            .await?;
    if found.exists {
        return Ok(false);
    }
    match diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
    {
        Ok(_) => Ok(true),
        // Someone else created it between our check and our create.
        Err(diesel::result::Error::DatabaseError(_, info)) if info.message().contains("already exists") => {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Applies pending migrations and returns their names. Runs the synchronous
/// harness on a blocking thread: diesel's harness must not block the runtime.
pub async fn run_migrations(url: &str) -> Result<Vec<String>> {
    let conn = connect(&DbTarget::parse(url)?).await?;
    tokio::task::spawn_blocking(move || -> Result<Vec<String>> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| StorageError::Migration(e.to_string()))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    })
    .await
    .map_err(|e| StorageError::Migration(format!("migration task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
