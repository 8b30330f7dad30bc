//! Liveness (`GET /health`) and readiness (`GET /ready`) of a controller: ready only while the
//! store answers, the bus consumers run, an invoker is healthy and the engine is not draining.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use http::StatusCode;
use serde_json::{Value, json};

use faas_bus::inproc::InProcessBus;
use faas_core::identity::Subject;
use faas_core::store::{ActivationQuery, Document, ListQuery, Revision, Versioned};
use faas_core::{
    Activation, ActivationId, AuthKey, Entity, EntityKind, EntityName, EntityPath, Error,
    FullyQualifiedName, Identity, Result, Store, UserLimits,
};
use faas_http::ControllerConfig;
use faas_store::memory::MemoryStore;
use support::*;

/// A store that fails every operation with `Unavailable` while `down` is set.
#[derive(Debug, Default)]
struct Switchable {
    inner: MemoryStore,
    down: AtomicBool,
}

impl Switchable {
    fn gate(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::unavailable("the store is down"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for Switchable {
    async fn get_entity(&self, id: &FullyQualifiedName) -> Result<Versioned<Entity>> {
        self.gate()?;
        self.inner.get_entity(id).await
    }
    async fn put_entity(&self, e: &Entity, rev: Option<&Revision>) -> Result<Revision> {
        self.gate()?;
        self.inner.put_entity(e, rev).await
    }
    async fn delete_entity(&self, id: &FullyQualifiedName, rev: &Revision) -> Result<()> {
        self.gate()?;
        self.inner.delete_entity(id, rev).await
    }
    async fn list_entities(
        &self,
        p: &EntityPath,
        k: EntityKind,
        q: ListQuery,
    ) -> Result<Vec<Entity>> {
        self.gate()?;
        self.inner.list_entities(p, k, q).await
    }
    async fn count_entities(&self, p: &EntityPath, k: EntityKind) -> Result<u64> {
        self.gate()?;
        self.inner.count_entities(p, k).await
    }
    async fn put_activation(&self, a: &Activation) -> Result<bool> {
        self.gate()?;
        self.inner.put_activation(a).await
    }
    async fn get_activation(&self, ns: &EntityName, id: &ActivationId) -> Result<Activation> {
        self.gate()?;
        self.inner.get_activation(ns, id).await
    }
    async fn list_activations(
        &self,
        ns: &EntityName,
        q: &ActivationQuery,
    ) -> Result<Vec<Activation>> {
        self.gate()?;
        self.inner.list_activations(ns, q).await
    }
    async fn count_activations(&self, ns: &EntityName, q: &ActivationQuery) -> Result<u64> {
        self.gate()?;
        self.inner.count_activations(ns, q).await
    }
    async fn get_subject(&self, s: &str) -> Result<Versioned<Subject>> {
        self.gate()?;
        self.inner.get_subject(s).await
    }
    async fn put_subject(&self, s: &Subject, rev: Option<&Revision>) -> Result<Revision> {
        self.gate()?;
        self.inner.put_subject(s, rev).await
    }
    async fn delete_subject(&self, s: &str, rev: &Revision) -> Result<()> {
        self.gate()?;
        self.inner.delete_subject(s, rev).await
    }
    async fn list_subjects(&self, ns: &EntityName) -> Result<Vec<Subject>> {
        self.gate()?;
        self.inner.list_subjects(ns).await
    }
    async fn list_namespaces(&self) -> Result<Vec<EntityName>> {
        self.gate()?;
        self.inner.list_namespaces().await
    }
    async fn find_identity(&self, key: &AuthKey) -> Result<Identity> {
        self.gate()?;
        self.inner.find_identity(key).await
    }
    async fn identity_for_namespace(&self, ns: &EntityName) -> Result<Identity> {
        self.gate()?;
        self.inner.identity_for_namespace(ns).await
    }
    async fn get_limits(&self, ns: &EntityName) -> Result<UserLimits> {
        self.gate()?;
        self.inner.get_limits(ns).await
    }
    async fn put_limits(&self, ns: &EntityName, l: &UserLimits) -> Result<()> {
        self.gate()?;
        self.inner.put_limits(ns, l).await
    }
    async fn delete_limits(&self, ns: &EntityName) -> Result<()> {
        self.gate()?;
        self.inner.delete_limits(ns).await
    }
    async fn get_document(&self, c: &str, id: &str) -> Result<Versioned<Value>> {
        self.gate()?;
        self.inner.get_document(c, id).await
    }
    async fn put_document(
        &self,
        c: &str,
        id: &str,
        v: &Value,
        rev: Option<&Revision>,
    ) -> Result<Revision> {
        self.gate()?;
        self.inner.put_document(c, id, v, rev).await
    }
    async fn delete_document(&self, c: &str, id: &str, rev: &Revision) -> Result<()> {
        self.gate()?;
        self.inner.delete_document(c, id, rev).await
    }
    async fn list_documents(&self, c: &str) -> Result<Vec<Document>> {
        self.gate()?;
        self.inner.list_documents(c).await
    }
}

async fn unauthenticated_get(router: &axum::Router, uri: &str) -> Reply {
    call(router, request(http::Method::GET, uri, None, None)).await
}

#[tokio::test]
async fn health_is_live_and_ready_needs_store_bus_and_an_invoker() {
    let store = Arc::new(Switchable::default());
    let env = env_on(
        ControllerConfig::default(),
        Arc::clone(&store) as Arc<dyn Store>,
        Arc::new(InProcessBus::new()),
    )
    .await;

    let r = unauthenticated_get(&env.router, "/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "ok"}));

    // No invoker yet.
    let r = unauthenticated_get(&env.router, "/ready").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json(),
        json!({"ready": false, "store": "ok", "bus": "ok", "invokers": "0/0 healthy", "engine": "running"})
    );

    let _invoker = FakeInvoker::start(&env).await;
    let r = unauthenticated_get(&env.router, "/ready").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(r.json()["invokers"], "1/1 healthy");

    // The store goes away: not ready (still live); it comes back: ready again.
    store.down.store(true, Ordering::SeqCst);
    let r = unauthenticated_get(&env.router, "/ready").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let why = r.json()["store"].as_str().unwrap().to_string();
    assert!(
        why.starts_with("unavailable") && why.contains("the store is down"),
        "{why}"
    );
    assert_eq!(
        unauthenticated_get(&env.router, "/health").await.status,
        StatusCode::OK
    );
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(
        unauthenticated_get(&env.router, "/ready").await.status,
        StatusCode::OK
    );

    // Draining (shutdown begun): live, not ready, so load balancers stop sending work.
    let engine = env.controller.engine().clone();
    within("drain", engine.drain(tokio::time::Instant::now())).await;
    let r = unauthenticated_get(&env.router, "/ready").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["engine"], "draining");
    assert_eq!(
        unauthenticated_get(&env.router, "/health").await.status,
        StatusCode::OK
    );
    // `/ping` keeps OpenWhisk's answer.
    let r = unauthenticated_get(&env.router, "/ping").await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (StatusCode::OK, b"pong".as_slice())
    );
}

#[tokio::test]
async fn an_engine_not_started_is_not_ready() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let key = AuthKey::parse(GUEST).unwrap();
    store
        .put_subject(
            &Subject::single(EntityName::new("guest").unwrap(), &key),
            None,
        )
        .await
        .unwrap();
    let controller = faas_http::Controller::new(
        ControllerConfig::default(),
        Arc::clone(&store),
        Arc::new(InProcessBus::new()),
        Arc::new(faas_core::sharding::ShardingScheduler::new()),
        Arc::new(faas_core::StoreAuthenticator::new(store)),
    )
    .unwrap();
    let r = controller.engine().readiness().await;
    assert!(!r.ready);
    assert_eq!(r.bus, "not started");
}

