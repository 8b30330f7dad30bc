//! `SqliteStore` beyond the conformance suite: data survives closing and reopening, one
//! platform per file, damaged and foreign files, newer schemas, and activation retention
//! (with an injected clock and explicit sweeps, never sleeps).
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use faas_core::activation::{Activation, ActivationId, ActivationResponse};
use faas_core::entity::{Entity, Trigger};
use faas_core::identity::{AuthKey, Subject};
use faas_core::names::{EntityName, EntityPath, FullyQualifiedName};
use faas_core::params::{Parameters, SemVer};
use faas_core::store::{ActivationQuery, Store};
use faas_core::{Error, UserLimits};
use faas_store::sqlite::{SqliteStore, StoreFileError};
use serde_json::json;

fn name(s: &str) -> EntityName {
    EntityName::new(s).unwrap()
}

fn trigger(ns: &str, n: &str) -> Entity {
    Entity::Trigger(Trigger {
        namespace: EntityPath::new(ns).unwrap(),
        name: name(n),
        version: SemVer::default(),
        publish: false,
        parameters: Parameters::new().with("x", json!(1)),
        limits: Default::default(),
        annotations: Parameters::new(),
        rules: None,
        updated: 1,
    })
}

fn activation(ns: &str, start: u64) -> Activation {
    Activation {
        namespace: EntityPath::new(ns).unwrap(),
        name: name("a"),
        subject: "s".into(),
        activation_id: ActivationId::generate(),
        start,
        end: start + 1,
        duration: Some(1),
        cause: None,
        response: ActivationResponse::success(json!({"start": start})),
        logs: vec![],
        version: SemVer::default(),
        publish: false,
        annotations: Parameters::new().with("path", json!(format!("{ns}/a"))),
    }
}

/// The message of a failed open (the `Backend` error's source is the `StoreFileError`).
fn open_error(r: faas_core::Result<SqliteStore>) -> (Error, String) {
    let e = r.expect_err("opening must fail");
    let msg = faas_core::Chain(&e).to_string();
    (e, msg)
}

fn file_error(e: &Error) -> &StoreFileError {
    match e {
        Error::Backend { source, .. } => source
            .downcast_ref::<StoreFileError>()
            .unwrap_or_else(|| panic!("not a StoreFileError: {e:?}")),
        other => panic!("not a Backend error: {other:?}"),
    }
}

#[tokio::test]
async fn everything_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/faas.db");
    let store = SqliteStore::builder(&path).build().await.unwrap();
    let key = AuthKey::generate();
    let ns = name("guest");
    store
        .put_subject(&Subject::single(ns.clone(), &key), None)
        .await
        .unwrap();
    let limits = UserLimits {
        invocations_per_minute: Some(5),
        ..Default::default()
    };
    store.put_limits(&ns, &limits).await.unwrap();
    let t = trigger("guest", "t");
    let rev = store.put_entity(&t, None).await.unwrap();
    let a = activation("guest", 1_000);
    assert!(store.put_activation(&a).await.unwrap());
    store.close().await;
    assert!(matches!(
        store.put_activation(&activation("guest", 2)).await,
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(
        store.get_activation(&ns, &a.activation_id).await,
        Err(Error::Unavailable { .. })
    ));

    let again = SqliteStore::builder(&path).build().await.unwrap();
    let id = FullyQualifiedName::new(EntityPath::new("guest").unwrap(), name("t"));
    let got = again.get_entity(&id).await.unwrap();
    assert_eq!((got.value, got.rev.clone()), (t.clone(), rev));
    assert_eq!(
        again.get_activation(&ns, &a.activation_id).await.unwrap(),
        a
    );
    let identity = again.find_identity(&key).await.unwrap();
    assert_eq!(identity.limits, limits);
    assert_eq!(
        again
            .count_activations(&ns, &ActivationQuery::default())
            .await
            .unwrap(),
        1
    );
    // Revisions go on from the stored one.
    let rev2 = again.put_entity(&t, Some(&got.rev)).await.unwrap();
    assert!(rev2.0.starts_with("2-"), "{rev2}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the store holds keys: owner only, got {mode:o}"
        );
    }
}

