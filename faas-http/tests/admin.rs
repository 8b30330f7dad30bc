//! The admin API (`/admin/v1`) through the controller's router: off by default, its own
//! credential (never a tenant key), `wskadmin`'s operations and messages, bad input refused
//! with nothing written, and every change seen by the tenant API at the next request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use faas_core::EntityName;
use faas_http::ControllerConfig;
use faas_http::admin::{AdminConfig, AdminCredential};
use support::*;

const TOKEN: &str = "operator-credential-0123456789abcdef0123456789";

async fn admin_env() -> Env {
    env_with(
        ControllerConfig::default().with_admin_credential(AdminCredential::new(TOKEN).unwrap()),
    )
    .await
}

/// An admin request with `Authorization: Bearer <token>` (or `auth` as given).
async fn admin(router: &Router, method: Method, path: &str, body: Option<Value>) -> Reply {
    admin_as(router, method, path, body, Some(&format!("Bearer {TOKEN}"))).await
}

async fn admin_as(
    router: &Router,
    method: Method,
    path: &str,
    body: Option<Value>,
    auth: Option<&str>,
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("/admin/v1{path}"));
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    call(router, req).await
}

/// A tenant request with `key`.
async fn tenant(router: &Router, method: Method, path: &str, key: &str) -> Reply {
    call(router, request(method, path, Some(key), None)).await
}

fn key_of(r: &Reply) -> String {
    let js = r.json();
    format!(
        "{}:{}",
        js["uuid"].as_str().unwrap(),
        js["key"].as_str().unwrap()
    )
}

