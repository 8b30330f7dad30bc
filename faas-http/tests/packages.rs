//! The packages API (OpenWhisk `Packages.scala`): create, update, get with actions and feeds,
//! list, delete (with `force`), bindings, sharing through published packages, and every
//! refusal with OpenWhisk's status and message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use support::*;

const PACKAGES: &str = "/api/v1/namespaces/_/packages";

async fn as_other(e: &Env, method: Method, uri: &str, body: Option<Value>) -> Reply {
    call(&e.router, request(method, uri, Some(OTHER), body)).await
}

async fn ok(r: Reply) -> Value {
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

#[tokio::test]
async fn package_lifecycle() {
    let e = env().await;
    let r = ok(put(
        &e.router,
        &format!("{PACKAGES}/utils"),
        json!({"parameters": [{"key": "p", "value": 1}],
               "annotations": [{"key": "description", "value": "tools"}]}),
    )
    .await)
    .await;
    assert_eq!(r["namespace"], "guest");
    assert_eq!(r["name"], "utils");
    assert_eq!(r["version"], "0.0.1");
    assert_eq!(r["publish"], false);
    assert_eq!(r["binding"], json!({}));
    assert_eq!(r["parameters"], json!([{"key": "p", "value": 1}]));
    assert!(r["updated"].as_u64().unwrap() > 0);

    // Creating it again without `overwrite` is a conflict; with it, an update.
    put(&e.router, &format!("{PACKAGES}/utils"), json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "resource already exists");
    let r = ok(put(
        &e.router,
        &format!("{PACKAGES}/utils?overwrite=true"),
        json!({"publish": true}),
    )
    .await)
    .await;
    assert_eq!(r["version"], "0.0.2");
    assert_eq!(r["publish"], true);
    assert_eq!(
        r["parameters"],
        json!([{"key": "p", "value": 1}]),
        "kept when not given"
    );
    assert_eq!(
        r["annotations"],
        json!([{"key": "description", "value": "tools"}])
    );

    // Its actions and feeds.
    ok(put(
        &e.router,
        &format!("{ACTIONS}/utils/a"),
        node_action("function main(a){return a}"),
    )
    .await)
    .await;
    let mut feed = node_action("function main(a){return a}");
    feed["annotations"] = json!([{"key": "feed", "value": true}]);
    ok(put(&e.router, &format!("{ACTIONS}/utils/f"), feed).await).await;
    let r = ok(get(&e.router, &format!("{PACKAGES}/utils")).await).await;
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&r["actions"]), ["a"]);
    assert_eq!(names(&r["feeds"]), ["f"]);
    assert_eq!(r["actions"][0]["version"], "0.0.1");
    assert!(r["actions"][0]["annotations"].is_array());

    // Listed with `binding: false`; counted.
    let list = ok(get(&e.router, PACKAGES).await).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["binding"], false);
    assert_eq!(list[0]["name"], "utils");
    assert!(list[0].get("parameters").is_none());
    assert_eq!(
        ok(get(&e.router, &format!("{PACKAGES}?count=true")).await).await,
        json!({"packages": 1})
    );

    // A package with actions is deleted only with `force`, which deletes them too.
    delete(&e.router, &format!("{PACKAGES}/utils"))
        .await
        .assert_error(
            StatusCode::CONFLICT,
            "Package not empty (contains 2 entities). Set force param or delete package contents.",
        );
    delete(&e.router, &format!("{ACTIONS}/utils/f")).await;
    delete(&e.router, &format!("{PACKAGES}/utils"))
        .await
        .assert_error(
            StatusCode::CONFLICT,
            "Package not empty (contains 1 entity). Set force param or delete package contents.",
        );
    let r = ok(delete(&e.router, &format!("{PACKAGES}/utils?force=true")).await).await;
    assert_eq!(r["name"], "utils");
    get(&e.router, &format!("{PACKAGES}/utils"))
        .await
        .assert_error(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist.",
        );
    get(&e.router, &format!("{ACTIONS}/utils/a"))
        .await
        .assert_error(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist.",
        );
    assert_eq!(ok(get(&e.router, ACTIONS).await).await, json!([]));
    delete(&e.router, &format!("{PACKAGES}/utils"))
        .await
        .assert_error(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist.",
        );
}

