//! The invoker (reference §6.4, §7): a tower [`Service`] that runs one [`ActivationMessage`]
//! to its [`Activation`] record, and the loop that feeds it from the bus and pings `health`.
//!
//! # Per message ([`InvokerService`])
//!
//! 1. Fetch the action (`store.get_entity`): from a small cache when the message names the
//!    revision the cache holds, else the latest (a message naming another revision runs the
//!    latest, as OpenWhisk does after a revision mismatch). Missing → application error
//!    `Action could not be found or may have been deleted.` (kind `unknown`, duration 0).
//! 2. Check the action's limits against the system limits (violation → application error).
//! 3. Take a container from the [`ContainerPool`]: warm, prewarmed, cold, after eviction, or
//!    after queueing until the activation's deadline (failure → whisk error `Failed to provision
//!    resources to run the action.`).
//! 4. `/init` once per container, `/run` with `deadline = now + timeout`, interpret the replies
//!    ([`crate::proxy`]).
//! 5. Acknowledge on `completed<C>` following OpenWhisk's sending rules:
//!    * blocking: a `Result` ack with the record (logs empty) right after the run, then logs are
//!      collected, the record stored, and a `Completion` ack sent;
//!    * blocking with a log limit of 0: one `Combined` ack right after the run, then the record
//!      is stored;
//!    * non-blocking: logs, record, then only a `Completion` ack;
//!    * failures before a run (missing action, limits, no container): the record is stored and
//!      one `Combined` ack sent (shrunk to the activation id for non-blocking requests).
//!
//!    A publish rejected as too large is sent again shrunk (the controller then reads the record
//!    from the store).
//!
//! # Idempotency under redelivery
//!
//! The bus delivers at least once, so a message may arrive again after its activation ran (the
//! invoker died before committing it, or a consumer was rebalanced). Before running a message
//! the bus flags as possibly redelivered ([`Delivery::redelivered`]), the loop
//! looks the activation id up with `store.get_activation`: if a record exists, the action is
//! **not** run again; the existing record is acknowledged once more with a `Combined` ack (the
//! controller treats repeated acks as no-ops) and the service returns that record. Records are
//! written with `put_activation`, which keeps the first record of an id, so two concurrent
//! deliveries cannot overwrite each other. A message whose run started but whose record was never
//! written (the invoker died mid-run) runs again: that is the at-least-once window. Namespaces
//! that do not store activations (`storeActivations: false`) get no such check.
//!
//! Messages the bus delivers for the first time are run without the lookup: the normal path
//! reads nothing from the store but the (cached) action. A publisher that sends an activation
//! id again as a new message (work redone after a crash) must look for its record itself
//! before publishing. [`InvokerService::invoke`], called directly, cannot know where its message
//! came from and always looks.
//!
//! # The loop ([`run_invoker`])
//!
//! Creates `invoker<N>` and `health` if missing, consumes `invoker<N>` in group `invoker<N>`,
//! runs each message in its own task (at most `user memory / 128 MB` at once) and commits the
//! delivery once the service finished (record written, completion published). Undecodable
//! messages are logged, committed and skipped. At start it sends itself a probe on
//! `invoker<N>` and pings only once it receives something (the probe or an older message),
//! so controllers send it work only when its consumer holds the partition (a consumer group
//! join takes seconds on some brokers; bounded at 30 s, then it pings anyway). Every second it publishes
//! `PingMessage{name: instance, isEnabled: true, runtimes}` on `health`, `runtimes` being the
//! executor's manifest (what this invoker can run; the controllers resolve and place kinds
//! from it).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use faas_core::activation::{Activation, ActivationResponse, StatusCode};
use faas_core::entity::{Action, Entity, Exec, now_ms};
use faas_core::events::{ActivationEvent, EVENTS_TOPIC, EventBody, EventMessage};
use faas_core::executor::{LogLine, LogStream};
use faas_core::limits::{MB, SystemLimits};
use faas_core::message::{
    AcknowledgementRef, ActivationMessage, ActivationOrIdRef, HEALTH_TOPIC, InvokerInstanceId,
    PingMessage, completed_topic, invoker_topic,
};
use faas_core::metrics::{ActivationSample, Event, MetricSource, Metrics, Sample};
use faas_core::names::{EntityPath, FullyQualifiedName};
use faas_core::params::Annotations;
use faas_core::trace::{TraceContext, Tracer};
use faas_core::{Consumer, Delivery, Error, MessageBus, Result, Store, TopicConfig};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tower::Service;

use crate::pool::{AcquireRequest, ContainerKey, ContainerPool, Lease, PoolConfig, Release};
use crate::proxy::{self, ActivationContext};

/// `Action could not be found or may have been deleted.`
pub const ACTION_REMOVED: &str = "Action could not be found or may have been deleted.";
/// `Action version is not compatible and cannot be invoked.`
pub const ACTION_MISMATCH: &str = "Action version is not compatible and cannot be invoked.";
/// `Action could not be fetched.`
pub const ACTION_FETCH_ERROR: &str = "Action could not be fetched.";
/// `Failed to provision resources to run the action.`
pub const RESOURCE_PROVISION_ERROR: &str = "Failed to provision resources to run the action.";
/// `There was an issue while collecting your logs. Data might be missing.`
pub const LOG_FAILURE: &str =
    "There was an issue while collecting your logs. Data might be missing.";
