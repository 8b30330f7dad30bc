//! Trace export over OTLP/HTTP (feature `otlp`): the platform's [`SpanExporter`] hands
//! finished spans to a background task that batches them (up to [`BATCH`] spans or
//! [`FLUSH`]) and sends them with `opentelemetry-otlp` (protobuf over HTTP) to
//! `<endpoint>/v1/traces`. The queue is bounded ([`QUEUE`]): when the collector cannot keep
//! up, spans are dropped and counted, never waited for.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use faas_core::trace::{FinishedSpan, SpanExporter, Tracer};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use tokio::sync::mpsc;

/// Spans sent in one request at most.
pub const BATCH: usize = 512;
/// The longest a span waits in the batch.
pub const FLUSH: Duration = Duration::from_secs(1);
/// Spans waiting to be sent at most; more are dropped.
pub const QUEUE: usize = 8192;

/// The exporter the platform's tracer writes to.
#[derive(Debug)]
pub struct OtlpSpans {
    tx: mpsc::Sender<FinishedSpan>,
    dropped: AtomicU64,
}

impl OtlpSpans {
    /// Spans dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl SpanExporter for OtlpSpans {
    fn export(&self, span: FinishedSpan) {
        if self.tx.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts exporting to the OTLP/HTTP collector at `endpoint` (`http://host:4318`), as
/// service `service`; returns the tracer to give the controller and the invoker. Must be
/// called inside a Tokio runtime.
pub fn start(endpoint: &str, service: &'static str) -> faas_core::Result<(Tracer, Arc<OtlpSpans>)> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.clone())
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| faas_core::Error::bad_request(format!("OTLP endpoint '{endpoint}': {e}")))?;
    exporter.set_resource(&Resource::builder_empty().with_service_name(service).build());
    let (tx, mut rx) = mpsc::channel::<FinishedSpan>(QUEUE);
    let spans = Arc::new(OtlpSpans {
        tx,
        dropped: AtomicU64::new(0),
    });
    let scope = InstrumentationScope::builder("faas").build();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let Some(first) = rx.recv().await else { break };
            batch.push(to_span_data(first, &scope));
            let deadline = tokio::time::Instant::now() + FLUSH;
            while batch.len() < BATCH {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(s)) => batch.push(to_span_data(s, &scope)),
                    Ok(None) | Err(_) => break,
                }
            }
            let n = batch.len();
            if let Err(e) = exporter.export(std::mem::take(&mut batch)).await {
                tracing::warn!(error = %e, spans = n, endpoint = %url, "exporting spans failed");
            }
        }
    });
    tracing::info!(endpoint, "exporting traces over OTLP/HTTP");
    Ok((
        Tracer::new(Arc::clone(&spans) as Arc<dyn SpanExporter>),
        spans,
    ))
}

fn to_span_data(s: FinishedSpan, scope: &InstrumentationScope) -> SpanData {
    let flags = if s.context.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let kind = match s.name {
        "http.request" => SpanKind::Server,
        "controller.dispatch" => SpanKind::Producer,
        "invoker.activation" => SpanKind::Consumer,
        _ => SpanKind::Internal,
    };
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(s.context.trace_id),
            SpanId::from(s.context.span_id),
            flags,
            false,
            TraceState::default(),
        ),
        parent_span_id: s.parent_span_id.map_or(SpanId::INVALID, SpanId::from),
        parent_span_is_remote: false,
        span_kind: kind,
        name: Cow::Borrowed(s.name),
        start_time: s.start,
        end_time: s.end,
        attributes: s
            .attributes
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope.clone(),
    }
}
