//! Upload hardening (docs/spec.md §12): the content and the extension must agree,
//! the size limit holds while streaming, malformed forms get clear errors.

use foxflow_testkit::{TestApp, TestOptions};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::path::PathBuf;

fn repo_file(rel: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)).unwrap()
}

async fn error_of(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_malformed_uploads_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        env: vec![("MAX_IMPORT_FILE_BYTES".into(), "100000".into())],
        ..Default::default()
    })
    .await;
    let xls = repo_file("crates/sheets/tests/fixtures/entreprises_xlwt.xls");
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        (
            "renamed.csv",
            xls.clone(),
            "entreprises",
            415,
            "unsupported_media_type",
        ),
        (
            "text.xlsx",
            b"siren,nom\n".to_vec(),
            "entreprises",
            415,
            "unsupported_media_type",
        ),
        (
            "program.exe",
            b"MZ\x90\x00".to_vec(),
            "entreprises",
            415,
            "unsupported_media_type",
        ),
        (
            "nul.csv",
            b"siren,nom\n\x00\x00\x00".to_vec(),
            "entreprises",
            415,
            "unsupported_media_type",
        ),
        (
            "big.csv",
            vec![b'a'; 200_000],
            "entreprises",
            413,
            "payload_too_large",
        ),
        (
            "ok.csv",
            b"siren,nom\n".to_vec(),
            "companies",
            422,
            "invalid_import_type",
        ),
    ];
    for (name, bytes, kind, status, code) in cases {
        let resp = app.upload(name, bytes, kind, &[]).await;
        assert_eq!(error_of(resp).await, (status, code.to_owned()), "{name}");
    }
    // No file at all, and two files.
    let form = Form::new().text("import_type", "entreprises");
    let resp = app
        .client
        .post(app.url("/api/v1/imports"))
        .bearer_auth(&app.admin_token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (400, "missing_file".to_owned()));
    let form = Form::new()
        .text("import_type", "entreprises")
        .part("file", Part::bytes(b"siren\n".to_vec()).file_name("a.csv"))
        .part("file", Part::bytes(b"siren\n".to_vec()).file_name("b.csv"));
    let resp = app
        .client
        .post(app.url("/api/v1/imports"))
        .bearer_auth(&app.admin_token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (400, "several_files".to_owned()));
    // Not multipart at all.
    let resp = app
        .client
        .post(app.url("/api/v1/imports"))
        .bearer_auth(&app.admin_token)
        .body("siren,nom")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await.0, 415);

    let db = app.pg().await;
    let files: i64 = db
        .query_one("SELECT count(*) FROM stored_files", &[])
        .await
        .unwrap()
        .get(0);
    let jobs: i64 = db
        .query_one("SELECT count(*) FROM import_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((files, jobs), (0, 0), "a refused upload leaves nothing behind");

    // A path in the file name is never used as one.
    let resp = app
        .upload(
            "../../etc/villes.csv",
            b"nom,code_postal\n".to_vec(),
            "villes",
            &[],
        )
        .await;
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.unwrap();
    assert_eq!(job["file_name"], "villes.csv");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_see_only_their_own_imports_and_viewers_cannot_upload() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let alice = app.token("alice", "staff").await;
    let bob = app.token("bob", "staff").await;
    let viewer = app.token("vera", "viewer").await;
    let resp = app
        .upload_as(&alice, "a.csv", b"siren,nom\n".to_vec(), "entreprises", &[])
        .await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let get = |token: String| {
        let url = app.url(&format!("/api/v1/imports/{id}"));
        let client = app.client.clone();
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get(alice.clone()).await, 200);
    assert_eq!(
        get(bob.clone()).await,
        404,
        "another user's job is not found, not forbidden"
    );
    assert_eq!(get(viewer.clone()).await, 200);
    let resp = app
        .upload_as(&viewer, "v.csv", b"siren,nom\n".to_vec(), "entreprises", &[])
        .await;
    assert_eq!(error_of(resp).await, (403, "forbidden".to_owned()));
    let list: Value = app
        .client
        .get(app.url("/api/v1/imports"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 0);
}

/// Issue 17: `/readyz` does not compete with uploads for connections. With a
/// pool of one, an upload waiting on a lock holds the only connection; the
/// probe still answers at once, and ready (it used to queue behind the
/// upload for the pool's 5 s and answer 503, taking a busy API out of
/// rotation). The upload completes once the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_answers_while_uploads_hold_every_connection() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        env: vec![("DB_POOL_SIZE".into(), "1".into())],
        ..Default::default()
    })
    .await;
    let db = app.pg().await;
    db.batch_execute("BEGIN; LOCK TABLE stored_files IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let upload = {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/imports"),
            app.admin_token.clone(),
        );
        tokio::spawn(async move {
            let form = Form::new().text("import_type", "villes").part(
                "file",
                Part::bytes(b"nom,code_postal\nLyon,69001\n".to_vec()).file_name("v.csv"),
            );
            client
                .post(url)
                .bearer_auth(token)
                .multipart(form)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // Wait until the upload is blocked on the lock, holding the connection.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let waiting: i64 = db
            .query_one(
                "SELECT count(*)::int8 FROM pg_locks WHERE relation = 'stored_files'::regclass AND NOT granted",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never reached the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let status = app.client.get(app.url("/readyz")).send().await.unwrap().status();
        assert_eq!(status, 200, "a busy API is still ready");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "the probe waited {:?}",
            started.elapsed()
        );
    }
    db.batch_execute("COMMIT").await.unwrap();
    assert_eq!(upload.await.unwrap(), 202);
}
