//! Sequences (OpenWhisk `SequenceActions.scala`): validated on `PUT`, run by the engine.
//!
//! A sequence runs its components one after another, each a blocking invoke (waiting up to
//! the component's timeout + 1 min) caused by the sequence's activation id. Component 1 gets
//! the request payload (the sequence's own parameters are not merged); component k+1 gets the
//! result of k if it is an object or array, else nothing; each component merges its own (and
//! its package's) parameters as usual. The first component that does not succeed ends the
//! sequence with its response.
//!
//! Every component is resolved and entitled with the invoking identity when it runs, at every
//! nesting level. A component that is missing or that the caller may not activate ends the
//! sequence with the application error `Sequence component does not exist.` (the same answer
//! for both). A nested sequence runs as its own activation with its own record (`cause` = the
//! enclosing sequence, annotation `causedBy: sequence`), and the atomic actions of the whole
//! tree count against the sequence limit.
//!
//! The engine writes each sequence's record: `response` of the last component run, `logs` =
//! component activation ids, `duration` = sum of component durations, annotations `topmost`,
//! `path`, `kind: "sequence"`, `waitTime`, `causedBy` (nested), `binding` (through a binding)
//! and `limits` (the sequence's, with the largest component memory).

use serde_json::{Value, json};

use faas_core::activation::ActivationResponse;
use faas_core::{Activation, Error, Exec, FullyQualifiedName, Identity, Result, StatusCode};

use super::Engine;
use super::composite::{
    Component, ComponentEnd, CompositeRun, Counts, RunArgs, composite_record, record_memory,
    store_record,
};
use super::entitlement::{Privilege, Resource};
use super::invoke::{component_fqn, run_component};

/// 400: more atomic actions than the sequence limit.
pub(crate) const TOO_LONG: &str = "Too many actions in the sequence.";
/// 400: no components.
pub(crate) const NO_COMPONENT: &str = "No component specified for the sequence.";
/// 400: the sequence names itself (directly or through nested sequences).
pub(crate) const CYCLIC: &str = "Sequence may not refer to itself.";
/// 400 on `PUT`, application error at run time: a component is missing (or not activatable).
pub(crate) const COMPONENT_MISSING: &str = "Sequence component does not exist.";
const FAILED: &str = "Sequence failed.";

/// Checks a sequence being stored as `fqn` for `user`: not empty, at most the sequence
/// limit of components, every component readable by `user` (direct ones are all named in
/// one `403`, as OpenWhisk does), every component existing, no cycle, at most the sequence
/// limit of atomic actions once nested sequences are inlined.
pub(crate) async fn validate(
    engine: &Engine,
    user: &Identity,
    fqn: &FullyQualifiedName,
    components: &[String],
) -> Result<()> {
    let limit = engine.config().limits.sequence_max_length as usize;
    if components.is_empty() {
        return Err(Error::bad_request(NO_COMPONENT));
    }
    if components.len() > limit {
        return Err(Error::bad_request(TOO_LONG));
    }
    let direct = components
        .iter()
        .map(|c| component_fqn(user, c).map(|f| Resource::action(&f)))
        .collect::<Result<Vec<_>>>()?;
    engine
        .entitlement()
        .check_all(user, Privilege::Read, &direct)
        .await?;
    // Depth first with an explicit stack of (components, next index).
    let mut stack: Vec<(Vec<String>, usize)> = vec![(components.to_vec(), 0)];
    let mut atomic = 0usize;
    let mut expanded = 0usize;
    while let Some((list, i)) = stack.last_mut() {
        let Some(reference) = list.get(*i).cloned() else {
            stack.pop();
            continue;
        };
        *i += 1;
        let c = component_fqn(user, &reference)?;
        let resolved = match engine.resolve_action(user, &c, Privilege::Read).await {
            Ok(r) => r,
            Err(Error::NotFound { .. } | Error::WrongCollection { .. }) => {
                return Err(Error::bad_request(COMPONENT_MISSING));
            }
            Err(e) => return Err(e),
        };
        if resolved.action.fqn() == *fqn {
            return Err(Error::bad_request(CYCLIC));
        }
        match &resolved.action.exec {
            Exec::Sequence { components } => {
                expanded += 1;
                if stack.len() > limit || expanded > limit * limit {
                    return Err(Error::bad_request(TOO_LONG));
                }
                if !components.is_empty() {
                    stack.push((components.clone(), 0));
                }
            }
            _ => {
                atomic += 1;
                if atomic > limit {
                    return Err(Error::bad_request(TOO_LONG));
                }
            }
        }
    }
    Ok(())
}

