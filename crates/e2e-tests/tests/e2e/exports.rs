//! Issue 20, "export the data": each directory table exported as CSV and as
//! XLSX re-imports as it is, with every row `unchanged` and every table
//! exactly as it was (a digest of every column of every row, `updated_at`
//! included); the values an operator would check survive both formats.

use crate::dry_run::directory;
use calamine::{Data, Reader, Xlsx};
use foxflow_testkit::TestApp;
use foxflow_testkit::data::entreprises_csv;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);

fn repo_file(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

async fn import(app: &TestApp, name: &str, bytes: Vec<u8>, import_type: &str) -> Value {
    let id = app.submit(name, bytes, import_type).await;
    app.wait_final(&id, WAIT).await
}

/// How many rows `table` holds.
pub(crate) async fn count(app: &TestApp, table: &str) -> i64 {
    app.pg()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// `GET /api/v1/exports/{entity}.{format}` as the admin; asserts the 200.
async fn export(app: &TestApp, entity: &str, format: &str) -> Vec<u8> {
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/exports/{entity}.{format}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "export {entity}.{format}");
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.starts_with(&format!("attachment; filename=\"{entity}-")),
        "{disposition}"
    );
    resp.bytes().await.unwrap().to_vec()
}

/// The rows of a CSV export: the byte-order mark and `;` Excel needs.
fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    let body = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .expect("a CSV export starts with the UTF-8 byte-order mark");
    csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .from_reader(body)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The one sheet of an XLSX export; asserts no cell is a formula.
fn xlsx_rows(bytes: Vec<u8>) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let name = wb.sheet_names()[0].clone();
    let formulas = wb.worksheet_formula(&name).unwrap();
    assert!(
        formulas.used_cells().all(|(_, _, f)| f.is_empty()),
        "no cell is a formula"
    );
    wb.worksheet_range(&name)
        .unwrap()
        .rows()
        .map(<[Data]>::to_vec)
        .collect()
}

/// Re-imports an export with its import type: every row `unchanged`, and
/// every table exactly as before.
async fn reimports_unchanged(app: &TestApp, file_name: &str, bytes: Vec<u8>, import_type: &str, rows: i64) {
    let before = directory(app).await;
    let job = import(app, file_name, bytes, import_type).await;
    assert_eq!(job["status"], "success", "{file_name}: {job}");
    assert_eq!(job["total_rows"], rows, "{file_name}: {job}");
    assert_eq!(job["unchanged_rows"], rows, "{file_name}: {job}");
    assert_eq!(
        job["unknown_columns"],
        serde_json::json!([]),
        "{file_name}: {job}"
    );
    assert_eq!(directory(app).await, before, "{file_name} changed nothing");
}

/// Round-trips one entity through both formats; returns the CSV's rows and
/// the sheet's rows (each header first) for the caller's value checks.
async fn round_trip(app: &TestApp, entity: &str, table: &str) -> (Vec<Vec<String>>, Vec<Vec<Data>>) {
    let rows = count(app, table).await;
    assert!(rows > 0, "{table} has rows to export");
    let csv = export(app, entity, "csv").await;
    let csv_table = csv_rows(&csv);
    assert_eq!(
        csv_table.len() as i64,
        rows + 1,
        "{entity}.csv: a header and every row"
    );
    reimports_unchanged(app, &format!("{entity}.csv"), csv, entity, rows).await;
    let xlsx = export(app, entity, "xlsx").await;
    let sheet = xlsx_rows(xlsx.clone());
    assert_eq!(
        sheet.len() as i64,
        rows + 1,
        "{entity}.xlsx: a header and every row"
    );
    reimports_unchanged(app, &format!("{entity}.xlsx"), xlsx, entity, rows).await;
    (csv_table, sheet)
}

fn find<T>(rows: &[Vec<T>], pred: impl Fn(&[T]) -> bool) -> &[T] {
    rows.iter()
        .find(|r| pred(r))
        .map(Vec::as_slice)
        .expect("the row is exported")
}

fn string(d: &Data) -> &str {
    match d {
        Data::String(s) => s,
        other => panic!("a text cell, got {other:?}"),
    }
}

