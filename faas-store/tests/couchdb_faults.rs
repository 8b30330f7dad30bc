//! `CouchDbStore` when the server misbehaves: a fault-injecting proxy on 127.0.0.1 in front of
//! the real server (`FAAS_TEST_COUCHDB_URL`) answers 500, closes connections, or lets a write
//! through and then loses its answer. Transient faults are retried within the retry timeout;
//! a write is reported done only when the server confirmed it (or, after a lost answer, when
//! the stored document is exactly the one written); persistent faults end in a retryable
//! error, in bounded time, and lose nothing already written.
#![cfg(feature = "couchdb")]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod couchdb_support;

use std::time::{Duration, Instant};

use couchdb_support::{Fault, FaultProxy, TestStore};
use faas_core::Error;
use faas_core::activation::{Activation, ActivationId, ActivationResponse};
use faas_core::entity::EntityKind;
use faas_core::names::{EntityName, EntityPath};
use faas_core::params::{Parameters, SemVer};
use faas_core::store::{ActivationQuery, ListQuery, Store};
use faas_core::testkit::fixtures::{fqn, trigger};
use faas_core::testkit::{self, store::unique_name};
use serde_json::json;

/// A store talking through a fresh proxy, in databases of its own.
async fn proxied(retry: Duration) -> Option<(FaultProxy, TestStore)> {
    let url = couchdb_support::server_url()?;
    let proxy = FaultProxy::start(&url).await;
    let prefix = couchdb_support::unique_prefix();
    let store = couchdb_support::builder(&prefix)
        .await?
        .with_url(proxy.url())
        .with_retry_timeout(retry)
        .build()
        .await
        .expect("store through the proxy");
    Some((proxy, TestStore::new(store)))
}

macro_rules! proxied_or_skip {
    ($retry:expr, $what:expr) => {
        match proxied($retry).await {
            Some(p) => p,
            None => {
                testkit::skip($what);
                return;
            }
        }
    };
}

fn activation(ns: &EntityName, start: u64) -> Activation {
    Activation {
        namespace: EntityPath::namespace(ns),
        name: EntityName::new("f").unwrap(),
        subject: "s".into(),
        activation_id: ActivationId::generate(),
        start,
        end: start + 1,
        duration: Some(1),
        cause: None,
        response: ActivationResponse::success(json!({})),
        logs: vec![],
        version: SemVer::default(),
        publish: false,
        annotations: Parameters::new(),
    }
}

#[tokio::test]
async fn server_errors_and_closed_connections_are_retried() {
    let (proxy, s) = proxied_or_skip!(Duration::from_secs(5), "faults: retried");
    let whisks = s.store.database_names()[1].to_string();
    let activations = s.store.database_names()[2].to_string();
    let ns = unique_name("retry");
    let t = trigger(&ns, "t", 1);

    let puts = proxy.count(&format!("PUT /{whisks}"));
    proxy.inject(&format!("PUT /{whisks}"), Fault::Status500, 2);
    let rev = s.put_entity(&t, None).await.expect("create after two 500s");
    assert_eq!(proxy.count(&format!("PUT /{whisks}")) - puts, 3);

    proxy.inject(&format!("GET /{whisks}"), Fault::Close, 2);
    let got = s
        .get_entity(&fqn(&ns, "t"))
        .await
        .expect("get after two closed connections");
    assert_eq!((got.value, got.rev), (t, rev));

    proxy.inject("_view/", Fault::Status500, 1);
    proxy.inject("_view/", Fault::Close, 1);
    let listed = s
        .list_entities(
            &EntityPath::namespace(&ns),
            EntityKind::Trigger,
            ListQuery::default(),
        )
        .await
        .expect("list after a 500 and a closed connection");
    assert_eq!(listed.len(), 1);

    proxy.inject(&format!("POST /{activations}/_bulk_docs"), Fault::Close, 1);
    proxy.inject(
        &format!("POST /{activations}/_bulk_docs"),
        Fault::Status500,
        1,
    );
    let a = activation(&ns, 10);
    assert!(s.put_activation(&a).await.expect("bulk write after faults"));
    assert_eq!(s.get_activation(&ns, &a.activation_id).await.unwrap(), a);
    assert_eq!(proxy.injected.load(std::sync::atomic::Ordering::Relaxed), 8);
}

