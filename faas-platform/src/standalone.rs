//! `standalone` mode: controller and invoker in one process, over adapters chosen by URL.

use std::net::SocketAddr;
use std::sync::Arc;

use faas_core::identity::{AuthKey, Subject};
use faas_core::metrics::{InstrumentedBus, InstrumentedStore, MetricSource, Sample};
use faas_core::names::EntityName;
use faas_core::sharding::ShardingScheduler;
use faas_core::{
    Authenticator, Executor, InvokerInstanceId, MessageBus, Result, Scheduler, Store,
    StoreAuthenticator, StoreExt,
};
use faas_exec::invoker::{InvokerConfig, InvokerHandle, InvokerService, run_invoker};
use faas_exec::pool::{ContainerPool, StemCell};
use faas_http::engine::{ShutdownReport, Unfinished};
use faas_http::metrics::{MetricsConfig, PrometheusMetrics};
use faas_http::{Controller, ControllerConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use crate::adapters::{Adapters, memory_store};
use crate::builder::{Platform, PlatformBuilder, RouterMap};
use crate::config::NodeConfig;

/// Where the guest namespace's key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestKey {
    /// From `--guest-auth` (it replaces any stored key).
    Given,
    /// Found in the store: a platform restarted on a durable store keeps its guest key.
    Kept,
    /// Made at random, because none was given and the store had none.
    Generated,
}

/// A running standalone platform.
#[derive(Debug)]
pub struct Running {
    /// Where the API is served.
    pub addr: SocketAddr,
    /// The guest namespace's credentials.
    pub guest: AuthKey,
    /// Where they came from.
    pub guest_key: GuestKey,
    /// The `whisk.system` namespace's credentials, for system actions that call the API as
    /// `whisk.system` (never printed).
    pub system: AuthKey,
    /// The store in use.
    pub store: Arc<dyn Store>,
    controller: Controller,
    /// The HTTP application served (the controller's, through `map_router`).
    app: axum::Router,
    invoker: Option<InvokerHandle>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    metrics_server: Option<MetricsServer>,
}

/// The metrics registry of a node: `None` when metrics are off (`--no-metrics`).
pub fn node_metrics(config: &NodeConfig) -> Option<Arc<PrometheusMetrics>> {
    config.metrics.enabled.then(|| {
        Arc::new(PrometheusMetrics::new(
            MetricsConfig::default().with_max_actions(config.metrics.max_actions),
        ))
    })
}

/// The tracer of a node: OTLP export when `config.otlp_endpoint` is set (feature `otlp`),
/// else disabled.
pub fn node_tracer(config: &NodeConfig) -> Result<faas_core::trace::Tracer> {
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(faas_core::trace::Tracer::disabled());
    };
    #[cfg(feature = "otlp")]
    {
        Ok(crate::otlp::start(endpoint, "faas-platform")?.0)
    }
    #[cfg(not(feature = "otlp"))]
    {
        Err(faas_core::Error::bad_request(format!(
            "cannot export traces to {endpoint}: this build has no OTLP exporter (feature `otlp`)"
        )))
    }
}

/// `store` and `bus` recording their operations in `metrics` (unchanged without metrics).
pub fn instrument(
    metrics: Option<&Arc<PrometheusMetrics>>,
    store: Arc<dyn Store>,
    bus: Arc<dyn MessageBus>,
) -> (Arc<dyn Store>, Arc<dyn MessageBus>) {
    match metrics {
        Some(m) => (
            Arc::new(InstrumentedStore::new(store, m.handle())),
            Arc::new(InstrumentedBus::new(bus, m.handle())),
        ),
        None => (store, bus),
    }
}

/// A running `/metrics` listener of its own (`--metrics-listen`); stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    /// The address it serves on.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the `/metrics` listener of `config.metrics.listen`, if any.
pub async fn start_metrics_server(
    config: &NodeConfig,
    metrics: Option<&Arc<PrometheusMetrics>>,
) -> Result<Option<MetricsServer>> {
    let (Some(addr), Some(metrics)) = (config.metrics.listen, metrics) else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        faas_core::Error::unavailable(format!("cannot listen on {addr} for metrics: {e}"))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| faas_core::Error::internal(e.to_string()))?;
    let task = tokio::spawn(faas_http::metrics::serve_metrics(
        listener,
        Arc::clone(metrics),
        std::future::pending(),
    ));
    tracing::info!(%addr, "metrics served at /metrics");
    Ok(Some(MetricsServer { addr, task }))
}

