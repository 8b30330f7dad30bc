//! Revocation reaches other controllers within a second: two controllers' identity caches
//! (`CachedStore` + `StoreAuthenticator`, as `faas-platform controller` assembles them) over one
//! shared store; one writes (blocks a subject, rotates its key, changes its limits, deletes
//! it), and the test measures how long the other keeps answering from its cache.
//!
//! Over the in-process bus and `MemoryStore` always; over Kafka and CouchDB with
//! `FAAS_TEST_KAFKA_BROKERS` and `FAAS_TEST_COUCHDB_URL` (skipped without them unless
//! `FAAS_REQUIRE_SERVICES=1`). A control run without the bus shows that the cache really holds
//! stale identities, so the measurement is of the invalidation and not of a cache that never
//! caches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_core::identity::{AuthKey, Subject};
use faas_core::limits::UserLimits;
use faas_core::store::StoreExt;
use faas_core::testkit::{self, store::unique_name};
use faas_core::{Authenticator, Error, MessageBus, Store, StoreAuthenticator};
use faas_store::{CachedStore, MemoryStore};

/// The requirement.
const DEADLINE: Duration = Duration::from_secs(1);

/// Two controllers over `shared`, each with its own cache on its own bus handle.
struct Pair {
    writer: Arc<dyn Store>,
    reader_cache: Arc<CachedStore<dyn Store>>,
    reader: StoreAuthenticator,
}

