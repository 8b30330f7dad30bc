//! [`MemoryStore`]: a [`Store`] that keeps everything in process memory.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use faas_core::activation::{Activation, ActivationId, json_size};
use faas_core::entity::{Entity, EntityKind};
use faas_core::identity::{AuthKey, Identity, Namespace, Subject};
use faas_core::limits::UserLimits;
use faas_core::names::{EntityName, EntityPath, FullyQualifiedName};
use faas_core::store::{
    ActivationQuery, Document, ListQuery, Revision, Store, Versioned, check_document_key,
};
use faas_core::{Error, Result};
use serde_json::Value;

/// A [`Store`] held in process memory: fast, not durable, shared by cloning an `Arc`.
///
/// It is the store of the embedded (standalone) platform and of tests. It keeps the whole
/// [`Store` contract](Store#contract) — one id space for all entity kinds, CouchDB-like
/// revisions (`N-<32 hex>`), `AlreadyExists`/`Conflict`/`NotFound` exactly where CouchDB would
/// answer them, write-once activation records — and passes `faas_core::store_conformance!`.
///
/// # Costs
///
/// * Entity get/put/delete: O(log n) plus cloning the entity (reads hand out owned copies).
/// * Entity lists and counts of a namespace: ordered by an index per (namespace, kind), so a
///   page costs O(log n + skip + limit); counts of a whole namespace are O(1), of a package
///   O(entities of the namespace).
/// * Activations: O(log n) put and get, kept per namespace ordered by `start`, so the newest
///   page is cheap; `since`/`upto` narrow the range scanned, `name` filters by scanning it.
/// * Identity lookups: O(log n) index lookups by uuid or namespace, then a scan of the few
///   subjects sharing it.
///
/// # Memory
///
/// Entities and subjects stay until deleted or the process ends. Activation records, which grow
/// with traffic, are retained oldest-first-out: at most [`DEFAULT_MAX_ACTIVATIONS`] records and
/// [`DEFAULT_MAX_ACTIVATION_BYTES`] bytes (their JSON size) by default, set with
/// [`with_max_activations`](Self::with_max_activations) and
/// [`with_max_activation_bytes`](Self::with_max_activation_bytes). The newest record is always
/// kept, whatever its size.
///
/// # Example
///
/// ```
/// use faas_core::entity::{Entity, Trigger};
/// use faas_core::names::{EntityName, EntityPath, FullyQualifiedName};
/// use faas_core::store::Store;
/// use faas_core::Error;
/// use faas_store::MemoryStore;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let ns = EntityPath::new("guest")?;
/// let trigger = Entity::Trigger(Trigger {
///     namespace: ns.clone(),
///     name: EntityName::new("ticks")?,
///     version: Default::default(),
///     publish: false,
///     parameters: Default::default(),
///     limits: Default::default(),
///     annotations: Default::default(),
///     rules: None,
///     updated: 1,
/// });
///
/// let rev = store.put_entity(&trigger, None).await?;          // create
/// let id = FullyQualifiedName::new(ns, EntityName::new("ticks")?);
/// assert_eq!(store.get_entity(&id).await?.value, trigger);
/// assert!(matches!(                                          // create again: 409
///     store.put_entity(&trigger, None).await,
///     Err(Error::AlreadyExists { .. })
/// ));
/// let rev2 = store.put_entity(&trigger, Some(&rev)).await?;  // update at the current rev
/// assert!(matches!(                                          // stale rev: 409
///     store.delete_entity(&id, &rev).await,
///     Err(Error::Conflict { .. })
/// ));
/// store.delete_entity(&id, &rev2).await?;
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
pub struct MemoryStore {
    // A std `RwLock`, not a tokio one: every critical section is a few map operations with no
    // `.await` inside, so a blocking lock is cheaper than an async one and cannot be held
    // across a suspension point. Reads (entity gets, identity lookups: the hot path) share the
    // lock; writes are short. A poisoned lock is recovered rather than propagated: the
    // sections hold only map operations that do not panic, so the state cannot be half-written.
    state: RwLock<State>,
    max_activations: usize,
    max_activation_bytes: u64,
}

