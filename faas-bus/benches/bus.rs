//! Messages per second and round-trip latency of the in-process bus and of the Kafka bus,
//! with the ratio of Kafka to in-process.
//!
//! ```sh
//! scripts/services/kafka.sh start
//! FAAS_TEST_KAFKA_BROKERS=127.0.0.1:9092 cargo bench -p faas-bus --features kafka --bench bus
//! ```
//!
//! * **round trip**: one message at a time: publish (awaited), the consumer receives and
//!   commits it, then the next; latency = from the start of `publish` to `recv` returning
//!   (and `publish` alone: until the broker acknowledged).
//! * **throughput**: 8 publisher tasks publish awaited messages as fast as they can while one
//!   consumer receives and commits; messages/s = messages / (first publish → last receive).
//!
//! With the `journal` feature the in-process bus is measured a second time with a journal in
//! a temporary directory (`inproc+j`, the default flush policy), with its ratio to the plain
//! in-process bus.
//!
//! The Kafka part runs with the `kafka` feature when a broker answers at
//! `FAAS_TEST_KAFKA_BROKERS` (or `FAAS_KAFKA_BROKERS`, default `127.0.0.1:9092`); otherwise it
//! is skipped with a message; `FAAS_KAFKA_*` variables tune it (for example
//! `FAAS_KAFKA_FETCH_WAIT_MS`). Each measurement is bounded by `FAAS_BENCH_SECONDS` (default 3)
//! and a message count, so the whole run stays under a minute.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_bus::InProcessBus;
use faas_core::{MessageBus, TopicConfig};

/// A ~300-byte payload, the size of a small `ActivationMessage`.
fn payload(i: u64) -> Bytes {
    let mut s = format!(
        r#"{{"transid":["bench",{i}],"action":{{"path":"guest","name":"hello","version":"0.0.1"}},"revision":"1-abc","activationId":"{i:032x}","rootControllerIndex":{{"asString":"0","instanceType":"controller"}},"blocking":true,"content":{{"name":"world"}}"#
    );
    s.push('}');
    Bytes::from(s)
}

fn budget() -> Duration {
    std::env::var("FAAS_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(Duration::from_secs(3), Duration::from_secs_f64)
}

/// What one bus measured.
#[derive(Debug, Clone, Copy)]
struct Numbers {
    publish_p50: Duration,
    rtt_p50: Duration,
    rtt_p99: Duration,
    rtt_count: usize,
    per_second: f64,
    throughput_count: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("faas-bench-{what}-{}-{nanos:x}", std::process::id())
}

async fn measure(name: &str, bus: Arc<dyn MessageBus>, max_messages: u64) -> Numbers {
    let budget = budget();
    let bound = budget + Duration::from_secs(30);

    // Round trip, one message at a time (after a warm-up that also waits out the group join).
    let topic = unique("rtt");
    bus.create_topic(&topic, &TopicConfig::default())
        .await
        .expect("create topic");
    let consumer = bus
        .subscribe(&topic, &unique("g"))
        .await
        .expect("subscribe");
    for i in 0..20 {
        bus.publish(&topic, None, payload(i))
            .await
            .expect("publish");
        let d = tokio::time::timeout(bound, consumer.recv())
            .await
            .expect("warm-up message within bound")
            .expect("recv");
        consumer.commit(&d).await.expect("commit");
    }
    let mut rtts = Vec::new();
    let mut publishes = Vec::new();
    let started = Instant::now();
    while started.elapsed() < budget && (rtts.len() as u64) < max_messages {
        let t = Instant::now();
        bus.publish(&topic, Some(b"k"), payload(rtts.len() as u64))
            .await
            .expect("publish");
        publishes.push(t.elapsed());
        let d = tokio::time::timeout(bound, consumer.recv())
            .await
            .expect("message within bound")
            .expect("recv");
        rtts.push(t.elapsed());
        consumer.commit(&d).await.expect("commit");
    }
    drop(consumer);
    rtts.sort();
    publishes.sort();

    // Throughput: 8 publishers, one consumer.
    let topic = unique("tput");
    bus.create_topic(&topic, &TopicConfig::default().with_partitions(2))
        .await
        .expect("create topic");
    let consumer = bus
        .subscribe(&topic, &unique("g"))
        .await
        .expect("subscribe");
    // Warm up the consumer (group join) before the clock starts.
    bus.publish(&topic, None, payload(0))
        .await
        .expect("publish");
    let d = tokio::time::timeout(bound, consumer.recv())
        .await
        .expect("warm-up within bound")
        .expect("recv");
    consumer.commit(&d).await.expect("commit");

    let publishers = 8u64;
    let per_publisher = max_messages / publishers;
    let deadline = Instant::now() + budget;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let bus = Arc::clone(&bus);
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while sent < per_publisher && Instant::now() < deadline {
                let key = format!("p{p}");
                bus.publish(&topic, Some(key.as_bytes()), payload(sent))
                    .await
                    .expect("publish");
                sent += 1;
            }
            sent
        }));
    }
    let receiver = {
        let consumer = Arc::clone(&consumer);
        tokio::spawn(async move {
            let mut got = 0u64;
            let mut last = Instant::now();
            loop {
                match tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
                    Ok(Ok(d)) => {
                        consumer.commit(&d).await.expect("commit");
                        got += 1;
                        last = Instant::now();
                    }
                    Ok(Err(e)) => panic!("recv failed: {e}"),
                    // Quiet for 2 s: the publishers are done and everything arrived.
                    Err(_) => return (got, last),
                }
            }
        })
    };
    let mut sent = 0;
    for t in tasks {
        sent += t.await.expect("publisher task");
    }
    let (got, last) = tokio::time::timeout(bound, receiver)
        .await
        .expect("receiver within bound")
        .expect("receiver task");
    assert!(got >= sent, "{name}: received {got} of {sent} messages");
    let elapsed = last.duration_since(started).max(Duration::from_micros(1));
    Numbers {
        publish_p50: percentile(&publishes, 0.50),
        rtt_p50: percentile(&rtts, 0.50),
        rtt_p99: percentile(&rtts, 0.99),
        rtt_count: rtts.len(),
        per_second: got as f64 / elapsed.as_secs_f64(),
        throughput_count: got,
    }
}

