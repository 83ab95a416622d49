//! The virus scan of an upload (docs/security.md, "Virus scanning"): clamd's verdict on the
//! spooled file, what to do without one (`CLAMD_FAIL_OPEN`), and
//! `foxflow_virus_scans_total{outcome}`.

use crate::error::ApiError;
use foxflow_config::VirusScan;
use foxflow_virus_scan::{Clamd, ScanError, Verdict};
use prometheus::{IntCounterVec, Opts};
use std::sync::LazyLock;
use tokio::io::AsyncSeekExt;

const OUTCOMES: &[&str] = &["clean", "infected", "error"];

static SCANS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            "foxflow_virus_scans_total",
            "Uploads scanned by clamd, by outcome: clean, infected, or error (no verdict)",
        ),
        &["outcome"],
    )
    .expect("a static, valid metric definition");
    // At zero from the start, so that `rate()` has a baseline before the first error.
    for outcome in OUTCOMES {
        c.with_label_values(&[outcome]);
    }
    if let Err(e) = foxflow_telemetry::metrics::register(Box::new(c.clone())) {
        tracing::error!(error = %e, "cannot register foxflow_virus_scans_total");
    }
    c
});

/// Scans uploads with one clamd, under one policy for a missing verdict.
pub struct Scanner {
    clamd: Clamd,
    /// Store an upload clamd could not judge (logged, counted as `error`) instead of
    /// answering 503.
    fail_open: bool,
}

impl Scanner {
    pub fn new(config: &VirusScan) -> Scanner {
        LazyLock::force(&SCANS);
        tracing::info!(
            clamd = %config.addr,
            fail_open = config.fail_open,
            "uploads are scanned by clamd before they are stored"
        );
        Scanner {
            clamd: Clamd::new(config.addr.clone(), config.connect_timeout, config.timeout),
            fail_open: config.fail_open,
        }
    }

    /// `Ok` when the file may be stored: clean, or no verdict under `CLAMD_FAIL_OPEN`. An
    /// infected file is 422 `infected_file`; no verdict is 503 `scanner_unavailable`.
    /// `file` is read from its start; `file_name` is for the log.
    pub async fn check(&self, file: &mut tokio::fs::File, file_name: &str) -> Result<(), ApiError> {
        file.rewind()
            .await
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("rewinding an upload")))?;
        let verdict = self.clamd.scan(&mut *file).await;
        let outcome = match &verdict {
            Ok(Verdict::Clean) => "clean",
            Ok(Verdict::Infected(_)) => "infected",
            // Our own temporary file failed us: not clamd's doing, so not counted against it.
            Err(ScanError::Source(_)) => "",
            Err(_) => "error",
        };
        if !outcome.is_empty() {
            SCANS.with_label_values(&[outcome]).inc();
        }
        match verdict {
            Ok(Verdict::Clean) => Ok(()),
            Ok(Verdict::Infected(signature)) => {
                tracing::warn!(
                    %signature,
                    file_name,
                    "upload refused: clamd found a virus"
                );
                Err(ApiError::Unprocessable {
                    code: "infected_file",
                    message: Box::new(foxflow_domain::text!(
                        "le fichier est infecté ({signature}) ; il n’a pas été enregistré",
                        "the file is infected ({signature}); it was not stored"
                    )),
                    details: Some(serde_json::json!({ "signature": signature })),
                })
            }
            Err(ScanError::Source(e)) => Err(ApiError::Internal(
                anyhow::Error::new(e).context("reading an upload back for clamd"),
            )),
            Err(e) if self.fail_open => {
                tracing::warn!(
                    error = %chain(&e),
                    file_name,
                    "clamd gave no verdict; the upload is stored unscanned (CLAMD_FAIL_OPEN=true)"
                );
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    error = %chain(&e),
                    file_name,
                    "clamd gave no verdict; the upload is refused (503)"
                );
                Err(ApiError::ScannerUnavailable)
            }
        }
    }
}

/// The error and its causes on one line ("cannot connect to clamd at …: Connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}
