//! `KafkaBus` against a real Kafka-API broker (`FAAS_TEST_KAFKA_BROKERS`, started by
//! `scripts/services/kafka.sh`): the shared `MessageBus` conformance suite, then what is
//! particular to Kafka: topic prefixes, topics created by someone else, the committed offset
//! after out-of-order acknowledgements, and bounded failures when no broker answers.
//!
//! Without `FAAS_TEST_KAFKA_BROKERS` every broker test skips (and fails under
//! `FAAS_REQUIRE_SERVICES=1`); the tests that need no broker always run.
#![cfg(feature = "kafka")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use faas_bus::kafka::KafkaBus;
use faas_core::bus::{Consumer, Delivery};
use faas_core::{Error, MessageBus, TopicConfig, testkit};
use tokio::time::timeout;

/// The brokers under test, if configured.
fn brokers() -> Option<String> {
    std::env::var("FAAS_TEST_KAFKA_BROKERS")
        .ok()
        .filter(|b| !b.trim().is_empty())
}

/// A bus on the test broker with `prefix`, or `None` (after `testkit::skip`) without one.
fn bus_with_prefix(what: &str, prefix: &str) -> Option<KafkaBus> {
    let Some(brokers) = brokers() else {
        testkit::skip(what);
        return None;
    };
    Some(
        KafkaBus::builder()
            .with_brokers(brokers)
            .with_topic_prefix(prefix)
            .with_client_id("faas-bus-test")
            .build()
            .expect("a valid bus config"),
    )
}

/// Topic and group names unique to one test run.
fn unique(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "faas-kafka-{what}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

const WAIT: Duration = Duration::from_secs(20);

async fn recv(consumer: &dyn Consumer, what: &str) -> Delivery {
    match timeout(WAIT, consumer.recv()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => panic!("{what}: recv failed: {e}"),
        Err(_) => panic!("{what}: no message within {WAIT:?}"),
    }
}

fn text(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.payload).into_owned()
}

/// The shared suite, each case on a fresh bus.
mod kafka_bus {
    use super::*;

    async fn setup() -> Option<Arc<dyn MessageBus>> {
        let brokers = brokers()?;
        let bus = KafkaBus::builder()
            .with_brokers(brokers)
            .with_client_id("faas-bus-conformance")
            .build()
            .expect("a valid bus config");
        Some(Arc::new(bus))
    }

    faas_core::bus_conformance!(setup);
}

/// Topics and groups carry the prefix on the broker, deliveries name the topic without it,
/// and buses with different prefixes do not see each other's topics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_separates_deployments() {
    let what = "prefix_separates_deployments";
    let Some(a) = bus_with_prefix(what, "faas-test-a.") else {
        return;
    };
    let Some(b) = bus_with_prefix(what, "faas-test-b.") else {
        return;
    };
    let topic = unique("prefixed");
    a.create_topic(&topic, &TopicConfig::default())
        .await
        .unwrap();
    match b.publish(&topic, None, Bytes::from_static(b"x")).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("{what}: another prefix's topic was visible: {other:?}"),
    }
    // The topic on the broker is the prefixed name: a bus with no prefix finds it so.
    let Some(plain) = bus_with_prefix(what, "") else {
        return;
    };
    let consumer = a.subscribe(&topic, &unique("group")).await.unwrap();
    plain
        .publish(
            &format!("faas-test-a.{topic}"),
            None,
            Bytes::from_static(b"via-full-name"),
        )
        .await
        .unwrap();
    let d = recv(&*consumer, what).await;
    assert_eq!(
        d.topic, topic,
        "{what}: the delivery names the topic without prefix"
    );
    assert_eq!(text(&d), "via-full-name");
    consumer.commit(&d).await.unwrap();
}

