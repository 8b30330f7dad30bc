//! The adapter factories the platform links, by URL scheme: the built-in ones, and yours.
//!
//! [`Adapters::default`] registers every adapter this build links; a platform of your own adds
//! its schemes before it starts (see the `custom-store` example):
//!
//! ```
//! use std::sync::Arc;
//! use faas_core::Store;
//! use faas_platform::Adapters;
//!
//! let mut adapters = Adapters::default();
//! adapters.stores.register("counting", |_url| async {
//!     Ok(Arc::new(faas_store::MemoryStore::new()) as Arc<dyn Store>)
//! });
//! assert!(adapters.stores.knows("counting") && adapters.stores.knows("memory"));
//! ```

use std::sync::Arc;

use faas_core::registry::{AdapterUrl, BusRegistry, ExecutorRegistry, StoreRegistry};
use faas_core::{Executor, MessageBus, Result, Store};

/// The adapter factories a platform knows, one registry per trait (cheap to clone).
#[derive(Debug, Clone)]
pub struct Adapters {
    /// `Store` factories (`--store`).
    pub stores: StoreRegistry,
    /// `MessageBus` factories (`--bus`).
    pub buses: BusRegistry,
    /// `Executor` factories (`--executor`).
    pub executors: ExecutorRegistry,
}

impl Adapters {
    /// No adapter at all: register each one you want.
    pub fn empty() -> Self {
        Self {
            stores: StoreRegistry::new("store"),
            buses: BusRegistry::new("bus"),
            executors: ExecutorRegistry::new("executor"),
        }
    }
}

impl Default for Adapters {
    /// The built-in adapters: `memory:`, `inproc:`, `process:`, and (features on by default)
    /// `sqlite:…`, `couchdb://…`, `kafka://…` and `docker:`.
    fn default() -> Self {
        let Self {
            mut stores,
            mut buses,
            mut executors,
        } = Self::empty();
        // `memory:?max_activations=10000&max_activation_bytes=134217728`: activation records
        // are retained oldest-first-out within both bounds (those are the defaults).
        stores.register("memory", |u: AdapterUrl| async move {
            Ok(Arc::new(memory_store(&u.url)?) as Arc<dyn Store>)
        });
        // `sqlite:PATH?activation_ttl=7d&max_activations=1000000`: the durable embedded store,
        // standalone's default. One platform per file (the store locks it).
        #[cfg(feature = "sqlite")]
        stores.register("sqlite", |u: AdapterUrl| async move {
            let store = faas_store::SqliteStore::from_url(&u.url).await?;
            Ok(Arc::new(store) as Arc<dyn Store>)
        });
        // `couchdb://[user:pass@]host:port/?prefix=whisk_local_`: OpenWhisk's databases on
        // CouchDB (or pouchdb-server). Controllers put OpenWhisk's read cache in front (see
        // `controller_store`).
        #[cfg(feature = "couchdb")]
        stores.register("couchdb", |u: AdapterUrl| async move {
            let store = faas_store::CouchDbStore::builder()
                .with_url(u.url)
                .build()
                .await?;
            Ok(Arc::new(store) as Arc<dyn Store>)
        });
        // `inproc:` (in memory) or `inproc:?journal=PATH[&sync=normal|full]` (durable: what is
        // published and not yet committed survives a crash; standalone's default beside a
        // SQLite store, see `config::bus_journal_for`).
        buses.register("inproc", |u: AdapterUrl| async move {
            let bus = tokio::task::spawn_blocking(move || faas_bus::InProcessBus::from_url(&u.url))
                .await
                .map_err(|e| {
                    faas_core::Error::internal(format!("opening the bus failed: {e}"))
                })??;
            if let Some(file) = bus.journal_file() {
                tracing::info!(journal = file, "the in-process bus is journaled");
            }
            Ok(Arc::new(bus) as Arc<dyn MessageBus>)
        });
        // `kafka://host:9092[,host:port][?prefix=…&client_id=…]`: any Kafka-API broker.
        #[cfg(feature = "kafka")]
        buses.register("kafka", |u: AdapterUrl| async move {
            let bus = faas_bus::kafka::KafkaBus::from_url(&u.url)?;
            Ok(Arc::new(bus) as Arc<dyn MessageBus>)
        });
        // `process:?sandbox=on&network=host&pids_limit=1024`: local runner processes, each
        // in a sandbox; `sandbox=off` is the insecure mode.
        executors.register("process", |u: AdapterUrl| async move {
            let e = faas_exec::process::ProcessExecutor::from_url(&u.url)?;
            if !e.is_sandboxed() {
                eprintln!("{INSECURE_BANNER}");
            }
            Ok(Arc::new(e) as Arc<dyn Executor>)
        });
        // `docker:?network=none&invoker=0&user_memory=2048&pids_limit=1024`: actions in
        // containers of locally built runtime images.
        #[cfg(feature = "docker")]
        // An invoker's URL names its id (`invoker=N`, filled in by `executor_url`): only then
        // does the factory remove that invoker's orphans. A controller makes one only to learn
        // the runtime kinds and must not touch any container.
        executors.register("docker", |u: AdapterUrl| async move {
            let e = faas_exec::docker::DockerExecutor::from_url(&u.url).await?;
            let owns_containers = u
                .url
                .split_once('?')
                .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("invoker=")));
            if owns_containers {
                let removed = e.remove_orphans().await?;
                if removed > 0 {
                    tracing::info!(
                        removed,
                        invoker = e.invoker_id(),
                        "removed containers left by a previous run"
                    );
                }
            }
            Ok(Arc::new(e) as Arc<dyn Executor>)
        });
        Self {
            stores,
            buses,
            executors,
        }
    }
}

/// Printed to stderr when actions run without a sandbox.
const INSECURE_BANNER: &str = "\
################################################################################
# WARNING: INSECURE MODE (process:?sandbox=off)                               #
# Actions run WITHOUT a sandbox, as this platform's user, with no memory       #
# limit: action code can read this platform's memory, environment, arguments  #
# and files (the guest key included) and those of other actions.              #
# Use it only for actions you trust.                                           #
################################################################################";

/// The in-memory store an adapter URL describes: `memory:` with optional
/// `max_activations` and `max_activation_bytes` (activation retention).
pub fn memory_store(url: &str) -> Result<faas_store::MemoryStore> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let mut store = faas_store::MemoryStore::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let n: u64 = v.trim().parse().map_err(|_| {
            faas_core::Error::bad_request(format!(
                "memory store URL: '{k}' must be a number, not '{v}'"
            ))
        })?;
        store = match k {
            "max_activations" => {
                store.with_max_activations(usize::try_from(n).unwrap_or(usize::MAX))
            }
            "max_activation_bytes" => store.with_max_activation_bytes(n),
            _ => {
                return Err(faas_core::Error::bad_request(format!(
                    "memory store URL: unknown setting '{k}'; valid: max_activations, max_activation_bytes"
                )));
            }
        };
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_urls() {
        let dbg = format!("{:?}", memory_store("memory:").unwrap());
        assert!(dbg.contains("max_activations: 10000"), "{dbg}");
        let s = memory_store("memory:?max_activations=5&max_activation_bytes=1000").unwrap();
        let dbg = format!("{s:?}");
        assert!(
            dbg.contains("max_activations: 5") && dbg.contains("max_activation_bytes: 1000"),
            "{dbg}"
        );
        for bad in ["memory:?max_activations=x", "memory:?nope=1"] {
            assert_eq!(memory_store(bad).unwrap_err().status(), 400, "{bad}");
        }
    }
}
