//! The `Authenticator` trait and the store-backed Basic authenticator with a cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
#[async_trait]
pub trait Authenticator: fmt::Debug + Send + Sync + 'static {
    /// Checks `key`.
    async fn authenticate(&self, key: &AuthKey) -> Result<Identity>;
}

/// `dyn Authenticator`.
pub type DynAuthenticator = dyn Authenticator;

/// Basic `uuid:key` authentication against the [`Store`]'s subjects, with a time-bounded
/// cache of successful lookups (OpenWhisk caches identities for 5 minutes).
pub struct StoreAuthenticator {
    store: Arc<dyn Store>,
    ttl: Duration,
    max_entries: usize,
    // A std Mutex: held only for a hash-map lookup, never across an await.
    cache: Mutex<HashMap<AuthKey, (Identity, Instant)>>,
}

impl fmt::Debug for StoreAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreAuthenticator")
            .field("store", &self.store)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl StoreAuthenticator {
    /// Authenticates against `store`, caching identities for 5 minutes.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            ttl: Duration::from_secs(300),
            max_entries: 100_000,
            cache: Mutex::new(HashMap::new()),
        }
    }
    /// With a cache lifetime (`Duration::ZERO` disables caching).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
    /// Drops every cached identity (call when subjects or limits change).
    pub fn invalidate_all(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }
}

#[async_trait]
impl Authenticator for StoreAuthenticator {
    async fn authenticate(&self, key: &AuthKey) -> Result<Identity> {
        if let Ok(c) = self.cache.lock()
            && let Some((id, at)) = c.get(key)
            && at.elapsed() < self.ttl
        {
            return Ok(id.clone());
        }
        let id = match self.store.find_identity(key).await {
            Ok(id) => id,
            Err(Error::NotFound { .. }) => return Err(Error::Unauthenticated),
            Err(e) => return Err(e),
        };
        if !self.ttl.is_zero()
            && let Ok(mut c) = self.cache.lock()
        {
            if c.len() >= self.max_entries {
                c.clear();
            }
            c.insert(key.clone(), (id.clone(), Instant::now()));
        }
        Ok(id)
    }
}
