//! What the invoker adds to a warm invoke, measured against calling the runner directly.
//!
//! A benchmark, not a test: `cargo test --release -p faas-exec --test invoker_bench -- --ignored --nocapture`.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_bus::InProcessBus;
use faas_core::entity::{Action, Entity, Exec, now_ms};
use faas_core::identity::{AuthKey, Identity, Namespace};
use faas_core::limits::{ActionLimits, SystemLimits};
use faas_core::message::{
    ActionRef, ActivationMessage, ControllerInstanceId, InvokerInstanceId, TransactionId,
};
use faas_core::names::{EntityName, EntityPath};
use faas_core::params::{Annotations, Parameters, SemVer};
use faas_core::{ActivationId, ContainerSpec, Executor, MessageBus, Store, TopicConfig};
use faas_exec::invoker::{InvokerConfig, InvokerService, run_invoker};
use faas_exec::pool::ContainerPool;
use faas_exec::process::ProcessExecutor;
use faas_store::MemoryStore;
use serde_json::json;

const CODE: &str = "function main(a){ return {n: a.n} }";
const N: usize = 2000;

fn pct(mut v: Vec<Duration>) -> String {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_micros();
    format!("p50 {} µs, p90 {} µs, p99 {} µs", p(0.5), p(0.9), p(0.99))
}

