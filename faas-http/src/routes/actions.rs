//! Actions: list, get, create/update, delete, invoke ([OpenWhisk's REST API](https://github.com/apache/openwhisk/blob/master/docs/rest_api.md)), in the default
//! package (`/actions/{name}`) and in packages (`/actions/{pkg}/{name}`, list `/actions/{pkg}/`).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Request, State as AxState};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use faas_core::entity::ActionPut;
use faas_core::store::Versioned;
use faas_core::{
    Action, Activation, Entity, EntityKind, EntityName, EntityPath, Error, Exec, FullyQualifiedName,
};

use super::listing;
use super::query::QueryParams;
use super::{Caller, State, json, read_body};
use crate::engine::entitlement::{Collection, Privilege, Resource};
use crate::engine::{Engine, InvokeRequest, Outcome};
use crate::error::{ApiError, messages};

const COLLECTION: &str = "actions";

/// The response header naming the activation of an invoke.
pub const ACTIVATION_ID_HEADER: &str = "x-openwhisk-activation-id";

/// An action address as the request wrote it.
pub(crate) struct ActionPath {
    ns: String,
    pkg: Option<String>,
    name: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ActionPath {
    type Rejection = ApiError;

    /// Reads `{ns}`, `{name}` and, on package routes, `{pkg}`: one handler per method serves
    /// both `/actions/{name}` and `/actions/{pkg}/{name}`.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(mut segs) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::from(Error::bad_request(e.body_text())))?;
        let mut take = |k: &str| {
            segs.remove(k)
                .ok_or_else(|| ApiError::from(Error::internal(format!("route lacks {{{k}}}"))))
        };
        let ns = take("ns")?;
        let name = take("name")?;
        Ok(Self {
            ns,
            pkg: segs.remove("pkg"),
            name,
        })
    }
}

impl ActionPath {
    /// The action's fully qualified name in `namespace` (`{ns}` already resolved).
    fn fqn(&self, namespace: &EntityName) -> Result<FullyQualifiedName, ApiError> {
        let mut p = EntityPath::namespace(namespace);
        if let Some(pkg) = &self.pkg {
            p = p.join(&EntityName::new(pkg.as_str())?);
        }
        Ok(FullyQualifiedName::new(
            p,
            EntityName::new(self.name.as_str())?,
        ))
    }
}

fn wrong_collection(id: String) -> ApiError {
    Error::WrongCollection { id }.into()
}

/// For writes inside a package the caller owns: it must exist, be a package and not be a
/// binding.
async fn check_package_writable(engine: &Engine, path: &EntityPath) -> Result<(), ApiError> {
    let (Some(pkg), root) = (path.package(), path.root()) else {
        return Ok(());
    };
    let fqn = FullyQualifiedName::new(EntityPath::new(root)?, EntityName::new(pkg)?);
    match engine.store().get_entity(&fqn).await?.value {
        Entity::Package(p) if p.binding.is_some() => {
            Err(ApiError::bad_request(messages::NOT_ALLOWED_ON_BINDING))
        }
        Entity::Package(_) => Ok(()),
        _ => Err(wrong_collection(fqn.doc_id())),
    }
}

// ---------------------------------------------------------------------------------------
// list

async fn list_path(
    engine: &Engine,
    path: &EntityPath,
    q: &QueryParams<'_>,
) -> Result<Response, ApiError> {
    listing::page(engine, path, EntityKind::Action, COLLECTION, q, |e| {
        e.as_action().map(Action::summary_json)
    })
    .await
}

/// `GET /namespaces/{ns}/actions`: every action of the caller's namespace (packaged ones too).
pub(crate) async fn list(
    AxState(engine): State,
    Path(ns): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let path = listing::readable(&engine, &caller, &ns, Collection::Actions).await?;
    let q = QueryParams::parse(req.uri().query());
    list_path(&engine, &path, &q).await
}