#[tokio::test]
async fn bindings() {
    let e = env().await;
    ok(put(
        &e.router,
        &format!("{PACKAGES}/utils"),
        json!({"parameters": [{"key": "a", "value": "pkg"}, {"key": "b", "value": "pkg"}]}),
    )
    .await)
    .await;
    let mut act = node_action("function main(a){return a}");
    act["parameters"] = json!([{"key": "c", "value": "action"}]);
    ok(put(&e.router, &format!("{ACTIONS}/utils/echo"), act).await).await;

    let r = ok(put(
        &e.router,
        &format!("{PACKAGES}/mine"),
        json!({"binding": {"namespace": "_", "name": "utils"},
               "parameters": [{"key": "b", "value": "binding"}]}),
    )
    .await)
    .await;
    assert_eq!(r["binding"], json!({"namespace": "guest", "name": "utils"}));
    assert_eq!(
        r["annotations"],
        json!([{"key": "binding", "value": {"namespace": "guest", "name": "utils"}}])
    );

    // GET of a binding: itself, with the package's parameters under its own, and the
    // package's actions.
    let r = ok(get(&e.router, &format!("{PACKAGES}/mine")).await).await;
    assert_eq!(r["name"], "mine");
    assert_eq!(
        r["parameters"],
        json!([{"key": "a", "value": "pkg"}, {"key": "b", "value": "binding"}])
    );
    assert_eq!(r["actions"][0]["name"], "echo");
    // Its actions inherit package < binding < action.
    let r = ok(get(&e.router, &format!("{ACTIONS}/mine/echo")).await).await;
    assert_eq!(
        r["parameters"],
        json!([{"key": "a", "value": "pkg"}, {"key": "b", "value": "binding"}, {"key": "c", "value": "action"}])
    );
    let list = ok(get(&e.router, PACKAGES).await).await;
    let binding_entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "mine")
        .unwrap();
    assert_eq!(
        binding_entry["binding"],
        json!({"namespace": "guest", "name": "utils"})
    );

    // Refusals.
    put(
        &e.router,
        &format!("{PACKAGES}/b2"),
        json!({"binding": {"namespace": "guest", "name": "nothing"}}),
    )
    .await
    .assert_error(
        StatusCode::BAD_REQUEST,
        "Binding references a package that does not exist.",
    );
    put(
        &e.router,
        &format!("{PACKAGES}/b2"),
        json!({"binding": {"namespace": "guest", "name": "mine"}}),
    )
    .await
    .assert_error(
        StatusCode::BAD_REQUEST,
        "Cannot bind to another package binding.",
    );
    ok(put(
        &e.router,
        &format!("{ACTIONS}/plain"),
        node_action("function main(a){return a}"),
    )
    .await)
    .await;
    put(
        &e.router,
        &format!("{PACKAGES}/b2"),
        json!({"binding": {"namespace": "guest", "name": "plain"}}),
    )
    .await
    .assert_error(
        StatusCode::CONFLICT,
        "Cannot bind to a resource that is not a package.",
    );
    put(
        &e.router,
        &format!("{PACKAGES}/utils?overwrite=true"),
        json!({"binding": {"namespace": "guest", "name": "mine"}}),
    )
    .await
    .assert_error(
        StatusCode::BAD_REQUEST,
        "Cannot bind to another package binding.",
    );
    ok(put(&e.router, &format!("{PACKAGES}/other2"), json!({})).await).await;
    put(
        &e.router,
        &format!("{PACKAGES}/utils?overwrite=true"),
        json!({"binding": {"namespace": "guest", "name": "other2"}}),
    )
    .await
    .assert_error(
        StatusCode::CONFLICT,
        "Resource is a package and cannot be converted into a binding.",
    );
    put(
        &e.router,
        &format!("{ACTIONS}/mine/x"),
        node_action("function main(a){return a}"),
    )
    .await
    .assert_error(
        StatusCode::BAD_REQUEST,
        "Operation not permitted on package binding.",
    );
    // A binding is re-pointed with overwrite, and deleted without force.
    let r = ok(put(
        &e.router,
        &format!("{PACKAGES}/mine?overwrite=true"),
        json!({"binding": {"namespace": "guest", "name": "other2"}}),
    )
    .await)
    .await;
    assert_eq!(r["binding"]["name"], "other2");
    assert_eq!(
        r["parameters"],
        json!([{"key": "b", "value": "binding"}]),
        "kept"
    );
    ok(delete(&e.router, &format!("{PACKAGES}/mine")).await).await;
    // The package it bound is untouched.
    ok(get(&e.router, &format!("{ACTIONS}/utils/echo")).await).await;
}

