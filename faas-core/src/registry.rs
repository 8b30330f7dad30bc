//! Adapter factories chosen at run time by URL scheme (`memory:`, `inproc:`, `process:`, ...).
//!
//! A platform keeps one [`Registry`] per trait ([`StoreRegistry`], [`BusRegistry`],
//! [`ExecutorRegistry`]) and builds each adapter from the URL its operator gave
//! (`--store couchdb://host:5984/`): the scheme picks the factory, the factory reads the rest.
//! Nothing else in a platform names a concrete adapter, so a third-party adapter needs one
//! registration line:
//!
//! ```
//! use std::sync::Arc;
//! use faas_core::registry::{AdapterUrl, StoreRegistry};
//! use faas_core::Store;
//!
//! # #[derive(Debug, Default)] struct MyStore;
//! # fn my_store(_url: &str) -> faas_core::Result<Arc<dyn Store>> { unimplemented!() }
//! let mut stores = StoreRegistry::new("store");
//! stores.register("redis", |u: AdapterUrl| async move { my_store(&u.url) });
//! assert_eq!(stores.schemes(), ["redis"]);
//! ```
//!
//! Only the generic mechanism lives here (this crate depends on no adapter); the built-in
//! factories are registered by the `faas-platform` crate.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::{Error, Executor, MessageBus, Result, Store};

/// A parsed adapter URL: `scheme:rest` (for example `memory:` or `couchdb://host:5984/`).
#[derive(Clone, PartialEq, Eq)]
pub struct AdapterUrl {
    /// The part before the first `:`, lower-cased.
    pub scheme: String,
    /// The whole URL as given (trimmed; a bare scheme name gets its `:`).
    pub url: String,
}

impl fmt::Debug for AdapterUrl {
    // URLs may carry credentials (`couchdb://user:pass@...`): show only the scheme.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdapterUrl({}:…)", self.scheme)
    }
}

fn is_scheme(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
}

impl AdapterUrl {
    /// Parses `scheme:rest`; a bare word (`memory`) is taken as `memory:`.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        let scheme = s.split(':').next().unwrap_or_default();
        if !is_scheme(scheme) {
            return Err(Error::bad_request(format!(
                "adapter URL '{s}' must look like scheme:..."
            )));
        }
        Ok(Self {
            scheme: scheme.to_ascii_lowercase(),
            url: normalize(s),
        })
    }
}

/// A bare scheme name (`docker`) as its URL (`docker:`); anything else unchanged (trimmed).
pub fn normalize(url: &str) -> String {
    let url = url.trim();
    if is_scheme(url) {
        format!("{url}:")
    } else {
        url.to_string()
    }
}

type Factory<T> = Arc<dyn Fn(AdapterUrl) -> BoxFuture<'static, Result<Arc<T>>> + Send + Sync>;

/// Factories for one kind of adapter (`T` is `dyn Store`, `dyn MessageBus`, ...), by scheme.
///
/// Cheap to clone (the factories are shared).
pub struct Registry<T: ?Sized> {
    what: &'static str,
    factories: BTreeMap<String, Factory<T>>,
}

/// `Store` factories by scheme.
pub type StoreRegistry = Registry<dyn Store>;
/// `MessageBus` factories by scheme.
pub type BusRegistry = Registry<dyn MessageBus>;
/// `Executor` factories by scheme.
pub type ExecutorRegistry = Registry<dyn Executor>;

impl<T: ?Sized> Clone for Registry<T> {
    fn clone(&self) -> Self {
        Self {
            what: self.what,
            factories: self.factories.clone(),
        }
    }
}

impl<T: ?Sized> fmt::Debug for Registry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("what", &self.what)
            .field("schemes", &self.factories.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<T: ?Sized + Send + Sync + 'static> Registry<T> {
    /// An empty registry for adapters of `what` (used in messages: "store", "bus", ...).
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            factories: BTreeMap::new(),
        }
    }

    /// Registers `factory` for `scheme` (lower case, without the `:`), replacing any factory
    /// registered for it before.
    pub fn register<F, Fut>(&mut self, scheme: &str, factory: F)
    where
        F: Fn(AdapterUrl) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>>> + Send + 'static,
    {
        self.factories.insert(
            scheme.to_ascii_lowercase(),
            Arc::new(move |u| Box::pin(factory(u))),
        );
    }

    /// Whether a factory is registered for `scheme`.
    pub fn knows(&self, scheme: &str) -> bool {
        self.factories.contains_key(&scheme.to_ascii_lowercase())
    }

    /// The registered schemes, in order.
    pub fn schemes(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    /// Parses `url` and checks that a factory knows its scheme, without building anything
    /// (a command line can be refused before anything starts); an unknown scheme is a `400`
    /// that lists the known ones.
    pub fn check(&self, url: &str) -> Result<AdapterUrl> {
        let u = AdapterUrl::parse(url)?;
        if self.factories.contains_key(&u.scheme) {
            return Ok(u);
        }
        Err(Error::bad_request(format!(
            "unknown {} '{}:'; available: {}",
            self.what,
            u.scheme,
            self.schemes()
                .iter()
                .map(|s| format!("{s}:"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// Builds the adapter named by `url` (an unknown scheme fails as in
    /// [`check`](Self::check)).
    pub async fn make(&self, url: &str) -> Result<Arc<T>> {
        let u = self.check(url)?;
        match self.factories.get(&u.scheme) {
            Some(f) => f(u).await,
            None => Err(Error::internal("a checked scheme has no factory")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn picks_by_scheme() {
        let mut r: Registry<str> = Registry::new("thing");
        r.register("a", |_u| async { Ok(Arc::<str>::from("A")) });
        r.register("B", |u: AdapterUrl| async move {
            Ok(Arc::<str>::from(u.url.as_str()))
        });
        assert!(r.knows("b") && r.knows("A") && !r.knows("c"));
        assert_eq!(&*r.make("a:").await.unwrap(), "A");
        assert_eq!(&*r.make("b://x").await.unwrap(), "b://x");
        assert_eq!(&*r.make("B://x").await.unwrap(), "B://x");
        assert_eq!(r.check("b://x").unwrap().scheme, "b");
        let e = r.make("zz:").await.unwrap_err();
        assert_eq!(e.status(), 400);
        let e = e.to_string();
        assert!(
            e.contains("unknown thing 'zz:'") && e.contains("a:, b:"),
            "{e}"
        );
        assert!(r.make("").await.is_err());
        // A bare scheme name is its URL.
        assert_eq!(&*r.make("b").await.unwrap(), "b:");
        assert_eq!(normalize(" docker "), "docker:");
        assert_eq!(
            normalize("memory:?max_activations=1"),
            "memory:?max_activations=1"
        );
        let dbg = format!("{:?}", AdapterUrl::parse("couchdb://u:secret@h/").unwrap());
        assert!(!dbg.contains("secret"));
    }
}
