//! `MemoryStore` against the shared conformance suites of `faas-core`.

use std::sync::Arc;
use std::time::Duration;

use faas_core::{Authenticator, Store, StoreAuthenticator};
use faas_store::MemoryStore;

/// One store per case, as a fresh process would have.
mod memory_store {
    use super::*;

    async fn setup() -> Option<Arc<dyn Store>> {
        Some(Arc::new(MemoryStore::new()))
    }
    faas_core::store_conformance!(setup);
}

/// One store shared by every case, as a shared server would be: cases must not see each
/// other's data.
mod memory_store_shared {
    use super::*;
    use std::sync::OnceLock;

    static SHARED: OnceLock<Arc<MemoryStore>> = OnceLock::new();

    async fn setup() -> Option<Arc<MemoryStore>> {
        Some(Arc::clone(
            SHARED.get_or_init(|| Arc::new(MemoryStore::new())),
        ))
    }
    faas_core::store_conformance!(setup);
}

/// A store that evicts activations still keeps the contract while under its bound.
mod memory_store_bounded {
    use super::*;

    async fn setup() -> Option<Arc<dyn Store>> {
        Some(Arc::new(MemoryStore::new().with_max_activations(1_000)))
    }
    faas_core::store_conformance!(setup);
}

/// `StoreAuthenticator` over `MemoryStore`.
mod store_authenticator {
    use super::*;

    async fn setup() -> Option<(Arc<dyn Authenticator>, Arc<dyn Store>)> {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let auth = StoreAuthenticator::new(Arc::clone(&store));
        Some((Arc::new(auth), store))
    }
    faas_core::authenticator_conformance!(setup);
}

/// `StoreAuthenticator` over a `CachedStore` (the controllers' set-up over a shared store):
/// the one identity cache is invalidated by the writes, so revocation is immediate.
mod store_authenticator_cached {
    use super::*;

    async fn setup() -> Option<(Arc<dyn Authenticator>, Arc<dyn Store>)> {
        let store: Arc<dyn Store> = Arc::new(faas_store::CachedStore::new(MemoryStore::new()));
        let auth = StoreAuthenticator::new(Arc::clone(&store));
        Some((Arc::new(auth), store))
    }
    faas_core::authenticator_conformance!(setup);
}

/// The suites can fail: an authenticator that passes store errors through (so a bad key is a
/// 404, not a 401) must be caught, and so must a store that overwrites on create.
mod suites_catch_broken_adapters {
    use super::*;
    use async_trait::async_trait;
    use faas_core::entity::Entity;
    use faas_core::identity::{AuthKey, Identity};
    use faas_core::store::{Revision, Versioned};
    use faas_core::testkit;

    #[derive(Debug)]
    struct PassThrough(Arc<dyn Store>);

    #[async_trait]
    impl Authenticator for PassThrough {
        async fn authenticate(&self, key: &AuthKey) -> faas_core::Result<Identity> {
            self.0.find_identity(key).await
        }
    }

    /// Forwards everything, but a create replaces an existing document.
    #[derive(Debug, Default)]
    struct Overwriting(MemoryStore);

