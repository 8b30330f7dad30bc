//! The metrics facade: what the building blocks measure, independent of any exporter.
//!
//! Components record [`Event`]s through a [`Metrics`] handle and expose their own state
//! (pool sizes, cache counters, invoker health) as [`MetricSource`]s read at scrape time.
//! An exporter implements [`MetricsRecorder`] (the platform's is Prometheus, in
//! `faas_http::metrics`); adapters never link it.
//!
//! A disabled handle ([`Metrics::disabled`], the default) costs one branch per event and
//! never reads the clock: callers time work only when [`Metrics::is_enabled`].
//!
//! Wrappers measure the seams without touching the adapters: [`InstrumentedStore`] (latency
//! and errors of every store operation) and [`InstrumentedBus`] (publish latency, messages
//! received and the time between receiving and committing them, per topic family).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;

use crate::activation::StatusCode;
use crate::activation::{Activation, ActivationId};
use crate::bus::{BusCapabilities, Consumer, Delivery, MessageBus, TopicConfig};
use crate::entity::{Entity, EntityKind};
use crate::identity::{AuthKey, Identity, Subject};
use crate::limits::UserLimits;
use crate::names::{EntityName, EntityPath, FullyQualifiedName};
use crate::store::{ActivationQuery, Document, ListQuery, Revision, Store, Versioned};
use crate::{Error, Result};

/// One thing that happened, as a recorder sees it. Label values are borrowed; a recorder
/// bounds their number (see `faas_http::metrics`).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An activation ran (or failed before running) on an invoker.
    Activation(&'a ActivationSample<'a>),
    /// A controller saw the acknowledgement of an activation it dispatched: `elapsed` from
    /// dispatch to the result, `outcome` one of `success`, `system_error`, `timeout`
    /// (forced).
    Completed {
        /// How it ended.
        outcome: &'static str,
        /// From the controller's publish to the acknowledgement.
        elapsed: Duration,
    },
    /// An HTTP request was answered.
    Http {
        /// The route template (`/api/v1/namespaces/{namespace}/actions/{*action}`), or
        /// `unmatched`.
        route: &'a str,
        /// The method.
        method: &'a str,
        /// The status code.
        status: u16,
        /// From the request's arrival to the response head.
        elapsed: Duration,
    },
    /// A namespace hit a limit (OpenWhisk's user-events `Metric` names:
    /// `ConcurrentRateLimit`, `TimedRateLimit`; and `TimedFireLimit` for trigger fires).
    Throttled {
        /// The namespace (the initiator).
        namespace: &'a str,
        /// Which limit.
        limit: &'static str,
    },
    /// A placement decision: `scheduled`, or the reason none was made (`no_invoker`,
    /// `error`).
    Scheduled {
        /// The decision.
        outcome: &'static str,
    },
    /// A store operation ended.
    StoreOp {
        /// The operation (`get_entity`, `put_activation`, …).
        op: &'static str,
        /// How long it took.
        elapsed: Duration,
        /// The error class when it failed (`not_found`, `conflict`, …), `None` on success.
        error: Option<&'static str>,
    },
    /// A message was published.
    BusPublish {
        /// The topic family ([`topic_family`]).
        topic: &'a str,
        /// How long the publish took.
        elapsed: Duration,
        /// Whether it failed.
        failed: bool,
    },
    /// A message was received `after_publish` its publication (by the publisher's clock,
    /// when the bus says when it was published).
    BusDelivered {
        /// The topic family ([`topic_family`]).
        topic: &'a str,
        /// From its publication to its receipt.
        after_publish: Duration,
    },
    /// A message was received, or committed `elapsed` after it was received.
    BusConsume {
        /// The topic family ([`topic_family`]).
        topic: &'a str,
        /// `None` when received; the time from receipt to commit when committed.
        committed_after: Option<Duration>,
    },
}

