//! Trigger fires: accept a fire, make it durable on the bus, and activate its rules.
//!
//! A fire ([`Engine::fire`]) is checked and accepted on the request path: the namespace's
//! `firesPerMinute` throttle, the one entitlement check (only the owner may fire a trigger),
//! the trigger read. A trigger without an active rule answers [`FireOutcome::NoActiveRules`]
//! (OpenWhisk's 204: no activation, no record). Otherwise the fire gets its activation id and
//! is **published on the `triggerFires` topic before it is answered**: the 202 means the fire
//! is on the bus (durably, on Kafka), not merely in this process.
//!
//! Every controller consumes `triggerFires` in one consumer group, so each fire is processed
//! by one controller, usually the one that accepted it. Processing a fire:
//!
//! 1. skip it if its trigger activation record exists already (it was processed before: a
//!    redelivery after a crash between storing the record and committing);
//! 2. invoke the action of every active rule through [`Engine::invoke`], as the identity that
//!    fired, non-blocking, with the action's own throttles, with the trigger's parameters under
//!    the request's `__ow_headers` and the fire's payload (payload wins); each rule's action
//!    activation id is derived from the fire's id and the rule's name, so a fire processed
//!    again dispatches the same ids; for a fire the bus flags as redelivered, a rule whose
//!    activation record exists is not invoked again (the invoker looks for records only of
//!    redelivered messages, and a re-published activation is a new message), and the store
//!    (first write wins) keeps one record of each;
//! 3. store the trigger's activation record: `end` 0, the fire's payload as its result, and one
//!    log line per rule of the trigger, exactly as OpenWhisk writes them
//!    (`{"statusCode":0,"success":true,"activationId":…,"rule":"ns/r","action":"ns/a"}`, or
//!    `"error"` instead of `activationId`; status 1 for a refusal such as a missing action or a
//!    throttle, 3 for a platform failure; inactive rules are listed with OpenWhisk's
//!    `Rule '…' is inactive, action '…' was not activated.`);
//! 4. commit the message.
//!
//! A failing rule does not stop the others (they run concurrently, each with its own
//! outcome). A controller that dies after the 202 and before step 4 leaves the message
//! uncommitted: the bus delivers it again to another member of the group (or to the restarted
//! controller), which finishes the work with the same ids (at least once, kept once).
//!
//! OpenWhisk re-posts each rule's invoke to its own REST API over HTTP and writes the trigger
//! record from the controller that took the fire, after the 202 (`Triggers.scala`); a
//! controller crash there loses the rule activations.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use backon::Retryable;
use bytes::Bytes;
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use faas_core::activation::ActivationResponse;
use faas_core::bus::{Consumer, Delivery, TopicConfig};
use faas_core::entity::{Entity, EntityRef, ReducedRule, now_ms};
use faas_core::message::TransactionId;
use faas_core::params::{Annotations, Parameters, SemVer};
use faas_core::{
    Activation, ActivationId, EntityPath, Error, FullyQualifiedName, Identity, Result,
};

use super::entitlement::{Collection, Privilege, Resource};
use super::{Engine, Inner, InvokeRequest, RECEIVE_RETRY, throttle};
use crate::error::{ApiError, messages};

/// The topic fires travel on between the controller that accepts them and the one that
/// processes them.
pub const TRIGGER_FIRES_TOPIC: &str = "triggerFires";

/// The consumer group every controller joins on [`TRIGGER_FIRES_TOPIC`].
pub const TRIGGER_FIRES_GROUP: &str = "triggerFires";

/// Fires processed at once by one controller.
const MAX_CONCURRENT_FIRES: usize = 64;

/// How long storing a trigger record is tried before the fire is given up (and committed).
const RECORD_RETRY: Duration = Duration::from_secs(60);

/// The pauses between attempts to store a trigger record: 50 ms doubling to 5 s, within
/// [`RECORD_RETRY`].
const RECORD_BACKOFF: backon::ExponentialBuilder = backon::ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(50))
    .with_max_delay(Duration::from_secs(5))
    .without_max_times();

/// A trigger fire to make.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FireRequest {
    /// The trigger, `ns/name`; a namespace `_` means the caller's.
    pub trigger: FullyQualifiedName,
    /// The payload (an object), or nothing.
    pub payload: Option<Value>,
    /// The request's headers, passed to the rules' actions as `__ow_headers` (OpenWhisk
    /// passes the fire request's headers).
    pub headers: Map<String, Value>,
    /// The transaction the fire belongs to.
    pub transid: TransactionId,
    /// The activation id to use instead of a fresh one (the alarms provider derives it from
    /// the alarm and the tick, so a tick fired twice keeps one activation).
    pub activation_id: Option<ActivationId>,
    /// Whether the namespace's `firesPerMinute` applies.
    pub throttle: bool,
}

