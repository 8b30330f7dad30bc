//! [`Store`](faas_core::Store) adapters for **faas**.
//!
//! # Available implementations
//!
//! | adapter | module | durable | use |
//! |---|---|---|---|
//! | [`MemoryStore`] | [`memory`] (always built) | no | ephemeral platforms (`memory:`), tests, examples |
//! | `SqliteStore` | `sqlite` (feature `sqlite`) | yes | the standalone platform's default: one SQLite file, one process |
//! | `CouchDbStore` | `couchdb` (feature `couchdb`) | yes | OpenWhisk's database layout on CouchDB or `pouchdb-server`, shared by many processes |
//!
//! and one wrapper, which implements [`Store`](faas_core::Store) over any store:
//!
//! | wrapper | module | what |
//! |---|---|---|
//! | [`CachedStore`] | [`cache`] | OpenWhisk's entity and identity cache, invalidated on writes and, across processes, over the `cacheInvalidation` topic |
//!
//! # Feature flags
//!
//! | feature | what |
//! |---|---|
//! | `sqlite` | the SQLite adapter on `rusqlite`, with the SQLite library compiled in |
//! | `couchdb` | the CouchDB adapter on `couch_rs` (plain HTTP) |
//!
//! Every adapter, and the cache wrapper, keeps the `# Contract` of [`faas_core::Store`] and
//! proves it by running `faas_core::store_conformance!` (and
//! `faas_core::authenticator_conformance!` through [`faas_core::StoreAuthenticator`]) in this
//! crate's tests; the CouchDB runs need a server (`FAAS_TEST_COUCHDB_URL`, started by
//! `scripts/services/couchdb.sh`) and skip without one.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use faas_core::identity::{AuthKey, Subject};
//! use faas_core::names::EntityName;
//! use faas_core::{Authenticator, Store, StoreAuthenticator};
//! use faas_store::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! let key = AuthKey::generate();
//! store.put_subject(&Subject::single(EntityName::new("guest")?, &key), None).await?;
//!
//! let auth = StoreAuthenticator::new(Arc::clone(&store));
//! let identity = auth.authenticate(&key).await?;
//! assert_eq!(identity.namespace.name.as_str(), "guest");
//! # Ok::<(), faas_core::Error>(())
//! # }).unwrap();
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cache;
#[cfg(feature = "couchdb")]
#[cfg_attr(docsrs, doc(cfg(feature = "couchdb")))]
pub mod couchdb;
pub mod memory;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

pub use cache::{CachedStore, Invalidations};
#[cfg(feature = "couchdb")]
pub use couchdb::CouchDbStore;
pub use memory::{DEFAULT_MAX_ACTIVATION_BYTES, DEFAULT_MAX_ACTIVATIONS, MemoryStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
