//! Unauthenticated routes: `/`, `/ping`, `/invokers...`, `/api/v1`, the API docs (OpenWhisk's unauthenticated paths).

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use faas_core::limits::MB;
use faas_core::scheduler::InvokerState;

use super::{State, json};

/// OpenWhisk's REST contract (swagger 2.0), served at `/api/v1/api-docs`.
pub const API_DOCS: &str = include_str!("../../apiv1swagger.json");

/// `GET /`: system information with limits and runtimes.
pub(crate) async fn info(AxState(s): State) -> Response {
    let l = &s.config().limits;
    let limits = json!({
        "actions_per_minute": l.invocations_per_minute,
        "triggers_per_minute": l.fires_per_minute,
        "concurrent_actions": l.concurrent_invocations,
        "sequence_length": l.sequence_max_length,
        "min_action_duration": l.min_timeout_ms,
        "max_action_duration": l.max_timeout_ms,
        "min_action_memory": l.min_memory_mb * MB,
        "max_action_memory": l.max_memory_mb * MB,
        "min_action_logs": l.min_logs_mb * MB,
        "max_action_logs": l.max_logs_mb * MB,
        "default_min_action_duration": l.min_timeout_ms,
        "default_max_action_duration": l.max_timeout_ms,
        "default_min_action_memory": l.min_memory_mb * MB,
        "default_max_action_memory": l.max_memory_mb * MB,
        "default_min_action_logs": l.min_logs_mb * MB,
        "default_max_action_logs": l.max_logs_mb * MB,
    });
    json(
        StatusCode::OK,
        &json!({
            "description": "OpenWhisk",
            "support": {
                "github": "https://github.com/apache/openwhisk/issues",
                "slack": "http://slack.openwhisk.org"
            },
            "api_paths": ["/api/v1"],
            "limits": limits,
            "runtimes": s.runtimes().to_api_json(),
        }),
    )
}

/// `GET /ping`: `pong`.
pub(crate) async fn ping() -> &'static str {
    "pong"
}

/// `GET /health`: liveness, `200 {"status": "ok"}` while the process serves requests (also
/// while it drains: an orchestrator must not kill it then).
pub(crate) async fn health() -> Response {
    json(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /ready`: readiness (see [`crate::engine::ready`]): `200` with the checks when the
/// controller can take work, else `503` with the same body.
pub(crate) async fn readiness(AxState(s): State) -> Response {
    let r = s.readiness().await;
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, &r)
}

/// `GET /invokers`: `{"invoker0": "up", ...}`.
pub(crate) async fn invokers(AxState(s): State) -> Response {
    let map: Map<String, Value> = s
        .scheduler()
        .invokers()
        .into_iter()
        .map(|h| (h.id.name(), Value::from(h.state.as_str())))
        .collect();
    json(StatusCode::OK, &map)
}

/// `GET /invokers/healthy/count`: the number of usable invokers.
pub(crate) async fn healthy_count(AxState(s): State) -> Response {
    let n = s
        .scheduler()
        .invokers()
        .iter()
        .filter(|h| h.state == InvokerState::Healthy)
        .count();
    json(StatusCode::OK, &n)
}

/// `GET /invokers/ready`: 200 `{"healthy": "h/n"}` when every invoker is healthy, else 500
/// `{"unhealthy": "u/n"}` (OpenWhisk's readiness fraction 100%).
pub(crate) async fn ready(AxState(s): State) -> Response {
    let all = s.scheduler().invokers();
    let healthy = all
        .iter()
        .filter(|h| h.state == InvokerState::Healthy)
        .count();
    let n = all.len();
    if n > 0 && healthy == n {
        json(
            StatusCode::OK,
            &json!({ "healthy": format!("{healthy}/{n}") }),
        )
    } else {
        json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "unhealthy": format!("{}/{n}", n - healthy) }),
        )
    }
}

/// `GET /api/v1`: API information, plus the runtimes offered.
pub(crate) async fn api_v1(AxState(s): State) -> Response {
    json(
        StatusCode::OK,
        &json!({
            "description": "OpenWhisk API",
            "api_version": "1.0.0",
            "api_version_path": "v1",
            "build": s.config().build,
            "buildno": s.config().buildno,
            "swagger_paths": {"ui": "/docs", "api-docs": "/api-docs"},
            "runtimes": s.runtimes().to_api_json(),
        }),
    )
}

/// `GET /api/v1/api-docs`: the swagger document.
pub(crate) async fn api_docs() -> Response {
    let mut res = Response::new(Body::from(API_DOCS));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
