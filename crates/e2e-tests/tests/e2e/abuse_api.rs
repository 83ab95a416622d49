//! Abuse of the API's reach and resources (issue 16), against the real
//! services: webhook URLs may not point our servers at internal networks
//! (at registration and again at delivery) and delivery errors say no more
//! than a status; events streams are capped per token and in all and close
//! when their token is revoked; AI generation is capped per user.

use foxflow_testkit::{TestApp, TestOptions};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const DEADLINE: Duration = Duration::from_secs(30);

fn options(import_worker: bool, env: &[(&str, &str)]) -> TestOptions {
    TestOptions {
        import_worker,
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

async fn register(app: &TestApp, url: &str) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"url": url, "events": ["import.completed"]}))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Waits until the hook has a delivery that is no longer pending.
async fn settled_delivery(app: &TestApp, hook_id: &str) -> Value {
    let start = Instant::now();
    loop {
        let (status, page) = app
            .get_json(&format!("/api/v1/webhooks/{hook_id}/deliveries"))
            .await;
        assert_eq!(status, 200, "{page}");
        if let Some(d) = page["items"]
            .as_array()
            .and_then(|i| i.first())
            .filter(|d| d["status"] != "pending")
        {
            return d.clone();
        }
        assert!(start.elapsed() < DEADLINE, "no settled delivery: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_urls_on_internal_networks_are_refused_at_registration() {
    let app = TestApp::spawn_with(options(false, &[])).await;
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://100.64.0.1/hook",
        "http://224.0.0.1/hook",
        "http://255.255.255.255/hook",
        "http://0.0.0.0:8080/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://[ff02::1]/hook",
        // A name is judged by what it resolves to.
        "http://localhost:8080/hook",
    ] {
        let (status, body) = register(&app, url).await;
        assert_eq!(status, 400, "{url} → {body}");
        assert_eq!(body["error"]["code"], "target_not_allowed", "{url} → {body}");
    }
    let (_, list) = app.get_json("/api/v1/webhooks").await;
    assert_eq!(list["items"], json!([]), "nothing refused was stored");
    // A public receiver is still welcome (a name that does not resolve yet
    // is accepted: delivery checks what it resolves to then).
    let (status, body) = register(&app, "https://hooks.example.com/foxflow").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = register(&app, "http://93.184.216.34/foxflow").await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allowlist_opens_the_networks_it_names_and_no_others() {
    let app = TestApp::spawn_with(options(
        false,
        &[("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "127.0.0.0/8, ::1")],
    ))
    .await;
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://[::1]:9000/hook",
        "http://localhost:9000/hook",
    ] {
        let (status, body) = register(&app, url).await;
        assert_eq!(status, 201, "{url} → {body}");
    }
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/",
        "http://[fe80::1]/",
    ] {
        let (status, body) = register(&app, url).await;
        assert_eq!(status, 400, "{url} → {body}");
        assert_eq!(body["error"]["code"], "target_not_allowed");
    }
}

/// A hook whose name resolved to a public address when it was registered
/// and to loopback now (DNS rebinding; here a row written straight into the
/// database with `localhost`): the delivery loop resolves, checks, refuses,
/// and the receiver never sees a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_loopback_at_delivery_is_not_connected_to() {
    let app = TestApp::spawn_with(options(true, &[("WEBHOOK_RETRY_BASE", "100ms")])).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let port = server.address().port();
    let db = app.pg().await;
    let row = db
        .query_one(
            "INSERT INTO webhooks (id, url, events, secret)
             VALUES (gen_random_uuid(), $1, ARRAY['import.completed'], 'whsec_0123456789abcdef')
             RETURNING id::text",
            &[&format!("http://localhost:{port}/hook")],
        )
        .await
        .unwrap();
    let hook_id: String = row.get(0);
    let job_id = app
        .submit("villes.csv", b"nom,code_postal\nLyon,69001\n".to_vec(), "villes")
        .await;
    app.wait_final(&job_id, DEADLINE).await;
    let d = settled_delivery(&app, &hook_id).await;
    assert_eq!(d["status"], "failed", "refused at once, not retried: {d}");
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(d["last_status_code"], Value::Null, "{d}");
    let error = d["last_error"].as_str().unwrap();
    assert!(error.contains("not allowed"), "{d}");
    assert!(
        !error.contains("127.0.0.1") && !error.contains("::1"),
        "no internal address in {d}"
    );
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "the receiver on loopback got a request"
    );
}

