//! Prometheus metrics: `/metrics` scraped after known invocations through the whole invoke
//! path (controller, in-process bus, real invoker, local Node.js processes), with the store
//! and bus instrumented as the platform does it; counters and histogram counts asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::json;

use faas_bus::inproc::InProcessBus;
use faas_core::identity::Subject;
use faas_core::message::InvokerInstanceId;
use faas_core::metrics::{InstrumentedBus, InstrumentedStore};
use faas_core::{AuthKey, EntityName, Executor, MessageBus, Store, SystemLimits};
use faas_exec::invoker::{InvokerConfig, InvokerHandle, InvokerService};
use faas_exec::pool::ContainerPool;
use faas_exec::process::ProcessExecutor;
use faas_http::ControllerConfig;
use faas_http::metrics::PrometheusMetrics;
use faas_store::memory::MemoryStore;
use support::*;

const TOKEN: &str = "metrics-token-0123456789";

/// The sum of the samples of `name` whose labels include every pair of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            (n == name
                && labels
                    .iter()
                    .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\""))))
            .then(|| v.parse::<f64>().ok())?
        })
        .sum()
}

async fn scrape(router: &axum::Router, token: Option<&str>) -> Reply {
    let mut b = Request::builder().method(Method::GET).uri("/metrics");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    call(router, b.body(Body::empty()).unwrap()).await
}

/// A store with the `guest` subject, instrumented like the platform's.
async fn instrumented(metrics: &Arc<PrometheusMetrics>) -> (Arc<dyn Store>, Arc<dyn MessageBus>) {
    let raw: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let key = AuthKey::parse(GUEST).unwrap();
    raw.put_subject(
        &Subject::single(EntityName::new("guest").unwrap(), &key),
        None,
    )
    .await
    .unwrap();
    let bus: Arc<dyn MessageBus> = Arc::new(InProcessBus::new());
    (
        Arc::new(InstrumentedStore::new(raw, metrics.handle())),
        Arc::new(InstrumentedBus::new(bus, metrics.handle())),
    )
}

async fn start_invoker(
    env: &Env,
    metrics: &Arc<PrometheusMetrics>,
    exec: ProcessExecutor,
) -> InvokerHandle {
    let config = InvokerConfig::new(InvokerInstanceId::new(0, 2048))
        .with_api_host("http://127.0.0.1:1")
        .with_health_interval(Duration::from_millis(50))
        .with_shutdown_timeout(Duration::from_secs(10))
        .with_metrics(metrics.handle());
    let pool = ContainerPool::new(Arc::new(exec), config.pool_config()).unwrap();
    let svc = InvokerService::new(config, Arc::clone(&env.store), Arc::clone(&env.bus), pool);
    support::start_invoker(env, svc).await
}

