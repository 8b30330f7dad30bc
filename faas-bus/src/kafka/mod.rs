//! [`KafkaBus`]: a [`MessageBus`] on a Kafka cluster (or any broker that speaks the Kafka
//! protocol, such as tansu), through [`rdkafka`] and the librdkafka it bundles.
//!
//! # Model
//!
//! * A topic `invoker0` is the Kafka topic `<prefix>invoker0`; a group `invoker0` is the
//!   consumer group `<prefix>invoker0` (OpenWhisk's `whisk.kafka.topics.prefix`, default
//!   empty). [`Delivery::topic`](faas_core::Delivery) carries the name without the prefix.
//! * [`create_topic`](MessageBus::create_topic) creates the topic through the admin API with
//!   the config's partitions, `retention.ms` and `max.message.bytes` (the payload limit plus
//!   1 KiB for key and record framing); an existing topic is left as it is. Brokers that do
//!   not auto-create topics (tansu) need this; OpenWhisk's topics and their settings are in
//!   its [`kafka` role](https://github.com/apache/openwhisk/blob/master/ansible/group_vars/all)
//!   (`kafka.topics`).
//! * [`publish`](MessageBus::publish) sends one record (key → partition by librdkafka's
//!   hash of the key, unkeyed records spread over partitions) and waits for the broker's
//!   acknowledgement (`acks=all` by default; on one broker that is the same as OpenWhisk's
//!   `acks=1`, on a cluster it is what makes an acknowledged activation survive a broker
//!   failure). The producer sends at once (`linger.ms=0`): awaited publishes are
//!   latency-bound, and librdkafka's default 5 ms linger cost 6 ms per publish. A payload
//!   over the topic's `max_message_bytes` is `TooLarge` before anything is sent: the bus
//!   remembers the config of topics it created, and uses
//!   [`DefaultMaxMessageBytes`](KafkaConfigKey::DefaultMaxMessageBytes) for topics it
//!   only found. A topic is looked up once (metadata request) before its first publish or
//!   subscribe; a missing one is `NotFound`.
//! * [`subscribe`](MessageBus::subscribe),
//!   [`subscribe_topics`](MessageBus::subscribe_topics) and
//!   [`subscribe_background`](MessageBus::subscribe_background) (the same with the
//!   [`BackgroundFetchWait`](KafkaConfigKey::BackgroundFetchWait)) start one librdkafka consumer per call
//!   (one fetch loop, however many topics it is subscribed to): a member of
//!   the group, starting at the group's committed offsets, or at the earliest retained
//!   message for a new group (so it gets everything published after `subscribe` returned,
//!   even while it is still joining). Acknowledgements, rebalances and drop are described
//!   on [`KafkaConsumer`]. Delivery is at least once.
//! * Faults: every operation is bounded by
//!   [`PublishTimeout`](KafkaConfigKey::PublishTimeout) (default 5 s); a broker that is down
//!   or unreachable gives [`Error::Backend`] with `retryable: true` (HTTP 503), never a hang.
//!   `recv` waits through broker outages (librdkafka reconnects and the member resumes at the
//!   committed offset) and returns errors only for faults that do not clear by themselves.
//! * [`capabilities`](MessageBus::capabilities): `durable: true` (Kafka keeps messages until
//!   their retention ends; a broker configured without durable storage, such as tansu's
//!   `memory://` engine, does not, and the bus cannot tell), `ordered_per_key: true` (a key
//!   maps to one partition and a partition to one member of a group).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> faas_core::Result<()> {
//! use bytes::Bytes;
//! use faas_bus::kafka::KafkaBus;
//! use faas_core::{MessageBus, TopicConfig};
//!
//! let bus = KafkaBus::from_url("kafka://127.0.0.1:9092?prefix=dev-")?;
//! bus.create_topic("invoker0", &TopicConfig::default()).await?;
//! let consumer = bus.subscribe("invoker0", "invoker0").await?;
//! bus.publish("invoker0", Some(b"guest/hello"), Bytes::from_static(b"{}")).await?;
//! let delivery = consumer.recv().await?;
//! // ... handle it, write the record, publish the completion; then:
//! consumer.commit(&delivery).await?;
//! # Ok(()) }
//! ```
//!
//! # Latency and cost
//!
//! Measured on a 2-core VM against tansu 0.6 with SQLite storage on loopback
//! (`cargo bench -p faas-bus --features kafka --bench bus`): an awaited publish takes about
//! 1 ms; a message from `publish` to `recv` takes about 13 ms (p50) with a 10 ms fetch wait,
//! 5 ms with 2 ms and 4 ms with 1 ms, because tansu holds each fetch for the whole wait even
//! when it has data; eight publishers reach about 2 000 messages/s. An idle consumer costs
//! tansu about 8 % of a core at 10 ms (18 % at 2 ms). The default wait is 5 ms: a platform
//! process now runs one consumer (a controller two), so the shorter wait costs the broker less
//! idle CPU in all than the former 10 ms did with a consumer per topic, and each of an invoke's
//! two bus hops is about 5 ms shorter (see DESIGN-NOTES, "Kafka defaults"). The in-process bus
//! does the same round trip in under a microsecond.
//!
//! # Settings
//!
//! See [`KafkaConfigKey`] for every setting with its URL name and environment variable, and
//! [`KafkaBusBuilder::with_rdkafka`] (in a URL: `rdkafka.<property>=<value>`) for raw
//! librdkafka properties.

