//! `CachedStore`: the shared conformance suites through the cache (over `MemoryStore`; the
//! CouchDB run is in `tests/couchdb.rs`), cache hits and invalidation on writes, and two
//! instances sharing a bus dropping each other's stale entries over `cacheInvalidation`.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_bus::InProcessBus;
use faas_core::bus::MessageBus;
use faas_core::identity::{AuthKey, Subject};
use faas_core::limits::UserLimits;
use faas_core::store::{Store, StoreExt};
use faas_core::testkit::fixtures::{fqn, trigger};
use faas_core::testkit::store::unique_name;
use faas_core::{Authenticator, Error, StoreAuthenticator};
use faas_store::cache::{CACHE_INVALIDATION_TOPIC, InvalidationMessage};
use faas_store::{CachedStore, MemoryStore};
use serde_json::json;

mod cached_memory_store {
    use super::*;

    async fn setup() -> Option<Arc<CachedStore<MemoryStore>>> {
        Some(Arc::new(CachedStore::new(MemoryStore::new())))
    }
    faas_core::store_conformance!(setup);
}

/// Through a cache that has a bus (announcing every write to an instance nobody runs).
mod cached_memory_store_with_bus {
    use super::*;

    async fn setup() -> Option<Arc<dyn Store>> {
        let bus: Arc<dyn MessageBus> = Arc::new(InProcessBus::new());
        let c = CachedStore::new(MemoryStore::new())
            .with_bus(bus, "controller0")
            .await
            .expect("subscribe");
        Some(Arc::new(c))
    }
    faas_core::store_conformance!(setup);
}

/// The authenticator over the cache: the cache is the only identity cache, and writes through
/// it invalidate it, so revocation is immediate.
mod cached_authenticator {
    use super::*;

    async fn setup() -> Option<(Arc<dyn Authenticator>, Arc<dyn Store>)> {
        let store: Arc<dyn Store> = Arc::new(CachedStore::new(MemoryStore::new()));
        let auth = StoreAuthenticator::new(Arc::clone(&store));
        Some((Arc::new(auth), store))
    }
    faas_core::authenticator_conformance!(setup);
}

/// Waits (bounded) until `check` holds.
async fn eventually(what: &str, check: impl AsyncFnMut() -> bool) {
    let met = faas_core::testkit::eventually_async(Duration::from_secs(5), check).await;
    assert!(met, "timed out: {what}");
}

#[tokio::test]
async fn repeated_reads_are_answered_from_memory_and_writes_invalidate() {
    let inner = Arc::new(MemoryStore::new());
    let c = CachedStore::from_arc(Arc::clone(&inner));
    let ns = unique_name("hit");
    let t = trigger(&ns, "t", 1);
    let rev = c.put_entity(&t, None).await.unwrap();
    for _ in 0..5 {
        assert_eq!(c.get_entity(&fqn(&ns, "t")).await.unwrap().value, t);
    }
    assert_eq!(c.hits_and_misses(), (4, 1));
    assert_eq!(c.len().0, 1);

    // A write through the cache is visible at once.
    let t2 = trigger(&ns, "t", 2);
    let rev2 = c.put_entity(&t2, Some(&rev)).await.unwrap();
    let got = c.get_entity(&fqn(&ns, "t")).await.unwrap();
    assert_eq!((got.value, got.rev), (t2.clone(), rev2.clone()));
    c.delete_entity(&fqn(&ns, "t"), &rev2).await.unwrap();
    assert!(matches!(
        c.get_entity(&fqn(&ns, "t")).await,
        Err(Error::NotFound { .. })
    ));

    // Misses are not cached: a create straight into the inner store shows at once.
    inner.put_entity(&t2, None).await.unwrap();
    assert_eq!(c.get_entity(&fqn(&ns, "t")).await.unwrap().value, t2);

    // Identities: cached, and dropped by subject and limits writes.
    let key = AuthKey::generate();
    c.upsert_subject(&Subject::single(ns.clone(), &key))
        .await
        .unwrap();
    assert_eq!(
        c.find_identity(&key).await.unwrap().limits,
        UserLimits::default()
    );
    assert_eq!(c.identity_for_namespace(&ns).await.unwrap().authkey, key);
    let limits = UserLimits {
        invocations_per_minute: Some(9),
        ..Default::default()
    };
    c.put_limits(&ns, &limits).await.unwrap();
    assert_eq!(c.find_identity(&key).await.unwrap().limits, limits);
    assert_eq!(c.identity_for_namespace(&ns).await.unwrap().limits, limits);
    let mut blocked = Subject::single(ns.clone(), &key);
    blocked.blocked = true;
    c.upsert_subject(&blocked).await.unwrap();
    assert!(matches!(
        c.find_identity(&key).await,
        Err(Error::NotFound { .. })
    ));
    // Deleting limits and subjects invalidates too.
    let rev = c
        .upsert_subject(&Subject::single(ns.clone(), &key))
        .await
        .unwrap();
    assert_eq!(c.find_identity(&key).await.unwrap().limits, limits);
    c.delete_limits(&ns).await.unwrap();
    assert_eq!(
        c.find_identity(&key).await.unwrap().limits,
        UserLimits::default()
    );
    c.delete_subject(ns.as_str(), &rev).await.unwrap();
    assert!(matches!(
        c.find_identity(&key).await,
        Err(Error::NotFound { .. })
    ));
    assert!(c.identity_for_namespace(&ns).await.is_err());
}

