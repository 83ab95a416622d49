//! Issue 3: every format, type and rule, with real files and files written
//! by other programs (openpyxl, xlwt), checking stored values, not only counts.

use foxflow_testkit::{TestApp, TestOptions};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

fn repo_file(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn assert_accounted(job: &Value) {
    let sum = ["created_rows", "updated_rows", "unchanged_rows", "error_rows"]
        .iter()
        .map(|k| job[k].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(
        sum,
        job["total_rows"].as_i64().unwrap(),
        "counts must add up: {job}"
    );
    assert_eq!(job["processed_rows"], job["total_rows"], "{job}");
}

async fn import(app: &TestApp, name: &str, bytes: Vec<u8>, kind: &str) -> Value {
    let id = app.submit(name, bytes, kind).await;
    let job = app.wait_final(&id, WAIT).await;
    assert_accounted(&job);
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_town_list_imports_with_leading_zeros_restored() {
    let app = TestApp::spawn().await;
    let job = import(
        &app,
        "villes_france.csv",
        repo_file("docs/samples/villes_france.csv"),
        "villes",
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["total_rows"], 39_192);
    assert_eq!(job["error_rows"], 0);
    let db = app.pg().await;
    let stored: i64 = db
        .query_one("SELECT count(*) FROM villes", &[])
        .await
        .unwrap()
        .get(0);
    // Duplicate (name, code) pairs are the same town: later copies are unchanged.
    assert_eq!(job["created_rows"].as_i64().unwrap(), stored);
    assert_eq!(job["unchanged_rows"].as_i64().unwrap(), 39_192 - stored);
    let row = db
        .query_one(
            "SELECT code_postal_principal, departement, slug FROM villes WHERE nom = 'Amberieu En Bugey'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "01500");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("01"));
    assert_eq!(row.get::<_, String>(2), "amberieu-en-bugey-01500");
    let overseas: i64 = db
        .query_one(
            "SELECT count(*) FROM villes WHERE code_postal_principal >= '97000'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(overseas > 0);
    let slugs_unique: bool = db
        .query_one("SELECT count(DISTINCT slug) = count(*) FROM villes", &[])
        .await
        .unwrap()
        .get(0);
    assert!(slugs_unique);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wordpress_export_creates_categories_then_their_children() {
    let app = TestApp::spawn().await;
    let wp = repo_file("docs/samples/categories_wordpress.csv");
    let job = import(&app, "wp.csv", wp.clone(), "categories").await;
    assert_eq!(job["status"], "partial", "{job}");
    assert_eq!(job["total_rows"], 2_236);
    // Names over 100 characters are error rows with a reason, never truncated.
    assert_eq!(job["error_rows"], 29);
    let preview = &job["errors_preview"][0];
    assert_eq!(preview["code"], "too_long");
    assert!(preview["message"].as_str().unwrap().contains("100"), "{preview}");

    let db = app.pg().await;
    let amp: i64 = db
        .query_one("SELECT count(*) FROM categories WHERE nom LIKE '%&amp;%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(amp, 0, "HTML entities are decoded");
    let with_amp: i64 = db
        .query_one("SELECT count(*) FROM categories WHERE nom LIKE '%&%'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(with_amp > 0);
    let nbsp: i64 = db
        .query_one(
            "SELECT count(*) FROM categories WHERE nom ~ '[\u{a0}\u{202f}\u{200b}]'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nbsp, 0, "NBSP and zero-width characters are cleaned");
    let artisanat: String = db
        .query_one("SELECT slug FROM categories WHERE nom = 'Artisanat d’art'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(artisanat, "artisanat-dart");
    // Names differing only in case are two rows; their slugs get a suffix.
    let lyon: Vec<String> = db
        .query(
            "SELECT slug FROM categories WHERE lower(nom) = 'lyon' ORDER BY slug",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(lyon.len() >= 2, "{lyon:?}");
    assert!(lyon.iter().all(|s| s.starts_with("lyon")), "{lyon:?}");

    let job = import(&app, "wp.csv", wp, "sous_categories").await;
    assert_eq!(job["total_rows"], 2_236);
    let children: i64 = db
        .query_one("SELECT count(*) FROM sous_categories", &[])
        .await
        .unwrap()
        .get(0);
    assert!(children > 250, "children created under their parents: {children}");
    let haguenau: String = db
        .query_one(
            "SELECT c.nom FROM sous_categories s JOIN categories c ON c.id = s.categorie_id WHERE s.nom = 'Haguenau'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(haguenau, "Crépissage et façade");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_term_export_imports_on_an_empty_database_as_sous_categories() {
    let app = TestApp::spawn().await;
    let job = import(
        &app,
        "wp.csv",
        repo_file("docs/samples/categories_wordpress.csv"),
        "sous_categories",
    )
    .await;
    assert_eq!(job["status"], "partial", "{job}");
    let db = app.pg().await;
    let orphans: i64 = db
        .query_one(
            "SELECT count(*) FROM import_errors WHERE code = 'unknown_categorie'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0, "parents in the same file are created first");
    let children: i64 = db
        .query_one("SELECT count(*) FROM sous_categories", &[])
        .await
        .unwrap()
        .get(0);
    assert!(children > 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spreadsheets_written_by_openpyxl_and_xlwt_keep_every_siret_digit() {
    let app = TestApp::spawn().await;
    for (name, path) in [
        (
            "entreprises.xlsx",
            "crates/sheets/tests/fixtures/entreprises_openpyxl.xlsx",
        ),
        (
            "entreprises.xls",
            "crates/sheets/tests/fixtures/entreprises_xlwt.xls",
        ),
    ] {
        let job = import(&app, name, repo_file(path), "entreprises").await;
        assert_eq!(job["status"], "success", "{name}: {job}");
        assert_eq!(job["total_rows"], 3, "{name}: {job}");
        let unknown: Vec<&str> = job["unknown_columns"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            unknown.contains(&"date_creation") && unknown.contains(&"ratio"),
            "{unknown:?}"
        );
    }
    let db = app.pg().await;
    let siret: String = db
        .query_one("SELECT siret FROM entreprises WHERE siren = '732829320'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(siret, "73282932000074");
    let la_poste = db
        .query_one(
            "SELECT siret, is_active, code_postal FROM entreprises WHERE siren = '356000000'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(la_poste.get::<_, String>(0), "35600000000048");
    assert!(!la_poste.get::<_, bool>(1));
    assert_eq!(la_poste.get::<_, String>(2), "75001");
    let nom: String = db
        .query_one("SELECT nom FROM entreprises WHERE siren = '732829320'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(nom, "Boulangerie & Fils");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_1252_semicolons_and_french_headers() {
    let app = TestApp::spawn().await;
    let text = "N° SIREN;Raison sociale;Code postal;Ville;Code APE;Téléphone;E-mail\r\n\
                732829320;Société Générale d'Électricité;1500;Ambérieu-en-Bugey;4322a;01 23 45 67 89;Contact@Exemple.FR\r\n\
                552100554;\"Café \"\"Le Zinc\"\"\";75001;Paris;56 10A;0612345678;\r\n";
    let (bytes, _, _) = encoding_rs_encode(text);
    let job = import(&app, "export.csv", bytes, "entreprises").await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["created_rows"], 2);
    let db = app.pg().await;
    let r = db
        .query_one("SELECT nom, code_postal, naf_code, naf_libelle, telephone, email_contact FROM entreprises WHERE siren = '732829320'", &[])
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "Société Générale d'Électricité");
    assert_eq!(r.get::<_, String>(1), "01500");
    assert_eq!(r.get::<_, String>(2), "43.22A");
    assert!(r.get::<_, Option<String>>(3).is_some());
    assert_eq!(r.get::<_, String>(4), "+33123456789");
    assert_eq!(r.get::<_, String>(5), "contact@exemple.fr");
    let zinc: String = db
        .query_one("SELECT nom FROM entreprises WHERE siren = '552100554'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(zinc, "Café \"Le Zinc\"");
}

/// Windows-1252 bytes of `text` (all its characters exist in that code page).
fn encoding_rs_encode(text: &str) -> (Vec<u8>, (), ()) {
    let bytes = text
        .chars()
        .map(|c| match c {
            'é' => 0xE9,
            'É' => 0xC9,
            '°' => 0xB0,
            c if c.is_ascii() => c as u8,
            other => panic!("not in the test's table: {other}"),
        })
        .collect();
    (bytes, (), ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_values_are_error_rows_that_say_why() {
    let app = TestApp::spawn().await;
    let csv = "siren,siret,nom,naf_code,code_postal,email_contact\n\
               732829321,,Bad checksum,,,\n\
               732829320,55210055400013,Wrong siret,,,\n\
               552100554,,Unknown naf,99.99Z,,\n\
               356000000,,Bad postal,,123456,\n\
               542065479,,Bad mail,,,not-an-email\n\
               572015246,,Fine,,,\n";
    let job = import(&app, "bad.csv", csv.as_bytes().to_vec(), "entreprises").await;
    assert_eq!(job["status"], "partial", "{job}");
    assert_eq!(job["error_rows"], 5);
    assert_eq!(job["created_rows"], 1);
    let (_, errors) = app
        .get_json(&format!(
            "/api/v1/imports/{}/errors?per_page=50",
            job["id"].as_str().unwrap()
        ))
        .await;
    let codes: Vec<(i64, String)> = errors["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_i64().unwrap(), e["code"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (1, "siren_checksum".to_owned()),
            (2, "siret_siren_mismatch".to_owned()),
            (3, "unknown_naf".to_owned()),
            (4, "invalid_postal_code".to_owned()),
            (5, "invalid_email".to_owned()),
        ]
    );
    for e in errors["items"].as_array().unwrap() {
        assert!(
            e["message"].as_str().unwrap().len() > 15,
            "a readable message: {e}"
        );
        assert!(e["raw"]["nom"].is_string(), "the original row is kept: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_level_failures_and_empty_files() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("MAX_IMPORT_ROWS".into(), "5".into())],
        ..Default::default()
    })
    .await;
    let missing = import(&app, "m.csv", b"nom,ville\nAcme,Paris\n".to_vec(), "entreprises").await;
    assert_eq!(missing["status"], "error");
    assert!(
        missing["last_error"].as_str().unwrap().contains("siren"),
        "{missing}"
    );
    assert_eq!(missing["errors_preview"][0]["row"], 0);

    let empty = import(&app, "e.csv", Vec::new(), "entreprises").await;
    assert_eq!(empty["status"], "success");
    assert_eq!(empty["total_rows"], 0);
    let header_only = import(&app, "h.csv", b"siren,nom\n".to_vec(), "entreprises").await;
    assert_eq!(header_only["status"], "success");
    assert_eq!(header_only["total_rows"], 0);

    let six = foxflow_testkit::data::entreprises_csv(6, 3).into_bytes();
    let too_many = import(&app, "big.csv", six, "entreprises").await;
    assert_eq!(too_many["status"], "error", "{too_many}");
    assert!(
        too_many["last_error"].as_str().unwrap().contains('5'),
        "{too_many}"
    );
    let n: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing is imported from a file over the row limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_counts_everything_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let mut csv = foxflow_testkit::data::entreprises_csv(30, 5);
    csv.push_str("123,,Bad,,,,,,,,\n");
    let resp = app
        .upload("d.csv", csv.into_bytes(), "entreprises", &[("dry_run", "true")])
        .await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = app.wait_final(&id, WAIT).await;
    assert_eq!(job["dry_run"], true);
    assert_eq!(job["created_rows"], 30, "{job}");
    assert_eq!(job["error_rows"], 1);
    let n: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companies_get_their_pages_when_activity_and_town_resolve() {
    let app = TestApp::spawn().await;
    import(
        &app,
        "c.csv",
        b"nom\nArtisans du b\xc3\xa2timent\n".to_vec(),
        "categories",
    )
    .await;
    let sc = "nom,categorie,naf_codes\nPlombier,Artisans du bâtiment,43.22A;43.22B\n";
    let job = import(&app, "sc.csv", sc.as_bytes().to_vec(), "sous_categories").await;
    assert_eq!(job["created_rows"], 1, "{job}");
    import(
        &app,
        "v.csv",
        b"nom,code_postal\nBourg-en-Bresse,1000\n".to_vec(),
        "villes",
    )
    .await;
    let e = "siren,nom,naf_code,code_postal,ville_nom\n732829320,Plomberie Martin,4322A,01000,Bourg-en-Bresse\n552100554,Sans page,62.01Z,01000,Bourg-en-Bresse\n";
    let job = import(&app, "e.csv", e.as_bytes().to_vec(), "entreprises").await;
    assert_eq!(job["created_rows"], 2, "{job}");
    let db = app.pg().await;
    let pages = db
        .query(
            "SELECT e.siren, s.nom, v.nom FROM prolocalisations p JOIN entreprises e ON e.id = p.entreprise_id
             JOIN sous_categories s ON s.id = p.sous_categorie_id JOIN villes v ON v.id = p.ville_id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].get::<_, String>(0), "732829320");
    assert_eq!(pages[0].get::<_, String>(1), "Plombier");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_xlsx_report_is_formula_safe() {
    use calamine::{Data, Reader, Xlsx};
    let app = TestApp::spawn().await;
    let csv = "siren,nom\n=1+1,@SUM(A1)\n732829320,Fine\n";
    let job = import(&app, "r.csv", csv.as_bytes().to_vec(), "entreprises").await;
    assert_eq!(job["error_rows"], 1);
    let resp = app
        .client
        .get(app.url(&format!(
            "/api/v1/imports/{}/report.xlsx",
            job["id"].as_str().unwrap()
        )))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap().to_vec();
    let mut wb: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(
        wb.sheet_names(),
        ["Résumé", "Erreurs", "Avertissements", "Modifications"]
    );
    let errors = wb.worksheet_range("Erreurs").unwrap();
    assert_eq!(errors.get_value((0, 0)), Some(&Data::String("Ligne".into())));
    assert_eq!(
        errors.get_value((1, 2)),
        Some(&Data::String("=1+1".into())),
        "the value stays text"
    );
    let formulas = wb.worksheet_formula("Erreurs").unwrap();
    assert!(
        formulas.used_cells().all(|(_, _, f)| f.is_empty()),
        "no cell is a formula"
    );
}

/// Issue 16: the report of a job with 100,000 error rows, some with cells
/// longer than Excel holds (32,767 characters), is a valid workbook — not a
/// 500 — with every row listed and the long cells cut and marked. The sheet
/// is written in constant-memory mode from pages of 2,000 rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_of_100000_errors_with_overlong_cells_is_a_valid_workbook() {
    use calamine::{Data, DataType, Reader, Xlsx};
    let app = TestApp::spawn().await;
    let job = import(&app, "r.csv", b"siren,nom\n1,\n".to_vec(), "entreprises").await;
    let id = job["id"].as_str().unwrap().to_owned();
    app.pg()
        .await
        .execute(
            "INSERT INTO import_errors (job_id, row, \"column\", value, code, message, raw)
             SELECT $1::text::uuid, 1 + g, 'nom', CASE WHEN g % 1000 = 0 THEN repeat('x', 40000) ELSE 'v' || g END,
                    'required', repeat('m', CASE WHEN g = 7 THEN 50000 ELSE 10 END),
                    jsonb_build_object('siren', g::text, 'nom', repeat('y', CASE WHEN g = 9 THEN 33000 ELSE 3 END))
             FROM generate_series(1, 99999) g",
            &[&id],
        )
        .await
        .unwrap();
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/imports/{id}/report.xlsx")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap().to_vec();
    let mut wb: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let errors = wb.worksheet_range("Erreurs").unwrap();
    // The job's own error rows (file row 2), then g = 1..99,999 at file rows 2 + g.
    assert!(
        errors.height() > 100_000,
        "every error row is listed: {}",
        errors.height()
    );
    let at_file_row = |file_row: f64| {
        errors
            .rows()
            .find(|r| r.first().and_then(|c| c.get_float()) == Some(file_row))
            .unwrap_or_else(|| panic!("no error row for file row {file_row}"))
            .to_vec()
    };
    let text = |row: &[Data], c: usize| match &row[c] {
        Data::String(s) => s.clone(),
        other => panic!("{c}: {other:?}"),
    };
    let cut = text(&at_file_row(1001.0), 2);
    assert_eq!(cut.chars().count(), 32_767);
    assert!(cut.ends_with("… (coupé)"));
    assert!(
        text(&at_file_row(8.0), 4).ends_with("… (coupé)"),
        "an over-long message is cut too"
    );
    assert_eq!(text(&at_file_row(50_002.0), 2), "v50001");
}
