//! Container pool logic against a fake executor that counts creates, destroys, pauses and
//! resumes: warm reuse, stem cells, memory accounting, LRU eviction, FIFO queueing, the reaper,
//! pausing, draining and shutdown.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::executor::{ExecCapabilities, LogCollection};
use faas_core::runtimes::{RuntimeManifest, RuntimeSpec};
use faas_core::time::{Clock, ManualClock, TokioClock};
use faas_core::{Container, ContainerSpec, Error, Executor, ProxyError, ProxyResponse, Result};
use faas_exec::pool::{
    AcquireRequest, ContainerKey, ContainerPool, Origin, PoolConfig, Release, StemCell,
};

#[derive(Debug, Default)]
struct Counters {
    created: AtomicUsize,
    destroyed: AtomicUsize,
    paused: AtomicUsize,
    resumed: AtomicUsize,
    fail_create: AtomicBool,
    destroyed_names: Mutex<Vec<String>>,
    created_specs: Mutex<Vec<ContainerSpec>>,
}

#[derive(Debug)]
struct FakeExec {
    c: Arc<Counters>,
    create_delay: Duration,
}

#[derive(Debug)]
struct FakeContainer {
    name: String,
    c: Arc<Counters>,
    gone: AtomicBool,
}

#[async_trait]
impl Container for FakeContainer {
    fn id(&self) -> &str {
        &self.name
    }
    async fn init(&self, _b: Bytes, _t: Duration) -> Result<ProxyResponse, ProxyError> {
        Ok(ProxyResponse {
            status: 200,
            body: Bytes::from_static(b"{\"ok\":true}"),
            truncated: None,
        })
    }
    async fn run(&self, b: Bytes, _t: Duration) -> Result<ProxyResponse, ProxyError> {
        Ok(ProxyResponse {
            status: 200,
            body: b,
            truncated: None,
        })
    }
    async fn logs(&self, _l: u64, _w: bool) -> Result<LogCollection> {
        Ok(LogCollection::default())
    }
    async fn pause(&self) -> Result<()> {
        self.c.paused.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn resume(&self) -> Result<()> {
        self.c.resumed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn destroy(&self) -> Result<()> {
        if !self.gone.swap(true, Ordering::SeqCst) {
            self.c.destroyed.fetch_add(1, Ordering::SeqCst);
            self.c
                .destroyed_names
                .lock()
                .unwrap()
                .push(self.name.clone());
        }
        Ok(())
    }
}

#[async_trait]
impl Executor for FakeExec {
    async fn create(&self, spec: &ContainerSpec) -> Result<Arc<dyn Container>> {
        if !self.create_delay.is_zero() {
            tokio::time::sleep(self.create_delay).await;
        }
        if self.c.fail_create.load(Ordering::SeqCst) {
            return Err(Error::backend("fake", false, "no resources"));
        }
        self.c.created.fetch_add(1, Ordering::SeqCst);
        self.c.created_specs.lock().unwrap().push(spec.clone());
        Ok(Arc::new(FakeContainer {
            name: spec.name.clone(),
            c: Arc::clone(&self.c),
            gone: AtomicBool::new(false),
        }))
    }
    fn runtimes(&self) -> RuntimeManifest {
        let mut m = RuntimeManifest::new();
        m.add(RuntimeSpec::new("nodejs:20", true));
        m.add(RuntimeSpec::new("python:3.11", true));
        m
    }
    fn capabilities(&self) -> ExecCapabilities {
        ExecCapabilities::new(false, false, true, false)
    }
}

fn exec() -> (Arc<FakeExec>, Arc<Counters>) {
    let c = Arc::new(Counters::default());
    (
        Arc::new(FakeExec {
            c: Arc::clone(&c),
            create_delay: Duration::ZERO,
        }),
        c,
    )
}

fn cfg(user_mb: u64) -> PoolConfig {
    PoolConfig::new(user_mb).with_stem_cells(vec![])
}

fn key(action: &str, rev: &str, mem: u64) -> ContainerKey {
    ContainerKey::new("guest", &format!("guest/{action}"), rev, "nodejs:20", mem)
}

fn req<'a>(k: &'a ContainerKey, mem: u64, wait: Duration) -> AcquireRequest<'a> {
    AcquireRequest {
        key: k,
        kind: "nodejs:20",
        memory_mb: mem,
        image: None,
        name: "guest_act",
        deadline: Instant::now() + wait,
    }
}