/// What [`Event::Activation`] carries (the labels of OpenWhisk's user-events metrics, and
/// the activation's phases).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ActivationSample<'a> {
    /// The namespace the action lives in (its path's root).
    pub namespace: &'a str,
    /// The namespace of the caller (OpenWhisk's `initiator`).
    pub initiator: &'a str,
    /// The action, `[package/]name`.
    pub action: &'a str,
    /// The runtime kind (`nodejs:20`, `blackbox`, …).
    pub kind: &'a str,
    /// Its memory limit, MB.
    pub memory_mb: u64,
    /// `success`, `application_error`, `action_developer_error` or `whisk_internal_error`.
    pub status: &'a str,
    /// Whether a container was started for it (`/init` ran).
    pub cold: bool,
    /// From the controller's acceptance to the start of the run.
    pub wait: Duration,
    /// The time `/init` took, when it ran.
    pub init: Option<Duration>,
    /// The time the action ran.
    pub duration: Duration,
    /// From the controller's acceptance to the end of the run.
    pub end_to_end: Duration,
    /// The size of the result in bytes (OpenWhisk's user-events `size`), when there is one.
    pub response_size: Option<u64>,
    /// The status code the action's result sets (OpenWhisk's `userDefinedStatusCode`:
    /// `error.statusCode`, else `statusCode`), when it sets one.
    pub status_code: Option<i64>,
}

impl<'a> ActivationSample<'a> {
    /// A successful warm activation of `action` with no time spent (set the fields).
    pub fn new(namespace: &'a str, initiator: &'a str, action: &'a str, kind: &'a str) -> Self {
        Self {
            namespace,
            initiator,
            action,
            kind,
            memory_mb: 256,
            status: "success",
            cold: false,
            wait: Duration::ZERO,
            init: None,
            duration: Duration::ZERO,
            end_to_end: Duration::ZERO,
            response_size: None,
            status_code: None,
        }
    }

    /// The sample of a finished activation record invoked by `initiator`. The `kind`,
    /// `initTime` and `waitTime` annotations, the limits' memory, the result's size and its
    /// user-defined status code are read from it.
    pub fn of(activation: &'a Activation, initiator: &'a str, accepted_ms: u64) -> Self {
        let ann = |k: &str| activation.annotations.get(k);
        let ms = |v: Option<&Value>| v.and_then(Value::as_u64).map(Duration::from_millis);
        let init = ms(ann("initTime"));
        let path = ann("path").and_then(Value::as_str);
        // `path` is `ns/[pkg/]name`: the namespace is its root, the action the rest.
        let (namespace, action) = path
            .and_then(|p| p.split_once('/'))
            .unwrap_or((activation.namespace.root(), activation.name.as_str()));
        Self {
            namespace,
            initiator,
            action,
            kind: ann("kind").and_then(Value::as_str).unwrap_or("unknown"),
            memory_mb: ann("limits")
                .and_then(|l| l.get("memory"))
                .and_then(Value::as_u64)
                .unwrap_or(0),
            status: status_label(activation.response.status_code),
            cold: init.is_some(),
            wait: ms(ann("waitTime")).unwrap_or_default(),
            init,
            duration: Duration::from_millis(activation.duration.unwrap_or(0)),
            end_to_end: Duration::from_millis(activation.end.saturating_sub(accepted_ms)),
            response_size: activation.response.result_size(),
            status_code: crate::events::user_defined_status_code(
                activation.response.result.as_ref(),
            ),
        }
    }
}

/// OpenWhisk's user-events status label of `code` (`ActivationResponse.statusSuccess`, …).
pub fn status_label(code: StatusCode) -> &'static str {
    match code {
        StatusCode::Success => "success",
        StatusCode::ApplicationError => "application_error",
        StatusCode::DeveloperError => "action_developer_error",
        StatusCode::WhiskError => "whisk_internal_error",
    }
}

/// A value read at scrape time from a [`MetricSource`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name (Prometheus conventions; counters end in `_total`).
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
    /// Counter (monotonic) or gauge.
    pub kind: SampleKind,
    /// Its labels (a bounded set: no ids).
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

/// Whether a [`Sample`] is a counter or a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// Only goes up (until a restart).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Sample {
    /// A gauge without labels.
    pub fn gauge(name: &'static str, help: &'static str, value: f64) -> Self {
        Self {
            name,
            help,
            kind: SampleKind::Gauge,
            labels: Vec::new(),
            value,
        }
    }
    /// A counter without labels.
    pub fn counter(name: &'static str, help: &'static str, value: f64) -> Self {
        Self {
            kind: SampleKind::Counter,
            ..Self::gauge(name, help, value)
        }
    }
    /// With one more label.
    pub fn with_label(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.labels.push((key, value.into()));
        self
    }
}

