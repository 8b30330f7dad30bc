//! Warm blocking-invoke latency through the whole controller (router → dispatch → bus →
//! invoker → local Node.js process → acknowledgement), next to the invoker service alone.
//!
//! Run with: `cargo run --release -p faas-http --example invoke_latency`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use base64::Engine;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use faas_bus::InProcessBus;
use faas_core::identity::Subject;
use faas_core::message::{
    ActionRef, ActivationMessage, ControllerInstanceId, InvokerInstanceId, TransactionId,
};
use faas_core::sharding::ShardingScheduler;
use faas_core::{
    ActivationId, AuthKey, EntityName, Executor, MessageBus, Scheduler, Store, StoreAuthenticator,
};
use faas_exec::invoker::{InvokerConfig, InvokerService, run_invoker};
use faas_exec::pool::ContainerPool;
use faas_exec::process::ProcessExecutor;
use faas_http::{Controller, ControllerConfig};
use faas_store::MemoryStore;

const KEY: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

fn report(what: &str, mut v: Vec<Duration>) {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize];
    println!(
        "{what:<28} n={} p50={:?} p90={:?} p99={:?}",
        v.len(),
        p(0.5),
        p(0.9),
        p(0.99)
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let exec = ProcessExecutor::detect().expect("node on PATH");
    let manifest = exec.runtimes();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let key = AuthKey::parse(KEY).unwrap();
    store
        .put_subject(
            &Subject::single(EntityName::new("guest").unwrap(), &key),
            None,
        )
        .await
        .unwrap();
    let bus: Arc<dyn MessageBus> = Arc::new(InProcessBus::new());
    let scheduler: Arc<dyn Scheduler> = Arc::new(ShardingScheduler::new());
    let auth = Arc::new(StoreAuthenticator::new(Arc::clone(&store)));
    let mut limits = faas_core::SystemLimits::default();
    limits.invocations_per_minute = u32::MAX;
    let controller = Controller::new(
        ControllerConfig::default()
            .with_manifest(manifest)
            .with_limits(limits),
        Arc::clone(&store),
        Arc::clone(&bus),
        Arc::clone(&scheduler),
        auth,
    )
    .unwrap();
    controller.start().await.unwrap();
    let icfg = InvokerConfig::new(InvokerInstanceId::new(0, 2048))
        .with_health_interval(Duration::from_millis(50));
    let pool = ContainerPool::new(Arc::new(exec), icfg.pool_config()).unwrap();
    let svc = InvokerService::new(icfg, Arc::clone(&store), Arc::clone(&bus), pool);
    let _handle = run_invoker(svc.clone()).await.unwrap();
    while !scheduler.invokers().iter().any(|h| h.state.is_usable()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let router = controller.router();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(KEY)
    );
    let req = |method: Method, uri: &str, body: &'static str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let res = router
        .clone()
        .oneshot(req(
            Method::PUT,
            "/api/v1/namespaces/_/actions/echo",
            r#"{"exec":{"kind":"nodejs:default","code":"function main(a){return a}"},"limits":{"logs":0}}"#,
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let mut through = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let t = Instant::now();
        let res = router
            .clone()
            .oneshot(req(
                Method::POST,
                "/api/v1/namespaces/_/actions/echo?blocking=true&result=true",
                r#"{"x":1}"#,
            ))
            .await
            .unwrap();
        let status = res.status();
        let _ = res.into_body().collect().await.unwrap();
        assert_eq!(status, StatusCode::OK);
        if i >= 50 {
            through.push(t.elapsed());
        }
    }
    report("controller (blocking)", through);

    let identity = store.find_identity(&key).await.unwrap();
    let action = store
        .get_entity(&faas_core::FullyQualifiedName::resolve("echo", "guest").unwrap())
        .await
        .unwrap();
    let mut direct = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let msg = ActivationMessage {
            transid: TransactionId::new("bench"),
            action: ActionRef {
                path: action.value.namespace().clone(),
                name: action.value.name().clone(),
                version: Default::default(),
                binding: None,
            },
            revision: Some(action.rev.0.clone()),
            user: identity.clone(),
            activation_id: ActivationId::generate(),
            root_controller_index: ControllerInstanceId::new("9"),
            blocking: true,
            content: Some(serde_json::json!({"x": 1})),
            init_args: vec![],
            locked_args: Default::default(),
            cause: None,
            trace_context: None,
        };
        let t = Instant::now();
        svc.invoke(msg).await.unwrap();
        if i >= 50 {
            direct.push(t.elapsed());
        }
    }
    report("invoker service alone", direct);
}
