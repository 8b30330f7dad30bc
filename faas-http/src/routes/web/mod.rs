//! Web actions (`/api/v1/web/{namespace}/{package|default}/{action}[.ext][/path]`) and the API
//! gateway (`/api/{namespace}/{basepath}/{relpath}`, managed through
//! `/api/v1/web/whisk.system/apimgmt/{createApi,getApi,deleteApi}`): functions served over
//! plain HTTP, as OpenWhisk's `WebActions.scala` serves them.
//!
//! A request names an action; it is resolved and entitled for the owner of the URL's
//! namespace ([`resolve_web_action`]), who runs it through [`Engine::invoke_resolved`]. Credentials are optional: valid ones set
//! `__ow_user`, wrong or malformed ones count as none (OpenWhisk falls back to the anonymous
//! route). In order, as OpenWhisk checks:
//!
//! 1. the path (three valid name segments, else `404`) and the extension (`.http` when none);
//! 2. the action: missing, denied, not an action or not `web-export: true` → `404`;
//! 3. the declared body size against the payload limit → `413`;
//! 4. CORS: unless `web-custom-options: true`, every answer carries OpenWhisk's CORS headers
//!    and `OPTIONS` is answered `200` here; with it, `OPTIONS` reaches the action;
//! 5. `require-whisk-auth`: `true` needs valid credentials, a string or number must equal
//!    `X-Require-Whisk-Auth`, else `401` (`OPTIONS` of custom-options actions always pass);
//! 6. the body is decoded (see [`request`]) and, unless `raw-http`, keys that name `__ow_*`
//!    fields or protected parameters are refused (`400`);
//! 7. the engine runs the action, blocking up to the longest blocking wait (60 s), past which
//!    the answer is `202 {"error": "Response not yet ready."}`;
//! 8. the result (of a success, or the `error` field of an application error) is rendered by
//!    the extension (see [`response`]); developer and platform errors answer `400 There was an
//!    error processing your request.`; answers of a finished or timed-out activation carry
//!    `x-openwhisk-activation-id`; an `Accept` header that admits no type of the answer gets
//!    `406`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use serde_json::Value;

use faas_core::message::TransactionId;
use faas_core::params::Annotations;
use faas_core::{
    Activation, Authenticator, EntityName, EntityPath, Error, FullyQualifiedName, Identity,
};

use crate::engine::{Engine, InvokeRequest, Outcome};
use crate::error::{ApiError, Verbatim};
use crate::layers::auth::{Credentials, credentials};
use crate::routes::actions::ACTIVATION_ID_HEADER;

mod apimgmt;
mod gateway;
pub(crate) mod media;
pub(crate) mod request;
pub(crate) mod resolve;
pub(crate) mod response;

use request::Context;
use resolve::{
    FINAL, RAW_HTTP, REQUIRE_WHISK_AUTH, WEB_CUSTOM_OPTIONS, WebAction, annotation_is_true,
    resolve_web_action,
};
use response::{Extension, PROPERTY_NOT_FOUND, Rendered};

/// The prefix of web action URLs.
pub(crate) const WEB_PREFIX: &str = "/api/v1/web/";

/// 202 when the action did not finish within the wait.
pub(crate) const RESPONSE_NOT_READY: &str = "Response not yet ready.";
/// 400 for developer and platform errors.
pub(crate) const ERROR_PROCESSING_REQUEST: &str = "There was an error processing your request.";
/// 401 for `require-whisk-auth` failures (pekko's text for a bare 401).
pub(crate) const UNAUTHORIZED: &str =
    "Authentication is possible but has failed or not yet been provided.";
/// The header carrying a web action's shared secret.
pub(crate) const REQUIRE_WHISK_AUTH_HEADER: &str = "x-require-whisk-auth";
/// The methods web actions answer.
const METHODS: &str = "GET, DELETE, POST, PUT, HEAD, OPTIONS, PATCH";
/// CORS of web actions (`CorsSettings.WebActions`).
const CORS_ALLOW_METHODS: &str = "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH";
const CORS_ALLOW_HEADERS: &str =
    "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent";

/// The state of the web routes: the engine, and the authenticator for optional credentials.
#[derive(Debug, Clone)]
pub(crate) struct WebState {
    pub(crate) engine: Engine,
    pub(crate) auth: Arc<dyn Authenticator>,
}

/// The web action and API gateway routes.
pub(crate) fn router(engine: Engine, auth: Arc<dyn Authenticator>) -> Router {
    Router::new()
        .route("/api/v1/web", any(malformed))
        .route("/api/v1/web/", any(malformed))
        .route("/api/v1/web/{*path}", any(web))
        .route("/api/{gateway}/{*path}", any(gateway::serve))
        .with_state(WebState { engine, auth })
}

