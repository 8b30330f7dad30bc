//! [`Store`](faas_core::Store) adapters for **faas**.
//!
//! # Available implementations
//!
//! | adapter | module | durable | use |
//! |---|---|---|---|
//! | [`MemoryStore`] | [`memory`] (always built) | no | the embedded platform, tests, examples |
//!
//! Every adapter keeps the `# Contract` of [`faas_core::Store`] and proves it by running
//! `faas_core::store_conformance!` (and `faas_core::authenticator_conformance!` through
//! [`faas_core::StoreAuthenticator`]) in this crate's tests.
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
//! store.put_subject(&Subject::single(EntityName::new("guest")?, &key)).await?;
//!
//! let auth = StoreAuthenticator::new(Arc::clone(&store));
//! let identity = auth.authenticate(&key).await?;
//! assert_eq!(identity.namespace.name.as_str(), "guest");
//! # Ok::<(), faas_core::Error>(())
//! # }).unwrap();
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod memory;

pub use memory::MemoryStore;
