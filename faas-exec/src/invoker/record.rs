//! The activation record: built from a run (or for an activation that never reached a
//! container), stored, announced as a user event, and looked up before running a message that
//! may be a redelivery.

use faas_core::Error;
use faas_core::activation::{Activation, ActivationResponse};
use faas_core::entity::now_ms;
use faas_core::events::{ActivationEvent, EVENTS_TOPIC, EventBody, EventMessage};
use faas_core::message::ActivationMessage;
use faas_core::metrics::{ActivationSample, Event};
use faas_core::names::EntityPath;
use faas_core::params::Annotations;
use serde_json::{Value, json};

use super::{CachedAction, Inner, RunResult, to_bytes};

impl Inner {
    /// The stored record of `msg`'s activation, if there is one: a message that may be a
    /// redelivery is not run again when its activation already has a record (see
    /// [Idempotency under redelivery](super#idempotency-under-redelivery)). A failed lookup
    /// is logged and treated as "none" (the message runs).
    pub(super) async fn existing_record(&self, msg: &ActivationMessage) -> Option<Activation> {
        match self
            .store
            .get_activation(&msg.user.namespace.name, &msg.activation_id)
            .await
        {
            Ok(record) => {
                tracing::debug!(activation = %msg.activation_id, "redelivered activation already has a record; not running it again");
                Some(record)
            }
            Err(Error::NotFound { .. }) => None,
            Err(e) => {
                tracing::warn!(activation = %msg.activation_id, error = %e, "cannot check for an existing record; running");
                None
            }
        }
    }

    /// A record for an activation that never reached a container (OpenWhisk's fallback
    /// activation): kind `unknown`, start = end = now, duration 0. Stored, then acknowledged
    /// with one `Combined`.
    pub(super) async fn fail_early(
        &self,
        msg: &ActivationMessage,
        response: ActivationResponse,
        store_records: bool,
    ) -> Activation {
        let now = now_ms();
        let mut annotations = Annotations::new()
            .with(
                "path",
                Value::String(format!("{}/{}", msg.action.path, msg.action.name)),
            )
            .with("kind", json!("unknown"));
        if msg.cause.is_some() {
            annotations.set("causedBy", json!("sequence"));
        }
        let activation = Activation {
            namespace: EntityPath::namespace(&msg.user.namespace.name),
            name: msg.action.name.clone(),
            subject: msg.user.subject.clone(),
            activation_id: msg.activation_id.clone(),
            start: now,
            end: now,
            duration: Some(0),
            cause: msg.cause.clone(),
            response,
            logs: Vec::new(),
            version: msg.action.version,
            publish: false,
            annotations,
        };
        self.observe(msg, &activation);
        self.store_record(msg, &activation, store_records).await;
        self.ack_combined(msg, &activation).await;
        activation
    }

    /// Records the activation's metrics (OpenWhisk's user-events `Activation`).
    pub(super) fn observe(&self, msg: &ActivationMessage, activation: &Activation) {
        let metrics = &self.config.metrics;
        if metrics.is_enabled() {
            let sample = ActivationSample::of(
                activation,
                msg.user.namespace.name.as_str(),
                msg.transid.start,
            );
            metrics.record(Event::Activation(&sample));
        }
    }

    /// The record of an activation that reached a container.
    pub(super) fn record(
        &self,
        msg: &ActivationMessage,
        cached: &CachedAction,
        r: RunResult,
    ) -> Activation {
        let action = &cached.action;
        let mut annotations = Annotations::new()
            .with("limits", cached.limits_json.clone())
            .with("path", Value::String(cached.path.clone()))
            .with("kind", Value::String(action.exec.kind().to_string()))
            .with("timeout", Value::Bool(r.timed_out));
        if msg.cause.is_some() {
            annotations.set("causedBy", json!("sequence"));
        }
        if let Some(i) = r.init_ms {
            annotations.set("initTime", json!(i));
        }
        annotations.set("waitTime", json!(r.wait_ms));
        if let Some(b) = &msg.action.binding {
            annotations.set("binding", Value::String(b.to_string()));
        }
        Activation {
            namespace: EntityPath::namespace(&msg.user.namespace.name),
            name: action.name.clone(),
            subject: msg.user.subject.clone(),
            activation_id: msg.activation_id.clone(),
            start: r.start_ms,
            end: r.end_ms,
            duration: Some(r.end_ms.saturating_sub(r.start_ms)),
            cause: msg.cause.clone(),
            response: r.response,
            logs: Vec::new(),
            version: action.version,
            publish: false,
            annotations,
        }
    }

    pub(super) async fn store_record(
        &self,
        msg: &ActivationMessage,
        activation: &Activation,
        store_records: bool,
    ) {
        if store_records && let Err(e) = self.store.put_activation(activation).await {
            tracing::error!(activation = %activation.activation_id, error = %e, "cannot store the activation record");
        }
        if self.config.user_events {
            self.publish_event(msg, activation).await;
        }
    }

    /// Publishes the activation's user event (OpenWhisk's `MessagingActiveAck`).
    pub(super) async fn publish_event(&self, msg: &ActivationMessage, activation: &Activation) {
        let Some(body) = ActivationEvent::from_record(activation) else {
            return;
        };
        let event = EventMessage {
            source: format!("invoker{}", self.config.instance.instance),
            body: EventBody::Activation(body),
            subject: activation.subject.clone(),
            namespace: activation.namespace.to_string(),
            user_id: msg.user.namespace.uuid.clone(),
            event_type: "Activation".into(),
            timestamp: now_ms(),
        };
        if let Err(e) = self.bus.publish(EVENTS_TOPIC, None, to_bytes(&event)).await {
            tracing::warn!(activation = %activation.activation_id, error = %e, "cannot publish the user event");
        }
    }
}
