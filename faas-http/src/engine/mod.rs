//! The **invocation engine**: the controller's core, independent of HTTP.
//!
//! Every caller that runs an action goes through [`Engine::invoke`]: the REST routes,
//! sequences, conductor actions, the actions of the rules a trigger fire activates
//! ([`Engine::fire`], module [`fire`]), the alarms provider, and the later web actions and
//! API-gateway routes. It takes an [`Identity`] and an [`InvokeRequest`] and returns a
//! domain [`Outcome`] (or a [`faas_core::Error`]); only the HTTP routes turn those into
//! responses.
//!
//! One invoke, in order:
//!
//! 1. **throttle** — the caller's namespace rate per minute and activations in flight
//!    (OpenWhisk's `invocationsPerMinute` and `concurrentInvocations`; components of sequences
//!    and compositions are not throttled individually, as in OpenWhisk);
//! 2. **resolve and entitle** — `_` becomes the caller's namespace; the action's package (and
//!    binding) are read and checked by the one [`entitlement`] check, which denies a foreign
//!    resource exactly as it would deny a missing one;
//! 3. **merge parameters** — package < binding < action < payload, with the action's `final`
//!    parameters protected;
//! 4. by kind: an atomic action is **scheduled**, **published** on `invoker<N>` and (blocking)
//!    **awaited** ([`dispatch`](self)); a sequence runs its components one after another, each a
//!    nested invoke checked again; a conductor action drives its composition.
//!
//! Nothing accepted is lost: [`Engine::drain`] and [`Engine::shutdown`] stop an engine so that
//! every activation it accepted either completes or gets a record saying the platform shut
//! down, and accepted sequences and compositions are journaled on `compositions<C>` so that
//! a successor records as interrupted what a crashed engine was running (see the `shutdown`
//! and `running` modules).
//!
//! [`Engine::start`] subscribes to the acknowledgement and health topics and runs the sweeps;
//! embed it with [`Engine::new`] and any [`Store`], [`MessageBus`] and [`Scheduler`], without
//! the router:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn run(
//! #     store: Arc<dyn faas_core::Store>,
//! #     bus: Arc<dyn faas_core::MessageBus>,
//! #     scheduler: Arc<dyn faas_core::Scheduler>,
//! #     user: faas_core::Identity,
//! # ) -> faas_core::Result<()> {
//! use faas_core::FullyQualifiedName;
//! use faas_http::ControllerConfig;
//! use faas_http::engine::{Engine, InvokeRequest, Outcome};
//!
//! let engine = Engine::new(ControllerConfig::default(), store, bus, scheduler)?;
//! engine.start().await?;
//! let hello = FullyQualifiedName::resolve("/_/hello", user.namespace.name.as_str())?;
//! let request = InvokeRequest::new(hello)
//!     .with_payload(serde_json::json!({"name": "world"}))
//!     .blocking(std::time::Duration::from_secs(60));
//! match engine.invoke(user, request).await? {
//!     Outcome::Completed(activation) => println!("{:?}", activation.response.result),
//!     Outcome::Accepted(id) => println!("still running: {id}"),
//! }
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

use faas_core::entity::now_ms;
use faas_core::message::{ControllerInstanceId, TransactionId, completed_topic};
use faas_core::{
    Activation, ActivationId, EntityName, FullyQualifiedName, Identity, MessageBus, Result,
    Scheduler, Store,
};

use crate::config::ControllerConfig;

mod books;
mod composite;
mod conductor;
mod consumers;
mod dispatch;
pub mod entitlement;
pub mod fire;
mod health;
mod invoke;
pub mod native;
pub mod ready;
mod resolve;
pub mod rules;
mod running;
mod runtimes;
pub(crate) mod sequence;
mod shutdown;
mod throttle;

pub use consumers::controller_group;
pub use entitlement::{Entitlement, PackageView, Privilege, Resource};
pub use fire::{FireOutcome, FireRequest};
pub(crate) use invoke::check_kind;
pub use native::{NativeAction, NativeResult};
pub use ready::Readiness;
pub use resolve::ResolvedAction;
pub use running::{INTERRUPTED, SHUTDOWN, compositions_topic};
pub use shutdown::{ShutdownReport, Unfinished};

