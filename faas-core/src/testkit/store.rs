//! The [`Store`] conformance suite.
//!
//! Every case is a `pub async fn` taking `&dyn Store`. Each one works inside namespaces of its
//! own, named with a random suffix ([`unique_name`]), so cases can run concurrently against one
//! shared server and need no cleanup between runs. Each case is small (a few dozen requests at
//! most) so that the suite stays fast over HTTP too.
//!
//! Run the whole suite with [`store_conformance!`](crate::store_conformance), which expands to
//! one `#[tokio::test]` per case:
//!
//! ```text
//! async fn setup() -> Option<std::sync::Arc<dyn faas_core::Store>> {
//!     Some(std::sync::Arc::new(MyStore::new())) // `None` skips: service not configured
//! }
//! faas_core::store_conformance!(setup);
//! ```
//!
//! The expansion needs nothing but `faas-core` with the `testkit` feature in the adapter's
//! `dev-dependencies` (the tests run on the tokio re-exported from here, which the expansion
//! names through the path `faas_core`, so keep that dependency name). Invoke the macro in a
//! module of its own, since the test functions are named after the cases.
//!
//! What the suite checks, case by case, is the `# Contract` of [`Store`]:
//!
//! | area | cases |
//! |---|---|
//! | entity CRUD and revisions | [`entity_roundtrip_every_kind`], [`create_existing_id_already_exists`], [`update_with_current_rev`], [`update_with_stale_rev_conflicts`], [`update_of_deleted_conflicts`], [`delete_with_stale_rev_conflicts`], [`delete_missing_not_found`], [`get_missing_not_found`] |
//! | entity lists | [`list_newest_first_with_paging`], [`list_follows_updates_and_deletes`], [`list_namespace_covers_packages`], [`lists_are_per_kind_and_namespace`] |
//! | activations | [`activation_written_once`], [`activation_get_is_per_namespace`], [`activation_list_newest_first_with_paging`], [`activation_filters`] |
//! | subjects and limits | [`subject_identity_roundtrip`], [`subject_wrong_key_or_blocked`], [`subject_replace_rotates_key`], [`subject_revisions_and_delete`], [`subject_bad_names_refused`], [`subjects_share_namespaces`], [`limits_get_put_delete`] |
//! | concurrency | [`concurrent_creates_single_winner`], [`concurrent_updates_single_winner`], [`concurrent_subject_creates_single_winner`] |
//! | serialization | [`json_details_survive`] |
//! | documents | [`document_crud_and_revisions`], [`documents_listed_per_collection`], [`concurrent_document_updates_single_winner`], [`document_bad_keys_refused`] |

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use serde_json::json;

use crate::activation::{Activation, ActivationId, ActivationResponse};
use crate::entity::{Action, Binding, Entity, EntityKind, EntityRef, Exec, Package, ReducedRule};
use crate::entity::{Rule, Trigger};
use crate::identity::{AuthKey, Identity, NamespaceKey, Privilege, Subject};
use crate::limits::{ActionLimits, SystemLimits, UserLimits};
use crate::names::{EntityName, EntityPath, FullyQualifiedName};
use crate::params::{Param, Parameters, SemVer};
use crate::store::{ActivationQuery, ListQuery, Revision, Store};
use crate::{Error, Result};

/// The tokio the expanded tests run on, so adapter crates need no tokio of their own.
#[doc(hidden)]
pub use tokio as __tokio;

/// How long one case may take before it fails (generous: the suite also runs over HTTP).
pub const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// Awaits `case`, failing the test if it takes longer than [`CASE_TIMEOUT`].
///
/// Used by the conformance macros; adapter authors may use it for their own cases.
pub async fn run_case<F: Future<Output = ()>>(name: &str, case: F) {
    if tokio::time::timeout(CASE_TIMEOUT, case).await.is_err() {
        panic!("conformance case `{name}` did not finish within {CASE_TIMEOUT:?}");
    }
}

/// A fresh, valid entity name `<prefix>-<16 random hex digits>`, unique per call in practice.
///
/// `prefix` must be a valid start of an entity name (letters, digits, `_`).
pub fn unique_name(prefix: &str) -> EntityName {
    let n: u64 = rand::random();
    EntityName::new(format!("{prefix}-{n:016x}"))
        .unwrap_or_else(|e| panic!("bad prefix {prefix:?} for a unique name: {e}"))
}

/// Expands to one `#[tokio::test]` per [`Store`] conformance case.
///
/// `$setup` is an async function returning `Option<Arc<S>>` for any `S: Store` (usually
/// `Arc<dyn Store>`); `None` skips the case through [`testkit::skip`](crate::testkit::skip),
/// which fails instead when `FAAS_REQUIRE_SERVICES=1`. `$setup` runs once per case.
///
/// ```text
/// mod store_conformance {
///     async fn setup() -> Option<std::sync::Arc<dyn faas_core::Store>> {
///         Some(std::sync::Arc::new(my_crate::MyStore::new()))
///     }
///     faas_core::store_conformance!(setup);
/// }
/// ```
#[macro_export]
macro_rules! store_conformance {
    ($setup:path) => {
        $crate::__store_conformance_cases!(
            $setup;
            entity_roundtrip_every_kind,
            create_existing_id_already_exists,
            update_with_current_rev,
            update_with_stale_rev_conflicts,
            update_of_deleted_conflicts,
            delete_with_stale_rev_conflicts,
            delete_missing_not_found,
            get_missing_not_found,
            list_newest_first_with_paging,
            list_follows_updates_and_deletes,
            list_namespace_covers_packages,
            lists_are_per_kind_and_namespace,
            activation_written_once,
            activation_get_is_per_namespace,
            activation_list_newest_first_with_paging,
            activation_filters,
            subject_identity_roundtrip,
            subject_wrong_key_or_blocked,
            subject_replace_rotates_key,
            subject_revisions_and_delete,
            subject_bad_names_refused,
            subjects_share_namespaces,
            limits_get_put_delete,
            concurrent_subject_creates_single_winner,
            concurrent_creates_single_winner,
            concurrent_updates_single_winner,
            json_details_survive,
            document_crud_and_revisions,
            documents_listed_per_collection,
            concurrent_document_updates_single_winner,
            document_bad_keys_refused,
        );
    };
}

/// Implementation detail of [`store_conformance!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_cases {
    ($setup:path; $($case:ident),* $(,)?) => {
        $(
            #[$crate::testkit::store::__tokio::test(crate = "faas_core::testkit::store::__tokio")]
            async fn $case() {
                let Some(store) = $setup().await else {
                    $crate::testkit::skip(concat!("store conformance case ", stringify!($case)));
                    return;
                };
                let store: ::std::sync::Arc<dyn $crate::Store> = store;
                $crate::testkit::store::run_case(
                    stringify!($case),
                    $crate::testkit::store::$case(&*store),
                )
                .await;
            }
        )*
    };
}