/// `GET /namespaces/{ns}/actions/{pkg}/`: the actions of a package (or of a binding's
/// package), for anyone who may read the package.
pub(crate) async fn list_package(
    AxState(engine): State,
    Path((ns, pkg)): Path<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(&ns)?;
    let q = QueryParams::parse(req.uri().query());
    let fqn = FullyQualifiedName::new(EntityPath::namespace(&namespace), EntityName::new(pkg)?);
    let view = engine.entitlement().package(&caller.identity, &fqn).await?;
    list_path(&engine, &view.path, &q).await
}

// ---------------------------------------------------------------------------------------
// get

/// `GET /namespaces/{ns}/actions/[{pkg}/]{name}` (`code=false`: without the code); packaged
/// actions show the parameters they inherit from their package (and binding).
pub(crate) async fn get(
    AxState(engine): State,
    path: ActionPath,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(&path.ns)?;
    let code = QueryParams::parse(req.uri().query()).boolean("code", true)?;
    let fqn = path.fqn(&namespace)?;
    let resolved = engine
        .resolve_action(&caller.identity, &fqn, Privilege::Read)
        .await?;
    let mut action = resolved.action;
    action.parameters = resolved.parameters;
    let exec_without_code = (!code).then(|| action.exec.without_code());
    let mut body = Entity::Action(action).to_api_json();
    if let (Some(exec), Some(o)) = (exec_without_code, body.as_object_mut()) {
        o.insert("exec".into(), exec);
    }
    Ok(json(StatusCode::OK, &body))
}

// ---------------------------------------------------------------------------------------
// put

/// `PUT /namespaces/{ns}/actions/[{pkg}/]{name}` (`overwrite=true` to update); the package
/// must exist and not be a binding; a sequence's components must be readable by the caller.
pub(crate) async fn put(
    AxState(engine): State,
    path: ActionPath,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = Caller::take(&mut parts.extensions)?;
    let namespace = caller.namespace(&path.ns)?;
    let fqn = path.fqn(&namespace)?;
    caller
        .check(&engine, Privilege::Put, &Resource::action(&fqn))
        .await?;
    let overwrite = QueryParams::parse(parts.uri.query()).boolean("overwrite", false)?;
    let bytes = read_body(body, &parts.headers, engine.config().max_request_bytes()).await?;
    let content: ActionPut = serde_json::from_slice(&bytes).map_err(Error::from)?;
    // The raw body is not needed any more: free it before the entity is stored and echoed.
    drop(bytes);
    check_package_writable(&engine, &fqn.path).await?;
    let existing = match engine.store().get_entity(&fqn).await {
        Ok(v) => Some(v),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let sys = &engine.config().limits;
    let manifest = &*engine.runtimes();
    let (action, rev) = match existing {
        Some(Versioned {
            value: Entity::Action(old),
            rev,
        }) => {
            if !overwrite {
                return Err(Error::AlreadyExists { id: fqn.doc_id() }.into());
            }
            (
                content.into_action(&fqn, Some(&old), sys, manifest)?,
                Some(rev),
            )
        }
        Some(_) => return Err(wrong_collection(fqn.doc_id())),
        None => (content.into_action(&fqn, None, sys, manifest)?, None),
    };
    crate::engine::check_kind(&caller.identity, &action.exec)?;
    if let Exec::Sequence { components } = &action.exec {
        crate::engine::sequence::validate(&engine, &caller.identity, &fqn, components).await?;
    }
    let entity = Entity::Action(action);
    engine.store().put_entity(&entity, rev.as_ref()).await?;
    Ok(json(StatusCode::OK, &entity.to_api_json()))
}

// ---------------------------------------------------------------------------------------
// delete

/// `DELETE /namespaces/{ns}/actions/[{pkg}/]{name}`: answers the deleted action.
pub(crate) async fn delete(
    AxState(engine): State,
    path: ActionPath,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(&path.ns)?;
    let fqn = path.fqn(&namespace)?;
    caller
        .check(&engine, Privilege::Delete, &Resource::action(&fqn))
        .await?;
    check_package_writable(&engine, &fqn.path).await?;
    let Versioned { value, rev } = engine.store().get_entity(&fqn).await?;
    if !matches!(value, Entity::Action(_)) {
        return Err(wrong_collection(fqn.doc_id()));
    }
    engine.store().delete_entity(&fqn, &rev).await?;
    Ok(json(StatusCode::OK, &value.to_api_json()))
}

// ---------------------------------------------------------------------------------------
// invoke

/// The payload of an invoke: nothing (empty body or `null`), an object, or an array.
pub(crate) fn parse_payload(bytes: &[u8]) -> Result<Option<Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(bytes).map_err(Error::from)? {
        Value::Null => Ok(None),
        v @ (Value::Object(_) | Value::Array(_)) => Ok(Some(v)),
        _ => Err(ApiError::bad_request(
            "The request content was malformed:\nexpected a JSON object",
        )),
    }
}

