//! The [`Authenticator`] conformance suite.
//!
//! Each case takes the authenticator under test and the [`Store`] it reads subjects from; the
//! case writes its own subjects (with random names, see [`unique_name`]) through the store,
//! then authenticates. [`revocation_takes_effect_at_once`] changes subjects and limits after
//! authenticating with them: an authenticator that caches identities passes it only if the
//! writes through that store invalidate its cache (the contract's "revocation at once").
//!
//! Run the suite with [`authenticator_conformance!`](crate::authenticator_conformance):
//!
//! ```text
//! async fn setup() -> Option<(Arc<dyn faas_core::Authenticator>, Arc<dyn faas_core::Store>)> {
//!     let store: Arc<dyn faas_core::Store> = Arc::new(MyStore::new());
//!     Some((Arc::new(faas_core::StoreAuthenticator::new(Arc::clone(&store))), store))
//! }
//! faas_core::authenticator_conformance!(setup);
//! ```

use crate::auth::Authenticator;
use crate::identity::{AuthKey, Identity, Privilege, Subject};
use crate::limits::UserLimits;
use crate::names::EntityName;
use crate::store::{Store, StoreExt};
use crate::testkit::store::unique_name;
use crate::{Error, Result};

/// Expands to one `#[tokio::test]` per [`Authenticator`] conformance case.
///
/// `$setup` is an async function returning
/// `Option<(Arc<dyn Authenticator>, Arc<dyn Store>)>` where the authenticator reads subjects
/// from the store; `None` skips through [`testkit::skip`](crate::testkit::skip). Invoke it in a
/// module of its own (the tests are named after the cases).
#[macro_export]
macro_rules! authenticator_conformance {
    ($setup:path) => {
        $crate::__authenticator_conformance_cases!(
            $setup;
            valid_key_yields_identity,
            wrong_key_unauthenticated,
            unknown_uuid_unauthenticated,
            blocked_subject_unauthenticated,
            revocation_takes_effect_at_once,
        );
    };
}

/// Implementation detail of [`authenticator_conformance!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __authenticator_conformance_cases {
    ($setup:path; $($case:ident),* $(,)?) => {
        $(
            #[$crate::testkit::store::__tokio::test(crate = "faas_core::testkit::store::__tokio")]
            async fn $case() {
                let Some((auth, store)) = $setup().await else {
                    $crate::testkit::skip(concat!("authenticator conformance case ", stringify!($case)));
                    return;
                };
                let auth: ::std::sync::Arc<dyn $crate::Authenticator> = auth;
                let store: ::std::sync::Arc<dyn $crate::Store> = store;
                $crate::testkit::store::run_case(
                    stringify!($case),
                    $crate::testkit::auth::$case(&*auth, &*store),
                )
                .await;
            }
        )*
    };
}

/// Stores a fresh subject owning one fresh namespace; returns it, the namespace and the key.
async fn fresh_subject(store: &dyn Store, blocked: bool) -> (Subject, EntityName, AuthKey) {
    let ns = unique_name("auth");
    let key = AuthKey::generate();
    let mut subject = Subject::single(ns.clone(), &key);
    subject.subject = format!("{ns}-user");
    subject.blocked = blocked;
    store
        .put_subject(&subject, None)
        .await
        .unwrap_or_else(|e| panic!("put subject {}: {e:?}", subject.subject));
    (subject, ns, key)
}

fn expect_unauthenticated(r: Result<Identity>, what: &str) {
    match r {
        Err(Error::Unauthenticated) => {}
        other => panic!("{what}: expected Error::Unauthenticated, got {other:?}"),
    }
}

/// A known, unblocked key yields its identity: subject, namespace and uuid, the key itself,
/// all four rights and the namespace's limits; asking again gives the same identity.
pub async fn valid_key_yields_identity(auth: &dyn Authenticator, store: &dyn Store) {
    let ns = unique_name("auth");
    let key = AuthKey::generate();
    let limits = UserLimits {
        invocations_per_minute: Some(9),
        concurrent_invocations: Some(2),
        ..Default::default()
    };
    store
        .put_limits(&ns, &limits)
        .await
        .unwrap_or_else(|e| panic!("put limits: {e:?}"));
    let mut subject = Subject::single(ns.clone(), &key);
    subject.subject = format!("{ns}-user");
    store
        .put_subject(&subject, None)
        .await
        .unwrap_or_else(|e| panic!("put subject: {e:?}"));

    let id = auth
        .authenticate(&key)
        .await
        .unwrap_or_else(|e| panic!("valid key refused: {e:?}"));
    assert_eq!(id.subject, subject.subject);
    assert_eq!(id.namespace.name, ns);
    assert_eq!(id.namespace.uuid, key.uuid);
    assert_eq!(id.authkey, key);
    assert_eq!(id.rights.len(), 4, "rights: {:?}", id.rights);
    for p in [
        Privilege::Read,
        Privilege::Put,
        Privilege::Delete,
        Privilege::Activate,
    ] {
        assert!(id.rights.contains(&p), "identity lacks {p:?}");
    }
    assert_eq!(id.limits, limits);
    let again = auth
        .authenticate(&key)
        .await
        .unwrap_or_else(|e| panic!("second authentication: {e:?}"));
    assert_eq!(
        again, id,
        "a second authentication must give the same identity"
    );

    // Another subject's key gives that subject, not a cached neighbour.
    let (other, other_ns, other_key) = fresh_subject(store, false).await;
    let id2 = auth
        .authenticate(&other_key)
        .await
        .unwrap_or_else(|e| panic!("second subject refused: {e:?}"));
    assert_eq!(id2.subject, other.subject);
    assert_eq!(id2.namespace.name, other_ns);
}