/// Asserts that `r` failed with an error matching the pattern.
macro_rules! assert_err {
    ($r:expr, $pat:pat, $($what:tt)+) => {
        match $r {
            Err($pat) => {}
            other => panic!("{}: expected {}, got {:?}", format!($($what)+), stringify!($pat), other),
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn name(s: &str) -> EntityName {
    EntityName::new(s).unwrap_or_else(|e| panic!("bad name {s:?}: {e}"))
}

fn fqn(p: &EntityPath, n: &str) -> FullyQualifiedName {
    FullyQualifiedName::new(p.clone(), name(n))
}

fn ns_path(ns: &EntityName) -> EntityPath {
    EntityPath::namespace(ns)
}

fn action(p: &EntityPath, n: &str, updated: u64) -> Entity {
    Entity::Action(Action {
        namespace: p.clone(),
        name: name(n),
        version: SemVer::default(),
        publish: false,
        exec: Exec::Code {
            kind: "nodejs:20".into(),
            code: format!("function main(a) {{ return {{ name: '{n}' }} }}"),
            binary: false,
            main: None,
        },
        parameters: Parameters::new().with("p", json!(1)),
        limits: ActionLimits::defaults(&SystemLimits::default()),
        annotations: Parameters::new().with("exec", json!("nodejs:20")),
        updated,
    })
}

fn package(p: &EntityPath, n: &str, updated: u64) -> Entity {
    Entity::Package(Package {
        namespace: p.clone(),
        name: name(n),
        version: SemVer::default(),
        publish: true,
        binding: None,
        parameters: Parameters::new().with("pp", json!("x")),
        annotations: Parameters::new(),
        updated,
    })
}

fn trigger(p: &EntityPath, n: &str, updated: u64) -> Entity {
    Entity::Trigger(Trigger {
        namespace: p.clone(),
        name: name(n),
        version: SemVer::default(),
        publish: false,
        parameters: Parameters::new().with("tp", json!(true)),
        limits: serde_json::Map::new(),
        annotations: Parameters::new(),
        rules: None,
        updated,
    })
}

fn rule(p: &EntityPath, n: &str, updated: u64) -> Entity {
    Entity::Rule(Rule {
        namespace: p.clone(),
        name: name(n),
        version: SemVer::default(),
        publish: false,
        annotations: Parameters::new(),
        trigger: EntityRef {
            path: p.clone(),
            name: name("t"),
        },
        action: EntityRef {
            path: p.clone(),
            name: name("a"),
        },
        updated,
    })
}

/// The same entity with another `updated` and a changed parameter (so a write is visible).
fn touched(e: &Entity, updated: u64) -> Entity {
    let mut e = e.clone();
    let bump = |p: &mut Parameters| p.set("touched", json!(updated));
    match &mut e {
        Entity::Action(a) => {
            a.updated = updated;
            a.version = a.version.up_patch();
            bump(&mut a.parameters);
        }
        Entity::Package(p) => {
            p.updated = updated;
            bump(&mut p.parameters);
        }
        Entity::Trigger(t) => {
            t.updated = updated;
            bump(&mut t.parameters);
        }
        Entity::Rule(r) => {
            r.updated = updated;
            bump(&mut r.annotations);
        }
    }
    e
}

fn activation(ns: &EntityName, action_path: &str, start: u64) -> Activation {
    let action_name = action_path.rsplit('/').next().unwrap_or(action_path);
    Activation {
        namespace: ns_path(ns),
        name: name(action_name),
        subject: format!("{ns}-subject"),
        activation_id: ActivationId::generate(),
        start,
        end: start + 7,
        duration: Some(7),
        cause: None,
        response: ActivationResponse::success(json!({ "start": start })),
        logs: vec![format!("2024-01-01T00:00:00.000000000Z stdout: at {start}")],
        version: SemVer::default(),
        publish: false,
        annotations: Parameters::new()
            .with("path", json!(format!("{ns}/{action_path}")))
            .with("kind", json!("nodejs:20")),
    }
}

async fn create(store: &dyn Store, e: &Entity) -> Revision {
    store
        .put_entity(e, None)
        .await
        .unwrap_or_else(|err| panic!("create {}: {err:?}", e.doc_id()))
}

async fn list_names(
    store: &dyn Store,
    p: &EntityPath,
    kind: EntityKind,
    q: ListQuery,
) -> Vec<String> {
    store
        .list_entities(p, kind, q)
        .await
        .unwrap_or_else(|e| panic!("list {kind:?} in {p}: {e:?}"))
        .iter()
        .map(|e| {
            assert_eq!(
                e.kind(),
                kind,
                "list of {kind:?} in {p} returned {}",
                e.doc_id()
            );
            e.doc_id()
        })
        .collect()
}

async fn count(store: &dyn Store, p: &EntityPath, kind: EntityKind) -> u64 {
    store
        .count_entities(p, kind)
        .await
        .unwrap_or_else(|e| panic!("count {kind:?} in {p}: {e:?}"))
}

async fn list_ids(store: &dyn Store, ns: &EntityName, q: &ActivationQuery) -> Vec<ActivationId> {
    store
        .list_activations(ns, q)
        .await
        .unwrap_or_else(|e| panic!("list activations of {ns} {q:?}: {e:?}"))
        .into_iter()
        .map(|a| {
            assert_eq!(
                a.namespace.root(),
                ns.as_str(),
                "activation of another namespace listed"
            );
            a.activation_id
        })
        .collect()
}

fn ids(acts: &[&Activation]) -> Vec<ActivationId> {
    acts.iter().map(|a| a.activation_id.clone()).collect()
}

fn ok<T, E: Debug>(r: std::result::Result<T, E>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e:?}"))
}

// ---------------------------------------------------------------------------------------------
// Entities: CRUD and revisions
// ---------------------------------------------------------------------------------------------

/// Every entity kind (action, package, trigger, rule, packaged action) reads back equal to
/// what was written, with the revision the write returned.
pub async fn entity_roundtrip_every_kind(store: &dyn Store) {
    let ns = ns_path(&unique_name("rt"));
    let entities = [
        action(&ns, "act", 1_000),
        package(&ns, "pkg", 1_001),
        trigger(&ns, "trg", 1_002),
        rule(&ns, "rul", 1_003),
        action(&ns.join(&name("pkg")), "inner", 1_004),
    ];
    for e in &entities {
        let rev = create(store, e).await;
        assert!(!rev.0.is_empty(), "{}: empty revision", e.doc_id());
        let id = FullyQualifiedName::new(e.namespace().clone(), e.name().clone());
        let got = ok(store.get_entity(&id).await, &format!("get {id}"));
        assert_eq!(&got.value, e, "{id} read back differently");
        assert_eq!(got.rev, rev, "{id}: get returned another revision than put");
        assert_eq!(got.value.kind(), e.kind());
    }
}

/// Creating an existing id fails with `AlreadyExists`, also when the id is held by another
/// kind (actions, packages, triggers and rules share one id space), and leaves the document
/// unchanged.
pub async fn create_existing_id_already_exists(store: &dyn Store) {
    let ns = ns_path(&unique_name("dup"));
    let a = action(&ns, "x", 1_000);
    let rev = create(store, &a).await;
    assert_err!(
        store.put_entity(&touched(&a, 2_000), None).await,
        Error::AlreadyExists { .. },
        "second create of the same action"
    );
    for other in [
        package(&ns, "x", 3_000),
        trigger(&ns, "x", 3_000),
        rule(&ns, "x", 3_000),
    ] {
        assert_err!(
            store.put_entity(&other, None).await,
            Error::AlreadyExists { .. },
            "create of a {:?} on an action's id",
            other.kind()
        );
    }
    let got = ok(
        store.get_entity(&fqn(&ns, "x")).await,
        "get after failed creates",
    );
    assert_eq!(got.value, a, "a failed create changed the document");
    assert_eq!(got.rev, rev, "a failed create changed the revision");
}

/// An update at the current revision succeeds, returns a new revision and is visible;
/// the old revision is stale afterwards.
pub async fn update_with_current_rev(store: &dyn Store) {
    let ns = ns_path(&unique_name("upd"));
    for (i, e) in [
        action(&ns, "a", 1_000),
        package(&ns, "p", 1_000),
        trigger(&ns, "t", 1_000),
        rule(&ns, "r", 1_000),
    ]
    .into_iter()
    .enumerate()
    {
        let id = FullyQualifiedName::new(e.namespace().clone(), e.name().clone());
        let rev1 = create(store, &e).await;
        let e2 = touched(&e, 2_000 + i as u64);
        let rev2 = ok(
            store.put_entity(&e2, Some(&rev1)).await,
            &format!("update {id}"),
        );
        assert_ne!(rev1, rev2, "{id}: an update must produce a new revision");
        let got = ok(store.get_entity(&id).await, "get after update");
        assert_eq!(got.value, e2, "{id}: update not visible");
        assert_eq!(got.rev, rev2);
        let e3 = touched(&e, 3_000 + i as u64);
        let rev3 = ok(store.put_entity(&e3, Some(&rev2)).await, "second update");
        assert!(
            rev3 != rev2 && rev3 != rev1,
            "{id}: revisions repeat: {rev1} {rev2} {rev3}"
        );
    }
}

/// An update with a stale revision fails with `Conflict` and changes nothing.
pub async fn update_with_stale_rev_conflicts(store: &dyn Store) {
    let ns = ns_path(&unique_name("stale"));
    let e = action(&ns, "a", 1_000);
    let id = fqn(&ns, "a");
    let rev1 = create(store, &e).await;
    let e2 = touched(&e, 2_000);
    let rev2 = ok(store.put_entity(&e2, Some(&rev1)).await, "update");
    assert_err!(
        store.put_entity(&touched(&e, 3_000), Some(&rev1)).await,
        Error::Conflict { .. },
        "update at a stale revision"
    );
    let bogus = Revision(format!("{}-{:032x}", 7, 0xdead_beef_u64));
    assert_err!(
        store.put_entity(&touched(&e, 3_000), Some(&bogus)).await,
        Error::Conflict { .. },
        "update at a made-up revision"
    );
    let got = ok(store.get_entity(&id).await, "get");
    assert_eq!(got.value, e2, "a conflicting update changed the document");
    assert_eq!(got.rev, rev2);
}

/// Updating a document that was deleted fails with `Conflict`; creating it again works.
pub async fn update_of_deleted_conflicts(store: &dyn Store) {
    let ns = ns_path(&unique_name("del"));
    let e = trigger(&ns, "t", 1_000);
    let id = fqn(&ns, "t");
    let rev = create(store, &e).await;
    ok(store.delete_entity(&id, &rev).await, "delete");
    assert_err!(
        store.get_entity(&id).await,
        Error::NotFound { .. },
        "get after delete"
    );
    assert_err!(
        store.put_entity(&touched(&e, 2_000), Some(&rev)).await,
        Error::Conflict { .. },
        "update of a deleted document"
    );
    assert_err!(
        store.get_entity(&id).await,
        Error::NotFound { .. },
        "a failed update revived the document"
    );
    let rev2 = ok(
        store.put_entity(&e, None).await,
        "create again after delete",
    );
    assert_ne!(rev, rev2, "a recreated document must not reuse a revision");
    let got = ok(store.get_entity(&id).await, "get recreated");
    assert_eq!(got.value, e);
    assert_err!(
        store.put_entity(&touched(&e, 3_000), Some(&rev)).await,
        Error::Conflict { .. },
        "update of a recreated document with the revision from before the delete"
    );
}

/// A delete with a stale revision fails with `Conflict` and keeps the document.
pub async fn delete_with_stale_rev_conflicts(store: &dyn Store) {
    let ns = ns_path(&unique_name("dstale"));
    let e = rule(&ns, "r", 1_000);
    let id = fqn(&ns, "r");
    let rev1 = create(store, &e).await;
    let rev2 = ok(
        store.put_entity(&touched(&e, 2_000), Some(&rev1)).await,
        "update",
    );
    assert_err!(
        store.delete_entity(&id, &rev1).await,
        Error::Conflict { .. },
        "delete at a stale revision"
    );
    let got = ok(store.get_entity(&id).await, "get after refused delete");
    assert_eq!(got.rev, rev2);
    ok(
        store.delete_entity(&id, &rev2).await,
        "delete at the current revision",
    );
    assert_err!(
        store.get_entity(&id).await,
        Error::NotFound { .. },
        "get after delete"
    );
}

/// Deleting an id that never existed fails with `NotFound`.
pub async fn delete_missing_not_found(store: &dyn Store) {
    let ns = ns_path(&unique_name("dmiss"));
    let rev = Revision("1-00000000000000000000000000000000".into());
    assert_err!(
        store.delete_entity(&fqn(&ns, "nothing"), &rev).await,
        Error::NotFound { .. },
        "delete missing"
    );
    assert_err!(
        store
            .delete_entity(&fqn(&ns.join(&name("pkg")), "nothing"), &rev)
            .await,
        Error::NotFound { .. },
        "delete missing packaged"
    );
}

/// Reading an id that does not exist fails with `NotFound`, also next to existing documents.
pub async fn get_missing_not_found(store: &dyn Store) {
    let ns = ns_path(&unique_name("gmiss"));
    assert_err!(
        store.get_entity(&fqn(&ns, "nothing")).await,
        Error::NotFound { .. },
        "get missing"
    );
    create(store, &action(&ns, "a", 1_000)).await;
    create(store, &package(&ns, "p", 1_000)).await;
    assert_err!(
        store.get_entity(&fqn(&ns, "b")).await,
        Error::NotFound { .. },
        "get missing sibling"
    );
    assert_err!(
        store.get_entity(&fqn(&ns.join(&name("p")), "a")).await,
        Error::NotFound { .. },
        "get missing packaged action"
    );
    assert_err!(
        store.get_entity(&fqn(&ns.join(&name("a")), "a")).await,
        Error::NotFound { .. },
        "get under an action's name used as a package"
    );
}

// ---------------------------------------------------------------------------------------------
// Entities: lists
// ---------------------------------------------------------------------------------------------

/// Lists are newest `updated` first; `skip`/`limit` page through them (`limit: 0` means all);
/// `count` ignores paging.
pub async fn list_newest_first_with_paging(store: &dyn Store) {
    let ns = ns_path(&unique_name("list"));
    // Written out of order, so insertion order cannot pass for `updated` order.
    for (n, updated) in [
        ("c", 3_000),
        ("a", 1_000),
        ("e", 5_000),
        ("b", 2_000),
        ("d", 4_000),
    ] {
        create(store, &action(&ns, n, updated)).await;
    }
    let id = |n: &str| format!("{ns}/{n}");
    let all: Vec<String> = ["e", "d", "c", "b", "a"].iter().map(|n| id(n)).collect();
    let q = |skip, limit| ListQuery { skip, limit };
    assert_eq!(
        list_names(store, &ns, EntityKind::Action, q(0, 0)).await,
        all,
        "limit 0"
    );
    assert_eq!(
        list_names(store, &ns, EntityKind::Action, q(0, 2)).await,
        all[..2],
        "limit 2"
    );
    assert_eq!(
        list_names(store, &ns, EntityKind::Action, q(1, 2)).await,
        all[1..3],
        "skip 1 limit 2"
    );
    assert_eq!(
        list_names(store, &ns, EntityKind::Action, q(3, 0)).await,
        all[3..],
        "skip 3"
    );
    assert_eq!(
        list_names(store, &ns, EntityKind::Action, q(4, 10)).await,
        all[4..],
        "skip 4 limit 10"
    );
    assert!(
        list_names(store, &ns, EntityKind::Action, q(5, 0))
            .await
            .is_empty(),
        "skip all"
    );
    assert!(
        list_names(store, &ns, EntityKind::Action, q(50, 3))
            .await
            .is_empty(),
        "skip past end"
    );
    assert_eq!(count(store, &ns, EntityKind::Action).await, 5);
    let listed = ok(
        store.list_entities(&ns, EntityKind::Action, q(0, 1)).await,
        "list",
    );
    assert_eq!(
        listed,
        vec![action(&ns, "e", 5_000)],
        "listed entities must be the full documents"
    );
}

/// Lists and counts follow updates (a newer `updated` moves an entity to the front) and
/// deletes (a deleted entity leaves them).
pub async fn list_follows_updates_and_deletes(store: &dyn Store) {
    let ns = ns_path(&unique_name("lupd"));
    let mut revs = BTreeMap::new();
    for (n, updated) in [("a", 1_000), ("b", 2_000), ("c", 3_000)] {
        let e = package(&ns, n, updated);
        revs.insert(n, (create(store, &e).await, e));
    }
    let id = |n: &str| format!("{ns}/{n}");
    let (rev_a, a) = &revs["a"];
    let rev_a2 = ok(
        store.put_entity(&touched(a, 9_000), Some(rev_a)).await,
        "update a",
    );
    assert_eq!(
        list_names(store, &ns, EntityKind::Package, ListQuery::default()).await,
        vec![id("a"), id("c"), id("b")],
        "an update must reorder the list"
    );
    let (rev_c, _) = &revs["c"];
    ok(store.delete_entity(&fqn(&ns, "c"), rev_c).await, "delete c");
    assert_eq!(
        list_names(store, &ns, EntityKind::Package, ListQuery::default()).await,
        vec![id("a"), id("b")],
        "a delete must leave the list"
    );
    assert_eq!(count(store, &ns, EntityKind::Package).await, 2);
    ok(
        store.delete_entity(&fqn(&ns, "a"), &rev_a2).await,
        "delete a",
    );
    assert_eq!(count(store, &ns, EntityKind::Package).await, 1);
    let listed = ok(
        store
            .list_entities(&ns, EntityKind::Package, ListQuery::default())
            .await,
        "list",
    );
    assert_eq!(listed, vec![revs["b"].1.clone()]);
}

/// A list of `ns` covers the namespace's packaged entities too; a list of `ns/pkg` covers that
/// package only (not a package whose name merely starts the same).
pub async fn list_namespace_covers_packages(store: &dyn Store) {
    let ns_name = unique_name("lpkg");
    let ns = ns_path(&ns_name);
    let pkg = ns.join(&name("pkg"));
    let pkg2 = ns.join(&name("pkg2"));
    create(store, &package(&ns, "pkg", 100)).await;
    create(store, &package(&ns, "pkg2", 200)).await;
    create(store, &action(&ns, "top", 1_000)).await;
    create(store, &action(&pkg, "in1", 2_000)).await;
    create(store, &action(&pkg2, "in2", 3_000)).await;
    create(store, &action(&pkg, "in3", 4_000)).await;
    create(store, &trigger(&ns, "trg", 5_000)).await;

    let all = list_names(store, &ns, EntityKind::Action, ListQuery::default()).await;
    assert_eq!(
        all,
        vec![
            format!("{pkg}/in3"),
            format!("{pkg2}/in2"),
            format!("{pkg}/in1"),
            format!("{ns}/top")
        ]
    );
    assert_eq!(count(store, &ns, EntityKind::Action).await, 4);
    let paged = list_names(
        store,
        &ns,
        EntityKind::Action,
        ListQuery { skip: 1, limit: 2 },
    )
    .await;
    assert_eq!(paged, all[1..3], "paging over a namespace with packages");

    let in_pkg = list_names(store, &pkg, EntityKind::Action, ListQuery::default()).await;
    assert_eq!(in_pkg, vec![format!("{pkg}/in3"), format!("{pkg}/in1")]);
    assert_eq!(count(store, &pkg, EntityKind::Action).await, 2);
    let in_pkg_paged = list_names(
        store,
        &pkg,
        EntityKind::Action,
        ListQuery { skip: 1, limit: 1 },
    )
    .await;
    assert_eq!(in_pkg_paged, vec![format!("{pkg}/in1")]);
    assert_eq!(
        list_names(store, &pkg2, EntityKind::Action, ListQuery::default()).await,
        vec![format!("{pkg2}/in2")]
    );
    assert_eq!(count(store, &pkg2, EntityKind::Action).await, 1);
    let empty = ns.join(&name("pkg3"));
    assert!(
        list_names(store, &empty, EntityKind::Action, ListQuery::default())
            .await
            .is_empty()
    );
    assert_eq!(count(store, &empty, EntityKind::Action).await, 0);

    assert_eq!(
        list_names(store, &ns, EntityKind::Package, ListQuery::default()).await,
        vec![format!("{ns}/pkg2"), format!("{ns}/pkg")]
    );
    assert!(
        list_names(store, &pkg, EntityKind::Trigger, ListQuery::default())
            .await
            .is_empty(),
        "a package list must not show the namespace's own entities"
    );
}

/// Lists are per kind and per namespace: nothing leaks between kinds, or between namespaces
/// whose names share a prefix.
pub async fn lists_are_per_kind_and_namespace(store: &dyn Store) {
    let base = unique_name("leak");
    let others = [name(&format!("{base}x")), name(&format!("{base}-x"))];
    let namespaces: Vec<EntityName> = std::iter::once(base.clone()).chain(others).collect();
    for (i, ns) in namespaces.iter().enumerate() {
        let p = ns_path(ns);
        let t = 1_000 * (i as u64 + 1);
        create(store, &action(&p, "a", t)).await;
        create(store, &package(&p, "p", t + 1)).await;
        create(store, &trigger(&p, "t", t + 2)).await;
        create(store, &rule(&p, "r", t + 3)).await;
    }
    for ns in &namespaces {
        let p = ns_path(ns);
        for (kind, n) in [
            (EntityKind::Action, "a"),
            (EntityKind::Package, "p"),
            (EntityKind::Trigger, "t"),
            (EntityKind::Rule, "r"),
        ] {
            let listed = list_names(store, &p, kind, ListQuery::default()).await;
            assert_eq!(listed, vec![format!("{p}/{n}")], "{kind:?} list of {p}");
            assert_eq!(count(store, &p, kind).await, 1, "{kind:?} count of {p}");
        }
    }
    let nobody = ns_path(&unique_name("nobody"));
    for kind in [
        EntityKind::Action,
        EntityKind::Package,
        EntityKind::Trigger,
        EntityKind::Rule,
    ] {
        assert!(
            list_names(store, &nobody, kind, ListQuery::default())
                .await
                .is_empty()
        );
        assert_eq!(count(store, &nobody, kind).await, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------------------------

/// `put_activation` writes once per id: `true` then `false`, and the first record is kept.
pub async fn activation_written_once(store: &dyn Store) {
    let ns = unique_name("aonce");
    let a = activation(&ns, "hello", 1_000);
    assert!(
        ok(store.put_activation(&a).await, "first put"),
        "first put must write"
    );
    let mut again = a.clone();
    again.response = ActivationResponse::developer_error("redelivered");
    again.logs.push("another line".into());
    assert!(
        !ok(store.put_activation(&again).await, "second put"),
        "second put must not write"
    );
    assert!(
        !ok(store.put_activation(&a).await, "third put"),
        "identical put must not write"
    );
    let got = ok(store.get_activation(&ns, &a.activation_id).await, "get");
    assert_eq!(got, a, "the first record must be kept");
    let q = ActivationQuery::default();
    assert_eq!(
        ok(store.count_activations(&ns, &q).await, "count"),
        1,
        "a rejected put must not add a record"
    );
}

/// Activations are read per namespace: another namespace's id, or an unknown id, is `NotFound`.
pub async fn activation_get_is_per_namespace(store: &dyn Store) {
    let ns1 = unique_name("aget");
    let ns2 = unique_name("aget");
    let a1 = activation(&ns1, "hello", 1_000);
    let a2 = activation(&ns2, "pkg/hello", 2_000);
    assert!(ok(store.put_activation(&a1).await, "put a1"));
    assert!(ok(store.put_activation(&a2).await, "put a2"));
    assert_eq!(
        ok(
            store.get_activation(&ns1, &a1.activation_id).await,
            "get a1"
        ),
        a1
    );
    assert_eq!(
        ok(
            store.get_activation(&ns2, &a2.activation_id).await,
            "get a2"
        ),
        a2
    );
    assert_err!(
        store.get_activation(&ns1, &a2.activation_id).await,
        Error::NotFound { .. },
        "get of another namespace's activation"
    );
    assert_err!(
        store.get_activation(&ns2, &a1.activation_id).await,
        Error::NotFound { .. },
        "get of another namespace's activation"
    );
    assert_err!(
        store.get_activation(&ns1, &ActivationId::generate()).await,
        Error::NotFound { .. },
        "get of an unknown activation"
    );
    let q = ActivationQuery::default();
    assert_eq!(
        list_ids(store, &ns1, &q).await,
        vec![a1.activation_id.clone()]
    );
    assert_eq!(
        list_ids(store, &ns2, &q).await,
        vec![a2.activation_id.clone()]
    );
}

/// Activation lists are newest `start` first with `skip`/`limit` (`0` = all); counts ignore
/// paging.
pub async fn activation_list_newest_first_with_paging(store: &dyn Store) {
    let ns = unique_name("alist");
    let starts = [3_000, 1_000, 5_000, 2_000, 4_000];
    let acts: Vec<Activation> = starts
        .iter()
        .map(|&s| activation(&ns, "hello", s))
        .collect();
    for a in &acts {
        assert!(ok(store.put_activation(a).await, "put"));
    }
    let mut newest: Vec<&Activation> = acts.iter().collect();
    newest.sort_by_key(|a| std::cmp::Reverse(a.start));
    let all = ids(&newest);
    let q = |skip, limit| ActivationQuery {
        skip,
        limit,
        ..Default::default()
    };
    assert_eq!(list_ids(store, &ns, &q(0, 0)).await, all, "limit 0");
    assert_eq!(list_ids(store, &ns, &q(0, 3)).await, all[..3], "limit 3");
    assert_eq!(
        list_ids(store, &ns, &q(2, 2)).await,
        all[2..4],
        "skip 2 limit 2"
    );
    assert_eq!(list_ids(store, &ns, &q(4, 0)).await, all[4..], "skip 4");
    assert!(list_ids(store, &ns, &q(5, 5)).await.is_empty(), "skip all");
    assert_eq!(
        ok(store.count_activations(&ns, &q(2, 1)).await, "count"),
        5,
        "count ignores paging"
    );
    let full = ok(store.list_activations(&ns, &q(0, 1)).await, "list");
    assert_eq!(
        full,
        vec![newest[0].clone()],
        "listed records must be the full records"
    );
    let empty = unique_name("anone");
    assert!(list_ids(store, &empty, &q(0, 0)).await.is_empty());
    assert_eq!(
        ok(store.count_activations(&empty, &q(0, 0)).await, "count"),
        0
    );
}

/// Checks one activation filter: `ActivationQuery::matches` over `all` and the store's list and
/// count must each give `expect` (newest first).
async fn check_filter(
    store: &dyn Store,
    ns: &EntityName,
    all: &[&Activation],
    q: ActivationQuery,
    expect: &[&Activation],
) {
    let mut by_predicate: Vec<&Activation> = all.iter().copied().filter(|a| q.matches(a)).collect();
    by_predicate.sort_by_key(|a| std::cmp::Reverse(a.start));
    assert_eq!(
        ids(&by_predicate),
        ids(expect),
        "ActivationQuery::matches disagrees for {q:?}"
    );
    assert_eq!(list_ids(store, ns, &q).await, ids(expect), "list {q:?}");
    let counted = ok(store.count_activations(ns, &q).await, "count");
    assert_eq!(counted, expect.len() as u64, "count {q:?}");
}

/// Activation filters: `name` (`action` or `pkg/action`, by the `path` annotation, else the
/// record's name), `since`/`upto` (inclusive, on `start`), combined with paging and counts.
pub async fn activation_filters(store: &dyn Store) {
    let ns = unique_name("afilt");
    let hello = activation(&ns, "hello", 1_000);
    let pkg_hello = activation(&ns, "pkg/hello", 2_000);
    let other = activation(&ns, "other", 3_000);
    let mut bare = activation(&ns, "hello", 4_000);
    bare.annotations.remove("path"); // matched by its record name
    let pkg_other = activation(&ns, "pkg/other", 5_000);
    let hello_late = activation(&ns, "hello", 6_000);
    let all = [&hello, &pkg_hello, &other, &bare, &pkg_other, &hello_late];
    for a in all {
        assert!(ok(store.put_activation(a).await, "put"));
    }
    // Noise in another namespace with the same names and times.
    let noise_ns = unique_name("afilt");
    for a in all {
        let mut n = a.clone();
        n.namespace = ns_path(&noise_ns);
        n.activation_id = ActivationId::generate();
        assert!(ok(store.put_activation(&n).await, "put noise"));
    }

    let by_name = |n: &str| ActivationQuery {
        name: Some(n.to_string()),
        ..Default::default()
    };
    check_filter(
        store,
        &ns,
        &all,
        by_name("hello"),
        &[&hello_late, &bare, &pkg_hello, &hello],
    )
    .await;
    check_filter(store, &ns, &all, by_name("pkg/hello"), &[&pkg_hello]).await;
    check_filter(store, &ns, &all, by_name("other"), &[&pkg_other, &other]).await;
    check_filter(store, &ns, &all, by_name("pkg/other"), &[&pkg_other]).await;
    check_filter(store, &ns, &all, by_name("nothing"), &[]).await;
    check_filter(store, &ns, &all, by_name("pkg/nothing"), &[]).await;
    let range = |since: Option<u64>, upto: Option<u64>| ActivationQuery {
        since,
        upto,
        ..Default::default()
    };
    check_filter(
        store,
        &ns,
        &all,
        range(Some(2_000), Some(4_000)),
        &[&bare, &other, &pkg_hello],
    )
    .await;
    check_filter(
        store,
        &ns,
        &all,
        range(Some(5_000), None),
        &[&hello_late, &pkg_other],
    )
    .await;
    check_filter(store, &ns, &all, range(None, Some(1_000)), &[&hello]).await;
    check_filter(store, &ns, &all, range(Some(4_000), Some(4_000)), &[&bare]).await;
    check_filter(store, &ns, &all, range(Some(1_001), Some(1_999)), &[]).await;
    check_filter(store, &ns, &all, range(Some(7_000), None), &[]).await;

    // Name and range together, with paging; counts ignore paging.
    let q = ActivationQuery {
        name: Some("hello".into()),
        since: Some(2_000),
        upto: Some(6_000),
        skip: 1,
        limit: 1,
    };
    assert_eq!(
        list_ids(store, &ns, &q).await,
        vec![bare.activation_id.clone()]
    );
    assert_eq!(ok(store.count_activations(&ns, &q).await, "count"), 3);
    let q = ActivationQuery {
        skip: 2,
        limit: 0,
        ..by_name("hello")
    };
    assert_eq!(list_ids(store, &ns, &q).await, ids(&[&pkg_hello, &hello]));
}

// ---------------------------------------------------------------------------------------------
// Subjects and limits
// ---------------------------------------------------------------------------------------------

fn fresh_subject() -> (Subject, EntityName, AuthKey) {
    let ns = unique_name("subj");
    let key = AuthKey::generate();
    let mut s = Subject::single(ns.clone(), &key);
    s.subject = format!("{ns}-user");
    (s, ns, key)
}

fn entry(ns: &EntityName, key: &AuthKey) -> NamespaceKey {
    NamespaceKey {
        name: ns.clone(),
        uuid: key.uuid.clone(),
        key: key.key.clone(),
    }
}

/// Replaces `subject` at its current revision (read first).
async fn replace_subject(store: &dyn Store, subject: &Subject, what: &str) -> Revision {
    let current = ok(store.get_subject(&subject.subject).await, what);
    ok(store.put_subject(subject, Some(&current.rev)).await, what)
}

fn assert_identity(
    id: &Identity,
    subject: &Subject,
    ns: &EntityName,
    key: &AuthKey,
    limits: &UserLimits,
) {
    assert_eq!(id.subject, subject.subject, "identity subject");
    assert_eq!(&id.namespace.name, ns, "identity namespace");
    assert_eq!(id.namespace.uuid, key.uuid, "identity namespace uuid");
    assert_eq!(&id.authkey, key, "identity key");
    for p in [
        Privilege::Read,
        Privilege::Put,
        Privilege::Delete,
        Privilege::Activate,
    ] {
        assert!(
            id.rights.contains(&p),
            "identity lacks {p:?}: {:?}",
            id.rights
        );
    }
    assert_eq!(&id.limits, limits, "identity limits");
}

/// A stored subject resolves by key and by namespace to its identity (all rights), with the
/// namespace's limits as they are after each `put_limits`. Each namespace of a subject has its
/// own key.
pub async fn subject_identity_roundtrip(store: &dyn Store) {
    let (mut subject, ns, key) = fresh_subject();
    let ns2 = unique_name("subj");
    let key2 = AuthKey::generate();
    subject.namespaces.push(entry(&ns2, &key2));
    ok(store.put_subject(&subject, None).await, "put subject");
    let none = UserLimits::default();
    assert_identity(
        &ok(store.find_identity(&key).await, "find"),
        &subject,
        &ns,
        &key,
        &none,
    );
    assert_identity(
        &ok(store.find_identity(&key2).await, "find 2"),
        &subject,
        &ns2,
        &key2,
        &none,
    );
    assert_identity(
        &ok(store.identity_for_namespace(&ns).await, "by ns"),
        &subject,
        &ns,
        &key,
        &none,
    );
    assert_identity(
        &ok(store.identity_for_namespace(&ns2).await, "by ns 2"),
        &subject,
        &ns2,
        &key2,
        &none,
    );

    let limits = UserLimits {
        invocations_per_minute: Some(7),
        concurrent_invocations: Some(3),
        fires_per_minute: Some(11),
        allowed_kinds: Some(vec!["nodejs:20".into(), "python:3".into()]),
        store_activations: Some(false),
    };
    ok(store.put_limits(&ns, &limits).await, "put limits");
    assert_identity(
        &ok(store.find_identity(&key).await, "find"),
        &subject,
        &ns,
        &key,
        &limits,
    );
    assert_identity(
        &ok(store.identity_for_namespace(&ns).await, "by ns"),
        &subject,
        &ns,
        &key,
        &limits,
    );
    assert_identity(
        &ok(store.find_identity(&key2).await, "find 2"),
        &subject,
        &ns2,
        &key2,
        &none,
    );

    let changed = UserLimits {
        invocations_per_minute: Some(1),
        ..Default::default()
    };
    ok(store.put_limits(&ns, &changed).await, "replace limits");
    assert_identity(
        &ok(store.find_identity(&key).await, "find"),
        &subject,
        &ns,
        &key,
        &changed,
    );

    // Limits set before the subject exists apply once it does.
    let (early, early_ns, early_key) = fresh_subject();
    ok(store.put_limits(&early_ns, &limits).await, "limits first");
    ok(store.put_subject(&early, None).await, "then the subject");
    assert_identity(
        &ok(store.find_identity(&early_key).await, "find"),
        &early,
        &early_ns,
        &early_key,
        &limits,
    );
}

/// Wrong keys, unknown uuids, unknown namespaces and blocked subjects are `NotFound`; blocking
/// and unblocking take effect at the next lookup.
pub async fn subject_wrong_key_or_blocked(store: &dyn Store) {
    let (subject, ns, key) = fresh_subject();
    ok(store.put_subject(&subject, None).await, "put subject");
    let wrong = AuthKey {
        uuid: key.uuid.clone(),
        key: AuthKey::generate().key,
    };
    assert_err!(
        store.find_identity(&wrong).await,
        Error::NotFound { .. },
        "wrong key"
    );
    let unknown = AuthKey::generate();
    assert_err!(
        store.find_identity(&unknown).await,
        Error::NotFound { .. },
        "unknown uuid"
    );
    let swapped = AuthKey {
        uuid: key.key.clone(),
        key: key.uuid.clone(),
    };
    assert_err!(
        store.find_identity(&swapped).await,
        Error::NotFound { .. },
        "swapped uuid and key"
    );
    assert_err!(
        store.identity_for_namespace(&unique_name("nobody")).await,
        Error::NotFound { .. },
        "unknown namespace"
    );

    let (mut blocked, blocked_ns, blocked_key) = fresh_subject();
    blocked.blocked = true;
    ok(
        store.put_subject(&blocked, None).await,
        "put blocked subject",
    );
    assert_err!(
        store.find_identity(&blocked_key).await,
        Error::NotFound { .. },
        "blocked subject"
    );
    assert_err!(
        store.identity_for_namespace(&blocked_ns).await,
        Error::NotFound { .. },
        "namespace of a blocked subject"
    );
    let read = ok(store.get_subject(&blocked.subject).await, "get blocked");
    assert_eq!(read.value, blocked, "a blocked subject reads back blocked");

    // Blocking an existing subject takes effect, and unblocking restores it.
    let mut now_blocked = subject.clone();
    now_blocked.blocked = true;
    replace_subject(store, &now_blocked, "block").await;
    assert_err!(
        store.find_identity(&key).await,
        Error::NotFound { .. },
        "subject blocked later"
    );
    assert_err!(
        store.identity_for_namespace(&ns).await,
        Error::NotFound { .. },
        "namespace of a subject blocked later"
    );
    replace_subject(store, &subject, "unblock").await;
    assert_identity(
        &ok(store.find_identity(&key).await, "find after unblock"),
        &subject,
        &ns,
        &key,
        &UserLimits::default(),
    );
}

/// Replacing the record rotates keys: a rotated key works and the old one stops working; a
/// namespace dropped from the subject no longer resolves.
pub async fn subject_replace_rotates_key(store: &dyn Store) {
    let (subject, ns, old_key) = fresh_subject();
    let ns2 = unique_name("subj");
    let key2 = AuthKey::generate();
    let mut with_two = subject.clone();
    with_two.namespaces.push(entry(&ns2, &key2));
    ok(store.put_subject(&with_two, None).await, "put subject");
    ok(
        store.find_identity(&old_key).await,
        "old key before rotation",
    );
    ok(
        store.find_identity(&key2).await,
        "second key before rotation",
    );

    let new_key = AuthKey {
        uuid: old_key.uuid.clone(),
        key: AuthKey::generate().key,
    };
    let rotated = Subject {
        subject: subject.subject.clone(),
        ..Subject::single(ns.clone(), &new_key)
    };
    replace_subject(store, &rotated, "replace subject").await;
    assert_err!(
        store.find_identity(&old_key).await,
        Error::NotFound { .. },
        "old key after rotation"
    );
    assert_identity(
        &ok(store.find_identity(&new_key).await, "new key"),
        &rotated,
        &ns,
        &new_key,
        &UserLimits::default(),
    );
    assert_err!(
        store.find_identity(&key2).await,
        Error::NotFound { .. },
        "key of a dropped namespace"
    );
    assert_err!(
        store.identity_for_namespace(&ns2).await,
        Error::NotFound { .. },
        "dropped namespace"
    );
    let by_ns = ok(
        store.identity_for_namespace(&ns).await,
        "by ns after rotation",
    );
    assert_eq!(
        by_ns.authkey, new_key,
        "identity by namespace must carry the new key"
    );
}

/// Subject records have revisions: create, create again (`AlreadyExists`), read, replace at
/// the current revision, stale replace and delete (`Conflict`), delete, and the deleted
/// subject's keys stop resolving while its namespace's limits stay.
pub async fn subject_revisions_and_delete(store: &dyn Store) {
    let (subject, ns, key) = fresh_subject();
    assert_err!(
        store.get_subject(&subject.subject).await,
        Error::NotFound { .. },
        "get before create"
    );
    let r1 = ok(store.put_subject(&subject, None).await, "create");
    assert_err!(
        store.put_subject(&subject, None).await,
        Error::AlreadyExists { .. },
        "create again"
    );
    let read = ok(store.get_subject(&subject.subject).await, "get");
    assert_eq!(read.value, subject, "subject reads back equal");
    assert_eq!(read.rev, r1, "get returns the revision of the last write");

    let mut changed = subject.clone();
    let key2 = AuthKey::generate();
    let ns2 = unique_name("subj");
    changed.namespaces.push(entry(&ns2, &key2));
    let r2 = ok(store.put_subject(&changed, Some(&r1)).await, "replace");
    assert_ne!(r1, r2, "a write makes a new revision");
    assert_err!(
        store.put_subject(&subject, Some(&r1)).await,
        Error::Conflict { .. },
        "replace at a stale revision"
    );
    assert_eq!(
        ok(store.get_subject(&subject.subject).await, "get 2").value,
        changed,
        "a refused write changes nothing"
    );
    assert_err!(
        store.delete_subject(&subject.subject, &r1).await,
        Error::Conflict { .. },
        "delete at a stale revision"
    );
    ok(store.find_identity(&key2).await, "new namespace resolves");

    let limits = UserLimits {
        invocations_per_minute: Some(4),
        ..Default::default()
    };
    ok(store.put_limits(&ns, &limits).await, "limits");
    ok(store.delete_subject(&subject.subject, &r2).await, "delete");
    assert_err!(
        store.get_subject(&subject.subject).await,
        Error::NotFound { .. },
        "get after delete"
    );
    for (k, what) in [(&key, "first key"), (&key2, "second key")] {
        assert_err!(
            store.find_identity(k).await,
            Error::NotFound { .. },
            "{what} after delete"
        );
    }
    assert_err!(
        store.identity_for_namespace(&ns).await,
        Error::NotFound { .. },
        "namespace after delete"
    );
    assert_eq!(
        ok(store.get_limits(&ns).await, "limits survive the subject"),
        limits
    );
    assert_err!(
        store.delete_subject(&subject.subject, &r2).await,
        Error::NotFound { .. },
        "delete again"
    );
    assert_err!(
        store.put_subject(&subject, Some(&r2)).await,
        Error::Conflict { .. },
        "replace a deleted subject"
    );
    // The name can be used again.
    ok(
        store.put_subject(&subject, None).await,
        "create again after delete",
    );
    ok(
        store.find_identity(&key).await,
        "recreated subject resolves",
    );
}

/// Names that [`Subject::check_name`] rejects are refused with `BadRequest` and nothing is
/// written; reading or deleting them is `NotFound`.
pub async fn subject_bad_names_refused(store: &dyn Store) {
    let ns = unique_name("subj");
    let key = AuthKey::generate();
    for bad in [
        format!("{ns}/limits"),
        format!("_{ns}"),
        "abcd".to_string(),
        format!(" {ns}"),
    ] {
        let s = Subject {
            subject: bad.clone(),
            ..Subject::single(ns.clone(), &key)
        };
        assert_err!(
            store.put_subject(&s, None).await,
            Error::BadRequest { .. },
            "subject name {bad:?}"
        );
        assert_err!(
            store.get_subject(&bad).await,
            Error::NotFound { .. },
            "get {bad:?}"
        );
    }
    assert_err!(
        store.find_identity(&key).await,
        Error::NotFound { .. },
        "nothing was written"
    );
    assert_err!(
        store.get_limits(&ns).await,
        Error::NotFound { .. },
        "a refused subject must not touch the namespace's limits"
    );
}

/// Several subjects may own one namespace: `list_subjects` returns them all (blocked ones
/// too) by name, `identity_for_namespace` the first unblocked one, `list_namespaces` every
/// owned namespace once, sorted. Entries may share a uuid when their keys differ.
pub async fn subjects_share_namespaces(store: &dyn Store) {
    let shared = unique_name("shared");
    let own = unique_name("own");
    let lone = unique_name("lone");
    let (ka, kb, kc, kd) = (
        AuthKey::generate(),
        AuthKey::generate(),
        AuthKey::generate(),
        AuthKey::generate(),
    );
    // `b…` is written first, `a…` second: order must come from the names.
    let mut b = Subject {
        subject: format!("{shared}-b"),
        namespaces: vec![entry(&shared, &kb), entry(&own, &kc)],
        blocked: false,
    };
    let a = Subject {
        subject: format!("{shared}-a"),
        namespaces: vec![entry(&shared, &ka)],
        blocked: true,
    };
    // Same uuid as `a`'s entry, another key, another subject.
    let same_uuid = AuthKey {
        uuid: ka.uuid.clone(),
        key: kd.key.clone(),
    };
    let c = Subject {
        subject: format!("{shared}-c"),
        namespaces: vec![entry(&lone, &same_uuid)],
        blocked: false,
    };
    ok(store.put_subject(&b, None).await, "put b");
    ok(store.put_subject(&a, None).await, "put a");
    ok(store.put_subject(&c, None).await, "put c");

    let listed = ok(store.list_subjects(&shared).await, "list shared");
    assert_eq!(
        listed,
        vec![a.clone(), b.clone()],
        "owners of the shared namespace"
    );
    assert_eq!(
        ok(store.list_subjects(&own).await, "list own"),
        vec![b.clone()]
    );
    assert!(
        ok(
            store.list_subjects(&unique_name("nobody")).await,
            "list none"
        )
        .is_empty(),
        "a namespace nobody owns has no subjects"
    );
    // `a` is blocked: the namespace resolves to `b`.
    assert_identity(
        &ok(store.identity_for_namespace(&shared).await, "by shared ns"),
        &b,
        &shared,
        &kb,
        &UserLimits::default(),
    );
    assert_identity(
        &ok(
            store.find_identity(&same_uuid).await,
            "same uuid, other key",
        ),
        &c,
        &lone,
        &same_uuid,
        &UserLimits::default(),
    );
    assert_err!(
        store.find_identity(&ka).await,
        Error::NotFound { .. },
        "blocked entry sharing a uuid"
    );
    // Unblock `a`: it comes first by name.
    replace_subject(
        store,
        &Subject {
            blocked: false,
            ..a.clone()
        },
        "unblock a",
    )
    .await;
    assert_eq!(
        ok(store.identity_for_namespace(&shared).await, "by shared ns").subject,
        a.subject,
        "the first unblocked owner by name"
    );
    assert_identity(
        &ok(store.find_identity(&ka).await, "a's key"),
        &Subject {
            blocked: false,
            ..a.clone()
        },
        &shared,
        &ka,
        &UserLimits::default(),
    );
    ok(store.find_identity(&same_uuid).await, "c's key still");

    let mine = |all: Vec<EntityName>| -> Vec<EntityName> {
        all.into_iter()
            .filter(|n| [&shared, &own, &lone].contains(&n))
            .collect()
    };
    let all = ok(store.list_namespaces().await, "list namespaces");
    let mut sorted = all.clone();
    sorted.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    sorted.dedup();
    assert_eq!(all, sorted, "namespaces sorted, each once");
    let mut expected = vec![shared.clone(), own.clone(), lone.clone()];
    expected.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(
        mine(all),
        expected,
        "every owned namespace, blocked owners' too"
    );

    // Dropping `own` from `b` removes it from the lists.
    b.namespaces.retain(|n| n.name != own);
    replace_subject(store, &b, "drop own").await;
    assert!(ok(store.list_subjects(&own).await, "list own").is_empty());
    assert!(
        !ok(store.list_namespaces().await, "list namespaces").contains(&own),
        "a namespace nobody owns any more"
    );
    // A namespace with only limits is not listed.
    let only_limits = unique_name("limitsonly");
    ok(
        store.put_limits(&only_limits, &UserLimits::default()).await,
        "limits only",
    );
    assert!(!ok(store.list_namespaces().await, "list").contains(&only_limits));
}

/// Limits documents: missing is `NotFound`; put then get returns what was written; put
/// replaces the whole document; delete removes it (the identity falls back to no limits) and
/// a second delete is `NotFound`.
pub async fn limits_get_put_delete(store: &dyn Store) {
    let (subject, ns, key) = fresh_subject();
    ok(store.put_subject(&subject, None).await, "put subject");
    assert_err!(
        store.get_limits(&ns).await,
        Error::NotFound { .. },
        "limits before any were set"
    );
    assert_err!(
        store.delete_limits(&ns).await,
        Error::NotFound { .. },
        "delete limits before any were set"
    );
    let full = UserLimits {
        invocations_per_minute: Some(0),
        concurrent_invocations: Some(5),
        fires_per_minute: Some(6),
        allowed_kinds: Some(vec!["python:3".into()]),
        store_activations: Some(true),
    };
    ok(store.put_limits(&ns, &full).await, "put");
    assert_eq!(ok(store.get_limits(&ns).await, "get"), full);
    let partial = UserLimits {
        concurrent_invocations: Some(2),
        ..Default::default()
    };
    ok(store.put_limits(&ns, &partial).await, "replace");
    assert_eq!(
        ok(store.get_limits(&ns).await, "get after replace"),
        partial,
        "put_limits replaces the whole document"
    );
    assert_eq!(ok(store.find_identity(&key).await, "find").limits, partial);
    ok(store.delete_limits(&ns).await, "delete");
    assert_err!(
        store.get_limits(&ns).await,
        Error::NotFound { .. },
        "get after delete"
    );
    assert_eq!(
        ok(store.find_identity(&key).await, "find after delete").limits,
        UserLimits::default(),
        "deleted limits no longer apply"
    );
    assert_err!(
        store.delete_limits(&ns).await,
        Error::NotFound { .. },
        "delete again"
    );
    // Limits of one namespace are not another's.
    let other = unique_name("subj");
    ok(store.put_limits(&other, &full).await, "other");
    assert_err!(
        store.get_limits(&ns).await,
        Error::NotFound { .. },
        "limits are per namespace"
    );
}

/// Eight concurrent creates of one subject: exactly one succeeds, the others get
/// `AlreadyExists`, and the stored record is the winner's.
pub async fn concurrent_subject_creates_single_winner(store: &dyn Store) {
    let ns = unique_name("race");
    let keys: Vec<AuthKey> = (0..8).map(|_| AuthKey::generate()).collect();
    let candidates: Vec<Subject> = keys
        .iter()
        .map(|k| Subject {
            subject: format!("{ns}-user"),
            ..Subject::single(ns.clone(), k)
        })
        .collect();
    let results =
        futures::future::join_all(candidates.iter().map(|s| store.put_subject(s, None))).await;
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.is_ok().then_some(i))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one create must win: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, Error::AlreadyExists { .. }),
                "losers get AlreadyExists, got {e:?}"
            );
        }
    }
    let stored = ok(store.get_subject(&candidates[0].subject).await, "get");
    assert_eq!(stored.value, candidates[winners[0]], "the winner is stored");
    ok(store.find_identity(&keys[winners[0]]).await, "winner's key");
    for (i, k) in keys.iter().enumerate() {
        if i != winners[0] {
            assert_err!(
                store.find_identity(k).await,
                Error::NotFound { .. },
                "a losing create's key"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

/// Eight concurrent creates of one id: exactly one succeeds, the others get `AlreadyExists`.
pub async fn concurrent_creates_single_winner(store: &dyn Store) {
    let ns = ns_path(&unique_name("race"));
    let candidates: Vec<Entity> = (0..8u64)
        .map(|i| touched(&action(&ns, "x", 1_000), i))
        .collect();
    let results =
        futures::future::join_all(candidates.iter().map(|e| store.put_entity(e, None))).await;
    let winners: Vec<(usize, &Revision)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().ok().map(|rev| (i, rev)))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one create must win: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, Error::AlreadyExists { .. }),
                "losers get AlreadyExists, got {e:?}"
            );
        }
    }
    let (i, rev) = winners[0];
    let got = ok(store.get_entity(&fqn(&ns, "x")).await, "get");
    assert_eq!(
        got.value, candidates[i],
        "the stored document must be the winner's"
    );
    assert_eq!(&got.rev, rev);
}

