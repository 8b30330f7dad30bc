//! Rules: list, get, create/update, enable/disable, delete (OpenWhisk `Rules.scala`).
//!
//! A rule's status is not in the rule document: it is its link in its trigger's `rules` map
//! (absent, or no trigger: `inactive`), kept by [`crate::engine::rules`].
//!
//! * `GET /namespaces/{ns}/rules` (`skip`, `limit`, `count`) lists the rule documents
//!   (without `status`, as OpenWhisk's list does).
//! * `GET /namespaces/{ns}/rules/{name}` answers the rule with its `status`.
//! * `PUT` creates or (`overwrite=true`) updates a rule. The trigger and the action
//!   (`/ns/name`, `/ns/pkg/name`, `pkg/name`, `name`, or `{path, name}`; `_` is the caller's
//!   namespace) must be readable by the caller (the one entitlement check: a foreign private
//!   package is `403`, exactly as a missing one) and exist (`400 trigger /ns/t does not
//!   exist`, `400 action /ns/a does not exist`); the action may be reached through a package,
//!   a binding, or a published foreign package. A new rule is `active`; an update keeps the
//!   status, and moves the link when the trigger changes. The rule document is written first
//!   (at the revision read, so two writers of one rule cannot both win), then the link; a
//!   link that cannot be made (the trigger was deleted meanwhile) removes the rule just
//!   created again, so nothing is half-created.
//! * `POST` `{"status": "active" | "inactive"}` sets the status: `200` with an empty body
//!   (also when the status is already the one asked); `404 Only rules with existing triggers
//!   can be activated` when the trigger is gone.
//! * `DELETE` unlinks the rule from its trigger, deletes it, and answers it with status
//!   `inactive`.

