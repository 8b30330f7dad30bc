//! The invoker: a tower [`Service`](tower::Service) that runs one
//! [`ActivationMessage`](faas_core::message::ActivationMessage) to its
//! [`Activation`](faas_core::activation::Activation) record, and the loop that feeds it from the
//! bus and pings `health` (OpenWhisk's
//! [`InvokerReactive`](https://github.com/apache/openwhisk/blob/master/core/invoker/src/main/scala/org/apache/openwhisk/core/invoker/InvokerReactive.scala)
//! and
//! [`ContainerProxy`](https://github.com/apache/openwhisk/blob/master/core/invoker/src/main/scala/org/apache/openwhisk/core/containerpool/ContainerProxy.scala)).
//!
//! # Per message ([`InvokerService`])
//!
//! 1. Fetch the action (`store.get_entity`): from a small cache when the message names the
//!    revision the cache holds, else the latest (a message naming another revision runs the
//!    latest, as OpenWhisk does after a revision mismatch). Missing → application error
//!    `Action could not be found or may have been deleted.` (kind `unknown`, duration 0).
//! 2. Check the action's limits against the system limits (violation → application error).
//! 3. Take a container from the [`ContainerPool`]: warm, prewarmed, cold, after eviction, or
//!    after queueing until the activation's deadline (failure → whisk error `Failed to provision
//!    resources to run the action.`).
//! 4. `/init` once per container, `/run` with `deadline = now + timeout`, interpret the replies
//!    ([`crate::proxy`]).
//! 5. Acknowledge on `completed<C>` following OpenWhisk's sending rules:
//!    * blocking: a `Result` ack with the record (logs empty) right after the run, then logs are
//!      collected, the record stored, and a `Completion` ack sent;
//!    * blocking with a log limit of 0: one `Combined` ack right after the run, then the record
//!      is stored;
//!    * non-blocking: logs, record, then only a `Completion` ack;
//!    * failures before a run (missing action, limits, no container): the record is stored and
//!      one `Combined` ack sent (shrunk to the activation id for non-blocking requests).
//!
//!    A publish rejected as too large is sent again shrunk (the controller then reads the record
//!    from the store).
//!
//! # Idempotency under redelivery
//!
//! The bus delivers at least once, so a message may arrive again after its activation ran (the
//! invoker died before committing it, or a consumer was rebalanced). Before running a message
//! the bus flags as possibly redelivered ([`Delivery::redelivered`](faas_core::Delivery::redelivered)), the loop
//! looks the activation id up with `store.get_activation`: if a record exists, the action is
//! **not** run again; the existing record is acknowledged once more with a `Combined` ack (the
//! controller treats repeated acks as no-ops) and the service returns that record. Records are
//! written with `put_activation`, which keeps the first record of an id, so two concurrent
//! deliveries cannot overwrite each other. A message whose run started but whose record was never
//! written (the invoker died mid-run) runs again: that is the at-least-once window. Namespaces
//! that do not store activations (`storeActivations: false`) get no such check.
//!
//! Messages the bus delivers for the first time are run without the lookup: the normal path
//! reads nothing from the store but the (cached) action. A publisher that sends an activation
//! id again as a new message (work redone after a crash) must look for its record itself
//! before publishing. [`InvokerService::invoke`], called directly, cannot know where its message
//! came from and always looks.
//!
//! # The loop ([`run_invoker`])
//!
//! Creates `invoker<N>` and `health` if missing, consumes `invoker<N>` in group `invoker<N>`,
//! runs each message in its own task (at most `user memory / 128 MB` at once) and commits the
//! delivery once the service finished (record written, completion published). Undecodable
//! messages are logged, committed and skipped. At start it sends itself a probe on
//! `invoker<N>` and pings only once it receives something (the probe or an older message),
//! so controllers send it work only when its consumer holds the partition (a consumer group
//! join takes seconds on some brokers; bounded at 30 s, then it pings anyway). Every second it publishes
//! `PingMessage{name: instance, isEnabled: true, runtimes}` on `health`, `runtimes` being the
//! executor's manifest (what this invoker can run; the controllers resolve and place kinds
//! from it).

mod ack;
mod config;
mod driver;
mod metrics;
mod record;
mod service;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use faas_core::activation::ActivationResponse;
use faas_core::entity::Action;
use faas_core::executor::{LogLine, LogStream};
use faas_core::names::FullyQualifiedName;
use faas_core::{MessageBus, Store};
use serde::Serialize;
use serde_json::Value;

use crate::pool::ContainerPool;

pub use config::InvokerConfig;
pub use driver::{InvokerHandle, run_invoker};
pub use service::InvokerService;

/// `Action could not be found or may have been deleted.`
pub const ACTION_REMOVED: &str = "Action could not be found or may have been deleted.";
/// `Action version is not compatible and cannot be invoked.`
pub const ACTION_MISMATCH: &str = "Action version is not compatible and cannot be invoked.";
/// `Action could not be fetched.`
pub const ACTION_FETCH_ERROR: &str = "Action could not be fetched.";
/// `Failed to provision resources to run the action.`
pub const RESOURCE_PROVISION_ERROR: &str = "Failed to provision resources to run the action.";
/// `There was an issue while collecting your logs. Data might be missing.`
pub const LOG_FAILURE: &str =
    "There was an issue while collecting your logs. Data might be missing.";
/// `The action did not initialize or run as expected. Log data might be missing.`
pub const LOG_WARNING_DEVELOPER_ERROR: &str =
    "The action did not initialize or run as expected. Log data might be missing.";

/// `Logs were truncated because the total bytes size exceeds the limit of N bytes.`
pub fn truncated_logs_message(limit_bytes: u64) -> String {
    format!(
        "Logs were truncated because the total bytes size exceeds the limit of {limit_bytes} bytes."
    )
}

/// An action revision with what every activation of it needs, computed once.
#[derive(Debug)]
struct CachedAction {
    action: Action,
    rev: String,
    /// `ns/[pkg/]name` (the `path` annotation).
    path: String,
    /// `/ns/[pkg/]name` (`__OW_ACTION_NAME`).
    name_slash: String,
    /// Parameters marked `init`.
    init_keys: Vec<String>,
    limits_json: Value,
}

impl CachedAction {
    fn new(action: Action, rev: String) -> Self {
        let fqn = action.fqn();
        Self {
            path: fqn.to_string(),
            name_slash: fqn.with_leading_slash(),
            init_keys: action.parameters.init_keys(),
            limits_json: serde_json::to_value(action.limits).unwrap_or(Value::Null),
            action,
            rev,
        }
    }
}

struct Inner {
    config: InvokerConfig,
    store: Arc<dyn Store>,
    bus: Arc<dyn MessageBus>,
    pool: ContainerPool,
    /// Action revisions by name; bounded, least useful evicted first (S3-FIFO).
    cache: quick_cache::sync::Cache<FullyQualifiedName, Arc<CachedAction>>,
}

fn to_bytes<T: Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// What a run attempt produced.
struct RunResult {
    response: ActivationResponse,
    timed_out: bool,
    /// Init duration, ms, when `/init` ran.
    init_ms: Option<u64>,
    start_ms: u64,
    end_ms: u64,
    wait_ms: u64,
}

fn stderr_line(message: String) -> String {
    LogLine {
        time: SystemTime::now(),
        stream: LogStream::Stderr,
        message,
    }
    .format()
}