    #[async_trait]
    impl Store for Overwriting {
        async fn get_entity(
            &self,
            id: &faas_core::FullyQualifiedName,
        ) -> faas_core::Result<Versioned<Entity>> {
            self.0.get_entity(id).await
        }
        async fn put_entity(
            &self,
            entity: &Entity,
            rev: Option<&Revision>,
        ) -> faas_core::Result<Revision> {
            let id = faas_core::FullyQualifiedName::new(
                entity.namespace().clone(),
                entity.name().clone(),
            );
            match (rev, self.0.get_entity(&id).await) {
                (None, Ok(current)) => self.0.put_entity(entity, Some(&current.rev)).await,
                _ => self.0.put_entity(entity, rev).await,
            }
        }
        async fn delete_entity(
            &self,
            id: &faas_core::FullyQualifiedName,
            rev: &Revision,
        ) -> faas_core::Result<()> {
            self.0.delete_entity(id, rev).await
        }
        async fn list_entities(
            &self,
            path: &faas_core::EntityPath,
            kind: faas_core::entity::EntityKind,
            query: faas_core::store::ListQuery,
        ) -> faas_core::Result<Vec<Entity>> {
            self.0.list_entities(path, kind, query).await
        }
        async fn count_entities(
            &self,
            path: &faas_core::EntityPath,
            kind: faas_core::entity::EntityKind,
        ) -> faas_core::Result<u64> {
            self.0.count_entities(path, kind).await
        }
        async fn put_activation(&self, a: &faas_core::Activation) -> faas_core::Result<bool> {
            self.0.put_activation(a).await
        }
        async fn get_activation(
            &self,
            ns: &faas_core::EntityName,
            id: &faas_core::ActivationId,
        ) -> faas_core::Result<faas_core::Activation> {
            self.0.get_activation(ns, id).await
        }
        async fn list_activations(
            &self,
            ns: &faas_core::EntityName,
            q: &faas_core::store::ActivationQuery,
        ) -> faas_core::Result<Vec<faas_core::Activation>> {
            self.0.list_activations(ns, q).await
        }
        async fn count_activations(
            &self,
            ns: &faas_core::EntityName,
            q: &faas_core::store::ActivationQuery,
        ) -> faas_core::Result<u64> {
            self.0.count_activations(ns, q).await
        }
        async fn get_subject(&self, s: &str) -> faas_core::Result<Versioned<faas_core::Subject>> {
            self.0.get_subject(s).await
        }
        async fn put_subject(
            &self,
            s: &faas_core::Subject,
            rev: Option<&Revision>,
        ) -> faas_core::Result<Revision> {
            // The same fault as for entities: a create replaces an existing record.
            match (rev, self.0.get_subject(&s.subject).await) {
                (None, Ok(current)) => self.0.put_subject(s, Some(&current.rev)).await,
                _ => self.0.put_subject(s, rev).await,
            }
        }
        async fn delete_subject(&self, s: &str, rev: &Revision) -> faas_core::Result<()> {
            self.0.delete_subject(s, rev).await
        }
        async fn list_subjects(
            &self,
            ns: &faas_core::EntityName,
        ) -> faas_core::Result<Vec<faas_core::Subject>> {
            self.0.list_subjects(ns).await
        }
        async fn list_namespaces(&self) -> faas_core::Result<Vec<faas_core::EntityName>> {
            self.0.list_namespaces().await
        }
        async fn find_identity(&self, key: &AuthKey) -> faas_core::Result<Identity> {
            self.0.find_identity(key).await
        }
        async fn identity_for_namespace(
            &self,
            ns: &faas_core::EntityName,
        ) -> faas_core::Result<Identity> {
            self.0.identity_for_namespace(ns).await
        }
        async fn get_limits(
            &self,
            ns: &faas_core::EntityName,
        ) -> faas_core::Result<faas_core::UserLimits> {
            self.0.get_limits(ns).await
        }
        async fn put_limits(
            &self,
            ns: &faas_core::EntityName,
            limits: &faas_core::UserLimits,
        ) -> faas_core::Result<()> {
            self.0.put_limits(ns, limits).await
        }
        async fn delete_limits(&self, ns: &faas_core::EntityName) -> faas_core::Result<()> {
            self.0.delete_limits(ns).await
        }

        async fn get_document(
            &self,
            collection: &str,
            id: &str,
        ) -> faas_core::Result<faas_core::store::Versioned<serde_json::Value>> {
            self.0.get_document(collection, id).await
        }
        async fn put_document(
            &self,
            collection: &str,
            id: &str,
            value: &serde_json::Value,
            rev: Option<&faas_core::store::Revision>,
        ) -> faas_core::Result<faas_core::store::Revision> {
            self.0.put_document(collection, id, value, rev).await
        }
        async fn delete_document(
            &self,
            collection: &str,
            id: &str,
            rev: &faas_core::store::Revision,
        ) -> faas_core::Result<()> {
            self.0.delete_document(collection, id, rev).await
        }
        async fn list_documents(
            &self,
            collection: &str,
        ) -> faas_core::Result<Vec<faas_core::store::Document>> {
            self.0.list_documents(collection).await
        }
    }

