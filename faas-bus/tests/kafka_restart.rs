//! `KafkaBus` across a broker outage and restart, on a broker of its own: this test starts a
//! second tansu with `scripts/services/kafka.sh` on a free loopback port and a data dir of
//! its own, so it can stop and restart it without disturbing the shared test broker.
//!
//! It runs when service tests are on (`FAAS_TEST_KAFKA_BROKERS` set, as the test script
//! does) and the tansu binary is installed (`scripts/services/kafka.sh install`); otherwise it
//! skips (a failure under `FAAS_REQUIRE_SERVICES=1`).
#![cfg(feature = "kafka")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_bus::kafka::KafkaBus;
use faas_core::bus::{Consumer, Delivery};
use faas_core::{MessageBus, TopicConfig, testkit};
use tokio::time::timeout;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/services/kafka.sh")
}

fn tansu_binary() -> PathBuf {
    let root = std::env::var("FAAS_TANSU_ROOT").unwrap_or_else(|_| "/var/cache/faas/tansu".into());
    Path::new(&root).join("bin/tansu")
}

/// A tansu started by this test; stopped on drop (also when the test fails).
struct Broker {
    port: u16,
    data: tempfile::TempDir,
}

impl Broker {
    fn run(&self, action: &str) {
        let status = Command::new("bash")
            .arg(script())
            .arg(action)
            .env("FAAS_KAFKA_PORT", self.port.to_string())
            .env("FAAS_KAFKA_DATA", self.data.path())
            .env("FAAS_KAFKA_START_WAIT", "30")
            // `stop` is a crash: SIGKILL, no graceful shutdown.
            .env("FAAS_KAFKA_STOP_WAIT", "0")
            .status()
            .expect("run kafka.sh");
        assert!(status.success(), "kafka.sh {action} failed: {status}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .env("FAAS_KAFKA_PORT", self.port.to_string())
            .env("FAAS_KAFKA_DATA", self.data.path())
            .env("FAAS_KAFKA_STOP_WAIT", "0")
            .status();
    }
}

async fn recv(consumer: &dyn Consumer, what: &str) -> Delivery {
    match timeout(Duration::from_secs(30), consumer.recv()).await {
        Ok(Ok(d)) => d,
        other => panic!("{what}: no message: {other:?}"),
    }
}

fn text(d: &Delivery) -> String {
    String::from_utf8_lossy(&d.payload).into_owned()
}

/// Messages and committed offsets survive a broker crash (SIGKILL) and restart (SQLite
/// storage); while the broker is down a publish fails within the publish timeout with a retryable error; a
/// member that lived through the outage carries on once the broker is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_keeps_messages_and_offsets() {
    let what = "broker_restart_keeps_messages_and_offsets";
    if std::env::var("FAAS_TEST_KAFKA_BROKERS").is_err() || !tansu_binary().exists() {
        testkit::skip(what);
        return;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let broker = Broker {
        port,
        data: tempfile::tempdir().unwrap(),
    };
    let t0 = Instant::now();
    let phase = |name: &str| eprintln!("{what}: {name} at {:?}", t0.elapsed());
    broker.run("start");

    let bus = KafkaBus::builder()
        .with_brokers(format!("127.0.0.1:{port}"))
        .with_client_id("faas-bus-restart-test")
        .with_publish_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    bus.create_topic("restart", &TopicConfig::default())
        .await
        .unwrap();
    let live = bus.subscribe("restart", "live").await.unwrap();
    let first = bus.subscribe("restart", "resumed").await.unwrap();
    for m in ["m1", "m2"] {
        bus.publish("restart", Some(b"k"), Bytes::from(m))
            .await
            .unwrap();
    }
    // `resumed`: m1 done, m2 in flight when the broker goes away.
    let d1 = recv(&*first, what).await;
    assert_eq!(text(&d1), "m1");
    first.commit(&d1).await.unwrap();
    let d2 = recv(&*first, what).await;
    assert_eq!(text(&d2), "m2");
    // Give the auto-commit of m1 time to reach the broker.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // `live`: takes both and commits them.
    for m in ["m1", "m2"] {
        let d = recv(&*live, what).await;
        assert_eq!(text(&d), m);
        live.commit(&d).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    phase("before the outage");
    broker.run("stop");
    let started = Instant::now();
    match timeout(
        Duration::from_secs(6),
        bus.publish("restart", Some(b"k"), Bytes::from_static(b"lost")),
    )
    .await
    {
        Ok(Err(e)) => {
            assert!(e.is_retryable(), "{what}: {e:?}");
            assert_eq!(e.status(), 503, "{what}: {e:?}");
        }
        Ok(Ok(())) => panic!("{what}: a publish succeeded with the broker down"),
        Err(_) => panic!("{what}: a publish hung with the broker down"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{what}: the failing publish took {:?}",
        started.elapsed()
    );
    drop(first);

    phase("outage checked");
    broker.run("start");
    // The producer reconnects by itself.
    let mut refused = None;
    let published =
        faas_core::testkit::eventually_async(Duration::from_secs(30), async || {
            match bus
                .publish("restart", Some(b"k"), Bytes::from_static(b"m3"))
                .await
            {
                Ok(()) => true,
                Err(e) if e.is_retryable() => {
                    refused = Some(e);
                    false
                }
                Err(e) => panic!("{what}: publish after the restart failed: {e}"),
            }
        })
        .await;
    assert!(
        published,
        "{what}: publish after the restart failed: {refused:?}"
    );
    phase("publishing again");
    // The member that lived through the outage gets what came after.
    let d = recv(&*live, what).await;
    assert_eq!(text(&d), "m3", "{what}: the surviving member");
    live.commit(&d).await.unwrap();
    phase("survivor resumed");
    // A new member of `resumed` starts at the committed offset kept across the restart:
    // m2 (in flight when its member went away), then m3.
    let second = bus.subscribe("restart", "resumed").await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = recv(&*second, what).await;
        second.commit(&d).await.unwrap();
        got.push(text(&d));
    }
    assert_eq!(got, ["m2", "m3"], "{what}: the resumed group");
    phase("group resumed");
}