use axum::body::Body;
use axum::extract::{Path, Request, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use faas_core::entity::{EntityRef, ReducedRule, Rule, RulePut, Trigger, rule_status};
use faas_core::store::Versioned;
use faas_core::{Entity, EntityKind, EntityName, EntityPath, Error, FullyQualifiedName, Identity};

use super::listing;
use super::query::QueryParams;
use super::{Caller, State, json, read_body};
use crate::engine::Engine;
use crate::engine::entitlement::{Collection, Privilege, Resource};
use crate::engine::rules as links;
use crate::error::ApiError;

const COLLECTION: &str = "rules";

/// `404` for enabling or disabling a rule whose trigger is gone.
pub(crate) const TRIGGER_GONE: &str = "Only rules with existing triggers can be activated";

fn rule_fqn(namespace: &EntityName, name: &str) -> Result<FullyQualifiedName, ApiError> {
    Ok(FullyQualifiedName::new(
        EntityPath::namespace(namespace),
        EntityName::new(name)?,
    ))
}

fn resource(fqn: &FullyQualifiedName) -> Resource {
    Resource::entity(fqn.path.clone(), Collection::Rules, fqn.name.as_str())
}

/// Reads trigger `fqn`, or `None` when it is missing or another kind of document (OpenWhisk's
/// `getTrigger`).
async fn trigger_of(
    engine: &Engine,
    fqn: &FullyQualifiedName,
) -> Result<Option<Trigger>, ApiError> {
    match engine.store().get_entity(fqn).await {
        Ok(Versioned {
            value: Entity::Trigger(t),
            ..
        }) => Ok(Some(t)),
        Ok(_) | Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The rule's status as its trigger records it.
async fn status_of(engine: &Engine, rule: &Rule) -> Result<String, ApiError> {
    let id = rule.fqn().doc_id();
    Ok(trigger_of(engine, &rule.trigger.fqn())
        .await?
        .map_or(rule_status::INACTIVE.to_string(), |t| {
            t.rule_status(&id).to_string()
        }))
}

/// Reads rule `fqn` (`404` when missing, `409` when another kind of entity).
async fn read_rule(
    engine: &Engine,
    fqn: &FullyQualifiedName,
) -> Result<(Rule, faas_core::store::Revision), ApiError> {
    let Versioned { value, rev } = engine.store().get_entity(fqn).await?;
    match value {
        Entity::Rule(r) => Ok((r, rev)),
        _ => Err(Error::WrongCollection { id: fqn.doc_id() }.into()),
    }
}

/// `GET /namespaces/{ns}/rules` (`skip`, `limit`, `count`).
pub(crate) async fn list(
    AxState(engine): State,
    Path(ns): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let path = listing::readable(&engine, &caller, &ns, Collection::Rules).await?;
    let q = QueryParams::parse(req.uri().query());
    listing::page(&engine, &path, EntityKind::Rule, COLLECTION, &q, |e| {
        e.as_rule().is_some().then(|| e.to_api_json())
    })
    .await
}

/// `GET /namespaces/{ns}/rules/{name}`: the rule with its status.
pub(crate) async fn get(
    AxState(engine): State,
    Path((ns, name)): Path<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let fqn = rule_fqn(&caller.namespace(&ns)?, &name)?;
    caller
        .check(&engine, Privilege::Read, &resource(&fqn))
        .await?;
    let (rule, _) = read_rule(&engine, &fqn).await?;
    let status = status_of(&engine, &rule).await?;
    Ok(json(StatusCode::OK, &rule.with_status(&status)))
}

/// The `400` for a reference that does not resolve.
fn missing(what: &str, r: &EntityRef) -> ApiError {
    ApiError::bad_request(format!("{what} /{r} does not exist"))
}

/// Checks that `user` may read the trigger and the action (the one entitlement check, both
/// denied resources named in one `403`), and that both exist.
async fn check_references(
    engine: &Engine,
    user: &Identity,
    trigger: &EntityRef,
    action: &EntityRef,
) -> Result<(), ApiError> {
    let resources = [
        Resource::entity(
            trigger.path.clone(),
            Collection::Triggers,
            trigger.name.as_str(),
        ),
        Resource::action(&action.fqn()),
    ];
    match engine
        .entitlement()
        .check_all(user, Privilege::Read, &resources)
        .await
    {
        Ok(()) => {}
        // The caller's own package that is missing (or is no package): the action does not
        // exist.
        Err(Error::NotFound { .. } | Error::WrongCollection { .. }) => {
            return Err(missing("action", action));
        }
        Err(e) => return Err(e.into()),
    }
    match engine.store().get_entity(&trigger.fqn()).await {
        Ok(Versioned {
            value: Entity::Trigger(_),
            ..
        }) => {}
        // OpenWhisk reads another kind of document as a corrupted trigger.
        Ok(_) => {
            return Err(ApiError::bad_request(format!(
                "trigger /{trigger} is corrupted"
            )));
        }
        Err(Error::NotFound { .. }) => return Err(missing("trigger", trigger)),
        Err(e) => return Err(e.into()),
    }
    match engine
        .resolve_action(user, &action.fqn(), Privilege::Read)
        .await
    {
        Ok(_) => Ok(()),
        Err(Error::NotFound { .. }) => Err(missing("action", action)),
        Err(Error::WrongCollection { .. }) => Err(ApiError::bad_request(format!(
            "action /{action} is corrupted"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `PUT /namespaces/{ns}/rules/{name}` (`overwrite=true` to update).
pub(crate) async fn put(
    AxState(engine): State,
    Path((ns, name)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = Caller::take(&mut parts.extensions)?;
    let namespace = caller.namespace(&ns)?;
    let fqn = rule_fqn(&namespace, &name)?;
    caller
        .check(&engine, Privilege::Put, &resource(&fqn))
        .await?;
    let overwrite = QueryParams::parse(parts.uri.query()).boolean("overwrite", false)?;
    let bytes = read_body(body, &parts.headers, engine.config().max_request_bytes()).await?;
    let content: RulePut = serde_json::from_slice(&bytes).map_err(Error::from)?;
    drop(bytes);
    let (trigger_ref, action_ref) = content.references(namespace.as_str())?;
    let existing = match engine.store().get_entity(&fqn).await {
        Ok(Versioned {
            value: Entity::Rule(r),
            rev,
        }) => {
            if !overwrite {
                return Err(Error::AlreadyExists { id: fqn.doc_id() }.into());
            }
            Some((r, rev))
        }
        Ok(_) => return Err(Error::WrongCollection { id: fqn.doc_id() }.into()),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let sys = &engine.config().limits;
    let rule = content.into_rule(
        &fqn,
        trigger_ref,
        action_ref,
        existing.as_ref().map(|(r, _)| r),
        sys,
    )?;
    check_references(&engine, &caller.identity, &rule.trigger, &rule.action).await?;
    let rule_id = fqn.doc_id();
    let store = engine.store().as_ref();
    let entity = Entity::Rule(rule.clone());
    let trigger_fqn = rule.trigger.fqn();
    let linked = match existing {
        None => {
            store.put_entity(&entity, None).await?;
            let link = ReducedRule {
                action: rule.action.clone(),
                status: rule_status::ACTIVE.into(),
            };
            match links::link(store, &trigger_fqn, &rule_id, link).await {
                Ok(t) => t,
                Err(e) => {
                    // Nothing half-created: the rule goes again.
                    if let Ok(v) = store.get_entity(&fqn).await
                        && let Err(de) = store.delete_entity(&fqn, &v.rev).await
                    {
                        tracing::warn!(error = %faas_core::Chain(&de), rule = %rule_id, "removing a rule whose link failed failed");
                    }
                    return Err(match e {
                        Error::NotFound { .. } | Error::WrongCollection { .. } => {
                            missing("trigger", &rule.trigger)
                        }
                        other => other.into(),
                    });
                }
            }
        }
        Some((old, rev)) => {
            let old_trigger = old.trigger.fqn();
            let status = trigger_of(&engine, &old_trigger)
                .await?
                .map_or(rule_status::INACTIVE.to_string(), |t| {
                    t.rule_status(&rule_id).to_string()
                });
            store.put_entity(&entity, Some(&rev)).await?;
            if old_trigger != trigger_fqn {
                links::unlink(store, &old_trigger, &rule_id).await?;
            }
            let link = ReducedRule {
                action: rule.action.clone(),
                status,
            };
            match links::link(store, &trigger_fqn, &rule_id, link).await {
                Ok(t) => t,
                Err(Error::NotFound { .. } | Error::WrongCollection { .. }) => {
                    return Err(missing("trigger", &rule.trigger));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let status = linked.rule_status(&rule_id).to_string();
    Ok(json(StatusCode::OK, &rule.with_status(&status)))
}

/// Reads `{"status": "active" | "inactive"}` with OpenWhisk's messages.
fn requested_status(bytes: &[u8]) -> Result<&'static str, ApiError> {
    let malformed =
        |m: &str| ApiError::bad_request(format!("The request content was malformed:\n{m}"));
    let v: Value = serde_json::from_slice(bytes).map_err(Error::from)?;
    let Some(s) = v.get("status") else {
        return Err(malformed("key not found: status"));
    };
    let Some(s) = s.as_str() else {
        return Err(malformed("expected a string for status"));
    };
    match s {
        rule_status::ACTIVE => Ok(rule_status::ACTIVE),
        rule_status::INACTIVE => Ok(rule_status::INACTIVE),
        other => Err(malformed(&format!(
            "'{other}' is not a recognized rule state, must be one of ['{}', '{}']",
            rule_status::ACTIVE,
            rule_status::INACTIVE
        ))),
    }
}

/// `POST /namespaces/{ns}/rules/{name}` `{"status": …}`: enables or disables the rule.
pub(crate) async fn set_status(
    AxState(engine): State,
    Path((ns, name)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = Caller::take(&mut parts.extensions)?;
    let fqn = rule_fqn(&caller.namespace(&ns)?, &name)?;
    caller
        .check(&engine, Privilege::Activate, &resource(&fqn))
        .await?;
    let bytes = read_body(body, &parts.headers, engine.config().max_request_bytes()).await?;
    let wanted = requested_status(&bytes)?;
    let (rule, _) = read_rule(&engine, &fqn).await?;
    let rule_id = fqn.doc_id();
    let link = ReducedRule {
        action: rule.action.clone(),
        status: wanted.into(),
    };
    let changed = links::update_trigger(engine.store().as_ref(), &rule.trigger.fqn(), |t| {
        if t.rule_status(&rule_id) == wanted {
            return Ok(false);
        }
        t.add_rule(rule_id.as_str(), link.clone());
        Ok(true)
    })
    .await;
    match changed {
        Ok(_) => {
            let mut res = Response::new(Body::empty());
            *res.status_mut() = StatusCode::OK;
            Ok(res)
        }
        Err(Error::NotFound { .. } | Error::WrongCollection { .. }) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, TRIGGER_GONE))
        }
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /namespaces/{ns}/rules/{name}`: answers the deleted rule, `inactive`.
pub(crate) async fn delete(
    AxState(engine): State,
    Path((ns, name)): Path<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let fqn = rule_fqn(&caller.namespace(&ns)?, &name)?;
    caller
        .check(&engine, Privilege::Delete, &resource(&fqn))
        .await?;
    let (rule, rev) = read_rule(&engine, &fqn).await?;
    let store = engine.store().as_ref();
    links::unlink(store, &rule.trigger.fqn(), &fqn.doc_id()).await?;
    store.delete_entity(&fqn, &rev).await?;
    Ok(json(
        StatusCode::OK,
        &rule.with_status(rule_status::INACTIVE),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_requests() {
        assert_eq!(
            requested_status(br#"{"status":"active"}"#).unwrap(),
            "active"
        );
        assert_eq!(
            requested_status(br#"{"status":"inactive"}"#).unwrap(),
            "inactive"
        );
        let e = requested_status(br#"{"status":"on"}"#).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message(),
            "The request content was malformed:\n'on' is not a recognized rule state, must be one of ['active', 'inactive']"
        );
        assert_eq!(
            requested_status(b"{}").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            requested_status(b"").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
