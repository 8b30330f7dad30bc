//! OpenWhisk's user events on the bus: with them enabled, an `Activation` event per
//! activation from the invoker and a `Metric` event per throttled or admitted request from
//! the controller, in OpenWhisk's `EventMessage` JSON shape, read from the `events` topic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};

use faas_core::events::EVENTS_TOPIC;
use faas_core::message::InvokerInstanceId;
use faas_core::{Executor, SystemLimits, TopicConfig};
use faas_exec::invoker::{InvokerConfig, InvokerService};
use faas_exec::pool::ContainerPool;
use faas_exec::process::ProcessExecutor;
use faas_http::ControllerConfig;
use support::*;

#[tokio::test]
async fn activation_and_metric_events_are_published_in_openwhisks_shape() {
    let exec = ProcessExecutor::detect().expect("node and python3 on PATH");
    let mut limits = SystemLimits::default();
    limits.invocations_per_minute = 2;
    let config = ControllerConfig::default()
        .with_manifest(exec.runtimes())
        .with_limits(limits)
        .with_user_events(true);
    let env = env_with(config).await;
    // A consumer of the events topic, as OpenWhisk's user-events service is.
    env.bus
        .create_topic(EVENTS_TOPIC, &TopicConfig::default())
        .await
        .unwrap();
    let events = env
        .bus
        .subscribe(EVENTS_TOPIC, "user-events")
        .await
        .unwrap();
    let inv_config = InvokerConfig::new(InvokerInstanceId::new(0, 2048))
        .with_api_host("http://127.0.0.1:1")
        .with_health_interval(Duration::from_millis(50))
        .with_user_events(true);
    let pool = ContainerPool::new(Arc::new(exec), inv_config.pool_config()).unwrap();
    let svc = InvokerService::new(
        inv_config,
        Arc::clone(&env.store),
        Arc::clone(&env.bus),
        pool,
    );
    let invoker = start_invoker(&env, svc).await;
    let code = "function main() { return {statusCode: 201, body: 'made'}; }";
    let r = put(&env.router, &format!("{ACTIONS}/hello"), node_action(code)).await;
    assert_eq!(r.status, StatusCode::OK);

    let r = post(&env.router, &format!("{ACTIONS}/hello?blocking=true"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let id = r.json()["activationId"].as_str().unwrap().to_string();
    let _second = post(&env.router, &format!("{ACTIONS}/hello?blocking=true"), None).await;
    let r = post(&env.router, &format!("{ACTIONS}/hello"), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    // Two activations, two admissions (`ConcurrentInvocations`) and one refusal.
    let mut got: Vec<Value> = Vec::new();
    within("five events", async {
        while got.len() < 5 {
            let d = events.recv().await.unwrap();
            got.push(serde_json::from_slice(&d.payload).unwrap());
            events.commit(&d).await.unwrap();
        }
    })
    .await;
    let guest_uuid = GUEST.split(':').next().unwrap();
    let activation = got
        .iter()
        .find(|e| e["body"]["activationId"] == json!(id))
        .unwrap_or_else(|| panic!("{got:?}"));
    let fields = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        fields(activation),
        [
            "body",
            "eventType",
            "namespace",
            "source",
            "subject",
            "timestamp",
            "userId"
        ]
    );
    assert_eq!(activation["eventType"], "Activation");
    assert_eq!(activation["source"], "invoker0");
    assert_eq!(activation["namespace"], "guest");
    assert_eq!(activation["userId"], guest_uuid);
    assert!(activation["timestamp"].as_u64().unwrap() > 0);
    let body = &activation["body"];
    assert_eq!(body["name"], "guest/hello");
    assert_eq!(body["statusCode"], 0);
    assert_eq!(body["memory"], 256);
    assert_eq!(body["conductor"], false);
    assert_eq!(body["userDefinedStatusCode"], 201);
    assert!(body["kind"].as_str().unwrap().starts_with("nodejs"));
    assert!(
        body["initTime"].as_u64().unwrap() > 0,
        "the first run initialises: {body}"
    );
    for k in ["duration", "waitTime", "size"] {
        assert!(body[k].is_u64(), "{k}: {body}");
    }
    assert!(body.get("causedBy").is_none());

    let metric = got
        .iter()
        .find(|e| e["eventType"] == "Metric" && e["body"]["metricName"] == "TimedRateLimit")
        .unwrap_or_else(|| panic!("{got:?}"));
    assert_eq!(metric["source"], "controller0");
    assert_eq!(metric["namespace"], "guest");
    assert_eq!(metric["userId"], guest_uuid);
    assert_eq!(
        metric["body"],
        json!({"metricName": "TimedRateLimit", "metricValue": 1})
    );
    assert_eq!(
        got.iter()
            .filter(|e| e["eventType"] == "Activation")
            .count(),
        2
    );
    // Each admitted (blocking, one after the other) invoke: one in flight, itself.
    let admitted: Vec<&Value> = got
        .iter()
        .filter(|e| e["body"]["metricName"] == "ConcurrentInvocations")
        .collect();
    assert_eq!(admitted.len(), 2, "{got:?}");
    for m in admitted {
        assert_eq!(m["source"], "controller0");
        assert_eq!(m["body"]["metricValue"], 1, "{m}");
    }
    within("invoker shutdown", invoker.shutdown()).await;
}

#[tokio::test]
async fn without_user_events_nothing_is_published() {
    let mut limits = SystemLimits::default();
    limits.invocations_per_minute = 0;
    let env = env_with(ControllerConfig::default().with_limits(limits)).await;
    with_action(&env, "a", json!({})).await;
    let r = post(&env.router, &format!("{ACTIONS}/a"), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // The default configuration: no `events` topic is even created, nothing sent to one.
    let e = env.bus.subscribe(EVENTS_TOPIC, "probe").await.unwrap_err();
    assert!(matches!(e, faas_core::Error::NotFound { .. }), "{e}");
}