const ENTREPRISES_EDGE: &str = "\
siren;siret;nom;nom_commercial;adresse;code_postal;ville_nom;naf_code;telephone;email_contact;site_web;is_active
732829320;73282932000074;\"=HYPERLINK(\"\"http://x\"\";\"\"y\"\")\";-Plomberie-;@ l’Église;01000;Bourg-en-Bresse;43.22A;04 74 38 00 00;contact@dupont.fr;www.dupont.fr;non
552100554;;Société Générale des Eaux – Île-de-France;;;1500;Ambérieu-en-Bugey;;;;;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entreprises_export_and_reimport_unchanged_as_csv_and_xlsx() {
    let app = TestApp::spawn().await;
    let job = import(
        &app,
        "entreprises.csv",
        repo_file("docs/samples/entreprises.csv"),
        "entreprises",
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");
    let job = import(
        &app,
        "edge.csv",
        ENTREPRISES_EDGE.as_bytes().to_vec(),
        "entreprises",
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");

    let (csv, sheet) = round_trip(&app, "entreprises", "entreprises").await;
    let header = [
        "siren",
        "siret",
        "nom",
        "nom_commercial",
        "adresse",
        "code_postal",
        "ville_nom",
        "naf_code",
        "naf_libelle",
        "telephone",
        "email_contact",
        "site_web",
        "is_active",
    ];
    assert_eq!(csv[0], header);
    let dupont = find(&csv, |r| r[0] == "732829320");
    assert_eq!(dupont[1], "73282932000074", "every SIRET digit");
    // Formula-looking text carries the text marker Excel hides and the
    // importer drops.
    assert_eq!(dupont[2], "'=HYPERLINK(\"http://x\";\"y\")");
    assert_eq!(dupont[3], "'-Plomberie-");
    assert_eq!(dupont[4], "'@ l’Église");
    assert_eq!(dupont[5], "01000", "the leading zero");
    assert_eq!(dupont[8], "Travaux d'installation d'eau et de gaz en tous locaux");
    assert_eq!(dupont[9], "'+33474380000");
    assert_eq!(dupont[12], "false");
    let eaux = find(&csv, |r| r[0] == "552100554");
    assert_eq!(eaux[2], "Société Générale des Eaux – Île-de-France");
    assert_eq!(eaux[5], "01500");
    assert_eq!(eaux[1], "", "an empty value is an empty cell");

    let names: Vec<String> = sheet[0].iter().map(|d| string(d).to_owned()).collect();
    assert_eq!(names, header);
    let dupont = find(&sheet, |r| r[0] == Data::String("732829320".into()));
    assert_eq!(string(&dupont[1]), "73282932000074", "SIRET as text");
    assert_eq!(
        string(&dupont[2]),
        "=HYPERLINK(\"http://x\";\"y\")",
        "text, not a formula"
    );
    assert_eq!(string(&dupont[5]), "01000", "postal code as text");
    assert_eq!(string(&dupont[9]), "+33474380000");
    assert_eq!(dupont[12], Data::Bool(false));

    let db = app.pg().await;
    let row = db
        .query_one(
            "SELECT nom, code_postal::text, siret::text, adresse FROM entreprises WHERE siren = '732829320'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "=HYPERLINK(\"http://x\";\"y\")");
    assert_eq!(row.get::<_, String>(1), "01000");
    assert_eq!(row.get::<_, String>(2), "73282932000074");
    assert_eq!(row.get::<_, String>(3), "@ l’Église");
}

const VILLES_EDGE: &str = "\
nom;code_postal;departement;region;lat;lng;population
Ajaccio;20000;2A;Corse;41,919229;8,738635;71361
Bourg-en-Bresse;1000;;Auvergne-Rhône-Alpes;46.2051923456789;5.2255;41248
Saint-Pierre;97410;974;La Réunion;-21.339312345678913;55.4781;
Brest;29200;;;48.390394;-4.486076;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn villes_export_and_reimport_unchanged_as_csv_and_xlsx() {
    let app = TestApp::spawn().await;
    let job = import(
        &app,
        "villes.csv",
        repo_file("docs/samples/villes_france.csv"),
        "villes",
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");
    let job = import(&app, "edge.csv", VILLES_EDGE.as_bytes().to_vec(), "villes").await;
    assert_eq!(job["status"], "success", "{job}");

    let (csv, sheet) = round_trip(&app, "villes", "villes").await;
    assert_eq!(
        csv[0],
        [
            "nom",
            "code_postal",
            "departement",
            "region",
            "lat",
            "lng",
            "population"
        ]
    );
    let bourg = find(&csv, |r| r[0] == "Bourg-en-Bresse");
    assert_eq!(
        bourg[1..],
        [
            "01000",
            "01",
            "Auvergne-Rhône-Alpes",
            "46.2051923456789",
            "5.2255",
            "41248"
        ]
    );
    let brest = find(&csv, |r| r[0] == "Brest");
    assert_eq!(
        brest[5], "-4.486076",
        "a negative number is a number, not marked text"
    );
    let ajaccio = find(&csv, |r| r[0] == "Ajaccio");
    assert_eq!(ajaccio[1..4], ["20000", "2A", "Corse"]);
    assert_eq!(
        ajaccio[4..],
        ["41.919229", "8.738635", "71361"],
        "a decimal comma read once, written as a point"
    );
    let saint_pierre = find(&csv, |r| r[0] == "Saint-Pierre");
    assert_eq!(saint_pierre[4], "-21.339312345678913");

    let bourg = find(&sheet, |r| r[0] == Data::String("Bourg-en-Bresse".into()));
    assert_eq!(string(&bourg[1]), "01000");
    assert_eq!(string(&bourg[2]), "01");
    assert_eq!(bourg[4], Data::Float(46.2051923456789));
    assert_eq!(bourg[6], Data::Float(41248.0));
    let brest = find(&sheet, |r| r[0] == Data::String("Brest".into()));
    assert_eq!(brest[5], Data::Float(-4.486076));
    // 17 significant digits: more than Excel holds, so the sheet keeps the text.
    let saint_pierre = find(&sheet, |r| r[0] == Data::String("Saint-Pierre".into()));
    assert_eq!(string(&saint_pierre[4]), "-21.339312345678913");
    // The sample's towns have nothing but a name and a postal code.
    let amberieu = find(&sheet, |r| r[0] == Data::String("Amberieu En Bugey".into()));
    assert_eq!(string(&amberieu[1]), "01500");
}

const SOUS_CATEGORIES_EDGE: &str = "\
nom;categorie;description;mots_cles;ordre;naf_codes
Plombier;Bâtiment;\"- eau\n- gaz\";plomberie, fuite;-2;\"43.22B; 43.22A\"
Électricien;Bâtiment;=pas une formule;;3;43.21A
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn categories_and_sous_categories_export_and_reimport_unchanged() {
    let app = TestApp::spawn().await;
    let wp = repo_file("docs/samples/categories_wordpress.csv");
    // Names over 100 characters are error rows: `partial`, the rest stored.
    let job = import(&app, "wp.csv", wp.clone(), "categories").await;
    assert_eq!(job["status"], "partial", "{job}");
    let job = import(&app, "wp.csv", wp, "sous_categories").await;
    assert_eq!(job["status"], "partial", "{job}");
    let job = import(
        &app,
        "cat.csv",
        b"nom;ordre\nB\xC3\xA2timent;7\n".to_vec(),
        "categories",
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");
    let job = import(
        &app,
        "sc.csv",
        SOUS_CATEGORIES_EDGE.as_bytes().to_vec(),
        "sous_categories",
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");

    let (csv, sheet) = round_trip(&app, "categories", "categories").await;
    assert_eq!(
        csv[0],
        ["nom", "slug", "description", "meta_description", "ordre"]
    );
    let batiment = find(&csv, |r| r[0] == "Bâtiment");
    assert_eq!(batiment[1], "batiment");
    assert_eq!(batiment[4], "7");
    let artisanat = find(&sheet, |r| r[0] == Data::String("Artisanat d’art".into()));
    assert_eq!(string(&artisanat[1]), "artisanat-dart");

    let links = count(&app, "naf_sous_categories").await;
    let (csv, sheet) = round_trip(&app, "sous_categories", "sous_categories").await;
    assert_eq!(
        csv[0],
        [
            "nom",
            "categorie",
            "slug",
            "description",
            "meta_description",
            "mots_cles",
            "ordre",
            "naf_codes"
        ]
    );
    let plombier = find(&csv, |r| r[0] == "Plombier" && r[1] == "Bâtiment");
    assert_eq!(plombier[1], "Bâtiment");
    assert_eq!(plombier[3], "'- eau\n- gaz");
    assert_eq!(plombier[5], "plomberie, fuite");
    assert_eq!(plombier[6], "-2");
    assert_eq!(
        plombier[7], "43.22A, 43.22B",
        "the NAF codes, as the importer reads them"
    );
    let electricien = find(&sheet, |r| {
        r[0] == Data::String("Électricien".into()) && r[1] == Data::String("Bâtiment".into())
    });
    assert_eq!(string(&electricien[3]), "=pas une formule");
    assert_eq!(electricien[6], Data::Float(3.0));
    assert_eq!(string(&electricien[7]), "43.21A");
    let haguenau = find(&sheet, |r| r[0] == Data::String("Haguenau".into()));
    assert_eq!(string(&haguenau[1]), "Crépissage et façade");
    assert_eq!(haguenau[7], Data::Empty, "no codes: an empty cell");
    assert_eq!(count(&app, "naf_sous_categories").await, links);
    let description: String = app
        .pg()
        .await
        .query_one(
            "SELECT description FROM sous_categories WHERE nom = 'Électricien'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(description, "=pas une formule");
}

/// 20,000 entreprises: the CSV arrives in several chunks as pages are read
/// (no length known in advance), parses back to every row and re-imports
/// unchanged; the XLSX holds every row too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20000_row_entreprises_export_streams_and_reads_back() {
    use futures::StreamExt;
    const ROWS: i64 = 20_000;
    let app = TestApp::spawn().await;
    let job = import(
        &app,
        "big.csv",
        entreprises_csv(ROWS as u32, 20).into_bytes(),
        "entreprises",
    )
    .await;
    assert_eq!(job["status"], "success", "{job}");

    let resp = app
        .client
        .get(app.url("/api/v1/exports/entreprises.csv"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(resp.content_length().is_none(), "streamed, not sized in advance");
    let mut chunks = resp.bytes_stream();
    let mut csv = Vec::new();
    while let Some(chunk) = chunks.next().await {
        csv.extend_from_slice(&chunk.unwrap());
    }
    let rows = csv_rows(&csv);
    assert_eq!(rows.len() as i64, ROWS + 1);
    let sirens: std::collections::HashSet<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(sirens.len() as i64, ROWS, "every entreprise once");
    reimports_unchanged(&app, "big.csv", csv, "entreprises", ROWS).await;

    let sheet = xlsx_rows(export(&app, "entreprises", "xlsx").await);
    assert_eq!(sheet.len() as i64, ROWS + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_need_a_token_and_a_known_entity_and_filter_by_update() {
    let app = TestApp::spawn().await;
    let job = import(&app, "e.csv", entreprises_csv(30, 3).into_bytes(), "entreprises").await;
    assert_eq!(job["status"], "success", "{job}");
    let get = |path: &str, token: Option<&str>| {
        let mut req = app.client.get(app.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let resp = get("/api/v1/exports/entreprises.csv", None).await.unwrap();
    assert_eq!(resp.status(), 401);
    for path in ["/api/v1/exports/users.csv", "/api/v1/exports/import_jobs.xlsx"] {
        let resp = get(path, Some(&app.admin_token)).await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
    // Viewers read the directory, so they may export it.
    let viewer = app.token("vera", "viewer").await;
    for path in [
        "/api/v1/exports/villes.xlsx",
        "/api/v1/exports/sous-categories.csv",
    ] {
        let resp = get(path, Some(&viewer)).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let empty = csv_rows(
        &get("/api/v1/exports/villes.csv", Some(&viewer))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    );
    assert_eq!(empty.len(), 1, "an empty table exports its header");

    // The same exports beside the lists, `?format=` choosing the format; the
    // lists' own routes still answer.
    let beside = get("/api/v1/entreprises/export", Some(&viewer)).await.unwrap();
    assert_eq!(beside.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(csv_rows(&beside.bytes().await.unwrap()).len(), 31);
    let beside = get("/api/v1/sous-categories/export?format=xlsx", Some(&viewer))
        .await
        .unwrap();
    assert_eq!(beside.status(), 200);
    assert_eq!(xlsx_rows(beside.bytes().await.unwrap().to_vec()).len(), 1);
    let resp = get("/api/v1/villes/export?format=json", Some(&viewer))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let siren = csv_rows(&export(&app, "entreprises", "csv").await)[1][0].clone();
    let resp = get(&format!("/api/v1/entreprises/{siren}"), Some(&viewer))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "an entreprise by SIREN");

    // Ten rows changed since yesterday; the rest long ago.
    app.pg()
        .await
        .execute(
            "UPDATE entreprises SET updated_at = now() - interval '30 days'
             WHERE id NOT IN (SELECT id FROM entreprises ORDER BY id LIMIT 10)",
            &[],
        )
        .await
        .unwrap();
    let since: String = app
        .pg()
        .await
        .query_one(
            "SELECT to_char((now() - interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let recent = csv_rows(
        &get(
            &format!("/api/v1/exports/entreprises.csv?updated_since={since}"),
            Some(&viewer),
        )
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap(),
    );
    assert_eq!(recent.len(), 11, "the header and the ten recent rows");
    let resp = get(
        "/api/v1/exports/entreprises.csv?updated_since=hier",
        Some(&viewer),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_updated_since");
}

/// `VmHWM` (peak resident memory) of a process, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb / 1024
}

/// Issue 20: an export of 1,000,000 entreprises, CSV then XLSX, streams
/// through a real `api-gateway` process whose peak memory stays under
/// 100 MB — the rows are never all in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_a_million_entreprises_keeps_the_gateway_small() {
    use foxflow_testkit::chaos::ServiceProcess;
    use futures::StreamExt;
    const ROWS: i64 = 1_000_000;
    let app = TestApp::spawn_with(foxflow_testkit::TestOptions {
        api: false,
        import_worker: false,
        ..Default::default()
    })
    .await;
    app.pg()
        .await
        .batch_execute(&format!(
            "INSERT INTO entreprises (siren, siret, nom, adresse, code_postal, ville_nom, telephone, email_contact, site_web)
             SELECT lpad(g::text, 9, '0'), lpad(g::text, 9, '0') || '00012', 'Entreprise numéro ' || g,
                    g || ' rue de la République', '69001', 'Lyon', '+33412345678', 'contact' || g || '@exemple.fr',
                    'https://exemple.fr/' || g
               FROM generate_series(1, {ROWS}) g"
        ))
        .await
        .unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut env = app.env().clone();
    env.insert("API_ADDR".into(), addr.to_string());
    let api = ServiceProcess::start("api-gateway", &format!("export-{}", app.namespace), &env);
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(std::time::Instant::now() < deadline, "the gateway did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for format in ["csv", "xlsx"] {
        let started = std::time::Instant::now();
        let resp = client
            .get(format!("{base}/api/v1/exports/entreprises.{format}"))
            .bearer_auth(&app.admin_token)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{format}");
        let (mut bytes, mut lines, mut body) = (0usize, 0usize, resp.bytes_stream());
        while let Some(chunk) = body.next().await {
            let chunk = chunk.unwrap();
            bytes += chunk.len();
            lines += chunk.iter().filter(|b| **b == b'\n').count();
        }
        if format == "csv" {
            assert_eq!(lines as i64, ROWS + 1, "a header and every row");
        }
        let peak = peak_rss_mib(api.pid());
        println!(
            "export {format}: {bytes} bytes in {:?}; gateway peak RSS {peak} MiB",
            started.elapsed()
        );
        assert!(
            peak < 100,
            "gateway peak RSS {peak} MiB after the {format} export"
        );
    }
}
