//! The pool's state machine: every decision (warm, prewarmed, cold, evict, queue, backfill,
//! rescale, reap) is a method on [`State`], run under the pool's lock, with no I/O. What must
//! happen outside the lock (destroying, starting stem cells) is returned as [`Effects`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_core::Container;
use faas_core::time::{Clock, SystemClock};
use tokio::sync::oneshot;

use super::{ContainerKey, PoolConfig, StemCell};

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

pub(super) struct Idle {
    pub(super) container: Arc<dyn Container>,
    pub(super) id: u64,
    pub(super) memory_mb: u64,
    pub(super) kind: Arc<str>,
    pub(super) last_used: Instant,
    pub(super) paused: bool,
    pub(super) initialized: bool,
}

pub(super) struct Prewarmed {
    pub(super) container: Arc<dyn Container>,
    pub(super) id: u64,
    pub(super) kind: Arc<str>,
    pub(super) memory_mb: u64,
    /// When a reactive stem cell's container is removed unused.
    pub(super) expires: Option<Instant>,
}

/// What a queued request is given.
pub(super) enum Grant {
    Warm(ContainerKey, Idle),
    Prewarm(Prewarmed),
    /// This much memory is reserved (counted as starting); create the container.
    Cold(u64),
    /// (Drain waiters only) the awaited container went away; schedule normally.
    Retry,
}

pub(super) struct OwnedRequest {
    pub(super) key: ContainerKey,
    pub(super) kind: Arc<str>,
    pub(super) memory_mb: u64,
    pub(super) image: bool,
}

pub(super) struct Waiter {
    pub(super) id: u64,
    pub(super) req: OwnedRequest,
    pub(super) tx: oneshot::Sender<Grant>,
}

pub(super) struct Stem {
    pub(super) cell: StemCell,
    pub(super) kind: Arc<str>,
    pub(super) starting: usize,
    pub(super) retry_after: Option<Instant>,
    /// The pauses before the next start after failed ones (`None` after a success).
    pub(super) retry: Option<backon::ExponentialBackoff>,
    /// How many to keep ready now (`initial_count`, rescaled for reactive cells).
    pub(super) desired: usize,
    /// Cold starts of this kind and memory since the last rescaling.
    pub(super) cold_starts: u64,
    /// When a reactive cell is rescaled next.
    pub(super) next_scale: Instant,
}

#[derive(Default)]
pub(super) struct Mem {
    pub(super) busy: u64,
    pub(super) idle: u64,
    pub(super) prewarm: u64,
    pub(super) starting: u64,
    pub(super) prewarm_starting: u64,
    /// Idle containers taken out by the reaper to be paused.
    pub(super) transit: u64,
}

impl Mem {
    pub(super) fn used(&self) -> u64 {
        self.busy + self.idle + self.prewarm + self.starting + self.prewarm_starting + self.transit
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) free: HashMap<ContainerKey, Vec<Idle>>,
    pub(super) idle_count: usize,
    pub(super) paused_count: usize,
    pub(super) prewarmed: Vec<Prewarmed>,
    pub(super) waiters: VecDeque<Waiter>,
    pub(super) drain_waiters: Vec<Waiter>,
    pub(super) draining: HashMap<ContainerKey, u32>,
    pub(super) mem: Mem,
    pub(super) stems: Vec<Stem>,
    pub(super) in_use: usize,
    pub(super) cold_starting: usize,
    pub(super) destroying: usize,
    pub(super) next_id: u64,
    pub(super) shutdown: bool,
    pub(super) stats: PoolStats,
    /// Where idle times, expiries and retry times are read.
    pub(super) clock: PoolClock,
}

/// The pool's [`Clock`] ([`SystemClock`] unless [`ContainerPool::with_clock`](super::ContainerPool::with_clock)
/// says otherwise).
#[derive(Clone)]
pub(super) struct PoolClock(pub(super) Arc<dyn Clock>);

impl Default for PoolClock {
    fn default() -> Self {
        Self(Arc::new(SystemClock))
    }
}

