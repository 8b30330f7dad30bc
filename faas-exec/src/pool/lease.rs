//! Leases: what [`ContainerPool::acquire`](super::ContainerPool::acquire) is asked for and
//! hands out, how a lease goes back, and the guards that undo a cancelled wait or creation.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use faas_core::Container;
use tokio::sync::oneshot;

use super::state::{Effects, Grant, Idle};
use super::{Inner, lock};

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

/// A container leased from the pool for one activation.
///
/// Give it back with [`ContainerPool::release`](super::ContainerPool::release) (or [`Lease::release`]). A lease dropped without
/// release destroys its container, so a cancelled activation never leaks one.
pub struct Lease {
    pub(super) inner: Arc<Inner>,
    pub(super) container: Arc<dyn Container>,
    /// Not yet released.
    pub(super) live: bool,
    pub(super) key: ContainerKey,
    pub(super) kind: Arc<str>,
    pub(super) id: u64,
    pub(super) memory_mb: u64,
    pub(super) initialized: bool,
    pub(super) origin: Origin,
    pub(super) finishing: bool,
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

impl Inner {
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
            st.remove_busy(m);
            if outcome == Release::Reuse && !st.shutdown {
                let mut idle = Idle {
                    container: Arc::clone(&lease.container),
                    id: lease.id,
                    memory_mb: m,
                    kind: Arc::clone(&lease.kind),
                    last_used: st.clock.now(),
                    paused: false,
                    initialized: lease.initialized,
                };
                // A request waiting for exactly this (finishing) container takes it first.
                while let Some(pos) = st.drain_waiters.iter().position(|w| w.req.key == lease.key) {
                    let w = st.drain_waiters.swap_remove(pos);
                    st.add_busy(m);
                    st.stats.warm_hits += 1;
                    match w.tx.send(Grant::Warm(lease.key.clone(), idle)) {
                        Ok(()) => return,
                        Err(Grant::Warm(_, back)) => {
                            st.remove_busy(m);
                            st.stats.warm_hits -= 1;
                            idle = back;
                        }
                        Err(_) => return,
                    }
                }
                st.add_idle(lease.key.clone(), idle);
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
                st.process_waiters(&self.config, &mut fx);
            }
            st.backfill(&self.config, &mut fx);
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
    /// finds no idle container waits briefly ([`PoolConfig::drain_wait`](super::PoolConfig::drain_wait)) for this one instead
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
    /// Gives the container back (same as [`ContainerPool::release`](super::ContainerPool::release)).
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
pub(super) struct WaitGuard {
    pub(super) inner: Arc<Inner>,
    pub(super) id: u64,
    pub(super) drain: bool,
    pub(super) rx: Option<oneshot::Receiver<Grant>>,
}

impl WaitGuard {
    pub(super) fn cancel(&mut self) -> Option<Grant> {
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
                    st.process_waiters(&self.inner.config, &mut fx);
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
            st.undo(g);
            let mut fx = Effects::default();
            st.process_waiters(&self.inner.config, &mut fx);
            drop(st);
            self.inner.apply(fx);
        }
    }
}

/// Gives reserved cold-start memory back if the creation was abandoned or failed.
pub(super) struct ColdReservation {
    pub(super) inner: Arc<Inner>,
    pub(super) memory_mb: u64,
    pub(super) armed: bool,
}

impl Drop for ColdReservation {
    fn drop(&mut self) {
        if self.armed {
            let mut st = lock(&self.inner);
            st.mem.starting -= self.memory_mb;
            st.cold_starting -= 1;
            let mut fx = Effects::default();
            st.process_waiters(&self.inner.config, &mut fx);
            st.backfill(&self.inner.config, &mut fx);
            drop(st);
            self.inner.apply(fx);
        }
    }
}
