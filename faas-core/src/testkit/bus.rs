//! The [`MessageBus`] conformance suite.
//!
//! Every case takes an `Arc<dyn MessageBus>`, works on topics and groups with a random suffix
//! (so cases may run concurrently against one shared broker) and panics with a message saying
//! which part of the contract in [`crate::bus`] was broken. Cases that need an optional
//! guarantee read [`MessageBus::capabilities`] and return early without it; none looks at the
//! adapter's name.
//!
//! Waits for an expected message are bounded by [`DELIVERY_TIMEOUT`] (generous: a Kafka
//! consumer-group join takes seconds); checks that nothing more arrives watch for
//! [`QUIET_PERIOD`]. Against an in-process bus every case finishes in well under a second.
//!
//! Run the whole suite with [`bus_conformance!`](crate::bus_conformance):
//!
//! ```text
//! async fn setup() -> Option<std::sync::Arc<dyn faas_core::MessageBus>> {
//!     Some(std::sync::Arc::new(MyBus::connect().await?))   // None skips the case
//! }
//! faas_core::bus_conformance!(setup);
//! ```
//!
//! The macro expands to one `#[tokio::test(flavor = "multi_thread")]` per case, so the calling
//! crate needs `tokio` (features `macros`, `rt-multi-thread`) among its dev-dependencies.
//!
//! # What the suite assumes beyond the trait contract
//!
//! * Offsets of messages published one after another (each `publish` awaited) to the same
//!   partition increase.
//! * A consumer shared by several tasks may be dropped by the last of them; the suite never
//!   cancels a `recv` whose message it still needs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};

use crate::Error;
use crate::bus::{Consumer, Delivery, MessageBus, TopicConfig};

/// The longest a case waits for a message it expects (or for all messages of a batch).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a case watches for messages it must not receive (duplicates).
pub const QUIET_PERIOD: Duration = Duration::from_millis(200);

/// `dyn MessageBus` shared with spawned tasks.
type Bus = Arc<dyn MessageBus>;

/// What a member task reports: which member, what it got; or why it stopped.
type Report = Result<(usize, Delivery), String>;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A topic or group name unique to one run of one case (Kafka-valid: the parts use only `[a-z0-9-]`).
fn unique(what: &str) -> String {
    format!("faas-conformance-{what}-{:016x}", rand::random::<u64>())
}

/// Creates a fresh topic for `case` with `config`.
async fn new_topic(bus: &dyn MessageBus, case: &str, config: TopicConfig) -> String {
    let topic = unique(case);
    if let Err(e) = bus.create_topic(&topic, &config).await {
        panic!("{case}: create_topic({topic}) failed: {e}");
    }
    topic
}

async fn subscribe(bus: &dyn MessageBus, topic: &str, group: &str) -> Arc<dyn Consumer> {
    match bus.subscribe(topic, group).await {
        Ok(c) => c,
        Err(e) => panic!("subscribe({topic}, {group}) failed: {e}"),
    }
}

async fn publish(bus: &dyn MessageBus, topic: &str, key: Option<&str>, payload: impl Into<Bytes>) {
    let payload = payload.into();
    if let Err(e) = bus
        .publish(topic, key.map(str::as_bytes), payload.clone())
        .await
    {
        panic!("publish({topic}, {payload:?}) failed: {e}");
    }
}

/// The next message for `consumer`, within [`DELIVERY_TIMEOUT`].
async fn recv(consumer: &dyn Consumer, what: &str) -> Delivery {
    match timeout(DELIVERY_TIMEOUT, consumer.recv()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => panic!("{what}: recv failed: {e}"),
        Err(_) => panic!("{what}: no message within {DELIVERY_TIMEOUT:?}"),
    }
}

async fn commit(consumer: &dyn Consumer, delivery: &Delivery) {
    if let Err(e) = consumer.commit(delivery).await {
        panic!("commit of {delivery:?} failed: {e}");
    }
}

fn text(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.payload).into_owned()
}

/// Member tasks that receive until aborted; aborted on drop, so a failing case stops them.
struct Members {
    tasks: Vec<JoinHandle<()>>,
    rx: mpsc::UnboundedReceiver<Report>,
    tx: mpsc::UnboundedSender<Report>,
}