use books::Books;
use health::HealthTests;
use running::Running;
use throttle::{Throttles, Ticket};

/// How the engine's bus consumers wait after a failed receive before trying again: 10 ms,
/// doubling to 1 s, for as long as the engine lives (each successful receive starts over).
pub(crate) const RECEIVE_RETRY: backon::ExponentialBuilder = backon::ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(10))
    .with_max_delay(Duration::from_secs(1))
    .without_max_times();

/// The answer to invokes once shutdown has begun (`503`).
pub const SHUTTING_DOWN: &str = "The platform is shutting down; try again later.";

/// What to invoke, and how.
///
/// Built with [`InvokeRequest::new`] and the `with_*` methods; the defaults are a
/// non-blocking, throttled invoke with no payload and a fresh transaction id.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InvokeRequest {
    /// The action, `ns[/pkg]/name`; a root namespace `_` means the caller's namespace.
    pub action: FullyQualifiedName,
    /// The payload: an object (merged over the parameters), an array (passed as it is), or
    /// nothing.
    pub payload: Option<Value>,
    /// Whether the caller waits for the result.
    pub blocking: bool,
    /// How long a blocking caller waits before it gets [`Outcome::Accepted`].
    pub wait: Duration,
    /// The transaction the invoke belongs to.
    pub transid: TransactionId,
    /// The activation that caused this one (a sequence or conductor), if any.
    pub cause: Option<ActivationId>,
    /// Whether the caller's namespace throttles apply (components of sequences and
    /// compositions, and system work, are not throttled individually).
    pub throttle: bool,
    /// Whether payload keys may not override parameters protected by the `final` annotation
    /// (OpenWhisk's rule for invokes and web actions).
    pub protect_final: bool,
    /// The activation id to use instead of a fresh one: work that may be redone (a trigger
    /// fire delivered again after a crash) gives the same id each time, so the invoker and the
    /// store keep one activation (records are first-write-wins by id).
    pub activation_id: Option<ActivationId>,
}

impl InvokeRequest {
    /// A non-blocking, throttled invoke of `action` without a payload.
    pub fn new(action: FullyQualifiedName) -> Self {
        Self {
            action,
            payload: None,
            blocking: false,
            wait: Duration::from_secs(60),
            transid: TransactionId::new(crate::layers::request_id::generate_id()),
            cause: None,
            throttle: true,
            protect_final: true,
            activation_id: None,
        }
    }
    /// With a payload (`null` counts as none).
    pub fn with_payload(mut self, payload: Value) -> Self {
        self.payload = (!payload.is_null()).then_some(payload);
        self
    }
    /// With an optional payload.
    pub fn with_optional_payload(mut self, payload: Option<Value>) -> Self {
        self.payload = payload.filter(|p| !p.is_null());
        self
    }
    /// Blocking, waiting up to `wait` for the result.
    pub fn blocking(mut self, wait: Duration) -> Self {
        self.blocking = true;
        self.wait = wait;
        self
    }
    /// Part of transaction `transid`.
    pub fn with_transid(mut self, transid: TransactionId) -> Self {
        self.transid = transid;
        self
    }
    /// Caused by activation `cause`.
    pub fn with_cause(mut self, cause: ActivationId) -> Self {
        self.cause = Some(cause);
        self
    }
    /// Without the namespace throttles.
    pub fn without_throttle(mut self) -> Self {
        self.throttle = false;
        self
    }
    /// Without the `final` parameter check.
    pub fn without_final_check(mut self) -> Self {
        self.protect_final = false;
        self
    }
    /// With activation id `id` instead of a fresh one.
    pub fn with_activation_id(mut self, id: ActivationId) -> Self {
        self.activation_id = Some(id);
        self
    }
}

/// How an invoke ended for its caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted and running (non-blocking, or the blocking wait ran out).
    Accepted(ActivationId),
    /// Finished within the wait: the activation record.
    Completed(Box<Activation>),
}

impl Outcome {
    /// The activation id.
    pub fn activation_id(&self) -> &ActivationId {
        match self {
            Self::Accepted(id) => id,
            Self::Completed(a) => &a.activation_id,
        }
    }
}

