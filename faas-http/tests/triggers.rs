//! The triggers and rules APIs (OpenWhisk `Triggers.scala`, `Rules.scala`): every route, the
//! trigger's `rules` map, fires with their records and logs, `firesPerMinute`, and every
//! refusal with OpenWhisk's status and message. Fires run against a scripted invoker on the
//! in-process bus.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use faas_core::EntityName;
use faas_core::activation::ActivationResponse;
use faas_core::limits::UserLimits;
use faas_core::message::ActivationMessage;

use support::*;

const TRIGGERS: &str = "/api/v1/namespaces/_/triggers";
const RULES: &str = "/api/v1/namespaces/_/rules";

async fn ok(r: Reply) -> Value {
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

async fn as_other(e: &Env, method: Method, uri: &str, body: Option<Value>) -> Reply {
    call(&e.router, request(method, uri, Some(OTHER), body)).await
}

async fn trigger(e: &Env, name: &str, body: Value) -> Value {
    ok(put(&e.router, &format!("{TRIGGERS}/{name}"), body).await).await
}

async fn rule(e: &Env, name: &str, trigger: &str, action: &str) -> Reply {
    put(
        &e.router,
        &format!("{RULES}/{name}"),
        json!({"trigger": trigger, "action": action}),
    )
    .await
}

/// The activation record `id` of guest, once stored.
async fn record(e: &Env, id: &str) -> Value {
    stored_record(&e.router, id).await.json()
}

fn log_lines(record: &Value) -> Vec<Value> {
    record["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l.as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn trigger_lifecycle() {
    let e = env().await;
    let t = trigger(
        &e,
        "t",
        json!({"parameters": [{"key": "p", "value": 1}],
               "annotations": [{"key": "description", "value": "d"}]}),
    )
    .await;
    assert_eq!(t["namespace"], "guest");
    assert_eq!(t["name"], "t");
    assert_eq!(t["version"], "0.0.1");
    assert_eq!(t["publish"], false);
    assert_eq!(t["limits"], json!({}));
    assert_eq!(t["parameters"], json!([{"key": "p", "value": 1}]));
    assert!(t.get("rules").is_none(), "no rules yet: {t}");
    assert!(t["updated"].as_u64().unwrap() > 0);

    put(&e.router, &format!("{TRIGGERS}/t"), json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "resource already exists");
    let t = ok(put(
        &e.router,
        &format!("{TRIGGERS}/t?overwrite=true"),
        json!({"publish": true}),
    )
    .await)
    .await;
    assert_eq!(t["version"], "0.0.2");
    assert_eq!(t["publish"], true);
    assert_eq!(t["parameters"], json!([{"key": "p", "value": 1}]), "kept");

    let got = ok(get(&e.router, &format!("{TRIGGERS}/t")).await).await;
    assert_eq!(got, t);

    trigger(&e, "t2", json!({})).await;
    let list = ok(get(&e.router, TRIGGERS).await).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"t") && names.contains(&"t2"));
    for item in list.as_array().unwrap() {
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert!(
            !keys.iter().any(|k| *k == "parameters" || *k == "rules"),
            "list form: {item}"
        );
    }
    assert_eq!(
        ok(get(&e.router, &format!("{TRIGGERS}?count=true")).await).await,
        json!({"triggers": 2})
    );
    assert_eq!(
        ok(get(&e.router, &format!("{TRIGGERS}/?limit=1")).await)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ok(get(&e.router, &format!("{TRIGGERS}?skip=1&count=true")).await).await,
        json!({"triggers": 1})
    );

    let deleted = ok(delete(&e.router, &format!("{TRIGGERS}/t")).await).await;
    assert_eq!(deleted["name"], "t");
    get(&e.router, &format!("{TRIGGERS}/t")).await.assert_error(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    delete(&e.router, &format!("{TRIGGERS}/t"))
        .await
        .assert_error(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist.",
        );
}

#[tokio::test]
async fn trigger_refusals() {
    let e = env().await;
    with_action(&e, "hello", json!({})).await;
    // Another collection's name.
    put(&e.router, &format!("{TRIGGERS}/hello"), json!({}))
        .await
        .assert_error(
            StatusCode::CONFLICT,
            "Resource by this name exists but is not in this collection.",
        );
    get(&e.router, &format!("{TRIGGERS}/hello"))
        .await
        .assert_error(
            StatusCode::CONFLICT,
            "Resource by this name exists but is not in this collection.",
        );
    // Feeds must be names.
    put(
        &e.router,
        &format!("{TRIGGERS}/f"),
        json!({"annotations": [{"key": "feed", "value": "/a/b/c/d"}]}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "Feed name is not valid");
    put(
        &e.router,
        &format!("{TRIGGERS}/f"),
        json!({"annotations": [{"key": "feed", "value": 5}]}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "Feed name is not valid");
    let t = trigger(
        &e,
        "f",
        json!({"annotations": [{"key": "feed", "value": "/whisk.system/alarms/alarm"}]}),
    )
    .await;
    assert_eq!(t["annotations"][0]["value"], "/whisk.system/alarms/alarm");
    // Malformed bodies and names.
    let r = call(
        &e.router,
        http::Request::builder()
            .method(Method::PUT)
            .uri(format!("{TRIGGERS}/bad"))
            .header("authorization", basic(GUEST))
            .body(axum::body::Body::from("{"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.error().starts_with("The request content was malformed"));
    put(&e.router, &format!("{TRIGGERS}/bad%20name!"), json!({}))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "The name of the entity contains illegal characters.",
        );
    // Oversized parameters.
    let big = "x".repeat(1_100_000);
    let r = put(
        &e.router,
        &format!("{TRIGGERS}/big"),
        json!({"parameters": [{"key": "p", "value": big}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.json());
    // Collections take GET only; entities not PATCH.
    let r = call(
        &e.router,
        request(Method::POST, TRIGGERS, Some(GUEST), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = call(
        &e.router,
        request(Method::PATCH, &format!("{TRIGGERS}/f"), Some(GUEST), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    // Nothing of the above was created.
    assert_eq!(
        ok(get(&e.router, &format!("{TRIGGERS}?count=true")).await).await,
        json!({"triggers": 1})
    );
    // Without credentials.
    let r = call(&e.router, request(Method::GET, TRIGGERS, None, None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn triggers_do_not_cross_namespaces() {
    let e = env().await;
    trigger(&e, "mine", json!({})).await;
    let forbidden =
        |what: &str| format!("The supplied authentication is not authorized to access '{what}'.");
    for name in ["mine", "missing"] {
        let uri = format!("/api/v1/namespaces/guest/triggers/{name}");
        for method in [Method::GET, Method::DELETE, Method::POST] {
            as_other(&e, method, &uri, None)
                .await
                .assert_error(StatusCode::FORBIDDEN, &forbidden(&format!("guest/{name}")));
        }
        as_other(&e, Method::PUT, &uri, Some(json!({})))
            .await
            .assert_error(StatusCode::FORBIDDEN, &forbidden(&format!("guest/{name}")));
    }
    as_other(&e, Method::GET, "/api/v1/namespaces/guest/triggers", None)
        .await
        .assert_error(StatusCode::FORBIDDEN, &forbidden("guest"));
    as_other(&e, Method::GET, "/api/v1/namespaces/guest/rules", None)
        .await
        .assert_error(StatusCode::FORBIDDEN, &forbidden("guest"));
    // Still there, unchanged.
    ok(get(&e.router, &format!("{TRIGGERS}/mine")).await).await;
}

#[tokio::test]
async fn rule_lifecycle_and_trigger_links() {
    let e = env().await;
    trigger(&e, "t", json!({})).await;
    trigger(&e, "t2", json!({})).await;
    with_action(&e, "hello", json!({})).await;

    let r = ok(rule(&e, "r", "/_/t", "hello").await).await;
    assert_eq!(r["namespace"], "guest");
    assert_eq!(r["name"], "r");
    assert_eq!(r["status"], "active");
    assert_eq!(r["trigger"], json!({"path": "guest", "name": "t"}));
    assert_eq!(r["action"], json!({"path": "guest", "name": "hello"}));
    assert_eq!(r["version"], "0.0.1");

    let t = ok(get(&e.router, &format!("{TRIGGERS}/t")).await).await;
    assert_eq!(
        t["rules"],
        json!({"guest/r": {"action": {"path": "guest", "name": "hello"}, "status": "active"}})
    );
    assert_eq!(
        ok(get(&e.router, &format!("{RULES}/r")).await).await["status"],
        "active"
    );
    rule(&e, "r", "t", "hello")
        .await
        .assert_error(StatusCode::CONFLICT, "resource already exists");

    // The list has the documents without status.
    let list = ok(get(&e.router, RULES).await).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("status").is_none(), "{list}");
    assert_eq!(list[0]["trigger"], json!({"path": "guest", "name": "t"}));
    assert_eq!(
        ok(get(&e.router, &format!("{RULES}?count=true")).await).await,
        json!({"rules": 1})
    );

    // Disable, enable; asking the same state again is fine.
    let r = post(
        &e.router,
        &format!("{RULES}/r"),
        Some(json!({"status": "inactive"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    assert_eq!(
        ok(get(&e.router, &format!("{RULES}/r")).await).await["status"],
        "inactive"
    );
    let t = ok(get(&e.router, &format!("{TRIGGERS}/t")).await).await;
    assert_eq!(t["rules"]["guest/r"]["status"], "inactive");
    for _ in 0..2 {
        let r = post(
            &e.router,
            &format!("{RULES}/r"),
            Some(json!({"status": "active"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(
        ok(get(&e.router, &format!("{RULES}/r")).await).await["status"],
        "active"
    );
    post(&e.router, &format!("{RULES}/r"), Some(json!({"status": "on"})))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "The request content was malformed:\n'on' is not a recognized rule state, must be one of ['active', 'inactive']",
        );

    // An update keeps the status and moves the link to the new trigger.
    post(
        &e.router,
        &format!("{RULES}/r"),
        Some(json!({"status": "inactive"})),
    )
    .await;
    let r = ok(put(
        &e.router,
        &format!("{RULES}/r?overwrite=true"),
        json!({"trigger": {"path": "_", "name": "t2"}}),
    )
    .await)
    .await;
    assert_eq!(r["status"], "inactive");
    assert_eq!(r["version"], "0.0.2");
    assert_eq!(r["trigger"], json!({"path": "guest", "name": "t2"}));
    assert_eq!(r["action"], json!({"path": "guest", "name": "hello"}));
    let t = ok(get(&e.router, &format!("{TRIGGERS}/t")).await).await;
    assert_eq!(t["rules"], json!({}), "unlinked from the old trigger");
    let t2 = ok(get(&e.router, &format!("{TRIGGERS}/t2")).await).await;
    assert_eq!(t2["rules"]["guest/r"]["status"], "inactive");

    // Delete: unlinked, answered inactive, gone.
    let r = ok(delete(&e.router, &format!("{RULES}/r")).await).await;
    assert_eq!(r["status"], "inactive");
    assert_eq!(r["name"], "r");
    let t2 = ok(get(&e.router, &format!("{TRIGGERS}/t2")).await).await;
    assert_eq!(t2["rules"], json!({}));
    get(&e.router, &format!("{RULES}/r")).await.assert_error(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    delete(&e.router, &format!("{RULES}/r")).await.assert_error(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
    post(
        &e.router,
        &format!("{RULES}/r"),
        Some(json!({"status": "active"})),
    )
    .await
    .assert_error(
        StatusCode::NOT_FOUND,
        "The requested resource does not exist.",
    );
}

#[tokio::test]
async fn rule_refusals_create_nothing() {
    let e = env().await;
    trigger(&e, "t", json!({})).await;
    with_action(&e, "hello", json!({})).await;
    rule(&e, "r", "/_/nope", "hello").await.assert_error(
        StatusCode::BAD_REQUEST,
        "trigger /guest/nope does not exist",
    );
    rule(&e, "r", "t", "nope")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "action /guest/nope does not exist");
    rule(&e, "r", "t", "nopkg/nope").await.assert_error(
        StatusCode::BAD_REQUEST,
        "action /guest/nopkg/nope does not exist",
    );
    put(&e.router, &format!("{RULES}/r"), json!({"trigger": "t"}))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "rule requires a valid trigger and a valid action",
        );
    put(
        &e.router,
        &format!("{RULES}/r"),
        json!({"trigger": 5, "action": "hello"}),
    )
    .await
    .assert_error(
        StatusCode::BAD_REQUEST,
        "The request content was malformed:\nexpected a fully qualified name",
    );
    rule(&e, "r", "t", "/a/b/c/d").await.assert_error(
        StatusCode::BAD_REQUEST,
        "The name of the entity contains illegal characters.",
    );
    // A rule named like another entity.
    rule(&e, "hello", "t", "hello").await.assert_error(
        StatusCode::CONFLICT,
        "Resource by this name exists but is not in this collection.",
    );
    // Nothing was created, nothing linked.
    assert_eq!(
        ok(get(&e.router, &format!("{RULES}?count=true")).await).await,
        json!({"rules": 0})
    );
    let t = ok(get(&e.router, &format!("{TRIGGERS}/t")).await).await;
    assert!(t.get("rules").is_none(), "{t}");
    // A status that is not JSON.
    let r = call(
        &e.router,
        http::Request::builder()
            .method(Method::POST)
            .uri(format!("{RULES}/r"))
            .header("authorization", basic(GUEST))
            .body(axum::body::Body::from("not json"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rule_whose_trigger_is_deleted() {
    let e = env().await;
    trigger(&e, "t", json!({})).await;
    with_action(&e, "hello", json!({})).await;
    ok(rule(&e, "r", "t", "hello").await).await;
    ok(delete(&e.router, &format!("{TRIGGERS}/t")).await).await;
    // The rule stays, inactive; it cannot be enabled; it can be deleted.
    assert_eq!(
        ok(get(&e.router, &format!("{RULES}/r")).await).await["status"],
        "inactive"
    );
    post(
        &e.router,
        &format!("{RULES}/r"),
        Some(json!({"status": "active"})),
    )
    .await
    .assert_error(
        StatusCode::NOT_FOUND,
        "Only rules with existing triggers can be activated",
    );
    // A trigger made again under the name does not bring the rule back.
    trigger(&e, "t", json!({})).await;
    assert_eq!(
        ok(get(&e.router, &format!("{RULES}/r")).await).await["status"],
        "inactive"
    );
    let r = post(&e.router, &format!("{TRIGGERS}/t"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    ok(delete(&e.router, &format!("{RULES}/r")).await).await;
}

#[tokio::test]
async fn rules_reach_actions_through_packages_bindings_and_shared_packages() {
    let e = env().await;
    trigger(&e, "t", json!({})).await;
    // other's published package and a private one.
    for (name, publish) in [("shared", true), ("private", false)] {
        let r = as_other(
            &e,
            Method::PUT,
            &format!("/api/v1/namespaces/_/packages/{name}"),
            Some(json!({"publish": publish})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = as_other(
            &e,
            Method::PUT,
            &format!("/api/v1/namespaces/_/actions/{name}/act"),
            Some(node_action("function main(a){return a}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/actions/plain",
        Some(node_action("function main(a){return a}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    let r = ok(rule(&e, "shared", "t", "/other/shared/act").await).await;
    assert_eq!(r["action"], json!({"path": "other/shared", "name": "act"}));
    ok(put(
        &e.router,
        "/api/v1/namespaces/_/packages/mybinding",
        json!({"binding": {"namespace": "other", "name": "shared"}}),
    )
    .await)
    .await;
    let r = ok(rule(&e, "bound", "t", "mybinding/act").await).await;
    assert_eq!(
        r["action"],
        json!({"path": "guest/mybinding", "name": "act"})
    );

    // Private packages, other's default package and missing foreign packages answer alike.
    for (action, denied) in [
        ("/other/private/act", "other/private"),
        ("/other/missing/act", "other/missing"),
        ("/other/plain", "other/plain"),
        ("/other/nope", "other/nope"),
    ] {
        rule(&e, "r", "t", action).await.assert_error(
            StatusCode::FORBIDDEN,
            &format!("The supplied authentication is not authorized to access '{denied}'."),
        );
    }
    // Another namespace's trigger.
    let r = as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/triggers/theirs",
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    rule(&e, "r", "/other/theirs", "mybinding/act")
        .await
        .assert_error(
            StatusCode::FORBIDDEN,
            "The supplied authentication is not authorized to access 'other/theirs'.",
        );
    let t = ok(get(&e.router, &format!("{TRIGGERS}/t")).await).await;
    assert_eq!(t["rules"].as_object().unwrap().len(), 2, "{t}");
}

#[tokio::test]
async fn concurrent_rule_creates_keep_every_link() {
    let e = env().await;
    trigger(&e, "t", json!({})).await;
    with_action(&e, "hello", json!({})).await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let router = e.router.clone();
            tokio::spawn(async move {
                call(
                    &router,
                    request(
                        Method::PUT,
                        &format!("{RULES}/r{i}"),
                        Some(GUEST),
                        Some(json!({"trigger": "t", "action": "hello"})),
                    ),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            within("rule create", t).await.unwrap().status,
            StatusCode::OK
        );
    }
    let t = ok(get(&e.router, &format!("{TRIGGERS}/t")).await).await;
    assert_eq!(t["rules"].as_object().unwrap().len(), 12, "{t}");
}

/// Serves activations with the scripted invoker, remembering every message.
fn serve(e: &Env, inv: FakeInvoker) -> Arc<Mutex<Vec<ActivationMessage>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    inv.serve(e, move |msg| {
        seen2.lock().unwrap().push(msg.clone());
        ActivationResponse::success(json!({"ok": true}))
    });
    seen
}

#[tokio::test]
async fn fire_activates_every_active_rule_and_records_it() {
    let e = env().await;
    let inv = FakeInvoker::start(&e).await;
    let seen = serve(&e, inv);
    trigger(
        &e,
        "t",
        json!({"parameters": [{"key": "a", "value": "param"}, {"key": "b", "value": "param"}]}),
    )
    .await;
    with_action(&e, "one", json!({})).await;
    with_action(&e, "two", json!({})).await;
    with_action(&e, "three", json!({})).await;

    // No rule: 204, no record.
    let r = post(&e.router, &format!("{TRIGGERS}/t"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());

    ok(rule(&e, "r1", "t", "one").await).await;
    ok(rule(&e, "r2", "t", "two").await).await;
    ok(rule(&e, "r3", "t", "three").await).await;
    post(
        &e.router,
        &format!("{RULES}/r3"),
        Some(json!({"status": "inactive"})),
    )
    .await;

    let r = call(
        &e.router,
        http::Request::builder()
            .method(Method::POST)
            .uri(format!("{TRIGGERS}/t"))
            .header("authorization", basic(GUEST))
            .header("x-custom", "hi")
            .body(axum::body::Body::from(r#"{"b": "payload", "c": 3}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.json()["activationId"].as_str().unwrap().to_string();
    assert_eq!(r.json().as_object().unwrap().len(), 1);
    assert_eq!(r.header("x-openwhisk-activation-id"), Some(id.as_str()));

    let rec = record(&e, &id).await;
    assert_eq!(rec["name"], "t");
    assert_eq!(rec["namespace"], "guest");
    assert_eq!(rec["subject"], "guest");
    assert_eq!(
        rec["response"]["result"],
        json!({"b": "payload", "c": 3}),
        "the payload as the result"
    );
    assert_eq!(rec["response"]["status"], "success");
    assert!(rec.get("end").is_none(), "{rec}");
    let lines = log_lines(&rec);
    assert_eq!(lines.len(), 3, "{rec}");
    let by_rule = |r: &str| {
        lines
            .iter()
            .find(|l| l["rule"] == r)
            .unwrap_or_else(|| panic!("no line for {r}: {rec}"))
            .clone()
    };
    let mut action_ids = Vec::new();
    for (r, a) in [("guest/r1", "guest/one"), ("guest/r2", "guest/two")] {
        let l = by_rule(r);
        assert_eq!(l["action"], a);
        assert_eq!(l["statusCode"], 0);
        assert_eq!(l["success"], true);
        assert_eq!(l.as_object().unwrap().len(), 5, "{l}");
        action_ids.push(l["activationId"].as_str().unwrap().to_string());
    }
    let l = by_rule("guest/r3");
    assert_eq!(
        l,
        json!({"statusCode": 1, "success": false, "rule": "guest/r3", "action": "guest/three",
               "error": "Rule 'guest/r3' is inactive, action 'guest/three' was not activated."})
    );
    // The raw lines keep OpenWhisk's key order.
    assert!(
        rec["logs"][0]
            .as_str()
            .unwrap()
            .starts_with(r#"{"statusCode":"#)
    );

    // Each action ran once, with the trigger's parameters, the headers and the payload
    // (payload wins); the caller's credentials are not passed on.
    for id in &action_ids {
        let a = record(&e, id).await;
        assert_eq!(a["response"]["result"], json!({"ok": true}));
    }
    let msgs = seen.lock().unwrap().clone();
    assert_eq!(msgs.len(), 2);
    for m in &msgs {
        let c = m.content.as_ref().unwrap();
        assert_eq!(c["a"], "param");
        assert_eq!(c["b"], "payload");
        assert_eq!(c["c"], 3);
        assert_eq!(c["__ow_headers"]["x-custom"], "hi");
        assert!(c["__ow_headers"].get("authorization").is_none(), "{c}");
        assert!(action_ids.contains(&m.activation_id.to_string()));
    }
}

#[tokio::test]
async fn a_failing_rule_does_not_stop_the_others() {
    let e = env().await;
    let inv = FakeInvoker::start(&e).await;
    let seen = serve(&e, inv);
    trigger(&e, "t", json!({})).await;
    with_action(&e, "good", json!({})).await;
    with_action(&e, "gone", json!({})).await;
    ok(rule(&e, "rgood", "t", "good").await).await;
    ok(rule(&e, "rbad", "t", "gone").await).await;
    ok(delete(&e.router, &format!("{ACTIONS}/gone")).await).await;

    let r = post(&e.router, &format!("{TRIGGERS}/t"), Some(json!({"x": 1}))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let rec = record(&e, r.json()["activationId"].as_str().unwrap()).await;
    let lines = log_lines(&rec);
    let bad = lines.iter().find(|l| l["rule"] == "guest/rbad").unwrap();
    assert_eq!(
        *bad,
        json!({"statusCode": 1, "success": false, "rule": "guest/rbad", "action": "guest/gone",
               "error": "The requested resource does not exist."})
    );
    let good = lines.iter().find(|l| l["rule"] == "guest/rgood").unwrap();
    assert_eq!(good["statusCode"], 0);
    record(&e, good["activationId"].as_str().unwrap()).await;
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn fire_refusals() {
    let e = env().await;
    trigger(&e, "t", json!({})).await;
    post(&e.router, &format!("{TRIGGERS}/nope"), None)
        .await
        .assert_error(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist.",
        );
    with_action(&e, "hello", json!({})).await;
    post(&e.router, &format!("{TRIGGERS}/hello"), None)
        .await
        .assert_error(
            StatusCode::CONFLICT,
            "Resource by this name exists but is not in this collection.",
        );
    let r = post(&e.router, &format!("{TRIGGERS}/t"), Some(json!([1, 2]))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Over the payload limit (1 MB by default).
    let big = json!({"p": "x".repeat(1_100_000)});
    let r = post(&e.router, &format!("{TRIGGERS}/t"), Some(big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.error().starts_with("Request larger than allowed:"),
        "{}",
        r.error()
    );
}

#[tokio::test]
async fn fires_per_minute_is_enforced_per_namespace() {
    let e = env().await;
    e.store
        .put_limits(
            &EntityName::new("guest").unwrap(),
            &UserLimits {
                fires_per_minute: Some(2),
                ..UserLimits::default()
            },
        )
        .await
        .unwrap();
    trigger(&e, "t", json!({})).await;
    // A fire near the end of a wall-clock minute could see its counter reset: start just
    // after a minute began.
    let ms = faas_core::entity::now_ms() % 60_000;
    if ms > 59_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - ms + 20)).await;
    }
    for _ in 0..2 {
        let r = post(&e.router, &format!("{TRIGGERS}/t"), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    post(&e.router, &format!("{TRIGGERS}/t"), None)
        .await
        .assert_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests in the last minute (count: 3, allowed: 2).",
        );
    // Invocations are counted apart, and other namespaces are not affected.
    let r = as_other(
        &e,
        Method::PUT,
        "/api/v1/namespaces/_/triggers/t",
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    for _ in 0..3 {
        let r = as_other(&e, Method::POST, "/api/v1/namespaces/_/triggers/t", None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn a_fire_delivered_twice_runs_its_rules_once() {
    let e = env().await;
    let inv = FakeInvoker::start(&e).await;
    let seen = serve(&e, inv);
    trigger(&e, "t", json!({})).await;
    with_action(&e, "hello", json!({})).await;
    ok(rule(&e, "r", "t", "hello").await).await;
    // The fire as a controller publishes it before answering 202; the bus delivers it twice
    // (its first consumer died before committing, say).
    let key = faas_core::AuthKey::parse(GUEST).unwrap();
    let user = e.store.find_identity(&key).await.unwrap();
    let id = faas_core::ActivationId::generate();
    let fire = json!({
        "transid": faas_core::message::TransactionId::new("redelivered"),
        "user": user,
        "trigger": {"path": "guest", "name": "t"},
        "version": "0.0.1",
        "activationId": id,
        "start": 1,
        "parameters": [],
        "payload": {"n": 1},
        "headers": {},
        "rules": {"guest/r": {"action": {"path": "guest", "name": "hello"}, "status": "active"}}
    });
    let bytes = bytes::Bytes::from(serde_json::to_vec(&fire).unwrap());
    for _ in 0..2 {
        e.bus
            .publish("triggerFires", None, bytes.clone())
            .await
            .unwrap();
    }
    let rec = record(&e, id.as_str()).await;
    let lines = log_lines(&rec);
    assert_eq!(lines.len(), 1);
    let action_id = lines[0]["activationId"].as_str().unwrap().to_string();
    record(&e, &action_id).await;
    // A second copy is skipped: it waits while the first is processed here, then finds its
    // record. A later fire, published after both copies, bounds the wait before counting.
    let later = post(&e.router, &format!("{TRIGGERS}/t"), Some(json!({"n": 2}))).await;
    assert_eq!(later.status, StatusCode::ACCEPTED);
    let later = record(&e, later.json()["activationId"].as_str().unwrap()).await;
    record(&e, log_lines(&later)[0]["activationId"].as_str().unwrap()).await;
    drained(&e).await;
    let msgs = seen.lock().unwrap().clone();
    let first: Vec<_> = msgs
        .iter()
        .filter(|m| m.activation_id.as_str() == action_id)
        .collect();
    assert_eq!(
        first.len(),
        1,
        "the rule ran once for the fire delivered twice"
    );
    assert_eq!(msgs.len(), 2);
}

/// A fire the bus redelivers (its first consumer took it and died) whose rule's action already
/// ran: the rule is not invoked again (the invoker only looks for records of redeliveries, and
/// the re-published activation would be a first delivery), and the trigger record names the
/// existing activation.
#[tokio::test]
async fn a_redelivered_fire_does_not_run_a_rule_whose_activation_is_recorded() {
    use faas_core::bus::TopicConfig;
    use faas_core::identity::Namespace;
    use faas_core::{ActivationId, AuthKey, EntityPath, Identity, MessageBus};
    use faas_http::ControllerConfig;

    let key = AuthKey::parse(GUEST).unwrap();
    let user = Identity {
        subject: "guest".into(),
        namespace: Namespace {
            name: EntityName::new("guest").unwrap(),
            uuid: key.uuid.clone(),
        },
        authkey: key,
        rights: Identity::all_rights(),
        limits: UserLimits::default(),
    };
    let id = ActivationId::generate();
    let fire = json!({
        "transid": faas_core::message::TransactionId::new("redelivered"),
        "user": user,
        "trigger": {"path": "guest", "name": "t"},
        "version": "0.0.1",
        "activationId": id,
        "start": 1,
        "parameters": [],
        "payload": {"n": 1},
        "headers": {},
        "rules": {"guest/r": {"action": {"path": "guest", "name": "hello"}, "status": "active"}}
    });
    // A controller that took the fire and died: it holds the message until it is dropped.
    let bus = Arc::new(faas_bus::InProcessBus::new());
    bus.create_topic("triggerFires", &TopicConfig::default())
        .await
        .unwrap();
    let dying = bus.subscribe("triggerFires", "triggerFires").await.unwrap();
    bus.publish(
        "triggerFires",
        None,
        bytes::Bytes::from(serde_json::to_vec(&fire).unwrap()),
    )
    .await
    .unwrap();
    let taken = within("the dying controller's fire", dying.recv())
        .await
        .unwrap();
    assert!(!taken.redelivered);

    let e = env_over(ControllerConfig::default(), bus as Arc<dyn MessageBus>).await;
    let inv = FakeInvoker::start(&e).await;
    let seen = serve(&e, inv);
    with_action(&e, "hello", json!({})).await;
    // What the dying controller's rule activation left: its record.
    let done = faas_http::engine::fire::rule_activation_id(&id, "guest/r");
    e.store
        .put_activation(&faas_core::Activation {
            namespace: EntityPath::new("guest").unwrap(),
            name: EntityName::new("hello").unwrap(),
            subject: "guest".into(),
            activation_id: done.clone(),
            start: 2,
            end: 3,
            duration: Some(1),
            cause: None,
            response: ActivationResponse::success(json!({"first": true})),
            logs: Vec::new(),
            version: Default::default(),
            publish: false,
            annotations: Default::default(),
        })
        .await
        .unwrap();
    drop(dying);

    let rec = record(&e, id.as_str()).await;
    let lines = log_lines(&rec);
    assert_eq!(lines.len(), 1, "{rec}");
    assert_eq!(lines[0]["activationId"], done.as_str());
    assert_eq!(lines[0]["success"], true);
    // A later fire bounds the wait: its rule runs, the redelivered one's did not.
    trigger(&e, "t", json!({})).await;
    ok(rule(&e, "r", "t", "hello").await).await;
    let later = post(&e.router, &format!("{TRIGGERS}/t"), Some(json!({"n": 2}))).await;
    assert_eq!(later.status, StatusCode::ACCEPTED);
    let later = record(&e, later.json()["activationId"].as_str().unwrap()).await;
    record(&e, log_lines(&later)[0]["activationId"].as_str().unwrap()).await;
    drained(&e).await;
    let msgs = seen.lock().unwrap().clone();
    assert!(
        msgs.iter().all(|m| m.activation_id != done),
        "the recorded rule activation was invoked again"
    );
    assert_eq!(msgs.len(), 1, "only the later fire's rule ran");
}