#[tokio::test]
async fn scrape_after_known_invocations() {
    let exec = ProcessExecutor::detect().expect("node and python3 on PATH");
    let metrics = Arc::new(PrometheusMetrics::default());
    let config = ControllerConfig::default()
        .with_manifest(exec.runtimes())
        .with_metrics(Arc::clone(&metrics))
        .with_metrics_token(TOKEN);
    let (store, bus) = instrumented(&metrics).await;
    let env = env_on(config, store, bus).await;
    let invoker = start_invoker(&env, &metrics, exec).await;
    // The controller writes its invoker health test action at start-up.
    let entity_puts = value(
        &metrics.render(),
        "faas_store_operation_duration_seconds_count",
        &[("op", "put_entity")],
    );

    for (name, code) in [
        (
            "hello",
            "function main(p) { return {greeting: 'hi ' + p.name}; }",
        ),
        (
            "fail",
            "function main() { return {error: {statusCode: 404, body: 'no'}}; }",
        ),
    ] {
        let r = put(&env.router, &format!("{ACTIONS}/{name}"), node_action(code)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    }
    for _ in 0..3 {
        let r = post(
            &env.router,
            &format!("{ACTIONS}/hello?blocking=true&result=true"),
            Some(json!({"name": "x"})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    }
    let r = post(&env.router, &format!("{ACTIONS}/fail?blocking=true"), None).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.json());

    // The invoker stores the record and acknowledges; wait for both ends of the last one.
    until("records stored", async || {
        let text = metrics.render();
        value(
            &text,
            "faas_store_operation_duration_seconds_count",
            &[("op", "put_activation")],
        ) >= 4.0
            && value(&text, "faas_controller_activation_seconds_count", &[]) >= 4.0
    })
    .await;

    // Only with the token.
    scrape(&env.router, None).await.assert_error(
        StatusCode::UNAUTHORIZED,
        "The supplied authentication is invalid",
    );
    assert_eq!(
        scrape(&env.router, Some("wrong-token-0123456789"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let r = scrape(&env.router, Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(r.body).unwrap();
    let hello = [
        ("namespace", "guest"),
        ("initiator", "guest"),
        ("action", "hello"),
    ];
    let fail = [
        ("namespace", "guest"),
        ("initiator", "guest"),
        ("action", "fail"),
    ];

    // Activations, under OpenWhisk's user-events names.
    assert_eq!(
        value(&text, "openwhisk_action_activations_total", &hello),
        3.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "openwhisk_action_activations_total",
            &[("memory", "256")]
        ),
        4.0
    );
    assert_eq!(
        value(&text, "openwhisk_action_coldStarts_total", &hello),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "openwhisk_action_status_total",
            &[hello[2], ("status", "success")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "openwhisk_action_status_total",
            &[fail[2], ("status", "application_error")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "openwhisk_action_status_total",
            &[fail[2], ("status", "success")]
        ),
        0.0
    );
    assert_eq!(
        value(&text, "openwhisk_action_waitTime_seconds_count", &hello),
        3.0
    );
    assert_eq!(
        value(&text, "openwhisk_action_initTime_seconds_count", &hello),
        1.0
    );
    assert_eq!(
        value(&text, "openwhisk_action_duration_seconds_count", &hello),
        3.0
    );
    // The result's size (`{"greeting":"hi x"}`, 19 bytes) and the status code an action's
    // result sets (`error.statusCode`), as OpenWhisk's user-events service has them.
    assert_eq!(
        value(&text, "openwhisk_action_response_size_bytes_count", &hello),
        3.0
    );
    assert_eq!(
        value(&text, "openwhisk_action_response_size_bytes_sum", &hello),
        57.0
    );
    assert_eq!(
        value(
            &text,
            "openwhisk_action_status_code_total",
            &[fail[2], ("status_code", "404")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "openwhisk_action_status_code_total", &hello),
        0.0
    );
    assert_eq!(
        value(&text, "faas_activation_end_to_end_seconds_count", &hello),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "faas_activation_end_to_end_seconds_bucket",
            &[hello[2], ("le", "+Inf")]
        ),
        3.0
    );
    // No label carries an activation id.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains("activationId") && !line.contains("hi x"),
            "{line}"
        );
    }

    // The controller: decisions and acknowledgements.
    assert_eq!(
        value(
            &text,
            "faas_scheduler_decisions_total",
            &[("outcome", "scheduled")]
        ),
        4.0
    );
    assert_eq!(
        value(
            &text,
            "faas_controller_activation_seconds_count",
            &[("outcome", "success")]
        ),
        4.0
    );

    // HTTP, by route template: the action's name is not a label value.
    let invokes = [("method", "POST"), ("status", "200")];
    assert_eq!(
        value(&text, "faas_http_requests_total", &invokes),
        3.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "faas_http_requests_total",
            &[("method", "POST"), ("status", "502")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "faas_http_requests_total",
            &[("method", "PUT"), ("status", "200")]
        ),
        2.0
    );
    // The scrapes refused before this one, on the `/metrics` route.
    assert_eq!(
        value(
            &text,
            "faas_http_requests_total",
            &[("route", "/metrics"), ("status", "401")]
        ),
        2.0
    );
    for line in text.lines().filter(|l| l.starts_with("faas_http_")) {
        assert!(
            !line.contains("hello") && !line.contains("fail"),
            "raw path in a label: {line}"
        );
    }

    // Store and bus.
    assert_eq!(
        value(
            &text,
            "faas_store_operation_duration_seconds_count",
            &[("op", "put_activation")]
        ),
        4.0
    );
    assert_eq!(
        value(
            &text,
            "faas_store_operation_duration_seconds_count",
            &[("op", "put_entity")]
        ),
        entity_puts + 2.0
    );
    // Four activations, and the start-up probe the invoker sends itself before it pings
    // (the invocations needed a healthy invoker, so the probe was published first).
    assert_eq!(
        value(
            &text,
            "faas_bus_publish_duration_seconds_count",
            &[("topic", "invoker")]
        ),
        5.0
    );
    assert_eq!(
        value(
            &text,
            "faas_bus_messages_received_total",
            &[("topic", "invoker")]
        ),
        5.0
    );
    assert_eq!(
        value(
            &text,
            "faas_bus_commit_delay_seconds_count",
            &[("topic", "invoker")]
        ),
        5.0
    );
    // Publish to receipt, from the in-process bus's publish time.
    assert_eq!(
        value(
            &text,
            "faas_bus_delivery_seconds_count",
            &[("topic", "invoker")]
        ),
        5.0
    );
    // Everything the invoker received is committed.
    assert_eq!(
        value(
            &text,
            "faas_bus_consumer_lag",
            &[("group", "invoker"), ("topic", "invoker")]
        ),
        0.0,
        "{text}"
    );
    assert!(
        value(
            &text,
            "faas_bus_publish_duration_seconds_count",
            &[("topic", "completed")]
        ) >= 4.0
    );
    assert!(
        value(
            &text,
            "faas_bus_publish_duration_seconds_count",
            &[("topic", "health")]
        ) >= 1.0
    );

    // Pool and invokers, read at scrape time.
    assert_eq!(
        value(&text, "faas_pool_containers", &[("state", "warm")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "faas_pool_containers", &[("state", "busy")]),
        0.0
    );
    // The invoker keeps a prewarmed Node.js container: each action's first run took one.
    assert_eq!(
        value(&text, "faas_pool_containers", &[("state", "prewarmed")]),
        1.0
    );
    assert_eq!(
        value(&text, "faas_pool_acquires_total", &[("how", "prewarmed")]),
        2.0
    );
    assert_eq!(
        value(&text, "faas_pool_acquires_total", &[("how", "warm")]),
        2.0
    );
    assert_eq!(
        value(&text, "faas_pool_acquires_total", &[("how", "cold")]),
        0.0
    );
    assert_eq!(value(&text, "faas_pool_evictions_total", &[]), 0.0);
    assert_eq!(value(&text, "faas_pool_queue_length", &[]), 0.0);
    assert_eq!(value(&text, "faas_invokers", &[("state", "up")]), 1.0);
    assert_eq!(
        value(&text, "faas_invokers_user_memory_bytes", &[]),
        2048.0 * 1024.0 * 1024.0
    );

    within("invoker shutdown", invoker.shutdown()).await;
}

/// `faas_bus_consumer_lag` counts what a group has not committed: waiting and in flight.
#[tokio::test]
async fn consumer_lag_is_what_the_group_has_not_committed() {
    let metrics = Arc::new(PrometheusMetrics::default());
    let bus = InstrumentedBus::new(Arc::new(InProcessBus::new()), metrics.handle());
    bus.create_topic("work7", &faas_core::TopicConfig::default())
        .await
        .unwrap();
    let consumer = bus.subscribe("work7", "workers3").await.unwrap();
    let lag = |m: &PrometheusMetrics| {
        value(
            &m.render(),
            "faas_bus_consumer_lag",
            &[("group", "workers"), ("topic", "work")],
        )
    };
    assert_eq!(lag(&metrics), 0.0);
    for i in 0..3u8 {
        bus.publish("work7", None, bytes::Bytes::from(vec![i]))
            .await
            .unwrap();
    }
    assert_eq!(lag(&metrics), 3.0);
    let d = within("a delivery", consumer.recv()).await.unwrap();
    assert_eq!(lag(&metrics), 3.0, "in flight still counts");
    consumer.commit(&d).await.unwrap();
    assert_eq!(lag(&metrics), 2.0);
    let text = metrics.render();
    assert_eq!(
        value(
            &text,
            "faas_bus_delivery_seconds_count",
            &[("topic", "work")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "faas_bus_commit_delay_seconds_count",
            &[("topic", "work")]
        ),
        1.0
    );
    // A dropped consumer is no longer read.
    drop(consumer);
    assert!(!metrics.render().contains("faas_bus_consumer_lag{"));
}

#[tokio::test]
async fn throttles_and_refused_placements_are_counted() {
    let metrics = Arc::new(PrometheusMetrics::default());
    let mut limits = SystemLimits::default();
    limits.invocations_per_minute = 2;
    let config = ControllerConfig::default()
        .with_limits(limits)
        .with_metrics(Arc::clone(&metrics))
        .with_metrics_token(TOKEN);
    let (store, bus) = instrumented(&metrics).await;
    let env = env_on(config, store, bus).await;
    let r = put(
        &env.router,
        &format!("{ACTIONS}/a"),
        node_action("function main() {}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // No invoker: the first two are admitted and find none (503), the third is throttled.
    for expected in [
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let r = post(&env.router, &format!("{ACTIONS}/a"), None).await;
        assert_eq!(r.status, expected, "{}", r.json());
    }
    let text = String::from_utf8(scrape(&env.router, Some(TOKEN)).await.body).unwrap();
    assert_eq!(
        value(
            &text,
            "openwhisk_action_limit_timed_total",
            &[("namespace", "guest")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "openwhisk_action_limit_concurrent_total", &[]),
        0.0
    );
    assert_eq!(
        value(
            &text,
            "faas_scheduler_decisions_total",
            &[("outcome", "no_invoker")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &text,
            "faas_http_requests_total",
            &[("method", "POST"), ("status", "429")]
        ),
        1.0
    );
    assert_eq!(value(&text, "faas_invokers", &[("state", "up")]), 0.0);
}

#[tokio::test]
async fn no_metrics_route_without_a_token_or_without_metrics() {
    let metrics = Arc::new(PrometheusMetrics::default());
    let e = env_with(ControllerConfig::default().with_metrics(Arc::clone(&metrics))).await;
    assert_eq!(scrape(&e.router, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        scrape(&e.router, Some(TOKEN)).await.status,
        StatusCode::NOT_FOUND
    );
    // Recorded all the same (for a metrics listener of its own): the 404s, as `unmatched`.
    let text = metrics.render();
    assert_eq!(
        value(
            &text,
            "faas_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        2.0,
        "{text}"
    );

    let plain = env().await;
    assert_eq!(
        scrape(&plain.router, Some(TOKEN)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_metrics_listener_serves_the_exposition() {
    let metrics = Arc::new(PrometheusMetrics::default());
    let sample = faas_core::metrics::ActivationSample::new("ns", "ns", "act", "nodejs:20");
    metrics
        .handle()
        .record(faas_core::metrics::Event::Activation(&sample));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(faas_http::metrics::serve_metrics(
        listener,
        Arc::clone(&metrics),
        async move {
            let _ = stopped.await;
        },
    ));
    let get = |path: &'static str| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    let text = within("scrape", get("/metrics")).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("# TYPE openwhisk_action_activations counter"),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "openwhisk_action_activations_total",
            &[("action", "act")]
        ),
        1.0,
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert!(
        within("404", get("/api/v1"))
            .await
            .starts_with("HTTP/1.1 404")
    );
    let health = within("health", get("/health")).await;
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("{\"status\":\"ok\"}"),
        "{health}"
    );
    let _ = stop.send(());
    within("server stops", server).await.unwrap().unwrap();
}
