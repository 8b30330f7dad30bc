//! The invoker end to end: the real local-process executor (Node.js runner), the in-memory
//! store and the in-process bus. Messages go in on `invoker0`; acknowledgements come out on
//! `completed0`; records land in the store.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::Duration;

use faas_bus::InProcessBus;
use faas_core::entity::{Action, Entity};
use faas_core::identity::{AuthKey, Identity, Namespace};
use faas_core::message::{
    Acknowledgement, ActionRef, ActivationMessage, ControllerInstanceId, InvokerInstanceId,
    PingMessage, TransactionId,
};
use faas_core::names::{EntityName, EntityPath, FullyQualifiedName};
use faas_core::params::{Param, SemVer};
use faas_core::{
    Activation, ActivationId, Consumer, Executor, MessageBus, StatusCode, Store, TopicConfig,
};
use faas_exec::invoker::{InvokerConfig, InvokerHandle, InvokerService, run_invoker};
use faas_exec::pool::{ContainerPool, PoolStats, StemCell};
use faas_exec::process::ProcessExecutor;
use faas_store::MemoryStore;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

struct Env {
    store: Arc<MemoryStore>,
    bus: Arc<InProcessBus>,
    acks: Arc<dyn Consumer>,
    handle: Option<InvokerHandle>,
    svc: InvokerService,
    kind: String,
}

/// Invoker 0 with a new pool over `store` and `bus`, its loop running.
async fn start_invoker(
    store: &Arc<MemoryStore>,
    bus: &Arc<InProcessBus>,
    user_mb: u64,
    stem_cells: Vec<StemCell>,
) -> (InvokerService, InvokerHandle) {
    let exec = ProcessExecutor::detect().expect("node and python3 on PATH");
    let config = InvokerConfig::new(InvokerInstanceId::new(0, user_mb))
        .with_api_host("http://127.0.0.1:1")
        .with_shutdown_timeout(Duration::from_secs(10));
    let pool = ContainerPool::new(
        Arc::new(exec),
        config.pool_config().with_stem_cells(stem_cells),
    )
    .unwrap();
    let svc = InvokerService::new(
        config,
        Arc::clone(store) as Arc<dyn Store>,
        Arc::clone(bus) as Arc<dyn MessageBus>,
        pool,
    );
    let handle = tokio::time::timeout(WAIT, run_invoker(svc.clone()))
        .await
        .unwrap()
        .unwrap();
    (svc, handle)
}

fn identity() -> Identity {
    Identity {
        subject: "guest-subject".into(),
        namespace: Namespace {
            name: EntityName::new("guest").unwrap(),
            uuid: "uuid-1".into(),
        },
        authkey: AuthKey::parse("uuid-1:secret").unwrap(),
        rights: Identity::all_rights(),
        limits: Default::default(),
    }
}

impl Env {
    async fn new(user_mb: u64) -> Self {
        Self::with(user_mb, vec![]).await
    }

    async fn with(user_mb: u64, stem_cells: Vec<StemCell>) -> Self {
        Self::build(user_mb, stem_cells, TopicConfig::default()).await
    }

    async fn build(user_mb: u64, stem_cells: Vec<StemCell>, acks_topic: TopicConfig) -> Self {
        let kind = ProcessExecutor::detect()
            .expect("node and python3 on PATH")
            .runtimes()
            .default_kind("nodejs")
            .expect("a Node.js runtime")
            .to_string();
        let store = Arc::new(MemoryStore::new());
        let bus = Arc::new(InProcessBus::new());
        bus.create_topic("completed0", &acks_topic).await.unwrap();
        let acks = bus.subscribe("completed0", "completed0").await.unwrap();
        let (svc, handle) = start_invoker(&store, &bus, user_mb, stem_cells).await;
        Self {
            store,
            bus,
            acks,
            handle: Some(handle),
            svc,
            kind,
        }
    }

    fn action(&self, name: &str, code: &str) -> Action {
        faas_core::testkit::fixtures::code_action("guest", name, &self.kind, code)
    }

    async fn put(&self, a: Action) -> String {
        self.store
            .put_entity(&Entity::Action(a), None)
            .await
            .unwrap()
            .0
    }

