//! The container pool (reference §7.2/§7.3): warm reuse, prewarmed stem cells, memory
//! accounting, LRU eviction and FIFO queueing, over any [`Executor`].
//!
//! # Scheduling
//!
//! [`ContainerPool::acquire`] hands out a [`Lease`] on one container, which serves one activation
//! at a time (intra-container concurrency 1). In order, it takes:
//!
//! 1. **warm**: an idle container created for the same [`ContainerKey`] (invoking namespace,
//!    action, revision, kind, memory), the most recently used first;
//! 2. **prewarmed**: a stem cell of the same kind and memory (a replacement is started at once
//!    when memory allows; see [Reactive prewarming](#reactive-prewarming));
//! 3. **cold**: a new container, when `busy + idle + prewarmed + starting + memory ≤ user memory`;
//! 4. **evict**: idle warm containers, least recently used first, until the new one fits
//!    (prewarmed ones are kept, unless the request could never fit beside them);
//! 5. otherwise the request **queues** (FIFO) until a container is released or removed, at most
//!    until its deadline.
//!
//! While requests queue, new ones queue behind them, so the head is never starved.
//!
//! A request that finds no idle container of its key while one of its key is *finishing* (its
//! run is over, see [`Lease::mark_finishing`]) waits up to [`PoolConfig::drain_wait`] for it
//! instead of cold starting: sequential callers then always find their container.
//!
//! # Reactive prewarming
//!
//! A [`StemCell`] with [`StemCell::reactive`] settings scales with demand as OpenWhisk's
//! `reactive` stem cells do (reference §7.2): its prewarmed containers expire after `ttl`
//! unused, and every [`PoolConfig::prewarm_scale_interval`] the number kept ready becomes
//! `min(max(min_count, cold_starts / threshold × increment), max_count)`, where `cold_starts`
//! counts the cold starts of that kind and memory during the past interval. It starts at
//! `initial_count`; between rescalings, a prewarmed container that is taken or expires is
//! replaced up to the current count.
//!
//! # Lifecycle
//!
//! [`ContainerPool::release`] puts a container back (it stays initialized for its action) or
//! destroys it. Memory is given back the moment a container is handed over for destruction;
//! the destruction itself runs in the background. A background reaper removes containers idle
//! for [`PoolConfig::idle_timeout`] and, when [`PoolConfig::pause_grace`] is set, pauses idle
//! containers after that grace (they are resumed before reuse). [`ContainerPool::shutdown`]
//! destroys everything.
//!
//! # Concurrency
//!
//! All state sits behind one `std::sync::Mutex`, held only for short, non-async sections: a
//! warm acquire or release is a hash lookup and a `Vec` push/pop, with no allocation and no task
//! hop. Slow work (creating, pausing, destroying containers) runs outside the lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use faas_core::{Container, ContainerSpec, Error, Executor, Result};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A kind of prewarmed container to keep ready ("stem cell", reference §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StemCell {
    /// The runtime kind; `family:default` is resolved against the executor's runtimes.
    pub kind: String,
    /// Memory, MB.
    pub memory_mb: u64,
    /// How many to keep ready (at start, for reactive ones).
    pub initial_count: usize,
    /// Scale the count with the cold starts (OpenWhisk's `reactive` settings); `None`: keep
    /// `initial_count` ready always.
    pub reactive: Option<ReactivePrewarm>,
}

impl StemCell {
    /// `count` stem cells of `kind` with `memory_mb`.
    pub fn new(kind: impl Into<String>, memory_mb: u64, count: usize) -> Self {
        Self {
            kind: kind.into(),
            memory_mb,
            initial_count: count,
            reactive: None,
        }
    }
    /// With reactive scaling.
    pub fn with_reactive(mut self, reactive: ReactivePrewarm) -> Self {
        self.reactive = Some(reactive);
        self
    }
}

/// OpenWhisk's `reactive` stem-cell settings (`runtimes.json`, e.g. `minCount 1, maxCount 4,
/// ttl 2 min, threshold 1, increment 1`); see [Reactive prewarming](self#reactive-prewarming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactivePrewarm {
    /// Fewest kept ready.
    pub min_count: usize,
    /// Most kept ready.
    pub max_count: usize,
    /// An unused prewarmed container is removed after this long.
    pub ttl: Duration,
    /// Cold starts per `increment` more containers.
    pub threshold: u64,
    /// Containers added per `threshold` cold starts.
    pub increment: usize,
}

impl ReactivePrewarm {
    /// `min_count..=max_count` containers, expiring after `ttl`, one more per cold start.
    pub fn new(min_count: usize, max_count: usize, ttl: Duration) -> Self {
        Self {
            min_count,
            max_count: max_count.max(min_count),
            ttl,
            threshold: 1,
            increment: 1,
        }
    }
    /// With `increment` more containers per `threshold` cold starts.
    pub fn with_scaling(mut self, threshold: u64, increment: usize) -> Self {
        self.threshold = threshold.max(1);
        self.increment = increment;
        self
    }
    /// The count to keep after `cold_starts` cold starts in an interval:
    /// `min(max(min_count, cold_starts / threshold × increment), max_count)`.
    pub fn desired(&self, cold_starts: u64) -> usize {
        let steps = usize::try_from(cold_starts / self.threshold.max(1)).unwrap_or(usize::MAX);
        steps
            .saturating_mul(self.increment)
            .max(self.min_count)
            .min(self.max_count)
    }
}

