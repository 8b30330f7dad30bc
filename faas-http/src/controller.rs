//! The controller: shared state, start-up (topics and consumers) and the HTTP stack.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use http::StatusCode;
use http::header::AUTHORIZATION;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::auth::AsyncRequireAuthorizationLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use faas_core::bus::{Consumer, TopicConfig};
use faas_core::entity::now_ms;
use faas_core::message::{
    Acknowledgement, ActivationOrId, ControllerInstanceId, HEALTH_TOPIC, PingMessage,
    completed_topic,
};
use faas_core::scheduler::InvocationOutcome;
use faas_core::{Authenticator, MessageBus, Result, Scheduler, Store};

use crate::books::{Books, Entry};
use crate::config::ControllerConfig;
use crate::layers::auth::BasicAuth;
use crate::layers::cors::ApiCorsLayer;
use crate::layers::request_id::RequestIdLayer;
use crate::routes;
use crate::throttle::Throttles;

/// State shared by the HTTP handlers and the background consumers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ControllerConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) bus: Arc<dyn MessageBus>,
    pub(crate) scheduler: Arc<dyn Scheduler>,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) books: Books,
    pub(crate) throttles: Arc<Throttles>,
    pub(crate) instance: ControllerInstanceId,
    pub(crate) completed_topic: String,
    pub(crate) health_tests: crate::health::HealthTests,
    started: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let tasks = self.tasks.get_mut().unwrap_or_else(PoisonError::into_inner);
        for t in tasks.drain(..) {
            t.abort();
        }
    }
}

impl Shared {
    /// Ends an activation that left the books: frees its scheduler slot, records how it ended
    /// and (by dropping the entry) its throttle slot, waiter and readers.
    pub(crate) fn finish(&self, entry: Entry, outcome: Option<InvocationOutcome>) {
        self.scheduler.release(
            &entry.invoker,
            entry.memory_mb,
            entry.max_concurrent,
            &entry.action,
        );
        if let Some(o) = outcome {
            self.scheduler.on_outcome(&entry.invoker, o);
        }
    }

    /// Applies one acknowledgement from `completed<C>`.
    pub(crate) fn on_ack(&self, ack: Acknowledgement) {
        match ack {
            Acknowledgement::Result { response, .. } => match response {
                ActivationOrId::Activation(a) => {
                    let id = a.activation_id.clone();
                    self.books.on_result(&id, Some(a));
                }
                ActivationOrId::Id(id) => self.books.on_result(&id, None),
            },
            Acknowledgement::Completion {
                activation_id,
                is_system_error,
                ..
            } => {
                if let Some(e) = self.books.remove(&activation_id) {
                    self.finish(e, Some(outcome(is_system_error)));
                } else if !crate::health::on_test_completion(self, &activation_id, is_system_error)
                {
                    tracing::debug!(%activation_id, "completion for an activation not in the books");
                }
            }
            Acknowledgement::Combined {
                response,
                is_system_error,
                ..
            } => {
                let (id, activation) = match response {
                    ActivationOrId::Activation(a) => (a.activation_id.clone(), Some(a)),
                    ActivationOrId::Id(id) => (id, None),
                };
                if let Some(mut e) = self.books.remove(&id) {
                    if let Some(a) = activation {
                        e.deliver(a);
                    }
                    self.finish(e, Some(outcome(is_system_error)));
                } else if !crate::health::on_test_completion(self, &id, is_system_error) {
                    tracing::debug!(activation_id = %id, "combined ack for an activation not in the books");
                }
            }
        }
    }

    /// Writes off activations whose completion is overdue (OpenWhisk's forced acknowledgement).
    pub(crate) fn expire_overdue(&self, now: Instant) -> usize {
        let overdue = self.books.take_overdue(now);
        let n = overdue.len();
        for (id, e) in overdue {
            tracing::warn!(activation_id = %id, invoker = e.invoker.instance, "forced completion: no acknowledgement in time");
            self.finish(e, Some(InvocationOutcome::Timeout));
        }
        n
    }
}

fn outcome(is_system_error: bool) -> InvocationOutcome {
    if is_system_error {
        InvocationOutcome::SystemError
    } else {
        InvocationOutcome::Success
    }
}

/// An OpenWhisk controller: the REST API and the dispatch pipeline.
///
/// Cheap to clone (one `Arc`). Background consumers started by [`start`](Self::start) stop
/// when the last clone and the last router made from it are dropped.
#[derive(Debug, Clone)]
pub struct Controller {
    shared: Arc<Shared>,
}