mod config;
mod consumer;
mod error;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use faas_core::bus::{BusCapabilities, Consumer, MessageBus, TopicConfig};
use faas_core::{Error, Result};

pub use config::{KafkaBusBuilder, KafkaConfigKey};
pub use consumer::KafkaConsumer;

use config::Settings;
use consumer::{MemberContext, Subscribed, Tracking, log_client_error};
use error::{BACKEND, is_unknown_topic, transient};

/// Room above a topic's payload limit for the key and the record framing, in the topic's
/// `max.message.bytes` on the broker.
const FRAMING_BYTES: usize = 1024;

/// Largest request the producer builds (librdkafka's `message.max.bytes`); per-topic limits
/// are checked before sending.
const PRODUCER_MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// Kafka's limit on topic name length.
const MAX_NAME: usize = 249;

/// A [`MessageBus`] on Kafka. See the [module documentation](self).
///
/// Cloning is cheap and shares the producer, the admin client and the topic cache. Dropping
/// the last handle stops librdkafka's producer and admin threads, which blocks the dropping
/// thread briefly (about 70 ms measured): make buses once per process, not per request.
#[derive(Clone)]
pub struct KafkaBus {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    producer: FutureProducer<LogContext>,
    admin: AdminClient<LogContext>,
    /// Topics known to exist, by name without prefix.
    topics: RwLock<HashMap<String, Arc<TopicInfo>>>,
}

/// What the bus knows of a topic.
#[derive(Debug)]
struct TopicInfo {
    /// The name on the broker.
    physical: String,
    max_message_bytes: usize,
}

