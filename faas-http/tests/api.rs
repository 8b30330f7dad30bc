//! The REST API without invokers: system routes, request ids, authentication, entitlement,
//! CORS, action CRUD and lists, activation reads, and error bodies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use faas_core::activation::ActivationResponse;
use faas_core::entity::{Binding, Package};
use faas_core::params::{Annotations, Parameters};
use faas_core::{Activation, ActivationId, Entity, EntityName, EntityPath, FullyQualifiedName};
use support::*;

#[tokio::test]
async fn system_routes() {
    let e = env().await;
    let r = call(&e.router, request(Method::GET, "/", None, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let js = r.json();
    assert_eq!(js["description"], "OpenWhisk");
    assert_eq!(js["api_paths"], json!(["/api/v1"]));
    assert_eq!(js["limits"]["actions_per_minute"], 60);
    assert_eq!(js["limits"]["concurrent_actions"], 30);
    assert_eq!(js["limits"]["max_action_memory"], 512 * 1024 * 1024);
    assert_eq!(js["limits"]["min_action_duration"], 100);
    assert!(js["runtimes"]["nodejs"].is_array(), "{js}");
    assert!(r.header("x-request-id").is_some());

    let r = call(&e.router, request(Method::GET, "/ping", None, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, b"pong");

    for path in ["/api/v1", "/api/v1/"] {
        let r = call(&e.router, request(Method::GET, path, None, None)).await;
        assert_eq!(r.status, StatusCode::OK);
        let js = r.json();
        assert_eq!(js["description"], "OpenWhisk API");
        assert_eq!(js["api_version"], "1.0.0");
        assert_eq!(js["api_version_path"], "v1");
        assert_eq!(js["swagger_paths"]["api-docs"], "/api-docs");
        assert!(js["runtimes"]["python"].is_array());
    }

    let r = call(
        &e.router,
        request(Method::GET, "/api/v1/api-docs", None, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["basePath"], "/api/v1");

    // No invoker has pinged yet.
    let r = call(&e.router, request(Method::GET, "/invokers", None, None)).await;
    assert_eq!(r.json(), json!({}));
    let r = call(
        &e.router,
        request(Method::GET, "/invokers/healthy/count", None, None),
    )
    .await;
    assert_eq!(r.json(), json!(0));
    let r = call(
        &e.router,
        request(Method::GET, "/invokers/ready", None, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn invokers_follow_health_pings() {
    use faas_core::message::{HEALTH_TOPIC, InvokerInstanceId, PingMessage};
    let e = env().await;
    let ping = PingMessage::new(InvokerInstanceId::new(3, 1024));
    e.bus
        .publish(
            HEALTH_TOPIC,
            None,
            serde_json::to_vec(&ping).unwrap().into(),
        )
        .await
        .unwrap();
    // An undecodable ping is skipped, not fatal.
    e.bus
        .publish(HEALTH_TOPIC, None, b"garbage".to_vec().into())
        .await
        .unwrap();
    until("invoker up", async || {
        let r = call(&e.router, request(Method::GET, "/invokers", None, None)).await;
        r.json()["invoker3"] == "up"
    })
    .await;
    let r = call(
        &e.router,
        request(Method::GET, "/invokers/healthy/count", None, None),
    )
    .await;
    assert!(r.json().as_u64().unwrap() >= 1);
}

/// Kinds come from what the live invokers report in their pings: `:default` resolves to the
/// reported kind, a kind no live invoker runs is refused at create (400) and, for an action
/// created earlier, at invoke (503), both in OpenWhisk's error shape.
#[tokio::test]
async fn kinds_come_from_the_invokers_pings() {
    use faas_core::message::{HEALTH_TOPIC, InvokerInstanceId, PingMessage};
    use faas_core::{RuntimeManifest, RuntimeSpec};
    let e = env().await;
    // Before any invoker: the controller's own manifest (nodejs:20 by default).
    let r = put(
        &e.router,
        &format!("{ACTIONS}/early"),
        json!({"exec": {"kind": "nodejs:20", "code": "x"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());

    let mut only18 = RuntimeManifest::new();
    only18.add(RuntimeSpec::new("nodejs:18", true));
    let ping = PingMessage::new(InvokerInstanceId::new(0, 1024)).with_runtimes(only18);
    e.bus
        .publish(
            HEALTH_TOPIC,
            None,
            serde_json::to_vec(&ping).unwrap().into(),
        )
        .await
        .unwrap();
    until("the invoker's kinds", async || {
        let r = call(&e.router, request(Method::GET, "/", None, None)).await;
        r.json()["runtimes"]["nodejs"][0]["kind"] == "nodejs:18"
    })
    .await;
    let r = call(&e.router, request(Method::GET, "/", None, None)).await;
    assert!(r.json()["runtimes"].get("python").is_none(), "{}", r.json());

    let r = put(&e.router, &format!("{ACTIONS}/hello"), node_action("x")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(r.json()["exec"]["kind"], "nodejs:18");

    let r = put(
        &e.router,
        &format!("{ACTIONS}/py"),
        json!({"exec": {"kind": "python:default", "code": "x"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    r.assert_error(
        StatusCode::BAD_REQUEST,
        "The specified runtime 'python:default' is not supported by this platform. Valid values are: nodejs:18, nodejs:default, sequence.",
    );

    // An action of a kind no live invoker runs: 503, and the kind is named.
    let r = post(&e.router, &format!("{ACTIONS}/early?blocking=true"), None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json());
    assert!(r.error().contains("'nodejs:20'"), "{}", r.json());
    assert_eq!(
        r.json().as_object().unwrap().len(),
        2,
        "error and code: {}",
        r.json()
    );
}

#[tokio::test]
async fn request_ids_are_reused_or_generated() {
    let e = env().await;
    let with_id = |id: &str| {
        Request::builder()
            .uri("/ping")
            .header("x-request-id", id)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let r = call(&e.router, with_id("my-id-123")).await;
    assert_eq!(r.header("x-request-id"), Some("my-id-123"));
    let r = call(&e.router, with_id("sid_invokerHealth")).await;
    let id = r.header("x-request-id").unwrap();
    assert_ne!(id, "sid_invokerHealth");
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    let r = call(&e.router, request(Method::GET, "/ping", None, None)).await;
    let a = r.header("x-request-id").unwrap().to_string();
    let r = call(&e.router, request(Method::GET, "/ping", None, None)).await;
    assert_ne!(r.header("x-request-id").unwrap(), a);
    assert_eq!(a.len(), 32);

    // Errors carry it too, in the header and as the body's code.
    let mut req = request(Method::GET, "/nope", None, None);
    req.headers_mut()
        .insert("x-request-id", "tid-err".parse().unwrap());
    let r = call(&e.router, req).await;
    r.assert_error(
        StatusCode::NOT_FOUND,
        "The requested resource could not be found.",
    );
    assert_eq!(r.json()["code"], "tid-err");
}

#[tokio::test]
async fn authentication_failures() {
    let e = env().await;
    let realm = "Basic realm=\"OpenWhisk secure realm\"";
    let r = call(&e.router, request(Method::GET, ACTIONS, None, None)).await;
    r.assert_error(
        StatusCode::UNAUTHORIZED,
        "The resource requires authentication, which was not supplied with the request",
    );
    assert_eq!(r.header("www-authenticate"), Some(realm));

    let bad = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:wrong";
    let r = call(&e.router, request(Method::GET, ACTIONS, Some(bad), None)).await;
    r.assert_error(
        StatusCode::UNAUTHORIZED,
        "The supplied authentication is invalid",
    );
    assert_eq!(r.header("www-authenticate"), Some(realm));

    for header in ["Basic !!!not-base64", "Basic bm9jb2xvbg=="] {
        let req = Request::builder()
            .uri(ACTIONS)
            .header("authorization", header)
            .body(axum::body::Body::empty())
            .unwrap();
        let r = call(&e.router, req).await;
        r.assert_error(
            StatusCode::UNAUTHORIZED,
            "The supplied authentication is invalid",
        );
    }
    let req = Request::builder()
        .uri(ACTIONS)
        .header("authorization", "Bearer abc")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = call(&e.router, req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.error()
            .starts_with("The resource requires authentication")
    );
}

#[tokio::test]
async fn foreign_namespaces_are_forbidden() {
    let e = env().await;
    let r = get(&e.router, "/api/v1/namespaces/other/actions").await;
    r.assert_error(
        StatusCode::FORBIDDEN,
        "The supplied authentication is not authorized to access 'other'.",
    );
    let r = put(
        &e.router,
        "/api/v1/namespaces/other/actions/x",
        node_action("function main(a){return a}"),
    )
    .await;
    r.assert_error(
        StatusCode::FORBIDDEN,
        "The supplied authentication is not authorized to access 'other/x'.",
    );
    let r = post(&e.router, "/api/v1/namespaces/other/actions/p/x", None).await;
    r.assert_error(
        StatusCode::FORBIDDEN,
        "The supplied authentication is not authorized to access 'other/p'.",
    );
    let r = get(&e.router, "/api/v1/namespaces/other/activations").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = get(&e.router, "/api/v1/namespaces/other/limits").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The explicit own namespace works like `_`.
    let r = get(&e.router, "/api/v1/namespaces/guest/actions").await;
    assert_eq!(r.status, StatusCode::OK);
    // Nothing was created in `other`.
    let r = call(
        &e.router,
        request(
            Method::GET,
            "/api/v1/namespaces/_/actions",
            Some(OTHER),
            None,
        ),
    )
    .await;
    assert_eq!(r.json(), json!([]));
}

#[tokio::test]
async fn namespaces_and_limits() {
    let e = env().await;
    let r = get(&e.router, "/api/v1/namespaces").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!(["guest"]));
    let r = get(&e.router, "/api/v1/namespaces/_/limits").await;
    let js = r.json();
    assert_eq!(js["invocationsPerMinute"], 60);
    assert_eq!(js["concurrentInvocations"], 30);
    assert_eq!(js["maxActionTimeout"], 300_000);
    assert_eq!(js["maxParameterSize"], "1 MB");
}

#[tokio::test]
async fn cors_on_the_api() {
    let e = env().await;
    let r = call(&e.router, request(Method::OPTIONS, ACTIONS, None, None)).await;
    assert_eq!(r.status, StatusCode::OK, "OPTIONS needs no credentials");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, DELETE, POST, PUT, HEAD")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent")
    );
    let r = get(&e.router, ACTIONS).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = call(&e.router, request(Method::GET, ACTIONS, None, None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = call(&e.router, request(Method::GET, "/ping", None, None)).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn action_lifecycle() {
    let e = env().await;
    let uri = format!("{ACTIONS}/hello");
    let mut body = node_action("function main(a){return a}");
    body["parameters"] = json!([{"key": "p", "value": 1}]);
    let r = put(&e.router, &uri, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let js = r.json();
    assert_eq!(js["namespace"], "guest");
    assert_eq!(js["name"], "hello");
    assert_eq!(js["version"], "0.0.1");
    assert_eq!(js["exec"]["kind"], "nodejs:20");
    assert_eq!(js["exec"]["code"], "function main(a){return a}");
    assert_eq!(js["limits"]["memory"], 256);
    assert!(js.get("entityType").is_none());
    let ann = js["annotations"].as_array().unwrap();
    assert!(ann.contains(&json!({"key": "exec", "value": "nodejs:20"})));
    assert!(ann.contains(&json!({"key": "provide-api-key", "value": false})));

    let r = put(&e.router, &uri, body.clone()).await;
    r.assert_error(StatusCode::CONFLICT, "resource already exists");

    let r = put(
        &e.router,
        &format!("{uri}?overwrite=true"),
        json!({"limits": {"memory": 128}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["version"], "0.0.2");
    assert_eq!(r.json()["limits"]["memory"], 128);
    assert_eq!(r.json()["parameters"], json!([{"key": "p", "value": 1}]));

    let r = get(&e.router, &uri).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["exec"]["code"], "function main(a){return a}");
    let r = get(&e.router, &format!("{uri}?code=false")).await;
    assert!(r.json()["exec"].get("code").is_none());
    assert_eq!(r.json()["exec"]["kind"], "nodejs:20");

    let r = delete(&e.router, &uri).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["name"], "hello");
    assert_eq!(r.json()["version"], "0.0.2");
    for r in [get(&e.router, &uri).await, delete(&e.router, &uri).await] {
        r.assert_error(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist.",
        );
    }
}

#[tokio::test]
async fn bad_action_puts_change_nothing() {
    let e = env().await;
    let uri = format!("{ACTIONS}/a");
    assert_eq!(
        put(&e.router, &uri, node_action("function main(){}"))
            .await
            .status,
        StatusCode::OK
    );
    let before = get(&e.router, &uri).await.json();

    let raw = |body: &'static str| {
        Request::builder()
            .method(Method::PUT)
            .uri(format!("{uri}?overwrite=true"))
            .header("authorization", basic(GUEST))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let r = call(&e.router, raw("{not json")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.error()
            .starts_with("The request content was malformed:\n"),
        "{}",
        r.error()
    );
    let r = call(&e.router, raw(r#"{"exec": 5}"#)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(&e.router, raw(r#"{"limits": {"memory": "lots"}}"#)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.error()
            .starts_with("The request content was malformed:\n")
    );

    let cases = [
        (
            json!({"exec": {"kind": "cobol:1", "code": "x"}}),
            "The specified runtime 'cobol:1' is not supported by this platform.",
        ),
        (
            json!({"limits": {"memory": 1024}}),
            "memory 1024 MB exceeds allowed threshold of 512 MB",
        ),
        (
            json!({"limits": {"timeout": 400000}}),
            "duration 400000 milliseconds exceeds allowed threshold of 300000 milliseconds",
        ),
        (
            json!({"limits": {"timeout": 10}}),
            "duration 10 milliseconds below allowed threshold of 100 milliseconds",
        ),
        (
            json!({"limits": {"logs": 11}}),
            "log size 11 MB exceeds allowed threshold of 10 MB",
        ),
    ];
    for (body, msg) in cases {
        let r = put(&e.router, &format!("{uri}?overwrite=true"), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.error().starts_with(msg), "{} vs {msg}", r.error());
    }
    let big = "x".repeat(1024 * 1024 + 1);
    let r = put(
        &e.router,
        &format!("{uri}?overwrite=true"),
        json!({"parameters": [{"key": "k", "value": big}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.error().starts_with("parameters larger than allowed: "));
    let r = put(&e.router, &format!("{uri}?overwrite=maybe"), json!({})).await;
    r.assert_error(
        StatusCode::BAD_REQUEST,
        "The query parameter 'overwrite' was malformed:\n'maybe' is not a valid Boolean value",
    );
    assert_eq!(get(&e.router, &uri).await.json(), before, "nothing changed");

    let r = put(&e.router, &format!("{ACTIONS}/new"), json!({})).await;
    r.assert_error(StatusCode::BAD_REQUEST, "exec undefined");
    let r = put(&e.router, &format!("{ACTIONS}/a%24b"), node_action("x")).await;
    r.assert_error(
        StatusCode::BAD_REQUEST,
        "The name of the entity contains illegal characters.",
    );
    let long = "a".repeat(257);
    let r = put(&e.router, &format!("{ACTIONS}/{long}"), node_action("x")).await;
    r.assert_error(
        StatusCode::BAD_REQUEST,
        "The name of the entity is longer than allowed: 257 > 256.",
    );
    let r = get(&e.router, ACTIONS).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn kinds_a_namespace_may_not_use_are_forbidden() {
    use faas_core::limits::UserLimits;
    let e = env().await;
    let limits = UserLimits {
        allowed_kinds: Some(vec!["python:3.11".into()]),
        ..Default::default()
    };
    e.store
        .put_limits(&EntityName::new("guest").unwrap(), &limits)
        .await
        .unwrap();
    let r = put(&e.router, &format!("{ACTIONS}/n"), node_action("x")).await;
    r.assert_error(
        StatusCode::FORBIDDEN,
        "The supplied authentication is not authorized to access actions of kind 'nodejs:20'.",
    );
    let r = put(
        &e.router,
        &format!("{ACTIONS}/p"),
        json!({"exec": {"kind": "python:3.11", "code": "def main(a): return a"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn put_package(e: &Env, name: &str, params: Parameters, binding: Option<Binding>) {
    let p = Package {
        namespace: EntityPath::new("guest").unwrap(),
        name: EntityName::new(name).unwrap(),
        version: Default::default(),
        publish: false,
        binding,
        parameters: params,
        annotations: Annotations::new(),
        updated: 1,
    };
    e.store.put_entity(&Entity::Package(p), None).await.unwrap();
}

#[tokio::test]
async fn wrong_collection_is_a_conflict() {
    let e = env().await;
    put_package(&e, "pk", Parameters::new(), None).await;
    let msg = "Resource by this name exists but is not in this collection.";
    get(&e.router, &format!("{ACTIONS}/pk"))
        .await
        .assert_error(StatusCode::CONFLICT, msg);
    put(&e.router, &format!("{ACTIONS}/pk"), node_action("x"))
        .await
        .assert_error(StatusCode::CONFLICT, msg);
    delete(&e.router, &format!("{ACTIONS}/pk"))
        .await
        .assert_error(StatusCode::CONFLICT, msg);
    let still = e
        .store
        .get_entity(&FullyQualifiedName::resolve("pk", "guest").unwrap())
        .await
        .unwrap();
    assert!(matches!(still.value, Entity::Package(_)));
}

#[tokio::test]
async fn actions_in_packages() {
    let e = env().await;
    put_package(
        &e,
        "utils",
        Parameters::new().with("a", json!(1)).with("b", json!(1)),
        None,
    )
    .await;
    let mut body = node_action("function main(a){return a}");
    body["parameters"] = json!([{"key": "b", "value": 2}]);
    let r = put(&e.router, &format!("{ACTIONS}/utils/hello"), body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(r.json()["namespace"], "guest/utils");
    let stored = e
        .store
        .get_entity(&FullyQualifiedName::resolve("guest/utils/hello", "guest").unwrap())
        .await
        .unwrap();
    assert_eq!(stored.value.name().as_str(), "hello");

    let r = get(&e.router, &format!("{ACTIONS}/utils/hello")).await;
    assert_eq!(
        r.json()["parameters"],
        json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}])
    );
    let r = get(&e.router, &format!("{ACTIONS}/utils/")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(r.json()[0]["namespace"], "guest/utils");
    assert_eq!(r.json()[0]["exec"], json!({"binary": false}));
    let r = get(&e.router, &format!("{ACTIONS}/utils/?count=true")).await;
    assert_eq!(r.json(), json!({"actions": 1}));

    let r = put(&e.router, &format!("{ACTIONS}/nopkg/hello"), body.clone()).await;
    r.assert_error(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    let r = get(&e.router, &format!("{ACTIONS}/nopkg/")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    put_package(
        &e,
        "bound",
        Parameters::new().with("a", json!("binding")),
        Some(Binding {
            namespace: EntityName::new("guest").unwrap(),
            name: EntityName::new("utils").unwrap(),
        }),
    )
    .await;
    let r = put(&e.router, &format!("{ACTIONS}/bound/x"), body.clone()).await;
    r.assert_error(
        StatusCode::BAD_REQUEST,
        "Operation not permitted on package binding.",
    );
    // Through the binding: the bound package's actions, binding parameters win.
    let r = get(&e.router, &format!("{ACTIONS}/bound/hello")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["parameters"],
        json!([{"key": "a", "value": "binding"}, {"key": "b", "value": 2}])
    );
    let r = get(&e.router, &format!("{ACTIONS}/bound/")).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);

    let r = delete(&e.router, &format!("{ACTIONS}/utils/hello")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["namespace"], "guest/utils");
}

#[tokio::test]
async fn action_lists_page_and_count() {
    let e = env().await;
    for i in 0..5 {
        let r = put(&e.router, &format!("{ACTIONS}/a{i}"), node_action("x")).await;
        assert_eq!(r.status, StatusCode::OK);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let names = |r: &Reply| -> Vec<String> {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = get(&e.router, ACTIONS).await;
    assert_eq!(names(&r), ["a4", "a3", "a2", "a1", "a0"], "newest first");
    let first = &r.json()[0];
    assert!(first["exec"].get("code").is_none(), "summaries: {first}");
    assert_eq!(first["exec"], json!({"binary": false}));
    assert!(first["limits"].is_object());
    assert_eq!(
        names(&get(&e.router, &format!("{ACTIONS}?limit=2")).await),
        ["a4", "a3"]
    );
    assert_eq!(
        names(&get(&e.router, &format!("{ACTIONS}?limit=2&skip=3")).await),
        ["a1", "a0"]
    );
    assert_eq!(
        names(&get(&e.router, &format!("{ACTIONS}?limit=0")).await).len(),
        5
    );
    assert_eq!(
        get(&e.router, &format!("{ACTIONS}?count=true"))
            .await
            .json(),
        json!({"actions": 5})
    );
    assert_eq!(
        get(&e.router, &format!("{ACTIONS}?count=true&skip=2"))
            .await
            .json(),
        json!({"actions": 3})
    );
    get(&e.router, &format!("{ACTIONS}?limit=201")).await.assert_error(
        StatusCode::BAD_REQUEST,
        "The query parameter 'limit' was malformed:\nThe value '201' is not in the range of 0 to 200 for actions.",
    );
    get(&e.router, &format!("{ACTIONS}?limit=abc")).await.assert_error(
        StatusCode::BAD_REQUEST,
        "The query parameter 'limit' was malformed:\nThe value 'abc' is not an integer for actions.",
    );
    get(&e.router, &format!("{ACTIONS}?skip=-1")).await.assert_error(
        StatusCode::BAD_REQUEST,
        "The query parameter 'skip' was malformed:\nThe value '-1' is not greater than or equal to 0 for actions.",
    );
}

fn record(name: &str, start: u64, status: ActivationResponse, path: Option<&str>) -> Activation {
    let mut annotations = Annotations::new().with("kind", json!("nodejs:20"));
    if let Some(p) = path {
        annotations.set("path", json!(p));
    }
    Activation {
        namespace: EntityPath::new("guest").unwrap(),
        name: EntityName::new(name).unwrap(),
        subject: "guest".into(),
        activation_id: ActivationId::generate(),
        start,
        end: start + 10,
        duration: Some(10),
        cause: None,
        response: status,
        logs: vec!["2024-01-01T00:00:00.000000000Z stdout: hi".into()],
        version: Default::default(),
        publish: false,
        annotations,
    }
}

#[tokio::test]
async fn activation_reads() {
    let e = env().await;
    let a = record(
        "one",
        1000,
        ActivationResponse::success(json!({"x": 1})),
        None,
    );
    let b = record(
        "two",
        2000,
        ActivationResponse::application_error(json!("bad")),
        Some("guest/pkg/two"),
    );
    let c = record(
        "one",
        3000,
        ActivationResponse::success(json!([1, 2])),
        None,
    );
    for r in [&a, &b, &c] {
        assert!(e.store.put_activation(r).await.unwrap());
    }
    let ids = |r: &Reply| -> Vec<String> {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["activationId"].as_str().unwrap().to_string())
            .collect()
    };
    let id = |x: &Activation| x.activation_id.to_string();

    let r = get(&e.router, ACTIVATIONS).await;
    assert_eq!(ids(&r), [id(&c), id(&b), id(&a)]);
    let s = &r.json()[0];
    assert!(
        s.get("logs").is_none() && s.get("response").is_none(),
        "{s}"
    );
    assert_eq!(s["statusCode"], 0);
    assert_eq!(s["duration"], 10);

    let r = get(&e.router, &format!("{ACTIVATIONS}?docs=true&limit=1")).await;
    assert_eq!(r.json()[0]["response"]["result"], json!([1, 2]));
    assert_eq!(r.json()[0]["response"]["status"], "success");
    assert_eq!(r.json().as_array().unwrap().len(), 1);

    assert_eq!(
        ids(&get(&e.router, &format!("{ACTIVATIONS}?name=one")).await),
        [id(&c), id(&a)]
    );
    assert_eq!(
        ids(&get(&e.router, &format!("{ACTIVATIONS}?name=pkg/two")).await),
        [id(&b)]
    );
    assert_eq!(
        ids(&get(&e.router, &format!("{ACTIVATIONS}?since=1500&upto=2500")).await),
        [id(&b)]
    );
    assert_eq!(
        ids(&get(&e.router, &format!("{ACTIVATIONS}?skip=2")).await),
        [id(&a)]
    );
    assert_eq!(
        get(&e.router, &format!("{ACTIVATIONS}?count=true"))
            .await
            .json(),
        json!({"activations": 3})
    );
    assert_eq!(
        get(
            &e.router,
            &format!("{ACTIVATIONS}?count=true&name=one&skip=1")
        )
        .await
        .json(),
        json!({"activations": 1})
    );
    get(&e.router, &format!("{ACTIVATIONS}?count=true&docs=true"))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "The parameter 'docs' is not permitted with 'count'.",
        );
    get(&e.router, &format!("{ACTIVATIONS}?name=a/b/c")).await.assert_error(
        StatusCode::BAD_REQUEST,
        "The query parameter 'name' was malformed:\nParameter may be a 'simple' name or 'package-name/simple' name: a/b/c",
    );
    get(&e.router, &format!("{ACTIVATIONS}?since=yesterday")).await.assert_error(
        StatusCode::BAD_REQUEST,
        "The query parameter 'since' was malformed:\nParameter is not a valid value for epoch seconds: yesterday",
    );
    get(&e.router, &format!("{ACTIVATIONS}?limit=300")).await.assert_error(
        StatusCode::BAD_REQUEST,
        "The query parameter 'limit' was malformed:\nThe value '300' is not in the range of 0 to 200 for activations.",
    );

    let r = get(&e.router, &format!("{ACTIVATIONS}/{}", id(&b))).await;
    assert_eq!(r.status, StatusCode::OK);
    let js = r.json();
    assert_eq!(js["activationId"], id(&b));
    assert_eq!(
        js["response"],
        json!({"result": {"error": "bad"}, "success": false, "status": "application error"})
    );
    assert_eq!(js["duration"], 10);
    let r = get(&e.router, &format!("{ACTIVATIONS}/{}/logs", id(&b))).await;
    assert_eq!(
        r.json(),
        json!({"logs": ["2024-01-01T00:00:00.000000000Z stdout: hi"]})
    );
    let r = get(&e.router, &format!("{ACTIVATIONS}/{}/result", id(&a))).await;
    assert_eq!(
        r.json(),
        json!({"result": {"x": 1}, "success": true, "status": "success"})
    );
    get(&e.router, &format!("{ACTIVATIONS}/nothex"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "The activation id is not valid.");
    get(
        &e.router,
        &format!("{ACTIVATIONS}/{}", ActivationId::generate()),
    )
    .await
    .assert_error(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    let r = call(
        &e.router,
        request(
            Method::GET,
            &format!("/api/v1/namespaces/_/activations/{}", id(&a)),
            Some(OTHER),
            None,
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "another namespace's records are invisible"
    );
    let r = get(
        &e.router,
        &format!("/api/v1/namespaces/other/activations/{}", id(&a)),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let e = env().await;
    let r = call(&e.router, request(Method::GET, "/api/v2/x", None, None)).await;
    r.assert_error(
        StatusCode::NOT_FOUND,
        "The requested resource could not be found.",
    );
    let r = call(&e.router, request(Method::POST, ACTIONS, Some(GUEST), None)).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    r.assert_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP method not allowed, supported methods: GET",
    );
    let r = call(
        &e.router,
        request(Method::PATCH, &format!("{ACTIONS}/x"), Some(GUEST), None),
    )
    .await;
    r.assert_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP method not allowed, supported methods: GET, PUT, DELETE, POST",
    );
    let r = call(&e.router, request(Method::DELETE, "/ping", None, None)).await;
    r.assert_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP method not allowed, supported methods: GET",
    );
}

#[tokio::test]
async fn sequences_are_validated_on_put() {
    let e = env().await;
    let seq = |comps: Value| json!({"exec": {"kind": "sequence", "components": comps}});
    put(&e.router, &format!("{ACTIONS}/s"), seq(json!([])))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "No component specified for the sequence.",
        );
    put(
        &e.router,
        &format!("{ACTIONS}/s"),
        seq(json!(["/_/missing"])),
    )
    .await
    .assert_error(
        StatusCode::BAD_REQUEST,
        "Sequence component does not exist.",
    );
    assert_eq!(
        put(&e.router, &format!("{ACTIONS}/a"), node_action("x"))
            .await
            .status,
        StatusCode::OK
    );
    let r = put(
        &e.router,
        &format!("{ACTIONS}/s"),
        seq(json!(["a", "/guest/a"])),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(
        r.json()["exec"]["components"],
        json!(["/guest/a", "/guest/a"])
    );
    // A sequence may not contain itself, directly or through another sequence.
    put(
        &e.router,
        &format!("{ACTIONS}/s?overwrite=true"),
        seq(json!(["s"])),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "Sequence may not refer to itself.");
    assert_eq!(
        put(&e.router, &format!("{ACTIONS}/t"), seq(json!(["s"])))
            .await
            .status,
        StatusCode::OK
    );
    put(
        &e.router,
        &format!("{ACTIONS}/s?overwrite=true"),
        seq(json!(["a", "t"])),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "Sequence may not refer to itself.");
    let many: Vec<String> = (0..51).map(|_| "a".to_string()).collect();
    put(&e.router, &format!("{ACTIONS}/long"), seq(json!(many)))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "Too many actions in the sequence.");
}

#[tokio::test]
async fn size_limits() {
    let mut limits = faas_core::SystemLimits::default();
    limits.max_exec_bytes = 1000;
    let config = faas_http::ControllerConfig::default().with_limits(limits);
    let max_request = config.max_request_bytes();
    let e = env_with(config).await;
    let r = put(
        &e.router,
        &format!("{ACTIONS}/big"),
        node_action(&"x".repeat(1001)),
    )
    .await;
    r.assert_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "exec larger than allowed: 1001 > 1000 bytes.",
    );
    // Bodies beyond the largest possible PUT are refused before anything is read.
    let req = Request::builder()
        .method(Method::PUT)
        .uri(format!("{ACTIONS}/huge"))
        .header("authorization", basic(GUEST))
        .header("content-length", (max_request + 1).to_string())
        .body(axum::body::Body::from("{}"))
        .unwrap();
    let r = call(&e.router, req).await;
    r.assert_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "Request larger than allowed: {} > {max_request} bytes.",
            max_request + 1
        ),
    );
    assert_eq!(get(&e.router, ACTIONS).await.json(), json!([]));
}
