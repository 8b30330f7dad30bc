//! The `Authenticator` trait and the store-backed Basic authenticator.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::identity::{AuthKey, Identity};
use crate::store::Store;
use crate::{Error, Result};

/// Turns credentials into an [`Identity`].
///
/// # Contract
///
/// * A known, unblocked `uuid:key` yields its identity (subject, namespace, rights, limits).
/// * Anything else yields [`Error::Unauthenticated`]; store failures come back as themselves
///   (so a store outage is a 503, not a 401).
/// * Revocation takes effect at once: after a subject is blocked or deleted, a key rotated or a
///   namespace's limits changed through the store the authenticator reads, the next call
///   answers accordingly. An authenticator that caches identities must therefore be
///   invalidated by those writes.
#[async_trait]
pub trait Authenticator: fmt::Debug + Send + Sync + 'static {
    /// Checks `key`.
    async fn authenticate(&self, key: &AuthKey) -> Result<Identity>;
}

/// `dyn Authenticator`.
pub type DynAuthenticator = dyn Authenticator;

/// Basic `uuid:key` authentication against the [`Store`]'s subjects.
///
/// It keeps no cache of its own: every call asks the store, so a blocked or deleted subject,
/// a rotated key or changed limits take effect at the next request. Stores that are slow to
/// read go behind a caching wrapper (`faas_store::CachedStore`, OpenWhisk's identity cache),
/// which drops what a write changes and, in a cluster, what other controllers announce on the
/// bus's `cacheInvalidation` topic; there is then exactly one identity cache to invalidate.
pub struct StoreAuthenticator {
    store: Arc<dyn Store>,
}

impl fmt::Debug for StoreAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreAuthenticator")
            .field("store", &self.store)
            .finish()
    }
}

impl StoreAuthenticator {
    /// Authenticates against `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Authenticator for StoreAuthenticator {
    async fn authenticate(&self, key: &AuthKey) -> Result<Identity> {
        match self.store.find_identity(key).await {
            Ok(id) => Ok(id),
            Err(Error::NotFound { .. }) => Err(Error::Unauthenticated),
            Err(e) => Err(e),
        }
    }
}