fn report(name: &str, n: &Numbers) {
    println!(
        "{name:<10} publish p50 {:>8.1} µs | round trip p50 {:>8.1} µs  p99 {:>8.1} µs  ({} messages) | throughput {:>8.0} msg/s  ({} messages)",
        n.publish_p50.as_secs_f64() * 1e6,
        n.rtt_p50.as_secs_f64() * 1e6,
        n.rtt_p99.as_secs_f64() * 1e6,
        n.rtt_count,
        n.per_second,
        n.throughput_count,
    );
}

/// The in-process bus with a journal, against the plain one measured just before.
#[cfg(feature = "journal")]
async fn journaled(plain: &Numbers) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let bus = InProcessBus::with_journal(dir.path().join("bench.journal")).expect("journal");
    let j = measure("inproc+j", Arc::new(bus), 200_000).await;
    report("inproc+j", &j);
    println!(
        "ratio journal/plain: publish p50 {:.2}x (+{:.1} µs), round trip p50 {:.2}x, p99 {:.2}x; throughput {:.2}x",
        j.publish_p50.as_secs_f64() / plain.publish_p50.as_secs_f64().max(1e-9),
        (j.publish_p50.as_secs_f64() - plain.publish_p50.as_secs_f64()) * 1e6,
        j.rtt_p50.as_secs_f64() / plain.rtt_p50.as_secs_f64().max(1e-9),
        j.rtt_p99.as_secs_f64() / plain.rtt_p99.as_secs_f64().max(1e-9),
        j.per_second / plain.per_second.max(1e-9),
    );
}

#[cfg(not(feature = "journal"))]
async fn journaled(_plain: &Numbers) {
    println!("inproc+j   skipped: built without the `journal` feature");
}

#[cfg(feature = "kafka")]
async fn kafka() -> Option<Arc<dyn MessageBus>> {
    let brokers = std::env::var("FAAS_TEST_KAFKA_BROKERS")
        .or_else(|_| std::env::var("FAAS_KAFKA_BROKERS"))
        .unwrap_or_else(|_| "127.0.0.1:9092".into());
    // FAAS_KAFKA_* variables tune the bus (fetch wait, acks, linger...).
    let bus = faas_bus::kafka::KafkaBusBuilder::from_env()
        .with_brokers(&brokers)
        .with_client_id("faas-bench")
        .with_publish_timeout(Duration::from_secs(3))
        .build()
        .expect("kafka bus config");
    match bus.ping().await {
        Ok(()) => Some(Arc::new(bus)),
        Err(e) => {
            println!("kafka      skipped: no broker answers at {brokers} ({e})");
            None
        }
    }
}

#[cfg(not(feature = "kafka"))]
async fn kafka() -> Option<Arc<dyn MessageBus>> {
    println!("kafka      skipped: built without the `kafka` feature");
    None
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let inproc = measure("inproc", Arc::new(InProcessBus::new()), 200_000).await;
        report("inproc", &inproc);
        journaled(&inproc).await;
        if let Some(bus) = kafka().await {
            let kafka = measure("kafka", bus, 20_000).await;
            report("kafka", &kafka);
            println!(
                "ratio kafka/inproc: round trip p50 {:.0}x, p99 {:.0}x; throughput {:.4}x ({:.0}x fewer msg/s)",
                kafka.rtt_p50.as_secs_f64() / inproc.rtt_p50.as_secs_f64().max(1e-9),
                kafka.rtt_p99.as_secs_f64() / inproc.rtt_p99.as_secs_f64().max(1e-9),
                kafka.per_second / inproc.per_second.max(1e-9),
                inproc.per_second / kafka.per_second.max(1e-9),
            );
        }
    });
}
