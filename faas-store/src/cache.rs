//! [`CachedStore`]: OpenWhisk's entity and identity cache as a wrapper around any [`Store`].
//!
//! The controller reads an action (and the caller's identity) on every invoke; with a remote
//! store each read is a round trip. `CachedStore` answers repeated reads of entities
//! ([`get_entity`](Store::get_entity)) and identities ([`find_identity`](Store::find_identity),
//! [`identity_for_namespace`](Store::identity_for_namespace)) from memory, like OpenWhisk's
//! controller caches (5 minute expiry; OpenWhisk's
//! [`MultipleReadersSingleWriterCache`](https://github.com/apache/openwhisk/blob/master/common/scala/src/main/scala/org/apache/openwhisk/core/database/MultipleReadersSingleWriterCache.scala)). Everything else goes straight to
//! the wrapped store.
//!
//! # Consistency
//!
//! * Every write through the cache drops the entries it may change, before and after the
//!   write, so a reader of the same `CachedStore` never sees an older value than the last
//!   write it made. A read that raced with a write does not put its (possibly older) result
//!   into the cache.
//! * With a bus ([`with_bus`](CachedStore::with_bus)), every write is also announced on the
//!   `cacheInvalidation` topic as OpenWhisk's controllers announce it
//!   (`{"key":{"mainId":…,"secondaryId":…},"instanceId":"controller0"}`, OpenWhisk's
//!   [`CacheInvalidationMessage`](https://github.com/apache/openwhisk/blob/master/common/scala/src/main/scala/org/apache/openwhisk/core/database/RemoteCacheInvalidation.scala)), and
//!   announcements from other instances drop the same entries here. Own announcements are
//!   ignored. Between a write elsewhere and its announcement arriving, this cache may answer
//!   with the previous value (OpenWhisk has the same window); the expiry bounds it when a
//!   message is lost.
//! * Misses are not cached, so a created entity is visible at once.
//!
//! Announcement keys: an entity write sends its document id (`ns[/pkg]/name`) as `mainId`; a
//! subject write (create, replace, delete) sends the subject name with
//! `secondaryId: "subject"`, a limits write (set, delete) `ns/limits` with
//! `secondaryId: "limits"`. A receiver that cannot tell what a key means drops everything of
//! that kind. A subject write drops every cached identity (here and at every receiver); a
//! limits write drops the identities of that namespace.
//!
//! # One identity cache
//!
//! This is the platform's only identity cache: `faas_core::StoreAuthenticator` asks the store
//! on every request, so whatever this cache drops is gone everywhere. Revocation (a blocked or
//! deleted subject, a rotated key, changed limits) therefore reaches the controller that wrote
//! it at once, and every other controller as soon as the announcement arrives (well under a
//! second on Kafka; `faas-store/tests/cache.rs` measures it).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use faas_core::identity::{AuthKey, Subject};
//! use faas_core::names::EntityName;
//! use faas_core::Store;
//! use faas_store::{CachedStore, MemoryStore};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let cached = CachedStore::new(MemoryStore::new());
//! assert_eq!(cached.to_string(), "CachedStore(MemoryStore)");
//! let key = AuthKey::generate();
//! cached.put_subject(&Subject::single(EntityName::new("guest")?, &key), None).await?;
//! cached.find_identity(&key).await?; // from the store
//! cached.find_identity(&key).await?; // from memory
//! assert_eq!(cached.hits_and_misses(), (1, 1));
//! let store: Arc<dyn Store> = Arc::new(cached);
//! # Ok::<(), faas_core::Error>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::activation::{Activation, ActivationId};
use faas_core::bus::{Consumer, MessageBus, TopicConfig};
use faas_core::entity::{Entity, EntityKind};
use faas_core::identity::{AuthKey, Identity, Subject};
use faas_core::limits::UserLimits;
use faas_core::names::{EntityName, EntityPath, FullyQualifiedName};
use faas_core::store::{ActivationQuery, ListQuery, Revision, Store, Versioned};
use faas_core::time::{Clock, SystemClock};
use faas_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The topic invalidations travel on (OpenWhisk's name).
pub const CACHE_INVALIDATION_TOPIC: &str = "cacheInvalidation";

/// How long a cached entry lives by default (OpenWhisk: 5 minutes).
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// How many entries each cache keeps by default (OpenWhisk's identity cache: 100 000).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// A [`Store`] that caches entity and identity reads of the store it wraps; see the
/// [module documentation](self).
///
/// Its [`Display`](fmt::Display) shows the nesting: `CachedStore(CouchDbStore(…))`.
pub struct CachedStore<S: ?Sized> {
    inner: Arc<S>,
    state: Arc<CacheState>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    bus: Option<Announcer>,
}

/// Where this cache announces its writes, and the task that listens to the others.
struct Announcer {
    bus: Arc<dyn MessageBus>,
    instance: String,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Announcer {
    fn drop(&mut self) {
        if let Some(l) = &self.listener {
            l.abort();
        }
    }
}

/// One cache: a bounded [`quick_cache`] map of entries with their insertion time (read from the
/// injected [`Clock`]), and a generation that every invalidation bumps so that a read which
/// started before it does not insert its result.
///
/// When full, `quick_cache` evicts by S3-FIFO (entries read once go first, entries read again
/// stay), so a burst of one-off reads does not flush the hot identities and actions.
/// Expired entries are not served; they leave when evicted or overwritten.
struct Cache<K, V> {
    map: quick_cache::sync::Cache<K, (V, Instant)>,
    generation: AtomicU64,
    /// Orders inserts against invalidations: an insert checks the generation and inserts
    /// under it, an invalidation bumps the generation and removes under it.
    writes: Mutex<()>,
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    fn new(max: usize) -> Self {
        Self {
            map: quick_cache::sync::Cache::new(max.max(1)),
            generation: AtomicU64::new(0),
            writes: Mutex::new(()),
        }
    }

    fn set_capacity(&self, max: usize) {
        self.map.set_capacity(max.max(1) as u64);
    }

    fn get(&self, k: &K, ttl: Duration, now: Instant) -> Option<V> {
        self.map
            .get(k)
            .filter(|(_, at)| now.saturating_duration_since(*at) < ttl)
            .map(|(v, _)| v)
    }

    /// The generation to pass to [`insert`](Self::insert) after reading the store.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Inserts (stamped `now`) unless an invalidation happened since `generation` was taken.
    fn insert(&self, generation: u64, k: K, v: V, now: Instant) {
        let _w = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        self.map.insert(k, (v, now));
    }

    fn remove_where(&self, pred: impl Fn(&K, &V) -> bool) {
        let _w = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.map.retain(|k, (v, _)| !pred(k, v));
    }

    fn remove(&self, k: &K) {
        let _w = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.map.remove(k);
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The caches, shared with the listener task.
struct CacheState {
    entities: Cache<FullyQualifiedName, Versioned<Entity>>,
    by_key: Cache<AuthKey, Identity>,
    by_namespace: Cache<EntityName, Identity>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CacheState {
    fn drop_entity(&self, id: &FullyQualifiedName) {
        self.entities.remove(id);
    }

    fn drop_all_entities(&self) {
        self.entities.remove_where(|_, _| true);
    }

    fn drop_identities(&self, namespace: Option<&EntityName>) {
        match namespace {
            Some(ns) => {
                self.by_key.remove_where(|_, i| &i.namespace.name == ns);
                self.by_namespace.remove(ns);
            }
            None => {
                self.by_key.remove_where(|_, _| true);
                self.by_namespace.remove_where(|_, _| true);
            }
        }
    }

    fn hit<T>(&self, v: T) -> T {
        self.hits.fetch_add(1, Ordering::Relaxed);
        v
    }

    fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies an invalidation announced by another instance.
    fn apply(&self, msg: &InvalidationMessage) {
        match msg.key.secondary_id.as_deref() {
            None => match parse_doc_id(&msg.key.main_id) {
                Some(id) => self.drop_entity(&id),
                None => self.drop_all_entities(),
            },
            Some("limits") => {
                let ns = msg
                    .key
                    .main_id
                    .strip_suffix("/limits")
                    .and_then(|n| EntityName::new(n).ok());
                match ns {
                    Some(ns) => self.drop_identities(Some(&ns)),
                    None => self.drop_identities(None),
                }
            }
            // A subject write, or a key we do not know: drop every identity.
            Some(_) => self.drop_identities(None),
        }
    }
}

/// `ns/name` or `ns/pkg/name` as an entity id.
fn parse_doc_id(s: &str) -> Option<FullyQualifiedName> {
    let (path, name) = s.rsplit_once('/')?;
    Some(FullyQualifiedName::new(
        EntityPath::new(path).ok()?,
        EntityName::new(name).ok()?,
    ))
}

/// OpenWhisk's cache key: `{"mainId": …, "secondaryId"?: …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheKey {
    /// The document id (entities), subject name, or `ns/limits`.
    pub main_id: String,
    /// What `main_id` names when it is not an entity (`subject`, `limits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_id: Option<String>,
}

/// A message on the `cacheInvalidation` topic (OpenWhisk's `CacheInvalidationMessage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidationMessage {
    /// What changed.
    pub key: CacheKey,
    /// The announcing instance (`controller0`).
    pub instance_id: String,
}

impl<S: Store> CachedStore<S> {
    /// Caches reads of `inner`, with the default expiry and size, announcing nothing.
    pub fn new(inner: S) -> Self {
        Self::from_arc(Arc::new(inner))
    }
}

impl<S: Store + ?Sized> CachedStore<S> {
    /// Caches reads of a shared store (for example an `Arc<dyn Store>`).
    pub fn from_arc(inner: Arc<S>) -> Self {
        Self {
            inner,
            state: Arc::new(CacheState {
                entities: Cache::new(DEFAULT_MAX_ENTRIES),
                by_key: Cache::new(DEFAULT_MAX_ENTRIES),
                by_namespace: Cache::new(DEFAULT_MAX_ENTRIES),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
            ttl: DEFAULT_TTL,
            clock: Arc::new(SystemClock),
            bus: None,
        }
    }

    /// With an entry lifetime (`Duration::ZERO` caches nothing).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// With at most `n` entries per cache (entities; identities by key; by namespace).
    pub fn with_max_entries(self, n: usize) -> Self {
        self.state.entities.set_capacity(n);
        self.state.by_key.set_capacity(n);
        self.state.by_namespace.set_capacity(n);
        self
    }

    /// With the clock that stamps entries and tells when they expire (default
    /// [`SystemClock`]; tests pass a [`ManualClock`](faas_core::time::ManualClock)).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Announces this cache's writes on `bus` as `instance` (`controller0`) and drops the
    /// entries other instances announce. Creates the `cacheInvalidation` topic if needed and
    /// subscribes as group `cacheInvalidation<instance>` before returning, so every later
    /// announcement reaches it. Must be called inside a tokio runtime; the listening task ends
    /// when this store is dropped.
    pub async fn with_bus(
        mut self,
        bus: Arc<dyn MessageBus>,
        instance: impl Into<String>,
    ) -> Result<Self> {
        let instance = instance.into();
        // A restarted cache starts empty: invalidations need not outlive the process.
        let config = TopicConfig::default()
            .with_retention(Duration::from_secs(300))
            .transient();
        bus.create_topic(CACHE_INVALIDATION_TOPIC, &config).await?;
        let group = format!("{CACHE_INVALIDATION_TOPIC}{instance}");
        let consumer = bus.subscribe(CACHE_INVALIDATION_TOPIC, &group).await?;
        let listener = tokio::spawn(listen(
            consumer,
            Arc::downgrade(&self.state),
            instance.clone(),
        ));
        self.bus = Some(Announcer {
            bus,
            instance,
            listener: Some(listener),
        });
        Ok(self)
    }

    /// Announces this cache's writes on `bus` as `instance`, without listening to anyone
    /// else's: for a short-lived writer that shares the store with running controllers, such as
    /// `faas-platform admin --store … --bus …`, so that its changes reach their caches at once.
    /// Creates the `cacheInvalidation` topic if needed; subscribes to nothing.
    pub async fn with_announcer(
        mut self,
        bus: Arc<dyn MessageBus>,
        instance: impl Into<String>,
    ) -> Result<Self> {
        // A restarted cache starts empty: invalidations need not outlive the process.
        let config = TopicConfig::default()
            .with_retention(Duration::from_secs(300))
            .transient();
        bus.create_topic(CACHE_INVALIDATION_TOPIC, &config).await?;
        self.bus = Some(Announcer {
            bus,
            instance: instance.into(),
            listener: None,
        });
        Ok(self)
    }

    /// The receiving side of the invalidations of instance `instance` (see [`Invalidations`]).
    pub fn invalidations(&self, instance: impl Into<String>) -> Invalidations {
        Invalidations {
            state: Arc::downgrade(&self.state),
            instance: instance.into(),
        }
    }

    /// The wrapped store.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Entries held now: (entities, identities by key, identities by namespace).
    pub fn len(&self) -> (usize, usize, usize) {
        (
            self.state.entities.len(),
            self.state.by_key.len(),
            self.state.by_namespace.len(),
        )
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0)
    }

    /// Reads answered from the cache, and reads that went to the wrapped store.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.state.hits.load(Ordering::Relaxed),
            self.state.misses.load(Ordering::Relaxed),
        )
    }

    /// A read through `cache`: from memory while the entry is fresh, else `read`, whose result
    /// is kept unless an invalidation happened meanwhile. Misses are not cached.
    async fn read_through<K, V>(
        &self,
        cache: &Cache<K, V>,
        key: &K,
        read: impl Future<Output = Result<V>> + Send,
    ) -> Result<V>
    where
        K: Eq + Hash + Clone,
        V: Clone,
    {
        let s = &self.state;
        if let Some(v) = cache.get(key, self.ttl, self.clock.now()) {
            return Ok(s.hit(v));
        }
        s.miss();
        let generation = cache.generation();
        let v = read.await?;
        if !self.ttl.is_zero() {
            cache.insert(generation, key.clone(), v.clone(), self.clock.now());
        }
        Ok(v)
    }

    /// Announces `key` to the other instances (a failure to announce is logged, not returned:
    /// the write itself succeeded, and the expiry bounds the staleness elsewhere).
    async fn announce(&self, key: CacheKey) {
        let Some(a) = &self.bus else { return };
        let msg = InvalidationMessage {
            key,
            instance_id: a.instance.clone(),
        };
        let payload = match serde_json::to_vec(&msg) {
            Ok(p) => Bytes::from(p),
            Err(_) => return,
        };
        if let Err(e) = a.bus.publish(CACHE_INVALIDATION_TOPIC, None, payload).await {
            tracing::warn!(error = %e, key = %msg.key.main_id, "cache: invalidation not announced");
        }
    }
}

impl<S: Store + ?Sized> CachedStore<S> {
    /// Runs a subject write: drops every identity before and after it (a subject may gain or
    /// lose namespaces and keys, and the cache cannot tell which entries were its), and
    /// announces it unless it surely failed.
    async fn subject_write<T>(
        &self,
        subject: &str,
        write: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.state.drop_identities(None);
        let r = write.await;
        self.state.drop_identities(None);
        if r.is_ok() || r.as_ref().is_err_and(Error::is_retryable) {
            self.announce(CacheKey {
                main_id: subject.to_string(),
                secondary_id: Some("subject".into()),
            })
            .await;
        }
        r
    }

    /// Runs a limits write: drops the namespace's identities before and after it, and
    /// announces it unless it surely failed.
    async fn limits_write(
        &self,
        namespace: &EntityName,
        write: impl std::future::Future<Output = Result<()>>,
    ) -> Result<()> {
        self.state.drop_identities(Some(namespace));
        let r = write.await;
        self.state.drop_identities(Some(namespace));
        if r.is_ok() || r.as_ref().is_err_and(Error::is_retryable) {
            self.announce(CacheKey {
                main_id: format!("{namespace}/limits"),
                secondary_id: Some("limits".into()),
            })
            .await;
        }
        r
    }
}

/// Receives other instances' announcements until the cache is gone.
/// Applies one message of `cacheInvalidation` to `state` (ignoring `instance`'s own).
fn on_invalidation(state: &CacheState, instance: &str, payload: &[u8]) {
    match serde_json::from_slice::<InvalidationMessage>(payload) {
        Ok(msg) if msg.instance_id == instance => {}
        Ok(msg) => state.apply(&msg),
        Err(e) => {
            tracing::warn!(error = %e, "cache: unreadable invalidation message; dropping all entries");
            state.drop_all_entities();
            state.drop_identities(None);
        }
    }
}

/// The receiving side of a [`CachedStore`]'s invalidations, for a process that consumes
/// `cacheInvalidation` itself (one consumer for all its topics) instead of letting the store
/// subscribe ([`CachedStore::with_bus`]). Pair it with
/// [`with_announcer`](CachedStore::with_announcer) under the same instance name. Holds the
/// caches weakly: once the store is dropped, it does nothing.
#[derive(Debug, Clone)]
pub struct Invalidations {
    state: Weak<CacheState>,
    instance: String,
}

impl Invalidations {
    /// Applies one message of the `cacheInvalidation` topic (this instance's own are ignored;
    /// an unreadable one drops every entry).
    pub fn apply(&self, payload: &[u8]) {
        if let Some(state) = self.state.upgrade() {
            on_invalidation(&state, &self.instance, payload);
        }
    }

    /// Says that announcements may have been missed (the bus failed): drops every entry.
    pub fn missed(&self) {
        if let Some(state) = self.state.upgrade() {
            state.drop_all_entities();
            state.drop_identities(None);
        }
    }
}

async fn listen(consumer: Arc<dyn Consumer>, state: Weak<CacheState>, instance: String) {
    loop {
        let delivery = consumer.recv().await;
        let Some(state) = state.upgrade() else {
            return;
        };
        match delivery {
            Ok(d) => {
                on_invalidation(&state, &instance, &d.payload);
                if let Err(e) = consumer.commit(&d).await {
                    tracing::debug!(error = %e, "cache: commit of an invalidation failed");
                }
            }
            Err(e) => {
                // Announcements may have been missed: forget everything, then try again.
                tracing::warn!(error = %e, "cache: invalidation topic failed; dropping all entries");
                state.drop_all_entities();
                state.drop_identities(None);
                drop(state);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

impl<S: ?Sized + fmt::Debug> fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStore")
            .field("inner", &self.inner)
            .field("ttl", &self.ttl)
            .field("entities", &self.state.entities.len())
            .field("identities", &self.state.by_key.len())
            .field("instance", &self.bus.as_ref().map(|a| &a.instance))
            .finish()
    }
}

impl<S: ?Sized + fmt::Display> fmt::Display for CachedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CachedStore({})", self.inner)
    }
}

fn entity_key(id: &FullyQualifiedName) -> CacheKey {
    CacheKey {
        main_id: id.doc_id(),
        secondary_id: None,
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: Store + ?Sized> Store for CachedStore<S> {
    async fn get_entity(&self, id: &FullyQualifiedName) -> Result<Versioned<Entity>> {
        self.read_through(&self.state.entities, id, self.inner.get_entity(id))
            .await
    }

    async fn put_entity(&self, entity: &Entity, rev: Option<&Revision>) -> Result<Revision> {
        let id = FullyQualifiedName::new(entity.namespace().clone(), entity.name().clone());
        self.state.drop_entity(&id);
        let r = self.inner.put_entity(entity, rev).await;
        self.state.drop_entity(&id);
        // A failed write changed nothing, unless its answer was lost; announce both kinds.
        if r.is_ok() || r.as_ref().is_err_and(Error::is_retryable) {
            self.announce(entity_key(&id)).await;
        }
        r
    }

    async fn delete_entity(&self, id: &FullyQualifiedName, rev: &Revision) -> Result<()> {
        self.state.drop_entity(id);
        let r = self.inner.delete_entity(id, rev).await;
        self.state.drop_entity(id);
        if r.is_ok() || r.as_ref().is_err_and(Error::is_retryable) {
            self.announce(entity_key(id)).await;
        }
        r
    }

    async fn list_entities(
        &self,
        path: &EntityPath,
        kind: EntityKind,
        query: ListQuery,
    ) -> Result<Vec<Entity>> {
        self.inner.list_entities(path, kind, query).await
    }

    async fn count_entities(&self, path: &EntityPath, kind: EntityKind) -> Result<u64> {
        self.inner.count_entities(path, kind).await
    }

    async fn put_activation(&self, activation: &Activation) -> Result<bool> {
        self.inner.put_activation(activation).await
    }

    async fn get_activation(
        &self,
        namespace: &EntityName,
        id: &ActivationId,
    ) -> Result<Activation> {
        self.inner.get_activation(namespace, id).await
    }

    async fn list_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>> {
        self.inner.list_activations(namespace, query).await
    }

    async fn count_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<u64> {
        self.inner.count_activations(namespace, query).await
    }

    async fn get_subject(&self, subject: &str) -> Result<Versioned<Subject>> {
        // Operators' reads (they carry the revision for the next write): never cached.
        self.inner.get_subject(subject).await
    }

    async fn put_subject(&self, subject: &Subject, rev: Option<&Revision>) -> Result<Revision> {
        self.subject_write(&subject.subject, self.inner.put_subject(subject, rev))
            .await
    }

    async fn delete_subject(&self, subject: &str, rev: &Revision) -> Result<()> {
        self.subject_write(subject, self.inner.delete_subject(subject, rev))
            .await
    }

    async fn list_subjects(&self, namespace: &EntityName) -> Result<Vec<Subject>> {
        self.inner.list_subjects(namespace).await
    }

    async fn list_namespaces(&self) -> Result<Vec<EntityName>> {
        self.inner.list_namespaces().await
    }

    async fn find_identity(&self, key: &AuthKey) -> Result<Identity> {
        self.read_through(&self.state.by_key, key, self.inner.find_identity(key))
            .await
    }

    async fn identity_for_namespace(&self, namespace: &EntityName) -> Result<Identity> {
        self.read_through(
            &self.state.by_namespace,
            namespace,
            self.inner.identity_for_namespace(namespace),
        )
        .await
    }

    async fn get_limits(&self, namespace: &EntityName) -> Result<UserLimits> {
        self.inner.get_limits(namespace).await
    }

    async fn put_limits(&self, namespace: &EntityName, limits: &UserLimits) -> Result<()> {
        self.limits_write(namespace, self.inner.put_limits(namespace, limits))
            .await
    }

    async fn delete_limits(&self, namespace: &EntityName) -> Result<()> {
        self.limits_write(namespace, self.inner.delete_limits(namespace))
            .await
    }

    async fn get_document(
        &self,
        collection: &str,
        id: &str,
    ) -> Result<faas_core::store::Versioned<serde_json::Value>> {
        self.inner.get_document(collection, id).await
    }
    async fn put_document(
        &self,
        collection: &str,
        id: &str,
        value: &serde_json::Value,
        rev: Option<&faas_core::store::Revision>,
    ) -> Result<faas_core::store::Revision> {
        self.inner.put_document(collection, id, value, rev).await
    }
    async fn delete_document(
        &self,
        collection: &str,
        id: &str,
        rev: &faas_core::store::Revision,
    ) -> Result<()> {
        self.inner.delete_document(collection, id, rev).await
    }
    async fn list_documents(&self, collection: &str) -> Result<Vec<faas_core::store::Document>> {
        self.inner.list_documents(collection).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[test]
    fn generation_guards_racing_reads() {
        let c: Cache<u32, &str> = Cache::new(10);
        let now = Instant::now();
        let g = c.generation();
        c.remove(&1); // an invalidation while a read is in flight
        c.insert(g, 1, "stale", now);
        assert_eq!(
            c.get(&1, DEFAULT_TTL, now),
            None,
            "a racing read must not fill the cache"
        );
        let g = c.generation();
        c.insert(g, 1, "fresh", now);
        assert_eq!(c.get(&1, DEFAULT_TTL, now), Some("fresh"));
        assert_eq!(c.get(&1, Duration::ZERO, now), None, "expired");
        let later = now + DEFAULT_TTL;
        assert_eq!(c.get(&1, DEFAULT_TTL, later), None, "expired");
    }

    #[test]
    fn size_is_bounded() {
        let c: Cache<u32, u32> = Cache::new(100);
        let now = Instant::now();
        for i in 0..1_000 {
            c.insert(c.generation(), i, i, now);
            assert!(c.len() <= 100, "{}", c.len());
        }
        assert_eq!(c.get(&999, DEFAULT_TTL, now), Some(999));
        // Entries read again survive a flood of one-off ones (no clear-all when full).
        let hot: Cache<u32, u32> = Cache::new(100);
        hot.insert(hot.generation(), 0, 0, now);
        for i in 1..1_000 {
            assert_eq!(hot.get(&0, DEFAULT_TTL, now), Some(0), "after {i} inserts");
            hot.insert(hot.generation(), i, i, now);
        }
    }

    #[test]
    fn messages_have_openwhisk_shape() {
        let id = parse_doc_id("guest/pkg/hello").unwrap();
        let m = InvalidationMessage {
            key: entity_key(&id),
            instance_id: "controller0".into(),
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"key": {"mainId": "guest/pkg/hello"}, "instanceId": "controller0"})
        );
        let m: InvalidationMessage = serde_json::from_str(
            r#"{"key":{"mainId":"guest/limits","secondaryId":"limits"},"instanceId":"controller1"}"#,
        )
        .unwrap();
        assert_eq!(m.key.secondary_id.as_deref(), Some("limits"));
        assert!(parse_doc_id("nodelimiter").is_none());
        assert!(parse_doc_id("a/b/c/d").is_none());
    }

    #[test]
    fn display_shows_nesting() {
        let c = CachedStore::new(MemoryStore::new());
        assert_eq!(c.to_string(), "CachedStore(MemoryStore)");
        assert!(format!("{c:?}").starts_with("CachedStore { inner: MemoryStore"));
        assert!(c.is_empty());
    }
}