/// Settings of a [`ContainerPool`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Memory for containers, MB (OpenWhisk's `user-memory`; default 1024).
    pub user_memory_mb: u64,
    /// Stem cells (default: one of `nodejs:default` at 256 MB).
    pub stem_cells: Vec<StemCell>,
    /// Idle containers are removed after this long (default 10 min).
    pub idle_timeout: Duration,
    /// Idle containers are paused after this long (default: never).
    pub pause_grace: Option<Duration>,
    /// How long a request waits for a finishing container of its action before cold starting
    /// (default 50 ms).
    pub drain_wait: Duration,
    /// Prefix of container names (default `wsk0`).
    pub name_prefix: String,
    /// Environment given to every container at creation (e.g. `__OW_API_HOST`).
    pub env: BTreeMap<String, String>,
    /// Longest wait of [`ContainerPool::shutdown`] for containers being created or destroyed.
    pub shutdown_timeout: Duration,
    /// How often reactive stem cells are rescaled from the cold starts (default 10 min, as
    /// OpenWhisk).
    pub prewarm_scale_interval: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            user_memory_mb: 1024,
            stem_cells: vec![StemCell::new("nodejs:default", 256, 1)],
            idle_timeout: Duration::from_secs(600),
            pause_grace: None,
            drain_wait: Duration::from_millis(50),
            name_prefix: "wsk0".into(),
            env: BTreeMap::new(),
            shutdown_timeout: Duration::from_secs(10),
            prewarm_scale_interval: Duration::from_secs(600),
        }
    }
}

impl PoolConfig {
    /// The defaults with `user_memory_mb`.
    pub fn new(user_memory_mb: u64) -> Self {
        Self {
            user_memory_mb,
            ..Self::default()
        }
    }
    /// With these stem cells (empty: no prewarming).
    pub fn with_stem_cells(mut self, cells: Vec<StemCell>) -> Self {
        self.stem_cells = cells;
        self
    }
    /// With the idle timeout.
    pub fn with_idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }
    /// With the pause grace (`None`: never pause).
    pub fn with_pause_grace(mut self, d: Option<Duration>) -> Self {
        self.pause_grace = d;
        self
    }
    /// With the drain wait.
    pub fn with_drain_wait(mut self, d: Duration) -> Self {
        self.drain_wait = d;
        self
    }
    /// With the container name prefix.
    pub fn with_name_prefix(mut self, p: impl Into<String>) -> Self {
        self.name_prefix = p.into();
        self
    }
    /// With an environment variable for every container.
    pub fn with_env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }
    /// With the rescaling interval of reactive stem cells.
    pub fn with_prewarm_scale_interval(mut self, d: Duration) -> Self {
        self.prewarm_scale_interval = d;
        self
    }
}

/// What makes a warm container reusable: the invoking namespace, the action, its store
/// revision, kind and memory. Cheap to clone and compare.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ContainerKey(Arc<str>);

impl ContainerKey {
    /// The key of `action` (`ns/[pkg/]name`) at `revision`, invoked from `namespace`.
    pub fn new(namespace: &str, action: &str, revision: &str, kind: &str, memory_mb: u64) -> Self {
        Self(Arc::from(format!(
            "{namespace}\u{0}{action}\u{0}{revision}\u{0}{kind}\u{0}{memory_mb}"
        )))
    }
}

impl fmt::Debug for ContainerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ContainerKey")
            .field(&self.0.replace('\u{0}', "|"))
            .finish()
    }
}

/// One request for a container.
#[derive(Debug, Clone, Copy)]
pub struct AcquireRequest<'a> {
    /// The warm-reuse key.
    pub key: &'a ContainerKey,
    /// The runtime kind (`nodejs:20`, `blackbox`).
    pub kind: &'a str,
    /// Memory, MB.
    pub memory_mb: u64,
    /// The image of a blackbox action (never served by stem cells).
    pub image: Option<&'a str>,
    /// A name hint for new containers (filtered to `[A-Za-z0-9_]`).
    pub name: &'a str,
    /// Give up queueing at this instant.
    pub deadline: Instant,
}

/// Where a leased container came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An idle container of the same action (already initialized).
    Warm,
    /// A prewarmed stem cell.
    Prewarmed,
    /// Created for this request.
    Cold,
}

/// What to do with a container given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Keep it for its action (warm).
    Reuse,
    /// Destroy it (developer or whisk error, timeout).
    Destroy,
}

impl Release {
    /// OpenWhisk's rule: developer and whisk errors destroy the container, others keep it.
    pub fn for_status(status: faas_core::StatusCode) -> Self {
        match status {
            faas_core::StatusCode::DeveloperError | faas_core::StatusCode::WhiskError => {
                Self::Destroy
            }
            _ => Self::Reuse,
        }
    }
}

/// Counters and gauges of a pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Acquires served by an idle container of the same action.
    pub warm_hits: u64,
    /// Acquires served by a stem cell.
    pub prewarm_hits: u64,
    /// Acquires that created a container.
    pub cold_starts: u64,
    /// Idle containers removed to make room.
    pub evictions: u64,
    /// Idle containers removed by the reaper.
    pub idle_removed: u64,
    /// Containers destroyed (all causes, including shutdown), counted when done.
    pub destroyed: u64,
    /// Acquires that had to queue.
    pub queued: u64,
    /// Container creations that failed.
    pub create_failures: u64,
    /// Containers leased out now.
    pub in_use: usize,
    /// Idle warm containers now.
    pub idle: usize,
    /// Of those, paused.
    pub paused: usize,
    /// Prewarmed containers ready now.
    pub prewarmed: usize,
    /// Containers being created now (cold and prewarm).
    pub starting: usize,
    /// Requests queued now.
    pub waiting: usize,
    /// Memory accounted to containers, MB.
    pub used_mb: u64,
    /// `user memory − used`, MB.
    pub free_mb: u64,
}

struct Idle {
    container: Arc<dyn Container>,
    id: u64,
    memory_mb: u64,
    kind: Arc<str>,
    last_used: Instant,
    paused: bool,
    initialized: bool,
}

struct Prewarmed {
    container: Arc<dyn Container>,
    id: u64,
    kind: Arc<str>,
    memory_mb: u64,
    /// When a reactive stem cell's container is removed unused.
    expires: Option<Instant>,
}

/// What a queued request is given.
enum Grant {
    Warm(ContainerKey, Idle),
    Prewarm(Prewarmed),
    /// This much memory is reserved (counted as starting); create the container.
    Cold(u64),
    /// (Drain waiters only) the awaited container went away; schedule normally.
    Retry,
}