impl Members {
    fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tasks: Vec::new(),
            rx,
            tx,
        }
    }

    /// Starts member `id`: it receives from `consumer` in a loop, commits each delivery if
    /// `commit`, and reports it.
    fn spawn(&mut self, id: usize, consumer: Arc<dyn Consumer>, commit: bool) {
        let tx = self.tx.clone();
        self.tasks.push(tokio::spawn(async move {
            loop {
                let d = match consumer.recv().await {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = tx.send(Err(format!("member {id}: recv failed: {e}")));
                        return;
                    }
                };
                if commit && let Err(e) = consumer.commit(&d).await {
                    let _ = tx.send(Err(format!("member {id}: commit failed: {e}")));
                    return;
                }
                if tx.send(Ok((id, d))).is_err() {
                    return;
                }
            }
        }));
    }

    /// Starts member `id`: it receives one message from `consumer` without committing,
    /// reports it and drops its handle.
    fn spawn_once(&mut self, id: usize, consumer: Arc<dyn Consumer>) {
        let tx = self.tx.clone();
        self.tasks.push(tokio::spawn(async move {
            let r = consumer.recv().await;
            drop(consumer);
            let _ = tx.send(
                r.map(|d| (id, d))
                    .map_err(|e| format!("member {id}: recv failed: {e}")),
            );
        }));
    }

    /// Waits until the `index`th task has finished (and so dropped its consumer handle).
    async fn join(&mut self, what: &str, index: usize) {
        let Some(task) = self.tasks.get_mut(index) else {
            panic!("{what}: no member task {index}");
        };
        match timeout(DELIVERY_TIMEOUT, task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{what}: member task {index} failed: {e}"),
            Err(_) => panic!("{what}: member task {index} did not finish"),
        }
    }

    /// Collects reports until `done` holds for what was received (in arrival order), within
    /// [`DELIVERY_TIMEOUT`].
    async fn collect(
        &mut self,
        what: &str,
        mut done: impl FnMut(&[(usize, Delivery)]) -> bool,
    ) -> Vec<(usize, Delivery)> {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        let mut got = Vec::new();
        while !done(&got) {
            match timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Ok(r))) => got.push(r),
                Ok(Some(Err(e))) => panic!("{what}: {e}"),
                Ok(None) => panic!("{what}: all members stopped"),
                Err(_) => panic!(
                    "{what}: incomplete after {DELIVERY_TIMEOUT:?}; received {} messages: {:?}",
                    got.len(),
                    got.iter().map(|(m, d)| (*m, text(d))).collect::<Vec<_>>()
                ),
            }
        }
        got
    }

    /// Waits [`QUIET_PERIOD`] and appends whatever arrived meanwhile.
    async fn settle(&mut self, what: &str, got: &mut Vec<(usize, Delivery)>) {
        tokio::time::sleep(QUIET_PERIOD).await;
        while let Ok(r) = self.rx.try_recv() {
            match r {
                Ok(r) => got.push(r),
                Err(e) => panic!("{what}: {e}"),
            }
        }
    }
}

impl Drop for Members {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How many times each payload was received.
fn counts<'a>(got: impl IntoIterator<Item = &'a Delivery>) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for d in got {
        *n.entry(text(d)).or_insert(0) += 1;
    }
    n
}

/// Whether every payload in `want` was received.
fn has_all(got: &[(usize, Delivery)], want: &BTreeSet<String>, member_filter: &[usize]) -> bool {
    let seen: BTreeSet<String> = got
        .iter()
        .filter(|(m, _)| member_filter.contains(m))
        .map(|(_, d)| text(d))
        .collect();
    want.is_subset(&seen)
}

/// Asserts that each member saw every key's `key:seq` payloads in increasing `seq` (repeats of
/// a payload the member already had are ignored: redelivery is allowed), and that all
/// messages with one key came from one partition.
fn assert_per_key_order(what: &str, got: &[(usize, Delivery)]) {
    let mut last: HashMap<(usize, String), u64> = HashMap::new();
    let mut seen: BTreeSet<(usize, String)> = BTreeSet::new();
    let mut partition_of: HashMap<Option<Bytes>, u32> = HashMap::new();
    for (member, d) in got {
        let partition = *partition_of.entry(d.key.clone()).or_insert(d.partition);
        assert_eq!(
            partition, d.partition,
            "{what}: messages with key {:?} came from partitions {partition} and {}",
            d.key, d.partition
        );
        let payload = text(d);
        if !seen.insert((*member, payload.clone())) {
            continue;
        }
        let Some((key, seq)) = payload.split_once(':') else {
            panic!("{what}: unexpected payload {payload:?}");
        };
        let seq: u64 = seq
            .parse()
            .unwrap_or_else(|_| panic!("{what}: unexpected payload {payload:?}"));
        let expected_key = d.key.as_deref().map(String::from_utf8_lossy);
        assert_eq!(
            expected_key.as_deref(),
            Some(key),
            "{what}: delivery {payload:?} came with the wrong key"
        );
        if let Some(prev) = last.insert((*member, key.to_string()), seq) {
            assert!(
                seq > prev,
                "{what}: member {member} got {key}:{seq} after {key}:{prev} (publish order broken)"
            );
        }
    }
}

