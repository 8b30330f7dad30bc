//! [`InProcessBus`]: a [`MessageBus`] inside one process, with Kafka's semantics, and
//! optionally a journal on disk that makes it durable across restarts and crashes.
//!
//! # Model
//!
//! * A topic has `partitions` partitions. A keyed message goes to the partition given by a
//!   hash of its key (so one key always lands in one partition); unkeyed messages go round
//!   robin. Each partition numbers its messages with a monotonic offset starting at 0.
//! * A consumer group is created by its first `subscribe` and lives as long as the bus. It
//!   receives every message published to the topic **from then on**, including messages
//!   published while none of its members is alive (a group that subscribes later does not see
//!   older messages). Publishing to a topic with no group stores nothing.
//! * Per group, each partition is a FIFO queue. A member takes from the front of any queue;
//!   the message is then *in flight* at that member until the member commits it. Committed
//!   messages are forgotten, so memory is bounded by what groups have not yet acknowledged.
//! * A partition with messages in flight at one member is served only by that member until
//!   they are all committed (Kafka gives a partition to one member of a group too). This is
//!   what keeps per-key order with several members: every member receives each partition's
//!   messages in offset order, and the group as a whole receives them in offset order (apart
//!   from redeliveries, which come first). With one member per group, which is how the
//!   platform uses the bus, the member may have any number of messages in flight.
//! * Dropping a member's last handle puts its in-flight messages back at the **front** of
//!   their queues, in offset order, for the next member (live now or subscribing later),
//!   which receives them with [`Delivery::redelivered`] set; so do the messages a journal
//!   restores (they may have been handed out before the restart); every other delivery has it
//!   clear.
//! * Messages still queued are dropped once older than the topic's `retention` (checked when
//!   the partition receives a new message, so messages live *at least* that long); in-flight
//!   messages are kept until committed or redelivered.
//!
//! # Durability
//!
//! [`InProcessBus::new`] keeps nothing after the process: [`capabilities`](MessageBus::capabilities)
//! reports `durable: false`. A bus opened with a **journal** ([`InProcessBus::with_journal`],
//! URL `inproc:?journal=PATH`, feature `journal`) writes every message of a
//! [durable](TopicConfig::durable) topic into an SQLite file before `publish` returns, and its
//! groups when they first subscribe; commits delete it again. A bus opened again on the same
//! file (after a clean stop, a crash or `kill -9` of the process) recreates each durable topic's
//! groups when the topic is created and delivers every message they had not committed, in
//! offset order, before anything new — so an acknowledged publish is never lost to a crash of
//! the process (and, with [`JournalSync::Full`], not to a power loss either). Offsets continue
//! above the restored ones. Topics created with [`TopicConfig::transient`] stay in memory.
//! See the `journal` module for the file, its flush policy and its size.
//!
//! [`publish_deferred`](MessageBus::publish_deferred) queues a message like `publish` but
//! writes nothing to the journal; [`persist`](MessageBus::persist) later journals it for the
//! groups that still hold it (queued or in flight, not committed), so that from then on it is
//! as durable as a published one. The controller publishes a blocking invoke this way and
//! persists it only if the caller is answered `202`: an invoke answered with its result costs
//! no journal write.
//!
//! # Cost
//!
//! `publish` takes one short critical section on the topic and is O(groups); `recv` takes one
//! when a message is ready and otherwise parks on a [`Notify`] that `publish`, `commit` or a
//! dropped member wakes, with no polling. Like tokio's channels, `recv` takes part in tokio's
//! cooperative scheduling budget, so a consumer loop that always finds a message still yields
//! now and then. `recv` is cancel-safe: a message is taken only when the call returns it.
//! A journaled publish (or `persist`) adds one SQLite transaction (an append to the write-ahead
//! log, no disk flush with the default [`JournalSync::Normal`]) on the caller's thread; a
//! deferred publish adds none; commits cost nothing more (their rows are deleted lazily).
//!
//! Topic names follow Kafka's rules (1 to 249 characters from `[a-zA-Z0-9._-]`), so a
//! configuration that works here works on Kafka; group names must not be empty.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Notify;

use faas_core::bus::{BusCapabilities, Consumer, Delivery, MessageBus, Published, TopicConfig};
use faas_core::{Error, Result};

#[cfg(feature = "journal")]
#[cfg_attr(docsrs, doc(cfg(feature = "journal")))]
pub mod journal;
#[cfg(not(feature = "journal"))]
#[allow(dead_code)]
mod journal {
    //! Without the `journal` feature there is no journal: this type has no values.
    use std::path::Path;
    use std::sync::MutexGuard;

    use faas_core::{Error, Result};

    use super::JournalSync;

    #[derive(Debug)]
    pub(crate) enum Journal {}
    pub(crate) enum Writer {}
    pub(crate) struct Restored {
        pub(crate) groups: Vec<String>,
        pub(crate) rows: Vec<RestoredRow>,
    }
    pub(crate) struct RestoredRow {
        pub(crate) row: i64,
        pub(crate) group: String,
        pub(crate) partition: u32,
        pub(crate) offset: u64,
        pub(crate) key: Option<bytes::Bytes>,
        pub(crate) payload: bytes::Bytes,
        pub(crate) published_ms: u64,
    }

    impl Journal {
        pub(crate) fn open(_path: &Path, _sync: JournalSync) -> Result<Self> {
            Err(Error::bad_request(
                "this build of faas-bus has no journal (feature `journal`)",
            ))
        }
        pub(crate) fn file(&self) -> &str {
            match *self {}
        }
        pub(crate) fn sync(&self) -> JournalSync {
            match *self {}
        }
        pub(crate) fn writer(&self) -> MutexGuard<'_, Writer> {
            match *self {}
        }
        pub(crate) fn take_restored(&self, _topic: &str) -> Option<Restored> {
            match *self {}
        }
        pub(crate) fn forget(&self, _row: i64) {
            match *self {}
        }
        pub(crate) fn forget_all(&self, _rows: impl IntoIterator<Item = i64>) {
            match *self {}
        }
        pub(crate) fn compact(&self) -> Result<()> {
            match *self {}
        }
        pub(crate) fn disk_bytes(&self) -> u64 {
            match *self {}
        }
    }

    impl Writer {
        pub(crate) fn add_group(&mut self, _topic: &str, _group: &str) -> Result<()> {
            match *self {}
        }
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn append(
            &mut self,
            _journal: &Journal,
            _topic: &str,
            _groups: &[&str],
            _partition: u32,
            _offset: u64,
            _key: Option<&[u8]>,
            _payload: &[u8],
        ) -> Result<Vec<i64>> {
            match *self {}
        }
    }
}

/// When a journal commit counts as done (a journal needs the `journal` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JournalSync {
    /// Written to the operating system (survives a crash of the process; a power loss may
    /// lose the last messages). Each publish costs one `write`; flushes happen in the
    /// background.
    #[default]
    Normal,
    /// Flushed to the disk before `publish` returns (survives a power loss; each publish
    /// waits for a disk flush, on a blocking thread).
    Full,
}

