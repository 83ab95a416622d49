//! One test's world ([`TestApp`]): a database cloned from the migrated template, a broker
//! namespace of its own, the services started in-process, and HTTP helpers.

use foxflow_config::{Config, Process};
use foxflow_messaging::Topology;
use foxflow_process::Shutdown;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use uuid::Uuid;

const ADMIN_DB_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432";

fn base_url() -> String {
    std::env::var("FOX_TEST_PG").unwrap_or_else(|_| SERVER_URL.to_owned())
}

fn amqp_url() -> String {
    std::env::var("FOX_TEST_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// What a test wants running besides the database.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub api: bool,
    pub import_worker: bool,
    /// Starts `ai_worker::start` too (off by default: most tests import only).
    pub ai_worker: bool,
    /// Extra environment for every service (e.g. `MAX_IMPORT_ROWS`).
    pub env: Vec<(String, String)>,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            api: true,
            import_worker: true,
            ai_worker: false,
            env: Vec::new(),
        }
    }
}

/// One test's world: its own database and namespace, its services, and an
/// admin token. Dropping it stops the services and removes the database and
/// the queues.
pub struct TestApp {
    pub database_url: String,
    pub db_name: String,
    pub namespace: String,
    pub api_addr: Option<SocketAddr>,
    pub worker_metrics: Option<SocketAddr>,
    /// The AI worker's `/metrics`, when the test started one.
    pub ai_worker_metrics: Option<SocketAddr>,
    pub admin_token: String,
    pub client: reqwest::Client,
    env: HashMap<String, String>,
    /// The services' own topology (namespace and retry delays from `env`).
    topology: Topology,
    shutdown: Shutdown,
    tasks: Vec<JoinHandle<()>>,
}

