#![doc = include_str!("../README.md")]

use foxflow_storage::webhooks::{self, AttemptResult, DueDelivery};
use foxflow_storage::{DbPool, StorageError};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;
use tokio::sync::watch;

mod targets;
pub use targets::{NotAllowed, Targets};

/// Deliveries claimed per round (and sent concurrently).
const BATCH: i64 = 16;
/// How long a claimed delivery is ours: longer than any attempt can take.
/// A sender that dies mid-attempt has its delivery retried after this.
const LEASE: Duration = Duration::from_secs(60);
/// Deliveries queued by another process are found at least this often.
const POLL: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

pub const HEADER_EVENT: &str = "X-Foxflow-Event";
pub const HEADER_DELIVERY: &str = "X-Foxflow-Delivery";
pub const HEADER_TIMESTAMP: &str = "X-Foxflow-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-Foxflow-Signature";

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Attempts in all, the first included (`WEBHOOK_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each one (`WEBHOOK_RETRY_BASE`).
    pub retry_base: Duration,
    /// One attempt's whole request, answer included (`WEBHOOK_TIMEOUT`).
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_attempts: 8,
            retry_base: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Settings {
    /// The wait after failed attempt number `attempt` (1-based), or `None`
    /// when it was the last one allowed.
    pub fn retry_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
        Some(self.retry_base.saturating_mul(factor).min(MAX_BACKOFF))
    }
}

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, keyed with the
/// hook's secret. The timestamp is signed too, so a captured request cannot
/// be replayed later with a fresh one.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Runs until `shutdown` turns true. An attempt in flight then finishes
/// (it is bounded by the timeout); a delivery not attempted stays queued.
/// Only `targets` are connected to.
pub async fn run_webhook_deliveries(
    pool: DbPool,
    settings: Settings,
    targets: Targets,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match client(&settings, &targets) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are not delivered");
            return;
        }
    };
    let targets = &targets;
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let wait = match deliver_round(&pool, &client, &settings, targets).await {
            Ok(n) if n as i64 == BATCH => {
                failures = 0;
                continue;
            }
            Ok(_) => {
                failures = 0;
                until_next_due(&pool).await
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = Duration::from_millis(250 * 2u64.pow(failures.min(6)));
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "webhook deliveries paused: database unavailable");
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

fn client(settings: &Settings, targets: &Targets) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
        // A receiver answers; it does not send us elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve and connect on our behalf, out of reach of the check.
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(targets.resolver()))
        .user_agent(concat!("Foxflow-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// How long to sleep: until the next retry is due, or one poll at most.
async fn until_next_due(pool: &DbPool) -> Duration {
    let next = async {
        let mut conn = foxflow_storage::pool::conn(pool).await?;
        webhooks::next_due(&mut conn).await
    }
    .await;
    match next {
        Ok(Some(at)) => (at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
            .clamp(Duration::from_millis(20), POLL),
        _ => POLL,
    }
}

/// `foxflow_webhook_deliveries_total{outcome}`: each attempt, `delivered`,
/// `retried` (failed, another attempt is scheduled) or `failed` (for good:
/// attempts spent or the target refused). Alerts `FoxflowWebhookDeliveriesFailed`
/// and `FoxflowWebhookRetries` read it.
static DELIVERIES: std::sync::LazyLock<prometheus::IntCounterVec> = std::sync::LazyLock::new(|| {
    let c = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "foxflow_webhook_deliveries_total",
            "Webhook delivery attempts by outcome (delivered, retried, failed)",
        ),
        &["outcome"],
    )
    .expect("a static, valid metric definition");
    if let Err(e) = foxflow_telemetry::metrics::register(Box::new(c.clone())) {
        tracing::error!(error = %e, "cannot register foxflow_webhook_deliveries_total");
    }
    c
});

/// Claims one batch of due deliveries and attempts each; returns how many.
async fn deliver_round(
    pool: &DbPool,
    client: &reqwest::Client,
    settings: &Settings,
    targets: &Targets,
) -> Result<usize, StorageError> {
    let due = {
        let mut conn = foxflow_storage::pool::conn(pool).await?;
        webhooks::claim_due(&mut conn, BATCH, LEASE).await?
    };
    let n = due.len();
    // No connection is held while receivers answer.
    let results: Vec<_> = futures::stream::iter(due)
        .map(|d| async move {
            let result = attempt(client, settings, targets, &d).await;
            (d, result)
        })
        .buffer_unordered(BATCH as usize)
        .collect()
        .await;
    let mut conn = foxflow_storage::pool::conn(pool).await?;
    for (d, result) in results {
        let outcome = match &result {
            AttemptResult::Delivered { .. } => "delivered",
            AttemptResult::Failed {
                retry_in: Some(_), ..
            } => "retried",
            AttemptResult::Failed { retry_in: None, .. } => "failed",
        };
        DELIVERIES.with_label_values(&[outcome]).inc();
        match &result {
            AttemptResult::Delivered { status_code } => {
                tracing::info!(delivery = %d.id, webhook = %d.webhook_id, event = %d.event, attempt = d.attempts, status_code, "webhook delivered");
            }
            AttemptResult::Failed {
                status_code,
                error,
                retry_in,
            } => {
                tracing::warn!(
                    delivery = %d.id, webhook = %d.webhook_id, event = %d.event, attempt = d.attempts,
                    status_code = status_code.map(i64::from), error = %error,
                    retry_in_ms = retry_in.map(|r| r.as_millis() as u64),
                    "webhook delivery failed"
                );
            }
        }
        webhooks::record_attempt(&mut conn, d.id, &result).await?;
    }
    Ok(n)
}

/// One POST. What is recorded is the status code or a short, fixed
/// description: never the receiver's answer, nor the error chain (which
/// would tell whoever reads the deliveries how our network answers).
async fn attempt(
    client: &reqwest::Client,
    settings: &Settings,
    targets: &Targets,
    d: &DueDelivery,
) -> AttemptResult {
    if let Err(refused) = targets.check_url(&d.url) {
        return not_allowed(d, &refused);
    }
    let body = serde_json::to_vec(&d.payload).expect("JSON values serialise");
    let timestamp = chrono::Utc::now().timestamp();
    let sent = client
        .post(&d.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_EVENT, &d.event)
        .header(HEADER_DELIVERY, d.id.to_string())
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_SIGNATURE, signature(&d.secret, timestamp, &body))
        .body(body)
        .send()
        .await;
    let attempt = u32::try_from(d.attempts).unwrap_or(u32::MAX);
    match sent {
        Ok(resp) if resp.status().is_success() => AttemptResult::Delivered {
            status_code: resp.status().as_u16(),
        },
        Ok(resp) => AttemptResult::Failed {
            status_code: Some(resp.status().as_u16()),
            error: format!("the receiver answered {}", resp.status()),
            retry_in: settings.retry_after(attempt),
        },
        Err(e) => match targets::refusal(&e) {
            Some(refused) => not_allowed(d, refused),
            None => {
                // The cause chain goes to the worker's log, not to the delivery.
                tracing::debug!(delivery = %d.id, error = ?e, "webhook request failed");
                AttemptResult::Failed {
                    status_code: None,
                    error: describe(&e).to_owned(),
                    retry_in: settings.retry_after(attempt),
                }
            }
        },
    }
}

/// A refused address is not retried: the hook needs a new URL or the
/// operator an allowlist entry, neither of which waiting brings.
fn not_allowed(d: &DueDelivery, refused: &NotAllowed) -> AttemptResult {
    tracing::warn!(delivery = %d.id, webhook = %d.webhook_id, address = %refused.address, "webhook target refused");
    AttemptResult::Failed {
        status_code: None,
        error: "refused: the target address is not allowed (WEBHOOK_ALLOW_PRIVATE_NETWORKS)".into(),
        retry_in: None,
    }
}

fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops() {
        let s = Settings {
            max_attempts: 4,
            retry_base: Duration::from_millis(100),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(s.retry_after(1), Some(Duration::from_millis(100)));
        assert_eq!(s.retry_after(2), Some(Duration::from_millis(200)));
        assert_eq!(s.retry_after(3), Some(Duration::from_millis(400)));
        assert_eq!(s.retry_after(4), None);
        let long = Settings {
            max_attempts: 100,
            ..Settings::default()
        };
        assert_eq!(long.retry_after(60), Some(MAX_BACKOFF));
    }

    /// A name resolving to loopback is refused before any connection, and
    /// the refusal is recognised in reqwest's error chain.
    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_at_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let strict = Targets::new(foxflow_config::WebhookNetworks::public_only());
        let c = client(&Settings::default(), &strict).unwrap();
        let e = c
            .post(format!("http://localhost:{port}/hook"))
            .send()
            .await
            .expect_err("refused");
        let refused = targets::refusal(&e).expect("the refusal is in the chain");
        assert!(refused.address.is_loopback(), "{refused}");
        assert!(strict.check_url(&format!("http://127.0.0.1:{port}/")).is_err());
        assert!(strict.check_url("http://[::1]/").is_err());
        assert!(strict.check_url("https://hooks.example.com/").is_ok());
        // Allowed explicitly, the same name connects.
        let open = Targets::new("127.0.0.0/8,::1".parse().unwrap());
        let c = client(&Settings::default(), &open).unwrap();
        let accept = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
        let _ = c
            .post(format!("http://localhost:{port}/hook"))
            .timeout(Duration::from_millis(300))
            .send()
            .await;
        accept.await.unwrap().expect("connected");
    }

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        // Checked against a value computed independently
        // (python3 -c 'import hmac,hashlib;print(hmac.new(b"k",b"1.{}",hashlib.sha256).hexdigest())').
        assert_eq!(
            signature("k", 1, b"{}"),
            "sha256=3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158"
        );
    }
}