fn expect_not_found<T: std::fmt::Debug>(what: &str, r: crate::Result<T>) {
    match r {
        Err(e @ Error::NotFound { .. }) => assert_eq!(e.status(), 404, "{what}"),
        other => panic!("{what}: expected Error::NotFound, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// `create_topic` on an existing topic succeeds and keeps the topic, its groups and their
/// messages.
pub async fn create_topic_is_idempotent(bus: Bus) {
    let case = "create_topic_is_idempotent";
    let config = TopicConfig::default();
    let topic = new_topic(&*bus, "idempotent", config.clone()).await;
    if let Err(e) = bus.create_topic(&topic, &config).await {
        panic!("{case}: second create_topic failed: {e}");
    }
    let consumer = subscribe(&*bus, &topic, &unique("group")).await;
    publish(&*bus, &topic, None, "before").await;
    if let Err(e) = bus.create_topic(&topic, &config).await {
        panic!("{case}: create_topic with a live group failed: {e}");
    }
    publish(&*bus, &topic, None, "after").await;
    let first = recv(&*consumer, case).await;
    commit(&*consumer, &first).await;
    let second = recv(&*consumer, case).await;
    commit(&*consumer, &second).await;
    assert_eq!(
        [text(&first), text(&second)],
        ["before", "after"],
        "{case}: re-creating the topic lost or reordered messages"
    );
}

/// Publishing to and subscribing to a topic that was never created is `NotFound`.
pub async fn missing_topic_is_not_found(bus: Bus) {
    let topic = unique("missing");
    expect_not_found(
        "publish to a missing topic",
        bus.publish(&topic, None, Bytes::from_static(b"x")).await,
    );
    expect_not_found(
        "publish with a key to a missing topic",
        bus.publish(&topic, Some(b"k"), Bytes::from_static(b"x"))
            .await,
    );
    expect_not_found(
        "subscribe to a missing topic",
        bus.subscribe(&topic, &unique("group")).await,
    );
}

/// A payload over the topic's `max_message_bytes` is `TooLarge` (413) and is never delivered;
/// a smaller one on the same topic goes through.
pub async fn oversized_payload_is_rejected(bus: Bus) {
    let case = "oversized_payload_is_rejected";
    let max = 4096;
    let topic = new_topic(
        &*bus,
        "too-large",
        TopicConfig::default().with_max_message_bytes(max),
    )
    .await;
    let consumer = subscribe(&*bus, &topic, &unique("group")).await;
    for size in [max + 1, 10 * max] {
        match bus
            .publish(&topic, None, Bytes::from(vec![b'x'; size]))
            .await
        {
            Err(e @ Error::TooLarge { .. }) => assert_eq!(e.status(), 413, "{case}"),
            other => panic!(
                "{case}: publishing {size} bytes (max {max}): expected TooLarge, got {other:?}"
            ),
        }
    }
    match bus
        .publish(&topic, Some(b"k"), Bytes::from(vec![b'y'; max + 1]))
        .await
    {
        Err(Error::TooLarge { .. }) => {}
        other => panic!("{case}: keyed oversized publish: expected TooLarge, got {other:?}"),
    }
    let fits = Bytes::from(vec![b'z'; max / 2]);
    publish(&*bus, &topic, None, fits.clone()).await;
    let d = recv(&*consumer, case).await;
    commit(&*consumer, &d).await;
    assert_eq!(
        d.payload.len(),
        fits.len(),
        "{case}: a rejected payload was delivered"
    );
    assert_eq!(d.payload, fits, "{case}: payload changed in transit");
}

/// What was published comes back: topic, key, payload (also empty and non-UTF-8 payloads),
/// partition within range, increasing offsets.
pub async fn publish_then_recv_roundtrip(bus: Bus) {
    let case = "publish_then_recv_roundtrip";
    let topic = new_topic(&*bus, "roundtrip", TopicConfig::default()).await;
    let consumer = subscribe(&*bus, &topic, &unique("group")).await;
    let binary = Bytes::from_static(&[0, 159, 146, 150, 255]);
    bus.publish(&topic, Some(b"key-1"), Bytes::from_static(b"first"))
        .await
        .unwrap_or_else(|e| panic!("{case}: publish failed: {e}"));
    bus.publish(&topic, None, Bytes::new())
        .await
        .unwrap_or_else(|e| panic!("{case}: publish of an empty payload failed: {e}"));
    bus.publish(&topic, Some(b"\x00\xff"), binary.clone())
        .await
        .unwrap_or_else(|e| panic!("{case}: publish failed: {e}"));

    let mut got = Vec::new();
    for _ in 0..3 {
        let d = recv(&*consumer, case).await;
        commit(&*consumer, &d).await;
        got.push(d);
    }
    for d in &got {
        assert_eq!(d.topic, topic, "{case}: wrong topic in {d:?}");
        assert_eq!(d.partition, 0, "{case}: one-partition topic, got {d:?}");
    }
    let find = |payload: &[u8]| {
        got.iter()
            .find(|d| d.payload == payload)
            .unwrap_or_else(|| panic!("{case}: {payload:?} not received; got {got:?}"))
    };
    let first = find(b"first");
    let empty = find(b"");
    let bin = find(&binary);
    assert_eq!(
        first.key.as_deref(),
        Some(&b"key-1"[..]),
        "{case}: key lost"
    );
    assert_eq!(
        empty.key, None,
        "{case}: a key appeared on an unkeyed message"
    );
    assert_eq!(
        bin.key.as_deref(),
        Some(&b"\x00\xff"[..]),
        "{case}: binary key changed"
    );
    assert!(
        first.offset < empty.offset && empty.offset < bin.offset,
        "{case}: offsets do not follow publish order: {got:?}"
    );
}

/// `publish_deferred` delivers like `publish`, in publish order with it, to every group;
/// `persist` succeeds before and after the groups commit, and twice.
pub async fn deferred_publish_is_delivered_like_publish(bus: Bus) {
    let case = "deferred_publish_is_delivered_like_publish";
    let topic = new_topic(&*bus, "deferred", TopicConfig::default()).await;
    let a = subscribe(&*bus, &topic, &unique("group")).await;
    let b = subscribe(&*bus, &topic, &unique("group")).await;
    let first = bus
        .publish_deferred(&topic, Some(b"k"), Bytes::from_static(b"one"))
        .await
        .unwrap_or_else(|e| panic!("{case}: publish_deferred failed: {e}"));
    assert_eq!(first.topic, topic, "{case}: {first:?}");
    bus.persist(&first)
        .await
        .unwrap_or_else(|e| panic!("{case}: persist while queued failed: {e}"));
    bus.publish(&topic, Some(b"k"), Bytes::from_static(b"two"))
        .await
        .unwrap_or_else(|e| panic!("{case}: publish failed: {e}"));
    let third = bus
        .publish_deferred(&topic, Some(b"k"), Bytes::from_static(b"three"))
        .await
        .unwrap_or_else(|e| panic!("{case}: publish_deferred failed: {e}"));
    for consumer in [&a, &b] {
        let mut got = Vec::new();
        for _ in 0..3 {
            let d = recv(&**consumer, case).await;
            commit(&**consumer, &d).await;
            got.push(d);
        }
        let payloads: Vec<&[u8]> = got.iter().map(|d| d.payload.as_ref()).collect();
        assert_eq!(
            payloads,
            [&b"one"[..], b"two", b"three"],
            "{case}: deferred and plain publishes out of order"
        );
        assert!(
            got.iter().all(|d| d.key.as_deref() == Some(&b"k"[..])),
            "{case}: key lost: {got:?}"
        );
        if let Ok(extra) = timeout(QUIET_PERIOD, consumer.recv()).await {
            panic!("{case}: unexpected message {extra:?}");
        }
    }
    for _ in 0..2 {
        bus.persist(&third)
            .await
            .unwrap_or_else(|e| panic!("{case}: persist after the commits failed: {e}"));
    }
    let e = bus
        .publish_deferred(&unique("missing"), None, Bytes::from_static(b"x"))
        .await;
    assert!(
        matches!(e, Err(crate::Error::NotFound { .. })),
        "{case}: a deferred publish to a missing topic must be NotFound, got {e:?}"
    );
}

/// One group, two live members that commit: every message reaches exactly one of them.
pub async fn group_members_share_messages(bus: Bus) {
    let case = "group_members_share_messages";
    let n = 50;
    let topic = new_topic(&*bus, "share", TopicConfig::default().with_partitions(2)).await;
    let group = unique("group");
    let mut members = Members::new();
    for id in 0..2 {
        members.spawn(id, subscribe(&*bus, &topic, &group).await, true);
    }
    let want: BTreeSet<String> = (0..n).map(|i| format!("m{i}")).collect();
    for p in &want {
        publish(&*bus, &topic, None, p.clone()).await;
    }
    let mut got = members
        .collect(case, |got| has_all(got, &want, &[0, 1]))
        .await;
    members.settle(case, &mut got).await;
    let counts = counts(got.iter().map(|(_, d)| d));
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dups.is_empty(),
        "{case}: messages delivered more than once within one group: {dups:?}"
    );
    let extra: Vec<_> = counts.keys().filter(|p| !want.contains(*p)).collect();
    assert!(extra.is_empty(), "{case}: unexpected messages {extra:?}");
}

/// Two groups on one topic each receive every message.
pub async fn every_group_sees_every_message(bus: Bus) {
    let case = "every_group_sees_every_message";
    let n = 20;
    let topic = new_topic(&*bus, "fanout", TopicConfig::default()).await;
    let mut members = Members::new();
    for id in 0..2 {
        members.spawn(id, subscribe(&*bus, &topic, &unique("group")).await, true);
    }
    let want: BTreeSet<String> = (0..n).map(|i| format!("m{i}")).collect();
    for p in &want {
        publish(&*bus, &topic, Some("k"), p.clone()).await;
    }
    let mut got = members
        .collect(case, |got| {
            has_all(got, &want, &[0]) && has_all(got, &want, &[1])
        })
        .await;
    members.settle(case, &mut got).await;
    for id in 0..2 {
        let counts = counts(got.iter().filter(|(m, _)| *m == id).map(|(_, d)| d));
        assert!(
            counts.values().all(|n| *n == 1) && counts.len() == want.len(),
            "{case}: group {id} received {counts:?}"
        );
    }
}

/// A group receives everything published after it subscribed, also when it joins a topic
/// that other groups already use (it may also get older messages from a durable adapter).
pub async fn group_receives_messages_published_after_subscribe(bus: Bus) {
    let case = "group_receives_messages_published_after_subscribe";
    let topic = new_topic(
        &*bus,
        "late-group",
        TopicConfig::default().with_partitions(2),
    )
    .await;
    let mut members = Members::new();
    members.spawn(0, subscribe(&*bus, &topic, &unique("early")).await, true);
    let early: BTreeSet<String> = (0..10).map(|i| format!("early{i}")).collect();
    for p in &early {
        publish(&*bus, &topic, None, p.clone()).await;
    }
    members.spawn(1, subscribe(&*bus, &topic, &unique("late")).await, true);
    let late: BTreeSet<String> = (0..10).map(|i| format!("late{i}")).collect();
    for p in &late {
        publish(&*bus, &topic, None, p.clone()).await;
    }
    let all: BTreeSet<String> = early.union(&late).cloned().collect();
    let got = members
        .collect(case, |got| {
            has_all(got, &all, &[0]) && has_all(got, &late, &[1])
        })
        .await;
    for (m, d) in &got {
        assert!(
            all.contains(&text(d)),
            "{case}: member {m} got unexpected {d:?}"
        );
    }
}

/// A message received but not committed by a member that is then dropped is delivered to
/// the next member of the group.
pub async fn uncommitted_message_is_redelivered_to_new_member(bus: Bus) {
    let case = "uncommitted_message_is_redelivered_to_new_member";
    let topic = new_topic(&*bus, "redeliver-new", TopicConfig::default()).await;
    let group = unique("group");
    let first = subscribe(&*bus, &topic, &group).await;
    publish(&*bus, &topic, Some("k"), "unacked").await;
    let d = recv(&*first, case).await;
    assert_eq!(text(&d), "unacked", "{case}");
    drop(first);

    let second = subscribe(&*bus, &topic, &group).await;
    let again = recv(&*second, case).await;
    commit(&*second, &again).await;
    assert_eq!(
        text(&again),
        "unacked",
        "{case}: the new member did not get the uncommitted message first"
    );
    assert_eq!(again.key.as_deref(), Some(&b"k"[..]), "{case}: key lost");
    assert!(
        again.redelivered,
        "{case}: a redelivery must be flagged (consumers skip duplicate checks otherwise)"
    );
}

/// Two live members: the one that receives a message and is dropped without committing
/// loses it to the other.
pub async fn uncommitted_message_is_redelivered_to_other_member(bus: Bus) {
    let case = "uncommitted_message_is_redelivered_to_other_member";
    let topic = new_topic(&*bus, "redeliver-other", TopicConfig::default()).await;
    let group = unique("group");
    let mut consumers = [
        Some(subscribe(&*bus, &topic, &group).await),
        Some(subscribe(&*bus, &topic, &group).await),
    ];
    // Each member receives once, in its own task, and never commits.
    let mut members = Members::new();
    for (id, consumer) in consumers.iter().enumerate() {
        if let Some(c) = consumer {
            members.spawn_once(id, Arc::clone(c));
        }
    }
    publish(&*bus, &topic, None, "unacked").await;
    let got = members.collect(case, |got| !got.is_empty()).await;
    let (winner, d) = &got[0];
    let winner = *winner;
    assert_eq!(text(d), "unacked", "{case}");
    // Drop the winner: its task's clone, then ours.
    members.join(case, winner).await;
    consumers[winner] = None;

    let got = members.collect(case, |got| !got.is_empty()).await;
    let (other, again) = &got[0];
    assert_ne!(*other, winner, "{case}");
    assert_eq!(text(again), "unacked", "{case}: redelivered something else");
    assert!(again.redelivered, "{case}: a redelivery must be flagged");
    if let Some(c) = consumers[*other].as_deref() {
        commit(c, again).await;
    }
}

/// Committed messages are not delivered again to a later member of the same group.
pub async fn committed_message_is_not_redelivered(bus: Bus) {
    let case = "committed_message_is_not_redelivered";
    let topic = new_topic(&*bus, "committed", TopicConfig::default()).await;
    let group = unique("group");
    let first = subscribe(&*bus, &topic, &group).await;
    publish(&*bus, &topic, None, "one").await;
    publish(&*bus, &topic, None, "two").await;
    for _ in 0..2 {
        let d = recv(&*first, case).await;
        commit(&*first, &d).await;
    }
    drop(first);

    let second = subscribe(&*bus, &topic, &group).await;
    publish(&*bus, &topic, None, "three").await;
    let d = recv(&*second, case).await;
    commit(&*second, &d).await;
    assert_eq!(
        text(&d),
        "three",
        "{case}: a committed message was delivered again"
    );
}

/// Commits out of order (2 before 1), then the member is dropped: message 1 is delivered
/// again (message 2 may be too: Kafka commits only up to the lowest unacknowledged offset).
pub async fn out_of_order_commit_redelivers_uncommitted(bus: Bus) {
    let case = "out_of_order_commit_redelivers_uncommitted";
    let topic = new_topic(&*bus, "out-of-order", TopicConfig::default()).await;
    let group = unique("group");
    let first = subscribe(&*bus, &topic, &group).await;
    publish(&*bus, &topic, None, "one").await;
    publish(&*bus, &topic, None, "two").await;
    let a = recv(&*first, case).await;
    let b = recv(&*first, case).await;
    let (one, two) = match (text(&a).as_str(), text(&b).as_str()) {
        ("one", "two") => (a, b),
        ("two", "one") => (b, a),
        _ => panic!("{case}: expected one and two, got {a:?} and {b:?}"),
    };
    commit(&*first, &two).await;
    drop(one);
    drop(first);

    let second = subscribe(&*bus, &topic, &group).await;
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let d = match timeout_at(deadline, second.recv()).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => panic!("{case}: recv failed: {e}"),
            Err(_) => panic!("{case}: the uncommitted message was not redelivered"),
        };
        commit(&*second, &d).await;
        match text(&d).as_str() {
            "one" => {
                assert!(d.redelivered, "{case}: a redelivery must be flagged");
                break;
            }
            "two" => continue,
            other => panic!("{case}: unexpected message {other:?}"),
        }
    }
}

