//! Issue 18: how many times the ai-worker talks to PostgreSQL per task, counted by
//! PostgreSQL itself. A measurement, not a check (`--ignored`, and it needs to read the
//! server's log): the test database logs every parse, bind and execute of the ai-worker's
//! connections (`log_min_duration_statement = 0`), a batch of template generations runs, and
//! the lines of those connections are counted. Each `parse` is a round trip of its own (a
//! statement prepared again), each `execute` or simple `statement` another.
//!
//! `cargo build --bins && cargo test -p foxflow-e2e-tests --test e2e -- --ignored --nocapture
//! ai_round_trips` (`FOX_PG_LOG` names the log when it is not Debian's).

use foxflow_testkit::chaos::ServiceProcess;
use foxflow_testkit::{TestApp, TestOptions};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const VILLES: usize = 10;
const WAIT: Duration = Duration::from_secs(60);

async fn until<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + WAIT;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ai-worker's backends in the test database.
async fn worker_pids(db: &tokio_postgres::Client, name: &str) -> HashSet<String> {
    db.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'ai-worker'",
        &[&name],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<_, i32>(0).to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: reads the PostgreSQL server's log"]
async fn ai_round_trips_per_task() {
    let log = std::env::var("FOX_PG_LOG")
        .unwrap_or_else(|_| "/var/log/postgresql/postgresql-15-main.log".to_owned());
    let app = TestApp::spawn_with(TestOptions {
        api: true,
        import_worker: false,
        ai_worker: false,
        env: vec![("AI_PROVIDER".into(), "template".into())],
    })
    .await;
    let db = app.pg().await;
    db.batch_execute(&format!(
        "ALTER DATABASE \"{}\" SET log_min_duration_statement = 0",
        app.db_name
    ))
    .await
    .unwrap();
    let ids: Vec<i64> = db
        .query(
            "INSERT INTO villes (nom, slug, code_postal_principal, departement, region, population)
             SELECT 'Ville ' || i, 'ville-' || i, lpad((10000 + i)::text, 5, '0'), '69',
                    'Auvergne-Rhône-Alpes', 1000 * i
               FROM generate_series(1, $1::int) i
             RETURNING id",
            &[&(VILLES as i32)],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();

    let mut env = app.env().clone();
    env.insert("AI_PROVIDER".into(), "template".into());
    env.insert("WORKER_PREFETCH".into(), "1".into());
    let from = std::fs::metadata(&log).expect("the PostgreSQL log").len();
    let mut worker = ServiceProcess::start("ai-worker", "ai-round-trips", &env);
    // Its pool connects on first use: nothing of the start-up is counted but a connection's
    // set-up, shown apart.
    let worker_log =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-logs/ai-round-trips.log");
    until("the ai-worker's consumer", || async {
        std::fs::read_to_string(&worker_log).is_ok_and(|l| l.contains("consuming"))
    })
    .await;

    let resp = app
        .client
        .post(app.url("/api/v1/ai/generations"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"target": "ville", "ids": ids}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let batch: Value = resp.json().await.unwrap();
    let tasks = batch["total"].as_i64().unwrap();
    let id = batch["id"].as_str().unwrap().to_owned();
    until("the batch", || async {
        app.get_json(&format!("/api/v1/ai/generations/{id}")).await.1["status"] == "completed"
    })
    .await;
    let pids = worker_pids(&db, &app.db_name).await;
    worker.terminate(Duration::from_secs(10));

    let text = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&text[usize::try_from(from).unwrap()..]);
    let (mut parses, mut executes, mut simple, mut setups) = (0, 0, 0, 0);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        let Some(pid) = line.split('[').nth(1).and_then(|r| r.split(']').next()) else {
            continue;
        };
        let Some((_, what)) = line.split_once("LOG:  duration: ") else {
            continue;
        };
        if !pids.contains(pid) {
            continue;
        }
        let what = what.split_once("ms  ").map_or(what, |(_, w)| w);
        let phase = what.split_whitespace().next().unwrap_or_default();
        let sql: String = what
            .split_once(": ")
            .map_or(what, |(_, s)| s)
            .chars()
            .take(60)
            .collect();
        if sql.starts_with("SET application_name") {
            // Opening a connection, not a task's work.
            setups += 1;
            continue;
        }
        match phase {
            "parse" => parses += 1,
            "execute" => executes += 1,
            "statement:" => simple += 1,
            _ => continue,
        }
        *kinds.entry(format!("{phase:<10} {sql}")).or_default() += 1;
    }
    println!("{tasks} tasks; the ai-worker's backends {pids:?}, {setups} connection set-ups");
    for (k, n) in &kinds {
        println!("{:>6.2}/task  {k}", *n as f64 / tasks as f64);
    }
    let per = |n: i32| f64::from(n) / tasks as f64;
    println!(
        "per task: {:.2} parse, {:.2} execute, {:.2} simple = {:.2} round trips, {:.2} statements",
        per(parses),
        per(executes),
        per(simple),
        per(parses + executes + simple),
        per(executes + simple)
    );
}
