//! The pool's tests.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::executor::{ExecCapabilities, LogCollection, ProxyError, ProxyResponse};
use faas_core::{Container, RuntimeManifest, RuntimeSpec};

use super::*;

#[derive(Debug, Default)]
struct Fake {
    created: AtomicUsize,
    destroyed: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct FakeContainer(Arc<AtomicUsize>);

#[async_trait]
impl Container for FakeContainer {
    fn id(&self) -> &str {
        "fake"
    }
    async fn init(&self, _: Bytes, _: Duration) -> Result<ProxyResponse, ProxyError> {
        Err(ProxyError::Timeout)
    }
    async fn run(&self, _: Bytes, _: Duration) -> Result<ProxyResponse, ProxyError> {
        Err(ProxyError::Timeout)
    }
    async fn logs(&self, _: u64, _: bool) -> Result<LogCollection> {
        Ok(LogCollection::default())
    }
    async fn pause(&self) -> Result<()> {
        Ok(())
    }
    async fn resume(&self) -> Result<()> {
        Ok(())
    }
    async fn destroy(&self) -> Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[async_trait]
impl Executor for Fake {
    async fn create(&self, _: &ContainerSpec) -> Result<Arc<dyn Container>> {
        // Slow enough that a replacement stem cell is not ready for the next request.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.created.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::new(FakeContainer(Arc::clone(&self.destroyed))))
    }
    fn runtimes(&self) -> RuntimeManifest {
        let mut m = RuntimeManifest::new();
        m.add(RuntimeSpec::new("nodejs:20", true));
        m
    }
    fn capabilities(&self) -> ExecCapabilities {
        ExecCapabilities::new(false, false, true, false)
    }
}

#[test]
fn reactive_count_follows_openwhisk() {
    // runtimes.json: minCount 1, maxCount 4, threshold 1, increment 1.
    let r = ReactivePrewarm::new(1, 4, Duration::from_secs(120));
    assert_eq!(r.desired(0), 1);
    assert_eq!(r.desired(1), 1);
    assert_eq!(r.desired(3), 3);
    assert_eq!(r.desired(100), 4);
    // threshold 2, increment 1: 4 cold starts → 2.
    let r = r.with_scaling(2, 1);
    assert_eq!((r.desired(3), r.desired(4), r.desired(5)), (1, 2, 2));
    let r = ReactivePrewarm::new(0, 10, Duration::from_secs(1)).with_scaling(1, 3);
    assert_eq!((r.desired(0), r.desired(2), r.desired(9)), (0, 6, 10));
    assert_eq!(ReactivePrewarm::new(3, 1, Duration::ZERO).max_count, 3);
}

async fn eventually(pool: &ContainerPool, what: &str, f: impl Fn(&PoolStats) -> bool) {
    let met = faas_core::testkit::eventually(Duration::from_secs(60), || f(&pool.stats())).await;
    assert!(met, "{what}: {:?}", pool.stats());
}

// Paused time: the reaper's ticks, the fake executor's creation delay and the pool's clock
// (a `TokioClock`) all move with Tokio's clock, so the test waits no real time.
#[tokio::test(start_paused = true)]
async fn reactive_stem_cells_scale_with_cold_starts_and_expire() {
    let fake = Arc::new(Fake::default());
    let destroyed = Arc::clone(&fake.destroyed);
    let cell = StemCell::new("nodejs:default", 128, 1)
        .with_reactive(ReactivePrewarm::new(1, 3, Duration::from_millis(400)).with_scaling(2, 1));
    let config = PoolConfig::new(2048)
        .with_stem_cells(vec![cell])
        .with_prewarm_scale_interval(Duration::from_millis(250));
    let pool = ContainerPool::with_clock(
        Arc::clone(&fake) as Arc<dyn Executor>,
        config,
        Arc::new(faas_core::time::TokioClock),
    )
    .unwrap();
    eventually(&pool, "the initial stem cell", |s| s.prewarmed == 1).await;

    // Seven requests at once: the stem cell serves one, six are cold starts.
    let keys: Vec<_> = (0..7)
        .map(|i| ContainerKey::new("ns", &format!("a{i}"), "1", "nodejs:20", 128))
        .collect();
    let acquires = keys.iter().map(|key| {
        let pool = pool.clone();
        async move {
            let req = AcquireRequest {
                key,
                kind: "nodejs:20",
                memory_mb: 128,
                image: None,
                name: "a",
                deadline: Instant::now() + Duration::from_secs(5),
            };
            pool.acquire(&req).await.unwrap()
        }
    });
    let leases = futures::future::join_all(acquires).await;
    let s = pool.stats();
    assert_eq!((s.prewarm_hits, s.cold_starts), (1, 6), "{s:?}");
    // The next rescaling keeps 6 / 2 × 1 = 3 ready.
    eventually(&pool, "three stem cells", |s| s.prewarmed == 3).await;
    for l in leases {
        l.release(Release::Destroy);
    }
    // Unused, they expire, and with no cold starts the count falls back to min_count.
    eventually(&pool, "back to one stem cell", |s| {
        s.prewarmed == 1 && s.starting == 0
    })
    .await;
    assert!(destroyed.load(Ordering::SeqCst) >= 7 + 2);
    // The survivor is recycled when it expires in turn (a fresh one replaces it).
    let created = fake.created.load(Ordering::SeqCst);
    eventually(&pool, "a recycled stem cell", |_| {
        fake.created.load(Ordering::SeqCst) > created
    })
    .await;
    eventually(&pool, "one stem cell", |s| s.prewarmed == 1).await;
    pool.shutdown().await;
}
