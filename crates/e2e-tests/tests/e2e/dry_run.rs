//! Issue 15: a dry run gives exactly the counts the real import gives, at
//! any size. Batches of 100 rows, so every file spans several batches and
//! its later rows depend on what earlier batches wrote: keys repeated across
//! batches, and sous-catégories whose catégorie an earlier batch created.

use foxflow_testkit::chaos::ServiceProcess;
use foxflow_testkit::data::entreprises_csv;
use foxflow_testkit::{TestApp, TestOptions};
use serde_json::Value;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(120);

/// The tables an import writes: a dry run must leave every one as it was.
const DIRECTORY: &[&str] = &[
    "categories",
    "sous_categories",
    "naf_sous_categories",
    "villes",
    "entreprises",
    "prolocalisations",
];

const COUNTS: &[&str] = &[
    "status",
    "total_rows",
    "processed_rows",
    "created_rows",
    "updated_rows",
    "unchanged_rows",
    "error_rows",
];

async fn small_batches() -> TestApp {
    TestApp::spawn_with(TestOptions {
        env: vec![("IMPORT_BATCH_ROWS".into(), "100".into())],
        ..Default::default()
    })
    .await
}

/// Every directory table's row count and a digest of its rows (also the
/// exports' round-trip check).
pub(crate) async fn directory(app: &TestApp) -> Vec<(&'static str, i64, String)> {
    let db = app.pg().await;
    let mut out = Vec::new();
    for table in DIRECTORY {
        let row = db
            .query_one(
                &format!(
                    "SELECT count(*), md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
                ),
                &[],
            )
            .await
            .unwrap();
        out.push((*table, row.get(0), row.get(1)));
    }
    out
}

/// `(row, code)` of every error row of a job, in row order.
async fn errors(app: &TestApp, job: &Value) -> Vec<(i64, String)> {
    let id = job["id"].as_str().unwrap();
    let (status, page) = app
        .get_json(&format!("/api/v1/imports/{id}/errors?per_page=100"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page["total"].as_i64() <= Some(100),
        "more errors than one page: {page}"
    );
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_i64().unwrap(), e["code"].as_str().unwrap().to_owned()))
        .collect()
}

async fn run(app: &TestApp, name: &str, bytes: &[u8], kind: &str, dry_run: bool) -> Value {
    let flag = if dry_run { "true" } else { "false" };
    let resp = app.upload(name, bytes.to_vec(), kind, &[("dry_run", flag)]).await;
    assert_eq!(resp.status(), 202, "upload answered {}", resp.status());
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["dry_run"], dry_run, "{job}");
    job
}

/// Runs the file as a dry run, checks it wrote nothing, then imports it for
/// real and checks both jobs counted every row the same way. Returns the
/// real job.
async fn dry_run_then_real(app: &TestApp, name: &str, bytes: &[u8], kind: &str) -> Value {
    let before = directory(app).await;
    let dry = run(app, name, bytes, kind, true).await;
    assert_eq!(
        directory(app).await,
        before,
        "the dry run changed the directory: {dry}"
    );
    let real = run(app, name, bytes, kind, false).await;
    for key in COUNTS {
        assert_eq!(
            dry[key], real[key],
            "`{key}` differs\ndry run: {dry}\nreal: {real}"
        );
    }
    assert_eq!(errors(app, &dry).await, errors(app, &real).await);
    real
}

fn counts(job: &Value) -> [i64; 5] {
    [
        "total_rows",
        "created_rows",
        "updated_rows",
        "unchanged_rows",
        "error_rows",
    ]
    .map(|k| job[k].as_i64().unwrap_or_else(|| panic!("no `{k}` in {job}")))
}

