//! A PostgreSQL of the test's own that takes TLS connections only
//! ([`TlsPostgres`]): a fresh cluster in a temporary directory, on a free
//! port, with `ssl = on`, a server certificate for `localhost` and
//! `127.0.0.1` signed by a CA made here, and a pg_hba.conf whose only TCP
//! line is `hostssl` (with a password): plaintext TCP is refused.
//!
//! Uses the server binaries of the machine (`FOX_PG_BIN`, else the newest
//! `/usr/lib/postgresql/<version>/bin`; `scripts/install-test-servers.sh`
//! installs them) and panics, naming what is missing, when there are none: a
//! test that needs this server fails rather than passing without it.
//! PostgreSQL refuses to run as root, so as root the cluster runs as the
//! `postgres` user.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::fs::{self, File};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The superuser's password; only ever on 127.0.0.1, for one test.
const PASSWORD: &str = "tls-test-secret";

/// A running TLS-only PostgreSQL, stopped and deleted on drop.
pub struct TlsPostgres {
    bin: PathBuf,
    /// Data directory, certificates, socket and log; removed on drop.
    dir: tempfile::TempDir,
    /// `Some((uid, gid))` of `postgres` when the tests run as root.
    run_as: Option<(u32, u32)>,
    child: Child,
    port: u16,
}

impl TlsPostgres {
    /// Creates the cluster and starts it; returns once it accepts
    /// connections. Blocking (initdb takes a second or two): from async code,
    /// call it through `tokio::task::spawn_blocking`.
    pub fn start() -> TlsPostgres {
        let bin = server_binaries();
        let run_as = postgres_user_if_root();
        let dir = tempfile::Builder::new()
            .prefix("fox-tls-pg-")
            .tempdir()
            .expect("temporary directory");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown the temporary directory");
        }
        let data = dir.path().join("data");

        let pwfile = dir.path().join("pwfile");
        write_owned(&pwfile, PASSWORD.as_bytes(), run_as, 0o600);
        run(
            command(&bin, "initdb", run_as)
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-E", "UTF8", "--no-sync"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        );

        let certs = Certificates::new();
        fs::write(dir.path().join("ca.pem"), &certs.ca_pem).expect("write ca.pem");
        fs::write(dir.path().join("other-ca.pem"), &certs.other_ca_pem).expect("write other-ca.pem");
        write_owned(
            &data.join("server.crt"),
            certs.server_pem.as_bytes(),
            run_as,
            0o644,
        );
        // PostgreSQL refuses a key others can read.
        write_owned(
            &data.join("server.key"),
            certs.server_key_pem.as_bytes(),
            run_as,
            0o600,
        );

        let port = free_port();
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             fsync = off\nmax_connections = 40\n",
            dir.path().display()
        );
        append(&data.join("postgresql.conf"), &conf);
        // The only TCP line is hostssl: a plaintext connection matches nothing.
        write_owned(
            &data.join("pg_hba.conf"),
            b"local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
            run_as,
            0o600,
        );

        let log = File::create(dir.path().join("server.log")).expect("server.log");
        let child = command(&bin, "postgres", run_as)
            .arg("-D")
            .arg(&data)
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.join("postgres").display()));
        let mut server = TlsPostgres {
            bin,
            dir,
            run_as,
            child,
            port,
        };
        server.wait_ready(Duration::from_secs(30));
        server
    }

    /// `postgres://postgres:…@{host}:{port}/{dbname}?{params}`.
    pub fn url(&self, host: &str, dbname: &str, params: &str) -> String {
        let mut url = format!("postgres://postgres:{PASSWORD}@{host}:{}/{dbname}", self.port);
        if !params.is_empty() {
            url.push('?');
            url.push_str(params);
        }
        url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA that signed the server's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A CA that signed nothing this server presents (PEM).
    pub fn other_ca_file(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// A superuser connection over the Unix socket (trusted, no TLS), for
    /// looking at the server from outside: `pg_stat_ssl`, `pg_stat_activity`.
    pub async fn admin(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::Config::new()
            .host_path(self.dir.path())
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("admin connection over the Unix socket: {e:?}\n{}", self.log()));
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Polls `pg_isready` on the Unix socket (which needs no TLS) until the
    /// server answers, failing fast if it exits.
    fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("PostgreSQL exited during start-up ({status}):\n{}", self.log());
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .arg("-q")
                .arg("-h")
                .arg(self.dir.path())
                .arg("-p")
                .arg(self.port.to_string())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL not ready after {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        // A fast shutdown ends the backends too; the kill is the fallback.
        let stopped = command(&self.bin, "pg_ctl", self.run_as)
            .arg("stop")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "-t", "20"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The test CA, the server's certificate and key, and an unrelated CA.
struct Certificates {
    ca_pem: String,
    other_ca_pem: String,
    server_pem: String,
    server_key_pem: String,
}

impl Certificates {
    fn new() -> Certificates {
        let (ca, ca_pem) = certificate_authority("Foxflow test CA");
        let (_, other_ca_pem) = certificate_authority("Foxflow unrelated CA");
        let key = KeyPair::generate().expect("server key");
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server names");
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = params.signed_by(&key, &ca).expect("server certificate");
        Certificates {
            ca_pem,
            other_ca_pem,
            server_pem: server.pem(),
            server_key_pem: key.serialize_pem(),
        }
    }
}

fn certificate_authority(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(&key).expect("CA certificate").pem();
    (Issuer::new(params, key), pem)
}

fn server_binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("FOX_PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("postgres").exists(),
            "FOX_PG_BIN={} holds no `postgres` binary",
            dir.display()
        );
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server binaries (initdb, postgres) in /usr/lib/postgresql/<version>/bin: \
             run scripts/install-test-servers.sh (or apt-get install postgresql), or set FOX_PG_BIN"
        )
    })
}

/// `postgres`'s uid and gid when this process is root, from /etc/passwd.
fn postgres_user_if_root() -> Option<(u32, u32)> {
    let me = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    if me != 0 {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let ids = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"postgres"))
        .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)));
    Some(ids.unwrap_or_else(|| {
        panic!("running as root, and there is no `postgres` user to run PostgreSQL as (it refuses root)")
    }))
}

fn command(bin: &Path, name: &str, run_as: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(bin.join(name));
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_owned(path: &Path, content: &[u8], run_as: Option<(u32, u32)>, mode: u32) {
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all(text.as_bytes()).expect("append");
}

/// A port nothing listens on now; the server binds it a moment later.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