/// Runs sequence `seq` as activation `id` and stores its record; returns the record.
///
/// `cause` is the enclosing sequence or composition (`None` for a topmost sequence);
/// `counts.atomic` is shared with the enclosing sequences.
pub(crate) async fn run(run: RunArgs<'_>, counts: &mut Counts) -> Activation {
    let (start, limit) = run.begin(false);
    let RunArgs {
        engine,
        user,
        action: seq,
        payload,
        transid,
        id,
        cause,
    } = run;
    let components = match &seq.action.exec {
        Exec::Sequence { components } => components.clone(),
        _ => Vec::new(),
    };
    let mut input = match payload {
        Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v),
        _ => None,
    };
    let mut logs = Vec::with_capacity(components.len());
    let mut duration = 0u64;
    let mut max_memory: Option<u64> = None;
    let mut response = ActivationResponse::success(input.clone().unwrap_or_else(|| json!({})));
    for reference in &components {
        if counts.atomic >= limit {
            response = ActivationResponse::application_error(json!(TOO_LONG));
            break;
        }
        let resolved = match component_fqn(&user, reference) {
            Ok(fqn) => {
                engine
                    .resolve_action(&user, &fqn, Privilege::Activate)
                    .await
            }
            Err(e) => Err(e),
        };
        let resolved = match resolved {
            Ok(r) => r,
            Err(
                Error::NotFound { .. }
                | Error::WrongCollection { .. }
                | Error::Forbidden { .. }
                | Error::BadRequest { .. },
            ) => {
                response = ActivationResponse::application_error(json!(COMPONENT_MISSING));
                break;
            }
            Err(e) => {
                tracing::warn!(error = %faas_core::Chain(&e), sequence = %id, "resolving a sequence component failed");
                response = ActivationResponse::whisk_error(FAILED);
                break;
            }
        };
        let c = Component {
            engine,
            user: &user,
            transid: &transid,
            cause: &id,
        };
        match run_component(c, resolved, input.take(), counts, false).await {
            ComponentEnd::Done(a) => {
                logs.push(a.activation_id.to_string());
                duration += a.duration.unwrap_or(a.end.saturating_sub(a.start));
                if let Some(m) = record_memory(&a) {
                    max_memory = Some(max_memory.map_or(m, |x| x.max(m)));
                }
                response = a.response;
                if response.status_code != StatusCode::Success {
                    break;
                }
                input = match &response.result {
                    Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.clone()),
                    _ => None,
                };
            }
            ComponentEnd::TimedOut(cid) => {
                logs.push(cid.to_string());
                response = ActivationResponse::whisk_error(format!(
                    "Timeout reached when retrieving activation {cid} for sequence component."
                ));
                break;
            }
            ComponentEnd::Failed(e) => {
                tracing::warn!(error = %faas_core::Chain(&e), sequence = %id, "sequence component failed");
                response = ActivationResponse::whisk_error(FAILED);
                break;
            }
        }
    }
    let record = composite_record(
        &user,
        &seq,
        CompositeRun {
            id,
            cause,
            start,
            transid_start: transid.start,
            duration,
            max_memory,
            response,
            logs,
            conductor: false,
        },
    );
    store_record(engine, &user, &record).await;
    engine.inner.running.leave(&record.activation_id).await;
    record
}
