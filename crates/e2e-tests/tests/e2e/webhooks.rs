//! Webhooks against a local receiver (a real HTTP server in the test):
//! events arrive signed with the hook's secret, a failing receiver gets
//! the delivery again with backoff, every attempt is counted, and only
//! admins manage hooks.

use foxflow_testkit::{TestApp, TestOptions};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const DEADLINE: Duration = Duration::from_secs(30);

fn fast_retries() -> TestOptions {
    TestOptions {
        ai_worker: true,
        env: vec![
            ("WEBHOOK_RETRY_BASE".into(), "100ms".into()),
            // The receiver listens on loopback, refused unless allowed.
            ("WEBHOOK_ALLOW_PRIVATE_NETWORKS".into(), "127.0.0.0/8".into()),
        ],
        ..Default::default()
    }
}

async fn register(app: &TestApp, body: Value) -> (u16, Value) {
    register_as(app, &app.admin_token, body).await
}

async fn register_as(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The requests the receiver got for `event`, once there are at least `n`.
async fn received(server: &MockServer, event: &str, n: usize) -> Vec<Request> {
    let start = Instant::now();
    loop {
        let got: Vec<Request> = server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| header(r, "x-foxflow-event") == event)
            .collect();
        if got.len() >= n {
            return got;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{n} `{event}` deliveries expected, {} received",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn header(r: &Request, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// What a receiver does: recompute the HMAC of "<timestamp>.<body>" with
/// the secret, compare in constant time, and refuse stale timestamps.
fn verify(r: &Request, secret: &str) {
    let ts = header(r, "x-foxflow-timestamp");
    let sig = header(r, "x-foxflow-signature");
    let hex_sig = sig
        .strip_prefix("sha256=")
        .expect("signature starts with sha256=");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    mac.verify_slice(&hex::decode(hex_sig).expect("hex signature"))
        .expect("the signature verifies with the hook's secret");
    let sent: i64 = ts.parse().expect("unix seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - sent).abs() < 300,
        "timestamp {sent} is not current ({now})"
    );
    // A different secret does not verify: the signature is keyed.
    let mut other = Hmac::<Sha256>::new_from_slice(b"another secret").unwrap();
    other.update(format!("{ts}.").as_bytes());
    other.update(&r.body);
    assert!(other.verify_slice(&hex::decode(hex_sig).unwrap()).is_err());
}

async fn deliveries(app: &TestApp, hook_id: &str) -> Vec<Value> {
    let (status, page) = app
        .get_json(&format!("/api/v1/webhooks/{hook_id}/deliveries"))
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

/// Waits until every delivery of the hook is `delivered` or `failed`.
async fn settled(app: &TestApp, hook_id: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let items = deliveries(app, hook_id).await;
        if items.len() >= n && items.iter().all(|d| d["status"] != "pending") {
            return items;
        }
        assert!(start.elapsed() < DEADLINE, "deliveries not settled: {items:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_ai_batch_completions_arrive_signed_with_their_counts() {
    let app = TestApp::spawn_with(fast_retries()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let (status, hook) = register(
        &app,
        json!({"url": format!("{}/hook", server.uri()), "events": ["import.completed", "ai_batch.completed"]}),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"]
        .as_str()
        .expect("the secret is shown at creation")
        .to_owned();
    assert!(secret.len() >= 32, "a generated secret is long: {secret}");
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    // Never shown again.
    let (_, list) = app.get_json("/api/v1/webhooks").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0].get("secret").is_none(), "{list}");
    assert!(!list.to_string().contains(&secret));

    let job_id = app
        .submit(
            "villes.csv",
            b"nom,code_postal\nLyon,69001\nAnnecy,74000\nBrest,ABCDE\n".to_vec(),
            "villes",
        )
        .await;
    let job = app.wait_final(&job_id, DEADLINE).await;
    assert_eq!(job["status"], "partial");

    let got = received(&server, "import.completed", 1).await;
    assert_eq!(got.len(), 1, "one event, one delivery");
    let r = &got[0];
    verify(r, &secret);
    assert_eq!(header(r, "content-type"), "application/json");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["event"], "import.completed");
    assert_eq!(body["data"]["id"], job_id.as_str());
    assert_eq!(body["data"]["status"], "partial");
    assert_eq!(body["data"]["total_rows"], 3);
    assert_eq!(body["data"]["created_rows"], 2);
    assert_eq!(body["data"]["error_rows"], 1);
    assert_eq!(body["data"]["import_type"], "villes");

    let items = settled(&app, &hook_id, 1).await;
    let d = &items[0];
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_status_code"], 204);
    assert_eq!(d["id"].as_str().unwrap(), header(r, "x-foxflow-delivery"));

    // An AI batch over the towns (the two this import created): its completion is announced too.
    let resp = app
        .client
        .post(app.url("/api/v1/ai/generations"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"target": "ville", "filter": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let batch: Value = resp.json().await.unwrap();
    let got = received(&server, "ai_batch.completed", 1).await;
    let r = &got[0];
    verify(r, &secret);
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["data"]["id"], batch["id"]);
    assert_eq!(body["data"]["status"], "completed");
    let n = |k: &str| body["data"][k].as_i64().unwrap();
    assert!(n("total") >= 2, "two towns, at least one text each: {body}");
    assert_eq!(n("succeeded") + n("failed") + n("skipped"), n("total"), "{body}");
    assert_eq!(body["data"]["pending"], 0);
    settled(&app, &hook_id, 2).await;
    // Exactly once per event, however many tasks the batch had.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received(&server, "ai_batch.completed", 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_gets_the_third_attempt() {
    let app = TestApp::spawn_with(fast_retries()).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;
    let secret = "a-secret-of-our-own-1234";
    let (status, hook) = register(
        &app,
        json!({"url": server.uri(), "events": ["import.completed"], "secret": secret}),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(hook["secret"], secret);
    let hook_id = hook["id"].as_str().unwrap().to_owned();

    let job_id = app
        .submit("villes.csv", b"nom,code_postal\nLyon,69001\n".to_vec(), "villes")
        .await;
    app.wait_final(&job_id, DEADLINE).await;

    let got = received(&server, "import.completed", 3).await;
    assert_eq!(got.len(), 3);
    // The same delivery each time, re-signed with a fresh timestamp, same body.
    let delivery = header(&got[0], "x-foxflow-delivery");
    for r in &got {
        assert_eq!(header(r, "x-foxflow-delivery"), delivery);
        assert_eq!(r.body, got[0].body);
        verify(r, secret);
    }
    let items = settled(&app, &hook_id, 1).await;
    assert_eq!(items.len(), 1);
    let d = &items[0];
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(d["attempts"], 3, "{d}");
    assert_eq!(d["last_status_code"], 200);
    assert!(d["delivered_at"].is_string());
    // Delivered is final: no fourth request.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_well_ends_failed_after_max_attempts() {
    let mut options = fast_retries();
    options.ai_worker = false;
    options.env.push(("WEBHOOK_MAX_ATTEMPTS".into(), "3".into()));
    let app = TestApp::spawn_with(options).await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let (_, hook) = register(&app, json!({"url": server.uri(), "events": ["import.completed"]})).await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    // A file-level error is an event like any other.
    let job_id = app.submit("villes.csv", b"nom\nLyon\n".to_vec(), "villes").await;
    assert_eq!(app.wait_final(&job_id, DEADLINE).await["status"], "error");
    let items = settled(&app, &hook_id, 1).await;
    let d = &items[0];
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["last_status_code"], 503);
    assert!(d["last_error"].as_str().unwrap().contains("503"), "{d}");
    assert_eq!(d["payload"]["data"]["status"], "error");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_manage_hooks_and_bad_input_is_422() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let staff = app.token("operator", "staff").await;
    let good = json!({"url": "https://hooks.example.com/foxflow", "events": ["import.completed"]});
    let (status, body) = register_as(&app, &staff, good.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let resp = app
        .client
        .get(app.url("/api/v1/webhooks"))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    for (body, code) in [
        (
            json!({"url": "ftp://hooks.example.com/x", "events": ["import.completed"]}),
            "invalid_url",
        ),
        (
            json!({"url": "not a url", "events": ["import.completed"]}),
            "invalid_url",
        ),
        (
            json!({"url": "https://h.example/x", "events": ["import.finished"]}),
            "invalid_events",
        ),
        (
            json!({"url": "https://h.example/x", "events": []}),
            "invalid_events",
        ),
        (
            json!({"url": "https://h.example/x", "events": ["import.completed"], "secret": "short"}),
            "invalid_secret",
        ),
    ] {
        let (status, answer) = register(&app, body.clone()).await;
        assert_eq!(status, 422, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} → {answer}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, answer) = register(&app, json!({"events": ["import.completed"]})).await;
    assert_eq!(status, 400, "{answer}");

    let (status, hook) = register(&app, good).await;
    assert_eq!(status, 201);
    let id = hook["id"].as_str().unwrap();
    let del = |id: String| {
        let app = &app;
        async move {
            app.client
                .delete(app.url(&format!("/api/v1/webhooks/{id}")))
                .bearer_auth(&app.admin_token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(del(id.to_owned()).await, 204);
    assert_eq!(del(id.to_owned()).await, 404);
    let (status, _) = app.get_json(&format!("/api/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(status, 404);
    let (_, list) = app.get_json("/api/v1/webhooks").await;
    assert_eq!(list["items"], json!([]));
}

/// Issue 17: workers scale to zero, so nothing that must happen while no job is queued may live
/// in them. With the API alone running, a job that ends without any worker (its message parked,
/// ended by the dead-letter recorder) still has its `import.completed` delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_delivered_with_no_worker_running() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..fast_retries()
    })
    .await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (status, _) = register(
        &app,
        json!({"url": format!("{}/hook", server.uri()), "events": ["import.completed"]}),
    )
    .await;
    assert_eq!(status, 201);
    let id = app
        .submit(
            "f.csv",
            foxflow_testkit::data::entreprises_csv(2, 3).into_bytes(),
            "entreprises",
        )
        .await;
    // Park its message by hand, as an operator or the broker would.
    let topology = app.topology();
    let publisher = foxflow_messaging::Publisher::new(&app.env()["AMQP_URL"], "test", topology.clone());
    let parked = foxflow_messaging::Envelope::new(
        topology.dead_exchange(),
        "imports",
        uuid::Uuid::new_v4(),
        foxflow_domain::messages::Message::import_requested(uuid::Uuid::parse_str(&id).unwrap()).to_json(),
    )
    .with_str_header(foxflow_messaging::headers::REASON, "parked by the test");
    publisher.publish(&parked).await.unwrap();
    let got = received(&server, "import.completed", 1).await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["data"]["id"], id.as_str(), "{body}");
    assert_eq!(body["data"]["status"], "error", "{body}");
    assert_eq!(body["data"]["last_error"], "parked by the test", "{body}");
    // The API's /metrics counts the attempt (alerts FoxflowWebhook*).
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let delivered = metrics
        .lines()
        .find(|l| l.starts_with("foxflow_webhook_deliveries_total{outcome=\"delivered\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(delivered >= 1.0, "no delivered attempt counted:\n{metrics}");
}
