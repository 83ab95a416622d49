//! Issue 16, misuse that used to succeed or break something: racing replays
//! of one `Idempotency-Key`, `foxctl token create` widening tokens already
//! handed out, and a stored slug whose numeric suffix overflows `int`.

use foxflow_testkit::chaos::binary;
use foxflow_testkit::{TestApp, TestOptions};
use futures::StreamExt;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::time::Duration;

/// Eight uploads at once with one key: each answers the one job, none 500s,
/// and the copies of the file the losers stored are deleted at once. The
/// race is forced rather than hoped for: a lock that lets reads through but
/// holds inserts keeps every request between its look-up of the key (nothing
/// found) and its insert until all eight are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replays_of_one_idempotency_key_answer_the_first_job() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        env: vec![("DB_POOL_SIZE".into(), "16".into())],
        ..Default::default()
    })
    .await;
    let send = |i: usize| {
        let form = Form::new().text("import_type", "villes").part(
            "file",
            Part::bytes(format!("nom,code_postal\nLyon,69001\nCopie {i},74000\n").into_bytes())
                .file_name("villes.csv"),
        );
        app.client
            .post(app.url("/api/v1/imports"))
            .bearer_auth(&app.admin_token)
            .header("Idempotency-Key", "nightly-2026-12-04")
            .multipart(form)
            .send()
    };
    let locker = app.pg().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE import_jobs IN SHARE ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    let release = async {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let waiting: i64 = locker
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted
                     AND relation = 'import_jobs'::regclass",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting == 8 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{waiting} of 8 uploads reached the insert"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        locker.batch_execute("COMMIT").await.unwrap();
    };
    let (answers, ()) = tokio::join!(futures::future::join_all((0..8).map(send)), release);
    let mut ids = Vec::new();
    for resp in answers {
        let resp = resp.expect("request");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(
            status == 201 || status == 202,
            "a replay answered {status}: {body}"
        );
        ids.push(body["id"].as_str().expect("job id").to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "replays answered different jobs: {ids:?}");

    let pg = app.pg().await;
    let jobs: i64 = pg
        .query_one(
            "SELECT count(*) FROM import_jobs WHERE idempotency_key = 'nightly-2026-12-04'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(jobs, 1);
    let files: i64 = pg
        .query_one("SELECT count(*) FROM stored_files", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(files, 1, "the losers' copies of the file were kept");
    let messages: i64 = pg
        .query_one("SELECT count(*) FROM outbox", &[])
        .await
        .unwrap()
        .get(0);
    assert!(messages <= 1, "{messages} messages for one job");
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `foxctl token …` against the app's database, off the runtime's threads.
async fn foxctl_token(app: &TestApp, args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(binary("foxctl"));
    cmd.arg("token")
        .args(args)
        .env_clear()
        .envs(app.env())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("foxctl finished within 60 s")
        .expect("foxctl runs");
    Run {
        code: out.status.code().expect("foxctl exited"),
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn webhooks_status(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(app.url("/api/v1/webhooks"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Promoting a user never promotes a token already handed out: `create` on
/// an existing name changes nothing and fails; `--rotate` revokes the old
/// tokens before the new role exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_create_on_an_existing_user_never_widens_its_tokens() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let first = foxctl_token(&app, &["create", "--name", "alice", "--role", "staff"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let staff = first.stdout;
    assert!(staff.starts_with("fox_"), "stdout is the token alone: {staff}");
    assert_eq!(webhooks_status(&app, &staff).await, 403, "staff is not admin");

    let again = foxctl_token(&app, &["create", "--name", "alice", "--role", "admin"]).await;
    assert_ne!(again.code, 0, "an existing name was accepted: {}", again.stderr);
    assert!(again.stdout.is_empty(), "no token printed: {}", again.stdout);
    assert!(
        again.stderr.contains("already exists") && again.stderr.contains("--rotate"),
        "the refusal says what to do: {}",
        again.stderr
    );
    assert_eq!(
        webhooks_status(&app, &staff).await,
        403,
        "the staff token was promoted"
    );
    // Same role, same answer: a second token is a rotation too.
    let same = foxctl_token(&app, &["create", "--name", "alice", "--role", "staff"]).await;
    assert_ne!(same.code, 0, "{}", same.stderr);
    assert_eq!(webhooks_status(&app, &staff).await, 403);

    let rotated = foxctl_token(
        &app,
        &["create", "--name", "alice", "--role", "admin", "--rotate"],
    )
    .await;
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    assert!(
        rotated.stderr.contains("revoked 1 token(s)") && rotated.stderr.contains("staff -> admin"),
        "{}",
        rotated.stderr
    );
    let admin = rotated.stdout;
    assert!(admin.starts_with("fox_") && admin != staff);
    assert_eq!(
        webhooks_status(&app, &staff).await,
        401,
        "the old token outlived the rotation"
    );
    assert_eq!(webhooks_status(&app, &admin).await, 200);

    // Rotating a name nobody has creates it; the admin token above is alone.
    let bob = foxctl_token(&app, &["create", "--name", "bob", "--role", "viewer", "--rotate"]).await;
    assert_eq!(bob.code, 0, "{}", bob.stderr);
    let live: i64 = app
        .pg()
        .await
        .query_one(
            "SELECT count(*) FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE u.name = 'alice' AND t.revoked_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(live, 1);
}

async fn import_categories(app: &TestApp, csv: &str) -> Value {
    let id = app
        .submit("categories.csv", csv.as_bytes().to_vec(), "categories")
        .await;
    app.wait_final(&id, Duration::from_secs(60)).await
}

async fn slug_of(app: &TestApp, nom: &str) -> String {
    app.pg()
        .await
        .query_one("SELECT slug::text FROM categories WHERE nom = $1", &[&nom])
        .await
        .unwrap_or_else(|e| panic!("no catégorie {nom}: {e}"))
        .get(0)
}

/// A slug given by a file may end in any number; the next clash on its base
/// still gets a fresh suffix instead of failing the whole job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_slug_with_a_huge_numeric_suffix_never_breaks_an_import() {
    let app = TestApp::spawn().await;
    let thirty = "123456789012345678901234567890";
    let job = import_categories(
        &app,
        &format!(
            "nom,slug\nPlombier,\nPlombier géant,plombier-99999999999\n\
             Couvreur,\nCouvreur géant,couvreur-{thirty}\n"
        ),
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(slug_of(&app, "Plombier géant").await, "plombier-99999999999");

    let job = import_categories(&app, "nom\nPlombier !\nCouvreur !\nCouvreur ?\n").await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["attempts"].as_i64().unwrap_or(1), 1, "{job}");
    assert_eq!(slug_of(&app, "Plombier !").await, "plombier-100000000000");
    assert_eq!(
        slug_of(&app, "Couvreur !").await,
        "couvreur-123456789012345678901234567891"
    );
    assert_eq!(
        slug_of(&app, "Couvreur ?").await,
        "couvreur-123456789012345678901234567892"
    );

    // A suffix that leaves no room under the column's 120 characters.
    let nines = "9".repeat(111);
    let job = import_categories(&app, &format!("nom,slug\nLong,plombier-{nines}\n")).await;
    assert_eq!(job["status"], "success", "{job}");
    let job = import_categories(&app, "nom\nPlombier ?\n").await;
    assert_eq!(job["status"], "success", "{job}");
    let slug = slug_of(&app, "Plombier ?").await;
    assert!(slug.len() <= 120, "{slug}");
    let distinct: i64 = app
        .pg()
        .await
        .query_one("SELECT count(DISTINCT slug) - count(*) FROM categories", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(distinct, 0);
}

async fn stored_files(app: &TestApp) -> i64 {
    app.pg()
        .await
        .query_one("SELECT count(*) FROM stored_files", &[])
        .await
        .unwrap()
        .get(0)
}

async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Every field but the file is capped, unknown ones included; a body that
/// stalls is cut off with a 400 and what it stored is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_fields_and_slow_bodies_are_bounded() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let csv = b"nom,code_postal\nLyon,69001\n".to_vec();

    let big_unknown = app
        .upload(
            "villes.csv",
            csv.clone(),
            "villes",
            &[("comment", &"x".repeat(256 * 1024))],
        )
        .await;
    assert_eq!(error_code(big_unknown).await, (400, "field_too_long".into()));

    let many: Vec<(String, String)> = (0..20).map(|i| (format!("f{i}"), "1".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let too_many = app.upload("villes.csv", csv.clone(), "villes", &many).await;
    assert_eq!(error_code(too_many).await, (400, "too_many_fields".into()));

    // 1.5 MB of the file (so a first chunk is stored), then nothing.
    let mut head = b"--XB\r\nContent-Disposition: form-data; name=\"import_type\"\r\n\r\nvilles\r\n\
--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"villes.csv\"\r\n\
Content-Type: text/csv\r\n\r\nnom,code_postal\n"
        .to_vec();
    while head.len() < 1_500_000 {
        head.extend_from_slice(b"Lyon,69001\n");
    }
    let body = futures::stream::iter([Ok::<_, std::io::Error>(head)]).chain(futures::stream::pending());
    let started = std::time::Instant::now();
    let stalled = tokio::time::timeout(
        Duration::from_secs(60),
        app.client
            .post(app.url("/api/v1/imports"))
            .bearer_auth(&app.admin_token)
            .header("Content-Type", "multipart/form-data; boundary=XB")
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    )
    .await
    .expect("a stalled upload is answered within 60 s")
    .expect("an answer, not a dropped connection");
    assert_eq!(error_code(stalled).await, (400, "upload_timeout".into()));
    assert!(
        started.elapsed() >= Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stored_files(&app).await, 0, "the stalled upload's chunk was kept");
}