/// State read when metrics are scraped (a pool's sizes, a cache's counters).
pub trait MetricSource: fmt::Debug + Send + Sync + 'static {
    /// Appends the current values to `out`.
    fn collect(&self, out: &mut Vec<Sample>);
}

/// An exporter of [`Event`]s and [`MetricSource`]s.
pub trait MetricsRecorder: fmt::Debug + Send + Sync + 'static {
    /// Records one event. Called on hot paths: no I/O, no awaiting.
    fn record(&self, event: &Event<'_>);
    /// Reads `source` at every scrape from now on.
    fn add_source(&self, source: Arc<dyn MetricSource>);
}

/// A cheap, cloneable handle to a [`MetricsRecorder`], or nothing (disabled, the default).
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<dyn MetricsRecorder>>);

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Metrics").field(&self.0.is_some()).finish()
    }
}

/// Two handles are equal when they record to the same recorder (or are both disabled).
impl PartialEq for Metrics {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Metrics {
    /// Records through `recorder`.
    pub fn new(recorder: Arc<dyn MetricsRecorder>) -> Self {
        Self(Some(recorder))
    }
    /// Records nothing.
    pub const fn disabled() -> Self {
        Self(None)
    }
    /// Whether events are recorded (callers skip timing work when not).
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }
    /// Records `event` (nothing when disabled).
    #[inline]
    pub fn record(&self, event: Event<'_>) {
        if let Some(r) = &self.0 {
            r.record(&event);
        }
    }
    /// Registers a scrape-time source (nothing when disabled).
    pub fn add_source(&self, source: Arc<dyn MetricSource>) {
        if let Some(r) = &self.0 {
            r.add_source(source);
        }
    }
    /// `Instant::now()` when enabled: the start of a timed section.
    #[inline]
    pub fn start(&self) -> Option<Instant> {
        self.0.as_ref().map(|_| Instant::now())
    }
}

/// The family of a topic, a bounded label: the topic name without its prefix up to the last
/// `.`/`_`-free word and without a trailing instance number (`invoker0` → `invoker`,
/// `test_x_completed12` → `completed`).
pub fn topic_family(topic: &str) -> &str {
    // Bytes, not chars: it runs for every bus message, and every byte looked at is ASCII
    // (a cut after an ASCII byte is a char boundary).
    let bytes = topic.as_bytes();
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let start = bytes[..end]
        .iter()
        .rposition(|b| matches!(b, b'_' | b'.' | b'-'))
        .map_or(0, |i| i + 1);
    &topic[start..end]
}

/// The error class of `e`, a bounded label.
pub fn error_class(e: &Error) -> &'static str {
    match e {
        Error::NotFound { .. } => "not_found",
        Error::Conflict { .. } | Error::AlreadyExists { .. } => "conflict",
        Error::Unavailable { .. } => "unavailable",
        Error::Timeout { .. } => "timeout",
        Error::BadRequest { .. } | Error::TooLarge { .. } => "bad_request",
        _ => "other",
    }
}

/// A [`Store`] that records the latency and errors of every operation of `S`
/// ([`Event::StoreOp`]).
#[derive(Debug)]
pub struct InstrumentedStore<S: ?Sized> {
    metrics: Metrics,
    inner: Arc<S>,
}

