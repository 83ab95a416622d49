//! The operators' side (issue 10): the events stream, the stats, the OpenAPI
//! document, and the dashboard driven in a real headless Chromium.
//!
//! Over 600 lines on purpose: most of it is the one browser scenario, a single user journey
//! through the dashboard that reads best in order.

use foxflow_testkit::data::entreprises_csv;
use foxflow_testkit::{TestApp, TestOptions};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// A CSV with `good` valid companies and `bad` rows whose SIREN is invalid.
fn csv_with_bad_rows(good: u32, bad: u32, seed: u64) -> Vec<u8> {
    let mut csv = entreprises_csv(good, seed);
    for i in 0..bad {
        csv.push_str(&format!("12{i},,Mauvaise {i},,,,,,,,\n"));
    }
    csv.into_bytes()
}

/// One parsed SSE frame.
#[derive(Debug)]
struct Frame {
    id: Option<String>,
    event: String,
    data: String,
}

/// Reads an events stream to its end (or panics at `deadline`), returning
/// the frames and how many keepalive comments came.
async fn read_stream(mut resp: reqwest::Response, deadline: Duration) -> Vec<Frame> {
    let started = Instant::now();
    let mut buf = String::new();
    let mut frames = Vec::new();
    loop {
        let left = deadline
            .checked_sub(started.elapsed())
            .unwrap_or_else(|| panic!("stream still open after {deadline:?}; frames so far: {frames:?}"));
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("stream still open after {deadline:?}; frames so far: {frames:?}"))
            .expect("stream read");
        let Some(chunk) = chunk else { break };
        buf.push_str(std::str::from_utf8(&chunk).expect("utf-8 frames"));
        while let Some(cut) = buf.find("\n\n") {
            let raw: String = buf.drain(..cut + 2).collect();
            let mut frame = Frame {
                id: None,
                event: String::new(),
                data: String::new(),
            };
            for line in raw.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    frame.id = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    frame.event = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    frame.data.push_str(v);
                }
            }
            if !frame.event.is_empty() {
                frames.push(frame);
            }
        }
    }
    frames
}

