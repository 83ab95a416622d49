//! Secrets (docs/spec.md §12, issue 9): the OpenAI key, the database and broker passwords and API
//! tokens never appear in what the services print, answer or export. The three services run
//! as real processes with recognisable secrets in their environment, go through successful and
//! failing operations (bad token, refused upload, unknown job, a provider that refuses the key,
//! a broker and a database that cannot be reached), and then every log line, every `/metrics`
//! page and every answer body is searched for the secrets.

use foxflow_testkit::chaos::ServiceProcess;
use foxflow_testkit::{TestApp, TestOptions};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WAIT: Duration = Duration::from_secs(60);

/// A port nobody listens on (bound, then released).
fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn log_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/test-logs/{name}.log"))
}

/// Polls `f` until it returns `Some`; panics with `what` after `limit`.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Secrets {
    openai_key: String,
    db_password: String,
    amqp_password: String,
    bad_token: String,
}

impl Secrets {
    fn new() -> Self {
        let tag = Uuid::new_v4().simple().to_string();
        Secrets {
            openai_key: format!("sk-foxflowleak{tag}"),
            db_password: format!("DbPassLeak{}", &tag[..12]),
            amqp_password: format!("AmqpPassLeak{}", &tag[..12]),
            bad_token: format!("fox_badtokenleak{}", &tag[..16]),
        }
    }

    /// Every secret and where it came from; `admin_token` is the test's real token.
    fn all<'a>(&'a self, admin_token: &'a str) -> Vec<(&'static str, &'a str)> {
        vec![
            ("OPENAI_API_KEY", self.openai_key.as_str()),
            ("the database password", self.db_password.as_str()),
            ("the broker password", self.amqp_password.as_str()),
            ("the broker's default credentials in a URL", ":guest@"),
            ("a rejected bearer token", self.bad_token.as_str()),
            ("the admin token", admin_token),
        ]
    }
}

