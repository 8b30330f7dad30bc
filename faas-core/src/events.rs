//! OpenWhisk's user events: what the platform publishes on the `events` topic when they are
//! enabled, in the JSON shape of OpenWhisk's `EventMessage` (`common/scala/.../connector/
//! Message.scala`), so that its user-events service and other existing consumers read them.
//!
//! * An [`ActivationEvent`] per activation, from the invoker (OpenWhisk's
//!   `MessagingActiveAck`), `source` `invoker<N>`.
//! * A [`MetricEvent`] per throttled request (`ConcurrentRateLimit`, `TimedRateLimit`, with
//!   the value one) and per admitted invoke (`ConcurrentInvocations`, the namespace's
//!   invocations in flight, itself included), from the controller (OpenWhisk's
//!   `Entitlement`), `source` `controller<C>`; and an [`ActivationEvent`] per sequence or
//!   composition record the controller writes (OpenWhisk's `SequenceActions`,
//!   `PrimitiveActions`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::activation::Activation;

/// The topic user events are published on (OpenWhisk: `<prefix>events`).
pub const EVENTS_TOPIC: &str = "events";

/// One user event (OpenWhisk's `EventMessage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMessage {
    /// Who sent it: `invoker<N>` or `controller<C>`.
    pub source: String,
    /// The event.
    pub body: EventBody,
    /// The subject of the identity concerned.
    pub subject: String,
    /// The namespace concerned (the activation's, or the throttled caller's).
    pub namespace: String,
    /// The uuid of that namespace's key.
    pub user_id: String,
    /// `Activation` or `Metric`.
    pub event_type: String,
    /// When it was sent, epoch ms.
    pub timestamp: u64,
}

/// The body of an [`EventMessage`] (OpenWhisk tells them apart by the `metricName` field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventBody {
    /// A limit hit.
    Metric(MetricEvent),
    /// An activation.
    Activation(ActivationEvent),
}

/// OpenWhisk's `Metric` event body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricEvent {
    /// `ConcurrentRateLimit`, `TimedRateLimit`, `ConcurrentInvocations`.
    pub metric_name: String,
    /// 1 per refusal; the count in flight for `ConcurrentInvocations`.
    pub metric_value: i64,
}

/// OpenWhisk's `Activation` event body; durations in ms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationEvent {
    /// `ns/[pkg/]action` (the `path` annotation).
    pub name: String,
    /// The activation id.
    pub activation_id: String,
    /// 0 success, 1 application error, 2 developer error, 3 platform error.
    pub status_code: u8,
    /// Run time.
    pub duration: u64,
    /// Time from acceptance to the run.
    pub wait_time: u64,
    /// `/init` time, 0 when warm.
    pub init_time: u64,
    /// The runtime kind.
    pub kind: String,
    /// Whether the action is a conductor.
    pub conductor: bool,
    /// Its memory limit, MB.
    pub memory: u64,
    /// `sequence` when a sequence caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caused_by: Option<String>,
    /// The result's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The `statusCode` the action set in its result (or in its `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_defined_status_code: Option<i64>,
}

impl ActivationEvent {
    /// The event of a finished activation record; `None` without its `path` or `kind`
    /// annotation (OpenWhisk's `Activation.from` fails then too).
    pub fn from_record(a: &Activation) -> Option<Self> {
        let ann = |k: &str| a.annotations.get(k);
        let ms = |k: &str| ann(k).and_then(Value::as_u64).unwrap_or(0);
        Some(Self {
            name: ann("path")?.as_str()?.to_string(),
            activation_id: a.activation_id.as_str().to_string(),
            status_code: u8::from(a.response.status_code),
            duration: a.duration.unwrap_or(0),
            wait_time: ms("waitTime"),
            init_time: ms("initTime"),
            kind: ann("kind")?.as_str()?.to_string(),
            conductor: ann("conductor").and_then(Value::as_bool).unwrap_or(false),
            memory: ann("limits")
                .and_then(|l| l.get("memory"))
                .and_then(Value::as_u64)
                .unwrap_or(0),
            caused_by: ann("causedBy").and_then(Value::as_str).map(str::to_string),
            size: a.response.result_size(),
            user_defined_status_code: user_defined_status_code(a.response.result.as_ref()),
        })
    }
}

/// OpenWhisk's `userDefinedStatusCode`: `error.statusCode`, else `statusCode`, of an object
/// result; a value that is not an integer counts as 400.
pub fn user_defined_status_code(result: Option<&Value>) -> Option<i64> {
    let obj = result?.as_object()?;
    let v = obj
        .get("error")
        .and_then(|e| e.get("statusCode"))
        .or_else(|| obj.get("statusCode"))?;
    Some(match v {
        Value::Number(n) => n.as_i64().unwrap_or(400),
        Value::String(s) => s.parse().unwrap_or(400),
        _ => 400,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_status_codes_follow_openwhisk() {
        assert_eq!(
            user_defined_status_code(Some(&json!({"statusCode": 404}))),
            Some(404)
        );
        assert_eq!(
            user_defined_status_code(Some(&json!({"error": {"statusCode": "404"}}))),
            Some(404)
        );
        assert_eq!(
            user_defined_status_code(Some(&json!({"error": {"statusCode": "i404"}}))),
            Some(400)
        );
        assert_eq!(user_defined_status_code(Some(&json!({"x": 1}))), None);
        assert_eq!(user_defined_status_code(None), None);
    }

    #[test]
    fn bodies_read_back_by_their_fields() {
        let m: EventBody =
            serde_json::from_value(json!({"metricName": "TimedRateLimit", "metricValue": 1}))
                .unwrap();
        assert!(matches!(m, EventBody::Metric(_)));
    }
}