struct OwnedRequest {
    key: ContainerKey,
    kind: Arc<str>,
    memory_mb: u64,
    image: bool,
}

struct Waiter {
    id: u64,
    req: OwnedRequest,
    tx: oneshot::Sender<Grant>,
}

struct Stem {
    cell: StemCell,
    kind: Arc<str>,
    starting: usize,
    retry_after: Option<Instant>,
    failures: u32,
    /// How many to keep ready now (`initial_count`, rescaled for reactive cells).
    desired: usize,
    /// Cold starts of this kind and memory since the last rescaling.
    cold_starts: u64,
    /// When a reactive cell is rescaled next.
    next_scale: Instant,
}

#[derive(Default)]
struct Mem {
    busy: u64,
    idle: u64,
    prewarm: u64,
    starting: u64,
    prewarm_starting: u64,
    /// Idle containers taken out by the reaper to be paused.
    transit: u64,
}

impl Mem {
    fn used(&self) -> u64 {
        self.busy + self.idle + self.prewarm + self.starting + self.prewarm_starting + self.transit
    }
}

#[derive(Default)]
struct State {
    free: HashMap<ContainerKey, Vec<Idle>>,
    idle_count: usize,
    paused_count: usize,
    prewarmed: Vec<Prewarmed>,
    waiters: VecDeque<Waiter>,
    drain_waiters: Vec<Waiter>,
    draining: HashMap<ContainerKey, u32>,
    mem: Mem,
    stems: Vec<Stem>,
    in_use: usize,
    cold_starting: usize,
    destroying: usize,
    next_id: u64,
    shutdown: bool,
    stats: PoolStats,
}

/// Work decided under the lock and done after it.
#[derive(Default)]
struct Effects {
    destroy: Vec<Arc<dyn Container>>,
    start_prewarms: Vec<usize>,
}

struct Inner {
    executor: Arc<dyn Executor>,
    config: PoolConfig,
    state: Mutex<State>,
    rt: Handle,
    reaper: Mutex<Option<JoinHandle<()>>>,
}

/// A pool of containers over an [`Executor`]. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct ContainerPool {
    inner: Arc<Inner>,
}

impl fmt::Debug for ContainerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerPool")
            .field("executor", &self.inner.executor)
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A container leased from the pool for one activation.
///
/// Give it back with [`ContainerPool::release`] (or [`Lease::release`]). A lease dropped without
/// release destroys its container, so a cancelled activation never leaks one.
pub struct Lease {
    inner: Arc<Inner>,
    container: Arc<dyn Container>,
    /// Not yet released.
    live: bool,
    key: ContainerKey,
    kind: Arc<str>,
    id: u64,
    memory_mb: u64,
    initialized: bool,
    origin: Origin,
    finishing: bool,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("container", &self.container.id())
            .field("key", &self.key)
            .field("origin", &self.origin)
            .field("initialized", &self.initialized)
            .finish_non_exhaustive()
    }
}