fn method_allowed(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET
            | Method::DELETE
            | Method::POST
            | Method::PUT
            | Method::HEAD
            | Method::OPTIONS
            | Method::PATCH
    )
}

fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        crate::error::messages::method_not_allowed(METHODS),
    )
    .into_response()
}

/// `/api/v1/web` without an action.
async fn malformed(req: Request) -> Response {
    if !method_allowed(req.method()) {
        return method_not_allowed();
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        crate::error::messages::ROUTE_NOT_FOUND,
    )
    .into_response()
}

/// A web URL's parts: namespace, package (`None` for `default`), action segment (with its
/// extension) and the rest of the path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WebPath {
    pub(crate) namespace: String,
    pub(crate) package: Option<String>,
    pub(crate) action: String,
    pub(crate) rest: String,
}

fn decode_segment(raw: &str) -> Option<String> {
    let s = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?
        .into_owned();
    faas_core::names::validate_name(&s).ok()?;
    Some(s)
}

/// Parses what follows `/api/v1/web/`: three segments that are valid names (percent-decoded;
/// the package may be `default`), then the rest of the path as written.
pub(crate) fn parse_web_path(after_prefix: &str) -> Option<WebPath> {
    let mut it = after_prefix.splitn(4, '/');
    let namespace = decode_segment(it.next()?)?;
    let package = decode_segment(it.next()?)?;
    let action = decode_segment(it.next()?)?;
    let rest = it.next().map(|r| format!("/{r}")).unwrap_or_default();
    Some(WebPath {
        namespace,
        package: (package != "default").then_some(package),
        action,
        rest,
    })
}

/// The fully qualified name of `name` in `namespace[/package]`; `None` when not a valid name.
pub(crate) fn action_fqn(
    namespace: &str,
    package: Option<&str>,
    name: &str,
) -> Option<FullyQualifiedName> {
    let mut path = EntityPath::namespace(&EntityName::new(namespace).ok()?);
    if let Some(p) = package {
        path = path.join(&EntityName::new(p).ok()?);
    }
    Some(FullyQualifiedName::new(path, EntityName::new(name).ok()?))
}

