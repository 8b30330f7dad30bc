//! Conductor actions (OpenWhisk `docs/conductors.md`, `PrimitiveActions.scala`
//! `invokeComposition`).
//!
//! An action annotated `conductor: true` drives a composition: it runs; if its result has a
//! field `action`, the named action (resolved like a name relative to the caller's namespace,
//! and entitled with the caller's identity) is invoked with `params` (an object, or
//! `{value: params}`); its result, with the conductor's last `state` (an object, or
//! `{state: x}`) merged in, is the conductor's next input; and so on. A result without
//! `action` ends the composition with its `params` (if present) or the whole result, and the
//! conductor's status.
//!
//! Limits as OpenWhisk: at most the sequence limit of component invocations and twice that
//! plus one of conductor invocations, counted across nested compositions. Errors in a step
//! (an unparsable name, a component that is missing, one the caller may not activate, too
//! many steps) are fed back to the conductor as `{"error": ...}`; a component or conductor
//! that cannot be run, or times out, ends the composition with a whisk error.
//!
//! Every conductor and component activation is caused by the composition's activation and is
//! listed in its `logs`; the engine writes the composition's record like a sequence's, with
//! annotation `conductor: true`.

use std::time::Duration;

use serde_json::{Map, Value, json};

use faas_core::activation::ActivationResponse;
use faas_core::{Activation, ActivationId, Error, FullyQualifiedName};

use super::Outcome;
use super::composite::{
    Component, ComponentEnd, CompositeRun, Counts, RunArgs, composite_record, record_memory,
    store_record,
};
use super::entitlement::Privilege;
use super::invoke::{atomic, run_component};

/// Application error: more component or conductor invocations than allowed.
pub(crate) const TOO_LONG: &str = "Too many actions in the composition.";
const FAILURE: &str = "Activation failure during composition.";

fn timeout(id: &ActivationId) -> String {
    format!("Timeout reached when retrieving activation {id} during composition.")
}

fn invalid(value: &Value) -> String {
    format!("Failed to parse action name from json value {value} during composition.")
}

fn not_found(name: &str) -> String {
    format!("Failed to resolve action with name '{name}' during composition.")
}

fn not_accessible(name: &str) -> String {
    format!("Failed entitlement check for action with name '{name}' during composition.")
}

/// The bookkeeping of one composition (OpenWhisk's `Session`).
struct Session {
    logs: Vec<String>,
    duration: u64,
    max_memory: u64,
    state: Option<Map<String, Value>>,
}

impl Session {
    /// Accounts a finished activation of the composition.
    fn record(&mut self, a: &Activation) {
        self.logs.push(a.activation_id.to_string());
        self.duration += a.duration.unwrap_or(a.end.saturating_sub(a.start));
        if let Some(m) = record_memory(a) {
            self.max_memory = self.max_memory.max(m);
        }
    }
}

/// The object form of a result (`{}` unless it is an object).
fn result_object(a: &Activation) -> Map<String, Value> {
    match &a.response.result {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    }
}

fn boxed(v: Value, key: &str) -> Map<String, Value> {
    match v {
        Value::Object(o) => o,
        other => {
            let mut m = Map::new();
            m.insert(key.to_string(), other);
            m
        }
    }
}

fn error_payload(message: String) -> Option<Value> {
    Some(json!({ "error": message }))
}

/// Runs the composition of `conductor` as activation `id` and stores its record; returns the
/// record. `counts` is shared with enclosing compositions.
pub(crate) async fn run(run: RunArgs<'_>, counts: &mut Counts) -> Activation {
    let (start, limit) = run.begin(true);
    let RunArgs {
        engine,
        user,
        action: conductor,
        payload,
        transid,
        id,
        cause,
    } = run;
    let mut session = Session {
        logs: Vec::new(),
        duration: 0,
        max_memory: conductor.action.limits.memory,
        state: None,
    };
    let mut input = payload;
    let response = loop {
        if counts.conductors > 2 * limit {
            break ActivationResponse::application_error(json!(TOO_LONG));
        }
        // The conductor's input: an object payload with the last state merged in; anything
        // else is no input (as OpenWhisk).
        let params = match input.take() {
            Some(Value::Object(mut fields)) => {
                if let Some(state) = &session.state {
                    fields.extend(state.clone());
                }
                Some(Value::Object(fields))
            }
            _ => None,
        };
        counts.conductors += 1;
        let wait = Duration::from_millis(conductor.action.limits.timeout) + Duration::from_secs(60);
        let inv = atomic(
            user.clone(),
            conductor.clone(),
            params,
            transid.clone(),
            true,
            Some(id.clone()),
            None,
        );
        let step = match engine.inner.dispatch(inv, wait).await {
            Ok(Outcome::Completed(a)) => a,
            Ok(Outcome::Accepted(aid)) => {
                session.logs.push(aid.to_string());
                break ActivationResponse::whisk_error(timeout(&aid));
            }
            Err(e) => {
                tracing::warn!(error = %faas_core::Chain(&e), composition = %id, "a conductor invocation failed");
                break ActivationResponse::whisk_error(FAILURE);
            }
        };
        session.record(&step);
        let result = result_object(&step);
        let next_params = result.get("params").cloned().map(|p| boxed(p, "value"));
        session.state = result.get("state").cloned().map(|s| boxed(s, "state"));
        let Some(next) = result.get("action") else {
            let out = next_params.map_or_else(|| Value::Object(result.clone()), Value::Object);
            break ActivationResponse {
                status_code: step.response.status_code,
                result: Some(out),
                size: None,
            };
        };
        let fqn = match next
            .as_str()
            .map(|n| FullyQualifiedName::resolve(n, user.namespace.name.as_str()))
        {
            Some(Ok(f)) => f,
            _ => {
                input = error_payload(invalid(next));
                continue;
            }
        };
        let name = fqn.doc_id();
        if counts.components >= limit {
            input = error_payload(TOO_LONG.to_string());
            continue;
        }
        let resolved = match engine
            .resolve_action(&user, &fqn, Privilege::Activate)
            .await
        {
            Ok(r) => r,
            Err(Error::Forbidden { .. }) => {
                input = error_payload(not_accessible(&name));
                continue;
            }
            Err(_) => {
                input = error_payload(not_found(&name));
                continue;
            }
        };
        let c = Component {
            engine,
            user: &user,
            transid: &transid,
            cause: &id,
        };
        let component_payload = next_params.map(Value::Object);
        match run_component(c, resolved, component_payload, counts, true).await {
            ComponentEnd::Done(a) => {
                session.record(&a);
                input = Some(Value::Object(result_object(&a)));
            }
            ComponentEnd::TimedOut(aid) => {
                session.logs.push(aid.to_string());
                break ActivationResponse::whisk_error(timeout(&aid));
            }
            ComponentEnd::Failed(e) => {
                tracing::warn!(error = %faas_core::Chain(&e), composition = %id, "a composition component failed");
                break ActivationResponse::whisk_error(FAILURE);
            }
        }
    };
    let record = composite_record(
        &user,
        &conductor,
        CompositeRun {
            id,
            cause,
            start,
            transid_start: transid.start,
            duration: session.duration,
            max_memory: Some(session.max_memory),
            response,
            logs: session.logs,
            conductor: true,
        },
    );
    store_record(engine, &user, &record).await;
    engine.inner.running.leave(&record.activation_id).await;
    record
}
