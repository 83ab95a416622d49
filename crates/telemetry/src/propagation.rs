//! W3C trace context across process boundaries: the `traceparent` of the
//! current span goes into the outbox row (and from there into the AMQP
//! headers); a consumer makes its span a child of the one it extracts.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";

struct One<'a>(Option<&'a str>);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if key == TRACEPARENT { self.0 } else { None }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

struct Collect(HashMap<String, String>);

impl Injector for Collect {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// The current span's context as a `traceparent` value
/// (`00-<trace id>-<span id>-<flags>`), or `None` outside any traced span.
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// The span's context as a `traceparent` value.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = Collect(HashMap::new());
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.0.remove(TRACEPARENT)
}

/// Makes `span` a child of the remote span a `traceparent` names. Call it
/// right after creating the span, before entering it. A missing or malformed
/// value leaves the span a root: a bad header never fails a request or a job.
/// Returns whether a parent was set.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: Option<&str>) -> bool {
    let Some(tp) = traceparent.map(str::trim).filter(|t| !t.is_empty()) else {
        return false;
    };
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&One(Some(tp))));
    if !cx.span().span_context().is_valid() {
        return false;
    }
    span.set_parent(cx).is_ok()
}

/// The trace id of a span, in the 32-hex-digit form tracing backends search
/// by; `None` when no OpenTelemetry layer is installed.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_continues_the_parents_trace() {
        crate::init_for_tests();
        let parent = tracing::info_span!("parent");
        let tp = parent.in_scope(current_traceparent).expect("traced");
        assert!(tp.starts_with("00-") && tp.len() == 55, "{tp}");
        let parent_trace = trace_id_of(&parent).unwrap();

        let child = tracing::info_span!("child");
        assert!(set_parent_from_traceparent(&child, Some(&tp)));
        assert_eq!(trace_id_of(&child).unwrap(), parent_trace);
        // The traceparent of the child names the child, in the same trace.
        let child_tp = traceparent_of(&child).unwrap();
        assert!(child_tp.contains(&parent_trace) && child_tp != tp);
    }

    #[test]
    fn bad_headers_leave_a_root_span() {
        crate::init_for_tests();
        let span = tracing::info_span!("root");
        assert!(!set_parent_from_traceparent(&span, None));
        assert!(!set_parent_from_traceparent(&span, Some("garbage")));
        assert!(!set_parent_from_traceparent(
            &span,
            Some("00-00000000000000000000000000000000-0000000000000000-01")
        ));
        assert!(trace_id_of(&span).is_some());
    }
}
