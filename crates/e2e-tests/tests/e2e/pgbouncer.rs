//! Every service through pgBouncer 1.18 in transaction mode (Debian's package): imports of
//! every type, an AI batch and the retention cleanup, with a server pool smaller than the
//! services' client pools so that clients share server connections between transactions.
//! What it guards: statements that outlive a transaction on their server connection (named
//! prepared statements, session `SET`s), which pgBouncer 1.18 cannot carry over
//! (docs/crates.md §9).

use foxflow_testkit::chaos::binary;
use foxflow_testkit::data::{TOWNS, entreprises_csv};
use foxflow_testkit::pgbouncer::PgBouncer;
use foxflow_testkit::{TestApp, TestOptions};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(90);
const SERVICES: [&str; 3] = ["api-gateway", "import-worker", "ai-worker"];

async fn spawn(bouncer: &PgBouncer) -> TestApp {
    let env = [
        (
            "FOX_TEST_SERVICES_PG",
            format!("postgres://postgres@127.0.0.1:{}", bouncer.port()),
        ),
        ("DATABASE_POOLER", "transaction".to_owned()),
        ("AI_PROVIDER", "template".to_owned()),
        // Several AI tasks at once: concurrent transactions from one process.
        ("WORKER_PREFETCH", "4".to_owned()),
    ];
    TestApp::spawn_with(TestOptions {
        api: true,
        import_worker: true,
        ai_worker: true,
        env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    })
    .await
}

async fn import(app: &TestApp, name: &str, body: String, kind: &str, fields: &[(&str, &str)]) -> Value {
    let resp = app.upload(name, body.into_bytes(), kind, fields).await;
    assert_eq!(resp.status(), 202, "{kind} upload answered {}", resp.status());
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_final(&id, WAIT).await
}