impl PoolClock {
    pub(super) fn now(&self) -> Instant {
        self.0.now()
    }
}

/// Work decided under the lock and done after it.
#[derive(Default)]
pub(super) struct Effects {
    pub(super) destroy: Vec<Arc<dyn Container>>,
    pub(super) start_prewarms: Vec<usize>,
}

pub(super) struct ReqRef<'a> {
    pub(super) key: &'a ContainerKey,
    pub(super) kind: &'a str,
    pub(super) memory_mb: u64,
    pub(super) image: bool,
}

/// The pauses before starting a stem cell again after failed starts: 1 s, doubling to 60 s.
pub(super) const STEM_RETRY: backon::ExponentialBuilder = backon::ExponentialBuilder::new()
    .with_min_delay(Duration::from_secs(1))
    .with_max_delay(Duration::from_secs(60))
    .without_max_times();

impl State {
    /// A new id for a container or a waiter.
    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The counters and gauges now, for a pool of `user_memory_mb`.
    pub(super) fn snapshot(&self, user_memory_mb: u64) -> PoolStats {
        let mut s = self.stats;
        s.in_use = self.in_use;
        s.idle = self.idle_count;
        s.paused = self.paused_count;
        s.prewarmed = self.prewarmed.len();
        s.starting = self.cold_starting + self.stems_starting();
        s.waiting = self.waiters.len() + self.drain_waiters.len();
        s.used_mb = self.mem.used();
        s.free_mb = user_memory_mb.saturating_sub(s.used_mb);
        s
    }

    /// Stem-cell containers being started now.
    pub(super) fn stems_starting(&self) -> usize {
        self.stems.iter().map(|x| x.starting).sum()
    }

    /// Books a container of `mb` as in use.
    pub(super) fn add_busy(&mut self, mb: u64) {
        self.mem.busy += mb;
        self.in_use += 1;
    }

    /// Books a container of `mb` as no longer in use.
    pub(super) fn remove_busy(&mut self, mb: u64) {
        self.mem.busy -= mb;
        self.in_use -= 1;
    }

    /// Books `idle` as idle and files it under `key`, in least-recently-used order.
    pub(super) fn add_idle(&mut self, key: ContainerKey, idle: Idle) {
        self.mem.idle += idle.memory_mb;
        self.idle_count += 1;
        if idle.paused {
            self.paused_count += 1;
        }
        let v = self.free.entry(key).or_default();
        let pos = v.partition_point(|i| i.last_used <= idle.last_used);
        v.insert(pos, idle);
    }

    /// Books `idle`, just taken out of the free lists, as no longer idle.
    pub(super) fn remove_idle(&mut self, idle: &Idle) {
        self.mem.idle -= idle.memory_mb;
        self.idle_count -= 1;
        if idle.paused {
            self.paused_count -= 1;
        }
    }

    pub(super) fn try_warm(&mut self, r: &ReqRef<'_>) -> Option<Grant> {
        let idle = self.free.get_mut(r.key)?.pop()?;
        self.remove_idle(&idle);
        self.add_busy(idle.memory_mb);
        self.stats.warm_hits += 1;
        Some(Grant::Warm(r.key.clone(), idle))
    }

