//! Invoker health test actions (OpenWhisk's `InvokerSupervision.scala`): an invoker that is `unhealthy` or
//! `unresponsive` but still pinging gets a tiny test action, sent straight to `invoker<N>`
//! (outside the scheduler's books). Its successful completion counts as a success in the
//! invoker's health ring buffer, so the invoker recovers without a restart.
//!
//! As in OpenWhisk: a test is sent on entering the state, then every
//! [`ControllerConfig::health_test_interval`](crate::ControllerConfig), and again right after
//! each successful test while the invoker is still not usable.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use faas_core::entity::{Action, ActionPut, Entity};
use faas_core::identity::{AuthKey, Identity, Namespace};
use faas_core::message::{
    ActionRef, ActivationMessage, InvokerInstanceId, TransactionId, invoker_topic,
};
use faas_core::names::{EntityName, EntityPath, FullyQualifiedName};
use faas_core::scheduler::{InvocationOutcome, InvokerState};
use faas_core::{ActivationId, Error, Result};

use super::Inner;

/// The namespace of the test action.
pub(crate) const SYSTEM_NAMESPACE: &str = "whisk.system";

/// Test activations in flight and when each invoker was last tested.
#[derive(Debug, Default)]
pub(crate) struct HealthTests {
    // std Mutex: short critical sections, never held across an await.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    in_flight: HashMap<ActivationId, InvokerInstanceId>,
    last_sent: HashMap<u32, Instant>,
}

impl HealthTests {
    /// Takes the test activation `id` out of the books, returning its invoker.
    pub(crate) fn take(&self, id: &ActivationId) -> Option<InvokerInstanceId> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_flight
            .remove(id)
    }

    fn due(&self, invoker: u32, every: Duration, now: Instant) -> bool {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.last_sent
            .get(&invoker)
            .is_none_or(|t| now.duration_since(*t) >= every)
    }

    fn sent(&self, id: ActivationId, invoker: InvokerInstanceId, now: Instant) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.last_sent.insert(invoker.instance, now);
        st.in_flight.insert(id, invoker);
    }

    fn forget(&self, invoker: u32) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_sent
            .remove(&invoker);
    }
}

/// The test action's name for controller `id`: `invokerHealthTestAction<id>`.
pub(crate) fn test_action_fqn(controller_id: &str) -> Result<FullyQualifiedName> {
    Ok(FullyQualifiedName::new(
        EntityPath::new(SYSTEM_NAMESPACE)?,
        EntityName::new(format!("invokerHealthTestAction{controller_id}"))?,
    ))
}

/// Creates (or refreshes) the test action in the store: `function main(params) { return params; }`
/// in the default Node.js kind (else the default Python kind), 128 MB.
pub(crate) async fn upsert_test_action(shared: &Inner) -> Result<Option<Action>> {
    let fqn = test_action_fqn(&shared.config.id)?;
    let manifest = &*shared.runtimes();
    let (kind, code) = if manifest.default_kind("nodejs").is_some() {
        ("nodejs:default", "function main(params) { return params; }")
    } else if manifest.default_kind("python").is_some() {
        ("python:default", "def main(params):\n    return params\n")
    } else {
        tracing::warn!("no nodejs or python runtime: invoker health tests are disabled");
        return Ok(None);
    };
    let put: ActionPut = serde_json::from_value(serde_json::json!({
        "exec": {"kind": kind, "code": code},
        "limits": {"memory": 128},
    }))?;
    let existing = match shared.store.get_entity(&fqn).await {
        Ok(v) => Some(v),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let old = existing.as_ref().and_then(|v| v.value.as_action());
    let action = put.into_action(&fqn, old, &shared.config.limits, manifest)?;
    let rev = existing.as_ref().map(|v| &v.rev);
    match shared
        .store
        .put_entity(&Entity::Action(action.clone()), rev)
        .await
    {
        // Another controller may have written it at the same moment: theirs is as good.
        Ok(_) | Err(Error::Conflict { .. }) | Err(Error::AlreadyExists { .. }) => Ok(Some(action)),
        Err(e) => Err(e),
    }
}

/// A throw-away `whisk.system` identity, as OpenWhisk uses for its test actions.
fn system_identity() -> Result<Identity> {
    let key = AuthKey::generate();
    Ok(Identity {
        subject: SYSTEM_NAMESPACE.to_string(),
        namespace: Namespace {
            name: EntityName::new(SYSTEM_NAMESPACE)?,
            uuid: key.uuid.clone(),
        },
        authkey: key,
        rights: Identity::all_rights(),
        limits: Default::default(),
    })
}

/// Sends one test action to `invoker`.
async fn send_test(shared: &Inner, action: &Action, invoker: &InvokerInstanceId) -> Result<()> {
    let id = ActivationId::generate();
    let msg = ActivationMessage {
        transid: TransactionId::new("sid_invokerHealth"),
        action: ActionRef {
            path: action.namespace.clone(),
            name: action.name.clone(),
            version: action.version,
            binding: None,
        },
        revision: None,
        user: system_identity()?,
        activation_id: id.clone(),
        root_controller_index: shared.instance.clone(),
        blocking: false,
        content: Some(serde_json::json!({})),
        init_args: Vec::new(),
        locked_args: Default::default(),
        cause: None,
        trace_context: None,
    };
    let payload = serde_json::to_vec(&msg).map_err(|e| Error::internal(e.to_string()))?;
    shared
        .health_tests
        .sent(id, invoker.clone(), Instant::now());
    shared
        .bus
        .publish(&invoker_topic(invoker.instance), None, payload.into())
        .await
}

/// Handles a completion that was not in the books: if it is a test action's, records the
/// outcome and, after a success while the invoker is still not usable, sends the next test.
pub(crate) fn on_test_completion(shared: &Inner, id: &ActivationId, is_system_error: bool) -> bool {
    let Some(invoker) = shared.health_tests.take(id) else {
        return false;
    };
    let outcome = if is_system_error {
        InvocationOutcome::SystemError
    } else {
        InvocationOutcome::Success
    };
    shared.scheduler.on_outcome(&invoker, outcome);
    if outcome == InvocationOutcome::Success {
        let still_bad = shared
            .scheduler
            .invokers()
            .iter()
            .any(|h| h.id.instance == invoker.instance && is_testable(h.state));
        if still_bad {
            // Due at once on the next tick.
            shared.health_tests.forget(invoker.instance);
        }
    }
    true
}

fn is_testable(state: InvokerState) -> bool {
    matches!(state, InvokerState::Unhealthy | InvokerState::Unresponsive)
}

/// The loop: every `tick`, test each unhealthy or unresponsive invoker that is due.
pub(crate) async fn run(shared: Weak<Inner>, action: Action, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(s) = shared.upgrade() else {
            return;
        };
        let every = s.config.health_test_interval;
        let now = Instant::now();
        for h in s.scheduler.invokers() {
            if !is_testable(h.state) {
                if h.state != InvokerState::Offline {
                    s.health_tests.forget(h.id.instance);
                }
                continue;
            }
            if s.health_tests.due(h.id.instance, every, now)
                && let Err(e) = send_test(&s, &action, &h.id).await
            {
                tracing::warn!(invoker = h.id.instance, error = %faas_core::Chain(&e), "cannot send the health test action");
            }
        }
    }
}
