//! [`KafkaConsumer`]: one member of a consumer group, with acknowledgements that may come out
//! of order.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, Producer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use faas_core::bus::{Consumer, Delivery};
use faas_core::{Error, Result};

use super::LogContext;
use super::error::{self, is_transient};

/// Longest wait for a partition's high watermark (asked once per assignment).
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(5);

/// One member of a consumer group on one topic, from [`KafkaBus::subscribe`](super::KafkaBus), or
/// on several, from `subscribe_topics`: one librdkafka consumer (one fetch loop against the
/// broker) whatever the number of topics. Everything below holds per topic and partition.
///
/// # Acknowledgements
///
/// Kafka keeps one committed offset per partition and group: everything below it counts as
/// done. Acknowledgements may come in any order, so the consumer remembers, per partition,
/// the offsets it handed out and that are not yet acknowledged, and lets the committed offset
/// advance only up to the lowest of them (or past the last one handed out when all are
/// acknowledged). The offset is *stored* at once and sent to the broker every
/// `commit_interval` (and when partitions are revoked or the consumer is dropped), so a
/// crash may redeliver up to that interval's worth of acknowledged messages: delivery is at
/// least once.
///
/// # Redeliveries
///
/// A message that was in a partition before this member got the partition may have been
/// handed to its previous owner, which may have done the work and died (or lost the
/// partition) before committing. On the first message of each assignment of a partition the
/// consumer asks the broker for the partition's high watermark (at least what it was when the
/// partition was assigned); messages below it are delivered with [`Delivery::redelivered`]
/// set, later ones without. That is conservative: messages published between the assignment
/// and its first message are flagged too, and when the broker does not answer, every message
/// of the assignment is.
///
/// # Rebalances and drop
///
/// When the group moves a partition away from this member (another member joined or left),
/// the unacknowledged offsets of that partition are forgotten: the next owner receives them
/// again from the committed offset, and a late acknowledgement here is ignored. Dropping the
/// last handle leaves the group (on a background thread, since librdkafka's close blocks)
/// after committing what was acknowledged, nothing more; the rest goes to the next member.
///
/// librdkafka serves rebalances from `recv`: a member that stops calling `recv` for longer
/// than `max_poll_interval_ms` is removed from the group, and while it is not calling `recv`
/// a rebalance waits for it.
pub struct KafkaConsumer {
    /// `Some` until dropped.
    inner: Option<StreamConsumer<MemberContext>>,
    /// Each topic as the caller named it (without prefix), and on the broker.
    topics: Vec<Subscribed>,
    group: String,
    tracking: Arc<Tracking>,
    /// Commit on every acknowledgement (`commit_interval` zero).
    commit_each: bool,
    /// The bus's producer, whose client asks the broker for high watermarks.
    watermarks: FutureProducer<LogContext>,
}

/// A topic of a [`KafkaConsumer`].
#[derive(Debug, Clone)]
pub(crate) struct Subscribed {
    /// As the caller named it.
    pub(crate) logical: String,
    /// On the broker (with the bus's prefix).
    pub(crate) physical: String,
}