/// A consumer task that ends (here: a listener that panics on its message) makes the
/// controller not ready, `bus: "stopped"`, while it stays live.
#[tokio::test]
async fn a_stopped_consumer_makes_the_controller_not_ready() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus = Arc::new(InProcessBus::new());
    let controller = faas_http::Controller::new(
        ControllerConfig::default(),
        Arc::clone(&store),
        Arc::clone(&bus) as Arc<dyn faas_core::MessageBus>,
        Arc::new(faas_core::sharding::ShardingScheduler::new()),
        Arc::new(faas_core::StoreAuthenticator::new(Arc::clone(&store))),
    )
    .unwrap();
    controller
        .engine()
        .listen(
            "boom",
            faas_core::TopicConfig::default(),
            |_| panic!("a listener that fails on its message (expected in this test)"),
            || {},
        )
        .unwrap();
    within("start", controller.start()).await.unwrap();
    let router = controller.router();
    // Not ready only for want of an invoker: the consumers run.
    let r = unauthenticated_get(&router, "/ready").await;
    assert_eq!(r.json()["bus"], "ok", "{}", r.json());

    faas_core::MessageBus::publish(&*bus, "boom", None, bytes::Bytes::from_static(b"x"))
        .await
        .unwrap();
    until("the consumer task to end", async || {
        controller.engine().readiness().await.bus == "stopped"
    })
    .await;
    let r = unauthenticated_get(&router, "/ready").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["bus"], "stopped");
    assert_eq!(r.json()["ready"], false);
    assert_eq!(
        unauthenticated_get(&router, "/health").await.status,
        StatusCode::OK
    );
}
