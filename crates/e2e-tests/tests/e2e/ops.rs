//! Operations (docs/spec.md §9–§11, issue 8): one trace from the upload to the last
//! batch commit, `/metrics` on every service, the retention cleanup, the
//! placeholder-name repair, and the RabbitMQ definitions against a live broker.
//!
//! Over 600 lines on purpose: each section below is one operations scenario with its own
//! fixtures (traces, the strict metrics parser, cleanup, the NAF repair, RabbitMQ definitions),
//! sharing the helpers at the top; split it by section when a sixth one arrives.

use foxflow_storage::maintenance::{self, CleanupReport, Retention};
use foxflow_telemetry::testing::{FinishedSpan, spans_of_trace};
use foxflow_testkit::data::entreprises_csv;
use foxflow_testkit::{TestApp, TestOptions};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Polls `probe` until it returns `Some`; panics with `what` at the deadline.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
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

// ---------------------------------------------------------------- traces

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_one_trace_from_the_request_to_the_last_batch_commit() {
    let app = TestApp::spawn_with(TestOptions {
        env: env(&[("IMPORT_BATCH_ROWS", "100")]),
        ..Default::default()
    })
    .await;
    let id = app
        .submit("e.csv", entreprises_csv(350, 3).into_bytes(), "entreprises")
        .await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");

    // The outbox row written with the job carries the request's context.
    let traceparent: String = app
        .pg()
        .await
        .query_one(
            "SELECT traceparent FROM outbox WHERE payload->>'job_id' = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    let trace_id = traceparent.split('-').nth(1).expect("traceparent").to_owned();
    assert_eq!(trace_id.len(), 32);

    // The job span ends just after the final status is committed.
    let spans = eventually("the import job span", Duration::from_secs(10), || {
        let trace_id = trace_id.clone();
        async move {
            let spans = spans_of_trace(&trace_id);
            spans.iter().any(|s| s.name == "import job").then_some(spans)
        }
    })
    .await;
    let named = |name: &str| -> Vec<&FinishedSpan> { spans.iter().filter(|s| s.name == name).collect() };
    let request = named("POST /api/v1/imports");
    assert_eq!(request.len(), 1, "{spans:#?}");
    let request = request[0];
    assert_eq!(
        request.parent_span_id, "0000000000000000",
        "the request is the root"
    );
    assert_eq!(
        request.attributes.get("http.route").map(String::as_str),
        Some("/api/v1/imports")
    );
    assert_eq!(
        request
            .attributes
            .get("http.response.status_code")
            .map(String::as_str),
        Some("202")
    );
    let job_span = named("import job")[0];
    assert_eq!(job_span.attributes.get("job.id"), Some(&id));
    assert_eq!(
        job_span.attributes.get("job.status").map(String::as_str),
        Some("success")
    );
    // 350 rows in batches of 100: four commits, each a child of the job.
    let commits = named("import batch commit");
    assert_eq!(commits.len(), 4, "{spans:#?}");
    assert!(commits.iter().all(|c| c.parent_span_id == job_span.span_id));
    let rows: i64 = commits
        .iter()
        .map(|c| c.attributes["rows.created"].parse::<i64>().unwrap())
        .sum();
    assert_eq!(rows, 350);

    // Every span's parent is in the trace, and the job's ancestry runs
    // through the consumer and the relay's publish to the request.
    let by_id: HashMap<&str, &FinishedSpan> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    for s in &spans {
        assert!(
            s.parent_span_id == "0000000000000000" || by_id.contains_key(s.parent_span_id.as_str()),
            "{} has a parent outside the trace",
            s.name
        );
    }
    let mut chain = vec![job_span.name.clone()];
    let mut cur = job_span;
    while let Some(parent) = by_id.get(cur.parent_span_id.as_str()) {
        chain.push(parent.name.clone());
        cur = parent;
    }
    let ns = &app.namespace;
    assert_eq!(
        chain,
        vec![
            "import job".to_owned(),
            format!("{ns}.imports process"),
            format!("{ns}.jobs publish"),
            "POST /api/v1/imports".to_owned(),
        ]
    );
}

// ---------------------------------------------------------------- metrics

/// One sample of a scrape.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (0.0.4) strictly: every line is a
/// comment, a `# HELP`/`# TYPE` declared once per family before its samples,
/// or a sample of a declared family whose label values are quoted with the
/// format's escapes and whose value is a float. Every histogram series has
/// its `+Inf` bucket equal to its `_count`.
fn parse_metrics(text: &str) -> Result<Vec<Sample>, String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let err = |what: &str| format!("line {}: {what}: {line}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let (Some(name), Some(kind), None) = (words.next(), words.next(), words.next()) else {
                return Err(err("malformed TYPE"));
            };
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(err("unknown type"));
            }
            if samples
                .iter()
                .any(|s: &Sample| family_of(&s.name, &types) == Some(name.to_owned()))
            {
                return Err(err("TYPE after the family's samples"));
            }
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(err("family declared twice"));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value"))?;
        let name = &line[..name_end];
        let valid_name = name
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()));
        if name.is_empty() || !valid_name {
            return Err(err("bad metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(after) = rest.strip_prefix('{') {
            let mut chars = after.char_indices().peekable();
            loop {
                let start = chars
                    .peek()
                    .map(|(i, _)| *i)
                    .ok_or_else(|| err("unterminated labels"))?;
                if after[start..].starts_with('}') {
                    rest = &after[start + 1..];
                    break;
                }
                let eq = after[start..].find('=').ok_or_else(|| err("label without ="))? + start;
                let key = &after[start..eq];
                if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(err("bad label name"));
                }
                while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(err("unquoted label value"));
                }
                let mut value = String::new();
                loop {
                    match chars.next().ok_or_else(|| err("unterminated label value"))?.1 {
                        '\\' => match chars.next().ok_or_else(|| err("dangling escape"))?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            _ => return Err(err("bad escape")),
                        },
                        '"' => break,
                        c => value.push(c),
                    }
                }
                if labels.insert(key.to_owned(), value).is_some() {
                    return Err(err("label repeated"));
                }
                if chars.peek().map(|(_, c)| *c) == Some(',') {
                    chars.next();
                }
            }
        }
        let mut words = rest.split_whitespace();
        let value = words.next().ok_or_else(|| err("no value"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse::<f64>().map_err(|_| err("bad value"))?,
        };
        if let Some(ts) = words.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp"))?;
        }
        if words.next().is_some() {
            return Err(err("trailing text"));
        }
        if family_of(name, &types).is_none() {
            return Err(err("sample of an undeclared family"));
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    // Histograms: +Inf bucket == _count for every series.
    for s in samples.iter().filter(|s| s.name.ends_with("_count")) {
        let family = &s.name[..s.name.len() - "_count".len()];
        if types.get(family).map(String::as_str) != Some("histogram") {
            continue;
        }
        let inf = samples.iter().find(|b| {
            b.name == format!("{family}_bucket")
                && b.labels.get("le").map(String::as_str) == Some("+Inf")
                && b.labels.iter().filter(|(k, _)| *k != "le").eq(s.labels.iter())
        });
        match inf {
            Some(b) if b.value == s.value => {}
            _ => return Err(format!("{family}{:?}: no +Inf bucket equal to _count", s.labels)),
        }
    }
    Ok(samples)
}