fn lock(inner: &Inner) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the counters half-updated in a way that is
    // worse than stopping the pool, so a poisoned lock is used as is.
    inner.state.lock().unwrap_or_else(|p| p.into_inner())
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl ContainerPool {
    /// A pool over `executor`. Starts the configured stem cells and the idle reaper in the
    /// background, so it must be called inside a Tokio runtime (else an `Internal` error).
    ///
    /// Stem cells whose kind the executor does not offer are skipped with a warning.
    pub fn new(executor: Arc<dyn Executor>, config: PoolConfig) -> Result<Self> {
        let rt = Handle::try_current()
            .map_err(|_| Error::internal("ContainerPool::new needs a Tokio runtime"))?;
        let manifest = executor.runtimes();
        let mut stems = Vec::new();
        for cell in &config.stem_cells {
            match manifest.resolve(&cell.kind) {
                Ok(spec) if cell.initial_count > 0 || cell.reactive.is_some() => {
                    let mut cell = cell.clone();
                    cell.kind = spec.kind.clone();
                    stems.push(Stem {
                        kind: Arc::from(cell.kind.as_str()),
                        desired: cell.initial_count,
                        cold_starts: 0,
                        next_scale: Instant::now() + config.prewarm_scale_interval,
                        cell,
                        starting: 0,
                        retry_after: None,
                        failures: 0,
                    });
                }
                Ok(_) => {}
                Err(_) => tracing::warn!(
                    kind = %cell.kind,
                    "stem cell kind not offered by the executor; not prewarming it"
                ),
            }
        }
        let inner = Arc::new(Inner {
            executor,
            config,
            state: Mutex::new(State {
                stems,
                ..State::default()
            }),
            rt,
            reaper: Mutex::new(None),
        });
        let effects = {
            let mut st = lock(&inner);
            let mut fx = Effects::default();
            backfill(&inner.config, &mut st, &mut fx);
            fx
        };
        inner.apply(effects);
        let reaper = inner.rt.spawn(reaper_loop(Arc::downgrade(&inner)));
        *inner.reaper.lock().unwrap_or_else(|p| p.into_inner()) = Some(reaper);
        Ok(Self { inner })
    }

    /// The configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// The executor.
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.inner.executor
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> PoolStats {
        let st = lock(&self.inner);
        let mut s = st.stats;
        s.in_use = st.in_use;
        s.idle = st.idle_count;
        s.paused = st.paused_count;
        s.prewarmed = st.prewarmed.len();
        s.starting = st.cold_starting + st.stems.iter().map(|x| x.starting).sum::<usize>();
        s.waiting = st.waiters.len() + st.drain_waiters.len();
        s.used_mb = st.mem.used();
        s.free_mb = self.inner.config.user_memory_mb.saturating_sub(s.used_mb);
        s
    }

    /// Leases a container for `req` (warm, prewarmed, cold, after eviction, or after queueing).
    ///
    /// Fails with `Timeout` when the deadline passes while queued, `Unavailable` when the pool
    /// is shut down, `BadRequest` when the memory exceeds the pool's, and with the executor's
    /// error when creating the container failed.
    pub async fn acquire(&self, req: &AcquireRequest<'_>) -> Result<Lease> {
        let mut may_drain = true;
        loop {
            let grant = self.schedule_or_wait(req, &mut may_drain).await?;
            let lease = match grant {
                Grant::Warm(key, idle) => {
                    let paused = idle.paused;
                    let lease = self.inner.lease(key, idle, Origin::Warm);
                    // A runner killed while idle (from outside, or by its own detached
                    // processes) must not serve the next activation: drop it and look again.
                    if lease.container.is_dead() {
                        tracing::info!(
                            container = lease.container.id(),
                            "a warm container died while idle; destroying"
                        );
                        lease.release(Release::Destroy);
                        continue;
                    }
                    if paused && let Err(e) = lease.container.resume().await {
                        tracing::warn!(container = lease.container.id(), error = %e, "resume failed; destroying");
                        lease.release(Release::Destroy);
                        continue;
                    }
                    lease
                }
                Grant::Prewarm(p) => {
                    let idle = Idle {
                        container: p.container,
                        id: p.id,
                        memory_mb: p.memory_mb,
                        kind: Arc::clone(&p.kind),
                        last_used: Instant::now(),
                        paused: false,
                        initialized: false,
                    };
                    let lease = self.inner.lease(req.key.clone(), idle, Origin::Prewarmed);
                    if lease.container.is_dead() {
                        tracing::info!(
                            container = lease.container.id(),
                            "a prewarmed container died while idle; destroying"
                        );
                        lease.release(Release::Destroy);
                        continue;
                    }
                    lease
                }
                Grant::Cold(_) => self.create_cold(req).await?,
                Grant::Retry => continue,
            };
            return Ok(lease);
        }
    }

    /// Decides under the lock; queues (FIFO, or for a finishing container) when nothing fits.
    async fn schedule_or_wait(
        &self,
        req: &AcquireRequest<'_>,
        may_drain: &mut bool,
    ) -> Result<Grant> {
        let inner = &self.inner;
        let (rx, id, drain, effects) = {
            let mut st = lock(inner);
            if st.shutdown {
                return Err(Error::unavailable("the container pool is shut down"));
            }
            if req.memory_mb > inner.config.user_memory_mb {
                return Err(Error::bad_request(format!(
                    "memory {} MB exceeds the pool's {} MB",
                    req.memory_mb, inner.config.user_memory_mb
                )));
            }
            let mut fx = Effects::default();
            let r = ReqRef {
                key: req.key,
                kind: req.kind,
                memory_mb: req.memory_mb,
                image: req.image.is_some(),
            };
            // While requests queue, new ones queue behind them (FIFO).
            let mut drain = false;
            if st.waiters.is_empty() {
                if let Some(g) = try_warm(&mut st, &r) {
                    return Ok(g);
                }
                let draining = st.draining.get(req.key).copied().unwrap_or(0) as usize;
                drain = *may_drain
                    && draining
                        > st.drain_waiters
                            .iter()
                            .filter(|w| &w.req.key == req.key)
                            .count();
                if !drain && let Some(g) = try_schedule(&inner.config, &mut st, &r, &mut fx) {
                    backfill(&inner.config, &mut st, &mut fx);
                    drop(st);
                    inner.apply(fx);
                    return Ok(g);
                }
            }
            let (tx, rx) = oneshot::channel();
            st.next_id += 1;
            let id = st.next_id;
            let w = Waiter {
                id,
                req: OwnedRequest {
                    key: req.key.clone(),
                    kind: Arc::from(req.kind),
                    memory_mb: req.memory_mb,
                    image: req.image.is_some(),
                },
                tx,
            };
            if drain {
                st.drain_waiters.push(w);
            } else {
                st.stats.queued += 1;
                st.waiters.push_back(w);
            }
            (rx, id, drain, fx)
        };
        inner.apply(effects);
        let mut guard = WaitGuard {
            inner: Arc::clone(inner),
            id,
            drain,
            rx: Some(rx),
        };
        let deadline = if drain {
            req.deadline.min(Instant::now() + inner.config.drain_wait)
        } else {
            req.deadline
        };
        let got = match guard.rx.as_mut() {
            Some(rx) => tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), rx).await,
            None => return Err(Error::internal("pool waiter lost its channel")),
        };
        match got {
            Ok(Ok(grant)) => {
                guard.rx = None;
                Ok(grant)
            }
            Ok(Err(_)) => {
                guard.rx = None;
                Err(Error::unavailable("the container pool is shut down"))
            }
            Err(_) => match guard.cancel() {
                Some(grant) => Ok(grant),
                None if drain => {
                    *may_drain = false;
                    Ok(Grant::Retry)
                }
                None => Err(Error::Timeout {
                    operation: "waiting for a container".into(),
                }),
            },
        }
    }

    async fn create_cold(&self, req: &AcquireRequest<'_>) -> Result<Lease> {
        let inner = &self.inner;
        let mut reservation = ColdReservation {
            inner: Arc::clone(inner),
            memory_mb: req.memory_mb,
            armed: true,
        };
        let n = {
            let mut st = lock(inner);
            st.next_id += 1;
            st.next_id
        };
        let mut spec = ContainerSpec::new(
            format!("{}_{n}_{}", inner.config.name_prefix, sanitize(req.name)),
            req.kind,
            req.memory_mb,
        );
        if let Some(img) = req.image {
            spec = spec.with_image(img);
        }
        spec.env.clone_from(&inner.config.env);
        let created = inner.executor.create(&spec).await;
        let container = match created {
            Ok(c) => c,
            Err(e) => {
                lock(inner).stats.create_failures += 1;
                return Err(e);
            }
        };
        reservation.armed = false;
        let mut st = lock(inner);
        st.mem.starting -= req.memory_mb;
        st.cold_starting -= 1;
        st.mem.busy += req.memory_mb;
        st.in_use += 1;
        let shut = st.shutdown;
        drop(st);
        let lease = Lease {
            inner: Arc::clone(inner),
            container,
            live: true,
            key: req.key.clone(),
            kind: Arc::from(req.kind),
            id: n,
            memory_mb: req.memory_mb,
            initialized: false,
            origin: Origin::Cold,
            finishing: false,
        };
        if shut {
            lease.release(Release::Destroy);
            return Err(Error::unavailable("the container pool is shut down"));
        }
        Ok(lease)
    }

    /// Gives a leased container back: kept warm for its action, or destroyed.
    pub fn release(&self, lease: Lease, outcome: Release) {
        lease.release(outcome);
    }

    /// Destroys every container: idle and prewarmed ones at once, leased ones when released.
    /// Queued requests fail. Waits (up to [`PoolConfig::shutdown_timeout`]) for containers being
    /// created or destroyed.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        let fx = {
            let mut st = lock(inner);
            st.shutdown = true;
            let mut fx = Effects::default();
            for (_, v) in st.free.drain() {
                fx.destroy.extend(v.into_iter().map(|i| i.container));
            }
            st.mem.idle = 0;
            st.idle_count = 0;
            st.paused_count = 0;
            let pre: Vec<Prewarmed> = st.prewarmed.drain(..).collect();
            st.mem.prewarm = 0;
            fx.destroy.extend(pre.into_iter().map(|p| p.container));
            st.waiters.clear();
            st.drain_waiters.clear();
            fx
        };
        if let Some(h) = inner
            .reaper
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            h.abort();
        }
        inner.apply(fx);
        let until = Instant::now() + inner.config.shutdown_timeout;
        loop {
            let busy = {
                let st = lock(inner);
                st.destroying
                    + st.cold_starting
                    + st.stems.iter().map(|s| s.starting).sum::<usize>()
            };
            if busy == 0 || Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Whatever the executor still runs (a creation abandoned by a cancelled request).
        if let Err(e) = inner.executor.shutdown().await {
            tracing::warn!(error = %e, "the executor's shutdown failed");
        }
    }
}