impl JournalSync {
    /// Parses `normal` or `full`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "normal" => Ok(Self::Normal),
            "full" => Ok(Self::Full),
            other => Err(Error::bad_request(format!(
                "bus journal: sync must be 'normal' or 'full', not '{other}'"
            ))),
        }
    }
}

use journal::{Journal, Restored};

/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME: usize = 249;

/// An in-process [`MessageBus`] with topics, consumer groups, partitions, explicit commits and
/// redelivery of uncommitted messages; with a journal, durable. See the
/// [module documentation](self) for the model.
///
/// Cloning is cheap and gives another handle on the same bus.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> faas_core::Result<()> {
/// use bytes::Bytes;
/// use faas_bus::InProcessBus;
/// use faas_core::{MessageBus, TopicConfig};
///
/// let bus = InProcessBus::new();
/// bus.create_topic("health", &TopicConfig::default()).await?;
/// let a = bus.subscribe("health", "controller0").await?;
/// let b = bus.subscribe("health", "controller1").await?;
/// bus.publish("health", None, Bytes::from_static(b"ping")).await?;
/// // Two groups: each sees the message.
/// for consumer in [a, b] {
///     let d = consumer.recv().await?;
///     assert_eq!(d.payload, "ping");
///     consumer.commit(&d).await?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct InProcessBus {
    topics: Arc<RwLock<HashMap<String, Arc<Topic>>>>,
    journal: Option<Arc<Journal>>,
}

/// Counts for one consumer group, from [`InProcessBus::group_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupStats {
    /// Messages waiting to be received.
    pub queued: usize,
    /// Messages received and not yet committed.
    pub in_flight: usize,
    /// Live members: subscriptions whose consumer has not been dropped.
    pub members: usize,
}

impl InProcessBus {
    /// An empty bus that keeps nothing after the process.
    pub fn new() -> Self {
        Self::default()
    }

    /// A durable bus journaled in the SQLite file `path` (created if missing, with its
    /// directory), flushing as [`JournalSync::Normal`] says. Messages the journal holds from a
    /// previous bus are delivered again once their topic is created. Blocking (opens and reads
    /// the file).
    ///
    /// # Errors
    ///
    /// The file is in use by another bus (`PATH.lock` is held), is not a journal, is damaged,
    /// or cannot be created; or the crate was built without the `journal` feature.
    pub fn with_journal(path: impl AsRef<Path>) -> Result<Self> {
        Self::with_journal_sync(path, JournalSync::default())
    }

    /// As [`with_journal`](Self::with_journal), with the flush policy `sync`.
    pub fn with_journal_sync(path: impl AsRef<Path>, sync: JournalSync) -> Result<Self> {
        let journal = Journal::open(path.as_ref(), sync)?;
        Ok(Self {
            topics: Arc::default(),
            journal: Some(Arc::new(journal)),
        })
    }

    /// The bus an adapter URL describes: `inproc:` (nothing kept) or
    /// `inproc:?journal=PATH[&sync=normal|full]` (durable; see
    /// [`with_journal`](Self::with_journal)). Blocking when it opens a journal.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url
            .trim()
            .strip_prefix("inproc:")
            .ok_or_else(|| Error::bad_request(format!("'{url}' is not an inproc: URL")))?;
        let query = match rest.split_once('?') {
            Some(("", q)) => q,
            None if rest.is_empty() => "",
            _ => {
                return Err(Error::bad_request(format!(
                    "inproc: URL '{url}': settings go after '?' (inproc:?journal=PATH)"
                )));
            }
        };
        let (mut path, mut sync) = (None, JournalSync::default());
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "journal" if !v.is_empty() => path = Some(v.to_string()),
                "sync" => sync = JournalSync::parse(v)?,
                _ => {
                    return Err(Error::bad_request(format!(
                        "inproc: URL: unknown or empty setting '{k}'; valid: journal=PATH, sync=normal|full"
                    )));
                }
            }
        }
        match path {
            Some(p) => Self::with_journal_sync(p, sync),
            None if query.contains("sync=") => {
                Err(Error::bad_request("inproc: URL: sync= needs journal=PATH"))
            }
            None => Ok(Self::new()),
        }
    }

    /// The journal's file, when the bus has one.
    pub fn journal_file(&self) -> Option<&str> {
        self.journal.as_deref().map(Journal::file)
    }

    /// Deletes the rows of committed messages, checkpoints the journal's log (truncating it)
    /// and returns free pages to the file system, now (the journal's maintenance thread does
    /// the same in the background). Blocking. Without a journal, does nothing.
    pub fn compact_journal(&self) -> Result<()> {
        match &self.journal {
            Some(j) => j.compact(),
            None => Ok(()),
        }
    }

    /// The journal's size on disk (the database and its log), bytes; `None` without one.
    pub fn journal_bytes(&self) -> Option<u64> {
        self.journal.as_deref().map(Journal::disk_bytes)
    }

    /// The counts of `group` on `topic`, or `None` if either does not exist.
    pub fn group_stats(&self, topic: &str, group: &str) -> Option<GroupStats> {
        let topics = read(&self.topics);
        let state = topics.get(topic)?.lock();
        let group = &state.groups[*state.group_index.get(group)?];
        Some(GroupStats {
            queued: group.partitions.iter().map(|p| p.queued.len()).sum(),
            in_flight: group.partitions.iter().map(|p| p.in_flight.len()).sum(),
            members: group.members,
        })
    }

    /// Adds a member to `group` on `topic`.
    fn join(&self, topic: &str, group: &str) -> Result<InProcessConsumer> {
        let topic = self.topic(topic)?;
        if group.is_empty() {
            return Err(Error::bad_request(
                "The consumer group name must not be empty.",
            ));
        }
        // A new group of a durable topic is journaled before it exists in memory; the writer
        // lock keeps publishes out meanwhile, so the group misses nothing it should see.
        let mut writer = topic.journal.as_deref().map(Journal::writer);
        if let Some(w) = writer.as_mut() {
            let known = topic.lock().group_index.contains_key(group);
            if !known {
                w.add_group(&topic.name, group)?;
            }
        }
        let (index, member, notify) = {
            let mut state = topic.lock();
            let index = match state.group_index.get(group) {
                Some(i) => *i,
                None => state.add_group(group, topic.partitions),
            };
            let member = state.next_member;
            state.next_member += 1;
            let g = &mut state.groups[index];
            g.members += 1;
            (index, member, Arc::clone(&g.notify))
        };
        drop(writer);
        Ok(InProcessConsumer {
            topic,
            group: group.to_owned(),
            index,
            member,
            notify,
        })
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        read(&self.topics)
            .get(name)
            .map(Arc::clone)
            .ok_or_else(|| Error::not_found(name))
    }

    /// `topic`, if `payload` is within its size limit.
    fn topic_for(&self, topic: &str, payload: &Bytes) -> Result<Arc<Topic>> {
        let topic = self.topic(topic)?;
        if payload.len() > topic.max_message_bytes {
            return Err(Error::too_large(format!(
                "The message of {} bytes exceeds the limit of {} bytes of topic {}.",
                payload.len(),
                topic.max_message_bytes,
                topic.name
            )));
        }
        Ok(topic)
    }

    /// `publish_deferred` without the future: queued at once, journaled only by `persist`.
    fn publish_deferred_now(
        &self,
        topic: &str,
        key: Option<Bytes>,
        payload: Bytes,
    ) -> Result<Published> {
        let t = self.topic_for(topic, &payload)?;
        Ok(match &t.journal {
            Some(journal) => {
                // The writer lock orders this publish with journaled ones (queues stay in
                // offset order); no I/O happens under it here.
                let writer = journal.writer();
                let queued = publish_in_memory(&t, key, payload);
                drop(writer);
                match queued {
                    Some((partition, offset, expired)) => {
                        journal.forget_all(expired);
                        Published::pending(topic, partition, offset)
                    }
                    None => Published::settled(topic),
                }
            }
            None => {
                publish_in_memory(&t, key, payload);
                Published::settled(topic)
            }
        })
    }

    /// `persist` without the future: journals the message for every group that still holds
    /// it (queued or in flight). Blocking (one journal transaction).
    fn persist_now(&self, published: &Published) -> Result<()> {
        let Some((partition, offset)) = published.pending else {
            return Ok(());
        };
        let topic = self.topic(&published.topic)?;
        let Some(journal) = topic.journal.as_deref() else {
            return Ok(());
        };
        let mut writer = journal.writer();
        // The groups that hold the message without a row, and the message itself.
        let (groups, message) = {
            let mut state = topic.lock();
            let mut groups = Vec::new();
            let mut message = None;
            for (index, group) in state.groups.iter_mut().enumerate() {
                let Some(queue) = group.partitions.get_mut(partition as usize) else {
                    continue;
                };
                if let Some(q) = queue.find_mut(offset).filter(|q| q.row.is_none()) {
                    message.get_or_insert_with(|| Arc::clone(&q.message));
                    groups.push(index);
                }
            }
            let names: Vec<String> = groups
                .iter()
                .map(|&i| state.group_names[i].clone())
                .collect();
            (groups.into_iter().zip(names).collect::<Vec<_>>(), message)
        };
        let Some(message) = message else {
            // Committed by every group already: nothing to keep.
            return Ok(());
        };
        let names: Vec<&str> = groups.iter().map(|(_, n)| n.as_str()).collect();
        let rows = writer.append(
            journal,
            &topic.name,
            &names,
            partition,
            offset,
            message.key.as_deref(),
            &message.payload,
        )?;
        let mut gone = Vec::new();
        {
            let mut state = topic.lock();
            for ((index, _), row) in groups.iter().zip(rows) {
                let held = state
                    .groups
                    .get_mut(*index)
                    .and_then(|g| g.partitions.get_mut(partition as usize))
                    .and_then(|queue| queue.find_mut(offset))
                    .filter(|q| q.row.is_none());
                match held {
                    Some(q) => q.row = Some(row),
                    // Committed (or expired) meanwhile: its row is not needed.
                    None => gone.push(row),
                }
            }
        }
        drop(writer);
        journal.forget_all(gone);
        Ok(())
    }

    /// `publish` without the future: the whole operation is synchronous.
    fn publish_now(&self, topic: &str, key: Option<Bytes>, payload: Bytes) -> Result<()> {
        let topic = self.topic_for(topic, &payload)?;
        match &topic.journal {
            Some(journal) => publish_journaled(&topic, journal, key, payload),
            None => {
                publish_in_memory(&topic, key, payload);
                Ok(())
            }
        }
    }
}

