//! The one error type of this crate, sorted by what a caller can do about it.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What can go wrong talking to PostgreSQL, split by what the caller can do
/// about it: retry later (transient) or give up (everything else).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no database connection available: {0}")]
    Pool(String),
    #[error("cannot connect to the database: {0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("database error: {0}")]
    Query(#[from] DieselError),
    #[error("not found")]
    NotFound,
    /// The request cannot be honoured in the job's state: said to the
    /// operator, in both languages.
    #[error("conflict: {}", .0.en)]
    Conflict(foxflow_domain::Text),
    #[error("migration failed: {0}")]
    Migration(String),
    /// The database URL cannot be used (a bad `sslmode`, an unreadable
    /// `sslrootcert`): found at start, before any connection is tried.
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[from] crate::target::TargetError),
}

impl StorageError {
    /// Transient errors are worth a retry: the server was unreachable, the
    /// connection dropped, the pool ran dry, or PostgreSQL asked us to retry.
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Pool(_) | StorageError::Connection(_) => true,
            StorageError::Query(e) => is_transient_diesel(e),
            StorageError::NotFound
            | StorageError::Conflict(_)
            | StorageError::Migration(_)
            | StorageError::InvalidUrl(_) => false,
        }
    }
}

impl StorageError {
    /// What an operator reads in a job's `last_error`: what happened, in
    /// words, without the database's own text (schema, constraint and column
    /// names), which goes to the logs instead (docs/security.md).
    pub fn operator_message(&self) -> String {
        match self {
            StorageError::Pool(_) | StorageError::Connection(_) => "the database could not be reached".into(),
            StorageError::Query(_) if self.is_transient() => {
                "the database connection was lost or the database asked to try again".into()
            }
            StorageError::Query(_) => {
                "the database refused to store this batch; the worker's log has the detail".into()
            }
            StorageError::NotFound => "not found".into(),
            // Foxflow's own words already.
            StorageError::Conflict(m) => m.en.clone(),
            StorageError::Migration(_) => "the database schema is not the expected one".into(),
            StorageError::InvalidUrl(_) => "the database connection is misconfigured".into(),
        }
    }
}

fn is_transient_diesel(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::SerializationFailure => true,
            DatabaseErrorKind::Unknown => {
                // Admin shutdown (57P01), crash shutdown, cannot connect now,
                // deadlock, lock timeout and statement cancellation.
                let msg = info.message();
                msg.contains("terminating connection")
                    || msg.contains("server closed the connection")
                    || msg.contains("deadlock detected")
                    || msg.contains("canceling statement")
                    || msg.contains("the database system is")
            }
            _ => false,
        },
        // diesel-async reports a broken socket as a generic error on the next query.
        DieselError::BrokenTransactionManager => true,
        other => {
            let s = other.to_string();
            s.contains("connection closed")
                || s.contains("Connection reset")
                || s.contains("broken pipe")
                || s.contains("error communicating with the server")
                || s.contains("connection")
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for StorageError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        StorageError::Pool(e.to_string())
    }
}
