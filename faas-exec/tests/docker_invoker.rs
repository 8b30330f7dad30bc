//! The invoker end to end on the Docker executor (feature `docker`): the in-memory store, the
//! in-process bus, the container pool and real containers. Covers warm reuse, prewarmed stem
//! cells, pause after the grace and resume on the next run, the memory limit, the pids limit,
//! timeouts, orphan removal and blackbox images.
//!
//! Needs the engine and the runtime images (`scripts/services/docker.sh start images`), else
//! each test skips loudly (or fails with `FAAS_REQUIRE_SERVICES=1`).

#![cfg(feature = "docker")]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod docker_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptions, ListContainersOptions, RemoveImageOptions};
use bytes::Bytes;
use faas_bus::InProcessBus;
use faas_core::entity::{Action, Entity, Exec};
use faas_core::identity::{AuthKey, Identity, Namespace};
use faas_core::message::{
    ActionRef, ActivationMessage, ControllerInstanceId, InvokerInstanceId, TransactionId,
};
use faas_core::names::{EntityName, EntityPath};
use faas_core::params::SemVer;
use faas_core::{
    Activation, ActivationId, ContainerSpec, Error, Executor, MessageBus, StatusCode, Store,
};
use faas_exec::docker::{DockerExecutor, INVOKER_LABEL};
use faas_exec::invoker::{InvokerConfig, InvokerService};
use faas_exec::pool::{ContainerPool, PoolConfig, PoolStats, StemCell};
use faas_exec::proxy::MEMORY_EXHAUSTED;
use faas_store::MemoryStore;
use futures::StreamExt;
use serde_json::{Value, json};

/// The longest any single wait in these tests may take.
const WAIT: Duration = Duration::from_secs(60);

struct Env {
    /// Removes the test's containers if it fails before `shutdown`.
    _guard: docker_support::Cleanup,
    store: Arc<MemoryStore>,
    svc: InvokerService,
    exec: DockerExecutor,
    kind: String,
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
    /// An invoker over `exec` with a pool configured by `pool`.
    fn new(exec: DockerExecutor, pool: impl FnOnce(PoolConfig) -> PoolConfig) -> Self {
        let kind = exec
            .runtimes()
            .default_kind("nodejs")
            .expect("a Node.js runtime image")
            .to_string();
        let store = Arc::new(MemoryStore::new());
        let bus = Arc::new(InProcessBus::new());
        let config = InvokerConfig::new(InvokerInstanceId::new(0, 1024))
            .with_api_host("http://127.0.0.1:1")
            .with_shutdown_timeout(Duration::from_secs(20));
        let pool = ContainerPool::new(
            Arc::new(exec.clone()),
            pool(config.pool_config().with_stem_cells(vec![])),
        )
        .unwrap();
        let svc = InvokerService::new(
            config,
            Arc::clone(&store) as Arc<dyn Store>,
            bus as Arc<dyn MessageBus>,
            pool,
        );
        Self {
            _guard: docker_support::Cleanup(exec.invoker_id().to_string()),
            store,
            svc,
            exec,
            kind,
        }
    }

    fn action(&self, name: &str, code: &str) -> Action {
        faas_core::testkit::fixtures::code_action("guest", name, &self.kind, code)
    }

    async fn put(&self, a: Action) {
        self.store
            .put_entity(&Entity::Action(a), None)
            .await
            .unwrap();
    }

    fn msg(&self, name: &str, content: Value) -> ActivationMessage {
        ActivationMessage {
            transid: TransactionId::new("tid-docker"),
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
            blocking: true,
            content: Some(content),
            init_args: vec![],
            locked_args: Default::default(),
            cause: None,
            trace_context: None,
        }
    }

    async fn invoke(&self, name: &str, content: Value) -> Activation {
        tokio::time::timeout(WAIT, self.svc.invoke(self.msg(name, content)))
            .await
            .expect("the activation finishes in time")
            .unwrap()
    }

    fn stats(&self) -> PoolStats {
        self.svc.pool().stats()
    }

    async fn eventually(&self, what: &str, f: impl Fn(&PoolStats) -> bool) {
        let met = faas_core::testkit::eventually(WAIT, || f(&self.stats())).await;
        assert!(met, "timed out waiting for {what}: {:?}", self.stats());
    }

    /// The engine's containers labelled with this executor's invoker id.
    async fn containers(&self) -> Vec<bollard::models::ContainerSummary> {
        containers_of(self.exec.docker(), self.exec.invoker_id()).await
    }

