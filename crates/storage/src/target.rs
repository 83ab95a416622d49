//! `DATABASE_URL`, parsed once into what a connection needs: the server, the
//! credentials and database (tokio-postgres' own [`Config`]), and how TLS is
//! negotiated and checked ([`TlsMode`] and the CA certificates behind it).
//!
//! `sslmode` and `sslrootcert` mean what they mean to libpq (and so to
//! `psql` given the same URL):
//!
//! | `sslmode` | TLS | the certificate's chain | its host name |
//! |---|---|---|---|
//! | `disable` | never | — | — |
//! | `prefer` (default) | when the server offers it, else plaintext | checked if a CA is at hand* | no |
//! | `require` | always | checked if a CA is at hand* | no |
//! | `verify-ca` | always | checked | no |
//! | `verify-full` | always | checked | checked |
//!
//! *a CA is at hand when `sslrootcert` names one, or when libpq's default
//! `~/.postgresql/root.crt` exists. `sslrootcert=system` takes the operating
//! system's CAs and, as in libpq, needs (and defaults to) `verify-full`.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require` and refuses
//! `sslrootcert`, so both are taken out of the URL before it parses the rest.

use crate::tls::{self, Check};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::Config;
use tokio_postgres::config::{Host, SslMode};

/// A `DATABASE_URL` that cannot be used, found before any connection is tried.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("expected a postgres:// or postgresql:// URL")]
    NotAUrl,
    #[error("sslmode `{0}` is not one of disable, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    #[error(
        "sslmode=allow (plaintext first, TLS only if the server insists) is not supported: use prefer or disable"
    )]
    SslModeAllow,
    #[error("`{0}` is not supported (client certificates and CRLs are not implemented)")]
    Unsupported(String),
    #[error(
        "sslmode={mode} checks the server's certificate and needs its CA: set sslrootcert=<PEM file> (or sslrootcert=system); {default} does not exist either"
    )]
    NoRootCert { mode: TlsMode, default: String },
    #[error("weak sslmode={0} may not be used with sslrootcert=system (use verify-full)")]
    WeakWithSystemRoots(TlsMode),
    #[error("cannot use the CA certificates of sslrootcert={path}: {reason}")]
    RootCert { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// `sslmode`: whether TLS is used and how much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TlsMode {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, TargetError> {
        Ok(match s {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            "allow" => return Err(TargetError::SslModeAllow),
            other => return Err(TargetError::SslMode(other.to_owned())),
        })
    }
}

/// Where the CA certificates came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    File(PathBuf),
    System,
}

impl fmt::Display for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::File(p) => write!(f, "{}", p.display()),
            Roots::System => f.write_str("the system's CAs"),
        }
    }
}

