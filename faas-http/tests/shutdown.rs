//! Stopping the engine without losing what it accepted (`Engine::drain`, `Engine::shutdown`)
//! and the journal of compositions on `compositions<C>`: a composition a crashed engine
//! accepted is failed visibly by its successor. The platform-level tests (SIGTERM and SIGKILL
//! of the real binary on its durable default store) are `tests/e2e/noloss.test.js`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use faas_bus::InProcessBus;
use faas_core::activation::{ActivationResponse, StatusCode};
use faas_core::{
    Activation, ActivationId, AuthKey, EntityName, FullyQualifiedName, Identity, MessageBus,
    TopicConfig,
};
use faas_http::ControllerConfig;
use faas_http::engine::{
    INTERRUPTED, InvokeRequest, Outcome, SHUTDOWN, SHUTTING_DOWN, Unfinished, compositions_topic,
    controller_group,
};
use support::scripted::{FakeInvoker, with_action};
use support::*;

async fn guest(e: &Env) -> Identity {
    let key = AuthKey::parse(GUEST).unwrap();
    e.store.find_identity(&key).await.unwrap()
}

fn fqn(s: &str) -> FullyQualifiedName {
    FullyQualifiedName::resolve(s, "guest").unwrap()
}

async fn sequence(e: &Env, name: &str, components: &[&str]) {
    let r = put(
        &e.router,
        &format!("{ACTIONS}/{name}"),
        json!({"exec": {"kind": "sequence", "components": components}}),
    )
    .await;
    assert_eq!(r.status, http::StatusCode::OK, "{}", r.json());
}

async fn accepted(e: &Env, name: &str) -> ActivationId {
    let out = within(
        "invoke",
        e.controller
            .engine()
            .invoke(guest(e).await, InvokeRequest::new(fqn(name))),
    )
    .await
    .unwrap();
    match out {
        Outcome::Accepted(id) => id,
        other => panic!("a non-blocking invoke is accepted: {other:?}"),
    }
}

/// Waits until the composition journal holds nothing and no composition runs.
async fn journal_empty(bus: &InProcessBus, topic: &str, e: &Env) {
    until("the composition journal emptied", async || {
        let s = bus.group_stats(topic, &controller_group("0")).unwrap();
        s.queued + s.in_flight == 0 && e.controller.engine().compositions_running() == 0
    })
    .await;
}

async fn stored(e: &Env, id: &ActivationId) -> Option<Activation> {
    let ns = EntityName::new("guest").unwrap();
    e.store.get_activation(&ns, id).await.ok()
}

async fn eventually_stored(e: &Env, id: &ActivationId) -> Activation {
    found("a record", async || stored(e, id).await).await
}

fn error_of(a: &Activation) -> String {
    a.response.result.as_ref().unwrap()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn drain_refuses_new_work_and_shutdown_records_what_did_not_complete() {
    let e = env().await;
    // An invoker that receives and never answers: everything stays in flight.
    let _invoker = FakeInvoker::start(&e).await;
    with_action(&e, "slow", json!({})).await;
    sequence(&e, "seq", &["/guest/slow", "/guest/slow"]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(accepted(&e, "slow").await);
    }
    let seq = accepted(&e, "seq").await;
    let engine = e.controller.engine();
    until("the sequence's first component", async || {
        engine.in_flight() >= 6
    })
    .await;
    assert_eq!(engine.compositions_running(), 1);

    // Drain: nothing finishes by the deadline, and new invokes are refused meanwhile.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
    assert!(!within("drain", engine.drain(deadline)).await);
    let refused = engine
        .invoke(guest(&e).await, InvokeRequest::new(fqn("slow")))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), 503, "{refused}");
    assert!(refused.to_string().contains(SHUTTING_DOWN), "{refused}");
    for id in &ids {
        assert!(stored(&e, id).await.is_none(), "no record before shutdown");
    }

    let report = within("shutdown", engine.shutdown(Unfinished::Record)).await;
    // Five atomic activations and the sequence's first component.
    assert_eq!(report.activations, 6, "{report:?}");
    assert_eq!(report.left, 0);
    assert_eq!(engine.in_flight(), 0);
    assert_eq!(engine.compositions_running(), 0);
    for id in &ids {
        let a = stored(&e, id)
            .await
            .expect("a record for every accepted activation");
        assert_eq!(a.response.status_code, StatusCode::WhiskError);
        assert_eq!(error_of(&a), SHUTDOWN);
        assert_eq!(a.name.as_str(), "slow");
        assert_eq!(
            a.annotations.get("path"),
            Some(&json!("guest/slow")),
            "{a:?}"
        );
    }
    // The sequence ended on its own once its component was recorded: a failed record.
    let s = stored(&e, &seq).await.expect("a record for the sequence");
    assert_ne!(s.response.status_code, StatusCode::Success, "{s:?}");
    assert_eq!(s.name.as_str(), "seq");
    // Nothing is dispatched any more.
    let after = engine
        .invoke(guest(&e).await, InvokeRequest::new(fqn("slow")))
        .await
        .unwrap_err();
    assert_eq!(after.status(), 503);
}