/// With `ordered_per_key`: messages with one key reach every member in publish order, for a
/// one-member group and a two-member group, on a topic with several partitions.
pub async fn same_key_keeps_publish_order(bus: Bus) {
    let case = "same_key_keeps_publish_order";
    if !bus.capabilities().ordered_per_key {
        eprintln!("{case}: not applicable (ordered_per_key is false)");
        return;
    }
    let topic = new_topic(&*bus, "order", TopicConfig::default().with_partitions(3)).await;
    let solo = unique("solo");
    let pair = unique("pair");
    let mut members = Members::new();
    members.spawn(0, subscribe(&*bus, &topic, &solo).await, true);
    members.spawn(1, subscribe(&*bus, &topic, &pair).await, true);
    members.spawn(2, subscribe(&*bus, &topic, &pair).await, true);
    let keys = 5;
    let per_key = 20;
    let mut want = BTreeSet::new();
    for seq in 0..per_key {
        for k in 0..keys {
            let key = format!("key{k}");
            let payload = format!("{key}:{seq}");
            publish(&*bus, &topic, Some(&key), payload.clone()).await;
            want.insert(payload);
        }
    }
    let got = members
        .collect(case, |got| {
            has_all(got, &want, &[0]) && has_all(got, &want, &[1, 2])
        })
        .await;
    assert_per_key_order(case, &got);
}

