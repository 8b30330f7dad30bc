//! `CouchDbStore` against a real CouchDB-API server (`FAAS_TEST_COUCHDB_URL`, started by
//! `scripts/services/couchdb.sh`): the shared conformance suites, OpenWhisk's layout on disk,
//! durability across restarts, design-document upgrades, databases deleted under a running
//! store, documents of older or foreign layouts, and the batch writer.
//!
//! Without `FAAS_TEST_COUCHDB_URL` every test skips (and fails under `FAAS_REQUIRE_SERVICES=1`).
#![cfg(feature = "couchdb")]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod couchdb_support;

use std::sync::Arc;
use std::time::Duration;

use couchdb_support::{open, raw};
use faas_core::activation::{Activation, ActivationId, ActivationResponse};
use faas_core::entity::{Action, Entity, EntityKind, Exec, Trigger};
use faas_core::identity::{AuthKey, Subject};
use faas_core::limits::{ActionLimits, SystemLimits, UserLimits};
use faas_core::names::{EntityName, EntityPath, FullyQualifiedName};
use faas_core::params::{Parameters, SemVer};
use faas_core::store::{ActivationQuery, ListQuery, Store};
use faas_core::testkit::{self, store::unique_name};
use faas_core::{Authenticator, Error, StoreAuthenticator};
use faas_store::CachedStore;
use faas_store::couchdb::CouchDbStore;
use reqwest::Method;
use serde_json::json;

/// The full store suite, each case on a fresh store over the same per-process databases.
mod couchdb_store {
    use super::*;

    async fn setup() -> Option<Arc<couchdb_support::TestStore>> {
        open().await
    }
    faas_core::store_conformance!(setup);
}

/// The suite through the read cache.
mod cached_couchdb_store {
    use super::*;

    async fn setup() -> Option<Arc<dyn Store>> {
        let s = open().await?;
        Some(Arc::new(CachedStore::from_arc(s)))
    }
    faas_core::store_conformance!(setup);
}

/// Basic authentication over the identities view.
mod couchdb_authenticator {
    use super::*;

    async fn setup() -> Option<(Arc<dyn Authenticator>, Arc<dyn Store>)> {
        let store: Arc<dyn Store> = open().await?;
        let auth = StoreAuthenticator::new(Arc::clone(&store));
        Some((Arc::new(auth), store))
    }
    faas_core::authenticator_conformance!(setup);
}

/// The controllers' set-up: the authenticator over the read cache over CouchDB.
mod cached_couchdb_authenticator {
    use super::*;

    async fn setup() -> Option<(Arc<dyn Authenticator>, Arc<dyn Store>)> {
        let s = open().await?;
        let store: Arc<dyn Store> = Arc::new(CachedStore::from_arc(s));
        let auth = StoreAuthenticator::new(Arc::clone(&store));
        Some((Arc::new(auth), store))
    }
    faas_core::authenticator_conformance!(setup);
}

macro_rules! store_or_skip {
    ($what:expr) => {
        match open().await {
            Some(s) => s,
            None => {
                testkit::skip($what);
                return;
            }
        }
    };
}

fn action(ns: &str, name: &str, updated: u64) -> Entity {
    Entity::Action(Action {
        namespace: EntityPath::new(ns).unwrap(),
        name: EntityName::new(name).unwrap(),
        version: SemVer::default(),
        publish: false,
        exec: Exec::Code {
            kind: "nodejs:20".into(),
            code: "function main(a) { return a }".into(),
            binary: false,
            main: None,
        },
        parameters: Parameters::new().with("p", json!(1)),
        limits: ActionLimits::defaults(&SystemLimits::default()),
        annotations: Parameters::new().with("exec", json!("nodejs:20")),
        updated,
    })
}

fn activation(ns: &EntityName, name: &str, start: u64) -> Activation {
    Activation {
        namespace: EntityPath::namespace(ns),
        name: EntityName::new(name).unwrap(),
        subject: "someone".into(),
        activation_id: ActivationId::generate(),
        start,
        end: start + 3,
        duration: Some(3),
        cause: None,
        response: ActivationResponse::success(json!({"n": start})),
        logs: vec!["2024-01-01T00:00:00.000Z stdout: hi".into()],
        version: SemVer::default(),
        publish: false,
        annotations: Parameters::new().with("path", json!(format!("{ns}/{name}"))),
    }
}