/// A topic created by another client is found on first use, with the default size limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_created_elsewhere_is_found_with_the_default_limit() {
    let what = "topic_created_elsewhere_is_found_with_the_default_limit";
    let Some(creator) = bus_with_prefix(what, "") else {
        return;
    };
    let Some(brokers) = brokers() else { return };
    let user = KafkaBus::builder()
        .with_brokers(brokers)
        .with_config(
            faas_bus::kafka::KafkaConfigKey::DefaultMaxMessageBytes,
            "1000",
        )
        .build()
        .unwrap();
    let topic = unique("elsewhere");
    creator
        .create_topic(&topic, &TopicConfig::default())
        .await
        .unwrap();
    let consumer = user.subscribe(&topic, &unique("group")).await.unwrap();
    user.publish(&topic, Some(b"k"), Bytes::from(vec![b'a'; 1000]))
        .await
        .unwrap();
    match user
        .publish(&topic, None, Bytes::from(vec![b'b'; 1001]))
        .await
    {
        Err(e @ Error::TooLarge { .. }) => assert_eq!(e.status(), 413),
        other => panic!("{what}: expected TooLarge over the default limit, got {other:?}"),
    }
    let d = recv(&*consumer, what).await;
    assert_eq!(d.payload.len(), 1000, "{what}");
    consumer.commit(&d).await.unwrap();
}

/// OpenWhisk's limit (payload max + 6068 bytes, the `TopicConfig` default) goes through the
/// broker intact with a key; one byte more is `TooLarge` before sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn largest_message_passes_the_broker() {
    let what = "largest_message_passes_the_broker";
    let Some(bus) = bus_with_prefix(what, "") else {
        return;
    };
    let topic = unique("largest");
    let config = TopicConfig::default();
    let max = config.max_message_bytes;
    bus.create_topic(&topic, &config).await.unwrap();
    let consumer = bus.subscribe(&topic, &unique("group")).await.unwrap();
    let big: Bytes = (0..max)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    bus.publish(&topic, Some(&[b'k'; 200]), big.clone())
        .await
        .unwrap();
    match bus
        .publish(&topic, None, Bytes::from(vec![0u8; max + 1]))
        .await
    {
        Err(Error::TooLarge { .. }) => {}
        other => panic!("{what}: expected TooLarge, got {other:?}"),
    }
    let d = recv(&*consumer, what).await;
    assert_eq!(d.payload.len(), max, "{what}");
    assert!(d.payload == big, "{what}: the payload changed in transit");
    assert_eq!(d.key.as_deref(), Some(&[b'k'; 200][..]), "{what}");
    consumer.commit(&d).await.unwrap();
}

/// Acknowledgements out of order commit up to the lowest unacknowledged offset: after
/// acknowledging 1, 3 and 4 of 0..5 and then 0, a new member starts exactly at 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offset_stops_at_the_lowest_unacknowledged() {
    let what = "committed_offset_stops_at_the_lowest_unacknowledged";
    let Some(bus) = bus_with_prefix(what, "") else {
        return;
    };
    let topic = unique("lowest");
    let group = unique("group");
    bus.create_topic(&topic, &TopicConfig::default())
        .await
        .unwrap();
    let first = bus.subscribe(&topic, &group).await.unwrap();
    for i in 0..5 {
        bus.publish(&topic, None, Bytes::from(format!("m{i}")))
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(recv(&*first, what).await);
    }
    let names: Vec<String> = got.iter().map(text).collect();
    assert_eq!(names, ["m0", "m1", "m2", "m3", "m4"], "{what}");
    for i in [1, 3, 4, 0] {
        first.commit(&got[i]).await.unwrap();
    }
    drop(first);

    let second = bus.subscribe(&topic, &group).await.unwrap();
    let again: Vec<(String, bool)> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let d = recv(&*second, what).await;
            second.commit(&d).await.unwrap();
            v.push((text(&d), d.redelivered));
        }
        v
    };
    assert_eq!(
        again,
        [
            ("m2".into(), true),
            ("m3".into(), true),
            ("m4".into(), true)
        ],
        "{what}: the group must resume at the lowest unacknowledged offset, \
         and what the first member had must come flagged as possibly redelivered"
    );
    // Published after the second member got the partition: not a redelivery.
    bus.publish(&topic, None, Bytes::from_static(b"m5"))
        .await
        .unwrap();
    let d = recv(&*second, what).await;
    assert_eq!((text(&d), d.redelivered), ("m5".into(), false), "{what}");
}

