//! The sequences and compositions this engine is running, and the journal of the accepted
//! ones on the bus, so that none ends without a record — not at shutdown, not after a crash.
//!
//! * Every run (topmost or nested) is registered with a **draft** of its record (the record
//!   it would get if it never finished) from its start until its record is stored. At
//!   shutdown the engine writes the draft of every run still registered, saying the platform
//!   shut down.
//! * A **topmost** run (the id its caller got) is also **journaled** before it is accepted:
//!   the draft, saying the run was interrupted, is published on `compositions<C>` (a durable
//!   topic). This engine consumes the topic itself (with its one consumer, group
//!   `controller<C>`) and holds each delivery while the run goes
//!   on; when the run's record is stored, the delivery is committed. A delivery whose run is
//!   not here — the engine that accepted it crashed, and this is its successor (same
//!   controller id) receiving what it left uncommitted — gets its draft written unless the id
//!   has a record already (the store keeps the first record of an id), then is committed.
//!   With a durable bus (the in-process journal, Kafka) a composition accepted before a crash
//!   therefore ends *visibly failed* on the next start; its components that were dispatched
//!   run again from the invoker topic and keep their own records. Namespaces that store no
//!   activations are neither journaled nor recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::AbortHandle;

use faas_core::activation::ActivationResponse;
use faas_core::entity::now_ms;
use faas_core::{Activation, ActivationId, Consumer, Delivery, Error, Result};

use super::Inner;

/// The record message of a composition interrupted by a crash of the engine running it.
pub const INTERRUPTED: &str =
    "The activation was interrupted: the platform stopped before it completed.";
/// The record message of an activation still unfinished when the platform shut down.
pub const SHUTDOWN: &str = "The activation was not completed because the platform shut down.";

/// The topic journaling controller `id`'s accepted compositions.
pub fn compositions_topic(id: &str) -> String {
    format!("compositions{id}")
}

#[derive(Debug)]
struct Run {
    /// The record written if the run does not end on its own.
    draft: Activation,
    /// Whether the namespace keeps records.
    store: bool,
    /// The task of a topmost run.
    task: Option<AbortHandle>,
    /// The journal delivery of a topmost run, once received.
    delivery: Option<Delivery>,
}

/// The runs in progress, by activation id.
#[derive(Debug, Default)]
pub(crate) struct Running {
    runs: Mutex<HashMap<ActivationId, Run>>,
    /// The engine's consumer, once started (journal commits go through it).
    consumer: Mutex<Option<Arc<dyn Consumer>>>,
}

impl Running {
    fn lock(&self) -> MutexGuard<'_, HashMap<ActivationId, Run>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers run `draft.activation_id` (idempotent: a topmost run is registered before its
    /// task starts).
    pub(crate) fn enter(&self, draft: &Activation, store: bool) {
        self.lock()
            .entry(draft.activation_id.clone())
            .or_insert_with(|| Run {
                draft: draft.clone(),
                store,
                task: None,
                delivery: None,
            });
    }

    /// Gives topmost run `id` the handle of its task.
    pub(crate) fn set_task(&self, id: &ActivationId, task: AbortHandle) {
        if let Some(r) = self.lock().get_mut(id) {
            r.task = Some(task);
        }
    }

    /// The consumer journal deliveries are committed on (the engine's one consumer).
    pub(crate) fn set_consumer(&self, consumer: Arc<dyn Consumer>) {
        *self.consumer.lock().unwrap_or_else(PoisonError::into_inner) = Some(consumer);
    }

    /// Run `id` stored its record (or gave up): forgets it and commits its journal delivery.
    pub(crate) async fn leave(&self, id: &ActivationId) {
        let delivery = self.lock().remove(id).and_then(|r| r.delivery);
        if let Some(d) = delivery {
            self.commit(&d).await;
        }
    }

    async fn commit(&self, d: &Delivery) {
        let consumer = self
            .consumer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(c) = consumer
            && let Err(e) = c.commit(d).await
        {
            tracing::warn!(error = %faas_core::Chain(&e), "committing a composition's journal entry failed");
        }
    }

