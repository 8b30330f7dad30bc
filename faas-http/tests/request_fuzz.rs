//! Property tests over request parsing: random entity names, query parameters and JSON bodies
//! (entity documents with wrong types, odd values, deep nesting) through the whole router.
//! Whatever comes in, the answer is never a panic, never a hang, never a 5xx other than 503
//! (no invoker is registered here), and every error has OpenWhisk's `{"error", "code"}` shape.
//!
//! The case count is bounded (`PROPTEST_CASES`, default 192 per property) so that CI stays
//! fast; a failing case is shrunk and printed by proptest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::OnceLock;

use axum::body::Body;
use http::{Method, Request};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use support::{GUEST, basic, call, env};

struct Harness {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let router = rt.block_on(async { env().await.router });
        Harness { rt, router }
    })
}

/// Sends one request and checks the answer's shape.
fn check(method: Method, uri: &str, body: Option<Vec<u8>>) -> Result<(), TestCaseError> {
    let h = harness();
    let mut b = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header("authorization", basic(GUEST));
    let body = match body {
        Some(bytes) => {
            b = b.header("content-type", "application/json");
            Body::from(bytes)
        }
        None => Body::empty(),
    };
    let req = match b.body(body) {
        Ok(r) => r,
        // Not a request hyper would have parsed either.
        Err(_) => return Ok(()),
    };
    let reply = h.rt.block_on(call(&h.router, req));
    let status = reply.status.as_u16();
    prop_assert!(
        status < 500 || status == 503,
        "{method} {uri} answered {status}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    if status >= 400 {
        let v: Value = serde_json::from_slice(&reply.body).map_err(|e| {
            TestCaseError::fail(format!("{method} {uri}: error body is not JSON ({e})"))
        })?;
        prop_assert!(v["error"].is_string(), "{method} {uri}: {v}");
        prop_assert!(v["code"].is_string(), "{method} {uri}: {v}");
    }
    Ok(())
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Names: valid ones, OpenWhisk's edge characters, long ones, and arbitrary text.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_][a-zA-Z0-9_@.\\- ]{0,20}",
        "[a-zA-Z0-9_@.\\- ]{250,260}",
        "\\PC{0,12}",
        Just(String::new()),
        Just("_".to_string()),
        Just("..".to_string()),
    ]
}

/// JSON values of any shape, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An entity document: the right fields with values of any shape, sometimes well-formed.
fn entity_body() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![
        Just(json!("nodejs:default")),
        Just(json!("python:default")),
        Just(json!("sequence")),
        Just(json!("blackbox")),
        json_value(),
    ];
    let exec = (kind, json_value(), json_value(), json_value()).prop_map(|(kind, code, image, comps)| {
        json!({"kind": kind, "code": code, "image": image, "components": comps})
    });
    let limits = (json_value(), any::<i64>(), any::<i64>())
        .prop_map(|(t, m, l)| json!({"timeout": t, "memory": m, "logs": l, "concurrency": 1}));
    let doc = (
        prop::option::of(exec),
        prop::option::of(limits),
        json_value(),
        json_value(),
        json_value(),
    )
        .prop_map(|(exec, limits, params, annotations, other)| {
            let mut o = Map::new();
            if let Some(e) = exec {
                o.insert("exec".into(), e);
            }
            if let Some(l) = limits {
                o.insert("limits".into(), l);
            }
            o.insert("parameters".into(), params);
            o.insert("annotations".into(), annotations);
            o.insert("publish".into(), other.clone());
            o.insert("trigger".into(), other.clone());
            o.insert("action".into(), other.clone());
            o.insert("binding".into(), other);
            serde_json::to_vec(&Value::Object(o)).unwrap()
        });
    prop_oneof![
        4 => doc,
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Query strings over the parameters the API reads, with values of any text.
fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("limit"),
        Just("skip"),
        Just("count"),
        Just("docs"),
        Just("since"),
        Just("upto"),
        Just("name"),
        Just("blocking"),
        Just("result"),
        Just("timeout"),
        Just("overwrite"),
        Just("code"),
        Just("x"),
    ];
    let value = prop_oneof!["-?[0-9]{1,25}", "true|false|yes|", "\\PC{0,10}",];
    prop::collection::vec((key, value), 0..5).prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| format!("{k}={}", percent(&v)))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn collection() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("actions"),
        Just("triggers"),
        Just("rules"),
        Just("packages"),
        Just("activations"),
        Just("nothing"),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::PUT),
        Just(Method::POST),
        Just(Method::DELETE),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(192),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn entity_documents_never_break_the_api(
        coll in collection(),
        ns in prop_oneof![Just("_".to_string()), name()],
        pkg in prop::option::of(name()),
        entity in name(),
        q in query(),
        body in entity_body(),
    ) {
        let path = match &pkg {
            Some(p) => format!("{}/{}", percent(p), percent(&entity)),
            None => percent(&entity),
        };
        let uri = format!("/api/v1/namespaces/{}/{coll}/{path}?{q}", percent(&ns));
        check(Method::PUT, &uri, Some(body.clone()))?;
        check(Method::POST, &uri, Some(body))?;
        check(Method::GET, &uri, None)?;
    }

    #[test]
    fn lists_and_queries_never_break_the_api(
        m in method(),
        coll in collection(),
        ns in prop_oneof![Just("_".to_string()), name()],
        q in query(),
    ) {
        let uri = format!("/api/v1/namespaces/{}/{coll}?{q}", percent(&ns));
        check(m, &uri, None)?;
    }

    #[test]
    fn raw_paths_never_break_the_api(
        m in method(),
        segments in prop::collection::vec(name(), 0..6),
        q in query(),
    ) {
        let path: Vec<String> = segments.iter().map(|s| percent(s)).collect();
        let uri = format!("/api/v1/{}?{q}", path.join("/"));
        check(m, &uri, None)?;
    }
}