fn fqn(ns: &str, name: &str) -> FullyQualifiedName {
    FullyQualifiedName::new(EntityPath::new(ns).unwrap(), EntityName::new(name).unwrap())
}

fn doc_path(db: &str, id: &str) -> String {
    format!("{db}/{}", id.replace('/', "%2F").replace(' ', "%20"))
}

#[tokio::test]
async fn documents_have_openwhisk_layout() {
    let s = store_or_skip!("documents_have_openwhisk_layout");
    let [subjects, whisks, activations] = s.store.database_names().map(str::to_string);
    assert!(subjects.ends_with("subjects") && whisks.ends_with("whisks"));
    assert!(activations.ends_with("activations"));
    let ns = unique_name("layout");
    let e = action(&format!("{ns}/pkg"), "hello world", 7);
    let rev = s.put_entity(&e, None).await.unwrap();
    let (status, doc) = raw(
        Method::GET,
        &doc_path(&whisks, &format!("{ns}/pkg/hello world")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["_id"], json!(format!("{ns}/pkg/hello world")));
    assert_eq!(doc["_rev"], json!(rev.0));
    assert_eq!(doc["entityType"], json!("action"));
    assert_eq!(doc["namespace"], json!(format!("{ns}/pkg")));
    assert_eq!(doc["exec"]["kind"], json!("nodejs:20"));

    let a = activation(&ns, "hello", 1_000);
    assert!(s.put_activation(&a).await.unwrap());
    let id = format!("{ns}/{}", a.activation_id);
    let (status, doc) = raw(Method::GET, &doc_path(&activations, &id), None).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["entityType"], json!("activation"));
    assert_eq!(doc["activationId"], json!(a.activation_id.as_str()));
    assert!(
        doc["updated"].as_u64().is_some(),
        "records keep their write time"
    );

    let key = AuthKey::generate();
    let mut subject = Subject::single(ns.clone(), &key);
    subject.subject = format!("{ns}-user");
    s.put_subject(&subject, None).await.unwrap();
    s.put_limits(
        &ns,
        &UserLimits {
            invocations_per_minute: Some(3),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (_, doc) = raw(Method::GET, &doc_path(&subjects, &subject.subject), None).await;
    assert_eq!(doc["namespaces"][0]["uuid"], json!(key.uuid));
    assert_eq!(doc["blocked"], json!(false));
    let (_, doc) = raw(
        Method::GET,
        &doc_path(&subjects, &format!("{ns}/limits")),
        None,
    )
    .await;
    assert_eq!(doc["invocationsPerMinute"], json!(3));

    // OpenWhisk's design documents are there, with `_count` reduces for counts.
    let (status, ddoc) = raw(
        Method::GET,
        &format!("{whisks}/_design/whisks.v2.1.0"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    for view in [
        "actions",
        "packages",
        "packages-public",
        "triggers",
        "rules",
    ] {
        assert_eq!(ddoc["views"][view]["reduce"], json!("_count"), "{view}");
    }
    for (db, ddoc) in [
        (&activations, "whisks.v2.1.0"),
        (&activations, "whisks-filters.v2.1.1"),
        (&subjects, "subjects.v2.0.0"),
        (&subjects, "namespaceThrottlings"),
    ] {
        let (status, _) = raw(Method::GET, &format!("{db}/_design/{ddoc}"), None).await;
        assert_eq!(status, 200, "{db}/_design/{ddoc}");
    }
}

#[tokio::test]
async fn data_survives_a_restart_of_the_store() {
    let s = store_or_skip!("data_survives_a_restart_of_the_store");
    let ns = unique_name("restart");
    let e = action(ns.as_str(), "a", 1);
    let rev = s.put_entity(&e, None).await.unwrap();
    let a = activation(&ns, "a", 5);
    assert!(s.put_activation(&a).await.unwrap());
    let prefix = s.store.database_names()[0]
        .trim_end_matches("subjects")
        .to_string();

    // A second store process on the same databases (the first keeps running: both see it).
    let again = couchdb_support::builder(&prefix)
        .await
        .unwrap()
        .build()
        .await
        .unwrap();
    let got = again.get_entity(&fqn(ns.as_str(), "a")).await.unwrap();
    assert_eq!((got.value, got.rev), (e, rev));
    assert_eq!(
        again.get_activation(&ns, &a.activation_id).await.unwrap(),
        a
    );
    assert_eq!(
        again
            .list_activations(&ns, &ActivationQuery::default())
            .await
            .unwrap(),
        vec![a]
    );
}

#[tokio::test]
async fn design_documents_are_upgraded_on_start() {
    let s = store_or_skip!("design_documents_are_upgraded_on_start");
    let whisks = s.store.database_names()[1].to_string();
    let path = format!("{whisks}/_design/whisks.v2.1.0");
    let (_, mut ddoc) = raw(Method::GET, &path, None).await;
    let good_views = ddoc["views"].clone();
    // An older definition: an `actions` view that emits nothing.
    ddoc["views"]["actions"]["map"] = json!("function (doc) {}");
    let (status, _) = raw(Method::PUT, &path, Some(ddoc)).await;
    assert_eq!(status, 201);
    let ns = unique_name("upgrade");
    s.put_entity(&action(ns.as_str(), "a", 1), None)
        .await
        .unwrap();
    let p = EntityPath::new(ns.as_str()).unwrap();
    assert_eq!(
        s.count_entities(&p, EntityKind::Action).await.unwrap(),
        0,
        "old view in use"
    );

    let prefix = whisks.trim_end_matches("whisks").to_string();
    let upgraded = couchdb_support::builder(&prefix)
        .await
        .unwrap()
        .build()
        .await
        .unwrap();
    let (_, ddoc) = raw(Method::GET, &path, None).await;
    assert_eq!(
        ddoc["views"], good_views,
        "start-up must restore the current views"
    );
    assert_eq!(
        upgraded
            .count_entities(&p, EntityKind::Action)
            .await
            .unwrap(),
        1
    );
    // A second start with the current definition leaves the document alone.
    let rev = ddoc["_rev"].clone();
    couchdb_support::builder(&prefix)
        .await
        .unwrap()
        .build()
        .await
        .unwrap();
    let (_, same) = raw(Method::GET, &path, None).await;
    assert_eq!(same["_rev"], rev, "start-up must be idempotent");
}

#[tokio::test]
async fn database_deleted_under_a_running_store_is_recreated() {
    let s = store_or_skip!("database_deleted_under_a_running_store_is_recreated");
    let [subjects, whisks, activations] = s.store.database_names().map(str::to_string);
    let ns = unique_name("gone");
    s.put_entity(&action(ns.as_str(), "before", 1), None)
        .await
        .unwrap();
    for db in [&subjects, &whisks, &activations] {
        let (status, _) = raw(Method::DELETE, db, None).await;
        assert_eq!(status, 200, "delete {db}");
    }
    // Reads of what is gone are NotFound; writes and lists bring the databases back, at
    // once (not after retrying for the retry timeout).
    let started = std::time::Instant::now();
    assert!(matches!(
        s.get_entity(&fqn(ns.as_str(), "before")).await,
        Err(Error::NotFound { .. })
    ));
    let p = EntityPath::new(ns.as_str()).unwrap();
    assert_eq!(s.count_entities(&p, EntityKind::Action).await.unwrap(), 0);
    let e = action(ns.as_str(), "after", 2);
    s.put_entity(&e, None).await.unwrap();
    assert_eq!(
        s.list_entities(&p, EntityKind::Action, ListQuery::default())
            .await
            .unwrap(),
        vec![e]
    );
    let a = activation(&ns, "after", 3);
    assert!(s.put_activation(&a).await.unwrap());
    assert_eq!(s.get_activation(&ns, &a.activation_id).await.unwrap(), a);
    let key = AuthKey::generate();
    s.put_subject(&Subject::single(ns.clone(), &key), None)
        .await
        .unwrap();
    assert_eq!(s.find_identity(&key).await.unwrap().namespace.name, ns);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "recovery took {:?}",
        started.elapsed()
    );
    for db in [&subjects, &whisks, &activations] {
        let (status, _) = raw(Method::GET, db, None).await;
        assert_eq!(status, 200, "{db} recreated");
    }
}

#[tokio::test]
async fn foreign_and_older_documents() {
    let s = store_or_skip!("foreign_and_older_documents");
    let whisks = s.store.database_names()[1].to_string();
    let activations = s.store.database_names()[2].to_string();
    let ns = unique_name("foreign");
    let p = EntityPath::new(ns.as_str()).unwrap();
    // An older OpenWhisk layout: no entityType, code inlined as a `mem:` attachment.
    let older = json!({
        "namespace": ns, "name": "old", "version": "0.0.3", "publish": false,
        "exec": {"kind": "nodejs:20", "binary": false, "code": {
            "attachmentName": "mem:ZnVuY3Rpb24gbWFpbigpIHt9", "attachmentType": "text/plain"}},
        "parameters": [], "annotations": [], "updated": 10,
        "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}
    });
    let (st, _) = raw(
        Method::PUT,
        &doc_path(&whisks, &format!("{ns}/old")),
        Some(older),
    )
    .await;
    assert_eq!(st, 201);
    let got = s.get_entity(&fqn(ns.as_str(), "old")).await.unwrap();
    let a = got.value.as_action().unwrap();
    assert_eq!(a.exec.code(), Some("function main() {}"));
    assert_eq!(a.version.to_string(), "0.0.3");

    // Foreign documents: readable errors, no panics, and lists skip them.
    let foreign = [
        (
            "wrongtype",
            json!({"entityType": "activation", "namespace": ns, "name": "wrongtype"}),
        ),
        ("nonsense", json!({"hello": "world"})),
        (
            "badexec",
            json!({"entityType": "action", "namespace": ns, "name": "badexec",
                            "exec": {"kind": "nodejs:20"}, "updated": 11,
                            "limits": {"timeout": 1, "memory": 1}}),
        ),
        (
            "elsewhere",
            json!({"entityType": "trigger", "namespace": "someone-else", "name": "x",
                            "parameters": [], "updated": 12}),
        ),
    ];
    for (name, doc) in &foreign {
        let (st, _) = raw(
            Method::PUT,
            &doc_path(&whisks, &format!("{ns}/{name}")),
            Some(doc.clone()),
        )
        .await;
        assert_eq!(st, 201);
        let e = s.get_entity(&fqn(ns.as_str(), name)).await.unwrap_err();
        assert!(!e.is_retryable(), "{name}: {e:?}");
        let text = faas_core::Chain(&e).to_string();
        assert!(
            text.contains(&format!("{ns}/{name}")) && text.contains("layout"),
            "{name}: {text}"
        );
    }
    let listed = s
        .list_entities(&p, EntityKind::Action, ListQuery::default())
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        1,
        "only the readable action is listed: {listed:?}"
    );
    assert_eq!(listed[0].name().as_str(), "old");

    // An activation record of a foreign shape.
    let id = ActivationId::generate();
    let bad = json!({"entityType": "activation", "namespace": ns, "name": "x",
                     "activationId": id.as_str(), "start": "yesterday"});
    let (st, _) = raw(
        Method::PUT,
        &doc_path(&activations, &format!("{ns}/{id}")),
        Some(bad),
    )
    .await;
    assert_eq!(st, 201);
    let e = s.get_activation(&ns, &id).await.unwrap_err();
    assert!(
        faas_core::Chain(&e)
            .to_string()
            .contains("not a valid activation"),
        "{e:?}"
    );
    assert!(
        s.list_activations(&ns, &ActivationQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn names_with_spaces_and_symbols_round_trip() {
    let s = store_or_skip!("names_with_spaces_and_symbols_round_trip");
    let ns = unique_name("sym");
    for name in ["a b", "x@y.z&w-v", "plus+not", "trailing."] {
        let Ok(n) = EntityName::new(name) else {
            continue;
        };
        let e = action(ns.as_str(), n.as_str(), 1);
        let rev = s.put_entity(&e, None).await.unwrap();
        let got = s.get_entity(&fqn(ns.as_str(), n.as_str())).await.unwrap();
        assert_eq!(got.value, e, "{name}");
        s.delete_entity(&fqn(ns.as_str(), n.as_str()), &rev)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn concurrent_activation_writes_are_batched_and_all_confirmed() {
    let s = store_or_skip!("concurrent_activation_writes_are_batched_and_all_confirmed");
    let ns = unique_name("bulk");
    let acts: Vec<Activation> = (0..300).map(|i| activation(&ns, "b", 1_000 + i)).collect();
    let dup = acts[7].clone();
    let started = std::time::Instant::now();
    let results = futures::future::join_all(
        acts.iter()
            .chain(std::iter::once(&dup))
            .map(|a| s.put_activation(a)),
    )
    .await;
    let written = results.iter().filter(|r| matches!(r, Ok(true))).count();
    let rejected = results.iter().filter(|r| matches!(r, Ok(false))).count();
    assert_eq!(
        (written, rejected),
        (300, 1),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    eprintln!(
        "300 concurrent activation writes in {:?}",
        started.elapsed()
    );
    let q = ActivationQuery::default();
    assert_eq!(s.count_activations(&ns, &q).await.unwrap(), 300);
}

#[tokio::test]
async fn credentials_stay_out_of_debug_and_errors() {
    let Some(url) = couchdb_support::server_url() else {
        testkit::skip("credentials_stay_out_of_debug_and_errors");
        return;
    };
    let (base, _) = couchdb_support::http_base(&url);
    let with_creds = format!(
        "couchdb://admin:Sup3rSecret@{}:{}/?prefix={}",
        base.host_str().unwrap(),
        base.port_or_known_default().unwrap(),
        couchdb_support::unique_prefix()
    );
    let b = CouchDbStore::builder().with_url(&with_creds);
    assert!(!format!("{b:?}").contains("Sup3rSecret"));
    // pouchdb-server in admin party mode accepts any credentials; CouchDB refuses wrong ones.
    match b.build().await {
        Ok(store) => {
            let shown = format!("{store:?} {store}");
            assert!(
                !shown.contains("Sup3rSecret") && shown.contains("admin"),
                "{shown}"
            );
            store.delete_databases().await.unwrap();
        }
        Err(e) => {
            let shown = format!("{e:?} {}", faas_core::Chain(&e));
            assert!(!shown.contains("Sup3rSecret"), "{shown}");
        }
    }
}

#[tokio::test]
async fn unreachable_server_is_a_clear_unavailable_error() {
    // A port nothing listens on (bound, then closed).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = std::time::Instant::now();
    let e = CouchDbStore::builder()
        .with_url(format!("couchdb://u:Pw0rd@127.0.0.1:{port}/"))
        .with_retry_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded retries"
    );
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("not reachable") && text.contains(&port.to_string()),
        "{text}"
    );
    assert!(!text.contains("Pw0rd"));
}

#[tokio::test]
async fn trigger_lists_follow_the_view_order_with_ties() {
    let s = store_or_skip!("trigger_lists_follow_the_view_order_with_ties");
    let ns = unique_name("ties");
    let p = EntityPath::new(ns.as_str()).unwrap();
    for name in ["b", "a", "c"] {
        let t = Entity::Trigger(Trigger {
            namespace: p.clone(),
            name: EntityName::new(name).unwrap(),
            version: SemVer::default(),
            publish: false,
            parameters: Parameters::new(),
            limits: serde_json::Map::new(),
            annotations: Parameters::new(),
            rules: None,
            updated: 5,
        });
        s.put_entity(&t, None).await.unwrap();
    }
    let names: Vec<String> = s
        .list_entities(&p, EntityKind::Trigger, ListQuery { skip: 0, limit: 2 })
        .await
        .unwrap()
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    // Same `updated`: CouchDB orders by document id, newest-first lists reverse it.
    assert_eq!(names, ["c", "b"]);
}

/// Subjects written by OpenWhisk's own tools (`wskadmin`, `initdb.yml`) are read: the current
/// and the older single-namespace form, documents without `blocked`. `list_namespaces` pages
/// through `_all_docs` (more subjects than one page), skipping limits and design documents.
#[tokio::test]
async fn subjects_written_by_openwhisk_tools_and_namespace_paging() {
    let s = store_or_skip!("subjects_written_by_openwhisk_tools_and_namespace_paging");
    let subjects = s.store.database_names()[0].to_string();
    let key = AuthKey::generate();
    // wskadmin's document (no `blocked`), and the older form.
    let (status, body) = raw(
        Method::PUT,
        &doc_path(&subjects, "alice-user"),
        Some(json!({"subject": "alice-user",
            "namespaces": [{"name": "alice", "uuid": key.uuid, "key": key.key}]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let old = AuthKey::generate();
    let (status, body) = raw(
        Method::PUT,
        &doc_path(&subjects, "bobby"),
        Some(json!({"subject": "bobby", "uuid": old.uuid, "key": old.key})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let alice = s.get_subject("alice-user").await.unwrap();
    assert!(!alice.value.blocked);
    assert_eq!(s.find_identity(&key).await.unwrap().subject, "alice-user");
    let bobby = s.get_subject("bobby").await.unwrap().value;
    assert_eq!(bobby.namespaces[0].name.as_str(), "bobby");
    assert_eq!(
        s.find_identity(&old).await.unwrap().namespace.name,
        bobby.namespaces[0].name
    );
    // Block alice through the store: OpenWhisk's view stops answering for her.
    let mut blocked = alice.value.clone();
    blocked.blocked = true;
    s.put_subject(&blocked, Some(&alice.rev)).await.unwrap();
    assert!(s.find_identity(&key).await.is_err());
    let (_, doc) = raw(Method::GET, &doc_path(&subjects, "alice-user"), None).await;
    assert_eq!(doc["blocked"], json!(true), "OpenWhisk's blocked flag");
    assert_eq!(
        s.list_subjects(&EntityName::new("alice").unwrap())
            .await
            .unwrap(),
        vec![blocked]
    );

    // More subjects than one `_all_docs` page (500), plus limits documents between them.
    let docs: Vec<serde_json::Value> = (0..1203)
        .map(|i| {
            let k = AuthKey::generate();
            json!({"_id": format!("user-{i:05}"), "subject": format!("user-{i:05}"),
                "namespaces": [{"name": format!("ns-{i:05}"), "uuid": k.uuid, "key": k.key}],
                "blocked": i % 7 == 0})
        })
        .chain(
            (0..50).map(|i| json!({"_id": format!("ns-{i:05}/limits"), "invocationsPerMinute": 1})),
        )
        .collect();
    let (status, body) = raw(
        Method::POST,
        &format!("{subjects}/_bulk_docs"),
        Some(json!({ "docs": docs })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let names = s.list_namespaces().await.unwrap();
    let mut expected: Vec<String> = (0..1203).map(|i| format!("ns-{i:05}")).collect();
    expected.extend(["alice".to_string(), "bobby".to_string()]);
    expected.sort();
    assert_eq!(
        names
            .iter()
            .map(|n| n.as_str().to_string())
            .collect::<Vec<_>>(),
        expected
    );
}

/// OpenWhisk's activation time-to-live: records older than the TTL are deleted, newer ones
/// stay; the setting comes through the store URL.
#[tokio::test]
async fn activations_past_their_ttl_are_deleted() {
    let s = store_or_skip!("activations_past_their_ttl_are_deleted");
    let ns = unique_name("ttl");
    let now = faas_core::entity::now_ms();
    let old: Vec<Activation> = (0..5)
        .map(|i| activation(&ns, "a", now - 3_600_000 - i))
        .collect();
    let new: Vec<Activation> = (0..3).map(|i| activation(&ns, "a", now - i)).collect();
    for a in old.iter().chain(&new) {
        assert!(s.put_activation(a).await.unwrap());
    }
    // Two at a time, until none is left from before the cutoff (a minute ago).
    let cutoff = now - 60_000;
    let mut deleted = 0;
    for _ in 0..10 {
        let n = s.store.expire_activations(cutoff, 2).await.unwrap();
        deleted += n;
        if n == 0 {
            break;
        }
    }
    assert_eq!(deleted, old.len());
    for a in &old {
        let e = s.get_activation(&ns, &a.activation_id).await.unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    }
    for a in &new {
        s.get_activation(&ns, &a.activation_id).await.unwrap();
    }
    let q = ActivationQuery::default();
    assert_eq!(
        s.count_activations(&ns, &q).await.unwrap(),
        new.len() as u64
    );

    // Through the URL: a store with a one-second TTL sweeps by itself.
    let url = couchdb_support::server_url().unwrap();
    let prefix = couchdb_support::unique_prefix();
    let sep = if url.contains('?') { '&' } else { '?' };
    let ttl = CouchDbStore::builder()
        .with_url(format!("{url}{sep}activation_ttl_s=1"))
        .with_prefix(prefix)
        .build()
        .await
        .unwrap();
    let ttl = couchdb_support::TestStore::new(ttl);
    let stale = activation(&ns, "b", now - 10_000);
    assert!(ttl.put_activation(&stale).await.unwrap());
    faas_core::testkit::wait_until(
        "the stale record expired",
        Duration::from_secs(20),
        async || match ttl.get_activation(&ns, &stale.activation_id).await {
            Err(Error::NotFound { .. }) => true,
            Ok(_) => false,
            Err(e) => panic!("{e:?}"),
        },
    )
    .await;
}
