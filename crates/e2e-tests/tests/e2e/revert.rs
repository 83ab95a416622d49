//! Issue 20: preview then apply, and revert. A dry run lists the changes it
//! would make; an import keeps what it changed, in the transaction of each
//! batch, and a revert job undoes it — except where a later import changed
//! the same field or row since, which it reports and leaves.

use foxflow_testkit::TestApp;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);
const TABLES: [&str; 6] = [
    "villes",
    "categories",
    "sous_categories",
    "naf_sous_categories",
    "entreprises",
    "prolocalisations",
];

/// A checksum of every column of every row of every table an import writes.
async fn checksum(app: &TestApp) -> Vec<(String, String)> {
    let db = app.pg().await;
    let mut out = Vec::new();
    for t in TABLES {
        let row = db
            .query_one(
                &format!("SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {t} t"),
                &[],
            )
            .await
            .unwrap();
        out.push((t.to_owned(), row.get(0)));
    }
    out
}

async fn import(app: &TestApp, name: &str, csv: &str, import_type: &str) -> Value {
    let id = app.submit(name, csv.as_bytes().to_vec(), import_type).await;
    app.wait_final(&id, WAIT).await
}

/// Reverts `id` as the admin and waits for the revert job's end.
pub async fn revert(app: &TestApp, id: &str) -> Value {
    let (status, job) = app
        .post_json(&format!("/api/v1/imports/{id}/revert"), &app.admin_token)
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["reverts_job_id"], id, "{job}");
    app.wait_final(job["id"].as_str().unwrap(), WAIT).await
}

/// A catégorie, a sous-catégorie for NAF 43.22A and a town, so that
/// entreprises get their pages.
async fn directory(app: &TestApp) {
    import(app, "c.csv", "nom\nArtisans du bâtiment\n", "categories").await;
    import(
        app,
        "sc.csv",
        "nom,categorie,naf_codes\nPlombier,Artisans du bâtiment,43.22A\n",
        "sous_categories",
    )
    .await;
    import(app, "v.csv", "nom,code_postal\nBourg-en-Bresse,1000\n", "villes").await;
}

const FILE_A: &str = "siren,nom,telephone,naf_code,code_postal,ville_nom\n\
732829320,Plomberie Martin,01 23 45 67 89,4322A,01000,Bourg-en-Bresse\n\
552100554,Durand et fils,01 11 11 11 11,,,\n\
542065479,Sans changement,,,,\n";