#[tokio::test]
async fn lost_answers_of_applied_writes_are_recognised() {
    let (proxy, s) = proxied_or_skip!(Duration::from_secs(5), "faults: lost answers");
    let whisks = s.store.database_names()[1].to_string();
    let activations = s.store.database_names()[2].to_string();
    let ns = unique_name("lost");
    let put = format!("PUT /{whisks}");

    // Create: the server stores it, the answer is lost; the retry meets a conflict, reads
    // the document back and recognises it.
    let t1 = trigger(&ns, "t", 1);
    proxy.inject(&put, Fault::ForwardThenClose, 1);
    let rev1 = s
        .put_entity(&t1, None)
        .await
        .expect("create whose answer was lost");
    let stored = s.get_entity(&fqn(&ns, "t")).await.unwrap();
    assert_eq!((&stored.value, &stored.rev), (&t1, &rev1));

    // Update, same.
    let t2 = trigger(&ns, "t", 2);
    proxy.inject(&put, Fault::ForwardThenClose, 1);
    let rev2 = s
        .put_entity(&t2, Some(&rev1))
        .await
        .expect("update whose answer was lost");
    assert!(rev2.0.starts_with("2-"), "{rev2}");
    assert_eq!(s.get_entity(&fqn(&ns, "t")).await.unwrap().rev, rev2);
    // A genuinely stale update still conflicts.
    assert!(matches!(
        s.put_entity(&trigger(&ns, "t", 3), Some(&rev1)).await,
        Err(Error::Conflict { .. })
    ));

    // Delete, same.
    proxy.inject(&format!("DELETE /{whisks}"), Fault::ForwardThenClose, 1);
    s.delete_entity(&fqn(&ns, "t"), &rev2)
        .await
        .expect("delete whose answer was lost");
    assert!(matches!(
        s.get_entity(&fqn(&ns, "t")).await,
        Err(Error::NotFound { .. })
    ));

    // A batch of activation records, same: each caller learns its record was written.
    let bulk = format!("POST /{activations}/_bulk_docs");
    proxy.inject(&bulk, Fault::ForwardThenClose, 1);
    let a = activation(&ns, 20);
    assert!(
        s.put_activation(&a)
            .await
            .expect("bulk write whose answer was lost")
    );
    assert_eq!(s.get_activation(&ns, &a.activation_id).await.unwrap(), a);
    // And a record that really existed before is still reported as not written.
    let mut again = a.clone();
    again.logs.push("redelivered".into());
    proxy.inject(&bulk, Fault::ForwardThenClose, 1);
    assert!(!s.put_activation(&again).await.unwrap());
    assert_eq!(s.get_activation(&ns, &a.activation_id).await.unwrap(), a);
}

#[tokio::test]
async fn persistent_faults_fail_retryably_in_bounded_time_and_lose_nothing() {
    let (proxy, s) = proxied_or_skip!(Duration::from_millis(400), "faults: persistent");
    let whisks = s.store.database_names()[1].to_string();
    let activations = s.store.database_names()[2].to_string();
    let ns = unique_name("down");
    let kept = trigger(&ns, "kept", 1);
    let rev = s.put_entity(&kept, None).await.unwrap();
    let old = activation(&ns, 5);
    assert!(s.put_activation(&old).await.unwrap());

    // The server answers 500 to every write: the write fails, retryably, and is not done.
    let puts = proxy.count(&format!("PUT /{whisks}"));
    proxy.inject(&format!("PUT /{whisks}"), Fault::Status500, 1_000);
    let started = Instant::now();
    let e = s
        .put_entity(&trigger(&ns, "new", 2), None)
        .await
        .unwrap_err();
    assert!(e.is_retryable() && e.status() == 503, "{e:?}");
    assert!(faas_core::Chain(&e).to_string().contains("500"), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        proxy.count(&format!("PUT /{whisks}")) - puts >= 2,
        "retried at least once"
    );

    // Connections close on every bulk write: the records are not reported written.
    proxy.inject(
        &format!("POST /{activations}/_bulk_docs"),
        Fault::Close,
        1_000,
    );
    let started = Instant::now();
    let lost = activation(&ns, 6);
    let e = s.put_activation(&lost).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Reads fail too while the server is away...
    proxy.inject(&format!("GET /{whisks}"), Fault::Close, 1_000);
    assert!(
        s.get_entity(&fqn(&ns, "kept"))
            .await
            .unwrap_err()
            .is_retryable()
    );

    // ...and once it is back, everything written before is there, nothing else is.
    proxy.clear();
    let got = s.get_entity(&fqn(&ns, "kept")).await.unwrap();
    assert_eq!((got.value, got.rev), (kept, rev));
    assert!(matches!(
        s.get_entity(&fqn(&ns, "new")).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        s.get_activation(&ns, &old.activation_id).await.unwrap(),
        old
    );
    assert!(matches!(
        s.get_activation(&ns, &lost.activation_id).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        s.count_activations(&ns, &ActivationQuery::default())
            .await
            .unwrap(),
        1
    );
}
