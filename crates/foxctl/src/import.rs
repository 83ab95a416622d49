//! `foxctl import FILE --type T [--dry-run] [--generate-ai] [--wait] [--json]`:
//! uploads a file through the API, then (with `--wait`) follows the job on
//! its events stream (SSE, polling `GET /imports/{id}` when the stream
//! fails) and ends with a summary. `foxctl import --apply DRY_RUN_ID` runs a
//! finished dry run's file for real, without uploading it again.
//!
//! Exit codes, for scripts: 0 the job ended `success` (or, without `--wait`,
//! it was accepted); 1 the API refused or could not be reached; 2 a usage
//! error (bad arguments, no token, unreadable file); 3 `partial`; 4 `error`;
//! 5 `cancelled` (someone stopped it; the rows it committed are kept).
//!
//! Output: bars go to stderr and only when it is a terminal; the summary
//! goes to stdout; `--json` prints only the job JSON on stdout.

use eventsource_stream::Eventsource;
use foxflow_domain::{Lang, Text};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::{StatusCode, multipart};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

pub const EXIT_SUCCESS: i32 = 0;
pub const EXIT_API: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_PARTIAL: i32 = 3;
pub const EXIT_ERROR: i32 = 4;
pub const EXIT_CANCELLED: i32 = 5;

/// How often the job is polled when the events stream is unavailable.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Error rows shown under the summary.
const ERRORS_SHOWN: usize = 10;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The file to import (.csv, .xlsx or .xls).
    #[arg(required_unless_present = "apply")]
    pub file: Option<PathBuf>,
    /// entreprises, categories, sous_categories or villes.
    #[arg(long = "type", value_name = "TYPE", required_unless_present = "apply")]
    pub import_type: Option<String>,
    /// Instead of a file: apply this finished dry run (its stored file is
    /// imported for real, as the preview showed).
    #[arg(long, value_name = "DRY_RUN_ID", conflicts_with_all = ["file", "import_type", "dry_run", "generate_ai"])]
    pub apply: Option<String>,
    /// Compute the outcomes and errors; write no entity.
    #[arg(long)]
    pub dry_run: bool,
    /// Queue AI texts for what the import creates or updates.
    #[arg(long)]
    pub generate_ai: bool,
    /// Follow the job to its end (progress bar, summary, exit code by status).
    #[arg(long)]
    pub wait: bool,
    /// Print only the job JSON (the final one with --wait) on stdout.
    #[arg(long)]
    pub json: bool,
    /// The API's base URL.
    #[arg(long, env = "FOX_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// Bearer token (`foxctl token create`).
    #[arg(long, env = "FOX_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Why the command stopped before a job status could decide the exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Api(String),
}

impl Failure {
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Api(_) => EXIT_API,
        }
    }
}

/// Runs the command; returns the process exit code.
pub async fn run(args: ImportArgs) -> i32 {
    match run_inner(&args).await {
        Ok(code) => code,
        Err(f) => {
            eprintln!("foxctl import: {f}");
            f.exit_code()
        }
    }
}

/// The language of what foxctl says: `FOXCTL_LANG=en` for English, French
/// otherwise (docs/configuration.md). Only this variable: a developer's
/// English locale does not change a French operator's output.
pub fn lang() -> Lang {
    std::env::var("FOXCTL_LANG").map_or(Lang::Fr, |v| Lang::from_setting(&v))
}

/// One message in foxctl's language.
pub(crate) fn say(fr: impl Into<String>, en: impl Into<String>) -> String {
    Text::new(fr, en).get(lang()).to_owned()
}

/// The exit code a final status maps to.
pub fn exit_code_for(status: &str) -> i32 {
    match status {
        "success" => EXIT_SUCCESS,
        "partial" => EXIT_PARTIAL,
        "cancelled" => EXIT_CANCELLED,
        _ => EXIT_ERROR,
    }
}

pub(crate) struct Api {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
}