/// Deliveries carry the record's publish time, and the consumer reports its group's lag from
/// librdkafka's statistics: what is published and not committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_reports_lag_and_deliveries_their_publish_time() {
    let what = "consumer_reports_lag_and_deliveries_their_publish_time";
    let Some(brokers) = brokers() else {
        testkit::skip(what);
        return;
    };
    let bus = KafkaBus::builder()
        .with_brokers(brokers)
        .with_client_id("faas-bus-test")
        .with_commit_interval(Duration::ZERO)
        // Statistics (and so the lag) every 100 ms instead of every 5 s.
        .with_rdkafka("statistics.interval.ms", "100")
        .build()
        .expect("a valid bus config");
    let topic = unique("lag");
    let group = unique("group");
    bus.create_topic(&topic, &TopicConfig::default())
        .await
        .unwrap();
    let consumer = bus.subscribe(&topic, &group).await.unwrap();
    let before = SystemTime::now() - Duration::from_secs(1);
    for i in 0..4 {
        bus.publish(&topic, None, Bytes::from(format!("m{i}")))
            .await
            .unwrap();
    }
    let first = recv(&*consumer, what).await;
    let published = first.published.expect("a Kafka record has a timestamp");
    assert!(
        published >= before && published <= SystemTime::now() + Duration::from_secs(1),
        "{what}: {published:?}"
    );
    let second = recv(&*consumer, what).await;
    consumer.commit(&first).await.unwrap();
    consumer.commit(&second).await.unwrap();
    // Two of four committed: the lag settles at 2 once librdkafka has the committed offset
    // and the high watermark (statistics keep being served while `recv` polls).
    let lag_of = |c: &dyn Consumer| {
        c.lag()
            .and_then(|v| v.into_iter().find(|(t, _)| *t == topic))
            .map(|(_, n)| n)
    };
    let settled = timeout(WAIT, async {
        loop {
            if lag_of(&*consumer) == Some(2) {
                return;
            }
            // Poll the consumer (statistics arrive through it); nothing more is published, so
            // this only returns on the two remaining messages, which are not committed.
            let _ = timeout(Duration::from_millis(50), consumer.recv()).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "{what}: lag stayed {:?}, expected Some(2)",
        lag_of(&*consumer)
    );
}

/// Late acknowledgements and foreign deliveries are handled without harm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_deliveries_are_rejected() {
    let what = "foreign_deliveries_are_rejected";
    let Some(bus) = bus_with_prefix(what, "") else {
        return;
    };
    let topic = unique("foreign");
    bus.create_topic(&topic, &TopicConfig::default())
        .await
        .unwrap();
    let consumer = bus.subscribe(&topic, &unique("group")).await.unwrap();
    let foreign = Delivery {
        topic: "some-other-topic".into(),
        partition: 0,
        offset: 0,
        key: None,
        payload: Bytes::new(),
        redelivered: false,
        published: None,
    };
    let e = consumer.commit(&foreign).await.unwrap_err();
    assert_eq!(e.status(), 400, "{what}");
    // A delivery this member never handed out changes nothing.
    let never = Delivery {
        topic: topic.clone(),
        offset: 99,
        ..foreign
    };
    consumer.commit(&never).await.unwrap();
    bus.publish(&topic, None, Bytes::from_static(b"first"))
        .await
        .unwrap();
    let d = recv(&*consumer, what).await;
    assert_eq!(text(&d), "first");
}

