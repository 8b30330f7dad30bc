//! The invoker as a tower `Service<ActivationMessage>`: fetch the action, take a container,
//! `/init` and `/run`, collect the logs (see the [module documentation](super)).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use faas_core::activation::{Activation, ActivationResponse, StatusCode};
use faas_core::entity::{Entity, Exec, now_ms};
use faas_core::executor::LogLine;
use faas_core::limits::MB;
use faas_core::message::ActivationMessage;
use faas_core::trace::TraceContext;
use faas_core::{Delivery, Error, MessageBus, Result, Store};
use serde_json::Value;
use tower::Service;

use crate::pool::{AcquireRequest, ContainerKey, ContainerPool, Lease, Release};
use crate::proxy::{self, ActivationContext};

/// The invoker as a tower `Service<ActivationMessage>`: runs the activation, stores its record,
/// publishes its acknowledgements and returns the record. Cheap to clone (an `Arc` inside).
///
/// It is always ready (the pool queues internally). The returned future fails only when the
/// activation could not be handled at all and should be delivered again (the pool is shut
/// down); every other outcome, including user and platform errors, is an `Ok` record.
#[derive(Clone)]
pub struct InvokerService {
    pub(super) inner: Arc<Inner>,
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

use super::metrics::PoolSource;
use super::{
    ACTION_FETCH_ERROR, ACTION_MISMATCH, ACTION_REMOVED, CachedAction, Inner, InvokerConfig,
    LOG_FAILURE, LOG_WARNING_DEVELOPER_ERROR, RESOURCE_PROVISION_ERROR, RunResult, stderr_line,
    truncated_logs_message,
};

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
        let cache = quick_cache::sync::Cache::new(config.action_cache_size.max(1));
        Self {
            inner: Arc::new(Inner {
                config,
                store,
                bus,
                pool,
                cache,
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
    /// its activation (see [Idempotency under redelivery](super#idempotency-under-redelivery)).
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

impl Inner {
    pub(super) async fn handle(
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

    pub(super) async fn handle_traced(
        self: Arc<Self>,
        msg: ActivationMessage,
        may_repeat: bool,
        trace: Option<TraceContext>,
    ) -> Result<Activation> {
        let store_records = msg.user.limits.store_activations != Some(false);
        let check = may_repeat && self.config.check_duplicates && store_records;
        let (existing, fetched) = if check {
            tokio::join!(self.existing_record(&msg), self.fetch_action(&msg))
        } else {
            (None, self.fetch_action(&msg).await)
        };
        if let Some(record) = existing {
            self.ack_combined(&msg, &record).await;
            return Ok(record);
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
    pub(super) async fn fetch_action(
        &self,
        msg: &ActivationMessage,
    ) -> std::result::Result<Arc<CachedAction>, ActivationResponse> {
        let fqn = msg.action.fqn();
        if let Some(rev) = &msg.revision
            && let Some(c) = self.cache.get(&fqn)
            && &c.rev == rev
        {
            return Ok(c);
        }
        match self.store.get_entity(&fqn).await {
            Ok(v) => match v.value {
                Entity::Action(action) => {
                    if let Some(c) = self.cache.get(&fqn)
                        && c.rev == v.rev.0
                    {
                        return Ok(c);
                    }
                    let c = Arc::new(CachedAction::new(action, v.rev.0));
                    self.cache.insert(fqn, Arc::clone(&c));
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

    pub(super) async fn run_action(
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

        if msg.blocking && log_limit > 0 {
            self.ack_result(&msg, &activation).await;
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
            self.ack_completion(&msg, status == StatusCode::WhiskError)
                .await;
        }
        Ok(activation)
    }

    /// `/init` (once per container) and `/run`. `None` when the proxy answered 503 (the
    /// container is shutting down) and the job should go to another container.
    // The trace context is one more piece of the activation's state; a struct for the
    // eight would only move them.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn init_and_run(
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

    /// The activation's log lines in OpenWhisk's stored form, with its warning lines.
    pub(super) async fn collect_logs(
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
}