/// The controller's core: invokes actions for identities, and keeps the books of what it
/// dispatched. Cheap to clone (one `Arc`); background tasks started by
/// [`start`](Self::start) stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

/// The engine's state, shared by its clones and its background tasks.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: ControllerConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) bus: Arc<dyn MessageBus>,
    pub(crate) scheduler: Arc<dyn Scheduler>,
    pub(crate) books: Books,
    pub(crate) throttles: Arc<Throttles>,
    pub(crate) instance: ControllerInstanceId,
    pub(crate) completed_topic: String,
    pub(crate) health_tests: HealthTests,
    /// The kinds the live invokers can run.
    pub(crate) runtimes: runtimes::LiveRuntimes,
    /// Extra topics the engine's consumer reads (see [`Engine::listen`]).
    listeners: Mutex<Vec<Listener>>,
    /// Actions the controller answers itself (the alarms provider's feed actions).
    pub(crate) natives: native::Natives,
    /// The trigger fires this controller is processing.
    pub(crate) fires: fire::FireState,
    /// Sequences and compositions in progress.
    pub(crate) running: Running,
    /// New top-level invokes are refused (shutdown has begun).
    pub(crate) draining: AtomicBool,
    /// Nothing is dispatched any more.
    pub(crate) closed: AtomicBool,
    /// Where events are recorded (disabled unless the configuration has metrics).
    pub(crate) metrics: faas_core::metrics::Metrics,
    pub(crate) started: AtomicBool,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    /// Publishes OpenWhisk's user event for a refused request (`Entitlement.scala`: a
    /// `Metric` named after the limit, value 1), without making the caller wait.
    pub(crate) fn publish_limit_event(&self, user: &Identity, limit: &str) {
        self.publish_metric_event(user, limit, 1);
    }

    /// Publishes a `Metric` user event of `user`'s (when enabled), without making the caller
    /// wait.
    pub(crate) fn publish_metric_event(&self, user: &Identity, name: &str, value: i64) {
        use faas_core::events::{EventBody, MetricEvent};
        if !self.config.user_events {
            return;
        }
        self.publish_event(
            user,
            EventBody::Metric(MetricEvent {
                metric_name: name.to_string(),
                metric_value: value,
            }),
        );
    }

    /// Publishes the `Activation` user event of a record the controller wrote — a sequence's
    /// or a conductor's, as OpenWhisk's `SequenceActions` and `PrimitiveActions` do, source
    /// `controller<C>` (the invoker publishes those of the activations it runs).
    pub(crate) fn publish_activation_event(&self, user: &Identity, record: &Activation) {
        use faas_core::events::{ActivationEvent, EventBody};
        if !self.config.user_events {
            return;
        }
        if let Some(body) = ActivationEvent::from_record(record) {
            self.publish_event(user, EventBody::Activation(body));
        }
    }

    /// Publishes a user event of `user`'s on `events` when they are enabled, without making
    /// the caller wait.
    fn publish_event(&self, user: &Identity, body: faas_core::events::EventBody) {
        use faas_core::events::{EVENTS_TOPIC, EventBody, EventMessage};
        if !self.config.user_events {
            return;
        }
        let event_type = match body {
            EventBody::Metric(_) => "Metric",
            EventBody::Activation(_) => "Activation",
        };
        let event = EventMessage {
            source: format!("controller{}", self.config.id),
            body,
            subject: user.subject.clone(),
            namespace: user.namespace.name.to_string(),
            user_id: user.namespace.uuid.clone(),
            event_type: event_type.into(),
            timestamp: now_ms(),
        };
        let Ok(payload) = serde_json::to_vec(&event) else {
            return;
        };
        let bus = Arc::clone(&self.bus);
        tokio::spawn(async move {
            if let Err(e) = bus.publish(EVENTS_TOPIC, None, payload.into()).await {
                tracing::warn!(error = %e, "cannot publish the user event");
            }
        });
    }
}

/// Invoker health states and capacity as the scheduler sees them, read at scrape time
/// (OpenWhisk's `loadbalancer` `totalHealthyInvoker`… and `totalCapacity` markers).
#[derive(Debug)]
struct SchedulerSource(Arc<dyn Scheduler>);