/// An invoker-only node: the invoker and its metrics listener.
#[derive(Debug)]
pub struct InvokerNode {
    /// The invoker.
    pub invoker: InvokerHandle,
    /// Its `/metrics` listener, when configured.
    pub metrics_server: Option<MetricsServer>,
}

impl Running {
    /// The controller.
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// Sends one request to the HTTP application this platform serves (every tower layer
    /// included), in process, as the guest namespace; answers the status and the body as JSON
    /// (`Value::Null` when it is empty or not JSON). For embedding programs and examples:
    /// clients over the network use [`addr`](Self::addr).
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(http::StatusCode, serde_json::Value)> {
        use http_body_util::BodyExt as _;
        use tower::ServiceExt as _;
        let body = body.map_or_else(axum::body::Body::empty, |b| b.to_string().into());
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::AUTHORIZATION, self.guest.basic_header())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| faas_core::Error::bad_request(format!("bad request {path}: {e}")))?;
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| faas_core::Error::internal(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| faas_core::Error::internal(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// The address of the `/metrics` listener of its own, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|m| m.addr)
    }

    /// Resolves when the HTTP server ends (it ends only on shutdown or a listener failure).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        match self.server.as_mut() {
            Some(h) => {
                let r = h.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
                self.server = None;
                r
            }
            None => Ok(()),
        }
    }

    /// Stops without losing what was accepted, within the server's graceful-shutdown deadline
    /// ([`ServerConfig::shutdown_deadline`](faas_http::ServerConfig::shutdown_deadline)):
    ///
    /// 1. stops taking connections; requests in progress may finish, and new invokes on open
    ///    connections are refused (`503`);
    /// 2. lets the activations, sequences and compositions in flight finish, until the
    ///    deadline;
    /// 3. stops the local invoker (it finishes what it runs in the time left, then removes its
    ///    sandboxes);
    /// 4. writes a record saying the platform shut down for each activation accepted and not
    ///    completed (see [`Engine::shutdown`](faas_http::engine::Engine::shutdown)). A
    ///    controller without a local invoker leaves atomic activations to the invokers, which
    ///    still run them from the durable bus.
    pub async fn shutdown(mut self) -> ShutdownReport {
        let grace = self.controller.config().server.shutdown_deadline;
        let deadline = tokio::time::Instant::now() + grace;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let engine = self.controller.engine().clone();
        if !engine.drain(deadline).await {
            tracing::warn!(
                activations = engine.in_flight(),
                compositions = engine.compositions_running(),
                "shutdown: work still in flight at the deadline"
            );
        }
        if let Err(e) = self.wait().await {
            tracing::warn!(error = %e, "server ended with an error");
        }
        let unfinished = match self.invoker.take() {
            Some(inv) => {
                inv.shutdown_within(
                    deadline.saturating_duration_since(tokio::time::Instant::now()),
                )
                .await;
                Unfinished::Record
            }
            None => Unfinished::LeaveToInvokers,
        };
        engine.shutdown(unfinished).await
    }
}

/// Builds the invoker named by `config.id` (a number) over `store`, `bus` and `executor`, and
/// starts consuming `invoker<N>` and pinging `health`.
pub async fn start_invoker_with(
    config: &NodeConfig,
    store: Arc<dyn Store>,
    bus: Arc<dyn MessageBus>,
    executor: Arc<dyn Executor>,
    api_host: String,
    metrics: Option<&Arc<PrometheusMetrics>>,
    tracer: &faas_core::trace::Tracer,
) -> Result<InvokerHandle> {
    let n: u32 = config.id.parse().map_err(|_| {
        faas_core::Error::bad_request(format!(
            "an invoker id must be a number, not '{}'",
            config.id
        ))
    })?;
    let manifest = executor.runtimes();
    let instance = InvokerInstanceId::new(n, config.user_memory_mb);
    let inv_config = InvokerConfig::new(instance)
        .with_limits(config.limits.clone())
        .with_api_host(api_host)
        .with_metrics(metrics.map(|m| m.handle()).unwrap_or_default())
        .with_tracer(tracer.clone())
        .with_user_events(config.user_events);
    let mut stems = Vec::new();
    if config.prewarm_nodejs > 0 && manifest.default_kind("nodejs").is_some() {
        stems.push(StemCell::new("nodejs:default", 256, config.prewarm_nodejs));
    }
    let pool = ContainerPool::new(executor, inv_config.pool_config().with_stem_cells(stems))?;
    let service = InvokerService::new(inv_config, store, bus, pool);
    run_invoker(service).await
}

