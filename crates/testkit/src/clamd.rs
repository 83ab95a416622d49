//! A real clamd for the virus-scan tests: Debian's `/usr/sbin/clamd` (scripts/install-test-servers.sh)
//! on a free port of 127.0.0.1, in a temporary directory holding its configuration and a
//! signature database written here, since there is no network for freshclam. The database knows
//! two things: the EICAR test file, and [`MARKER`], a string of our own.

use foxflow_virus_scan::Clamd;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The EICAR anti-virus test file (68 bytes). Built from two halves so that this source file is
/// not itself taken for the test file by a scanner on a developer's machine.
pub const EICAR: &str = concat!(
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
    "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
);
/// The name clamd reports for [`EICAR`] (it appends `.UNOFFICIAL` to unsigned databases).
pub const EICAR_SIGNATURE: &str = "Foxflow.Test.EICAR";
/// Bytes our own signature matches anywhere in a file.
pub const MARKER: &str = "FOXFLOW-TEST-MALWARE-MARKER-3f9c1e";
/// The name clamd reports for [`MARKER`].
pub const MARKER_SIGNATURE: &str = "Foxflow.Test.Marker";

/// The longest a clamd may take to load the database and answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running clamd; killed when dropped.
pub struct ClamdServer {
    pub addr: SocketAddr,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl ClamdServer {
    /// A clamd accepting streams of up to 64 MiB, above every upload limit the tests set.
    pub async fn start() -> ClamdServer {
        Self::start_with(64 * 1024 * 1024).await
    }

    /// A clamd whose `StreamMaxLength` is `stream_max_length` bytes.
    pub async fn start_with(stream_max_length: u64) -> ClamdServer {
        let binary = clamd_binary();
        let dir = tempfile::tempdir().expect("clamd temporary directory");
        write_database(&dir.path().join("db"));
        std::fs::create_dir_all(dir.path().join("tmp")).expect("clamd tmp dir");
        // A port found free may be taken before clamd binds it: try a few.
        let mut log = String::new();
        for _ in 0..3 {
            let port = free_port();
            write_config(dir.path(), port, stream_max_length);
            let log_file = std::fs::File::create(dir.path().join("clamd.log")).expect("clamd log");
            let mut child = Command::new(&binary)
                .arg("--config-file")
                .arg(dir.path().join("clamd.conf"))
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clamd log"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if wait_ready(addr, &mut child).await {
                return ClamdServer {
                    addr,
                    child: Some(child),
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            log = std::fs::read_to_string(dir.path().join("clamd.log")).unwrap_or_default();
        }
        panic!("clamd did not answer PING within {START_TIMEOUT:?}; its log:\n{log}");
    }

    /// `host:port`, as `CLAMD_ADDR` takes it.
    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    /// Kills clamd (SIGKILL) and waits for it: the port refuses connections from then on.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What clamd printed, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("clamd.log")).unwrap_or_default()
    }
}

impl Drop for ClamdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `PING` until `PONG` (clamd opens its socket only once the database is loaded), the
/// process exits, or the deadline passes.
async fn wait_ready(addr: SocketAddr, child: &mut Child) -> bool {
    let client = Clamd::new(addr.to_string(), Duration::from_secs(1), Duration::from_secs(2));
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if client.ping().await.is_ok() {
            return true;
        }
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn clamd_binary() -> PathBuf {
    let debian = PathBuf::from("/usr/sbin/clamd");
    if debian.exists() {
        return debian;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("clamd"))
        .find(|p| p.exists())
        .expect("clamd is not installed: run scripts/install-test-servers.sh (Debian's clamav-daemon)")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// EICAR by its MD5 and size (`.hdb`, as ClamAV's own database finds it), and [`MARKER`] as a
/// content pattern at any offset of any file type (`.ndb`, target 0).
fn write_database(db: &Path) {
    std::fs::create_dir_all(db).expect("clamd database dir");
    std::fs::write(
        db.join("foxflow-test.hdb"),
        format!(
            "44d88612fea8a8f36de82e1278abb02f:{}:{EICAR_SIGNATURE}\n",
            EICAR.len()
        ),
    )
    .expect("hdb");
    std::fs::write(
        db.join("foxflow-test.ndb"),
        format!("{MARKER_SIGNATURE}:0:*:{}\n", hex::encode(MARKER)),
    )
    .expect("ndb");
}

/// Foreground (the test owns the process), TCP on 127.0.0.1 only, no local socket. No `User`:
/// clamd then keeps the uid it was started with, which can read the database we wrote.
fn write_config(dir: &Path, port: u16, stream_max_length: u64) {
    let conf = format!(
        "Foreground yes\n\
         TCPSocket {port}\n\
         TCPAddr 127.0.0.1\n\
         DatabaseDirectory {db}\n\
         TemporaryDirectory {tmp}\n\
         StreamMaxLength {stream_max_length}\n\
         MaxThreads 4\n\
         LogTime no\n",
        db = dir.join("db").display(),
        tmp = dir.join("tmp").display(),
    );
    std::fs::write(dir.join("clamd.conf"), conf).expect("clamd.conf");
}