/// Picks the partition of a new message and takes its offset.
fn next_slot(state: &mut TopicState, key: Option<&Bytes>, partitions: u32) -> (u32, u64) {
    let partition = match key {
        Some(k) => partition_for_key(k, partitions),
        None => {
            let p = state.round_robin % partitions;
            state.round_robin = state.round_robin.wrapping_add(1);
            p
        }
    };
    let slot = &mut state.next_offsets[partition as usize];
    let offset = *slot;
    *slot += 1;
    (partition, offset)
}

fn wake(wakers: &[Arc<Notify>]) {
    for notify in wakers {
        notify.notify_waiters();
    }
}

/// Queues a message for every group without journaling it; its partition and offset, and the
/// journal rows of messages dropped for age, when some group receives it.
fn publish_in_memory(
    topic: &Topic,
    key: Option<Bytes>,
    payload: Bytes,
) -> Option<(u32, u64, Vec<i64>)> {
    let now = Instant::now();
    let (wakers, queued) = {
        let mut state = topic.lock();
        let (partition, offset) = next_slot(&mut state, key.as_ref(), topic.partitions);
        if state.groups.is_empty() {
            return None;
        }
        let message = Arc::new(Message {
            partition,
            offset,
            key,
            payload,
            published: now,
        });
        let mut expired = Vec::new();
        for group in &mut state.groups {
            let queue = &mut group.partitions[partition as usize];
            expired.extend(queue.expire(now, topic.retention));
            queue.queued.push_back(Queued {
                message: Arc::clone(&message),
                row: None,
            });
        }
        (Arc::clone(&state.wakers), (partition, offset, expired))
    };
    wake(&wakers);
    Some(queued)
}

/// A publish to a durable topic of a journaled bus: the offset is taken, the message written
/// to the journal for every group, and only then queued, all under the journal's writer lock
/// (so that queues receive offsets in order and no group is added in between).
fn publish_journaled(
    topic: &Topic,
    journal: &Journal,
    key: Option<Bytes>,
    payload: Bytes,
) -> Result<()> {
    let mut writer = journal.writer();
    let now = Instant::now();
    let (partition, offset, groups, expired) = {
        let mut state = topic.lock();
        let (partition, offset) = next_slot(&mut state, key.as_ref(), topic.partitions);
        if state.groups.is_empty() {
            return Ok(());
        }
        let mut expired = Vec::new();
        for group in &mut state.groups {
            let queue = &mut group.partitions[partition as usize];
            expired.extend(queue.expire(now, topic.retention));
        }
        let names: Vec<String> = state.group_names.clone();
        (partition, offset, names, expired)
    };
    journal.forget_all(expired);
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let rows = writer.append(
        journal,
        &topic.name,
        &names,
        partition,
        offset,
        key.as_deref(),
        &payload,
    )?;
    let message = Arc::new(Message {
        partition,
        offset,
        key,
        payload,
        published: now,
    });
    let wakers = {
        let mut state = topic.lock();
        for (group, row) in state.groups.iter_mut().zip(rows) {
            group.partitions[partition as usize]
                .queued
                .push_back(Queued {
                    message: Arc::clone(&message),
                    row: Some(row),
                });
        }
        Arc::clone(&state.wakers)
    };
    drop(writer);
    wake(&wakers);
    Ok(())
}

