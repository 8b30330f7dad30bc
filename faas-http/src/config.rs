//! The controller's configuration.

use std::time::Duration;

use faas_core::{RuntimeManifest, SystemLimits};

/// How a [`Controller`](crate::Controller) behaves. `Default` gives OpenWhisk's values.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ControllerConfig {
    /// This controller's id (`"0"`); its acknowledgement topic is `completed<id>`.
    pub id: String,
    /// System limits and defaults (action limits, payload sizes, throttles, list pages,
    /// longest blocking wait).
    pub limits: SystemLimits,
    /// The kinds offered (reported by `GET /` and `GET /api/v1`, checked on `PUT`).
    pub manifest: RuntimeManifest,
    /// Longest time a request may take before it is answered 503 (OpenWhisk: 65 s, above the
    /// 60 s blocking wait).
    pub request_timeout: Duration,
    /// How many controllers share the namespace throttles (each enforces its share).
    pub cluster_size: u32,
    /// Forced completion: an activation without a completion acknowledgement is written off
    /// after `max(action timeout, 60 s) × timeout_factor + timeout_addon`.
    pub timeout_factor: u32,
    /// See [`timeout_factor`](Self::timeout_factor).
    pub timeout_addon: Duration,
    /// How often the books are checked for overdue activations.
    pub sweep_interval: Duration,
    /// How long `GET /activations/{id}` waits for a record whose result has arrived but that
    /// is not stored yet.
    pub record_wait: Duration,
    /// How often an unhealthy or unresponsive invoker gets a health test action (default 60 s,
    /// as OpenWhisk; also sent on entering the state and after each successful test).
    pub health_test_interval: Duration,
    /// How often a blocking invoke also reads the store for its record while it waits for the
    /// acknowledgement (default 15 s, OpenWhisk's `polling-from-db`).
    pub store_poll_interval: Duration,
    /// The `build` field of `GET /api/v1`.
    pub build: String,
    /// The `buildno` field of `GET /api/v1`.
    pub buildno: String,
    /// The HTTP server's limits (connections, read timeouts, shutdown deadline).
    pub server: crate::server::ServerConfig,
    /// The admin API (`/admin/v1`): off unless it has an operator credential.
    pub admin: crate::admin::AdminConfig,
    /// The built-in alarms provider (scheduler on or off, poll period, leader lease).
    pub alarms: crate::alarms::AlarmsConfig,
    /// Where the controller records its metrics (`None`: nowhere, the default; see
    /// [`crate::metrics`]).
    pub metrics: Option<std::sync::Arc<crate::metrics::PrometheusMetrics>>,
    /// The bearer token that opens `GET /metrics` on the API listener. Without one the API
    /// listener has no `/metrics` (namespace and action names are tenant data; serve them on
    /// a listener of their own with [`crate::metrics::serve_metrics`] instead).
    pub metrics_token: Option<String>,
    /// Where spans go (disabled by default; see [`faas_core::trace`]).
    pub tracer: faas_core::trace::Tracer,
    /// Publish OpenWhisk's user events (a `Metric` event per throttled request on the
    /// `events` topic; see [`faas_core::events`]). Default off.
    pub user_events: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            id: "0".into(),
            limits: SystemLimits::default(),
            manifest: RuntimeManifest::default_local(),
            request_timeout: Duration::from_secs(65),
            cluster_size: 1,
            timeout_factor: 2,
            timeout_addon: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(1),
            record_wait: Duration::from_secs(5),
            health_test_interval: Duration::from_secs(60),
            store_poll_interval: Duration::from_secs(15),
            build: concat!("faas-", env!("CARGO_PKG_VERSION")).into(),
            buildno: env!("CARGO_PKG_VERSION").into(),
            server: crate::server::ServerConfig::default(),
            admin: crate::admin::AdminConfig::default(),
            alarms: crate::alarms::AlarmsConfig::default(),
            metrics: None,
            metrics_token: None,
            tracer: faas_core::trace::Tracer::disabled(),
            user_events: false,
        }
    }
}