impl faas_core::metrics::MetricSource for SchedulerSource {
    fn collect(&self, out: &mut Vec<faas_core::metrics::Sample>) {
        use faas_core::InvokerState;
        use faas_core::metrics::Sample;
        let invokers = self.0.invokers();
        for state in [
            InvokerState::Healthy,
            InvokerState::Unhealthy,
            InvokerState::Unresponsive,
            InvokerState::Offline,
        ] {
            let n = invokers.iter().filter(|h| h.state == state).count();
            out.push(
                Sample::gauge("faas_invokers", "Invokers by health state", n as f64)
                    .with_label("state", state.as_str()),
            );
        }
        let memory: u64 = invokers
            .iter()
            .filter(|h| h.state.is_usable())
            .map(|h| h.id.user_memory)
            .sum();
        out.push(Sample::gauge(
            "faas_invokers_user_memory_bytes",
            "User memory of the healthy invokers",
            (memory * 1024 * 1024) as f64,
        ));
    }
}

/// What a [`Listener`] does with a payload.
type OnMessage = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// An extra topic for the engine's consumer, and what to do with its messages.
#[derive(Clone)]
pub(crate) struct Listener {
    pub(crate) topic: String,
    pub(crate) config: faas_core::TopicConfig,
    pub(crate) on_message: OnMessage,
    pub(crate) on_gap: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// The registered listeners.
    pub(crate) fn listeners(&self) -> Vec<Listener> {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// See [`Engine::runtimes`].
    pub(crate) fn runtimes(&self) -> Arc<faas_core::RuntimeManifest> {
        self.runtimes.current(self.scheduler.as_ref())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let tasks = self.tasks.get_mut().unwrap_or_else(PoisonError::into_inner);
        for t in tasks.drain(..) {
            t.abort();
        }
    }
}

impl Engine {
    /// An engine over the given adapters. Fails if the configuration is invalid.
    pub fn new(
        config: ControllerConfig,
        store: Arc<dyn Store>,
        bus: Arc<dyn MessageBus>,
        scheduler: Arc<dyn Scheduler>,
    ) -> Result<Self> {
        config.validate()?;
        let instance = ControllerInstanceId::new(config.id.clone());
        let completed_topic = completed_topic(&config.id);
        let metrics = config.metrics_handle();
        metrics.add_source(Arc::new(SchedulerSource(Arc::clone(&scheduler))));
        let runtimes = runtimes::LiveRuntimes::new(config.manifest.clone());
        let engine = Self {
            inner: Arc::new(Inner {
                config,
                store,
                bus,
                scheduler,
                books: Books::default(),
                throttles: Arc::new(Throttles::default()),
                instance,
                completed_topic,
                health_tests: HealthTests::default(),
                runtimes,
                listeners: Mutex::new(Vec::new()),
                natives: native::Natives::default(),
                fires: fire::FireState::default(),
                running: Running::default(),
                draining: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                metrics,
                started: AtomicBool::new(false),
                tasks: Mutex::new(Vec::new()),
            }),
        };
        let clock: Arc<dyn crate::alarms::Clock> = Arc::new(crate::alarms::SystemClock);
        crate::alarms::register(&engine, &clock);
        Ok(engine)
    }