impl Inner {
    fn lease(self: &Arc<Self>, key: ContainerKey, idle: Idle, origin: Origin) -> Lease {
        Lease {
            inner: Arc::clone(self),
            container: idle.container,
            live: true,
            key,
            kind: idle.kind,
            id: idle.id,
            memory_mb: idle.memory_mb,
            initialized: idle.initialized,
            origin,
            finishing: false,
        }
    }

    /// Runs what was decided under the lock.
    fn apply(self: &Arc<Self>, fx: Effects) {
        for c in fx.destroy {
            let me = Arc::clone(self);
            self.rt.spawn(async move {
                if let Err(e) = c.destroy().await {
                    tracing::warn!(container = c.id(), error = %e, "destroying a container failed");
                }
                let mut st = lock(&me);
                st.destroying = st.destroying.saturating_sub(1);
                st.stats.destroyed += 1;
            });
        }
        for i in fx.start_prewarms {
            let me = Arc::clone(self);
            self.rt.spawn(async move { me.start_prewarm(i).await });
        }
    }

    async fn start_prewarm(self: Arc<Self>, i: usize) {
        let (kind, mem, n) = {
            let mut st = lock(&self);
            st.next_id += 1;
            let n = st.next_id;
            match st.stems.get(i) {
                Some(s) => (Arc::clone(&s.kind), s.cell.memory_mb, n),
                None => return,
            }
        };
        let spec = {
            let mut spec = ContainerSpec::new(
                format!(
                    "{}_{n}_prewarm_{}",
                    self.config.name_prefix,
                    sanitize(&kind)
                ),
                kind.as_ref(),
                mem,
            );
            spec.env.clone_from(&self.config.env);
            spec
        };
        let created = self.executor.create(&spec).await;
        let fx = {
            let mut st = lock(&self);
            let mut fx = Effects::default();
            st.mem.prewarm_starting -= mem;
            if let Some(s) = st.stems.get_mut(i) {
                s.starting -= 1;
            }
            match created {
                Ok(c) if st.shutdown => {
                    st.destroying += 1;
                    fx.destroy.push(c);
                }
                Ok(c) => {
                    let mut expires = None;
                    if let Some(s) = st.stems.get_mut(i) {
                        s.failures = 0;
                        s.retry_after = None;
                        expires = s.cell.reactive.map(|r| Instant::now() + r.ttl);
                    }
                    st.mem.prewarm += mem;
                    st.prewarmed.push(Prewarmed {
                        container: c,
                        id: n,
                        kind,
                        memory_mb: mem,
                        expires,
                    });
                    process_waiters(&self.config, &mut st, &mut fx);
                    backfill(&self.config, &mut st, &mut fx);
                }
                Err(e) => {
                    tracing::warn!(kind = %kind, error = %e, "starting a prewarmed container failed");
                    st.stats.create_failures += 1;
                    if let Some(s) = st.stems.get_mut(i) {
                        s.failures = s.failures.saturating_add(1);
                        let backoff = Duration::from_millis(500)
                            .saturating_mul(1 << s.failures.min(7))
                            .min(Duration::from_secs(60));
                        s.retry_after = Some(Instant::now() + backoff);
                    }
                    process_waiters(&self.config, &mut st, &mut fx);
                }
            }
            fx
        };
        self.apply(fx);
    }

