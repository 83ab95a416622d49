//! Issue 15: every job ends. A worker killed again and again, a message the
//! broker dead-letters, a database that refuses the failure at that moment,
//! duplicate deliveries in one process, time spent waiting in a queue: each
//! leaves the job final, with the reason in words, and never counted twice.
//! Real worker processes, the real broker and database.

use foxflow_domain::messages::{Message, QueueKind};
use foxflow_messaging::{Envelope, Publisher, headers};
use foxflow_testkit::chaos::ServiceProcess;
use foxflow_testkit::data::entreprises_csv;
use foxflow_testkit::{TestApp, TestOptions};
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(180);

fn api_only(env: &[(&str, &str)]) -> TestOptions {
    TestOptions {
        import_worker: false,
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

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

async fn lease_owner(app: &TestApp, id: &str) -> Option<String> {
    app.pg()
        .await
        .query_one(
            "SELECT lease_owner FROM import_jobs WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.pg().await.query_one(sql, &[]).await.unwrap().get(0)
}

/// The kill loop: the worker holding the job is killed (`kill -9`,
/// as an OOM kill does) each time it has the job, up to twelve times. The
/// job must end `error` with `worker_lost` within a minute of the last
/// kill — not stay `processing` for ever — and `retry` must then finish it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_loop_ends_the_job_worker_lost_and_retry_finishes_it() {
    let env = [
        ("IMPORT_LEASE", "2s"),
        ("MAX_IMPORT_ROWS", "100000"),
        ("MAX_IMPORT_FILE_BYTES", "33554432"),
        ("IMPORT_BATCH_ROWS", "1000"),
    ];
    let app = TestApp::spawn_with(api_only(&env)).await;
    let id = app
        .submit(
            "big.csv",
            entreprises_csv(100_000, 15).into_bytes(),
            "entreprises",
        )
        .await;
    let worker_env: HashMap<String, String> = app.env().clone();
    let mut kills = 0;
    let mut last_kill = Instant::now();
    let mut previous_owner = None;
    while kills < 12 {
        let mut worker = ServiceProcess::start("import-worker", &format!("kill-loop-{kills}"), &worker_env);
        // Kill it once it holds the job (a new claim), or stop when the job
        // has ended.
        let deadline = Instant::now() + Duration::from_secs(60);
        let held = loop {
            let (_, job) = app.get_json(&format!("/api/v1/imports/{id}")).await;
            if job["status"] != "pending" && job["status"] != "processing" {
                break false;
            }
            let owner = lease_owner(&app, &id).await;
            if owner.is_some() && owner != previous_owner {
                previous_owner = owner;
                break true;
            }
            assert!(Instant::now() < deadline, "no worker took the job: {job}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if !held {
            worker.kill();
            break;
        }
        worker.kill();
        kills += 1;
        last_kill = Instant::now();
    }
    // A healthy worker from now on.
    let _healthy = ServiceProcess::start("import-worker", "kill-loop-healthy", &worker_env);
    let job = app.wait_final(&id, WAIT).await;
    let ended_after = last_kill.elapsed();
    println!("kill loop: {kills} kills, job final {ended_after:?} after the last");
    assert_eq!(job["status"], "error", "{job}");
    let reason = job["last_error"].as_str().unwrap_or_default();
    assert!(reason.starts_with("worker_lost : "), "French by default: {job}");
    assert!(reason.contains("s’est arrêté"), "{job}");
    assert!(
        ended_after < Duration::from_secs(60),
        "ended {ended_after:?} after the last kill"
    );
    assert!(
        kills <= 5,
        "stopped restarting it after IMPORT_MAX_RETRIES lost workers: {kills} kills"
    );

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
    assert_eq!(job["total_rows"], 100_000, "{job}");
    assert_eq!(job["error_rows"], 0, "{job}");
    assert_eq!(count(&app, "SELECT count(*) FROM entreprises").await, 100_000);
}

/// A message the broker dead-letters at its delivery limit (a consumer that
/// never acknowledges it, as workers killed while holding it do) ends its job
/// `error` with `delivery_limit`, even when the database refuses the failure
/// at first (as `parked()` once did when it was down): the recorder keeps the
/// copy until it can write. Listing the parking queue meanwhile, many times,
/// never spends the parked message's deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_job_ends_delivery_limit_even_when_the_database_refuses_at_first() {
    let app = TestApp::spawn_with(api_only(&[])).await;
    let db = app.pg().await;
    db.batch_execute(
        "CREATE FUNCTION refuse_error() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'the test refuses to end jobs'; END $$;
         CREATE TRIGGER refuse_error BEFORE UPDATE ON import_jobs
         FOR EACH ROW WHEN (NEW.status = 'error') EXECUTE FUNCTION refuse_error();",
    )
    .await
    .unwrap();
    let id = app
        .submit("ok.csv", entreprises_csv(3, 5).into_bytes(), "entreprises")
        .await;

    // A consumer that hands the message back every time, until the broker
    // gives up on it.
    let topology = app.topology();
    let conn = foxflow_messaging::connect(&app.env()["AMQP_URL"], "test-refuser")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut consumer = ch
        .basic_consume(
            ShortString::from(topology.work_queue(QueueKind::Imports)),
            ShortString::from("refuser"),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut deliveries = 0;
    while let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await {
        deliveries += 1;
        d.acker
            .nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    assert!(
        deliveries > foxflow_messaging::topology::DELIVERY_LIMIT,
        "the broker dead-letters after its limit: {deliveries} deliveries"
    );

    let url = &app.env()["AMQP_URL"];
    for _ in 0..25 {
        let parked = foxflow_messaging::dlq::list(url, &topology, QueueKind::Imports, 10)
            .await
            .unwrap();
        assert_eq!(parked.len(), 1, "{parked:?}");
    }
    let (_, job) = app.get_json(&format!("/api/v1/imports/{id}")).await;
    assert_eq!(
        job["status"], "pending",
        "the database refused the failure: {job}"
    );

    db.batch_execute("DROP TRIGGER refuse_error ON import_jobs")
        .await
        .unwrap();
    let job = wait_job(&app, &id, Duration::from_secs(60), |j| j["status"] == "error").await;
    let reason = job["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("delivery_limit : le broker a abandonné"),
        "{job}"
    );
    assert_eq!(
        foxflow_messaging::dlq::list(url, &topology, QueueKind::Imports, 10)
            .await
            .unwrap()
            .len(),
        1,
        "the parked copy stays for the operator"
    );
}

/// Copies of one job's message delivered to one process at prefetch 4 (a
/// relay republish, a lost connection): the job runs once, its counts and
/// error rows are not doubled, and the copies leave no message behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_deliveries_at_prefetch_4_run_the_job_once() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![
            ("WORKER_PREFETCH".into(), "4".into()),
            ("IMPORT_BATCH_ROWS".into(), "500".into()),
        ],
        ..Default::default()
    })
    .await;
    let mut csv = entreprises_csv(20_000, 21);
    // One bad row, so doubled error rows would show.
    csv.push_str("X,123,,,,,,,,,\n");
    let id = app.submit("dup.csv", csv.into_bytes(), "entreprises").await;
    let topology = app.topology();
    let publisher = Publisher::new(&app.env()["AMQP_URL"], "test", topology.clone());
    let job_id = Uuid::parse_str(&id).unwrap();
    for _ in 0..3 {
        let env = Envelope::new(
            topology.jobs_exchange(),
            QueueKind::Imports.as_str(),
            Uuid::new_v4(),
            Message::import_requested(job_id).to_json(),
        )
        .with_i64_header(headers::ATTEMPT, 0);
        publisher.publish(&env).await.unwrap();
    }
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "partial", "{job}");
    assert_eq!(job["total_rows"], 20_001, "{job}");
    assert_eq!(job["processed_rows"], 20_001, "{job}");
    assert_eq!(job["created_rows"], 20_000, "{job}");
    assert_eq!(job["error_rows"], 1, "{job}");
    assert_eq!(count(&app, "SELECT count(*) FROM entreprises").await, 20_000);
    assert_eq!(
        count(&app, "SELECT count(DISTINCT row) FROM import_errors").await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) - count(DISTINCT (row, code, \"column\")) FROM import_errors"
        )
        .await,
        0,
        "no error row written twice"
    );
    // The copies come back, find the job final and are acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ch = foxflow_messaging::connect(&app.env()["AMQP_URL"], "test-depth")
        .await
        .unwrap()
        .create_channel()
        .await
        .unwrap();
    loop {
        let mut left = 0;
        for q in [
            topology.work_queue(QueueKind::Imports),
            topology.retry_queue(QueueKind::Imports),
        ] {
            left += ch
                .queue_declare(
                    ShortString::from(q),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap()
                .message_count();
        }
        if left == 0
            && count(
                &app,
                "SELECT count(*) FROM import_jobs WHERE lease_owner IS NOT NULL",
            )
            .await
                == 0
        {
            break;
        }
        assert!(Instant::now() < deadline, "{left} copies still queued");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job = app.get_json(&format!("/api/v1/imports/{id}")).await.1;
    assert_eq!(job["created_rows"], 20_000, "unchanged after the copies: {job}");
}

/// The soft time limit counts running time: a job that waited in the queue
/// for an hour after its first start (a checkpoint, then a backlog) still
/// has its whole soft limit to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_waiting_in_the_queue_does_not_count_against_the_soft_limit() {
    let mut app = TestApp::spawn_with(api_only(&[
        ("IMPORT_SOFT_TIME_LIMIT", "10m"),
        ("IMPORT_BATCH_ROWS", "100"),
    ]))
    .await;
    let id = app
        .submit(
            "waited.csv",
            entreprises_csv(1_000, 8).into_bytes(),
            "entreprises",
        )
        .await;
    app.pg()
        .await
        .execute(
            "UPDATE import_jobs SET started_at = now() - interval '1 hour' WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    app.spawn_extra_import_worker(&[]).await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["created_rows"], 1_000, "{job}");
}

/// A job a dead worker left (processing, its lease expired, nothing taking it over) shows in
/// `foxflow_jobs_past_lease` on the API's `/metrics`, which the `FoxflowJobsPastLease` alert
/// reads; once retried it leaves the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_left_past_its_lease_shows_on_the_metrics() {
    let app = TestApp::spawn_with(api_only(&[])).await;
    let id = app
        .submit("left.csv", entreprises_csv(3, 9).into_bytes(), "entreprises")
        .await;
    app.pg()
        .await
        .execute(
            "UPDATE import_jobs SET status = 'processing', lease_owner = 'gone#1',
                    lease_expires_at = now() - interval '1 minute'
              WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    let series = format!("foxflow_jobs_past_lease{{namespace=\"{}\"}}", app.namespace);
    let value = || async {
        let text = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series.as_str()).map(|v| v.trim().to_owned()))
    };
    // Sampled every 15 s.
    let deadline = Instant::now() + Duration::from_secs(40);
    while value().await.as_deref() != Some("1") {
        assert!(
            Instant::now() < deadline,
            "{series} never showed the job: {:?}",
            value().await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/imports/{id}/retry")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        202,
        "a job past its lease is not running: retry takes it"
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    while value().await.as_deref() != Some("0") {
        assert!(
            Instant::now() < deadline,
            "{series} kept the retried job: {:?}",
            value().await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