/// Eight concurrent updates at the same revision: exactly one succeeds, the others get
/// `Conflict`.
pub async fn concurrent_updates_single_winner(store: &dyn Store) {
    let ns = ns_path(&unique_name("urace"));
    let base = trigger(&ns, "t", 1_000);
    let rev = create(store, &base).await;
    let candidates: Vec<Entity> = (0..8u64).map(|i| touched(&base, 2_000 + i)).collect();
    let results: Vec<Result<Revision>> =
        futures::future::join_all(candidates.iter().map(|e| store.put_entity(e, Some(&rev)))).await;
    let winners: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one update must win: {results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, Error::Conflict { .. }),
                "losers get Conflict, got {e:?}"
            );
        }
    }
    let got = ok(store.get_entity(&fqn(&ns, "t")).await, "get");
    assert_eq!(got.value, candidates[winners[0]]);
}

// ---------------------------------------------------------------------------------------------
// Serialization details
// ---------------------------------------------------------------------------------------------

fn detailed_params() -> Parameters {
    let mut p = Parameters::new()
        .with("zeta", json!("last letter first"))
        .with(
            "alpha",
            json!({"nested": {"b": [1, 2.5, -3, null, true], "a": "x"}}),
        )
        .with("number", json!(12_345_678_901_234_u64))
        .with("float", json!(0.1))
        .with("negative", json!(-42))
        .with(
            "unicode",
            json!("héllo ✓ 日本 \u{1F600} \"quoted\" \\ back\nslash"),
        )
        .with("empty", json!(""))
        .with("null", json!(null))
        .with("array", json!([{"k": 1}, [], {}]))
        .with("Middle", json!(false));
    p.insert(Param {
        key: "init-var".into(),
        value: json!("env value"),
        init: true,
        encryption: None,
    });
    p.insert(Param {
        key: "secret".into(),
        value: json!("ciphertext=="),
        init: false,
        encryption: Some("aes-256".into()),
    });
    p
}

