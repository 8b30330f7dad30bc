//! Adapter factories chosen at run time by URL scheme (`memory:`, `inproc:`, `process:`, ...).
//!
//! The binary registers one factory per adapter it links; nothing else names a concrete adapter.
//! A third-party platform registers its own factories the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

use faas_core::{Error, Result};

/// A parsed adapter URL: `scheme:rest` (for example `memory:` or `couchdb://host:5984/`).
#[derive(Clone, PartialEq, Eq)]
pub struct AdapterUrl {
    /// The part before the first `:`.
    pub scheme: String,
    /// The whole URL as given.
    pub url: String,
}

impl fmt::Debug for AdapterUrl {
    // URLs may carry credentials (`couchdb://user:pass@...`): show only the scheme.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdapterUrl({}:…)", self.scheme)
    }
}

impl AdapterUrl {
    /// Parses `scheme:rest`; a bare word (`memory`) is taken as `memory:`.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        let scheme = s.split(':').next().unwrap_or_default();
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        {
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
    let bare = !url.is_empty()
        && url
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.');
    if bare {
        format!("{url}:")
    } else {
        url.to_string()
    }
}

type Factory<T> = Box<dyn Fn(AdapterUrl) -> BoxFuture<'static, Result<Arc<T>>> + Send + Sync>;

/// Factories for one kind of adapter (`T` is `dyn Store`, `dyn MessageBus`, ...).
pub struct Registry<T: ?Sized> {
    what: &'static str,
    factories: BTreeMap<String, Factory<T>>,
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

    /// Registers `factory` for `scheme`.
    pub fn register<F, Fut>(&mut self, scheme: &str, factory: F)
    where
        F: Fn(AdapterUrl) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Arc<T>>> + Send + 'static,
    {
        self.factories
            .insert(scheme.to_string(), Box::new(move |u| Box::pin(factory(u))));
    }

    /// The registered schemes.
    pub fn schemes(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    /// Builds the adapter named by `url`.
    pub async fn make(&self, url: &str) -> Result<Arc<T>> {
        let u = AdapterUrl::parse(url)?;
        let f = self.factories.get(&u.scheme).ok_or_else(|| {
            Error::bad_request(format!(
                "unknown {} '{}:'; available: {}",
                self.what,
                u.scheme,
                self.schemes()
                    .iter()
                    .map(|s| format!("{s}:"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        f(u).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn picks_by_scheme() {
        let mut r: Registry<str> = Registry::new("thing");
        r.register("a", |_u| async { Ok(Arc::<str>::from("A")) });
        r.register("b", |u: AdapterUrl| async move {
            Ok(Arc::<str>::from(u.url.as_str()))
        });
        assert_eq!(&*r.make("a:").await.unwrap(), "A");
        assert_eq!(&*r.make("b://x").await.unwrap(), "b://x");
        let e = r.make("zz:").await.unwrap_err().to_string();
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
