//! Shared test setup: a controller over the in-memory store, the in-process bus, the sharding
//! scheduler and the store authenticator, with a `guest` and an `other` namespace.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use base64::Engine;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use faas_bus::inproc::InProcessBus;
use faas_core::identity::Subject;
use faas_core::sharding::ShardingScheduler;
use faas_core::{AuthKey, EntityName, MessageBus, Scheduler, Store, StoreAuthenticator};
use faas_http::{Controller, ControllerConfig};
use faas_store::memory::MemoryStore;

pub mod scripted;
#[allow(unused_imports)]
pub use scripted::*;

/// OpenWhisk's well-known guest key.
pub const GUEST: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
/// A second user.
pub const OTHER: &str = "789c46b1-71f6-4ed5-8c54-816aa4f8c502:abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// The bound of every wait of a test.
pub const WAIT: Duration = Duration::from_secs(20);

/// Bounds every wait of a test.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Waits, bounded by [`WAIT`], until `check` holds.
pub async fn until(what: &str, check: impl AsyncFnMut() -> bool) {
    faas_core::testkit::wait_until(what, WAIT, check).await;
}

/// Waits, bounded by [`WAIT`], until `check` yields a value; that value.
pub async fn found<T>(what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
    faas_core::testkit::wait_for(what, WAIT, check).await
}

/// The activation record `id` of the caller (GET, guest), once stored; 404 until then.
pub async fn stored_record(router: &Router, id: &str) -> Reply {
    found("activation record", async || {
        let r = get(router, &format!("{ACTIVATIONS}/{id}")).await;
        if r.status == StatusCode::OK {
            return Some(r);
        }
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        None
    })
    .await
}

/// Runs `svc` and waits until the controller sees an invoker it may schedule on.
pub async fn start_invoker(
    env: &Env,
    svc: faas_exec::invoker::InvokerService,
) -> faas_exec::invoker::InvokerHandle {
    let invoker = within("invoker start", faas_exec::invoker::run_invoker(svc))
        .await
        .unwrap();
    until("invoker healthy", async || {
        env.scheduler.invokers().iter().any(|h| h.state.is_usable())
    })
    .await;
    invoker
}

pub struct Env {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn MessageBus>,
    pub scheduler: Arc<dyn Scheduler>,
    pub sharding: Arc<ShardingScheduler>,
    pub controller: Controller,
    pub router: Router,
}

pub async fn env() -> Env {
    env_with(ControllerConfig::default()).await
}

pub async fn env_with(config: ControllerConfig) -> Env {
    env_over(config, Arc::new(InProcessBus::new())).await
}

/// As [`env_with`], on `bus` (which may hold what an earlier controller left).
pub async fn env_over(config: ControllerConfig, bus: Arc<dyn MessageBus>) -> Env {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    for (name, key) in [("guest", GUEST), ("other", OTHER)] {
        let key = AuthKey::parse(key).unwrap();
        store
            .put_subject(&Subject::single(EntityName::new(name).unwrap(), &key), None)
            .await
            .unwrap();
    }
    env_on(config, store, bus).await
}

/// An env over an empty store: no subjects (create users through the admin API).
#[allow(dead_code)]
pub async fn env_bare(config: ControllerConfig) -> Env {
    env_on(
        config,
        Arc::new(MemoryStore::new()),
        Arc::new(InProcessBus::new()),
    )
    .await
}

/// An env over `store` and `bus` as given (subjects included).
pub async fn env_on(
    config: ControllerConfig,
    store: Arc<dyn Store>,
    bus: Arc<dyn MessageBus>,
) -> Env {
    let sharding = Arc::new(ShardingScheduler::new());
    let scheduler: Arc<dyn Scheduler> = Arc::clone(&sharding) as Arc<dyn Scheduler>;
    let auth = Arc::new(StoreAuthenticator::new(Arc::clone(&store)));
    let controller = Controller::new(
        config,
        Arc::clone(&store),
        Arc::clone(&bus),
        Arc::clone(&scheduler),
        auth,
    )
    .unwrap();
    within("start", controller.start()).await.unwrap();
    let router = controller.router();
    Env {
        store,
        bus,
        scheduler,
        sharding,
        controller,
        router,
    }
}

pub fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} (status {})",
                String::from_utf8_lossy(&self.body),
                self.status
            )
        })
    }
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {}", self.json()))
            .to_string()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The error body has the OpenWhisk shape and its code is the transaction id.
    pub fn assert_error(&self, status: StatusCode, message: &str) {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let js = self.json();
        assert_eq!(js["error"], message, "body: {js}");
        let code = js["code"].as_str().expect("code");
        assert_eq!(Some(code), self.header("x-request-id"));
        assert_eq!(
            js.as_object().unwrap().len(),
            2,
            "only error and code: {js}"
        );
    }
}

pub async fn call(router: &Router, req: Request<Body>) -> Reply {
    let res = within("request", router.clone().oneshot(req))
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = within("body", res.into_body().collect())
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

pub fn request(method: Method, uri: &str, key: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        b = b.header("authorization", basic(k));
    }
    match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&v).unwrap()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

pub async fn get(router: &Router, uri: &str) -> Reply {
    call(router, request(Method::GET, uri, Some(GUEST), None)).await
}

pub async fn put(router: &Router, uri: &str, body: Value) -> Reply {
    call(router, request(Method::PUT, uri, Some(GUEST), Some(body))).await
}

pub async fn post(router: &Router, uri: &str, body: Option<Value>) -> Reply {
    call(router, request(Method::POST, uri, Some(GUEST), body)).await
}

pub async fn delete(router: &Router, uri: &str) -> Reply {
    call(router, request(Method::DELETE, uri, Some(GUEST), None)).await
}

pub const ACTIONS: &str = "/api/v1/namespaces/_/actions";
pub const ACTIVATIONS: &str = "/api/v1/namespaces/_/activations";

pub fn node_action(code: &str) -> Value {
    serde_json::json!({"exec": {"kind": "nodejs:default", "code": code}})
}