impl fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.inner.settings;
        f.debug_struct("KafkaBus")
            .field("brokers", &s.brokers)
            .field("prefix", &s.prefix)
            .field("client_id", &s.client_id)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// A [`KafkaBusBuilder`].
    pub fn builder() -> KafkaBusBuilder {
        KafkaBusBuilder::new()
    }

    /// A bus from a URL `kafka://host:port[,host:port…][?prefix=…&…]` (settings by their
    /// [`KafkaConfigKey`] names).
    pub fn from_url(url: &str) -> Result<Self> {
        KafkaBusBuilder::new().with_url(url)?.build()
    }

    /// A bus from the `FAAS_KAFKA_*` environment variables (`FAAS_KAFKA_BROKERS` at least).
    pub fn from_env() -> Result<Self> {
        KafkaBusBuilder::from_env().build()
    }

    pub(crate) fn new(settings: Settings) -> Result<Self> {
        let producer: FutureProducer<LogContext> = settings
            .client_config("producer")
            .set("acks", settings.acks)
            .set("linger.ms", settings.linger.as_millis().to_string())
            .set(
                "message.timeout.ms",
                settings.publish_timeout.as_millis().to_string(),
            )
            .set(
                "request.timeout.ms",
                settings.publish_timeout.as_millis().to_string(),
            )
            .set("message.max.bytes", PRODUCER_MAX_REQUEST_BYTES.to_string())
            .with_overrides(&settings.rdkafka)
            .create_with_context(LogContext)
            .map_err(|e| client_error("producer", e))?;
        let admin: AdminClient<LogContext> = settings
            .client_config("admin")
            .with_overrides(&settings.rdkafka)
            .create_with_context(LogContext)
            .map_err(|e| client_error("admin client", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                producer,
                admin,
                topics: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// The prefix of topic and group names on the broker.
    pub fn prefix(&self) -> &str {
        &self.inner.settings.prefix
    }

    /// Checks that a broker answers (one metadata request), within the publish timeout.
    pub async fn ping(&self) -> Result<()> {
        self.metadata(None).await.map(|_| ())
    }

    fn physical(&self, topic: &str) -> Result<String> {
        if topic.is_empty() {
            return Err(Error::bad_request("a topic name must not be empty"));
        }
        let physical = format!("{}{topic}", self.inner.settings.prefix);
        check_name("topic", &physical)?;
        Ok(physical)
    }

    fn cached(&self, topic: &str) -> Option<Arc<TopicInfo>> {
        self.inner
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .map(Arc::clone)
    }

    fn remember(&self, topic: &str, info: TopicInfo) -> Arc<TopicInfo> {
        let info = Arc::new(info);
        self.inner
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_string(), Arc::clone(&info));
        info
    }

    fn forget(&self, topic: &str) {
        self.inner
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(topic);
    }

    /// What is known of `topic`, asking the broker if it is not cached; `NotFound` if the
    /// broker does not have it.
    async fn topic(&self, topic: &str) -> Result<Arc<TopicInfo>> {
        if let Some(info) = self.cached(topic) {
            return Ok(info);
        }
        let physical = self.physical(topic)?;
        let found = self
            .metadata(Some(physical.clone()))
            .await?
            .into_iter()
            .any(|t| t == physical);
        if !found {
            return Err(Error::not_found(topic));
        }
        Ok(self.remember(
            topic,
            TopicInfo {
                physical,
                max_message_bytes: self.inner.settings.default_max_message_bytes,
            },
        ))
    }

    /// Names of the existing topics among `topic` (all topics for `None`), from one metadata
    /// request on a blocking thread.
    async fn metadata(&self, topic: Option<String>) -> Result<Vec<String>> {
        let inner = Arc::clone(&self.inner);
        let timeout = self.inner.settings.publish_timeout;
        let lookup = tokio::task::spawn_blocking(move || {
            let md = inner
                .producer
                .client()
                .fetch_metadata(topic.as_deref(), timeout)?;
            Ok::<_, KafkaError>(
                md.topics()
                    .iter()
                    .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                    .map(|t| t.name().to_string())
                    .collect(),
            )
        });
        match tokio::time::timeout(timeout + Duration::from_secs(1), lookup).await {
            Ok(Ok(Ok(names))) => Ok(names),
            Ok(Ok(Err(e))) => Err(error::map(e, "(metadata)")),
            Ok(Err(join)) => Err(Error::internal(format!(
                "Kafka metadata lookup failed: {join}"
            ))),
            Err(_) => Err(transient(format!(
                "no answer from the Kafka brokers {} within {timeout:?}",
                self.inner.settings.brokers
            ))),
        }
    }
}

#[async_trait]
impl MessageBus for KafkaBus {
    async fn create_topic(&self, topic: &str, config: &TopicConfig) -> Result<()> {
        let physical = self.physical(topic)?;
        let settings = &self.inner.settings;
        let partitions = i32::try_from(config.partitions.max(1))
            .map_err(|_| Error::bad_request("too many partitions"))?;
        let retention = config.retention.as_millis().to_string();
        let max_bytes = config
            .max_message_bytes
            .saturating_add(FRAMING_BYTES)
            .to_string();
        let with_configs = NewTopic::new(
            &physical,
            partitions,
            TopicReplication::Fixed(settings.replication_factor),
        )
        .set("retention.ms", &retention)
        .set("max.message.bytes", &max_bytes);
        let mut code = self.create(&with_configs, topic).await?;
        if matches!(
            code,
            Some(RDKafkaErrorCode::InvalidConfig | RDKafkaErrorCode::PolicyViolation)
        ) {
            // A broker that does not take these topic configs: the bus still enforces the
            // payload limit itself; retention is the broker's default.
            tracing::info!(
                topic = %physical, ?code,
                "the broker rejected retention.ms/max.message.bytes; creating the topic without them"
            );
            let plain = NewTopic::new(
                &physical,
                partitions,
                TopicReplication::Fixed(settings.replication_factor),
            );
            code = self.create(&plain, topic).await?;
        }
        match code {
            None | Some(RDKafkaErrorCode::TopicAlreadyExists) => {
                self.remember(
                    topic,
                    TopicInfo {
                        physical,
                        max_message_bytes: config.max_message_bytes,
                    },
                );
                Ok(())
            }
            Some(code) => Err(error::map(KafkaError::AdminOp(code), topic)),
        }
    }

    async fn publish(&self, topic: &str, key: Option<&[u8]>, payload: Bytes) -> Result<()> {
        let info = self.topic(topic).await?;
        if payload.len() > info.max_message_bytes {
            return Err(Error::too_large(format!(
                "The message of {} bytes exceeds the limit of {} bytes of topic {topic}.",
                payload.len(),
                info.max_message_bytes,
            )));
        }
        let mut record = FutureRecord::<[u8], [u8]>::to(&info.physical).payload(&payload[..]);
        if let Some(key) = key {
            record = record.key(key);
        }
        let delivery = self
            .inner
            .producer
            .send_result(record)
            .map_err(|(e, _)| error::map(e, topic))?;
        // librdkafka fails the message after `message.timeout.ms`; the outer bound only
        // guards against a lost callback.
        let bound = self.inner.settings.publish_timeout + Duration::from_secs(1);
        match tokio::time::timeout(bound, delivery).await {
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err((e, _)))) => {
                if error::code(&e).is_some_and(is_unknown_topic) {
                    self.forget(topic);
                }
                Err(error::map(e, topic))
            }
            Ok(Err(_)) => Err(transient("the Kafka producer was closed")),
            Err(_) => Err(transient(format!("publish to {topic} timed out"))),
        }
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Arc<dyn Consumer>> {
        let wait = self.inner.settings.fetch_wait;
        Ok(Arc::new(self.member(&[topic], group, wait).await?))
    }

    async fn subscribe_topics(&self, topics: &[&str], group: &str) -> Result<Arc<dyn Consumer>> {
        let wait = self.inner.settings.fetch_wait;
        Ok(Arc::new(self.member(topics, group, wait).await?))
    }

    async fn subscribe_background(
        &self,
        topics: &[&str],
        group: &str,
    ) -> Result<Arc<dyn Consumer>> {
        let wait = self.inner.settings.background_fetch_wait;
        Ok(Arc::new(self.member(topics, group, wait).await?))
    }

    fn capabilities(&self) -> BusCapabilities {
        BusCapabilities::new(true, true)
    }
}

