//! The operator's other API commands: `foxctl revert ID`, `foxctl cancel ID`
//! (both follow the job with `--wait`, exit codes as `foxctl import`'s) and
//! `foxctl export ENTITY` (the directory's data as CSV or XLSX, streamed to
//! a file or stdout).

use crate::import::{Api, Failure, chain, follow};
use futures::StreamExt;
use reqwest::StatusCode;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

#[derive(clap::Args, Debug)]
pub struct JobArgs {
    /// The import's id.
    pub id: String,
    /// Follow the job to its end (progress bar, summary, exit code by status).
    #[arg(long)]
    pub wait: bool,
    /// Print only the job JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// The API's base URL.
    #[arg(long, env = "FOX_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// Bearer token (`foxctl token create`).
    #[arg(long, env = "FOX_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// entreprises, villes, categories or sous-categories.
    pub entity: String,
    /// csv (`;`, UTF-8 with BOM, as French Excel opens it) or xlsx.
    #[arg(long, default_value = "csv", value_parser = ["csv", "xlsx"])]
    pub format: String,
    /// Where to write it; stdout when absent.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// A list filter, `name=value` (as `GET /api/v1/{entity}` takes them),
    /// repeatable: `--filter code_postal=75001`.
    #[arg(long, value_name = "NAME=VALUE")]
    pub filter: Vec<String>,
    /// The API's base URL.
    #[arg(long, env = "FOX_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// Bearer token (`foxctl token create`).
    #[arg(long, env = "FOX_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// What a job command does.
#[derive(Debug, Clone, Copy)]
pub enum JobAction {
    /// Queue a revert job (`POST …/revert`) and, with `--wait`, follow it.
    Revert,
    /// Cancel (`POST …/cancel`) and, with `--wait`, follow it to `cancelled`.
    Cancel,
}

pub async fn run_job(action: JobAction, args: JobArgs) -> i32 {
    let name = match action {
        JobAction::Revert => "revert",
        JobAction::Cancel => "cancel",
    };
    let run = async {
        let api = Api::new(&args.api_url, args.token.as_deref())?;
        let job = api
            .post_job(
                &format!("/api/v1/imports/{}/{name}", args.id),
                StatusCode::ACCEPTED,
            )
            .await?;
        follow(&api, job, args.wait, args.json).await
    };
    match run.await {
        Ok(code) => code,
        Err(f) => {
            eprintln!("foxctl {name}: {f}");
            f.exit_code()
        }
    }
}

pub async fn run_export(args: ExportArgs) -> i32 {
    match export(&args).await {
        Ok(()) => crate::import::EXIT_SUCCESS,
        Err(f) => {
            eprintln!("foxctl export: {f}");
            f.exit_code()
        }
    }
}

async fn export(args: &ExportArgs) -> Result<(), Failure> {
    let api = Api::new(&args.api_url, args.token.as_deref())?;
    let mut query = Vec::new();
    for f in &args.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| Failure::Usage(format!("--filter `{f}`: write it name=value")))?;
        query.push((k.to_owned(), v.to_owned()));
    }
    let resp = api
        .client
        .get(api.url(&format!("/api/v1/exports/{}.{}", args.entity, args.format)))
        .query(&query)
        .bearer_auth(&api.token)
        .send()
        .await
        .map_err(|e| Failure::Api(format!("cannot reach the API at {}: {}", api.base, chain(&e))))?;
    if resp.status() != StatusCode::OK {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        return Err(Failure::Api(crate::import::describe_error(status, &body)));
    }
    // Streamed: an export of a million rows never sits in memory.
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin> = match &args.output {
        Some(p) => Box::new(
            tokio::fs::File::create(p)
                .await
                .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", p.display())))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Failure::Api(format!("the export was cut: {}", chain(&e))))?;
        out.write_all(&chunk)
            .await
            .map_err(|e| Failure::Usage(format!("cannot write the export: {e}")))?;
    }
    out.flush()
        .await
        .map_err(|e| Failure::Usage(format!("cannot write the export: {e}")))?;
    Ok(())
}