async fn pair(
    shared: Arc<dyn Store>,
    buses: Option<(Arc<dyn MessageBus>, Arc<dyn MessageBus>)>,
) -> Pair {
    let tag: u32 = rand_u32();
    let (writer, reader_cache) = match buses {
        Some((b0, b1)) => (
            CachedStore::from_arc(Arc::clone(&shared))
                .with_bus(b0, format!("controller{tag}a"))
                .await
                .unwrap(),
            CachedStore::from_arc(shared)
                .with_bus(b1, format!("controller{tag}b"))
                .await
                .unwrap(),
        ),
        None => (
            CachedStore::from_arc(Arc::clone(&shared)),
            CachedStore::from_arc(shared),
        ),
    };
    let reader_cache = Arc::new(reader_cache);
    let reader = StoreAuthenticator::new(Arc::clone(&reader_cache) as Arc<dyn Store>);
    Pair {
        writer: Arc::new(writer),
        reader_cache,
        reader,
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default()
}

/// How long until `check` holds on the reader after `write` returned (bounded by 5 s: `None`
/// when it never held).
async fn delay<F, W>(p: &Pair, write: W, check: F) -> Option<Duration>
where
    W: std::future::Future<Output = ()>,
    F: AsyncFn(&StoreAuthenticator) -> bool,
{
    write.await;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if check(&p.reader).await {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

/// Blocks, unblocks, rotates, limits and deletes through the writer; returns each delay.
async fn scenario(p: &Pair) -> Vec<(&'static str, Option<Duration>)> {
    let ns = unique_name("revoke");
    let key = AuthKey::generate();
    let mut subject = Subject {
        subject: format!("{ns}-user"),
        ..Subject::single(ns.clone(), &key)
    };
    p.writer.upsert_subject(&subject).await.unwrap();
    let refused = |k: AuthKey| {
        async move |a: &StoreAuthenticator| {
            matches!(a.authenticate(&k).await, Err(Error::Unauthenticated))
        }
    };
    let accepted =
        |k: AuthKey| async move |a: &StoreAuthenticator| a.authenticate(&k).await.is_ok();
    // The reader caches the identity (a second call is a hit).
    p.reader.authenticate(&key).await.unwrap();
    let (hits, _) = p.reader_cache.hits_and_misses();
    p.reader.authenticate(&key).await.unwrap();
    assert_eq!(
        p.reader_cache.hits_and_misses().0,
        hits + 1,
        "the identity is cached"
    );

    let mut out = Vec::new();
    subject.blocked = true;
    out.push((
        "block",
        delay(
            p,
            async {
                p.writer.upsert_subject(&subject).await.unwrap();
            },
            refused(key.clone()),
        )
        .await,
    ));
    subject.blocked = false;
    out.push((
        "unblock",
        delay(
            p,
            async {
                p.writer.upsert_subject(&subject).await.unwrap();
            },
            accepted(key.clone()),
        )
        .await,
    ));
    p.reader.authenticate(&key).await.unwrap();
    let limits = UserLimits {
        invocations_per_minute: Some(1),
        ..Default::default()
    };
    let want = limits.clone();
    let limited = key.clone();
    out.push((
        "limits",
        delay(
            p,
            async { p.writer.put_limits(&ns, &limits).await.unwrap() },
            async move |a: &StoreAuthenticator| {
                a.authenticate(&limited)
                    .await
                    .is_ok_and(|i| i.limits == want)
            },
        )
        .await,
    ));
    let rotated = AuthKey {
        uuid: key.uuid.clone(),
        key: AuthKey::generate().key,
    };
    subject.namespaces[0].key = rotated.key.clone();
    out.push((
        "rotate",
        delay(
            p,
            async {
                p.writer.upsert_subject(&subject).await.unwrap();
            },
            refused(key.clone()),
        )
        .await,
    ));
    p.reader.authenticate(&rotated).await.unwrap();
    out.push((
        "delete",
        delay(
            p,
            async {
                let current = p.writer.get_subject(&subject.subject).await.unwrap();
                p.writer
                    .delete_subject(&subject.subject, &current.rev)
                    .await
                    .unwrap();
            },
            refused(rotated.clone()),
        )
        .await,
    ));
    out
}

fn assert_within_deadline(what: &str, delays: &[(&str, Option<Duration>)]) {
    for (change, d) in delays {
        let d = d.unwrap_or_else(|| panic!("{what}: {change} never reached the other controller"));
        eprintln!("{what}: {change} reached the other controller after {d:?}");
        assert!(
            d < DEADLINE,
            "{what}: {change} took {d:?} (must be under {DEADLINE:?})"
        );
    }
}

#[tokio::test]
async fn in_process_bus_reaches_the_other_controller_within_a_second() {
    let shared: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus: Arc<dyn MessageBus> = Arc::new(faas_bus::InProcessBus::new());
    let p = pair(shared, Some((Arc::clone(&bus), bus))).await;
    assert_within_deadline("in-process bus", &scenario(&p).await);
}

/// The control: without announcements the other controller keeps the revoked identity (until
/// its 5 minute expiry), so the measurements above are of the invalidation.
#[tokio::test]
async fn without_the_bus_the_other_controller_keeps_stale_identities() {
    let shared: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let p = pair(shared, None).await;
    let ns = unique_name("stale");
    let key = AuthKey::generate();
    let mut subject = Subject::single(ns, &key);
    p.writer.upsert_subject(&subject).await.unwrap();
    p.reader.authenticate(&key).await.unwrap();
    subject.blocked = true;
    p.writer.upsert_subject(&subject).await.unwrap();
    tokio::time::sleep(DEADLINE).await;
    assert!(
        p.reader.authenticate(&key).await.is_ok(),
        "without announcements the reader's cache still holds the identity"
    );
}

#[cfg(feature = "kafka")]
#[tokio::test]
async fn kafka_and_couchdb_reach_the_other_controller_within_a_second() {
    let brokers = std::env::var("FAAS_TEST_KAFKA_BROKERS")
        .ok()
        .filter(|b| !b.is_empty());
    let couch = std::env::var("FAAS_TEST_COUCHDB_URL")
        .ok()
        .filter(|b| !b.is_empty());
    let (Some(brokers), Some(couch)) = (brokers, couch) else {
        testkit::skip(
            "revocation over Kafka and CouchDB (FAAS_TEST_KAFKA_BROKERS, FAAS_TEST_COUCHDB_URL)",
        );
        return;
    };
    let run = rand_u32();
    let prefix = format!("revocation_{}_{run:x}_", std::process::id());
    let couch = faas_store::CouchDbStore::builder()
        .with_url(format!("{}/?prefix={prefix}", couch.trim_end_matches('/')))
        .build()
        .await
        .unwrap();
    let shared: Arc<dyn Store> = Arc::new(couch.clone());
    // Two bus clients, as two controller processes have.
    let bus = || -> Arc<dyn MessageBus> {
        Arc::new(
            faas_bus::kafka::KafkaBus::builder()
                .with_brokers(brokers.clone())
                .with_topic_prefix(format!("revocation{run:x}."))
                .with_client_id("faas-revocation-test")
                .build()
                .unwrap(),
        )
    };
    let p = pair(shared, Some((bus(), bus()))).await;
    let delays = scenario(&p).await;
    couch.delete_databases().await.unwrap();
    assert_within_deadline("Kafka and CouchDB", &delays);
}