/// What is stored for a failed attempt is the status code or a fixed
/// phrase: never the receiver's body, nor the socket error's text (which
/// tells a port that refuses from one that does not answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_errors_carry_the_status_only() {
    let app = TestApp::spawn_with(options(
        true,
        &[
            ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "127.0.0.0/8"),
            ("WEBHOOK_MAX_ATTEMPTS", "1"),
        ],
    ))
    .await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500).set_body_string("db password is hunter2; stack: at internal.rs:42"),
        )
        .mount(&server)
        .await;
    let (status, hook) = register(&app, &format!("{}/hook", server.uri())).await;
    assert_eq!(status, 201, "{hook}");
    let answering = hook["id"].as_str().unwrap().to_owned();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let (status, hook) = register(&app, &format!("http://127.0.0.1:{closed_port}/hook")).await;
    assert_eq!(status, 201, "{hook}");
    let refusing = hook["id"].as_str().unwrap().to_owned();

    let job_id = app
        .submit("villes.csv", b"nom,code_postal\nLyon,69001\n".to_vec(), "villes")
        .await;
    app.wait_final(&job_id, DEADLINE).await;

    let d = settled_delivery(&app, &answering).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["last_status_code"], 500);
    let error = d["last_error"].as_str().unwrap();
    assert!(error.contains("500"), "{d}");
    assert!(
        !error.contains("hunter2") && !error.contains("internal.rs"),
        "{d}"
    );

    let d = settled_delivery(&app, &refusing).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["last_status_code"], Value::Null);
    assert_eq!(d["last_error"], "cannot connect", "{d}");
}

// ---------------------------------------------------------------------------
// Events streams
// ---------------------------------------------------------------------------

/// An import that stays queued (no worker), owned by `token`.
async fn queued_import(app: &TestApp, token: &str) -> String {
    let resp = app
        .upload_as(
            token,
            "villes.csv",
            b"nom,code_postal\nLyon,69001\n".to_vec(),
            "villes",
            &[],
        )
        .await;
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.expect("a JSON body");
    body["id"].as_str().expect("an id").to_owned()
}