/// Replaces one cell of a generated (unquoted) CSV line.
fn with_cell(line: &str, index: usize, value: &str) -> String {
    let mut cells: Vec<&str> = line.split(',').collect();
    cells[index] = value;
    cells.join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entreprises_repeated_across_batches_count_as_the_real_import() {
    let app = small_batches().await;
    let generated = entreprises_csv(400, 15);
    let mut lines = generated.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();

    // Stored before: 50 companies as the file has them, 50 with another
    // trade name (the file updates those).
    let mut seed = format!("{header}\n");
    for (i, row) in rows.iter().enumerate().skip(300) {
        let row = if i < 350 {
            with_cell(row, 3, "Ancienne enseigne")
        } else {
            (*row).to_owned()
        };
        seed.push_str(&row);
        seed.push('\n');
    }
    let job = run(&app, "seed.csv", seed.as_bytes(), "entreprises", false).await;
    assert_eq!(counts(&job), [100, 100, 0, 0, 0], "{job}");

    // 400 companies, then (batch 5) 25 exact copies of rows of batch 1 and
    // 25 copies of rows of batch 2 with a new trade name, and 2 bad rows.
    let mut csv = generated.clone();
    for row in &rows[..25] {
        csv.push_str(row);
        csv.push('\n');
    }
    for row in &rows[100..125] {
        csv.push_str(&with_cell(row, 3, "Nouvelle enseigne"));
        csv.push('\n');
    }
    csv.push_str("123,,Siren trop court,,,,,,,,\n");
    csv.push_str(",,Sans siren,,,,,,,,\n");

    let real = dry_run_then_real(&app, "e.csv", csv.as_bytes(), "entreprises").await;
    // created: 400 − 100 stored; updated: 50 stored with another trade name
    // + 25 renamed copies; unchanged: 50 stored as is + 25 exact copies.
    assert_eq!(counts(&real), [452, 300, 75, 75, 2], "{real}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_term_export_whose_children_follow_their_parents_counts_as_the_real_import() {
    let app = small_batches().await;
    // A WordPress term export imported as sous_categories: top-level terms
    // are catégories, the others sous-catégories of their `Parent Name`.
    let mut csv =
        String::from("Term ID,Term Name,Term Slug,Description,Parent ID,Parent Name,Parent Slug,Count\n");
    let mut id = 1000;
    let mut parent = |csv: &mut String, k: usize, description: &str| {
        id += 1;
        csv.push_str(&format!("{id},Catégorie {k:03},,{description},,,,0\n"));
    };
    // Rows 1–90: catégories 0–89, then rows 91–100: a child of each of
    // 0–9 in the same batch (the cache learns their ids there).
    for k in 0..90 {
        parent(&mut csv, k, "");
    }
    let child = |csv: &mut String, name: &str, k: usize| {
        csv.push_str(&format!(
            "{},{name},,,{},Catégorie {k:03},,0\n",
            5000 + k,
            1001 + k
        ));
    };
    for k in 0..10 {
        child(&mut csv, &format!("Enfant A{k}"), k);
    }
    // Rows 101–150: catégories 90–139.
    for k in 90..140 {
        parent(&mut csv, k, "");
    }
    // Rows 151–290: a child of every catégorie, in later batches.
    for k in 0..140 {
        child(&mut csv, &format!("Enfant B{k}"), k);
    }
    // Rows 291–310: catégories 0–19 again, as they were.
    for k in 0..20 {
        parent(&mut csv, k, "");
    }
    // Rows 311–320: children again, as they were.
    for k in 0..10 {
        child(&mut csv, &format!("Enfant B{k}"), k);
    }
    // Row 321: a child of a catégorie nowhere.
    child(&mut csv, "Orphelin", 999);
    // Rows 322–326: catégories 20–24 again, now with a description.
    for k in 20..25 {
        parent(&mut csv, k, "Décrite plus tard");
    }

    let real = dry_run_then_real(&app, "termes.csv", csv.as_bytes(), "sous_categories").await;
    // created: 140 catégories + 150 children; updated: the 5 described;
    // unchanged: 30 repeated rows; the orphan is an error.
    assert_eq!(counts(&real), [326, 290, 5, 30, 1], "{real}");
    assert_eq!(
        errors(&app, &real).await,
        vec![(321, "unknown_categorie".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn villes_repeated_across_batches_count_as_the_real_import() {
    let app = small_batches().await;
    let town = |k: usize, population: u32| format!("Bourg {k},{:05},{population}\n", 1000 + k);
    let mut csv = String::from("nom,code_postal,population\n");
    for k in 0..200 {
        csv.push_str(&town(k, 1000));
    }
    // Batch 3: 20 towns of batch 1 again, 10 of batch 2 with a new population.
    for k in 0..20 {
        csv.push_str(&town(k, 1000));
    }
    for k in 100..110 {
        csv.push_str(&town(k, 2000));
    }
    let real = dry_run_then_real(&app, "v.csv", csv.as_bytes(), "villes").await;
    assert_eq!(counts(&real), [230, 200, 10, 20, 0], "{real}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_resumed_after_sigterm_counts_as_the_real_import() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let mut env = app.env().clone();
    env.insert("IMPORT_BATCH_ROWS".into(), "1000".into());
    // 45,000 companies with 2 bad rows (the row limit is 50,000) among the first batch, then 2,000
    // copies of rows of the first batches: the copies come after the
    // checkpoint of the interrupted attempt, their originals before it.
    let generated = entreprises_csv(45_000, 16);
    let rows: Vec<&str> = generated.lines().skip(1).collect();
    let mut csv = String::with_capacity(generated.len() + 2_000 * 160);
    for (i, line) in generated.lines().enumerate() {
        csv.push_str(line);
        csv.push('\n');
        if i == 10 {
            csv.push_str("123,,Siren trop court,,,,,,,,\n");
            csv.push_str(",,Sans siren,,,,,,,,\n");
        }
    }
    for row in &rows[..1_000] {
        csv.push_str(row);
        csv.push('\n');
    }
    for row in &rows[1_000..2_000] {
        csv.push_str(&with_cell(row, 3, "Nouvelle enseigne"));
        csv.push('\n');
    }

    let before = directory(&app).await;
    let resp = app
        .upload(
            "gros.csv",
            csv.clone().into_bytes(),
            "entreprises",
            &[("dry_run", "true")],
        )
        .await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut first = ServiceProcess::start("import-worker", "dry-run-first", &env);
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, job) = app.get_json(&format!("/api/v1/imports/{id}")).await;
        assert!(
            matches!(job["status"].as_str(), Some("pending" | "processing")),
            "the dry run ended before its stop: {job}"
        );
        if job["processed_rows"].as_i64().unwrap_or(0) >= 3_000 {
            break;
        }
        assert!(Instant::now() < deadline, "the dry run made no progress: {job}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        first.terminate(Duration::from_secs(10)).is_some(),
        "the worker did not exit within 10 s of SIGTERM"
    );
    let (_, stopped) = app.get_json(&format!("/api/v1/imports/{id}")).await;
    assert!(
        stopped["processed_rows"].as_i64().unwrap() < 47_002,
        "the dry run was stopped midway: {stopped}"
    );
    assert_eq!(
        directory(&app).await,
        before,
        "the stopped dry run changed the directory"
    );

    let _second = ServiceProcess::start("import-worker", "dry-run-second", &env);
    let dry = app.wait_final(&id, WAIT).await;
    assert!(dry["attempts"].as_i64().unwrap() >= 2, "{dry}");
    assert_eq!(
        directory(&app).await,
        before,
        "the dry run changed the directory: {dry}"
    );

    let real = run(&app, "gros.csv", csv.as_bytes(), "entreprises", false).await;
    for key in COUNTS {
        assert_eq!(
            dry[key], real[key],
            "`{key}` differs\ndry run: {dry}\nreal: {real}"
        );
    }
    assert_eq!(counts(&real), [47_002, 45_000, 1_000, 1_000, 2], "{real}");
    assert_eq!(errors(&app, &dry).await, errors(&app, &real).await);
}

/// Issue 19: a 12,000-row term export whose parents are all at its end, in
/// batches of 5,000. Children used to find their catégorie only when it sat
/// in the same batch or an earlier one (here: the first 10,000 rows ended `unknown_categorie`);
/// the parents now go first wherever they are, in the dry run as in the
/// import.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_term_export_with_its_parents_at_the_end_imports_every_child() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("IMPORT_BATCH_ROWS".into(), "5000".into())],
        ..Default::default()
    })
    .await;
    let mut csv =
        String::from("Term ID,Term Name,Term Slug,Description,Parent ID,Parent Name,Parent Slug,Count\n");
    for i in 0..11_990 {
        let k = i % 10;
        csv.push_str(&format!(
            "{},Sous-catégorie {i:05},,,{},Métier {k},,0\n",
            10_000 + i,
            100 + k
        ));
    }
    for k in 0..10 {
        csv.push_str(&format!("{},Métier {k},,,,,,0\n", 100 + k));
    }
    let real = dry_run_then_real(&app, "termes.csv", csv.as_bytes(), "sous_categories").await;
    assert_eq!(counts(&real), [12_000, 12_000, 0, 0, 0], "{real}");
    let db = app.pg().await;
    let linked: i64 = db
        .query_one(
            "SELECT count(*)::int8 FROM sous_categories s JOIN categories c ON c.id = s.categorie_id
              WHERE c.nom = 'Métier ' || (substring(s.nom from 16)::int % 10)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(linked, 11_990, "every child under its own parent");
}

/// Issue 20: a finished dry run is applied without uploading again; the real
/// import reads the same stored file and counts what the preview counted.
/// Applying twice queues one import; what cannot be applied answers 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_dry_run_is_applied_without_uploading_again() {
    let app = small_batches().await;
    let csv = entreprises_csv(250, 11);
    let before = directory(&app).await;
    let dry = run(&app, "e.csv", csv.as_bytes(), "entreprises", true).await;
    assert_eq!(directory(&app).await, before);
    let dry_id = dry["id"].as_str().unwrap();

    let token = app.admin_token.clone();
    let (status, queued) = app
        .post_json(&format!("/api/v1/imports/{dry_id}/apply"), &token)
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["dry_run"], false, "{queued}");
    let real_id = queued["id"].as_str().unwrap().to_owned();
    assert_ne!(real_id, dry_id);
    let (again, twice) = app
        .post_json(&format!("/api/v1/imports/{dry_id}/apply"), &token)
        .await;
    assert_eq!(
        (again, twice["id"].as_str()),
        (202, Some(real_id.as_str())),
        "a double click queues one import"
    );
    let real = app.wait_final(&real_id, WAIT).await;
    for key in COUNTS {
        assert_eq!(dry[key], real[key], "`{key}`\ndry run: {dry}\nreal: {real}");
    }
    let stored: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, real["created_rows"].as_i64().unwrap());
    let (jobs, files): (i64, i64) = {
        let r = app
            .pg()
            .await
            .query_one("SELECT count(*), count(DISTINCT file_id) FROM import_jobs", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(
        (jobs, files),
        (2, 1),
        "one stored file for the preview and the import"
    );

    // What cannot be applied.
    let (status, body) = app
        .post_json(&format!("/api/v1/imports/{real_id}/apply"), &token)
        .await;
    assert_eq!(status, 409, "not a dry run: {body}");
    app.pg()
        .await
        .execute(
            "UPDATE import_jobs SET file_purged_at = now() WHERE id = $1::text::uuid",
            &[&dry_id],
        )
        .await
        .unwrap();
    app.pg()
        .await
        .execute("UPDATE import_jobs SET idempotency_key = NULL", &[])
        .await
        .unwrap();
    let (status, body) = app
        .post_json(&format!("/api/v1/imports/{dry_id}/apply"), &token)
        .await;
    assert_eq!(status, 409, "purged: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("purgé"),
        "{body}"
    );
    let viewer = app.token("lecteur", "viewer").await;
    let (status, _) = app
        .post_json(&format!("/api/v1/imports/{dry_id}/apply"), &viewer)
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post_json(&format!("/api/v1/imports/{}/apply", uuid::Uuid::new_v4()), &token)
        .await;
    assert_eq!(status, 404);
}
