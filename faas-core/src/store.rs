//! The `Store` trait: entities, activation records, subjects and namespace limits.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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
/// * **Subjects** are upserted; [`find_identity`](Store::find_identity) resolves a key to an
///   [`Identity`] (with the namespace's limits) and fails with `NotFound` for unknown keys and
///   blocked subjects.
/// * A write that returned `Ok` is durable for durable adapters, and visible to every later read
///   through the same store.
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

    /// Creates or replaces a subject record.
    async fn put_subject(&self, subject: &Subject) -> Result<()>;
    /// Resolves credentials to an identity.
    async fn find_identity(&self, key: &AuthKey) -> Result<Identity>;
    /// The identity owning `namespace` (used for web actions).
    async fn identity_for_namespace(&self, namespace: &EntityName) -> Result<Identity>;
    /// Sets a namespace's limits.
    async fn put_limits(&self, namespace: &EntityName, limits: &UserLimits) -> Result<()>;
}

/// `dyn Store`.
pub type DynStore = dyn Store;
