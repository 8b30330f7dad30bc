//! Sequences (§9.1): validated on `PUT`, run by the controller.
//!
//! A sequence runs its components one after another, each as an ordinary blocking dispatch
//! (waiting up to the component's timeout + 1 min) caused by the sequence's activation id.
//! Component 1 gets the request payload (the sequence's own parameters are not merged);
//! component k+1 gets the result of k if it is an object or array, else `{}`; each component
//! merges its own (and its package's) parameters as usual. The first component that does not
//! succeed ends the sequence with its response. Nested sequences are inlined when the
//! sequence starts; the total number of atomic actions is bounded by the sequence limit.
//!
//! The controller writes the sequence's record: `response` of the last component run, `logs`
//! = component activation ids, `duration` = sum of component durations, annotations `topmost`,
//! `path`, `kind: "sequence"`, `limits`. Blocking callers wait up to their `timeout` for the
//! whole sequence, else get 202 with the sequence's id while it goes on.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use serde_json::{Value, json};

use faas_core::activation::ActivationResponse;
use faas_core::entity::{Package, now_ms};
use faas_core::message::TransactionId;
use faas_core::params::{Annotations, Parameters};
use faas_core::store::{Revision, Versioned};
use faas_core::{
    Action, Activation, ActivationId, Entity, EntityName, EntityPath, Error, Exec,
    FullyQualifiedName, Identity, StatusCode,
};

use crate::controller::Shared;
use crate::dispatch::{Dispatched, Invocation};
use crate::error::ApiError;
use crate::routes::actions::{accepted_response, activation_response};
use crate::throttle::Ticket;

const TOO_LONG: &str = "Too many actions in the sequence.";
const NO_COMPONENT: &str = "No component specified for the sequence.";
const CYCLIC: &str = "Sequence may not refer to itself.";
const COMPONENT_MISSING: &str = "Sequence component does not exist.";
const FAILED: &str = "Sequence failed.";

/// One component, resolved through its package (and binding).
struct Component {
    action: Action,
    rev: Revision,
    params: Parameters,
    binding: Option<EntityPath>,
}

async fn get_package(s: &Shared, fqn: &FullyQualifiedName) -> Result<Package, Error> {
    match s.store.get_entity(fqn).await?.value {
        Entity::Package(p) => Ok(p),
        _ => Err(Error::not_found(fqn.doc_id())),
    }
}

/// Resolves `/ns[/pkg]/name` to the action it names, following a package binding.
async fn resolve(s: &Shared, reference: &str, caller_ns: &str) -> Result<Component, Error> {
    let fqn = FullyQualifiedName::resolve(reference, caller_ns)?;
    let (target, params, binding) = match fqn.path.package() {
        None => (fqn, Parameters::new(), None),
        Some(pkg) => {
            let ns = EntityPath::new(fqn.path.root())?;
            let pkg_fqn = FullyQualifiedName::new(ns.clone(), EntityName::new(pkg)?);
            let p = get_package(s, &pkg_fqn).await?;
            match &p.binding {
                None => (fqn, p.parameters, None),
                Some(b) => {
                    let bound_ns = EntityPath::namespace(&b.namespace);
                    let bound = get_package(
                        s,
                        &FullyQualifiedName::new(bound_ns.clone(), b.name.clone()),
                    )
                    .await?;
                    (
                        FullyQualifiedName::new(bound_ns.join(&b.name), fqn.name),
                        bound.parameters.merged(&p.parameters),
                        Some(fqn.path),
                    )
                }
            }
        }
    };
    let Versioned { value, rev } = s.store.get_entity(&target).await?;
    match value {
        Entity::Action(action) => Ok(Component {
            action,
            rev,
            params,
            binding,
        }),
        _ => Err(Error::not_found(target.doc_id())),
    }
}

/// Expands `components` into atomic actions (nested sequences inlined), refusing cycles
/// through `origin` and more than `limit` atomic actions.
async fn flatten(
    s: &Shared,
    origin: &FullyQualifiedName,
    components: &[String],
    limit: usize,
) -> Result<Vec<Component>, ApiError> {
    let caller_ns = origin.path.root().to_string();
    let mut out = Vec::new();
    // Depth-first with an explicit stack: (components, next index).
    let mut stack: Vec<(Vec<String>, usize)> = vec![(components.to_vec(), 0)];
    let mut expanded = 0usize;
    while let Some((list, i)) = stack.last_mut() {
        let Some(reference) = list.get(*i).cloned() else {
            stack.pop();
            continue;
        };
        *i += 1;
        let c = match resolve(s, &reference, &caller_ns).await {
            Ok(c) => c,
            Err(Error::NotFound { .. }) => return Err(ApiError::bad_request(COMPONENT_MISSING)),
            Err(e) => return Err(e.into()),
        };
        if c.action.fqn() == *origin {
            return Err(ApiError::bad_request(CYCLIC));
        }
        match &c.action.exec {
            Exec::Sequence { components } => {
                expanded += 1;
                if stack.len() > limit || expanded > limit * limit {
                    return Err(ApiError::bad_request(TOO_LONG));
                }
                if components.is_empty() {
                    continue;
                }
                stack.push((components.clone(), 0));
            }
            _ => {
                out.push(c);
                if out.len() > limit {
                    return Err(ApiError::bad_request(TOO_LONG));
                }
            }
        }
    }
    Ok(out)
}