fn family_of(name: &str, types: &HashMap<String, String>) -> Option<String> {
    if types.contains_key(name) {
        return Some(name.to_owned());
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let f = name.strip_suffix(suffix)?;
        matches!(types.get(f).map(String::as_str), Some("histogram" | "summary")).then(|| f.to_owned())
    })
}

fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == metric
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[test]
fn the_metrics_parser_rejects_broken_expositions() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1,2}\\\"\"} 3\n\
                # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n";
    let samples = parse_metrics(good).unwrap();
    assert_eq!(value(&samples, "a_total", &[("x", "1,2}\"")]), Some(3.0));
    for bad in [
        "a_total 1\n",                                           // undeclared
        "# TYPE a counter\na{x=1} 1\n",                          // unquoted
        "# TYPE a counter\na 1\n# TYPE a counter\n",             // declared twice
        "# TYPE a counter\na one\n",                             // not a number
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n", // no +Inf
    ] {
        assert!(parse_metrics(bad).is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_every_service_parse_and_hold_the_spec_families() {
    let app = TestApp::spawn().await;
    let mut csv = entreprises_csv(30, 9);
    csv.push_str(",,Sans Siren SAS,,,75001,Paris,56.10A,,,\n");
    let id = app.submit("m.csv", csv.into_bytes(), "entreprises").await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "partial", "{job}");

    let imports = format!("{}.imports", app.namespace);
    let worker = app.worker_metrics.expect("worker metrics address");
    for url in [app.url("/metrics"), format!("http://{worker}/metrics")] {
        // The depth sampler may not have seen the namespace's queues yet.
        // Queue depth is sampled (every 15 s): wait for a sample taken after
        // the job, with its queue empty and the worker's consumer attached.
        let scrape = eventually(
            &format!("queue depth of {imports} on {url}"),
            Duration::from_secs(40),
            || {
                let (client, url, imports) = (app.client.clone(), url.clone(), imports.clone());
                async move {
                    let resp = client.get(&url).send().await.ok()?;
                    assert_eq!(resp.status(), 200);
                    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
                    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
                    let text = resp.text().await.ok()?;
                    let scrape = parse_metrics(&text).unwrap_or_else(|e| panic!("{url}: {e}"));
                    let q = [("queue", imports.as_str())];
                    let settled = value(&scrape, "foxflow_queue_messages_ready", &q) == Some(0.0)
                        && value(&scrape, "foxflow_queue_consumers", &q).is_some_and(|c| c >= 1.0);
                    settled.then_some(scrape)
                }
            },
        )
        .await;
        let has = |metric: &str, labels: &[(&str, &str)]| value(&scrape, metric, labels);
        // Queue depth: ready and unacked per queue (nothing left in hand).
        assert!(
            has(
                "foxflow_queue_messages_ready",
                &[("queue", &format!("{imports}.dead"))]
            )
            .is_some()
        );
        assert!(
            has(
                "foxflow_queue_messages_ready",
                &[("queue", &format!("{imports}.retry"))]
            )
            .is_some()
        );
        assert_eq!(
            has("foxflow_queue_messages_unacked", &[("queue", &imports)]),
            Some(0.0)
        );
        // Jobs by queue and outcome, job durations, rows by outcome. The
        // registry is one per process, and other tests import too: at least.
        assert!(
            has(
                "foxflow_jobs_total",
                &[("queue", "imports"), ("outcome", "partial")]
            )
            .unwrap()
                >= 1.0
        );
        assert!(
            has(
                "foxflow_messages_total",
                &[("queue", "imports"), ("outcome", "acked")]
            )
            .unwrap()
                >= 1.0
        );
        assert!(has("foxflow_job_duration_seconds_count", &[("queue", "imports")]).unwrap() >= 1.0);
        assert!(has("foxflow_import_rows_total", &[("outcome", "created")]).unwrap() >= 30.0);
        assert!(has("foxflow_import_rows_total", &[("outcome", "error")]).unwrap() >= 1.0);
        // HTTP latency histogram, labelled by route pattern.
        assert!(
            has(
                "foxflow_http_request_duration_seconds_count",
                &[
                    ("method", "POST"),
                    ("route", "/api/v1/imports"),
                    ("status", "202")
                ]
            )
            .unwrap()
                >= 1.0
        );
        assert!(
            has(
                "foxflow_http_request_duration_seconds_bucket",
                &[("route", "/api/v1/imports/{id}"), ("le", "0.025")]
            )
            .is_some()
        );
        // Rate-limiter waits: the ratelimit crate's collectors, registered in
        // the process registry. (AI tokens, `foxflow_ai_tokens_total`, are
        // counted where LLM calls happen: the ai-worker.)
        assert!(
            scrape
                .iter()
                .any(|s| s.name == "foxflow_rate_limiter_waits_total")
        );
        assert!(
            scrape
                .iter()
                .any(|s| s.name == "foxflow_rate_limiter_wait_seconds_total")
        );
    }
}

// ---------------------------------------------------------------- cleanup

const DAY: &str = "86400";

async fn file_of(db: &tokio_postgres::Client, job: &str) -> uuid::Uuid {
    db.query_one(
        "SELECT file_id FROM import_jobs WHERE id = $1::text::uuid",
        &[&job],
    )
    .await
    .unwrap()
    .get(0)
}

/// Moves a job and its file `days` into the past.
async fn age(db: &tokio_postgres::Client, job: &str, days: i32) {
    let file = file_of(db, job).await;
    let ago = format!("{}", i64::from(days) * DAY.parse::<i64>().unwrap());
    db.execute(
        "UPDATE import_jobs SET created_at = now() - make_interval(secs => $2::text::float8) WHERE id = $1::text::uuid",
        &[&job, &ago],
    )
    .await
    .unwrap();
    db.execute(
        "UPDATE stored_files SET created_at = now() - make_interval(secs => $2::text::float8) WHERE id = $1",
        &[&file, &ago],
    )
    .await
    .unwrap();
}

/// A stored file no job references, `minutes` old.
async fn orphan(db: &tokio_postgres::Client, minutes: i32) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    db.execute(
        "INSERT INTO stored_files (id, size_bytes, sha256, created_at)
         VALUES ($1, 4, '\\x00', now() - make_interval(mins => $2))",
        &[&id, &minutes],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO file_chunks (file_id, seq, data) VALUES ($1, 0, '\\x01020304')",
        &[&id],
    )
    .await
    .unwrap();
    id
}