    fn release(self: &Arc<Self>, lease: &mut Lease, outcome: Release) {
        if !lease.live {
            return;
        }
        lease.live = false;
        let m = lease.memory_mb;
        let fx = {
            let mut st = lock(self);
            let mut fx = Effects::default();
            if lease.finishing
                && let Some(n) = st.draining.get_mut(&lease.key)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.draining.remove(&lease.key);
                }
            }
            st.mem.busy -= m;
            st.in_use -= 1;
            if outcome == Release::Reuse && !st.shutdown {
                let mut idle = Idle {
                    container: Arc::clone(&lease.container),
                    id: lease.id,
                    memory_mb: m,
                    kind: Arc::clone(&lease.kind),
                    last_used: Instant::now(),
                    paused: false,
                    initialized: lease.initialized,
                };
                // A request waiting for exactly this (finishing) container takes it first.
                while let Some(pos) = st.drain_waiters.iter().position(|w| w.req.key == lease.key) {
                    let w = st.drain_waiters.swap_remove(pos);
                    st.mem.busy += m;
                    st.in_use += 1;
                    st.stats.warm_hits += 1;
                    match w.tx.send(Grant::Warm(lease.key.clone(), idle)) {
                        Ok(()) => return,
                        Err(Grant::Warm(_, back)) => {
                            st.mem.busy -= m;
                            st.in_use -= 1;
                            st.stats.warm_hits -= 1;
                            idle = back;
                        }
                        Err(_) => return,
                    }
                }
                st.mem.idle += m;
                st.idle_count += 1;
                match st.free.get_mut(&lease.key) {
                    Some(v) => v.push(idle),
                    None => {
                        st.free.insert(lease.key.clone(), vec![idle]);
                    }
                }
            } else {
                st.destroying += 1;
                fx.destroy.push(Arc::clone(&lease.container));
                if lease.finishing
                    && let Some(pos) = st.drain_waiters.iter().position(|w| w.req.key == lease.key)
                {
                    let w = st.drain_waiters.swap_remove(pos);
                    let _ = w.tx.send(Grant::Retry);
                }
            }
            if !st.waiters.is_empty() {
                process_waiters(&self.config, &mut st, &mut fx);
            }
            backfill(&self.config, &mut st, &mut fx);
            fx
        };
        if !fx.destroy.is_empty() || !fx.start_prewarms.is_empty() {
            self.apply(fx);
        }
    }
}

impl Lease {
    /// The container.
    pub fn container(&self) -> &dyn Container {
        self.container.as_ref()
    }
    /// Where it came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }
    /// Whether `/init` already ran successfully in it for this action.
    pub fn is_initialized(&self) -> bool {
        self.initialized
    }
    /// Records a successful `/init`; the pool keeps the flag with the warm container.
    pub fn mark_initialized(&mut self) {
        self.initialized = true;
    }
    /// The warm-reuse key it serves.
    pub fn key(&self) -> &ContainerKey {
        &self.key
    }
    /// Its memory, MB.
    pub fn memory_mb(&self) -> u64 {
        self.memory_mb
    }
    /// Says the run is over and only log collection remains: a request for the same key that
    /// finds no idle container waits briefly ([`PoolConfig::drain_wait`]) for this one instead
    /// of cold starting. Idempotent.
    pub fn mark_finishing(&mut self) {
        if self.finishing {
            return;
        }
        self.finishing = true;
        let mut st = lock(&self.inner);
        match st.draining.get_mut(&self.key) {
            Some(n) => *n += 1,
            None => {
                st.draining.insert(self.key.clone(), 1);
            }
        }
    }
    /// Gives the container back (same as [`ContainerPool::release`]).
    pub fn release(mut self, outcome: Release) {
        let inner = Arc::clone(&self.inner);
        inner.release(&mut self, outcome);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.live {
            let inner = Arc::clone(&self.inner);
            inner.release(self, Release::Destroy);
        }
    }
}

/// Removes a queued request; returns a grant that was sent to it meanwhile.
struct WaitGuard {
    inner: Arc<Inner>,
    id: u64,
    drain: bool,
    rx: Option<oneshot::Receiver<Grant>>,
}

impl WaitGuard {
    fn cancel(&mut self) -> Option<Grant> {
        let mut rx = self.rx.take()?;
        let mut st = lock(&self.inner);
        let list_pos = if self.drain {
            st.drain_waiters.iter().position(|w| w.id == self.id)
        } else {
            st.waiters.iter().position(|w| w.id == self.id)
        };
        match list_pos {
            Some(pos) => {
                if self.drain {
                    st.drain_waiters.swap_remove(pos);
                } else {
                    st.waiters.remove(pos);
                    // The head left: the next one may fit now.
                    let mut fx = Effects::default();
                    process_waiters(&self.inner.config, &mut st, &mut fx);
                    drop(st);
                    self.inner.apply(fx);
                }
                None
            }
            // Grants are sent under the lock, so one that was sent is in the channel now.
            None => rx.try_recv().ok(),
        }
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if let Some(g) = self.cancel() {
            let mut st = lock(&self.inner);
            undo(&mut st, g);
            let mut fx = Effects::default();
            process_waiters(&self.inner.config, &mut st, &mut fx);
            drop(st);
            self.inner.apply(fx);
        }
    }
}

/// Gives reserved cold-start memory back if the creation was abandoned or failed.
struct ColdReservation {
    inner: Arc<Inner>,
    memory_mb: u64,
    armed: bool,
}

impl Drop for ColdReservation {
    fn drop(&mut self) {
        if self.armed {
            let mut st = lock(&self.inner);
            st.mem.starting -= self.memory_mb;
            st.cold_starting -= 1;
            let mut fx = Effects::default();
            process_waiters(&self.inner.config, &mut st, &mut fx);
            backfill(&self.inner.config, &mut st, &mut fx);
            drop(st);
            self.inner.apply(fx);
        }
    }
}

struct ReqRef<'a> {
    key: &'a ContainerKey,
    kind: &'a str,
    memory_mb: u64,
    image: bool,
}

fn try_warm(st: &mut State, r: &ReqRef<'_>) -> Option<Grant> {
    let idle = st.free.get_mut(r.key)?.pop()?;
    st.mem.idle -= idle.memory_mb;
    st.mem.busy += idle.memory_mb;
    st.idle_count -= 1;
    if idle.paused {
        st.paused_count -= 1;
    }
    st.in_use += 1;
    st.stats.warm_hits += 1;
    Some(Grant::Warm(r.key.clone(), idle))
}