    /// How many runs are in progress.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Takes every run, aborting the tasks of topmost ones.
    fn take_all(&self) -> Vec<Run> {
        let runs: Vec<Run> = self.lock().drain().map(|(_, r)| r).collect();
        for r in &runs {
            if let Some(t) = &r.task {
                t.abort();
            }
        }
        runs
    }
}

/// The draft of a composition's record: `record` as it is, with `message` as a whisk error,
/// ended at `end`.
pub(crate) fn ended(mut draft: Activation, message: &str, end: u64) -> Activation {
    draft.response = ActivationResponse::whisk_error(message);
    draft.end = end.max(draft.start);
    draft.duration = Some(draft.end - draft.start);
    draft
}

impl Inner {
    /// Journals topmost run `draft` (a draft saying it was interrupted) and registers it.
    /// Fails, registering nothing, when the bus refuses the message.
    pub(crate) async fn accept_composition(&self, draft: &Activation, store: bool) -> Result<()> {
        self.running.enter(draft, store);
        if !store {
            return Ok(());
        }
        let journaled = ended(draft.clone(), INTERRUPTED, draft.start);
        let payload = serde_json::to_vec(&journaled)
            .map_err(|e| Error::internal(format!("cannot encode a composition: {e}")))?;
        let topic = compositions_topic(&self.config.id);
        if let Err(e) = self
            .bus
            .publish(
                &topic,
                Some(draft.activation_id.as_str().as_bytes()),
                Bytes::from(payload),
            )
            .await
        {
            self.running.lock().remove(&draft.activation_id);
            tracing::error!(error = %faas_core::Chain(&e), %topic, "journaling a composition failed");
            return Err(e);
        }
        Ok(())
    }

    /// One delivery of `compositions<C>`: held by its run, or (the run is not here: a crash
    /// ended it) its draft written unless a record exists, then committed.
    pub(crate) async fn on_journaled(&self, delivery: Delivery) {
        let draft: Activation = match serde_json::from_slice(&delivery.payload) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "skipping an undecodable composition journal entry");
                self.running.commit(&delivery).await;
                return;
            }
        };
        {
            let mut runs = self.running.lock();
            if let Some(r) = runs.get_mut(&draft.activation_id) {
                r.delivery = Some(delivery);
                return;
            }
        }
        if write_once(self, &draft).await {
            self.running.commit(&delivery).await;
        }
    }

    /// Ends every run still registered: waits up to `grace` for them to end on their own (the
    /// components they wait for have just been given records), then aborts the rest and
    /// writes their drafts, saying the platform shut down. Returns how many were written.
    pub(crate) async fn shut_compositions(&self, grace: Duration) -> usize {
        let until = tokio::time::Instant::now() + grace;
        while self.running.len() > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let now = now_ms();
        let mut written = 0;
        for run in self.running.take_all() {
            if run.store && write_once(self, &ended(run.draft, SHUTDOWN, now)).await {
                written += 1;
            }
            if let Some(d) = run.delivery {
                self.running.commit(&d).await;
            }
        }
        written
    }
}

/// Writes `record` unless its id has one; whether the id has a record now.
pub(crate) async fn write_once(s: &Inner, record: &Activation) -> bool {
    match s.store.put_activation(record).await {
        Ok(true) => {
            tracing::info!(activation_id = %record.activation_id, "recorded an activation that did not complete");
            true
        }
        Ok(false) => true,
        Err(e) => {
            tracing::error!(error = %faas_core::Chain(&e), activation_id = %record.activation_id, "storing the record of an unfinished activation failed");
            false
        }
    }
}

/// Creates `compositions<C>` if missing; returns its name (the engine's consumer reads it).
pub(crate) async fn create_topic(s: &Inner) -> Result<String> {
    let topic = compositions_topic(&s.config.id);
    let max = usize::try_from(s.config.limits.max_payload_bytes).unwrap_or(usize::MAX);
    s.bus
        .create_topic(
            &topic,
            &faas_core::TopicConfig::default()
                .with_max_message_bytes(max.saturating_add(6068))
                .with_retention(Duration::from_secs(48 * 3600)),
        )
        .await?;
    Ok(topic)
}