    fn msg(&self, name: &str, blocking: bool, content: Value) -> ActivationMessage {
        ActivationMessage {
            transid: TransactionId::new("tid-1"),
            action: ActionRef {
                path: EntityPath::new("guest").unwrap(),
                name: EntityName::new(name).unwrap(),
                version: SemVer::default(),
                binding: None,
            },
            revision: None,
            user: identity(),
            activation_id: ActivationId::generate(),
            root_controller_index: ControllerInstanceId::new("0"),
            blocking,
            content: Some(content),
            init_args: vec![],
            locked_args: Default::default(),
            cause: None,
            trace_context: None,
        }
    }

    async fn send(&self, msg: &ActivationMessage) {
        self.bus
            .publish("invoker0", None, serde_json::to_vec(msg).unwrap().into())
            .await
            .unwrap();
    }

    async fn ack(&self) -> Acknowledgement {
        let d = tokio::time::timeout(WAIT, self.acks.recv())
            .await
            .expect("an acknowledgement in time")
            .unwrap();
        self.acks.commit(&d).await.unwrap();
        serde_json::from_slice(&d.payload).unwrap()
    }

    async fn no_more_acks(&self) {
        let r = tokio::time::timeout(Duration::from_millis(300), self.acks.recv()).await;
        assert!(r.is_err(), "unexpected acknowledgement: {r:?}");
    }

    async fn record(&self, id: &ActivationId) -> Activation {
        let ns = EntityName::new("guest").unwrap();
        faas_core::testkit::wait_for(&format!("the record of {id}"), WAIT, async || {
            self.store.get_activation(&ns, id).await.ok()
        })
        .await
    }

    fn stats(&self) -> PoolStats {
        self.svc.pool().stats()
    }

    async fn eventually(&self, what: &str, f: impl Fn(&PoolStats) -> bool) {
        let met = faas_core::testkit::eventually(WAIT, || f(&self.stats())).await;
        assert!(met, "timed out waiting for {what}: {:?}", self.stats());
    }

    async fn shutdown(mut self) {
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(WAIT, h.shutdown())
                .await
                .expect("shutdown in time");
        }
    }
}

fn annotation<'a>(a: &'a Activation, k: &str) -> Option<&'a Value> {
    a.annotations.get(k)
}