impl Controller {
    /// A controller over the given adapters. Fails if the configuration is invalid.
    pub fn new(
        config: ControllerConfig,
        store: Arc<dyn Store>,
        bus: Arc<dyn MessageBus>,
        scheduler: Arc<dyn Scheduler>,
        auth: Arc<dyn Authenticator>,
    ) -> Result<Self> {
        config.validate()?;
        let instance = ControllerInstanceId::new(config.id.clone());
        let completed_topic = completed_topic(&config.id);
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                store,
                bus,
                scheduler,
                auth,
                books: Books::default(),
                throttles: Arc::new(Throttles::default()),
                instance,
                completed_topic,
                health_tests: Default::default(),
                started: AtomicBool::new(false),
                tasks: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Creates the topics `completed<C>` and `health` if missing, subscribes to them (groups
    /// `completed<C>` and `health<C>`) and spawns the acknowledgement consumer, the health
    /// consumer (feeding [`Scheduler::on_ping`]) and the sweep of overdue activations.
    ///
    /// Call once, inside a Tokio runtime, before serving invokes; later calls do nothing.
    pub async fn start(&self) -> Result<()> {
        let s = &self.shared;
        if s.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let result = self.start_inner().await;
        if result.is_err() {
            s.started.store(false, Ordering::SeqCst);
        }
        result
    }

    async fn start_inner(&self) -> Result<()> {
        let s = &self.shared;
        let max = usize::try_from(s.config.limits.max_payload_bytes).unwrap_or(usize::MAX);
        let topic_config = TopicConfig::default().with_max_message_bytes(max.saturating_add(6068));
        s.bus
            .create_topic(&s.completed_topic, &topic_config)
            .await?;
        s.bus
            .create_topic(HEALTH_TOPIC, &TopicConfig::default())
            .await?;
        let acks = s
            .bus
            .subscribe(&s.completed_topic, &s.completed_topic)
            .await?;
        let health = s
            .bus
            .subscribe(HEALTH_TOPIC, &format!("health{}", s.config.id))
            .await?;
        let weak = Arc::downgrade(s);
        let tasks = vec![
            tokio::spawn(consume(
                Weak::clone(&weak),
                acks,
                |s, payload| match serde_json::from_slice::<Acknowledgement>(payload) {
                    Ok(ack) => s.on_ack(ack),
                    Err(e) => tracing::warn!(error = %e, "skipping an undecodable acknowledgement"),
                },
            )),
            tokio::spawn(consume(Weak::clone(&weak), health, |s, payload| {
                match serde_json::from_slice::<PingMessage>(payload) {
                    Ok(ping) => s.scheduler.on_ping(&ping),
                    Err(e) => tracing::warn!(error = %e, "skipping an undecodable ping"),
                }
            })),
            tokio::spawn(sweep(Weak::clone(&weak), s.config.sweep_interval)),
        ];
        let mut tasks = tasks;
        if let Some(action) = crate::health::upsert_test_action(s).await? {
            tasks.push(tokio::spawn(crate::health::run(
                weak,
                action,
                s.config.health_test_interval.min(Duration::from_secs(1)),
            )));
        }
        s.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(tasks);
        Ok(())
    }

    /// The whole HTTP application, with its tower stack (outermost first):
    /// sensitive `Authorization` → request id → trace → body limit → timeout → CORS →
    /// (on `/api/v1/namespaces/...` only) authentication → routes.
    ///
    /// The body limit sits outside the time-out because tower-http's time-out needs a
    /// response body with a `Default` (the limit's wrapper has none); the limit answers
    /// oversized `Content-Length`s at once, so the order makes no observable difference.
    pub fn router(&self) -> Router {
        let s = &self.shared;
        let max_request = s.config.max_request_bytes();
        let auth = AsyncRequireAuthorizationLayer::new(BasicAuth::new(Arc::clone(&s.auth)));
        let api = routes::authenticated(Arc::clone(s)).route_layer(auth);
        let admin = crate::admin::router(Arc::clone(&s.store), &s.config.admin);
        routes::public(Arc::clone(s))
            .merge(api)
            .merge(admin)
            .fallback(routes::not_found)
            .layer(
                ServiceBuilder::new()
                    .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
                    .layer(RequestIdLayer::new(max_request))
                    // Failed activations answer 5xx as a matter of course: not errors here.
                    .layer(
                        TraceLayer::new_for_http()
                            .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
                    )
                    .layer(RequestBodyLimitLayer::new(
                        usize::try_from(max_request).unwrap_or(usize::MAX),
                    ))
                    .layer(TimeoutLayer::with_status_code(
                        StatusCode::SERVICE_UNAVAILABLE,
                        s.config.request_timeout,
                    ))
                    .layer(ApiCorsLayer::new()),
            )
    }

    /// Serves [`router`](Self::router) on `listener` until `shutdown` resolves.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        serve(listener, self.router(), shutdown).await
    }

    /// The configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.shared.config
    }

    /// How many activations this controller has in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.books.len()
    }
}

/// Serves `router` on `listener` (with `TCP_NODELAY`) until `shutdown` resolves, then
/// finishes the requests in progress.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Receives from `consumer` until the controller is gone: `handle` each payload, then commit.
/// Undecodable payloads are the handler's to log; they are committed like the rest, so a bad
/// message never loops.
async fn consume(
    shared: Weak<Shared>,
    consumer: Arc<dyn Consumer>,
    handle: impl Fn(&Shared, &[u8]) + Send + 'static,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let delivery = match consumer.recv().await {
            Ok(d) => {
                backoff = Duration::from_millis(10);
                d
            }
            Err(e) => {
                if shared.strong_count() == 0 {
                    return;
                }
                tracing::warn!(error = %faas_core::Chain(&e), "bus receive failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Some(s) = shared.upgrade() else {
            return;
        };
        handle(&s, &delivery.payload);
        drop(s);
        if let Err(e) = consumer.commit(&delivery).await {
            tracing::warn!(error = %faas_core::Chain(&e), "bus commit failed");
        }
    }
}

async fn sweep(shared: Weak<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(s) = shared.upgrade() else {
            return;
        };
        s.expire_overdue(Instant::now());
        s.throttles.prune(now_ms() / 60_000);
    }
}