#[tokio::test]
async fn drain_lets_in_flight_work_finish() {
    let e = env().await;
    let invoker = FakeInvoker::start(&e).await;
    with_action(&e, "quick", json!({})).await;
    let id = accepted(&e, "quick").await;
    let engine = e.controller.engine().clone();
    let drained = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .drain(tokio::time::Instant::now() + Duration::from_secs(10))
                .await
        }
    });
    // The invoker answers after the drain began.
    let msg = invoker.next().await;
    assert_eq!(msg.activation_id, id);
    let a = support::scripted::activation_for(&msg, ActivationResponse::success(json!({"ok": 1})));
    e.store.put_activation(&a).await.unwrap();
    invoker.ack(&e, &invoker.combined(&msg, Some(&a))).await;
    assert!(
        within("drain", drained).await.unwrap(),
        "everything finished"
    );
    let report = engine.shutdown(Unfinished::Record).await;
    assert_eq!((report.activations, report.compositions), (0, 0));
    assert_eq!(
        eventually_stored(&e, &id).await.response.result,
        Some(json!({"ok": 1}))
    );
}

#[tokio::test]
async fn a_controller_leaves_atomic_activations_to_the_invokers() {
    let e = env().await;
    let _invoker = FakeInvoker::start(&e).await;
    with_action(&e, "slow", json!({})).await;
    let ids = [accepted(&e, "slow").await, accepted(&e, "slow").await];
    let engine = e.controller.engine();
    let report = within("shutdown", engine.shutdown(Unfinished::LeaveToInvokers)).await;
    assert_eq!((report.activations, report.left), (0, 2), "{report:?}");
    for id in &ids {
        assert!(
            stored(&e, id).await.is_none(),
            "the invoker, still running, writes the record"
        );
    }
}

#[tokio::test]
async fn compositions_are_journaled_until_recorded_and_a_crashed_ones_are_failed_on_restart() {
    let bus = InProcessBus::new();
    let topic = compositions_topic("0");
    // What a controller 0 that crashed left on its journal: a sequence it accepted (the draft
    // it published, saying the run was interrupted), never committed.
    bus.create_topic(&topic, &TopicConfig::default())
        .await
        .unwrap();
    // In the group of controller 0's one consumer.
    let predecessor = bus.subscribe(&topic, &controller_group("0")).await.unwrap();
    let lost = ActivationId::generate();
    let draft = faas_core::testkit::fixtures::record(
        "guest",
        "seq",
        lost.clone(),
        ActivationResponse::whisk_error(INTERRUPTED),
    );
    bus.publish(
        &topic,
        Some(lost.as_str().as_bytes()),
        Bytes::from(serde_json::to_vec(&draft).unwrap()),
    )
    .await
    .unwrap();
    // The crash: its member goes, the message stays uncommitted.
    drop(predecessor);

    // Its successor (same controller id) records it as interrupted.
    let e = env_over(
        ControllerConfig::default(),
        Arc::new(bus.clone()) as Arc<dyn MessageBus>,
    )
    .await;
    let a = eventually_stored(&e, &lost).await;
    assert_eq!(a.response.status_code, StatusCode::WhiskError);
    assert_eq!(error_of(&a), INTERRUPTED);
    journal_empty(&bus, &topic, &e).await;

    // A sequence that completes is journaled while it runs, then committed; its record is
    // the real one.
    let invoker = FakeInvoker::start(&e).await;
    invoker.serve(&e, |_| ActivationResponse::success(json!({"done": true})));
    with_action(&e, "a", json!({})).await;
    sequence(&e, "seq", &["/guest/a"]).await;
    let id = accepted(&e, "seq").await;
    let rec = eventually_stored(&e, &id).await;
    assert_eq!(rec.response.result, Some(json!({"done": true})), "{rec:?}");
    journal_empty(&bus, &topic, &e).await;
    assert_eq!(
        eventually_stored(&e, &id).await.response.result,
        Some(json!({"done": true})),
        "the journal entry did not overwrite the record"
    );
}