async fn pg(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn migrations_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

/// The template's name changes whenever a migration does.
fn template_name() -> String {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(migrations_dir()) {
        for d in dirs.flatten() {
            if let Ok(inner) = std::fs::read_dir(d.path()) {
                files.extend(inner.flatten().map(|f| f.path()));
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        // The migration's directory names its version: a renamed migration
        // is a new one to diesel, and must make a new template too.
        let dir = migrations_dir();
        h.update(f.strip_prefix(&dir).unwrap_or(&f).to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap_or_default());
    }
    format!("foxflow_tpl_{}", &hex::encode(h.finalize())[..12])
}

/// Creates a database for one test from the migrated template, building the
/// template first if no test has yet (under an advisory lock, so parallel
/// test processes build it once).
async fn create_test_database() -> anyhow::Result<(String, String)> {
    let admin_url = std::env::var("FOX_TEST_PG_ADMIN").unwrap_or_else(|_| ADMIN_DB_URL.to_owned());
    let admin = pg(&admin_url).await?;
    admin.execute("SELECT pg_advisory_lock(727274)", &[]).await?;
    let result = async {
        let template = template_name();
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
            .await?
            .is_some();
        if !exists {
            let building = format!("{template}_build");
            admin
                .execute(&format!("DROP DATABASE IF EXISTS \"{building}\""), &[])
                .await?;
            admin
                .execute(&format!("CREATE DATABASE \"{building}\""), &[])
                .await?;
            foxflow_storage::migrate::run_migrations(&format!("{}/{building}", base_url())).await?;
            admin
                .execute(
                    &format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""),
                    &[],
                )
                .await?;
        }
        let name = format!("foxflow_t_{}", Uuid::new_v4().simple());
        admin
            .execute(
                &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
                &[],
            )
            .await?;
        Ok::<_, anyhow::Error>(name)
    }
    .await;
    let _ = admin.execute("SELECT pg_advisory_unlock(727274)", &[]).await;
    let name = result?;
    Ok((format!("{}/{name}", base_url()), name))
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(TestOptions::default()).await
    }

    pub async fn spawn_with(options: TestOptions) -> TestApp {
        foxflow_telemetry::init_for_tests();
        let (database_url, db_name) = create_test_database().await.expect("test database");
        // A test may bring its own namespace (e.g. one it loaded definitions
        // for); it is deleted with the app all the same.
        let namespace = options
            .env
            .iter()
            .find(|(k, _)| k == "FOX_NAMESPACE")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| format!("t{}", &Uuid::new_v4().simple().to_string()[..12]));
        // A test may put a pooler between the services and PostgreSQL: `FOX_TEST_SERVICES_PG` in
        // its env is the server the services connect to (a URL without database, like
        // `FOX_TEST_PG`). Migrations, the admin token and `pg()` stay direct.
        let services_url = options
            .env
            .iter()
            .find(|(k, _)| k == "FOX_TEST_SERVICES_PG")
            .map_or_else(
                || database_url.clone(),
                |(_, server)| format!("{server}/{db_name}"),
            );
        let mut env: HashMap<String, String> = [
            ("DATABASE_URL", services_url.as_str()),
            ("AMQP_URL", amqp_url().as_str()),
            ("FOX_NAMESPACE", namespace.as_str()),
            ("API_ADDR", "127.0.0.1:0"),
            ("METRICS_ADDR", "127.0.0.1:0"),
            ("IMPORT_RATE_LIMIT", "off"),
            ("AI_RATE_LIMIT", "off"),
            ("UPLOAD_THROTTLE", "off"),
            ("IMPORT_RETRY_DELAY", "1s"),
            ("AI_RETRY_DELAY", "1s"),
            ("DB_POOL_SIZE", "4"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in &options.env {
            env.insert(k.clone(), v.clone());
        }
        let config = Config::from_map(Process::Cli, &env).expect("test config");
        let topology = Topology::from_config(&config);
        let shutdown = Shutdown::new();
        let mut tasks = Vec::new();
        let mut api_addr = None;
        let mut worker_metrics = None;
        if options.api {
            let config = Config::from_map(Process::ApiGateway, &env).expect("api config");
            let running = api_gateway::start(config, shutdown.clone())
                .await
                .expect("api starts");
            api_addr = Some(running.addr);
            tasks.extend(running.tasks);
        }
        if options.import_worker {
            let config = Config::from_map(Process::ImportWorker, &env).expect("worker config");
            let running = import_worker::start(config, shutdown.clone())
                .await
                .expect("worker starts");
            worker_metrics = running.metrics_addr;
            tasks.extend(running.tasks);
        }
        let mut ai_worker_metrics = None;
        if options.ai_worker {
            let config = Config::from_map(Process::AiWorker, &env).expect("ai worker config");
            let running = ai_worker::start(config, shutdown.clone())
                .await
                .expect("ai worker starts");
            ai_worker_metrics = running.metrics_addr;
            tasks.extend(running.tasks);
        }
        let pool = foxflow_storage::build_pool(&database_url, 1, "test").expect("pool");
        let mut conn = foxflow_storage::pool::conn(&pool).await.expect("conn");
        let admin_token =
            foxflow_storage::auth::create_token(&mut conn, "test-admin", foxflow_storage::auth::Role::Admin)
                .await
                .expect("admin token");
        TestApp {
            database_url,
            db_name,
            namespace,
            api_addr,
            worker_metrics,
            ai_worker_metrics,
            admin_token,
            client: reqwest::Client::new(),
            env,
            topology,
            shutdown,
            tasks,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.api_addr.expect("this test started no API")
        )
    }

    /// A token for a new user with the given role.
    pub async fn token(&self, name: &str, role: &str) -> String {
        let pool = foxflow_storage::build_pool(&self.database_url, 1, "test").expect("pool");
        let mut conn = foxflow_storage::pool::conn(&pool).await.expect("conn");
        foxflow_storage::auth::create_token(&mut conn, name, role.parse().expect("role"))
            .await
            .expect("token")
    }

    /// A direct connection for assertions on stored values.
    pub async fn pg(&self) -> tokio_postgres::Client {
        pg(&self.database_url).await.expect("test database connection")
    }

    /// Uploads a file as the admin; returns the raw response.
    pub async fn upload(
        &self,
        file_name: &str,
        bytes: Vec<u8>,
        import_type: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        self.upload_as(&self.admin_token, file_name, bytes, import_type, fields)
            .await
    }

    pub async fn upload_as(
        &self,
        token: &str,
        file_name: &str,
        bytes: Vec<u8>,
        import_type: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = Form::new().text("import_type", import_type.to_owned());
        for (k, v) in fields {
            form = form.text((*k).to_owned(), (*v).to_owned());
        }
        form = form.part("file", Part::bytes(bytes).file_name(file_name.to_owned()));
        self.client
            .post(self.url("/api/v1/imports"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("upload request")
    }

    /// Uploads and returns the job id, asserting the 202.
    pub async fn submit(&self, file_name: &str, bytes: Vec<u8>, import_type: &str) -> String {
        let resp = self.upload(file_name, bytes, import_type, &[]).await;
        assert_eq!(resp.status(), 202, "upload answered {}", resp.status());
        let body: Value = resp.json().await.expect("json");
        body["id"].as_str().expect("job id").to_owned()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `POST path` (no body) as `token`: the status and the JSON answer.
    pub async fn post_json(&self, path: &str, token: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls a job until its status is final; panics after `timeout`.
    pub async fn wait_final(&self, job_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, job) = self.get_json(&format!("/api/v1/imports/{job_id}")).await;
            assert_eq!(status, 200, "job lookup failed: {job}");
            if matches!(
                job["status"].as_str(),
                Some("success" | "partial" | "error" | "cancelled")
            ) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {job_id} not final after {timeout:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts one more import worker on this app's database and namespace:
    /// another replica, as a second process would be. `overrides` change the
    /// app's environment for this worker alone. It stops with the app.
    /// Returns where its `/metrics` answers.
    pub async fn spawn_extra_import_worker(&mut self, overrides: &[(&str, &str)]) -> Option<SocketAddr> {
        let config =
            Config::from_map(Process::ImportWorker, &self.env_with(overrides)).expect("worker config");
        let running = import_worker::start(config, self.shutdown.clone())
            .await
            .expect("extra worker starts");
        self.tasks.extend(running.tasks);
        running.metrics_addr
    }

    /// Starts one more API replica on this app's database and namespace,
    /// with `overrides` applied to its environment; returns its address. It
    /// stops with the app.
    pub async fn spawn_extra_api(&mut self, overrides: &[(&str, &str)]) -> SocketAddr {
        let config = Config::from_map(Process::ApiGateway, &self.env_with(overrides)).expect("api config");
        let running = api_gateway::start(config, self.shutdown.clone())
            .await
            .expect("extra api starts");
        self.tasks.extend(running.tasks);
        running.addr
    }

    fn env_with(&self, overrides: &[(&str, &str)]) -> HashMap<String, String> {
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        env
    }

    /// The environment the services were started with.
    pub fn env(&self) -> &HashMap<String, String> {
        &self.env
    }

    /// The topology the services declare.
    pub fn topology(&self) -> Topology {
        self.topology.clone()
    }

    /// Stops the services and waits for them.
    pub async fn stop(&mut self) {
        self.shutdown.trigger();
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let db = self.db_name.clone();
        let queues = self.topology.all_queues();
        let exchanges = self.topology.all_exchanges();
        // Cleanup needs I/O; Drop cannot await, so it runs on its own thread.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(admin) = pg(ADMIN_DB_URL).await {
                    let _ = admin
                        .execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"), &[])
                        .await;
                }
                if let Ok(conn) = foxflow_messaging::connect(&amqp_url(), "test-cleanup").await {
                    if let Ok(ch) = conn.create_channel().await {
                        for q in queues {
                            let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
                        }
                        for e in exchanges {
                            let _ = ch.exchange_delete(e.as_str().into(), Default::default()).await;
                        }
                    }
                    let _ = conn.close(200, "bye".into()).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