impl fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let topics = read(&self.topics);
        let mut names: Vec<&str> = topics.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut d = f.debug_struct("InProcessBus");
        d.field("topics", &names);
        if let Some(j) = &self.journal {
            d.field("journal", &j.file());
        }
        d.finish()
    }
}

impl fmt::Display for InProcessBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.journal {
            Some(j) => write!(f, "InProcessBus(journal {})", j.file()),
            None => f.write_str("InProcessBus"),
        }
    }
}

/// Milliseconds since the epoch.
fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A new topic's state, with what the journal held for it (groups, and their uncommitted
/// messages queued in offset order); rows past `retention`, or of partitions the topic no
/// longer has, are dropped.
fn restore(
    name: &str,
    partitions: u32,
    retention: Duration,
    restored: Option<Restored>,
    journal: Option<&Journal>,
) -> TopicState {
    let mut state = TopicState {
        next_offsets: vec![0; partitions as usize],
        round_robin: 0,
        groups: Vec::new(),
        group_index: HashMap::new(),
        group_names: Vec::new(),
        wakers: Arc::new([]),
        next_member: 0,
    };
    let Some(restored) = restored else {
        return state;
    };
    for g in &restored.groups {
        state.add_group(g, partitions);
    }
    let now = Instant::now();
    let now_ms = epoch_ms();
    let mut dropped = Vec::new();
    for r in restored.rows {
        let age = Duration::from_millis(now_ms.saturating_sub(r.published_ms));
        if r.partition >= partitions || age > retention {
            tracing::warn!(
                topic = name,
                group = %r.group,
                partition = r.partition,
                offset = r.offset,
                "dropping a journaled message: past the topic's retention, or of a partition it no longer has"
            );
            dropped.push(r.row);
            continue;
        }
        let next = &mut state.next_offsets[r.partition as usize];
        *next = (*next).max(r.offset + 1);
        let Some(&gi) = state.group_index.get(&r.group) else {
            continue;
        };
        let message = Arc::new(Message {
            partition: r.partition,
            offset: r.offset,
            key: r.key,
            payload: r.payload,
            published: now.checked_sub(age).unwrap_or(now),
        });
        let queue = &mut state.groups[gi].partitions[r.partition as usize];
        // It may have been handed out before the bus went down: delivered again, flagged.
        queue.redeliver_below = queue.redeliver_below.max(r.offset + 1);
        queue.queued.push_back(Queued {
            message,
            row: Some(r.row),
        });
    }
    if let Some(j) = journal {
        j.forget_all(dropped);
    }
    state
}

#[async_trait]
impl MessageBus for InProcessBus {
    async fn create_topic(&self, topic: &str, config: &TopicConfig) -> Result<()> {
        validate_topic_name(topic)?;
        let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        if !topics.contains_key(topic) {
            let partitions = config.partitions.max(1);
            let journal = self.journal.as_ref().filter(|_| config.durable);
            let restored = self.journal.as_ref().and_then(|j| j.take_restored(topic));
            let restored = match (journal, restored) {
                (Some(_), r) => r,
                (None, Some(r)) => {
                    // A topic now transient that was durable before: nothing to keep.
                    if let Some(j) = &self.journal {
                        j.forget_all(r.rows.iter().map(|x| x.row));
                    }
                    None
                }
                (None, None) => None,
            };
            let state = restore(
                topic,
                partitions,
                config.retention,
                restored,
                journal.map(|j| &**j),
            );
            topics.insert(
                topic.to_owned(),
                Arc::new(Topic {
                    name: topic.to_owned(),
                    partitions,
                    max_message_bytes: config.max_message_bytes,
                    retention: config.retention,
                    journal: journal.map(Arc::clone),
                    state: Mutex::new(state),
                }),
            );
        }
        Ok(())
    }

    async fn publish(&self, topic: &str, key: Option<&[u8]>, payload: Bytes) -> Result<()> {
        let key = key.map(Bytes::copy_from_slice);
        match &self.journal {
            // A flush per publish must not hold a runtime thread up.
            Some(j) if j.sync() == JournalSync::Full => {
                let (bus, topic) = (self.clone(), topic.to_owned());
                tokio::task::spawn_blocking(move || bus.publish_now(&topic, key, payload))
                    .await
                    .map_err(|e| Error::internal(format!("a journaled publish failed: {e}")))?
            }
            _ => self.publish_now(topic, key, payload),
        }
    }

    async fn publish_deferred(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Bytes,
    ) -> Result<Published> {
        self.publish_deferred_now(topic, key.map(Bytes::copy_from_slice), payload)
    }

    async fn persist(&self, published: &Published) -> Result<()> {
        if published.pending.is_none() {
            return Ok(());
        }
        match &self.journal {
            // A flush per publish must not hold a runtime thread up.
            Some(j) if j.sync() == JournalSync::Full => {
                let (bus, published) = (self.clone(), published.clone());
                tokio::task::spawn_blocking(move || bus.persist_now(&published))
                    .await
                    .map_err(|e| Error::internal(format!("a journaled publish failed: {e}")))?
            }
            _ => self.persist_now(published),
        }
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Arc<dyn Consumer>> {
        Ok(Arc::new(self.join(topic, group)?))
    }

    async fn subscribe_topics(&self, topics: &[&str], group: &str) -> Result<Arc<dyn Consumer>> {
        if topics.is_empty() {
            return Err(Error::bad_request(
                "Name at least one topic to subscribe to.",
            ));
        }
        let mut members: Vec<InProcessConsumer> = Vec::with_capacity(topics.len());
        for topic in topics {
            if members.iter().any(|m| m.topic.name == *topic) {
                return Err(Error::bad_request(format!("Topic {topic} is named twice.")));
            }
            members.push(self.join(topic, group)?);
        }
        Ok(Arc::new(InProcessMultiConsumer {
            members,
            cursor: AtomicUsize::new(0),
        }))
    }

    fn capabilities(&self) -> BusCapabilities {
        BusCapabilities::new(self.journal.is_some(), true)
    }
}

/// One member of a consumer group of an [`InProcessBus`], returned by `subscribe`.
///
/// Dropping the last handle returns the member's uncommitted messages to the group.
pub struct InProcessConsumer {
    topic: Arc<Topic>,
    group: String,
    /// The group's index in its topic's state.
    index: usize,
    member: u64,
    /// The group's wake-up signal.
    notify: Arc<Notify>,
}

impl InProcessConsumer {
    /// Takes the next message this member may receive, if any.
    fn try_take(&self) -> Option<Delivery> {
        let mut state = self.topic.lock();
        let group = &mut state.groups[self.index];
        let n = group.partitions.len();
        for i in 0..n {
            let p = (group.cursor + i) % n;
            let queue = &mut group.partitions[p];
            if queue.owner.is_some_and(|o| o != self.member) {
                continue;
            }
            if let Some(q) = queue.queued.pop_front() {
                queue.owner = Some(self.member);
                let message = &q.message;
                let delivery = Delivery {
                    topic: self.topic.name.clone(),
                    partition: message.partition,
                    offset: message.offset,
                    key: message.key.clone(),
                    payload: message.payload.clone(),
                    redelivered: message.offset < queue.redeliver_below,
                    // Its wall-clock time, from the monotonic one kept for retention.
                    published: std::time::SystemTime::now()
                        .checked_sub(message.published.elapsed()),
                };
                queue.in_flight.push_back(q);
                group.cursor = (p + 1) % n;
                return Some(delivery);
            }
        }
        None
    }
}

#[async_trait]
impl Consumer for InProcessConsumer {
    async fn recv(&self) -> Result<Delivery> {
        // Yield now and then when messages are always ready, like tokio's own channels, so a
        // busy consumer loop cannot starve its worker thread. Nothing is taken before this.
        tokio::task::coop::consume_budget().await;
        loop {
            if let Some(d) = self.try_take() {
                return Ok(d);
            }
            // Register for a wake-up before looking again, so a publish in between is not missed.
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if let Some(d) = self.try_take() {
                return Ok(d);
            }
            notified.await;
        }
    }