/// With `ordered_per_key`: a member dropped with messages in flight does not break key order.
/// Member A takes the first message of a key and holds it; member B joins and receives; when A
/// is dropped, B must still see the key's messages in publish order (on Kafka B starts at the
/// committed offset; an in-process bus must not let B overtake A's uncommitted message).
pub async fn redelivery_keeps_key_order(bus: Bus) {
    let case = "redelivery_keeps_key_order";
    if !bus.capabilities().ordered_per_key {
        eprintln!("{case}: not applicable (ordered_per_key is false)");
        return;
    }
    let topic = new_topic(&*bus, "redelivery-order", TopicConfig::default()).await;
    let group = unique("group");
    let a = subscribe(&*bus, &topic, &group).await;
    let want: BTreeSet<String> = (0..10).map(|seq| format!("key:{seq}")).collect();
    for seq in 0..10 {
        publish(&*bus, &topic, Some("key"), format!("key:{seq}")).await;
    }
    let first = recv(&*a, case).await;
    assert_eq!(
        text(&first),
        "key:0",
        "{case}: the first message came out of order"
    );
    let mut members = Members::new();
    members.spawn(1, subscribe(&*bus, &topic, &group).await, true);
    // Give B time to take what it may, then drop A without committing.
    tokio::time::sleep(QUIET_PERIOD).await;
    drop(a);
    let got = members.collect(case, |got| has_all(got, &want, &[1])).await;
    assert_per_key_order(case, &got);
}