async fn count(db: &tokio_postgres::Client, sql: &str, id: &uuid::Uuid) -> i64 {
    db.query_one(sql, &[id]).await.unwrap().get(0)
}

const RETENTION: Retention = Retention {
    logs: Duration::from_secs(90 * 86400),
    files: Duration::from_secs(30 * 86400),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_what_retention_allows_once_and_keeps_the_rest() {
    let app = TestApp::spawn().await;
    let mut bad = entreprises_csv(5, 1);
    bad.push_str(",,Sans Siren SAS,,,75001,Paris,56.10A,,,\n");
    let old = app.submit("old.csv", bad.into_bytes(), "entreprises").await;
    let stale = app
        .submit("stale.csv", entreprises_csv(5, 2).into_bytes(), "entreprises")
        .await;
    let fresh = app
        .submit("fresh.csv", entreprises_csv(5, 3).into_bytes(), "entreprises")
        .await;
    for id in [&old, &stale, &fresh] {
        app.wait_final(id, WAIT).await;
    }
    let db = app.pg().await;
    let (old_file, stale_file, fresh_file) = (
        file_of(&db, &old).await,
        file_of(&db, &stale).await,
        file_of(&db, &fresh).await,
    );
    age(&db, &old, 100).await; // past both retentions: the job goes
    age(&db, &stale, 40).await; // past the file retention only: the content goes
    let abandoned = orphan(&db, 120).await; // an upload that never became a job
    let uploading = orphan(&db, 10).await; // may still become one

    let pool = foxflow_storage::build_pool(&app.database_url, 2, "test").unwrap();
    let expected = CleanupReport {
        ran: true,
        dry_run: false,
        jobs_deleted: 1,
        errors_deleted: 1,
        files_purged: 1,
        bytes_purged: i64::try_from(entreprises_csv(5, 2).len()).unwrap(),
        // The deleted job's file and the abandoned upload.
        orphan_files_deleted: 2,
        orphan_bytes_deleted: 0, // checked below
        webhook_deliveries_deleted: 0,
        // Sent just now: kept for the hour after sending.
        outbox_rows_deleted: 0,
    };

    // A dry run counts and changes nothing.
    let mut conn = foxflow_storage::pool::conn(&pool).await.unwrap();
    let dry = maintenance::cleanup(&mut conn, RETENTION, true).await.unwrap();
    assert_eq!(
        CleanupReport {
            orphan_bytes_deleted: 0,
            ..dry.clone()
        },
        CleanupReport {
            dry_run: true,
            ..expected.clone()
        }
    );

    // While another cleanup holds the lock, this one does nothing.
    let mut holder = app.pg().await;
    let tx = holder.transaction().await.unwrap();
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&maintenance::CLEANUP_LOCK])
        .await
        .unwrap();
    let skipped = maintenance::cleanup(&mut conn, RETENTION, false).await.unwrap();
    assert!(!skipped.ran);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM import_jobs WHERE file_id = $1",
            &old_file
        )
        .await,
        1
    );
    tx.rollback().await.unwrap();

    // Two at once (two replicas woken by the same schedule): the work is
    // done exactly once between them.
    let mut other = foxflow_storage::pool::conn(&pool).await.unwrap();
    let (a, b) = tokio::join!(
        maintenance::cleanup(&mut conn, RETENTION, false),
        maintenance::cleanup(&mut other, RETENTION, false)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let nothing = |r: &CleanupReport| {
        r.jobs_deleted == 0 && r.errors_deleted == 0 && r.files_purged == 0 && r.orphan_files_deleted == 0
    };
    let did = match (nothing(&a), nothing(&b)) {
        (false, true) => a,
        (true, false) => b,
        _ => panic!("the work was not done exactly once: {a:?} {b:?}"),
    };
    assert_eq!(
        CleanupReport {
            orphan_bytes_deleted: 0,
            ..did.clone()
        },
        expected
    );
    assert_eq!(did.orphan_bytes_deleted, dry.orphan_bytes_deleted);
    assert!(did.orphan_bytes_deleted >= 4);

    // The old job, its errors, its undo data and its file are gone; the
    // others keep their undo data (the stale file updated the 5 entreprises
    // the old one had created: 5 lines).
    let old_id = uuid::Uuid::parse_str(&old).unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM import_changes WHERE job_id = $1",
            &old_id
        )
        .await,
        0
    );
    let stale_id = uuid::Uuid::parse_str(&stale).unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM import_changes WHERE job_id = $1",
            &stale_id
        )
        .await,
        5
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM import_jobs WHERE id = $1", &old_id).await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM import_errors WHERE job_id = $1",
            &old_id
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM stored_files WHERE id = $1", &old_file).await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM file_chunks WHERE file_id = $1",
            &old_file
        )
        .await,
        0
    );
    // The stale job stays, with a note that its file was purged.
    let (status, job) = app.get_json(&format!("/api/v1/imports/{stale}")).await;
    assert_eq!(status, 200);
    assert_eq!(job["status"], "success");
    let stale_id = uuid::Uuid::parse_str(&stale).unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM import_jobs WHERE id = $1 AND file_purged_at IS NOT NULL",
            &stale_id
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM stored_files WHERE id = $1 AND purged_at IS NOT NULL",
            &stale_file
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM file_chunks WHERE file_id = $1",
            &stale_file
        )
        .await,
        0
    );
    // Newer things are intact.
    assert!(
        count(
            &db,
            "SELECT count(*) FROM file_chunks WHERE file_id = $1",
            &fresh_file
        )
        .await
            >= 1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM stored_files WHERE id = $1 AND purged_at IS NULL",
            &fresh_file
        )
        .await,
        1
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM stored_files WHERE id = $1", &abandoned).await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM file_chunks WHERE file_id = $1",
            &uploading
        )
        .await,
        1
    );
    // The imported rows themselves are never touched by cleanup (the three
    // files hold the same five companies).
    let n: i64 = db
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 5);

    // Nothing left to do.
    let again = maintenance::cleanup(&mut conn, RETENTION, false).await.unwrap();
    assert!(again.ran && nothing(&again), "{again:?}");
}

