//! The engine's background work: the acknowledgement consumer (`completed<C>`), the health
//! consumer (`health`), the sweep of overdue activations and the invoker health tests.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use faas_core::Result;
use faas_core::bus::{Consumer, TopicConfig};
use faas_core::entity::now_ms;
use faas_core::message::{Acknowledgement, ActivationOrId, HEALTH_TOPIC, PingMessage};
use faas_core::scheduler::InvocationOutcome;

use super::Inner;
use super::books::Entry;
use super::health;

impl Inner {
    /// Ends an activation that left the books: frees its scheduler slot, records how it ended
    /// and (by dropping the entry) its throttle slot, waiter and readers.
    pub(crate) fn finish(&self, entry: Entry, outcome: Option<InvocationOutcome>) {
        self.scheduler.release(
            &entry.invoker,
            entry.memory_mb,
            entry.max_concurrent,
            &entry.action,
        );
        if let Some(o) = outcome {
            self.scheduler.on_outcome(&entry.invoker, o);
        }
    }

    /// Applies one acknowledgement from `completed<C>`.
    pub(crate) fn on_ack(&self, ack: Acknowledgement) {
        match ack {
            Acknowledgement::Result { response, .. } => match response {
                ActivationOrId::Activation(a) => {
                    let id = a.activation_id.clone();
                    self.books.on_result(&id, Some(a));
                }
                ActivationOrId::Id(id) => self.books.on_result(&id, None),
            },
            Acknowledgement::Completion {
                activation_id,
                is_system_error,
                ..
            } => {
                if let Some(e) = self.books.remove(&activation_id) {
                    self.finish(e, Some(outcome(is_system_error)));
                } else if !health::on_test_completion(self, &activation_id, is_system_error) {
                    tracing::debug!(%activation_id, "completion for an activation not in the books");
                }
            }
            Acknowledgement::Combined {
                response,
                is_system_error,
                ..
            } => {
                let (id, activation) = match response {
                    ActivationOrId::Activation(a) => (a.activation_id.clone(), Some(a)),
                    ActivationOrId::Id(id) => (id, None),
                };
                if let Some(mut e) = self.books.remove(&id) {
                    if let Some(a) = activation {
                        e.deliver(a);
                    }
                    self.finish(e, Some(outcome(is_system_error)));
                } else if !health::on_test_completion(self, &id, is_system_error) {
                    tracing::debug!(activation_id = %id, "combined ack for an activation not in the books");
                }
            }
        }
    }

    /// Writes off activations whose completion is overdue (OpenWhisk's forced acknowledgement).
    pub(crate) fn expire_overdue(&self, now: Instant) -> usize {
        let overdue = self.books.take_overdue(now);
        let n = overdue.len();
        for (id, e) in overdue {
            tracing::warn!(activation_id = %id, invoker = e.invoker.instance, "forced completion: no acknowledgement in time");
            self.finish(e, Some(InvocationOutcome::Timeout));
        }
        n
    }
}

fn outcome(is_system_error: bool) -> InvocationOutcome {
    if is_system_error {
        InvocationOutcome::SystemError
    } else {
        InvocationOutcome::Success
    }
}

/// Creates the topics `completed<C>` and `health` if missing, subscribes to them (groups
/// `completed<C>` and `health<C>`) and spawns the consumers, the sweep and the health tests.
pub(crate) async fn start(s: &Arc<Inner>) -> Result<Vec<JoinHandle<()>>> {
    let max = usize::try_from(s.config.limits.max_payload_bytes).unwrap_or(usize::MAX);
    let topic_config = TopicConfig::default().with_max_message_bytes(max.saturating_add(6068));
    // Acknowledgements and pings describe live processes: nothing to keep across a restart.
    s.bus
        .create_topic(&s.completed_topic, &topic_config.transient())
        .await?;
    s.bus
        .create_topic(HEALTH_TOPIC, &TopicConfig::default().transient())
        .await?;
    let acks = s
        .bus
        .subscribe(&s.completed_topic, &s.completed_topic)
        .await?;
    let health = s
        .bus
        .subscribe(HEALTH_TOPIC, &format!("health{}", s.config.id))
        .await?;
    let weak = Arc::downgrade(s);
    let mut tasks =
        vec![
            tokio::spawn(consume(
                Weak::clone(&weak),
                acks,
                |s, payload| match serde_json::from_slice::<Acknowledgement>(payload) {
                    Ok(ack) => s.on_ack(ack),
                    Err(e) => tracing::warn!(error = %e, "skipping an undecodable acknowledgement"),
                },
            )),
            tokio::spawn(consume(Weak::clone(&weak), health, |s, payload| {
                match serde_json::from_slice::<PingMessage>(payload) {
                    Ok(ping) => {
                        s.scheduler.on_ping(&ping);
                        s.runtimes.on_ping(&ping);
                    }
                    Err(e) => tracing::warn!(error = %e, "skipping an undecodable ping"),
                }
            })),
            tokio::spawn(sweep(Weak::clone(&weak), s.config.sweep_interval)),
            super::running::start(s).await?,
        ];
    if let Some(action) = health::upsert_test_action(s).await? {
        tasks.push(tokio::spawn(health::run(
            weak,
            action,
            s.config.health_test_interval.min(Duration::from_secs(1)),
        )));
    }
    Ok(tasks)
}

/// Receives from `consumer` until the engine is gone: `handle` each payload, then commit.
/// Undecodable payloads are the handler's to log; they are committed like the rest, so a bad
/// message never loops.
async fn consume(
    shared: Weak<Inner>,
    consumer: Arc<dyn Consumer>,
    handle: impl Fn(&Inner, &[u8]) + Send + 'static,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let delivery = match consumer.recv().await {
            Ok(d) => {
                backoff = Duration::from_millis(10);
                d
            }
            Err(e) => {
                if shared.strong_count() == 0 {
                    return;
                }
                tracing::warn!(error = %faas_core::Chain(&e), "bus receive failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Some(s) = shared.upgrade() else {
            return;
        };
        handle(&s, &delivery.payload);
        drop(s);
        if let Err(e) = consumer.commit(&delivery).await {
            tracing::warn!(error = %faas_core::Chain(&e), "bus commit failed");
        }
    }
}

async fn sweep(shared: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(s) = shared.upgrade() else {
            return;
        };
        s.expire_overdue(Instant::now());
        s.throttles.prune(now_ms() / 60_000);
    }
}
