//! `standalone` mode: controller and invoker in one process, over adapters chosen by URL.

use std::net::SocketAddr;
use std::sync::Arc;

use faas_core::identity::{AuthKey, Subject};
use faas_core::names::EntityName;
use faas_core::sharding::ShardingScheduler;
use faas_core::{
    Authenticator, Executor, InvokerInstanceId, MessageBus, Result, Scheduler, Store,
    StoreAuthenticator,
};
use faas_exec::invoker::{InvokerConfig, InvokerHandle, InvokerService, run_invoker};
use faas_exec::pool::{ContainerPool, StemCell};
use faas_http::{Controller, ControllerConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::StandaloneConfig;
use crate::registry::Registry;

/// The adapter factories this binary links.
#[derive(Debug)]
pub struct Adapters {
    /// `Store` factories.
    pub stores: Registry<dyn Store>,
    /// `MessageBus` factories.
    pub buses: Registry<dyn MessageBus>,
    /// `Executor` factories.
    pub executors: Registry<dyn Executor>,
}

impl Default for Adapters {
    /// The built-in adapters: `memory:`, `inproc:`, `process:`.
    fn default() -> Self {
        let mut stores: Registry<dyn Store> = Registry::new("store");
        stores.register("memory", |_u| async {
            Ok(Arc::new(faas_store::MemoryStore::new()) as Arc<dyn Store>)
        });
        let mut buses: Registry<dyn MessageBus> = Registry::new("bus");
        buses.register("inproc", |_u| async {
            Ok(Arc::new(faas_bus::InProcessBus::new()) as Arc<dyn MessageBus>)
        });
        let mut executors: Registry<dyn Executor> = Registry::new("executor");
        executors.register("process", |_u| async {
            let e = faas_exec::process::ProcessExecutor::detect()?;
            Ok(Arc::new(e) as Arc<dyn Executor>)
        });
        Self {
            stores,
            buses,
            executors,
        }
    }
}

/// A running standalone platform.
#[derive(Debug)]
pub struct Running {
    /// Where the API is served.
    pub addr: SocketAddr,
    /// The guest namespace's credentials.
    pub guest: AuthKey,
    /// The store in use.
    pub store: Arc<dyn Store>,
    controller: Controller,
    invoker: Option<InvokerHandle>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// The controller.
    pub fn controller(&self) -> &Controller {
        &self.controller
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

    /// Stops serving (finishing requests in progress), then stops the invoker and removes
    /// its sandboxes.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(e) = self.wait().await {
            tracing::warn!(error = %e, "server ended with an error");
        }
        if let Some(inv) = self.invoker.take() {
            inv.shutdown().await;
        }
    }
}

/// Starts the platform: builds the adapters named in `config`, registers the guest subject,
/// starts the invoker and the controller, and serves the API on `config.listen`.
pub async fn start(config: &StandaloneConfig, adapters: &Adapters) -> Result<Running> {
    let store = adapters.stores.make(&config.store).await?;
    let bus = adapters.buses.make(&config.bus).await?;
    let executor = adapters.executors.make(&config.executor).await?;
    let manifest = executor.runtimes();

    let guest = match &config.guest_auth {
        Some(s) => AuthKey::parse(s)?,
        None => AuthKey::generate(),
    };
    store
        .put_subject(&Subject::single(EntityName::new("guest")?, &guest))
        .await?;

    let listener = TcpListener::bind(config.listen).await.map_err(|e| {
        faas_core::Error::unavailable(format!("cannot listen on {}: {e}", config.listen))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| faas_core::Error::internal(e.to_string()))?;

    // Invoker 0.
    let instance = InvokerInstanceId::new(0, config.user_memory_mb);
    let inv_config = InvokerConfig::new(instance)
        .with_limits(config.limits.clone())
        .with_api_host(format!("http://{addr}"));
    let mut stems = Vec::new();
    if config.prewarm_nodejs > 0 && manifest.default_kind("nodejs").is_some() {
        stems.push(StemCell::new("nodejs:default", 256, config.prewarm_nodejs));
    }
    let pool = ContainerPool::new(
        Arc::clone(&executor),
        inv_config.pool_config().with_stem_cells(stems),
    )?;
    let service = InvokerService::new(inv_config, Arc::clone(&store), Arc::clone(&bus), pool);
    let invoker = run_invoker(service).await?;

    // Controller 0.
    let scheduler: Arc<dyn Scheduler> = Arc::new(ShardingScheduler::new());
    let auth: Arc<dyn Authenticator> = Arc::new(StoreAuthenticator::new(Arc::clone(&store)));
    let ctl_config = ControllerConfig::new()
        .with_id("0")
        .with_limits(config.limits.clone())
        .with_manifest(manifest);
    let controller = Controller::new(ctl_config, Arc::clone(&store), bus, scheduler, auth)?;
    controller.start().await?;

    let (stop, stopped) = oneshot::channel::<()>();
    let ctl = controller.clone();
    let server = tokio::spawn(async move {
        ctl.serve(listener, async move {
            let _ = stopped.await;
        })
        .await
    });

    Ok(Running {
        addr,
        guest,
        store,
        controller,
        invoker: Some(invoker),
        stop: Some(stop),
        server: Some(server),
    })
}
