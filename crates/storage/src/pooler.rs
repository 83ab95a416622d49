//! Connections through a transaction-mode pooler (`DATABASE_POOLER=transaction`): pgBouncer
//! with `pool_mode = transaction`, where a server connection is a client's for one transaction
//! only, so nothing may outlive a transaction on it (docs/crates.md §9).
//!
//! Two things differ from a direct connection, both here:
//! - statements: every named prepared statement is rewritten into the unnamed one, parsed in
//!   the batch that uses it (module `unnamed`); diesel-async and its statement cache work
//!   unchanged above it;
//! - session settings: `application_name` is a startup parameter (pgBouncer tracks it and
//!   sets it on whichever server connection serves the client); `statement_timeout`, which a
//!   session `SET` would leave behind on one server connection, is the pooler's or the role's
//!   (`connect_query` in deploy/*/pgbouncer.ini, or `ALTER ROLE … SET statement_timeout`).
//!   diesel-async's own `SET TIME ZONE 'UTC'` and `SET CLIENT_ENCODING` are parameters
//!   pgBouncer tracks too.

use crate::connect::ConnectError;
use crate::target::{DbTarget, TlsMode, error_chain};
use crate::tls::MakeRustls;
use crate::unnamed::{Rewriter, Unnamed};
use diesel_async::AsyncPgConnection;
use std::io;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::Config;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::tls::{MakeTlsConnect, NoTls, TlsConnect};

/// What sits between the process and PostgreSQL (`DATABASE_POOLER`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pooler {
    /// PostgreSQL itself, or a pooler in session mode: a connection is one server session.
    #[default]
    None,
    /// A pooler in transaction mode (pgBouncer `pool_mode = transaction`).
    Transaction,
}

/// A socket of either kind, so that one rewriter type serves both.
trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Socket for T {}

/// Opens one connection through a transaction-mode pooler, TLS as the target's `sslmode` says.
pub(crate) async fn connect(
    target: &DbTarget,
    application_name: &str,
) -> Result<AsyncPgConnection, ConnectError> {
    let mut config = target.config().clone();
    config.application_name(application_name);
    // TLS, when wanted, is negotiated below, before tokio-postgres sees the stream.
    config.ssl_mode(SslMode::Disable);
    let stream = open_session(target, &config).await?;
    let (client, connection) = config
        .connect_raw(Unnamed::new(stream, Rewriter::default()), NoTls)
        .await
        .map_err(|e| refused(target, &e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection (through the pooler) ended");
        }
    });
    AsyncPgConnection::try_from(client)
        .await
        .map_err(|e| ConnectError::Setup {
            server: target.server(),
            reason: error_chain(&e),
        })
}

/// A socket to the first place that answers, over TLS when `sslmode` asks for it and the
/// server offers it (libpq's `SSLRequest` exchange, done here so that the statement rewriter
/// can sit on the decrypted stream).
async fn open_session(target: &DbTarget, config: &Config) -> Result<Box<dyn Socket>, ConnectError> {
    let failed = |reason: String| ConnectError::Failed {
        server: target.server(),
        reason,
    };
    let timeout = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(Duration::from_secs(30));
    let (mut socket, host) = open(places(config), timeout)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (Some(tls), Some(host)) = (target.tls_config(), host) else {
        return Ok(socket);
    };
    socket
        .write_all(&SSL_REQUEST)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut answer = [0u8; 1];
    socket
        .read_exact(&mut answer)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if answer[0] != b'S' {
        return match target.tls_mode() {
            TlsMode::Prefer => Ok(socket),
            mode => Err(ConnectError::TlsRefused {
                server: target.server(),
                mode,
            }),
        };
    }
    let connector = MakeTlsConnect::<Box<dyn Socket>>::make_tls_connect(&mut MakeRustls(tls), &host)
        .map_err(|e| failed(e.to_string()))?;
    match TlsConnect::<Box<dyn Socket>>::connect(connector, socket).await {
        Ok(stream) => Ok(Box::new(stream)),
        // libpq's `prefer` falls back to plaintext when TLS fails (as `connect` does).
        Err(_) if target.tls_mode() == TlsMode::Prefer => {
            let (socket, _) = open(places(config), timeout)
                .await
                .map_err(|e| failed(e.to_string()))?;
            Ok(socket)
        }
        Err(e) => Err(ConnectError::Handshake {
            server: target.server(),
            reason: e.to_string(),
        }),
    }
}

/// `SSLRequest`: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 210, 22, 47];

fn refused(target: &DbTarget, e: &tokio_postgres::Error) -> ConnectError {
    match e.as_db_error() {
        Some(db) => ConnectError::Refused {
            server: target.server(),
            message: db.message().to_owned(),
        },
        None => ConnectError::Failed {
            server: target.server(),
            reason: error_chain(e),
        },
    }
}

/// Where to connect, in the order tokio-postgres would try: (where, its name for TLS), owned so
/// that no borrow of the config is held across an await.
enum Place {
    Tcp(String, u16, Option<String>),
    Unix(PathBuf),
}

fn places(config: &Config) -> Vec<Place> {
    let ports = config.get_ports();
    let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
    // `hostaddr` (when given) is where to connect, `host` the name.
    let addrs: Vec<String> = config.get_hostaddrs().iter().map(ToString::to_string).collect();
    if config.get_hosts().is_empty() {
        return addrs
            .into_iter()
            .enumerate()
            .map(|(i, a)| Place::Tcp(a, port(i), None))
            .collect();
    }
    config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| match host {
            Host::Unix(dir) => Place::Unix(dir.join(format!(".s.PGSQL.{}", port(i)))),
            Host::Tcp(name) => Place::Tcp(
                addrs.get(i).cloned().unwrap_or_else(|| name.clone()),
                port(i),
                Some(name.clone()),
            ),
        })
        .collect()
}

/// The first place that accepts a connection, with its name for TLS (none for a Unix socket).
async fn open(places: Vec<Place>, timeout: Duration) -> io::Result<(Box<dyn Socket>, Option<String>)> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no host in the database URL");
    for place in places {
        let attempt = match place {
            Place::Tcp(addr, port, name) => tcp((addr, port), name, timeout).await,
            Place::Unix(path) => unix(path, timeout).await,
        };
        match attempt {
            Ok(found) => return Ok(found),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn tcp(
    addr: (String, u16),
    name: Option<String>,
    timeout: Duration,
) -> io::Result<(Box<dyn Socket>, Option<String>)> {
    let socket = tokio::time::timeout(timeout, TcpStream::connect((addr.0.as_str(), addr.1)))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{}:{} did not answer", addr.0, addr.1),
            )
        })??;
    socket.set_nodelay(true)?;
    Ok((Box::new(socket), name))
}

async fn unix(path: PathBuf, timeout: Duration) -> io::Result<(Box<dyn Socket>, Option<String>)> {
    let socket = tokio::time::timeout(timeout, UnixStream::connect(&path))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} did not answer", path.display()),
            )
        })??;
    Ok((Box::new(socket), None))
}
