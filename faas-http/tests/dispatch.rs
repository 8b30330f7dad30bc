//! The dispatch pipeline against a scripted invoker on the bus: messages, acknowledgement
//! kinds (full, shrunk, completion first), blocking waits, 202 on expiry, throttles, slots,
//! forced completion and the record wait of `GET /activations/{id}`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::json;

use faas_core::activation::ActivationResponse;
use faas_core::message::{Acknowledgement, ActivationOrId, TransactionId, completed_topic};
use faas_core::params::Annotations;
use faas_core::{EntityName, EntityPath};
use faas_http::ControllerConfig;
use support::*;

#[tokio::test]
async fn non_blocking_invoke_publishes_the_message() {
    let e = env().await;
    let inv = FakeInvoker::start(&e).await;
    with_action(
        &e,
        "hello",
        json!({"parameters": [{"key": "p", "value": 1}, {"key": "q", "value": 1}]}),
    )
    .await;
    let mut req = request(
        Method::POST,
        &format!("{ACTIONS}/hello"),
        Some(GUEST),
        Some(json!({"q": 2, "r": 3})),
    );
    req.headers_mut()
        .insert("x-request-id", "tid-nonblocking".parse().unwrap());
    let r = call(&e.router, req).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.json()["activationId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(r.header("x-openwhisk-activation-id"), Some(id.as_str()));
    assert_eq!(r.json().as_object().unwrap().len(), 1);

    let msg = inv.next().await;
    assert_eq!(msg.activation_id.as_str(), id);
    assert!(!msg.blocking);
    assert_eq!(msg.transid.id, "tid-nonblocking");
    assert_eq!(msg.root_controller_index.as_string, "0");
    assert_eq!(msg.action.fqn().to_string(), "guest/hello");
    assert!(msg.revision.is_some());
    assert_eq!(msg.user.namespace.name.as_str(), "guest");
    assert_eq!(msg.content, Some(json!({"p": 1, "q": 2, "r": 3})));
    assert_eq!(e.controller.in_flight(), 1);

    // Completion frees the books (and the slot); a repeated ack is a no-op.
    let a = activation_for(&msg, ActivationResponse::success(json!({})));
    e.store.put_activation(&a).await.unwrap();
    inv.ack(&e, &inv.completion(&msg)).await;
    drained(&e).await;
    inv.ack(&e, &inv.completion(&msg)).await;
    let r = get(&e.router, &format!("{ACTIVATIONS}/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn blocking_invokes_answer_by_status() {
    let e = env().await;
    let inv = FakeInvoker::start(&e).await;
    with_action(&e, "hello", json!({})).await;
    let uri = format!("{ACTIONS}/hello?blocking=true");
    let cases = [
        (
            ActivationResponse::success(json!({"ok": 1})),
            StatusCode::OK,
            false,
        ),
        (
            ActivationResponse::success(json!({"ok": 1})),
            StatusCode::OK,
            true,
        ),
        (
            ActivationResponse::application_error(json!("no")),
            StatusCode::BAD_GATEWAY,
            false,
        ),
        (
            ActivationResponse::developer_error("crash"),
            StatusCode::BAD_GATEWAY,
            true,
        ),
        (
            ActivationResponse::whisk_error("down"),
            StatusCode::INTERNAL_SERVER_ERROR,
            false,
        ),
        (
            ActivationResponse::success(json!([1, 2])),
            StatusCode::OK,
            false,
        ),
    ];
    for (response, status, result_only) in cases {
        let uri = if result_only {
            format!("{uri}&result=true")
        } else {
            uri.clone()
        };
        let router = e.router.clone();
        let pending = tokio::spawn(async move {
            call(&router, request(Method::POST, &uri, Some(GUEST), None)).await
        });
        let msg = inv.next().await;
        assert!(msg.blocking);
        let a = activation_for(&msg, response.clone());
        inv.ack(&e, &inv.result(&msg, &a)).await;
        let r = within("blocking reply", pending).await.unwrap();
        assert_eq!(r.status, status);
        assert_eq!(
            r.header("x-openwhisk-activation-id"),
            Some(msg.activation_id.as_str())
        );
        let js = r.json();
        let result = response.result.clone().unwrap();
        if result.is_array() {
            assert_eq!(js, result, "arrays come back as they are");
        } else if result_only {
            assert_eq!(js, result);
        } else {
            assert_eq!(js["activationId"], msg.activation_id.as_str());
            assert_eq!(js["response"], response.to_api_json());
            assert_eq!(js["duration"], 5);
        }
        e.store.put_activation(&a).await.unwrap();
        inv.ack(&e, &inv.completion(&msg)).await;
    }
    drained(&e).await;
}

#[tokio::test]
async fn shrunk_and_reordered_acknowledgements() {
    let e = env().await;
    let inv = FakeInvoker::start(&e).await;
    with_action(&e, "hello", json!({})).await;
    let uri = format!("{ACTIONS}/hello?blocking=true");

    // A shrunk Combined: the record is read from the store.
    let router = e.router.clone();
    let u = uri.clone();
    let pending =
        tokio::spawn(
            async move { call(&router, request(Method::POST, &u, Some(GUEST), None)).await },
        );
    let msg = inv.next().await;
    let a = activation_for(&msg, ActivationResponse::success(json!({"from": "store"})));
    e.store.put_activation(&a).await.unwrap();
    inv.ack(&e, &inv.combined(&msg, None)).await;
    let r = within("reply", pending).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["response"]["result"], json!({"from": "store"}));

    // A shrunk Result then the Completion: the record is read after the completion.
    let router = e.router.clone();
    let u = uri.clone();
    let pending =
        tokio::spawn(
            async move { call(&router, request(Method::POST, &u, Some(GUEST), None)).await },
        );
    let msg = inv.next().await;
    inv.ack(
        &e,
        &Acknowledgement::Result {
            transid: TransactionId::new("x"),
            response: ActivationOrId::Id(msg.activation_id.clone()),
        },
    )
    .await;
    let a = activation_for(&msg, ActivationResponse::success(json!({"n": 2})));
    e.store.put_activation(&a).await.unwrap();
    inv.ack(&e, &inv.completion(&msg)).await;
    let r = within("reply", pending).await.unwrap();
    assert_eq!(r.json()["response"]["result"], json!({"n": 2}));

    // A full Combined.
    let router = e.router.clone();
    let u = format!("{uri}&result=true");
    let pending =
        tokio::spawn(
            async move { call(&router, request(Method::POST, &u, Some(GUEST), None)).await },
        );
    let msg = inv.next().await;
    let a = activation_for(&msg, ActivationResponse::success(json!({"n": 3})));
    inv.ack(&e, &inv.combined(&msg, Some(&a))).await;
    let r = within("reply", pending).await.unwrap();
    assert_eq!(r.json(), json!({"n": 3}));

    // Garbage on the acknowledgement topic is skipped.
    e.bus
        .publish(&completed_topic("0"), None, b"{}".to_vec().into())
        .await
        .unwrap();
    drained(&e).await;
}

#[tokio::test]
async fn blocking_wait_expiry_answers_202() {
    let e = env().await;
    let inv = FakeInvoker::start(&e).await;
    with_action(&e, "slow", json!({})).await;
    let started = std::time::Instant::now();
    let r = post(
        &e.router,
        &format!("{ACTIONS}/slow?blocking=true&timeout=100"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(started.elapsed() >= Duration::from_millis(100));
    let id = r.json()["activationId"].as_str().unwrap().to_string();
    assert_eq!(r.header("x-openwhisk-activation-id"), Some(id.as_str()));
    let msg = inv.next().await;
    assert_eq!(msg.activation_id.as_str(), id);
    assert_eq!(e.controller.in_flight(), 1, "still running");
    // The late result finds nobody waiting; the completion ends it.
    let a = activation_for(&msg, ActivationResponse::success(json!({})));
    inv.ack(&e, &inv.result(&msg, &a)).await;
    e.store.put_activation(&a).await.unwrap();
    inv.ack(&e, &inv.completion(&msg)).await;
    drained(&e).await;
}

/// A bus that notes which publishes were deferred and which were persisted.
#[derive(Debug, Default)]
struct Recording {
    inner: faas_bus::InProcessBus,
    calls: std::sync::Mutex<Vec<String>>,
}

impl Recording {
    fn note(&self, what: String) {
        self.calls.lock().unwrap().push(what);
    }
    fn calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

#[async_trait::async_trait]
impl faas_core::MessageBus for Recording {
    async fn create_topic(
        &self,
        topic: &str,
        config: &faas_core::TopicConfig,
    ) -> faas_core::Result<()> {
        self.inner.create_topic(topic, config).await
    }
    async fn publish(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: bytes::Bytes,
    ) -> faas_core::Result<()> {
        if topic.starts_with("invoker") {
            self.note(format!("publish {topic}"));
        }
        self.inner.publish(topic, key, payload).await
    }
    async fn publish_deferred(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: bytes::Bytes,
    ) -> faas_core::Result<faas_core::Published> {
        self.note(format!("deferred {topic}"));
        self.inner.publish_deferred(topic, key, payload).await
    }
    async fn persist(&self, published: &faas_core::Published) -> faas_core::Result<()> {
        self.note(format!("persist {}", published.topic));
        self.inner.persist(published).await
    }
    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
    ) -> faas_core::Result<std::sync::Arc<dyn faas_core::Consumer>> {
        self.inner.subscribe(topic, group).await
    }
    async fn subscribe_topics(
        &self,
        topics: &[&str],
        group: &str,
    ) -> faas_core::Result<std::sync::Arc<dyn faas_core::Consumer>> {
        self.inner.subscribe_topics(topics, group).await
    }
    fn capabilities(&self) -> faas_core::BusCapabilities {
        self.inner.capabilities()
    }
}

/// A blocking invoke's message is published deferred, and persisted only when the caller is
/// answered `202` (before the answer); a non-blocking one is published durably at once.
#[tokio::test]
async fn blocking_invokes_are_persisted_only_when_answered_202() {
    let bus = std::sync::Arc::new(Recording::default());
    let e = env_over(
        ControllerConfig::default(),
        std::sync::Arc::clone(&bus) as _,
    )
    .await;
    let inv = FakeInvoker::start(&e).await;
    with_action(&e, "hello", json!({})).await;
    bus.calls();

    // Answered with its result: never persisted.
    let router = e.router.clone();
    let pending = tokio::spawn(async move {
        post(&router, &format!("{ACTIONS}/hello?blocking=true"), None).await
    });
    let msg = inv.next().await;
    let a = activation_for(&msg, ActivationResponse::success(json!({})));
    inv.ack(&e, &inv.result(&msg, &a)).await;
    assert_eq!(
        within("reply", pending).await.unwrap().status,
        StatusCode::OK
    );
    e.store.put_activation(&a).await.unwrap();
    inv.ack(&e, &inv.completion(&msg)).await;
    assert_eq!(bus.calls(), ["deferred invoker0"]);

    // The wait runs out: persisted before the 202.
    let r = post(
        &e.router,
        &format!("{ACTIONS}/hello?blocking=true&timeout=100"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(bus.calls(), ["deferred invoker0", "persist invoker0"]);
    let msg = inv.next().await;
    let a = activation_for(&msg, ActivationResponse::success(json!({})));
    e.store.put_activation(&a).await.unwrap();
    inv.ack(&e, &inv.completion(&msg)).await;

    // Non-blocking: durable at once.
    let r = post(&e.router, &format!("{ACTIONS}/hello"), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(bus.calls(), ["publish invoker0"]);
    let msg = inv.next().await;
    let a = activation_for(&msg, ActivationResponse::success(json!({})));
    e.store.put_activation(&a).await.unwrap();
    inv.ack(&e, &inv.completion(&msg)).await;
    drained(&e).await;
}

#[tokio::test]
async fn activation_get_waits_for_the_record() {
    let e = env().await;
    let inv = FakeInvoker::start(&e).await;
    with_action(&e, "hello", json!({})).await;
    let router = e.router.clone();
    let pending = tokio::spawn(async move {
        call(
            &router,
            request(
                Method::POST,
                &format!("{ACTIONS}/hello?blocking=true"),
                Some(GUEST),
                None,
            ),
        )
        .await
    });
    let msg = inv.next().await;
    let a = activation_for(&msg, ActivationResponse::success(json!({"done": true})));
    inv.ack(&e, &inv.result(&msg, &a)).await;
    let r = within("blocking reply", pending).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    // The record is not stored yet: GET waits for the completion instead of answering 404.
    let router = e.router.clone();
    let uri = format!("{ACTIVATIONS}/{}", msg.activation_id);
    let reader = tokio::spawn(async move { get(&router, &uri).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!reader.is_finished());
    e.store.put_activation(&a).await.unwrap();
    inv.ack(&e, &inv.completion(&msg)).await;
    let r = within("get", reader).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["response"]["result"], json!({"done": true}));
}

#[tokio::test]
async fn invoke_input_errors() {
    let e = env().await;
    let _inv = FakeInvoker::start(&e).await;
    with_action(
        &e,
        "hello",
        json!({
            "parameters": [{"key": "fixed", "value": 1}],
            "annotations": [{"key": "final", "value": true}]
        }),
    )
    .await;
    let uri = format!("{ACTIONS}/hello");
    for t in ["0", "60001", "abc", "-5"] {
        post(&e.router, &format!("{uri}?blocking=true&timeout={t}"), None)
            .await
            .assert_error(
                StatusCode::BAD_REQUEST,
                "The query parameter 'timeout' was malformed:\nTimeout must be number of milliseconds up to 60000.",
            );
    }
    post(&e.router, &format!("{uri}?blocking=perhaps"), None)
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "The query parameter 'blocking' was malformed:\n'perhaps' is not a valid Boolean value",
        );
    post(&e.router, &uri, Some(json!({"fixed": 2})))
        .await
        .assert_error(
            StatusCode::BAD_REQUEST,
            "Request defines parameters that are not allowed (e.g., reserved properties).",
        );
    let big = "x".repeat(1024 * 1024);
    let r = post(&e.router, &uri, Some(json!({ "big": big }))).await;
    let len = 1024 * 1024 + 10;
    r.assert_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Request larger than allowed: {len} > 1048576 bytes."),
    );
    let raw = http::Request::builder()
        .method(Method::POST)
        .uri(&uri)
        .header("authorization", basic(GUEST))
        .body(axum::body::Body::from("{oops"))
        .unwrap();
    let r = call(&e.router, raw).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.error()
            .starts_with("The request content was malformed:\n")
    );
    post(&e.router, &format!("{ACTIONS}/missing"), None)
        .await
        .assert_error(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist.",
        );
    assert_eq!(e.controller.in_flight(), 0, "nothing was dispatched");
}

#[tokio::test]
async fn no_invoker_is_503() {
    let e = env().await;
    with_action(&e, "hello", json!({})).await;
    post(&e.router, &format!("{ACTIONS}/hello"), None)
        .await
        .assert_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is currently unavailable (because it is overloaded or down for maintenance).",
        );
    // The throttle slot came back: the namespace's concurrency is not leaked.
    assert_eq!(e.controller.in_flight(), 0);
}

#[tokio::test]
async fn namespace_throttles() {
    use faas_core::limits::UserLimits;
    let e = env().await;
    let inv = FakeInvoker::start(&e).await;
    with_action(&e, "hello", json!({})).await;
    let guest = EntityName::new("guest").unwrap();
    e.store
        .put_limits(
            &guest,
            &UserLimits {
                concurrent_invocations: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let uri = format!("{ACTIONS}/hello");
    assert_eq!(
        post(&e.router, &uri, None).await.status,
        StatusCode::ACCEPTED
    );
    post(&e.router, &uri, None).await.assert_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many concurrent requests in flight (count: 1, allowed: 1).",
    );
    let msg = inv.next().await;
    inv.ack(&e, &inv.completion(&msg)).await;
    drained(&e).await;
    assert_eq!(
        post(&e.router, &uri, None).await.status,
        StatusCode::ACCEPTED
    );
    let msg = inv.next().await;
    inv.ack(&e, &inv.completion(&msg)).await;
    drained(&e).await;

    e.store
        .put_limits(
            &guest,
            &UserLimits {
                invocations_per_minute: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Three invokes so far this minute (unless the minute just turned).
    let r = post(&e.router, &uri, None).await;
    if r.status == StatusCode::TOO_MANY_REQUESTS {
        assert!(
            r.error()
                .starts_with("Too many requests in the last minute (count: "),
            "{}",
            r.error()
        );
        assert!(r.error().ends_with(", allowed: 1)."));
    } else {
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let r = post(&e.router, &uri, None).await;
        r.assert_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests in the last minute (count: 2, allowed: 1).",
        );
    }
}

#[tokio::test]
async fn package_parameters_are_inherited() {
    use faas_core::Entity;
    use faas_core::entity::Package;
    use faas_core::params::Parameters;
    let e = env().await;
    let inv = FakeInvoker::start(&e).await;
    let p = Package {
        namespace: EntityPath::new("guest").unwrap(),
        name: EntityName::new("utils").unwrap(),
        version: Default::default(),
        publish: false,
        binding: None,
        parameters: Parameters::new()
            .with("a", json!("pkg"))
            .with("b", json!("pkg"))
            .with("c", json!("pkg")),
        annotations: Annotations::new(),
        updated: 1,
    };
    e.store.put_entity(&Entity::Package(p), None).await.unwrap();
    let mut body = node_action("function main(a){return a}");
    body["parameters"] = json!([{"key": "b", "value": "action"}, {"key": "c", "value": "action"}]);
    assert_eq!(
        put(&e.router, &format!("{ACTIONS}/utils/hello"), body)
            .await
            .status,
        StatusCode::OK
    );
    let r = post(
        &e.router,
        &format!("{ACTIONS}/utils/hello"),
        Some(json!({"c": "payload"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let msg = inv.next().await;
    assert_eq!(msg.action.fqn().to_string(), "guest/utils/hello");
    assert_eq!(
        msg.content,
        Some(json!({"a": "pkg", "b": "action", "c": "payload"}))
    );
    // Arrays pass as they are.
    let r = post(
        &e.router,
        &format!("{ACTIONS}/utils/hello"),
        Some(json!([1, 2])),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(inv.next().await.content, Some(json!([1, 2])));
}

#[tokio::test]
async fn forced_completion_frees_the_slot() {
    let config = ControllerConfig::default()
        .with_completion_timeout(0, Duration::from_millis(100))
        .with_sweep_interval(Duration::from_millis(20));
    let e = env_with(config).await;
    let inv = FakeInvoker::start(&e).await;
    with_action(&e, "hello", json!({})).await;
    let full = e.sharding.free_memory_mb(0).unwrap();
    for _ in 0..4 {
        let r = post(&e.router, &format!("{ACTIONS}/hello"), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let _msg = inv.next().await;
    }
    assert_eq!(e.controller.in_flight(), 4);
    assert_eq!(e.sharding.free_memory_mb(0).unwrap(), full - 4 * 256);
    drained(&e).await;
    assert_eq!(
        e.sharding.free_memory_mb(0).unwrap(),
        full,
        "slots released"
    );
    // More than 3 forced time-outs of the last 10 make the invoker unresponsive.
    let r = call(&e.router, request(Method::GET, "/invokers", None, None)).await;
    assert_eq!(r.json(), json!({"invoker0": "unresponsive"}));
}

#[tokio::test]
async fn request_timeout_is_503_with_the_body_shape() {
    let config = ControllerConfig::default().with_request_timeout(Duration::from_millis(100));
    let e = env_with(config).await;
    let _inv = FakeInvoker::start(&e).await;
    with_action(&e, "hello", json!({})).await;
    let r = post(&e.router, &format!("{ACTIONS}/hello?blocking=true"), None).await;
    r.assert_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The server was not able to produce a timely response to your request.\r\nPlease try again in a short while!",
    );
}

#[tokio::test]
async fn unresponsive_invoker_recovers_through_health_test_actions() {
    let config = ControllerConfig::default()
        .with_completion_timeout(0, Duration::from_millis(50))
        .with_sweep_interval(Duration::from_millis(10))
        .with_health_test_interval(Duration::from_millis(20));
    let e = env_with(config).await;
    let inv = FakeInvoker::start(&e).await;
    with_action(&e, "hello", json!({})).await;
    for _ in 0..4 {
        let r = post(&e.router, &format!("{ACTIONS}/hello"), None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let _msg = inv.next().await;
    }
    drained(&e).await;
    let r = call(&e.router, request(Method::GET, "/invokers", None, None)).await;
    assert_eq!(r.json(), json!({"invoker0": "unresponsive"}));
    // No work is scheduled there now; the controller sends test actions instead, straight to
    // invoker0, and each successful one counts towards recovery.
    let mut tests = 0;
    while !e
        .scheduler
        .invokers()
        .iter()
        .any(|h| h.id.instance == 0 && h.state.is_usable())
    {
        let msg = inv.next().await;
        assert_eq!(msg.action.path.as_str(), "whisk.system");
        assert_eq!(msg.action.name.as_str(), "invokerHealthTestAction0");
        assert_eq!(msg.transid.id, "sid_invokerHealth");
        inv.ack(&e, &inv.completion(&msg)).await;
        tests += 1;
        assert!(
            tests <= 10,
            "still not healthy after {tests} successful tests"
        );
        // Let the acknowledgement be applied before looking again.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(tests >= 1);
    let r = call(&e.router, request(Method::GET, "/invokers", None, None)).await;
    assert_eq!(r.json(), json!({"invoker0": "up"}));
    // The test action exists in the system namespace, as in OpenWhisk.
    let fqn =
        faas_core::FullyQualifiedName::resolve("/whisk.system/invokerHealthTestAction0", "guest")
            .unwrap();
    assert!(e.store.get_entity(&fqn).await.is_ok());
}

#[tokio::test]
async fn blocking_invoke_reads_the_store_when_no_acknowledgement_comes() {
    let config = ControllerConfig::default().with_store_poll_interval(Duration::from_millis(20));
    let e = env_with(config).await;
    let inv = FakeInvoker::start(&e).await;
    with_action(&e, "hello", json!({})).await;
    let router = e.router.clone();
    let pending = tokio::spawn(async move {
        call(
            &router,
            request(
                Method::POST,
                &format!("{ACTIONS}/hello?blocking=true&timeout=10000"),
                Some(GUEST),
                None,
            ),
        )
        .await
    });
    let msg = inv.next().await;
    // The invoker stores the record but its acknowledgements are lost.
    let a = activation_for(&msg, ActivationResponse::success(json!({"stored": true})));
    e.store.put_activation(&a).await.unwrap();
    let r = within("blocking reply from the store", pending)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(r.json()["response"]["result"], json!({"stored": true}));
}