async fn open_events(app: &TestApp, job_id: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/imports/{job_id}/events")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("events request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_follows_a_job_and_ends_with_its_final_status() {
    let app = TestApp::spawn().await;
    let id = app
        .submit("e.csv", csv_with_bad_rows(400, 3, 11), "entreprises")
        .await;
    let resp = open_events(&app, &id).await;
    assert_eq!(resp.status(), 200);
    let header = |k: &str| {
        resp.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/event-stream"));
    assert_eq!(header("cache-control"), "no-cache");
    assert_eq!(header("x-accel-buffering"), "no");
    let frames = read_stream(resp, WAIT).await;

    // `job` frames, then exactly one `end`, last.
    let (end, jobs) = frames.split_last().expect("frames");
    assert_eq!(end.event, "end", "{frames:?}");
    assert!(
        !jobs.is_empty() && jobs.iter().all(|f| f.event == "job"),
        "{frames:?}"
    );
    let last_job: Value = serde_json::from_str(&jobs.last().unwrap().data).unwrap();
    let end_job: Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!(last_job, end_job, "the end frame repeats the final job");
    assert_eq!(end_job["status"], "partial", "{end_job}");
    assert_eq!(end_job["processed_rows"], 403);
    assert_eq!(end_job["error_rows"], 3);
    assert_eq!(end.id.as_deref(), Some("403-partial"));
    // Progress never goes backwards.
    let processed: Vec<i64> = jobs
        .iter()
        .map(|f| {
            serde_json::from_str::<Value>(&f.data).unwrap()["processed_rows"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert!(processed.windows(2).all(|w| w[0] <= w[1]), "{processed:?}");
    // The job frame is exactly what GET /imports/{id} answers (but for the running clock).
    let (_, mut got) = app.get_json(&format!("/api/v1/imports/{id}")).await;
    let mut streamed = end_job.clone();
    got["duration_seconds"] = Value::Null;
    streamed["duration_seconds"] = Value::Null;
    assert_eq!(streamed, got);

    // Connecting to a finished job: the final job and `end` at once.
    let again = read_stream(open_events(&app, &id).await, Duration::from_secs(10)).await;
    let events: Vec<&str> = again.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(events, ["job", "end"]);

    // Same rules as GET /imports/{id}: no token → 401, unknown or another
    // staff member's job → 404, with the standard error body.
    let anon = app
        .client
        .get(app.url(&format!("/api/v1/imports/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let staff = app.token("someone", "staff").await;
    for (token, path) in [
        (staff.as_str(), format!("/api/v1/imports/{id}/events")),
        (
            app.admin_token.as_str(),
            format!("/api/v1/imports/{}/events", uuid::Uuid::new_v4()),
        ),
        (app.admin_token.as_str(), "/api/v1/imports/nope/events".to_owned()),
    ] {
        let resp = app
            .client
            .get(app.url(&path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_stream_ends_when_the_server_stops() {
    // No worker: the job stays pending and its stream would never end by itself.
    let mut app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let id = app
        .submit("p.csv", entreprises_csv(3, 1).into_bytes(), "entreprises")
        .await;
    let mut resp = open_events(&app, &id).await;
    let first = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
        .await
        .expect("first frame at once")
        .unwrap()
        .expect("a frame");
    let first = String::from_utf8(first.to_vec()).unwrap();
    assert!(
        first.contains("event: job") && first.contains("\"status\":\"pending\""),
        "{first}"
    );
    let started = Instant::now();
    let (_, frames) = tokio::join!(app.stop(), read_stream(resp, Duration::from_secs(8)));
    // The gateway's grace period is 10 s; the stream must not use it up.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stop took {:?}",
        started.elapsed()
    );
    assert!(frames.iter().all(|f| f.event != "end"), "{frames:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_jobs_by_status_and_type() {
    let app = TestApp::spawn().await;
    let (_, empty) = app.get_json("/api/v1/imports/stats").await;
    assert_eq!(empty["total"], 0, "{empty}");
    assert_eq!(empty["average_success_rate"], Value::Null);
    assert_eq!(empty["by_status"]["success"], 0);
    assert_eq!(empty["by_type"]["sous_categories"], 0);

    let a = app
        .submit("a.csv", entreprises_csv(20, 1).into_bytes(), "entreprises")
        .await;
    // 8 good + 2 bad: 80 % success.
    let b = app
        .submit("b.csv", csv_with_bad_rows(8, 2, 2), "entreprises")
        .await;
    // The first towns of the real list the project ships.
    let sample = std::fs::read_to_string(workspace_root().join("docs/samples/villes_france.csv")).unwrap();
    let villes: String = sample.lines().take(4).map(|l| format!("{l}\n")).collect();
    let villes = villes.into_bytes();
    let c = app.submit("v.csv", villes, "villes").await;
    let mut processed = 0;
    let mut errors = 0;
    for id in [&a, &b, &c] {
        let job = app.wait_final(id, WAIT).await;
        processed += job["processed_rows"].as_i64().unwrap();
        errors += job["error_rows"].as_i64().unwrap();
    }
    let (_, b_job) = app.get_json(&format!("/api/v1/imports/{b}")).await;
    assert_eq!(b_job["status"], "partial");

    let (status, stats) = app.get_json("/api/v1/imports/stats").await;
    assert_eq!(status, 200, "`stats` is a route, not an import id: {stats}");
    assert_eq!(stats["total"], 3, "{stats}");
    assert_eq!(stats["by_status"]["success"], 2, "{stats}");
    assert_eq!(stats["by_status"]["partial"], 1, "{stats}");
    assert_eq!(stats["by_status"]["pending"], 0);
    assert_eq!(stats["by_type"]["entreprises"], 2);
    assert_eq!(stats["by_type"]["villes"], 1);
    assert_eq!(stats["by_type"]["categories"], 0);
    assert_eq!(stats["rows"]["processed"], processed);
    assert_eq!(stats["rows"]["errors"], errors);
    let written: i64 = ["created", "updated", "unchanged"]
        .iter()
        .map(|k| stats["rows"][k].as_i64().unwrap())
        .sum();
    assert_eq!(written, processed - errors, "{stats}");
    // The mean of the jobs' rates: (100 + 80 + 100) / 3.
    assert_eq!(stats["average_success_rate"], 93.33, "{stats}");

    // Staff count their own jobs only.
    let staff = app.token("staffer", "staff").await;
    let resp = app
        .client
        .get(app.url("/api/v1/imports/stats"))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    let mine: Value = resp.json().await.unwrap();
    assert_eq!(mine["total"], 0, "{mine}");
    let anon = app
        .client
        .get(app.url("/api/v1/imports/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
}

/// Every route the gateway may serve: (method, path template, an example
/// path to probe it with). Webhooks are listed so they are checked as soon
/// as they are served.
fn candidate_routes() -> Vec<(&'static str, &'static str, String)> {
    let id = uuid::Uuid::new_v4().to_string();
    let p = |t: &str| t.replace("{id}", &id);
    [
        ("get", "/"),
        ("get", "/docs"),
        ("get", "/assets/app.js"),
        ("get", "/assets/docs.js"),
        ("get", "/assets/app.css"),
        ("get", "/assets/icon.svg"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/api/openapi.json"),
        ("post", "/api/v1/imports"),
        ("get", "/api/v1/imports"),
        ("get", "/api/v1/imports/stats"),
        ("get", "/api/v1/imports/{id}"),
        ("get", "/api/v1/imports/{id}/errors"),
        ("get", "/api/v1/imports/{id}/report.xlsx"),
        ("get", "/api/v1/imports/{id}/events"),
        ("post", "/api/v1/imports/{id}/retry"),
        ("get", "/api/v1/imports/{id}/warnings"),
        ("get", "/api/v1/imports/{id}/changes"),
        ("post", "/api/v1/imports/{id}/apply"),
        ("post", "/api/v1/imports/{id}/cancel"),
        ("post", "/api/v1/imports/{id}/revert"),
        ("post", "/api/v1/ai/generations"),
        ("get", "/api/v1/ai/generations"),
        ("get", "/api/v1/ai/generations/{id}"),
        ("get", "/api/v1/entreprises"),
        ("get", "/api/v1/entreprises/{siren}"),
        ("get", "/api/v1/categories"),
        ("get", "/api/v1/sous-categories"),
        ("get", "/api/v1/villes"),
        ("get", "/api/v1/prolocalisations/{id}"),
        ("get", "/api/v1/queues"),
        ("post", "/api/v1/webhooks"),
        ("get", "/api/v1/webhooks"),
        ("delete", "/api/v1/webhooks/{id}"),
        ("get", "/api/v1/webhooks/{id}/deliveries"),
    ]
    .into_iter()
    .map(|(m, t)| (m, t, p(t).replace("{siren}", "732829320")))
    .collect()
}

/// Whether the gateway routes this request (its fallback answers
/// `route not found`; a missing resource names the resource instead).
async fn is_served(app: &TestApp, viewer: &str, method: &str, path: &str) -> bool {
    let req = match method {
        "get" => app.client.get(app.url(path)),
        "post" => app.client.post(app.url(path)),
        "delete" => app.client.delete(app.url(path)),
        other => panic!("no probe for {other}"),
    };
    let resp = req.bearer_auth(viewer).send().await.expect("probe");
    if resp.status() != 404 {
        return true;
    }
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    // The gateway's own 404, in French (the default language).
    body["error"]["message"] != "route introuvable"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_every_route_the_gateway_serves() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let resp = app.client.get(app.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the document needs no token");
    let doc: Value = resp.json().await.expect("openapi.json parses");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    // A viewer token: probing a POST or DELETE must change nothing.
    let viewer = app.token("probe", "viewer").await;
    let mut served = BTreeSet::new();
    for (method, template, probe) in candidate_routes() {
        if is_served(&app, &viewer, method, &probe).await {
            served.insert((method.to_owned(), template.to_owned()));
        }
    }
    // The core routes are served whatever else is.
    assert!(served.len() >= 28, "{served:?}");
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    // And nothing documented is a route the gateway does not have.
    for (method, path) in &documented {
        let probe = path
            .replace("{id}", &uuid::Uuid::new_v4().to_string())
            .replace("{siren}", "732829320")
            .replace("{entity}", "entreprises");
        assert!(
            is_served(&app, &viewer, method, &probe).await,
            "documented but not served: {method} {path}"
        );
    }
    // Each operation: an id, a 2xx, and the standard error body for errors.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["operationId"].is_string(), "{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path}");
            if path.starts_with("/api/v1/") {
                assert!(responses.contains_key("401"), "{method} {path} documents no 401");
                assert_eq!(
                    responses["401"]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path}"
                );
                assert!(op["security"].is_array(), "{method} {path} names no security");
            }
        }
    }
    // The special content types are what the handlers send.
    let content = |path: &str, method: &str, status: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"][status]["content"]
            .as_object()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(
        content("/api/v1/imports/{id}/events", "get", "200"),
        ["text/event-stream"]
    );
    assert_eq!(
        content("/api/v1/imports/{id}/report.xlsx", "get", "200"),
        ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]
    );
    assert!(content("/metrics", "get", "200")[0].starts_with("text/plain"));
    assert!(content("/", "get", "200")[0].starts_with("text/html"));
    assert_eq!(
        doc["paths"]["/api/v1/imports"]["post"]["requestBody"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["multipart/form-data"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_load_without_a_token_and_work_offline() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    for (path, content_type) in [
        ("/", "text/html"),
        ("/docs", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/docs.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with(content_type), "{path}: {ct}");
        let csp = resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        let body = resp.text().await.unwrap();
        // Nothing is fetched from elsewhere: no absolute URL to another host.
        for needle in ["http://", "https://", "//cdn", "src=\"//"] {
            assert!(
                !body.contains(needle) || path == "/assets/icon.svg",
                "{path} references {needle}"
            );
        }
    }
    let index = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for label in [
        "Entreprises",
        "Catégories",
        "Sous-catégories",
        "Villes",
        "Importer",
        "Jeton",
    ] {
        assert!(index.contains(label), "the dashboard shows {label}");
    }
}

// ---------------------------------------------------------------------------
// The dashboard in a real browser
// ---------------------------------------------------------------------------

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn artifacts_dir() -> PathBuf {
    let dir = workspace_root().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

fn find_program(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in candidates {
        for dir in std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")])
        {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    let hint = "run scripts/install-browser.sh (Debian: apt-get install -y chromium chromium-driver), \
                or set CHROMEDRIVER and CHROMIUM to their paths";
    let chromedriver = find_program("CHROMEDRIVER", &["chromedriver"])
        .unwrap_or_else(|| panic!("chromedriver not found: {hint}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}; {hint}", chromedriver.display()));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = reqwest::Client::new();
    loop {
        if let Ok(resp) = client.get(format!("{}/status", driver.url)).send().await {
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if body["value"]["ready"] == true {
                return driver;
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not become ready on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(driver: &Driver) -> fantoccini::Client {
    let chromium = find_program("CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]).unwrap_or_else(|| {
        panic!("chromium not found: run scripts/install-browser.sh (apt-get install -y chromium chromium-driver)")
    });
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), "chrome".into());
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            // --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start.
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--lang=fr-FR"],
        }),
    );
    fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot open a Chromium session through chromedriver: {e}"))
}

/// Runs `check` in the page until it returns true or `timeout` passes.
async fn wait_js(c: &fantoccini::Client, what: &str, script: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let v = c.execute(script, vec![]).await.expect("script runs");
        if v == Value::Bool(true) {
            return;
        }
        if Instant::now() >= deadline {
            let shot = c.screenshot().await.unwrap_or_default();
            let path = artifacts_dir().join("dashboard-failure.png");
            let _ = std::fs::write(&path, shot);
            let state = c
                .execute(
                    "return document.querySelector('main').innerText.slice(0, 2000)",
                    vec![],
                )
                .await
                .unwrap_or(Value::Null);
            panic!(
                "timed out waiting for {what}; screenshot in {}; page: {state}",
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn screenshot(c: &fantoccini::Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(artifacts_dir().join(format!("dashboard-{name}.png")), png).expect("write screenshot");
}

async fn upload_in_browser(c: &fantoccini::Client, file: &std::path::Path, import_type: &str) {
    use fantoccini::Locator;
    wait_js(
        c,
        "the upload form",
        "return !document.getElementById('view-imports').hidden",
        Duration::from_secs(10),
    )
    .await;
    c.find(Locator::Id("upload-file"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    c.find(Locator::Id("upload-type"))
        .await
        .unwrap()
        .select_by_value(import_type)
        .await
        .unwrap();
    c.find(Locator::Id("upload-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        c,
        "the job page after the upload",
        "return /^#\\/imports\\/[0-9a-f-]{36}$/.test(location.hash) && !document.getElementById('view-job').hidden",
        Duration::from_secs(15),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_browser_uploads_follows_progress_and_shows_error_rows() {
    use fantoccini::Locator;
    let driver = start_driver().await;
    let app = TestApp::spawn().await;
    let c = browser(&driver).await;

    let dir = std::env::temp_dir().join(format!("foxflow-dashboard-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("entreprises-ok.csv");
    std::fs::write(&good, entreprises_csv(1500, 7)).unwrap();
    let bad = dir.join("entreprises-erreurs.csv");
    std::fs::write(&bad, csv_with_bad_rows(40, 5, 8)).unwrap();

    // Signing in: a wrong token is refused, the right one opens the dashboard.
    c.goto(&app.url("/")).await.unwrap();
    wait_js(
        &c,
        "the sign-in form",
        "return !document.getElementById('login').hidden",
        Duration::from_secs(10),
    )
    .await;
    let token = c.find(Locator::Id("token")).await.unwrap();
    token.send_keys("not-a-token").await.unwrap();
    c.find(Locator::Id("login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &c,
        "the refusal",
        "return !document.getElementById('login-error').hidden",
        Duration::from_secs(10),
    )
    .await;
    token.clear().await.unwrap();
    token.send_keys(&app.admin_token).await.unwrap();
    c.find(Locator::Id("login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // A good file: the bar reaches 100 % and the status is `success`.
    upload_in_browser(&c, &good, "entreprises").await;
    wait_js(
        &c,
        "status success and a full bar",
        "const s = document.getElementById('job-status'), b = document.getElementById('job-progress');
         return s.dataset.status === 'success' && b.dataset.pct === '100'",
        WAIT,
    )
    .await;
    let pct = c
        .find(Locator::Id("job-pct"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pct.starts_with("100 %"), "{pct}");
    let status = c
        .find(Locator::Id("job-status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(status, "Réussi");
    let counts = c
        .find(Locator::Id("job-counts"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        counts.contains("1 500") || counts.contains("1\u{202f}500"),
        "{counts}"
    );
    screenshot(&c, "success").await;

    // The list shows it with its badge and a full bar, and the stats count it.
    c.goto(&format!("{}#/", app.url("/"))).await.unwrap();
    wait_js(
        &c,
        "the job in the list",
        "const r = document.querySelector('#imports-body tr[data-id]');
         return !!r && r.querySelector('.badge').dataset.status === 'success'
             && r.querySelector('.bar').dataset.pct === '100'
             && document.querySelectorAll('#stats .stat').length > 0",
        Duration::from_secs(15),
    )
    .await;

    // A file with bad rows: `partial`, and its error table lists them.
    upload_in_browser(&c, &bad, "entreprises").await;
    wait_js(
        &c,
        "status partial",
        "return document.getElementById('job-status').dataset.status === 'partial'",
        WAIT,
    )
    .await;
    wait_js(
        &c,
        "the error rows",
        "const t = document.getElementById('errors-table');
         return !t.hidden && document.querySelectorAll('#errors-body tr').length === 5",
        Duration::from_secs(15),
    )
    .await;
    let rows = c.find_all(Locator::Css("#errors-body tr")).await.unwrap();
    assert!(rows[0].is_displayed().await.unwrap());
    let first = rows[0].text().await.unwrap();
    assert!(
        first.contains("41") || first.contains("42"),
        "error rows carry their line: {first}"
    );
    let total = c
        .find(Locator::Id("errors-total"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(total, "(5)");
    screenshot(&c, "errors").await;

    // Readable on a phone.
    c.set_window_size(390, 844).await.unwrap();
    wait_js(
        &c,
        "no horizontal overflow on a phone",
        "return document.documentElement.scrollWidth <= window.innerWidth + 1",
        Duration::from_secs(5),
    )
    .await;
    screenshot(&c, "phone").await;
    c.set_window_size(1280, 900).await.unwrap();

    // The API reference renders the OpenAPI document.
    c.goto(&app.url("/docs")).await.unwrap();
    wait_js(
        &c,
        "the API reference",
        "return document.querySelectorAll('details.op').length > 20",
        Duration::from_secs(15),
    )
    .await;
    screenshot(&c, "docs").await;

    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    drop(driver);
}

/// Opens the dashboard and signs in with the admin token.
async fn sign_in(c: &fantoccini::Client, app: &TestApp) {
    use fantoccini::Locator;
    c.goto(&app.url("/")).await.unwrap();
    wait_js(
        c,
        "the sign-in form",
        "return !document.getElementById('login').hidden",
        Duration::from_secs(10),
    )
    .await;
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(&app.admin_token)
        .await
        .unwrap();
    c.find(Locator::Id("login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Issue 20: a pending import is cancelled from its page in the browser: the
/// button asks, the badge says « Annulé », and the button is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_cancels_a_pending_import() {
    use fantoccini::Locator;
    let driver = start_driver().await;
    let app = TestApp::spawn_with(foxflow_testkit::TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let id = app
        .submit("attente.csv", entreprises_csv(10, 3).into_bytes(), "entreprises")
        .await;
    let c = browser(&driver).await;
    sign_in(&c, &app).await;
    c.goto(&format!("{}#/imports/{id}", app.url("/"))).await.unwrap();
    wait_js(
        &c,
        "the cancel button of a pending job",
        "return document.getElementById('job-status').dataset.status === 'pending'
             && !document.getElementById('job-cancel').hidden",
        Duration::from_secs(15),
    )
    .await;
    c.find(Locator::Id("job-cancel"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &c,
        "the job cancelled",
        "const s = document.getElementById('job-status');
         return s.dataset.status === 'cancelled' && s.textContent === 'Annulé'
             && document.getElementById('job-cancel').hidden",
        Duration::from_secs(15),
    )
    .await;
    screenshot(&c, "cancelled").await;
    let (_, job) = app.get_json(&format!("/api/v1/imports/{id}")).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    c.close().await.unwrap();
    drop(driver);
}

/// Issue 20: a finished dry run's page applies it; the page then follows the
/// real import to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_applies_a_finished_dry_run() {
    use fantoccini::Locator;
    let driver = start_driver().await;
    let app = TestApp::spawn().await;
    let resp = app
        .upload(
            "apercu.csv",
            entreprises_csv(30, 4).into_bytes(),
            "entreprises",
            &[("dry_run", "true")],
        )
        .await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.wait_final(&id, WAIT).await["status"], "success");
    let c = browser(&driver).await;
    sign_in(&c, &app).await;
    c.goto(&format!("{}#/imports/{id}", app.url("/"))).await.unwrap();
    wait_js(
        &c,
        "the apply button of a finished dry run, under its preview",
        "return !document.getElementById('job-apply').hidden
             && document.getElementById('changes-title').textContent.startsWith('Aperçu')
             && document.querySelectorAll('#changes-body tr[data-action=created]').length === 25
             && document.getElementById('changes-total').textContent === '(30)'",
        Duration::from_secs(15),
    )
    .await;
    c.find(Locator::Id("job-apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &c,
        "the real import, finished",
        &format!(
            "return location.hash.startsWith('#/imports/') && !location.hash.endsWith('{id}')
                 && document.getElementById('job-status').dataset.status === 'success'
                 && document.getElementById('job-apply').hidden"
        ),
        WAIT,
    )
    .await;
    screenshot(&c, "applied").await;
    let stored: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 30);
    c.close().await.unwrap();
    drop(driver);
}

/// Issue 19: a row imported after a lossy change shows on its job's page as
/// a warning, apart from the error rows, with the job's warning count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_lossy_change_as_a_warning() {
    let driver = start_driver().await;
    let app = TestApp::spawn().await;
    let job = crate::warnings::import_lossy(&app).await;
    let id = job["id"].as_str().unwrap();
    let c = browser(&driver).await;
    sign_in(&c, &app).await;
    c.goto(&format!("{}#/imports/{id}", app.url("/"))).await.unwrap();
    wait_js(
        &c,
        "the warning listed apart from the error",
        "const w = document.querySelectorAll('#warnings-body tr');
         const e = document.querySelectorAll('#errors-body tr');
         const count = document.querySelector('#job-counts [data-key=\"Avec avertissement\"] dd');
         return w.length === 1 && e.length === 1
             && w[0].textContent.includes('excel_precision') && w[0].textContent.includes('5.521E8')
             && !e[0].textContent.includes('excel_precision')
             && document.getElementById('warnings-total').textContent === '(1)'
             && count && count.textContent === '1'",
        Duration::from_secs(20),
    )
    .await;
    screenshot(&c, "warnings").await;
    c.close().await.unwrap();
    drop(driver);
}

/// Issue 20: an import's page lists its changes and reverts it after a
/// confirmation; the page then follows the revert job, whose own changes
/// are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_reverts_an_import_after_confirmation() {
    use fantoccini::Locator;
    let driver = start_driver().await;
    let app = TestApp::spawn().await;
    let id = app
        .submit("mauvais.csv", entreprises_csv(12, 5).into_bytes(), "entreprises")
        .await;
    assert_eq!(app.wait_final(&id, WAIT).await["created_rows"], 12);
    let c = browser(&driver).await;
    sign_in(&c, &app).await;
    c.goto(&format!("{}#/imports/{id}", app.url("/"))).await.unwrap();
    wait_js(
        &c,
        "the import's changes and the revert button",
        "return document.querySelectorAll('#changes-body tr[data-action=created]').length === 12
             && document.getElementById('changes-total').textContent === '(12)'
             && !document.getElementById('job-revert').hidden",
        Duration::from_secs(15),
    )
    .await;
    c.find(Locator::Id("job-revert"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Nothing happens before the confirmation.
    wait_js(
        &c,
        "the confirmation",
        "return !document.getElementById('revert-confirm').hidden",
        Duration::from_secs(5),
    )
    .await;
    let stored: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 12);
    c.find(Locator::Id("job-revert-confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        &c,
        "the revert job, finished, with its deletions listed",
        &format!(
            "return location.hash.startsWith('#/imports/') && !location.hash.endsWith('{id}')
                 && document.getElementById('job-status').dataset.status === 'success'
                 && document.querySelectorAll('#changes-body tr[data-action=deleted]').length === 12"
        ),
        WAIT,
    )
    .await;
    screenshot(&c, "reverted").await;
    let stored: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);
    c.close().await.unwrap();
    drop(driver);
}