/// Where and how to connect; built once from `DATABASE_URL` by [`DbTarget::parse`].
#[derive(Clone)]
pub struct DbTarget {
    /// Everything but TLS, with tokio-postgres' `ssl_mode` set from `mode`.
    config: Config,
    mode: TlsMode,
    check: Check,
    roots: Option<Roots>,
    /// Built once: reading the CA file on every connection would turn a
    /// deleted file into an outage at the next reconnect rather than at start.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("DbTarget")
            .field("server", &self.server())
            .field("user", &self.config.get_user())
            .field("dbname", &self.config.get_dbname())
            .field("sslmode", &self.mode)
            .field("checks", &self.check)
            .field("sslrootcert", &self.roots.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl FromStr for DbTarget {
    type Err = TargetError;
    fn from_str(url: &str) -> Result<Self, TargetError> {
        DbTarget::parse(url)
    }
}

impl DbTarget {
    /// Parses a `postgres://` URL; reads and checks the CA certificates now,
    /// so that a wrong path fails the start rather than the first query.
    pub fn parse(url: &str) -> Result<DbTarget, TargetError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(TargetError::NotAUrl);
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut sslmode = None;
        let mut sslrootcert = None;
        let mut rest = Vec::new();
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match percent_decode(key).as_str() {
                "sslmode" => sslmode = Some(percent_decode(value).parse::<TlsMode>()?),
                "sslrootcert" => sslrootcert = Some(percent_decode(value)),
                k @ ("sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir") => {
                    return Err(TargetError::Unsupported(k.to_owned()));
                }
                _ => rest.push(param),
            }
        }
        let plain = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let config = Config::from_str(&plain).map_err(|e| TargetError::Invalid(error_chain(&e)))?;

        let system = sslrootcert.as_deref() == Some("system");
        let mode = sslmode.unwrap_or(if system {
            TlsMode::VerifyFull
        } else {
            TlsMode::Prefer
        });
        if system && mode != TlsMode::VerifyFull {
            return Err(TargetError::WeakWithSystemRoots(mode));
        }
        let roots = match (mode, sslrootcert) {
            (TlsMode::Disable, _) => None,
            (_, Some(s)) if s == "system" => Some(Roots::System),
            (_, Some(path)) => Some(Roots::File(PathBuf::from(path))),
            // libpq's default file, used when it exists (and required by verify-*).
            (_, None) => default_root_file().filter(|p| p.exists()).map(Roots::File),
        };
        let check = match (mode, &roots) {
            (TlsMode::Disable, _) => Check::Nothing,
            (TlsMode::VerifyFull, Some(_)) => Check::ChainAndHost,
            (TlsMode::VerifyCa | TlsMode::VerifyFull, None) => {
                return Err(TargetError::NoRootCert {
                    mode,
                    default: default_root_file()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "~/.postgresql/root.crt".into()),
                });
            }
            (_, Some(_)) => Check::Chain,
            (_, None) => Check::Nothing,
        };
        let tls = match mode {
            TlsMode::Disable => None,
            _ => {
                let store = roots.as_ref().map(load_roots).transpose()?;
                Some(Arc::new(tls::client_config(check, store).map_err(|e| {
                    TargetError::Invalid(format!("cannot set up TLS: {e}"))
                })?))
            }
        };
        let mut target = DbTarget {
            config,
            mode,
            check,
            roots,
            tls,
        };
        target.config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        Ok(target)
    }

    /// The same server, credentials and TLS, another database (`foxctl
    /// migrate` creates the database from `postgres`).
    pub fn with_dbname(&self, dbname: &str) -> DbTarget {
        let mut other = self.clone();
        other.config.dbname(dbname);
        other
    }

    pub fn dbname(&self) -> Option<&str> {
        self.config.get_dbname()
    }

    pub fn tls_mode(&self) -> TlsMode {
        self.mode
    }

    /// `host:port` (every host of a multi-host URL), for messages: no user, no password.
    pub fn server(&self) -> String {
        let ports = self.config.get_ports();
        let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let hosts: Vec<String> = if self.config.get_hosts().is_empty() {
            self.config
                .get_hostaddrs()
                .iter()
                .enumerate()
                .map(|(i, a)| format!("{a}:{}", port(i)))
                .collect()
        } else {
            self.config
                .get_hosts()
                .iter()
                .enumerate()
                .map(|(i, h)| match h {
                    Host::Tcp(name) => format!("{name}:{}", port(i)),
                    Host::Unix(dir) => format!("{}/.s.PGSQL.{}", dir.display(), port(i)),
                })
                .collect()
        };
        hosts.join(",")
    }

    /// What the certificate was checked against, for messages.
    pub(crate) fn roots_label(&self) -> String {
        self.roots
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "no CA".into())
    }

    #[cfg(test)]
    fn check(&self) -> Check {
        self.check
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn tls_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls.clone()
    }
}

fn default_root_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".postgresql/root.crt"))
}

fn load_roots(roots: &Roots) -> Result<RootCertStore, TargetError> {
    let fail = |reason: String| TargetError::RootCert {
        path: roots.to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = match roots {
        Roots::File(path) => CertificateDer::pem_file_iter(path)
            .map_err(|e| fail(pem_error(&e)))?
            .collect::<Result<_, _>>()
            .map_err(|e| fail(pem_error(&e)))?,
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found.errors.first().map(ToString::to_string);
                return Err(fail(why.unwrap_or_else(|| "none found".into())));
            }
            found.certs
        }
    };
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(fail(
            "no usable certificate in it (expected PEM `CERTIFICATE` blocks)".into(),
        ));
    }
    Ok(store)
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("{other:?}"),
    }
}

