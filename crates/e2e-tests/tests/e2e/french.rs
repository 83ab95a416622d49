//! Issue 19, "French first": what an operator reads is French by default and
//! English on request — the API's error rows (`Accept-Language: en`), the
//! XLSX report (`?lang=en`), the API's own errors, and `foxctl`
//! (`FOXCTL_LANG=en`). Codes are the same in both languages.

use calamine::{Data, Reader, Xlsx};
use foxflow_testkit::TestApp;
use foxflow_testkit::chaos::binary;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

/// One clean row, one bad SIREN, one bad e-mail.
const CSV: &str = "siren;nom;email\n732829320;Propre;contact@propre.fr\n12345;SIREN faux;\n552100554;Courriel faux;pas-un-courriel\n";

async fn get(app: &TestApp, path: &str, lang: Option<&str>) -> (u16, Value) {
    let mut req = app.client.get(app.url(path)).bearer_auth(&app.admin_token);
    if let Some(l) = lang {
        req = req.header("Accept-Language", l);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// The workbook at `path` (a report), downloaded as the admin.
pub(crate) async fn report(app: &TestApp, path: &str) -> Xlsx<std::io::Cursor<Vec<u8>>> {
    let resp = app
        .client
        .get(app.url(path))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let bytes = resp.bytes().await.unwrap().to_vec();
    calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap()
}

/// A sheet's cells as text, row by row.
pub(crate) fn cells(range: calamine::Range<Data>) -> Vec<Vec<String>> {
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

fn messages(page: &Value) -> Vec<(String, String)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_french_by_default_and_english_on_request() {
    let app = TestApp::spawn().await;
    let id = app
        .submit("francais.csv", CSV.as_bytes().to_vec(), "entreprises")
        .await;
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["status"], "partial", "{job}");
    assert_eq!(job["error_rows"], 2, "{job}");

    // The error rows: French by default, English with the header, same codes.
    let path = format!("/api/v1/imports/{id}/errors");
    let (status, fr) = get(&app, &path, None).await;
    assert_eq!(status, 200, "{fr}");
    let (_, fr_explicit) = get(&app, &path, Some("fr-FR,fr;q=0.9,en;q=0.8")).await;
    let (_, en) = get(&app, &path, Some("en-GB,en;q=0.9")).await;
    let (fr, fr_explicit, en) = (messages(&fr), messages(&fr_explicit), messages(&en));
    assert_eq!(fr, fr_explicit);
    let codes = |m: &[(String, String)]| m.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>();
    assert_eq!(codes(&fr), ["invalid_siren", "invalid_email"], "{fr:?}");
    assert_eq!(codes(&fr), codes(&en));
    assert_eq!(
        fr[0].1,
        "un SIREN compte exactement 9 chiffres, par exemple 732829320"
    );
    assert_eq!(en[0].1, "a SIREN must be exactly 9 digits, e.g. 732829320");
    assert!(fr[1].1.starts_with("une adresse e-mail s’écrit"), "{fr:?}");
    assert!(en[1].1.starts_with("an e-mail address looks like"), "{en:?}");

    // The job's preview follows the request's language too.
    let (_, view) = get(&app, &format!("/api/v1/imports/{id}"), Some("en")).await;
    assert_eq!(view["errors_preview"][0]["message"], en[0].1, "{view}");

    // The report: French from its sheet names and headers to its messages…
    let mut wb = report(&app, &format!("/api/v1/imports/{id}/report.xlsx")).await;
    let errors = cells(wb.worksheet_range("Erreurs").unwrap());
    assert_eq!(
        &errors[0][..5],
        ["Ligne", "Colonne", "Valeur", "Code", "Message"],
        "{errors:?}"
    );
    assert_eq!(errors[1][3], "invalid_siren", "{errors:?}");
    assert_eq!(errors[1][4], fr[0].1, "{errors:?}");
    assert_eq!(errors[2][4], fr[1].1, "{errors:?}");
    let summary = cells(wb.worksheet_range("Résumé").unwrap());
    assert!(
        summary.iter().any(|r| r[0] == "En erreur" && r[1] == "2"),
        "{summary:?}"
    );
    assert!(
        wb.worksheet_range("Errors").is_err(),
        "no English sheet in the French report"
    );

    // …and English with its setting, `?lang=en`.
    let mut wb = report(&app, &format!("/api/v1/imports/{id}/report.xlsx?lang=en")).await;
    let errors = cells(wb.worksheet_range("Errors").unwrap());
    assert_eq!(
        &errors[0][..5],
        ["Row", "Column", "Value", "Code", "Message"],
        "{errors:?}"
    );
    assert_eq!(errors[1][3], "invalid_siren", "{errors:?}");
    assert_eq!(errors[1][4], en[0].1, "{errors:?}");
    assert_eq!(errors[2][4], en[1].1, "{errors:?}");
    let summary = cells(wb.worksheet_range("Summary").unwrap());
    assert!(
        summary.iter().any(|r| r[0] == "In error" && r[1] == "2"),
        "{summary:?}"
    );
    assert!(wb.worksheet_range("Warnings").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_and_foxctl_are_french_by_default_and_english_on_request() {
    let app = TestApp::spawn().await;

    // An upload with a wrong import_type: 422, French, then English.
    let upload = |lang: Option<&'static str>| {
        let form = reqwest::multipart::Form::new()
            .text("import_type", "clients")
            .part(
                "file",
                reqwest::multipart::Part::bytes(CSV.as_bytes().to_vec()).file_name("x.csv"),
            );
        let mut req = app
            .client
            .post(app.url("/api/v1/imports"))
            .bearer_auth(&app.admin_token)
            .multipart(form);
        if let Some(l) = lang {
            req = req.header("Accept-Language", l);
        }
        req.send()
    };
    let fr = upload(None).await.unwrap();
    assert_eq!(fr.status(), 422);
    assert_eq!(fr.headers()["content-language"], "fr");
    let fr: Value = fr.json().await.unwrap();
    let en = upload(Some("en")).await.unwrap();
    assert_eq!(en.status(), 422);
    assert_eq!(en.headers()["content-language"], "en");
    let en: Value = en.json().await.unwrap();
    assert_eq!(fr["error"]["code"], "invalid_import_type", "{fr}");
    assert_eq!(en["error"]["code"], fr["error"]["code"]);
    assert_eq!(
        fr["error"]["message"],
        "type d’import inconnu `clients` (types acceptés : entreprises, categories, sous_categories ou villes)"
    );
    assert_eq!(
        en["error"]["message"],
        "unknown import type `clients` (expected entreprises, categories, sous_categories or villes)"
    );

    // An error no handler builds (no token): the same rule.
    let (status, body) = {
        let r = app.client.get(app.url("/api/v1/imports")).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 401);
    assert_eq!(
        body["error"]["message"],
        "un jeton d’accès (bearer) valide est requis"
    );
    let body: Value = app
        .client
        .get(app.url("/api/v1/imports"))
        .header("Accept-Language", "en-US")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["message"], "a valid bearer token is required");

    // foxctl: French by default, English with FOXCTL_LANG=en, whatever LANG says.
    let dir = std::env::temp_dir().join(format!("foxctl-fr-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("x.csv");
    std::fs::write(&file, CSV).unwrap();
    let foxctl = |lang: Option<&str>| {
        let mut cmd = tokio::process::Command::new(binary("foxctl"));
        cmd.arg("import")
            .arg(&file)
            .args(["--type", "clients"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FOX_API_URL", app.url(""))
            .env("FOX_TOKEN", &app.admin_token)
            .env("LANG", "en_US.UTF-8")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true);
        if let Some(l) = lang {
            cmd.env("FOXCTL_LANG", l);
        }
        cmd.output()
    };
    let fr = foxctl(None).await.unwrap();
    let fr_err = String::from_utf8_lossy(&fr.stderr);
    assert_eq!(fr.status.code(), Some(1), "{fr_err}");
    assert!(fr_err.contains("HTTP 422 invalid_import_type"), "{fr_err}");
    assert!(fr_err.contains("type d’import inconnu `clients`"), "{fr_err}");
    let en = foxctl(Some("en")).await.unwrap();
    let en_err = String::from_utf8_lossy(&en.stderr);
    assert_eq!(en.status.code(), Some(1), "{en_err}");
    assert!(en_err.contains("HTTP 422 invalid_import_type"), "{en_err}");
    assert!(en_err.contains("unknown import type `clients`"), "{en_err}");

    // A message of foxctl's own (no API involved).
    let missing = dir.join("absent.csv");
    let run = |lang: Option<&str>| {
        let mut cmd = tokio::process::Command::new(binary("foxctl"));
        cmd.arg("import")
            .arg(&missing)
            .args(["--type", "villes"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FOX_API_URL", app.url(""))
            .env("FOX_TOKEN", &app.admin_token);
        if let Some(l) = lang {
            cmd.env("FOXCTL_LANG", l);
        }
        cmd.output()
    };
    let fr = run(None).await.unwrap();
    assert!(String::from_utf8_lossy(&fr.stderr).contains("impossible de lire"));
    let en = run(Some("en")).await.unwrap();
    assert!(String::from_utf8_lossy(&en.stderr).contains("cannot read"));
    let _ = std::fs::remove_dir_all(&dir);
}