    /// Shuts the pool down and checks that every container of the test is gone.
    async fn shutdown(self) {
        tokio::time::timeout(WAIT, self.svc.pool().shutdown())
            .await
            .expect("pool shutdown in time");
        all_removed(self.exec.docker(), self.exec.invoker_id()).await;
    }
}

async fn containers_of(docker: &Docker, invoker: &str) -> Vec<bollard::models::ContainerSummary> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{INVOKER_LABEL}={invoker}")],
    )]);
    let opts = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    docker.list_containers(Some(opts)).await.unwrap()
}

/// Waits until no container of `invoker` is left.
async fn all_removed(docker: &Docker, invoker: &str) {
    let mut left = Vec::new();
    let removed = faas_core::testkit::eventually_async(WAIT, async || {
        left = containers_of(docker, invoker).await;
        left.is_empty()
    })
    .await;
    assert!(
        removed,
        "containers left: {:?}",
        left.iter().map(|c| &c.names).collect::<Vec<_>>()
    );
}

fn result(a: &Activation) -> &Value {
    a.response.result.as_ref().unwrap()
}

const HELLO: &str = r#"function main(args) {
  console.log("hello " + args.name);
  return { greeting: "hi " + args.name, host: process.env.__OW_API_HOST,
           listen: process.env.__OW_LISTEN };
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_reuse_and_logs() {
    let exec = require!(
        docker_support::executor("warm").await,
        "docker invoker warm reuse"
    );
    let env = Env::new(exec, |c| c);
    env.put(env.action("hello", HELLO)).await;
    let first = env.invoke("hello", json!({"name": "ann"})).await;
    assert_eq!(first.response.status_code, StatusCode::Success, "{first:?}");
    assert_eq!(result(&first)["greeting"], json!("hi ann"));
    assert_eq!(result(&first)["host"], json!("http://127.0.0.1:1"));
    assert_eq!(result(&first)["listen"], json!("unix:/run/faas/proxy.sock"));
    assert!(first.annotations.get("initTime").is_some());
    assert_eq!(first.logs.len(), 1, "{:?}", first.logs);
    assert!(
        first.logs[0].ends_with(" stdout: hello ann"),
        "{:?}",
        first.logs
    );

    let second = env.invoke("hello", json!({"name": "bo"})).await;
    assert_eq!(result(&second)["greeting"], json!("hi bo"));
    assert!(
        second.annotations.get("initTime").is_none(),
        "warm: no init"
    );
    assert!(
        second.logs[0].ends_with(" stdout: hello bo"),
        "{:?}",
        second.logs
    );
    let s = env.stats();
    assert_eq!((s.cold_starts, s.warm_hits), (1, 1), "{s:?}");

    // The container carries OpenWhisk's settings.
    let list = env.containers().await;
    assert_eq!(list.len(), 1);
    let id = list[0].id.clone().unwrap();
    let info = env
        .exec
        .docker()
        .inspect_container(&id, None)
        .await
        .unwrap();
    let host = info.host_config.unwrap();
    assert_eq!(host.memory, Some(256 * 1024 * 1024));
    assert_eq!(host.memory_swap, Some(256 * 1024 * 1024));
    assert_eq!(host.cpu_shares, Some(256)); // 1024 × 256 / 1024
    assert_eq!(host.pids_limit, Some(1024));
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    let mut dropped = host.cap_drop.unwrap();
    dropped.sort();
    assert_eq!(dropped, ["NET_ADMIN", "NET_RAW"]);
    let nofile = host.ulimits.unwrap();
    assert_eq!(nofile[0].name.as_deref(), Some("nofile"));
    assert_eq!((nofile[0].soft, nofile[0].hard), (Some(1024), Some(1024)));
    let labels = info.config.unwrap().labels.unwrap();
    assert_eq!(labels.get("faas.kind"), Some(&env.kind));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarmed_stem_cell_serves_the_first_invoke() {
    let exec = require!(
        docker_support::executor("prewarm").await,
        "docker invoker prewarm"
    );
    let env = Env::new(exec, |c| {
        c.with_stem_cells(vec![StemCell::new("nodejs:default", 256, 1)])
    });
    env.eventually("a prewarmed container", |s| s.prewarmed == 1)
        .await;
    assert_eq!(env.containers().await.len(), 1);
    env.put(env.action("hello", HELLO)).await;
    let a = env.invoke("hello", json!({"name": "p"})).await;
    assert_eq!(result(&a)["greeting"], json!("hi p"));
    let s = env.stats();
    assert_eq!((s.prewarm_hits, s.cold_starts), (1, 0), "{s:?}");
    // A replacement stem cell is started.
    env.eventually("a replacement stem cell", |s| s.prewarmed == 1)
        .await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_after_the_grace_and_resumed_on_the_next_run() {
    let exec = require!(
        docker_support::executor("pause").await,
        "docker invoker pause"
    );
    let env = Env::new(exec, |c| {
        c.with_pause_grace(Some(Duration::from_millis(300)))
    });
    let counter = "let n = 0;\nfunction main() { n += 1; return { n }; }";
    env.put(env.action("counter", counter)).await;
    assert_eq!(
        result(&env.invoke("counter", json!({})).await)["n"],
        json!(1)
    );
    env.eventually("the idle container paused", |s| s.paused == 1)
        .await;
    let list = env.containers().await;
    assert_eq!(list.len(), 1);
    let id = list[0].id.clone().unwrap();
    let state = |docker: &Docker| {
        let docker = docker.clone();
        let id = id.clone();
        async move {
            let info = docker.inspect_container(&id, None).await.unwrap();
            info.state.unwrap().paused.unwrap()
        }
    };
    assert!(state(env.exec.docker()).await, "the engine shows it paused");
    // The next run resumes it: same container (the counter goes on), no init.
    let a = env.invoke("counter", json!({})).await;
    assert_eq!(result(&a)["n"], json!(2));
    assert!(a.annotations.get("initTime").is_none());
    let s = env.stats();
    assert_eq!((s.cold_starts, s.warm_hits), (1, 1), "{s:?}");
    // It is running again until the grace passes once more.
    let running = !state(env.exec.docker()).await || env.stats().paused == 1;
    assert!(running);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceeding_the_memory_limit_is_reported_as_openwhisk_does() {
    let exec = require!(
        docker_support::executor("oom").await,
        "docker invoker memory limit"
    );
    let env = Env::new(exec, |c| c);
    // Keeps 8 MB buffers (off the V8 heap, so only the cgroup limit stops it) until 400 MB.
    let hog = r#"function main() {
  const keep = [];
  for (let i = 0; i < 50; i++) keep.push(Buffer.alloc(8 * 1024 * 1024, i));
  return { kept: keep.length };
}"#;
    let mut action = env.action("hog", hog);
    action.limits.memory = 128;
    env.put(action).await;
    let a = env.invoke("hog", json!({})).await;
    assert_eq!(a.response.status_code, StatusCode::DeveloperError, "{a:?}");
    assert_eq!(result(&a)["error"], json!(MEMORY_EXHAUSTED));
    // The container is destroyed; the invoker goes on.
    all_removed(env.exec.docker(), env.exec.invoker_id()).await;
    env.put(env.action("hello", HELLO)).await;
    let ok = env.invoke("hello", json!({"name": "after"})).await;
    assert_eq!(result(&ok)["greeting"], json!("hi after"));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_is_stopped_by_the_pids_limit() {
    // A small limit keeps the bomb cheap on a small machine; the mechanism is the same as
    // with OpenWhisk's 1024.
    let exec = require!(
        docker_support::executor_with("pids", |b| b.with_pids_limit(48)).await,
        "docker invoker pids limit"
    );
    let env = Env::new(exec, |c| c);
    // Forks without end: every round leaves one more process behind, until a fork fails.
    let bomb = r#"const cp = require('child_process');
function main() {
  for (let i = 0; i < 5000; i++) {
    const r = cp.spawnSync('/bin/sh', ['-c', 'sleep 100 &'], { stdio: 'ignore', timeout: 5000 });
    if (r.error) return { limited: true, spawned: i, code: String(r.error.code || r.error.message) };
    if (r.status !== 0) return { limited: true, spawned: i, code: 'EAGAIN (sh: status ' + r.status + ')' };
  }
  return { limited: false };
}"#;
    let mut action = env.action("bomb", bomb);
    action.limits.timeout = 20_000;
    env.put(action).await;
    let started = std::time::Instant::now();
    let a = env.invoke("bomb", json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(a.response.status_code, StatusCode::Success, "{a:?}");
    assert_eq!(result(&a)["limited"], json!(true), "{a:?}");
    let spawned = result(&a)["spawned"].as_u64().unwrap();
    assert!((10..48).contains(&spawned), "{a:?}");
    assert!(
        result(&a)["code"].as_str().unwrap().contains("EAGAIN"),
        "{a:?}"
    );
    // The engine counts the container's processes: never past the limit.
    let list = env.containers().await;
    let id = list[0].id.clone().unwrap();
    let opts = bollard::query_parameters::StatsOptions {
        stream: false,
        one_shot: true,
    };
    let stats = env
        .exec
        .docker()
        .stats(&id, Some(opts))
        .next()
        .await
        .unwrap()
        .unwrap();
    let pids = stats.pids_stats.unwrap();
    assert!(pids.current.unwrap() <= 48, "{pids:?}");
    // The invoker is unharmed: the next action runs (in a new container: the bomb's is busy).
    env.put(env.action("hello", HELLO)).await;
    let ok = env.invoke("hello", json!({"name": "still here"})).await;
    assert_eq!(result(&ok)["greeting"], json!("hi still here"));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_a_developer_error_and_destroys_the_container() {
    let exec = require!(
        docker_support::executor("timeout").await,
        "docker invoker timeout"
    );
    let env = Env::new(exec, |c| c);
    let sleepy = "function main() { return new Promise(r => setTimeout(() => r({}), 30000)); }";
    let mut action = env.action("sleepy", sleepy);
    action.limits.timeout = 500;
    env.put(action).await;
    let a = env.invoke("sleepy", json!({})).await;
    assert_eq!(a.response.status_code, StatusCode::DeveloperError, "{a:?}");
    assert_eq!(
        result(&a)["error"],
        json!("The action exceeded its time limits of 500 milliseconds.")
    );
    assert_eq!(a.annotations.get("timeout"), Some(&json!(true)));
    env.eventually("the container destroyed", |s| s.destroyed == 1)
        .await;
    assert!(env.containers().await.is_empty());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarting_invoker_removes_its_orphans() {
    let first = require!(
        docker_support::executor("orphans").await,
        "docker orphan removal"
    );
    let other = require!(
        docker_support::executor("bystander").await,
        "docker orphan removal"
    );
    let _guards = (
        docker_support::Cleanup(first.invoker_id().to_string()),
        docker_support::Cleanup(other.invoker_id().to_string()),
    );
    let kind = first.runtimes().default_kind("nodejs").unwrap().to_string();
    let image = first.runtimes().resolve(&kind).unwrap().image.clone();
    let docker = first.docker().clone();
    // A crashed invoker leaves running containers labelled with its id behind.
    for i in 0..2 {
        let body = bollard::models::ContainerCreateBody {
            image: Some(image.clone()),
            labels: Some(HashMap::from([(
                INVOKER_LABEL.to_string(),
                first.invoker_id().to_string(),
            )])),
            host_config: Some(bollard::models::HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = bollard::query_parameters::CreateContainerOptions {
            name: Some(format!("{}_orphan{i}", first.invoker_id())),
            ..Default::default()
        };
        let id = docker.create_container(Some(opts), body).await.unwrap().id;
        docker.start_container(&id, None).await.unwrap();
    }
    let bystander = other
        .create(&ContainerSpec::new("bystander", &kind, 128))
        .await
        .unwrap();
    assert_eq!(containers_of(&docker, first.invoker_id()).await.len(), 2);
    // The next start of the same invoker id finds and removes them, and nothing else.
    let restarted = require!(
        docker_support::executor_with("unused", |b| b.with_invoker_id(first.invoker_id())).await,
        "docker orphan removal"
    );
    assert_eq!(restarted.remove_orphans().await.unwrap(), 2);
    assert!(containers_of(&docker, first.invoker_id()).await.is_empty());
    assert_eq!(containers_of(&docker, other.invoker_id()).await.len(), 1);
    assert_eq!(restarted.remove_orphans().await.unwrap(), 0);
    bystander.destroy().await.unwrap();
    all_removed(&docker, other.invoker_id()).await;
}

/// A minimal tar archive holding one file (a build context).
fn tar_of(name: &str, content: &[u8]) -> Bytes {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{:011o}\0", content.len()).as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    Bytes::from(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackbox_images_run_and_missing_ones_are_refused() {
    let exec = require!(
        docker_support::executor("blackbox").await,
        "docker blackbox"
    );
    let runtime = exec.runtimes();
    let node = runtime.resolve("nodejs:default").unwrap().image.clone();
    let tag = format!("faas-test-blackbox:{}", docker_support::invoker_id("bb"));
    // Built in the test from the Node.js runtime image under another tag; `faas.kind` is
    // blanked so that it is not taken for a managed runtime.
    let dockerfile = format!("FROM {node}\nLABEL faas.kind=\"\" faas.test=\"blackbox\"\n");
    let opts = BuildImageOptions {
        t: Some(tag.clone()),
        rm: true,
        ..Default::default()
    };
    let docker = exec.docker().clone();
    let mut build = docker.build_image(
        opts,
        None,
        Some(bollard::body_full(tar_of(
            "Dockerfile",
            dockerfile.as_bytes(),
        ))),
    );
    tokio::time::timeout(WAIT, async {
        while let Some(step) = build.next().await {
            let step = step.unwrap();
            assert!(step.error_detail.is_none(), "{step:?}");
        }
    })
    .await
    .unwrap();

    let env = Env::new(exec, |c| c);
    let mut action = env.action("bb", "function main(a) { return { bb: a.x }; }");
    action.exec = Exec::Blackbox {
        image: tag.clone(),
        code: Some("function main(a) { return { bb: a.x }; }".into()),
        binary: false,
        main: None,
    };
    env.put(action).await;
    let a = env.invoke("bb", json!({"x": 7})).await;
    assert_eq!(a.response.status_code, StatusCode::Success, "{a:?}");
    assert_eq!(result(&a)["bb"], json!(7));
    let list = env.containers().await;
    assert_eq!(list[0].image.as_deref(), Some(tag.as_str()));
    let again = env.invoke("bb", json!({"x": 8})).await;
    assert_eq!(result(&again)["bb"], json!(8));

    // An image that is not there is never pulled: OpenWhisk's message.
    let missing =
        ContainerSpec::new("missing", "blackbox", 128).with_image("faas-test-no-such-image:1");
    let e = env.exec.create(&missing).await.unwrap_err();
    assert!(matches!(e, Error::BadRequest { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Failed to pull container image 'faas-test-no-such-image:1'."
    );
    let no_image = ContainerSpec::new("noimage", "blackbox", 128);
    assert!(env.exec.create(&no_image).await.is_err());
    // Through the invoker it is the developer's error, with that message.
    let mut gone = env.action("gone", "function main() { return {}; }");
    gone.exec = Exec::Blackbox {
        image: "faas-test-no-such-image:1".into(),
        code: None,
        binary: false,
        main: None,
    };
    env.put(gone).await;
    let a = env.invoke("gone", json!({})).await;
    assert_eq!(a.response.status_code, StatusCode::DeveloperError, "{a:?}");
    assert_eq!(
        result(&a)["error"],
        json!("Failed to pull container image 'faas-test-no-such-image:1'.")
    );

    env.shutdown().await;
    let rm = RemoveImageOptions {
        force: true,
        ..Default::default()
    };
    docker.remove_image(&tag, Some(rm), None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_api_is_negotiated() {
    let exec = require!(docker_support::executor("api").await, "docker api version");
    let v = exec.api_version();
    let (major, minor) = v.split_once('.').unwrap();
    assert_eq!(major, "1");
    assert!(minor.parse::<u32>().unwrap() >= 41, "{v}");
    assert!(exec.capabilities().memory_limit);
    assert!(exec.capabilities().network_isolation);
    let bridged = require!(
        docker_support::executor_with("bridge", |b| b.with_network("bridge")).await,
        "docker api version"
    );
    assert!(!bridged.capabilities().network_isolation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_over_the_limit_end_with_openwhisks_truncation_line() {
    let exec = require!(
        docker_support::executor("loglimit").await,
        "docker log limit"
    );
    let env = Env::new(exec, |c| c);
    // 1200 lines of 1000 bytes: past the 1 MB limit.
    let chatty = r#"function main() {
  const line = 'x'.repeat(1000);
  for (let i = 0; i < 1200; i++) console.log(line);
  return { done: true };
}"#;
    let mut action = env.action("chatty", chatty);
    action.limits.logs = 1;
    env.put(action).await;
    let a = env.invoke("chatty", json!({})).await;
    assert_eq!(result(&a)["done"], json!(true));
    let last = a.logs.last().unwrap();
    assert!(
        last.ends_with(
            " stderr: Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes."
        ),
        "{last}"
    );
    // 1048 whole lines fit in 1 MiB; the truncation line follows.
    assert_eq!(a.logs.len(), 1048 + 1);
    // The next activation's logs are complete and its own.
    let b = env.invoke("chatty", json!({})).await;
    assert_eq!(b.logs.len(), 1048 + 1);
    env.shutdown().await;
}

/// Regression: a creation its caller gave up on (a request cancelled, a platform stopping on
/// SIGTERM) left its container running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_creation_leaves_no_container() {
    let exec = require!(
        docker_support::executor("abandoned").await,
        "docker abandoned creation"
    );
    let env = Env::new(exec, |c| c);
    for wait_ms in [0u64, 20, 80] {
        let spec = faas_core::ContainerSpec::new("abandoned", env.kind.clone(), 128);
        let e = env.exec.clone();
        let creating = tokio::spawn(async move { e.create(&spec).await });
        // Let the engine start on it, then give up.
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        creating.abort();
    }
    // The pool's shutdown ends with the executor's, which waits for creations in progress.
    env.shutdown().await;
}
