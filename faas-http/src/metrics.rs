//! Prometheus metrics: the [`MetricsRecorder`] of the platform, on `prometheus-client`.
//!
//! [`PrometheusMetrics`] turns the building blocks' [`Event`]s into counters and histograms
//! and reads their [`MetricSource`]s at every scrape; [`PrometheusMetrics::render`] is the
//! text exposition format served at `/metrics` (see [`Controller::router`](crate::Controller::router)
//! and [`serve_metrics`]).
//!
//! # Names
//!
//! Activation metrics keep the names and labels of OpenWhisk's user-events service
//! (`core/monitoring/user-events`, `PrometheusRecorder.scala`), so its dashboards work:
//! `openwhisk_action_activations_total{namespace,initiator,action,kind,memory}`,
//! `openwhisk_action_coldStarts_total`, `openwhisk_action_status_total{…,status}` (OpenWhisk:
//! `openwhisk_action_status`; `prometheus-client` gives every counter the `_total` suffix),
//! `openwhisk_action_waitTime_seconds`, `openwhisk_action_initTime_seconds`,
//! `openwhisk_action_duration_seconds`, `openwhisk_action_memory`,
//! `openwhisk_action_response_size_bytes`, `openwhisk_action_status_code_total{…,status_code}`,
//! `openwhisk_action_limit_concurrent_total{namespace}` and
//! `openwhisk_action_limit_timed_total{namespace}`. Everything else is `faas_…` with
//! Prometheus conventions (base units, `_total` counters): see the table in `DESIGN-NOTES.md`.
//!
//! # Cardinality
//!
//! No label holds an id. Activation series are kept for at most
//! [`MetricsConfig::max_actions`] distinct `(namespace, initiator, action, kind, memory)`
//! sets, and limit series for as many namespaces; later ones are counted under the value
//! `other`. HTTP requests are labelled with the route template, never the raw path
//! (`unmatched` for paths no route has), topics with their family (`invoker`, not
//! `invoker3`).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use faas_core::metrics::{Event, MetricSource, MetricsRecorder, SampleKind};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use hashbrown::{Equivalent, HashMap};

/// The value that stands for every label value past the cap.
pub const OTHER: &str = "other";

/// Settings of [`PrometheusMetrics`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Distinct activation label sets (and namespaces of limit metrics) kept before later
    /// ones are counted as `other` (default 500).
    pub max_actions: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { max_actions: 500 }
    }
}

impl MetricsConfig {
    /// With at most `n` activation label sets.
    pub fn with_max_actions(mut self, n: usize) -> Self {
        self.max_actions = n;
        self
    }
}

/// Histogram buckets in seconds, 0.5 ms to 5 min (warm invokes take well under a
/// millisecond here; action time limits reach 5 minutes).
const SECONDS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS)
}

/// Response size buckets in bytes, as OpenWhisk's user-events service has them
/// (`linearBuckets(0, MAX_ACTIVATION_ENTITY_LIMIT, 10)`: 0 to 9 MiB by 1 MiB).
fn size_histogram() -> Histogram {
    Histogram::new((0..10).map(|i| f64::from(i) * 1_048_576.0))
}

/// User-defined status codes outside `100..=599` count under [`OTHER`].
fn status_code_label(code: i64) -> Option<u16> {
    u16::try_from(code).ok().filter(|c| (100..=599).contains(c))
}

