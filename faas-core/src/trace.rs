//! Distributed tracing: W3C trace context, spans, and the facade that exports them.
//!
//! A [`TraceContext`] is W3C's `traceparent` (trace id, span id, sampled flag). It travels
//! in HTTP requests (`traceparent` header) and, across the bus, in the activation message's
//! `traceContext` field as OpenWhisk carries it: a map of propagation headers
//! (`{"traceparent": "00-…-…-01"}`, OpenWhisk's `Option[Map[String, String]]`).
//!
//! Components open [`Span`]s through a [`Tracer`] handle; a finished span goes to the
//! tracer's [`SpanExporter`]. A disabled tracer (the default) makes no ids, reads no clock
//! and allocates nothing: [`Tracer::span`] returns an inert span.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

/// The W3C trace context of one span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace (never 0).
    pub trace_id: u128,
    /// The span (never 0).
    pub span_id: u64,
    /// Whether the trace is sampled (`01` flag).
    pub sampled: bool,
}

fn nonzero_u64() -> u64 {
    loop {
        let v: u64 = rand::random();
        if v != 0 {
            return v;
        }
    }
}

impl TraceContext {
    /// A new trace with a new root span.
    pub fn root() -> Self {
        let mut trace_id: u128 = 0;
        while trace_id == 0 {
            trace_id = rand::random();
        }
        Self {
            trace_id,
            span_id: nonzero_u64(),
            sampled: true,
        }
    }

    /// A new span in the same trace.
    pub fn child(&self) -> Self {
        Self {
            span_id: nonzero_u64(),
            ..*self
        }
    }

    /// Parses a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`); `None` when malformed,
    /// of an unknown future version with a bad shape, or with an all-zero id (the W3C rule:
    /// such a header is ignored and a new trace starts).
    pub fn parse_traceparent(s: &str) -> Option<Self> {
        let s = s.trim();
        let mut parts = s.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        let hex = |p: &str, n: usize| {
            p.len() == n
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(version, 2)
            || version == "ff"
            || !hex(trace, 32)
            || !hex(span, 16)
            || !hex(flags, 2)
        {
            return None;
        }
        // Version 00 has exactly four fields; later versions may append more.
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` of this span.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }

    /// The trace id in its W3C hex form.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The `traceContext` of an activation message: `{"traceparent": "…"}`.
    pub fn to_message(&self) -> Value {
        let mut m = Map::new();
        m.insert("traceparent".into(), Value::String(self.traceparent()));
        Value::Object(m)
    }

    /// The context in an activation message's `traceContext`, if it holds a valid
    /// `traceparent`.
    pub fn from_message(v: Option<&Value>) -> Option<Self> {
        v?.get("traceparent")?
            .as_str()
            .and_then(Self::parse_traceparent)
    }
}

/// A finished span, as exporters receive it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FinishedSpan {
    /// What it measured (`http.request`, `controller.dispatch`, `invoker.run`, …).
    pub name: &'static str,
    /// Its context.
    pub context: TraceContext,
    /// The span it is a child of, when it has one.
    pub parent_span_id: Option<u64>,
    /// When it began.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Its attributes (bounded: names, kinds, statuses; ids only where the span is about
    /// that id, as `activation.id`).
    pub attributes: Vec<(&'static str, String)>,
}

/// Where finished spans go (an OTLP exporter, a collector in a test).
pub trait SpanExporter: fmt::Debug + Send + Sync + 'static {
    /// Takes one finished span. Called on hot paths: no blocking I/O.
    fn export(&self, span: FinishedSpan);
}

/// A cheap, cloneable handle to a [`SpanExporter`], or nothing (disabled, the default).
#[derive(Clone, Default)]
pub struct Tracer(Option<Arc<dyn SpanExporter>>);

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Tracer").field(&self.0.is_some()).finish()
    }
}

/// Two handles are equal when they export to the same exporter (or are both disabled).
impl PartialEq for Tracer {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Tracer {
    /// Exports to `exporter`.
    pub fn new(exporter: Arc<dyn SpanExporter>) -> Self {
        Self(Some(exporter))
    }
    /// Exports nothing.
    pub const fn disabled() -> Self {
        Self(None)
    }
    /// Whether spans are made.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }
    /// Opens span `name`, a child of `parent` or the root of a new trace (an inert span
    /// when disabled). It is exported when ended or dropped.
    pub fn span(&self, name: &'static str, parent: Option<&TraceContext>) -> Span {
        match &self.0 {
            None => Span(None),
            Some(exporter) => Span(Some(Box::new(Open {
                exporter: Arc::clone(exporter),
                span: FinishedSpan {
                    name,
                    context: parent.map_or_else(TraceContext::root, TraceContext::child),
                    parent_span_id: parent.map(|p| p.span_id),
                    start: SystemTime::now(),
                    end: SystemTime::UNIX_EPOCH,
                    attributes: Vec::new(),
                },
            }))),
        }
    }
}

#[derive(Debug)]
struct Open {
    exporter: Arc<dyn SpanExporter>,
    span: FinishedSpan,
}

/// An open span; exported when [`end`](Self::end)ed or dropped.
#[derive(Debug)]
pub struct Span(Option<Box<Open>>);

impl Span {
    /// An inert span (what a disabled tracer returns).
    pub const fn none() -> Self {
        Self(None)
    }
    /// Its context (`None` when inert).
    pub fn context(&self) -> Option<TraceContext> {
        self.0.as_ref().map(|o| o.span.context)
    }
    /// Adds an attribute (nothing when inert).
    pub fn set(&mut self, key: &'static str, value: impl fmt::Display) {
        if let Some(o) = &mut self.0 {
            o.span.attributes.push((key, value.to_string()));
        }
    }
    /// Ends and exports it.
    pub fn end(self) {
        drop(self);
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(mut o) = self.0.take() {
            o.span.end = SystemTime::now();
            o.exporter.export(o.span);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_bad_ones_are_refused() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let c = TraceContext::parse_traceparent(tp).unwrap();
        assert_eq!(c.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(c.span_id, 0x00f067aa0ba902b7);
        assert!(c.sampled);
        assert_eq!(c.traceparent(), tp);
        let child = c.child();
        assert_eq!(child.trace_id, c.trace_id);
        assert_ne!(child.span_id, c.span_id);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse_traceparent(bad), None, "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            TraceContext::parse_traceparent(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra"
            )
            .is_some_and(|c| !c.sampled)
        );
    }

    #[test]
    fn the_message_field_is_openwhisks_map() {
        let c = TraceContext::root();
        let v = c.to_message();
        assert_eq!(v["traceparent"], Value::String(c.traceparent()));
        assert_eq!(TraceContext::from_message(Some(&v)), Some(c));
        assert_eq!(TraceContext::from_message(None), None);
        assert_eq!(TraceContext::from_message(Some(&Value::Null)), None);
    }

    #[test]
    fn a_disabled_tracer_makes_inert_spans() {
        let t = Tracer::disabled();
        let mut s = t.span("x", None);
        s.set("k", "v");
        assert_eq!(s.context(), None);
    }
}