    async fn commit(&self, delivery: &Delivery) -> Result<()> {
        if delivery.topic != self.topic.name {
            return Err(Error::bad_request(format!(
                "A delivery of topic {} cannot be committed on topic {}.",
                delivery.topic, self.topic.name
            )));
        }
        let (wake, row) = {
            let mut state = self.topic.lock();
            let group = &mut state.groups[self.index];
            let members = group.members;
            let Some(queue) = group.partitions.get_mut(delivery.partition as usize) else {
                return Err(Error::bad_request(format!(
                    "Topic {} has no partition {}.",
                    self.topic.name, delivery.partition
                )));
            };
            if queue.owner != Some(self.member) {
                // Committed already, or not ours: nothing to do.
                return Ok(());
            }
            let row = match queue
                .in_flight
                .binary_search_by_key(&delivery.offset, |q| q.message.offset)
            {
                Ok(i) => queue.in_flight.remove(i).and_then(|q| q.row),
                Err(_) => None,
            };
            let wake = if queue.in_flight.is_empty() {
                queue.owner = None;
                // Other members may now take from this partition.
                members > 1 && !queue.queued.is_empty()
            } else {
                false
            };
            (wake, row)
        };
        if let (Some(row), Some(journal)) = (row, &self.topic.journal) {
            journal.forget(row);
        }
        if wake {
            self.notify.notify_waiters();
        }
        Ok(())
    }

    fn lag(&self) -> Option<Vec<(String, u64)>> {
        Some(vec![(self.topic.name.clone(), self.uncommitted())])
    }
}

impl InProcessConsumer {
    /// What the group has not committed on this topic: waiting and in flight, all partitions
    /// (a member may take from any partition nobody else holds).
    fn uncommitted(&self) -> u64 {
        let state = self.topic.lock();
        state.groups[self.index]
            .partitions
            .iter()
            .map(|q| (q.queued.len() + q.in_flight.len()) as u64)
            .sum()
    }
}

impl Drop for InProcessConsumer {
    fn drop(&mut self) {
        let wake = {
            let mut state = self.topic.lock();
            let group = &mut state.groups[self.index];
            group.members = group.members.saturating_sub(1);
            let mut wake = false;
            for queue in &mut group.partitions {
                if queue.owner == Some(self.member) {
                    queue.owner = None;
                    // In flight holds offsets below everything queued: put them back in front.
                    if let Some(last) = queue.in_flight.back() {
                        queue.redeliver_below = queue.redeliver_below.max(last.message.offset + 1);
                    }
                    while let Some(m) = queue.in_flight.pop_back() {
                        queue.queued.push_front(m);
                    }
                    wake |= !queue.queued.is_empty();
                }
            }
            wake && group.members > 0
        };
        if wake {
            self.notify.notify_waiters();
        }
    }
}

/// One member of a group on several topics of an [`InProcessBus`], returned by
/// `subscribe_topics`: a member per topic, received from in turn, and woken by any of them.
pub struct InProcessMultiConsumer {
    members: Vec<InProcessConsumer>,
    /// Where the next look starts, so no topic starves the others.
    cursor: AtomicUsize,
}

impl InProcessMultiConsumer {
    fn try_take(&self) -> Option<Delivery> {
        let n = self.members.len();
        let start = self.cursor.fetch_add(1, AtomicOrdering::Relaxed);
        (0..n).find_map(|i| self.members[(start + i) % n].try_take())
    }
}

#[async_trait]
impl Consumer for InProcessMultiConsumer {
    async fn recv(&self) -> Result<Delivery> {
        tokio::task::coop::consume_budget().await;
        loop {
            if let Some(d) = self.try_take() {
                return Ok(d);
            }
            // Register with every topic's group before looking again (see `InProcessConsumer`).
            let mut waits: Vec<_> = self
                .members
                .iter()
                .map(|m| Box::pin(m.notify.notified()))
                .collect();
            for w in &mut waits {
                w.as_mut().enable();
            }
            if let Some(d) = self.try_take() {
                return Ok(d);
            }
            futures::future::select_all(waits).await;
        }
    }

    async fn commit(&self, delivery: &Delivery) -> Result<()> {
        match self.members.iter().find(|m| m.topic.name == delivery.topic) {
            Some(m) => m.commit(delivery).await,
            None => Err(Error::bad_request(format!(
                "A delivery of topic {} cannot be committed on a consumer of {}.",
                delivery.topic,
                self.topics()
            ))),
        }
    }