/// The wrong file: shifts the phones, renames one, creates a company with
/// its page, and a new catégorie arrives in between from nowhere else.
const FILE_B: &str = "siren,nom,telephone,naf_code,code_postal,ville_nom\n\
732829320,Plomberie Martin SARL,09 99 99 99 99,4322A,01000,Bourg-en-Bresse\n\
552100554,Durand et fils,09 88 88 88 88,,,\n\
542065479,Sans changement,,,,\n\
443061841,Nouvelle plomberie,,4322A,01000,Bourg-en-Bresse\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_file_reverted_leaves_every_table_as_it_was() {
    let app = TestApp::spawn().await;
    directory(&app).await;
    let a = import(&app, "a.csv", FILE_A, "entreprises").await;
    assert_eq!(a["created_rows"], 3, "{a}");
    let after_a = checksum(&app).await;

    let b = import(&app, "b.csv", FILE_B, "entreprises").await;
    assert_eq!(
        (b["created_rows"].as_i64(), b["updated_rows"].as_i64()),
        (Some(1), Some(2)),
        "{b}"
    );
    let after_b = checksum(&app).await;
    assert_ne!(after_a, after_b);
    // What B did, as the API lists it.
    let (_, changes) = app
        .get_json(&format!(
            "/api/v1/imports/{}/changes?per_page=100",
            b["id"].as_str().unwrap()
        ))
        .await;
    let phone = changes["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["entity"] == "entreprises" && c["key"] == "552100554")
        .unwrap_or_else(|| panic!("{changes}"));
    assert_eq!(phone["action"], "updated", "{phone}");
    assert_eq!(phone["before"]["telephone"], "+33111111111", "{phone}");
    assert_eq!(phone["after"]["telephone"], "+33988888888", "{phone}");

    let reverted = revert(&app, b["id"].as_str().unwrap()).await;
    assert_eq!(reverted["status"], "success", "{reverted}");
    assert_eq!(reverted["updated_rows"], 2, "{reverted}");
    assert_eq!(
        reverted["deleted_rows"], 2,
        "the company and its page: {reverted}"
    );
    assert_eq!(reverted["error_rows"], 0, "{reverted}");
    assert_eq!(
        checksum(&app).await,
        after_a,
        "every column of every table as after A"
    );

    // A revert is a job like any other: it can be reverted, which redoes B.
    let redone = revert(&app, reverted["id"].as_str().unwrap()).await;
    assert_eq!(redone["status"], "success", "{redone}");
    assert_eq!(redone["created_rows"], 2, "{redone}");
    assert_eq!(
        checksum(&app).await,
        after_b,
        "every column of every table as after B"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_keeps_what_a_later_import_changed_and_says_so() {
    let app = TestApp::spawn().await;
    import(&app, "a.csv", FILE_A, "entreprises").await;
    let b = import(&app, "b.csv", FILE_B, "entreprises").await;
    // Later, someone fixes one phone B set, and updates the company B created.
    let c = import(
        &app,
        "c.csv",
        "siren,nom,telephone\n552100554,Durand et fils,04 44 44 44 44\n443061841,Nouvelle plomberie,05 55 55 55 55\n",
        "entreprises",
    )
    .await;
    assert_eq!(c["updated_rows"], 2, "{c}");

    let reverted = revert(&app, b["id"].as_str().unwrap()).await;
    assert_eq!(reverted["status"], "partial", "{reverted}");
    assert_eq!(reverted["error_rows"], 2, "{reverted}");
    let db = app.pg().await;
    let phone = |siren: &'static str| {
        let db = &db;
        async move {
            db.query_opt(
                "SELECT telephone, nom FROM entreprises WHERE siren = $1",
                &[&siren],
            )
            .await
            .unwrap()
            .map(|r| (r.get::<_, Option<String>>(0), r.get::<_, String>(1)))
        }
    };
    // B's phone on 552100554 was overwritten by C: kept.
    assert_eq!(
        phone("552100554").await,
        Some((Some("+33444444444".into()), "Durand et fils".into()))
    );
    // B's other changes went back.
    assert_eq!(
        phone("732829320").await,
        Some((Some("+33123456789".into()), "Plomberie Martin".into()))
    );
    // The company B created was changed by C since: kept.
    assert!(phone("443061841").await.is_some());

    let (_, errors) = app
        .get_json(&format!(
            "/api/v1/imports/{}/errors",
            reverted["id"].as_str().unwrap()
        ))
        .await;
    let lines: Vec<(Value, Value, Value)> = errors["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["code"].clone(), e["column"].clone(), e["value"].clone()))
        .collect();
    assert!(
        lines.contains(&(
            "revert_conflict".into(),
            "telephone".into(),
            "+33444444444".into()
        )),
        "{errors}"
    );
    assert!(
        lines.iter().any(|(code, column, value)| code == "revert_conflict"
            && column.is_null()
            && value == "443061841"),
        "{errors}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_lists_the_changes_and_applying_it_makes_them() {
    let app = TestApp::spawn().await;
    directory(&app).await;
    import(&app, "a.csv", FILE_A, "entreprises").await;
    let resp = app
        .upload(
            "b.csv",
            FILE_B.as_bytes().to_vec(),
            "entreprises",
            &[("dry_run", "true")],
        )
        .await;
    assert_eq!(resp.status(), 202);
    let dry: Value = resp.json().await.unwrap();
    let dry_id = dry["id"].as_str().unwrap().to_owned();
    let dry = app.wait_final(&dry_id, WAIT).await;
    let (_, preview) = app
        .get_json(&format!("/api/v1/imports/{dry_id}/changes?per_page=100"))
        .await;
    let list = |page: &Value| -> Vec<(String, String, String, Value, Value)> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                // Ids and timestamps differ between two runs; the rest must not.
                let strip = |v: &Value| match v {
                    Value::Object(m) => Value::Object(
                        m.iter()
                            .filter(|(k, _)| !["id", "updated_at", "entreprise_id"].contains(&k.as_str()))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                    other => other.clone(),
                };
                let key = if c["entity"] == "prolocalisations" {
                    String::new()
                } else {
                    c["key"].as_str().unwrap_or("").to_owned()
                };
                (
                    c["entity"].as_str().unwrap().to_owned(),
                    key,
                    c["action"].as_str().unwrap().to_owned(),
                    strip(&c["before"]),
                    strip(&c["after"]),
                )
            })
            .collect()
    };
    let previewed = list(&preview);
    assert!(
        previewed.contains(&(
            "entreprises".into(),
            "732829320".into(),
            "updated".into(),
            serde_json::json!({"nom": "Plomberie Martin", "telephone": "+33123456789"}),
            serde_json::json!({"nom": "Plomberie Martin SARL", "telephone": "+33999999999"}),
        )),
        "{preview}"
    );
    assert!(
        previewed
            .iter()
            .any(|(e, k, a, _, _)| e == "entreprises" && k == "443061841" && a == "created"),
        "{preview}"
    );
    assert_eq!(
        preview["total"], 4,
        "2 updates, a company and its page: {preview}"
    );
    // The report lists the preview too, one line per changed field.
    let mut wb = crate::french::report(&app, &format!("/api/v1/imports/{dry_id}/report.xlsx")).await;
    let sheet = crate::french::cells(calamine::Reader::worksheet_range(&mut wb, "Modifications").unwrap());
    assert!(
        sheet.contains(&vec![
            "entreprises".to_owned(),
            "732829320".to_owned(),
            "modifiée".to_owned(),
            "telephone".to_owned(),
            "+33123456789 → +33999999999".to_owned()
        ]),
        "{sheet:?}"
    );
    assert!(
        sheet.iter().any(|r| r[1] == "443061841" && r[2] == "créée"),
        "{sheet:?}"
    );

    let (status, applied) = app
        .post_json(&format!("/api/v1/imports/{dry_id}/apply"), &app.admin_token)
        .await;
    assert_eq!(status, 202, "{applied}");
    let real_id = applied["id"].as_str().unwrap().to_owned();
    let real = app.wait_final(&real_id, WAIT).await;
    for k in ["created_rows", "updated_rows", "unchanged_rows", "error_rows"] {
        assert_eq!(real[k], dry[k], "{k}: {real} vs {dry}");
    }
    let (_, made) = app
        .get_json(&format!("/api/v1/imports/{real_id}/changes?per_page=100"))
        .await;
    assert_eq!(
        list(&made),
        previewed,
        "the import made the changes its preview listed"
    );

    // A dry run changed nothing: there is nothing to revert.
    let (status, body) = app
        .post_json(&format!("/api/v1/imports/{dry_id}/revert"), &app.admin_token)
        .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_is_for_staff_on_their_own_imports_and_admins_on_any() {
    let app = TestApp::spawn().await;
    let a = import(&app, "a.csv", FILE_A, "entreprises").await;
    let id = a["id"].as_str().unwrap();
    let viewer = app.token("lecteur", "viewer").await;
    let staff = app.token("autre", "staff").await;
    let (status, _) = app
        .post_json(&format!("/api/v1/imports/{id}/revert"), &viewer)
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post_json(&format!("/api/v1/imports/{id}/revert"), &staff)
        .await;
    assert_eq!(status, 404, "another user's import is not theirs to see");
    let (status, _) = app
        .post_json(
            "/api/v1/imports/00000000-0000-0000-0000-000000000000/revert",
            &app.admin_token,
        )
        .await;
    assert_eq!(status, 404);
    // Asked twice, one revert.
    let (s1, r1) = app
        .post_json(&format!("/api/v1/imports/{id}/revert"), &app.admin_token)
        .await;
    let (s2, r2) = app
        .post_json(&format!("/api/v1/imports/{id}/revert"), &app.admin_token)
        .await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(r1["id"], r2["id"]);
    let done = app.wait_final(r1["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(done["deleted_rows"], 3, "{done}");
    let left: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}