const HELLO: &str = r#"function main(args) {
  console.log("hello " + args.name);
  console.error("to stderr");
  return { greeting: "hi " + args.name, ns: process.env.__OW_NAMESPACE,
           an: process.env.__OW_ACTION_NAME, id: process.env.__OW_ACTIVATION_ID,
           key: process.env.__OW_API_KEY || null, host: process.env.__OW_API_HOST };
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_sends_result_then_completion_and_stores_the_record() {
    let env = Env::new(1024).await;
    env.put(env.action("hello", HELLO)).await;
    let msg = env.msg("hello", true, json!({"name": "ann"}));
    env.send(&msg).await;

    let first = env.ack().await;
    let Acknowledgement::Result { response, .. } = &first else {
        panic!("first ack must be a Result: {first:?}");
    };
    let a = first.activation().expect("the record in the Result ack");
    assert_eq!(response.id(), &msg.activation_id);
    assert_eq!(a.response.status_code, StatusCode::Success);
    let result = a.response.result.as_ref().unwrap();
    assert_eq!(result["greeting"], json!("hi ann"));
    assert_eq!(result["ns"], json!("guest"));
    assert_eq!(result["an"], json!("/guest/hello"));
    assert_eq!(result["id"], json!(msg.activation_id.as_str()));
    assert_eq!(result["key"], Value::Null, "provide-api-key is false");
    assert_eq!(result["host"], json!("http://127.0.0.1:1"));
    assert!(a.logs.is_empty(), "the Result ack goes out before the logs");

    let second = env.ack().await;
    let Acknowledgement::Completion {
        activation_id,
        is_system_error,
        instance,
        ..
    } = &second
    else {
        panic!("second ack must be a Completion: {second:?}");
    };
    assert_eq!(activation_id, &msg.activation_id);
    assert!(!is_system_error);
    assert_eq!(instance.instance, 0);

    let rec = env.record(&msg.activation_id).await;
    assert_eq!(rec.namespace.as_str(), "guest");
    assert_eq!(rec.name.as_str(), "hello");
    assert_eq!(rec.subject, "guest-subject");
    assert_eq!(rec.response.status_code, StatusCode::Success);
    assert_eq!(rec.duration, Some(rec.end - rec.start));
    assert!(rec.start >= msg.transid.start);
    assert_eq!(rec.logs.len(), 2, "{:?}", rec.logs);
    assert!(
        rec.logs.iter().any(|l| l.ends_with(" stdout: hello ann")),
        "{:?}",
        rec.logs
    );
    assert!(
        rec.logs.iter().any(|l| l.ends_with(" stderr: to stderr")),
        "{:?}",
        rec.logs
    );
    assert_eq!(&rec.logs[0][30..31], " ", "timestamp padded to 30 columns");
    assert_eq!(annotation(&rec, "path"), Some(&json!("guest/hello")));
    assert_eq!(annotation(&rec, "kind"), Some(&json!(env.kind)));
    assert_eq!(annotation(&rec, "timeout"), Some(&json!(false)));
    assert_eq!(
        annotation(&rec, "limits"),
        Some(&json!({"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}))
    );
    assert!(annotation(&rec, "initTime").is_some_and(Value::is_u64));
    assert!(annotation(&rec, "waitTime").is_some_and(Value::is_u64));
    assert!(annotation(&rec, "binding").is_none());
    env.no_more_acks().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_blocking_sends_only_a_completion() {
    let env = Env::new(1024).await;
    env.put(env.action("hello", HELLO)).await;
    let msg = env.msg("hello", false, json!({"name": "bo"}));
    env.send(&msg).await;
    let ack = env.ack().await;
    assert!(
        matches!(&ack, Acknowledgement::Completion { activation_id, .. } if activation_id == &msg.activation_id),
        "{ack:?}"
    );
    env.no_more_acks().await;
    let rec = env.record(&msg.activation_id).await;
    assert_eq!(
        rec.response.result.as_ref().unwrap()["greeting"],
        json!("hi bo")
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_invoke_is_warm_and_skips_init() {
    let env = Env::new(1024).await;
    env.put(env.action("hello", HELLO)).await;
    let first = env
        .svc
        .invoke(env.msg("hello", false, json!({"name": "1"})))
        .await
        .unwrap();
    assert!(annotation(&first, "initTime").is_some());
    let second = env
        .svc
        .invoke(env.msg("hello", false, json!({"name": "2"})))
        .await
        .unwrap();
    assert_eq!(
        second.response.result.as_ref().unwrap()["greeting"],
        json!("hi 2")
    );
    assert!(annotation(&second, "initTime").is_none(), "warm: no init");
    let s = env.stats();
    assert_eq!((s.cold_starts, s.warm_hits), (1, 1), "{s:?}");
    // Logs of the second run are only its own.
    assert_eq!(second.logs.len(), 2, "{:?}", second.logs);
    // Order across stdout and stderr is best effort; within a stream it is kept.
    assert!(
        second.logs.iter().any(|l| l.ends_with("stdout: hello 2")),
        "{:?}",
        second.logs
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_code_gets_a_new_container() {
    let env = Env::new(1024).await;
    let rev1 = env
        .put(env.action("v", "function main(){ return {v: 1} }"))
        .await;
    let mut m = env.msg("v", true, json!({}));
    m.revision = Some(rev1.clone());
    let a = env.svc.invoke(m).await.unwrap();
    assert_eq!(a.response.result, Some(json!({"v": 1})));

    let mut updated = env.action("v", "function main(){ return {v: 2} }");
    updated.version = SemVer::default().up_patch();
    let id = FullyQualifiedName::new(
        EntityPath::new("guest").unwrap(),
        EntityName::new("v").unwrap(),
    );
    let rev2 = env
        .store
        .put_entity(
            &Entity::Action(updated),
            Some(&faas_core::Revision(rev1.clone())),
        )
        .await
        .unwrap()
        .0;
    assert_ne!(rev1, rev2);
    assert!(env.store.get_entity(&id).await.is_ok());
    let mut m = env.msg("v", true, json!({}));
    m.revision = Some(rev2);
    let a = env.svc.invoke(m).await.unwrap();
    assert_eq!(a.response.result, Some(json!({"v": 2})));
    assert_eq!(a.version.to_string(), "0.0.2");
    // A message still naming the old revision runs the latest code.
    let mut m = env.msg("v", true, json!({}));
    m.revision = Some(rev1);
    let a = env.svc.invoke(m).await.unwrap();
    assert_eq!(a.response.result, Some(json!({"v": 2})));
    let s = env.stats();
    assert_eq!(
        (s.cold_starts, s.warm_hits),
        (2, 1),
        "no warm reuse across revisions: {s:?}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_action_is_an_application_error_with_one_combined_ack() {
    let env = Env::new(1024).await;
    let msg = env.msg("nope", true, json!({}));
    env.send(&msg).await;
    let ack = env.ack().await;
    let Acknowledgement::Combined {
        is_system_error, ..
    } = &ack
    else {
        panic!("expected Combined: {ack:?}");
    };
    assert!(!is_system_error);
    let a = ack
        .activation()
        .expect("full record for a blocking request");
    assert_eq!(a.response.status_code, StatusCode::ApplicationError);
    assert_eq!(
        a.response.result,
        Some(json!({"error": "Action could not be found or may have been deleted."}))
    );
    env.no_more_acks().await;
    let rec = env.record(&msg.activation_id).await;
    assert_eq!(annotation(&rec, "kind"), Some(&json!("unknown")));
    assert_eq!(annotation(&rec, "path"), Some(&json!("guest/nope")));
    assert_eq!((rec.duration, rec.start), (Some(0), rec.end));

    // Non-blocking: the Combined ack is shrunk to the id.
    let msg = env.msg("nope", false, json!({}));
    env.send(&msg).await;
    let ack = env.ack().await;
    assert!(matches!(ack, Acknowledgement::Combined { .. }));
    assert!(ack.activation().is_none());
    assert_eq!(ack.activation_id(), &msg.activation_id);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thrown_error_is_a_developer_error_and_destroys_the_container() {
    let env = Env::new(1024).await;
    env.put(env.action("boom", "function main(){ throw new Error('kaput') }"))
        .await;
    let a = env
        .svc
        .invoke(env.msg("boom", true, json!({})))
        .await
        .unwrap();
    assert_eq!(a.response.status_code, StatusCode::DeveloperError);
    assert_eq!(a.response.result, Some(json!({"error": "kaput"})));
    assert!(
        a.logs.last().unwrap().ends_with(
            "stderr: The action did not initialize or run as expected. Log data might be missing."
        ),
        "{:?}",
        a.logs
    );
    env.eventually("container destroyed", |s| s.destroyed == 1 && s.idle == 0)
        .await;

    // An action returning an error object is an application error; the container stays.
    env.put(env.action("apperr", "function main(){ return {error: {code: 7}} }"))
        .await;
    let a = env
        .svc
        .invoke(env.msg("apperr", true, json!({})))
        .await
        .unwrap();
    assert_eq!(a.response.status_code, StatusCode::ApplicationError);
    assert_eq!(a.response.result, Some(json!({"error": {"code": 7}})));
    assert_eq!(env.stats().idle, 1);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_failure_is_a_developer_error() {
    let env = Env::new(1024).await;
    env.put(env.action("broken", "function main( {")).await;
    let a = env
        .svc
        .invoke(env.msg("broken", true, json!({})))
        .await
        .unwrap();
    assert_eq!(a.response.status_code, StatusCode::DeveloperError);
    let err = a.response.result.as_ref().unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("Initialization has failed due to:"),
        "{err}"
    );
    assert!(annotation(&a, "initTime").is_some());
    env.eventually("container destroyed", |s| s.destroyed == 1)
        .await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_is_a_developer_error_and_destroys_the_container() {
    let env = Env::new(1024).await;
    let mut a = env.action("slow", "function main(){ return new Promise(() => {}) }");
    a.limits.timeout = 300;
    env.put(a).await;
    let a = env
        .svc
        .invoke(env.msg("slow", true, json!({})))
        .await
        .unwrap();
    assert_eq!(a.response.status_code, StatusCode::DeveloperError);
    assert_eq!(
        a.response.result,
        Some(json!({"error": "The action exceeded its time limits of 300 milliseconds."}))
    );
    assert_eq!(annotation(&a, "timeout"), Some(&json!(true)));
    env.eventually("container destroyed", |s| {
        s.destroyed == 1 && s.in_use == 0 && s.idle == 0
    })
    .await;
    let rec = env.record(&a.activation_id).await;
    assert_eq!(annotation(&rec, "timeout"), Some(&json!(true)));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_message_is_not_run_twice() {
    let mut env = Env::new(1024).await;
    env.put(env.action("hello", HELLO)).await;
    let msg = env.msg("hello", true, json!({"name": "r"}));
    env.send(&msg).await;
    assert!(matches!(env.ack().await, Acknowledgement::Result { .. }));
    assert!(matches!(
        env.ack().await,
        Acknowledgement::Completion { .. }
    ));
    let rec = env.record(&msg.activation_id).await;

    // The same message redelivered by the bus: a member of the invoker's group took it and
    // died without committing, and a restarted invoker receives it flagged.
    if let Some(h) = env.handle.take() {
        tokio::time::timeout(WAIT, h.shutdown()).await.unwrap();
    }
    let dying = env.bus.subscribe("invoker0", "invoker0").await.unwrap();
    env.send(&msg).await;
    let taken = tokio::time::timeout(WAIT, dying.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!taken.redelivered);
    drop(dying);
    let (svc, handle) = start_invoker(&env.store, &env.bus, 1024, vec![]).await;
    env.svc = svc;
    env.handle = Some(handle);
    let ack = env.ack().await;
    assert!(matches!(ack, Acknowledgement::Combined { .. }), "{ack:?}");
    assert_eq!(
        ack.activation(),
        Some(&rec),
        "the existing record is acknowledged"
    );
    env.no_more_acks().await;
    let after = env.stats();
    assert_eq!(
        after.cold_starts + after.warm_hits,
        0,
        "the restarted invoker ran nothing"
    );

    // Called directly, the service always looks.
    let again = env.svc.invoke(msg.clone()).await.unwrap();
    assert_eq!(again, rec);
    assert!(matches!(env.ack().await, Acknowledgement::Combined { .. }));
    let ns = EntityName::new("guest").unwrap();
    let n = env
        .store
        .count_activations(&ns, &Default::default())
        .await
        .unwrap();
    assert_eq!(n, 1);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_message_is_skipped_and_the_loop_goes_on() {
    let env = Env::new(1024).await;
    env.put(env.action("hello", HELLO)).await;
    env.bus
        .publish("invoker0", None, bytes::Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    env.bus
        .publish(
            "invoker0",
            None,
            bytes::Bytes::from_static(b"{\"transid\":5}"),
        )
        .await
        .unwrap();
    let msg = env.msg("hello", false, json!({"name": "x"}));
    env.send(&msg).await;
    let ack = env.ack().await;
    assert_eq!(ack.activation_id(), &msg.activation_id);
    // Everything, the two bad messages included, was committed.
    let committed = faas_core::testkit::eventually(WAIT, || {
        let g = env.bus.group_stats("invoker0", "invoker0").unwrap();
        g.queued == 0 && g.in_flight == 0
    })
    .await;
    assert!(
        committed,
        "{:?}",
        env.bus.group_stats("invoker0", "invoker0").unwrap()
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_memory_queues_then_completes() {
    // Room for one 256 MB container only.
    let env = Env::new(256).await;
    let sleepy =
        "function main(a){ return new Promise(r => setTimeout(() => r({who: a.who}), 300)) }";
    env.put(env.action("a", sleepy)).await;
    env.put(env.action("b", sleepy)).await;
    let ma = env.msg("a", false, json!({"who": "a"}));
    let mb = env.msg("b", false, json!({"who": "b"}));
    env.send(&ma).await;
    env.send(&mb).await;
    let x = env.ack().await;
    let y = env.ack().await;
    let mut ids = vec![x.activation_id().clone(), y.activation_id().clone()];
    ids.sort();
    let mut want = vec![ma.activation_id.clone(), mb.activation_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    for id in [&ma.activation_id, &mb.activation_id] {
        let r = env.record(id).await;
        assert_eq!(r.response.status_code, StatusCode::Success, "{r:?}");
    }
    let s = env.stats();
    assert!(s.queued >= 1, "{s:?}");
    assert_eq!(s.evictions, 1, "{s:?}");
    assert!(s.used_mb <= 256);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_parameters_go_to_the_environment_and_the_key_when_allowed() {
    let env = Env::new(1024).await;
    let mut a = env.action(
        "env",
        "function main(a){ return {secret: process.env.SECRET, obj: process.env.OBJ, args: a, key: process.env.__OW_API_KEY} }",
    );
    a.parameters.insert(Param {
        key: "SECRET".into(),
        value: json!("s3"),
        init: true,
        encryption: None,
    });
    a.annotations.set("provide-api-key", json!(true));
    env.put(a).await;
    let mut m = env.msg(
        "env",
        true,
        json!({"SECRET": "s3", "OBJ": {"k": [1]}, "x": 1}),
    );
    m.init_args = vec!["OBJ".into()];
    let a = env.svc.invoke(m).await.unwrap();
    let r = a.response.result.unwrap();
    assert_eq!(r["secret"], json!("s3"));
    assert_eq!(r["obj"], json!("{\"k\":[1]}"));
    assert_eq!(
        r["args"],
        json!({"x": 1}),
        "init parameters are not run arguments"
    );
    assert_eq!(r["key"], json!("uuid-1:secret"));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_over_the_limit_are_truncated() {
    let env = Env::new(1024).await;
    let mut a = env.action(
        "chatty",
        "function main(){ const s = 'x'.repeat(1000); for (let i = 0; i < 1300; i++) console.log(s); return {} }",
    );
    a.limits.logs = 1;
    env.put(a).await;
    let a = env
        .svc
        .invoke(env.msg("chatty", false, json!({})))
        .await
        .unwrap();
    assert_eq!(a.response.status_code, StatusCode::Success);
    let last = a.logs.last().unwrap();
    assert!(
        last.ends_with(
            "stderr: Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes."
        ),
        "{last}"
    );
    assert!(
        a.logs.len() > 1000 && a.logs.len() < 1300,
        "{}",
        a.logs.len()
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_without_logs_sends_one_combined_ack() {
    let env = Env::new(1024).await;
    let mut a = env.action("quiet", HELLO);
    a.limits.logs = 0;
    env.put(a).await;
    let msg = env.msg("quiet", true, json!({"name": "q"}));
    env.send(&msg).await;
    let ack = env.ack().await;
    assert!(matches!(ack, Acknowledgement::Combined { .. }), "{ack:?}");
    assert_eq!(
        ack.activation().unwrap().response.result.as_ref().unwrap()["greeting"],
        json!("hi q")
    );
    env.no_more_acks().await;
    let rec = env.record(&msg.activation_id).await;
    assert!(rec.logs.is_empty());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_checked_and_records_can_be_skipped() {
    let env = Env::new(1024).await;
    let mut a = env.action("big", HELLO);
    a.limits.memory = 4096;
    env.put(a).await;
    let r = env
        .svc
        .invoke(env.msg("big", true, json!({})))
        .await
        .unwrap();
    assert_eq!(r.response.status_code, StatusCode::ApplicationError);
    assert_eq!(
        r.response.result,
        Some(json!({"error": "memory 4096 MB exceeds allowed threshold of 512 MB"}))
    );

    env.put(env.action("hello", HELLO)).await;
    let mut m = env.msg("hello", false, json!({"name": "n"}));
    m.user.limits.store_activations = Some(false);
    let id = m.activation_id.clone();
    let r = env.svc.invoke(m).await.unwrap();
    assert_eq!(r.response.status_code, StatusCode::Success);
    let ns = EntityName::new("guest").unwrap();
    assert!(
        env.store.get_activation(&ns, &id).await.is_err(),
        "not stored"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_and_cause_annotations() {
    let env = Env::new(1024).await;
    env.put(env.action("hello", HELLO)).await;
    let mut m = env.msg("hello", false, json!({"name": "b"}));
    m.action.binding = Some(EntityPath::new("guest/mybinding").unwrap());
    let parent = ActivationId::generate();
    m.cause = Some(parent.clone());
    let a = env.svc.invoke(m).await.unwrap();
    assert_eq!(annotation(&a, "binding"), Some(&json!("guest/mybinding")));
    assert_eq!(annotation(&a, "causedBy"), Some(&json!("sequence")));
    assert_eq!(a.cause, Some(parent));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarmed_stem_cell_serves_the_first_invoke() {
    let env = Env::with(1024, vec![StemCell::new("nodejs:default", 256, 1)]).await;
    env.eventually("stem cell ready", |s| s.prewarmed == 1)
        .await;
    env.put(env.action("hello", HELLO)).await;
    let a = env
        .svc
        .invoke(env.msg("hello", true, json!({"name": "p"})))
        .await
        .unwrap();
    assert_eq!(a.response.status_code, StatusCode::Success);
    let s = env.stats();
    assert_eq!((s.prewarm_hits, s.cold_starts), (1, 0), "{s:?}");
    env.eventually("stem cell replaced", |s| s.prewarmed == 1)
        .await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_health_and_says_goodbye_on_shutdown() {
    let env = Env::new(512).await;
    let health = env.bus.subscribe("health", "health0").await.unwrap();
    let d = tokio::time::timeout(WAIT, health.recv())
        .await
        .unwrap()
        .unwrap();
    let ping: PingMessage = serde_json::from_slice(&d.payload).unwrap();
    assert_eq!(ping.name.instance, 0);
    assert_eq!(ping.name.user_memory, 512);
    assert!(ping.is_enabled);
    health.commit(&d).await.unwrap();
    env.shutdown().await;
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        let d = tokio::time::timeout_at(end, health.recv())
            .await
            .unwrap()
            .unwrap();
        health.commit(&d).await.unwrap();
        let ping: PingMessage = serde_json::from_slice(&d.payload).unwrap();
        if !ping.is_enabled {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_acks_are_sent_shrunk() {
    let env = Env::build(
        1024,
        vec![],
        TopicConfig::default().with_max_message_bytes(2000),
    )
    .await;
    env.put(env.action("big", "function main(){ return {s: 'x'.repeat(3000)} }"))
        .await;
    let msg = env.msg("big", true, json!({}));
    env.send(&msg).await;
    let ack = env.ack().await;
    assert!(matches!(ack, Acknowledgement::Result { .. }), "{ack:?}");
    assert!(ack.activation().is_none(), "shrunk to the id");
    assert_eq!(ack.activation_id(), &msg.activation_id);
    assert!(matches!(
        env.ack().await,
        Acknowledgement::Completion { .. }
    ));
    let rec = env.record(&msg.activation_id).await;
    assert_eq!(
        rec.response.result.as_ref().unwrap()["s"]
            .as_str()
            .map(str::len),
        Some(3000)
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_over_the_limit_is_truncated_into_an_application_error() {
    let env = Env::new(1024).await;
    env.put(env.action(
        "huge",
        "function main(){ return {s: 'y'.repeat(1100 * 1024)} }",
    ))
    .await;
    let a = env
        .svc
        .invoke(env.msg("huge", false, json!({})))
        .await
        .unwrap();
    assert_eq!(a.response.status_code, StatusCode::ApplicationError);
    let e = a.response.result.as_ref().unwrap()["error"]
        .as_str()
        .unwrap();
    assert!(
        e.starts_with("The action produced a response that exceeded the allowed length: "),
        "{}",
        &e[..100.min(e.len())]
    );
    assert!(e.contains(" > 1048576 bytes. The truncated response was: {\"s\":\"yyy"));
    assert!(a.response.size.unwrap() > 1048576);
    env.shutdown().await;
}