fn key_order(p: &Parameters) -> Vec<String> {
    p.iter().map(|p| p.key.clone()).collect()
}

/// Documents survive the adapter's encoding intact: parameter and annotation order and values
/// (nested, unicode, large and fractional numbers, `init`, `encryption`), every exec variant,
/// package bindings, trigger rule maps, rule references and full activation records.
pub async fn json_details_survive(store: &dyn Store) {
    let ns_name = unique_name("json");
    let ns = ns_path(&ns_name);
    let params = detailed_params();
    let annotations = Parameters::new()
        .with("web-export", json!(true))
        .with("a", json!(1))
        .with("description", json!("ünïcödé"))
        .with("raw-http", json!(false));
    let limits = ActionLimits {
        timeout: 1_234,
        memory: 321,
        logs: 3,
        concurrency: 1,
        instances: Some(5),
    };
    let exec_variants = [
        Exec::Code {
            kind: "python:3".into(),
            code: "def main(args):\n    return {\"ok\": \"✓\"}\n".into(),
            binary: false,
            main: Some("main".into()),
        },
        Exec::Code {
            kind: "nodejs:20".into(),
            code: "UEsDBAoAAAAAAA==".into(),
            binary: true,
            main: Some("handler".into()),
        },
        Exec::Blackbox {
            image: "example/image:1.2".into(),
            code: Some("echo hi".into()),
            binary: false,
            main: None,
        },
        Exec::Sequence {
            components: vec![
                format!("/{ns}/one"),
                format!("/{ns}/pkg/two"),
                "/other/three".into(),
            ],
        },
    ];
    let mut entities = Vec::new();
    for (i, exec) in exec_variants.into_iter().enumerate() {
        entities.push(Entity::Action(Action {
            namespace: ns.clone(),
            name: name(&format!("act{i}")),
            version: SemVer {
                major: 2,
                minor: 10,
                patch: 300 + i as u32,
            },
            publish: i % 2 == 0,
            exec,
            parameters: params.clone(),
            limits,
            annotations: annotations.clone(),
            updated: 1_700_000_000_123 + i as u64,
        }));
    }
    entities.push(Entity::Package(Package {
        namespace: ns.clone(),
        name: name("bound"),
        version: SemVer::default(),
        publish: false,
        binding: Some(Binding {
            namespace: name("whisk.system"),
            name: name("utils"),
        }),
        parameters: params.clone(),
        annotations: annotations.clone(),
        updated: 7,
    }));
    let mut rules = BTreeMap::new();
    rules.insert(
        format!("{ns}/r1"),
        ReducedRule {
            action: EntityRef {
                path: ns.join(&name("pkg")),
                name: name("act"),
            },
            status: "active".into(),
        },
    );
    rules.insert(
        format!("{ns}/r0"),
        ReducedRule {
            action: EntityRef {
                path: ns.clone(),
                name: name("a b"),
            },
            status: "inactive".into(),
        },
    );
    let mut trigger_limits = serde_json::Map::new();
    trigger_limits.insert("z".into(), json!(1));
    trigger_limits.insert("a".into(), json!({"x": [1, 2]}));
    entities.push(Entity::Trigger(Trigger {
        namespace: ns.clone(),
        name: name("trg"),
        version: SemVer::default(),
        publish: true,
        parameters: params.clone(),
        limits: trigger_limits,
        annotations: annotations.clone(),
        rules: Some(rules),
        updated: 8,
    }));
    entities.push(Entity::Rule(Rule {
        namespace: ns.clone(),
        name: name("r@1.x&y-z"),
        version: SemVer::default(),
        publish: false,
        annotations: annotations.clone(),
        trigger: EntityRef {
            path: ns.clone(),
            name: name("trg"),
        },
        action: EntityRef {
            path: ns.join(&name("pkg")),
            name: name("act"),
        },
        updated: 9,
    }));
    let want_params = key_order(&params);
    let want_annotations = key_order(&annotations);
    for e in &entities {
        create(store, e).await;
        let id = FullyQualifiedName::new(e.namespace().clone(), e.name().clone());
        let got = ok(store.get_entity(&id).await, &format!("get {id}"));
        assert_eq!(&got.value, e, "{id} changed in the store");
        // Equality above is already order-sensitive; say so explicitly for a clearer failure.
        let (got_params, got_annotations) = match &got.value {
            Entity::Action(a) => (Some(&a.parameters), &a.annotations),
            Entity::Package(p) => (Some(&p.parameters), &p.annotations),
            Entity::Trigger(t) => (Some(&t.parameters), &t.annotations),
            Entity::Rule(r) => (None, &r.annotations),
        };
        if let Some(p) = got_params {
            assert_eq!(key_order(p), want_params, "{id}: parameter order");
        }
        assert_eq!(
            key_order(got_annotations),
            want_annotations,
            "{id}: annotation order"
        );
    }
    let listed = ok(
        store
            .list_entities(&ns, EntityKind::Action, ListQuery::default())
            .await,
        "list",
    );
    assert_eq!(listed.len(), 4);
    for e in &listed {
        assert!(
            entities.contains(e),
            "listed {} differs from what was stored",
            e.doc_id()
        );
    }

    let mut a = activation(&ns_name, "pkg/act0", 1_700_000_000_999);
    a.cause = Some(ActivationId::generate());
    a.response = ActivationResponse {
        status_code: crate::activation::StatusCode::ApplicationError,
        result: Some(json!({"error": {"deep": ["x", 1, {"y": null}], "msg": "ünï"}})),
        size: Some(123),
    };
    a.logs = vec![
        "line one".into(),
        String::new(),
        "tab\tand \u{1F600}".into(),
    ];
    a.version = SemVer {
        major: 0,
        minor: 3,
        patch: 9,
    };
    a.publish = true;
    a.annotations =
        annotations.merged(&Parameters::new().with("limits", json!({"timeout": 1, "memory": 2})));
    a.annotations.set("path", json!(format!("{ns}/pkg/act0")));
    assert!(ok(store.put_activation(&a).await, "put activation"));
    let got = ok(
        store.get_activation(&ns_name, &a.activation_id).await,
        "get activation",
    );
    assert_eq!(got, a, "activation record changed in the store");
    assert_eq!(
        key_order(&got.annotations),
        key_order(&a.annotations),
        "activation annotation order"
    );
    let listed = ok(
        store
            .list_activations(&ns_name, &ActivationQuery::default())
            .await,
        "list",
    );
    assert_eq!(listed, vec![a]);
}