impl KafkaBus {
    /// One member of `group` on `topics`: one librdkafka consumer subscribed to all of them,
    /// whose fetches the broker may hold for `fetch_wait`.
    async fn member(
        &self,
        topics: &[&str],
        group: &str,
        fetch_wait: Duration,
    ) -> Result<KafkaConsumer> {
        if group.is_empty() {
            return Err(Error::bad_request(
                "a consumer group name must not be empty",
            ));
        }
        if topics.is_empty() {
            return Err(Error::bad_request(
                "name at least one topic to subscribe to",
            ));
        }
        let mut subscribed: Vec<Subscribed> = Vec::with_capacity(topics.len());
        for topic in topics {
            if subscribed.iter().any(|t| t.logical == *topic) {
                return Err(Error::bad_request(format!("topic {topic} is named twice")));
            }
            subscribed.push(Subscribed {
                logical: topic.to_string(),
                physical: self.topic(topic).await?.physical.clone(),
            });
        }
        let names = topics.join(", ");
        let settings = &self.inner.settings;
        let group_id = format!("{}{group}", settings.prefix);
        let tracking = Arc::new(Tracking::default());
        let commit_each = settings.commit_interval.is_zero();
        let session = settings.session_timeout;
        let consumer: StreamConsumer<MemberContext> = settings
            .client_config("consumer")
            .set("group.id", &group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.commit.interval.ms",
                settings.commit_interval.as_millis().to_string(),
            )
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", session.as_millis().to_string())
            .set(
                "heartbeat.interval.ms",
                (session / 3).as_millis().clamp(100, 3_000).to_string(),
            )
            .set(
                "max.poll.interval.ms",
                settings.max_poll_interval.as_millis().to_string(),
            )
            .set("fetch.wait.max.ms", fetch_wait.as_millis().to_string())
            .set("fetch.error.backoff.ms", "100")
            .set(
                "statistics.interval.ms",
                consumer::STATISTICS_INTERVAL.as_millis().to_string(),
            )
            .with_overrides(&settings.rdkafka)
            .create_with_context(MemberContext {
                tracking: Arc::clone(&tracking),
                lag: std::sync::Mutex::default(),
            })
            .map_err(|e| client_error("consumer", e))?;
        let physical: Vec<&str> = subscribed.iter().map(|t| t.physical.as_str()).collect();
        consumer
            .subscribe(&physical)
            .map_err(|e| error::map(e, &names))?;
        Ok(KafkaConsumer::new(
            consumer,
            subscribed,
            group_id,
            tracking,
            commit_each,
            self.inner.producer.clone(),
        ))
    }

