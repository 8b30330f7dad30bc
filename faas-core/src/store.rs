//! The `Store` trait: entities, activation records, subjects and namespace limits.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Result;
use crate::activation::{Activation, ActivationId};
use crate::entity::{Entity, EntityKind};
use crate::identity::{AuthKey, Identity, Subject};
use crate::limits::UserLimits;
use crate::names::{EntityName, EntityPath, FullyQualifiedName};

/// An opaque document revision (CouchDB's `_rev`); every successful write makes a new one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Revision(pub String);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value with the revision it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its revision.
    pub rev: Revision,
}

/// Paging for entity lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Entries to skip from the newest.
    pub skip: u64,
    /// Most entries to return; `0` means no limit.
    pub limit: u64,
}

/// Filter and paging for activation lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationQuery {
    /// Only activations of this action: `name` or `pkg/name` (matched against the `path`
    /// annotation's last segments, or the record's `name`).
    pub name: Option<String>,
    /// Only activations that started at or after this epoch ms.
    pub since: Option<u64>,
    /// Only activations that started at or before this epoch ms.
    pub upto: Option<u64>,
    /// Entries to skip from the newest.
    pub skip: u64,
    /// Most entries to return; `0` means no limit.
    pub limit: u64,
}

impl ActivationQuery {
    /// Whether `a` passes the name and time filters (paging not applied). Adapters may use it.
    pub fn matches(&self, a: &Activation) -> bool {
        if self.since.is_some_and(|s| a.start < s) || self.upto.is_some_and(|u| a.start > u) {
            return false;
        }
        match &self.name {
            None => true,
            Some(n) => activation_matches_name(a, n),
        }
    }
}

/// Whether activation `a` is of action `name` (`action` or `pkg/action`), as OpenWhisk's
/// activations view keys them: by the `path` annotation without its namespace, else by name.
pub fn activation_matches_name(a: &Activation, name: &str) -> bool {
    let path = a.annotations.get("path").and_then(|v| v.as_str());
    match path {
        Some(p) => {
            let without_ns = p.split_once('/').map_or(p, |(_, rest)| rest);
            without_ns == name || (!name.contains('/') && a.name.as_str() == name)
        }
        None => a.name.as_str() == name,
    }
}

/// A document of a platform component (not an entity): JSON under an id in a collection,
/// with its revision. See [Documents](Store#documents).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The id within its collection.
    pub id: String,
    /// The JSON.
    pub value: Value,
    /// Its revision.
    pub rev: Revision,
}

/// Longest document id, bytes.
pub const MAX_DOCUMENT_ID_BYTES: usize = 1024;