    /// Steps 1–4 (and the last-resort prewarm eviction) of the module docs.
    pub(super) fn try_schedule(
        &mut self,
        cfg: &PoolConfig,
        r: &ReqRef<'_>,
        fx: &mut Effects,
    ) -> Option<Grant> {
        if let Some(g) = self.try_warm(r) {
            return Some(g);
        }
        let m = r.memory_mb;
        if !r.image
            && let Some(pos) = self
                .prewarmed
                .iter()
                .position(|p| p.memory_mb == m && &*p.kind == r.kind)
        {
            let p = self.prewarmed.swap_remove(pos);
            self.mem.prewarm -= m;
            self.add_busy(m);
            self.stats.prewarm_hits += 1;
            return Some(Grant::Prewarm(p));
        }
        let user = cfg.user_memory_mb;
        if self.mem.used() + m <= user {
            return self.reserve_cold(r);
        }
        if self.mem.used() - self.mem.idle + m <= user {
            while self.mem.used() + m > user {
                if !self.evict_lru(fx) {
                    break;
                }
            }
            return self.reserve_cold(r);
        }
        // Stem cells are not evicted, unless the request could never fit beside them.
        let stems = self.mem.prewarm + self.mem.prewarm_starting;
        if stems + m > user && self.mem.used() - self.mem.idle - self.mem.prewarm + m <= user {
            while self.mem.used() + m > user {
                if !self.evict_lru(fx) {
                    match self.prewarmed.pop() {
                        Some(p) => {
                            self.mem.prewarm -= p.memory_mb;
                            self.stats.evictions += 1;
                            self.destroying += 1;
                            fx.destroy.push(p.container);
                        }
                        None => break,
                    }
                }
            }
            return self.reserve_cold(r);
        }
        None
    }

    /// Reserves the memory of a cold start for `r` (counted as starting).
    fn reserve_cold(&mut self, r: &ReqRef<'_>) -> Option<Grant> {
        let m = r.memory_mb;
        self.mem.starting += m;
        self.cold_starting += 1;
        self.stats.cold_starts += 1;
        if !r.image {
            // Counted for reactive prewarming: cold starts of a stem cell's kind and memory.
            if let Some(s) = self
                .stems
                .iter_mut()
                .find(|s| s.cell.memory_mb == m && &*s.kind == r.kind)
            {
                s.cold_starts += 1;
            }
        }
        Some(Grant::Cold(m))
    }

    /// Removes the least recently used idle container; `false` when there is none.
    pub(super) fn evict_lru(&mut self, fx: &mut Effects) -> bool {
        let oldest = self
            .free
            .iter()
            .filter_map(|(k, v)| v.first().map(|i| (k, i.last_used)))
            .min_by_key(|(_, t)| *t)
            .map(|(k, _)| k.clone());
        let Some(key) = oldest else {
            return false;
        };
        let Some(v) = self.free.get_mut(&key) else {
            return false;
        };
        let idle = v.remove(0);
        if v.is_empty() {
            self.free.remove(&key);
        }
        self.remove_idle(&idle);
        self.stats.evictions += 1;
        self.destroying += 1;
        fx.destroy.push(idle.container);
        true
    }

    /// Serves queued requests from the head while they fit.
    pub(super) fn process_waiters(&mut self, cfg: &PoolConfig, fx: &mut Effects) {
        while let Some(head) = self.waiters.front() {
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
            let Some(grant) = self.try_schedule(cfg, &r, fx) else {
                break;
            };
            let Some(w) = self.waiters.pop_front() else {
                self.undo(grant);
                break;
            };
            if let Err(g) = w.tx.send(grant) {
                self.undo(g);
            }
        }
        if self.waiters.is_empty() {
            self.backfill(cfg, fx);
        }
    }

    /// Reverts a grant its receiver did not take.
    pub(super) fn undo(&mut self, g: Grant) {
        match g {
            Grant::Warm(key, idle) => {
                self.remove_busy(idle.memory_mb);
                self.stats.warm_hits = self.stats.warm_hits.saturating_sub(1);
                self.add_idle(key, idle);
            }
            Grant::Prewarm(p) => {
                self.remove_busy(p.memory_mb);
                self.mem.prewarm += p.memory_mb;
                self.stats.prewarm_hits = self.stats.prewarm_hits.saturating_sub(1);
                self.prewarmed.push(p);
            }
            Grant::Cold(m) => {
                self.mem.starting -= m;
                self.cold_starting -= 1;
                self.stats.cold_starts = self.stats.cold_starts.saturating_sub(1);
            }
            Grant::Retry => {}
        }
    }