/// Steps 1–4 (and the last-resort prewarm eviction) of the module docs.
fn try_schedule(
    cfg: &PoolConfig,
    st: &mut State,
    r: &ReqRef<'_>,
    fx: &mut Effects,
) -> Option<Grant> {
    if let Some(g) = try_warm(st, r) {
        return Some(g);
    }
    let m = r.memory_mb;
    if !r.image
        && let Some(pos) = st
            .prewarmed
            .iter()
            .position(|p| p.memory_mb == m && &*p.kind == r.kind)
    {
        let p = st.prewarmed.swap_remove(pos);
        st.mem.prewarm -= m;
        st.mem.busy += m;
        st.in_use += 1;
        st.stats.prewarm_hits += 1;
        return Some(Grant::Prewarm(p));
    }
    let user = cfg.user_memory_mb;
    let image = r.image;
    let kind = r.kind;
    let reserve = |st: &mut State| {
        st.mem.starting += m;
        st.cold_starting += 1;
        st.stats.cold_starts += 1;
        if !image {
            // Counted for reactive prewarming (reference §7.2).
            if let Some(s) = st
                .stems
                .iter_mut()
                .find(|s| s.cell.memory_mb == m && &*s.kind == kind)
            {
                s.cold_starts += 1;
            }
        }
        Some(Grant::Cold(m))
    };
    if st.mem.used() + m <= user {
        return reserve(st);
    }
    if st.mem.used() - st.mem.idle + m <= user {
        while st.mem.used() + m > user {
            if !evict_lru(st, fx) {
                break;
            }
        }
        return reserve(st);
    }
    // Stem cells are not evicted, unless the request could never fit beside them.
    let stems = st.mem.prewarm + st.mem.prewarm_starting;
    if stems + m > user && st.mem.used() - st.mem.idle - st.mem.prewarm + m <= user {
        while st.mem.used() + m > user {
            if !evict_lru(st, fx) {
                match st.prewarmed.pop() {
                    Some(p) => {
                        st.mem.prewarm -= p.memory_mb;
                        st.stats.evictions += 1;
                        st.destroying += 1;
                        fx.destroy.push(p.container);
                    }
                    None => break,
                }
            }
        }
        return reserve(st);
    }
    None
}

/// Removes the least recently used idle container; `false` when there is none.
fn evict_lru(st: &mut State, fx: &mut Effects) -> bool {
    let oldest = st
        .free
        .iter()
        .filter_map(|(k, v)| v.first().map(|i| (k, i.last_used)))
        .min_by_key(|(_, t)| *t)
        .map(|(k, _)| k.clone());
    let Some(key) = oldest else {
        return false;
    };
    let Some(v) = st.free.get_mut(&key) else {
        return false;
    };
    let idle = v.remove(0);
    if v.is_empty() {
        st.free.remove(&key);
    }
    st.mem.idle -= idle.memory_mb;
    st.idle_count -= 1;
    if idle.paused {
        st.paused_count -= 1;
    }
    st.stats.evictions += 1;
    st.destroying += 1;
    fx.destroy.push(idle.container);
    true
}

/// Serves queued requests from the head while they fit.
fn process_waiters(cfg: &PoolConfig, st: &mut State, fx: &mut Effects) {
    while let Some(head) = st.waiters.front() {
        // Copy the head's request (Arc clones) to end the borrow of the queue.
        let owned = OwnedRequest {
            key: head.req.key.clone(),
            kind: Arc::clone(&head.req.kind),
            memory_mb: head.req.memory_mb,
            image: head.req.image,
        };
        let r = ReqRef {
            key: &owned.key,
            kind: &owned.kind,
            memory_mb: owned.memory_mb,
            image: owned.image,
        };
        let Some(grant) = try_schedule(cfg, st, &r, fx) else {
            break;
        };
        let Some(w) = st.waiters.pop_front() else {
            undo(st, grant);
            break;
        };
        if let Err(g) = w.tx.send(grant) {
            undo(st, g);
        }
    }
    if st.waiters.is_empty() {
        backfill(cfg, st, fx);
    }
}

/// Reverts a grant its receiver did not take.
fn undo(st: &mut State, g: Grant) {
    match g {
        Grant::Warm(key, idle) => {
            let m = idle.memory_mb;
            st.mem.busy -= m;
            st.mem.idle += m;
            st.in_use -= 1;
            st.idle_count += 1;
            if idle.paused {
                st.paused_count += 1;
            }
            st.stats.warm_hits = st.stats.warm_hits.saturating_sub(1);
            let v = st.free.entry(key).or_default();
            let pos = v.partition_point(|i| i.last_used <= idle.last_used);
            v.insert(pos, idle);
        }
        Grant::Prewarm(p) => {
            st.mem.busy -= p.memory_mb;
            st.mem.prewarm += p.memory_mb;
            st.in_use -= 1;
            st.stats.prewarm_hits = st.stats.prewarm_hits.saturating_sub(1);
            st.prewarmed.push(p);
        }
        Grant::Cold(m) => {
            st.mem.starting -= m;
            st.cold_starting -= 1;
            st.stats.cold_starts = st.stats.cold_starts.saturating_sub(1);
        }
        Grant::Retry => {}
    }
}

/// Starts stem cells up to their count while memory allows and nobody queues.
fn backfill(cfg: &PoolConfig, st: &mut State, fx: &mut Effects) {
    if st.shutdown || !st.waiters.is_empty() || st.stems.is_empty() {
        return;
    }
    let now = Instant::now();
    for i in 0..st.stems.len() {
        let (kind, m, want, starting, retry_after) = {
            let s = &st.stems[i];
            (
                Arc::clone(&s.kind),
                s.cell.memory_mb,
                s.desired,
                s.starting,
                s.retry_after,
            )
        };
        if retry_after.is_some_and(|t| t > now) {
            continue;
        }
        let ready = st
            .prewarmed
            .iter()
            .filter(|p| p.memory_mb == m && p.kind == kind)
            .count();
        let mut have = ready + starting;
        while have < want && st.mem.used() + m <= cfg.user_memory_mb {
            st.mem.prewarm_starting += m;
            st.stems[i].starting += 1;
            fx.start_prewarms.push(i);
            have += 1;
        }
    }
}

