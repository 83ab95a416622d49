//! Cluster-wide rate limits (docs/spec.md §7, issue 6): several replicas of a
//! service, one shared budget.

use foxflow_testkit::data::{ENTREPRISE_HEADER, siren_from, siret_for};
use foxflow_testkit::{TestApp, TestOptions};
use reqwest::multipart::{Form, Part};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A small CSV whose companies no other file of the test shares, so jobs
/// running side by side never write the same rows.
fn distinct_csv(file: u32, rows: u32) -> Vec<u8> {
    let mut out = format!("{ENTREPRISE_HEADER}\n");
    for i in 0..rows {
        let n = 20_000_000 + file * 1000 + i;
        let siren = siren_from(n);
        let siret = siret_for(&siren, 1);
        out.push_str(&format!(
            "{siren},{siret},Entreprise {n} SAS,,,75001,Paris,56.10A,,,\n"
        ));
    }
    out.into_bytes()
}

/// Uploads to one particular API replica.
async fn upload_at(app: &TestApp, api: SocketAddr, token: &str, file: u32) -> reqwest::Response {
    let form = Form::new().text("import_type", "entreprises").part(
        "file",
        Part::bytes(distinct_csv(file, 2)).file_name(format!("f{file}.csv")),
    );
    app.client
        .post(format!("http://{api}/api/v1/imports"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("upload request")
}

/// Polls a single-number query until `done` holds; panics at the deadline.
async fn await_count(app: &TestApp, sql: &str, timeout: Duration, done: impl Fn(i64) -> bool) -> i64 {
    let db = app.pg().await;
    let deadline = Instant::now() + timeout;
    loop {
        let n: i64 = db.query_one(sql, &[]).await.expect("query").get(0);
        if done(n) {
            return n;
        }
        assert!(Instant::now() < deadline, "`{sql}` still {n} after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `IMPORT_RATE_LIMIT=30/m` is a GCRA with a burst of 30, then one start
/// every 2 s. Forty-two jobs make the bound bite: over the first 20 s at
/// most burst + 10 = 40 may start across the three workers together, where
/// per-worker limits (the old Celery design) would start all 42 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_import_workers_share_one_start_rate() {
    const JOBS: u32 = 42;
    const BURST: usize = 30;
    let mut app = TestApp::spawn_with(TestOptions {
        api: true,
        import_worker: false,
        env: vec![("IMPORT_RATE_LIMIT".into(), "30/m".into())],
        ..TestOptions::default()
    })
    .await;
    let mut ids = Vec::new();
    for f in 0..JOBS {
        let resp = upload_at(&app, app.api_addr.unwrap(), &app.admin_token, f).await;
        assert_eq!(resp.status(), 202);
        let body: serde_json::Value = resp.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    // Every message is on the broker before any worker starts.
    await_count(
        &app,
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL",
        Duration::from_secs(15),
        |n| n == 0,
    )
    .await;

    let mut metrics = Vec::new();
    for _ in 0..3 {
        metrics.push(app.spawn_extra_import_worker(&[]).await.expect("metrics address"));
    }
    for id in &ids {
        let job = app.wait_final(id, Duration::from_secs(45)).await;
        assert_eq!(job["status"], "success", "{job}");
    }

    let db = app.pg().await;
    let offsets: Vec<f64> = db
        .query(
            "SELECT EXTRACT(EPOCH FROM started_at - min(started_at) OVER ())::float8
             FROM import_jobs ORDER BY started_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(offsets.len(), JOBS as usize);
    let within = |s: f64| offsets.iter().filter(|&&o| o <= s).count();
    assert!(
        within(20.0) <= BURST + 10,
        "{} jobs started in the first 20 s: {offsets:?}",
        within(20.0)
    );
    // And the burst is really there: a limit that is too strict would not
    // reach this many.
    assert!(within(10.0) >= 20, "only {} in 10 s: {offsets:?}", within(10.0));

    // One shared row, and the waits are on the workers' /metrics.
    let keys: i64 = db
        .query_one(
            "SELECT count(*) FROM rate_limits WHERE key = 'queue:imports'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 1);
    let text = app
        .client
        .get(format!("http://{}/metrics", metrics[0]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let waits: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("foxflow_rate_limiter_waits_total{key=\"queue:imports\"} "))
        .unwrap_or_else(|| panic!("no waits series in\n{text}"))
        .parse()
        .unwrap();
    assert!(waits >= 1.0, "{text}");
}

/// `UPLOAD_THROTTLE=5/h` across two API replicas: the sixth upload of one
/// user is refused whichever replica it reaches, stores nothing, and says
/// when to come back; another user is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_throttle_holds_per_user_across_two_apis() {
    let mut app = TestApp::spawn_with(TestOptions {
        api: true,
        import_worker: false,
        env: vec![("UPLOAD_THROTTLE".into(), "5/h".into())],
        ..TestOptions::default()
    })
    .await;
    let apis = [app.api_addr.unwrap(), app.spawn_extra_api(&[]).await];
    let alice = app.token("alice", "staff").await;
    let bob = app.token("bob", "staff").await;

    for i in 0..5 {
        let resp = upload_at(&app, apis[i % 2], &alice, i as u32).await;
        assert_eq!(resp.status(), 202, "upload {} of 5", i + 1);
    }
    let resp = upload_at(&app, apis[1], &alice, 5).await;
    assert_eq!(resp.status(), 429);
    let retry_after: u64 = resp
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds");
    // 5/h earns one upload back every 720 s.
    assert!((700..=720).contains(&retry_after), "Retry-After: {retry_after}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));

    // The other replica refuses too, and nothing of the refused uploads was kept.
    assert_eq!(upload_at(&app, apis[0], &alice, 6).await.status(), 429);
    let db = app.pg().await;
    for table in ["import_jobs", "stored_files"] {
        let n: i64 = db
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 5, "{table}");
    }

    for api in apis {
        assert_eq!(upload_at(&app, api, &bob, 7).await.status(), 202, "bob on {api}");
    }
}

/// Admins are exempt by default (`UPLOAD_THROTTLE_EXEMPT_ADMINS=true`), and
/// counted like anyone on a replica configured otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_are_exempt_unless_configured_otherwise() {
    let mut app = TestApp::spawn_with(TestOptions {
        api: true,
        import_worker: false,
        env: vec![("UPLOAD_THROTTLE".into(), "2/h".into())],
        ..TestOptions::default()
    })
    .await;
    let admin = app.admin_token.clone();
    let lenient = app.api_addr.unwrap();
    for f in 0..3 {
        assert_eq!(upload_at(&app, lenient, &admin, f).await.status(), 202);
    }
    let strict = app
        .spawn_extra_api(&[("UPLOAD_THROTTLE_EXEMPT_ADMINS", "false")])
        .await;
    assert_eq!(upload_at(&app, strict, &admin, 3).await.status(), 202);
    assert_eq!(upload_at(&app, strict, &admin, 4).await.status(), 202);
    assert_eq!(upload_at(&app, strict, &admin, 5).await.status(), 429);
    assert_eq!(upload_at(&app, lenient, &admin, 6).await.status(), 202);
}
