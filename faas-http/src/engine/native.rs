//! Native actions: actions the controller answers itself instead of sending them to an
//! invoker.
//!
//! The alarms provider's feed actions (`whisk.system/alarms/alarm`, `interval`, `once`) are
//! native: OpenWhisk's versions are Node.js actions that call a web action which writes the
//! provider's database; here the provider lives in the controller, so the controller answers
//! the invoke directly. Everything before the run is the ordinary invoke path: the caller's
//! throttles, resolution through the package (and the caller's binding), the one entitlement
//! check, the parameter merge. Only the run differs: [`NativeAction::run`] gets the merged
//! arguments and the caller's identity, and the engine writes the activation record
//! (kind, path, limits annotations as for any action; logs empty).
//!
//! A native action is registered under the fully qualified name of the action document it
//! answers for ([`Engine::register_native`]); the document itself is installed like any
//! catalog action (so `GET`, listings, bindings and entitlement see it as usual). Without a
//! registration the document's own code runs on an invoker.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use faas_core::activation::ActivationResponse;
use faas_core::entity::now_ms;
use faas_core::params::Annotations;
use faas_core::{Activation, ActivationId, EntityPath, FullyQualifiedName, Identity, Result};

use super::composite::store_record;
use super::invoke::build_content;
use super::throttle::Ticket;
use super::{Engine, InvokeRequest, Outcome, ResolvedAction};

/// How a native action ended.
#[derive(Debug, Clone, PartialEq)]
pub enum NativeResult {
    /// The result (an object).
    Success(Value),
    /// An application error: the record's result is `{"error": <value>}`.
    ApplicationError(Value),
}

/// An action the controller answers itself.
#[async_trait]
pub trait NativeAction: std::fmt::Debug + Send + Sync + 'static {
    /// Runs the action for `user` with the merged arguments `args` (the action's, package and
    /// binding parameters under the payload).
    async fn run(&self, engine: &Engine, user: &Identity, args: Value) -> NativeResult;
}

/// The registered native actions.
#[derive(Debug, Default)]
pub(crate) struct Natives {
    map: RwLock<HashMap<FullyQualifiedName, Arc<dyn NativeAction>>>,
}

impl Natives {
    pub(crate) fn get(&self, fqn: &FullyQualifiedName) -> Option<Arc<dyn NativeAction>> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        if map.is_empty() {
            return None;
        }
        map.get(fqn).cloned()
    }

    fn insert(&self, fqn: FullyQualifiedName, action: Arc<dyn NativeAction>) {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(fqn, action);
    }
}

impl Engine {
    /// Answers invokes of the action stored as `fqn` (`ns/pkg/name`, as stored: not a
    /// binding's name) with `action` instead of an invoker.
    pub fn register_native(&self, fqn: FullyQualifiedName, action: Arc<dyn NativeAction>) {
        self.inner.natives.insert(fqn, action);
    }
}

/// Runs a resolved, entitled native action: blocking callers wait (up to their wait, then
/// 202 while it goes on); non-blocking ones get the id at once.
pub(super) async fn run(
    engine: &Engine,
    user: Identity,
    resolved: ResolvedAction,
    req: InvokeRequest,
    ticket: Option<Ticket>,
    native: Arc<dyn NativeAction>,
) -> Result<Outcome> {
    let id = req.activation_id.unwrap_or_else(ActivationId::generate);
    let args = build_content(&resolved.parameters, req.payload);
    let engine2 = engine.clone();
    let run_id = id.clone();
    let transid_start = req.transid.start;
    let task = tokio::spawn(async move {
        let record = execute(
            &engine2,
            &user,
            &resolved,
            args,
            run_id,
            transid_start,
            native,
        )
        .await;
        store_record(&engine2, &user, &record).await;
        drop(ticket);
        record
    });
    super::await_task(id, task, req.blocking, req.wait).await
}

async fn execute(
    engine: &Engine,
    user: &Identity,
    resolved: &ResolvedAction,
    args: Value,
    id: ActivationId,
    transid_start: u64,
    native: Arc<dyn NativeAction>,
) -> Activation {
    let a = &resolved.action;
    let start = now_ms();
    let limit = Duration::from_millis(a.limits.timeout);
    let response = match tokio::time::timeout(limit, native.run(engine, user, args)).await {
        Ok(NativeResult::Success(r)) => ActivationResponse::success(r),
        Ok(NativeResult::ApplicationError(e)) => ActivationResponse::application_error(e),
        Err(_) => ActivationResponse::developer_error(format!(
            "The action exceeded its time limits of {} milliseconds.",
            a.limits.timeout
        )),
    };
    let end = now_ms().max(start);
    let mut annotations = Annotations::new()
        .with("path", json!(a.fqn().doc_id()))
        .with("kind", json!(a.exec.kind()))
        .with("limits", json!(a.limits))
        .with("waitTime", json!(start.saturating_sub(transid_start)));
    if let Some(b) = &resolved.binding {
        annotations.set("binding", json!(b.to_string()));
    }
    Activation {
        namespace: EntityPath::namespace(&user.namespace.name),
        name: a.name.clone(),
        subject: user.subject.clone(),
        activation_id: id,
        start,
        end,
        duration: Some(end - start),
        cause: None,
        response,
        logs: Vec::new(),
        version: a.version,
        publish: false,
        annotations,
    }
}
