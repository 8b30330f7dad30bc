//! Acknowledgements on `completed<C>`: published in the wire form of
//! [`faas_core::message::Acknowledgement`], shrunk when too large.

use bytes::Bytes;
use faas_core::activation::{Activation, StatusCode};
use faas_core::message::{
    AcknowledgementRef, ActivationMessage, ActivationOrIdRef, completed_topic,
};
use faas_core::{Error, TopicConfig};

use super::Inner;

impl Inner {
    /// A `Result` ack with the record (logs still empty), right after a blocking run; shrunk
    /// to the activation id when too large.
    pub(super) async fn ack_result(&self, msg: &ActivationMessage, activation: &Activation) {
        let topic = completed_topic(&msg.root_controller_index.as_string);
        let full = AcknowledgementRef::Result {
            transid: &msg.transid,
            response: ActivationOrIdRef::Activation(activation),
        }
        .to_bytes();
        let shrunk = || {
            AcknowledgementRef::Result {
                transid: &msg.transid,
                response: ActivationOrIdRef::Id(&msg.activation_id),
            }
            .to_bytes()
        };
        self.publish(&topic, msg.activation_id.as_str().as_bytes(), full, shrunk)
            .await;
    }

    /// A `Completion` ack: frees the controller's slot once the record is stored.
    pub(super) async fn ack_completion(&self, msg: &ActivationMessage, is_system_error: bool) {
        let topic = completed_topic(&msg.root_controller_index.as_string);
        let ack = AcknowledgementRef::Completion {
            transid: &msg.transid,
            activation_id: &msg.activation_id,
            is_system_error,
            instance: &self.config.instance,
        }
        .to_bytes();
        self.publish(
            &topic,
            msg.activation_id.as_str().as_bytes(),
            ack,
            Bytes::new,
        )
        .await;
    }

    /// One `Combined` ack (shrunk for non-blocking requests).
    pub(super) async fn ack_combined(&self, msg: &ActivationMessage, activation: &Activation) {
        let topic = completed_topic(&msg.root_controller_index.as_string);
        let is_system_error = activation.response.status_code == StatusCode::WhiskError;
        let combined = |response| {
            AcknowledgementRef::Combined {
                transid: &msg.transid,
                response,
                is_system_error,
                instance: &self.config.instance,
            }
            .to_bytes()
        };
        let shrunk = || combined(ActivationOrIdRef::Id(&msg.activation_id));
        let payload = if msg.blocking {
            combined(ActivationOrIdRef::Activation(activation))
        } else {
            shrunk()
        };
        self.publish(
            &topic,
            msg.activation_id.as_str().as_bytes(),
            payload,
            shrunk,
        )
        .await;
    }

    /// Publishes an ack; too large → `shrunk()` instead (empty: give up); topic missing →
    /// created, then sent again.
    pub(super) async fn publish(
        &self,
        topic: &str,
        key: &[u8],
        payload: Bytes,
        shrunk: impl FnOnce() -> Bytes,
    ) {
        let mut payload = payload;
        let mut shrunk = Some(shrunk);
        let mut created = false;
        loop {
            match self.bus.publish(topic, Some(key), payload.clone()).await {
                Ok(()) => return,
                Err(Error::TooLarge { .. }) => match shrunk.take().map(|f| f()) {
                    Some(p) if !p.is_empty() => payload = p,
                    _ => {
                        tracing::error!(topic, "acknowledgement too large to publish");
                        return;
                    }
                },
                Err(Error::NotFound { .. }) if !created => {
                    created = true;
                    if let Err(e) = self
                        .bus
                        .create_topic(topic, &TopicConfig::default().transient())
                        .await
                    {
                        tracing::error!(topic, error = %e, "cannot create the completion topic");
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(topic, error = %e, "cannot publish an acknowledgement");
                    return;
                }
            }
        }
    }
}
