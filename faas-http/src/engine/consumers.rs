//! The engine's background work: two bus consumers for the topics the engine reads, each
//! with a driver task — one for what must arrive at once (`completed<C>`, `compositions<C>`),
//! one background consumer ([`MessageBus::subscribe_background`](faas_core::MessageBus)) for
//! what may wait a little (`health` and the topics of its listeners, such as
//! `cacheInvalidation`) — the sweep of overdue activations and the invoker health tests.
//!
//! Two consumers, not one per topic: a Kafka consumer is a fetch loop against the broker that
//! costs CPU on both sides even when idle (a fetch every fetch wait, and on tansu work per
//! topic of each fetch), so the idle cost of a controller does not grow with its topics, and
//! the topics that can wait are fetched at the background consumer's longer wait. Trigger fires
//! (`triggerFires`) keep a consumer of their own: their group is shared by all controllers
//! (each fire runs once), while these topics are read by each controller in its own groups.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use backon::Retryable;
use tokio::task::JoinHandle;

use faas_core::Result;
use faas_core::bus::{Consumer, TopicConfig};
use faas_core::entity::now_ms;
use faas_core::message::{Acknowledgement, ActivationOrId, HEALTH_TOPIC, PingMessage};
use faas_core::scheduler::InvocationOutcome;

use super::books::Entry;
use super::{Inner, Listener, RECEIVE_RETRY, health};

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
            if self.metrics.is_enabled() {
                self.metrics.record(faas_core::metrics::Event::Completed {
                    outcome: match o {
                        InvocationOutcome::Success => "success",
                        InvocationOutcome::SystemError => "system_error",
                        InvocationOutcome::Timeout => "timeout",
                    },
                    elapsed: entry.dispatched.elapsed(),
                });
            }
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

/// Creates the topics the engine consumes — `completed<C>`, `health`, `compositions<C>` and
/// those of the [`listeners`](super::Engine::listen) — and subscribes to them with two
/// consumers: `completed<C>` and `compositions<C>` (group `controller<C>`, see
/// [`controller_group`]), the rest in the background (group `controller<C>-background`), each
/// driven by a task that routes each delivery by topic. Then spawns the sweep and the health
/// tests.
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
    let journal = super::running::create_topic(s).await?;
    let listeners = s.listeners();
    for l in &listeners {
        s.bus.create_topic(&l.topic, &l.config).await?;
    }
    // Acknowledgements answer callers and journal entries are held by running compositions:
    // both want the bus's short fetch wait. Pings (every few seconds, judged over ten) and
    // the listeners' topics (cache invalidations) can wait a little, so a background consumer
    // serves them, which costs a Kafka broker far less per idle second.
    let consumer = s
        .bus
        .subscribe_topics(
            &[&s.completed_topic, &journal],
            &controller_group(&s.config.id),
        )
        .await?;
    let mut background_topics: Vec<&str> = vec![HEALTH_TOPIC];
    background_topics.extend(listeners.iter().map(|l| l.topic.as_str()));
    let background = s
        .bus
        .subscribe_background(&background_topics, &background_group(&s.config.id))
        .await?;
    s.running.set_consumer(Arc::clone(&consumer));
    let routes = Arc::new(Routes {
        completed: s.completed_topic.clone(),
        journal,
        listeners,
    });
    let weak = Arc::downgrade(s);
    let mut tasks = vec![
        tokio::spawn(drive(Weak::clone(&weak), consumer, Arc::clone(&routes))),
        tokio::spawn(drive(Weak::clone(&weak), background, routes)),
        tokio::spawn(sweep(Weak::clone(&weak), s.config.sweep_interval)),
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

/// The consumer group of controller `id` on the topics only it consumes and reads at once
/// (acknowledgements, the composition journal): `controller<id>`.
pub fn controller_group(id: &str) -> String {
    format!("controller{id}")
}

/// The consumer group of controller `id`'s background consumer (pings, the listeners' topics):
/// `controller<id>-background`.
pub(crate) fn background_group(id: &str) -> String {
    format!("controller{id}-background")
}

/// Where the driver sends each topic's deliveries.
struct Routes {
    completed: String,
    journal: String,
    listeners: Vec<Listener>,
}

/// Receives from `consumer` until the engine is gone and routes each delivery by topic:
/// acknowledgements to the books, pings to the scheduler and the runtimes, journal entries to
/// the running compositions (which commit them when the run ends), the rest to its listener.
/// Undecodable payloads are logged and committed like the rest, so a bad message never loops.
async fn drive(shared: Weak<Inner>, consumer: Arc<dyn Consumer>, routes: Arc<Routes>) {
    loop {
        let received = (|| consumer.recv())
            .retry(RECEIVE_RETRY)
            .when(|_| shared.strong_count() > 0)
            .notify(|e, _| {
                tracing::warn!(error = %faas_core::Chain(e), "bus receive failed; retrying");
                for l in &routes.listeners {
                    (l.on_gap)();
                }
            })
            .await;
        // A receive fails for good only once the engine is gone.
        let Ok(delivery) = received else {
            return;
        };
        let Some(s) = shared.upgrade() else {
            return;
        };
        let topic = delivery.topic.as_str();
        if topic == routes.completed {
            match serde_json::from_slice::<Acknowledgement>(&delivery.payload) {
                Ok(ack) => s.on_ack(ack),
                Err(e) => tracing::warn!(error = %e, "skipping an undecodable acknowledgement"),
            }
        } else if topic == HEALTH_TOPIC {
            match serde_json::from_slice::<PingMessage>(&delivery.payload) {
                Ok(ping) => {
                    s.scheduler.on_ping(&ping);
                    s.runtimes.on_ping(&ping);
                }
                Err(e) => tracing::warn!(error = %e, "skipping an undecodable ping"),
            }
        } else if topic == routes.journal {
            // Held (or, for a predecessor's run, written) by the running compositions, which
            // commit it themselves; a store write must not hold up the acknowledgements.
            tokio::spawn(async move { s.on_journaled(delivery).await });
            continue;
        } else if let Some(l) = routes.listeners.iter().find(|l| l.topic == topic) {
            (l.on_message)(&delivery.payload);
        } else {
            tracing::warn!(topic, "a delivery of a topic the engine does not consume");
        }
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