/// `The action did not initialize or run as expected. Log data might be missing.`
pub const LOG_WARNING_DEVELOPER_ERROR: &str =
    "The action did not initialize or run as expected. Log data might be missing.";

/// `Logs were truncated because the total bytes size exceeds the limit of N bytes.`
pub fn truncated_logs_message(limit_bytes: u64) -> String {
    format!(
        "Logs were truncated because the total bytes size exceeds the limit of {limit_bytes} bytes."
    )
}

/// Settings of an invoker.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InvokerConfig {
    /// Who this invoker is (its number names its topic, `invoker<N>`; its user memory sizes the
    /// pool and the concurrency).
    pub instance: InvokerInstanceId,
    /// System limits (action limits are checked against them; result truncation size).
    pub limits: SystemLimits,
    /// `__OW_API_HOST` for containers (`proto://host:port`).
    pub api_host: String,
    /// How often to ping `health` (default 1 s).
    pub health_interval: Duration,
    /// Messages handled at once (default `user memory / 128 MB`, at least 1).
    pub max_in_flight: Option<usize>,
    /// Longest wait of [`InvokerHandle::shutdown`] for in-flight activations (default 30 s).
    pub shutdown_timeout: Duration,
    /// Longest wait for an activation's logs (default 10 s).
    pub log_timeout: Duration,
    /// Look for an existing record before running a message that may be a redelivery
    /// (default true; `false` never looks).
    pub check_duplicates: bool,
    /// Action revisions kept in memory (default 1024).
    pub action_cache_size: usize,
    /// Where activations are recorded and the pool's state is read from (disabled by
    /// default; see [`faas_core::metrics`]).
    pub metrics: Metrics,
    /// Where spans go (disabled by default; see [`faas_core::trace`]): an
    /// `invoker.activation` span per message, a child of the message's `traceContext`, with
    /// `invoker.container`, `invoker.init`, `invoker.run` and `invoker.store` inside.
    pub tracer: Tracer,
    /// Publish OpenWhisk's user events (an `Activation` event per activation on the
    /// `events` topic; see [`faas_core::events`]). Default off, as OpenWhisk's
    /// `whisk.user-events.enabled`.
    pub user_events: bool,
}

impl InvokerConfig {
    /// Defaults for `instance`.
    pub fn new(instance: InvokerInstanceId) -> Self {
        Self {
            instance,
            limits: SystemLimits::default(),
            api_host: "http://localhost:3233".into(),
            health_interval: Duration::from_secs(1),
            max_in_flight: None,
            shutdown_timeout: Duration::from_secs(30),
            log_timeout: Duration::from_secs(10),
            check_duplicates: true,
            action_cache_size: 1024,
            metrics: Metrics::disabled(),
            tracer: Tracer::disabled(),
            user_events: false,
        }
    }
    /// Publishing user events on `events` (see [`InvokerConfig::user_events`]).
    pub fn with_user_events(mut self, on: bool) -> Self {
        self.user_events = on;
        self
    }
    /// Exporting spans through `tracer`.
    pub fn with_tracer(mut self, tracer: Tracer) -> Self {
        self.tracer = tracer;
        self
    }
    /// Recording activations (OpenWhisk's user-events metrics) and the pool's state
    /// (`faas_pool_*`, read at scrape time) in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }
    /// With system limits.
    pub fn with_limits(mut self, limits: SystemLimits) -> Self {
        self.limits = limits;
        self
    }
    /// With `__OW_API_HOST`.
    pub fn with_api_host(mut self, host: impl Into<String>) -> Self {
        self.api_host = host.into();
        self
    }
    /// With the health ping interval.
    pub fn with_health_interval(mut self, d: Duration) -> Self {
        self.health_interval = d;
        self
    }
    /// With the number of messages handled at once.
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n.max(1));
        self
    }
    /// With the shutdown wait.
    pub fn with_shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }
    /// Messages handled at once.
    pub fn in_flight_limit(&self) -> usize {
        self.max_in_flight
            .unwrap_or((self.instance.user_memory / 128) as usize)
            .max(1)
    }
    /// The pool settings that go with this invoker: its user memory, container names
    /// `wsk<N>_...`, and `__OW_API_HOST` in every container.
    pub fn pool_config(&self) -> PoolConfig {
        PoolConfig::new(self.instance.user_memory)
            .with_name_prefix(format!("wsk{}", self.instance.instance))
            .with_env("__OW_API_HOST", self.api_host.clone())
    }
}

/// The pool's state, read at scrape time (OpenWhisk's `containerPool` markers:
/// `activeCount`, `prewarmCount`, `idlesCount`, `prewarmColdstart`, …).
#[derive(Debug)]
struct PoolSource(ContainerPool);

