//! One invoke: throttle → resolve and entitle → parameters → run by kind.
//!
//! Top-level invokes come from [`Engine::invoke`]; components of sequences and compositions
//! come through [`run_component`], which resolves and entitles each of them again with the
//! invoking identity (at every nesting level: a published sequence cannot lend a caller the
//! right to run its owner's private actions).

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use faas_core::message::TransactionId;
use faas_core::params::Parameters;
use faas_core::{Action, ActivationId, Error, Exec, Identity, Result};

use super::composite::{self, Component, ComponentEnd, Composite, Counts};
use super::dispatch::Invocation;
use super::entitlement::{Privilege, Resource};
use super::throttle::Ticket;
use super::{Engine, InvokeRequest, Outcome, ResolvedAction, conductor, sequence};
use crate::error::messages;

/// The annotation that makes an action a conductor (OpenWhisk `docs/conductors.md`).
pub(crate) const CONDUCTOR: &str = "conductor";

/// The top-level invoke (see [`Engine::invoke`]).
pub(super) async fn invoke(engine: &Engine, user: Identity, req: InvokeRequest) -> Result<Outcome> {
    let ticket = admit(engine, &user, &req)?;
    let fqn = super::qualify(&user, req.action.clone())?;
    let resolved = engine
        .resolve_action(&user, &fqn, Privilege::Activate)
        .await?;
    run_resolved(engine, user, req, ticket, resolved).await
}

/// The top-level invoke of an action the caller already resolved and entitled for `user` with
/// [`Privilege::Activate`] (see [`Engine::invoke_resolved`]): throttle → run.
pub(super) async fn invoke_resolved(
    engine: &Engine,
    user: Identity,
    resolved: ResolvedAction,
    req: InvokeRequest,
) -> Result<Outcome> {
    let ticket = admit(engine, &user, &req)?;
    run_resolved(engine, user, req, ticket, resolved).await
}

/// The throttle's ticket for a top-level invoke (none when the request is not throttled).
fn admit(engine: &Engine, user: &Identity, req: &InvokeRequest) -> Result<Option<Ticket>> {
    if req.throttle {
        engine.admit(user).map(Some)
    } else {
        Ok(None)
    }
}

/// Runs a resolved and entitled action: runtime and `final` checks, then by kind.
async fn run_resolved(
    engine: &Engine,
    user: Identity,
    req: InvokeRequest,
    ticket: Option<Ticket>,
    resolved: ResolvedAction,
) -> Result<Outcome> {
    check_runnable(engine, &user, &resolved.action)?;
    if req.protect_final
        && overrides_final(&resolved.action, &resolved.parameters, req.payload.as_ref())
    {
        return Err(Error::bad_request(messages::PARAMETERS_NOT_ALLOWED));
    }
    if let Exec::Sequence { components } = &resolved.action.exec {
        // The caller must be able to activate every component (OpenWhisk checks the direct
        // ones up front; nested ones are checked again when they run).
        let resources = components
            .iter()
            .map(|c| component_fqn(&user, c).map(|f| Resource::action(&f)))
            .collect::<Result<Vec<_>>>()?;
        engine
            .entitlement()
            .check_all(&user, Privilege::Activate, &resources)
            .await?;
        return composite::invoke(engine, user, resolved, req, ticket, Composite::Sequence).await;
    }
    if is_conductor(&resolved.action) {
        return composite::invoke(engine, user, resolved, req, ticket, Composite::Conductor).await;
    }
    if let Some(native) = engine.inner.natives.get(&resolved.action.fqn()) {
        return super::native::run(engine, user, resolved, req, ticket, native).await;
    }
    let wait = req.wait;
    let activation_id = req.activation_id;
    let mut inv = atomic(
        user,
        resolved,
        req.payload,
        req.transid,
        req.blocking,
        req.cause,
        ticket,
    );
    inv.activation_id = activation_id;
    engine.inner.dispatch(inv, wait).await
}

/// Whether `action` is a conductor action (sequences never are).
pub(crate) fn is_conductor(action: &Action) -> bool {
    !matches!(action.exec, Exec::Sequence { .. }) && action.annotations.is_truthy(CONDUCTOR)
}

/// A sequence component's name (stored fully qualified; legacy `_` is the caller's).
pub(crate) fn component_fqn(
    user: &Identity,
    component: &str,
) -> Result<faas_core::FullyQualifiedName> {
    faas_core::FullyQualifiedName::resolve(component, user.namespace.name.as_str())
}

/// Refuses actions of deprecated runtimes and kinds the caller's namespace may not use.
pub(crate) fn check_runnable(engine: &Engine, user: &Identity, action: &Action) -> Result<()> {
    if let Exec::Code { kind, .. } = &action.exec
        && engine
            .runtimes()
            .resolve(kind)
            .is_ok_and(|rt| rt.deprecated)
    {
        return Err(Error::bad_request(format!(
            "The '{kind}' runtime is no longer supported. You may read and delete but not update or invoke this action."
        )));
    }
    check_kind(user, &action.exec)
}

