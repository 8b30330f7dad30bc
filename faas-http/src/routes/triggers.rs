//! Triggers: list, get, create/update, delete, fire (OpenWhisk `Triggers.scala`).
//!
//! * `GET /namespaces/{ns}/triggers` (`skip`, `limit`, `count`) lists the caller's triggers
//!   in their list form (no parameters, no rules).
//! * `GET /namespaces/{ns}/triggers/{name}` answers the trigger document with its `rules`
//!   map (kept by the rules API, see [`crate::engine::rules`]).
//! * `PUT` creates or (`overwrite=true`) updates a trigger; an update keeps the trigger's
//!   rules and is written at the revision read, so a rule linked meanwhile is not lost (the
//!   update answers `409 Concurrent modification` instead, as OpenWhisk does). A `feed`
//!   annotation of a new trigger must name an entity (`400 Feed name is not valid`).
//! * `DELETE` deletes the trigger and answers it. Its rules stay and read as `inactive`.
//! * `POST` fires it through [`Engine::fire`](crate::engine::Engine::fire): `202
//!   {"activationId"}` (with the `x-openwhisk-activation-id` header) when at least one rule is
//!   active, `204` with no body and no record otherwise.
//!
//! Only the owner may do any of it: triggers never cross namespaces.

use axum::body::Body;
use axum::extract::{Path, Request, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use faas_core::entity::{Trigger, TriggerPut};
use faas_core::store::Versioned;
use faas_core::{Entity, EntityKind, EntityName, EntityPath, Error, FullyQualifiedName};

use super::actions::accepted_response;
use super::listing;
use super::query::QueryParams;
use super::{Caller, State, json, read_body};
use crate::engine::entitlement::{Collection, Privilege, Resource};
use crate::engine::{FireOutcome, FireRequest};
use crate::error::ApiError;

const COLLECTION: &str = "triggers";

/// Request headers not passed on to the rules' actions as `__ow_headers`: the caller's
/// credentials (a rule's action may live in another namespace's published package, and no
/// tenant's code may see another's key; OpenWhisk passes them) and pekko's internal
/// `Timeout-Access` (which OpenWhisk drops too).
const HIDDEN_HEADERS: &[&str] = &["authorization", "timeout-access"];

fn trigger_fqn(namespace: &EntityName, name: &str) -> Result<FullyQualifiedName, ApiError> {
    Ok(FullyQualifiedName::new(
        EntityPath::namespace(namespace),
        EntityName::new(name)?,
    ))
}

fn resource(fqn: &FullyQualifiedName) -> Resource {
    Resource::entity(fqn.path.clone(), Collection::Triggers, fqn.name.as_str())
}

/// `GET /namespaces/{ns}/triggers` (`skip`, `limit`, `count`).
pub(crate) async fn list(
    AxState(engine): State,
    Path(ns): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let path = listing::readable(&engine, &caller, &ns, Collection::Triggers).await?;
    let q = QueryParams::parse(req.uri().query());
    listing::page(&engine, &path, EntityKind::Trigger, COLLECTION, &q, |e| {
        e.as_trigger().map(Trigger::summary_json)
    })
    .await
}

/// `GET /namespaces/{ns}/triggers/{name}`.
pub(crate) async fn get(
    AxState(engine): State,
    Path((ns, name)): Path<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let fqn = trigger_fqn(&caller.namespace(&ns)?, &name)?;
    caller
        .check(&engine, Privilege::Read, &resource(&fqn))
        .await?;
    let value = engine.store().get_entity(&fqn).await?.value;
    if !matches!(value, Entity::Trigger(_)) {
        return Err(Error::WrongCollection { id: fqn.doc_id() }.into());
    }
    Ok(json(StatusCode::OK, &value.to_api_json()))
}

/// `PUT /namespaces/{ns}/triggers/{name}` (`overwrite=true` to update).
pub(crate) async fn put(
    AxState(engine): State,
    Path((ns, name)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = Caller::take(&mut parts.extensions)?;
    let fqn = trigger_fqn(&caller.namespace(&ns)?, &name)?;
    caller
        .check(&engine, Privilege::Put, &resource(&fqn))
        .await?;
    let overwrite = QueryParams::parse(parts.uri.query()).boolean("overwrite", false)?;
    let bytes = read_body(body, &parts.headers, engine.config().max_request_bytes()).await?;
    let content: TriggerPut = serde_json::from_slice(&bytes).map_err(Error::from)?;
    drop(bytes);
    let existing = match engine.store().get_entity(&fqn).await {
        Ok(v) => Some(v),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let sys = &engine.config().limits;
    let (trigger, rev) = match existing {
        Some(Versioned {
            value: Entity::Trigger(old),
            rev,
        }) => {
            if !overwrite {
                return Err(Error::AlreadyExists { id: fqn.doc_id() }.into());
            }
            (content.into_trigger(&fqn, Some(&old), sys)?, Some(rev))
        }
        Some(_) => return Err(Error::WrongCollection { id: fqn.doc_id() }.into()),
        None => (content.into_trigger(&fqn, None, sys)?, None),
    };
    let entity = Entity::Trigger(trigger);
    engine.store().put_entity(&entity, rev.as_ref()).await?;
    Ok(json(StatusCode::OK, &entity.to_api_json()))
}

/// `DELETE /namespaces/{ns}/triggers/{name}`: answers the deleted trigger.
pub(crate) async fn delete(
    AxState(engine): State,
    Path((ns, name)): Path<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let fqn = trigger_fqn(&caller.namespace(&ns)?, &name)?;
    caller
        .check(&engine, Privilege::Delete, &resource(&fqn))
        .await?;
    let Versioned { value, rev } = engine.store().get_entity(&fqn).await?;
    if !matches!(value, Entity::Trigger(_)) {
        return Err(Error::WrongCollection { id: fqn.doc_id() }.into());
    }
    engine.store().delete_entity(&fqn, &rev).await?;
    Ok(json(StatusCode::OK, &value.to_api_json()))
}

/// The payload of a fire: nothing (empty body or `null`) or an object (OpenWhisk reads an
/// `Option[JsObject]`).
fn parse_fire_payload(bytes: &[u8]) -> Result<Option<Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(bytes).map_err(Error::from)? {
        Value::Null => Ok(None),
        v @ Value::Object(_) => Ok(Some(v)),
        _ => Err(ApiError::bad_request(
            "The request content was malformed:\nexpected a JSON object",
        )),
    }
}

/// The request's headers as `__ow_headers` gets them: lower-case names, string values
/// (headers that are not text are left out), without [`HIDDEN_HEADERS`].
fn passed_headers(headers: &HeaderMap) -> Map<String, Value> {
    headers
        .iter()
        .filter(|(k, _)| !HIDDEN_HEADERS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_string(), json!(v.to_str().ok()?))))
        .collect()
}