    fn lag(&self) -> Option<Vec<(String, u64)>> {
        Some(
            self.members
                .iter()
                .map(|m| (m.topic.name.clone(), m.uncommitted()))
                .collect(),
        )
    }
}

impl InProcessMultiConsumer {
    fn topics(&self) -> String {
        self.members
            .iter()
            .map(|m| m.topic.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Debug for InProcessMultiConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessMultiConsumer")
            .field("topics", &self.topics())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for InProcessConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessConsumer")
            .field("topic", &self.topic.name)
            .field("group", &self.group)
            .field("member", &self.member)
            .finish()
    }
}

struct Topic {
    name: String,
    partitions: u32,
    max_message_bytes: usize,
    retention: Duration,
    /// The bus's journal, for a durable topic of a journaled bus.
    journal: Option<Arc<Journal>>,
    state: Mutex<TopicState>,
}

impl Topic {
    /// Locks the state. No code panics while holding it, so a poisoned lock is still consistent.
    fn lock(&self) -> MutexGuard<'_, TopicState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct TopicState {
    /// Next offset per partition.
    next_offsets: Vec<u64>,
    /// Partition counter for unkeyed messages.
    round_robin: u32,
    /// Groups in creation order; never removed, so consumers keep their index.
    groups: Vec<Group>,
    group_index: HashMap<String, usize>,
    /// Group names in creation order (as `groups`).
    group_names: Vec<String>,
    /// Every group's `notify`, shared so `publish` can wake them after unlocking.
    wakers: Arc<[Arc<Notify>]>,
    next_member: u64,
}

impl TopicState {
    fn add_group(&mut self, name: &str, partitions: u32) -> usize {
        let notify = Arc::new(Notify::new());
        self.groups.push(Group {
            partitions: (0..partitions).map(|_| PartitionQueue::default()).collect(),
            members: 0,
            notify: Arc::clone(&notify),
            cursor: 0,
        });
        let index = self.groups.len() - 1;
        self.group_index.insert(name.to_owned(), index);
        self.group_names.push(name.to_owned());
        self.wakers = self.groups.iter().map(|g| Arc::clone(&g.notify)).collect();
        index
    }
}

struct Group {
    partitions: Vec<PartitionQueue>,
    members: usize,
    notify: Arc<Notify>,
    /// Partition to look at first, rotated for fairness.
    cursor: usize,
}

/// A message in one group's queue, with its journal row when journaled.
struct Queued {
    message: Arc<Message>,
    row: Option<i64>,
}

#[derive(Default)]
struct PartitionQueue {
    /// Waiting messages, by offset.
    queued: VecDeque<Queued>,
    /// Received and not committed, by offset; all at `owner`.
    in_flight: VecDeque<Queued>,
    /// The member with messages in flight (`Some` exactly when `in_flight` is not empty).
    owner: Option<u64>,
    /// Messages below this offset were handed out before (to a member dropped without
    /// committing them): they are delivered again with `redelivered` set.
    redeliver_below: u64,
}

impl PartitionQueue {
    /// The message at `offset`, in flight or queued.
    fn find_mut(&mut self, offset: u64) -> Option<&mut Queued> {
        let at = |v: &VecDeque<Queued>| v.binary_search_by_key(&offset, |q| q.message.offset).ok();
        if let Some(i) = at(&self.in_flight) {
            return self.in_flight.get_mut(i);
        }
        let i = at(&self.queued)?;
        self.queued.get_mut(i)
    }

    /// Drops queued messages older than `retention`; their journal rows.
    fn expire(&mut self, now: Instant, retention: Duration) -> Vec<i64> {
        let mut rows = Vec::new();
        while self
            .queued
            .front()
            .is_some_and(|q| now.saturating_duration_since(q.message.published) > retention)
        {
            if let Some(row) = self.queued.pop_front().and_then(|q| q.row) {
                rows.push(row);
            }
        }
        rows
    }
}

struct Message {
    partition: u32,
    offset: u64,
    key: Option<Bytes>,
    payload: Bytes,
    published: Instant,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// FNV-1a of `key`, modulo `partitions`: stable across runs and platforms.
fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in key {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % partitions.max(1)
}

fn validate_topic_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= MAX_TOPIC_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "The topic name {name:?} is invalid: use 1 to {MAX_TOPIC_NAME} characters from [a-zA-Z0-9._-]."
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use futures::FutureExt;
    use tokio::time::timeout;

    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    async fn bus_with(topic: &str, config: TopicConfig) -> InProcessBus {
        let bus = InProcessBus::new();
        bus.create_topic(topic, &config).await.unwrap();
        bus
    }

    async fn recv(c: &dyn Consumer) -> Delivery {
        timeout(WAIT, c.recv()).await.expect("no message").unwrap()
    }

    async fn publish(bus: &InProcessBus, topic: &str, key: Option<&str>, payload: &'static str) {
        bus.publish(
            topic,
            key.map(str::as_bytes),
            Bytes::from_static(payload.as_bytes()),
        )
        .await
        .unwrap();
    }

    fn stats(bus: &InProcessBus, topic: &str, group: &str) -> (usize, usize, usize) {
        let s = bus.group_stats(topic, group).unwrap();
        (s.queued, s.in_flight, s.members)
    }

