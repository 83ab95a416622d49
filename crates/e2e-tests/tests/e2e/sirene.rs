//! Issue 19: INSEE's Sirene files import as they come — the register's
//! columns, closed establishments, `[ND]` values, several establishments of
//! one SIREN — and a département written `20` is read as 2A or 2B. The
//! sample is `docs/samples/sirene_etablissements.csv` (docs/imports.md
//! "Sirene (INSEE) files").

use foxflow_testkit::{TestApp, TestOptions};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);
const SAMPLE: &str = "docs/samples/sirene_etablissements.csv";

fn sample() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(SAMPLE);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The sample as a French Excel saves it: `;` between cells, Windows-1252.
/// The sample's cells hold no `,` and only Latin-1 letters, whose
/// Windows-1252 byte is their code point.
fn excel_variant(csv: &str) -> Vec<u8> {
    csv.replace(',', ";")
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or_else(|_| panic!("{c:?} is not Latin-1")))
        .collect()
}

/// What an operator checks after the import, per SIREN, in SIREN order:
/// the SIRET, name, nom commercial, address, postal code, town, NAF code and
/// state the directory now holds.
type Stored = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    bool,
);

const EXPECTED: &[Stored] = &[
    // One establishment: the enseigne is the nom commercial, `12 B AV`
    // written out.
    (
        "999000011",
        "99900001100018",
        "BOULANGERIE DU FAUBOURG",
        Some("LA FOURNÉE DORÉE"),
        Some("12 BIS AVENUE DE LA REPUBLIQUE"),
        "75011",
        "PARIS",
        "10.71C",
        true,
    ),
    // Four establishments, the siège third: its SIRET and address.
    (
        "999000029",
        "99900002900036",
        "ATELIER MECANIQUE DU RHONE",
        None,
        Some("ZI DU CARRE DE SOIE, 7 TER CHEMIN DES CHARMETTES"),
        "69100",
        "VILLEURBANNE",
        "45.20A",
        true,
    ),
    // An individual: named `prenom nom`.
    (
        "999000037",
        "99900003700013",
        "CLAIRE MARTIN",
        None,
        Some("3 COURS NAPOLEON"),
        "20000",
        "AJACCIO",
        "96.02A",
        true,
    ),
    // Partial diffusion: name and street `[ND]`, named by its enseigne.
    (
        "999000045",
        "99900004500016",
        "SALON ELEGANCE",
        Some("SALON ELEGANCE"),
        None,
        "33000",
        "BORDEAUX",
        "96.02A",
        true,
    ),
    // Its only establishment closed.
    (
        "999000052",
        "99900005200012",
        "LE RELAIS DU VERCORS",
        None,
        Some("15 ROUTE DE GRENOBLE"),
        "38500",
        "VOIRON",
        "56.10A",
        false,
    ),
    // (999000060: no name may be disseminated, an error row.)
    // No siège in the extract: the first active establishment, not the
    // closed one before it nor the active one after it.
    (
        "999000078",
        "99900007800033",
        "PLOMBERIE PROVENCALE",
        None,
        Some("27 IMPASSE DES GENETS"),
        "13010",
        "MARSEILLE",
        "43.22A",
        true,
    ),
    // A lieu-dit without a number; the NAF code of the establishment.
    (
        "999000086",
        "99900008600010",
        "ELEC SERVICES AIN",
        None,
        Some("ZA DES PRES, LIEU-DIT LES GRANGES"),
        "01500",
        "AMBERIEU-EN-BUGEY",
        "43.21A",
        true,
    ),
];

async fn import(app: &TestApp, name: &str, bytes: Vec<u8>, kind: &str) -> Value {
    let id = app.submit(name, bytes, kind).await;
    let job = app.wait_final(&id, WAIT).await;
    let counted: i64 = ["created_rows", "updated_rows", "unchanged_rows", "error_rows"]
        .iter()
        .map(|k| job[k].as_i64().unwrap())
        .sum();
    assert_eq!(
        counted,
        job["total_rows"].as_i64().unwrap(),
        "every row accounted for: {job}"
    );
    job
}

fn counts(job: &Value) -> [i64; 5] {
    [
        "total_rows",
        "created_rows",
        "updated_rows",
        "unchanged_rows",
        "error_rows",
    ]
    .map(|k| job[k].as_i64().unwrap())
}