impl FireRequest {
    /// A throttled fire of `trigger` without payload or headers.
    pub fn new(trigger: FullyQualifiedName) -> Self {
        Self {
            trigger,
            payload: None,
            headers: Map::new(),
            transid: TransactionId::new(crate::layers::request_id::generate_id()),
            activation_id: None,
            throttle: true,
        }
    }
    /// With a payload (`null` counts as none).
    pub fn with_payload(mut self, payload: Option<Value>) -> Self {
        self.payload = payload.filter(|p| !p.is_null());
        self
    }
    /// With the request's headers (passed on as `__ow_headers`).
    pub fn with_headers(mut self, headers: Map<String, Value>) -> Self {
        self.headers = headers;
        self
    }
    /// Part of transaction `transid`.
    pub fn with_transid(mut self, transid: TransactionId) -> Self {
        self.transid = transid;
        self
    }
    /// With activation id `id`.
    pub fn with_activation_id(mut self, id: ActivationId) -> Self {
        self.activation_id = Some(id);
        self
    }
}

/// How a fire was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireOutcome {
    /// The trigger has no active rule: nothing is run and no record is written (204).
    NoActiveRules,
    /// Accepted (on the bus): the trigger activation's id (202).
    Accepted(ActivationId),
}

/// A fire on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FireMessage {
    pub(crate) transid: TransactionId,
    /// Who fired (the rules' actions run as this identity).
    pub(crate) user: Identity,
    pub(crate) trigger: EntityRef,
    pub(crate) version: SemVer,
    pub(crate) activation_id: ActivationId,
    /// When the fire was accepted, epoch ms (the record's `start`).
    pub(crate) start: u64,
    /// The trigger's parameters when it was fired.
    #[serde(default)]
    pub(crate) parameters: Parameters,
    /// The fire's payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<Value>,
    /// `__ow_headers`.
    #[serde(default)]
    pub(crate) headers: Map<String, Value>,
    /// The trigger's rules when it was fired (inactive ones too: they are logged).
    pub(crate) rules: BTreeMap<String, ReducedRule>,
}

impl FireMessage {
    /// The arguments of every rule's action: the trigger's parameters under
    /// `{"__ow_headers": …}` and the payload (payload wins), OpenWhisk's merge.
    pub(crate) fn args(&self) -> Value {
        let mut args = self.parameters.to_object();
        args.insert("__ow_headers".into(), Value::Object(self.headers.clone()));
        if let Some(Value::Object(p)) = &self.payload {
            args.extend(p.clone());
        }
        Value::Object(args)
    }
}

/// The fires one controller is processing (so a copy of a fire delivered while the first is
/// still in progress waits for it instead of running alongside), and the bound on them.
#[derive(Debug)]
pub(crate) struct FireState {
    in_flight: Mutex<HashMap<ActivationId, Arc<Notify>>>,
    permits: Arc<Semaphore>,
}

impl Default for FireState {
    fn default() -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_FIRES)),
        }
    }
}

/// A fire being processed by this controller; done when dropped.
struct InFlight<'a> {
    state: &'a FireState,
    id: ActivationId,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut map = self
            .state
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.remove(&self.id) {
            n.notify_waiters();
        }
    }
}

impl FireState {
    /// Takes fire `id` for processing, waiting while this controller processes it already.
    async fn claim(&self, id: &ActivationId) -> InFlight<'_> {
        loop {
            let notify = {
                let mut map = self
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                match map.get(id) {
                    Some(n) => Arc::clone(n),
                    None => {
                        map.insert(id.clone(), Arc::new(Notify::new()));
                        return InFlight {
                            state: self,
                            id: id.clone(),
                        };
                    }
                }
            };
            let notified = notify.notified();
            // The holder may have finished between the lock and here: look again after a
            // bounded wait rather than trusting the notification alone.
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }
}

/// The id of rule `rule_id`'s action activation for trigger activation `fire`: the same for
/// every processing of one fire (a name-based UUID, RFC 4122 version 5, of both ids).
pub fn rule_activation_id(fire: &ActivationId, rule_id: &str) -> ActivationId {
    derived_id(&format!("rule\n{fire}\n{rule_id}"))
}