impl MetricSource for PoolSource {
    fn collect(&self, out: &mut Vec<Sample>) {
        let s = self.0.stats();
        let containers = "Containers of the pool, by state";
        for (state, n) in [
            ("busy", s.in_use),
            ("warm", s.idle.saturating_sub(s.paused)),
            ("paused", s.paused),
            ("prewarmed", s.prewarmed),
            ("starting", s.starting),
        ] {
            out.push(
                Sample::gauge("faas_pool_containers", containers, n as f64)
                    .with_label("state", state),
            );
        }
        out.push(Sample::gauge(
            "faas_pool_queue_length",
            "Activations waiting for a container",
            s.waiting as f64,
        ));
        let mb = |v: u64| (v * 1024 * 1024) as f64;
        out.push(Sample::gauge(
            "faas_pool_memory_used_bytes",
            "Memory accounted to the pool's containers",
            mb(s.used_mb),
        ));
        out.push(Sample::gauge(
            "faas_pool_memory_free_bytes",
            "User memory not accounted to any container",
            mb(s.free_mb),
        ));
        let acquires = "Containers handed to activations, by how they were found";
        for (how, n) in [
            ("warm", s.warm_hits),
            ("prewarmed", s.prewarm_hits),
            ("cold", s.cold_starts),
        ] {
            out.push(
                Sample::counter("faas_pool_acquires_total", acquires, n as f64)
                    .with_label("how", how),
            );
        }
        out.push(Sample::counter(
            "faas_pool_evictions_total",
            "Idle containers removed to make room",
            s.evictions as f64,
        ));
        out.push(Sample::counter(
            "faas_pool_idle_removed_total",
            "Idle containers removed by the reaper",
            s.idle_removed as f64,
        ));
        out.push(Sample::counter(
            "faas_pool_queued_total",
            "Activations that had to wait for a container",
            s.queued as f64,
        ));
        out.push(Sample::counter(
            "faas_pool_create_failures_total",
            "Container creations that failed",
            s.create_failures as f64,
        ));
    }
}

/// An action revision with what every activation of it needs, computed once.
#[derive(Debug)]
struct CachedAction {
    action: Action,
    rev: String,
    /// `ns/[pkg/]name` (the `path` annotation).
    path: String,
    /// `/ns/[pkg/]name` (`__OW_ACTION_NAME`).
    name_slash: String,
    /// Parameters marked `init`.
    init_keys: Vec<String>,
    limits_json: Value,
}

impl CachedAction {
    fn new(action: Action, rev: String) -> Self {
        let fqn = action.fqn();
        Self {
            path: fqn.to_string(),
            name_slash: fqn.with_leading_slash(),
            init_keys: action.parameters.init_keys(),
            limits_json: serde_json::to_value(action.limits).unwrap_or(Value::Null),
            action,
            rev,
        }
    }
}

struct Inner {
    config: InvokerConfig,
    store: Arc<dyn Store>,
    bus: Arc<dyn MessageBus>,
    pool: ContainerPool,
    cache: Mutex<HashMap<FullyQualifiedName, Arc<CachedAction>>>,
}

/// The invoker as a tower `Service<ActivationMessage>`: runs the activation, stores its record,
/// publishes its acknowledgements and returns the record. Cheap to clone (an `Arc` inside).
///
/// It is always ready (the pool queues internally). The returned future fails only when the
/// activation could not be handled at all and should be delivered again (the pool is shut
/// down); every other outcome, including user and platform errors, is an `Ok` record.
#[derive(Clone)]
pub struct InvokerService {
    inner: Arc<Inner>,
}

impl fmt::Debug for InvokerService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvokerService")
            .field("instance", &self.inner.config.instance.instance)
            .field("store", &self.inner.store)
            .field("bus", &self.inner.bus)
            .field("pool", &self.inner.pool)
            .finish_non_exhaustive()
    }
}