impl Api {
    /// The API at `api_url` with `token`, checked before anything is sent.
    pub(crate) fn new(api_url: &str, token: Option<&str>) -> Result<Api, Failure> {
        let token = token.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            Failure::Usage(say(
                "aucun jeton : définissez FOX_TOKEN ou passez --token",
                "no token: set FOX_TOKEN or pass --token",
            ))
        })?;
        let base = api_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Failure::Usage(say(
                format!("l’URL de l’API `{base}` doit commencer par http:// ou https://"),
                format!("the API URL `{base}` must start with http:// or https://"),
            )));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("foxctl/", env!("CARGO_PKG_VERSION")))
            // The API answers its errors in foxctl's language.
            .default_headers(reqwest::header::HeaderMap::from_iter([(
                reqwest::header::ACCEPT_LANGUAGE,
                reqwest::header::HeaderValue::from_static(lang().as_str()),
            )]))
            .build()
            .map_err(|e| {
                Failure::Api(say(
                    format!("impossible de créer le client HTTP : {e}"),
                    format!("cannot build the HTTP client: {e}"),
                ))
            })?;
        Ok(Api {
            client,
            base,
            token: token.trim().to_owned(),
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST path` (no body); the job it answers with `want`.
    pub(crate) async fn post_job(&self, path: &str, want: StatusCode) -> Result<Value, Failure> {
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| unreachable_api(&self.base, &e))?;
        expect_json(resp, want).await
    }
}

async fn run_inner(args: &ImportArgs) -> Result<i32, Failure> {
    let api = Api::new(&args.api_url, args.token.as_deref())?;
    if let Some(dry_run) = &args.apply {
        let job = api
            .post_job(&format!("/api/v1/imports/{dry_run}/apply"), StatusCode::ACCEPTED)
            .await?;
        return follow(&api, job, args.wait, args.json).await;
    }
    let (Some(path), Some(import_type)) = (&args.file, &args.import_type) else {
        return Err(Failure::Usage(say(
            "un fichier et --type sont requis (ou --apply)",
            "a file and --type are required (or --apply)",
        )));
    };
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| cannot_read(path, &e))?;
    let size = file.metadata().await.map_err(|e| cannot_read(path, &e))?.len();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            let f = path.display();
            Failure::Usage(say(
                format!("{f} n’est pas un fichier"),
                format!("{f} is not a file"),
            ))
        })?;
    let show_bars = !args.json;

    // Upload, streaming the file with a byte bar.
    let upload_bar = bar(show_bars, size);
    upload_bar.set_style(
        ProgressStyle::with_template("uploading {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    upload_bar.set_message(file_name.clone());
    let counted = upload_bar.clone();
    let body =
        tokio_util::io::ReaderStream::new(file).inspect_ok(move |chunk| counted.inc(chunk.len() as u64));
    let part =
        multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body), size).file_name(file_name);
    let form = multipart::Form::new()
        .text("import_type", import_type.clone())
        .text("dry_run", args.dry_run.to_string())
        .text("generate_ai", args.generate_ai.to_string())
        .part("file", part);
    let resp = api
        .client
        .post(api.url("/api/v1/imports"))
        .bearer_auth(&api.token)
        .multipart(form)
        .send()
        .await
        .map_err(|e| unreachable_api(&api.base, &e));
    upload_bar.finish_and_clear();
    let job = expect_json(resp?, StatusCode::ACCEPTED).await?;
    follow(&api, job, args.wait, args.json).await
}

/// After a job was queued: its id (or JSON), or with `wait` its progress,
/// its summary and the exit code of its final status.
pub(crate) async fn follow(api: &Api, job: Value, wait: bool, json: bool) -> Result<i32, Failure> {
    let id = job["id"]
        .as_str()
        .ok_or_else(|| {
            Failure::Api(say(
                "l’API a accepté la demande mais n’a renvoyé aucun identifiant d’import",
                "the API accepted the request but returned no job id",
            ))
        })?
        .to_owned();
    if !wait {
        if json {
            print_json(&job);
        } else {
            println!("{id}");
            eprintln!(
                "{}",
                say(
                    format!("accepté : suivez-le avec --wait, ou GET /api/v1/imports/{id}"),
                    format!("accepted: follow it with --wait, or GET /api/v1/imports/{id}"),
                )
            );
        }
        return Ok(EXIT_SUCCESS);
    }
    let show_bars = !json;
    let progress = bar(show_bars, 0);
    progress.set_style(
        ProgressStyle::with_template("{spinner} {msg:<12} [{bar:30}] {pos}/{len} rows  {elapsed_precise}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    show(&progress, &job);
    let final_job = match follow_stream(api, &id, &progress).await {
        Ok(job) => job,
        Err(reason) => {
            // The stream is a convenience; the job's URL is the truth.
            progress.suspend(|| eprintln!("events stream unavailable ({reason}); polling the job instead"));
            poll(api, &id, &progress).await?
        }
    };
    progress.finish_and_clear();
    let status = final_job["status"].as_str().unwrap_or("error").to_owned();
    if json {
        print_json(&final_job);
    } else {
        print_summary(&final_job);
    }
    Ok(exit_code_for(&status))
}

/// A bar on stderr (hidden when stderr is not a terminal), or a hidden one.
fn bar(visible: bool, len: u64) -> ProgressBar {
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    ProgressBar::with_draw_target(Some(len), target)
}

fn show(progress: &ProgressBar, job: &Value) {
    let total = job["total_rows"].as_u64().unwrap_or(0);
    if total > 0 {
        progress.set_length(total);
    }
    progress.set_position(job["processed_rows"].as_u64().unwrap_or(0));
    progress.set_message(status_label(job));
}

/// The status as the bar shows it: a running job asked to stop says so.
fn status_label(job: &Value) -> String {
    let status = job["status"].as_str().unwrap_or("?");
    if status == "processing" && job["cancel_requested_by"].is_string() {
        "cancelling".to_owned()
    } else {
        status.to_owned()
    }
}

fn is_final(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("success" | "partial" | "error" | "cancelled")
    )
}

/// Follows `GET /imports/{id}/events` until the final job; `Err` (with why)
/// when the stream cannot be opened or ends before a final status.
async fn follow_stream(api: &Api, id: &str, progress: &ProgressBar) -> Result<Value, String> {
    let resp = api
        .client
        .get(api.url(&format!("/api/v1/imports/{id}/events")))
        .bearer_auth(&api.token)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| chain(&e))?;
    if resp.status() != StatusCode::OK {
        return Err(format!("HTTP {}", resp.status()));
    }
    let mut events = resp.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| e.to_string())?;
        match event.event.as_str() {
            "job" | "end" => {
                let job: Value = serde_json::from_str(&event.data).map_err(|e| format!("bad frame: {e}"))?;
                show(progress, &job);
                if event.event == "end" || is_final(&job) {
                    return Ok(job);
                }
            }
            // Unknown event types are for newer clients.
            _ => {}
        }
    }
    Err("the stream ended before the import did".into())
}

/// Polls `GET /imports/{id}` until the job is final.
async fn poll(api: &Api, id: &str, progress: &ProgressBar) -> Result<Value, Failure> {
    let mut failures = 0u32;
    loop {
        let sent = api
            .client
            .get(api.url(&format!("/api/v1/imports/{id}")))
            .bearer_auth(&api.token)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let job = expect_json(resp, StatusCode::OK).await?;
                failures = 0;
                show(progress, &job);
                if is_final(&job) {
                    return Ok(job);
                }
            }
            // A restart of the API should not lose the wait: a few tries.
            Err(e) if failures < 10 => {
                failures += 1;
                let why = chain(&e);
                progress.suspend(|| {
                    eprintln!(
                        "{}",
                        say(
                            format!("impossible de joindre l’API ({why}) ; nouvel essai"),
                            format!("cannot reach the API ({why}); retrying"),
                        )
                    )
                });
            }
            Err(e) => return Err(unreachable_api(&api.base, &e)),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The body as JSON when the status is `want`; otherwise the API's error,
/// `{"error": {"code", "message", "details"}}`, as a readable failure.
pub(crate) async fn expect_json(resp: reqwest::Response, want: StatusCode) -> Result<Value, Failure> {
    let status = resp.status();
    let text = resp.text().await.map_err(|e| {
        let why = chain(&e);
        Failure::Api(say(
            format!("HTTP {status} : réponse illisible : {why}"),
            format!("HTTP {status}: cannot read the answer: {why}"),
        ))
    })?;
    if status == want {
        return serde_json::from_str(&text).map_err(|e| {
            Failure::Api(say(
                format!("HTTP {status} : la réponse n’est pas du JSON ({e})"),
                format!("HTTP {status}: the answer is not JSON ({e})"),
            ))
        });
    }
    Err(Failure::Api(describe_error(status, &text)))
}

/// `HTTP 422 invalid_import_type: … (details)`, or the raw body when it is
/// not the standard error shape.
pub fn describe_error(status: StatusCode, body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    match parsed.as_ref().map(|v| &v["error"]) {
        Some(err) if err.is_object() => {
            let code = err["code"].as_str().unwrap_or("unknown");
            let message = err["message"].as_str().unwrap_or("");
            let mut s = format!("HTTP {} {code}: {message}", status.as_u16());
            if !err["details"].is_null() {
                s.push_str(&format!(" ({})", err["details"]));
            }
            s
        }
        _ => {
            let snippet: String = body.chars().take(300).collect();
            format!("HTTP {}: {}", status.as_u16(), snippet.trim())
        }
    }
}

fn cannot_read(file: &std::path::Path, e: &std::io::Error) -> Failure {
    let f = file.display();
    Failure::Usage(say(
        format!("impossible de lire {f} : {e}"),
        format!("cannot read {f}: {e}"),
    ))
}

pub(crate) fn unreachable_api(base: &str, e: &reqwest::Error) -> Failure {
    let why = chain(e);
    Failure::Api(say(
        format!("impossible de joindre l’API à {base} : {why}"),
        format!("cannot reach the API at {base}: {why}"),
    ))
}

pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

pub(crate) fn print_json(job: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string_pretty(job).unwrap_or_default());
    let _ = out.flush();
}

/// The summary table and the first error rows.
fn print_summary(job: &Value) {
    let n = |k: &str| job[k].as_i64().unwrap_or(0);
    let duration = job["duration_seconds"].as_f64();
    let rate = duration
        .filter(|d| *d > 0.0)
        .map(|d| format!("{:.0}", n("processed_rows") as f64 / d))
        .unwrap_or_else(|| "-".into());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "import {} ({}, {}{}): {}",
        job["id"].as_str().unwrap_or("?"),
        job["import_type"].as_str().unwrap_or("?"),
        job["file_name"].as_str().unwrap_or("?"),
        if job["dry_run"].as_bool() == Some(true) {
            ", dry run"
        } else {
            ""
        },
        job["status"].as_str().unwrap_or("?"),
    );
    let rows = [
        ("created", n("created_rows").to_string()),
        ("updated", n("updated_rows").to_string()),
        ("unchanged", n("unchanged_rows").to_string()),
        ("errors", n("error_rows").to_string()),
        ("total", n("total_rows").to_string()),
        (
            "duration",
            duration
                .map(|d| format!("{d:.1} s"))
                .unwrap_or_else(|| "-".into()),
        ),
        ("rows/s", rate),
    ];
    for (label, value) in rows {
        let _ = writeln!(out, "  {label:<10} {value:>12}");
    }
    if let Some(e) = job["last_error"].as_str() {
        // A cancelled job's note says who stopped it; it is no error.
        let label = if job["status"] == "cancelled" {
            "note"
        } else {
            "last error"
        };
        let _ = writeln!(out, "  {label}: {e}");
    }
    let preview = job["errors_preview"].as_array().cloned().unwrap_or_default();
    if !preview.is_empty() {
        let _ = writeln!(out, "\nfirst error rows:");
        let _ = writeln!(out, "  {:>6}  {:<16} {:<22} message", "row", "column", "code");
        for e in preview.iter().take(ERRORS_SHOWN) {
            let _ = writeln!(
                out,
                "  {:>6}  {:<16} {:<22} {}",
                e["row"].as_i64().unwrap_or(0),
                clip(e["column"].as_str().unwrap_or("-"), 16),
                clip(e["code"].as_str().unwrap_or("-"), 22),
                e["message"].as_str().unwrap_or(""),
            );
        }
        if n("error_rows") as usize > preview.len().min(ERRORS_SHOWN) {
            let _ = writeln!(
                out,
                "  … all {} in GET /api/v1/imports/{}/errors or report.xlsx",
                n("error_rows"),
                job["id"].as_str().unwrap_or("?")
            );
        }
    }
    let _ = out.flush();
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut c: String = s.chars().take(width - 1).collect();
        c.push('…');
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_by_status() {
        assert_eq!(exit_code_for("success"), 0);
        assert_eq!(exit_code_for("partial"), 3);
        assert_eq!(exit_code_for("error"), 4);
        assert_eq!(exit_code_for("cancelled"), 5);
    }

    #[test]
    fn a_cancelled_job_is_final_and_a_cancel_request_shows() {
        assert!(is_final(&serde_json::json!({"status": "cancelled"})));
        assert!(!is_final(&serde_json::json!({"status": "processing"})));
        let asked = serde_json::json!({"status": "processing", "cancel_requested_by": "alice"});
        assert_eq!(status_label(&asked), "cancelling");
        assert_eq!(status_label(&serde_json::json!({"status": "pending"})), "pending");
    }

    #[test]
    fn api_errors_read_clearly() {
        let body = r#"{"error":{"code":"invalid_import_type","message":"unknown type `x`","details":null}}"#;
        assert_eq!(
            describe_error(StatusCode::UNPROCESSABLE_ENTITY, body),
            "HTTP 422 invalid_import_type: unknown type `x`"
        );
        assert_eq!(
            describe_error(StatusCode::BAD_GATEWAY, "<html>bad gateway</html>"),
            "HTTP 502: <html>bad gateway</html>"
        );
    }
}