/// Four tasks publishing 50 messages each at the same time: every message is delivered
/// exactly once (and, with `ordered_per_key`, each task's messages in its order).
pub async fn concurrent_publishers_are_all_delivered(bus: Bus) {
    let case = "concurrent_publishers_are_all_delivered";
    let (tasks, per_task) = (4, 50);
    let topic = new_topic(
        &*bus,
        "concurrent",
        TopicConfig::default().with_partitions(2),
    )
    .await;
    let mut members = Members::new();
    members.spawn(0, subscribe(&*bus, &topic, &unique("group")).await, true);
    let mut publishers = Vec::new();
    for t in 0..tasks {
        let bus = Arc::clone(&bus);
        let topic = topic.clone();
        publishers.push(tokio::spawn(async move {
            let key = format!("task{t}");
            for seq in 0..per_task {
                let payload = Bytes::from(format!("{key}:{seq}"));
                bus.publish(&topic, Some(key.as_bytes()), payload)
                    .await
                    .map_err(|e| format!("task {t}: publish {seq} failed: {e}"))?;
            }
            Ok::<(), String>(())
        }));
    }
    for p in publishers {
        match timeout(DELIVERY_TIMEOUT, p).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("{case}: {e}"),
            Ok(Err(e)) => panic!("{case}: publisher task failed: {e}"),
            Err(_) => panic!("{case}: publishing took over {DELIVERY_TIMEOUT:?}"),
        }
    }
    let want: BTreeSet<String> = (0..tasks)
        .flat_map(|t| (0..per_task).map(move |s| format!("task{t}:{s}")))
        .collect();
    let mut got = members.collect(case, |got| has_all(got, &want, &[0])).await;
    members.settle(case, &mut got).await;
    let counts = counts(got.iter().map(|(_, d)| d));
    assert_eq!(counts.len(), want.len(), "{case}: unexpected messages");
    assert!(
        counts.values().all(|n| *n == 1),
        "{case}: duplicates: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    if bus.capabilities().ordered_per_key {
        assert_per_key_order(case, &got);
    }
}