#[tokio::test]
async fn entries_expire() {
    let inner = Arc::new(MemoryStore::new());
    let clock = Arc::new(faas_core::time::ManualClock::new());
    let c = CachedStore::from_arc(Arc::clone(&inner))
        .with_ttl(Duration::from_secs(300))
        .with_clock(Arc::clone(&clock) as Arc<dyn faas_core::time::Clock>);
    let ns = unique_name("ttl");
    let rev = inner.put_entity(&trigger(&ns, "t", 1), None).await.unwrap();
    c.get_entity(&fqn(&ns, "t")).await.unwrap();
    // Changed behind the cache's back: stale until the entry expires.
    inner
        .put_entity(&trigger(&ns, "t", 2), Some(&rev))
        .await
        .unwrap();
    assert_eq!(
        c.get_entity(&fqn(&ns, "t")).await.unwrap().value.updated(),
        1
    );
    clock.advance(Duration::from_secs(299));
    assert_eq!(
        c.get_entity(&fqn(&ns, "t")).await.unwrap().value.updated(),
        1,
        "still fresh just before the expiry"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        c.get_entity(&fqn(&ns, "t")).await.unwrap().value.updated(),
        2
    );

    let none = CachedStore::from_arc(Arc::clone(&inner)).with_ttl(Duration::ZERO);
    none.get_entity(&fqn(&ns, "t")).await.unwrap();
    none.get_entity(&fqn(&ns, "t")).await.unwrap();
    assert_eq!(none.hits_and_misses(), (0, 2));
    assert!(none.is_empty());
}

#[tokio::test]
async fn two_instances_sharing_a_bus_invalidate_each_other() {
    // Two controllers over one shared store, each with its own cache.
    let shared: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus = Arc::new(InProcessBus::new());
    let c0 = CachedStore::from_arc(Arc::clone(&shared))
        .with_bus(Arc::clone(&bus) as Arc<dyn MessageBus>, "controller0")
        .await
        .unwrap();
    let c1 = CachedStore::from_arc(Arc::clone(&shared))
        .with_bus(Arc::clone(&bus) as Arc<dyn MessageBus>, "controller1")
        .await
        .unwrap();
    // Watch the topic as a third group, to see the messages as OpenWhisk would.
    let spy = bus
        .subscribe(CACHE_INVALIDATION_TOPIC, "spy")
        .await
        .unwrap();

    let ns = unique_name("bus");
    let rev = c0.put_entity(&trigger(&ns, "t", 1), None).await.unwrap();
    assert_eq!(
        c1.get_entity(&fqn(&ns, "t")).await.unwrap().value.updated(),
        1
    );
    assert_eq!(c1.len().0, 1, "c1 caches the action");

    // c0 updates it: c1 must drop its entry when the announcement arrives.
    let rev2 = c0
        .put_entity(&trigger(&ns, "t", 2), Some(&rev))
        .await
        .unwrap();
    eventually("c1 sees the update", async || {
        c1.get_entity(&fqn(&ns, "t")).await.unwrap().value.updated() == 2
    })
    .await;
    // c0 reads, caches; c1 deletes; c0 must forget it.
    assert_eq!(
        c0.get_entity(&fqn(&ns, "t")).await.unwrap().value.updated(),
        2
    );
    c1.delete_entity(&fqn(&ns, "t"), &rev2).await.unwrap();
    eventually("c0 sees the delete", async || {
        matches!(
            c0.get_entity(&fqn(&ns, "t")).await,
            Err(Error::NotFound { .. })
        )
    })
    .await;

    // Identities: c1 caches a key; c0 blocks the subject; c1 stops accepting the key.
    let key = AuthKey::generate();
    c0.upsert_subject(&Subject::single(ns.clone(), &key))
        .await
        .unwrap();
    assert!(c1.find_identity(&key).await.is_ok());
    let mut blocked = Subject::single(ns.clone(), &key);
    blocked.blocked = true;
    c0.upsert_subject(&blocked).await.unwrap();
    eventually("c1 drops the blocked identity", async || {
        c1.find_identity(&key).await.is_err()
    })
    .await;
    // Limits, by namespace.
    c0.upsert_subject(&Subject::single(ns.clone(), &key))
        .await
        .unwrap();
    eventually("c1 accepts the key again", async || {
        c1.find_identity(&key).await.is_ok()
    })
    .await;
    let limits = UserLimits {
        concurrent_invocations: Some(2),
        ..Default::default()
    };
    c0.put_limits(&ns, &limits).await.unwrap();
    eventually("c1 sees the new limits", async || {
        c1.find_identity(&key).await.unwrap().limits == limits
    })
    .await;

    // The messages have OpenWhisk's shape, with the announcing instance.
    let first = spy.recv().await.unwrap();
    let msg: serde_json::Value = serde_json::from_slice(&first.payload).unwrap();
    assert_eq!(
        msg,
        json!({"key": {"mainId": format!("{ns}/t")}, "instanceId": "controller0"})
    );
    // Seven writes: two updates and a delete, three subject writes, one limits write.
    let mut seen = vec![msg];
    for _ in 0..6 {
        let d = tokio::time::timeout(Duration::from_secs(5), spy.recv())
            .await
            .unwrap()
            .unwrap();
        seen.push(serde_json::from_slice(&d.payload).unwrap());
    }
    assert!(seen.iter().any(|m| m["instanceId"] == json!("controller1")));
    assert!(
        seen.iter()
            .any(|m| m["key"]["secondaryId"] == json!("subject"))
    );
    assert!(
        seen.iter()
            .any(|m| m["key"] == json!({"mainId": format!("{ns}/limits"), "secondaryId": "limits"}))
    );
}