/// Reactive stem cells (reference §7.2): rescales those whose interval is over from their cold
/// starts, and removes their expired prewarmed containers (the backfill that follows replaces
/// them up to the new count). Returns how many were removed.
fn rescale_prewarms(cfg: &PoolConfig, st: &mut State, now: Instant, fx: &mut Effects) -> usize {
    let mut any = false;
    for s in st.stems.iter_mut() {
        let Some(r) = s.cell.reactive else { continue };
        any = true;
        if now >= s.next_scale {
            let desired = r.desired(s.cold_starts);
            if desired != s.desired {
                tracing::debug!(kind = %s.kind, memory_mb = s.cell.memory_mb, cold_starts = s.cold_starts, from = s.desired, to = desired, "rescaling prewarmed containers");
            }
            s.desired = desired;
            s.cold_starts = 0;
            s.next_scale = now + cfg.prewarm_scale_interval;
        }
    }
    if !any {
        return 0;
    }
    let before = st.prewarmed.len();
    let mut freed = 0;
    let mut kept = Vec::with_capacity(before);
    for p in st.prewarmed.drain(..) {
        if p.expires.is_some_and(|t| t <= now) {
            freed += p.memory_mb;
            fx.destroy.push(p.container);
        } else {
            kept.push(p);
        }
    }
    st.prewarmed = kept;
    let expired = before - st.prewarmed.len();
    st.mem.prewarm -= freed;
    st.destroying += expired;
    expired
}

async fn reaper_loop(weak: Weak<Inner>) {
    let tick = {
        let Some(inner) = weak.upgrade() else { return };
        let cfg = &inner.config;
        let mut base = match cfg.pause_grace {
            Some(g) => g.min(cfg.idle_timeout),
            None => cfg.idle_timeout,
        };
        for r in cfg.stem_cells.iter().filter_map(|c| c.reactive) {
            base = base.min(r.ttl).min(cfg.prewarm_scale_interval);
        }
        (base / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    };
    loop {
        tokio::time::sleep(tick).await;
        let Some(inner) = weak.upgrade() else { return };
        let (fx, to_pause) = {
            let mut st = lock(&inner);
            if st.shutdown {
                return;
            }
            let now = Instant::now();
            let mut fx = Effects::default();
            let mut to_pause = Vec::new();
            let idle_timeout = inner.config.idle_timeout;
            let grace = inner.config.pause_grace;
            let mut removed_mem = 0;
            let mut removed = 0;
            let mut paused_removed = 0;
            let mut taken_mem = 0;
            let mut taken = 0;
            st.free.retain(|key, v| {
                v.retain_mut(|i| {
                    if now.duration_since(i.last_used) >= idle_timeout {
                        removed_mem += i.memory_mb;
                        removed += 1;
                        if i.paused {
                            paused_removed += 1;
                        }
                        fx.destroy.push(Arc::clone(&i.container));
                        return false;
                    }
                    if let Some(g) = grace
                        && !i.paused
                        && now.duration_since(i.last_used) >= g
                    {
                        taken_mem += i.memory_mb;
                        taken += 1;
                        to_pause.push((key.clone(), i.id));
                    }
                    true
                });
                !v.is_empty()
            });
            // Take the ones to pause out of the free lists (nobody can lease them meanwhile).
            let mut pausing = Vec::with_capacity(to_pause.len());
            for (key, id) in to_pause {
                if let Some(v) = st.free.get_mut(&key) {
                    if let Some(pos) = v.iter().position(|i| i.id == id) {
                        pausing.push((key.clone(), v.remove(pos)));
                    }
                    if v.is_empty() {
                        st.free.remove(&key);
                    }
                }
            }
            st.mem.idle -= removed_mem + taken_mem;
            st.mem.transit += taken_mem;
            st.idle_count -= removed + taken;
            st.paused_count -= paused_removed;
            st.stats.idle_removed += removed as u64;
            st.destroying += fx.destroy.len();
            let expired = rescale_prewarms(&inner.config, &mut st, now, &mut fx);
            if removed > 0 || expired > 0 {
                process_waiters(&inner.config, &mut st, &mut fx);
            }
            backfill(&inner.config, &mut st, &mut fx);
            (fx, pausing)
        };
        inner.apply(fx);
        for (key, mut idle) in to_pause {
            let ok = match idle.container.pause().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(container = idle.container.id(), error = %e, "pausing failed; destroying");
                    false
                }
            };
            let fx = {
                let mut st = lock(&inner);
                let mut fx = Effects::default();
                st.mem.transit -= idle.memory_mb;
                if ok && !st.shutdown {
                    idle.paused = true;
                    st.mem.idle += idle.memory_mb;
                    st.idle_count += 1;
                    st.paused_count += 1;
                    let v = st.free.entry(key).or_default();
                    let pos = v.partition_point(|i| i.last_used <= idle.last_used);
                    v.insert(pos, idle);
                } else {
                    st.destroying += 1;
                    fx.destroy.push(idle.container);
                }
                process_waiters(&inner.config, &mut st, &mut fx);
                fx
            };
            inner.apply(fx);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use bytes::Bytes;
    use faas_core::executor::{ExecCapabilities, LogCollection, ProxyError, ProxyResponse};
    use faas_core::{RuntimeManifest, RuntimeSpec};

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
        let end = Instant::now() + Duration::from_secs(10);
        while !f(&pool.stats()) {
            assert!(Instant::now() < end, "{what}: {:?}", pool.stats());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reactive_stem_cells_scale_with_cold_starts_and_expire() {
        let fake = Arc::new(Fake::default());
        let destroyed = Arc::clone(&fake.destroyed);
        let cell = StemCell::new("nodejs:default", 128, 1).with_reactive(
            ReactivePrewarm::new(1, 3, Duration::from_millis(400)).with_scaling(2, 1),
        );
        let config = PoolConfig::new(2048)
            .with_stem_cells(vec![cell])
            .with_prewarm_scale_interval(Duration::from_millis(250));
        let pool = ContainerPool::new(Arc::clone(&fake) as Arc<dyn Executor>, config).unwrap();
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
}
