//! Issue 20, "Cancel": `POST /api/v1/imports/{id}/cancel`. A pending job
//! becomes `cancelled` at once and its message, when a worker gets it, is
//! acknowledged without running it; a running job stops at its next batch
//! commit, its committed rows kept and counted exactly; a final job, an
//! unknown id and a viewer are refused. Real worker, broker and database.

use foxflow_testkit::chaos::ServiceProcess;
use foxflow_testkit::data::entreprises_csv;
use foxflow_testkit::{TestApp, TestOptions};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const WAIT: Duration = Duration::from_secs(120);

fn options(import_worker: bool, env: &[(&str, &str)]) -> TestOptions {
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    // The webhook receiver listens on loopback, refused unless allowed.
    env.push(("WEBHOOK_ALLOW_PRIVATE_NETWORKS".into(), "127.0.0.0/8".into()));
    TestOptions {
        import_worker,
        env,
        ..Default::default()
    }
}

async fn cancel(app: &TestApp, token: &str, id: &str) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/imports/{id}/cancel")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.pg().await.query_one(sql, &[]).await.unwrap().get(0)
}

/// A receiver subscribed to `import.completed`.
async fn webhook_receiver(app: &TestApp) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let resp = app
        .client
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"url": server.uri(), "events": ["import.completed"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    server
}

/// The `data` of the `import.completed` event the receiver got for a job.
async fn completed_event(server: &MockServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events: Vec<Value> = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter(|e| e["event"] == "import.completed" && e["data"]["id"] == id)
            .collect();
        if let Some(e) = events.first() {
            assert_eq!(events.len(), 1, "announced once: {events:?}");
            return e["data"].clone();
        }
        assert!(Instant::now() < deadline, "no import.completed for {id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A pending job cancelled never starts, whenever a worker comes; the
/// statistics, the list filter and the webhook know the new status; and
/// `retry` runs it after all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_import_cancelled_never_starts() {
    let mut app = TestApp::spawn_with(options(false, &[])).await;
    let receiver = webhook_receiver(&app).await;
    let alice = app.token("alice", "staff").await;
    let resp = app
        .upload_as(
            &alice,
            "e.csv",
            entreprises_csv(50, 20).into_bytes(),
            "entreprises",
            &[],
        )
        .await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, job) = cancel(&app, &alice, &id).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["status"], "cancelled", "{job}");
    assert_eq!(job["last_error"], "annulé par alice", "{job}");
    assert_eq!(job["cancel_requested_by"], "alice", "{job}");
    assert!(job["completed_at"].is_string(), "{job}");
    assert!(job["started_at"].is_null(), "{job}");
    // Final: a second cancel is too late.
    let (status, again) = cancel(&app, &alice, &id).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "conflict", "{again}");

    let (_, list) = app.get_json("/api/v1/imports?status=cancelled").await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["items"][0]["id"], id.as_str(), "{list}");
    let (_, stats) = app.get_json("/api/v1/imports/stats").await;
    assert_eq!(stats["by_status"]["cancelled"], 1, "{stats}");
    let event = completed_event(&receiver, &id).await;
    assert_eq!(event["status"], "cancelled", "{event}");

    // A worker comes, then a second file after the first one's message: with
    // one message at a time in order, the second ending means the first was
    // handled.
    app.spawn_extra_import_worker(&[]).await;
    let villes = app
        .submit("v.csv", b"nom,code_postal\nLyon,69001\n".to_vec(), "villes")
        .await;
    assert_eq!(app.wait_final(&villes, WAIT).await["status"], "success");
    let (_, job) = app.get_json(&format!("/api/v1/imports/{id}")).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    assert_eq!(job["attempts"], 0, "{job}");
    assert!(job["started_at"].is_null(), "{job}");
    assert_eq!(job["processed_rows"], 0, "{job}");
    assert_eq!(count(&app, "SELECT count(*) FROM entreprises").await, 0);

    // Retry is allowed from `cancelled`, as from `error`: an operator may want it after all.
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/imports/{id}/retry")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["created_rows"], 50, "{job}");
    assert!(job["cancel_requested_by"].is_null(), "{job}");
    assert_eq!(count(&app, "SELECT count(*) FROM entreprises").await, 50);
}