impl fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let topics: Vec<&str> = self.topics.iter().map(|t| t.physical.as_str()).collect();
        f.debug_struct("KafkaConsumer")
            .field("topics", &topics)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl KafkaConsumer {
    pub(crate) fn new(
        consumer: StreamConsumer<MemberContext>,
        topics: Vec<Subscribed>,
        group: String,
        tracking: Arc<Tracking>,
        commit_each: bool,
        watermarks: FutureProducer<LogContext>,
    ) -> Self {
        Self {
            inner: Some(consumer),
            topics,
            group,
            tracking,
            commit_each,
            watermarks,
        }
    }

    /// The high watermark of `partition`, asked of the broker on the blocking pool (once per
    /// assignment); `None` when it does not answer in time.
    async fn high_watermark(&self, physical: &str, partition: i32) -> Option<i64> {
        let client = self.watermarks.clone();
        let topic = physical.to_string();
        let asked = tokio::task::spawn_blocking(move || {
            client
                .client()
                .fetch_watermarks(&topic, partition, WATERMARK_TIMEOUT)
        })
        .await;
        match asked {
            Ok(Ok((_, high))) if high >= 0 => Some(high),
            other => {
                tracing::warn!(
                    topic = %physical, partition, answer = ?other.map(|r| r.map(|(_, h)| h)),
                    "no high watermark: this assignment's messages all count as possible redeliveries"
                );
                None
            }
        }
    }

    /// The topics as the caller named them, for messages.
    fn logical_names(&self) -> String {
        self.topics
            .iter()
            .map(|t| t.logical.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn consumer(&self) -> Result<&StreamConsumer<MemberContext>> {
        self.inner
            .as_ref()
            .ok_or_else(|| Error::internal("the Kafka consumer is closed"))
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn recv(&self) -> Result<Delivery> {
        let consumer = self.consumer()?;
        loop {
            match consumer.recv().await {
                Ok(m) => {
                    let (partition, offset) = (m.partition(), m.offset());
                    let Some(topic) = self.topics.iter().find(|t| t.physical == m.topic()) else {
                        // Not subscribed: cannot happen; never handed out, so never committed.
                        tracing::warn!(topic = m.topic(), "a message of a topic not subscribed to");
                        continue;
                    };
                    let published = m
                        .timestamp()
                        .to_millis()
                        .and_then(|ms| u64::try_from(ms).ok())
                        .map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms));
                    let key = m.key().map(Bytes::copy_from_slice);
                    let payload = m.payload().map(Bytes::copy_from_slice).unwrap_or_default();
                    drop(m);
                    let high = if self.tracking.knows(&topic.physical, partition) {
                        None
                    } else {
                        self.high_watermark(&topic.physical, partition).await
                    };
                    let redelivered =
                        self.tracking
                            .delivered(&topic.physical, partition, offset, high);
                    return Ok(Delivery {
                        topic: topic.logical.clone(),
                        partition: u32::try_from(partition).unwrap_or_default(),
                        offset: u64::try_from(offset).unwrap_or_default(),
                        key,
                        payload,
                        redelivered,
                        published,
                    });
                }
                Err(e) => match error::code(&e) {
                    // librdkafka reconnects and resumes by itself: wait on, bounded by the
                    // caller, instead of making every caller write a retry loop.
                    Some(code)
                        if is_transient(code)
                            && !matches!(e, KafkaError::MessageConsumptionFatal(_)) =>
                    {
                        tracing::warn!(
                            topics = ?self.topics, group = %self.group, error = %e,
                            "Kafka consumer fault; waiting for the broker"
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    _ => return Err(error::map(e, &self.logical_names())),
                },
            }
        }
    }

    async fn commit(&self, delivery: &Delivery) -> Result<()> {
        let Some(topic) = self.topics.iter().find(|t| t.logical == delivery.topic) else {
            return Err(Error::bad_request(format!(
                "a delivery from topic {} committed on a consumer of {}",
                delivery.topic,
                self.logical_names()
            )));
        };
        let (Ok(partition), Ok(offset)) = (
            i32::try_from(delivery.partition),
            i64::try_from(delivery.offset),
        ) else {
            return Err(Error::bad_request(
                "the delivery's partition or offset is out of range",
            ));
        };
        let consumer = self.consumer()?;
        // Stored under the lock, so that concurrent acknowledgements store in order.
        let mut tracking = self.tracking.lock();
        let key = (topic.physical.clone(), partition);
        let Some(next) = ack(&mut tracking, &key, offset) else {
            return Ok(());
        };
        let mut tpl = TopicPartitionList::with_capacity(1);
        tpl.add_partition_offset(&topic.physical, partition, Offset::Offset(next))
            .map_err(|e| error::map(e, &topic.logical))?;
        match consumer.store_offsets(&tpl) {
            Ok(()) => {}
            // The partition was revoked in the meantime; its next owner gets the message again.
            Err(KafkaError::StoreOffset(RDKafkaErrorCode::State)) => {
                tracking.remove(&key);
                tracing::debug!(topic = %topic.physical, partition, offset, "acknowledged after the partition was revoked");
                return Ok(());
            }
            Err(e) => return Err(error::map(e, &topic.logical)),
        }
        drop(tracking);
        if self.commit_each {
            consumer
                .commit(&tpl, CommitMode::Async)
                .map_err(|e| error::map(e, &topic.logical))?;
        }
        Ok(())
    }

    fn lag(&self) -> Option<Vec<(String, u64)>> {
        let consumer = self.inner.as_ref()?;
        let lag = consumer
            .context()
            .lag
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Some(
            self.topics
                .iter()
                .map(|t| {
                    (
                        t.logical.clone(),
                        lag.get(&t.physical).copied().unwrap_or(0),
                    )
                })
                .collect(),
        )
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        let Some(consumer) = self.inner.take() else {
            return;
        };
        // Closing commits the stored offsets, leaves the group and waits for the broker:
        // blocking work that must not hold up an async worker thread. On a runtime's
        // blocking pool it also finishes before the runtime shuts down (a graceful exit
        // leaves the group at once instead of after the session time-out).
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || drop(consumer))),
            Err(_) => {
                let closer = std::thread::Builder::new()
                    .name("faas-kafka-close".into())
                    .spawn(move || drop(consumer));
                if let Err(e) = closer {
                    tracing::warn!(error = %e, "cannot start a thread to close a Kafka consumer");
                }
            }
        }
    }
}

