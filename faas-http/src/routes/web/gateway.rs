//! `ANY /api/{namespace}/{basepath}/{relpath}`: the API gateway's routes, served by the
//! controller (see [`crate::gateway`]).
//!
//! The namespace's APIs are read, the request path is matched against their operations
//! ([`matcher::find`]: static segments before `{parameters}`, longest path first, the rest of
//! the path passed on) and the operation's web action is called exactly as its web URL would
//! be ([`super::serve`]): same resolution for the owner of the action's namespace, same
//! annotations, same rendering by the route's response type. With the `http` response type
//! the action sees the request path from the base path on in `__ow_path` (OpenWhisk's
//! `target-url` ends in `$(request.path)`); with the others `__ow_path` is empty. A route
//! created with a `require-whisk-auth` secret presents it for its callers.
//!
//! A path no operation matches answers `404`, a matched path without the request's verb
//! `405` (or, for `OPTIONS` on an API with CORS enabled, `200` with the CORS headers). An API
//! whose `x-ibm-configuration.cors.enabled` is `false` sends no CORS headers of the platform's.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};

use faas_core::EntityName;

use super::response::Extension;
use super::{
    WebCall, WebState, action_fqn, default_cors, method_allowed, method_not_allowed,
    optional_caller, serve as serve_web, transid,
};
use crate::error::{ApiError, messages};
use crate::gateway::{self, GatewayError, matcher};

fn route_not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, messages::ROUTE_NOT_FOUND).into_response()
}

fn decode(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Serves one gateway request.
pub(super) async fn serve(State(s): State<WebState>, req: Request) -> Response {
    if !method_allowed(req.method()) {
        return method_not_allowed();
    }
    let (mut parts, body) = req.into_parts();
    let raw = parts.uri.path().to_string();
    let Some(after) = raw.strip_prefix("/api/") else {
        return route_not_found();
    };
    let (ns_segment, rest) = after.split_once('/').unwrap_or((after, ""));
    // `/api/v1/...` is the platform's own API: whatever it does not serve is a missing route.
    if ns_segment == "v1" {
        return route_not_found();
    }
    let Some(ns) = decode(ns_segment).and_then(|n| EntityName::new(n).ok()) else {
        return route_not_found();
    };
    let Some(segments) = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect::<Option<Vec<String>>>()
    else {
        return route_not_found();
    };
    let apis = match gateway::routes(s.engine.store().as_ref(), &ns).await {
        Ok(a) => a,
        Err(GatewayError::Store(e)) => return ApiError::from(e).into_response(),
        Err(_) => return route_not_found(),
    };
    let verb = parts.method.as_str().to_ascii_lowercase();
    let Some(matched) = matcher::find(&apis, &segments, &verb) else {
        return route_not_found();
    };
    let Some(op) = matched.operation.cloned() else {
        if parts.method == Method::OPTIONS && matched.api.cors {
            let mut res = Response::new(axum::body::Body::empty());
            for (name, value) in default_cors(&parts.headers) {
                res.headers_mut().insert(name, value);
            }
            return res;
        }
        let allow = matched.allowed.join(", ");
        let mut res = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            messages::method_not_allowed(&allow),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&allow) {
            res.headers_mut().insert(header::ALLOW, v);
        }
        return res;
    };
    let caller = match optional_caller(&s.auth, &parts.headers).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let transid = transid(&mut parts);
    let target = &op.target;
    let Some(fqn) = action_fqn(&target.namespace, target.package.as_deref(), &target.action) else {
        return ApiError::not_found().into_response();
    };
    let ext = Extension::named(&target.ext).unwrap_or(Extension::Json);
    let path = if ext == Extension::Http {
        format!("/{rest}")
    } else {
        String::new()
    };
    if let Some(m) = op
        .backend_verb
        .as_deref()
        .and_then(|v| Method::from_bytes(v.to_ascii_uppercase().as_bytes()).ok())
    {
        parts.method = m;
    }
    serve_web(
        &s.engine,
        WebCall {
            fqn,
            ext,
            path,
            parts,
            body,
            caller,
            transid,
            secret: op.secret.clone(),
            cors: matched.api.cors,
        },
    )
    .await
}
