//! The routes and the helpers every handler shares.
//!
//! Handlers take the raw body and query and parse them themselves, so that every bad input
//! is answered with OpenWhisk's status and message (axum's extractor rejections would use
//! their own words).

use axum::Router;
use axum::body::Body;
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::Serialize;

use faas_core::message::TransactionId;
use faas_core::{EntityName, Identity};

use crate::engine::Engine;
use crate::engine::entitlement::{Privilege, Resource, namespace_of};
use crate::error::{ApiError, messages};

pub(crate) mod actions;
mod activations;
mod listing;
mod namespaces;
mod packages;
pub(crate) mod query;
mod rules;
pub(crate) mod system;
mod triggers;
pub(crate) mod web;

/// The state of every handler.
pub(crate) type State = axum::extract::State<Engine>;

/// Routes served without authentication: system information, health, API docs.
pub(crate) fn public(shared: Engine) -> Router {
    Router::new()
        .route("/", only_get(get(system::info)))
        .route("/ping", only_get(get(system::ping)))
        .route("/health", only_get(get(system::health)))
        .route("/ready", only_get(get(system::readiness)))
        .route("/invokers", only_get(get(system::invokers)))
        .route(
            "/invokers/healthy/count",
            only_get(get(system::healthy_count)),
        )
        .route("/invokers/ready", only_get(get(system::ready)))
        .route("/api-docs", only_get(get(system::api_docs)))
        .route("/api/v1", only_get(get(system::api_v1)))
        .route("/api/v1/", only_get(get(system::api_v1)))
        .route("/api/v1/api-docs", only_get(get(system::api_docs)))
        .with_state(shared)
}

/// Routes that need credentials (the caller wraps them in the authentication layer).
pub(crate) fn authenticated(shared: Engine) -> Router {
    const NS: &str = "/api/v1/namespaces";
    Router::new()
        .route(NS, only_get(get(namespaces::list)))
        .route(&format!("{NS}/"), only_get(get(namespaces::list)))
        .route(
            &format!("{NS}/{{ns}}/limits"),
            only_get(get(namespaces::limits)),
        )
        .route(
            &format!("{NS}/{{ns}}/actions"),
            only_get(get(actions::list)),
        )
        .route(
            &format!("{NS}/{{ns}}/actions/"),
            only_get(get(actions::list)),
        )
        .route(
            &format!("{NS}/{{ns}}/actions/{{name}}"),
            entity_methods(
                get(actions::get)
                    .put(actions::put)
                    .delete(actions::delete)
                    .post(actions::invoke),
            ),
        )
        .route(
            &format!("{NS}/{{ns}}/actions/{{pkg}}/"),
            only_get(get(actions::list_package)),
        )
        .route(
            &format!("{NS}/{{ns}}/actions/{{pkg}}/{{name}}"),
            entity_methods(
                get(actions::get)
                    .put(actions::put)
                    .delete(actions::delete)
                    .post(actions::invoke),
            ),
        )
        .route(
            &format!("{NS}/{{ns}}/packages"),
            only_get(get(packages::list)),
        )
        .route(
            &format!("{NS}/{{ns}}/packages/"),
            only_get(get(packages::list)),
        )
        .route(
            &format!("{NS}/{{ns}}/packages/{{name}}"),
            allow_only(
                get(packages::get)
                    .put(packages::put)
                    .delete(packages::delete),
                "GET, PUT, DELETE",
            ),
        )
        .route(
            &format!("{NS}/{{ns}}/triggers"),
            only_get(get(triggers::list)),
        )
        .route(
            &format!("{NS}/{{ns}}/triggers/"),
            only_get(get(triggers::list)),
        )
        .route(
            &format!("{NS}/{{ns}}/triggers/{{name}}"),
            entity_methods(
                get(triggers::get)
                    .put(triggers::put)
                    .delete(triggers::delete)
                    .post(triggers::fire),
            ),
        )
        .route(&format!("{NS}/{{ns}}/rules"), only_get(get(rules::list)))
        .route(&format!("{NS}/{{ns}}/rules/"), only_get(get(rules::list)))
        .route(
            &format!("{NS}/{{ns}}/rules/{{name}}"),
            entity_methods(
                get(rules::get)
                    .put(rules::put)
                    .delete(rules::delete)
                    .post(rules::set_status),
            ),
        )
        .route(
            &format!("{NS}/{{ns}}/activations"),
            only_get(get(activations::list)),
        )
        .route(
            &format!("{NS}/{{ns}}/activations/"),
            only_get(get(activations::list)),
        )
        .route(
            &format!("{NS}/{{ns}}/activations/{{id}}"),
            only_get(get(activations::get)),
        )
        .route(
            &format!("{NS}/{{ns}}/activations/{{id}}/logs"),
            only_get(get(activations::logs)),
        )
        .route(
            &format!("{NS}/{{ns}}/activations/{{id}}/result"),
            only_get(get(activations::result)),
        )
        .with_state(shared)
}