#[tokio::test]
async fn a_second_store_on_the_same_file_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faas.db");
    let first = SqliteStore::builder(&path).build().await.unwrap();
    let (e, msg) = open_error(SqliteStore::builder(&path).build().await);
    assert!(
        matches!(file_error(&e), StoreFileError::Locked { .. }),
        "{e:?}"
    );
    assert!(
        msg.contains("in use by another faas-platform")
            && msg.contains(&format!("(pid {})", std::process::id()))
            && msg.contains(&path.display().to_string()),
        "{msg}"
    );
    // The refused open changed nothing: the first store still works.
    first.put_entity(&trigger("ns", "t"), None).await.unwrap();
    first.close().await;
    let second = SqliteStore::builder(&path).build().await.unwrap();
    assert_eq!(
        second
            .count_entities(
                &EntityPath::new("ns").unwrap(),
                faas_core::entity::EntityKind::Trigger
            )
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn garbage_and_foreign_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a_u8; 64 * 1024]).unwrap();
    let (e, msg) = open_error(SqliteStore::builder(&garbage).build().await);
    assert!(
        matches!(file_error(&e), StoreFileError::Unreadable { .. }),
        "{e:?}"
    );
    assert!(msg.contains("not a usable SQLite database"), "{msg}");
    // The file is left as it was, for the operator to inspect.
    assert_eq!(std::fs::read(&garbage).unwrap(), vec![0x5a_u8; 64 * 1024]);

    // A real store whose pages were overwritten past the header.
    let damaged = dir.path().join("damaged.db");
    let store = SqliteStore::builder(&damaged).build().await.unwrap();
    for i in 0..200 {
        store
            .put_entity(&trigger("ns", &format!("t{i}")), None)
            .await
            .unwrap();
    }
    store.close().await;
    let mut bytes = std::fs::read(&damaged).unwrap();
    assert!(bytes.len() > 8192, "the store should span several pages");
    for b in &mut bytes[100..] {
        *b = 0xff;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    match SqliteStore::builder(&damaged).build().await {
        Err(e) => {
            let msg = faas_core::Chain(&e).to_string();
            assert!(
                matches!(file_error(&e), StoreFileError::Unreadable { .. }),
                "{msg}"
            );
        }
        Ok(s) => {
            // SQLite may open it; then every read reports the damage instead of panicking.
            let r = s
                .list_entities(
                    &EntityPath::new("ns").unwrap(),
                    faas_core::entity::EntityKind::Trigger,
                    Default::default(),
                )
                .await;
            assert!(r.is_err(), "a damaged file must not read as fine: {r:?}");
        }
    }

    // Another application's SQLite file.
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
    let (e, msg) = open_error(SqliteStore::builder(&foreign).build().await);
    assert!(
        matches!(file_error(&e), StoreFileError::Foreign { .. }),
        "{e:?}"
    );
    assert!(
        msg.contains("not a faas store") && msg.contains("notes"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faas.db");
    let s = SqliteStore::builder(&path).build().await.unwrap();
    s.close().await;
    let newer = faas_store::sqlite::SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let (e, msg) = open_error(SqliteStore::builder(&path).build().await);
    assert!(
        matches!(file_error(&e), StoreFileError::TooNew { found, .. } if *found == newer),
        "{e:?}"
    );
    assert!(
        msg.contains(&format!("schema version {newer}")) && msg.contains("newer faas"),
        "{msg}"
    );
}

/// A clock the test moves by hand.
fn manual_clock(start: u64) -> (Arc<AtomicU64>, impl Fn() -> u64 + Send + Sync + 'static) {
    let now = Arc::new(AtomicU64::new(start));
    let c = Arc::clone(&now);
    (now, move || c.load(Ordering::SeqCst))
}

#[tokio::test]
async fn count_bound_drops_the_earliest_written_on_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::builder(dir.path().join("faas.db"))
        .with_max_activations(Some(3))
        .with_activation_ttl(None)
        .with_background_sweeps(false)
        .build()
        .await
        .unwrap();
    // Written out of `start` order: the bound follows write order, as the memory store's does.
    let acts: Vec<Activation> = (0..5)
        .map(|i| activation(if i % 2 == 0 { "ns" } else { "other" }, 100 - i))
        .collect();
    for a in &acts {
        assert!(store.put_activation(a).await.unwrap());
    }
    let q = ActivationQuery::default();
    let total = store.count_activations(&name("ns"), &q).await.unwrap()
        + store.count_activations(&name("other"), &q).await.unwrap();
    assert_eq!(total, 3);
    for (i, a) in acts.iter().enumerate() {
        let got = store
            .get_activation(&name(a.namespace.root()), &a.activation_id)
            .await;
        assert_eq!(got.is_ok(), i >= 2, "activation {i}: {got:?}");
    }
    // Concurrent writes (one commit group) keep the bound too.
    let burst: Vec<Activation> = (0..50).map(|i| activation("ns", 1_000 + i)).collect();
    let results = futures::future::join_all(burst.iter().map(|a| store.put_activation(a))).await;
    assert!(results.into_iter().all(|r| r.unwrap()));
    assert_eq!(store.count_activations(&name("ns"), &q).await.unwrap(), 3);
    assert_eq!(
        store.count_activations(&name("other"), &q).await.unwrap(),
        0
    );
    let listed = store.list_activations(&name("ns"), &q).await.unwrap();
    assert_eq!(
        listed,
        vec![burst[49].clone(), burst[48].clone(), burst[47].clone()]
    );
}

#[tokio::test]
async fn age_bound_removes_expired_records_on_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let (now, clock) = manual_clock(1_000_000);
    let path = dir.path().join("faas.db");
    let store = SqliteStore::builder(&path)
        .with_activation_ttl(Some(Duration::from_secs(60)))
        .with_max_activations(None)
        .with_background_sweeps(false)
        .with_clock(clock)
        .build()
        .await
        .unwrap();
    let old = activation("ns", 5); // `start` does not matter: age counts from the write
    assert!(store.put_activation(&old).await.unwrap());
    now.fetch_add(30_000, Ordering::SeqCst);
    let young = activation("ns", 1);
    assert!(store.put_activation(&young).await.unwrap());
    assert_eq!(store.sweep().await.unwrap(), 0, "nothing is 60 s old yet");

    now.fetch_add(30_001, Ordering::SeqCst); // old: 60.001 s, young: 30.001 s
    assert_eq!(store.sweep().await.unwrap(), 1);
    let ns = name("ns");
    assert!(matches!(
        store.get_activation(&ns, &old.activation_id).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        store
            .get_activation(&ns, &young.activation_id)
            .await
            .unwrap(),
        young
    );
    assert_eq!(
        store
            .count_activations(&ns, &ActivationQuery::default())
            .await
            .unwrap(),
        1
    );
    // A removed record may be written again (it is new then).
    assert!(store.put_activation(&old).await.unwrap());

    // More expired records than one step removes: sweep repeats until done.
    let many: Vec<Activation> = (0..12_000).map(|i| activation("bulk", i)).collect();
    for chunk in many.chunks(500) {
        let r = futures::future::join_all(chunk.iter().map(|a| store.put_activation(a))).await;
        assert!(r.into_iter().all(|r| r.unwrap()));
    }
    now.fetch_add(61_000, Ordering::SeqCst);
    assert_eq!(store.sweep().await.unwrap(), 12_000 + 2);
    assert_eq!(
        store
            .count_activations(&name("bulk"), &ActivationQuery::default())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_lowered_count_bound_applies_on_the_next_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faas.db");
    let store = SqliteStore::builder(&path)
        .with_max_activations(None)
        .with_background_sweeps(false)
        .build()
        .await
        .unwrap();
    let acts: Vec<Activation> = (0..20).map(|i| activation("ns", i)).collect();
    for a in &acts {
        store.put_activation(a).await.unwrap();
    }
    store.close().await;
    let store = SqliteStore::from_url(&format!(
        "sqlite:{}?max_activations=5&activation_ttl=none",
        path.display()
    ))
    .await
    .unwrap();
    assert_eq!(store.sweep().await.unwrap(), 15);
    let listed = store
        .list_activations(&name("ns"), &ActivationQuery::default())
        .await
        .unwrap();
    let want: Vec<Activation> = acts[15..].iter().rev().cloned().collect();
    assert_eq!(listed, want);
}

#[tokio::test]
async fn the_background_task_sweeps_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (now, clock) = manual_clock(1_000_000);
    let store = SqliteStore::builder(dir.path().join("faas.db"))
        .with_activation_ttl(Some(Duration::from_secs(1)))
        .with_sweep_interval(Duration::from_millis(20))
        .with_clock(clock)
        .build()
        .await
        .unwrap();
    let a = activation("ns", 1);
    store.put_activation(&a).await.unwrap();
    now.fetch_add(5_000, Ordering::SeqCst);
    let ns = name("ns");
    // Bounded wait for the task (it runs every 20 ms).
    let gone = faas_core::testkit::eventually_async(Duration::from_secs(10), async || {
        store.get_activation(&ns, &a.activation_id).await.is_err()
    })
    .await;
    assert!(gone, "the background sweep never removed the record");
}