impl ControllerConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// With controller id `id`.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }
    /// With system limits.
    pub fn with_limits(mut self, limits: SystemLimits) -> Self {
        self.limits = limits;
        self
    }
    /// With a runtime manifest.
    pub fn with_manifest(mut self, manifest: RuntimeManifest) -> Self {
        self.manifest = manifest;
        self
    }
    /// With the HTTP server's limits.
    pub fn with_server(mut self, server: crate::server::ServerConfig) -> Self {
        self.server = server;
        self
    }
    /// With a request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// With the number of controllers sharing the throttles.
    pub fn with_cluster_size(mut self, n: u32) -> Self {
        self.cluster_size = n.max(1);
        self
    }
    /// With the forced-completion formula's factor and addon.
    pub fn with_completion_timeout(mut self, factor: u32, addon: Duration) -> Self {
        self.timeout_factor = factor;
        self.timeout_addon = addon;
        self
    }
    /// With the interval of the overdue-activation sweep.
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }
    /// With the record wait of `GET /activations/{id}`.
    pub fn with_record_wait(mut self, wait: Duration) -> Self {
        self.record_wait = wait;
        self
    }

    /// With the interval between store reads of a waiting blocking invoke.
    pub fn with_store_poll_interval(mut self, every: Duration) -> Self {
        self.store_poll_interval = every.max(Duration::from_millis(1));
        self
    }

    /// With the interval between health test actions for an unhealthy invoker.
    pub fn with_health_test_interval(mut self, every: Duration) -> Self {
        self.health_test_interval = every;
        self
    }

    /// With the alarms provider's settings (scheduler on or off, poll period, lease; a poll
    /// period under 10 ms is taken as 10 ms, a lease under 1 s as 1 s).
    pub fn with_alarms(mut self, mut alarms: crate::alarms::AlarmsConfig) -> Self {
        alarms.poll = alarms.poll.max(Duration::from_millis(10));
        alarms.lease = alarms.lease.max(Duration::from_secs(1));
        self.alarms = alarms;
        self
    }

    /// Recording metrics in `metrics` (see [`crate::metrics`]).
    pub fn with_metrics(
        mut self,
        metrics: std::sync::Arc<crate::metrics::PrometheusMetrics>,
    ) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// With `GET /metrics` on the API listener for `Authorization: Bearer <token>`.
    pub fn with_metrics_token(mut self, token: impl Into<String>) -> Self {
        self.metrics_token = Some(token.into());
        self
    }

    /// Exporting spans through `tracer` (a span per request, one for each dispatch, and the
    /// trace context in every activation message).
    pub fn with_tracer(mut self, tracer: faas_core::trace::Tracer) -> Self {
        self.tracer = tracer;
        self
    }

    /// Publishing user events on `events` (see [`Self::user_events`]).
    pub fn with_user_events(mut self, on: bool) -> Self {
        self.user_events = on;
        self
    }

    /// The metrics handle of this configuration (disabled without [`Self::metrics`]).
    pub fn metrics_handle(&self) -> faas_core::metrics::Metrics {
        self.metrics
            .as_ref()
            .map(crate::metrics::PrometheusMetrics::handle)
            .unwrap_or_default()
    }

    /// With the admin API served to holders of `credential` (see [`crate::admin`]).
    pub fn with_admin_credential(mut self, credential: crate::admin::AdminCredential) -> Self {
        self.admin = crate::admin::AdminConfig::with_credential(credential);
        self
    }

    /// The forced completion time-out of an action with `action_timeout`.
    pub fn completion_timeout(&self, action_timeout: Duration) -> Duration {
        action_timeout.max(Duration::from_secs(60)) * self.timeout_factor + self.timeout_addon
    }

    /// The largest request body the controller reads: an action `PUT` with the largest code
    /// and parameters and annotations at their limits, plus room for JSON escaping.
    pub fn max_request_bytes(&self) -> u64 {
        let l = &self.limits;
        l.max_exec_bytes + 2 * l.max_parameter_bytes + 2 * faas_core::limits::MB
    }

    pub(crate) fn validate(&self) -> faas_core::Result<()> {
        if self.id.is_empty() || !self.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(faas_core::Error::bad_request(format!(
                "controller id must be alphanumeric, got '{}'",
                self.id
            )));
        }
        if self.request_timeout.is_zero() || self.sweep_interval.is_zero() {
            return Err(faas_core::Error::bad_request(
                "request_timeout and sweep_interval must be positive",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_timeout_follows_openwhisk() {
        let c = ControllerConfig::default();
        assert_eq!(
            c.completion_timeout(Duration::from_secs(60)),
            Duration::from_secs(180)
        );
        assert_eq!(
            c.completion_timeout(Duration::from_millis(100)),
            Duration::from_secs(180)
        );
        assert_eq!(
            c.completion_timeout(Duration::from_secs(300)),
            Duration::from_secs(660)
        );
        assert!(ControllerConfig::default().with_id("").validate().is_err());
        assert!(ControllerConfig::default().validate().is_ok());
    }
}