/// The caller's identity when the request carries valid platform credentials; wrong or
/// malformed credentials count as none. A failing store is an error.
pub(crate) async fn optional_caller(
    auth: &Arc<dyn Authenticator>,
    headers: &HeaderMap,
) -> Result<Option<Identity>, ApiError> {
    let Credentials::Key(key) = credentials(headers) else {
        return Ok(None);
    };
    match auth.authenticate(&key).await {
        Ok(identity) => Ok(Some(identity)),
        Err(Error::Unauthenticated | Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn transid(parts: &mut Parts) -> TransactionId {
    parts
        .extensions
        .remove::<TransactionId>()
        .unwrap_or_else(|| TransactionId::new(crate::layers::request_id::generate_id()))
}

/// `ANY /api/v1/web/{namespace}/{package}/{action}[.ext][/path]`.
async fn web(State(s): State<WebState>, req: Request) -> Response {
    if !method_allowed(req.method()) {
        return method_not_allowed();
    }
    let (mut parts, body) = req.into_parts();
    let raw_path = parts.uri.path().to_string();
    let Some(path) = raw_path.strip_prefix(WEB_PREFIX).and_then(parse_web_path) else {
        return ApiError::not_found().into_response();
    };
    let caller = match optional_caller(&s.auth, &parts.headers).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let transid = transid(&mut parts);
    if apimgmt::is_apimgmt(&path) {
        return apimgmt::handle(&s, &path, parts, body, caller).await;
    }
    let (name, ext) = Extension::split(&path.action);
    let Some(fqn) = action_fqn(&path.namespace, path.package.as_deref(), name) else {
        return ApiError::not_found().into_response();
    };
    serve(
        &s.engine,
        WebCall {
            fqn,
            ext,
            path: path.rest,
            parts,
            body,
            caller,
            transid,
            secret: None,
            cors: true,
        },
    )
    .await
}

/// One call of a web action, from its URL or from an API route.
pub(crate) struct WebCall {
    /// The action as the URL names it.
    pub(crate) fqn: FullyQualifiedName,
    /// How the result is rendered.
    pub(crate) ext: Extension,
    /// `__ow_path`.
    pub(crate) path: String,
    /// The request (method, query, headers).
    pub(crate) parts: Parts,
    /// The request body.
    pub(crate) body: Body,
    /// The caller, when it authenticated.
    pub(crate) caller: Option<Identity>,
    /// The transaction.
    pub(crate) transid: TransactionId,
    /// A `require-whisk-auth` secret an API route presents for its callers.
    pub(crate) secret: Option<String>,
    /// Whether the platform answers CORS (an API route may turn it off).
    pub(crate) cors: bool,
}

/// Serves a web action call (steps 2–8 of the module docs).
pub(crate) async fn serve(engine: &Engine, call: WebCall) -> Response {
    let web = match resolve_web_action(engine, &call.fqn).await {
        Ok(w) => w,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let limit = engine.config().limits.max_payload_bytes;
    if let Some(n) = declared_length(&call.parts.headers)
        && n > limit
    {
        return ApiError::too_large(n, limit).into_response();
    }
    let annotations = &web.resolved.action.annotations;
    let custom_options = annotation_is_true(annotations, WEB_CUSTOM_OPTIONS);
    let options = call.parts.method == Method::OPTIONS;
    let cors = (call.cors && !custom_options).then(|| default_cors(&call.parts.headers));
    let mut res = if options && !custom_options {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::OK;
        r
    } else if (options && custom_options)
        || confirm_authenticated(
            annotations,
            &call.parts.headers,
            call.secret.as_deref(),
            call.caller.as_ref(),
        )
    {
        process(engine, web, call).await
    } else {
        ApiError::new(StatusCode::UNAUTHORIZED, UNAUTHORIZED).into_response()
    };
    if let Some(cors) = cors {
        for (name, value) in cors {
            if !res.headers().contains_key(&name) {
                res.headers_mut().insert(name, value);
            }
        }
    }
    res
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// OpenWhisk's CORS headers for web actions; `Access-Control-Allow-Headers` echoes the
/// request's `Access-Control-Request-Headers` when it has one.
fn default_cors(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let allow_headers = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(CORS_ALLOW_HEADERS));
    vec![
        (
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ),
        (
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_ALLOW_METHODS),
        ),
        (header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers),
    ]
}

/// Whether `a` equals `b`, in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `require-whisk-auth` (`confirmAuthenticated`): absent or `false` lets anyone in; `true`
/// needs valid credentials; a string or number must equal `X-Require-Whisk-Auth` (an API
/// route presents the secret it was created with); any other value lets no one in.
fn confirm_authenticated(
    annotations: &Annotations,
    headers: &HeaderMap,
    route_secret: Option<&str>,
    caller: Option<&Identity>,
) -> bool {
    let check = |expected: &str| {
        let presented = route_secret.map(str::as_bytes).or_else(|| {
            headers
                .get(REQUIRE_WHISK_AUTH_HEADER)
                .map(HeaderValue::as_bytes)
        });
        presented.is_some_and(|p| same_secret(p, expected.as_bytes()))
    };
    match annotations.get(REQUIRE_WHISK_AUTH) {
        None | Some(Value::Bool(false)) => true,
        Some(Value::Bool(true)) => caller.is_some(),
        Some(Value::String(s)) => check(s),
        Some(Value::Number(n)) => check(&n.to_string()),
        Some(_) => false,
    }
}

/// The parameters a request may not set: the `__ow_*` fields and, for actions annotated
/// `final: true`, every parameter with a value.
fn reserved(web: &WebAction) -> BTreeSet<&str> {
    let mut r: BTreeSet<&str> = request::RESERVED.into_iter().collect();
    if annotation_is_true(&web.resolved.action.annotations, FINAL) {
        r.extend(
            web.resolved
                .parameters
                .iter()
                .filter(|p| !p.value.is_null())
                .map(|p| p.key.as_str()),
        );
    }
    r
}

/// Steps 6–8: decode, check, invoke, render.
async fn process(engine: &Engine, web: WebAction, call: WebCall) -> Response {
    let WebCall {
        fqn,
        ext,
        path,
        parts,
        body,
        caller,
        transid,
        secret: _,
        cors: _,
    } = call;
    let raw = annotation_is_true(&web.resolved.action.annotations, RAW_HTTP);
    let limit = engine.config().limits.max_payload_bytes;
    let bytes = match crate::routes::read_body(body, &parts.headers, limit).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let decoded = match request::decode_body(&parts.headers, &bytes, raw) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    drop(bytes);
    let headers = request::header_map(&parts.headers, caller.is_some());
    let mut context = Context::new(&parts.method, headers, path, parts.uri.query());
    context.body = decoded;
    if !raw && context.overrides(&reserved(&web)) {
        return ApiError::bad_request(crate::error::messages::PARAMETERS_NOT_ALLOWED)
            .into_response();
    }
    let user = caller.as_ref().map(|c| c.namespace.name.as_str());
    let args = context.into_arguments(user, raw);
    let wait = Duration::from_millis(engine.config().limits.max_blocking_wait_ms);
    let request = InvokeRequest::new(fqn)
        .with_payload(Value::Object(args))
        .with_transid(transid)
        .blocking(wait)
        .without_final_check();
    match engine
        .invoke_resolved(web.owner, web.resolved, request)
        .await
    {
        Err(e) => ApiError::from(e).into_response(),
        Ok(Outcome::Accepted(id)) => {
            let mut r = ApiError::new(StatusCode::ACCEPTED, RESPONSE_NOT_READY).into_response();
            activation_header(&mut r, id.as_str());
            r
        }
        Ok(Outcome::Completed(a)) => {
            let mut r = complete(&a, ext, &parts.headers);
            activation_header(&mut r, a.activation_id.as_str());
            r
        }
    }
}

fn activation_header(res: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        res.headers_mut().insert(ACTIVATION_ID_HEADER, v);
    }
}

/// The answer for a finished activation (`completeRequest`).
fn complete(activation: &Activation, ext: Extension, request_headers: &HeaderMap) -> Response {
    use faas_core::activation::StatusCode as Status;
    let response = &activation.response;
    let empty = Value::Object(serde_json::Map::new());
    let result = response.result.as_ref().unwrap_or(&empty);
    let projected = match response.status_code {
        Status::Success => Some(result),
        Status::ApplicationError => result.get("error"),
        Status::DeveloperError | Status::WhiskError => {
            return ApiError::bad_request(ERROR_PROCESSING_REQUEST).into_response();
        }
    };
    let Some(projected) = projected else {
        return ApiError::new(StatusCode::NOT_FOUND, PROPERTY_NOT_FOUND).into_response();
    };
    match response::render(ext, projected) {
        Ok(r) => rendered_response(r, request_headers),
        Err(e) => e.into_response(),
    }
}

/// The HTTP response of a rendered result, after content negotiation.
fn rendered_response(r: Rendered, request_headers: &HeaderMap) -> Response {
    let Rendered {
        status,
        headers,
        content_type,
        body,
    } = r;
    if let Some(ct) = &content_type
        && !media::accepts(request_headers, ct)
    {
        // pekko's rejection: plain text, not OpenWhisk's JSON error.
        let mut res = Response::new(Body::from(format!(
            "Resource representation is only available with these types:\n{ct}"
        )));
        *res.status_mut() = StatusCode::NOT_ACCEPTABLE;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        );
        res.extensions_mut().insert(Verbatim);
        return res;
    }
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    for (name, value) in headers {
        h.append(name, value);
    }
    if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_TYPE, ct);
    }
    // The action chose this status and body: no error rendering.
    res.extensions_mut().insert(Verbatim);
    res
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn web_paths() {
        let p = parse_web_path("guest/default/hello.json/a/b").unwrap();
        assert_eq!(p.namespace, "guest");
        assert_eq!(p.package, None);
        assert_eq!(p.action, "hello.json");
        assert_eq!(p.rest, "/a/b");
        let p = parse_web_path("guest/demo/hello").unwrap();
        assert_eq!(p.package.as_deref(), Some("demo"));
        assert_eq!(p.rest, "");
        assert_eq!(parse_web_path("guest/demo/hello/").unwrap().rest, "/");
        let p = parse_web_path("my%20ns/default/a%40b").unwrap();
        assert_eq!((p.namespace.as_str(), p.action.as_str()), ("my ns", "a@b"));
        for bad in [
            "a",
            "a/b",
            "guest//x",
            "guest/default/",
            "guest/default/x%2Fy",
            "guest/default/-x",
            "guest/default/%FF",
        ] {
            assert_eq!(parse_web_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn require_whisk_auth() {
        let h = |v: Option<&str>| {
            let mut m = HeaderMap::new();
            if let Some(v) = v {
                m.insert(REQUIRE_WHISK_AUTH_HEADER, HeaderValue::from_str(v).unwrap());
            }
            m
        };
        let with = |v: Value| Annotations::new().with(REQUIRE_WHISK_AUTH, v);
        assert!(confirm_authenticated(
            &Annotations::new(),
            &h(None),
            None,
            None
        ));
        assert!(confirm_authenticated(
            &with(json!(false)),
            &h(None),
            None,
            None
        ));
        assert!(!confirm_authenticated(
            &with(json!(true)),
            &h(None),
            None,
            None
        ));
        assert!(confirm_authenticated(
            &with(json!("s")),
            &h(Some("s")),
            None,
            None
        ));
        assert!(!confirm_authenticated(
            &with(json!("s")),
            &h(Some("t")),
            None,
            None
        ));
        assert!(confirm_authenticated(
            &with(json!(42)),
            &h(Some("42")),
            None,
            None
        ));
        assert!(confirm_authenticated(
            &with(json!("s")),
            &h(None),
            Some("s"),
            None
        ));
        assert!(!confirm_authenticated(
            &with(json!([1])),
            &h(None),
            None,
            None
        ));
    }
}
