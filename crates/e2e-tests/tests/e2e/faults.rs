//! Issue 5: nothing lost, nothing twice. Real processes, the real broker and
//! database; connections are cut through a proxy the test owns, so the
//! shared servers are never disturbed.

use foxflow_testkit::chaos::{ChaosProxy, ServiceProcess};
use foxflow_testkit::data::entreprises_csv;
use foxflow_testkit::{TestApp, TestOptions};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(180);

fn api_only() -> TestOptions {
    TestOptions {
        import_worker: false,
        ..Default::default()
    }
}

fn worker_env(app: &TestApp, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = app.env().clone();
    env.insert("IMPORT_BATCH_ROWS".into(), "1000".into());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    env
}

/// Polls the job until `pred` holds; panics after `limit`.
async fn wait_job(app: &TestApp, id: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (_, job) = app.get_json(&format!("/api/v1/imports/{id}")).await;
        if pred(&job) {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached in {limit:?}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.pg().await.query_one(sql, &[]).await.unwrap().get(0)
}

fn assert_exact(job: &Value, n: i64) {
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["total_rows"], n, "{job}");
    assert_eq!(job["processed_rows"], n, "{job}");
    assert_eq!(job["created_rows"], n, "{job}");
    assert_eq!(job["error_rows"], 0, "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_nothing_and_duplicates_nothing() {
    let app = TestApp::spawn_with(api_only()).await;
    let id = app
        .submit("big.csv", entreprises_csv(50_000, 11).into_bytes(), "entreprises")
        .await;
    let mut first = ServiceProcess::start("import-worker", "kill9-first", &worker_env(&app, &[]));
    wait_job(&app, &id, WAIT, |j| {
        j["processed_rows"].as_i64().unwrap_or(0) >= 3_000
    })
    .await;
    first.kill();
    let killed_at = count(&app, "SELECT processed_rows FROM import_jobs").await;
    assert!(killed_at < 50_000, "the worker was killed mid-import");

    let _second = ServiceProcess::start("import-worker", "kill9-second", &worker_env(&app, &[]));
    let job = app.wait_final(&id, WAIT).await;
    assert_exact(&job, 50_000);
    assert!(job["attempts"].as_i64().unwrap() >= 2, "{job}");
    assert_eq!(count(&app, "SELECT count(*) FROM entreprises").await, 50_000);
    assert_eq!(
        count(&app, "SELECT count(DISTINCT siren) FROM entreprises").await,
        50_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_checkpoints_exits_fast_and_the_next_worker_finishes() {
    let app = TestApp::spawn_with(api_only()).await;
    let id = app
        .submit("big.csv", entreprises_csv(50_000, 12).into_bytes(), "entreprises")
        .await;
    let mut first = ServiceProcess::start("import-worker", "sigterm-first", &worker_env(&app, &[]));
    wait_job(&app, &id, WAIT, |j| {
        j["processed_rows"].as_i64().unwrap_or(0) >= 2_000
    })
    .await;
    let took = first.terminate(Duration::from_secs(10));
    assert!(took.is_some(), "the worker did not exit within 10 s of SIGTERM");
    let job = app.get_json(&format!("/api/v1/imports/{id}")).await.1;
    assert_ne!(job["status"], "error", "{job}");

    let _second = ServiceProcess::start("import-worker", "sigterm-second", &worker_env(&app, &[]));
    let job = app.wait_final(&id, WAIT).await;
    assert_exact(&job, 50_000);
    assert_eq!(count(&app, "SELECT count(*) FROM entreprises").await, 50_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_database_backend_is_retried_with_exact_counts() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("IMPORT_BATCH_ROWS".into(), "1000".into())],
        ..Default::default()
    })
    .await;
    let id = app
        .submit("big.csv", entreprises_csv(50_000, 13).into_bytes(), "entreprises")
        .await;
    wait_job(&app, &id, WAIT, |j| {
        j["processed_rows"].as_i64().unwrap_or(0) >= 2_000
    })
    .await;
    let admin = app.pg().await;
    let killed: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = 'import-worker') t",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "the worker's connections were terminated");
    let job = app.wait_final(&id, WAIT).await;
    assert_exact(&job, 50_000);
    assert_eq!(count(&app, "SELECT count(*) FROM entreprises").await, 50_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn severed_broker_connections_during_a_burst_lose_no_job() {
    let rabbit = "127.0.0.1:5672".parse().unwrap();
    let proxy = ChaosProxy::start(rabbit).await;
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("AMQP_URL".into(), proxy.amqp_url())],
        ..Default::default()
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..50u32 {
        ids.push(
            app.submit(
                &format!("f{i}.csv"),
                entreprises_csv(20, u64::from(i)).into_bytes(),
                "entreprises",
            )
            .await,
        );
        if i == 15 || i == 35 {
            proxy.cut();
        }
    }
    for id in &ids {
        let job = app.wait_final(id, WAIT).await;
        assert_eq!(job["status"], "success", "{job}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_accepted_while_the_broker_is_unreachable() {
    let rabbit = "127.0.0.1:5672".parse().unwrap();
    let proxy = ChaosProxy::start(rabbit).await;
    // The API reaches the broker only through the proxy; the worker directly.
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("AMQP_URL".into(), proxy.amqp_url())],
        import_worker: false,
        ..Default::default()
    })
    .await;
    let mut worker_env = app.env().clone();
    worker_env.insert("AMQP_URL".into(), "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    proxy.block();
    let mut ids = Vec::new();
    for i in 0..5u32 {
        let resp = app
            .upload(
                &format!("u{i}.csv"),
                entreprises_csv(10, u64::from(i)).into_bytes(),
                "entreprises",
                &[],
            )
            .await;
        assert_eq!(
            resp.status(),
            202,
            "uploads keep working while the broker is away"
        );
        ids.push(
            resp.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM outbox WHERE sent_at IS NULL").await,
        5
    );
    // The API stays ready and says the broker is down once it has noticed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, ready) = app.get_json("/readyz").await;
        assert_eq!(status, 200, "{ready}");
        if ready["broker"] == "down" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readyz never reported the broker down: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.restore();
    // Started only now: its own outbox relay would otherwise publish the
    // API's rows straight away (which is fine, but not what is tested here).
    let _worker = ServiceProcess::start("import-worker", "unreachable-worker", &worker_env);
    for id in &ids {
        let job = app.wait_final(id, WAIT).await;
        assert_eq!(job["status"], "success", "{job}");
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM outbox WHERE sent_at IS NULL").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_messages_are_parked_with_a_reason() {
    let app = TestApp::spawn().await;
    let topology = app.topology();
    let publisher = foxflow_messaging::Publisher::new(&app.env()["AMQP_URL"], "test", topology.clone());
    let garbage = foxflow_messaging::Envelope::new(
        topology.jobs_exchange(),
        "imports",
        uuid::Uuid::new_v4(),
        b"{not json".to_vec(),
    );
    publisher.publish(&garbage).await.unwrap();
    let unknown = foxflow_domain::messages::Message::import_requested(uuid::Uuid::new_v4());
    let env = foxflow_messaging::Envelope::new(
        topology.jobs_exchange(),
        "imports",
        uuid::Uuid::new_v4(),
        unknown.to_json(),
    );
    publisher.publish(&env).await.unwrap();

    // The worker keeps working.
    let id = app
        .submit("ok.csv", entreprises_csv(5, 1).into_bytes(), "entreprises")
        .await;
    assert_eq!(app.wait_final(&id, WAIT).await["status"], "success");

    let deadline = Instant::now() + Duration::from_secs(30);
    let parked = loop {
        let parked = foxflow_messaging::dlq::list(
            &app.env()["AMQP_URL"],
            &topology,
            foxflow_domain::messages::QueueKind::Imports,
            10,
        )
        .await
        .unwrap();
        if parked.len() >= 2 || Instant::now() > deadline {
            break parked;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(parked.len(), 2, "{parked:?}");
    let reasons: Vec<String> = parked.iter().filter_map(|p| p.reason.clone()).collect();
    assert!(reasons.iter().any(|r| r.contains("malformed")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("no import job")), "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_failing_transiently_every_time_is_parked_after_the_max_retries() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![
            ("IMPORT_MAX_RETRIES".into(), "2".into()),
            ("IMPORT_RETRY_DELAY".into(), "1s".into()),
        ],
        ..Default::default()
    })
    .await;
    // Every insert into entreprises fails as a serialization failure would.
    app.pg()
        .await
        .batch_execute(
            "CREATE FUNCTION always_conflict() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'injected conflict' USING ERRCODE = 'serialization_failure'; END $$;
             CREATE TRIGGER always_conflict BEFORE INSERT ON entreprises FOR EACH ROW EXECUTE FUNCTION always_conflict();",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let id = app
        .submit("f.csv", entreprises_csv(3, 1).into_bytes(), "entreprises")
        .await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "error", "{job}");
    let reason = job["last_error"].as_str().unwrap();
    // Words for the operator; the database's own text stays in the logs
    // (issue 16: `last_error` showed schema and constraint names).
    assert!(
        reason.contains("abandonné après 2 nouvelles tentatives")
            && reason.contains("the database asked to try again")
            && !reason.contains("injected conflict"),
        "{reason}"
    );
    let english: serde_json::Value = app
        .client
        .get(app.url(&format!("/api/v1/imports/{id}")))
        .bearer_auth(&app.admin_token)
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reason = english["last_error"].as_str().unwrap();
    assert!(
        reason.contains("gave up after 2 retries") && !reason.contains("injected conflict"),
        "{reason}"
    );
    assert_eq!(job["attempts"], 3, "the first try and exactly two retries: {job}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "retries are spaced by the delay"
    );
    let parked = foxflow_messaging::dlq::list(
        &app.env()["AMQP_URL"],
        &app.topology(),
        foxflow_domain::messages::QueueKind::Imports,
        10,
    )
    .await
    .unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].attempt, 2);

    // An operator fixes the cause and retries through the API.
    app.pg()
        .await
        .batch_execute("DROP TRIGGER always_conflict ON entreprises")
        .await
        .unwrap();
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/imports/{id}/retry")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["created_rows"], 3);
    let again = app
        .client
        .post(app.url(&format!("/api/v1/imports/{id}/retry")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "a successful import cannot be retried");
}

/// The relay's batches are published pipelined: `publish_all` must say how
/// many messages, from the first, the broker confirmed, so exactly those
/// outbox rows are marked sent. An unroutable message in the middle stops the
/// count there; what was sent after it may be in the queue all the same (the
/// relay sends those rows again: twice, never zero times).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_publish_counts_the_confirmed_prefix() {
    let app = TestApp::spawn_with(TestOptions {
        api: false,
        import_worker: false,
        ..Default::default()
    })
    .await;
    let topology = app.topology();
    let publisher = foxflow_messaging::Publisher::new(&app.env()["AMQP_URL"], "test", topology.clone());
    let envelope = |key: &str| {
        let message = foxflow_domain::messages::Message::import_requested(uuid::Uuid::new_v4());
        foxflow_messaging::Envelope::new(
            topology.jobs_exchange(),
            key,
            uuid::Uuid::new_v4(),
            message.to_json(),
        )
    };
    let all_routable: Vec<_> = (0..50).map(|_| envelope("imports")).collect();
    let (confirmed, error) = publisher.publish_all(&all_routable).await;
    assert_eq!(confirmed, 50);
    assert!(error.is_none(), "{error:?}");

    let mut mixed: Vec<_> = (0..5).map(|_| envelope("imports")).collect();
    mixed[2] = envelope("no-such-queue");
    let (confirmed, error) = publisher.publish_all(&mixed).await;
    assert_eq!(confirmed, 2, "the two before the unroutable one");
    assert!(
        matches!(error, Some(foxflow_messaging::MessagingError::Unroutable { .. })),
        "{error:?}"
    );

    // Confirmed means enqueued: the 50, the 2, and the 2 sent after the refusal.
    let conn = foxflow_messaging::connect(&app.env()["AMQP_URL"], "test-depth")
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let queue = channel
        .queue_declare(
            topology
                .work_queue(foxflow_domain::messages::QueueKind::Imports)
                .as_str()
                .into(),
            lapin::options::QueueDeclareOptions::default().passive(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(queue.message_count(), 54);
}

/// `foxctl dlq replay` must never remove a message it did not replay: a
/// parked message whose job cannot be retried (here: already `success`)
/// stays parked, with its reason; one whose job can be retried is replayed
/// and leaves the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_replay_keeps_what_it_does_not_replay() {
    use foxflow_domain::messages::{Message, QueueKind};
    let app = TestApp::spawn().await;
    let done = app
        .submit("ok.csv", entreprises_csv(3, 7).into_bytes(), "entreprises")
        .await;
    assert_eq!(app.wait_final(&done, WAIT).await["status"], "success");
    let topology = app.topology();
    let publisher = foxflow_messaging::Publisher::new(&app.env()["AMQP_URL"], "test", topology.clone());
    let job_id = uuid::Uuid::parse_str(&done).unwrap();
    let parked = foxflow_messaging::Envelope::new(
        topology.dead_exchange(),
        "imports",
        uuid::Uuid::new_v4(),
        Message::import_requested(job_id).to_json(),
    )
    .with_str_header(foxflow_messaging::headers::REASON, "parked by the test");
    publisher.publish(&parked).await.unwrap();

    let out = tokio::process::Command::new(foxflow_testkit::chaos::binary("foxctl"))
        .args(["dlq", "replay", "--queue", "imports"])
        .env_clear()
        .envs(app.env())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("not replayed"), "{stderr}");
    let still = foxflow_messaging::dlq::list(&app.env()["AMQP_URL"], &topology, QueueKind::Imports, 10)
        .await
        .unwrap();
    assert_eq!(
        still.len(),
        1,
        "the message it did not replay is still parked: {still:?}"
    );
    assert_eq!(still[0].reason.as_deref(), Some("parked by the test"));
    let job = app.get_json(&format!("/api/v1/imports/{done}")).await.1;
    assert_eq!(job["status"], "success", "{job}");
}