/// Checks a sequence being stored as `fqn`: not empty, every component exists, no cycle,
/// at most the sequence limit of atomic actions.
pub(crate) async fn validate(
    s: &Shared,
    fqn: &FullyQualifiedName,
    components: &[String],
) -> Result<(), ApiError> {
    let limit = s.config.limits.sequence_max_length as usize;
    if components.is_empty() {
        return Err(ApiError::bad_request(NO_COMPONENT));
    }
    if components.len() > limit {
        return Err(ApiError::bad_request(TOO_LONG));
    }
    flatten(s, fqn, components, limit).await.map(|_| ())
}

/// An invoke of a sequence action.
#[derive(Debug)]
pub(crate) struct SequenceCall {
    pub(crate) transid: TransactionId,
    pub(crate) user: Identity,
    pub(crate) action: Action,
    pub(crate) components: Vec<String>,
    pub(crate) payload: Option<Value>,
    pub(crate) blocking: bool,
    pub(crate) result_only: bool,
    pub(crate) wait: Duration,
    pub(crate) ticket: Ticket,
}

/// Runs a sequence; answers like an invoke of an atomic action.
pub(crate) async fn invoke(s: &Arc<Shared>, call: SequenceCall) -> Result<Response, ApiError> {
    let limit = s.config.limits.sequence_max_length as usize;
    let atomic = flatten(s, &call.action.fqn(), &call.components, limit).await?;
    let id = ActivationId::generate();
    let blocking = call.blocking;
    let result_only = call.result_only;
    let wait = call.wait;
    let task = tokio::spawn(run(Arc::clone(s), id.clone(), call, atomic));
    if !blocking {
        return Ok(accepted_response(id.as_str()));
    }
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(Some(record))) => Ok(activation_response(&record, result_only)),
        Ok(Ok(None) | Err(_)) | Err(_) => Ok(accepted_response(id.as_str())),
    }
}

/// Runs the components and stores the sequence's record; returns it.
async fn run(
    s: Arc<Shared>,
    id: ActivationId,
    call: SequenceCall,
    atomic: Vec<Component>,
) -> Option<Activation> {
    let SequenceCall {
        transid,
        user,
        action,
        payload,
        ticket,
        ..
    } = call;
    let start = now_ms();
    let mut input = match payload {
        Some(v @ (Value::Object(_) | Value::Array(_))) => v,
        _ => json!({}),
    };
    let mut logs = Vec::with_capacity(atomic.len());
    let mut duration = 0u64;
    let mut response = ActivationResponse::success(json!({}));
    let mut max_memory = 0u64;
    for c in atomic {
        max_memory = max_memory.max(c.action.limits.memory);
        let wait = Duration::from_millis(c.action.limits.timeout) + Duration::from_secs(60);
        let params = c.params.merged(&c.action.parameters);
        let content = match input {
            Value::Object(o) => {
                let mut m = params.to_object();
                m.extend(o);
                Value::Object(m)
            }
            other => other,
        };
        let inv = Invocation {
            transid: transid.clone(),
            user: user.clone(),
            init_args: params.init_keys(),
            action: c.action,
            revision: c.rev,
            binding: c.binding,
            content: Some(content),
            locked_args: serde_json::Map::new(),
            blocking: true,
            cause: Some(id.clone()),
            ticket: None,
        };
        match s.dispatch(inv, wait).await {
            Ok(Dispatched::Done(a)) => {
                logs.push(a.activation_id.to_string());
                duration += a.duration.unwrap_or(a.end.saturating_sub(a.start));
                response = a.response;
                if response.status_code != StatusCode::Success {
                    break;
                }
                input = match response.result.clone() {
                    Some(v @ (Value::Object(_) | Value::Array(_))) => v,
                    _ => json!({}),
                };
            }
            Ok(Dispatched::Accepted(cid)) => {
                logs.push(cid.to_string());
                response = ActivationResponse::whisk_error(format!(
                    "Timeout reached when retrieving activation {cid} for sequence component."
                ));
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, sequence = %id, "sequence component failed");
                response = ActivationResponse::whisk_error(FAILED);
                break;
            }
        }
    }
    let mut limits = action.limits;
    if max_memory > 0 {
        limits.memory = max_memory;
    }
    let annotations = Annotations::new()
        .with("topmost", json!(true))
        .with("path", json!(action.fqn().to_string()))
        .with("kind", json!("sequence"))
        .with("limits", json!(limits))
        .with("waitTime", json!(0));
    let record = Activation {
        namespace: EntityPath::namespace(&user.namespace.name),
        name: action.name,
        subject: user.subject,
        activation_id: id,
        start,
        end: now_ms().max(start),
        duration: Some(duration),
        cause: None,
        response,
        logs,
        version: action.version,
        publish: action.publish,
        annotations,
    };
    drop(ticket);
    if user.limits.store_activations != Some(false)
        && let Err(e) = s.store.put_activation(&record).await
    {
        tracing::error!(error = %faas_core::Chain(&e), "storing a sequence record failed");
    }
    Some(record)
}
