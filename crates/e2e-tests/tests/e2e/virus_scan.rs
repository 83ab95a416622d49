//! Virus scanning of uploads (issue 17, docs/security.md "Virus scanning"): with `CLAMD_ADDR`
//! set, a real clamd (foxflow_testkit::clamd, loaded with a database of our own) judges every
//! upload before anything is stored; without a verdict the upload fails closed, unless
//! `CLAMD_FAIL_OPEN=true`.

use foxflow_testkit::clamd::{self, ClamdServer};
use foxflow_testkit::data::entreprises_csv;
use foxflow_testkit::{TestApp, TestOptions};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn scanned_by(clamd: &ClamdServer, extra: &[(&str, &str)], import_worker: bool) -> TestOptions {
    let mut env = vec![("CLAMD_ADDR".to_owned(), clamd.addr_string())];
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    TestOptions {
        import_worker,
        env,
        ..Default::default()
    }
}

/// Files, chunks and jobs in the app's database: what a refused upload must not add to.
async fn stored(app: &TestApp) -> (i64, i64, i64) {
    let db = app.pg().await;
    let mut counts = [0i64; 3];
    for (n, table) in counts
        .iter_mut()
        .zip(["stored_files", "file_chunks", "import_jobs"])
    {
        *n = db
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
    }
    (counts[0], counts[1], counts[2])
}

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    (status, body["error"].clone())
}

/// `foxflow_virus_scans_total{outcome}` on the API's `/metrics`. The registry is the test
/// process's, shared with the other scanning tests running beside this one: read as a floor.
async fn scans(app: &TestApp, outcome: &str) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("foxflow_virus_scans_total{{outcome=\"{outcome}\"}}");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from /metrics"))
}

fn villes_csv() -> Vec<u8> {
    b"nom,code_postal\nClamecy,58500\nClamart,92140\n".to_vec()
}

/// Uploads to one given API replica (the harness's helpers talk to the first).
async fn upload_to(app: &TestApp, api: SocketAddr, file_name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let form = Form::new()
        .text("import_type", "villes")
        .part("file", Part::bytes(bytes).file_name(file_name.to_owned()));
    app.client
        .post(format!("http://{api}/api/v1/imports"))
        .bearer_auth(&app.admin_token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_files_are_imported_and_infected_ones_leave_nothing_behind() {
    let clamd = ClamdServer::start().await;
    let app = TestApp::spawn_with(scanned_by(&clamd, &[], true)).await;
    let (clean_before, infected_before) = (scans(&app, "clean").await, scans(&app, "infected").await);

    let id = app.submit("villes.csv", villes_csv(), "villes").await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");
    let before = stored(&app).await;

    // The EICAR test file, as every anti-virus knows it.
    let resp = app
        .upload("eicar.csv", clamd::EICAR.as_bytes().to_vec(), "villes", &[])
        .await;
    let (status, error) = error_of(resp).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (422, Some("infected_file")),
        "{error}"
    );
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(clamd::EICAR_SIGNATURE), "{message}");
    assert!(
        error["details"]["signature"]
            .as_str()
            .unwrap()
            .starts_with(clamd::EICAR_SIGNATURE),
        "{error}"
    );

    // Our own signature, in the last row of a 3 MB CSV: past the first storage chunk (1 MiB) and dozens
    // of INSTREAM chunks, so the whole file reached clamd, not its head.
    let mut csv = entreprises_csv(30_000, 17);
    assert!(csv.len() > 3_000_000, "{} bytes", csv.len());
    csv.push_str(&format!(",,{} SAS,,,75001,Paris,56.10A,,,\n", clamd::MARKER));
    let resp = app
        .upload("entreprises.csv", csv.into_bytes(), "entreprises", &[])
        .await;
    let (status, error) = error_of(resp).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (422, Some("infected_file")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(clamd::MARKER_SIGNATURE),
        "{error}"
    );

    assert_eq!(
        stored(&app).await,
        before,
        "an infected upload stores no file, no chunk and no job"
    );
    assert!(scans(&app, "clean").await > clean_before);
    assert!(scans(&app, "infected").await >= infected_before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_clamd_uploads_fail_closed_unless_fail_open_is_set() {
    let mut clamd = ClamdServer::start().await;
    let mut app = TestApp::spawn_with(scanned_by(&clamd, &[], true)).await;
    // A second replica, the same in every way but the policy.
    let fail_open = app.spawn_extra_api(&[("CLAMD_FAIL_OPEN", "true")]).await;
    let resp = app.upload("villes.csv", villes_csv(), "villes", &[]).await;
    assert_eq!(
        resp.status(),
        202,
        "clamd answers: the upload is scanned and accepted"
    );
    let errors_before = scans(&app, "error").await;

    clamd.stop();
    let before = stored(&app).await;
    let resp = app.upload("villes.csv", villes_csv(), "villes", &[]).await;
    let retry_after = resp
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (status, error) = error_of(resp).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (503, Some("scanner_unavailable")),
        "{error}"
    );
    assert!(retry_after.is_some_and(|s| s > 0), "Retry-After: {retry_after:?}");
    assert_eq!(stored(&app).await, before, "nothing stored without a verdict");

    // CLAMD_FAIL_OPEN=true: the same upload goes through unscanned, and is imported.
    let resp = upload_to(&app, fail_open, "villes.csv", villes_csv()).await;
    assert_eq!(
        resp.status(),
        202,
        "fail-open replica: {}",
        resp.text().await.unwrap()
    );
    let job: Value = resp.json().await.unwrap();
    let job = app.wait_final(job["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(job["status"], "success", "{job}");
    assert!(
        scans(&app, "error").await >= errors_before + 2,
        "both refusals are counted"
    );
}

/// clamd refuses a stream longer than its `StreamMaxLength` ("INSTREAM size limit exceeded"):
/// such a file must not pass as clean (docs/operations.md: StreamMaxLength ≥
/// MAX_IMPORT_FILE_BYTES).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_longer_than_clamd_accepts_is_refused_not_passed() {
    let clamd = ClamdServer::start_with(1024 * 1024).await;
    let app = TestApp::spawn_with(scanned_by(&clamd, &[], false)).await;
    let resp = app.upload("villes.csv", villes_csv(), "villes", &[]).await;
    assert_eq!(
        resp.status(),
        202,
        "a file under the limit is scanned and accepted"
    );
    let before = stored(&app).await;

    let csv = entreprises_csv(25_000, 3);
    assert!(csv.len() > 2 * 1024 * 1024, "{} bytes", csv.len());
    let resp = app
        .upload("entreprises.csv", csv.into_bytes(), "entreprises", &[])
        .await;
    let (status, error) = error_of(resp).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (503, Some("scanner_unavailable")),
        "{error}\nclamd's log:\n{}",
        clamd.log()
    );
    assert_eq!(stored(&app).await, before);
}