/// Refuses kinds outside the namespace's `allowedKinds`.
pub(crate) fn check_kind(user: &Identity, exec: &Exec) -> Result<()> {
    if let Some(kinds) = &user.limits.allowed_kinds {
        let kind = exec.kind();
        if !kinds.iter().any(|k| k == kind) {
            return Err(Error::Forbidden {
                message: messages::kind_not_allowed(kind),
            });
        }
    }
    Ok(())
}

/// Payload keys that would override parameters protected by the `final` annotation.
pub(crate) fn overrides_final(
    action: &Action,
    params: &Parameters,
    payload: Option<&Value>,
) -> bool {
    let Some(Value::Object(o)) = payload else {
        return false;
    };
    if !action.annotations.is_truthy("final") {
        return false;
    }
    params
        .iter()
        .any(|p| !p.value.is_null() && o.contains_key(&p.key))
}

/// The arguments of an activation: `params ∪ payload` (payload wins) for objects, the array
/// as it is, or the parameters alone.
pub(crate) fn build_content(params: &Parameters, payload: Option<Value>) -> Value {
    match payload {
        Some(Value::Object(o)) => {
            let mut m = params.to_object();
            m.extend(o);
            Value::Object(m)
        }
        Some(other) => other,
        None => Value::Object(params.to_object()),
    }
}

/// The dispatch of an atomic action.
pub(crate) fn atomic(
    user: Identity,
    resolved: ResolvedAction,
    payload: Option<Value>,
    transid: TransactionId,
    blocking: bool,
    cause: Option<ActivationId>,
    ticket: Option<Ticket>,
) -> Invocation {
    let ResolvedAction {
        mut action,
        rev,
        parameters,
        binding,
    } = resolved;
    // The message carries the merged arguments; the action's own list is not needed.
    action.parameters = Parameters::new();
    let init_args = parameters.init_keys();
    let locked_args: Map<String, Value> = parameters
        .iter()
        .filter_map(|p| {
            p.encryption
                .as_ref()
                .map(|e| (p.key.clone(), Value::String(e.clone())))
        })
        .collect();
    Invocation {
        transid,
        user,
        action,
        revision: rev,
        binding,
        content: Some(build_content(&parameters, payload)),
        init_args,
        locked_args,
        blocking,
        cause,
        ticket,
        activation_id: None,
    }
}

/// Runs an already resolved and entitled component, blocking, caused by `c.cause`.
///
/// `in_composition` says who runs it (a composition counts a nested composition's steps in
/// its own counts; a sequence counts a nested composition as one atomic action).
pub(crate) fn run_component<'a>(
    c: Component<'a>,
    resolved: ResolvedAction,
    payload: Option<Value>,
    counts: &'a mut Counts,
    in_composition: bool,
) -> BoxFuture<'a, ComponentEnd> {
    Box::pin(async move {
        if let Err(e) = check_runnable(c.engine, c.user, &resolved.action) {
            return ComponentEnd::Failed(e);
        }
        match &resolved.action.exec {
            Exec::Sequence { .. } => {
                if in_composition {
                    counts.components += 1;
                    let mut inner = Counts::default();
                    let record = sequence::run(c.nested(resolved, payload), &mut inner).await;
                    ComponentEnd::Done(Box::new(record))
                } else {
                    let record = sequence::run(c.nested(resolved, payload), counts).await;
                    ComponentEnd::Done(Box::new(record))
                }
            }
            _ if is_conductor(&resolved.action) => {
                let record = if in_composition {
                    conductor::run(c.nested(resolved, payload), counts).await
                } else {
                    counts.atomic += 1;
                    let mut inner = Counts::default();
                    conductor::run(c.nested(resolved, payload), &mut inner).await
                };
                ComponentEnd::Done(Box::new(record))
            }
            _ => {
                if in_composition {
                    counts.components += 1;
                } else {
                    counts.atomic += 1;
                }
                let wait =
                    Duration::from_millis(resolved.action.limits.timeout) + Duration::from_secs(60);
                let inv = atomic(
                    c.user.clone(),
                    resolved,
                    payload,
                    c.transid.clone(),
                    true,
                    Some(c.cause.clone()),
                    None,
                );
                match c.engine.inner.dispatch(inv, wait).await {
                    Ok(Outcome::Completed(a)) => ComponentEnd::Done(a),
                    Ok(Outcome::Accepted(id)) => ComponentEnd::TimedOut(id),
                    Err(e) => ComponentEnd::Failed(e),
                }
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_merges_payload_over_params() {
        let params = Parameters::new().with("a", json!(1)).with("b", json!(2));
        assert_eq!(
            build_content(&params, Some(json!({"b": 3, "c": 4}))),
            json!({"a": 1, "b": 3, "c": 4})
        );
        assert_eq!(build_content(&params, Some(json!([1, 2]))), json!([1, 2]));
        assert_eq!(build_content(&params, None), json!({"a": 1, "b": 2}));
    }
}
