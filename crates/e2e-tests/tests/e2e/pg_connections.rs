//! How Foxflow reaches PostgreSQL: `sslmode`/`sslrootcert` of DATABASE_URL
//! against a TLS-only server the test starts (plaintext TCP refused by
//! pg_hba.conf), through the one connect path the pool, `foxctl migrate` and
//! the migrations share; and the pool's series on each service's `/metrics`.

use foxflow_storage::auth::Role;
use foxflow_storage::{DbTarget, auth, build_pool, connect, migrate, pool};
use foxflow_testkit::chaos::binary;
use foxflow_testkit::tls_postgres::TlsPostgres;
use foxflow_testkit::{TestApp, TestOptions};
use std::time::Duration;

async fn tls_server() -> TlsPostgres {
    tokio::task::spawn_blocking(TlsPostgres::start)
        .await
        .expect("the TLS PostgreSQL starts")
}

/// Connects with `url` and holds the connection while asking the server,
/// from outside, whether that session is encrypted; returns the TLS version.
async fn tls_version_of(pg: &TlsPostgres, url: &str, app: &str) -> String {
    let target = DbTarget::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let conn = connect(&target)
        .await
        .unwrap_or_else(|e| panic!("{target:?} should connect: {e}"));
    let row = pg
        .admin()
        .await
        .query_one(
            "SELECT s.ssl, coalesce(s.version, '') FROM pg_stat_ssl s
               JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap_or_else(|e| panic!("the session of {app} is not on the server: {e:?}"));
    drop(conn);
    assert!(row.get::<_, bool>(0), "{app}: the session is not encrypted");
    row.get(1)
}

async fn connect_error(url: &str) -> String {
    let target = DbTarget::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    match connect(&target).await {
        Ok(_) => panic!("{target:?} connected, and should not have"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_and_sslrootcert_behave_as_libpq_against_a_tls_only_server() {
    let pg = tls_server().await;
    let ca = pg.ca_file().display().to_string();
    let other = pg.other_ca_file().display().to_string();

    // Plaintext is refused by the server, and the message says what to change.
    let err = connect_error(&pg.url("127.0.0.1", "postgres", "sslmode=disable")).await;
    assert!(
        err.contains("refused the connection")
            && err.contains("no encryption")
            && err.contains("sslmode=require"),
        "{err}"
    );

    // Encrypted without a CA (the server's certificate is not checked), and
    // with one, by chain (verify-ca) and by chain and name (verify-full).
    for (i, (host, params)) in [
        ("127.0.0.1", "sslmode=prefer".to_owned()),
        ("127.0.0.1", "sslmode=require".to_owned()),
        ("127.0.0.1", format!("sslmode=verify-ca&sslrootcert={ca}")),
        ("localhost", format!("sslmode=verify-full&sslrootcert={ca}")),
        ("127.0.0.1", format!("sslmode=verify-full&sslrootcert={ca}")),
    ]
    .into_iter()
    .enumerate()
    {
        let app = format!("tls-case-{i}");
        let url = pg.url(host, "postgres", &format!("{params}&application_name={app}"));
        let version = tls_version_of(&pg, &url, &app).await;
        assert!(version.starts_with("TLSv1."), "{params}: {version}");
    }

    // A certificate not signed by the CA given: refused, and said so.
    for mode in ["verify-full", "verify-ca", "require"] {
        let err = connect_error(&pg.url(
            "localhost",
            "postgres",
            &format!("sslmode={mode}&sslrootcert={other}"),
        ))
        .await;
        assert!(
            err.contains("certificate")
                && err.contains("could not be verified")
                && err.contains("not signed by any of those CAs"),
            "{mode} with the wrong CA: {err}"
        );
    }

    // The right CA but another name (the server reached by address): only
    // verify-full looks at the name.
    let elsewhere = |mode: &str| {
        pg.url(
            "db.not-this-server.invalid",
            "postgres",
            &format!("hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={ca}&application_name=tls-{mode}-name"),
        )
    };
    let err = connect_error(&elsewhere("verify-full")).await;
    assert!(
        err.contains("could not be verified") && err.contains("db.not-this-server.invalid"),
        "host name mismatch: {err}"
    );
    tls_version_of(&pg, &elsewhere("verify-ca"), "tls-verify-ca-name").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_the_pool_and_foxctl_work_over_verify_full() {
    let pg = tls_server().await;
    let ca = pg.ca_file().display().to_string();
    let url = pg.url(
        "localhost",
        "foxflow_tls",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );

    assert!(
        migrate::ensure_database(&url)
            .await
            .expect("create the database over TLS")
    );
    let applied = migrate::run_migrations(&url).await.expect("migrations over TLS");
    assert!(!applied.is_empty(), "no migration applied");

    let pool = build_pool(&url, 2, "tls-pool").expect("pool");
    let mut conn = pool::conn(&pool).await.expect("a pooled connection over TLS");
    let token = auth::create_token(&mut conn, "tls-admin", Role::Admin)
        .await
        .expect("write through the pool");
    let principal = auth::authenticate(&mut conn, &token).await.expect("read it back");
    assert_eq!(principal.role, Role::Admin);
    let encrypted: bool = pg
        .admin()
        .await
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE a.application_name = 'tls-pool'",
            &[],
        )
        .await
        .expect("the pool's session")
        .get(0);
    assert!(encrypted, "the pool's connection is not encrypted");
    let metrics = pool.metrics_text();
    for line in [
        "foxflow_db_pool_connections{state=\"in_use\"} 1",
        "foxflow_db_pool_max_connections 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing:\n{metrics}");
    }
    drop(conn);

    // The binary: the same URL migrates; a wrong CA and a bad sslmode fail
    // with messages that say which.
    let foxctl = |url: String| async move {
        let out = tokio::process::Command::new(binary("foxctl"))
            .arg("migrate")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), out)
            .await
            .expect("foxctl finished within 60 s")
            .expect("foxctl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = foxctl(url.clone()).await;
    assert!(ok && stderr.contains("up to date"), "{stderr}");
    let wrong_ca = url.replace(&ca, &pg.other_ca_file().display().to_string());
    let (ok, stderr) = foxctl(wrong_ca).await;
    assert!(!ok && stderr.contains("could not be verified"), "{stderr}");
    assert!(
        !stderr.contains("tls-test-secret"),
        "the password leaked: {stderr}"
    );
    let (ok, stderr) = foxctl(url.replace("verify-full", "verify_full")).await;
    assert!(!ok && stderr.contains("sslmode `verify_full`"), "{stderr}");
}

/// `name` (no labels but `state`) on a /metrics page.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_process_shows_its_pool_on_its_metrics() {
    let app = TestApp::spawn_with(TestOptions {
        ai_worker: true,
        env: vec![("DB_POOL_SIZE".into(), "3".into())],
        ..Default::default()
    })
    .await;
    // Something for the API and the import worker to check connections out for.
    let id = app
        .submit(
            "pool.csv",
            b"nom\nArtisans du b\xc3\xa2timent\n".to_vec(),
            "categories",
        )
        .await;
    app.wait_final(&id, Duration::from_secs(20)).await;

    let pages = [
        ("api-gateway", app.url("/metrics"), true),
        (
            "import-worker",
            format!(
                "http://{}/metrics",
                app.worker_metrics.expect("import worker metrics")
            ),
            true,
        ),
        // Idle without AI tasks: its pool may not have been used yet.
        (
            "ai-worker",
            format!(
                "http://{}/metrics",
                app.ai_worker_metrics.expect("ai worker metrics")
            ),
            false,
        ),
    ];
    for (process, url, used) in pages {
        let text = app.client.get(&url).send().await.unwrap().text().await.unwrap();
        let get =
            |name: &str| series(&text, name).unwrap_or_else(|| panic!("{process}: no {name} in\n{text}"));
        assert_eq!(get("foxflow_db_pool_max_connections"), 3.0, "{process}");
        let in_use = get("foxflow_db_pool_connections{state=\"in_use\"}");
        let idle = get("foxflow_db_pool_connections{state=\"idle\"}");
        assert!(
            in_use >= 0.0 && idle >= 0.0 && in_use + idle <= 3.0,
            "{process}: {in_use} + {idle}"
        );
        let waits = get("foxflow_db_pool_wait_seconds_count");
        let waited = get("foxflow_db_pool_wait_seconds_sum");
        assert!(waited >= 0.0, "{process}: {waited}");
        if used {
            assert!(in_use + idle >= 1.0, "{process}: no connection opened");
            assert!(waits >= 1.0, "{process}: no checkout counted");
            // Every checkout lands in some bucket, the last one included.
            assert_eq!(
                get("foxflow_db_pool_wait_seconds_bucket{le=\"+Inf\"}"),
                waits,
                "{process}"
            );
        }
        assert_eq!(
            text.matches("# TYPE foxflow_db_pool_connections gauge").count(),
            1,
            "{process}: declared once"
        );
    }
}
