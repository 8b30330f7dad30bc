//! The `MessageBus` trait: topics, consumer groups and at-least-once delivery.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;

/// Settings for a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicConfig {
    /// Partitions (ordering holds per key within one partition).
    pub partitions: u32,
    /// How long messages are kept.
    pub retention: Duration,
    /// Largest message, bytes; larger publishes fail with `TooLarge`.
    pub max_message_bytes: usize,
    /// Whether the topic's messages must outlive the process that publishes them (default
    /// `true`). Topics that only describe a live process — acknowledgements to a controller's
    /// books, health pings, cache invalidations — say `false`, and an adapter that pays for
    /// durability per topic (the in-process bus with a journal) keeps them in memory only.
    /// Adapters that keep every topic alike (Kafka) ignore it.
    pub durable: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            partitions: 1,
            retention: Duration::from_secs(3600),
            max_message_bytes: 1024 * 1024 + 6068,
            durable: true,
        }
    }
}

impl TopicConfig {
    /// With `partitions`.
    pub fn with_partitions(mut self, n: u32) -> Self {
        self.partitions = n.max(1);
        self
    }
    /// With `retention`.
    pub fn with_retention(mut self, d: Duration) -> Self {
        self.retention = d;
        self
    }
    /// With `max_message_bytes`.
    pub fn with_max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }
    /// Marks the topic transient (`durable = false`): its messages need not survive a restart.
    pub fn transient(mut self) -> Self {
        self.durable = false;
        self
    }
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// Its offset in the partition.
    pub offset: u64,
    /// The key it was published with.
    pub key: Option<Bytes>,
    /// The payload.
    pub payload: Bytes,
    /// Whether the message may have been handed out before — to this member or another
    /// member of the group — without being committed, so that its work may already be done
    /// (or under way). `false` is a promise that it was not: a consumer may then skip its
    /// duplicate checks (the invoker does not look for an existing record). Adapters may say
    /// `true` when unsure (Kafka does for what was in a partition before this member got
    /// it), never `false` for a redelivery.
    pub redelivered: bool,
    /// When the message was published, as the adapter knows it (Kafka: the record's
    /// `CreateTime`, set by the producer's clock, to the millisecond; the in-process bus: its
    /// publish call); `None` when unknown. Metrics derive publish-to-receipt latency from it.
    pub published: Option<std::time::SystemTime>,
}

/// A message published with [`MessageBus::publish_deferred`]: what
/// [`MessageBus::persist`] needs to make it durable later.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The topic.
    pub topic: String,
    /// Where the message is, when it still has to be made durable; `None` when it already is
    /// as durable as the adapter makes anything (or the adapter keeps nothing).
    pub pending: Option<(u32, u64)>,
}

impl Published {
    /// A message that needs no [`MessageBus::persist`].
    pub fn settled(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            pending: None,
        }
    }

    /// A message at `partition`/`offset` of `topic` that is not durable yet.
    pub fn pending(topic: impl Into<String>, partition: u32, offset: u64) -> Self {
        Self {
            topic: topic.into(),
            pending: Some((partition, offset)),
        }
    }
}

/// What a bus adapter guarantees beyond the contract; suites pick cases by these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusCapabilities {
    /// Messages survive a restart of the bus.
    pub durable: bool,
    /// Messages with the same key arrive in publish order.
    pub ordered_per_key: bool,
}

impl BusCapabilities {
    /// Capabilities from flags.
    pub const fn new(durable: bool, ordered_per_key: bool) -> Self {
        Self {
            durable,
            ordered_per_key,
        }
    }
}

/// A subscription of one consumer group member to a topic.
///
/// Methods take `&self` so one consumer can be shared by a receiving task and the tasks that
/// finish the work and acknowledge it.
#[async_trait]
pub trait Consumer: fmt::Debug + Send + Sync + 'static {
    /// Waits for the next message for this member.
    async fn recv(&self) -> Result<Delivery>;
    /// Acknowledges `delivery`. Acknowledgements may come out of order; the adapter keeps
    /// every unacknowledged message deliverable again (Kafka adapters commit only up to the
    /// lowest unacknowledged offset).
    async fn commit(&self, delivery: &Delivery) -> Result<()>;
    /// Consumer lag: per topic, how many messages on the partitions this member can see its
    /// group has not committed yet (waiting or in flight), as `(topic, messages)`; `None`
    /// when the adapter cannot tell (the default). Read when metrics are scraped: cheap, no
    /// I/O (an adapter reports what it last learned).
    fn lag(&self) -> Option<Vec<(String, u64)>> {
        None
    }
}

