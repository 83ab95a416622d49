//! Gauges read from PostgreSQL by the process that always runs:
//! `foxflow_jobs_past_lease{namespace}`, the jobs a dead worker left and no
//! claim has taken over yet (alert `FoxflowJobsPastLease`, docs/metrics.md).
//! Every replica reports the same number: aggregate with `max`.

use foxflow_storage::{DbPool, jobs, pool};
use prometheus::{IntGaugeVec, Opts};
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::watch;

static PAST_LEASE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    let g = IntGaugeVec::new(
        Opts::new(
            "foxflow_jobs_past_lease",
            "Jobs processing whose lease expired and that no worker has taken over yet",
        ),
        &["namespace"],
    )
    .expect("a static, valid metric definition");
    if let Err(e) = foxflow_telemetry::metrics::register(Box::new(g.clone())) {
        tracing::error!(error = %e, "cannot register foxflow_jobs_past_lease");
    }
    g
});

/// Samples every `every` until shutdown. A database that does not answer
/// keeps the last value (its own alerts say it is down).
pub async fn run_job_gauges(
    pool: DbPool,
    namespace: String,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let gauge = PAST_LEASE.with_label_values(&[namespace.as_str()]);
    loop {
        let counted = async {
            let mut conn = pool::conn(&pool).await?;
            jobs::count_past_lease(&mut conn).await
        }
        .await;
        match counted {
            Ok(n) => gauge.set(n),
            Err(e) => tracing::debug!(error = %e, "cannot count the jobs past their lease"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
