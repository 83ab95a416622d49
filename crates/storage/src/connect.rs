//! The one way a connection to PostgreSQL is opened: the pool, `foxctl
//! migrate` and the tests all call [`connect`] with a parsed [`DbTarget`], so
//! `sslmode` means the same everywhere (module [`crate::target`]).
//!
//! diesel-async's `AsyncPgConnection::establish` speaks only plaintext
//! (docs/crates.md §1); here tokio-postgres opens the socket, over rustls when
//! the target asks for TLS, and diesel-async takes over the client.

use crate::target::{DbTarget, TlsMode, error_chain};
use crate::tls::{HandshakeError, MakeRustls};
use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{NoTls, TlsStream};
use tokio_postgres::{Client, Connection, Socket};

/// Why no connection could be made, in words an operator can act on. The
/// server is named (`host:port`), never the user's password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "the TLS certificate of {server} could not be verified (sslmode={mode}, sslrootcert: {roots}): {reason}"
    )]
    CertificateNotVerified {
        server: String,
        mode: TlsMode,
        roots: String,
        reason: String,
    },
    #[error("{server} does not accept TLS, and sslmode={mode} requires it")]
    TlsRefused { server: String, mode: TlsMode },
    #[error("TLS handshake with {server} failed: {reason}")]
    Handshake { server: String, reason: String },
    /// The server answered and said no: pg_hba.conf, authentication, a
    /// missing database, too many connections.
    #[error("{server} refused the connection: {message}")]
    Refused { server: String, message: String },
    #[error("cannot connect to {server}: {reason}")]
    Failed { server: String, reason: String },
    #[error("connected to {server}, but the session could not be set up: {reason}")]
    Setup { server: String, reason: String },
}

/// The pool's set-up hook must answer with diesel's error; the message is
/// all of ours.
impl From<ConnectError> for ConnectionError {
    fn from(e: ConnectError) -> Self {
        ConnectionError::BadConnection(e.to_string())
    }
}

impl From<ConnectError> for crate::StorageError {
    fn from(e: ConnectError) -> Self {
        crate::StorageError::Connection(e.into())
    }
}

/// Opens one connection to `target`, with TLS as its `sslmode` says.
pub async fn connect(target: &DbTarget) -> Result<AsyncPgConnection, ConnectError> {
    let Some(tls) = target.tls_config() else {
        let (client, connection) = target
            .config()
            .connect(NoTls)
            .await
            .map_err(|e| describe(target, &e))?;
        return adopt(target, client, connection).await;
    };
    match target.config().connect(MakeRustls(tls)).await {
        Ok((client, connection)) => adopt(target, client, connection).await,
        // libpq's `prefer` falls back to plaintext when TLS fails, not only
        // when the server declines it (which tokio-postgres handles itself).
        Err(e) if target.tls_mode() == TlsMode::Prefer && is_handshake(&e) => {
            tracing::warn!(server = %target.server(), error = %describe(target, &e),
                "TLS failed; sslmode=prefer connects without it");
            let mut plain = target.config().clone();
            plain.ssl_mode(SslMode::Disable);
            let (client, connection) = plain.connect(NoTls).await.map_err(|e| describe(target, &e))?;
            adopt(target, client, connection).await
        }
        Err(e) => Err(describe(target, &e)),
    }
}

async fn adopt<S>(
    target: &DbTarget,
    client: Client,
    connection: Connection<Socket, S>,
) -> Result<AsyncPgConnection, ConnectError>
where
    S: TlsStream + Unpin + Send + 'static,
{
    AsyncPgConnection::try_from_client_and_connection(client, connection)
        .await
        .map_err(|e| ConnectError::Setup {
            server: target.server(),
            reason: error_chain(&e),
        })
}

fn handshake_error(e: &tokio_postgres::Error) -> Option<&HandshakeError> {
    std::error::Error::source(e).and_then(|s| s.downcast_ref::<HandshakeError>())
}

fn is_handshake(e: &tokio_postgres::Error) -> bool {
    handshake_error(e).is_some()
}

/// Sorts a tokio-postgres error into what happened: its `Display` alone says
/// "db error" or "error performing TLS handshake" and nothing more.
fn describe(target: &DbTarget, e: &tokio_postgres::Error) -> ConnectError {
    let server = target.server();
    let mode = target.tls_mode();
    if let Some(db) = e.as_db_error() {
        let mut message = db.message().to_owned();
        // pg_hba.conf's "…, no encryption": the server takes hostssl only.
        if mode == TlsMode::Disable && message.contains("no encryption") {
            message.push_str(" (the server accepts TLS connections only: set sslmode=require or stricter)");
        }
        return ConnectError::Refused { server, message };
    }
    match handshake_error(e) {
        Some(HandshakeError::Tls(rustls::Error::InvalidCertificate(cert))) => {
            ConnectError::CertificateNotVerified {
                server,
                mode,
                roots: target.roots_label(),
                reason: certificate_reason(cert),
            }
        }
        Some(other) => ConnectError::Handshake {
            server,
            reason: other.to_string(),
        },
        // tokio-postgres' own TLS error, raised when the server answers
        // `N` to a required SSLRequest.
        None if std::error::Error::source(e)
            .is_some_and(|s| s.to_string() == "server does not support TLS") =>
        {
            ConnectError::TlsRefused { server, mode }
        }
        None => ConnectError::Failed {
            server,
            reason: error_chain(e),
        },
    }
}

fn certificate_reason(cert: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match cert {
        C::UnknownIssuer => "it is not signed by any of those CAs (UnknownIssuer)".to_owned(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            format!("{cert} (verify-full checks the URL's host name against the certificate)")
        }
        other => other.to_string(),
    }
}