/// With no broker answering, every operation fails within the publish timeout with a
/// retryable error (HTTP 503), so a controller answers 503 instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_broker_fails_fast_and_retryable() {
    // A loopback port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bus = KafkaBus::builder()
        .with_brokers(format!("127.0.0.1:{port}"))
        .with_publish_timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let bound = Duration::from_secs(4);
    let started = Instant::now();
    let checks: [(&str, faas_core::Result<()>); 4] = [
        ("ping", timeout(bound, bus.ping()).await.expect("ping hung")),
        (
            "create_topic",
            timeout(bound, bus.create_topic("t", &TopicConfig::default()))
                .await
                .expect("create_topic hung"),
        ),
        (
            "publish",
            timeout(bound, bus.publish("t", None, Bytes::from_static(b"x")))
                .await
                .expect("publish hung"),
        ),
        (
            "subscribe",
            timeout(bound, bus.subscribe("t", "g"))
                .await
                .expect("subscribe hung")
                .map(|_| ()),
        ),
    ];
    for (op, r) in checks {
        match r {
            Err(e) => {
                assert!(e.is_retryable(), "{op}: not retryable: {e:?}");
                assert_eq!(e.status(), 503, "{op}: {e:?}");
            }
            Ok(()) => panic!("{op} succeeded without a broker"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "four failing calls took {:?}",
        started.elapsed()
    );
}

/// The environment variables that turn [`killed_member_helper`] into a group member.
const CHILD_BROKERS: &str = "FAAS_KAFKA_CHILD_BROKERS";
const CHILD_TOPIC: &str = "FAAS_KAFKA_CHILD_TOPIC";
const CHILD_GROUP: &str = "FAAS_KAFKA_CHILD_GROUP";

/// Not a test on its own: run by [`killed_member_loses_its_message_to_the_group`] in a child
/// process (with the variables above) as the member that dies. It receives one message,
/// prints it and waits to be killed. Ignored, so that it never counts as a passing test; the
/// parent runs it with `--ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run in a child process by killed_member_loses_its_message_to_the_group"]
async fn killed_member_helper() {
    let (Ok(brokers), Ok(topic), Ok(group)) = (
        std::env::var(CHILD_BROKERS),
        std::env::var(CHILD_TOPIC),
        std::env::var(CHILD_GROUP),
    ) else {
        return;
    };
    let bus = KafkaBus::builder()
        .with_brokers(brokers)
        .with_client_id("faas-bus-test-child")
        .build()
        .unwrap();
    let consumer = bus.subscribe(&topic, &group).await.unwrap();
    println!("SUBSCRIBED");
    let d = recv(&*consumer, "child").await;
    println!("GOT {}", text(&d));
    // Never commits: waits for SIGKILL (bounded, in case the parent is gone).
    tokio::time::sleep(Duration::from_secs(60)).await;
}

/// A member that dies mid-activation (SIGKILL: no leave, no commit) loses its message to a
/// member that joins later, once the group notices (session timeout): at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_member_loses_its_message_to_the_group() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let what = "killed_member_loses_its_message_to_the_group";
    let Some(bus) = bus_with_prefix(what, "") else {
        return;
    };
    let Some(brokers) = brokers() else { return };
    let topic = unique("killed");
    let group = unique("group");
    bus.create_topic(&topic, &TopicConfig::default())
        .await
        .unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "killed_member_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_BROKERS, &brokers)
        .env(CHILD_TOPIC, &topic)
        .env(CHILD_GROUP, &group)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Lines from the child, read on a thread (bounded by the waits below).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The marker may follow libtest's "test killed_member_helper ... " on the same line.
    let wait_for = |marker: &str| loop {
        match rx.recv_timeout(WAIT) {
            Ok(line) => {
                if let Some(at) = line.find(marker) {
                    return line[at..].to_string();
                }
            }
            Err(e) => panic!("{what}: the child never printed {marker}: {e}"),
        }
    };
    wait_for("SUBSCRIBED");
    bus.publish(&topic, Some(b"k"), Bytes::from_static(b"activation"))
        .await
        .unwrap();
    assert_eq!(wait_for("GOT "), "GOT activation");
    child.kill().unwrap();
    child.wait().unwrap();

    let started = Instant::now();
    let survivor = bus.subscribe(&topic, &group).await.unwrap();
    let d = match timeout(Duration::from_secs(30), survivor.recv()).await {
        Ok(Ok(d)) => d,
        other => panic!("{what}: the killed member's message was not redelivered: {other:?}"),
    };
    assert_eq!(text(&d), "activation", "{what}");
    assert!(d.redelivered, "{what}: a redelivery must be flagged");
    survivor.commit(&d).await.unwrap();
    eprintln!("{what}: redelivered {:?} after the kill", started.elapsed());
}
