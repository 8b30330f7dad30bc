//! Nothing accepted is lost, distributed: a controller that crashed while running a sequence
//! left its journal entry uncommitted on Kafka (`compositions<C>`); its successor (same id)
//! records the sequence as interrupted. Needs `FAAS_TEST_KAFKA_BROKERS` (skipped without it
//! unless `FAAS_REQUIRE_SERVICES=1`). The standalone modes are tested end to end by
//! `tests/e2e/noloss.test.js` and the engine by `faas-http/tests/shutdown.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "kafka")]
#[tokio::test]
async fn over_kafka_a_crashed_controllers_sequence_is_recorded_by_its_successor() {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use faas_core::activation::{ActivationResponse, StatusCode};
    use faas_core::sharding::ShardingScheduler;
    use faas_core::testkit;
    use faas_core::{
        ActivationId, EntityName, MessageBus, Scheduler, Store, StoreAuthenticator, TopicConfig,
    };
    use faas_http::engine::{INTERRUPTED, compositions_topic, controller_group};
    use faas_http::{Controller, ControllerConfig};
    use faas_store::MemoryStore;

    let Some(brokers) = std::env::var("FAAS_TEST_KAFKA_BROKERS")
        .ok()
        .filter(|b| !b.is_empty())
    else {
        testkit::skip("a crashed controller's sequence over Kafka (FAAS_TEST_KAFKA_BROKERS)");
        return;
    };
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    let bus = || -> Arc<dyn MessageBus> {
        Arc::new(
            faas_bus::kafka::KafkaBus::builder()
                .with_brokers(brokers.clone())
                .with_topic_prefix(format!("noloss{run:x}."))
                .with_client_id("faas-noloss-test")
                .build()
                .unwrap(),
        )
    };
    let topic = compositions_topic("0");
    let lost = ActivationId::generate();
    // Controller 0 accepted a sequence (journaled its draft), received its own journal entry
    // and died before the sequence's record was stored: the entry is not committed.
    {
        let crashed = bus();
        crashed
            .create_topic(&topic, &TopicConfig::default())
            .await
            .unwrap();
        // In the group of controller 0's one consumer.
        let member = crashed
            .subscribe(&topic, &controller_group("0"))
            .await
            .unwrap();
        let draft = testkit::fixtures::record(
            "guest",
            "seq",
            lost.clone(),
            ActivationResponse::whisk_error(INTERRUPTED),
        );
        crashed
            .publish(
                &topic,
                Some(lost.as_str().as_bytes()),
                Bytes::from(serde_json::to_vec(&draft).unwrap()),
            )
            .await
            .unwrap();
        let d = tokio::time::timeout(Duration::from_secs(60), member.recv())
            .await
            .expect("the journal entry arrives")
            .unwrap();
        assert_eq!(d.key.as_deref(), Some(lost.as_str().as_bytes()));
    }

    // Its successor, a new process with the same id, on a shared store.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let scheduler: Arc<dyn Scheduler> = Arc::new(ShardingScheduler::new());
    let auth = Arc::new(StoreAuthenticator::new(Arc::clone(&store)));
    let successor = Controller::new(
        ControllerConfig::new().with_id("0"),
        Arc::clone(&store),
        bus(),
        scheduler,
        auth,
    )
    .unwrap();
    successor.start().await.unwrap();
    let ns = EntityName::new("guest").unwrap();
    let record = testkit::wait_for(
        "the successor to record the interrupted sequence",
        Duration::from_secs(90),
        async || store.get_activation(&ns, &lost).await.ok(),
    )
    .await;
    assert_eq!(record.response.status_code, StatusCode::WhiskError);
    assert_eq!(
        record.response.result.unwrap()["error"],
        serde_json::json!(INTERRUPTED)
    );
    assert_eq!(record.name.as_str(), "seq");
}
