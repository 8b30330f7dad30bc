//! The bus driver: consumes `invoker<N>`, feeds each message to the service in its own task,
//! commits it when done, and pings `health`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_core::events::EVENTS_TOPIC;
use faas_core::message::{ActivationMessage, HEALTH_TOPIC, PingMessage, invoker_topic};
use faas_core::{Consumer, MessageBus, Result, TopicConfig};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// A running invoker loop; see [`run_invoker`].
#[derive(Debug)]
pub struct InvokerHandle {
    service: InvokerService,
    stop: watch::Sender<bool>,
    consume: Option<JoinHandle<()>>,
    ping: Option<JoinHandle<()>>,
    permits: Arc<Semaphore>,
    max_in_flight: u32,
}

use super::{InvokerService, to_bytes};

impl InvokerHandle {
    /// The service the loop feeds.
    pub fn service(&self) -> &InvokerService {
        &self.service
    }

    /// Activations being handled now.
    pub fn in_flight(&self) -> usize {
        (self.max_in_flight as usize).saturating_sub(self.permits.available_permits())
    }

    /// Stops consuming, waits (up to [`InvokerConfig::shutdown_timeout`](super::InvokerConfig::shutdown_timeout)) for the activations in
    /// flight, pings `health` once with `isEnabled: false`, and shuts the pool down. Messages
    /// not yet finished stay uncommitted and are delivered again.
    pub async fn shutdown(self) {
        let limit = self.service.inner.config.shutdown_timeout;
        self.shutdown_within(limit).await;
    }

    /// As [`shutdown`](Self::shutdown), waiting up to `limit` (instead of
    /// [`InvokerConfig::shutdown_timeout`](super::InvokerConfig::shutdown_timeout)) for the activations in flight: a platform shutting
    /// down within a deadline gives its invoker the time left. The consume and ping loops are
    /// given at least a second to stop.
    pub async fn shutdown_within(mut self, limit: Duration) {
        let _ = self.stop.send(true);
        let loops = limit.max(Duration::from_secs(1));
        if let Some(h) = self.consume.take()
            && tokio::time::timeout(loops, h).await.is_err()
        {
            tracing::warn!("the invoker's consumer did not stop in time");
        }
        if tokio::time::timeout(limit, self.permits.acquire_many(self.max_in_flight))
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = self.in_flight(),
                "activations still running at shutdown"
            );
        }
        if let Some(h) = self.ping.take() {
            let _ = tokio::time::timeout(loops, h).await;
        }
        self.service.inner.pool.shutdown().await;
    }
}

impl Drop for InvokerHandle {
    fn drop(&mut self) {
        // Without `shutdown`, at least stop the loops.
        let _ = self.stop.send(true);
    }
}

/// Starts an invoker: creates `invoker<N>` and `health` if missing, subscribes to `invoker<N>`
/// in group `invoker<N>`, and spawns the consume loop and the health pings. See the
/// [module documentation](super).
pub async fn run_invoker(service: InvokerService) -> Result<InvokerHandle> {
    let cfg = &service.inner.config;
    let bus = Arc::clone(&service.inner.bus);
    let topic = invoker_topic(cfg.instance.instance);
    bus.create_topic(
        &topic,
        &TopicConfig::default().with_retention(Duration::from_secs(48 * 3600)),
    )
    .await?;
    // Pings and acknowledgements describe live processes: nothing to keep across a restart.
    bus.create_topic(HEALTH_TOPIC, &TopicConfig::default().transient())
        .await?;
    if cfg.user_events {
        bus.create_topic(EVENTS_TOPIC, &TopicConfig::default())
            .await?;
    }
    let consumer = bus.subscribe(&topic, &topic).await?;
    let max = cfg.in_flight_limit().min(Semaphore::MAX_PERMITS) as u32;
    let permits = Arc::new(Semaphore::new(max as usize));
    let (stop, stop_rx) = watch::channel(false);
    let (receiving, receiving_rx) = watch::channel(false);
    let consume = tokio::spawn(consume_loop(
        service.clone(),
        consumer,
        Arc::clone(&permits),
        stop_rx.clone(),
        receiving,
    ));
    // A probe to itself: the first delivery (this probe or anything older) proves that the
    // consumer holds its partition, and only then do the pings announce the invoker.
    let probe = format!(
        "{{\"{PROBE_FIELD}\":\"{}\"}}",
        faas_core::ActivationId::generate()
    );
    if let Err(e) = bus.publish(&topic, None, Bytes::from(probe)).await {
        tracing::warn!(error = %e, "cannot send the start-up probe; pinging without it");
    }
    let ping = tokio::spawn(ping_loop(
        bus,
        PingMessage::new(cfg.instance.clone()).with_runtimes(service.pool().executor().runtimes()),
        cfg.health_interval,
        stop_rx,
        receiving_rx,
    ));
    Ok(InvokerHandle {
        service,
        stop,
        consume: Some(consume),
        ping: Some(ping),
        permits,
        max_in_flight: max,
    })
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    // Ends when `true` is sent or the sender is gone.
    let _ = rx.wait_for(|s| *s).await;
}