async fn open_stream(app: &TestApp, token: &str, job_id: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/imports/{job_id}/events")))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

/// An open stream, its first frame read.
async fn opened(app: &TestApp, token: &str, job_id: &str) -> reqwest::Response {
    let mut resp = open_stream(app, token, job_id).await;
    assert_eq!(resp.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
        .await
        .expect("a first frame at once")
        .expect("stream read")
        .expect("a frame, not the end");
    assert!(String::from_utf8_lossy(&first).contains("event: job"));
    resp
}

async fn assert_refused(app: &TestApp, token: &str, job_id: &str) {
    let resp = open_stream(app, token, job_id).await;
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(wait >= 1);
    let body: Value = resp.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_streams_are_capped_per_token_and_in_all() {
    let app = TestApp::spawn_with(options(
        false,
        &[("EVENTS_STREAMS_PER_TOKEN", "2"), ("EVENTS_STREAMS_TOTAL", "3")],
    ))
    .await;
    let alice = app.token("alice", "staff").await;
    let bob = app.token("bob", "staff").await;
    let job_a = queued_import(&app, &alice).await;
    let job_b = queued_import(&app, &bob).await;

    let a1 = opened(&app, &alice, &job_a).await;
    let _a2 = opened(&app, &alice, &job_a).await;
    assert_refused(&app, &alice, &job_a).await;
    // Another token has its own share, up to the total.
    let _b1 = opened(&app, &bob, &job_b).await;
    assert_refused(&app, &bob, &job_b).await;
    assert_refused(&app, &app.admin_token, &job_a).await;

    // A stream the client closes gives its place back.
    drop(a1);
    let start = Instant::now();
    loop {
        let resp = open_stream(&app, &alice, &job_a).await;
        if resp.status() == 200 {
            break;
        }
        assert_eq!(resp.status(), 429);
        assert!(
            start.elapsed() < DEADLINE,
            "the closed stream's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_tokens_stream_ends_within_seconds() {
    let app = TestApp::spawn_with(options(false, &[])).await;
    let token = app.token("leaver", "staff").await;
    let job_id = queued_import(&app, &token).await;
    let mut stream = opened(&app, &token, &job_id).await;

    let pool = foxflow_storage::build_pool(&app.database_url, 1, "test").unwrap();
    let mut conn = foxflow_storage::pool::conn(&pool).await.unwrap();
    assert_eq!(
        foxflow_storage::auth::revoke_tokens(&mut conn, "leaver")
            .await
            .unwrap(),
        1
    );
    let revoked = Instant::now();

    // Keepalives may come; the stream must end.
    let ended = tokio::time::timeout(Duration::from_secs(8), async {
        while let Some(chunk) = stream.chunk().await.unwrap_or(None) {
            assert!(
                !String::from_utf8_lossy(&chunk).contains("event: job"),
                "nothing changed"
            );
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream stayed open after its token was revoked"
    );
    assert!(
        revoked.elapsed() < Duration::from_secs(5),
        "took {:?}",
        revoked.elapsed()
    );
    assert_eq!(open_stream(&app, &token, &job_id).await.status(), 401);
}

// ---------------------------------------------------------------------------
// AI quota
// ---------------------------------------------------------------------------

/// The tasks of the user named `prolific`, whatever their status.
async fn tasks(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "SELECT count(*) FROM ai_tasks t JOIN ai_batches b ON b.id = t.batch_id
          JOIN users u ON u.id = b.owner_id WHERE u.name = 'prolific'",
        &[],
    )
    .await
    .expect("count query")
    .get(0)
}

async fn generate(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/ai/generations"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_generation_is_capped_per_user_and_refused_whole() {
    // No AI worker: every task stays pending.
    let app = TestApp::spawn_with(options(false, &[("AI_MAX_PENDING_TASKS_PER_USER", "5")])).await;
    let db = app.pg().await;
    let villes: Vec<i64> = db
        .query(
            "INSERT INTO villes (nom, slug, code_postal_principal, departement, region, population)
             VALUES ('Lyon', 'lyon-69003', '69003', '69', 'Auvergne-Rhône-Alpes', 522250),
                    ('Annecy', 'annecy-74000', '74000', '74', 'Auvergne-Rhône-Alpes', 130721)
             RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let staff = app.token("prolific", "staff").await;

    // Two towns, two kinds each: 4 of 5.
    let resp = generate(&app, &staff, json!({"target": "ville", "ids": villes})).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(tasks(&db).await, 4);
    // Two more would make 6: refused whole, nothing written.
    let resp = generate(&app, &staff, json!({"target": "ville", "ids": [villes[0]]})).await;
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait >= 1);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(tasks(&db).await, 4, "a refused request creates no task");
    let (_, list) = app.get_json("/api/v1/ai/generations").await;
    assert_eq!(list["total"], 1, "and no batch: {list}");
    // One more fits exactly.
    let resp = generate(
        &app,
        &staff,
        json!({"target": "ville", "ids": [villes[0]], "kinds": ["description"]}),
    )
    .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(tasks(&db).await, 5);
    // The quota is the user's: another user still has all of theirs.
    let other = app.token("colleague", "staff").await;
    let resp = generate(&app, &other, json!({"target": "ville", "ids": villes})).await;
    assert_eq!(resp.status(), 202);
    // Finished tasks free the room.
    db.execute(
        "UPDATE ai_tasks SET status = 'succeeded', completed_at = now()
          WHERE batch_id IN (SELECT b.id FROM ai_batches b JOIN users u ON u.id = b.owner_id
                              WHERE u.name = 'prolific')",
        &[],
    )
    .await
    .unwrap();
    let resp = generate(&app, &staff, json!({"target": "ville", "ids": villes})).await;
    assert_eq!(resp.status(), 202);
}