/// The stored entreprises, the error row, and no `[ND]` anywhere in the
/// directory.
async fn assert_stored(app: &TestApp, job: &Value) {
    let db = app.pg().await;
    let rows = db
        .query(
            "SELECT siren::text, siret::text, nom, nom_commercial, adresse, code_postal::text, ville_nom,
                    naf_code, naf_libelle, is_active
             FROM entreprises ORDER BY siren",
            &[],
        )
        .await
        .unwrap();
    let stored: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, Option<String>>(1),
                r.get::<_, String>(2),
                r.get::<_, Option<String>>(3),
                r.get::<_, Option<String>>(4),
                r.get::<_, Option<String>>(5),
                r.get::<_, Option<String>>(6),
                r.get::<_, Option<String>>(7),
                r.get::<_, bool>(9),
            )
        })
        .collect();
    let expected: Vec<_> = EXPECTED
        .iter()
        .map(|e| {
            (
                e.0.to_owned(),
                Some(e.1.to_owned()),
                e.2.to_owned(),
                e.3.map(str::to_owned),
                e.4.map(str::to_owned),
                Some(e.5.to_owned()),
                Some(e.6.to_owned()),
                Some(e.7.to_owned()),
                e.8,
            )
        })
        .collect();
    assert_eq!(stored, expected);
    for r in &rows {
        let libelle: Option<String> = r.get(8);
        assert!(
            libelle.is_some_and(|l| !l.is_empty()),
            "the NAF label from the reference table"
        );
    }
    let nd: i64 = db
        .query_one(
            "SELECT count(*) FROM entreprises e WHERE e::text LIKE '%[ND]%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nd, 0, "`[ND]` is never stored");

    let errors = db
        .query(
            "SELECT row, \"column\", value, code, message FROM import_errors WHERE job_id = $1::text::uuid",
            &[&job["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(errors.len(), 1, "{job}");
    let e = &errors[0];
    assert_eq!(e.get::<_, i64>(0), 9, "the 9th data row");
    assert_eq!(
        e.get::<_, Option<String>>(1).as_deref(),
        Some("denominationUniteLegale")
    );
    assert_eq!(e.get::<_, Option<String>>(2), None, "an `[ND]` cell is no value");
    assert_eq!(e.get::<_, String>(3), "required");
    let message: String = e.get(4);
    assert!(
        message.contains("non diffusibles ([ND])"),
        "French by default: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sirene_extract_imports_as_it_comes() {
    let app = TestApp::spawn().await;
    let job = import(
        &app,
        "StockEtablissement_extrait.csv",
        sample().into_bytes(),
        "entreprises",
    )
    .await;
    assert_eq!(job["status"], "partial", "{job}");
    // 13 rows: 7 entreprises created from their chosen establishment, the
    // 5 other establishments of their SIRENs unchanged, 1 error.
    assert_eq!(counts(&job), [13, 7, 0, 5, 1], "{job}");
    assert_eq!(job["unknown_columns"], serde_json::json!([]), "{job}");
    assert!(job["normalized_values"].as_i64().unwrap() > 0, "{job}");
    assert_stored(&app, &job).await;

    // The same file again changes nothing.
    let again = import(
        &app,
        "StockEtablissement_extrait.csv",
        sample().into_bytes(),
        "entreprises",
    )
    .await;
    assert_eq!(counts(&again), [13, 0, 0, 12, 1], "{again}");
    assert_stored(&app, &again).await;
}

/// Saved by Excel (`;`, Windows-1252) and written one row per batch: the
/// establishments of a SIREN land in different batches, and the stored
/// entreprises are the same — a later, lesser establishment never
/// overwrites the siège.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_excel_variant_written_row_by_row_stores_the_same() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("IMPORT_BATCH_ROWS".into(), "1".into())],
        ..TestOptions::default()
    })
    .await;
    let job = import(&app, "sirene_excel.csv", excel_variant(&sample()), "entreprises").await;
    assert_eq!(job["status"], "partial", "{job}");
    // Row by row, a better establishment updates what a lesser one before
    // it wrote (the closed then the active establishment of 999000029
    // before its siège, the closed one of 999000078 before its first
    // active one); those after the chosen one are unchanged.
    assert_eq!(counts(&job), [13, 7, 3, 2, 1], "{job}");
    assert_eq!(job["unknown_columns"], serde_json::json!([]), "{job}");
    assert_stored(&app, &job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departement_20_imports_as_2a_or_2b() {
    let app = TestApp::spawn().await;
    let csv = "nom;code_postal;departement\n\
               Ajaccio;20000;20\n\
               Porto-Vecchio;20137;20\n\
               Bastia;20200;20\n\
               Corte;20250;20\n\
               Biguglia;20620;2B\n\
               Paris;75001;20\n";
    let job = import(&app, "villes_corse.csv", csv.as_bytes().to_vec(), "villes").await;
    assert_eq!(job["status"], "partial", "{job}");
    assert_eq!(counts(&job), [6, 5, 0, 0, 1], "{job}");
    assert!(job["normalized_values"].as_i64().unwrap() >= 4, "{job}");
    let preview = &job["errors_preview"][0];
    assert_eq!(preview["code"], "invalid_departement", "{preview}");
    assert_eq!(preview["row"], 6, "{preview}");

    let db = app.pg().await;
    let stored: Vec<(String, Option<String>)> = db
        .query(
            "SELECT nom, departement FROM villes ORDER BY code_postal_principal",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want = [
        ("Ajaccio", "2A"),
        ("Porto-Vecchio", "2A"),
        ("Bastia", "2B"),
        ("Corte", "2B"),
        ("Biguglia", "2B"),
    ];
    assert_eq!(
        stored,
        want.map(|(n, d)| (n.to_owned(), Some(d.to_owned()))).to_vec()
    );
}
