//! Stopping an engine without losing what it accepted.
//!
//! 1. [`Engine::drain`]: new top-level invokes are refused (`503`); what is in flight — atomic
//!    activations in the books, sequences and compositions — may finish until a deadline
//!    (their components are still dispatched).
//! 2. The caller stops its invokers (standalone: the local one, which finishes or abandons
//!    what it runs; see `faas_exec::invoker::InvokerHandle::shutdown_within`).
//! 3. [`Engine::shutdown`]: nothing more is dispatched; every activation still in the books
//!    gets a record saying the platform shut down (OpenWhisk's record shape, a whisk internal
//!    error, written only if the id has no record yet: a record an invoker wrote stays), unless
//!    the invokers are elsewhere and will still run it ([`Unfinished::LeaveToInvokers`]); then
//!    every sequence and composition still running — left a moment to end on its own, since
//!    the components it waits for now have records — is stopped and given the same record.

use std::sync::atomic::Ordering;
use std::time::Duration;

use faas_core::activation::ActivationResponse;
use faas_core::entity::now_ms;
use faas_core::message::ActivationMessage;
use faas_core::params::Annotations;
use faas_core::{Activation, EntityPath};
use serde_json::json;

use super::Engine;
use super::running::{SHUTDOWN, write_once};

/// What [`Engine::shutdown`] does with atomic activations still in the books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unfinished {
    /// Record each as not completed: the invokers that would run them are stopped (a
    /// standalone platform's own invoker). An invoker that receives one later (redelivered
    /// from a durable bus) finds the record and does not run it.
    Record,
    /// Leave them: they wait on a durable bus for invokers that keep running (a controller of
    /// a distributed platform), which write their records.
    LeaveToInvokers,
}

/// What [`Engine::shutdown`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Atomic activations recorded as not completed.
    pub activations: usize,
    /// Sequences and compositions recorded as not completed.
    pub compositions: usize,
    /// Atomic activations left to the invokers.
    pub left: usize,
}

/// How long sequences and compositions may take to end on their own once the activations
/// they wait for are recorded.
const COMPOSITION_GRACE: Duration = Duration::from_secs(2);

impl Engine {
    /// Refuses new invokes from now on ([`Engine::invoke`] answers `503`) and waits until
    /// nothing is in flight — no atomic activation in the books, no sequence or composition
    /// running — or `until` passes. Whether everything finished.
    pub async fn drain(&self, until: tokio::time::Instant) -> bool {
        let s = &self.inner;
        s.draining.store(true, Ordering::SeqCst);
        loop {
            if s.books.len() == 0 && s.running.len() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops dispatching and ends everything still in flight with a record: every atomic
    /// activation still in the books gets a record saying the platform shut down (OpenWhisk's
    /// record shape, a whisk internal error, written only if the id has no record yet), unless
    /// `unfinished` is [`Unfinished::LeaveToInvokers`]; then every sequence and composition
    /// still running — left a moment to end on its own, since the components it waits for now
    /// have records — is stopped and given the same record. Call after
    /// [`drain`](Self::drain) and after stopping the local invoker; the engine accepts no more
    /// work afterwards.
    pub async fn shutdown(&self, unfinished: Unfinished) -> ShutdownReport {
        let s = &self.inner;
        s.draining.store(true, Ordering::SeqCst);
        s.closed.store(true, Ordering::SeqCst);
        let mut report = ShutdownReport::default();
        let now = now_ms();
        for (id, entry) in s.books.take_all() {
            if unfinished == Unfinished::LeaveToInvokers {
                report.left += 1;
                s.finish(entry, None);
                continue;
            }
            match serde_json::from_slice::<ActivationMessage>(&entry.message) {
                Ok(msg) if msg.user.limits.store_activations != Some(false) => {
                    if write_once(s, &shutdown_record(&msg, now)).await {
                        report.activations += 1;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(activation_id = %id, error = %e, "cannot decode a booked activation at shutdown");
                }
            }
            // Dropping the entry wakes a sequence or composition waiting for it: it reads the
            // record just written.
            s.finish(entry, None);
        }
        report.compositions = s.shut_compositions(COMPOSITION_GRACE).await;
        if report.activations + report.compositions + report.left > 0 {
            tracing::warn!(
                activations = report.activations,
                compositions = report.compositions,
                left_to_invokers = report.left,
                "shutdown: activations not completed were recorded as such"
            );
        }
        report
    }
}

/// The record of an atomic activation that did not complete before shutdown, in the shape of
/// an invoker's record for an activation that never reached a container.
fn shutdown_record(msg: &ActivationMessage, now: u64) -> Activation {
    let mut annotations = Annotations::new()
        .with(
            "path",
            json!(format!("{}/{}", msg.action.path, msg.action.name)),
        )
        .with("kind", json!("unknown"))
        .with("waitTime", json!(now.saturating_sub(msg.transid.start)));
    if msg.cause.is_some() {
        annotations.set("causedBy", json!("sequence"));
    }
    if let Some(b) = &msg.action.binding {
        annotations.set("binding", json!(b.to_string()));
    }
    Activation {
        namespace: EntityPath::namespace(&msg.user.namespace.name),
        name: msg.action.name.clone(),
        subject: msg.user.subject.clone(),
        activation_id: msg.activation_id.clone(),
        start: now,
        end: now,
        duration: Some(0),
        cause: msg.cause.clone(),
        response: ActivationResponse::whisk_error(SHUTDOWN),
        logs: Vec::new(),
        version: msg.action.version,
        publish: false,
        annotations,
    }
}