/// Default most activation records a [`MemoryStore`] keeps (about 25 MB of small records).
pub const DEFAULT_MAX_ACTIVATIONS: usize = 10_000;
/// Default most bytes of activation records (their JSON size) a [`MemoryStore`] keeps.
pub const DEFAULT_MAX_ACTIVATION_BYTES: u64 = 128 * 1024 * 1024;

/// Everything the store holds.
#[derive(Default)]
struct State {
    /// Source of unique revisions and activation sequence numbers.
    seq: u64,
    /// Entities by id (`path/name`); one id space for every kind.
    entities: HashMap<FullyQualifiedName, Doc>,
    /// Ordered index for lists: (root namespace, kind) → {(updated, id)}.
    lists: HashMap<(String, EntityKind), BTreeSet<(u64, FullyQualifiedName)>>,
    /// Activation records per invoking (root) namespace.
    activations: HashMap<String, Activations>,
    /// Number of activation records held, all namespaces.
    activation_count: usize,
    /// JSON bytes of the activation records held.
    activation_bytes: u64,
    /// Write order of activations, oldest first, with each record's size.
    activation_fifo: VecDeque<(String, ActivationId, u64)>,
    /// Subject records by subject name, with their revisions.
    subjects: HashMap<String, SubjectDoc>,
    /// `uuid` → the subjects with a namespace entry of that uuid.
    by_uuid: BTreeMap<String, BTreeSet<String>>,
    /// Namespace → the subjects owning it (ordered: the first unblocked one answers
    /// `identity_for_namespace`, and `list_namespaces` walks the keys in order).
    by_namespace: BTreeMap<String, BTreeSet<String>>,
    /// Namespace limits.
    limits: HashMap<EntityName, UserLimits>,
    /// Documents by collection, then id (ordered: lists walk them in id order).
    documents: HashMap<String, BTreeMap<String, StoredDocument>>,
}

/// One stored document with its revision.
struct StoredDocument {
    value: Value,
    generation: u64,
    rev: Revision,
}

/// One stored subject record with its revision.
struct SubjectDoc {
    subject: Subject,
    generation: u64,
    rev: Revision,
}

/// One stored entity with its revision.
struct Doc {
    entity: Entity,
    generation: u64,
    rev: Revision,
}

/// A namespace's activation records, ordered by `(start, write sequence)`.
#[derive(Default)]
struct Activations {
    by_key: BTreeMap<(u64, u64), Activation>,
    by_id: HashMap<ActivationId, (u64, u64)>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store with the default activation retention ([`DEFAULT_MAX_ACTIVATIONS`],
    /// [`DEFAULT_MAX_ACTIVATION_BYTES`]).
    pub fn new() -> Self {
        Self {
            state: RwLock::new(State::default()),
            max_activations: DEFAULT_MAX_ACTIVATIONS,
            max_activation_bytes: DEFAULT_MAX_ACTIVATION_BYTES,
        }
    }

    /// Keeps at most `max` activation records (all namespaces together), dropping the
    /// earliest written when a new one would exceed it. A dropped record reads as `NotFound`
    /// and may be written again. `max` of 0 is treated as 1; `usize::MAX` keeps every record.
    pub fn with_max_activations(mut self, max: usize) -> Self {
        self.max_activations = max.max(1);
        self
    }

    /// Keeps activation records of at most `max` bytes together (each counted as its JSON
    /// size), dropping the earliest written first; the newest record is kept whatever its size.
    pub fn with_max_activation_bytes(mut self, max: u64) -> Self {
        self.max_activation_bytes = max;
        self
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    // Counts only: the contents can be large, and subjects hold secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.read();
        f.debug_struct("MemoryStore")
            .field("entities", &s.entities.len())
            .field("activations", &s.activation_count)
            .field("subjects", &s.subjects.len())
            .field("activation_bytes", &s.activation_bytes)
            .field("max_activations", &self.max_activations)
            .field("max_activation_bytes", &self.max_activation_bytes)
            .finish()
    }
}

impl fmt::Display for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A fresh revision `N-<32 hex>`; the hex part is unique within this store, so a
    /// recreated document never reuses an old revision.
    fn revision(&mut self, generation: u64) -> Revision {
        let seq = self.next_seq();
        // Spread the counter over the digits (a bijection on u64) so revisions look random.
        let mixed = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Revision(format!("{generation}-{mixed:016x}{seq:016x}"))
    }