    #[tokio::test]
    async fn capabilities_and_names() {
        let bus = InProcessBus::new();
        assert_eq!(bus.capabilities(), BusCapabilities::new(false, true));
        assert_eq!(bus.to_string(), "InProcessBus");
        bus.create_topic("b", &TopicConfig::default())
            .await
            .unwrap();
        bus.create_topic("a", &TopicConfig::default())
            .await
            .unwrap();
        assert_eq!(format!("{bus:?}"), r#"InProcessBus { topics: ["a", "b"] }"#);
        let c = bus.subscribe("a", "g1").await.unwrap();
        let debug = format!("{c:?}");
        assert!(
            debug.contains("topic: \"a\"") && debug.contains("group: \"g1\""),
            "{debug}"
        );
        // A clone is the same bus.
        let clone = bus.clone();
        publish(&clone, "a", None, "via clone").await;
        assert_eq!(recv(&*c).await.payload, "via clone");
    }

    #[tokio::test]
    async fn topic_and_group_names_are_validated() {
        let bus = InProcessBus::new();
        let long = "x".repeat(MAX_TOPIC_NAME);
        for ok in [
            "invoker0",
            "completed12",
            "health",
            "cacheInvalidation",
            "a.b_c-d",
            &long,
        ] {
            bus.create_topic(ok, &TopicConfig::default()).await.unwrap();
        }
        let too_long = "x".repeat(MAX_TOPIC_NAME + 1);
        for bad in ["", "with space", "slash/name", "ümlaut", &too_long] {
            let e = bus
                .create_topic(bad, &TopicConfig::default())
                .await
                .unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}: {e}");
        }
        let e = bus.subscribe("health", "").await.unwrap_err();
        assert_eq!(e.status(), 400);
        let e = bus.subscribe("nope", "g").await.unwrap_err();
        assert!(
            matches!(e, Error::NotFound { ref id } if id == "nope"),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn size_limit_is_inclusive() {
        let config = TopicConfig::default().with_max_message_bytes(8);
        let bus = bus_with("t", config).await;
        let c = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", None, Bytes::from_static(b"12345678"))
            .await
            .unwrap();
        let e = bus
            .publish("t", Some(b"key"), Bytes::from_static(b"123456789"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
        assert_eq!(stats(&bus, "t", "g"), (1, 0, 1));
        assert_eq!(recv(&*c).await.payload, "12345678");
    }

    #[tokio::test]
    async fn create_topic_keeps_the_first_config() {
        let bus = bus_with("t", TopicConfig::default().with_max_message_bytes(4)).await;
        bus.create_topic("t", &TopicConfig::default())
            .await
            .unwrap();
        let e = bus
            .publish("t", None, Bytes::from_static(b"12345"))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 413);
    }

    #[tokio::test]
    async fn zero_partitions_means_one() {
        let mut config = TopicConfig::default();
        config.partitions = 0;
        let bus = bus_with("t", config).await;
        let c = bus.subscribe("t", "g").await.unwrap();
        publish(&bus, "t", Some("k"), "x").await;
        publish(&bus, "t", None, "y").await;
        assert_eq!(recv(&*c).await.partition, 0);
        assert_eq!(recv(&*c).await.partition, 0);
    }

    #[tokio::test]
    async fn groups_see_only_messages_published_after_they_subscribed() {
        let bus = bus_with("t", TopicConfig::default()).await;
        publish(&bus, "t", None, "nobody listens").await;
        let early = bus.subscribe("t", "early").await.unwrap();
        publish(&bus, "t", None, "one").await;
        let late = bus.subscribe("t", "late").await.unwrap();
        publish(&bus, "t", None, "two").await;
        assert_eq!(recv(&*early).await.payload, "one");
        assert_eq!(recv(&*early).await.payload, "two");
        let d = recv(&*late).await;
        assert_eq!(d.payload, "two");
        // Offsets count every message of the partition, also the one nobody got.
        assert_eq!(d.offset, 2);
        assert_eq!(stats(&bus, "t", "early"), (0, 2, 1));
        assert_eq!(stats(&bus, "t", "late"), (0, 1, 1));
    }

    #[tokio::test]
    async fn committed_messages_are_forgotten() {
        let bus = bus_with("t", TopicConfig::default().with_partitions(3)).await;
        let c = bus.subscribe("t", "g").await.unwrap();
        for p in ["a", "b", "c", "d"] {
            publish(&bus, "t", Some(p), p).await;
        }
        assert_eq!(stats(&bus, "t", "g"), (4, 0, 1));
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(recv(&*c).await);
        }
        assert_eq!(stats(&bus, "t", "g"), (0, 4, 1));
        for d in &got {
            c.commit(d).await.unwrap();
        }
        assert_eq!(stats(&bus, "t", "g"), (0, 0, 1));
        // Committing again is a no-op.
        c.commit(&got[0]).await.unwrap();
        assert_eq!(stats(&bus, "t", "g"), (0, 0, 1));
        drop(c);
        assert_eq!(stats(&bus, "t", "g"), (0, 0, 0));
    }

    #[tokio::test]
    async fn commit_rejects_foreign_deliveries() {
        let bus = bus_with("t", TopicConfig::default()).await;
        bus.create_topic("u", &TopicConfig::default())
            .await
            .unwrap();
        let c = bus.subscribe("t", "g").await.unwrap();
        publish(&bus, "t", None, "x").await;
        let d = recv(&*c).await;
        let other_topic = Delivery {
            topic: "u".into(),
            ..d.clone()
        };
        assert_eq!(c.commit(&other_topic).await.unwrap_err().status(), 400);
        let bad_partition = Delivery {
            partition: 7,
            ..d.clone()
        };
        assert_eq!(c.commit(&bad_partition).await.unwrap_err().status(), 400);
        let unknown_offset = Delivery {
            offset: 99,
            ..d.clone()
        };
        c.commit(&unknown_offset).await.unwrap();
        assert_eq!(stats(&bus, "t", "g"), (0, 1, 1));
        c.commit(&d).await.unwrap();
        assert_eq!(stats(&bus, "t", "g"), (0, 0, 1));
    }

    #[tokio::test]
    async fn out_of_order_commit_redelivers_only_the_uncommitted() {
        let bus = bus_with("t", TopicConfig::default()).await;
        let a = bus.subscribe("t", "g").await.unwrap();
        publish(&bus, "t", None, "one").await;
        publish(&bus, "t", None, "two").await;
        let _one = recv(&*a).await;
        let two = recv(&*a).await;
        a.commit(&two).await.unwrap();
        drop(a);
        assert_eq!(stats(&bus, "t", "g"), (1, 0, 0));
        let b = bus.subscribe("t", "g").await.unwrap();
        publish(&bus, "t", None, "three").await;
        let again = recv(&*b).await;
        assert_eq!((again.payload.as_ref(), again.offset), (&b"one"[..], 0));
        assert_eq!(recv(&*b).await.payload, "three");
    }

    #[tokio::test]
    async fn redelivered_messages_come_first_in_offset_order() {
        let bus = bus_with("t", TopicConfig::default()).await;
        let a = bus.subscribe("t", "g").await.unwrap();
        for p in ["m0", "m1", "m2"] {
            publish(&bus, "t", Some("k"), p).await;
        }
        for _ in 0..3 {
            let first = recv(&*a).await;
            assert!(!first.redelivered, "a first delivery is not flagged");
        }
        publish(&bus, "t", Some("k"), "m3").await;
        let b = bus.subscribe("t", "g").await.unwrap();
        // While `a` has messages in flight, the partition is its alone.
        assert!(b.recv().now_or_never().is_none());
        drop(a);
        let mut got = Vec::new();
        for _ in 0..4 {
            let d = recv(&*b).await;
            got.push((
                String::from_utf8_lossy(&d.payload).into_owned(),
                d.offset,
                d.redelivered,
            ));
        }
        // What `a` had in flight comes again flagged; m3 was never handed out.
        let want: Vec<_> = (0..4).map(|i| (format!("m{i}"), i, i < 3)).collect();
        assert_eq!(got, want);
        drop(b);
        // Redelivered once more (b did not commit): still flagged.
        let c = bus.subscribe("t", "g").await.unwrap();
        for i in 0..4 {
            let d = recv(&*c).await;
            assert_eq!((d.offset, d.redelivered), (i, true));
        }
        publish(&bus, "t", Some("k"), "m4").await;
        assert!(!recv(&*c).await.redelivered, "a new message is not flagged");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn busy_partition_waits_for_its_owner_to_commit() {
        let bus = bus_with("t", TopicConfig::default()).await;
        let a = bus.subscribe("t", "g").await.unwrap();
        let b = bus.subscribe("t", "g").await.unwrap();
        publish(&bus, "t", None, "m0").await;
        publish(&bus, "t", None, "m1").await;
        let m0 = recv(&*a).await;
        let waiting = tokio::spawn({
            let b = Arc::clone(&b);
            async move { b.recv().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "b took from a partition a owns");
        a.commit(&m0).await.unwrap();
        let m1 = timeout(WAIT, waiting).await.unwrap().unwrap().unwrap();
        assert_eq!(m1.payload, "m1");
        // The owner itself may take several.
        publish(&bus, "t", None, "m2").await;
        publish(&bus, "t", None, "m3").await;
        assert_eq!(recv(&*b).await.payload, "m2");
        assert_eq!(recv(&*b).await.payload, "m3");
        assert_eq!(stats(&bus, "t", "g"), (0, 3, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recv_wakes_on_publish() {
        let bus = bus_with("t", TopicConfig::default()).await;
        let c = bus.subscribe("t", "g").await.unwrap();
        let waiting = tokio::spawn({
            let c = Arc::clone(&c);
            async move { c.recv().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        publish(&bus, "t", None, "wake").await;
        let d = timeout(WAIT, waiting).await.unwrap().unwrap().unwrap();
        assert_eq!(d.payload, "wake");
    }

    #[tokio::test]
    async fn recv_is_cancel_safe() {
        let bus = bus_with("t", TopicConfig::default()).await;
        let c = bus.subscribe("t", "g").await.unwrap();
        assert!(timeout(Duration::from_millis(10), c.recv()).await.is_err());
        publish(&bus, "t", None, "kept").await;
        assert_eq!(stats(&bus, "t", "g"), (1, 0, 1));
        assert_eq!(recv(&*c).await.payload, "kept");
    }

    #[tokio::test]
    async fn keys_pick_stable_partitions_and_offsets_count_up() {
        let bus = bus_with("t", TopicConfig::default().with_partitions(4)).await;
        let c = bus.subscribe("t", "g").await.unwrap();
        let keys = ["alpha", "beta", "gamma", "delta", "epsilon"];
        for _ in 0..10 {
            for k in keys {
                publish(&bus, "t", Some(k), "x").await;
            }
        }
        let mut partition_of: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
        let mut offsets: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for _ in 0..50 {
            let d = recv(&*c).await;
            c.commit(&d).await.unwrap();
            let key = d.key.clone().unwrap().to_vec();
            assert_eq!(d.partition, partition_for_key(&key, 4));
            assert_eq!(*partition_of.entry(key).or_insert(d.partition), d.partition);
            offsets.entry(d.partition).or_default().push(d.offset);
        }
        for (p, offs) in offsets {
            let want: Vec<u64> = (0..offs.len() as u64).collect();
            assert_eq!(offs, want, "partition {p}");
        }
        assert!(
            partition_of
                .values()
                .any(|p| *p != partition_of[&b"alpha"[..].to_vec()])
        );
    }

    #[tokio::test]
    async fn unkeyed_messages_go_round_robin() {
        let bus = bus_with("t", TopicConfig::default().with_partitions(3)).await;
        let c = bus.subscribe("t", "g").await.unwrap();
        for _ in 0..6 {
            publish(&bus, "t", None, "x").await;
        }
        let mut per_partition = [0; 3];
        for _ in 0..6 {
            per_partition[recv(&*c).await.partition as usize] += 1;
        }
        assert_eq!(per_partition, [2, 2, 2]);
    }

    #[tokio::test]
    async fn queued_messages_expire_after_retention_but_in_flight_ones_do_not() {
        let config = TopicConfig::default().with_retention(Duration::from_millis(5));
        let bus = bus_with("t", config).await;
        let a = bus.subscribe("t", "g").await.unwrap();
        publish(&bus, "t", None, "in flight").await;
        publish(&bus, "t", None, "expires").await;
        assert_eq!(recv(&*a).await.payload, "in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
        publish(&bus, "t", None, "fresh").await;
        assert_eq!(stats(&bus, "t", "g"), (1, 1, 1));
        drop(a);
        let b = bus.subscribe("t", "g").await.unwrap();
        assert_eq!(recv(&*b).await.payload, "in flight");
        assert_eq!(recv(&*b).await.payload, "fresh");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_handle_shared_by_tasks() {
        let bus = bus_with("t", TopicConfig::default()).await;
        let c = bus.subscribe("t", "g").await.unwrap();
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let c = Arc::clone(&c);
                tokio::spawn(async move {
                    let d = c.recv().await?;
                    c.commit(&d).await?;
                    Ok::<_, Error>(d.offset)
                })
            })
            .collect();
        publish(&bus, "t", None, "a").await;
        publish(&bus, "t", None, "b").await;
        let mut offsets = Vec::new();
        for t in tasks {
            offsets.push(timeout(WAIT, t).await.unwrap().unwrap().unwrap());
        }
        offsets.sort_unstable();
        assert_eq!(offsets, [0, 1]);
        assert_eq!(stats(&bus, "t", "g"), (0, 0, 1));
    }

    /// Members that crash (drop without committing) and come back, racing with publishers:
    /// every message is committed at least once per group, nothing is left behind, and no
    /// member ever sees a key's messages out of order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crashing_members_lose_nothing() {
        let bus = bus_with("t", TopicConfig::default().with_partitions(4)).await;
        let n: u64 = 400;
        let groups = ["g0", "g1"];
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut workers = Vec::new();
        for group in groups {
            // Subscribe before publishing so every group gets every message.
            let mut first = Vec::new();
            for _ in 0..3 {
                first.push(bus.subscribe("t", group).await.unwrap());
            }
            for (w, consumer) in first.into_iter().enumerate() {
                let (bus, tx) = (bus.clone(), tx.clone());
                workers.push(tokio::spawn(async move {
                    let mut consumer = consumer;
                    let mut last: HashMap<Bytes, u64> = HashMap::new();
                    for i in 0u64.. {
                        let d = consumer.recv().await.unwrap();
                        let key = d.key.clone().unwrap();
                        let seq: u64 = std::str::from_utf8(&d.payload).unwrap().parse().unwrap();
                        if let Some(prev) = last.insert(key, seq) {
                            assert!(seq > prev, "{group}/{w}: {seq} after {prev}");
                        }
                        if (i + w as u64) % 7 == 3 {
                            // Crash: drop without committing, come back as a new member.
                            consumer = bus.subscribe("t", group).await.unwrap();
                            last.clear();
                            continue;
                        }
                        consumer.commit(&d).await.unwrap();
                        if tx.send((group, d.key.clone(), d.payload)).is_err() {
                            return;
                        }
                    }
                }));
            }
        }
        for i in 0..n {
            let key = format!("k{}", i % 5);
            let seq = i / 5;
            bus.publish("t", Some(key.as_bytes()), Bytes::from(seq.to_string()))
                .await
                .unwrap();
            if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        drop(tx);
        let mut committed: BTreeMap<&str, std::collections::BTreeSet<(Option<Bytes>, Bytes)>> =
            BTreeMap::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while committed.values().map(|s| s.len() as u64).sum::<u64>() < 2 * n {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((group, key, payload))) => {
                    committed.entry(group).or_default().insert((key, payload));
                }
                _ => break,
            }
        }
        for w in &workers {
            w.abort();
        }
        for w in workers {
            if let Err(e) = w.await {
                assert!(e.is_cancelled(), "a worker failed: {e}");
            }
        }
        for g in groups {
            assert_eq!(
                committed[g].len() as u64,
                n,
                "{g}: not every message was committed"
            );
        }
        for g in groups {
            let s = bus.group_stats("t", g).unwrap();
            assert_eq!((s.queued, s.in_flight), (0, 0), "{g}");
        }
    }
}
