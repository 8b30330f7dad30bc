//! The dispatch pipeline: schedule → book → publish → (blocking) wait.
//!
//! 1. The activation message is built and serialized first, so nothing is reserved for a
//!    message that cannot be sent.
//! 2. The [`Scheduler`](faas_core::Scheduler) picks an invoker and reserves memory there
//!    (503 when none is usable).
//! 3. The activation enters the books with its forced-completion deadline and,
//!    for blocking calls, a `oneshot` the caller waits on. This happens before publishing, so
//!    no acknowledgement can arrive for an unknown activation.
//! 4. The message is published on `invoker<N>`. If that fails, the entry is taken back and
//!    the reservation released.
//! 5. Non-blocking calls return the id. Blocking calls wait, up to their `timeout`, for the
//!    result acknowledgement; if the entry completes without delivering the activation
//!    (shrunk acknowledgement), the record is read from the store; when the wait runs out the
//!    caller gets the id (202) and the activation keeps running.
//!
//! The hot path does one serialization, one scheduler call, one map insert and one publish,
//! and is woken exactly once by the acknowledgement consumer.

use std::time::Duration;

use backon::Retryable;
use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tokio::time::Instant;

use faas_core::bus::Published;
use faas_core::message::{ActionRef, ActivationMessage, TransactionId, invoker_topic};
use faas_core::scheduler::ScheduleRequest;
use faas_core::store::Revision;
use faas_core::{
    Action, Activation, ActivationId, EntityName, EntityPath, Error, Exec, Identity, Result,
};

use super::Inner;
use super::Outcome;
use super::books::Entry;
use super::throttle::Ticket;

/// Everything needed to run one activation.
#[derive(Debug)]
pub(crate) struct Invocation {
    /// The request's transaction.
    pub(crate) transid: TransactionId,
    /// Who invokes.
    pub(crate) user: Identity,
    /// The action (its `namespace` is where it lives, package included).
    pub(crate) action: Action,
    /// The revision read.
    pub(crate) revision: Revision,
    /// The binding it was reached through, if any.
    pub(crate) binding: Option<EntityPath>,
    /// The merged arguments.
    pub(crate) content: Option<Value>,
    /// Parameters passed at `/init`.
    pub(crate) init_args: Vec<String>,
    /// Encrypted parameters.
    pub(crate) locked_args: Map<String, Value>,
    /// Whether the caller waits.
    pub(crate) blocking: bool,
    /// The parent activation.
    pub(crate) cause: Option<ActivationId>,
    /// The namespace's in-flight slot, released when the activation leaves the books.
    pub(crate) ticket: Option<Ticket>,
    /// The id to use (work done again after a crash keeps its id); a fresh one when `None`.
    pub(crate) activation_id: Option<ActivationId>,
}

