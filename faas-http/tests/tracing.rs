//! Traces: one activation's spans — the request, the controller's dispatch, and the invoker's
//! activation and phases on the other side of the bus — share one trace id and link parent to
//! child, collected in process; a W3C `traceparent` on the request is honoured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http::{Method, Request, StatusCode};

use faas_core::Executor;
use faas_core::message::InvokerInstanceId;
use faas_core::trace::{FinishedSpan, SpanExporter, Tracer};
use faas_exec::invoker::{InvokerConfig, InvokerService};
use faas_exec::pool::ContainerPool;
use faas_exec::process::ProcessExecutor;
use faas_http::ControllerConfig;
use support::*;

/// The in-process collector.
#[derive(Debug, Default)]
struct Collector(Mutex<Vec<FinishedSpan>>);

impl SpanExporter for Collector {
    fn export(&self, span: FinishedSpan) {
        self.0.lock().unwrap().push(span);
    }
}

impl Collector {
    fn named(&self, name: &str) -> Vec<FinishedSpan> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }
}

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn invoke(router: &axum::Router, traceparent: Option<&str>) {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(format!("{ACTIONS}/hello?blocking=true"))
        .header("authorization", basic(GUEST));
    if let Some(tp) = traceparent {
        b = b.header("traceparent", tp);
    }
    let r = call(router, b.body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
}

#[tokio::test]
async fn one_activation_is_one_trace_from_controller_through_the_bus_to_the_invoker() {
    let exec = ProcessExecutor::detect().expect("node and python3 on PATH");
    let collector = Arc::new(Collector::default());
    let tracer = Tracer::new(Arc::clone(&collector) as Arc<dyn SpanExporter>);
    let config = ControllerConfig::default()
        .with_manifest(exec.runtimes())
        .with_tracer(tracer.clone());
    let env = env_with(config).await;
    let inv_config = InvokerConfig::new(InvokerInstanceId::new(0, 2048))
        .with_api_host("http://127.0.0.1:1")
        .with_health_interval(Duration::from_millis(50))
        .with_tracer(tracer);
    let pool = ContainerPool::new(Arc::new(exec), inv_config.pool_config()).unwrap();
    let svc = InvokerService::new(
        inv_config,
        Arc::clone(&env.store),
        Arc::clone(&env.bus),
        pool,
    );
    let invoker = start_invoker(&env, svc).await;
    let r = put(
        &env.router,
        &format!("{ACTIONS}/hello"),
        node_action("function main() { return {}; }"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    collector.0.lock().unwrap().clear();

    // With the caller's traceparent.
    invoke(&env.router, Some(PARENT)).await;
    until("the invoker's spans", async || {
        !collector.named("invoker.activation").is_empty()
            && !collector.named("invoker.store").is_empty()
    })
    .await;
    let one = |name: &str| {
        let v = collector.named(name);
        assert_eq!(v.len(), 1, "{name}: {v:?}");
        v[0].clone()
    };
    let request = one("http.request");
    let dispatch = one("controller.dispatch");
    let activation = one("invoker.activation");
    let run = one("invoker.run");
    let trace = 0x4bf92f3577b34da6a3ce929d0e0e4736u128;
    for s in [
        &request,
        &dispatch,
        &activation,
        &run,
        &one("invoker.container"),
        &one("invoker.init"),
        &one("invoker.store"),
    ] {
        assert_eq!(s.context.trace_id, trace, "{s:?}");
        assert!(s.end >= s.start, "{s:?}");
    }
    assert_eq!(request.parent_span_id, Some(0x00f067aa0ba902b7));
    assert_eq!(dispatch.parent_span_id, Some(request.context.span_id));
    assert_eq!(activation.parent_span_id, Some(dispatch.context.span_id));
    assert_eq!(run.parent_span_id, Some(activation.context.span_id));
    let attr = |s: &FinishedSpan, k: &str| {
        s.attributes
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        attr(&request, "http.route").as_deref(),
        Some("/api/v1/namespaces/{ns}/actions/{name}")
    );
    assert_eq!(
        attr(&request, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attr(&activation, "activation.id"),
        attr(&dispatch, "activation.id")
    );
    assert_eq!(
        attr(&activation, "activation.status").as_deref(),
        Some("success")
    );

    // Without one, and with a malformed one: a new trace, still shared end to end.
    for tp in [None, Some("00-zz-00f067aa0ba902b7-01")] {
        collector.0.lock().unwrap().clear();
        invoke(&env.router, tp).await;
        until("the invoker's spans", async || {
            !collector.named("invoker.store").is_empty()
        })
        .await;
        let request = one("http.request");
        assert_eq!(request.parent_span_id, None);
        assert_ne!(request.context.trace_id, trace);
        assert_eq!(
            one("invoker.run").context.trace_id,
            request.context.trace_id
        );
        assert_eq!(
            one("invoker.activation").parent_span_id,
            Some(one("controller.dispatch").context.span_id)
        );
    }
    within("invoker shutdown", invoker.shutdown()).await;
}

#[tokio::test]
async fn without_a_tracer_messages_carry_no_trace_context() {
    let env = env().await;
    let fake = FakeInvoker::start(&env).await;
    with_action(&env, "a", serde_json::json!({})).await;
    let r = call(
        &env.router,
        Request::builder()
            .method(Method::POST)
            .uri(format!("{ACTIONS}/a"))
            .header("authorization", basic(GUEST))
            .header("traceparent", PARENT)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let msg = within("message", fake.next()).await;
    assert_eq!(msg.trace_context, None);
}
