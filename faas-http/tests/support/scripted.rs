//! A scripted invoker on the bus: plays invoker 0 for tests of the dispatch pipeline and of
//! the engine (sequences, compositions, parameters) without running any action.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};

use faas_core::activation::ActivationResponse;
use faas_core::message::{
    Acknowledgement, ActivationMessage, ActivationOrId, HEALTH_TOPIC, InvokerInstanceId,
    PingMessage, completed_topic,
};
use faas_core::params::Annotations;
use faas_core::{Activation, Consumer, EntityPath, TopicConfig};

use super::{ACTIONS, Env, node_action, put, until, within};

/// Plays invoker 0: receives activation messages and sends the acknowledgements a test asks for.
pub struct FakeInvoker {
    consumer: Arc<dyn Consumer>,
    instance: InvokerInstanceId,
}

impl FakeInvoker {
    pub async fn start(e: &Env) -> Self {
        e.bus
            .create_topic("invoker0", &TopicConfig::default())
            .await
            .unwrap();
        let consumer = e.bus.subscribe("invoker0", "invoker0").await.unwrap();
        let instance = InvokerInstanceId::new(0, 2048);
        let ping = PingMessage::new(instance.clone());
        e.bus
            .publish(
                HEALTH_TOPIC,
                None,
                serde_json::to_vec(&ping).unwrap().into(),
            )
            .await
            .unwrap();
        until("invoker registered", async || {
            e.scheduler
                .invokers()
                .iter()
                .any(|h| h.id.instance == 0 && h.state.is_usable())
        })
        .await;
        Self { consumer, instance }
    }

    pub async fn next(&self) -> ActivationMessage {
        let d = within("activation message", self.consumer.recv())
            .await
            .unwrap();
        self.consumer.commit(&d).await.unwrap();
        serde_json::from_slice(&d.payload).unwrap()
    }

    pub async fn ack(&self, e: &Env, ack: &Acknowledgement) {
        e.bus
            .publish(
                &completed_topic("0"),
                None,
                serde_json::to_vec(ack).unwrap().into(),
            )
            .await
            .unwrap();
    }

    pub fn result(&self, msg: &ActivationMessage, a: &Activation) -> Acknowledgement {
        Acknowledgement::Result {
            transid: msg.transid.clone(),
            response: ActivationOrId::Activation(Box::new(a.clone())),
        }
    }

    pub fn completion(&self, msg: &ActivationMessage) -> Acknowledgement {
        Acknowledgement::Completion {
            transid: msg.transid.clone(),
            activation_id: msg.activation_id.clone(),
            is_system_error: false,
            instance: self.instance.clone(),
        }
    }

    pub fn combined(&self, msg: &ActivationMessage, a: Option<&Activation>) -> Acknowledgement {
        Acknowledgement::Combined {
            transid: msg.transid.clone(),
            response: match a {
                Some(a) => ActivationOrId::Activation(Box::new(a.clone())),
                None => ActivationOrId::Id(msg.activation_id.clone()),
            },
            is_system_error: false,
            instance: self.instance.clone(),
        }
    }
}

pub fn activation_for(msg: &ActivationMessage, response: ActivationResponse) -> Activation {
    Activation {
        namespace: EntityPath::namespace(&msg.user.namespace.name),
        name: msg.action.name.clone(),
        subject: msg.user.subject.clone(),
        activation_id: msg.activation_id.clone(),
        start: 10,
        end: 15,
        duration: Some(5),
        cause: msg.cause.clone(),
        response,
        logs: vec![],
        version: msg.action.version,
        publish: false,
        annotations: Annotations::new()
            .with("path", json!(msg.action.fqn().to_string()))
            .with(
                "limits",
                json!({"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}),
            ),
    }
}

pub async fn with_action(e: &Env, name: &str, extra: Value) {
    let mut body = node_action("function main(a){return a}");
    if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in x {
            b.insert(k.clone(), v.clone());
        }
    }
    let r = put(&e.router, &format!("{ACTIONS}/{name}"), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
}

pub async fn drained(e: &Env) {
    until("books drained", async || e.controller.in_flight() == 0).await;
}

impl FakeInvoker {
    /// Answers every activation message with `respond(msg)` until the task is aborted: the
    /// record is stored (as the real invoker does) and a `Combined` acknowledgement sent.
    pub fn serve(
        self,
        e: &Env,
        respond: impl Fn(&ActivationMessage) -> ActivationResponse + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let bus = Arc::clone(&e.bus);
        let store = Arc::clone(&e.store);
        tokio::spawn(async move {
            loop {
                let Ok(d) = self.consumer.recv().await else {
                    return;
                };
                let _ = self.consumer.commit(&d).await;
                let msg: ActivationMessage = serde_json::from_slice(&d.payload).unwrap();
                let a = activation_for(&msg, respond(&msg));
                store.put_activation(&a).await.unwrap();
                let ack = self.combined(&msg, Some(&a));
                bus.publish(
                    &completed_topic("0"),
                    None,
                    serde_json::to_vec(&ack).unwrap().into(),
                )
                .await
                .unwrap();
            }
        })
    }
}