/// Per partition: what was handed out and not acknowledged.
#[derive(Debug, Default)]
pub(crate) struct PartitionTrack {
    /// Offsets received and not yet acknowledged.
    unacked: BTreeSet<i64>,
    /// One past the highest offset received.
    next: i64,
    /// The offset last stored for commit.
    stored: i64,
    /// The high watermark noted at the first message of this assignment: messages below it
    /// may have been handed to an earlier owner.
    fresh_from: Option<i64>,
}

/// A partition of a topic on the broker.
type PartitionKey = (String, i32);

/// The in-flight books of one consumer, shared with its rebalance callback.
#[derive(Debug, Default)]
pub(crate) struct Tracking(Mutex<HashMap<PartitionKey, PartitionTrack>>);

impl Tracking {
    fn lock(&self) -> MutexGuard<'_, HashMap<PartitionKey, PartitionTrack>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `partition` of `topic` has handed out a message in its current assignment.
    fn knows(&self, topic: &str, partition: i32) -> bool {
        // Keys are few (a partition or so per topic): a scan allocates nothing.
        self.lock()
            .keys()
            .any(|(t, p)| *p == partition && t == topic)
    }

    /// Notes `offset` as handed out; whether it may be a redelivery. `high` is the partition's
    /// high watermark for the first message of an assignment (ignored after).
    fn delivered(&self, topic: &str, partition: i32, offset: i64, high: Option<i64>) -> bool {
        let mut map = self.lock();
        let p = map
            .entry((topic.to_string(), partition))
            .or_insert_with(|| PartitionTrack {
                stored: offset,
                fresh_from: high,
                ..PartitionTrack::default()
            });
        p.unacked.insert(offset);
        p.next = p.next.max(offset + 1);
        p.fresh_from.is_none_or(|h| offset < h)
    }

    fn forget(&self, partitions: impl IntoIterator<Item = PartitionKey>) {
        let mut map = self.lock();
        for p in partitions {
            map.remove(&p);
        }
    }
}

/// Acknowledges `offset`: the new commit offset of `partition` if it advanced.
fn ack(
    map: &mut HashMap<PartitionKey, PartitionTrack>,
    partition: &PartitionKey,
    offset: i64,
) -> Option<i64> {
    let p = map.get_mut(partition)?;
    if !p.unacked.remove(&offset) {
        return None;
    }
    let next = p.unacked.first().copied().unwrap_or(p.next);
    (next > p.stored).then(|| {
        p.stored = next;
        next
    })
}

/// Callbacks of a member's librdkafka client: forget revoked partitions, log faults, note
/// the consumer lag of its statistics.
pub(crate) struct MemberContext {
    pub(crate) tracking: Arc<Tracking>,
    /// Per topic on the broker, the lag librdkafka last reported (its statistics every
    /// [`STATISTICS_INTERVAL`]): the sum over the partitions assigned to this member of the
    /// high watermark minus the committed offset.
    pub(crate) lag: Mutex<HashMap<String, u64>>,
}

/// How often librdkafka reports statistics (the consumer lag among them).
pub(crate) const STATISTICS_INTERVAL: Duration = Duration::from_secs(5);

impl ClientContext for MemberContext {
    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        // `consumer_lag` is -1 for partitions not assigned here (and librdkafka's internal
        // partition -1).
        let lag = statistics
            .topics
            .into_iter()
            .map(|(topic, t)| {
                let sum = t
                    .partitions
                    .values()
                    .filter(|p| p.partition >= 0)
                    .filter_map(|p| u64::try_from(p.consumer_lag).ok())
                    .sum();
                (topic, sum)
            })
            .collect();
        *self.lag.lock().unwrap_or_else(PoisonError::into_inner) = lag;
    }
}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            // Assigned partitions start afresh from the committed offset; revoked ones
            // belong to another member now. librdkafka commits their stored offsets itself.
            Rebalance::Assign(tpl) | Rebalance::Revoke(tpl) => {
                self.tracking.forget(
                    tpl.elements()
                        .iter()
                        .map(|e| (e.topic().to_string(), e.partition())),
                );
            }
            Rebalance::Error(e) => {
                tracing::warn!(error = %e, "Kafka consumer group rebalance failed");
            }
        }
    }
}

