//! A pgBouncer of the test's own, in transaction mode, in front of the shared PostgreSQL: the
//! Debian package's binary (1.18 on Debian 12, installed by `scripts/install-test-servers.sh`),
//! started on a free loopback port with an ini in a temporary directory, stopped on drop.
//!
//! The pool is deliberately small (`default_pool_size` 5 by default): the services' pools hold
//! more client connections than that, so clients share server connections between
//! transactions, which is what breaks session state and cross-transaction prepared statements.

use std::collections::HashMap;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARIES: [&str; 2] = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"];

/// What the pgBouncer is started with.
#[derive(Debug, Clone)]
pub struct PgBouncerOptions {
    /// Server connections per (database, user) pool.
    pub default_pool_size: u32,
    pub max_client_conn: u32,
    /// The `connect_query` of every server connection: session settings no client `SET` could
    /// keep across transactions (the deploy files set `statement_timeout` this way).
    pub connect_query: Option<String>,
}

impl Default for PgBouncerOptions {
    fn default() -> Self {
        PgBouncerOptions {
            default_pool_size: 5,
            max_client_conn: 200,
            connect_query: Some("SET statement_timeout = 300000".to_owned()),
        }
    }
}

/// A running pgBouncer; killed, and its directory removed, on drop.
pub struct PgBouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl std::fmt::Debug for PgBouncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBouncer")
            .field("port", &self.port)
            .field("dir", &self.dir)
            .finish()
    }
}

/// The PostgreSQL pgBouncer forwards to: the host and port of `FOX_TEST_PG`, as the harness uses.
fn upstream() -> anyhow::Result<(String, u16)> {
    let url =
        std::env::var("FOX_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let config: tokio_postgres::Config = url.parse()?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    Ok((host, config.get_ports().first().copied().unwrap_or(5432)))
}

/// pgBouncer refuses to run as root: as root, start it as `postgres` (the package's user).
fn run_as() -> anyhow::Result<Option<(u32, u32)>> {
    if std::fs::metadata("/proc/self")?.uid() != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == "postgres")
        .ok_or_else(|| {
            anyhow::anyhow!("running as root and there is no `postgres` user to run pgbouncer as")
        })?;
    Ok(Some((entry[2].parse()?, entry[3].parse()?)))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PgBouncer {
    pub async fn start() -> anyhow::Result<PgBouncer> {
        Self::start_with(PgBouncerOptions::default()).await
    }

    pub async fn start_with(options: PgBouncerOptions) -> anyhow::Result<PgBouncer> {
        let binary = BINARIES.iter().find(|b| Path::new(b).exists()).ok_or_else(|| {
            anyhow::anyhow!("pgbouncer is not installed: run scripts/install-test-servers.sh")
        })?;
        let dir = std::env::temp_dir().join(format!("foxflow-pgbouncer-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let (host, upstream_port) = upstream()?;
        let port = free_port()?;
        let connect_query = options
            .connect_query
            .as_deref()
            .map(|q| format!(" connect_query='{}'", q.replace('\'', "''")))
            .unwrap_or_default();
        // `*`: every database name a client asks for is the same-named database upstream, so each
        // test's own database works without listing it. `trust` + a userlist: clients log in as
        // `postgres` without a password (PostgreSQL trusts loopback), and the admin console
        // accepts them as admin_users.
        let ini = format!(
            "[databases]\n\
             * = host={host} port={upstream_port}{connect_query}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/userlist.txt\n\
             admin_users = postgres\n\
             stats_users = postgres\n\
             pool_mode = transaction\n\
             max_client_conn = {max_client}\n\
             default_pool_size = {pool}\n\
             ignore_startup_parameters = extra_float_digits\n\
             server_reset_query =\n\
             query_wait_timeout = 30\n\
             logfile = {dir}/pgbouncer.log\n",
            dir = dir.display(),
            max_client = options.max_client_conn,
            pool = options.default_pool_size,
        );
        std::fs::write(dir.join("pgbouncer.ini"), ini)?;
        std::fs::write(dir.join("userlist.txt"), "\"postgres\" \"\"\n")?;
        let mut command = Command::new(binary);
        command
            .arg(dir.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = run_as()? {
            for f in [
                dir.as_path(),
                &dir.join("pgbouncer.ini"),
                &dir.join("userlist.txt"),
            ] {
                std::os::unix::fs::chown(f, Some(uid), Some(gid))?;
            }
            command.uid(uid).gid(gid);
        }
        let child = command.spawn()?;
        let bouncer = PgBouncer { child, dir, port };
        bouncer.wait_ready(Duration::from_secs(10)).await?;
        Ok(bouncer)
    }

    /// Waits until the admin console answers a query (the port may be open before that).
    async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = match self.admin().await {
                Ok(admin) => admin
                    .simple_query("SHOW VERSION")
                    .await
                    .map(|_| ())
                    .map_err(anyhow::Error::from),
                Err(e) => Err(e),
            };
            match answer {
                Ok(()) => return Ok(()),
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => anyhow::bail!("pgbouncer does not answer: {e}; its log:\n{}", self.log()),
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `db` through this pgBouncer.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// pgBouncer's own log (connections, errors it saw from servers).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    /// A connection to the admin console (the virtual database `pgbouncer`; simple queries only).
    pub async fn admin(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.url("pgbouncer"), tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// One `SHOW` of the admin console (`CLIENTS`, `SERVERS`, `POOLS`, `STATS`), one map per row.
    pub async fn show(&self, what: &str) -> anyhow::Result<Vec<HashMap<String, String>>> {
        let admin = self.admin().await?;
        let mut rows = Vec::new();
        for message in admin.simple_query(&format!("SHOW {what}")).await? {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                let mut map = HashMap::new();
                for (i, column) in row.columns().iter().enumerate() {
                    map.insert(
                        column.name().to_owned(),
                        row.get(i).unwrap_or_default().to_owned(),
                    );
                }
                rows.push(map);
            }
        }
        Ok(rows)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