/// Expands to one `#[tokio::test]` per case of the [`MessageBus`] conformance suite
/// ([`testkit::bus`](crate::testkit::bus)).
///
/// `$setup` is an `async fn() -> Option<Arc<dyn MessageBus>>`, called once per case; `None`
/// skips the case through [`testkit::skip`](crate::testkit::skip) (a failure under
/// `FAAS_REQUIRE_SERVICES=1`). The tests run on a two-thread runtime; the calling crate needs
/// `tokio` with `macros` and `rt-multi-thread` and should invoke the macro in its own test
/// file or module (it defines one function per case name).
///
/// ```text
/// async fn setup() -> Option<std::sync::Arc<dyn faas_core::MessageBus>> {
///     Some(std::sync::Arc::new(faas_bus::InProcessBus::new()))
/// }
/// faas_core::bus_conformance!(setup);
/// ```
#[macro_export]
macro_rules! bus_conformance {
    ($setup:path) => {
        $crate::__bus_conformance_cases!(
            $setup;
            create_topic_is_idempotent,
            missing_topic_is_not_found,
            oversized_payload_is_rejected,
            publish_then_recv_roundtrip,
            deferred_publish_is_delivered_like_publish,
            group_members_share_messages,
            every_group_sees_every_message,
            group_receives_messages_published_after_subscribe,
            uncommitted_message_is_redelivered_to_new_member,
            uncommitted_message_is_redelivered_to_other_member,
            committed_message_is_not_redelivered,
            out_of_order_commit_redelivers_uncommitted,
            same_key_keeps_publish_order,
            redelivery_keeps_key_order,
            concurrent_publishers_are_all_delivered,
            one_member_on_many_topics,
            background_member_on_many_topics,
        );
    };
}