    /// Starts stem cells up to their count while memory allows and nobody queues.
    pub(super) fn backfill(&mut self, cfg: &PoolConfig, fx: &mut Effects) {
        if self.shutdown || !self.waiters.is_empty() || self.stems.is_empty() {
            return;
        }
        let now = self.clock.now();
        for i in 0..self.stems.len() {
            let (kind, m, want, starting, retry_after) = {
                let s = &self.stems[i];
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
            let ready = self
                .prewarmed
                .iter()
                .filter(|p| p.memory_mb == m && p.kind == kind)
                .count();
            let mut have = ready + starting;
            while have < want && self.mem.used() + m <= cfg.user_memory_mb {
                self.mem.prewarm_starting += m;
                self.stems[i].starting += 1;
                fx.start_prewarms.push(i);
                have += 1;
            }
        }
    }

    /// Reactive stem cells (see [Reactive prewarming](super#reactive-prewarming)): rescales those whose interval is over from their cold
    /// starts, and removes their expired prewarmed containers (the backfill that follows replaces
    /// them up to the new count). Returns how many were removed.
    pub(super) fn rescale_prewarms(
        &mut self,
        cfg: &PoolConfig,
        now: Instant,
        fx: &mut Effects,
    ) -> usize {
        let mut any = false;
        for s in self.stems.iter_mut() {
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
        let before = self.prewarmed.len();
        let mut freed = 0;
        let mut kept = Vec::with_capacity(before);
        for p in self.prewarmed.drain(..) {
            if p.expires.is_some_and(|t| t <= now) {
                freed += p.memory_mb;
                fx.destroy.push(p.container);
            } else {
                kept.push(p);
            }
        }
        self.prewarmed = kept;
        let expired = before - self.prewarmed.len();
        self.mem.prewarm -= freed;
        self.destroying += expired;
        expired
    }

    /// The reaper's pass at `now`: removes containers idle for the idle timeout, takes out
    /// those to pause (idle for the pause grace; put back with [`State::paused`]), rescales
    /// reactive stem cells and backfills.
    pub(super) fn reap(
        &mut self,
        cfg: &PoolConfig,
        now: Instant,
    ) -> (Effects, Vec<(ContainerKey, Idle)>) {
        let mut fx = Effects::default();
        let mut to_pause = Vec::new();
        let idle_timeout = cfg.idle_timeout;
        let grace = cfg.pause_grace;
        let mut removed_mem = 0;
        let mut removed = 0;
        let mut paused_removed = 0;
        let mut taken_mem = 0;
        let mut taken = 0;
        self.free.retain(|key, v| {
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
            if let Some(v) = self.free.get_mut(&key) {
                if let Some(pos) = v.iter().position(|i| i.id == id) {
                    pausing.push((key.clone(), v.remove(pos)));
                }
                if v.is_empty() {
                    self.free.remove(&key);
                }
            }
        }
        self.mem.idle -= removed_mem + taken_mem;
        self.mem.transit += taken_mem;
        self.idle_count -= removed + taken;
        self.paused_count -= paused_removed;
        self.stats.idle_removed += removed as u64;
        self.destroying += fx.destroy.len();
        let expired = self.rescale_prewarms(cfg, now, &mut fx);
        if removed > 0 || expired > 0 {
            self.process_waiters(cfg, &mut fx);
        }
        self.backfill(cfg, &mut fx);
        (fx, pausing)
    }

    /// Puts back a container the reaper took out to pause: paused when `ok`, else (or when the
    /// pool shut down meanwhile) destroyed.
    pub(super) fn paused(
        &mut self,
        cfg: &PoolConfig,
        key: ContainerKey,
        mut idle: Idle,
        ok: bool,
    ) -> Effects {
        let mut fx = Effects::default();
        self.mem.transit -= idle.memory_mb;
        if ok && !self.shutdown {
            idle.paused = true;
            self.add_idle(key, idle);
        } else {
            self.destroying += 1;
            fx.destroy.push(idle.container);
        }
        self.process_waiters(cfg, &mut fx);
        fx
    }
}
