//! Per-request telemetry: a server span (continuing a caller's `traceparent`
//! when there is one), one log line, and the latency histogram. The route
//! label is the matched pattern, so ids in paths do not multiply series.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use foxflow_telemetry::metrics;
use std::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;

/// Probes and scrapes: measured, but neither traced nor logged (one every
/// few seconds per replica would drown everything else).
const QUIET: &[&str] = &["/healthz", "/readyz", "/metrics"];

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let quiet = QUIET.contains(&route.as_str());
    let span = if quiet {
        tracing::Span::none()
    } else {
        let span = tracing::info_span!(
            "http_request",
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method,
            http.route = %route,
            url.path = %req.path(),
            http.response.status_code = Empty,
            trace_id = Empty,
        );
        let remote = req
            .headers()
            .get(foxflow_telemetry::propagation::TRACEPARENT)
            .and_then(|v| v.to_str().ok());
        foxflow_telemetry::set_parent_from_traceparent(&span, remote);
        if let Some(id) = foxflow_telemetry::trace_id_of(&span) {
            span.record("trace_id", id);
        }
        span
    };
    let result = next.call(req).instrument(span.clone()).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let elapsed = started.elapsed();
    metrics::http_request_duration()
        .with_label_values(&[method, route.as_str(), status.as_str()])
        .observe(elapsed.as_secs_f64());
    if !quiet {
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
        span.in_scope(|| {
            tracing::info!(
                method,
                route = %route,
                status = status.as_u16(),
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            );
        });
    }
    result
}

/// Methods outside the standard set share one label value: a client cannot
/// create series at will.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