/// The field of the probe an invoker sends to its own topic at start (`{"faasInvokerProbe": id}`).
const PROBE_FIELD: &str = "faasInvokerProbe";

/// Whether `payload` is a start-up probe (an invoker's message to itself, not an activation).
fn is_probe(payload: &[u8]) -> bool {
    payload.starts_with(format!("{{\"{PROBE_FIELD}\"").as_bytes())
}

/// Longest an invoker waits for its first delivery before it pings anyway.
const RECEIVING_WAIT: Duration = Duration::from_secs(30);

async fn consume_loop(
    service: InvokerService,
    consumer: Arc<dyn Consumer>,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    receiving: watch::Sender<bool>,
) {
    loop {
        // Take a slot first, so no more messages are read than can run.
        let permit = tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let delivery = tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            d = consumer.recv() => d,
        };
        let delivery = match delivery {
            Ok(d) => {
                receiving.send_if_modified(|r| !std::mem::replace(r, true));
                d
            }
            Err(e) => {
                tracing::warn!(error = %e, "receiving from the invoker topic failed");
                drop(permit);
                tokio::select! {
                    _ = stopped(&mut stop) => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        if is_probe(&delivery.payload) {
            if let Err(e) = consumer.commit(&delivery).await {
                tracing::warn!(error = %e, "cannot commit the start-up probe");
            }
            continue;
        }
        let msg: ActivationMessage = match serde_json::from_slice(&delivery.payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(
                    topic = %delivery.topic, offset = delivery.offset, error = %e,
                    "skipping an undecodable activation message"
                );
                if let Err(e) = consumer.commit(&delivery).await {
                    tracing::warn!(error = %e, "cannot commit a skipped message");
                }
                continue;
            }
        };
        let svc = service.clone();
        let consumer = Arc::clone(&consumer);
        tokio::spawn(async move {
            let id = msg.activation_id.clone();
            match svc.invoke_delivered(msg, &delivery).await {
                Ok(_) => {
                    if let Err(e) = consumer.commit(&delivery).await {
                        tracing::warn!(activation = %id, error = %e, "cannot commit a handled message");
                    }
                }
                Err(e) => {
                    tracing::warn!(activation = %id, error = %e, "activation not handled; left for redelivery");
                }
            }
            drop(permit);
        });
    }
}

async fn ping_loop(
    bus: Arc<dyn MessageBus>,
    ping: PingMessage,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    mut receiving: watch::Receiver<bool>,
) {
    let ping = |enabled: bool| to_bytes(&ping.clone().enabled(enabled));
    // Announce the invoker only once it receives: a controller would otherwise send it work
    // that waits on its topic until the consumer group has handed it the partition (seconds
    // on some brokers).
    tokio::select! {
        biased;
        _ = stopped(&mut stop) => return,
        r = tokio::time::timeout(RECEIVING_WAIT, receiving.wait_for(|r| *r)) => {
            if r.is_err() {
                tracing::warn!("no delivery from the invoker topic yet; pinging anyway");
            }
        }
    }
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            _ = tick.tick() => {
                if let Err(e) = bus.publish(HEALTH_TOPIC, None, ping(true)).await {
                    tracing::warn!(error = %e, "health ping failed");
                }
            }
        }
    }
    // Tell the controllers at once that this invoker is going away.
    let _ = bus.publish(HEALTH_TOPIC, None, ping(false)).await;
}
