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

/// One member of a consumer group on one topic, from [`KafkaBus::subscribe`](super::KafkaBus).
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
    /// The topic as the caller named it (without prefix).
    topic: String,
    /// The topic on the broker.
    physical: String,
    group: String,
    tracking: Arc<Tracking>,
    /// Commit on every acknowledgement (`commit_interval` zero).
    commit_each: bool,
    /// The bus's producer, whose client asks the broker for high watermarks.
    watermarks: FutureProducer<LogContext>,
}

impl fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaConsumer")
            .field("topic", &self.physical)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl KafkaConsumer {
    pub(crate) fn new(
        consumer: StreamConsumer<MemberContext>,
        topic: String,
        physical: String,
        group: String,
        tracking: Arc<Tracking>,
        commit_each: bool,
        watermarks: FutureProducer<LogContext>,
    ) -> Self {
        Self {
            inner: Some(consumer),
            topic,
            physical,
            group,
            tracking,
            commit_each,
            watermarks,
        }
    }

    /// The high watermark of `partition`, asked of the broker on the blocking pool (once per
    /// assignment); `None` when it does not answer in time.
    async fn high_watermark(&self, partition: i32) -> Option<i64> {
        let client = self.watermarks.clone();
        let topic = self.physical.clone();
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
                    topic = %self.physical, partition, answer = ?other.map(|r| r.map(|(_, h)| h)),
                    "no high watermark: this assignment's messages all count as possible redeliveries"
                );
                None
            }
        }
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
                    let key = m.key().map(Bytes::copy_from_slice);
                    let payload = m.payload().map(Bytes::copy_from_slice).unwrap_or_default();
                    drop(m);
                    let high = if self.tracking.knows(partition) {
                        None
                    } else {
                        self.high_watermark(partition).await
                    };
                    let redelivered = self.tracking.delivered(partition, offset, high);
                    return Ok(Delivery {
                        topic: self.topic.clone(),
                        partition: u32::try_from(partition).unwrap_or_default(),
                        offset: u64::try_from(offset).unwrap_or_default(),
                        key,
                        payload,
                        redelivered,
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
                            topic = %self.physical, group = %self.group, error = %e,
                            "Kafka consumer fault; waiting for the broker"
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    _ => return Err(error::map(e, &self.topic)),
                },
            }
        }
    }

    async fn commit(&self, delivery: &Delivery) -> Result<()> {
        if delivery.topic != self.topic {
            return Err(Error::bad_request(format!(
                "a delivery from topic {} committed on a consumer of topic {}",
                delivery.topic, self.topic
            )));
        }
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
        let Some(next) = ack(&mut tracking, partition, offset) else {
            return Ok(());
        };
        let mut tpl = TopicPartitionList::with_capacity(1);
        tpl.add_partition_offset(&self.physical, partition, Offset::Offset(next))
            .map_err(|e| error::map(e, &self.topic))?;
        match consumer.store_offsets(&tpl) {
            Ok(()) => {}
            // The partition was revoked in the meantime; its next owner gets the message again.
            Err(KafkaError::StoreOffset(RDKafkaErrorCode::State)) => {
                tracking.remove(&partition);
                tracing::debug!(topic = %self.physical, partition, offset, "acknowledged after the partition was revoked");
                return Ok(());
            }
            Err(e) => return Err(error::map(e, &self.topic)),
        }
        drop(tracking);
        if self.commit_each {
            consumer
                .commit(&tpl, CommitMode::Async)
                .map_err(|e| error::map(e, &self.topic))?;
        }
        Ok(())
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

/// The in-flight books of one consumer, shared with its rebalance callback.
#[derive(Debug, Default)]
pub(crate) struct Tracking(Mutex<HashMap<i32, PartitionTrack>>);

impl Tracking {
    fn lock(&self) -> MutexGuard<'_, HashMap<i32, PartitionTrack>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `partition` has handed out a message in its current assignment.
    fn knows(&self, partition: i32) -> bool {
        self.lock().contains_key(&partition)
    }

    /// Notes `offset` as handed out; whether it may be a redelivery. `high` is the partition's
    /// high watermark for the first message of an assignment (ignored after).
    fn delivered(&self, partition: i32, offset: i64, high: Option<i64>) -> bool {
        let mut map = self.lock();
        let p = map.entry(partition).or_insert_with(|| PartitionTrack {
            stored: offset,
            fresh_from: high,
            ..PartitionTrack::default()
        });
        p.unacked.insert(offset);
        p.next = p.next.max(offset + 1);
        p.fresh_from.is_none_or(|h| offset < h)
    }

    fn forget(&self, partitions: impl IntoIterator<Item = i32>) {
        let mut map = self.lock();
        for p in partitions {
            map.remove(&p);
        }
    }
}

/// Acknowledges `offset`: the new commit offset of `partition` if it advanced.
fn ack(map: &mut HashMap<i32, PartitionTrack>, partition: i32, offset: i64) -> Option<i64> {
    let p = map.get_mut(&partition)?;
    if !p.unacked.remove(&offset) {
        return None;
    }
    let next = p.unacked.first().copied().unwrap_or(p.next);
    (next > p.stored).then(|| {
        p.stored = next;
        next
    })
}

/// Callbacks of a member's librdkafka client: forget revoked partitions, log faults.
pub(crate) struct MemberContext {
    pub(crate) tracking: Arc<Tracking>,
}

impl ClientContext for MemberContext {
    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }
}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            // Assigned partitions start afresh from the committed offset; revoked ones
            // belong to another member now. librdkafka commits their stored offsets itself.
            Rebalance::Assign(tpl) | Rebalance::Revoke(tpl) => {
                self.tracking
                    .forget(tpl.elements().iter().map(|e| e.partition()));
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
            t.delivered(partition, o, Some(0));
        }
    }

    #[test]
    fn messages_below_the_first_high_watermark_are_flagged() {
        let t = Tracking::default();
        assert!(!t.knows(0));
        // The first message of the assignment: the watermark then was 7.
        assert!(t.delivered(0, 5, Some(7)));
        assert!(t.knows(0), "asked once per assignment");
        assert!(t.delivered(0, 6, None));
        assert!(!t.delivered(0, 7, None), "published after the assignment");
        assert!(
            !t.delivered(0, 8, Some(1)),
            "only the first watermark counts"
        );
        // Unknown watermark: the whole assignment is flagged.
        assert!(t.delivered(1, 0, None));
        assert!(t.delivered(1, 100, Some(2)));
        // A new assignment notes the watermark again.
        t.forget([0, 1]);
        assert!(!t.knows(0));
        assert!(t.delivered(0, 8, Some(12)));
        assert!(!t.delivered(0, 12, None));
        assert!(!t.delivered(1, 3, Some(2)));
    }

    #[test]
    fn in_order_acks_advance_past_each_message() {
        let t = Tracking::default();
        delivered(&t, 0, [5, 6, 7]);
        let mut map = t.lock();
        assert_eq!(ack(&mut map, 0, 5), Some(6));
        assert_eq!(ack(&mut map, 0, 6), Some(7));
        assert_eq!(ack(&mut map, 0, 7), Some(8));
        assert_eq!(ack(&mut map, 0, 7), None, "a repeated ack changes nothing");
    }

    #[test]
    fn out_of_order_acks_stop_at_the_lowest_unacked() {
        let t = Tracking::default();
        delivered(&t, 0, [0, 1, 2]);
        delivered(&t, 1, [10]);
        let mut map = t.lock();
        assert_eq!(ack(&mut map, 0, 2), None, "0 and 1 are still in flight");
        assert_eq!(ack(&mut map, 0, 1), None);
        assert_eq!(ack(&mut map, 0, 0), Some(3), "all done: past the last");
        assert_eq!(ack(&mut map, 1, 10), Some(11), "partitions are independent");
        drop(map);
        delivered(&t, 0, [3, 4]);
        let mut map = t.lock();
        assert_eq!(ack(&mut map, 0, 4), None);
        assert_eq!(ack(&mut map, 0, 3), Some(5));
    }

    #[test]
    fn forgotten_partitions_ignore_late_acks() {
        let t = Tracking::default();
        delivered(&t, 0, [0, 1]);
        t.forget([0]);
        assert_eq!(ack(&mut t.lock(), 0, 0), None);
        // Reassigned: starts again from the committed offset, 1 is received again.
        delivered(&t, 0, [1]);
        assert_eq!(
            ack(&mut t.lock(), 0, 0),
            None,
            "not handed out in this assignment"
        );
        assert_eq!(ack(&mut t.lock(), 0, 1), Some(2));
    }
}