impl InvokerService {
    /// An invoker over a store, a bus and a pool (see [`InvokerConfig::pool_config`]).
    pub fn new(
        config: InvokerConfig,
        store: Arc<dyn Store>,
        bus: Arc<dyn MessageBus>,
        pool: ContainerPool,
    ) -> Self {
        config
            .metrics
            .add_source(Arc::new(PoolSource(pool.clone())));
        Self {
            inner: Arc::new(Inner {
                config,
                store,
                bus,
                pool,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }
    /// The configuration.
    pub fn config(&self) -> &InvokerConfig {
        &self.inner.config
    }
    /// The container pool.
    pub fn pool(&self) -> &ContainerPool {
        &self.inner.pool
    }
    /// Runs one message (same as `Service::call`), after looking for an existing record of
    /// its activation (see [Idempotency under redelivery](self#idempotency-under-redelivery)).
    pub async fn invoke(&self, msg: ActivationMessage) -> Result<Activation> {
        Arc::clone(&self.inner).handle(msg, true).await
    }

    /// Runs one message received from the bus: the lookup for an existing record happens only
    /// when the delivery may be a redelivery.
    pub async fn invoke_delivered(
        &self,
        msg: ActivationMessage,
        delivery: &Delivery,
    ) -> Result<Activation> {
        Arc::clone(&self.inner)
            .handle(msg, delivery.redelivered)
            .await
    }
}

impl Service<ActivationMessage> for InvokerService {
    type Response = Activation;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Activation>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, msg: ActivationMessage) -> Self::Future {
        Box::pin(Arc::clone(&self.inner).handle(msg, true))
    }
}

fn to_bytes<T: Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// What a run attempt produced.
struct RunResult {
    response: ActivationResponse,
    timed_out: bool,
    /// Init duration, ms, when `/init` ran.
    init_ms: Option<u64>,
    start_ms: u64,
    end_ms: u64,
    wait_ms: u64,
}

fn stderr_line(message: String) -> String {
    LogLine {
        time: SystemTime::now(),
        stream: LogStream::Stderr,
        message,
    }
    .format()
}

impl Inner {
    async fn handle(
        self: Arc<Self>,
        msg: ActivationMessage,
        may_repeat: bool,
    ) -> Result<Activation> {
        let mut span = if self.config.tracer.is_enabled() {
            let parent = TraceContext::from_message(msg.trace_context.as_ref());
            let mut span = self
                .config
                .tracer
                .span("invoker.activation", parent.as_ref());
            span.set("activation.id", &msg.activation_id);
            span.set(
                "action",
                format_args!("{}/{}", msg.action.path, msg.action.name),
            );
            span
        } else {
            faas_core::trace::Span::none()
        };
        let trace = span.context();
        let r = self.handle_traced(msg, may_repeat, trace).await;
        if let Ok(a) = &r {
            span.set("activation.status", a.response.status_code.as_str());
        }
        r
    }

    async fn handle_traced(
        self: Arc<Self>,
        msg: ActivationMessage,
        may_repeat: bool,
        trace: Option<TraceContext>,
    ) -> Result<Activation> {
        let store_records = msg.user.limits.store_activations != Some(false);
        let check = may_repeat && self.config.check_duplicates && store_records;
        let (existing, fetched) = if check {
            tokio::join!(
                self.store
                    .get_activation(&msg.user.namespace.name, &msg.activation_id),
                self.fetch_action(&msg)
            )
        } else {
            (
                Err(Error::not_found(String::new())),
                self.fetch_action(&msg).await,
            )
        };
        match existing {
            Ok(record) => {
                tracing::debug!(activation = %msg.activation_id, "redelivered activation already has a record; not running it again");
                self.ack_combined(&msg, &record).await;
                return Ok(record);
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(activation = %msg.activation_id, error = %e, "cannot check for an existing record; running")
            }
        }
        let cached = match fetched {
            Ok(c) => c,
            Err(response) => return Ok(self.fail_early(&msg, response, store_records).await),
        };
        if let Err(e) = cached.action.limits.validate(&self.config.limits) {
            let response = ActivationResponse::application_error(Value::String(e.to_string()));
            return Ok(self.fail_early(&msg, response, store_records).await);
        }
        if matches!(cached.action.exec, Exec::Sequence { .. }) {
            let response = ActivationResponse::whisk_error(ACTION_MISMATCH);
            return Ok(self.fail_early(&msg, response, store_records).await);
        }
        self.run_action(msg, cached, store_records, trace).await
    }

    /// Reads the action: the cached revision when the message names it, else the latest.
    async fn fetch_action(
        &self,
        msg: &ActivationMessage,
    ) -> std::result::Result<Arc<CachedAction>, ActivationResponse> {
        let fqn = msg.action.fqn();
        if let Some(rev) = &msg.revision {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get(&fqn)
                && &c.rev == rev
            {
                return Ok(Arc::clone(c));
            }
        }
        match self.store.get_entity(&fqn).await {
            Ok(v) => match v.value {
                Entity::Action(action) => {
                    let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(c) = cache.get(&fqn)
                        && c.rev == v.rev.0
                    {
                        return Ok(Arc::clone(c));
                    }
                    let c = Arc::new(CachedAction::new(action, v.rev.0));
                    if cache.len() >= self.config.action_cache_size.max(1) {
                        cache.clear();
                    }
                    cache.insert(fqn, Arc::clone(&c));
                    Ok(c)
                }
                _ => Err(ActivationResponse::whisk_error(ACTION_MISMATCH)),
            },
            Err(Error::NotFound { .. }) => Err(ActivationResponse::application_error(
                Value::String(ACTION_REMOVED.into()),
            )),
            Err(e) => {
                tracing::warn!(action = %fqn, error = %e, "cannot fetch the action");
                Err(ActivationResponse::whisk_error(ACTION_FETCH_ERROR))
            }
        }
    }

    /// A record for an activation that never reached a container (OpenWhisk's fallback
    /// activation): kind `unknown`, start = end = now, duration 0. Stored, then acknowledged
    /// with one `Combined`.
    async fn fail_early(
        &self,
        msg: &ActivationMessage,
        response: ActivationResponse,
        store_records: bool,
    ) -> Activation {
        let now = now_ms();
        let mut annotations = Annotations::new()
            .with(
                "path",
                Value::String(format!("{}/{}", msg.action.path, msg.action.name)),
            )
            .with("kind", json!("unknown"));
        if msg.cause.is_some() {
            annotations.set("causedBy", json!("sequence"));
        }
        let activation = Activation {
            namespace: EntityPath::namespace(&msg.user.namespace.name),
            name: msg.action.name.clone(),
            subject: msg.user.subject.clone(),
            activation_id: msg.activation_id.clone(),
            start: now,
            end: now,
            duration: Some(0),
            cause: msg.cause.clone(),
            response,
            logs: Vec::new(),
            version: msg.action.version,
            publish: false,
            annotations,
        };
        self.observe(msg, &activation);
        self.store_record(msg, &activation, store_records).await;
        self.ack_combined(msg, &activation).await;
        activation
    }

    /// Records the activation's metrics (OpenWhisk's user-events `Activation`).
    fn observe(&self, msg: &ActivationMessage, activation: &Activation) {
        let metrics = &self.config.metrics;
        if metrics.is_enabled() {
            let sample = ActivationSample::of(
                activation,
                msg.user.namespace.name.as_str(),
                msg.transid.start,
            );
            metrics.record(Event::Activation(&sample));
        }
    }

    async fn run_action(
        &self,
        msg: ActivationMessage,
        cached: Arc<CachedAction>,
        store_records: bool,
        trace: Option<TraceContext>,
    ) -> Result<Activation> {
        let action = &cached.action;
        let limits = action.limits;
        let timeout = Duration::from_millis(limits.timeout);
        let ns = msg.user.namespace.name.as_str();
        let kind = action.exec.kind();
        let image = match &action.exec {
            Exec::Blackbox { image, .. } => Some(image.as_str()),
            _ => None,
        };
        let key = ContainerKey::new(ns, &cached.path, &cached.rev, kind, limits.memory);
        let api_key =
            proxy::provides_api_key(&action.annotations).then(|| msg.user.authkey.compact());
        // Init parameters: those the controller listed, plus any the action marks `init`.
        let init_keys: Cow<'_, [String]> =
            if cached.init_keys.iter().all(|k| msg.init_args.contains(k)) {
                Cow::Borrowed(&msg.init_args)
            } else {
                let mut v = msg.init_args.clone();
                v.extend(
                    cached
                        .init_keys
                        .iter()
                        .filter(|k| !msg.init_args.contains(k))
                        .cloned(),
                );
                Cow::Owned(v)
            };
        let container_name = format!("{ns}_{}", action.name);
        let queue_deadline = Instant::now() + timeout;

        let mut attempts = 0;
        let (mut lease, result) = loop {
            let req = AcquireRequest {
                key: &key,
                kind,
                memory_mb: limits.memory,
                image,
                name: &container_name,
                deadline: queue_deadline,
            };
            let container_span = self.config.tracer.span("invoker.container", trace.as_ref());
            let acquired = self.pool.acquire(&req).await;
            drop(container_span);
            let mut lease = match acquired {
                Ok(l) => l,
                Err(e @ Error::Unavailable { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(activation = %msg.activation_id, error = %e, "no container for the activation");
                    // A blackbox image the engine cannot provide (OpenWhisk: `Failed to pull
                    // container image '<img>'.`) or a kind this invoker's executor does not run
                    // is the developer's problem: it must not count against the invoker's
                    // health. Anything else is ours.
                    let response = match &e {
                        Error::BadRequest { message } => {
                            ActivationResponse::developer_error(message.clone())
                        }
                        _ => ActivationResponse::whisk_error(RESOURCE_PROVISION_ERROR),
                    };
                    let now = now_ms();
                    let r = RunResult {
                        response,
                        timed_out: false,
                        init_ms: None,
                        start_ms: now,
                        end_ms: now,
                        wait_ms: now.saturating_sub(msg.transid.start),
                    };
                    let activation = self.record(&msg, &cached, r);
                    self.observe(&msg, &activation);
                    self.store_record(&msg, &activation, store_records).await;
                    self.ack_combined(&msg, &activation).await;
                    return Ok(activation);
                }
            };
            let ctx = ActivationContext {
                namespace: ns,
                action_name: &cached.name_slash,
                action_version: &action.version,
                activation_id: msg.activation_id.as_str(),
                transaction_id: &msg.transid.id,
                deadline_ms: 0,
                api_key: api_key.as_deref(),
            };
            match self
                .init_and_run(&mut lease, &msg, &cached, ctx, &init_keys, timeout, trace)
                .await
            {
                Some(r) => break (lease, r),
                None if attempts < 2 => {
                    // The proxy answered 503 (shutting down): another container takes the job.
                    attempts += 1;
                    lease.release(Release::Destroy);
                }
                None => {
                    let now = now_ms();
                    let r = RunResult {
                        response: ActivationResponse::whisk_error(RESOURCE_PROVISION_ERROR),
                        timed_out: false,
                        init_ms: None,
                        start_ms: now,
                        end_ms: now,
                        wait_ms: now.saturating_sub(msg.transid.start),
                    };
                    break (lease, r);
                }
            }
        };
        lease.mark_finishing();

        let status = result.response.status_code;
        let developer_error = status == StatusCode::DeveloperError;
        let mut activation = self.record(&msg, &cached, result);
        self.observe(&msg, &activation);
        let log_limit = limits.logs * MB;
        let topic = completed_topic(&msg.root_controller_index.as_string);
        let key_bytes = msg.activation_id.as_str().as_bytes();

        if msg.blocking && log_limit > 0 {
            let full = AcknowledgementRef::Result {
                transid: &msg.transid,
                response: ActivationOrIdRef::Activation(&activation),
            }
            .to_bytes();
            self.publish(&topic, key_bytes, full, || {
                AcknowledgementRef::Result {
                    transid: &msg.transid,
                    response: ActivationOrIdRef::Id(&msg.activation_id),
                }
                .to_bytes()
            })
            .await;
        }
        if log_limit > 0 {
            activation.logs = self
                .collect_logs(&lease, log_limit, developer_error, image.is_some())
                .await;
        } else {
            // Nothing is kept, but the container's buffer is emptied for the next activation.
            let _ = tokio::time::timeout(self.config.log_timeout, lease.container().logs(0, false))
                .await;
        }
        lease.release(Release::for_status(status));

        let store_span = self.config.tracer.span("invoker.store", trace.as_ref());
        if msg.blocking && log_limit == 0 {
            self.ack_combined(&msg, &activation).await;
            self.store_record(&msg, &activation, store_records).await;
            drop(store_span);
        } else {
            self.store_record(&msg, &activation, store_records).await;
            drop(store_span);
            let ack = AcknowledgementRef::Completion {
                transid: &msg.transid,
                activation_id: &msg.activation_id,
                is_system_error: status == StatusCode::WhiskError,
                instance: &self.config.instance,
            }
            .to_bytes();
            self.publish(&topic, key_bytes, ack, Bytes::new).await;
        }
        Ok(activation)
    }

    /// `/init` (once per container) and `/run`. `None` when the proxy answered 503 (the
    /// container is shutting down) and the job should go to another container.
    // The trace context is one more piece of the activation's state; a struct for the
    // eight would only move them.
    #[allow(clippy::too_many_arguments)]
    async fn init_and_run(
        &self,
        lease: &mut Lease,
        msg: &ActivationMessage,
        cached: &CachedAction,
        mut ctx: ActivationContext<'_>,
        init_keys: &[String],
        timeout: Duration,
        trace: Option<TraceContext>,
    ) -> Option<RunResult> {
        let action = &cached.action;
        let max_bytes = self.config.limits.max_result_bytes;
        let start_ms = now_ms();
        let wait_ms = start_ms.saturating_sub(msg.transid.start);
        let mut init_ms = None;
        if !lease.is_initialized() {
            ctx.deadline_ms = start_ms + timeout.as_millis() as u64;
            let params = proxy::init_params(msg.content.as_ref(), init_keys);
            let body = proxy::init_body(action.name.as_str(), &action.exec, &ctx, &params);
            let t0 = Instant::now();
            let init_span = self.config.tracer.span("invoker.init", trace.as_ref());
            let reply = lease.container().init(body, timeout).await;
            drop(init_span);
            let elapsed = t0.elapsed();
            init_ms = Some(elapsed.as_millis() as u64);
            if matches!(&reply, Ok(r) if r.status == 503) {
                return None;
            }
            if let Err(f) = proxy::interpret_init(&reply, elapsed, timeout, max_bytes) {
                return Some(RunResult {
                    response: f.response,
                    timed_out: f.timed_out,
                    init_ms,
                    start_ms,
                    end_ms: now_ms(),
                    wait_ms,
                });
            }
            lease.mark_initialized();
        }
        let run_start = now_ms();
        ctx.deadline_ms = run_start + timeout.as_millis() as u64;
        let body = proxy::run_body(msg.content.as_ref(), init_keys, &ctx);
        let t0 = Instant::now();
        let run_span = self.config.tracer.span("invoker.run", trace.as_ref());
        let reply = lease.container().run(body, timeout).await;
        drop(run_span);
        let elapsed = t0.elapsed();
        if matches!(&reply, Ok(r) if r.status == 503) {
            return None;
        }
        let out = proxy::interpret_run(reply, elapsed, timeout, max_bytes);
        Some(RunResult {
            response: out.response,
            timed_out: out.timed_out,
            init_ms,
            start_ms,
            end_ms: now_ms(),
            wait_ms,
        })
    }

    /// The record of an activation that reached a container.
    fn record(&self, msg: &ActivationMessage, cached: &CachedAction, r: RunResult) -> Activation {
        let action = &cached.action;
        let mut annotations = Annotations::new()
            .with("limits", cached.limits_json.clone())
            .with("path", Value::String(cached.path.clone()))
            .with("kind", Value::String(action.exec.kind().to_string()))
            .with("timeout", Value::Bool(r.timed_out));
        if msg.cause.is_some() {
            annotations.set("causedBy", json!("sequence"));
        }
        if let Some(i) = r.init_ms {
            annotations.set("initTime", json!(i));
        }
        annotations.set("waitTime", json!(r.wait_ms));
        if let Some(b) = &msg.action.binding {
            annotations.set("binding", Value::String(b.to_string()));
        }
        Activation {
            namespace: EntityPath::namespace(&msg.user.namespace.name),
            name: action.name.clone(),
            subject: msg.user.subject.clone(),
            activation_id: msg.activation_id.clone(),
            start: r.start_ms,
            end: r.end_ms,
            duration: Some(r.end_ms.saturating_sub(r.start_ms)),
            cause: msg.cause.clone(),
            response: r.response,
            logs: Vec::new(),
            version: action.version,
            publish: false,
            annotations,
        }
    }

    /// The activation's log lines in OpenWhisk's stored form, with its warning lines.
    async fn collect_logs(
        &self,
        lease: &Lease,
        limit_bytes: u64,
        developer_error: bool,
        blackbox: bool,
    ) -> Vec<String> {
        // Sentinels are not awaited after a developer error (the runtime may be gone) or for
        // blackbox images (they need not print them).
        let wait = !developer_error && !blackbox;
        let got = tokio::time::timeout(
            self.config.log_timeout,
            lease.container().logs(limit_bytes, wait),
        )
        .await;
        let mut out = Vec::new();
        match got {
            Ok(Ok(c)) => {
                out.reserve(c.lines.len() + 1);
                out.extend(c.lines.iter().map(LogLine::format));
                if c.truncated {
                    out.push(stderr_line(truncated_logs_message(limit_bytes)));
                } else if wait && c.incomplete {
                    out.push(stderr_line(LOG_FAILURE.into()));
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(container = lease.container().id(), error = %e, "cannot collect logs");
                out.push(stderr_line(LOG_FAILURE.into()));
            }
            Err(_) => out.push(stderr_line(LOG_FAILURE.into())),
        }
        if developer_error {
            out.push(stderr_line(LOG_WARNING_DEVELOPER_ERROR.into()));
        }
        out
    }

    async fn store_record(
        &self,
        msg: &ActivationMessage,
        activation: &Activation,
        store_records: bool,
    ) {
        if store_records && let Err(e) = self.store.put_activation(activation).await {
            tracing::error!(activation = %activation.activation_id, error = %e, "cannot store the activation record");
        }
        if self.config.user_events {
            self.publish_event(msg, activation).await;
        }
    }

    /// Publishes the activation's user event (OpenWhisk's `MessagingActiveAck`).
    async fn publish_event(&self, msg: &ActivationMessage, activation: &Activation) {
        let Some(body) = ActivationEvent::from_record(activation) else {
            return;
        };
        let event = EventMessage {
            source: format!("invoker{}", self.config.instance.instance),
            body: EventBody::Activation(body),
            subject: activation.subject.clone(),
            namespace: activation.namespace.to_string(),
            user_id: msg.user.namespace.uuid.clone(),
            event_type: "Activation".into(),
            timestamp: now_ms(),
        };
        if let Err(e) = self.bus.publish(EVENTS_TOPIC, None, to_bytes(&event)).await {
            tracing::warn!(activation = %activation.activation_id, error = %e, "cannot publish the user event");
        }
    }

    /// One `Combined` ack (shrunk for non-blocking requests).
    async fn ack_combined(&self, msg: &ActivationMessage, activation: &Activation) {
        let topic = completed_topic(&msg.root_controller_index.as_string);
        let is_system_error = activation.response.status_code == StatusCode::WhiskError;
        let combined = |response| {
            AcknowledgementRef::Combined {
                transid: &msg.transid,
                response,
                is_system_error,
                instance: &self.config.instance,
            }
            .to_bytes()
        };
        let shrunk = || combined(ActivationOrIdRef::Id(&msg.activation_id));
        let payload = if msg.blocking {
            combined(ActivationOrIdRef::Activation(activation))
        } else {
            shrunk()
        };
        self.publish(
            &topic,
            msg.activation_id.as_str().as_bytes(),
            payload,
            shrunk,
        )
        .await;
    }

    /// Publishes an ack; too large → `shrunk()` instead (empty: give up); topic missing →
    /// created, then sent again.
    async fn publish(
        &self,
        topic: &str,
        key: &[u8],
        payload: Bytes,
        shrunk: impl FnOnce() -> Bytes,
    ) {
        let mut payload = payload;
        let mut shrunk = Some(shrunk);
        let mut created = false;
        loop {
            match self.bus.publish(topic, Some(key), payload.clone()).await {
                Ok(()) => return,
                Err(Error::TooLarge { .. }) => match shrunk.take().map(|f| f()) {
                    Some(p) if !p.is_empty() => payload = p,
                    _ => {
                        tracing::error!(topic, "acknowledgement too large to publish");
                        return;
                    }
                },
                Err(Error::NotFound { .. }) if !created => {
                    created = true;
                    if let Err(e) = self
                        .bus
                        .create_topic(topic, &TopicConfig::default().transient())
                        .await
                    {
                        tracing::error!(topic, error = %e, "cannot create the completion topic");
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(topic, error = %e, "cannot publish an acknowledgement");
                    return;
                }
            }
        }
    }
}

/// A running invoker loop; see [`run_invoker`].
#[derive(Debug)]
pub struct InvokerHandle {
    service: InvokerService,
    stop: watch::Sender<bool>,
    consume: Option<JoinHandle<()>>,
    ping: Option<JoinHandle<()>>,
    permits: Arc<Semaphore>,
    max_in_flight: u32,
}

impl InvokerHandle {
    /// The service the loop feeds.
    pub fn service(&self) -> &InvokerService {
        &self.service
    }

    /// Activations being handled now.
    pub fn in_flight(&self) -> usize {
        (self.max_in_flight as usize).saturating_sub(self.permits.available_permits())
    }

    /// Stops consuming, waits (up to [`InvokerConfig::shutdown_timeout`]) for the activations in
    /// flight, pings `health` once with `isEnabled: false`, and shuts the pool down. Messages
    /// not yet finished stay uncommitted and are delivered again.
    pub async fn shutdown(self) {
        let limit = self.service.inner.config.shutdown_timeout;
        self.shutdown_within(limit).await;
    }

    /// As [`shutdown`](Self::shutdown), waiting up to `limit` (instead of
    /// [`InvokerConfig::shutdown_timeout`]) for the activations in flight: a platform shutting
    /// down within a deadline gives its invoker the time left. The consume and ping loops are
    /// given at least a second to stop.
    pub async fn shutdown_within(mut self, limit: Duration) {
        let _ = self.stop.send(true);
        let loops = limit.max(Duration::from_secs(1));
        if let Some(h) = self.consume.take()
            && tokio::time::timeout(loops, h).await.is_err()
        {
            tracing::warn!("the invoker's consumer did not stop in time");
        }
        if tokio::time::timeout(limit, self.permits.acquire_many(self.max_in_flight))
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.in_flight(),
                "activations still running at shutdown"
            );
        }
        if let Some(h) = self.ping.take() {
            let _ = tokio::time::timeout(loops, h).await;
        }
        self.service.inner.pool.shutdown().await;
    }
}

impl Drop for InvokerHandle {
    fn drop(&mut self) {
        // Without `shutdown`, at least stop the loops.
        let _ = self.stop.send(true);
    }
}

/// Starts an invoker: creates `invoker<N>` and `health` if missing, subscribes to `invoker<N>`
/// in group `invoker<N>`, and spawns the consume loop and the health pings. See the
/// [module documentation](self).
pub async fn run_invoker(service: InvokerService) -> Result<InvokerHandle> {
    let cfg = &service.inner.config;
    let bus = Arc::clone(&service.inner.bus);
    let topic = invoker_topic(cfg.instance.instance);
    bus.create_topic(
        &topic,
        &TopicConfig::default().with_retention(Duration::from_secs(48 * 3600)),
    )
    .await?;
    // Pings and acknowledgements describe live processes: nothing to keep across a restart.
    bus.create_topic(HEALTH_TOPIC, &TopicConfig::default().transient())
        .await?;
    if cfg.user_events {
        bus.create_topic(EVENTS_TOPIC, &TopicConfig::default())
            .await?;
    }
    let consumer = bus.subscribe(&topic, &topic).await?;
    let max = cfg.in_flight_limit().min(Semaphore::MAX_PERMITS) as u32;
    let permits = Arc::new(Semaphore::new(max as usize));
    let (stop, stop_rx) = watch::channel(false);
    let (receiving, receiving_rx) = watch::channel(false);
    let consume = tokio::spawn(consume_loop(
        service.clone(),
        consumer,
        Arc::clone(&permits),
        stop_rx.clone(),
        receiving,
    ));
    // A probe to itself: the first delivery (this probe or anything older) proves that the
    // consumer holds its partition, and only then do the pings announce the invoker.
    let probe = format!(
        "{{\"{PROBE_FIELD}\":\"{}\"}}",
        faas_core::ActivationId::generate()
    );
    if let Err(e) = bus.publish(&topic, None, Bytes::from(probe)).await {
        tracing::warn!(error = %e, "cannot send the start-up probe; pinging without it");
    }
    let ping = tokio::spawn(ping_loop(
        bus,
        PingMessage::new(cfg.instance.clone()).with_runtimes(service.pool().executor().runtimes()),
        cfg.health_interval,
        stop_rx,
        receiving_rx,
    ));
    Ok(InvokerHandle {
        service,
        stop,
        consume: Some(consume),
        ping: Some(ping),
        permits,
        max_in_flight: max,
    })
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    // Ends when `true` is sent or the sender is gone.
    let _ = rx.wait_for(|s| *s).await;
}

/// The field of the probe an invoker sends to its own topic at start (`{"faasInvokerProbe": id}`).
const PROBE_FIELD: &str = "faasInvokerProbe";

/// Whether `payload` is a start-up probe (an invoker's message to itself, not an activation).
fn is_probe(payload: &[u8]) -> bool {
    payload.starts_with(format!("{{\"{PROBE_FIELD}\"").as_bytes())
}

/// Longest an invoker waits for its first delivery before it pings anyway.
const RECEIVING_WAIT: Duration = Duration::from_secs(30);

async fn consume_loop(
    service: InvokerService,
    consumer: Arc<dyn Consumer>,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    receiving: watch::Sender<bool>,
) {
    loop {
        // Take a slot first, so no more messages are read than can run.
        let permit = tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let delivery = tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            d = consumer.recv() => d,
        };
        let delivery = match delivery {
            Ok(d) => {
                receiving.send_if_modified(|r| !std::mem::replace(r, true));
                d
            }
            Err(e) => {
                tracing::warn!(error = %e, "receiving from the invoker topic failed");
                drop(permit);
                tokio::select! {
                    _ = stopped(&mut stop) => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        if is_probe(&delivery.payload) {
            if let Err(e) = consumer.commit(&delivery).await {
                tracing::warn!(error = %e, "cannot commit the start-up probe");
            }
            continue;
        }
        let msg: ActivationMessage = match serde_json::from_slice(&delivery.payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(
                    topic = %delivery.topic, offset = delivery.offset, error = %e,
                    "skipping an undecodable activation message"
                );
                if let Err(e) = consumer.commit(&delivery).await {
                    tracing::warn!(error = %e, "cannot commit a skipped message");
                }
                continue;
            }
        };
        let svc = service.clone();
        let consumer = Arc::clone(&consumer);
        tokio::spawn(async move {
            let id = msg.activation_id.clone();
            match svc.invoke_delivered(msg, &delivery).await {
                Ok(_) => {
                    if let Err(e) = consumer.commit(&delivery).await {
                        tracing::warn!(activation = %id, error = %e, "cannot commit a handled message");
                    }
                }
                Err(e) => {
                    tracing::warn!(activation = %id, error = %e, "activation not handled; left for redelivery");
                }
            }
            drop(permit);
        });
    }
}

async fn ping_loop(
    bus: Arc<dyn MessageBus>,
    ping: PingMessage,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    mut receiving: watch::Receiver<bool>,
) {
    let ping = |enabled: bool| to_bytes(&ping.clone().enabled(enabled));
    // Announce the invoker only once it receives: a controller would otherwise send it work
    // that waits on its topic until the consumer group has handed it the partition (seconds
    // on some brokers).
    tokio::select! {
        biased;
        _ = stopped(&mut stop) => return,
        r = tokio::time::timeout(RECEIVING_WAIT, receiving.wait_for(|r| *r)) => {
            if r.is_err() {
                tracing::warn!("no delivery from the invoker topic yet; pinging anyway");
            }
        }
    }
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            _ = tick.tick() => {
                if let Err(e) = bus.publish(HEALTH_TOPIC, None, ping(true)).await {
                    tracing::warn!(error = %e, "health ping failed");
                }
            }
        }
    }
    // Tell the controllers at once that this invoker is going away.
    let _ = bus.publish(HEALTH_TOPIC, None, ping(false)).await;
}
