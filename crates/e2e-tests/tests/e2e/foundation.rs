use foxflow_testkit::TestApp;
use foxflow_testkit::data::entreprises_csv;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_rows_import_then_reimport_unchanged() {
    let app = TestApp::spawn().await;
    let csv = entreprises_csv(1000, 42).into_bytes();

    let resp = app
        .upload("entreprises.csv", csv.clone(), "entreprises", &[])
        .await;
    assert_eq!(resp.status(), 202);
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: serde_json::Value = resp.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/v1/imports/{id}").as_str())
    );
    assert_eq!(body["status"], "pending");

    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["total_rows"], 1000);
    assert_eq!(job["processed_rows"], 1000);
    assert_eq!(job["created_rows"], 1000);
    assert_eq!(job["updated_rows"], 0);
    assert_eq!(job["unchanged_rows"], 0);
    assert_eq!(job["error_rows"], 0);
    assert_eq!(job["success_rate"], 100.0);

    let db = app.pg().await;
    let n: i64 = db
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1000);
    // Values are stored normalised: the label filled from the NAF table,
    // the phone in E.164, the site with its scheme.
    let row = db
        .query_one(
            "SELECT nom, naf_code, naf_libelle, telephone, site_web FROM entreprises ORDER BY siren LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Entreprise 0 SARL");
    let naf_code: String = row.get(1);
    let naf_libelle: Option<String> = row.get(2);
    let expected: String = db
        .query_one("SELECT libelle FROM naf_codes WHERE code = $1", &[&naf_code])
        .await
        .unwrap()
        .get(0);
    assert_eq!(naf_libelle.as_deref(), Some(expected.as_str()));
    assert!(row.get::<_, String>(3).starts_with("+331"));
    assert_eq!(row.get::<_, String>(4), "https://www.entreprise0.fr");

    let again = app.submit("entreprises.csv", csv, "entreprises").await;
    let job = app.wait_final(&again, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["unchanged_rows"], 1000);
    assert_eq!(job["created_rows"], 0);
    assert_eq!(job["updated_rows"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_without_siren_is_an_error_row_and_the_rest_imports() {
    let app = TestApp::spawn().await;
    let mut csv = entreprises_csv(20, 7);
    csv.push_str(",,Sans Siren SAS,,,75001,Paris,56.10A,,,\n");
    let id = app
        .submit("entreprises.csv", csv.into_bytes(), "entreprises")
        .await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "partial", "{job}");
    assert_eq!(job["total_rows"], 21);
    assert_eq!(job["created_rows"], 20);
    assert_eq!(job["error_rows"], 1);
    let preview = &job["errors_preview"][0];
    assert_eq!(preview["row"], 21);
    assert_eq!(preview["column"], "siren");
    assert_eq!(preview["code"], "required");

    let (status, errors) = app.get_json(&format!("/api/v1/imports/{id}/errors")).await;
    assert_eq!(status, 200);
    assert_eq!(errors["total"], 1);
    assert_eq!(errors["items"][0]["raw"]["nom"], "Sans Siren SAS");
    let n: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_merge_and_never_blank_stored_values() {
    let app = TestApp::spawn().await;
    let first =
        "siren,nom,telephone,code_postal\n732829320,Alpha,01 23 45 67 89,1500\n552100554,Beta,,75001\n";
    let id = app
        .submit("a.csv", first.as_bytes().to_vec(), "entreprises")
        .await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["created_rows"], 2, "{job}");

    // No telephone column at all, an empty postal code, a new name for Beta.
    let second = "siren,nom,code_postal\n732829320,Alpha,\n552100554,Beta Renamed,75001\n";
    let id = app
        .submit("b.csv", second.as_bytes().to_vec(), "entreprises")
        .await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["unchanged_rows"], 1);
    assert_eq!(job["updated_rows"], 1);

    let db = app.pg().await;
    let alpha = db
        .query_one(
            "SELECT telephone, code_postal FROM entreprises WHERE siren = '732829320'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(alpha.get::<_, Option<String>>(0).as_deref(), Some("+33123456789"));
    assert_eq!(alpha.get::<_, Option<String>>(1).as_deref(), Some("01500"));
    let beta: String = db
        .query_one("SELECT nom FROM entreprises WHERE siren = '552100554'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(beta, "Beta Renamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_get_401() {
    let app = TestApp::spawn_with(foxflow_testkit::TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let resp = app.client.get(app.url("/api/v1/imports")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let resp = app
        .client
        .get(app.url("/api/v1/imports"))
        .bearer_auth("fox_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = app.client.post(app.url("/api/v1/imports")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    // Probes need no token.
    assert_eq!(
        app.client.get(app.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        app.client.get(app.url("/readyz")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_and_pages() {
    let app = TestApp::spawn().await;
    let a = app
        .submit("a.csv", entreprises_csv(3, 1).into_bytes(), "entreprises")
        .await;
    app.wait_final(&a, WAIT).await;
    let (status, page) = app
        .get_json("/api/v1/imports?status=success&import_type=entreprises&per_page=10")
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], a.as_str());
    let (status, page) = app.get_json("/api/v1/imports?status=pending").await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 0);
    let (status, body) = app.get_json("/api/v1/imports?status=bogus").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_status");
    let (status, _) = app.get_json("/api/v1/imports/not-a-uuid").await;
    assert_eq!(status, 404);
}