/// One member of a group on several topics (`subscribe_topics`): it receives every topic's
/// messages, each delivery names its topic, commits of any topic hold, and what it left
/// uncommitted goes to the next member, flagged, while another group on one of the topics
/// sees that topic alone.
pub async fn one_member_on_many_topics(bus: Bus) {
    many_topics(bus, "one_member_on_many_topics", false).await;
}

/// The same as [`one_member_on_many_topics`] for a background member (`subscribe_background`):
/// its messages may come later, never fewer.
pub async fn background_member_on_many_topics(bus: Bus) {
    many_topics(bus, "background_member_on_many_topics", true).await;
}

async fn many_topics(bus: Bus, case: &str, background: bool) {
    let a = new_topic(&*bus, "many-a", TopicConfig::default()).await;
    let b = new_topic(&*bus, "many-b", TopicConfig::default()).await;
    let group = unique("group");
    let member = |topics: [String; 2], group: String| {
        let bus = Arc::clone(&bus);
        async move {
            let topics = [topics[0].as_str(), topics[1].as_str()];
            if background {
                bus.subscribe_background(&topics, &group).await
            } else {
                bus.subscribe_topics(&topics, &group).await
            }
        }
    };
    let subscribe_both = || async {
        match member([a.clone(), b.clone()], group.clone()).await {
            Ok(c) => c,
            Err(e) => panic!("{case}: subscribing failed: {e}"),
        }
    };
    expect_not_found(
        "subscribing with a missing topic",
        member([a.clone(), unique("missing")], unique("group")).await,
    );
    let first = subscribe_both().await;
    let only_b = subscribe(&*bus, &b, &unique("group")).await;
    publish(&*bus, &a, None, "a1").await;
    publish(&*bus, &b, None, "b1").await;
    publish(&*bus, &a, None, "a2").await;
    let mut got = BTreeMap::new();
    for _ in 0..3 {
        let d = recv(&*first, case).await;
        got.insert(text(&d), d);
    }
    let topics: Vec<(&str, &str)> = got
        .iter()
        .map(|(t, d)| (t.as_str(), d.topic.as_str()))
        .collect();
    assert_eq!(
        topics,
        [("a1", a.as_str()), ("a2", a.as_str()), ("b1", b.as_str())],
        "{case}: each delivery names its topic"
    );
    let d = recv(&*only_b, case).await;
    assert_eq!(
        text(&d),
        "b1",
        "{case}: another group on b sees b's messages"
    );
    commit(&*only_b, &d).await;
    // Commit a1 and b1; a2 stays uncommitted and goes to the next member.
    commit(&*first, &got["a1"]).await;
    commit(&*first, &got["b1"]).await;
    drop(first);
    let second = subscribe_both().await;
    let again = recv(&*second, case).await;
    assert_eq!(
        (text(&again), again.topic.as_str()),
        ("a2".to_string(), a.as_str()),
        "{case}: the uncommitted message comes back (and only it)"
    );
    assert!(again.redelivered, "{case}: a redelivery must be flagged");
    commit(&*second, &again).await;
    publish(&*bus, &b, None, "b2").await;
    let next = recv(&*second, case).await;
    assert_eq!(
        text(&next),
        "b2",
        "{case}: committed messages are not redelivered"
    );
    commit(&*second, &next).await;
    if let Ok(Ok(extra)) = timeout(QUIET_PERIOD, second.recv()).await {
        panic!("{case}: unexpected message {extra:?}");
    }
}

/// Implementation detail of [`bus_conformance!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __bus_conformance_cases {
    ($setup:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let bus: ::std::option::Option<
                    ::std::sync::Arc<dyn $crate::bus::MessageBus>,
                > = $setup().await;
                let ::std::option::Option::Some(bus) = bus else {
                    $crate::testkit::skip(concat!("bus conformance: ", stringify!($case)));
                    return;
                };
                $crate::testkit::bus::$case(bus).await;
            }
        )*
    };
}
