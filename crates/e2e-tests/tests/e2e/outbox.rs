//! Issue 15, the outbox: a row the broker refuses is set aside with its
//! reason (in `last_error`, the `foxflow_outbox_failed_messages` gauge and
//! `foxctl outbox list`) and the rows behind it flow; `foxctl outbox retry`
//! hands it back once the cause is fixed; a broker that is down sets nothing
//! aside; and the cleanup deletes sent rows after an hour.

use foxflow_storage::maintenance::{self, Retention};
use foxflow_testkit::chaos::binary;
use foxflow_testkit::data::entreprises_csv;
use foxflow_testkit::{TestApp, TestOptions};
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::Value;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(120);
/// The relay samples its gauges every 15 s (and at once when it sets a row
/// aside): a sample is due well within this.
const SAMPLED: Duration = Duration::from_secs(45);

/// Polls `probe` until it answers; panics after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} not seen after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs the built `foxctl` with the app's environment.
async fn foxctl(app: &TestApp, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(binary("foxctl"))
        .args(args)
        .env_clear()
        .envs(app.env())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("foxctl finished within 60 s")
        .expect("foxctl runs");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `name{namespace="<the app's>"}` on the `/metrics` at `url`.
async fn gauge(app: &TestApp, url: &str, name: &str) -> Option<f64> {
    let text = app.client.get(url).send().await.ok()?.text().await.ok()?;
    let prefix = format!("{name}{{namespace=\"{}\"}} ", app.namespace);
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

/// An outbox row no queue is bound for, with a valid JSON payload; its id.
async fn insert_poison(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "INSERT INTO outbox (routing_key, message_id, payload)
         VALUES ('nowhere', gen_random_uuid(), jsonb_build_object('type', 'poison', 'note', 'no queue is bound to this key'))
         RETURNING id",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// (failed_at is set, sent_at is set, attempts, last_error) of one row.
async fn state(db: &tokio_postgres::Client, id: i64) -> (bool, bool, i32, Option<String>) {
    let r = db
        .query_one(
            "SELECT failed_at IS NOT NULL, sent_at IS NOT NULL, attempts, last_error FROM outbox WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Before the fix the relay retried the batch with the poison row at its
/// head for ever: the rows in that batch were published again at every
/// retry and never marked sent, and the rows past the batch never went out.
/// The poison row was never set aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_outbox_row_is_set_aside_and_the_rest_flows() {
    let app = &TestApp::spawn().await;
    let db = &app.pg().await;
    let poison = insert_poison(db).await;

    let id = app
        .submit("e.csv", entreprises_csv(20, 15).into_bytes(), "entreprises")
        .await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");

    // Set aside, with a reason an operator can act on, not sent, and the
    // job's own message sent.
    let (failed, sent, attempts, reason) = eventually("the poison row set aside", WAIT, move || async move {
        let s = state(db, poison).await;
        s.0.then_some(s)
    })
    .await;
    assert!(!sent);
    assert_eq!(attempts, 1);
    let reason = reason.expect("a reason");
    assert!(
        reason.contains("unroutable") && reason.contains("`nowhere`"),
        "{reason}"
    );
    assert!(failed);
    let unsent: i64 = db
        .query_one(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND id <> $1",
            &[&poison],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unsent, 0, "everything behind the poison row was published");

    // The gauges on the worker's /metrics.
    let metrics = format!("http://{}/metrics", app.worker_metrics.expect("worker metrics"));
    let metrics = &metrics;
    eventually(
        "1 failed and 0 unsent outbox messages on /metrics",
        SAMPLED,
        move || async move {
            let failed = gauge(app, metrics, "foxflow_outbox_failed_messages").await;
            let unsent = gauge(app, metrics, "foxflow_outbox_unsent_messages").await;
            (failed == Some(1.0) && unsent == Some(0.0)).then_some(())
        },
    )
    .await;

    // `foxctl outbox list` shows it, as JSON and as text.
    let list = foxctl(app, &["outbox", "list", "--json"]).await;
    assert!(list.ok, "{}", list.stderr);
    let rows = json_lines(&list.stdout);
    assert_eq!(rows.len(), 1, "{}", list.stdout);
    let row = &rows[0];
    assert_eq!(row["id"], poison);
    assert_eq!(row["routing_key"], "nowhere");
    assert_eq!(row["last_error"], reason.as_str());
    assert!(
        row["failed_at"].is_string() && row["message_id"].is_string(),
        "{row}"
    );
    let text = foxctl(app, &["outbox", "list"]).await;
    assert!(text.ok && text.stdout.contains("nowhere") && text.stdout.contains("unroutable"));

    // Retried while nothing is bound to the key: refused again, set aside again.
    let retry = foxctl(app, &["outbox", "retry", "--id", &poison.to_string()]).await;
    assert!(retry.ok && retry.stderr.contains("1 row(s)"), "{}", retry.stderr);
    eventually("the retried row set aside again", WAIT, move || async move {
        let s = state(db, poison).await;
        (s.0 && s.2 == 2).then_some(())
    })
    .await;

    // The operator binds a queue to the key, then retries: it is published.
    let amqp = foxflow_messaging::connect(&app.env()["AMQP_URL"], "test-outbox")
        .await
        .unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let queue = format!("{}.nowhere", app.namespace);
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            app.topology().jobs_exchange().into(),
            "nowhere".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let retry = foxctl(app, &["outbox", "retry", "--all"]).await;
    assert!(retry.ok && retry.stderr.contains("1 row(s)"), "{}", retry.stderr);
    eventually("the retried row sent", WAIT, move || async move {
        let s = state(db, poison).await;
        (!s.0 && s.1).then_some(())
    })
    .await;
    let delivered = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the message is in the queue bound to its key");
    let body: Value = serde_json::from_slice(&delivered.delivery.data).unwrap();
    assert_eq!(body["type"], "poison");

    let list = foxctl(app, &["outbox", "list", "--json"]).await;
    assert!(list.ok && list.stdout.trim().is_empty(), "{}", list.stdout);
    eventually(
        "0 failed outbox messages on /metrics",
        SAMPLED,
        move || async move {
            let failed = gauge(app, metrics, "foxflow_outbox_failed_messages").await;
            (failed == Some(0.0)).then_some(())
        },
    )
    .await;
}

/// A queue deleted behind the processes' backs (a broker reset without its
/// definitions) made every message unroutable until a process declared the
/// topology again. The relay declares it again itself before judging a
/// returned message: nothing is set aside and the message is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_queue_is_declared_again_before_anything_is_set_aside() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let topology = app.topology();
    let imports = topology.work_queue(foxflow_domain::messages::QueueKind::Imports);
    let amqp = foxflow_messaging::connect(&app.env()["AMQP_URL"], "test-outbox")
        .await
        .unwrap();
    let channel = amqp.create_channel().await.unwrap();
    // The API's publisher is connected (and has declared everything) once a
    // first upload went through.
    let first = app
        .submit("a.csv", entreprises_csv(2, 1).into_bytes(), "entreprises")
        .await;
    let db = &app.pg().await;
    let sent = move || async move {
        let n: i64 = db
            .query_one("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        n
    };
    eventually("the first message sent", WAIT, move || async move {
        (sent().await == 1).then_some(())
    })
    .await;
    channel
        .queue_delete(imports.as_str().into(), Default::default())
        .await
        .unwrap();

    let second = app
        .submit("b.csv", entreprises_csv(2, 2).into_bytes(), "entreprises")
        .await;
    eventually("the second message sent", WAIT, move || async move {
        (sent().await == 2).then_some(())
    })
    .await;
    let failed: i64 = db
        .query_one("SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(failed, 0, "nothing set aside");
    // The queue is back, with the second job's message (the first one went
    // with the deleted queue).
    let delivered = channel
        .basic_get(imports.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the message is in the declared-again queue");
    let body: Value = serde_json::from_slice(&delivered.delivery.data).unwrap();
    assert_eq!(body["job_id"], second.as_str());
    assert_ne!(first, second);
}

/// The outbox is where messages wait for a broker that is down: a relay that
/// cannot connect leaves them queued, never set aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_down_sets_nothing_aside() {
    // Nothing listens on port 1.
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        env: vec![(
            "AMQP_URL".to_owned(),
            "amqp://guest:guest@127.0.0.1:1/%2f".to_owned(),
        )],
        ..Default::default()
    })
    .await;
    app.submit("e.csv", entreprises_csv(2, 3).into_bytes(), "entreprises")
        .await;
    // A sample of 1 unsent message is taken after a relay pass that failed
    // to connect with the row in the outbox.
    let (app, metrics) = (&app, &app.url("/metrics"));
    eventually(
        "1 unsent outbox message on /metrics",
        SAMPLED,
        move || async move {
            let unsent = gauge(app, metrics, "foxflow_outbox_unsent_messages").await;
            (unsent == Some(1.0)).then_some(())
        },
    )
    .await;
    assert_eq!(
        gauge(app, metrics, "foxflow_outbox_failed_messages").await,
        Some(0.0)
    );
    let db = app.pg().await;
    let row = db
        .query_one(
            "SELECT count(*) FILTER (WHERE failed_at IS NULL AND sent_at IS NULL), count(*) FROM outbox",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 1));
}

/// Sent rows are deleted an hour after they were sent, in batches (20,001
/// rows: three `DELETE`s); unsent and set-aside rows are kept, however old.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_sent_outbox_rows_after_an_hour_and_keeps_the_rest() {
    // No relay: the unsent row stays unsent.
    let app = TestApp::spawn_with(TestOptions {
        api: false,
        import_worker: false,
        ..Default::default()
    })
    .await;
    let db = &app.pg().await;
    db.batch_execute(
        "INSERT INTO outbox (routing_key, message_id, payload, created_at, sent_at, attempts)
         SELECT 'imports', gen_random_uuid(), '{}', now() - interval '3 hours', now() - interval '2 hours', 1
         FROM generate_series(1, 20001);
         INSERT INTO outbox (routing_key, message_id, payload, sent_at, attempts)
         VALUES ('imports', gen_random_uuid(), '{\"keep\": \"recently sent\"}', now() - interval '10 minutes', 1);
         INSERT INTO outbox (routing_key, message_id, payload, created_at)
         VALUES ('imports', gen_random_uuid(), '{\"keep\": \"unsent\"}', now() - interval '3 hours');
         INSERT INTO outbox (routing_key, message_id, payload, created_at, failed_at, last_error, attempts)
         VALUES ('nowhere', gen_random_uuid(), '{\"keep\": \"set aside\"}', now() - interval '3 hours',
                 now() - interval '2 hours', 'unroutable: test', 1);",
    )
    .await
    .unwrap();
    let retention = Retention {
        logs: Duration::from_secs(90 * 86400),
        files: Duration::from_secs(30 * 86400),
    };
    let pool = foxflow_storage::build_pool(&app.database_url, 1, "test").unwrap();
    let mut conn = foxflow_storage::pool::conn(&pool).await.unwrap();
    let total = move || async move {
        let n: i64 = db
            .query_one("SELECT count(*) FROM outbox", &[])
            .await
            .unwrap()
            .get(0);
        n
    };

    let dry = maintenance::cleanup(&mut conn, retention, true).await.unwrap();
    assert_eq!(dry.outbox_rows_deleted, 20_001, "{dry:?}");
    assert_eq!(total().await, 20_004, "a dry run deletes nothing");

    let report = maintenance::cleanup(&mut conn, retention, false).await.unwrap();
    assert!(report.ran);
    assert_eq!(report.outbox_rows_deleted, 20_001, "{report:?}");
    let kept: Vec<String> = db
        .query("SELECT payload->>'keep' FROM outbox ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kept, ["recently sent", "unsent", "set aside"]);

    let again = maintenance::cleanup(&mut conn, retention, false).await.unwrap();
    assert_eq!(again.outbox_rows_deleted, 0);
}