/// Logs a librdkafka client-level error: faults that clear by themselves (broker down) as
/// warnings, the rest as errors.
pub(crate) fn log_client_error(error: &KafkaError, reason: &str) {
    match error::code(error) {
        Some(code) if is_transient(code) => {
            tracing::warn!(target: "librdkafka", error = %error, "{reason}");
        }
        _ => tracing::error!(target: "librdkafka", error = %error, "{reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(t: &Tracking, partition: i32, offsets: impl IntoIterator<Item = i64>) {
        for o in offsets {
            t.delivered("t", partition, o, Some(0));
        }
    }

    fn k(partition: i32) -> PartitionKey {
        ("t".to_string(), partition)
    }

    #[test]
    fn messages_below_the_first_high_watermark_are_flagged() {
        let t = Tracking::default();
        assert!(!t.knows("t", 0));
        // The first message of the assignment: the watermark then was 7.
        assert!(t.delivered("t", 0, 5, Some(7)));
        assert!(t.knows("t", 0), "asked once per assignment");
        assert!(t.delivered("t", 0, 6, None));
        assert!(
            !t.delivered("t", 0, 7, None),
            "published after the assignment"
        );
        assert!(
            !t.delivered("t", 0, 8, Some(1)),
            "only the first watermark counts"
        );
        // Unknown watermark: the whole assignment is flagged.
        assert!(t.delivered("t", 1, 0, None));
        assert!(t.delivered("t", 1, 100, Some(2)));
        // A new assignment notes the watermark again.
        t.forget([k(0), k(1)]);
        assert!(!t.knows("t", 0));
        assert!(t.delivered("t", 0, 8, Some(12)));
        assert!(!t.delivered("t", 0, 12, None));
        assert!(!t.delivered("t", 1, 3, Some(2)));
    }

    #[test]
    fn in_order_acks_advance_past_each_message() {
        let t = Tracking::default();
        delivered(&t, 0, [5, 6, 7]);
        let mut map = t.lock();
        assert_eq!(ack(&mut map, &k(0), 5), Some(6));
        assert_eq!(ack(&mut map, &k(0), 6), Some(7));
        assert_eq!(ack(&mut map, &k(0), 7), Some(8));
        assert_eq!(
            ack(&mut map, &k(0), 7),
            None,
            "a repeated ack changes nothing"
        );
    }

    #[test]
    fn out_of_order_acks_stop_at_the_lowest_unacked() {
        let t = Tracking::default();
        delivered(&t, 0, [0, 1, 2]);
        delivered(&t, 1, [10]);
        let mut map = t.lock();
        assert_eq!(ack(&mut map, &k(0), 2), None, "0 and 1 are still in flight");
        assert_eq!(ack(&mut map, &k(0), 1), None);
        assert_eq!(ack(&mut map, &k(0), 0), Some(3), "all done: past the last");
        assert_eq!(
            ack(&mut map, &k(1), 10),
            Some(11),
            "partitions are independent"
        );
        drop(map);
        delivered(&t, 0, [3, 4]);
        let mut map = t.lock();
        assert_eq!(ack(&mut map, &k(0), 4), None);
        assert_eq!(ack(&mut map, &k(0), 3), Some(5));
    }

    #[test]
    fn topics_are_tracked_apart() {
        let t = Tracking::default();
        assert!(t.delivered("a", 0, 5, Some(6)));
        assert!(t.knows("a", 0));
        assert!(
            !t.knows("b", 0),
            "another topic's partition 0 is another partition"
        );
        assert!(!t.delivered("b", 0, 7, Some(7)));
        let mut map = t.lock();
        assert_eq!(ack(&mut map, &("b".to_string(), 0), 7), Some(8));
        assert_eq!(ack(&mut map, &("a".to_string(), 0), 5), Some(6));
        drop(map);
        t.forget([("a".to_string(), 0)]);
        assert!(!t.knows("a", 0) && t.knows("b", 0));
    }

    #[test]
    fn forgotten_partitions_ignore_late_acks() {
        let t = Tracking::default();
        delivered(&t, 0, [0, 1]);
        t.forget([k(0)]);
        assert_eq!(ack(&mut t.lock(), &k(0), 0), None);
        // Reassigned: starts again from the committed offset, 1 is received again.
        delivered(&t, 0, [1]);
        assert_eq!(
            ack(&mut t.lock(), &k(0), 0),
            None,
            "not handed out in this assignment"
        );
        assert_eq!(ack(&mut t.lock(), &k(0), 1), Some(2));
    }
}