/// The executor URL with this invoker's id and memory filled in (the Docker executor labels
/// its containers with the invoker id, so a restarted invoker removes only its own orphans).
pub(crate) fn executor_url(config: &NodeConfig) -> String {
    #[cfg(feature = "docker")]
    {
        faas_exec::docker::invoker_url(&config.executor, &config.id, config.user_memory_mb)
    }
    #[cfg(not(feature = "docker"))]
    {
        config.executor.clone()
    }
}

/// Starts an invoker node (`faas-platform invoker`): its adapters from `config`, then the
/// invoker. It serves no HTTP. (The same as [`PlatformBuilder::start_invoker`].)
pub async fn start_invoker(config: &NodeConfig, adapters: &Adapters) -> Result<InvokerNode> {
    builder(config, adapters).start_invoker().await
}

/// Starts a controller node (`faas-platform controller`): registers the guest subject and the
/// `whisk.system` identity, starts the controller's consumers and serves the API on
/// `config.listen` (with the admin API if `config.admin_auth` is set). (The same as
/// [`PlatformBuilder::start_controller`].)
pub async fn start_controller(config: &NodeConfig, adapters: &Adapters) -> Result<Running> {
    builder(config, adapters).start_controller().await
}

/// Starts the platform in one process (`faas-platform standalone`): builds the adapters named
/// in `config`, registers the guest subject, starts invoker `config.id` and controller
/// `config.id`, and serves the API on `config.listen`. (The same as
/// [`PlatformBuilder::start`].)
pub async fn start(config: &NodeConfig, adapters: &Adapters) -> Result<Running> {
    builder(config, adapters).start().await
}

fn builder(config: &NodeConfig, adapters: &Adapters) -> PlatformBuilder {
    Platform::builder()
        .config(config.clone())
        .adapters(adapters.clone())
}

/// The subject and namespace of the system's own identity.
pub use faas_http::catalog::SYSTEM_NAMESPACE;

