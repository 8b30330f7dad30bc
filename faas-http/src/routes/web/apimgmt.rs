//! `whisk.system/apimgmt`: the API management "web actions" the clients call
//! (`POST .../createApi.http`, `GET .../getApi.http`, `DELETE .../deleteApi.http`, with the
//! caller's credentials), answered natively over [`crate::gateway`] with the bodies OpenWhisk's
//! `core/routemgmt` actions return:
//!
//! * `createApi` (`apidoc` in the JSON body, `responsetype` in the query) →
//!   `{"namespace", "gwApiActivated": true, "tenantId", "gwApiUrl", "apidoc": <swagger>}`;
//! * `getApi` (`basepath` — a base path or an API name —, or `limit` and `skip`) →
//!   `{"apis": [{"id", "key", "value": {…as above…}}]}`;
//! * `deleteApi` (`basepath`, optional `relpath` and `operation`) → `{}`.
//!
//! As OpenWhisk's actions are web actions, the method does not matter and parameters come from
//! the query and a JSON body (body over query). Without valid credentials they answer `401`
//! (`A valid auth key is required.` / `Invalid authentication.`); OpenWhisk's actions answer
//! their failures with `502`, here bad input is `400`, a missing API `404` and a route that
//! another API of the namespace serves already `409`.

use axum::body::Body;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value, json};

use faas_core::{EntityName, Identity};

use super::{WebPath, WebState};
use crate::error::ApiError;
use crate::gateway::{self, CreateRequest, GatewayError, SYSTEM_NAMESPACE};
use crate::routes::json;

/// The package of the management actions.
const PACKAGE: &str = "apimgmt";

/// Whether a web path names a management action.
pub(super) fn is_apimgmt(path: &WebPath) -> bool {
    path.namespace == SYSTEM_NAMESPACE && path.package.as_deref() == Some(PACKAGE)
}

/// `scheme://host` of this platform as the request reached it: `X-Forwarded-Proto` (`http`
/// or `https`) else `http`, and the `Host` header when it is a plain host name or address.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| *s == "http" || *s == "https")
        .unwrap_or("http");
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// The URL an API is reached at: `{base}/api/{namespace}{basepath}`.
pub(crate) fn api_url(base: &str, ns: &EntityName, base_path: &str) -> String {
    let ns = percent_encoding::utf8_percent_encode(ns.as_str(), percent_encoding::NON_ALPHANUMERIC);
    format!("{base}/api/{ns}{}", base_path.trim_end_matches('/'))
}

fn gateway_error(e: GatewayError) -> Response {
    match e {
        GatewayError::Invalid(m) => ApiError::bad_request(m),
        GatewayError::Unauthenticated(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
        GatewayError::Missing(m) => ApiError::new(StatusCode::NOT_FOUND, m),
        GatewayError::Duplicate(m) => ApiError::new(StatusCode::CONFLICT, m),
        GatewayError::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, m),
        GatewayError::Store(e) => ApiError::from(e),
    }
    .into_response()
}

/// The parameters of a call: the query, then a JSON object body over it.
async fn parameters(
    s: &WebState,
    parts: &Parts,
    body: Body,
) -> Result<Map<String, Value>, ApiError> {
    let mut params: Map<String, Value> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
    let limit = s.engine.config().limits.max_payload_bytes;
    let bytes = crate::routes::read_body(body, &parts.headers, limit).await?;
    if let Some(Value::Object(o)) = super::request::decode_body(&parts.headers, &bytes, false)? {
        params.extend(o);
    }
    Ok(params)
}