/// `%41` → `A`; a malformed escape is kept as it is, as tokio-postgres does.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied(), bytes.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An error and its causes on one line: tokio-postgres' own `Display` stops
/// at "db error" or "invalid connection string" and keeps the cause in `source()`.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<DbTarget, TargetError> {
        DbTarget::parse(url)
    }

    #[test]
    fn modes_map_to_checks() {
        let t = parse("postgres://u:p@db:6432/foxflow").unwrap();
        assert_eq!((t.tls_mode(), t.check()), (TlsMode::Prefer, Check::Nothing));
        assert_eq!(t.config().get_ssl_mode(), SslMode::Prefer);
        assert_eq!(t.server(), "db:6432");
        assert_eq!(t.dbname(), Some("foxflow"));
        let t = parse("postgres://u@db/foxflow?sslmode=disable&application_name=x").unwrap();
        assert_eq!(t.config().get_ssl_mode(), SslMode::Disable);
        assert_eq!(t.config().get_application_name(), Some("x"));
        assert!(t.tls_config().is_none());
        let t = parse("postgresql://u@db/foxflow?sslmode=require").unwrap();
        assert_eq!(t.config().get_ssl_mode(), SslMode::Require);
    }

    #[test]
    fn a_ca_file_turns_on_the_checks_libpq_would_make() {
        let dir = std::env::temp_dir().join(format!("fox-target-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, TEST_CA_PEM).unwrap();
        let url = |mode: &str| format!("postgres://u@db/x?sslmode={mode}&sslrootcert={}", ca.display());
        assert_eq!(parse(&url("require")).unwrap().check(), Check::Chain);
        assert_eq!(parse(&url("verify-ca")).unwrap().check(), Check::Chain);
        assert_eq!(parse(&url("verify-full")).unwrap().check(), Check::ChainAndHost);
        // Percent-encoded paths are decoded.
        let encoded = format!(
            "postgres://u@db/x?sslmode=verify-full&sslrootcert={}",
            ca.display().to_string().replace('/', "%2F")
        );
        assert_eq!(parse(&encoded).unwrap().check(), Check::ChainAndHost);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_values_are_refused_with_what_is_wrong() {
        let err = |url: &str| parse(url).unwrap_err().to_string();
        assert_eq!(
            err("postgres://u@db/x?sslmode=verify_full"),
            "sslmode `verify_full` is not one of disable, prefer, require, verify-ca, verify-full"
        );
        assert!(err("postgres://u@db/x?sslmode=allow").contains("not supported"));
        assert!(err("host=db user=u").contains("postgres:// or postgresql://"));
        assert!(err("postgres://u@db/x?sslcert=c.pem").contains("sslcert"));
        assert!(err("postgres://u@db/x?sslmode=require&sslrootcert=system").contains("use verify-full"));
        let missing = err("postgres://u@db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
        assert!(
            missing.contains("/nonexistent/ca.pem") && missing.contains("No such file"),
            "{missing}"
        );
        assert!(err("postgres://u@db/x?nonsense=1").contains("unknown option"));
    }

    #[test]
    fn verify_without_a_ca_names_the_settings() {
        // Only meaningful where libpq's default file is absent, as on CI.
        if default_root_file().is_some_and(|p| p.exists()) {
            return;
        }
        let e = parse("postgres://u@db/x?sslmode=verify-ca")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslrootcert=<PEM file>"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let t = parse("postgres://u:hunter2@db/x?sslmode=disable").unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains("hunter2") && shown.contains("db:5432"), "{shown}");
        assert_eq!(t.with_dbname("postgres").dbname(), Some("postgres"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%2Fetc%2fca.pem"), "/etc/ca.pem");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%zz"), "a%zz");
    }

    /// A self-signed CA certificate (openssl, valid until 2126): only parsed here, never trusted.
    const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBlTCCATugAwIBAgIUbVmqiXfr4P+SDbKbQzKs1NYd20wwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUZm94ZmxvdyB1bml0LXRlc3QgQ0EwIBcNMjYxMjA0MTQ1NDI3
WhgPMjEyNjExMTAxNDU0MjdaMB8xHTAbBgNVBAMMFGZveGZsb3cgdW5pdC10ZXN0
IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7Rvc2sWsV8t45NaWwLzMdfXJ
MzEtTt2n7w//sudQ3nDMMidYXgOApkq0C6Md3SoEkFFRdBrR9ESDWjMBevJBF6NT
MFEwHQYDVR0OBBYEFBeXDUz98MofvY0GAJRy93w7IyZzMB8GA1UdIwQYMBaAFBeX
DUz98MofvY0GAJRy93w7IyZzMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
SAAwRQIhAJXXYxhiqiMbWC9aeBUjaqriJjcH/NgVyYce2TVnxBaEAiB+JNiSDYXx
5o+8APWKufx7mf41qviBcbj72lo3jxlKVA==
-----END CERTIFICATE-----
";
}
