#![doc = include_str!("../README.md")]

pub mod metrics;
pub mod propagation;
pub mod testing;

pub use propagation::{current_traceparent, set_parent_from_traceparent, trace_id_of};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The default filter: our own code at `info`, and the exporter's own
/// plumbing quiet, so that exporting spans never produces spans or logs that
/// would themselves be exported; lapin's connection-long `io_loop` span is
/// no use in a trace either.
const DEFAULT_FILTER: &str = "info,lapin=warn,opentelemetry=warn,opentelemetry_sdk=warn,\
                              opentelemetry_otlp=warn,hyper=warn,hyper_util=warn,reqwest=warn,h2=warn";

/// The provider of the process, kept so [`shutdown`] can flush it.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// What [`install`] needs to know.
#[derive(Debug, Clone)]
pub struct Settings<'a> {
    /// `service.name` of the exported spans.
    pub service: &'static str,
    /// One JSON object per line instead of the compact human format.
    pub json: bool,
    /// OTLP/HTTP base URL (`http://collector:4318`); spans are exported only
    /// when set. `/v1/traces` is appended unless already there.
    pub otlp_endpoint: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter for {endpoint}: {reason}")]
    Exporter { endpoint: String, reason: String },
}

/// Installs the global subscriber: filter, logs, OpenTelemetry. Sets the W3C
/// trace-context propagator (the global default is a no-op). The OpenTelemetry
/// layer is installed even without an exporter, so that trace ids are made
/// and propagated (a downstream service may export what this one does not).
pub fn install(settings: Settings<'_>) -> Result<(), TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let mut builder = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(settings.service).build());
    if let Some(endpoint) = settings.otlp_endpoint {
        builder = builder.with_batch_exporter(otlp_exporter(endpoint)?);
    }
    let provider = builder.build();
    if install_subscriber(settings.json, provider.clone()) {
        opentelemetry::global::set_tracer_provider(provider.clone());
        let _ = PROVIDER.set(provider);
        tracing::info!(
            service = settings.service,
            otlp = settings.otlp_endpoint.is_some(),
            "telemetry initialised"
        );
    }
    Ok(())
}

fn otlp_exporter(endpoint: &str) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;
    let base = endpoint.trim().trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    };
    // The default http-proto transport with reqwest's blocking client: the
    // batch processor exports from its own thread, where an async client
    // would find no runtime (docs/crates.md §1).
    opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.clone())
        .build()
        .map_err(|e| TelemetryError::Exporter {
            endpoint: url,
            reason: e.to_string(),
        })
}

/// Returns whether this call installed the global subscriber.
fn install_subscriber(json: bool, provider: SdkTracerProvider) -> bool {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            // The root span carries `trace_id`: every line of a job then
            // says which trace to open.
            .with_span_list(true)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().compact().boxed()
    };
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("foxflow"));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(otel)
        .try_init()
        .is_ok()
}

/// Flushes the spans still queued for export; call once before exiting.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(e) = provider.force_flush() {
            eprintln!("cannot flush traces: {e}");
        }
        let _ = provider.shutdown();
    }
}

/// For tests: spans are kept in memory ([`testing::spans_of_trace`]) so a
/// test can follow a trace; logs go to the test's captured output only when
/// `RUST_LOG` is set. Safe to call from every test.
pub fn init_for_tests() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder()
            .with_resource(Resource::builder().with_service_name("foxflow-tests").build())
            .with_simple_exporter(testing::InMemoryExporter)
            .build();
        let logs = std::env::var_os("RUST_LOG").is_some().then(|| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(EnvFilter::from_default_env())
        });
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("foxflow"))
            .with_filter(EnvFilter::new(DEFAULT_FILTER));
        if tracing_subscriber::registry()
            .with(logs)
            .with(otel)
            .try_init()
            .is_ok()
        {
            opentelemetry::global::set_tracer_provider(provider.clone());
            let _ = PROVIDER.set(provider);
        }
    });
}

/// For command-line tools: warnings and errors on stderr (more with
/// `RUST_LOG`), no spans.
pub fn init_cli() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .compact()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::Tracer;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// The exporter really posts protobuf to `<endpoint>/v1/traces`, from
    /// inside a tokio runtime (where an async client would have no reactor
    /// on the exporter's thread, docs/crates.md §1).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn otlp_export_posts_protobuf_to_v1_traces() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Headers, then as much body as Content-Length says.
            loop {
                let n = sock.read(&mut chunk).unwrap();
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len || n == 0 {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&buf).into_owned()
        });
        let exporter = otlp_exporter(&format!("http://{addr}/")).unwrap();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).build();
        provider.tracer("test").in_span("exported-span", |_| {});
        tokio::task::spawn_blocking(move || provider.force_flush())
            .await
            .unwrap()
            .unwrap();
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /v1/traces "), "{request}");
        assert!(
            request
                .to_lowercase()
                .contains("content-type: application/x-protobuf")
        );
        assert!(request.contains("exported-span"));
    }
}