type Methods = MethodRouter<Engine>;

/// 405 with pekko's message listing `allow` for the other methods. (axum adds its `Allow`
/// header only after the layers ran, so the message cannot be derived from it.)
fn allow_only(methods: Methods, allow: &'static str) -> Methods {
    methods.fallback(move || async move {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            messages::method_not_allowed(allow),
        )
    })
}

fn only_get(methods: Methods) -> Methods {
    allow_only(methods, "GET")
}

fn entity_methods(methods: Methods) -> Methods {
    allow_only(methods, "GET, PUT, DELETE, POST")
}

/// 404 for every path nobody serves.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, messages::ROUTE_NOT_FOUND)
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut res = Response::new(Body::from(body));
            *res.status_mut() = status;
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res
        }
        Err(e) => ApiError::from(faas_core::Error::internal(format!("cannot encode: {e}")))
            .into_response(),
    }
}

/// The caller's identity and transaction, moved out of the request.
pub(crate) struct Caller {
    pub(crate) identity: Identity,
    pub(crate) transid: TransactionId,
}

impl Caller {
    /// Takes them from a request's extensions (put there by the authentication and
    /// request-id layers).
    pub(crate) fn take(ext: &mut Extensions) -> Result<Self, ApiError> {
        let identity = ext
            .remove::<Identity>()
            .ok_or_else(|| ApiError::unauthorized(messages::AUTH_MISSING))?;
        let transid = ext
            .remove::<TransactionId>()
            .unwrap_or_else(|| TransactionId::new(crate::layers::request_id::generate_id()));
        Ok(Self { identity, transid })
    }

    /// The namespace `{ns}` names: the caller's own for `_` (400 for an invalid name).
    pub(crate) fn namespace(&self, ns: &str) -> Result<EntityName, ApiError> {
        Ok(namespace_of(&self.identity, ns)?)
    }

    /// Checks that the caller holds `right` on `resource` (the one entitlement check).
    pub(crate) async fn check(
        &self,
        engine: &Engine,
        right: Privilege,
        resource: &Resource,
    ) -> Result<(), ApiError> {
        Ok(engine
            .entitlement()
            .check(&self.identity, right, resource)
            .await?)
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads a body of at most `limit` bytes; larger ones get 413 `Request larger than allowed`
/// (from `Content-Length` before reading anything, else as soon as the count passes it).
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: u64,
) -> Result<Bytes, ApiError> {
    if let Some(n) = content_length(headers)
        && n > limit
    {
        return Err(ApiError::too_large(n, limit));
    }
    let declared = content_length(headers);
    let mut stream = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            tracing::debug!(error = %e, "reading a request body failed");
            ApiError::bad_request(messages::BODY_UNREADABLE)
        })?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(ApiError::too_large(total, limit));
        }
        match (&mut first, &mut rest) {
            (None, None) => first = Some(chunk),
            (Some(f), None) => {
                // The declared length (checked against the limit above) is allocated once, so
                // that a large upload is not copied through ever larger buffers.
                let want = declared.map_or(0, |d| usize::try_from(d).unwrap_or(0));
                let mut b = BytesMut::with_capacity(want.max(f.len() + chunk.len()));
                b.extend_from_slice(f);
                b.extend_from_slice(&chunk);
                first = None;
                rest = Some(b);
            }
            (_, Some(b)) => b.extend_from_slice(&chunk),
        }
    }
    Ok(match (first, rest) {
        (_, Some(b)) => b.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    })
}
