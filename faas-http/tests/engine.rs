//! The invocation engine without HTTP: `Engine::invoke` with a scripted invoker on the bus.
//! Nested sequences with their own records, compositions driven by conductor actions, the
//! limits of both, parameters and throttles.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};

use faas_core::activation::ActivationResponse;
use faas_core::message::ActivationMessage;
use faas_core::{Activation, AuthKey, EntityName, FullyQualifiedName, Identity, SystemLimits};
use faas_http::ControllerConfig;
use faas_http::engine::{InvokeRequest, Outcome};
use support::*;

async fn guest(e: &Env) -> Identity {
    let key = AuthKey::parse(GUEST).unwrap();
    e.store.find_identity(&key).await.unwrap()
}

fn fqn(s: &str) -> FullyQualifiedName {
    FullyQualifiedName::resolve(s, "guest").unwrap()
}

async fn seq(e: &Env, name: &str, components: &[&str]) {
    let r = put(
        &e.router,
        &format!("{ACTIONS}/{name}?overwrite=true"),
        json!({"exec": {"kind": "sequence", "components": components}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
}

async fn action(e: &Env, name: &str, annotations: Value) {
    let mut body = node_action("function main(a){return a}");
    body["annotations"] = annotations;
    let r = put(&e.router, &format!("{ACTIONS}/{name}?overwrite=true"), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
}

/// The scripted behaviour of the test actions, by name:
/// * `a`, `b`, `c`, `d`: append their name to `trail`;
/// * `fail`: an application error;
/// * `inc`: `n + 1`;
/// * `cond`: a conductor: without `n`, call `inc` with `n: 0` and state `{k: "v"}`; with `n`
///   below 2 (or `loop: true`), call `inc` again; else end with `{final: n, k}`;
/// * `bad`: a conductor naming an action by a number.
fn script(msg: &ActivationMessage) -> ActivationResponse {
    let args = msg.content.clone().unwrap_or(json!({}));
    let name = msg.action.name.as_str();
    match name {
        "a" | "b" | "c" | "d" => {
            let mut trail = args["trail"].as_array().cloned().unwrap_or_default();
            trail.push(json!(name));
            ActivationResponse::success(json!({ "trail": trail }))
        }
        "fail" => ActivationResponse::application_error(json!("it failed")),
        "inc" => ActivationResponse::success(json!({"n": args["n"].as_i64().unwrap_or(0) + 1})),
        "cond" => {
            if args.get("error").is_some() {
                return ActivationResponse::success(json!({"stopped": args["error"]}));
            }
            let looping = args["loop"] == json!(true);
            match args["n"].as_i64() {
                None => ActivationResponse::success(
                    json!({"action": "inc", "params": {"n": 0}, "state": {"k": "v", "loop": looping}}),
                ),
                Some(n) if n < 2 || looping => ActivationResponse::success(
                    json!({"action": "/_/inc", "params": {"n": n}, "state": {"k": args["k"], "loop": looping}}),
                ),
                Some(n) => {
                    ActivationResponse::success(json!({"params": {"final": n, "k": args["k"]}}))
                }
            }
        }
        "bad" => {
            if args.get("error").is_some() {
                ActivationResponse::success(json!({"stopped": args["error"]}))
            } else {
                ActivationResponse::success(json!({"action": 5}))
            }
        }
        other => ActivationResponse::whisk_error(format!("unscripted action {other}")),
    }
}

async fn started(config: ControllerConfig) -> Env {
    let e = env_with(config).await;
    let inv = FakeInvoker::start(&e).await;
    inv.serve(&e, script);
    e
}

async fn blocking(e: &Env, name: &str, payload: Value) -> Activation {
    let engine = e.controller.engine();
    let req = InvokeRequest::new(fqn(name))
        .with_payload(payload)
        .blocking(Duration::from_secs(20));
    match within("invoke", engine.invoke(guest(e).await, req))
        .await
        .unwrap()
    {
        Outcome::Completed(a) => *a,
        Outcome::Accepted(id) => panic!("no result in time: {id}"),
    }
}

async fn record(e: &Env, id: &str) -> Activation {
    let ns = EntityName::new("guest").unwrap();
    let id = faas_core::ActivationId::parse(id).unwrap();
    found("record", async || {
        e.store.get_activation(&ns, &id).await.ok()
    })
    .await
}

fn ann<'a>(a: &'a Activation, key: &str) -> Option<&'a Value> {
    a.annotations.get(key)
}

#[tokio::test]
async fn nested_sequences_get_their_own_records() {
    let e = started(ControllerConfig::default()).await;
    for n in ["a", "b", "c", "d"] {
        action(&e, n, json!([])).await;
    }
    seq(&e, "inner", &["c", "d"]).await;
    seq(&e, "outer", &["a", "inner", "b"]).await;

    let outer = blocking(&e, "outer", json!({"trail": []})).await;
    assert_eq!(
        outer.response.result,
        Some(json!({"trail": ["a", "c", "d", "b"]}))
    );
    assert_eq!(outer.logs.len(), 3, "a, inner, b: not flattened");
    assert_eq!(outer.cause, None);
    assert_eq!(ann(&outer, "topmost"), Some(&json!(true)));
    assert_eq!(ann(&outer, "kind"), Some(&json!("sequence")));
    assert_eq!(ann(&outer, "path"), Some(&json!("guest/outer")));
    assert!(ann(&outer, "causedBy").is_none());

    let inner = record(&e, &outer.logs[1]).await;
    assert_eq!(inner.name.as_str(), "inner");
    assert_eq!(inner.cause.as_ref(), Some(&outer.activation_id));
    assert_eq!(ann(&inner, "topmost"), Some(&json!(false)));
    assert_eq!(ann(&inner, "causedBy"), Some(&json!("sequence")));
    assert_eq!(inner.logs.len(), 2);
    assert_eq!(
        inner.response.result,
        Some(json!({"trail": ["a", "c", "d"]}))
    );

    let a = record(&e, &outer.logs[0]).await;
    assert_eq!(a.cause.as_ref(), Some(&outer.activation_id));
    let c = record(&e, &inner.logs[0]).await;
    assert_eq!(c.cause.as_ref(), Some(&inner.activation_id));
    // The outer record is stored too, with the limits of the largest component.
    let stored = record(&e, outer.activation_id.as_str()).await;
    assert_eq!(stored.logs, outer.logs);
    assert_eq!(ann(&stored, "limits").unwrap()["memory"], 256);
}

#[tokio::test]
async fn a_sequence_stops_at_the_first_failure() {
    let e = started(ControllerConfig::default()).await;
    for n in ["a", "fail", "b"] {
        action(&e, n, json!([])).await;
    }
    seq(&e, "s", &["a", "fail", "b"]).await;
    let r = blocking(&e, "s", json!({})).await;
    assert_eq!(r.logs.len(), 2, "b never ran");
    assert_eq!(
        r.response.status_code,
        faas_core::StatusCode::ApplicationError
    );
    assert_eq!(r.response.result, Some(json!({"error": "it failed"})));
}

#[tokio::test]
async fn the_sequence_limit_holds_across_nesting_at_run_time() {
    let mut limits = SystemLimits::default();
    limits.sequence_max_length = 3;
    let e = started(ControllerConfig::default().with_limits(limits)).await;
    for n in ["a", "b"] {
        action(&e, n, json!([])).await;
    }
    seq(&e, "one", &["a"]).await;
    seq(&e, "two", &["one", "one", "one"]).await;
    // Growing a nested sequence after the fact is caught when the tree runs.
    seq(&e, "one", &["a", "b"]).await;
    let r = blocking(&e, "two", json!({"trail": []})).await;
    assert_eq!(
        r.response.status_code,
        faas_core::StatusCode::ApplicationError
    );
    assert_eq!(
        r.response.result,
        Some(json!({"error": "Too many actions in the sequence."}))
    );
    // At create time the inlined count is checked.
    let bad = put(
        &e.router,
        &format!("{ACTIONS}/three"),
        json!({"exec": {"kind": "sequence", "components": ["one", "one"]}}),
    )
    .await;
    bad.assert_error(StatusCode::BAD_REQUEST, "Too many actions in the sequence.");
}

#[tokio::test]
async fn conductors_drive_compositions() {
    let e = started(ControllerConfig::default()).await;
    action(&e, "inc", json!([])).await;
    action(&e, "cond", json!([{"key": "conductor", "value": true}])).await;

    let r = blocking(&e, "cond", json!({})).await;
    assert_eq!(r.response.result, Some(json!({"final": 2, "k": "v"})));
    assert!(r.response.status_code == faas_core::StatusCode::Success);
    // cond → inc(1) → cond → inc(2)... : conductor, component, conductor, component, conductor.
    assert_eq!(r.logs.len(), 5, "{:?}", r.logs);
    assert_eq!(ann(&r, "conductor"), Some(&json!(true)));
    assert_eq!(ann(&r, "kind"), Some(&json!("sequence")));
    assert_eq!(ann(&r, "topmost"), Some(&json!(true)));
    let names: Vec<String> = {
        let mut v = Vec::new();
        for id in &r.logs {
            let a = record(&e, id).await;
            assert_eq!(a.cause.as_ref(), Some(&r.activation_id));
            v.push(a.name.to_string());
        }
        v
    };
    assert_eq!(names, ["cond", "inc", "cond", "inc", "cond"]);
    let stored = record(&e, r.activation_id.as_str()).await;
    assert_eq!(stored.response.result, r.response.result);
}

#[tokio::test]
async fn compositions_are_bounded_and_report_bad_steps() {
    let mut limits = SystemLimits::default();
    limits.sequence_max_length = 3;
    let e = started(ControllerConfig::default().with_limits(limits)).await;
    action(&e, "inc", json!([])).await;
    action(&e, "cond", json!([{"key": "conductor", "value": true}])).await;
    action(&e, "bad", json!([{"key": "conductor", "value": true}])).await;

    let r = blocking(&e, "cond", json!({"loop": true})).await;
    assert_eq!(
        r.response.result,
        Some(json!({"stopped": "Too many actions in the composition."})),
        "the conductor is told, and ends"
    );
    let components = r.logs.len();
    assert_eq!(components, 3 + 5, "3 components and 5 conductor runs");

    let r = blocking(&e, "bad", json!({})).await;
    assert_eq!(
        r.response.result,
        Some(
            json!({"stopped": "Failed to parse action name from json value 5 during composition."})
        )
    );

    // A missing component of the caller's own is "not found" (not an entitlement failure).
    assert_eq!(
        delete(&e.router, &format!("{ACTIONS}/inc")).await.status,
        StatusCode::OK
    );
    let r = blocking(&e, "cond", json!({})).await;
    assert_eq!(
        r.response.result,
        Some(
            json!({"stopped": "Failed to resolve action with name 'guest/inc' during composition."})
        )
    );
}

#[tokio::test]
async fn components_are_not_throttled_individually() {
    let mut limits = SystemLimits::default();
    limits.invocations_per_minute = 2;
    limits.concurrent_invocations = 1;
    let e = started(ControllerConfig::default().with_limits(limits)).await;
    for n in ["a", "b", "c", "d"] {
        action(&e, n, json!([])).await;
    }
    seq(&e, "s", &["a", "b", "c", "d"]).await;
    let r = blocking(&e, "s", json!({"trail": []})).await;
    assert_eq!(
        r.response.result,
        Some(json!({"trail": ["a", "b", "c", "d"]}))
    );
    // The sequence itself counts once per invoke.
    blocking(&e, "s", json!({"trail": []})).await;
    let e2 = e.controller.engine();
    let err = e2
        .invoke(guest(&e).await, InvokeRequest::new(fqn("s")))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 429, "{err}");
}

#[tokio::test]
async fn non_blocking_and_expired_waits_answer_with_the_id() {
    let e = started(ControllerConfig::default()).await;
    for n in ["a", "b"] {
        action(&e, n, json!([])).await;
    }
    seq(&e, "s", &["a", "b"]).await;
    let engine = e.controller.engine();
    let out = engine
        .invoke(
            guest(&e).await,
            InvokeRequest::new(fqn("s")).with_payload(json!({"trail": []})),
        )
        .await
        .unwrap();
    let Outcome::Accepted(id) = out else {
        panic!("non-blocking answers the id: {out:?}");
    };
    let rec = record(&e, id.as_str()).await;
    assert_eq!(rec.response.result, Some(json!({"trail": ["a", "b"]})));
    assert_eq!(rec.logs.len(), 2);
}

/// With user events on, the controller publishes the `Activation` event of each sequence and
/// composition record it writes (OpenWhisk's `SequenceActions`/`PrimitiveActions`), source
/// `controller<C>`; the components' events come from the invoker that ran them.
#[tokio::test]
async fn sequences_and_compositions_publish_their_activation_events() {
    let e = started(ControllerConfig::default().with_user_events(true)).await;
    let events = e
        .bus
        .subscribe(faas_core::events::EVENTS_TOPIC, "user-events")
        .await
        .unwrap();
    for n in ["a", "b", "inc"] {
        action(&e, n, json!([])).await;
    }
    action(&e, "cond", json!([{"key": "conductor", "value": true}])).await;
    seq(&e, "s", &["/_/a", "/_/b"]).await;
    let s = blocking(&e, "s", json!({})).await;
    let c = blocking(&e, "cond", json!({})).await;

    // The two Activation events (the admissions' `ConcurrentInvocations` metrics aside).
    let mut got: Vec<Value> = Vec::new();
    within("the two activation events", async {
        while got.len() < 2 {
            let d = events.recv().await.unwrap();
            let v: Value = serde_json::from_slice(&d.payload).unwrap();
            if v["eventType"] == "Activation" {
                got.push(v);
            }
            events.commit(&d).await.unwrap();
        }
    })
    .await;
    let of = |id: &faas_core::ActivationId| {
        got.iter()
            .find(|v| v["body"]["activationId"] == json!(id.as_str()))
            .unwrap_or_else(|| panic!("no event for {id}: {got:?}"))
            .clone()
    };
    let seq_event = of(&s.activation_id);
    assert_eq!(seq_event["eventType"], "Activation");
    assert_eq!(seq_event["source"], "controller0");
    assert_eq!(seq_event["namespace"], "guest");
    assert_eq!(seq_event["body"]["name"], "guest/s");
    assert_eq!(seq_event["body"]["kind"], "sequence");
    assert_eq!(seq_event["body"]["statusCode"], 0);
    let cond_event = of(&c.activation_id);
    assert_eq!(cond_event["source"], "controller0");
    assert_eq!(cond_event["body"]["name"], "guest/cond");
    assert_eq!(cond_event["body"]["conductor"], true);
}
