//! A third-party `Store` adapter, proven and plugged in.
//!
//! `CountingStore` wraps any store (here the in-memory one) and counts the calls made to it,
//! by operation: the shape of a logging, caching or metrics wrapper, and of a new backend
//! (whose methods would talk to Redis or Postgres instead of delegating). It is
//!
//! 1. proven by the `Store` conformance suite (`cargo test -p faas-platform --example
//!    custom-store` runs `faas_core::store_conformance!`, one test per case);
//! 2. registered under its own scheme, `counting:`, next to the built-in adapters;
//! 3. plugged into a whole platform by URL: the same `--store counting:` flag the
//!    `faas-platform` binary would take when started with `faas_platform::run(adapters)`.
//!
//! Run: `cargo run -p faas-platform --example custom-store` (needs `node` on `PATH`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use clap::Parser;
use faas_core::store::{ActivationQuery, Document, ListQuery, Revision, Versioned};
use faas_core::{
    Activation, ActivationId, AuthKey, Entity, EntityKind, EntityName, EntityPath,
    FullyQualifiedName, Identity, Result, Store, Subject, UserLimits,
};
use faas_platform::config::{Cli, Command, NodeConfig};
use faas_platform::{Adapters, Platform};
use serde_json::Value;

/// Counts the calls made to `inner`, by operation.
#[derive(Debug, Default)]
pub struct CountingStore<S> {
    inner: S,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl<S: Store> CountingStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            calls: Mutex::default(),
        }
    }

    /// The calls so far, by operation.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Counts one call of `op` and hands out the wrapped store.
    fn on(&self, op: &'static str) -> &S {
        *self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(op)
            .or_default() += 1;
        &self.inner
    }
}

// Every method of the trait: count, then delegate. A new backend implements the same list.
#[async_trait]
impl<S: Store> Store for CountingStore<S> {
    async fn get_entity(&self, id: &FullyQualifiedName) -> Result<Versioned<Entity>> {
        self.on("get_entity").get_entity(id).await
    }
    async fn put_entity(&self, entity: &Entity, rev: Option<&Revision>) -> Result<Revision> {
        self.on("put_entity").put_entity(entity, rev).await
    }
    async fn delete_entity(&self, id: &FullyQualifiedName, rev: &Revision) -> Result<()> {
        self.on("delete_entity").delete_entity(id, rev).await
    }
    async fn list_entities(
        &self,
        path: &EntityPath,
        kind: EntityKind,
        query: ListQuery,
    ) -> Result<Vec<Entity>> {
        self.on("list_entities")
            .list_entities(path, kind, query)
            .await
    }
    async fn count_entities(&self, path: &EntityPath, kind: EntityKind) -> Result<u64> {
        self.on("count_entities").count_entities(path, kind).await
    }
    async fn put_activation(&self, activation: &Activation) -> Result<bool> {
        self.on("put_activation").put_activation(activation).await
    }
    async fn get_activation(&self, ns: &EntityName, id: &ActivationId) -> Result<Activation> {
        self.on("get_activation").get_activation(ns, id).await
    }
    async fn list_activations(
        &self,
        ns: &EntityName,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>> {
        self.on("list_activations")
            .list_activations(ns, query)
            .await
    }
    async fn count_activations(&self, ns: &EntityName, query: &ActivationQuery) -> Result<u64> {
        self.on("count_activations")
            .count_activations(ns, query)
            .await
    }
    async fn get_subject(&self, subject: &str) -> Result<Versioned<Subject>> {
        self.on("get_subject").get_subject(subject).await
    }
    async fn put_subject(&self, subject: &Subject, rev: Option<&Revision>) -> Result<Revision> {
        self.on("put_subject").put_subject(subject, rev).await
    }
    async fn delete_subject(&self, subject: &str, rev: &Revision) -> Result<()> {
        self.on("delete_subject").delete_subject(subject, rev).await
    }
    async fn list_subjects(&self, ns: &EntityName) -> Result<Vec<Subject>> {
        self.on("list_subjects").list_subjects(ns).await
    }
    async fn list_namespaces(&self) -> Result<Vec<EntityName>> {
        self.on("list_namespaces").list_namespaces().await
    }
    async fn find_identity(&self, key: &AuthKey) -> Result<Identity> {
        self.on("find_identity").find_identity(key).await
    }
    async fn identity_for_namespace(&self, ns: &EntityName) -> Result<Identity> {
        self.on("identity_for_namespace")
            .identity_for_namespace(ns)
            .await
    }
    async fn get_limits(&self, ns: &EntityName) -> Result<UserLimits> {
        self.on("get_limits").get_limits(ns).await
    }
    async fn put_limits(&self, ns: &EntityName, limits: &UserLimits) -> Result<()> {
        self.on("put_limits").put_limits(ns, limits).await
    }
    async fn delete_limits(&self, ns: &EntityName) -> Result<()> {
        self.on("delete_limits").delete_limits(ns).await
    }
    async fn get_document(&self, collection: &str, id: &str) -> Result<Versioned<Value>> {
        self.on("get_document").get_document(collection, id).await
    }
    async fn put_document(
        &self,
        collection: &str,
        id: &str,
        value: &Value,
        rev: Option<&Revision>,
    ) -> Result<Revision> {
        self.on("put_document")
            .put_document(collection, id, value, rev)
            .await
    }
    async fn delete_document(&self, collection: &str, id: &str, rev: &Revision) -> Result<()> {
        self.on("delete_document")
            .delete_document(collection, id, rev)
            .await
    }
    async fn list_documents(&self, collection: &str) -> Result<Vec<Document>> {
        self.on("list_documents").list_documents(collection).await
    }
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    // The store every `counting:` URL makes; kept here to read its counts at the end.
    let store = Arc::new(CountingStore::new(faas_store::MemoryStore::new()));

    // 2. One registration line (a real adapter would read its settings from `url.url`).
    let mut adapters = Adapters::default();
    let made = Arc::clone(&store);
    adapters.stores.register("counting", move |_url| {
        let store = Arc::clone(&made);
        async move { Ok(store as Arc<dyn Store>) }
    });

    // 3. The binary's own command line and settings, with `--store counting:`.
    let argv = ["faas-platform", "standalone", "--store", "counting:"];
    let Command::Standalone(args) = Cli::try_parse_from(argv)?.command else {
        return Err("not `standalone`".into());
    };
    let mut config = NodeConfig::resolve(&args)?;
    config.listen = "127.0.0.1:0".parse()?;
    config.catalog = false;
    let running = Platform::builder()
        .config(config)
        .adapters(adapters)
        .start()
        .await?;
    println!("platform on http://{} over `counting:`", running.addr);
    running.shutdown().await;

    // Starting wrote the guest's and `whisk.system`'s subjects through the wrapper.
    let calls = store.calls();
    println!("store calls: {calls:?}");
    if calls.get("put_subject").copied().unwrap_or(0) == 0 {
        return Err("the platform did not use the `counting:` store".into());
    }
    Ok(())
}

// 1. The conformance suite: one `#[tokio::test]` per case of the `Store` contract.
#[cfg(test)]
mod store_conformance {
    use super::*;

    async fn setup() -> Option<Arc<dyn Store>> {
        Some(Arc::new(CountingStore::new(faas_store::MemoryStore::new())))
    }
    faas_core::store_conformance!(setup);
}