/// A name-based activation id (32 lowercase hex digits of a version-5 UUID of `name`).
pub(crate) fn derived_id(name: &str) -> ActivationId {
    // A fixed namespace for faas's derived ids (itself a version-5 UUID of "faas").
    const FAAS: uuid::Uuid = uuid::Uuid::from_u128(0x7f0e_1f6a_0c3e_5b8e_9a41_2d5c_6e1f_0a77);
    let id = uuid::Uuid::new_v5(&FAAS, name.as_bytes());
    ActivationId::parse(&id.simple().to_string()).unwrap_or_else(|_| ActivationId::generate())
}

impl Engine {
    /// Fires a trigger for `user` (see the [module documentation](self)).
    ///
    /// # Errors
    ///
    /// OpenWhisk's answers: `TooManyRequests` (`firesPerMinute`), `Forbidden` (another
    /// namespace's trigger, exactly as for a missing one), `NotFound`, `WrongCollection`,
    /// `Unavailable` (the bus refused the fire), `TooLarge`.
    pub async fn fire(&self, user: Identity, req: FireRequest) -> Result<FireOutcome> {
        let s = &self.inner;
        if req.throttle {
            let sys = &s.config.limits;
            let per_minute = throttle::share(
                user.limits.fires_per_minute.unwrap_or(sys.fires_per_minute),
                s.config.cluster_size,
            );
            let admitted =
                s.throttles
                    .admit_fire(user.namespace.name.as_str(), per_minute, now_ms() / 60_000);
            if admitted.is_err() {
                s.metrics.record(faas_core::metrics::Event::Throttled {
                    namespace: user.namespace.name.as_str(),
                    limit: "TimedFireLimit",
                });
                // OpenWhisk's trigger throttle is a `RateThrottler`: its limit name is
                // `TimedRateLimit` too.
                s.publish_limit_event(&user, "TimedRateLimit");
            }
            admitted?;
        }
        let fqn = super::qualify(&user, req.trigger)?;
        self.entitlement()
            .check(
                &user,
                Privilege::Activate,
                &Resource::entity(fqn.path.clone(), Collection::Triggers, fqn.name.as_str()),
            )
            .await?;
        let trigger = match s.store.get_entity(&fqn).await?.value {
            Entity::Trigger(t) => t,
            _ => return Err(Error::WrongCollection { id: fqn.doc_id() }),
        };
        if !trigger.has_active_rule() {
            return Ok(FireOutcome::NoActiveRules);
        }
        let id = req.activation_id.unwrap_or_else(ActivationId::generate);
        let msg = FireMessage {
            transid: req.transid,
            user,
            trigger: EntityRef::of(&fqn),
            version: trigger.version,
            activation_id: id.clone(),
            start: now_ms(),
            parameters: trigger.parameters,
            payload: req.payload,
            headers: req.headers,
            rules: trigger.rules.unwrap_or_default(),
        };
        let bytes = serde_json::to_vec(&msg)
            .map_err(|e| Error::internal(format!("cannot encode a fire: {e}")))?;
        s.bus
            .publish(
                TRIGGER_FIRES_TOPIC,
                Some(fqn.doc_id().as_bytes()),
                Bytes::from(bytes),
            )
            .await
            .map_err(|e| match e {
                Error::TooLarge { .. } => Error::too_large("The request content was too large."),
                other => other,
            })?;
        Ok(FireOutcome::Accepted(id))
    }
}

/// Creates `triggerFires` if missing, joins its group and spawns the consumer.
pub(crate) async fn start(s: &Arc<Inner>) -> Result<Vec<JoinHandle<()>>> {
    let limits = &s.config.limits;
    // Parameters and payload, plus room for the headers, the identity and the rules.
    let max = limits
        .max_payload_bytes
        .saturating_add(limits.max_parameter_bytes)
        .saturating_add(1024 * 1024);
    let config =
        TopicConfig::default().with_max_message_bytes(usize::try_from(max).unwrap_or(usize::MAX));
    s.bus.create_topic(TRIGGER_FIRES_TOPIC, &config).await?;
    let consumer = s
        .bus
        .subscribe(TRIGGER_FIRES_TOPIC, TRIGGER_FIRES_GROUP)
        .await?;
    Ok(vec![tokio::spawn(consume(Arc::downgrade(s), consumer))])
}