#[tokio::test]
async fn own_and_foreign_messages() {
    let shared: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus = Arc::new(InProcessBus::new());
    let c = CachedStore::from_arc(Arc::clone(&shared))
        .with_bus(Arc::clone(&bus) as Arc<dyn MessageBus>, "controller0")
        .await
        .unwrap();
    let ns = unique_name("own");
    let rev = shared
        .put_entity(&trigger(&ns, "t", 1), None)
        .await
        .unwrap();
    let publish = async |m: serde_json::Value| {
        bus.publish(CACHE_INVALIDATION_TOPIC, None, Bytes::from(m.to_string()))
            .await
            .unwrap();
    };
    c.get_entity(&fqn(&ns, "t")).await.unwrap();
    shared
        .put_entity(&trigger(&ns, "t", 2), Some(&rev))
        .await
        .unwrap();
    // A marker entry that a foreign announcement published after ours drops: once it is gone,
    // ours has been read too (one listener, in order), with no sleep.
    shared
        .put_entity(&trigger(&ns, "marker", 1), None)
        .await
        .unwrap();
    c.get_entity(&fqn(&ns, "marker")).await.unwrap();
    assert_eq!(c.len().0, 2);
    // An announcement that claims to be our own is ignored...
    publish(json!({"key": {"mainId": format!("{ns}/t")}, "instanceId": "controller0"})).await;
    publish(json!({"key": {"mainId": format!("{ns}/marker")}, "instanceId": "controller7"})).await;
    eventually("the marker dropped", async || c.len().0 == 1).await;
    assert_eq!(
        c.get_entity(&fqn(&ns, "t")).await.unwrap().value.updated(),
        1
    );
    // ...garbage drops everything (something may have changed)...
    publish(json!("not a message")).await;
    eventually("garbage clears the cache", async || {
        c.get_entity(&fqn(&ns, "t")).await.unwrap().value.updated() == 2
    })
    .await;
    // ...and another instance's message drops exactly the named entry.
    let other = unique_name("other");
    shared
        .put_entity(&trigger(&other, "x", 1), None)
        .await
        .unwrap();
    c.get_entity(&fqn(&other, "x")).await.unwrap();
    let m = InvalidationMessage {
        key: faas_store::cache::CacheKey {
            main_id: format!("{ns}/t"),
            secondary_id: None,
        },
        instance_id: "controller7".into(),
    };
    publish(serde_json::to_value(&m).unwrap()).await;
    eventually("named entry dropped", async || c.len().0 == 1).await;
    let (hits, _) = c.hits_and_misses();
    c.get_entity(&fqn(&other, "x")).await.unwrap();
    assert_eq!(
        c.hits_and_misses().0,
        hits + 1,
        "the other entry stays cached"
    );
}
