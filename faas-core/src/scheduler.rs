//! The `Scheduler` trait: choosing an invoker for each activation, and invoker health.

use std::fmt;

use crate::Result;
use crate::message::{InvokerInstanceId, PingMessage};
use crate::names::FullyQualifiedName;

/// An invoker's health as OpenWhisk reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvokerState {
    /// Usable (`up`).
    Healthy,
    /// Too many system errors (`unhealthy`).
    Unhealthy,
    /// Too many time-outs (`unresponsive`).
    Unresponsive,
    /// No ping for 10 s, or disabled (`down`).
    Offline,
}

impl InvokerState {
    /// The text of `GET /invokers`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "up",
            Self::Unhealthy => "unhealthy",
            Self::Unresponsive => "unresponsive",
            Self::Offline => "down",
        }
    }
    /// Whether the scheduler may send work there.
    pub fn is_usable(self) -> bool {
        self == Self::Healthy
    }
}

/// An invoker and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokerHealth {
    /// The invoker.
    pub id: InvokerInstanceId,
    /// Its state.
    pub state: InvokerState,
}

/// How an activation ended, for health accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationOutcome {
    /// Completed (user errors count as success).
    Success,
    /// Completed with a platform error.
    SystemError,
    /// No completion arrived in time (forced).
    Timeout,
}

/// What to place.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleRequest<'a> {
    /// The invoking namespace.
    pub namespace: &'a str,
    /// The action.
    pub action: &'a FullyQualifiedName,
    /// Memory the activation needs, MB.
    pub memory_mb: u64,
    /// Intra-container concurrency of the action.
    pub max_concurrent: u32,
    /// Whether it is a blackbox action (uses the blackbox pool).
    pub blackbox: bool,
    /// The action's kind (a resolved kind such as `nodejs:20`, or `blackbox`): only invokers
    /// that can run it are chosen. `None` places without regard to kinds.
    pub kind: Option<&'a str>,
}

/// Places activations on invokers and tracks their health and capacity.
///
/// # Contract
///
/// * [`schedule`](Scheduler::schedule) picks a usable invoker and reserves `memory_mb` there;
///   every reservation is returned with exactly one [`release`](Scheduler::release). With no
///   usable invoker it fails with `Unavailable` (HTTP 503) and reserves nothing.
/// * An invoker whose pings report its kinds ([`PingMessage::runtimes`]) is chosen only for
///   requests whose [`kind`](ScheduleRequest::kind) it can run; one that reports none may get
///   any kind. With usable invokers but none that can run the kind, `schedule` fails with
///   `Unavailable` naming the kind.
/// * [`on_ping`](Scheduler::on_ping) registers invokers and keeps them alive; an invoker
///   without a ping for 10 s is `Offline`.
/// * [`on_outcome`](Scheduler::on_outcome) feeds the health ring buffer (OpenWhisk: more
///   than 3 of the last 10 system errors → `Unhealthy`, time-outs → `Unresponsive`).
///
/// It is synchronous and cheap: it runs on the request path.
pub trait Scheduler: fmt::Debug + Send + Sync + 'static {
    /// Chooses an invoker and reserves capacity.
    fn schedule(&self, req: &ScheduleRequest<'_>) -> Result<InvokerInstanceId>;
    /// Returns capacity reserved by `schedule`.
    fn release(
        &self,
        invoker: &InvokerInstanceId,
        memory_mb: u64,
        max_concurrent: u32,
        action: &FullyQualifiedName,
    );
    /// Records a heartbeat.
    fn on_ping(&self, ping: &PingMessage);
    /// Records how an activation on `invoker` ended.
    fn on_outcome(&self, invoker: &InvokerInstanceId, outcome: InvocationOutcome);
    /// Every known invoker and its state, by instance number.
    fn invokers(&self) -> Vec<InvokerHealth>;
}

/// `dyn Scheduler`.
pub type DynScheduler = dyn Scheduler;