fn text(params: &Map<String, Value>, key: &str) -> Option<String> {
    match params.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn count(params: &Map<String, Value>, key: &str) -> Result<usize, ApiError> {
    match text(params, key) {
        None => Ok(0),
        Some(t) => t.parse().map_err(|_| {
            ApiError::bad_request(format!("The value '{t}' of '{key}' is not a whole number."))
        }),
    }
}

/// What `createApi` and `getApi` return for one API.
fn api_value(base: &str, ns: &EntityName, swagger: Value) -> Value {
    let bp = swagger
        .get("basePath")
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_string();
    json!({
        "namespace": ns.as_str(),
        "gwApiActivated": true,
        "tenantId": ns.as_str(),
        "gwApiUrl": api_url(base, ns, &bp),
        "apidoc": swagger,
    })
}

/// Serves `/api/v1/web/whisk.system/apimgmt/{createApi,getApi,deleteApi}[.ext]`.
pub(super) async fn handle(
    s: &WebState,
    path: &WebPath,
    parts: Parts,
    body: Body,
    caller: Option<Identity>,
) -> Response {
    let op = super::response::Extension::split(&path.action).0;
    if !matches!(op, "createApi" | "getApi" | "deleteApi") || !path.rest.is_empty() {
        return ApiError::not_found().into_response();
    }
    let params = match parameters(s, &parts, body).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(user) = caller else {
        let m = if op == "createApi" {
            "A valid auth key is required."
        } else {
            "Invalid authentication."
        };
        return gateway_error(GatewayError::Unauthenticated(m.into()));
    };
    let ns = user.namespace.name.clone();
    let base = base_url(&parts.headers);
    let store = s.engine.store().as_ref();
    let max_bytes = s.engine.config().limits.max_parameter_bytes;
    match op {
        "createApi" => {
            let req =
                CreateRequest::new(params.get("apidoc").cloned(), text(&params, "responsetype"));
            match gateway::create(&s.engine, &user, req, &base).await {
                Ok(swagger) => json(StatusCode::OK, &api_value(&base, &ns, swagger)),
                Err(e) => gateway_error(e),
            }
        }
        "getApi" => {
            let (skip, limit) = match (count(&params, "skip"), count(&params, "limit")) {
                (Ok(s), Ok(l)) => (s, l),
                (Err(e), _) | (_, Err(e)) => return e.into_response(),
            };
            let basepath = text(&params, "basepath");
            match gateway::get(store, &ns, basepath.as_deref(), skip, limit).await {
                Ok(docs) => {
                    let apis: Vec<Value> = docs
                        .into_iter()
                        .map(|d| {
                            let bp = d
                                .get("basePath")
                                .and_then(Value::as_str)
                                .unwrap_or("/")
                                .to_string();
                            json!({
                                "id": format!("API:{ns}:{bp}"),
                                "key": ns.as_str(),
                                "value": api_value(&base, &ns, d),
                            })
                        })
                        .collect();
                    json(StatusCode::OK, &json!({ "apis": apis }))
                }
                Err(e) => gateway_error(e),
            }
        }
        _ => {
            let Some(basepath) = text(&params, "basepath") else {
                return gateway_error(GatewayError::Invalid("basepath is required.".into()));
            };
            let relpath = text(&params, "relpath");
            let verb = text(&params, "operation");
            if relpath.is_none() && verb.is_some() {
                return gateway_error(GatewayError::Invalid(
                    "When specifying an operation, the path is required.".into(),
                ));
            }
            match gateway::delete(
                store,
                &ns,
                &basepath,
                relpath.as_deref(),
                verb.as_deref(),
                max_bytes,
            )
            .await
            {
                Ok(()) => json(StatusCode::OK, &json!({})),
                Err(e) => gateway_error(e),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn base_urls() {
        let mut h = HeaderMap::new();
        assert_eq!(base_url(&h), "http://localhost");
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3233"));
        assert_eq!(base_url(&h), "http://127.0.0.1:3233");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(base_url(&h), "https://127.0.0.1:3233");
        h.insert(header::HOST, HeaderValue::from_static("evil.example/<x>"));
        assert_eq!(base_url(&h), "https://localhost");
        let ns = EntityName::new("my ns").unwrap();
        assert_eq!(
            api_url("http://h", &ns, "/club/"),
            "http://h/api/my%20ns/club"
        );
        assert_eq!(api_url("http://h", &ns, "/"), "http://h/api/my%20ns");
    }
}