/// `POST /namespaces/{ns}/triggers/{name}`: fires the trigger.
pub(crate) async fn fire(
    AxState(engine): State,
    Path((ns, name)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let Caller { identity, transid } = Caller::take(&mut parts.extensions)?;
    let namespace = crate::engine::entitlement::namespace_of(&identity, &ns)?;
    let fqn = trigger_fqn(&namespace, &name)?;
    let bytes = read_body(
        body,
        &parts.headers,
        engine.config().limits.max_payload_bytes,
    )
    .await?;
    let payload = parse_fire_payload(&bytes)?;
    drop(bytes);
    let request = FireRequest::new(fqn)
        .with_payload(payload)
        .with_headers(passed_headers(&parts.headers))
        .with_transid(transid);
    match engine.fire(identity, request).await? {
        FireOutcome::Accepted(id) => Ok(accepted_response(id.as_str())),
        FireOutcome::NoActiveRules => {
            let mut res = Response::new(Body::empty());
            *res.status_mut() = StatusCode::NO_CONTENT;
            Ok(res)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn fire_payloads() {
        assert_eq!(parse_fire_payload(b" ").unwrap(), None);
        assert_eq!(parse_fire_payload(b"null").unwrap(), None);
        assert_eq!(
            parse_fire_payload(b"{\"a\":1}").unwrap(),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            parse_fire_payload(b"[1]").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_fire_payload(b"{").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn credentials_are_not_passed_on() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Basic eA=="));
        h.insert("x-custom", HeaderValue::from_static("v"));
        let passed = passed_headers(&h);
        assert_eq!(Value::Object(passed), json!({"x-custom": "v"}));
    }
}