fn msg(blocking: bool, rev: &str) -> ActivationMessage {
    ActivationMessage {
        transid: TransactionId::new("bench"),
        action: ActionRef {
            path: EntityPath::new("guest").unwrap(),
            name: EntityName::new("echo").unwrap(),
            version: SemVer::default(),
            binding: None,
        },
        revision: Some(rev.to_string()),
        user: Identity {
            subject: "guest".into(),
            namespace: Namespace {
                name: EntityName::new("guest").unwrap(),
                uuid: "u".into(),
            },
            authkey: AuthKey::parse("u:k").unwrap(),
            rights: Identity::all_rights(),
            limits: Default::default(),
        },
        activation_id: ActivationId::generate(),
        root_controller_index: ControllerInstanceId::new("0"),
        blocking,
        content: Some(json!({"n": 1})),
        init_args: vec![],
        locked_args: Default::default(),
        cause: None,
        trace_context: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --release -- --ignored --nocapture"]
async fn warm_invoke_overhead() {
    let exec = ProcessExecutor::detect().unwrap();
    let kind = exec.runtimes().default_kind("nodejs").unwrap().to_string();

    // Baseline: the runner alone (run + logs).
    let c = exec
        .create(&ContainerSpec::new("base", kind.clone(), 256))
        .await
        .unwrap();
    let init = format!(
        r#"{{"value":{{"name":"echo","main":"main","code":{}}}}}"#,
        serde_json::to_string(CODE).unwrap()
    );
    c.init(init.into(), Duration::from_secs(10)).await.unwrap();
    let body: bytes::Bytes = r#"{"value":{"n":1},"activation_id":"x"}"#.into();
    let mut base = Vec::with_capacity(N);
    for i in 0..N + 200 {
        let t = Instant::now();
        c.run(body.clone(), Duration::from_secs(5)).await.unwrap();
        c.logs(10 << 20, true).await.unwrap();
        if i >= 200 {
            base.push(t.elapsed());
        }
    }
    c.destroy().await.unwrap();

    let store = Arc::new(MemoryStore::new());
    let bus = Arc::new(InProcessBus::new());
    bus.create_topic("completed0", &TopicConfig::default())
        .await
        .unwrap();
    let acks = bus.subscribe("completed0", "completed0").await.unwrap();
    let config = InvokerConfig::new(InvokerInstanceId::new(0, 2048));
    let pool =
        ContainerPool::new(Arc::new(exec), config.pool_config().with_stem_cells(vec![])).unwrap();
    let svc = InvokerService::new(
        config,
        Arc::clone(&store) as Arc<dyn Store>,
        Arc::clone(&bus) as Arc<dyn MessageBus>,
        pool,
    );
    let action = Action {
        namespace: EntityPath::new("guest").unwrap(),
        name: EntityName::new("echo").unwrap(),
        version: SemVer::default(),
        publish: false,
        exec: Exec::Code {
            kind,
            code: CODE.into(),
            binary: false,
            main: None,
        },
        parameters: Parameters::new(),
        limits: ActionLimits::defaults(&SystemLimits::default()),
        annotations: Annotations::new(),
        updated: now_ms(),
    };
    let rev = store
        .put_entity(&Entity::Action(action), None)
        .await
        .unwrap()
        .0;

    // The service called directly (whole activation: store, pool, run, acks, logs, record).
    let mut whole = Vec::with_capacity(N);
    for i in 0..N + 200 {
        let m = msg(true, &rev);
        let t = Instant::now();
        svc.invoke(m).await.unwrap();
        if i >= 200 {
            whole.push(t.elapsed());
        }
        // drain the two acks
        for _ in 0..2 {
            let d = acks.recv().await.unwrap();
            acks.commit(&d).await.unwrap();
        }
    }

    // Through the bus: publish on invoker0 → Result ack on completed0 (what a controller waits for).
    let handle = run_invoker(svc.clone()).await.unwrap();
    let mut via_bus = Vec::with_capacity(N);
    for i in 0..N + 200 {
        let m = msg(true, &rev);
        let payload = serde_json::to_vec(&m).unwrap();
        let t = Instant::now();
        bus.publish("invoker0", None, payload.into()).await.unwrap();
        let d = acks.recv().await.unwrap();
        if i >= 200 {
            via_bus.push(t.elapsed());
        }
        acks.commit(&d).await.unwrap();
        let d = acks.recv().await.unwrap(); // completion
        acks.commit(&d).await.unwrap();
    }
    let s = svc.pool().stats();
    println!("runner alone (run + logs): {}", pct(base));
    println!("InvokerService::invoke:    {}", pct(whole));
    println!("bus → Result ack:          {}", pct(via_bus));
    println!("pool: {s:?}");
    assert_eq!(s.cold_starts, 1, "every invoke after the first is warm");
    tokio::time::timeout(Duration::from_secs(20), handle.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --release -- --ignored --nocapture"]
async fn pieces() {
    use faas_core::activation::{Activation, ActivationResponse};
    let store = Arc::new(MemoryStore::new());
    let bus = Arc::new(InProcessBus::new());
    bus.create_topic("completed0", &TopicConfig::default())
        .await
        .unwrap();
    let _acks = bus.subscribe("completed0", "completed0").await.unwrap();
    let ns = EntityName::new("guest").unwrap();
    let n = 20000;
    let t = Instant::now();
    for _ in 0..n {
        let id = ActivationId::generate();
        let _ = store.get_activation(&ns, &id).await;
    }
    println!("get_activation miss: {:?}", t.elapsed() / n);
    let mk = || Activation {
        namespace: EntityPath::new("guest").unwrap(),
        name: EntityName::new("echo").unwrap(),
        subject: "guest".into(),
        activation_id: ActivationId::generate(),
        start: 1,
        end: 2,
        duration: Some(1),
        cause: None,
        response: ActivationResponse::success(json!({"n": 1})),
        logs: vec!["2023-05-03T15:18:32.773012345Z  stdout: hello".into(); 2],
        version: SemVer::default(),
        publish: false,
        annotations: Annotations::new()
            .with(
                "limits",
                json!({"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}),
            )
            .with("path", json!("guest/echo"))
            .with("kind", json!("nodejs:20"))
            .with("timeout", json!(false))
            .with("waitTime", json!(3)),
    };
    let acts: Vec<_> = (0..n).map(|_| mk()).collect();
    let t = Instant::now();
    for a in &acts {
        store.put_activation(a).await.unwrap();
    }
    println!("put_activation: {:?}", t.elapsed() / n);
    let t = Instant::now();
    let mut total = 0;
    for a in &acts {
        total += serde_json::to_vec(a).unwrap().len();
    }
    println!(
        "serialize activation ({} B): {:?}",
        total / n as usize,
        t.elapsed() / n
    );
    let payload: bytes::Bytes = serde_json::to_vec(&acts[0]).unwrap().into();
    let t = Instant::now();
    for _ in 0..n {
        bus.publish(
            "completed0",
            Some(b"0123456789abcdef0123456789abcdef"),
            payload.clone(),
        )
        .await
        .unwrap();
    }
    println!("bus publish: {:?}", t.elapsed() / n);
}