// ------------------------------------------------- fix-sous-categorie-names

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_sous_categorie_names_renames_the_732_placeholders() {
    let app = TestApp::spawn_with(TestOptions {
        api: false,
        import_worker: false,
        env: Vec::new(),
        ..Default::default()
    })
    .await;
    let db = app.pg().await;
    db.batch_execute(
        r"
        INSERT INTO categories (nom, slug) VALUES ('Activités', 'activites'), ('Autres', 'autres');
        -- One placeholder per NAF code, mapped to it, some written loosely.
        INSERT INTO sous_categories (categorie_id, nom, slug)
        SELECT c.id,
               CASE WHEN n.code LIKE '43.%' THEN 'Activite ' || replace(n.code, '.', '') ELSE 'Activité ' || n.code END,
               'activite-' || lower(replace(n.code, '.', '-'))
        FROM naf_codes n, categories c WHERE c.slug = 'activites';
        INSERT INTO naf_sous_categories (naf_code, sous_categorie_id)
        SELECT n.code, s.id FROM naf_codes n
        JOIN sous_categories s ON s.slug = 'activite-' || lower(replace(n.code, '.', '-'));
        -- A real name equal to a label, a slug in the way, and a
        -- sous-catégorie that only looks like a placeholder.
        INSERT INTO sous_categories (categorie_id, nom, slug)
        SELECT id, 'Coiffure', 'autre-chose' FROM categories WHERE slug = 'activites';
        INSERT INTO sous_categories (categorie_id, nom, slug)
        SELECT id, 'Restauration traditionnelle', 'restauration-traditionnelle' FROM categories WHERE slug = 'autres';
        INSERT INTO sous_categories (categorie_id, nom, slug)
        SELECT id, 'Activité physique', 'activite-physique' FROM categories WHERE slug = 'autres';
        ",
    )
    .await
    .unwrap();
    let pool = foxflow_storage::build_pool(&app.database_url, 1, "test").unwrap();
    let mut conn = foxflow_storage::pool::conn(&pool).await.unwrap();

    let dry = maintenance::fix_sous_categorie_names(&mut conn, true)
        .await
        .unwrap();
    assert_eq!(dry.len(), 732);
    let placeholders: i64 = db
        .query_one(
            "SELECT count(*) FROM sous_categories WHERE nom ILIKE 'activit%' AND nom <> 'Activité physique'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(placeholders, 732, "a dry run writes nothing");

    let started = Instant::now();
    let fixes = maintenance::fix_sous_categorie_names(&mut conn, false)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(fixes, dry, "the dry run shows exactly what the run does");
    eprintln!("fix-sous-categorie-names: {} rows in {took:?}", fixes.len());

    let row = db
        .query_one(
            "SELECT s.nom::text, s.slug::text, s.description FROM sous_categories s
             JOIN naf_sous_categories m ON m.sous_categorie_id = s.id WHERE m.naf_code = '43.22A'",
            &[],
        )
        .await
        .unwrap();
    let label: String = db
        .query_one("SELECT libelle FROM naf_codes WHERE code = '43.22A'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(row.get::<_, String>(0), label);
    assert_eq!(
        row.get::<_, String>(1),
        "travaux-dinstallation-deau-et-de-gaz-en-tous-locaux"
    );
    assert_eq!(
        row.get::<_, Option<String>>(2),
        Some(format!("NAF 43.22A : {label}"))
    );
    // The label already taken in the category gets the code; the slug taken
    // elsewhere is not reused.
    let coiffure = fixes.iter().find(|f| f.code == "96.02A").unwrap();
    assert_eq!(coiffure.nom, "Coiffure (96.02A)");
    assert_eq!(coiffure.slug, "coiffure-96-02a");
    let resto = fixes.iter().find(|f| f.code == "56.10A").unwrap();
    assert_eq!(resto.nom, "Restauration traditionnelle");
    assert_eq!(resto.slug, "restauration-traditionnelle-56-10a");
    // Every name fits its column, every slug is unique, nothing else moved.
    let (longest, distinct, total): (i32, i64, i64) = {
        let r = db
            .query_one(
                "SELECT max(char_length(nom)), count(DISTINCT slug), count(*) FROM sous_categories",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert!(longest <= 100);
    assert_eq!(distinct, total);
    let untouched: String = db
        .query_one(
            "SELECT slug::text FROM sous_categories WHERE nom = 'Activité physique'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(untouched, "activite-physique");
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM sous_categories WHERE nom ~* '^activit[eé] [0-9]'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    // Idempotent.
    assert!(
        maintenance::fix_sous_categorie_names(&mut conn, false)
            .await
            .unwrap()
            .is_empty()
    );
}

// --------------------------------------------------- RabbitMQ definitions

/// `deploy/rabbitmq/definitions.json`, every `fox.` name moved to `ns`.
fn definitions_for(ns: &str) -> serde_json::Value {
    fn rewrite(v: &mut serde_json::Value, ns: &str) {
        match v {
            serde_json::Value::String(s) => {
                if let Some(rest) = s.strip_prefix("fox.") {
                    *s = format!("{ns}.{rest}");
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, ns)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| rewrite(x, ns)),
            _ => {}
        }
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/rabbitmq/definitions.json"
    );
    let mut defs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("definitions.json")).unwrap();
    rewrite(&mut defs, ns);
    defs
}

/// `rabbitmqctl import_definitions`, which needs no management plugin.
/// `FOX_TEST_RABBITMQCTL` names another command (e.g. `docker exec rabbitmq
/// rabbitmqctl`, with the file reachable at the same path).
fn import_definitions(file: &std::path::Path) {
    let cmd = std::env::var("FOX_TEST_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".to_owned());
    let mut words = cmd.split_whitespace();
    let program = words.next().expect("a command");
    let out = std::process::Command::new(program)
        .args(words)
        .arg("import_definitions")
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{cmd}` ({e}); set FOX_TEST_RABBITMQCTL to reach the broker's CLI")
        });
    assert!(
        out.status.success(),
        "`{cmd} import_definitions` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rabbitmq_definitions_load_and_the_services_accept_them() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;

    let ns = format!("tdef{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let defs = definitions_for(&ns);
    let file = std::env::temp_dir().join(format!("{ns}-definitions.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(&defs).unwrap()).unwrap();
    // The app owns the namespace from here: dropping it deletes the queues
    // and exchanges, whatever happens below. It starts no service yet.
    let holder = TestApp::spawn_with(TestOptions {
        api: false,
        import_worker: false,
        env: env(&[("FOX_NAMESPACE", &ns)]),
        ..Default::default()
    })
    .await;
    import_definitions(&file);
    let _ = std::fs::remove_file(&file);

    // The broker now has the whole topology: passive declares succeed.
    let amqp = holder.env()["AMQP_URL"].clone();
    let conn = foxflow_messaging::connect(&amqp, "test-definitions")
        .await
        .unwrap();
    let topology = foxflow_messaging::Topology::new(&ns, Duration::from_secs(5), Duration::from_secs(60));
    for q in topology.all_queues() {
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{q} was not created by the definitions: {e}"));
    }
    // The services' own declarations (default retry delays) are identical…
    let ch = conn.create_channel().await.unwrap();
    topology
        .declare(&ch)
        .await
        .expect("same arguments as the definitions");
    // …and a different one would have been refused: the check has teeth.
    let ch = conn.create_channel().await.unwrap();
    let other = foxflow_messaging::Topology::new(&ns, Duration::from_secs(7), Duration::from_secs(60));
    let err = other.declare(&ch).await.expect_err("a different TTL is refused");
    assert!(err.to_string().contains("PRECONDITION_FAILED"), "{err}");
    let _ = conn.close(200, "bye".into()).await;

    // The services start against the loaded broker, become ready, and an
    // upload goes all the way through.
    let app = TestApp::spawn_with(TestOptions {
        env: env(&[
            ("FOX_NAMESPACE", &ns),
            ("IMPORT_RETRY_DELAY", "5s"),
            ("AI_RETRY_DELAY", "60s"),
        ]),
        ..Default::default()
    })
    .await;
    let readyz = format!("http://{}/readyz", app.worker_metrics.unwrap());
    eventually("a ready import worker", Duration::from_secs(20), || {
        let (client, url) = (app.client.clone(), readyz.clone());
        async move { (client.get(&url).send().await.ok()?.status() == 200).then_some(()) }
    })
    .await;
    let id = app
        .submit("d.csv", entreprises_csv(10, 5).into_bytes(), "entreprises")
        .await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");
    drop(app);
    drop(holder);
}