impl<S: Store + ?Sized> InstrumentedStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<S>, metrics: Metrics) -> Self {
        Self { metrics, inner }
    }
    /// The wrapped store.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }
    async fn timed<T>(
        &self,
        op: &'static str,
        f: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(t0) = self.metrics.start() else {
            return f.await;
        };
        let r = f.await;
        self.metrics.record(Event::StoreOp {
            op,
            elapsed: t0.elapsed(),
            error: r.as_ref().err().map(error_class),
        });
        r
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: Store + ?Sized> Store for InstrumentedStore<S> {
    async fn get_entity(&self, id: &FullyQualifiedName) -> Result<Versioned<Entity>> {
        self.timed("get_entity", self.inner.get_entity(id)).await
    }
    async fn put_entity(&self, entity: &Entity, rev: Option<&Revision>) -> Result<Revision> {
        self.timed("put_entity", self.inner.put_entity(entity, rev))
            .await
    }
    async fn delete_entity(&self, id: &FullyQualifiedName, rev: &Revision) -> Result<()> {
        self.timed("delete_entity", self.inner.delete_entity(id, rev))
            .await
    }
    async fn list_entities(
        &self,
        path: &EntityPath,
        kind: EntityKind,
        query: ListQuery,
    ) -> Result<Vec<Entity>> {
        self.timed("list_entities", self.inner.list_entities(path, kind, query))
            .await
    }
    async fn count_entities(&self, path: &EntityPath, kind: EntityKind) -> Result<u64> {
        self.timed("count_entities", self.inner.count_entities(path, kind))
            .await
    }
    async fn put_activation(&self, activation: &Activation) -> Result<bool> {
        self.timed("put_activation", self.inner.put_activation(activation))
            .await
    }
    async fn get_activation(
        &self,
        namespace: &EntityName,
        id: &ActivationId,
    ) -> Result<Activation> {
        self.timed("get_activation", self.inner.get_activation(namespace, id))
            .await
    }
    async fn list_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>> {
        self.timed(
            "list_activations",
            self.inner.list_activations(namespace, query),
        )
        .await
    }
    async fn count_activations(
        &self,
        namespace: &EntityName,
        query: &ActivationQuery,
    ) -> Result<u64> {
        self.timed(
            "count_activations",
            self.inner.count_activations(namespace, query),
        )
        .await
    }
    async fn get_subject(&self, subject: &str) -> Result<Versioned<Subject>> {
        self.timed("get_subject", self.inner.get_subject(subject))
            .await
    }
    async fn put_subject(&self, subject: &Subject, rev: Option<&Revision>) -> Result<Revision> {
        self.timed("put_subject", self.inner.put_subject(subject, rev))
            .await
    }
    async fn delete_subject(&self, subject: &str, rev: &Revision) -> Result<()> {
        self.timed("delete_subject", self.inner.delete_subject(subject, rev))
            .await
    }
    async fn list_subjects(&self, namespace: &EntityName) -> Result<Vec<Subject>> {
        self.timed("list_subjects", self.inner.list_subjects(namespace))
            .await
    }
    async fn list_namespaces(&self) -> Result<Vec<EntityName>> {
        self.timed("list_namespaces", self.inner.list_namespaces())
            .await
    }
    async fn find_identity(&self, key: &AuthKey) -> Result<Identity> {
        self.timed("find_identity", self.inner.find_identity(key))
            .await
    }
    async fn identity_for_namespace(&self, namespace: &EntityName) -> Result<Identity> {
        self.timed(
            "identity_for_namespace",
            self.inner.identity_for_namespace(namespace),
        )
        .await
    }
    async fn get_limits(&self, namespace: &EntityName) -> Result<UserLimits> {
        self.timed("get_limits", self.inner.get_limits(namespace))
            .await
    }
    async fn put_limits(&self, namespace: &EntityName, limits: &UserLimits) -> Result<()> {
        self.timed("put_limits", self.inner.put_limits(namespace, limits))
            .await
    }
    async fn delete_limits(&self, namespace: &EntityName) -> Result<()> {
        self.timed("delete_limits", self.inner.delete_limits(namespace))
            .await
    }
    async fn get_document(&self, collection: &str, id: &str) -> Result<Versioned<Value>> {
        self.timed("get_document", self.inner.get_document(collection, id))
            .await
    }
    async fn put_document(
        &self,
        collection: &str,
        id: &str,
        doc: &Value,
        rev: Option<&Revision>,
    ) -> Result<Revision> {
        self.timed(
            "put_document",
            self.inner.put_document(collection, id, doc, rev),
        )
        .await
    }
    async fn delete_document(&self, collection: &str, id: &str, rev: &Revision) -> Result<()> {
        self.timed(
            "delete_document",
            self.inner.delete_document(collection, id, rev),
        )
        .await
    }
    async fn list_documents(&self, collection: &str) -> Result<Vec<Document>> {
        self.timed("list_documents", self.inner.list_documents(collection))
            .await
    }
}

/// A [`MessageBus`] that records publish latency and, through the consumers it hands out,
/// receipts and receipt-to-commit times ([`Event::BusPublish`], [`Event::BusConsume`]).
#[derive(Debug)]
pub struct InstrumentedBus<B: ?Sized> {
    metrics: Metrics,
    inner: Arc<B>,
    /// The consumers handed out, read for their lag at scrape time.
    lag: Arc<ConsumerLag>,
}

impl<B: MessageBus + ?Sized> InstrumentedBus<B> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<B>, metrics: Metrics) -> Self {
        let lag = Arc::new(ConsumerLag::default());
        metrics.add_source(Arc::clone(&lag) as Arc<dyn MetricSource>);
        Self {
            metrics,
            inner,
            lag,
        }
    }

    /// Wraps `consumer` (of `group`) when metrics are on.
    fn instrument(&self, consumer: Arc<dyn Consumer>, group: &str) -> Arc<dyn Consumer> {
        if !self.metrics.is_enabled() {
            return consumer;
        }
        self.lag.add(group, &consumer);
        Arc::new(InstrumentedConsumer::new(consumer, self.metrics.clone()))
    }
}