/// Checks a document address: a collection of 1 to 64 characters `[a-z0-9_-]` starting with a
/// letter, and an id of 1 to [`MAX_DOCUMENT_ID_BYTES`] bytes without control characters.
///
/// # Errors
///
/// `BadRequest` saying which part is wrong.
pub fn check_document_key(collection: &str, id: &str) -> Result<()> {
    let good_collection = !collection.is_empty()
        && collection.len() <= 64
        && collection.starts_with(|c: char| c.is_ascii_lowercase())
        && collection
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !good_collection {
        return Err(crate::Error::bad_request(format!(
            "document collection '{collection}' is not valid: 1 to 64 characters a-z, 0-9, '_', '-', starting with a letter"
        )));
    }
    if id.is_empty() || id.len() > MAX_DOCUMENT_ID_BYTES || id.chars().any(char::is_control) {
        return Err(crate::Error::bad_request(format!(
            "document id is not valid: 1 to {MAX_DOCUMENT_ID_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

/// Persistent state of the platform: entities, activation records, subjects and limits.
///
/// # Contract
///
/// * **Entities** are addressed by their fully qualified name (`ns[/pkg]/name`), one id space
///   for all kinds: a package and an action cannot share an id. Reads return the entity with its
///   [`Revision`].
/// * [`put_entity`](Store::put_entity) with `rev = None` creates and fails with
///   [`Error::AlreadyExists`](crate::Error::AlreadyExists) if the id exists; with `Some(rev)` it
///   replaces the document only if `rev` is its current revision, else
///   [`Error::Conflict`](crate::Error::Conflict) (also when the document is gone). Each successful
///   write returns a new revision.
/// * [`delete_entity`](Store::delete_entity) needs the current revision (`Conflict` otherwise)
///   and fails with `NotFound` when the id does not exist.
/// * **Lists** are per namespace and kind, newest `updated` first, with `skip`/`limit`. A list
///   of a namespace path `ns` covers every entity whose root namespace is `ns` (packaged ones
///   too); a list of `ns/pkg` covers that package only.
/// * **Activations** are written once per id: [`put_activation`](Store::put_activation) returns
///   `Ok(true)` when it wrote the record and `Ok(false)` when a record with this id exists
///   already (the existing one is kept). This makes redelivered work idempotent. Activation
///   lists are per namespace, newest `start` first, filtered by [`ActivationQuery`].
/// * **Subjects** (see [Subjects and limits](#subjects-and-limits) below) are documents of
///   their own, addressed by subject name, with revisions and the same create/replace/delete
///   rules as entities.
/// * A write that returned `Ok` is durable for durable adapters, and visible to every later read
///   through the same store.
///
/// # Subjects and limits
///
/// A [`Subject`] record is OpenWhisk's subjects-database document: a user (`subject`, the
/// record's id), the namespaces it owns, each with its own `uuid` and secret `key`, and a
/// `blocked` flag. Several subjects may own the same namespace (each with its own key), and
/// several namespace entries may share a `uuid` as long as their keys differ. Limits are a
/// separate document per namespace (`<namespace>/limits`); they exist independently of the
/// subjects (set before a namespace has an owner, kept after its last owner is deleted).
///
/// * [`get_subject`](Store::get_subject) returns the record with its [`Revision`], or
///   `NotFound` (also for names that [`Subject::check_name`] rejects).
/// * [`put_subject`](Store::put_subject) follows [`put_entity`](Store::put_entity): with
///   `rev = None` it creates and fails with `AlreadyExists` if the subject exists; with
///   `Some(rev)` it replaces the record only at its current revision, else `Conflict` (also when
///   the record is gone). A subject whose name [`Subject::check_name`] rejects is refused with
///   `BadRequest` and nothing is written. Exactly one of several concurrent creates of a name
///   succeeds.
/// * [`delete_subject`](Store::delete_subject) needs the current revision (`Conflict`
///   otherwise) and fails with `NotFound` when the subject does not exist. The namespace limits
///   stay.
/// * [`find_identity`](Store::find_identity) resolves `uuid:key` to the [`Identity`] of the
///   namespace entry holding exactly that uuid and key (secrets compared in constant time),
///   with all four rights and the namespace's limits (`UserLimits::default()` without a limits
///   document); `NotFound` for unknown keys, wrong secrets and blocked subjects.
/// * [`identity_for_namespace`](Store::identity_for_namespace) is the same by namespace name:
///   the entry of the first unblocked owner in subject-name order (byte order); `NotFound` when
///   no unblocked subject owns the namespace.
/// * [`list_subjects`](Store::list_subjects) returns every subject record owning the
///   namespace, blocked ones included, in subject-name order (byte order); empty when none.
/// * [`list_namespaces`](Store::list_namespaces) returns every namespace that at least one
///   subject (blocked or not) owns, sorted (byte order), each once. A namespace with only a
///   limits document is not listed.
/// * [`get_limits`](Store::get_limits) returns the stored limits document as written, or
///   `NotFound`; [`put_limits`](Store::put_limits) creates or replaces it whole (no merge; the
///   last write wins); [`delete_limits`](Store::delete_limits) removes it, or fails with
///   `NotFound`.
/// * Every write of a subject or of limits is visible to the next `find_identity` and
///   `identity_for_namespace` through the same store: a blocked or deleted subject, a rotated
///   key or changed limits take effect at once (wrappers that cache must invalidate).
///
/// # Documents
///
/// Platform components keep state of their own beside the entities (the alarms provider keeps
/// its schedules and its scheduler lease, as OpenWhisk's providers keep a database of their
/// own). A [`Document`] is any JSON value under an id in a named collection, with a
/// [`Revision`] and the same optimistic concurrency as entities; documents are not entities:
/// no REST route serves them and entity lists never show them.
///
/// * Addresses are checked by [`check_document_key`]; a bad one is `BadRequest` and nothing is
///   read or written.
/// * [`get_document`](Store::get_document) returns the value with its revision, or `NotFound`.
/// * [`put_document`](Store::put_document) with `rev = None` creates and fails with
///   `AlreadyExists` if the id exists in the collection; with `Some(rev)` it replaces the
///   document only at its current revision, else `Conflict` (also when it is gone). Exactly one
///   of several concurrent writes at the same revision (or creates of the same id) succeeds.
/// * [`delete_document`](Store::delete_document) needs the current revision (`Conflict`
///   otherwise) and fails with `NotFound` when the document does not exist.
/// * [`list_documents`](Store::list_documents) returns every document of a collection, in id
///   order (byte order); collections are independent of each other.
///
/// Every adapter proves the contract by running `faas_core::store_conformance!`.
#[async_trait]
pub trait Store: fmt::Debug + Send + Sync + 'static {
    /// Reads an entity.
    async fn get_entity(&self, id: &FullyQualifiedName) -> Result<Versioned<Entity>>;
    /// Creates (`rev = None`) or replaces (`rev = Some(current)`) an entity.
    async fn put_entity(&self, entity: &Entity, rev: Option<&Revision>) -> Result<Revision>;
    /// Deletes an entity at its current revision.
    async fn delete_entity(&self, id: &FullyQualifiedName, rev: &Revision) -> Result<()>;
    /// Lists entities of `kind` under `path`, newest first.
    async fn list_entities(
        &self,
        path: &EntityPath,
        kind: EntityKind,
        query: ListQuery,
    ) -> Result<Vec<Entity>>;
    /// Counts entities of `kind` under `path`.
    async fn count_entities(&self, path: &EntityPath, kind: EntityKind) -> Result<u64>;

    /// Stores an activation record unless one with its id exists; `Ok(true)` if written.
    async fn put_activation(&self, activation: &Activation) -> Result<bool>;
    /// Reads an activation record of `namespace`.
    async fn get_activation(&self, namespace: &EntityName, id: &ActivationId)
    -> Result<Activation>;
    /// Lists activation records of `namespace`, newest first.
    async fn list_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>>;
    /// Counts activation records of `namespace` that pass the filters (paging ignored).
    async fn count_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<u64>;

    /// Reads a subject record by subject name.
    async fn get_subject(&self, subject: &str) -> Result<Versioned<Subject>>;
    /// Creates (`rev = None`) or replaces (`rev = Some(current)`) a subject record.
    async fn put_subject(&self, subject: &Subject, rev: Option<&Revision>) -> Result<Revision>;
    /// Deletes a subject record at its current revision.
    async fn delete_subject(&self, subject: &str, rev: &Revision) -> Result<()>;
    /// The subject records owning `namespace` (blocked ones too), by subject name.
    async fn list_subjects(&self, namespace: &EntityName) -> Result<Vec<Subject>>;
    /// Every namespace some subject owns, sorted, each once.
    async fn list_namespaces(&self) -> Result<Vec<EntityName>>;
    /// Resolves credentials to an identity.
    async fn find_identity(&self, key: &AuthKey) -> Result<Identity>;
    /// The identity owning `namespace` (used for web actions).
    async fn identity_for_namespace(&self, namespace: &EntityName) -> Result<Identity>;
    /// Reads a namespace's limits document.
    async fn get_limits(&self, namespace: &EntityName) -> Result<UserLimits>;
    /// Sets (creates or replaces) a namespace's limits.
    async fn put_limits(&self, namespace: &EntityName, limits: &UserLimits) -> Result<()>;
    /// Deletes a namespace's limits document.
    async fn delete_limits(&self, namespace: &EntityName) -> Result<()>;

    /// Reads document `id` of `collection`.
    async fn get_document(&self, collection: &str, id: &str) -> Result<Versioned<Value>>;
    /// Creates (`rev = None`) or replaces (`rev = Some(current)`) document `id` of
    /// `collection`.
    async fn put_document(
        &self,
        collection: &str,
        id: &str,
        value: &Value,
        rev: Option<&Revision>,
    ) -> Result<Revision>;
    /// Deletes document `id` of `collection` at its current revision.
    async fn delete_document(&self, collection: &str, id: &str, rev: &Revision) -> Result<()>;
    /// Every document of `collection`, in id order.
    async fn list_documents(&self, collection: &str) -> Result<Vec<Document>>;
}

/// Conveniences on every [`Store`], built on its methods. **Do not implement it**: it has a
/// blanket implementation for every `Store` (and `dyn Store`).
#[async_trait]
pub trait StoreExt: Store {
    /// Writes `subject` whatever is stored under its name (creates it, or replaces it at the
    /// revision just read), trying again when another writer got in between. For start-up
    /// records such as the guest subject; operators' edits should read, change and write
    /// with the revision so that concurrent edits are not lost.
    async fn upsert_subject(&self, subject: &Subject) -> Result<Revision> {
        let mut last = None;
        for _ in 0..8 {
            let rev = match self.get_subject(&subject.subject).await {
                Ok(v) => Some(v.rev),
                Err(crate::Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            match self.put_subject(subject, rev.as_ref()).await {
                Ok(r) => return Ok(r),
                Err(e @ (crate::Error::Conflict { .. } | crate::Error::AlreadyExists { .. })) => {
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| crate::Error::conflict(subject.subject.clone())))
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// `dyn Store`.
pub type DynStore = dyn Store;
