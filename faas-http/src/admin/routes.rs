//! The admin API's handlers: request parsing, [`Admin`] calls, JSON answers.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post, put};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ops::{Admin, CreateUser, LimitsChange};
use crate::error::{ApiError, messages};

/// The largest request body of the admin API.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

type St = State<Arc<Admin>>;
type Methods = MethodRouter<Arc<Admin>>;

/// The routes, under [`PREFIX`](super::PREFIX).
pub(crate) fn routes(admin: Arc<Admin>) -> Router {
    let p = super::PREFIX;
    Router::new()
        .route(&format!("{p}/namespaces"), only(get(namespaces), "GET"))
        .route(
            &format!("{p}/namespaces/{{ns}}/identities"),
            only(get(identities), "GET"),
        )
        .route(
            &format!("{p}/namespaces/{{ns}}/limits"),
            only(
                get(get_limits).put(set_limits).delete(delete_limits),
                "GET, PUT, DELETE",
            ),
        )
        .route(
            &format!("{p}/subjects/{{subject}}"),
            only(get(get_user).delete(delete_user), "GET, DELETE"),
        )
        .route(
            &format!("{p}/subjects/{{subject}}/namespaces/{{ns}}"),
            only(put(create_user).delete(delete_namespace), "PUT, DELETE"),
        )
        .route(
            &format!("{p}/subjects/{{subject}}/block"),
            only(post(block), "POST"),
        )
        .route(
            &format!("{p}/subjects/{{subject}}/unblock"),
            only(post(unblock), "POST"),
        )
        .route(&format!("{p}/whois"), only(post(whois), "POST"))
        .with_state(admin)
}

/// 405 naming `allow` for the other methods.
fn only(methods: Methods, allow: &'static str) -> Methods {
    methods.fallback(move || async move {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            messages::method_not_allowed(allow),
        )
    })
}

/// 404 for every other path.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, messages::ROUTE_NOT_FOUND)
}

/// A JSON answer.
fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut res = Response::new(Body::from(value.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn ok(value: Value) -> Response {
    json_response(StatusCode::OK, &value)
}

fn message(m: impl Into<String>) -> Response {
    ok(json!({ "message": m.into() }))
}

/// The body as a JSON object (`{}` when empty); 400 for anything else, 413 over the limit.
async fn object(body: Body) -> Result<Map<String, Value>, ApiError> {
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request larger than allowed: more than {MAX_BODY_BYTES} bytes."),
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "The request body is not valid JSON: {e}"
        ))),
    }
}

/// `GET /namespaces`: `["ns", …]`.
async fn namespaces(State(a): St) -> Result<Response, ApiError> {
    let names = a.namespaces().await?;
    Ok(ok(json!(
        names.iter().map(|n| n.as_str()).collect::<Vec<_>>()
    )))
}

/// `GET /namespaces/{ns}/identities`: `[{"subject", "uuid", "key"}, …]`.
async fn identities(State(a): St, Path(ns): Path<String>) -> Result<Response, ApiError> {
    let rows = a.identities(&ns).await?;
    Ok(ok(Value::Array(
        rows.into_iter()
            .map(|(subject, k)| json!({"subject": subject, "uuid": k.uuid, "key": k.key}))
            .collect(),
    )))
}

/// `GET /namespaces/{ns}/limits`: `{"namespace", "limits": {…} | null}`.
async fn get_limits(State(a): St, Path(ns): Path<String>) -> Result<Response, ApiError> {
    let limits = a.get_limits(&ns).await?;
    Ok(ok(json!({ "namespace": ns, "limits": limits })))
}

/// Reads one field of a limits change: absent, `null` (remove) or a value.
#[allow(clippy::option_option)]
fn field<T: serde::de::DeserializeOwned>(
    o: &mut Map<String, Value>,
    name: &str,
    what: &str,
) -> Result<Option<Option<T>>, ApiError> {
    match o.remove(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => serde_json::from_value(v)
            .map(|v| Some(Some(v)))
            .map_err(|_| ApiError::bad_request(format!("{name} must be {what}"))),
    }
}