/// Polls an AI batch until no task is pending.
async fn wait_batch(app: &TestApp, id: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, batch) = app.get_json(&format!("/api/v1/ai/generations/{id}")).await;
        assert_eq!(status, 200, "{batch}");
        if batch["pending"] == 0 && batch["processing"] == 0 {
            return batch;
        }
        assert!(Instant::now() < deadline, "batch {id} still running: {batch}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The clients pgBouncer holds for this test's database, by application name.
async fn clients_by_service(bouncer: &PgBouncer, db: &str) -> HashMap<String, usize> {
    let mut by = HashMap::new();
    for c in bouncer.show("CLIENTS").await.unwrap() {
        if c["database"] == db {
            *by.entry(c["application_name"].clone()).or_insert(0) += 1;
        }
    }
    by
}

async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_ai_and_cleanup_run_through_pgbouncer_in_transaction_mode() {
    let bouncer = PgBouncer::start().await.unwrap();
    let app = spawn(&bouncer).await;

    // Reference data, one import type after the other (each refers to the previous).
    let job = import(
        &app,
        "c.csv",
        "nom\nArtisans du bâtiment\nCommerces de bouche\nServices à la personne\n".to_owned(),
        "categories",
        &[],
    )
    .await;
    assert_eq!(
        (job["status"].as_str(), job["created_rows"].as_i64()),
        (Some("success"), Some(3)),
        "{job}"
    );
    let job = import(
        &app,
        "s.csv",
        "nom,categorie,naf_codes\nPlombier,Artisans du bâtiment,43.22A\n\
         Boulanger,Commerces de bouche,10.71C\nCoiffeur,Services à la personne,96.02A\n"
            .to_owned(),
        "sous_categories",
        &[],
    )
    .await;
    assert_eq!(
        (job["status"].as_str(), job["created_rows"].as_i64()),
        (Some("success"), Some(3)),
        "{job}"
    );
    let villes: String = std::iter::once("nom,code_postal".to_owned())
        .chain(TOWNS.iter().map(|(nom, cp)| format!("{nom},{cp}")))
        .collect::<Vec<_>>()
        .join("\n");
    let job = import(&app, "v.csv", villes, "villes", &[]).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["created_rows"].as_u64(), Some(TOWNS.len() as u64), "{job}");

    // 300 companies in batches of 50 (six commits, each with its staging table), with their
    // pages' texts generated afterwards.
    let job = import(
        &app,
        "e.csv",
        entreprises_csv(300, 11),
        "entreprises",
        &[("generate_ai", "true")],
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(
        (job["total_rows"].as_i64(), job["created_rows"].as_i64()),
        (Some(300), Some(300)),
        "{job}"
    );
    // Imported again: every row found unchanged, nothing written.
    let job = import(&app, "e.csv", entreprises_csv(300, 11), "entreprises", &[]).await;
    assert_eq!(
        (job["status"].as_str(), job["unchanged_rows"].as_i64()),
        (Some("success"), Some(300)),
        "{job}"
    );

    let db = app.pg().await;
    assert_eq!(count(&db, "SELECT count(*) FROM entreprises").await, 300);
    assert_eq!(
        count(&db, "SELECT count(*) FROM villes").await,
        TOWNS.len() as i64
    );
    assert_eq!(count(&db, "SELECT count(*) FROM sous_categories").await, 3);
    let pages = count(&db, "SELECT count(*) FROM prolocalisations").await;
    assert!(
        pages > 50,
        "the three NAF codes map ~3/8 of the companies to a page: {pages}"
    );

    // The batch the import handed over (created once the job is final), awaited through the API.
    let deadline = Instant::now() + WAIT;
    let handed_over = loop {
        let (status, list) = app.get_json("/api/v1/ai/generations").await;
        assert_eq!(status, 200, "{list}");
        if let Some(id) = list["items"][0]["id"].as_str() {
            assert_eq!(list["total"], 1, "{list}");
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "no batch after the import: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let batch = wait_batch(&app, &handed_over).await;
    assert_eq!(batch["status"], "completed", "{batch}");
    assert_eq!(batch["failed"], 0, "{batch}");
    assert!(batch["succeeded"].as_i64().unwrap() >= pages, "{batch}");
    // And one asked for explicitly, forced over texts that are already there.
    let ids: Vec<i64> = db
        .query("SELECT id FROM prolocalisations ORDER BY id LIMIT 40", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let resp = app
        .client
        .post(app.url("/api/v1/ai/generations"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"target": "prolocalisation", "ids": ids, "kinds": ["texte_long"], "force": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let forced = resp.json::<Value>().await.unwrap();
    let done = wait_batch(&app, forced["id"].as_str().unwrap()).await;
    assert_eq!(
        (done["succeeded"].as_i64(), done["failed"].as_i64()),
        (Some(40), Some(0)),
        "{done}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM prolocalisations
              WHERE texte_long_entreprise IS NULL OR date_derniere_generation_ia IS NULL"
        )
        .await,
        0,
        "every page has its text"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM ai_generations WHERE validation <> 'valid'"
        )
        .await,
        0
    );

    // The services really went through pgBouncer, more clients than server connections.
    let clients = clients_by_service(&bouncer, &app.db_name).await;
    for service in SERVICES {
        assert!(
            clients.get(service).is_some_and(|n| *n >= 1),
            "{service} not among {clients:?}"
        );
    }
    let servers = bouncer
        .show("SERVERS")
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s["database"] == app.db_name)
        .count();
    let client_total: usize = clients.values().sum();
    assert!(
        servers <= 5 && client_total > servers,
        "{client_total} clients on {servers} servers"
    );
    // Session settings the services rely on arrive by pgBouncer's connect_query, not by a
    // client's SET (which would stay behind on one server connection).
    let (client, conn) = tokio_postgres::connect(&bouncer.url(&app.db_name), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let timeout = client.simple_query("SHOW statement_timeout").await.unwrap();
    let timeout = timeout.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
        _ => None,
    });
    assert_eq!(timeout.as_deref(), Some("5min"));

    // The retention cleanup, as the CronJob runs it: `foxctl cleanup` with the services'
    // environment. One job moved past the retention goes, with its error rows and file.
    let old: String = db
        .query_one(
            "UPDATE import_jobs SET created_at = now() - interval '100 days'
              WHERE id = (SELECT id FROM import_jobs WHERE import_type = 'villes') RETURNING id::text",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    db.execute(
        "UPDATE stored_files SET created_at = now() - interval '100 days'
          WHERE id = (SELECT file_id FROM import_jobs WHERE id = $1::text::uuid)",
        &[&old],
    )
    .await
    .unwrap();
    let jobs_before = count(&db, "SELECT count(*) FROM import_jobs").await;
    // Two at once, as two replicas woken by one schedule: the transaction-scoped advisory lock
    // lets one do the work (a session lock would be lost, or held, across pooled connections).
    let run = || {
        let mut cmd = tokio::process::Command::new(binary("foxctl"));
        cmd.arg("cleanup")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .kill_on_drop(true);
        for key in ["DATABASE_URL", "DATABASE_POOLER", "AMQP_URL", "FOX_NAMESPACE"] {
            if let Some(v) = app.env().get(key) {
                cmd.env(key, v);
            }
        }
        async move { tokio::time::timeout(WAIT, cmd.output()).await.unwrap().unwrap() }
    };
    let (a, b) = tokio::join!(run(), run());
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "foxctl cleanup failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let reports = format!(
        "{}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout)
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM import_jobs").await,
        jobs_before - 1,
        "{reports}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM import_jobs WHERE import_type = 'villes'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM villes").await,
        TOWNS.len() as i64,
        "rows stay"
    );

    // Nothing pgBouncer saw went wrong on a server connection.
    let log = bouncer.log();
    assert!(!log.contains("prepared statement"), "pgbouncer log:\n{log}");
}

/// With TLS to the pooler (`sslmode=verify-full`), the handshake happens below the statement
/// rewriter: the session is encrypted, named by its startup parameter, and diesel's statements
/// run. A TLS-only PostgreSQL stands in for a pooler that terminates TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_transaction_pooler_tls_is_negotiated_below_the_statement_rewriter() {
    use foxflow_storage::{Pooler, auth, build_pool_via, migrate, pool};
    let pg = tokio::task::spawn_blocking(foxflow_testkit::tls_postgres::TlsPostgres::start)
        .await
        .unwrap();
    let ca = pg.ca_file().display().to_string();
    let url = pg.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    migrate::run_migrations(&url).await.unwrap();
    let pooled = build_pool_via(&url, 2, "pooled-tls", Pooler::Transaction).unwrap();
    let mut conn = pool::conn(&pooled).await.unwrap();
    let token = auth::create_token(&mut conn, "tls-user", auth::Role::Admin)
        .await
        .unwrap();
    assert!(!token.is_empty());
    let encrypted: bool = pg
        .admin()
        .await
        .query_one(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE a.application_name = 'pooled-tls'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted);
}
