//! The invoker's settings.

use std::time::Duration;

use faas_core::limits::SystemLimits;
use faas_core::message::InvokerInstanceId;
use faas_core::metrics::Metrics;
use faas_core::trace::Tracer;

use crate::pool::PoolConfig;

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
    /// Longest wait of [`InvokerHandle::shutdown`](super::InvokerHandle::shutdown) for in-flight activations (default 30 s).
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