/// `faas_bus_consumer_lag{group,topic}`: what each live consumer's group has not committed
/// ([`Consumer::lag`]), by group and topic family. Two members of one group in one process
/// report the largest figure (the in-process bus reports the whole group's lag to each).
#[derive(Debug, Default)]
struct ConsumerLag(std::sync::Mutex<Vec<(String, std::sync::Weak<dyn Consumer>)>>);

impl ConsumerLag {
    fn add(&self, group: &str, consumer: &Arc<dyn Consumer>) {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget the dropped ones, so the list stays as long as the live consumers.
        all.retain(|(_, c)| c.strong_count() > 0);
        all.push((group.to_string(), Arc::downgrade(consumer)));
    }
}

impl MetricSource for ConsumerLag {
    fn collect(&self, out: &mut Vec<Sample>) {
        let consumers: Vec<(String, Arc<dyn Consumer>)> = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|(g, c)| Some((g.clone(), c.upgrade()?)))
            .collect();
        let mut lag: std::collections::BTreeMap<(String, String), u64> = Default::default();
        for (group, consumer) in consumers {
            for (topic, n) in consumer.lag().unwrap_or_default() {
                let key = (
                    topic_family(&group).to_string(),
                    topic_family(&topic).to_string(),
                );
                let v = lag.entry(key).or_default();
                *v = (*v).max(n);
            }
        }
        for ((group, topic), n) in lag {
            out.push(
                Sample::gauge(
                    "faas_bus_consumer_lag",
                    "Messages the consumer group has not committed yet (waiting or in flight), by group and topic family",
                    n as f64,
                )
                .with_label("group", group)
                .with_label("topic", topic),
            );
        }
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<B: MessageBus + ?Sized> MessageBus for InstrumentedBus<B> {
    async fn create_topic(&self, topic: &str, config: &TopicConfig) -> Result<()> {
        self.inner.create_topic(topic, config).await
    }
    async fn publish(&self, topic: &str, key: Option<&[u8]>, payload: Bytes) -> Result<()> {
        let Some(t0) = self.metrics.start() else {
            return self.inner.publish(topic, key, payload).await;
        };
        let r = self.inner.publish(topic, key, payload).await;
        self.metrics.record(Event::BusPublish {
            topic: topic_family(topic),
            elapsed: t0.elapsed(),
            failed: r.is_err(),
        });
        r
    }
    async fn publish_deferred(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Bytes,
    ) -> Result<crate::bus::Published> {
        let Some(t0) = self.metrics.start() else {
            return self.inner.publish_deferred(topic, key, payload).await;
        };
        let r = self.inner.publish_deferred(topic, key, payload).await;
        self.metrics.record(Event::BusPublish {
            topic: topic_family(topic),
            elapsed: t0.elapsed(),
            failed: r.is_err(),
        });
        r
    }
    async fn persist(&self, published: &crate::bus::Published) -> Result<()> {
        self.inner.persist(published).await
    }
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Arc<dyn Consumer>> {
        let inner = self.inner.subscribe(topic, group).await?;
        Ok(self.instrument(inner, group))
    }
    async fn subscribe_topics(&self, topics: &[&str], group: &str) -> Result<Arc<dyn Consumer>> {
        let inner = self.inner.subscribe_topics(topics, group).await?;
        Ok(self.instrument(inner, group))
    }
    async fn subscribe_background(
        &self,
        topics: &[&str],
        group: &str,
    ) -> Result<Arc<dyn Consumer>> {
        let inner = self.inner.subscribe_background(topics, group).await?;
        Ok(self.instrument(inner, group))
    }
    fn capabilities(&self) -> BusCapabilities {
        self.inner.capabilities()
    }
}

/// A consumer (of one topic or several) that records receipts and receipt-to-commit times,
/// labelled with each delivery's topic family.
#[derive(Debug)]
struct InstrumentedConsumer {
    metrics: Metrics,
    inner: Arc<dyn Consumer>,
    /// When each uncommitted delivery was received: (topic hash, partition, offset, time).
    /// A short list scanned from the newest (deliveries in flight are few: the consumer's
    /// concurrency), so a receipt allocates nothing; past [`Self::MAX_RECEIPTS`] the oldest
    /// (never committed) are forgotten.
    received: std::sync::Mutex<std::collections::VecDeque<(u64, u32, u64, Instant)>>,
}

impl InstrumentedConsumer {
    const MAX_RECEIPTS: usize = 4096;