/// The `whisk.system` identity's key: read from the store, or created there (with a random
/// key) by the first controller to start. Idempotent, and safe when several controllers start
/// at once (the create is conditional; the losers read the winner's key). An existing record
/// is kept as it is: its key does not change across restarts. If the record exists without a
/// `whisk.system` namespace (edited by hand), one is added.
pub async fn ensure_system_identity(store: &dyn Store) -> Result<AuthKey> {
    let ns = EntityName::new(SYSTEM_NAMESPACE)?;
    for _ in 0..8 {
        match store.get_subject(SYSTEM_NAMESPACE).await {
            Ok(v) => {
                if let Some(entry) = v.value.namespace(&ns) {
                    return Ok(AuthKey {
                        uuid: entry.uuid.clone(),
                        key: entry.key.clone(),
                    });
                }
                let key = AuthKey::generate();
                let mut record = v.value;
                record.namespaces.push(faas_core::identity::NamespaceKey {
                    name: ns.clone(),
                    uuid: key.uuid.clone(),
                    key: key.key.clone(),
                });
                match store.put_subject(&record, Some(&v.rev)).await {
                    Ok(_) => return Ok(key),
                    Err(faas_core::Error::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(faas_core::Error::NotFound { .. }) => {
                let key = AuthKey::generate();
                match store
                    .put_subject(&Subject::single(ns.clone(), &key), None)
                    .await
                {
                    Ok(_) => return Ok(key),
                    Err(faas_core::Error::AlreadyExists { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(faas_core::Error::conflict(SYSTEM_NAMESPACE))
}

/// The store a controller uses: a `shared` store (one made from a URL other than `memory:`)
/// gets OpenWhisk's entity and identity read cache, whose invalidations travel on the bus's
/// `cacheInvalidation` topic so that every controller drops entries another one changed.
async fn controller_store(
    config: &NodeConfig,
    store: Arc<dyn Store>,
    shared: bool,
    bus: &Arc<dyn MessageBus>,
    metrics: Option<&Arc<PrometheusMetrics>>,
) -> Result<(Arc<dyn Store>, Option<faas_store::Invalidations>)> {
    if !shared {
        return Ok((store, None));
    }
    // The cache announces its writes; it hears the others' through the controller's one bus
    // consumer (see `listen_for_invalidations`), not a consumer of its own.
    let instance = format!("controller{}", config.id);
    let cached = Arc::new(
        faas_store::CachedStore::from_arc(store)
            .with_announcer(Arc::clone(bus), instance.clone())
            .await?,
    );
    let invalidations = cached.invalidations(instance);
    if let Some(m) = metrics {
        m.handle()
            .add_source(Arc::new(CacheSource(Arc::clone(&cached))));
    }
    Ok((cached as Arc<dyn Store>, Some(invalidations)))
}

/// The entity and identity cache's hits and misses, read at scrape time (the hit ratio is
/// `hits / (hits + misses)`).
#[derive(Debug)]
struct CacheSource(Arc<faas_store::CachedStore<dyn Store>>);

impl MetricSource for CacheSource {
    fn collect(&self, out: &mut Vec<Sample>) {
        let (hits, misses) = self.0.hits_and_misses();
        let help = "Reads of the controller's entity and identity cache, by result";
        out.push(
            Sample::counter("faas_cache_requests_total", help, hits as f64)
                .with_label("result", "hit"),
        );
        out.push(
            Sample::counter("faas_cache_requests_total", help, misses as f64)
                .with_label("result", "miss"),
        );
    }
}

/// Has the controller's consumer read `cacheInvalidation` for the cache (before it starts).
fn listen_for_invalidations(
    controller: &Controller,
    invalidations: Option<faas_store::Invalidations>,
) -> Result<()> {
    let Some(inv) = invalidations else {
        return Ok(());
    };
    let gap = inv.clone();
    // As `CachedStore::with_bus` creates it: invalidations need not outlive the process.
    let config = faas_core::TopicConfig::default()
        .with_retention(std::time::Duration::from_secs(300))
        .transient();
    controller.engine().listen(
        faas_core::message::CACHE_INVALIDATION_TOPIC,
        config,
        move |payload| inv.apply(payload),
        move || gap.missed(),
    )
}

/// Installs (or upgrades) the `whisk.system` catalog: the built-in packages and the
/// operator's folders.
async fn install_catalog(config: &NodeConfig, controller: &Controller) -> Result<()> {
    let mut catalog = faas_http::catalog::Catalog::builtin()?;
    for dir in &config.catalog_dirs {
        catalog = catalog.merged(faas_http::catalog::Catalog::from_dir(dir)?);
    }
    let c = controller.config();
    tracing::info!(
        packages = catalog.packages().len(),
        "installing the whisk.system catalog"
    );
    let report = faas_http::catalog::install(
        controller.engine().store().as_ref(),
        &catalog,
        &c.limits,
        &c.manifest,
    )
    .await?;
    tracing::info!(
        written = report.written,
        unchanged = report.unchanged,
        deleted = report.deleted,
        skipped = report.skipped.len(),
        "whisk.system catalog installed"
    );
    Ok(())
}

/// Waits (at most 10 s) until the scheduler has heard a healthy invoker, so that a standalone
/// platform does not answer its first invokes with 503 while its own invoker's first ping is
/// on its way.
async fn await_healthy_invoker(scheduler: &dyn Scheduler) {
    let healthy = || {
        scheduler
            .invokers()
            .iter()
            .any(|h| h.state == faas_core::scheduler::InvokerState::Healthy)
    };
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let started = tokio::time::Instant::now();
        let mut told = false;
        while !healthy() {
            // Progress on the console when the first ping is slow (a loaded machine, a
            // Docker executor pulling its first containers up).
            if !told && started.elapsed() >= std::time::Duration::from_secs(1) {
                tracing::info!("waiting for the invoker to report healthy (up to 10 s)");
                told = true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    if waited.is_err() {
        tracing::warn!(
            "the invoker has not reported healthy yet; invokes answer 503 until it does"
        );
    }
}

/// Serves a controller over `store` (`shared`: see `controller_store`) and `bus`, offering
/// the kinds of `manifest`, with a local invoker over `executor` when there is one; the HTTP
/// application is passed through `map_router` when given.
pub(crate) async fn serve_controller(
    config: &NodeConfig,
    store: Arc<dyn Store>,
    shared: bool,
    bus: Arc<dyn MessageBus>,
    manifest: faas_core::RuntimeManifest,
    executor: Option<Arc<dyn Executor>>,
    map_router: Option<RouterMap>,
) -> Result<Running> {
    let metrics = node_metrics(config);
    let tracer = node_tracer(config)?;
    let (store, bus) = instrument(metrics.as_ref(), store, bus);
    let guest_ns = EntityName::new("guest")?;
    // `--guest-auth` sets the guest key (replacing a stored one); without it a key already in
    // the store is kept, so that a restart on a durable store does not lock clients out.
    let (guest, guest_key) = match &config.guest_auth {
        Some(s) => (AuthKey::parse(s)?, GuestKey::Given),
        None => match store.identity_for_namespace(&guest_ns).await {
            Ok(identity) => (identity.authkey, GuestKey::Kept),
            Err(faas_core::Error::NotFound { .. }) => (AuthKey::generate(), GuestKey::Generated),
            Err(e) => return Err(e),
        },
    };
    if guest_key != GuestKey::Kept {
        store
            .upsert_subject(&Subject::single(guest_ns, &guest))
            .await?;
    }
    let system = ensure_system_identity(store.as_ref()).await?;

    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        faas_core::Error::unavailable(format!("cannot listen on {}: {e}", config.listen))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| faas_core::Error::internal(e.to_string()))?;

    let local_invoker = executor.is_some();
    let invoker = match executor {
        Some(executor) => {
            let api_host = config
                .api_host
                .clone()
                .unwrap_or_else(|| format!("http://{addr}"));
            Some(
                start_invoker_with(
                    config,
                    Arc::clone(&store),
                    Arc::clone(&bus),
                    executor,
                    api_host,
                    metrics.as_ref(),
                    &tracer,
                )
                .await?,
            )
        }
        None => None,
    };

    let (store, invalidations) =
        controller_store(config, store, shared, &bus, metrics.as_ref()).await?;
    let scheduler: Arc<dyn Scheduler> =
        Arc::new(ShardingScheduler::new().with_cluster_size(config.cluster_size));
    let auth: Arc<dyn Authenticator> = Arc::new(StoreAuthenticator::new(Arc::clone(&store)));
    let mut ctl_config = ControllerConfig::new()
        .with_id(config.id.clone())
        .with_cluster_size(config.cluster_size)
        .with_limits(config.limits.clone())
        .with_manifest(manifest)
        .with_server(config.server.clone())
        .with_alarms(config.alarms.clone())
        .with_tracer(tracer)
        .with_user_events(config.user_events);
    if let Some(m) = &metrics {
        ctl_config = ctl_config.with_metrics(Arc::clone(m));
        if let Some(token) = &config.metrics.token {
            ctl_config = ctl_config.with_metrics_token(token.clone());
        }
    }
    if let Some(credential) = &config.admin_auth {
        ctl_config = ctl_config.with_admin_credential(credential.clone());
        tracing::info!("admin API enabled at {}", faas_http::admin::PREFIX);
    }
    let controller = Controller::new(
        ctl_config,
        Arc::clone(&store),
        bus,
        Arc::clone(&scheduler),
        auth,
    )?;
    listen_for_invalidations(&controller, invalidations)?;
    controller.start().await?;
    if config.catalog {
        install_catalog(config, &controller).await?;
    }
    if local_invoker {
        await_healthy_invoker(scheduler.as_ref()).await;
    }

    let metrics_server = start_metrics_server(config, metrics.as_ref()).await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let router = match map_router {
        Some(map) => map(controller.router()),
        None => controller.router(),
    };
    let server_config = controller.config().server.clone();
    let app = router.clone();
    let server = tokio::spawn(faas_http::server::serve(
        listener,
        router,
        server_config,
        async move {
            let _ = stopped.await;
        },
    ));

    Ok(Running {
        addr,
        guest,
        guest_key,
        system,
        store,
        controller,
        app,
        invoker,
        stop: Some(stop),
        server: Some(server),
        metrics_server,
    })
}