impl Inner {
    /// Dispatches `inv`; blocking invocations wait up to `wait`.
    pub(crate) async fn dispatch(&self, inv: Invocation, wait: Duration) -> Result<Outcome> {
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::unavailable(super::SHUTTING_DOWN));
        }
        let wait_deadline = Instant::now() + wait;
        let Invocation {
            transid,
            user,
            action,
            revision,
            binding,
            content,
            init_args,
            locked_args,
            blocking,
            cause,
            ticket,
            activation_id,
        } = inv;
        let activation_id = activation_id.unwrap_or_else(ActivationId::generate);
        let blackbox = matches!(action.exec, Exec::Blackbox { .. });
        // Only invokers that can run the action's kind are candidates (kinds are stored
        // resolved: `nodejs:20`, or `blackbox`).
        let limits = action.limits;
        let fqn = action.fqn();
        // The dispatch span, a child of the request's (or a trace of its own for work no
        // request started); its context travels in the message to the invoker.
        let mut span = self.config.tracer.span(
            "controller.dispatch",
            crate::layers::trace_context::current().as_ref(),
        );
        span.set("activation.id", &activation_id);
        let exec = action.exec;
        let msg = ActivationMessage {
            transid,
            action: ActionRef {
                path: action.namespace,
                name: action.name,
                version: action.version,
                binding,
            },
            revision: Some(revision.0),
            user,
            activation_id: activation_id.clone(),
            root_controller_index: self.instance.clone(),
            blocking,
            content,
            init_args,
            locked_args,
            cause,
            trace_context: span.context().map(|c| c.to_message()),
        };
        let payload = Bytes::from(
            serde_json::to_vec(&msg)
                .map_err(|e| Error::internal(format!("cannot encode activation: {e}")))?,
        );
        let namespace = msg.user.namespace.name.clone();
        let scheduled = self.scheduler.schedule(&ScheduleRequest {
            namespace: namespace.as_str(),
            action: &fqn,
            memory_mb: limits.memory,
            max_concurrent: limits.concurrency,
            blackbox,
            kind: Some(exec.kind()),
        });
        self.metrics.record(faas_core::metrics::Event::Scheduled {
            outcome: match &scheduled {
                Ok(_) => "scheduled",
                Err(Error::Unavailable { .. }) => "no_invoker",
                Err(_) => "error",
            },
        });
        let invoker = scheduled?;
        let topic = invoker_topic(invoker.instance);
        let invoker_index = invoker.instance;
        let (tx, rx) = if blocking {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let deadline = std::time::Instant::now()
            + self
                .config
                .completion_timeout(Duration::from_millis(limits.timeout));
        self.books.insert(
            activation_id.clone(),
            Entry::new(
                invoker,
                limits.memory,
                limits.concurrency,
                fqn,
                deadline,
                tx,
                ticket,
            )
            .with_message(payload.clone()),
        );
        // A blocking invoke's message needs to be durable only if the caller is answered
        // `202` (the wait ran out): answered with its result, nothing was promised that a
        // crash could break. So it is published deferred and persisted before any `202`
        // (`accepted`); with a journaled bus that saves a journal write per invoke.
        let published = if blocking {
            self.bus.publish_deferred(&topic, None, payload).await
        } else {
            // Never persisted: a non-blocking invoke is answered before `accepted` could
            // run, so no topic name is copied for it.
            self.bus
                .publish(&topic, None, payload)
                .await
                .map(|()| Published::settled(String::new()))
        };
        let published = match published {
            Ok(p) => p,
            Err(e) => {
                if let Some(entry) = self.books.remove(&activation_id) {
                    self.finish(entry, None);
                }
                tracing::error!(error = %faas_core::Chain(&e), %topic, "publishing an activation failed");
                return Err(match e {
                    Error::TooLarge { .. } => {
                        Error::too_large("The request content was too large.")
                    }
                    other => other,
                });
            }
        };
        span.set("invoker", invoker_index);
        span.end();
        let Some(rx) = rx else {
            return Ok(Outcome::Accepted(activation_id));
        };
        let mut rx = rx;
        loop {
            // The acknowledgement answers; independently the store is read every
            // `store_poll_interval` (OpenWhisk's `polling-from-db`), so a lost acknowledgement
            // (another controller's bus trouble, a shrunk message) still answers the caller.
            let next_poll = (Instant::now() + self.config.store_poll_interval).min(wait_deadline);
            match tokio::time::timeout_at(next_poll, &mut rx).await {
                Ok(Ok(activation)) => return Ok(Outcome::Completed(activation)),
                // Completed without a result in hand: the record is in the store (or soon).
                Ok(Err(_)) => {
                    return Ok(
                        match self
                            .await_record(&namespace, &activation_id, wait_deadline)
                            .await
                        {
                            Some(a) => Outcome::Completed(Box::new(a)),
                            None => return self.accepted(&published, activation_id).await,
                        },
                    );
                }
                Err(_) if Instant::now() >= wait_deadline => {
                    return self.accepted(&published, activation_id).await;
                }
                Err(_) => {
                    if let Ok(a) = self.store.get_activation(&namespace, &activation_id).await {
                        return Ok(Outcome::Completed(Box::new(a)));
                    }
                }
            }
        }
    }

    /// A blocking invoke answered `202` after all: its message is made durable first (see
    /// `dispatch`), or the caller gets the error instead of a promise a crash could break.
    async fn accepted(&self, published: &Published, id: ActivationId) -> Result<Outcome> {
        if let Err(e) = self.bus.persist(published).await {
            tracing::error!(error = %faas_core::Chain(&e), activation_id = %id, "making an accepted activation durable failed");
            return Err(e);
        }
        Ok(Outcome::Accepted(id))
    }

    /// Reads the record of `id` until it appears or `deadline` passes, backing off from
    /// 2 ms to 500 ms between reads.
    pub(crate) async fn await_record(
        &self,
        namespace: &EntityName,
        id: &ActivationId,
        deadline: Instant,
    ) -> Option<Activation> {
        let backoff = backon::ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(2))
            .with_max_delay(Duration::from_millis(500))
            .without_max_times();
        (|| self.store.get_activation(namespace, id))
            .retry(backoff)
            // Read again only while the next read starts before the deadline.
            .adjust(|_, pause| pause.filter(|p| Instant::now() + *p < deadline))
            .notify(|e, _| {
                if !matches!(e, Error::NotFound { .. }) {
                    tracing::warn!(error = %faas_core::Chain(e), activation_id = %id, "reading an activation record failed");
                }
            })
            .await
            .ok()
    }
}