#[tokio::test]
async fn off_unless_configured() {
    let e = env().await;
    for auth in [None, Some(basic(GUEST)), Some(format!("Bearer {TOKEN}"))] {
        let r = admin_as(&e.router, Method::GET, "/namespaces", None, auth.as_deref()).await;
        r.assert_error(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
    }
    assert!(!AdminConfig::default().enabled());
}

#[tokio::test]
async fn only_the_operator_credential_opens_it() {
    let e = admin_env().await;
    let r = admin_as(&e.router, Method::GET, "/namespaces", None, None).await;
    r.assert_error(
        StatusCode::UNAUTHORIZED,
        "The resource requires authentication, which was not supplied with the request",
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"faas admin\"")
    );
    // Tenant keys, however presented, and wrong credentials.
    for auth in [
        basic(GUEST),
        format!("Bearer {GUEST}"),
        format!("Bearer {}", &TOKEN[1..]),
        format!("Bearer {TOKEN}x"),
        format!("Basic {TOKEN}"),
        TOKEN.to_string(),
    ] {
        let r = admin_as(&e.router, Method::GET, "/namespaces", None, Some(&auth)).await;
        r.assert_error(
            StatusCode::UNAUTHORIZED,
            "The supplied authentication is invalid",
        );
    }
    // Also for writes: nothing happens.
    let r = admin_as(
        &e.router,
        Method::PUT,
        "/subjects/mallory/namespaces/mallory",
        None,
        Some(&basic(GUEST)),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(e.store.get_subject("mallory").await.is_err());
    // The operator credential is not a tenant key either.
    let r = call(
        &e.router,
        Request::builder()
            .uri("/api/v1/namespaces")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = admin(&e.router, Method::GET, "/namespaces", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!(["guest", "other"]));
    assert!(!format!("{:?}", e.controller.config()).contains(TOKEN));
}

#[tokio::test]
async fn users_namespaces_and_keys() {
    let e = admin_env().await;
    // user create alice-user --namespace alice
    let r = admin(
        &e.router,
        Method::PUT,
        "/subjects/alice-user/namespaces/alice",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    assert_eq!(r.json()["subject"], "alice-user");
    assert_eq!(r.json()["namespace"], "alice");
    let alice = key_of(&r);
    assert_eq!(alice.len(), 36 + 1 + 64);
    // The new key works at once, in its own namespace only.
    let r = tenant(&e.router, Method::GET, "/api/v1/namespaces", &alice).await;
    assert_eq!(r.json(), json!(["alice"]));
    let r = tenant(
        &e.router,
        Method::GET,
        "/api/v1/namespaces/guest/actions",
        &alice,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Again: the namespace exists.
    admin(
        &e.router,
        Method::PUT,
        "/subjects/alice-user/namespaces/alice",
        None,
    )
    .await
    .assert_error(StatusCode::CONFLICT, "Namespace already exists");
    // A second namespace for the same subject: 200 (the subject existed).
    let r = admin(
        &e.router,
        Method::PUT,
        "/subjects/alice-user/namespaces/alice2",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let alice2 = key_of(&r);
    let r = tenant(&e.router, Method::GET, "/api/v1/namespaces", &alice2).await;
    assert_eq!(r.json(), json!(["alice2"]));

    // user get: the record with both namespaces.
    let r = admin(&e.router, Method::GET, "/subjects/alice-user", None).await;
    let js = r.json();
    assert_eq!(js["subject"], "alice-user");
    assert_eq!(js["blocked"], false);
    let names: Vec<&str> = js["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "alice2"]);

    // Rotation: --revoke keeps the uuid, the old secret stops at once.
    let r = admin(
        &e.router,
        Method::PUT,
        "/subjects/alice-user/namespaces/alice",
        Some(json!({"revoke": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let rotated = key_of(&r);
    assert_eq!(rotated[..36], alice[..36], "same uuid");
    assert_ne!(rotated, alice);
    tenant(&e.router, Method::GET, "/api/v1/namespaces", &alice)
        .await
        .assert_error(
            StatusCode::UNAUTHORIZED,
            "The supplied authentication is invalid",
        );
    assert_eq!(
        tenant(&e.router, Method::GET, "/api/v1/namespaces", &rotated)
            .await
            .status,
        StatusCode::OK
    );
    // --force with a given key.
    let given = "11111111-2222-4333-8444-555555555555:".to_string() + &"g".repeat(64);
    let r = admin(
        &e.router,
        Method::PUT,
        "/subjects/alice-user/namespaces/alice",
        Some(json!({"force": true, "auth": given})),
    )
    .await;
    assert_eq!(key_of(&r), given);
    assert_eq!(
        tenant(&e.router, Method::GET, "/api/v1/namespaces", &given)
            .await
            .status,
        StatusCode::OK
    );
    // The same key for someone else: refused, nothing written.
    admin(
        &e.router,
        Method::PUT,
        "/subjects/bobby/namespaces/bobby",
        Some(json!({"auth": given})),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "authorization key is already in use");
    assert!(e.store.get_subject("bobby").await.is_err());

    // whois, with the key in the body.
    let r = admin(
        &e.router,
        Method::POST,
        "/whois",
        Some(json!({"auth": given})),
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"subject": "alice-user", "namespace": "alice"})
    );
    admin(
        &e.router,
        Method::POST,
        "/whois",
        Some(json!({"auth": "11111111-2222-4333-8444-555555555555:nope"})),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "Subject id is not recognized");

    // Delete one namespace entry, then the subject.
    admin(
        &e.router,
        Method::DELETE,
        "/subjects/alice-user/namespaces/nowhere",
        None,
    )
    .await
    .assert_error(
        StatusCode::NOT_FOUND,
        "Namespace 'nowhere' does not exist for 'alice-user'",
    );
    let r = admin(
        &e.router,
        Method::DELETE,
        "/subjects/alice-user/namespaces/alice2",
        None,
    )
    .await;
    assert_eq!(r.json(), json!({"message": "Namespace deleted"}));
    assert_eq!(
        tenant(&e.router, Method::GET, "/api/v1/namespaces", &alice2)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = admin(&e.router, Method::DELETE, "/subjects/alice-user", None).await;
    assert_eq!(r.json(), json!({"message": "Subject deleted"}));
    assert_eq!(
        tenant(&e.router, Method::GET, "/api/v1/namespaces", &given)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    admin(&e.router, Method::DELETE, "/subjects/alice-user", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "Subject to delete not found");
    admin(&e.router, Method::GET, "/subjects/alice-user", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "Subject not found");
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let e = admin_env().await;
    let cases: Vec<(&str, Option<Value>, &str)> = vec![
        (
            "/subjects/abcd/namespaces/abcd",
            None,
            "Subject name must be at least 5 characters",
        ),
        (
            "/subjects/_design/namespaces/space",
            None,
            "Subject name must not contain '/' or control characters, start with '_', or begin or end with white space",
        ),
        (
            "/subjects/carol-user/namespaces/-bad",
            None,
            "'-bad' is not a valid namespace name: The name of the entity contains illegal characters.",
        ),
        (
            "/subjects/carol-user/namespaces/carol",
            Some(json!({"auth": "not-a-uuid:".to_string() + &"k".repeat(64)})),
            "authorization id is not a valid UUID",
        ),
        (
            "/subjects/carol-user/namespaces/carol",
            Some(json!({"auth": "11111111-2222-4333-8444-555555555555:short"})),
            "authorization key must be at least 64 characters long",
        ),
        (
            "/subjects/carol-user/namespaces/carol",
            Some(
                json!({"auth": "11111111-2222-4333-8444-555555555555:".to_string() + &"k".repeat(65)}),
            ),
            "authorization key must be at most 64 characters long",
        ),
        (
            "/subjects/carol-user/namespaces/carol",
            Some(json!({"auth": "nocolon"})),
            "failed to determine authorization id and key: expected 'uuid:key'",
        ),
    ];
    for (path, body, message) in cases {
        admin(&e.router, Method::PUT, path, body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, message);
    }
    let r = admin(
        &e.router,
        Method::PUT,
        "/subjects/carol-user/namespaces/carol",
        Some(json!({"revoke": true, "admin": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().contains("unknown field `admin`"), "{}", r.error());
    let r = call(
        &e.router,
        Request::builder()
            .method(Method::PUT)
            .uri("/admin/v1/subjects/carol-user/namespaces/carol")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::from("{not json"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().starts_with("The request body is not valid JSON"));
    let r = call(
        &e.router,
        Request::builder()
            .method(Method::PUT)
            .uri("/admin/v1/subjects/carol-user/namespaces/carol")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::from(vec![b' '; 70 * 1024]))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing of it was written.
    assert!(e.store.get_subject("carol-user").await.is_err());
    assert!(e.store.get_subject("abcd").await.is_err());
    let r = admin(&e.router, Method::GET, "/namespaces", None).await;
    assert_eq!(r.json(), json!(["guest", "other"]));
    // Wrong methods.
    admin(&e.router, Method::POST, "/namespaces", None)
        .await
        .assert_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "HTTP method not allowed, supported methods: GET",
        );
    admin(&e.router, Method::GET, "/no/such/route", None)
        .await
        .assert_error(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
}

#[tokio::test]
async fn blocking_takes_effect_at_the_next_request() {
    let e = admin_env().await;
    let r = admin(
        &e.router,
        Method::PUT,
        "/subjects/dave-user/namespaces/dave",
        None,
    )
    .await;
    let dave = key_of(&r);
    assert_eq!(
        tenant(&e.router, Method::GET, "/api/v1/namespaces", &dave)
            .await
            .status,
        StatusCode::OK
    );
    let r = admin(&e.router, Method::POST, "/subjects/dave-user/block", None).await;
    assert_eq!(
        r.json(),
        json!({"message": "'dave-user' blocked successfully"})
    );
    tenant(&e.router, Method::GET, "/api/v1/namespaces", &dave)
        .await
        .assert_error(
            StatusCode::UNAUTHORIZED,
            "The supplied authentication is invalid",
        );
    // A blocked subject cannot be given keys; it is still there.
    admin(
        &e.router,
        Method::PUT,
        "/subjects/dave-user/namespaces/dave9",
        None,
    )
    .await
    .assert_error(
        StatusCode::CONFLICT,
        "The subject you want to edit is blocked",
    );
    assert_eq!(
        admin(&e.router, Method::GET, "/subjects/dave-user", None)
            .await
            .json()["blocked"],
        true
    );
    // Blocked owners are not listed as identities (OpenWhisk's view), but the namespace is.
    admin(&e.router, Method::GET, "/namespaces/dave/identities", None)
        .await
        .assert_error(
            StatusCode::NOT_FOUND,
            "no identities found for namespace 'dave'",
        );
    let r = admin(&e.router, Method::GET, "/namespaces", None).await;
    assert!(r.json().as_array().unwrap().contains(&json!("dave")));

    let r = admin(&e.router, Method::POST, "/subjects/dave-user/unblock", None).await;
    assert_eq!(
        r.json(),
        json!({"message": "'dave-user' unblocked successfully"})
    );
    assert_eq!(
        tenant(&e.router, Method::GET, "/api/v1/namespaces", &dave)
            .await
            .status,
        StatusCode::OK
    );
    admin(&e.router, Method::POST, "/subjects/nobody-here/block", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "'nobody-here' missing");
}

#[tokio::test]
async fn shared_namespaces_list_every_owner() {
    let e = admin_env().await;
    let a = key_of(
        &admin(
            &e.router,
            Method::PUT,
            "/subjects/userA/namespaces/space1",
            None,
        )
        .await,
    );
    let b = key_of(
        &admin(
            &e.router,
            Method::PUT,
            "/subjects/userB/namespaces/space1",
            None,
        )
        .await,
    );
    let r = admin(
        &e.router,
        Method::GET,
        "/namespaces/space1/identities",
        None,
    )
    .await;
    let rows = r.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["subject"], "userA");
    assert_eq!(
        format!(
            "{}:{}",
            rows[0]["uuid"].as_str().unwrap(),
            rows[0]["key"].as_str().unwrap()
        ),
        a
    );
    assert_eq!(rows[1]["subject"], "userB");
    assert_eq!(
        format!(
            "{}:{}",
            rows[1]["uuid"].as_str().unwrap(),
            rows[1]["key"].as_str().unwrap()
        ),
        b
    );
    // Both act in space1.
    for k in [&a, &b] {
        assert_eq!(
            tenant(&e.router, Method::GET, "/api/v1/namespaces", k)
                .await
                .json(),
            json!(["space1"])
        );
    }
    admin(
        &e.router,
        Method::GET,
        "/namespaces/nowhere/identities",
        None,
    )
    .await
    .assert_error(
        StatusCode::NOT_FOUND,
        "no identities found for namespace 'nowhere'",
    );
}

#[tokio::test]
async fn limits_are_merged_checked_and_applied_at_once() {
    let e = admin_env().await;
    let r = admin(
        &e.router,
        Method::PUT,
        "/subjects/erin-user/namespaces/erin",
        None,
    )
    .await;
    let erin = key_of(&r);
    // Unknown namespaces are refused.
    admin(&e.router, Method::GET, "/namespaces/nowhere/limits", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "Namespace 'nowhere' does not exist");
    admin(
        &e.router,
        Method::PUT,
        "/namespaces/nowhere/limits",
        Some(json!({"invocationsPerMinute": 1})),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "Namespace 'nowhere' does not exist");
    let r = admin(&e.router, Method::GET, "/namespaces/erin/limits", None).await;
    assert_eq!(r.json(), json!({"namespace": "erin", "limits": null}));

    // Out of range, wrong types, unknown limits, nothing: 400, nothing written.
    for (body, message) in [
        (
            json!({"invocationsPerMinute": -1}),
            "invocationsPerMinute must be between 0 and 2147483647, not -1",
        ),
        (
            json!({"concurrentInvocations": 2147483648u64}),
            "concurrentInvocations must be between 0 and 2147483647, not 2147483648",
        ),
        (
            json!({"firesPerMinute": "many"}),
            "firesPerMinute must be an integer",
        ),
        (
            json!({"storeActivations": "yes"}),
            "storeActivations must be a boolean",
        ),
        (
            json!({"allowedKinds": "nodejs:20"}),
            "allowedKinds must be an array of strings",
        ),
        (
            json!({"allowedKinds": ["nodejs:20", "bad kind"]}),
            "allowedKinds: 'bad kind' is not a runtime kind (1 to 256 visible characters, no commas)",
        ),
        (json!({}), "Give at least one limit to set"),
    ] {
        admin(
            &e.router,
            Method::PUT,
            "/namespaces/erin/limits",
            Some(body),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, message);
    }
    let r = admin(
        &e.router,
        Method::PUT,
        "/namespaces/erin/limits",
        Some(json!({"invocationsPerMinute": 1, "maxActionMemory": 1})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.error()
            .starts_with("'maxActionMemory' is not a namespace limit")
    );
    let r = admin(&e.router, Method::GET, "/namespaces/erin/limits", None).await;
    assert_eq!(r.json()["limits"], Value::Null, "nothing was written");

    // Set, then merge.
    let r = admin(
        &e.router,
        Method::PUT,
        "/namespaces/erin/limits",
        Some(json!({"invocationsPerMinute": 1, "allowedKinds": ["nodejs:20"]})),
    )
    .await;
    assert_eq!(r.json()["created"], true);
    assert_eq!(r.json()["message"], "Limits successfully set for 'erin'");
    let r = admin(
        &e.router,
        Method::PUT,
        "/namespaces/erin/limits",
        Some(json!({"concurrentInvocations": 5, "storeActivations": false, "allowedKinds": null})),
    )
    .await;
    assert_eq!(r.json()["created"], false);
    assert_eq!(
        r.json()["message"],
        "Limits successfully updated for 'erin'"
    );
    assert_eq!(
        r.json()["limits"],
        json!({"invocationsPerMinute": 1, "concurrentInvocations": 5, "storeActivations": false})
    );
    // The tenant sees them at the next request...
    let r = tenant(&e.router, Method::GET, "/api/v1/namespaces/_/limits", &erin).await;
    assert_eq!(r.json()["invocationsPerMinute"], 1);
    assert_eq!(r.json()["concurrentInvocations"], 5);
    assert_eq!(r.json()["storeActivations"], false);
    // ...and the invoke throttle enforces them: the second invoke of the minute is 429.
    let put = call(
        &e.router,
        request(
            Method::PUT,
            "/api/v1/namespaces/_/actions/hello",
            Some(&erin),
            Some(node_action("function main() { return {} }")),
        ),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.json());
    let first = tenant(
        &e.router,
        Method::POST,
        "/api/v1/namespaces/_/actions/hello",
        &erin,
    )
    .await;
    assert_ne!(first.status, StatusCode::TOO_MANY_REQUESTS);
    tenant(
        &e.router,
        Method::POST,
        "/api/v1/namespaces/_/actions/hello",
        &erin,
    )
    .await
    .assert_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests in the last minute (count: 2, allowed: 1).",
    );

    // Delete: system values again; a second delete is 404.
    let r = admin(&e.router, Method::DELETE, "/namespaces/erin/limits", None).await;
    assert_eq!(r.json(), json!({"message": "Limits deleted"}));
    let r = tenant(&e.router, Method::GET, "/api/v1/namespaces/_/limits", &erin).await;
    assert_eq!(r.json()["invocationsPerMinute"], 60);
    admin(&e.router, Method::DELETE, "/namespaces/erin/limits", None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "Limits not found for 'erin'");
    // Limits outlive their namespace's owners, and can still be read and removed.
    admin(
        &e.router,
        Method::PUT,
        "/namespaces/erin/limits",
        Some(json!({"firesPerMinute": 3})),
    )
    .await;
    admin(&e.router, Method::DELETE, "/subjects/erin-user", None).await;
    let r = admin(&e.router, Method::GET, "/namespaces/erin/limits", None).await;
    assert_eq!(r.json()["limits"], json!({"firesPerMinute": 3}));
    assert_eq!(
        e.store
            .get_limits(&EntityName::new("erin").unwrap())
            .await
            .unwrap()
            .fires_per_minute,
        Some(3)
    );
}