/// Receives fires until the engine is gone, processing up to [`MAX_CONCURRENT_FIRES`] at once;
/// each is committed when processed.
async fn consume(shared: Weak<Inner>, consumer: Arc<dyn Consumer>) {
    loop {
        let permits = match shared.upgrade() {
            Some(s) => Arc::clone(&s.fires.permits),
            None => return,
        };
        let Ok(permit) = permits.acquire_owned().await else {
            return;
        };
        let received = (|| consumer.recv())
            .retry(RECEIVE_RETRY)
            .when(|_| shared.strong_count() > 0)
            .notify(|e, _| {
                tracing::warn!(error = %faas_core::Chain(e), "receiving a trigger fire failed; retrying");
            })
            .await;
        // A receive fails for good only once the engine is gone.
        let Ok(delivery) = received else {
            return;
        };
        let Some(inner) = shared.upgrade() else {
            return;
        };
        let consumer = Arc::clone(&consumer);
        tokio::spawn(async move {
            let engine = Engine { inner };
            process_delivery(&engine, &delivery).await;
            drop(engine);
            if let Err(e) = consumer.commit(&delivery).await {
                tracing::warn!(error = %faas_core::Chain(&e), "committing a trigger fire failed");
            }
            drop(permit);
        });
    }
}

async fn process_delivery(engine: &Engine, delivery: &Delivery) {
    let msg: FireMessage = match serde_json::from_slice(&delivery.payload) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "skipping an undecodable trigger fire");
            return;
        }
    };
    process(engine, &msg, delivery.redelivered).await;
}

/// Processes one fire: rules, then the trigger record (see the module documentation).
/// `redelivered`: the bus flags the fire as possibly handed out before, so its rules' actions
/// may have been published already (see [`activate_rule`]).
pub(crate) async fn process(engine: &Engine, msg: &FireMessage, redelivered: bool) {
    let s = &engine.inner;
    let _claim = s.fires.claim(&msg.activation_id).await;
    let namespace = msg.user.namespace.name.clone();
    match s.store.get_activation(&namespace, &msg.activation_id).await {
        Ok(_) => {
            tracing::debug!(activation_id = %msg.activation_id, "trigger fire processed before; skipped");
            return;
        }
        Err(Error::NotFound { .. }) => {}
        Err(e) => {
            tracing::warn!(error = %faas_core::Chain(&e), activation_id = %msg.activation_id, "cannot tell whether a fire was processed; processing it");
        }
    }
    let args = msg.args();
    let lines = join_all(
        msg.rules
            .iter()
            .map(|(rule_id, rule)| activate_rule(engine, msg, rule_id, rule, &args, redelivered)),
    )
    .await;
    let record = trigger_record(msg, lines);
    if msg.user.limits.store_activations == Some(false) {
        return;
    }
    store_with_retry(engine, &record).await;
}

/// Invokes one rule's action; its log line for the trigger record.
///
/// For a fire the bus redelivers, the rule's activation (its id is derived from the fire's) may
/// have been published by the consumer that died: when its record exists, the action is not
/// invoked again. The invoker does not look for records of messages it receives for the first
/// time ([`faas_core::Delivery::redelivered`]), so this publisher must.
async fn activate_rule(
    engine: &Engine,
    msg: &FireMessage,
    rule_id: &str,
    rule: &ReducedRule,
    args: &Value,
    redelivered: bool,
) -> String {
    let action = rule.action.to_string();
    if !rule.is_active() {
        return log_line(
            1,
            Err(format!(
                "Rule '{rule_id}' is inactive, action '{action}' was not activated."
            )),
            rule_id,
            &action,
        );
    }
    let activation_id = rule_activation_id(&msg.activation_id, rule_id);
    if redelivered
        && let Ok(done) = engine
            .inner
            .store
            .get_activation(&msg.user.namespace.name, &activation_id)
            .await
    {
        return log_line(0, Ok(&done.activation_id), rule_id, &action);
    }
    let req = InvokeRequest::new(rule.action.fqn())
        .with_payload(args.clone())
        .with_transid(msg.transid.clone())
        .with_activation_id(activation_id);
    match engine.invoke(msg.user.clone(), req).await {
        Ok(outcome) => log_line(0, Ok(outcome.activation_id()), rule_id, &action),
        Err(e) => {
            let code = if e.status() >= 500 { 3 } else { 1 };
            let api = ApiError::from(e);
            let message = if code == 3 {
                messages::INTERNAL.to_string()
            } else {
                api.message().to_string()
            };
            tracing::debug!(rule = rule_id, %action, error = %api, "a trigger-fired action was not invoked");
            log_line(code, Err(message), rule_id, &action)
        }
    }
}