/// A running 200,000-row import cancelled mid-way ends `cancelled` at its
/// next batch commit, within 5 s: its created rows are exactly the rows in
/// the table, fewer than the file's, and they stay — until its revert takes
/// them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_import_cancelled_stops_at_a_batch_boundary() {
    const ROWS: i64 = 200_000;
    let app = TestApp::spawn_with(options(
        true,
        &[
            ("IMPORT_BATCH_ROWS", "500"),
            // About 30 MB of CSV: past the default upload and row limits.
            ("MAX_IMPORT_FILE_BYTES", "104857600"),
            ("MAX_IMPORT_ROWS", "1000000"),
        ],
    ))
    .await;
    let receiver = webhook_receiver(&app).await;
    let id = app
        .submit(
            "big.csv",
            entreprises_csv(ROWS as u32, 21).into_bytes(),
            "entreprises",
        )
        .await;
    // Running, with a first batch committed.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, job) = app.get_json(&format!("/api/v1/imports/{id}")).await;
        if job["processed_rows"].as_i64() > Some(0) {
            assert_eq!(
                job["status"], "processing",
                "finished before it could be cancelled: {job}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no batch committed: {job}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let asked = Instant::now();
    let (status, job) = cancel(&app, &app.admin_token, &id).await;
    assert_eq!(status, 202, "{job}");
    // Recorded; the worker stops it at its next batch commit.
    assert_eq!(job["status"], "processing", "{job}");
    assert_eq!(job["cancel_requested_by"], "test-admin", "{job}");
    let job = app.wait_final(&id, WAIT).await;
    let stopped_in = asked.elapsed();
    println!("cancel: stopped {stopped_in:?} after the request: {job}");
    assert_eq!(job["status"], "cancelled", "{job}");
    assert_eq!(job["last_error"], "annulé par test-admin", "{job}");
    assert!(
        stopped_in < Duration::from_secs(5),
        "stopped {stopped_in:?} after the request"
    );

    let created = job["created_rows"].as_i64().unwrap();
    let stored = count(&app, "SELECT count(*) FROM entreprises").await;
    assert_eq!(created, stored, "counted exactly the committed rows: {job}");
    assert!(created > 0 && created < ROWS, "{job}");
    assert_eq!(
        job["processed_rows"], created,
        "a fresh file: every processed row created: {job}"
    );
    let checkpoint = count(
        &app,
        &format!("SELECT checkpoint_row FROM import_jobs WHERE id = '{id}'"),
    )
    .await;
    assert_eq!(checkpoint, created, "ended on a batch boundary");

    let event = completed_event(&receiver, &id).await;
    assert_eq!(event["status"], "cancelled", "{event}");
    assert_eq!(event["created_rows"], created, "{event}");
    // The committed rows stay: nothing rolled them back or added to them.
    let (_, job) = app.get_json(&format!("/api/v1/imports/{id}")).await;
    assert_eq!(job["created_rows"], created, "{job}");
    assert_eq!(count(&app, "SELECT count(*) FROM entreprises").await, stored);

    // What it committed can be taken back.
    let reverted = crate::revert::revert(&app, &id).await;
    assert_eq!(reverted["status"], "success", "{reverted}");
    assert_eq!(reverted["deleted_rows"], created, "{reverted}");
    assert_eq!(count(&app, "SELECT count(*) FROM entreprises").await, 0);
}

/// A cancel asked while a worker held the job, and that worker killed before
/// its next batch commit: the request outlives it. The next delivery finds
/// it and ends the job `cancelled` without running it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_outlives_the_worker_that_was_asked() {
    let app = TestApp::spawn_with(options(
        false,
        &[("IMPORT_LEASE", "4s"), ("IMPORT_BATCH_ROWS", "500")],
    ))
    .await;
    let id = app
        .submit("big.csv", entreprises_csv(20_000, 22).into_bytes(), "entreprises")
        .await;
    let mut worker = ServiceProcess::start("import-worker", "cancel-killed", app.env());
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, job) = app.get_json(&format!("/api/v1/imports/{id}")).await;
        if job["processed_rows"].as_i64() > Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "no batch committed: {job}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.kill();
    // Its lease is still live: the request is recorded, not carried out.
    let (status, job) = cancel(&app, &app.admin_token, &id).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["status"], "processing", "{job}");
    let committed = job["created_rows"].as_i64().unwrap();

    let _healthy = ServiceProcess::start("import-worker", "cancel-next", app.env());
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    assert_eq!(job["last_error"], "annulé par test-admin", "{job}");
    // Not run again: no new attempt, nothing more written.
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(job["created_rows"], committed, "{job}");
    assert_eq!(count(&app, "SELECT count(*) FROM entreprises").await, committed);
}

/// What cancel refuses: a finished job (409), an id nobody can see (404),
/// a viewer (403), another staff member's job (404, as for retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_refuses_finished_unknown_and_unauthorised() {
    let app = TestApp::spawn_with(options(true, &[])).await;
    let id = app
        .submit("v.csv", b"nom,code_postal\nLyon,69001\n".to_vec(), "villes")
        .await;
    assert_eq!(app.wait_final(&id, WAIT).await["status"], "success");

    let (status, body) = cancel(&app, &app.admin_token, &id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("déjà terminé (« success »)"), "{message}");

    let (status, body) = cancel(&app, &app.admin_token, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = cancel(&app, &app.admin_token, "not-an-id").await;
    assert_eq!(status, 404);

    let viewer = app.token("victor", "viewer").await;
    let (status, body) = cancel(&app, &viewer, &id).await;
    assert_eq!(status, 403, "{body}");
    let bob = app.token("bob", "staff").await;
    let (status, body) = cancel(&app, &bob, &id).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = app.get_json(&format!("/api/v1/imports/{id}")).await;
    assert_eq!(status, 200);

    // The route is in the OpenAPI document.
    let (_, doc) = app.get_json("/api/openapi.json").await;
    let op = &doc["paths"]["/api/v1/imports/{id}/cancel"]["post"];
    assert_eq!(op["operationId"], "cancel_import", "{op}");
    assert!(op["responses"]["409"].is_object(), "{op}");
}