/// `PUT /namespaces/{ns}/limits` with a partial limits object (`null` removes a limit):
/// `{"namespace", "limits", "created", "message"}`.
async fn set_limits(
    State(a): St,
    Path(ns): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let mut o = object(body).await?;
    let change = LimitsChange {
        invocations_per_minute: field(&mut o, "invocationsPerMinute", "an integer")?,
        concurrent_invocations: field(&mut o, "concurrentInvocations", "an integer")?,
        fires_per_minute: field(&mut o, "firesPerMinute", "an integer")?,
        allowed_kinds: field(&mut o, "allowedKinds", "an array of strings")?,
        store_activations: field(&mut o, "storeActivations", "a boolean")?,
    };
    if let Some(unknown) = o.keys().next() {
        return Err(ApiError::bad_request(format!(
            "'{unknown}' is not a namespace limit; known: invocationsPerMinute, \
             concurrentInvocations, firesPerMinute, allowedKinds, storeActivations"
        )));
    }
    let (limits, created) = a.set_limits(&ns, &change).await?;
    let m = if created {
        super::ops::messages::limits_set(&ns)
    } else {
        super::ops::messages::limits_updated(&ns)
    };
    Ok(ok(json!({
        "namespace": ns, "limits": limits, "created": created, "message": m
    })))
}

/// `DELETE /namespaces/{ns}/limits`.
async fn delete_limits(State(a): St, Path(ns): Path<String>) -> Result<Response, ApiError> {
    Ok(message(a.delete_limits(&ns).await?))
}

/// `GET /subjects/{subject}`: the record, `{"subject", "namespaces": [{"name", "uuid",
/// "key"}], "blocked"}`.
async fn get_user(State(a): St, Path(subject): Path<String>) -> Result<Response, ApiError> {
    let s = a.get_user(&subject).await?;
    Ok(ok(serde_json::to_value(&s).map_err(faas_core::Error::from)?))
}

/// `DELETE /subjects/{subject}`.
async fn delete_user(State(a): St, Path(subject): Path<String>) -> Result<Response, ApiError> {
    Ok(message(a.delete_user(&subject, None).await?))
}

/// The body of `PUT /subjects/{subject}/namespaces/{ns}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    revoke: bool,
    #[serde(default)]
    force: bool,
}

/// `PUT /subjects/{subject}/namespaces/{ns}` with `{"auth"?, "revoke"?, "force"?}`: 201 when
/// the subject is new, else 200; `{"subject", "namespace", "uuid", "key"}`.
async fn create_user(
    State(a): St,
    Path((subject, ns)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let o = object(body).await?;
    let b: CreateBody = serde_json::from_value(Value::Object(o))
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid: {e}")))?;
    let created = a
        .create_user(
            &subject,
            &CreateUser {
                namespace: Some(ns),
                auth: b.auth,
                revoke: b.revoke,
                force: b.force,
            },
        )
        .await?;
    let status = if created.new_subject {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(
        status,
        &json!({
            "subject": created.subject,
            "namespace": created.namespace.as_str(),
            "uuid": created.key.uuid,
            "key": created.key.key,
        }),
    ))
}

/// `DELETE /subjects/{subject}/namespaces/{ns}`.
async fn delete_namespace(
    State(a): St,
    Path((subject, ns)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(message(a.delete_user(&subject, Some(&ns)).await?))
}

/// `POST /subjects/{subject}/block`.
async fn block(State(a): St, Path(subject): Path<String>) -> Result<Response, ApiError> {
    Ok(message(a.set_blocked(&subject, true).await?))
}

/// `POST /subjects/{subject}/unblock`.
async fn unblock(State(a): St, Path(subject): Path<String>) -> Result<Response, ApiError> {
    Ok(message(a.set_blocked(&subject, false).await?))
}

/// `POST /whois` with `{"auth": "uuid:key"}` (in the body, so the key stays out of URLs and
/// access logs): `{"subject", "namespace"}`.
async fn whois(State(a): St, body: Body) -> Result<Response, ApiError> {
    let mut o = object(body).await?;
    let Some(Value::String(auth)) = o.remove("auth") else {
        return Err(ApiError::bad_request(
            "The request body must be {\"auth\": \"uuid:key\"}.",
        ));
    };
    let (subject, ns) = a.whois(&auth).await?;
    Ok(ok(json!({ "subject": subject, "namespace": ns.as_str() })))
}
