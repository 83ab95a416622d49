//! Finished spans kept in memory, for tests that follow a trace across
//! services (installed by [`crate::init_for_tests`]).

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// A whole test binary shares one exporter; the oldest spans are dropped
/// past this many so a long suite cannot grow without bound.
const KEEP: usize = 200_000;

static SPANS: Mutex<VecDeque<FinishedSpan>> = Mutex::new(VecDeque::new());

/// What a test needs to know about one finished span.
#[derive(Debug, Clone)]
pub struct FinishedSpan {
    pub name: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// `0000000000000000` for a root span.
    pub parent_span_id: String,
    pub attributes: HashMap<String, String>,
}

/// The finished spans of one trace.
pub fn spans_of_trace(trace_id: &str) -> Vec<FinishedSpan> {
    SPANS
        .lock()
        .map(|s| s.iter().filter(|x| x.trace_id == trace_id).cloned().collect())
        .unwrap_or_default()
}

/// The exporter [`crate::init_for_tests`] plugs into a simple (synchronous)
/// span processor.
#[derive(Debug)]
pub struct InMemoryExporter;

impl SpanExporter for InMemoryExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut spans = SPANS.lock().unwrap_or_else(|p| p.into_inner());
        for s in batch {
            if spans.len() >= KEEP {
                spans.pop_front();
            }
            spans.push_back(FinishedSpan {
                name: s.name.to_string(),
                trace_id: s.span_context.trace_id().to_string(),
                span_id: s.span_context.span_id().to_string(),
                parent_span_id: s.parent_span_id.to_string(),
                attributes: s
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                    .collect(),
            });
        }
        Ok(())
    }
}