/// One log line of a trigger record, with OpenWhisk's fields and order.
fn log_line(
    status_code: u8,
    outcome: std::result::Result<&ActivationId, String>,
    rule: &str,
    action: &str,
) -> String {
    let q = |s: &str| Value::String(s.to_string()).to_string();
    let detail = match outcome {
        Ok(id) => format!("\"activationId\":{}", q(id.as_str())),
        Err(e) => format!("\"error\":{}", q(&e)),
    };
    format!(
        "{{\"statusCode\":{status_code},\"success\":{},{detail},\"rule\":{},\"action\":{}}}",
        status_code == 0,
        q(rule),
        q(action)
    )
}

/// The trigger's activation record (OpenWhisk's: no end, no annotations, the payload as the
/// result).
fn trigger_record(msg: &FireMessage, logs: Vec<String>) -> Activation {
    Activation {
        namespace: EntityPath::namespace(&msg.user.namespace.name),
        name: msg.trigger.name.clone(),
        subject: msg.user.subject.clone(),
        activation_id: msg.activation_id.clone(),
        start: msg.start,
        end: 0,
        duration: None,
        cause: None,
        response: ActivationResponse::success(msg.payload.clone().unwrap_or_else(|| json!({}))),
        logs,
        version: msg.version,
        publish: false,
        annotations: Annotations::new(),
    }
}

async fn store_with_retry(engine: &Engine, record: &Activation) {
    let deadline = tokio::time::Instant::now() + RECORD_RETRY;
    let stored = (|| engine.store().put_activation(record))
        .retry(RECORD_BACKOFF)
        // Retry while the next attempt still starts before the deadline.
        .adjust(|_, pause| pause.filter(|p| tokio::time::Instant::now() + *p < deadline))
        .notify(|e, _| {
            tracing::warn!(error = %faas_core::Chain(e), activation_id = %record.activation_id, "storing a trigger record failed; retrying");
        })
        .await;
    if let Err(e) = stored {
        tracing::error!(error = %faas_core::Chain(&e), activation_id = %record.activation_id, "storing a trigger record failed; giving up");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_have_openwhisks_shape() {
        let id = ActivationId::parse(&"a".repeat(32)).unwrap();
        assert_eq!(
            log_line(0, Ok(&id), "guest/r", "guest/pkg/a"),
            format!(
                r#"{{"statusCode":0,"success":true,"activationId":"{id}","rule":"guest/r","action":"guest/pkg/a"}}"#
            )
        );
        let line = log_line(1, Err("no \"such\" action".into()), "guest/r", "guest/a");
        assert_eq!(
            line,
            r#"{"statusCode":1,"success":false,"error":"no \"such\" action","rule":"guest/r","action":"guest/a"}"#
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["error"], "no \"such\" action");
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let fire = ActivationId::parse(&"0".repeat(32)).unwrap();
        let a = rule_activation_id(&fire, "guest/r1");
        assert_eq!(a, rule_activation_id(&fire, "guest/r1"));
        assert_ne!(a, rule_activation_id(&fire, "guest/r2"));
        let other = ActivationId::parse(&"1".repeat(32)).unwrap();
        assert_ne!(a, rule_activation_id(&other, "guest/r1"));
        assert_eq!(a.as_str().len(), 32);
    }

    #[test]
    fn args_merge_parameters_headers_payload() {
        let msg = FireMessage {
            transid: TransactionId::new("t"),
            user: serde_json::from_value(json!({
                "subject": "guest", "namespace": {"name": "guest", "uuid": "u"},
                "authkey": {"api_key": "u:k"}, "rights": ["READ"]
            }))
            .unwrap(),
            trigger: EntityRef::of(&FullyQualifiedName::resolve("/guest/t", "guest").unwrap()),
            version: SemVer::default(),
            activation_id: ActivationId::generate(),
            start: 1,
            parameters: Parameters::new()
                .with("a", json!(1))
                .with("b", json!(2))
                .with("__ow_headers", json!("overridden")),
            payload: Some(json!({"b": 3, "c": 4})),
            headers: [("x-h".to_string(), json!("v"))].into_iter().collect(),
            rules: BTreeMap::new(),
        };
        assert_eq!(
            msg.args(),
            json!({"a": 1, "b": 3, "c": 4, "__ow_headers": {"x-h": "v"}})
        );
        let back: FireMessage = serde_json::from_slice(&serde_json::to_vec(&msg).unwrap()).unwrap();
        assert_eq!(back, msg);
    }
}
