//! Issue 19: a lossy normalisation is kept as a warning on its row — counted
//! on the job (`warning_rows`), listed by the API beside the errors with its
//! own code, and given its own sheet in the report. The dashboard's side is
//! `dashboard::dashboard_shows_a_lossy_change_as_a_warning`.

use crate::french::{cells, report};
use calamine::Reader;
use foxflow_testkit::TestApp;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

/// Three entreprises: one clean, one whose SIREN Excel wrote as `5.521E8`
/// (imported as 552100000, but the zeros may stand for lost digits: a
/// warning), one with a SIREN that is not one (an error).
pub const LOSSY_CSV: &str = "siren;nom\n732829320;Propre\n5.521E8;Arrondie par Excel\n12345;Fausse\n";

/// Uploads [`LOSSY_CSV`] and waits for its end; returns the job.
pub async fn import_lossy(app: &TestApp) -> Value {
    let id = app
        .submit("avertissements.csv", LOSSY_CSV.as_bytes().to_vec(), "entreprises")
        .await;
    app.wait_final(&id, WAIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_change_is_a_warning_in_the_job_the_api_and_the_report() {
    let app = TestApp::spawn().await;
    let job = import_lossy(&app).await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(job["status"], "partial", "{job}");
    assert_eq!(
        job["created_rows"], 2,
        "the row with a warning is imported: {job}"
    );
    assert_eq!(job["error_rows"], 1, "{job}");
    assert_eq!(job["warning_rows"], 1, "{job}");

    let stored: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM entreprises WHERE siren = '552100000'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);

    let (status, warnings) = app.get_json(&format!("/api/v1/imports/{id}/warnings")).await;
    assert_eq!(status, 200, "{warnings}");
    assert_eq!(warnings["total"], 1, "{warnings}");
    let w = &warnings["items"][0];
    assert_eq!(w["row"], 2, "{w}");
    assert_eq!(w["column"], "siren", "{w}");
    assert_eq!(w["value"], "5.521E8", "{w}");
    assert_eq!(w["code"], "excel_precision", "{w}");
    assert!(!w["message"].as_str().unwrap().is_empty(), "{w}");
    assert_eq!(w["raw"]["nom"], "Arrondie par Excel", "{w}");

    // Errors and warnings are listed apart.
    let (_, errors) = app.get_json(&format!("/api/v1/imports/{id}/errors")).await;
    assert_eq!(errors["total"], 1, "{errors}");
    assert_eq!(errors["items"][0]["row"], 3, "{errors}");
    assert_eq!(errors["items"][0]["code"], "invalid_siren", "{errors}");
    let (_, view) = app.get_json(&format!("/api/v1/imports/{id}")).await;
    let previewed: Vec<&str> = view["errors_preview"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(previewed, ["invalid_siren"], "{view}");

    let mut wb = report(&app, &format!("/api/v1/imports/{id}/report.xlsx")).await;
    let sheet = cells(wb.worksheet_range("Avertissements").unwrap());
    assert_eq!(sheet.len(), 2, "a header and one warning: {sheet:?}");
    assert_eq!(
        &sheet[1][..4],
        ["2", "siren", "5.521E8", "excel_precision"],
        "{sheet:?}"
    );
    assert!(
        sheet[0].contains(&"nom".to_owned()),
        "the original row's columns: {sheet:?}"
    );
    assert!(sheet[1].contains(&"Arrondie par Excel".to_owned()), "{sheet:?}");
    let errors = cells(wb.worksheet_range("Erreurs").unwrap());
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[1][3], "invalid_siren", "{errors:?}");
    let summary = cells(wb.worksheet_range("Résumé").unwrap());
    let line = summary
        .iter()
        .find(|r| r[0] == "Avec avertissement")
        .unwrap_or_else(|| panic!("{summary:?}"));
    assert_eq!(line[1], "1", "{summary:?}");
}