    fn index_insert(&mut self, id: &FullyQualifiedName, e: &Entity) {
        self.lists
            .entry((id.path.root().to_string(), e.kind()))
            .or_default()
            .insert((e.updated(), id.clone()));
    }

    fn index_remove(&mut self, id: &FullyQualifiedName, e: &Entity) {
        let key = (id.path.root().to_string(), e.kind());
        if let Some(set) = self.lists.get_mut(&key) {
            set.remove(&(e.updated(), id.clone()));
            if set.is_empty() {
                self.lists.remove(&key);
            }
        }
    }

    /// The index entries of `path` and `kind`, newest first.
    fn listed<'a>(
        &'a self,
        path: &'a EntityPath,
        kind: EntityKind,
    ) -> impl Iterator<Item = &'a FullyQualifiedName> + 'a {
        let whole_namespace = path.is_namespace();
        self.lists
            .get(&(path.root().to_string(), kind))
            .into_iter()
            .flat_map(|set| set.iter().rev())
            .map(|(_, id)| id)
            .filter(move |id| whole_namespace || &id.path == path)
    }

    fn identity(&self, subject: &Subject, ns: &faas_core::identity::NamespaceKey) -> Identity {
        Identity {
            subject: subject.subject.clone(),
            namespace: Namespace {
                name: ns.name.clone(),
                uuid: ns.uuid.clone(),
            },
            authkey: AuthKey {
                uuid: ns.uuid.clone(),
                key: ns.key.clone(),
            },
            rights: Identity::all_rights(),
            limits: self.limits.get(&ns.name).cloned().unwrap_or_default(),
        }
    }

    fn add_subject_indexes(&mut self, subject: &Subject) {
        for ns in &subject.namespaces {
            self.by_uuid
                .entry(ns.uuid.clone())
                .or_default()
                .insert(subject.subject.clone());
            self.by_namespace
                .entry(ns.name.as_str().to_string())
                .or_default()
                .insert(subject.subject.clone());
        }
    }

    fn remove_subject_indexes(&mut self, subject: &Subject) {
        fn drop_from(index: &mut BTreeMap<String, BTreeSet<String>>, key: &str, name: &str) {
            if let Some(set) = index.get_mut(key) {
                set.remove(name);
                if set.is_empty() {
                    index.remove(key);
                }
            }
        }
        for ns in &subject.namespaces {
            drop_from(&mut self.by_uuid, &ns.uuid, &subject.subject);
            drop_from(&mut self.by_namespace, ns.name.as_str(), &subject.subject);
        }
    }

    /// The unblocked subjects of an index entry, in name order.
    fn unblocked<'a>(
        &'a self,
        names: Option<&'a BTreeSet<String>>,
    ) -> impl Iterator<Item = &'a Subject> + 'a {
        names
            .into_iter()
            .flatten()
            .filter_map(|n| self.subjects.get(n))
            .map(|d| &d.subject)
            .filter(|s| !s.blocked)
    }

    fn remove_activation(&mut self, ns: &str, id: &ActivationId, bytes: u64) {
        let Some(acts) = self.activations.get_mut(ns) else {
            return;
        };
        if let Some(key) = acts.by_id.remove(id) {
            acts.by_key.remove(&key);
            self.activation_count -= 1;
            self.activation_bytes = self.activation_bytes.saturating_sub(bytes);
        }
        if acts.by_id.is_empty() {
            self.activations.remove(ns);
        }
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `skip`/`limit` as iterator bounds (`limit == 0`: no limit).
fn page<I: Iterator>(it: I, skip: u64, limit: u64) -> impl Iterator<Item = I::Item> {
    let skip = usize::try_from(skip).unwrap_or(usize::MAX);
    let take = match limit {
        0 => usize::MAX,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };
    it.skip(skip).take(take)
}

fn entity_id(e: &Entity) -> FullyQualifiedName {
    FullyQualifiedName::new(e.namespace().clone(), e.name().clone())
}

impl Activations {
    /// The records passing the time filters, newest first (name filter and paging not applied).
    fn in_range<'a>(&'a self, q: &ActivationQuery) -> impl Iterator<Item = &'a Activation> + 'a {
        let lower = Bound::Included((q.since.unwrap_or(0), 0));
        let upper = match q.upto.and_then(|u| u.checked_add(1)) {
            Some(next) => Bound::Excluded((next, 0)),
            None => Bound::Unbounded,
        };
        let empty = q.since.zip(q.upto).is_some_and(|(s, u)| s > u);
        let range = if empty {
            None
        } else {
            Some(self.by_key.range((lower, upper)))
        };
        range.into_iter().flat_map(|r| r.rev()).map(|(_, a)| a)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get_entity(&self, id: &FullyQualifiedName) -> Result<Versioned<Entity>> {
        let s = self.read();
        let doc = s
            .entities
            .get(id)
            .ok_or_else(|| Error::not_found(id.doc_id()))?;
        Ok(Versioned {
            value: doc.entity.clone(),
            rev: doc.rev.clone(),
        })
    }

    async fn put_entity(&self, entity: &Entity, rev: Option<&Revision>) -> Result<Revision> {
        let id = entity_id(entity);
        let mut s = self.write();
        let generation = match (s.entities.get(&id), rev) {
            (Some(_), None) => {
                return Err(Error::AlreadyExists { id: id.doc_id() });
            }
            (Some(doc), Some(r)) if &doc.rev == r => doc.generation + 1,
            (Some(_), Some(_)) | (None, Some(_)) => return Err(Error::conflict(id.doc_id())),
            (None, None) => 1,
        };
        let new_rev = s.revision(generation);
        let doc = Doc {
            entity: entity.clone(),
            generation,
            rev: new_rev.clone(),
        };
        if let Some(old) = s.entities.insert(id.clone(), doc) {
            s.index_remove(&id, &old.entity);
        }
        s.index_insert(&id, entity);
        Ok(new_rev)
    }

    async fn delete_entity(&self, id: &FullyQualifiedName, rev: &Revision) -> Result<()> {
        let mut s = self.write();
        match s.entities.get(id) {
            None => return Err(Error::not_found(id.doc_id())),
            Some(doc) if &doc.rev != rev => return Err(Error::conflict(id.doc_id())),
            Some(_) => {}
        }
        if let Some(old) = s.entities.remove(id) {
            s.index_remove(id, &old.entity);
        }
        Ok(())
    }

    async fn list_entities(
        &self,
        path: &EntityPath,
        kind: EntityKind,
        query: ListQuery,
    ) -> Result<Vec<Entity>> {
        let s = self.read();
        let out = page(s.listed(path, kind), query.skip, query.limit)
            .filter_map(|id| s.entities.get(id).map(|d| d.entity.clone()))
            .collect();
        Ok(out)
    }

    async fn count_entities(&self, path: &EntityPath, kind: EntityKind) -> Result<u64> {
        let s = self.read();
        let n = if path.is_namespace() {
            s.lists
                .get(&(path.root().to_string(), kind))
                .map_or(0, BTreeSet::len)
        } else {
            s.listed(path, kind).count()
        };
        Ok(n as u64)
    }

    async fn put_activation(&self, activation: &Activation) -> Result<bool> {
        let ns = activation.namespace.root();
        // Measured outside the lock: the JSON size, counted without building the text.
        let bytes = json_size(activation);
        let mut s = self.write();
        if s.activations
            .get(ns)
            .is_some_and(|a| a.by_id.contains_key(&activation.activation_id))
        {
            return Ok(false);
        }
        let key = (activation.start, s.next_seq());
        let acts = s.activations.entry(ns.to_string()).or_default();
        acts.by_id.insert(activation.activation_id.clone(), key);
        acts.by_key.insert(key, activation.clone());
        s.activation_count += 1;
        s.activation_bytes += bytes;
        s.activation_fifo
            .push_back((ns.to_string(), activation.activation_id.clone(), bytes));
        while s.activation_fifo.len() > 1
            && (s.activation_count > self.max_activations
                || s.activation_bytes > self.max_activation_bytes)
        {
            let Some((old_ns, old_id, old_bytes)) = s.activation_fifo.pop_front() else {
                break;
            };
            s.remove_activation(&old_ns, &old_id, old_bytes);
        }
        Ok(true)
    }

    async fn get_activation(
        &self,
        namespace: &EntityName,
        id: &ActivationId,
    ) -> Result<Activation> {
        let s = self.read();
        s.activations
            .get(namespace.as_str())
            .and_then(|acts| acts.by_id.get(id).and_then(|key| acts.by_key.get(key)))
            .cloned()
            .ok_or_else(|| Error::not_found(format!("{namespace}/{id}")))
    }

    async fn list_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>> {
        let s = self.read();
        let Some(acts) = s.activations.get(namespace.as_str()) else {
            return Ok(Vec::new());
        };
        let matching = acts.in_range(query).filter(|a| query.matches(a));
        Ok(page(matching, query.skip, query.limit).cloned().collect())
    }

    async fn count_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<u64> {
        let s = self.read();
        let Some(acts) = s.activations.get(namespace.as_str()) else {
            return Ok(0);
        };
        let n = if query.name.is_none() && query.since.is_none() && query.upto.is_none() {
            acts.by_key.len()
        } else {
            acts.in_range(query).filter(|a| query.matches(a)).count()
        };
        Ok(n as u64)
    }

    async fn get_subject(&self, subject: &str) -> Result<Versioned<Subject>> {
        let s = self.read();
        let doc = s
            .subjects
            .get(subject)
            .ok_or_else(|| Error::not_found(format!("subject {subject}")))?;
        Ok(Versioned {
            value: doc.subject.clone(),
            rev: doc.rev.clone(),
        })
    }

    async fn put_subject(&self, subject: &Subject, rev: Option<&Revision>) -> Result<Revision> {
        Subject::check_name(&subject.subject)?;
        let name = &subject.subject;
        let mut s = self.write();
        let generation = match (s.subjects.get(name), rev) {
            (Some(_), None) => return Err(Error::AlreadyExists { id: name.clone() }),
            (Some(doc), Some(r)) if &doc.rev == r => doc.generation + 1,
            (Some(_), Some(_)) | (None, Some(_)) => return Err(Error::conflict(name.clone())),
            (None, None) => 1,
        };
        let new_rev = s.revision(generation);
        let doc = SubjectDoc {
            subject: subject.clone(),
            generation,
            rev: new_rev.clone(),
        };
        if let Some(old) = s.subjects.insert(name.clone(), doc) {
            s.remove_subject_indexes(&old.subject);
        }
        s.add_subject_indexes(subject);
        Ok(new_rev)
    }

    async fn delete_subject(&self, subject: &str, rev: &Revision) -> Result<()> {
        let mut s = self.write();
        match s.subjects.get(subject) {
            None => return Err(Error::not_found(format!("subject {subject}"))),
            Some(doc) if &doc.rev != rev => return Err(Error::conflict(subject)),
            Some(_) => {}
        }
        if let Some(old) = s.subjects.remove(subject) {
            s.remove_subject_indexes(&old.subject);
        }
        Ok(())
    }

    async fn list_subjects(&self, namespace: &EntityName) -> Result<Vec<Subject>> {
        let s = self.read();
        Ok(s.by_namespace
            .get(namespace.as_str())
            .into_iter()
            .flatten()
            .filter_map(|n| s.subjects.get(n).map(|d| d.subject.clone()))
            .collect())
    }

    async fn list_namespaces(&self) -> Result<Vec<EntityName>> {
        let s = self.read();
        s.by_namespace.keys().map(EntityName::new).collect()
    }

    async fn find_identity(&self, key: &AuthKey) -> Result<Identity> {
        let s = self.read();
        s.unblocked(s.by_uuid.get(&key.uuid))
            .find_map(|subj| {
                subj.namespaces
                    .iter()
                    .find(|ns| ns.uuid == key.uuid && same_secret(&ns.key, &key.key))
                    .map(|ns| s.identity(subj, ns))
            })
            .ok_or_else(|| Error::not_found(format!("subject with uuid {}", key.uuid)))
    }

    async fn identity_for_namespace(&self, namespace: &EntityName) -> Result<Identity> {
        let s = self.read();
        s.unblocked(s.by_namespace.get(namespace.as_str()))
            .find_map(|subj| subj.namespace(namespace).map(|ns| s.identity(subj, ns)))
            .ok_or_else(|| Error::not_found(format!("subject of namespace {namespace}")))
    }

    async fn get_limits(&self, namespace: &EntityName) -> Result<UserLimits> {
        self.read()
            .limits
            .get(namespace)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("{namespace}/limits")))
    }

    async fn put_limits(&self, namespace: &EntityName, limits: &UserLimits) -> Result<()> {
        self.write()
            .limits
            .insert(namespace.clone(), limits.clone());
        Ok(())
    }

    async fn delete_limits(&self, namespace: &EntityName) -> Result<()> {
        self.write()
            .limits
            .remove(namespace)
            .map(|_| ())
            .ok_or_else(|| Error::not_found(format!("{namespace}/limits")))
    }

    async fn get_document(&self, collection: &str, id: &str) -> Result<Versioned<Value>> {
        check_document_key(collection, id)?;
        let s = self.read();
        let d = s
            .documents
            .get(collection)
            .and_then(|c| c.get(id))
            .ok_or_else(|| Error::not_found(format!("{collection}/{id}")))?;
        Ok(Versioned {
            value: d.value.clone(),
            rev: d.rev.clone(),
        })
    }

    async fn put_document(
        &self,
        collection: &str,
        id: &str,
        value: &Value,
        rev: Option<&Revision>,
    ) -> Result<Revision> {
        check_document_key(collection, id)?;
        let mut s = self.write();
        let current = s.documents.get(collection).and_then(|c| c.get(id));
        let generation = match (current, rev) {
            (Some(_), None) => {
                return Err(Error::AlreadyExists {
                    id: format!("{collection}/{id}"),
                });
            }
            (Some(d), Some(r)) if &d.rev == r => d.generation + 1,
            (Some(_), Some(_)) | (None, Some(_)) => {
                return Err(Error::conflict(format!("{collection}/{id}")));
            }
            (None, None) => 1,
        };
        let new_rev = s.revision(generation);
        s.documents
            .entry(collection.to_string())
            .or_default()
            .insert(
                id.to_string(),
                StoredDocument {
                    value: value.clone(),
                    generation,
                    rev: new_rev.clone(),
                },
            );
        Ok(new_rev)
    }

    async fn delete_document(&self, collection: &str, id: &str, rev: &Revision) -> Result<()> {
        check_document_key(collection, id)?;
        let mut s = self.write();
        let Some(c) = s.documents.get_mut(collection) else {
            return Err(Error::not_found(format!("{collection}/{id}")));
        };
        match c.get(id) {
            None => Err(Error::not_found(format!("{collection}/{id}"))),
            Some(d) if &d.rev != rev => Err(Error::conflict(format!("{collection}/{id}"))),
            Some(_) => {
                c.remove(id);
                if c.is_empty() {
                    s.documents.remove(collection);
                }
                Ok(())
            }
        }
    }

    async fn list_documents(&self, collection: &str) -> Result<Vec<Document>> {
        check_document_key(collection, "-")?;
        let s = self.read();
        Ok(s.documents
            .get(collection)
            .map(|c| {
                c.iter()
                    .map(|(id, d)| Document {
                        id: id.clone(),
                        value: d.value.clone(),
                        rev: d.rev.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faas_core::activation::ActivationResponse;
    use faas_core::entity::Package;
    use faas_core::params::{Parameters, SemVer};

    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn act(ns: &str, start: u64) -> Activation {
        Activation {
            namespace: EntityPath::new(ns).unwrap(),
            name: EntityName::new("a").unwrap(),
            subject: "s".into(),
            activation_id: ActivationId::generate(),
            start,
            end: start.saturating_add(1),
            duration: Some(1),
            cause: None,
            response: ActivationResponse::success(serde_json::json!({})),
            logs: vec![],
            version: SemVer::default(),
            publish: false,
            annotations: Parameters::new(),
        }
    }

    fn pkg(ns: &str, name: &str, updated: u64) -> Entity {
        Entity::Package(Package {
            namespace: EntityPath::new(ns).unwrap(),
            name: EntityName::new(name).unwrap(),
            version: SemVer::default(),
            publish: false,
            binding: None,
            parameters: Parameters::new(),
            annotations: Parameters::new(),
            updated,
        })
    }

    #[test]
    fn revisions_look_like_couchdb_and_count_generations() {
        rt().block_on(async {
            let s = MemoryStore::new();
            let e = pkg("ns", "p", 1);
            let r1 = s.put_entity(&e, None).await.unwrap();
            let r2 = s.put_entity(&e, Some(&r1)).await.unwrap();
            let r3 = s.put_entity(&e, Some(&r2)).await.unwrap();
            for (r, generation) in [(&r1, "1"), (&r2, "2"), (&r3, "3")] {
                let (n, hex) = r.0.split_once('-').unwrap();
                assert_eq!(n, generation);
                assert_eq!(hex.len(), 32);
                assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
            }
            // Identical content still gets a new revision each write.
            assert_ne!(r2.0[2..], r1.0[2..]);
        });
    }

    #[test]
    fn activation_bytes_are_bounded_oldest_first() {
        rt().block_on(async {
            let one = json_size(&act("ns", 1));
            // Room for three records of this size, not four.
            let s = MemoryStore::new().with_max_activation_bytes(one * 3 + one / 2);
            let ns = EntityName::new("ns").unwrap();
            let acts: Vec<Activation> = (0..6).map(|i| act("ns", 10 + i)).collect();
            for a in &acts {
                assert!(s.put_activation(a).await.unwrap());
            }
            for (i, a) in acts.iter().enumerate() {
                let got = s.get_activation(&ns, &a.activation_id).await;
                assert_eq!(got.is_ok(), i >= 3, "activation {i}");
            }
            // A record larger than the whole budget is still kept (alone).
            let s = MemoryStore::new().with_max_activation_bytes(1);
            for a in &acts[..2] {
                assert!(s.put_activation(a).await.unwrap());
            }
            assert!(s.get_activation(&ns, &acts[1].activation_id).await.is_ok());
            assert!(s.get_activation(&ns, &acts[0].activation_id).await.is_err());
            // The default retention is on.
            let dbg = format!("{:?}", MemoryStore::new());
            assert!(
                dbg.contains(&format!("max_activations: {DEFAULT_MAX_ACTIVATIONS}")),
                "{dbg}"
            );
        });
    }

    #[test]
    fn max_activations_evicts_earliest_written() {
        rt().block_on(async {
            let s = MemoryStore::new().with_max_activations(3);
            let ns = EntityName::new("ns").unwrap();
            let other = EntityName::new("other").unwrap();
            let acts: Vec<Activation> = (0..5)
                .map(|i| act(if i % 2 == 0 { "ns" } else { "other" }, 100 - i))
                .collect();
            for a in &acts {
                assert!(s.put_activation(a).await.unwrap());
            }
            let q = ActivationQuery::default();
            let total = s.count_activations(&ns, &q).await.unwrap()
                + s.count_activations(&other, &q).await.unwrap();
            assert_eq!(total, 3);
            for (i, a) in acts.iter().enumerate() {
                let ns = a.namespace.root();
                let got = s
                    .get_activation(&EntityName::new(ns).unwrap(), &a.activation_id)
                    .await;
                assert_eq!(got.is_ok(), i >= 2, "activation {i}");
            }
            // An evicted record can be written again, and evicts the next earliest.
            assert!(s.put_activation(&acts[0]).await.unwrap());
            assert!(s.get_activation(&ns, &acts[0].activation_id).await.is_ok());
            assert!(s.get_activation(&ns, &acts[2].activation_id).await.is_err());
            let dbg = format!("{s:?}");
            assert!(dbg.contains("activations: 3"), "{dbg}");
        });
    }

    #[test]
    fn ties_on_start_list_latest_write_first() {
        rt().block_on(async {
            let s = MemoryStore::new();
            let ns = EntityName::new("ns").unwrap();
            let a = act("ns", 5);
            let b = act("ns", 5);
            s.put_activation(&a).await.unwrap();
            s.put_activation(&b).await.unwrap();
            let listed = s
                .list_activations(&ns, &ActivationQuery::default())
                .await
                .unwrap();
            assert_eq!(listed, vec![b, a]);
        });
    }

    #[test]
    fn extreme_time_bounds() {
        rt().block_on(async {
            let s = MemoryStore::new();
            let ns = EntityName::new("ns").unwrap();
            let a = act("ns", u64::MAX);
            let b = act("ns", 0);
            s.put_activation(&a).await.unwrap();
            s.put_activation(&b).await.unwrap();
            let q = |since, upto| ActivationQuery {
                since,
                upto,
                ..Default::default()
            };
            let n = |q| {
                let s = &s;
                let ns = &ns;
                async move { s.count_activations(ns, &q).await.unwrap() }
            };
            assert_eq!(n(q(None, Some(u64::MAX))).await, 2);
            assert_eq!(n(q(Some(u64::MAX), None)).await, 1);
            assert_eq!(n(q(None, Some(0))).await, 1);
            assert_eq!(n(q(Some(5), Some(4))).await, 0);
            assert_eq!(
                s.list_activations(&ns, &q(Some(1), Some(u64::MAX)))
                    .await
                    .unwrap(),
                vec![a]
            );
            let huge = ActivationQuery {
                skip: u64::MAX,
                limit: u64::MAX,
                ..Default::default()
            };
            assert!(s.list_activations(&ns, &huge).await.unwrap().is_empty());
        });
    }

    #[test]
    fn rewriting_one_subject_keeps_the_other_owners_indexes() {
        rt().block_on(async {
            let s = MemoryStore::new();
            let shared = EntityName::new("shared").unwrap();
            let (k1, k2) = (AuthKey::generate(), AuthKey::generate());
            let mut first = Subject::single(shared.clone(), &k1);
            first.subject = "first-user".into();
            let mut second = Subject::single(shared.clone(), &k2);
            second.subject = "second-user".into();
            second.namespaces[0].uuid = k1.uuid.clone(); // same uuid, another key
            let k2 = AuthKey {
                uuid: k1.uuid.clone(),
                key: k2.key.clone(),
            };
            let r1 = s.put_subject(&first, None).await.unwrap();
            s.put_subject(&second, None).await.unwrap();
            // Rewriting, then deleting, the first subject must not drop the second's entries.
            let r1 = s.put_subject(&first, Some(&r1)).await.unwrap();
            assert_eq!(s.find_identity(&k2).await.unwrap().subject, "second-user");
            s.delete_subject("first-user", &r1).await.unwrap();
            assert_eq!(s.find_identity(&k2).await.unwrap().subject, "second-user");
            assert!(s.find_identity(&k1).await.is_err());
            assert_eq!(
                s.identity_for_namespace(&shared).await.unwrap().subject,
                "second-user"
            );
            assert_eq!(s.list_namespaces().await.unwrap(), vec![shared]);
            let st = s.read();
            assert_eq!(st.by_uuid.len(), 1);
            assert_eq!(st.by_uuid[&k1.uuid].len(), 1, "no stale index entry");
        });
    }

    #[test]
    fn kind_change_on_update_moves_between_lists() {
        rt().block_on(async {
            let s = MemoryStore::new();
            let p = pkg("ns", "x", 1);
            let rev = s.put_entity(&p, None).await.unwrap();
            let Entity::Package(inner) = &p else {
                unreachable!()
            };
            let t = Entity::Trigger(faas_core::entity::Trigger {
                namespace: inner.namespace.clone(),
                name: inner.name.clone(),
                version: SemVer::default(),
                publish: false,
                parameters: Parameters::new(),
                limits: Default::default(),
                annotations: Parameters::new(),
                rules: None,
                updated: 2,
            });
            s.put_entity(&t, Some(&rev)).await.unwrap();
            let ns = EntityPath::new("ns").unwrap();
            let q = ListQuery::default();
            assert!(
                s.list_entities(&ns, EntityKind::Package, q)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(
                s.list_entities(&ns, EntityKind::Trigger, q).await.unwrap(),
                vec![t]
            );
            assert!(
                !s.read()
                    .lists
                    .contains_key(&("ns".into(), EntityKind::Package)),
                "an emptied index must be dropped"
            );
        });
    }

    #[test]
    fn debug_and_display() {
        let s = Arc::new(MemoryStore::default());
        assert_eq!(s.to_string(), "MemoryStore");
        let dbg = format!("{s:?}");
        assert!(dbg.starts_with("MemoryStore {"), "{dbg}");
        assert!(dbg.contains("entities: 0"), "{dbg}");
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(same_secret("", ""));
    }
}