    /// Sends one CreateTopics request: `None` when created, else the broker's error code.
    async fn create(&self, new: &NewTopic<'_>, topic: &str) -> Result<Option<RDKafkaErrorCode>> {
        let timeout = self.inner.settings.publish_timeout;
        let opts = AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout));
        let call = self.inner.admin.create_topics([new], &opts);
        let results = match tokio::time::timeout(timeout + Duration::from_secs(1), call).await {
            Ok(Ok(results)) => results,
            Ok(Err(e)) => return Err(error::map(e, topic)),
            Err(_) => return Err(transient(format!("creating topic {topic} timed out"))),
        };
        Ok(results
            .into_iter()
            .find_map(|r| r.err().map(|(_, code)| code)))
    }
}

impl Settings {
    /// The properties every client of this bus shares.
    fn client_config(&self, role: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        let timeout = self.publish_timeout.as_millis().to_string();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", format!("{}-{role}", self.client_id))
            .set("allow.auto.create.topics", "false")
            .set("socket.nagle.disable", "true")
            .set("socket.timeout.ms", &timeout)
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "1000");
        c
    }
}

/// `ClientConfig::set` chains on `&mut`; this finishes a chain with the user's overrides.
trait WithOverrides {
    fn with_overrides(&mut self, overrides: &[(String, String)]) -> &mut ClientConfig;
}

impl WithOverrides for ClientConfig {
    fn with_overrides(&mut self, overrides: &[(String, String)]) -> &mut ClientConfig {
        for (k, v) in overrides {
            self.set(k, v);
        }
        self
    }
}

/// Callbacks of the producer and admin clients: log faults at a level that fits them.
pub(crate) struct LogContext;

impl ClientContext for LogContext {
    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }
}

fn client_error(what: &str, e: KafkaError) -> Error {
    match e {
        KafkaError::ClientConfig(..) => {
            Error::bad_request(format!("invalid Kafka {what} setting: {e}"))
        }
        e => Error::backend(BACKEND, false, e),
    }
}

/// Checks a topic or prefix against Kafka's rules: 1 to 249 characters of `[a-zA-Z0-9._-]`.
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "invalid Kafka {what} '{name}': use 1 to {MAX_NAME} characters of [a-zA-Z0-9._-]"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka_rules() {
        assert!(check_name("topic", "invoker0").is_ok());
        assert!(check_name("topic", "a.b_c-D9").is_ok());
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(MAX_NAME + 1)] {
            assert_eq!(
                check_name("topic", bad).map_err(|e| e.status()),
                Err(400),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn building_sends_nothing_and_bad_librdkafka_settings_are_bad_requests() {
        let bus = KafkaBus::builder()
            .with_brokers("127.0.0.1:1")
            .with_topic_prefix("p-")
            .build()
            .unwrap();
        assert_eq!(bus.prefix(), "p-");
        assert!(format!("{bus:?}").contains("127.0.0.1:1"));
        assert_eq!(bus.capabilities(), BusCapabilities::new(true, true));
        let err = KafkaBus::builder()
            .with_brokers("127.0.0.1:1")
            .with_rdkafka("no.such.property", "1")
            .build()
            .unwrap_err();
        assert_eq!(err.status(), 400, "{err}");
    }

    #[tokio::test]
    async fn invalid_names_are_rejected_before_any_request() {
        let bus = KafkaBus::from_url("kafka://127.0.0.1:1").unwrap();
        let e = bus
            .create_topic("bad topic", &TopicConfig::default())
            .await
            .unwrap_err();
        assert_eq!(e.status(), 400);
        let e = bus.publish("", None, Bytes::new()).await.unwrap_err();
        assert_eq!(e.status(), 400);
        let e = bus.subscribe("t", "").await.unwrap_err();
        assert_eq!(e.status(), 400);
    }
}