// ---------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------

/// A fresh collection name `<prefix>-<16 hex>` (collections are shared by every case).
fn unique_collection(prefix: &str) -> String {
    let n: u64 = rand::random();
    format!("{prefix}-{n:016x}")
}

/// Create, read, replace at the current revision, refuse stale revisions and second creates,
/// delete at the current revision, and `NotFound` afterwards; values come back as written.
pub async fn document_crud_and_revisions(store: &dyn Store) {
    let c = unique_collection("docs");
    let id = "guest/my trigger"; // ids may hold '/' and spaces
    assert_err!(
        store.get_document(&c, id).await,
        Error::NotFound { .. },
        "get of a missing document"
    );
    let v1 = json!({"cron": "*/2 * * * * *", "n": 12_345_678_901_234_u64, "nested": {"a": [1, null, "x"]}});
    let r1 = ok(store.put_document(&c, id, &v1, None).await, "create");
    let got = ok(store.get_document(&c, id).await, "get");
    assert_eq!(got.value, v1);
    assert_eq!(got.rev, r1);
    assert_err!(
        store
            .put_document(&c, id, &json!({"again": true}), None)
            .await,
        Error::AlreadyExists { .. },
        "second create"
    );
    let v2 = json!({"cron": "* * * * *"});
    let r2 = ok(store.put_document(&c, id, &v2, Some(&r1)).await, "replace");
    assert_ne!(r1, r2, "a write makes a new revision");
    assert_eq!(ok(store.get_document(&c, id).await, "get").value, v2);
    assert_err!(
        store.put_document(&c, id, &v1, Some(&r1)).await,
        Error::Conflict { .. },
        "replace at a stale revision"
    );
    assert_err!(
        store.delete_document(&c, id, &r1).await,
        Error::Conflict { .. },
        "delete at a stale revision"
    );
    ok(store.delete_document(&c, id, &r2).await, "delete");
    assert_err!(
        store.get_document(&c, id).await,
        Error::NotFound { .. },
        "get after delete"
    );
    assert_err!(
        store.delete_document(&c, id, &r2).await,
        Error::NotFound { .. },
        "delete of a deleted document"
    );
    assert_err!(
        store.put_document(&c, id, &v2, Some(&r2)).await,
        Error::Conflict { .. },
        "replace of a deleted document"
    );
    // Created again after a delete: a create works, with a revision never seen before.
    let r3 = ok(store.put_document(&c, id, &v1, None).await, "create again");
    assert_ne!(r3, r1);
    assert_ne!(r3, r2);
}

