//! The container pool (OpenWhisk's
//! [`ContainerPool`](https://github.com/apache/openwhisk/blob/master/core/invoker/src/main/scala/org/apache/openwhisk/core/containerpool/ContainerPool.scala)): warm reuse, prewarmed stem cells, memory
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
//! `reactive` stem cells do (the `reactive` block of a stem cell in
//! [`runtimes.json`](https://github.com/apache/openwhisk/blob/master/ansible/files/runtimes.json)): its prewarmed containers expire after `ttl`
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

mod config;
mod lease;
mod reaper;
mod state;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use faas_core::time::{Clock, SystemClock};
use faas_core::{ContainerSpec, Error, Executor, Result};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{PoolConfig, ReactivePrewarm, StemCell};
pub use lease::{AcquireRequest, ContainerKey, Lease, Origin, Release};
pub use state::PoolStats;

use lease::{ColdReservation, WaitGuard};
use state::{
    Effects, Grant, Idle, OwnedRequest, PoolClock, Prewarmed, ReqRef, STEM_RETRY, State, Stem,
    Waiter,
};

struct Inner {
    executor: Arc<dyn Executor>,
    config: PoolConfig,
    state: Mutex<State>,
    rt: Handle,
    reaper: Mutex<Option<JoinHandle<()>>>,
    clock: PoolClock,
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
        Self::with_clock(executor, config, Arc::new(SystemClock))
    }

    /// As [`new`](Self::new), reading idle times, expiries and rescaling times from `clock`
    /// (tests pass a [`TokioClock`](faas_core::time::TokioClock) in a runtime with paused
    /// time, so the reaper's ticks and the clock move together without real waits).
    pub fn with_clock(
        executor: Arc<dyn Executor>,
        config: PoolConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let clock = PoolClock(clock);
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
                        next_scale: clock.now() + config.prewarm_scale_interval,
                        cell,
                        starting: 0,
                        retry_after: None,
                        retry: None,
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
            clock: clock.clone(),
            state: Mutex::new(State {
                stems,
                clock,
                ..State::default()
            }),
            rt,
            reaper: Mutex::new(None),
        });
        let effects = {
            let mut st = lock(&inner);
            let mut fx = Effects::default();
            st.backfill(&inner.config, &mut fx);
            fx
        };
        inner.apply(effects);
        let reaper = inner.rt.spawn(reaper::reaper_loop(Arc::downgrade(&inner)));
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
        lock(&self.inner).snapshot(self.inner.config.user_memory_mb)
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
                        last_used: self.inner.clock.now(),
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
                if let Some(g) = st.try_warm(&r) {
                    return Ok(g);
                }
                let draining = st.draining.get(req.key).copied().unwrap_or(0) as usize;
                drain = *may_drain
                    && draining
                        > st.drain_waiters
                            .iter()
                            .filter(|w| &w.req.key == req.key)
                            .count();
                if !drain && let Some(g) = st.try_schedule(&inner.config, &r, &mut fx) {
                    st.backfill(&inner.config, &mut fx);
                    drop(st);
                    inner.apply(fx);
                    return Ok(g);
                }
            }
            let (tx, rx) = oneshot::channel();
            let id = st.next_id();
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
        let n = { lock(inner).next_id() };
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
        st.add_busy(req.memory_mb);
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
                st.destroying + st.cold_starting + st.stems_starting()
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
            let n = st.next_id();
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
            let now = st.clock.now();
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
                        s.retry = None;
                        s.retry_after = None;
                        expires = s.cell.reactive.map(|r| now + r.ttl);
                    }
                    st.mem.prewarm += mem;
                    st.prewarmed.push(Prewarmed {
                        container: c,
                        id: n,
                        kind,
                        memory_mb: mem,
                        expires,
                    });
                    st.process_waiters(&self.config, &mut fx);
                    st.backfill(&self.config, &mut fx);
                }
                Err(e) => {
                    tracing::warn!(kind = %kind, error = %e, "starting a prewarmed container failed");
                    st.stats.create_failures += 1;
                    if let Some(s) = st.stems.get_mut(i) {
                        let pause = s.retry.get_or_insert_with(|| STEM_RETRY.build()).next();
                        s.retry_after = pause.map(|p| now + p);
                    }
                    st.process_waiters(&self.config, &mut fx);
                }
            }
            fx
        };
        self.apply(fx);
    }
}