const W: Duration = Duration::from_secs(5);

/// Polls `f` until it holds, for at most 5 s.
async fn eventually(what: &str, f: impl FnMut() -> bool) {
    let met = faas_core::testkit::eventually(Duration::from_secs(5), f).await;
    assert!(met, "timed out waiting for: {what}");
}

#[tokio::test]
async fn cold_then_warm_and_init_flag_kept() {
    let (e, c) = exec();
    let pool = ContainerPool::new(e, cfg(1024)).unwrap();
    let k = key("a", "1", 256);
    let mut l = pool.acquire(&req(&k, 256, W)).await.unwrap();
    assert_eq!(l.origin(), Origin::Cold);
    assert!(!l.is_initialized());
    let name = l.container().id().to_string();
    assert!(name.starts_with("wsk0_"), "{name}");
    assert!(name.ends_with("_guest_act"), "{name}");
    l.mark_initialized();
    assert_eq!(pool.stats().in_use, 1);
    assert_eq!(pool.stats().used_mb, 256);
    pool.release(l, Release::Reuse);
    let s = pool.stats();
    assert_eq!((s.in_use, s.idle, s.used_mb, s.free_mb), (0, 1, 256, 768));

    let l = pool.acquire(&req(&k, 256, W)).await.unwrap();
    assert_eq!(l.origin(), Origin::Warm);
    assert!(
        l.is_initialized(),
        "init must not run twice in one container"
    );
    assert_eq!(l.container().id(), name);
    l.release(Release::Reuse);
    let s = pool.stats();
    assert_eq!((s.cold_starts, s.warm_hits), (1, 1));
    assert_eq!(c.created.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn another_revision_or_namespace_is_not_reused() {
    let (e, c) = exec();
    let pool = ContainerPool::new(e, cfg(2048)).unwrap();
    let k1 = key("a", "1", 256);
    pool.acquire(&req(&k1, 256, W))
        .await
        .unwrap()
        .release(Release::Reuse);
    let k2 = key("a", "2", 256);
    let l = pool.acquire(&req(&k2, 256, W)).await.unwrap();
    assert_eq!(l.origin(), Origin::Cold);
    l.release(Release::Reuse);
    let other_ns = ContainerKey::new("other", "guest/a", "1", "nodejs:20", 256);
    let l = pool.acquire(&req(&other_ns, 256, W)).await.unwrap();
    assert_eq!(l.origin(), Origin::Cold);
    drop(l);
    assert_eq!(c.created.load(Ordering::SeqCst), 3);
    assert_eq!(pool.stats().warm_hits, 0);
}

#[tokio::test]
async fn container_serves_one_activation_at_a_time() {
    let (e, _c) = exec();
    let pool = ContainerPool::new(e, cfg(2048)).unwrap();
    let k = key("a", "1", 256);
    let a = pool.acquire(&req(&k, 256, W)).await.unwrap();
    let b = pool.acquire(&req(&k, 256, W)).await.unwrap();
    assert_ne!(a.container().id(), b.container().id());
    assert_eq!(pool.stats().cold_starts, 2);
}

#[tokio::test]
async fn destroy_on_release_and_on_drop() {
    let (e, c) = exec();
    let pool = ContainerPool::new(e, cfg(1024)).unwrap();
    let k = key("a", "1", 256);
    let l = pool.acquire(&req(&k, 256, W)).await.unwrap();
    pool.release(l, Release::Destroy);
    assert_eq!(pool.stats().used_mb, 0, "memory is given back at once");
    eventually("destroyed", || c.destroyed.load(Ordering::SeqCst) == 1).await;
    let l = pool.acquire(&req(&k, 256, W)).await.unwrap();
    assert_eq!(l.origin(), Origin::Cold);
    drop(l);
    eventually("dropped lease destroyed", || {
        c.destroyed.load(Ordering::SeqCst) == 2
    })
    .await;
    let s = pool.stats();
    assert_eq!((s.in_use, s.idle, s.used_mb, s.destroyed), (0, 0, 0, 2));
}

#[tokio::test]
async fn status_decides_reuse() {
    use faas_core::StatusCode;
    assert_eq!(Release::for_status(StatusCode::Success), Release::Reuse);
    assert_eq!(
        Release::for_status(StatusCode::ApplicationError),
        Release::Reuse
    );
    assert_eq!(
        Release::for_status(StatusCode::DeveloperError),
        Release::Destroy
    );
    assert_eq!(
        Release::for_status(StatusCode::WhiskError),
        Release::Destroy
    );
}

#[tokio::test]
async fn prewarmed_stem_cell_is_taken_and_replaced() {
    let (e, c) = exec();
    let config =
        PoolConfig::new(1024).with_stem_cells(vec![StemCell::new("nodejs:default", 256, 1)]);
    let pool = ContainerPool::new(e, config).unwrap();
    eventually("one prewarmed", || pool.stats().prewarmed == 1).await;
    let spec = c.created_specs.lock().unwrap()[0].clone();
    assert_eq!(
        spec.kind, "nodejs:20",
        "nodejs:default resolved through the executor"
    );
    assert!(spec.name.contains("_prewarm_nodejs_20"), "{}", spec.name);

    // Another memory size or a blackbox does not use it.
    let k128 = key("x", "1", 128);
    let l = pool.acquire(&req(&k128, 128, W)).await.unwrap();
    assert_eq!(l.origin(), Origin::Cold);
    drop(l);
    let kb = key("bb", "1", 256);
    let mut r = req(&kb, 256, W);
    r.image = Some("user/img");
    let l = pool.acquire(&r).await.unwrap();
    assert_eq!(l.origin(), Origin::Cold);
    drop(l);
    assert_eq!(pool.stats().prewarmed, 1);

    let k = key("a", "1", 256);
    let l = pool.acquire(&req(&k, 256, W)).await.unwrap();
    assert_eq!(l.origin(), Origin::Prewarmed);
    assert!(!l.is_initialized());
    assert_eq!(pool.stats().prewarm_hits, 1);
    eventually("replacement prewarmed", || pool.stats().prewarmed == 1).await;
    // The used stem cell now belongs to the action: it comes back warm.
    let id = l.container().id().to_string();
    l.release(Release::Reuse);
    let l = pool.acquire(&req(&k, 256, W)).await.unwrap();
    assert_eq!(l.origin(), Origin::Warm);
    assert_eq!(l.container().id(), id);
    assert!(pool.stats().used_mb <= 1024);
}

// Paused time: the pause lets the pool's prewarming run to its end and costs no real time.
#[tokio::test(start_paused = true)]
async fn unknown_stem_kind_is_skipped() {
    let (e, c) = exec();
    let config =
        PoolConfig::new(1024).with_stem_cells(vec![StemCell::new("cobol:default", 256, 2)]);
    let pool = ContainerPool::with_clock(e, config, Arc::new(TokioClock)).unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(pool.stats().prewarmed, 0);
    assert_eq!(c.created.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn evicts_idle_lru_first_when_memory_is_full() {
    let (e, c) = exec();
    let clock = Arc::new(ManualClock::new());
    let pool =
        ContainerPool::with_clock(e, cfg(512), Arc::clone(&clock) as Arc<dyn Clock>).unwrap();
    let (ka, kb, kc) = (key("a", "1", 256), key("b", "1", 256), key("c", "1", 256));
    let a = pool.acquire(&req(&ka, 256, W)).await.unwrap();
    let b = pool.acquire(&req(&kb, 256, W)).await.unwrap();
    let a_name = a.container().id().to_string();
    a.release(Release::Reuse); // a is least recently used
    clock.advance(Duration::from_millis(2));
    b.release(Release::Reuse);
    assert_eq!(pool.stats().free_mb, 0);
    let l = pool.acquire(&req(&kc, 256, W)).await.unwrap();
    assert_eq!(l.origin(), Origin::Cold);
    let s = pool.stats();
    assert_eq!((s.evictions, s.idle, s.used_mb), (1, 1, 512));
    eventually("a destroyed", || c.destroyed.load(Ordering::SeqCst) == 1).await;
    assert_eq!(c.destroyed_names.lock().unwrap()[0], a_name);
    // b is still warm
    let lb = pool.acquire(&req(&kb, 256, W)).await.unwrap();
    assert_eq!(lb.origin(), Origin::Warm);
}

// Paused time: each holder's work (a 10 ms sleep) costs no real time.
#[tokio::test(start_paused = true)]
async fn queues_fifo_until_released() {
    let (e, _c) = exec();
    let pool = ContainerPool::with_clock(e, cfg(256), Arc::new(TokioClock)).unwrap();
    let (ka, kb, kc) = (key("a", "1", 256), key("b", "1", 256), key("c", "1", 256));
    let a = pool.acquire(&req(&ka, 256, W)).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let spawn = |k: ContainerKey, tag: &'static str| {
        let pool = pool.clone();
        let order = Arc::clone(&order);
        tokio::spawn(async move {
            let l = pool.acquire(&req(&k, 256, W)).await.unwrap();
            order.lock().unwrap().push(tag);
            tokio::time::sleep(Duration::from_millis(10)).await;
            l.release(Release::Reuse);
        })
    };
    let tb = spawn(kb, "b");
    eventually("b queued", || pool.stats().waiting == 1).await;
    let tc = spawn(kc, "c");
    eventually("c queued", || pool.stats().waiting == 2).await;
    // While others queue, even a warm-able request queues behind them.
    assert_eq!(pool.stats().queued, 2);
    a.release(Release::Reuse);
    tokio::time::timeout(W, tb).await.unwrap().unwrap();
    tokio::time::timeout(W, tc).await.unwrap().unwrap();
    assert_eq!(*order.lock().unwrap(), vec!["b", "c"]);
    let s = pool.stats();
    assert_eq!((s.waiting, s.in_use, s.evictions), (0, 0, 2));
    assert!(s.used_mb <= 256);
}

#[tokio::test]
async fn queue_wait_is_bounded_by_the_deadline() {
    let (e, _c) = exec();
    let pool = ContainerPool::new(e, cfg(256)).unwrap();
    let (ka, kb) = (key("a", "1", 256), key("b", "1", 256));
    let a = pool.acquire(&req(&ka, 256, W)).await.unwrap();
    let t = Instant::now();
    let err = pool
        .acquire(&req(&kb, 256, Duration::from_millis(80)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(t.elapsed() >= Duration::from_millis(70));
    assert_eq!(pool.stats().waiting, 0);
    // A cancelled (dropped) waiter leaves nothing behind either.
    let r = req(&kb, 256, W);
    let fut = pool.acquire(&r);
    assert!(
        tokio::time::timeout(Duration::from_millis(30), fut)
            .await
            .is_err()
    );
    assert_eq!(pool.stats().waiting, 0);
    a.release(Release::Reuse);
    let s = pool.stats();
    assert_eq!((s.in_use, s.idle, s.used_mb), (0, 1, 256));
}

#[tokio::test]
async fn oversized_request_fails_at_once() {
    let (e, _c) = exec();
    let pool = ContainerPool::new(e, cfg(256)).unwrap();
    let k = key("a", "1", 512);
    let err = pool.acquire(&req(&k, 512, W)).await.unwrap_err();
    assert_eq!(err.status(), 400);
}

#[tokio::test]
async fn stem_cells_are_kept_unless_nothing_else_can_fit() {
    let (e, _c) = exec();
    let config = PoolConfig::new(512).with_stem_cells(vec![StemCell::new("nodejs:20", 256, 1)]);
    let pool = ContainerPool::new(e, config).unwrap();
    eventually("prewarmed", || pool.stats().prewarmed == 1).await;
    let (ka, kb) = (key("a", "1", 256), key("b", "1", 256));
    let mut r = req(&ka, 256, W);
    r.kind = "python:3.11";
    let a = pool.acquire(&r).await.unwrap();
    // Memory is full with a busy container and a stem cell: a second python action queues
    // rather than evicting the stem cell.
    let mut r = req(&kb, 256, Duration::from_millis(50));
    r.kind = "python:3.11";
    assert!(matches!(pool.acquire(&r).await, Err(Error::Timeout { .. })));
    assert_eq!(pool.stats().prewarmed, 1);
    drop(a);

    // A pool too small to hold a stem cell and the request evicts the stem cell.
    let (e, _c) = exec();
    let config = PoolConfig::new(256).with_stem_cells(vec![StemCell::new("nodejs:20", 256, 1)]);
    let pool = ContainerPool::new(e, config).unwrap();
    eventually("prewarmed", || pool.stats().prewarmed == 1).await;
    let mut r = req(&ka, 256, W);
    r.kind = "python:3.11";
    let l = pool.acquire(&r).await.unwrap();
    assert_eq!(l.origin(), Origin::Cold);
    let s = pool.stats();
    assert_eq!((s.prewarmed, s.evictions, s.used_mb), (0, 1, 256));
}

#[tokio::test]
async fn create_failure_gives_memory_back() {
    let (e, c) = exec();
    let pool = ContainerPool::new(e, cfg(256)).unwrap();
    c.fail_create.store(true, Ordering::SeqCst);
    let k = key("a", "1", 256);
    assert!(pool.acquire(&req(&k, 256, W)).await.is_err());
    let s = pool.stats();
    assert_eq!((s.used_mb, s.starting, s.create_failures), (0, 0, 1));
    c.fail_create.store(false, Ordering::SeqCst);
    assert!(pool.acquire(&req(&k, 256, W)).await.is_ok());
}

#[tokio::test]
async fn reaper_removes_idle_containers() {
    let (e, c) = exec();
    let pool =
        ContainerPool::new(e, cfg(1024).with_idle_timeout(Duration::from_millis(60))).unwrap();
    let k = key("a", "1", 256);
    pool.acquire(&req(&k, 256, W))
        .await
        .unwrap()
        .release(Release::Reuse);
    assert_eq!(pool.stats().idle, 1);
    eventually("reaped", || c.destroyed.load(Ordering::SeqCst) == 1).await;
    let s = pool.stats();
    assert_eq!((s.idle, s.idle_removed, s.used_mb), (0, 1, 0));
}

#[tokio::test]
async fn paused_after_grace_and_resumed_before_reuse() {
    let (e, c) = exec();
    let config = cfg(1024).with_pause_grace(Some(Duration::from_millis(40)));
    let pool = ContainerPool::new(e, config).unwrap();
    let k = key("a", "1", 256);
    let mut l = pool.acquire(&req(&k, 256, W)).await.unwrap();
    l.mark_initialized();
    l.release(Release::Reuse);
    eventually("paused", || pool.stats().paused == 1).await;
    assert_eq!(c.paused.load(Ordering::SeqCst), 1);
    assert_eq!(pool.stats().used_mb, 256);
    let l = pool.acquire(&req(&k, 256, W)).await.unwrap();
    assert_eq!(l.origin(), Origin::Warm);
    assert!(l.is_initialized());
    assert_eq!(c.resumed.load(Ordering::SeqCst), 1);
    assert_eq!(pool.stats().paused, 0);
}

#[tokio::test]
async fn request_waits_for_a_finishing_container_of_its_action() {
    let (e, c) = exec();
    let pool = ContainerPool::new(e, cfg(1024).with_drain_wait(Duration::from_secs(2))).unwrap();
    let k = key("a", "1", 256);
    let mut l = pool.acquire(&req(&k, 256, W)).await.unwrap();
    let name = l.container().id().to_string();
    l.mark_finishing();
    let p = pool.clone();
    let k2 = k.clone();
    let t = tokio::spawn(async move {
        let l = p.acquire(&req(&k2, 256, W)).await.unwrap();
        (l.origin(), l.container().id().to_string())
    });
    eventually("waiting for the finishing one", || {
        pool.stats().waiting == 1
    })
    .await;
    l.release(Release::Reuse);
    let (origin, got) = tokio::time::timeout(W, t).await.unwrap().unwrap();
    assert_eq!((origin, got), (Origin::Warm, name));
    assert_eq!(c.created.load(Ordering::SeqCst), 1);

    // If the finishing container is destroyed, the waiter cold starts at once.
    let mut l = pool.acquire(&req(&k, 256, W)).await.unwrap();
    l.mark_finishing();
    let p = pool.clone();
    let k2 = k.clone();
    let t = tokio::spawn(async move { p.acquire(&req(&k2, 256, W)).await.unwrap().origin() });
    eventually("waiting", || pool.stats().waiting == 1).await;
    l.release(Release::Destroy);
    let origin = tokio::time::timeout(Duration::from_secs(1), t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(origin, Origin::Cold);
}

#[tokio::test]
async fn drain_wait_is_bounded() {
    let (e, _c) = exec();
    let pool = ContainerPool::new(e, cfg(1024).with_drain_wait(Duration::from_millis(30))).unwrap();
    let k = key("a", "1", 256);
    let mut l = pool.acquire(&req(&k, 256, W)).await.unwrap();
    l.mark_finishing();
    let t = Instant::now();
    let l2 = pool.acquire(&req(&k, 256, W)).await.unwrap();
    assert_eq!(l2.origin(), Origin::Cold);
    assert!(t.elapsed() >= Duration::from_millis(25));
    assert_eq!(pool.stats().waiting, 0);
    drop(l);
}

#[tokio::test]
async fn shutdown_destroys_everything_and_fails_waiters() {
    let (e, c) = exec();
    let config = PoolConfig::new(512).with_stem_cells(vec![StemCell::new("nodejs:20", 256, 1)]);
    let pool = ContainerPool::new(e, config).unwrap();
    eventually("prewarmed", || pool.stats().prewarmed == 1).await;
    let (ka, kb) = (key("a", "1", 256), key("b", "1", 256));
    let mut r = req(&ka, 256, W);
    r.kind = "python:3.11";
    let busy = pool.acquire(&r).await.unwrap();
    let p = pool.clone();
    let waiter = tokio::spawn(async move {
        let mut r = req(&kb, 256, W);
        r.kind = "python:3.11";
        p.acquire(&r).await.map(|_| ())
    });
    eventually("queued", || pool.stats().waiting == 1).await;
    tokio::time::timeout(W, pool.shutdown()).await.unwrap();
    let err = tokio::time::timeout(W, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.status(), 503);
    assert_eq!(c.destroyed.load(Ordering::SeqCst), 1, "the stem cell");
    // The leased container is destroyed when it comes back, even if asked to keep it.
    busy.release(Release::Reuse);
    eventually("busy destroyed", || c.destroyed.load(Ordering::SeqCst) == 2).await;
    assert!(pool.acquire(&req(&ka, 256, W)).await.is_err());
    assert_eq!(pool.stats().used_mb, 0);
}

#[tokio::test]
async fn env_is_passed_to_new_containers() {
    let (e, c) = exec();
    let pool = ContainerPool::new(e, cfg(1024).with_env("__OW_API_HOST", "http://h:1")).unwrap();
    let k = key("a", "1", 256);
    drop(pool.acquire(&req(&k, 256, W)).await.unwrap());
    let spec = c.created_specs.lock().unwrap()[0].clone();
    assert_eq!(
        spec.env.get("__OW_API_HOST").map(String::as_str),
        Some("http://h:1")
    );
    assert_eq!(spec.memory_mb, 256);
}

// Paused time: the creation delays and each holder's work cost no real time.
#[tokio::test(start_paused = true)]
async fn many_concurrent_acquires_respect_memory() {
    let c = Arc::new(Counters::default());
    let e = Arc::new(FakeExec {
        c: Arc::clone(&c),
        create_delay: Duration::from_millis(2),
    });
    let pool = ContainerPool::with_clock(e, cfg(1024), Arc::new(TokioClock)).unwrap();
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let pool = pool.clone();
        let peak = Arc::clone(&peak);
        tasks.push(tokio::spawn(async move {
            let k = key(&format!("a{}", i % 6), "1", 256);
            let l = pool.acquire(&req(&k, 256, W)).await.unwrap();
            let used = pool.stats().used_mb as usize;
            peak.fetch_max(used, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(3)).await;
            l.release(if i % 5 == 0 {
                Release::Destroy
            } else {
                Release::Reuse
            });
        }));
    }
    for t in tasks {
        tokio::time::timeout(W, t).await.unwrap().unwrap();
    }
    assert!(peak.load(Ordering::SeqCst) <= 1024);
    let s = pool.stats();
    assert_eq!((s.in_use, s.waiting, s.starting), (0, 0, 0));
    assert_eq!(s.warm_hits + s.cold_starts + s.prewarm_hits, 40);
    assert!(s.used_mb <= 1024);
    pool.shutdown().await;
    let created = c.created.load(Ordering::SeqCst);
    eventually("all destroyed", || {
        c.destroyed.load(Ordering::SeqCst) == created
    })
    .await;
}