#[tokio::test]
async fn bad_package_requests() {
    let e = env().await;
    put(&e.router, &format!("{PACKAGES}/default"), json!({}))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "Package name 'default' is reserved.",
        );
    put(&e.router, &format!("{PACKAGES}/bad$name"), json!({}))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "The name of the entity contains illegal characters.",
        );
    let r = call(
        &e.router,
        http::Request::builder()
            .method(Method::PUT)
            .uri(format!("{PACKAGES}/p"))
            .header("authorization", basic(GUEST))
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{not json"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.error().starts_with("The request content was malformed:"),
        "{}",
        r.error()
    );
    let r = put(
        &e.router,
        &format!("{PACKAGES}/p"),
        json!({"binding": {"namespace": "a/b", "name": "x"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a bad binding namespace");
    let big = "x".repeat(1024 * 1024 + 1);
    let r = put(
        &e.router,
        &format!("{PACKAGES}/p"),
        json!({"parameters": [{"key": "k", "value": big}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.error().starts_with("parameters larger than allowed"));
    // Nothing half-created.
    get(&e.router, &format!("{PACKAGES}/p")).await.assert_error(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    // An action by that name is in another collection.
    ok(put(
        &e.router,
        &format!("{ACTIONS}/act"),
        node_action("function main(a){return a}"),
    )
    .await)
    .await;
    let msg = "Resource by this name exists but is not in this collection.";
    get(&e.router, &format!("{PACKAGES}/act"))
        .await
        .assert_error(StatusCode::CONFLICT, msg);
    put(&e.router, &format!("{PACKAGES}/act"), json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, msg);
    delete(&e.router, &format!("{PACKAGES}/act"))
        .await
        .assert_error(StatusCode::CONFLICT, msg);
    post(&e.router, &format!("{PACKAGES}/p"), None)
        .await
        .assert_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "HTTP method not allowed, supported methods: GET, PUT, DELETE",
        );
    get(&e.router, &format!("{PACKAGES}?limit=201"))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "The query parameter 'limit' was malformed:\nThe value '201' is not in the range of 0 to 200 for packages.",
        );
}

#[tokio::test]
async fn published_packages_are_shared() {
    let e = env().await;
    let other_pkgs = "/api/v1/namespaces/other/packages";
    // `other` publishes one package and keeps one private, and has a binding of its own.
    ok(as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/packages/pub",
        Some(json!({"publish": true, "parameters": [{"key": "owner", "value": "other"}]})),
    )
    .await)
    .await;
    ok(as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/packages/priv",
        Some(json!({"parameters": [{"key": "secret", "value": "s3cret"}]})),
    )
    .await)
    .await;
    ok(as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/packages/otherbinding",
        Some(json!({"publish": true, "binding": {"namespace": "other", "name": "pub"}})),
    )
    .await)
    .await;
    ok(as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/pub/tool",
        Some(node_action("function main(a){return a}")),
    )
    .await)
    .await;

    // guest lists only the published packages (never bindings) and may read them.
    let list = ok(get(&e.router, other_pkgs).await).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pub"]);
    assert_eq!(
        ok(get(&e.router, &format!("{other_pkgs}?count=true")).await).await,
        json!({"packages": 1})
    );
    let r = ok(get(&e.router, &format!("{other_pkgs}/pub")).await).await;
    assert_eq!(r["actions"][0]["name"], "tool");
    let r = ok(get(&e.router, "/api/v1/namespaces/other/actions/pub/tool").await).await;
    assert_eq!(r["parameters"], json!([{"key": "owner", "value": "other"}]));
    ok(get(&e.router, "/api/v1/namespaces/other/actions/pub/").await).await;

    // Private packages and foreign bindings are denied exactly as missing ones.
    for name in ["priv", "otherbinding", "missing"] {
        get(&e.router, &format!("{other_pkgs}/{name}"))
            .await
            .assert_error(
                StatusCode::FORBIDDEN,
                &format!("The supplied authentication is not authorized to access 'other/{name}'."),
            );
    }
    // guest binds the published package (and not the others).
    let r = ok(put(
        &e.router,
        &format!("{PACKAGES}/tools"),
        json!({"binding": {"namespace": "other", "name": "pub"},
               "parameters": [{"key": "owner", "value": "guest"}]}),
    )
    .await)
    .await;
    assert_eq!(r["binding"], json!({"namespace": "other", "name": "pub"}));
    let r = ok(get(&e.router, &format!("{ACTIONS}/tools/tool")).await).await;
    assert_eq!(r["parameters"], json!([{"key": "owner", "value": "guest"}]));
    for name in ["priv", "otherbinding", "missing"] {
        put(
            &e.router,
            &format!("{PACKAGES}/b-{name}"),
            json!({"binding": {"namespace": "other", "name": name}}),
        )
        .await
        .assert_error(
            StatusCode::FORBIDDEN,
            &format!("The supplied authentication is not authorized to access 'other/{name}'."),
        );
    }
    // Writes are the owner's only.
    put(
        &e.router,
        &format!("{other_pkgs}/pub?overwrite=true"),
        json!({"publish": false}),
    )
    .await
    .assert_error(
        StatusCode::FORBIDDEN,
        "The supplied authentication is not authorized to access 'other/pub'.",
    );
    delete(&e.router, &format!("{other_pkgs}/pub"))
        .await
        .assert_error(
            StatusCode::FORBIDDEN,
            "The supplied authentication is not authorized to access 'other/pub'.",
        );
    put(
        &e.router,
        "/api/v1/namespaces/other/actions/pub/tool?overwrite=true",
        node_action("function main(){return {}}"),
    )
    .await
    .assert_error(
        StatusCode::FORBIDDEN,
        "The supplied authentication is not authorized to access 'other/pub/tool'.",
    );

    // Unpublishing takes the access away, from the binding too.
    ok(as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/packages/pub?overwrite=true",
        Some(json!({"publish": false})),
    )
    .await)
    .await;
    get(&e.router, &format!("{ACTIONS}/tools/tool"))
        .await
        .assert_error(
            StatusCode::FORBIDDEN,
            "The supplied authentication is not authorized to access 'guest/tools'.",
        );
    get(&e.router, "/api/v1/namespaces/other/actions/pub/tool")
        .await
        .assert_error(
            StatusCode::FORBIDDEN,
            "The supplied authentication is not authorized to access 'other/pub'.",
        );
    assert_eq!(ok(get(&e.router, other_pkgs).await).await, json!([]));
}

#[tokio::test]
async fn invokes_through_packages_and_bindings_merge_parameters() {
    let e = env().await;
    let inv = FakeInvoker::start(&e).await;
    ok(as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/packages/pub",
        Some(json!({"publish": true, "parameters": [
            {"key": "a", "value": "pkg"}, {"key": "b", "value": "pkg"},
            {"key": "c", "value": "pkg"}, {"key": "d", "value": "pkg"}]})),
    )
    .await)
    .await;
    let mut act = node_action("function main(a){return a}");
    act["parameters"] = json!([{"key": "c", "value": "action"}, {"key": "d", "value": "action"}]);
    ok(as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/pub/tool",
        Some(act),
    )
    .await)
    .await;
    ok(put(
        &e.router,
        &format!("{PACKAGES}/tools"),
        json!({"binding": {"namespace": "other", "name": "pub"},
               "parameters": [{"key": "b", "value": "binding"}, {"key": "c", "value": "binding"}]}),
    )
    .await)
    .await;

    // Directly in the published package: package < action < payload.
    let r = post(
        &e.router,
        "/api/v1/namespaces/other/actions/pub/tool",
        Some(json!({"d": "payload"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json());
    let msg = inv.next().await;
    assert_eq!(msg.action.fqn().to_string(), "other/pub/tool");
    assert!(msg.action.binding.is_none());
    assert_eq!(
        msg.user.namespace.name.as_str(),
        "guest",
        "the caller runs it"
    );
    assert_eq!(
        msg.content,
        Some(json!({"a": "pkg", "b": "pkg", "c": "action", "d": "payload"}))
    );

    // Through the binding: package < binding < action < payload.
    let r = post(
        &e.router,
        &format!("{ACTIONS}/tools/tool"),
        Some(json!({"d": "payload"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json());
    let msg = inv.next().await;
    assert_eq!(msg.action.fqn().to_string(), "other/pub/tool");
    assert_eq!(
        msg.action.binding.as_ref().map(ToString::to_string),
        Some("guest/tools".to_string())
    );
    assert_eq!(
        msg.content,
        Some(json!({"a": "pkg", "b": "binding", "c": "action", "d": "payload"}))
    );

    // `final` protects the merged parameters from the payload.
    let mut fin = node_action("function main(a){return a}");
    fin["annotations"] = json!([{"key": "final", "value": true}]);
    ok(as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/pub/fixed",
        Some(fin),
    )
    .await)
    .await;
    post(
        &e.router,
        &format!("{ACTIONS}/tools/fixed"),
        Some(json!({"b": "mine"})),
    )
    .await
    .assert_error(
        StatusCode::BAD_REQUEST,
        "Request defines parameters that are not allowed (e.g., reserved properties).",
    );
    let r = post(
        &e.router,
        &format!("{ACTIONS}/tools/fixed"),
        Some(json!({"new": 1})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let msg = inv.next().await;
    assert_eq!(msg.content.unwrap()["new"], 1);
}