type Labels<const N: usize> = [(&'static str, String); N];
type Histograms<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

fn histograms<const N: usize>() -> Histograms<N> {
    Family::new_with_constructor(seconds_histogram as fn() -> Histogram)
}

/// The series of a family resolved once per label set: an event looks its series up by
/// borrowed label values (`Q`, hashed like the owned key `K` with foldhash) under a read
/// lock. `prometheus-client`'s `Family::get_or_create` wants owned label `String`s and hashes
/// them with SipHash on every call, which the `invoke` benchmark measured at several percent
/// of a warm invoke's CPU.
#[derive(Debug)]
struct Resolved<K, M>(RwLock<HashMap<K, M>>);

impl<K, M> Default for Resolved<K, M> {
    fn default() -> Self {
        Self(RwLock::new(HashMap::new()))
    }
}

impl<K: Hash + Eq, M> Resolved<K, M> {
    /// Runs `f` on the series of `q`, resolving it with `make` (owned key and series) the
    /// first time.
    fn with<Q>(&self, q: &Q, make: impl FnOnce() -> (K, M), f: impl FnOnce(&M))
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        if let Some(m) = self.0.read().unwrap_or_else(PoisonError::into_inner).get(q) {
            return f(m);
        }
        let (k, m) = make();
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        f(map.entry(k).or_insert(m));
    }
}

/// The HTTP key: route template, method, status.
type HttpKey = (Box<str>, Box<str>, u16);

/// An [`HttpKey`] borrowed from an event; hashes as the tuple does.
#[derive(Debug)]
struct HttpQuery<'a>(&'a str, &'a str, u16);

impl Hash for HttpQuery<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h);
        self.1.hash(h);
        self.2.hash(h);
    }
}

impl Equivalent<HttpKey> for HttpQuery<'_> {
    fn equivalent(&self, k: &HttpKey) -> bool {
        *k.0 == *self.0 && *k.1 == *self.1 && k.2 == self.2
    }
}

/// The activation key: namespace, initiator, action, kind, memory.
type ActionKey = (Box<str>, Box<str>, Box<str>, Box<str>, u64);

/// An [`ActionKey`] borrowed from an event; hashes as the tuple does.
#[derive(Debug)]
struct ActionQuery<'a>(&'a str, &'a str, &'a str, &'a str, u64);

impl Hash for ActionQuery<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h);
        self.1.hash(h);
        self.2.hash(h);
        self.3.hash(h);
        self.4.hash(h);
    }
}

impl Equivalent<ActionKey> for ActionQuery<'_> {
    fn equivalent(&self, k: &ActionKey) -> bool {
        *k.0 == *self.0 && *k.1 == *self.1 && *k.2 == *self.2 && *k.3 == *self.3 && k.4 == self.4
    }
}

/// The resolved series of the families labelled with one value or a fixed set.
#[derive(Debug, Default)]
struct Hot {
    completed: Resolved<&'static str, Histogram>,
    scheduled: Resolved<&'static str, Counter>,
    http: Resolved<HttpKey, (Counter, Histogram)>,
    store_ops: Resolved<&'static str, Histogram>,
    bus_publish: Resolved<Box<str>, Histogram>,
    bus_received: Resolved<Box<str>, Counter>,
    bus_commit: Resolved<Box<str>, Histogram>,
    bus_delivery: Resolved<Box<str>, Histogram>,
}

/// The series of one activation label set, resolved once.
#[derive(Debug)]
struct ActionSeries {
    activations: Counter,
    cold_starts: Counter,
    /// success, application_error, action_developer_error, whisk_internal_error.
    status: [Counter; 4],
    wait: Histogram,
    init: Histogram,
    duration: Histogram,
    end_to_end: Histogram,
    memory: Gauge,
    response_size: Histogram,
    /// The set's labels, for the status code series made on their first use.
    labels: Labels<3>,
    /// `openwhisk_action_status_code` by code (`None`: [`OTHER`]); a few per action.
    status_codes: Mutex<Vec<(Option<u16>, Counter)>>,
}

impl ActionSeries {
    /// Counts one activation whose result set `code`.
    fn count_status_code(&self, family: &Family<Labels<4>, Counter>, code: i64) {
        let code = status_code_label(code);
        let mut codes = self
            .status_codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, c)) = codes.iter().find(|(k, _)| *k == code) {
            c.inc();
            return;
        }
        let [a, b, c] = self.labels.clone();
        let value = code.map_or_else(|| OTHER.to_string(), |c| c.to_string());
        let counter = family
            .get_or_create(&[a, b, c, ("status_code", value)])
            .clone();
        counter.inc();
        codes.push((code, counter));
    }
}