    fn new(inner: Arc<dyn Consumer>, metrics: Metrics) -> Self {
        Self {
            metrics,
            inner,
            received: std::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// The topic's hash (64-bit FNV-1a: topic names are short, and a collision only
    /// misattributes one commit delay sample).
    fn topic_hash(topic: &str) -> u64 {
        topic.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
}

#[async_trait]
impl Consumer for InstrumentedConsumer {
    async fn recv(&self) -> Result<Delivery> {
        let d = self.inner.recv().await?;
        {
            let mut received = self
                .received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if received.len() >= Self::MAX_RECEIPTS {
                received.pop_front();
            }
            received.push_back((
                Self::topic_hash(&d.topic),
                d.partition,
                d.offset,
                Instant::now(),
            ));
        }
        let topic = topic_family(&d.topic);
        self.metrics.record(Event::BusConsume {
            topic,
            committed_after: None,
        });
        // A publisher's clock ahead of ours gives no sample (`duration_since` fails).
        if let Some(after) = d
            .published
            .and_then(|p| std::time::SystemTime::now().duration_since(p).ok())
        {
            self.metrics.record(Event::BusDelivered {
                topic,
                after_publish: after,
            });
        }
        Ok(d)
    }
    async fn commit(&self, delivery: &Delivery) -> Result<()> {
        let r = self.inner.commit(delivery).await;
        let key = (
            Self::topic_hash(&delivery.topic),
            delivery.partition,
            delivery.offset,
        );
        let at = {
            let mut received = self
                .received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            received
                .iter()
                .rposition(|&(t, p, o, _)| (t, p, o) == key)
                .and_then(|i| received.remove(i))
                .map(|(.., at)| at)
        };
        if let Some(at) = at {
            self.metrics.record(Event::BusConsume {
                topic: topic_family(&delivery.topic),
                committed_after: Some(at.elapsed()),
            });
        }
        r
    }

    fn lag(&self) -> Option<Vec<(String, u64)>> {
        self.inner.lag()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_families_are_bounded() {
        assert_eq!(topic_family("invoker0"), "invoker");
        assert_eq!(topic_family("invoker17"), "invoker");
        assert_eq!(topic_family("completed0"), "completed");
        assert_eq!(topic_family("t_abc_completed3"), "completed");
        assert_eq!(topic_family("health"), "health");
        assert_eq!(topic_family("cacheInvalidation"), "cacheInvalidation");
        assert_eq!(topic_family("a.b-events"), "events");
        assert_eq!(topic_family("42"), "");
        assert_eq!(topic_family("prefix_7x12"), "7x");
        assert_eq!(topic_family("é_invoker1"), "invoker");
    }

    #[test]
    fn a_disabled_handle_does_nothing() {
        let m = Metrics::disabled();
        assert!(!m.is_enabled());
        assert!(m.start().is_none());
        m.record(Event::Scheduled {
            outcome: "scheduled",
        });
    }
}
