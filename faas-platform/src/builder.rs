//! [`Platform::builder`]: a controller and/or an invoker assembled from parts or URLs.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use faas_core::{Executor, MessageBus, Result, Store};

use crate::adapters::Adapters;
use crate::config::NodeConfig;
use crate::standalone::{self, InvokerNode, Running};

/// A change to the controller's HTTP application before it is served, for example an extra
/// tower layer: `Box::new(|router| router.layer(my_layer))` (see
/// [`PlatformBuilder::map_router`]).
pub type RouterMap = Box<dyn FnOnce(Router) -> Router + Send>;

/// The entry point of the assembly API: `Platform::builder()`.
#[derive(Debug, Clone, Copy)]
pub struct Platform;

impl Platform {
    /// A builder with [`NodeConfig::default`] (in memory: `memory:`, `inproc:`, `process:`;
    /// API on 127.0.0.1:3233) and the built-in [`Adapters`].
    pub fn builder() -> PlatformBuilder {
        PlatformBuilder::new()
    }
}

/// Assembles a platform node: each of the store, the bus and the executor is either given as
/// an `Arc<dyn …>` part or made from its URL in the [`NodeConfig`] by the [`Adapters`]'
/// factories; then [`start`](Self::start) (controller and invoker in one process, like
/// `faas-platform standalone`), [`start_controller`](Self::start_controller) or
/// [`start_invoker`](Self::start_invoker).
///
/// ```no_run
/// # async fn f() -> faas_core::Result<()> {
/// use std::sync::Arc;
/// use faas_platform::Platform;
///
/// let running = Platform::builder()
///     .listen("127.0.0.1:0".parse().expect("an address"))
///     .store(Arc::new(faas_store::MemoryStore::new()))
///     .start()
///     .await?;
/// println!("API on http://{}, guest key {}", running.addr, running.guest.compact());
/// running.shutdown().await;
/// # Ok(()) }
/// ```
pub struct PlatformBuilder {
    config: NodeConfig,
    adapters: Adapters,
    store: Option<Arc<dyn Store>>,
    bus: Option<Arc<dyn MessageBus>>,
    executor: Option<Arc<dyn Executor>>,
    map_router: Option<RouterMap>,
}

impl fmt::Debug for PlatformBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformBuilder")
            .field("config", &self.config)
            .field("adapters", &self.adapters)
            .field("store", &self.store)
            .field("bus", &self.bus)
            .field("executor", &self.executor)
            .field("map_router", &self.map_router.is_some())
            .finish()
    }
}

impl Default for PlatformBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PlatformBuilder {
    /// As [`Platform::builder`].
    pub fn new() -> Self {
        Self {
            config: NodeConfig::default(),
            adapters: Adapters::default(),
            store: None,
            bus: None,
            executor: None,
            map_router: None,
        }
    }

    /// With these settings (for example [`NodeConfig::resolve`]'s, from flags and a file).
    pub fn config(mut self, config: NodeConfig) -> Self {
        self.config = config;
        self
    }

    /// Serving the API on `addr` (port 0: any free port, see [`Running::addr`]).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }

    /// Making the adapters not given as parts with these factories.
    pub fn adapters(mut self, adapters: Adapters) -> Self {
        self.adapters = adapters;
        self
    }

    /// With this store instead of the one `config.store` names. It is used as it is: a
    /// controller puts its read cache only in front of a shared store made from a URL.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// With this bus instead of the one `config.bus` names.
    pub fn bus(mut self, bus: Arc<dyn MessageBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// With this executor instead of the one `config.executor` names (a controller without
    /// an invoker uses it only to learn the kinds it offers).
    pub fn executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// Passes the controller's HTTP application through `map` before serving it: the seam
    /// for extra tower layers (`|router| router.layer(my_layer)`, outermost of the stack) or
    /// extra routes. Several calls compose, the first applied first.
    pub fn map_router(mut self, map: impl FnOnce(Router) -> Router + Send + 'static) -> Self {
        self.map_router = Some(match self.map_router.take() {
            Some(before) => Box::new(move |r| map(before(r))),
            None => Box::new(map),
        });
        self
    }

    /// The store and the bus, given or made (in that order), and whether the store is shared.
    async fn store_and_bus(&mut self) -> Result<(Arc<dyn Store>, bool, Arc<dyn MessageBus>)> {
        let (store, shared) = match self.store.take() {
            Some(s) => (s, false),
            None => {
                let url = faas_core::registry::AdapterUrl::parse(&self.config.store)?;
                let store = self.adapters.stores.make(&url.url).await?;
                (store, url.scheme != "memory")
            }
        };
        let bus = match self.bus.take() {
            Some(b) => b,
            None => self.adapters.buses.make(&self.config.bus).await?,
        };
        Ok((store, shared, bus))
    }

    /// The executor, given or made from `url`.
    async fn executor_from(&mut self, url: &str) -> Result<Arc<dyn Executor>> {
        match self.executor.take() {
            Some(e) => Ok(e),
            None => self.adapters.executors.make(url).await,
        }
    }

    /// Starts controller and invoker `config.id` in one process (`faas-platform standalone`):
    /// registers the guest subject and the `whisk.system` identity, starts the invoker, the
    /// controller's consumers and the API, and returns once the invoker reported healthy
    /// (at most 10 s).
    pub async fn start(mut self) -> Result<Running> {
        let (store, shared, bus) = self.store_and_bus().await?;
        let executor = self
            .executor_from(&standalone::executor_url(&self.config))
            .await?;
        let manifest = executor.runtimes();
        standalone::serve_controller(
            &self.config,
            store,
            shared,
            bus,
            manifest,
            Some(executor),
            self.map_router,
        )
        .await
    }

    /// Starts a controller only (`faas-platform controller`): as [`start`](Self::start)
    /// without the invoker. Invokers sharing its store and bus run the actions.
    pub async fn start_controller(mut self) -> Result<Running> {
        let (store, shared, bus) = self.store_and_bus().await?;
        // The controller validates kinds against what the invokers can run. Without an
        // executor of its own it uses the executor named in the config (the invokers' default,
        // `docker:`, unless told otherwise) to learn the manifest; it creates no sandbox.
        let url = self.config.executor.clone();
        let manifest = self.executor_from(&url).await?.runtimes();
        standalone::serve_controller(
            &self.config,
            store,
            shared,
            bus,
            manifest,
            None,
            self.map_router,
        )
        .await
    }

    /// Starts an invoker only (`faas-platform invoker`): consumes `invoker<config.id>` and
    /// pings `health`. It serves no HTTP (besides `/metrics` on `config.metrics.listen`).
    pub async fn start_invoker(mut self) -> Result<InvokerNode> {
        let metrics = standalone::node_metrics(&self.config);
        let (store, _, bus) = self.store_and_bus().await?;
        let (store, bus) = standalone::instrument(metrics.as_ref(), store, bus);
        let executor = self
            .executor_from(&standalone::executor_url(&self.config))
            .await?;
        let config = &self.config;
        let api_host = config
            .api_host
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen));
        let metrics_server = standalone::start_metrics_server(config, metrics.as_ref()).await?;
        let tracer = standalone::node_tracer(config)?;
        let invoker = standalone::start_invoker_with(
            config,
            store,
            bus,
            executor,
            api_host,
            metrics.as_ref(),
            &tracer,
        )
        .await?;
        Ok(InvokerNode {
            invoker,
            metrics_server,
        })
    }
}