/// `postgres://user@host/db` → `postgres://user:password@host/db`.
fn with_password(url: &str, password: &str) -> String {
    url.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{password}@"),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_answers_or_metrics() {
    let app = TestApp::spawn_with(TestOptions {
        api: false,
        import_worker: false,
        ..Default::default()
    })
    .await;
    let secrets = Secrets::new();
    // The provider refuses the key, quoting it masked as OpenAI does.
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "Incorrect API key provided: sk-foxf****************. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "code": "invalid_api_key"}
        })))
        .mount(&provider)
        .await;

    // PostgreSQL trusts local connections, so a password in the URL is sent only if asked
    // for; it is still read, stored and handed around by every process.
    let api_addr = free_addr();
    let worker_metrics = free_addr();
    let ai_metrics = free_addr();
    let mut env: HashMap<String, String> = app.env().clone();
    env.insert(
        "DATABASE_URL".into(),
        with_password(&app.database_url, &secrets.db_password),
    );
    env.insert("API_ADDR".into(), api_addr.to_string());
    env.insert("AI_PROVIDER".into(), "openai".into());
    env.insert("OPENAI_BASE_URL".into(), provider.uri());
    env.insert("OPENAI_API_KEY".into(), secrets.openai_key.clone());
    env.insert("OPENAI_MODEL".into(), "gpt-test".into());
    env.insert("AI_MAX_RETRIES".into(), "0".into());
    let with = |overrides: &[(&str, String)]| {
        let mut env = env.clone();
        for (k, v) in overrides {
            env.insert((*k).to_owned(), v.clone());
        }
        env
    };
    let ns = &app.namespace;
    let names = [
        format!("secrets-{ns}-api"),
        format!("secrets-{ns}-import"),
        format!("secrets-{ns}-ai"),
        format!("secrets-{ns}-unreachable"),
    ];
    let mut services = vec![
        ServiceProcess::start("api-gateway", &names[0], &with(&[])),
        ServiceProcess::start(
            "import-worker",
            &names[1],
            &with(&[("METRICS_ADDR", worker_metrics.to_string())]),
        ),
        ServiceProcess::start(
            "ai-worker",
            &names[2],
            &with(&[("METRICS_ADDR", ai_metrics.to_string())]),
        ),
        // A worker whose broker and database cannot be reached: the error paths print the URLs'
        // hosts, never their passwords.
        ServiceProcess::start(
            "import-worker",
            &names[3],
            &with(&[
                ("METRICS_ADDR", free_addr().to_string()),
                (
                    "AMQP_URL",
                    format!("amqp://foxflow:{}@{}/%2f", secrets.amqp_password, free_addr()),
                ),
                (
                    "DATABASE_URL",
                    format!(
                        "postgres://foxflow:{}@{}/foxflow",
                        secrets.db_password,
                        free_addr()
                    ),
                ),
            ]),
        ),
    ];

    let client = reqwest::Client::new();
    let url = |p: &str| format!("http://{api_addr}{p}");
    until("the API answering /readyz", WAIT, || {
        let c = client.clone();
        let u = url("/readyz");
        async move { c.get(u).send().await.ok().filter(|r| r.status() == 200) }
    })
    .await;
    let mut bodies: Vec<(String, String)> = Vec::new();
    let upload = |token: String, name: &str, bytes: Vec<u8>| {
        let form = Form::new()
            .text("import_type", "villes")
            .part("file", Part::bytes(bytes).file_name(name.to_owned()));
        client
            .post(url("/api/v1/imports"))
            .bearer_auth(token)
            .multipart(form)
            .send()
    };

    // A good import, with the real token.
    let resp = upload(
        app.admin_token.clone(),
        "villes.csv",
        b"nom,code_postal\nLyon,69001\n".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.unwrap();
    let job_url = url(&format!("/api/v1/imports/{}", job["id"].as_str().unwrap()));
    let job = until("the import to finish", WAIT, || {
        let c = client.clone();
        let (u, t) = (job_url.clone(), app.admin_token.clone());
        async move {
            let job: Value = c.get(u).bearer_auth(t).send().await.ok()?.json().await.ok()?;
            (job["status"] == "success").then_some(job)
        }
    })
    .await;
    bodies.push(("the finished job".into(), job.to_string()));

    // Failing requests: a wrong token, a refused file, an unknown job, a malformed body.
    let resp = upload(secrets.bad_token.clone(), "villes.csv", b"nom\nA\n".to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    bodies.push(("a rejected token".into(), resp.text().await.unwrap()));
    let resp = upload(app.admin_token.clone(), "x.csv", b"PK\x03\x04zip".to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    bodies.push(("a refused upload".into(), resp.text().await.unwrap()));
    let resp = client
        .get(url(&format!("/api/v1/imports/{}", Uuid::new_v4())))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    bodies.push(("an unknown job".into(), resp.text().await.unwrap()));
    let resp = client
        .post(url("/api/v1/ai/generations"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{\"target\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    bodies.push(("a malformed body".into(), resp.text().await.unwrap()));

    // AI generation against a provider that refuses the key: the task fails with a reason.
    let ville: i64 = app
        .pg()
        .await
        .query_one("SELECT id FROM villes LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    let resp = client
        .post(url("/api/v1/ai/generations"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"target": "ville", "ids": [ville], "kinds": ["description"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let batch: Value = resp.json().await.unwrap();
    let batch_url = url(&format!(
        "/api/v1/ai/generations/{}",
        batch["id"].as_str().unwrap()
    ));
    let batch = until("the AI batch to finish", WAIT, || {
        let c = client.clone();
        let (u, t) = (batch_url.clone(), app.admin_token.clone());
        async move {
            let b: Value = c.get(u).bearer_auth(t).send().await.ok()?.json().await.ok()?;
            (b["pending"] == 0).then_some(b)
        }
    })
    .await;
    assert_eq!(batch["failed"], 1, "the provider refused the key: {batch}");
    bodies.push(("the failed AI batch".into(), batch.to_string()));
    let sent_key = provider
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .any(|r| {
            r.headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == format!("Bearer {}", secrets.openai_key))
        });
    assert!(sent_key, "the key is read and sent to the provider");
    let last_error: Option<String> = app
        .pg()
        .await
        .query_one(
            "SELECT string_agg(coalesce(last_error, ''), ' ') FROM ai_tasks",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    bodies.push(("ai_tasks.last_error".into(), last_error.unwrap_or_default()));

    for (what, addr) in [
        ("the API's /metrics", api_addr),
        ("the import worker's /metrics", worker_metrics),
        ("the AI worker's /metrics", ai_metrics),
    ] {
        let text = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("# TYPE"), "{what} answered: {text}");
        bodies.push((what.into(), text));
    }

    // The unreachable worker has tried (and logged) at least once.
    until("the unreachable worker to log its failure", WAIT, || {
        let p = log_path(&names[3]);
        async move {
            std::fs::read_to_string(p)
                .ok()
                .filter(|l| l.to_lowercase().contains("error") || l.to_lowercase().contains("warn"))
        }
    })
    .await;
    // foxctl's own error when the database cannot be reached.
    let foxctl = std::process::Command::new(foxflow_testkit::chaos::binary("foxctl"))
        .arg("migrate")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "DATABASE_URL",
            format!(
                "postgres://foxflow:{}@{}/foxflow",
                secrets.db_password,
                free_addr()
            ),
        )
        .output()
        .expect("foxctl runs");
    assert!(!foxctl.status.success(), "the database is unreachable");
    bodies.push((
        "foxctl's error".into(),
        String::from_utf8_lossy(&foxctl.stderr).into_owned() + &String::from_utf8_lossy(&foxctl.stdout),
    ));

    // Shut everything down so the logs are complete, then read them.
    for service in &mut services {
        service.terminate(Duration::from_secs(15));
    }
    for name in &names {
        let log = std::fs::read_to_string(log_path(name)).expect("service log");
        assert!(!log.is_empty(), "{name} logged nothing");
        bodies.push((format!("the log of {name}"), log));
    }
    for (where_, text) in &bodies {
        for (secret, value) in secrets.all(&app.admin_token) {
            assert!(
                !text.contains(value),
                "{secret} appears in {where_}:\n{}",
                text.lines()
                    .filter(|l| l.contains(value))
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_stored_hashed_and_revocation_is_immediate() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let token = app.token("alice", "staff").await;
    let list = |t: String| {
        let c = app.client.clone();
        let u = app.url("/api/v1/imports");
        async move { c.get(u).bearer_auth(t).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(list(token.clone()).await, 200);
    let db = app.pg().await;
    let rows = db
        .query(
            "SELECT t::text, u::text, t.last_used_at IS NOT NULL FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE u.name = 'alice'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let (token_row, user_row): (String, String) = (rows[0].get(0), rows[0].get(1));
    let secret_part = token.trim_start_matches("fox_");
    assert!(
        !token_row.contains(secret_part) && !user_row.contains(secret_part),
        "the token itself is not stored: {token_row} {user_row}"
    );
    assert!(rows[0].get::<_, bool>(2), "last_used_at records the use");

    let revoke = std::process::Command::new(foxflow_testkit::chaos::binary("foxctl"))
        .args(["token", "revoke", "--name", "alice"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("foxctl runs");
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    assert_eq!(list(token).await, 401, "a revoked token is refused at once");
    assert_eq!(
        list(app.admin_token.clone()).await,
        200,
        "other users' tokens still work"
    );
}