    /// Whether `case` panics (fails), run on its own task so the panic is contained.
    async fn fails<F>(case: F) -> bool
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let run = tokio::spawn(case);
        match tokio::time::timeout(Duration::from_secs(10), run).await {
            Ok(joined) => joined.is_err_and(|e| e.is_panic()),
            Err(_) => panic!("case did not finish"),
        }
    }

    #[tokio::test]
    async fn auth_suite_rejects_not_found_for_unauthenticated() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let auth = PassThrough(Arc::clone(&store));
        // The passing case still passes, so the harness itself is sound.
        let (a, s) = (Arc::new(auth), Arc::clone(&store));
        assert!(
            !fails(async move { testkit::auth::valid_key_yields_identity(&*a, &*s).await }).await
        );
        let (a, s) = (
            Arc::new(PassThrough(Arc::clone(&store))),
            Arc::clone(&store),
        );
        assert!(
            fails(async move { testkit::auth::wrong_key_unauthenticated(&*a, &*s).await }).await
        );
        let (a, s) = (
            Arc::new(PassThrough(Arc::clone(&store))),
            Arc::clone(&store),
        );
        assert!(
            fails(async move { testkit::auth::blocked_subject_unauthenticated(&*a, &*s).await })
                .await
        );
    }

    /// Caches every identity it ever returned, forever (the old `StoreAuthenticator`).
    #[derive(Debug)]
    struct NeverForgets {
        store: Arc<dyn Store>,
        seen: std::sync::Mutex<std::collections::HashMap<AuthKey, Identity>>,
    }

    #[async_trait]
    impl Authenticator for NeverForgets {
        async fn authenticate(&self, key: &AuthKey) -> faas_core::Result<Identity> {
            if let Some(i) = self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(key)
            {
                return Ok(i.clone());
            }
            let i = StoreAuthenticator::new(Arc::clone(&self.store))
                .authenticate(key)
                .await?;
            self.seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key.clone(), i.clone());
            Ok(i)
        }
    }

    #[tokio::test]
    async fn auth_suite_rejects_stale_caches() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let auth = Arc::new(NeverForgets {
            store: Arc::clone(&store),
            seen: Default::default(),
        });
        let (a, s) = (Arc::clone(&auth), Arc::clone(&store));
        assert!(
            !fails(async move { testkit::auth::valid_key_yields_identity(&*a, &*s).await }).await
        );
        assert!(
            fails(
                async move { testkit::auth::revocation_takes_effect_at_once(&*auth, &*store).await }
            )
            .await
        );
    }

    #[tokio::test]
    async fn store_suite_rejects_overwriting_creates() {
        let store = Arc::new(Overwriting::default());
        let s = Arc::clone(&store);
        assert!(
            fails(async move { testkit::store::create_existing_id_already_exists(&*s).await })
                .await
        );
        let s = Arc::clone(&store);
        assert!(
            fails(async move { testkit::store::concurrent_creates_single_winner(&*s).await }).await
        );
        let s = Arc::clone(&store);
        assert!(
            fails(async move { testkit::store::subject_revisions_and_delete(&*s).await }).await
        );
        let s = Arc::clone(&store);
        assert!(
            fails(
                async move { testkit::store::concurrent_subject_creates_single_winner(&*s).await }
            )
            .await
        );
        let s = Arc::clone(&store);
        assert!(!fails(async move { testkit::store::update_with_current_rev(&*s).await }).await);
    }
}

/// A fresh directory under cargo's per-target scratch directory (`target/tmp`), kept after the
/// test: the stores of the cases are never closed, and their files go with `cargo clean`.
#[cfg(feature = "sqlite")]
fn scratch_dir() -> std::path::PathBuf {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temporary directory")
        .keep()
}

/// `SqliteStore`, one fresh file per case.
#[cfg(feature = "sqlite")]
mod sqlite_store {
    use super::*;
    use faas_store::SqliteStore;

    async fn setup() -> Option<Arc<dyn Store>> {
        let path = super::scratch_dir().join("faas.db");
        Some(Arc::new(
            SqliteStore::builder(path)
                .build()
                .await
                .expect("open the SQLite store"),
        ))
    }
    faas_core::store_conformance!(setup);
}

/// One `SqliteStore` shared by every case, as the platform shares its file: cases must not
/// see each other's data, and concurrent cases share the writer's commit groups.
#[cfg(feature = "sqlite")]
mod sqlite_store_shared {
    use super::*;
    use faas_store::SqliteStore;
    use tokio::sync::OnceCell;

    static SHARED: OnceCell<SqliteStore> = OnceCell::const_new();

    async fn setup() -> Option<Arc<dyn Store>> {
        let store = SHARED
            .get_or_init(|| async {
                SqliteStore::builder(super::scratch_dir().join("shared.db"))
                    .with_max_activations(Some(1_000))
                    .build()
                    .await
                    .expect("open the SQLite store")
            })
            .await;
        Some(Arc::new(store.clone()))
    }
    faas_core::store_conformance!(setup);
}

/// `StoreAuthenticator` over `SqliteStore`, without a cache (every lookup reads the file).
#[cfg(feature = "sqlite")]
mod sqlite_store_authenticator {
    use super::*;
    use faas_store::SqliteStore;

    async fn setup() -> Option<(Arc<dyn Authenticator>, Arc<dyn Store>)> {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::builder(super::scratch_dir().join("faas.db"))
                .build()
                .await
                .expect("open the SQLite store"),
        );
        let auth = StoreAuthenticator::new(Arc::clone(&store));
        Some((Arc::new(auth), store))
    }
    faas_core::authenticator_conformance!(setup);
}

/// The metrics wrapper keeps the contract (and records through an enabled recorder).
mod instrumented_memory_store {
    use super::*;
    use faas_core::metrics::{Event, InstrumentedStore, MetricSource, Metrics, MetricsRecorder};

    #[derive(Debug, Default)]
    struct Counting(std::sync::atomic::AtomicU64);

    impl MetricsRecorder for Counting {
        fn record(&self, event: &Event<'_>) {
            assert!(matches!(event, Event::StoreOp { .. }), "{event:?}");
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn add_source(&self, _source: Arc<dyn MetricSource>) {}
    }

    async fn setup() -> Option<Arc<dyn Store>> {
        let metrics = Metrics::new(Arc::new(Counting::default()));
        Some(Arc::new(InstrumentedStore::new(
            Arc::new(MemoryStore::new()),
            metrics,
        )))
    }
    faas_core::store_conformance!(setup);
}