const STATUSES: [&str; 4] = [
    "success",
    "application_error",
    "action_developer_error",
    "whisk_internal_error",
];

#[derive(Debug)]
struct Families {
    activations: Family<Labels<5>, Counter>,
    cold_starts: Family<Labels<3>, Counter>,
    status: Family<Labels<4>, Counter>,
    wait: Histograms<3>,
    init: Histograms<3>,
    duration: Histograms<3>,
    end_to_end: Histograms<3>,
    memory: Family<Labels<3>, Gauge>,
    response_size: Family<Labels<3>, Histogram, fn() -> Histogram>,
    status_code: Family<Labels<4>, Counter>,
    limit_concurrent: Family<Labels<1>, Counter>,
    limit_timed: Family<Labels<1>, Counter>,
    limit_fires: Family<Labels<1>, Counter>,
    completed: Histograms<1>,
    scheduled: Family<Labels<1>, Counter>,
    http_requests: Family<Labels<3>, Counter>,
    http_duration: Histograms<2>,
    store_ops: Histograms<1>,
    store_errors: Family<Labels<2>, Counter>,
    bus_publish: Histograms<1>,
    bus_publish_errors: Family<Labels<1>, Counter>,
    bus_received: Family<Labels<1>, Counter>,
    bus_commit: Histograms<1>,
    bus_delivery: Histograms<1>,
}

impl Families {
    fn new() -> Self {
        Self {
            activations: Family::default(),
            cold_starts: Family::default(),
            status: Family::default(),
            wait: histograms(),
            init: histograms(),
            duration: histograms(),
            end_to_end: histograms(),
            memory: Family::default(),
            response_size: Family::new_with_constructor(size_histogram as fn() -> Histogram),
            status_code: Family::default(),
            limit_concurrent: Family::default(),
            limit_timed: Family::default(),
            limit_fires: Family::default(),
            completed: histograms(),
            scheduled: Family::default(),
            http_requests: Family::default(),
            http_duration: histograms(),
            store_ops: histograms(),
            store_errors: Family::default(),
            bus_publish: histograms(),
            bus_publish_errors: Family::default(),
            bus_received: Family::default(),
            bus_commit: histograms(),
            bus_delivery: histograms(),
        }
    }
}

/// The platform's Prometheus registry and recorder. Cheap to share (`Arc`); one per
/// process, shared by its controller and invoker.
#[derive(Debug)]
pub struct PrometheusMetrics {
    config: MetricsConfig,
    registry: Registry,
    f: Arc<Families>,
    hot: Hot,
    /// Activation series by label set; past the cap, new sets share the `other` series.
    series: Resolved<ActionKey, Arc<ActionSeries>>,
    /// How many activation label sets have their own series.
    series_count: std::sync::atomic::AtomicUsize,
    /// The `other` series, once the cap is reached.
    other_series: std::sync::OnceLock<Arc<ActionSeries>>,
    namespaces: Mutex<HashSet<String>>,
    sources: Arc<Mutex<Vec<Arc<dyn MetricSource>>>>,
}

impl Default for PrometheusMetrics {
    fn default() -> Self {
        Self::new(MetricsConfig::default())
    }
}