/// A publish/subscribe bus with consumer groups and at-least-once delivery.
///
/// # Contract
///
/// * Topics are created with [`create_topic`](MessageBus::create_topic) (idempotent); publishing
///   to or subscribing to a missing topic is `NotFound`. A payload over the topic's
///   `max_message_bytes` is `TooLarge` and is not published.
/// * Every message published after a group subscribed is delivered to exactly one live member
///   of that group; every group sees every message.
/// * **At least once:** a message delivered to a member that is dropped before committing it
///   is delivered again to a member of the same group (a later subscriber if no other is live).
///   Committed messages are never delivered again to that group.
/// * With [`BusCapabilities::ordered_per_key`], messages with the same key reach a member in
///   publish order.
/// * A group that subscribes for the first time receives at least every message published
///   after its first `subscribe` returned (durable adapters may also deliver older retained ones).
/// * [`subscribe_topics`](MessageBus::subscribe_topics) makes **one** member of a group on
///   several topics: everything above holds per topic, each [`Delivery`] names its topic, and
///   the consumer commits deliveries of any of them. A process that listens to many topics
///   (a controller) uses one such consumer, so its idle cost (a broker fetch loop each, for
///   Kafka) does not grow with the topics.
#[async_trait]
pub trait MessageBus: fmt::Debug + Send + Sync + 'static {
    /// Creates `topic` unless it exists.
    async fn create_topic(&self, topic: &str, config: &TopicConfig) -> Result<()>;
    /// Publishes `payload` (with an optional ordering key).
    async fn publish(&self, topic: &str, key: Option<&[u8]>, payload: Bytes) -> Result<()>;
    /// Publishes `payload` as [`publish`](MessageBus::publish) does (delivery, order and
    /// groups alike), except that an adapter may keep it in memory only until
    /// [`persist`](MessageBus::persist) is called with the answer: a crash of the process
    /// before then may lose it. For work whose acceptance may never be announced (a blocking
    /// invoke answered with its result needs no durable message; one answered `202` does). The
    /// default publishes durably at once.
    async fn publish_deferred(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Bytes,
    ) -> Result<Published> {
        self.publish(topic, key, payload).await?;
        Ok(Published::settled(topic))
    }
    /// Makes a message of [`publish_deferred`](MessageBus::publish_deferred) as durable as
    /// [`publish`](MessageBus::publish) would have, for every group that has not committed it
    /// yet (a message every group committed needs nothing). The default does nothing.
    async fn persist(&self, published: &Published) -> Result<()> {
        let _ = published;
        Ok(())
    }
    /// Joins `group` on `topic`.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Arc<dyn Consumer>>;
    /// Joins `group` on every topic of `topics` (at least one, no repeats) as one member:
    /// one consumer receives the messages of all of them. A missing topic is `NotFound`.
    async fn subscribe_topics(&self, topics: &[&str], group: &str) -> Result<Arc<dyn Consumer>>;
    /// As [`subscribe_topics`](MessageBus::subscribe_topics), for topics whose messages may
    /// wait a little (health pings, cache invalidations): an adapter whose idle consumers cost
    /// something per poll may serve them with a slower, cheaper consumer (Kafka: a longer fetch
    /// wait, `background_fetch_wait_ms`). The guarantees are those of `subscribe_topics`; only
    /// the delay may differ. By default the same call.
    async fn subscribe_background(
        &self,
        topics: &[&str],
        group: &str,
    ) -> Result<Arc<dyn Consumer>> {
        self.subscribe_topics(topics, group).await
    }
    /// What this adapter guarantees.
    fn capabilities(&self) -> BusCapabilities;
}

/// `dyn MessageBus`.
pub type DynBus = dyn MessageBus;