    /// Creates the topics `completed<C>`, `health`, `triggerFires` and `compositions<C>` (and
    /// those given to [`listen`](Self::listen)) if missing, subscribes to them — one consumer,
    /// group `controller<C>`, for all but `triggerFires`, whose group all controllers share —
    /// and spawns the driver that routes acknowledgements to the books, pings to
    /// [`Scheduler::on_ping`] and the composition journal (see [`compositions_topic`]) to the
    /// running compositions, the trigger-fire consumer (see [`fire`]), the sweep of overdue
    /// activations, the invoker health tests and (unless disabled in
    /// [`ControllerConfig::alarms`]) the alarms scheduler ([`crate::alarms`]).
    ///
    /// Call once, inside a Tokio runtime, before invoking; later calls do nothing.
    pub async fn start(&self) -> Result<()> {
        let s = &self.inner;
        if s.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        if s.config.user_events
            && let Err(e) = s
                .bus
                .create_topic(
                    faas_core::events::EVENTS_TOPIC,
                    &faas_core::TopicConfig::default(),
                )
                .await
        {
            s.started.store(false, Ordering::SeqCst);
            return Err(e);
        }
        let started = match consumers::start(s).await {
            Ok(mut tasks) => fire::start(s).await.map(|more| {
                tasks.extend(more);
                tasks
            }),
            Err(e) => Err(e),
        };
        let started = started.map(|mut tasks| {
            if s.config.alarms.enabled {
                let scheduler = crate::alarms::scheduler_for(s);
                tasks.push(tokio::spawn(scheduler.run(s.config.alarms.poll)));
            }
            tasks
        });
        match started {
            Ok(tasks) => {
                s.tasks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(tasks);
                Ok(())
            }
            Err(e) => {
                s.started.store(false, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.inner.config
    }

    /// Has the engine's consumer read `topic` too (created with `config` if missing): each
    /// message's payload goes to `on_message`, and `on_gap` is called when the bus failed and
    /// messages may have been missed. The process then needs no consumer of its own for the
    /// topic (a platform gives it the cache invalidations of its `faas_store::CachedStore`,
    /// see `faas_store::Invalidations`). Messages
    /// are read in the engine's group `controller<id>` and committed after `on_message`
    /// returns. Call before [`start`](Self::start): later calls fail.
    pub fn listen(
        &self,
        topic: impl Into<String>,
        config: faas_core::TopicConfig,
        on_message: impl Fn(&[u8]) + Send + Sync + 'static,
        on_gap: impl Fn() + Send + Sync + 'static,
    ) -> Result<()> {
        if self.inner.started.load(Ordering::SeqCst) {
            return Err(faas_core::Error::internal(
                "Engine::listen must be called before Engine::start",
            ));
        }
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Listener {
                topic: topic.into(),
                config,
                on_message: Arc::new(on_message),
                on_gap: Arc::new(on_gap),
            });
        Ok(())
    }

    /// The kinds the live invokers can run, as they report them in their pings (the
    /// configured [`manifest`](ControllerConfig::manifest) stands in for invokers that report
    /// nothing, and when none is live). Kinds are resolved and validated against it; `GET /`
    /// lists it.
    pub fn runtimes(&self) -> Arc<faas_core::RuntimeManifest> {
        self.inner.runtimes()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Arc<dyn Scheduler> {
        &self.inner.scheduler
    }

    /// The entitlement check, for callers that read or write entities.
    pub fn entitlement(&self) -> Entitlement<'_> {
        Entitlement::new(self.inner.store.as_ref())
    }

    /// How many activations this engine has in flight.
    pub fn in_flight(&self) -> usize {
        self.inner.books.len()
    }

    /// How many sequences and compositions (topmost and nested) this engine is running.
    pub fn compositions_running(&self) -> usize {
        self.inner.running.len()
    }

    /// Invokes an action for `user`: throttle → resolve and entitle → merge parameters →
    /// run (schedule, publish, await; or a sequence or composition).
    ///
    /// # Errors
    ///
    /// OpenWhisk's answers as [`Error`](faas_core::Error)s: `TooManyRequests` (throttled), `Forbidden` (not
    /// entitled, with the resource named exactly as for a missing one), `NotFound`,
    /// `WrongCollection`, `BadRequest` (deprecated runtime, `final` parameters overridden),
    /// `Unavailable` (no invoker, or the engine is shutting down), `TooLarge` (the message
    /// does not fit the bus).
    pub async fn invoke(&self, user: Identity, request: InvokeRequest) -> Result<Outcome> {
        self.refuse_when_draining()?;
        invoke::invoke(self, user, request).await
    }

    /// [`Engine::invoke`] for an action the caller has already resolved and entitled for
    /// `user` with [`Privilege::Activate`](entitlement::Privilege::Activate) through
    /// [`Engine::resolve_action`] (a web action, resolved for its annotations): throttle →
    /// run, without resolving it a second time. Crate-private: the engine trusts `resolved`.
    pub(crate) async fn invoke_resolved(
        &self,
        user: Identity,
        resolved: ResolvedAction,
        request: InvokeRequest,
    ) -> Result<Outcome> {
        self.refuse_when_draining()?;
        invoke::invoke_resolved(self, user, resolved, request).await
    }

    /// `Unavailable` once [`Engine::drain`] began: no new invokes.
    fn refuse_when_draining(&self) -> Result<()> {
        if self.inner.draining.load(Ordering::Relaxed) {
            return Err(faas_core::Error::unavailable(SHUTTING_DOWN));
        }
        Ok(())
    }

    /// Resolves `action` (`_` = the caller's namespace) through its package and binding,
    /// checking that `user` holds `right` on it, and merges the inherited parameters.
    pub async fn resolve_action(
        &self,
        user: &Identity,
        action: &FullyQualifiedName,
        right: Privilege,
    ) -> Result<ResolvedAction> {
        resolve::resolve_action(self.inner.store.as_ref(), user, action, right).await
    }

    /// Reads activation record `id` of `namespace`. If this engine holds it as "result
    /// received, record not stored yet", waits (bounded by `record_wait`) for it first, so
    /// that reading right after a blocking invoke never sees a spurious `NotFound`.
    pub async fn activation(
        &self,
        namespace: &EntityName,
        id: &ActivationId,
    ) -> Result<Activation> {
        let s = &self.inner;
        if let Some(rx) = s.books.watch_record(id) {
            let _ = tokio::time::timeout(s.config.record_wait, rx).await;
        }
        s.store.get_activation(namespace, id).await
    }

    /// Admits one invocation of `user`'s namespace against its throttles (this controller's
    /// share of them), returning the in-flight slot.
    fn admit(&self, user: &Identity) -> Result<Ticket> {
        let s = &self.inner;
        let sys = &s.config.limits;
        let cluster = s.config.cluster_size;
        let per_minute = throttle::share(
            user.limits
                .invocations_per_minute
                .unwrap_or(sys.invocations_per_minute),
            cluster,
        );
        let concurrent = throttle::share(
            user.limits
                .concurrent_invocations
                .unwrap_or(sys.concurrent_invocations),
            cluster,
        );
        let admitted = s.throttles.admit(
            user.namespace.name.as_str(),
            per_minute,
            concurrent,
            now_ms() / 60_000,
        );
        if let Err(faas_core::Error::TooManyRequests { message }) = &admitted {
            // OpenWhisk's user-events `Metric` names for the two limits.
            let limit = if message.contains("concurrent") {
                "ConcurrentRateLimit"
            } else {
                "TimedRateLimit"
            };
            s.metrics.record(faas_core::metrics::Event::Throttled {
                namespace: user.namespace.name.as_str(),
                limit,
            });
            s.publish_limit_event(user, limit);
        }
        if let Ok(ticket) = &admitted {
            // OpenWhisk's `Entitlement` reports every admitted invoke with the namespace's
            // concurrent count, itself included (`Metric("ConcurrentInvocations", count + 1)`).
            s.publish_metric_event(user, "ConcurrentInvocations", i64::from(ticket.in_flight()));
        }
        admitted
    }
}

/// `fqn` with a root namespace `_` replaced by the caller's namespace.
pub fn qualify(user: &Identity, fqn: FullyQualifiedName) -> Result<FullyQualifiedName> {
    if fqn.path.root() != faas_core::names::DEFAULT_NAMESPACE {
        return Ok(fqn);
    }
    let ns = user.namespace.name.as_str();
    let path = match fqn.path.package() {
        Some(pkg) => format!("{ns}/{pkg}"),
        None => ns.to_string(),
    };
    Ok(FullyQualifiedName::new(
        faas_core::EntityPath::new(&path)?,
        fqn.name,
    ))
}

/// The answer of a top-level sequence or composition running in `task` as activation `id`:
/// its record if the caller blocks and it ends within `wait`, else the id.
async fn await_task(
    id: ActivationId,
    task: JoinHandle<Activation>,
    blocking: bool,
    wait: Duration,
) -> Result<Outcome> {
    if !blocking {
        return Ok(Outcome::Accepted(id));
    }
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(record)) => Ok(Outcome::Completed(Box::new(record))),
        Ok(Err(e)) => {
            tracing::error!(error = %e, activation_id = %id, "a composite activation's task failed");
            Ok(Outcome::Accepted(id))
        }
        Err(_) => Ok(Outcome::Accepted(id)),
    }
}