/// A known uuid with a wrong secret is `Unauthenticated`, also after the right secret was used.
pub async fn wrong_key_unauthenticated(auth: &dyn Authenticator, store: &dyn Store) {
    let (_, _, key) = fresh_subject(store, false).await;
    let wrong = AuthKey {
        uuid: key.uuid.clone(),
        key: AuthKey::generate().key,
    };
    expect_unauthenticated(auth.authenticate(&wrong).await, "wrong secret");
    auth.authenticate(&key)
        .await
        .unwrap_or_else(|e| panic!("right secret refused: {e:?}"));
    expect_unauthenticated(
        auth.authenticate(&wrong).await,
        "wrong secret after a good one",
    );
    let truncated = AuthKey {
        uuid: key.uuid.clone(),
        key: key.key[..key.key.len() - 1].to_string(),
    };
    expect_unauthenticated(auth.authenticate(&truncated).await, "truncated secret");
}

/// An unknown uuid is `Unauthenticated`.
pub async fn unknown_uuid_unauthenticated(auth: &dyn Authenticator, store: &dyn Store) {
    let (_, _, key) = fresh_subject(store, false).await;
    expect_unauthenticated(
        auth.authenticate(&AuthKey::generate()).await,
        "unknown uuid",
    );
    let other_uuid = AuthKey {
        uuid: AuthKey::generate().uuid,
        key: key.key.clone(),
    };
    expect_unauthenticated(
        auth.authenticate(&other_uuid).await,
        "right secret, unknown uuid",
    );
}

/// A blocked subject's valid key is `Unauthenticated`.
pub async fn blocked_subject_unauthenticated(auth: &dyn Authenticator, store: &dyn Store) {
    let (_, _, key) = fresh_subject(store, true).await;
    expect_unauthenticated(auth.authenticate(&key).await, "blocked subject");
    expect_unauthenticated(
        auth.authenticate(&key).await,
        "blocked subject, asked again",
    );
}

/// Blocking, unblocking, rotating a key, changing limits and deleting the subject, each
/// written through the store after the key was used, show at the very next authentication.
pub async fn revocation_takes_effect_at_once(auth: &dyn Authenticator, store: &dyn Store) {
    let (mut subject, ns, key) = fresh_subject(store, false).await;
    let ok = |r: Result<Identity>, what: &str| r.unwrap_or_else(|e| panic!("{what}: {e:?}"));
    ok(auth.authenticate(&key).await, "before any change");

    subject.blocked = true;
    ok_write(store.upsert_subject(&subject).await, "block");
    expect_unauthenticated(auth.authenticate(&key).await, "right after blocking");
    subject.blocked = false;
    ok_write(store.upsert_subject(&subject).await, "unblock");
    ok(auth.authenticate(&key).await, "right after unblocking");

    let limits = UserLimits {
        invocations_per_minute: Some(3),
        ..Default::default()
    };
    store
        .put_limits(&ns, &limits)
        .await
        .unwrap_or_else(|e| panic!("put limits: {e:?}"));
    assert_eq!(
        ok(auth.authenticate(&key).await, "after limits").limits,
        limits,
        "changed limits at the next authentication"
    );

    let rotated = AuthKey {
        uuid: key.uuid.clone(),
        key: AuthKey::generate().key,
    };
    subject.namespaces[0].key = rotated.key.clone();
    ok_write(store.upsert_subject(&subject).await, "rotate");
    expect_unauthenticated(
        auth.authenticate(&key).await,
        "old key right after rotation",
    );
    ok(auth.authenticate(&rotated).await, "new key");

    let current = store
        .get_subject(&subject.subject)
        .await
        .unwrap_or_else(|e| panic!("get subject: {e:?}"));
    store
        .delete_subject(&subject.subject, &current.rev)
        .await
        .unwrap_or_else(|e| panic!("delete subject: {e:?}"));
    expect_unauthenticated(auth.authenticate(&rotated).await, "right after deletion");
}

fn ok_write<T>(r: Result<T>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e:?}"))
}