fn activation_id_header(res: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        res.headers_mut().insert(ACTIVATION_ID_HEADER, v);
    }
}

/// The answer of a finished blocking invoke: 200/502/500 by status code; the full record,
/// or with `result=true` only the result; an array result as the array itself.
pub(crate) fn activation_response(activation: &Activation, result_only: bool) -> Response {
    let status = StatusCode::from_u16(activation.response.status_code.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = match &activation.response.result {
        Some(r @ Value::Array(_)) => json(status, r),
        Some(r) if result_only => json(status, r),
        None if result_only => json(status, &json!({})),
        _ => json(status, &activation.to_api_json()),
    };
    activation_id_header(&mut res, activation.activation_id.as_str());
    res
}

/// The answer of an invoke that is running: 202 `{"activationId": id}`.
pub(crate) fn accepted_response(id: &str) -> Response {
    let mut res = json(StatusCode::ACCEPTED, &json!({ "activationId": id }));
    activation_id_header(&mut res, id);
    res
}

/// `POST /namespaces/{ns}/actions/[{pkg}/]{name}` (`blocking`, `result`, `timeout`): one
/// call of the engine.
pub(crate) async fn invoke(
    AxState(engine): State,
    path: ActionPath,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let Caller { identity, transid } = Caller::take(&mut parts.extensions)?;
    let namespace = crate::engine::entitlement::namespace_of(&identity, &path.ns)?;
    let fqn = path.fqn(&namespace)?;
    let q = QueryParams::parse(parts.uri.query());
    let blocking = q.boolean("blocking", false)?;
    let result_only = q.boolean("result", false)?;
    let wait_ms = q.timeout_ms(engine.config().limits.max_blocking_wait_ms)?;
    let bytes = read_body(
        body,
        &parts.headers,
        engine.config().limits.max_payload_bytes,
    )
    .await?;
    let payload = parse_payload(&bytes)?;
    drop(bytes);
    let mut request = InvokeRequest::new(fqn)
        .with_optional_payload(payload)
        .with_transid(transid);
    if blocking {
        request = request.blocking(Duration::from_millis(wait_ms));
    }
    match engine.invoke(identity, request).await? {
        Outcome::Accepted(id) => Ok(accepted_response(id.as_str())),
        Outcome::Completed(a) => Ok(activation_response(&a, result_only)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(parse_payload(b"").unwrap(), None);
        assert_eq!(parse_payload(b"  \n").unwrap(), None);
        assert_eq!(parse_payload(b"null").unwrap(), None);
        assert_eq!(parse_payload(b"{\"a\":1}").unwrap(), Some(json!({"a": 1})));
        assert_eq!(parse_payload(b"[1]").unwrap(), Some(json!([1])));
        let e = parse_payload(b"{").unwrap_err();
        assert!(
            e.message()
                .starts_with("The request content was malformed:\n")
        );
        assert_eq!(
            parse_payload(b"5").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
