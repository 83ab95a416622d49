//! `foxctl import` against a running stack: the built binary uploads through
//! the API, follows the job (events stream) and exits by the job's status:
//! 0 success, 3 partial, 4 error; 1 when the API refuses, 2 on bad usage.

use foxflow_testkit::chaos::binary;
use foxflow_testkit::{TestApp, TestOptions};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A file in a fresh temporary directory, removed with it.
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(name: &str, content: &str) -> TempFile {
        let dir = std::env::temp_dir().join(format!("foxctl-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        TempFile { dir, path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `foxctl import <args>` with the app's URL and `token`, without
/// blocking the runtime the in-process services run on.
async fn foxctl(app: &TestApp, token: Option<&str>, args: &[&str]) -> Run {
    foxctl_command(app, token, "import", args).await
}

/// Runs `foxctl <command> <args>` the same way.
async fn foxctl_command(app: &TestApp, token: Option<&str>, command: &str, args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(binary("foxctl"));
    cmd.arg(command)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("FOX_API_URL", app.url(""))
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    if let Some(t) = token {
        cmd.env("FOX_TOKEN", t);
    }
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("foxctl finished within 90 s")
        .expect("foxctl runs");
    Run {
        code: out.status.code().expect("foxctl exited (not killed by a signal)"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "--json output is not JSON ({e}): {}\nstderr: {}",
            run.stdout, run.stderr
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_wait_exits_zero_on_success_and_json_parses() {
    let app = TestApp::spawn().await;
    let file = TempFile::new(
        "villes.csv",
        "nom,code_postal\nLyon,69001\nAnnecy,74000\nBrest,29200\n",
    );
    let path = file.path.to_str().unwrap();

    let run = foxctl(
        &app,
        Some(&app.admin_token),
        &[path, "--type", "villes", "--wait", "--json"],
    )
    .await;
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    // Followed on the events stream, not by the polling fallback.
    assert!(
        !run.stderr.contains("events stream unavailable"),
        "{}",
        run.stderr
    );
    let job = json_of(&run);
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["total_rows"], 3);
    assert_eq!(job["created_rows"], 3);
    assert_eq!(job["error_rows"], 0);
    // The CLI's word is the API's: the same job, final.
    let (status, stored) = app
        .get_json(&format!("/api/v1/imports/{}", job["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(stored["status"], "success");
    assert_eq!(stored["created_rows"], 3);

    // Again, for people: a summary table on stdout; nothing changes this time.
    let run = foxctl(
        &app,
        Some(&app.admin_token),
        &[path, "--type", "villes", "--wait"],
    )
    .await;
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert!(run.stdout.contains(": success"), "{}", run.stdout);
    let line = |label: &str| {
        run.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(label))
            .unwrap_or_else(|| panic!("no `{label}` line in:\n{}", run.stdout))
            .split_whitespace()
            .last()
            .unwrap()
            .to_owned()
    };
    assert_eq!(line("unchanged"), "3");
    assert_eq!(line("created"), "0");
    assert_eq!(line("errors"), "0");
    assert!(run.stdout.contains("rows/s"), "{}", run.stdout);

    // Without --wait: the job id alone on stdout, exit 0 at the 202.
    let run = foxctl(&app, Some(&app.admin_token), &[path, "--type", "villes"]).await;
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let id = run.stdout.trim();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "not a job id: {id:?}");
    let job = app.wait_final(id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_exit_codes_tell_partial_error_refusal_and_usage_apart() {
    let app = TestApp::spawn().await;

    // A missing required column: the job ends `error` → 4, and the JSON says why.
    let missing = TempFile::new("villes.csv", "nom\nLyon\nBrest\n");
    let run = foxctl(
        &app,
        Some(&app.admin_token),
        &[
            missing.path.to_str().unwrap(),
            "--type",
            "villes",
            "--wait",
            "--json",
        ],
    )
    .await;
    assert_eq!(run.code, 4, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    let job = json_of(&run);
    assert_eq!(job["status"], "error", "{job}");
    assert_eq!(job["created_rows"], 0);
    assert!(
        job["errors_preview"].as_array().is_some_and(|e| !e.is_empty()),
        "the final job carries its error rows: {job}"
    );

    // Some good rows and one bad postal code: `partial` → 3, and the summary
    // lists the bad row.
    let partial = TempFile::new(
        "villes.csv",
        "nom,code_postal\nLyon,69001\nNulle-Part,ABCDE\nBrest,29200\n",
    );
    let run = foxctl(
        &app,
        Some(&app.admin_token),
        &[partial.path.to_str().unwrap(), "--type", "villes", "--wait"],
    )
    .await;
    assert_eq!(run.code, 3, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert!(run.stdout.contains(": partial"), "{}", run.stdout);
    assert!(run.stdout.contains("first error rows"), "{}", run.stdout);
    assert!(
        run.stdout.contains("ABCDE") || run.stdout.contains("code_postal"),
        "{}",
        run.stdout
    );

    // The API refuses (unknown type): 1, with the API's code and message on stderr.
    let run = foxctl(
        &app,
        Some(&app.admin_token),
        &[partial.path.to_str().unwrap(), "--type", "planetes", "--wait"],
    )
    .await;
    assert_eq!(run.code, 1, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("HTTP 422 invalid_import_type"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);

    // A bad token is the API's refusal too.
    let run = foxctl(
        &app,
        Some("fox_not_a_token"),
        &[partial.path.to_str().unwrap(), "--type", "villes"],
    )
    .await;
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("HTTP 401 unauthorized"), "{}", run.stderr);

    // Usage: no token at all, or no such file.
    let run = foxctl(&app, None, &[partial.path.to_str().unwrap(), "--type", "villes"]).await;
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("FOX_TOKEN"), "{}", run.stderr);
    let run = foxctl(
        &app,
        Some(&app.admin_token),
        &["/nonexistent/villes.csv", "--type", "villes"],
    )
    .await;
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
}

/// Issue 19: NAF short labels are filled by `foxctl migrate` on a fresh
/// database, from INSEE's list the binary ships; a second run changes
/// nothing, and a label an operator loaded since is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_fills_the_naf_short_labels_from_the_shipped_list() {
    let app = TestApp::spawn_with(TestOptions {
        api: false,
        import_worker: false,
        ..Default::default()
    })
    .await;
    let db = app.pg().await;
    let missing = || async {
        db.query_one(
            "SELECT count(*)::int8 FROM naf_codes WHERE libelle_65 IS NULL OR libelle_40 IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
    };
    assert!(missing().await > 700, "a fresh database has no short labels");
    let migrate = || {
        let out = std::process::Command::new(binary("foxctl"))
            .arg("migrate")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", &app.env()["DATABASE_URL"])
            .output()
            .expect("foxctl runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = migrate();
    assert!(said.contains("NAF short labels"), "{said}");
    assert_eq!(missing().await, 0);
    let (l65, l40): (String, String) = {
        let r = db
            .query_one(
                "SELECT libelle_65, libelle_40 FROM naf_codes WHERE code = '43.22A'",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(l65.contains("eau") && l40.len() <= 40, "{l65} / {l40}");
    db.execute(
        "UPDATE naf_codes SET libelle_40 = 'Plomberie (ma version)' WHERE code = '43.22A'",
        &[],
    )
    .await
    .unwrap();
    let said = migrate();
    assert!(!said.contains("NAF short labels"), "{said}");
    let kept: String = db
        .query_one("SELECT libelle_40 FROM naf_codes WHERE code = '43.22A'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, "Plomberie (ma version)");
}

/// Issue 20: the operator's loop from the command line — a dry run, applied
/// with `import --apply`, taken back with `revert`, the data out with
/// `export`; `cancel` of a finished job is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_revert_cancel_and_export_from_the_command_line() {
    let app = TestApp::spawn().await;
    let token = Some(app.admin_token.as_str());
    let file = TempFile::new(
        "e.csv",
        "siren;nom\n732829320;Plomberie Martin\n552100554;Durand\n",
    );
    let path = file.path.to_str().unwrap();
    let dry = json_of(
        &foxctl(
            &app,
            token,
            &[path, "--type", "entreprises", "--dry-run", "--wait", "--json"],
        )
        .await,
    );
    assert_eq!(dry["status"], "success", "{dry}");
    let dry_id = dry["id"].as_str().unwrap();

    let run = foxctl(&app, token, &["--apply", dry_id, "--wait", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let real = json_of(&run);
    assert_eq!(real["created_rows"], 2, "{real}");
    assert_eq!(real["dry_run"], false, "{real}");

    let out = TempFile::new("export.csv", "");
    let run = foxctl_command(
        &app,
        token,
        "export",
        &["entreprises", "-o", out.path.to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let csv = std::fs::read_to_string(&out.path).unwrap();
    assert!(csv.starts_with('\u{feff}'), "UTF-8 with BOM: {csv:?}");
    assert!(csv.contains("732829320") && csv.contains("Durand"), "{csv}");
    let run = foxctl_command(&app, token, "export", &["nothing"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("404"), "{}", run.stderr);

    let real_id = real["id"].as_str().unwrap();
    let run = foxctl_command(&app, token, "cancel", &[real_id]).await;
    assert_eq!(
        run.code, 1,
        "a finished import cannot be cancelled: {}",
        run.stderr
    );
    assert!(run.stderr.contains("409"), "{}", run.stderr);

    let run = foxctl_command(&app, token, "revert", &[real_id, "--wait", "--json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reverted = json_of(&run);
    assert_eq!(reverted["deleted_rows"], 2, "{reverted}");
    let left: i64 = app
        .pg()
        .await
        .query_one("SELECT count(*) FROM entreprises", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}