impl PrometheusMetrics {
    /// An empty registry with every family registered.
    pub fn new(config: MetricsConfig) -> Self {
        let f = Families::new();
        let mut r = Registry::default();
        // OpenWhisk user-events names (PrometheusRecorder.scala); counters get `_total`.
        r.register(
            "openwhisk_action_activations",
            "Activation Count",
            f.activations.clone(),
        );
        r.register(
            "openwhisk_action_coldStarts",
            "Cold start counts",
            f.cold_starts.clone(),
        );
        r.register(
            "openwhisk_action_status",
            "Activation failure status type",
            f.status.clone(),
        );
        r.register(
            "openwhisk_action_waitTime_seconds",
            "Internal system hold time",
            f.wait.clone(),
        );
        r.register(
            "openwhisk_action_initTime_seconds",
            "Time it took to initialize an action, e.g. docker init",
            f.init.clone(),
        );
        r.register(
            "openwhisk_action_duration_seconds",
            "Actual time the action code was running",
            f.duration.clone(),
        );
        r.register(
            "openwhisk_action_memory",
            "Memory consumption of the action containers",
            f.memory.clone(),
        );
        r.register(
            "openwhisk_action_response_size_bytes",
            "Activation Response size",
            f.response_size.clone(),
        );
        r.register(
            "openwhisk_action_status_code",
            "status code returned in action result response set by developer",
            f.status_code.clone(),
        );
        r.register(
            "openwhisk_action_limit_concurrent",
            "a user has exceeded its limit for concurrent invocations",
            f.limit_concurrent.clone(),
        );
        r.register(
            "openwhisk_action_limit_timed",
            "the user has reached its per minute limit for the number of invocations",
            f.limit_timed.clone(),
        );
        r.register(
            "faas_trigger_limit_timed",
            "Trigger fires refused by the namespace's per-minute limit",
            f.limit_fires.clone(),
        );
        r.register(
            "faas_activation_end_to_end_seconds",
            "From the controller's acceptance of an activation to the end of its run",
            f.end_to_end.clone(),
        );
        r.register(
            "faas_controller_activation_seconds",
            "From the controller's publish of an activation to its acknowledgement, by outcome",
            f.completed.clone(),
        );
        r.register(
            "faas_scheduler_decisions",
            "Placement decisions of the controller's scheduler, by outcome",
            f.scheduled.clone(),
        );
        r.register(
            "faas_http_requests",
            "HTTP requests answered, by route template, method and status",
            f.http_requests.clone(),
        );
        r.register(
            "faas_http_request_duration_seconds",
            "HTTP request time to the response head, by route template and method",
            f.http_duration.clone(),
        );
        r.register(
            "faas_store_operation_duration_seconds",
            "Store operation latency, by operation",
            f.store_ops.clone(),
        );
        r.register(
            "faas_store_errors",
            "Store operations that failed, by operation and error class",
            f.store_errors.clone(),
        );
        r.register(
            "faas_bus_publish_duration_seconds",
            "Bus publish latency, by topic family",
            f.bus_publish.clone(),
        );
        r.register(
            "faas_bus_publish_errors",
            "Bus publishes that failed, by topic family",
            f.bus_publish_errors.clone(),
        );
        r.register(
            "faas_bus_messages_received",
            "Bus messages received, by topic family",
            f.bus_received.clone(),
        );
        r.register(
            "faas_bus_commit_delay_seconds",
            "Time from receiving a bus message to committing it, by topic family",
            f.bus_commit.clone(),
        );
        r.register(
            "faas_bus_delivery_seconds",
            "Time from publishing a bus message to receiving it, by topic family (the publisher's clock; Kafka's timestamps have millisecond precision)",
            f.bus_delivery.clone(),
        );
        let sources: Arc<Mutex<Vec<Arc<dyn MetricSource>>>> = Arc::default();
        r.register_collector(Box::new(Sources(Arc::clone(&sources))));
        Self {
            config,
            registry: r,
            f: Arc::new(f),
            hot: Hot::default(),
            series: Resolved::default(),
            series_count: std::sync::atomic::AtomicUsize::new(0),
            other_series: std::sync::OnceLock::new(),
            namespaces: Mutex::new(HashSet::new()),
            sources,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MetricsConfig {
        &self.config
    }

    /// A [`Metrics`](faas_core::metrics::Metrics) handle recording here.
    pub fn handle(self: &Arc<Self>) -> faas_core::metrics::Metrics {
        faas_core::metrics::Metrics::new(Arc::clone(self) as Arc<dyn MetricsRecorder>)
    }

    /// Every metric in Prometheus' text exposition format (OpenMetrics text, `# EOF` last).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        out
    }

    /// The namespace label for `ns`: itself while fewer than the cap were seen, else `other`.
    fn namespace_label(&self, ns: &str) -> String {
        let mut seen = self
            .namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.contains(ns) {
            return ns.to_string();
        }
        if seen.len() < self.config.max_actions {
            seen.insert(ns.to_string());
            return ns.to_string();
        }
        OTHER.to_string()
    }

    /// Runs `f` on the series of `a`'s label set (the `other` series past the cap).
    fn with_action_series(
        &self,
        a: &faas_core::metrics::ActivationSample<'_>,
        f: impl FnOnce(&ActionSeries),
    ) {
        let q = ActionQuery(a.namespace, a.initiator, a.action, a.kind, a.memory_mb);
        let mut capped = false;
        self.series.with(
            &q,
            || {
                use std::sync::atomic::Ordering::Relaxed;
                // A racing thread may resolve the same set; it counts twice, which only
                // makes the cap a little tighter.
                let series = if self.series_count.fetch_add(1, Relaxed) < self.config.max_actions {
                    self.new_series(
                        a.namespace,
                        a.initiator,
                        a.action,
                        a.kind,
                        &a.memory_mb.to_string(),
                    )
                } else {
                    let other = self
                        .other_series
                        .get_or_init(|| self.new_series(OTHER, OTHER, OTHER, OTHER, OTHER));
                    capped = true;
                    Arc::clone(other)
                };
                let key = (
                    a.namespace.into(),
                    a.initiator.into(),
                    a.action.into(),
                    a.kind.into(),
                    a.memory_mb,
                );
                (key, series)
            },
            |s| f(s),
        );
        // Past the cap the label set is not remembered: it counted under `other` above.
        if capped {
            let mut map = self
                .series
                .0
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            map.remove(&q);
        }
    }

    /// Creates (or finds) the series of one activation label set.
    fn new_series(
        &self,
        ns: &str,
        init: &str,
        action: &str,
        kind: &str,
        mem: &str,
    ) -> Arc<ActionSeries> {
        let f = &self.f;
        let three: Labels<3> = [
            ("namespace", ns.to_string()),
            ("initiator", init.to_string()),
            ("action", action.to_string()),
        ];
        let status = STATUSES.map(|s| {
            let [a, b, c] = three.clone();
            f.status
                .get_or_create(&[a, b, c, ("status", s.to_string())])
                .clone()
        });
        let [a, b, c] = three.clone();
        Arc::new(ActionSeries {
            activations: f
                .activations
                .get_or_create(&[
                    a,
                    b,
                    c,
                    ("kind", kind.to_string()),
                    ("memory", mem.to_string()),
                ])
                .clone(),
            cold_starts: f.cold_starts.get_or_create(&three).clone(),
            status,
            wait: f.wait.get_or_create(&three).clone(),
            init: f.init.get_or_create(&three).clone(),
            duration: f.duration.get_or_create(&three).clone(),
            end_to_end: f.end_to_end.get_or_create(&three).clone(),
            memory: f.memory.get_or_create(&three).clone(),
            response_size: f.response_size.get_or_create(&three).clone(),
            labels: three,
            status_codes: Mutex::new(Vec::new()),
        })
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn one(key: &'static str, v: &str) -> Labels<1> {
    [(key, v.to_string())]
}

impl MetricsRecorder for PrometheusMetrics {
    fn record(&self, event: &Event<'_>) {
        let (f, hot) = (&self.f, &self.hot);
        match *event {
            Event::Activation(a) => self.with_action_series(a, |s| {
                s.activations.inc();
                if a.cold {
                    s.cold_starts.inc();
                }
                if let Some(i) = STATUSES.iter().position(|x| *x == a.status) {
                    s.status[i].inc();
                }
                s.wait.observe(secs(a.wait));
                if let Some(init) = a.init {
                    s.init.observe(secs(init));
                }
                s.duration.observe(secs(a.duration));
                s.end_to_end.observe(secs(a.end_to_end));
                // MB, as OpenWhisk's gauge (`gauge.set(a.memory)`).
                s.memory.set(i64::try_from(a.memory_mb).unwrap_or(i64::MAX));
                if let Some(size) = a.response_size {
                    s.response_size.observe(size as f64);
                }
                if let Some(code) = a.status_code {
                    s.count_status_code(&f.status_code, code);
                }
            }),
            Event::Completed { outcome, elapsed } => hot.completed.with(
                outcome,
                || {
                    (
                        outcome,
                        f.completed.get_or_create(&one("outcome", outcome)).clone(),
                    )
                },
                |h| h.observe(secs(elapsed)),
            ),
            Event::Http {
                route,
                method,
                status,
                elapsed,
            } => hot.http.with(
                &HttpQuery(route, method, status),
                || {
                    let counter = f
                        .http_requests
                        .get_or_create(&[
                            ("route", route.to_string()),
                            ("method", method.to_string()),
                            ("status", status.to_string()),
                        ])
                        .clone();
                    let histogram = f
                        .http_duration
                        .get_or_create(&[
                            ("route", route.to_string()),
                            ("method", method.to_string()),
                        ])
                        .clone();
                    ((route.into(), method.into(), status), (counter, histogram))
                },
                |(c, h)| {
                    c.inc();
                    h.observe(secs(elapsed));
                },
            ),
            Event::Throttled { namespace, limit } => {
                let family = match limit {
                    "ConcurrentRateLimit" => &f.limit_concurrent,
                    "TimedRateLimit" => &f.limit_timed,
                    _ => &f.limit_fires,
                };
                family
                    .get_or_create(&[("namespace", self.namespace_label(namespace))])
                    .inc();
            }
            Event::Scheduled { outcome } => hot.scheduled.with(
                outcome,
                || {
                    (
                        outcome,
                        f.scheduled.get_or_create(&one("outcome", outcome)).clone(),
                    )
                },
                |c| {
                    c.inc();
                },
            ),
            Event::StoreOp { op, elapsed, error } => {
                hot.store_ops.with(
                    op,
                    || (op, f.store_ops.get_or_create(&one("op", op)).clone()),
                    |h| h.observe(secs(elapsed)),
                );
                if let Some(e) = error {
                    f.store_errors
                        .get_or_create(&[("op", op.to_string()), ("error", e.to_string())])
                        .inc();
                }
            }
            Event::BusPublish {
                topic,
                elapsed,
                failed,
            } => {
                hot.bus_publish.with(
                    topic,
                    || {
                        (
                            topic.into(),
                            f.bus_publish.get_or_create(&one("topic", topic)).clone(),
                        )
                    },
                    |h| h.observe(secs(elapsed)),
                );
                if failed {
                    f.bus_publish_errors
                        .get_or_create(&one("topic", topic))
                        .inc();
                }
            }
            Event::BusDelivered {
                topic,
                after_publish,
            } => hot.bus_delivery.with(
                topic,
                || {
                    (
                        topic.into(),
                        f.bus_delivery.get_or_create(&one("topic", topic)).clone(),
                    )
                },
                |h| h.observe(secs(after_publish)),
            ),
            Event::BusConsume {
                topic,
                committed_after,
            } => match committed_after {
                None => hot.bus_received.with(
                    topic,
                    || {
                        (
                            topic.into(),
                            f.bus_received.get_or_create(&one("topic", topic)).clone(),
                        )
                    },
                    |c| {
                        c.inc();
                    },
                ),
                Some(d) => hot.bus_commit.with(
                    topic,
                    || {
                        (
                            topic.into(),
                            f.bus_commit.get_or_create(&one("topic", topic)).clone(),
                        )
                    },
                    |h| h.observe(secs(d)),
                ),
            },
            _ => {}
        }
    }

    fn add_source(&self, source: Arc<dyn MetricSource>) {
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(source);
    }
}

/// The scrape-time sources, encoded as one family per metric name.
#[derive(Debug)]
struct Sources(Arc<Mutex<Vec<Arc<dyn MetricSource>>>>);

impl Collector for Sources {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let sources: Vec<Arc<dyn MetricSource>> = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut collected = Vec::new();
        for s in &sources {
            s.collect(&mut collected);
        }
        // Series reported by several sources (two pools in one process) are summed: the
        // text format allows each name and label set once.
        let mut samples: Vec<faas_core::metrics::Sample> = Vec::with_capacity(collected.len());
        for c in collected {
            match samples
                .iter_mut()
                .find(|s| s.name == c.name && s.labels == c.labels)
            {
                Some(s) => s.value += c.value,
                None => samples.push(c),
            }
        }
        // One descriptor per name, its samples together (the text format requires it).
        let mut names: Vec<&'static str> = Vec::new();
        for s in &samples {
            if !names.contains(&s.name) {
                names.push(s.name);
            }
        }
        for name in names {
            let mut group = samples.iter().filter(|s| s.name == name).peekable();
            let Some(first) = group.peek() else { continue };
            let (help, kind) = (first.help, first.kind);
            let ty = match kind {
                SampleKind::Counter => ConstCounter::new(0u64).metric_type(),
                SampleKind::Gauge => ConstGauge::new(0i64).metric_type(),
            };
            // Counter names are registered without `_total`; the encoder adds it.
            let base = match kind {
                SampleKind::Counter => name.strip_suffix("_total").unwrap_or(name),
                SampleKind::Gauge => name,
            };
            let mut family = encoder.encode_descriptor(base, help, None, ty)?;
            for s in group {
                let labels: Vec<(&'static str, String)> = s.labels.clone();
                let m = family.encode_family(&labels)?;
                match kind {
                    SampleKind::Counter => ConstCounter::new(s.value).encode(m)?,
                    SampleKind::Gauge => ConstGauge::new(s.value).encode(m)?,
                }
            }
        }
        Ok(())
    }
}

/// Serves `/metrics` (and `/health`) of `metrics` alone on `listener` until `shutdown`
/// resolves: the metrics listener of a process without a controller (an invoker).
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<PrometheusMetrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let health = axum::routing::get(|| async {
        (
            [(http::header::CONTENT_TYPE, "application/json")],
            "{\"status\":\"ok\"}",
        )
    });
    crate::server::serve(
        listener,
        metrics_router(metrics, None).route("/health", health),
        crate::server::ServerConfig::default(),
        shutdown,
    )
    .await
}

/// The content type of the exposition (`prometheus-client` writes OpenMetrics text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A router with `GET /metrics` answering `metrics`' exposition; with `token`, only to
/// `Authorization: Bearer <token>` (else `401`).
pub fn metrics_router(metrics: Arc<PrometheusMetrics>, token: Option<String>) -> axum::Router {
    use axum::response::IntoResponse;
    let token: Option<Arc<str>> = token.map(Arc::from);
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: http::HeaderMap| {
            let metrics = Arc::clone(&metrics);
            let token = token.clone();
            async move {
                if let Some(t) = token {
                    let given = headers
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "));
                    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), t.as_bytes())) {
                        return crate::error::ApiError::new(
                            http::StatusCode::UNAUTHORIZED,
                            "The supplied authentication is invalid",
                        )
                        .into_response();
                    }
                }
                (
                    [(http::header::CONTENT_TYPE, CONTENT_TYPE)],
                    metrics.render(),
                )
                    .into_response()
            }
        }),
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::metrics::{ActivationSample, Metrics, Sample};

    fn sample<'a>(ns: &'a str, action: &'a str) -> ActivationSample<'a> {
        let mut s = ActivationSample::new(ns, ns, action, "nodejs:20");
        s.wait = Duration::from_millis(3);
        s
    }

    #[test]
    fn activations_are_counted_under_openwhisk_names() {
        let p = Arc::new(PrometheusMetrics::default());
        let m: Metrics = p.handle();
        let s = sample("guest", "hello");
        m.record(Event::Activation(&s));
        m.record(Event::Activation(&s));
        let text = p.render();
        assert!(
            text.contains("openwhisk_action_activations_total{namespace=\"guest\",initiator=\"guest\",action=\"hello\""),
            "{text}"
        );
        assert!(
            text.contains("openwhisk_action_waitTime_seconds_count{namespace=\"guest\",initiator=\"guest\",action=\"hello\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn response_sizes_and_user_status_codes_are_recorded() {
        let p = Arc::new(PrometheusMetrics::default());
        let m = p.handle();
        for code in [Some(404), Some(404), Some(200), Some(7), None] {
            let mut s = sample("guest", "web");
            s.response_size = Some(2_000_000);
            s.status_code = code;
            m.record(Event::Activation(&s));
        }
        let text = p.render();
        let labels = "namespace=\"guest\",initiator=\"guest\",action=\"web\"";
        for line in [
            format!("openwhisk_action_status_code_total{{{labels},status_code=\"404\"}} 2"),
            format!("openwhisk_action_status_code_total{{{labels},status_code=\"200\"}} 1"),
            format!("openwhisk_action_status_code_total{{{labels},status_code=\"other\"}} 1"),
            format!("openwhisk_action_response_size_bytes_count{{{labels}}} 5"),
            // 2 MB: above the 1 MiB bucket, within the 2 MiB one.
            format!("openwhisk_action_response_size_bytes_bucket{{le=\"1048576.0\",{labels}}} 0"),
            format!("openwhisk_action_response_size_bytes_bucket{{le=\"2097152.0\",{labels}}} 5"),
        ] {
            assert!(text.contains(&line), "{line} in {text}");
        }
    }

    #[test]
    fn label_sets_past_the_cap_are_other() {
        let p = Arc::new(PrometheusMetrics::new(
            MetricsConfig::default().with_max_actions(2),
        ));
        let m = p.handle();
        for name in ["a1", "a2", "a3", "a4"] {
            let s = sample("ns", name);
            m.record(Event::Activation(&s));
        }
        let text = p.render();
        assert!(text.contains("action=\"a2\""), "{text}");
        assert!(!text.contains("action=\"a3\""), "{text}");
        let other = text
            .lines()
            .find(|l| l.starts_with("openwhisk_action_activations_total{namespace=\"other\""))
            .unwrap_or_default();
        assert!(other.ends_with(" 2"), "{text}");
    }

    #[derive(Debug)]
    struct Fixed;
    impl MetricSource for Fixed {
        fn collect(&self, out: &mut Vec<Sample>) {
            out.push(
                Sample::gauge("faas_pool_containers", "Containers", 3.0)
                    .with_label("state", "warm"),
            );
            out.push(Sample::counter(
                "faas_pool_evictions_total",
                "Evictions",
                7.0,
            ));
            out.push(
                Sample::gauge("faas_pool_containers", "Containers", 1.0)
                    .with_label("state", "busy"),
            );
        }
    }

    #[test]
    fn sources_are_read_at_scrape_time() {
        let p = Arc::new(PrometheusMetrics::default());
        p.handle().add_source(Arc::new(Fixed));
        let text = p.render();
        assert!(
            text.contains("faas_pool_containers{state=\"warm\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("faas_pool_containers{state=\"busy\"} 1"),
            "{text}"
        );
        assert!(text.contains("faas_pool_evictions_total 7"), "{text}");
        assert_eq!(
            text.matches("# TYPE faas_pool_containers gauge").count(),
            1,
            "{text}"
        );
    }
}