/// A collection lists exactly its own documents, in id order; other collections and
/// entities never appear in it.
pub async fn documents_listed_per_collection(store: &dyn Store) {
    let a = unique_collection("lista");
    // A collection whose name extends the other's must not be mixed in.
    let b = format!("{a}x");
    assert!(ok(store.list_documents(&a).await, "empty list").is_empty());
    for id in ["b", "a/2", "a/10", "c c"] {
        ok(
            store.put_document(&a, id, &json!({"id": id}), None).await,
            "create",
        );
    }
    ok(
        store
            .put_document(&b, "a", &json!({"other": true}), None)
            .await,
        "create b",
    );
    let listed = ok(store.list_documents(&a).await, "list");
    let ids: Vec<&str> = listed.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["a/10", "a/2", "b", "c c"], "id (byte) order");
    for d in &listed {
        assert_eq!(d.value, json!({"id": d.id}));
        assert_eq!(
            ok(store.get_document(&a, &d.id).await, "get").rev,
            d.rev,
            "listed revisions are current"
        );
    }
    let only_b = ok(store.list_documents(&b).await, "list b");
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].value, json!({"other": true}));
}

/// Eight concurrent replacements at the same revision: exactly one wins, the others get
/// `Conflict`; eight concurrent creates: exactly one wins, the others get `AlreadyExists`.
pub async fn concurrent_document_updates_single_winner(store: &dyn Store) {
    let c = unique_collection("race");
    let c = c.as_str();
    let creates = futures::future::join_all(
        (0..8).map(|i| async move { store.put_document(c, "x", &json!({"i": i}), None).await }),
    )
    .await;
    let winners = creates.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "exactly one create must win: {creates:?}");
    for r in &creates {
        if let Err(e) = r {
            assert!(matches!(e, Error::AlreadyExists { .. }), "got {e:?}");
        }
    }
    let base = ok(store.get_document(c, "x").await, "get");
    let updates = futures::future::join_all((0..8).map(|i| {
        let rev = base.rev.clone();
        async move {
            store
                .put_document(c, "x", &json!({"u": i}), Some(&rev))
                .await
                .map(|r| (i, r))
        }
    }))
    .await;
    let won: Vec<&(i32, Revision)> = updates.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "exactly one update must win: {updates:?}");
    for r in &updates {
        if let Err(e) = r {
            assert!(matches!(e, Error::Conflict { .. }), "got {e:?}");
        }
    }
    let got = ok(store.get_document(c, "x").await, "get");
    assert_eq!(got.value, json!({"u": won[0].0}));
    assert_eq!(got.rev, won[0].1);
}

/// Bad collections and ids are refused with `BadRequest`, and nothing is written.
pub async fn document_bad_keys_refused(store: &dyn Store) {
    let good = unique_collection("keys");
    let long = "x".repeat(crate::store::MAX_DOCUMENT_ID_BYTES + 1);
    for (c, id) in [
        ("", "a"),
        ("Upper", "a"),
        ("_design", "a"),
        ("9lives", "a"),
        ("has/slash", "a"),
        (good.as_str(), ""),
        (good.as_str(), "line\nbreak"),
        (good.as_str(), long.as_str()),
    ] {
        assert_err!(
            store.put_document(c, id, &json!({}), None).await,
            Error::BadRequest { .. },
            "put {c:?}/{id:?}"
        );
        assert_err!(
            store.get_document(c, id).await,
            Error::BadRequest { .. },
            "get {c:?}/{id:?}"
        );
    }
    assert!(ok(store.list_documents(&good).await, "list").is_empty());
}
