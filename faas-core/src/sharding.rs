//! OpenWhisk's sharding scheduler (`ShardingContainerPoolBalancer`) with its invoker health
//! protocol (`InvokerSupervision`), as a pure, synchronous [`Scheduler`].
//!
//! # Placement (as `ShardingContainerPoolBalancer.scala` places)
//!
//! * **Pools.** Invokers are indexed by instance number. The *managed* pool is the first
//!   `max(1, ceil(N × managedFraction))` invokers, the *blackbox* pool the last
//!   `max(1, floor(N × blackboxFraction))` (0.9 and 0.1 by default; they overlap for small `N`).
//!   Blackbox actions use the blackbox pool.
//! * **Home.** `hash = |hashCode(namespace) XOR hashCode("ns/[pkg/]action")|` with Java's
//!   `String.hashCode` ([`java_string_hash`]); `home = hash mod |pool|`.
//! * **Step.** `step = stepSizes[hash mod |stepSizes|]`, with [`step_sizes`] the numbers
//!   `1..=|pool|` coprime to `|pool|` and to each other.
//! * **Scan.** From home, the first usable (`Healthy`) invoker whose memory slots can take the
//!   activation wins; else move on by `step`. After `|pool| + 1` steps the system is
//!   overloaded: a uniformly random healthy invoker is *forced* (its free memory may go
//!   negative). No healthy invoker: [`Error::unavailable`] (HTTP 503).
//! * **Kinds** (not in OpenWhisk, whose invokers all run one manifest). An invoker whose pings
//!   report its runtimes ([`PingMessage::runtimes`]) only counts, in the scan and in the
//!   forced pick, for requests whose [`kind`](ScheduleRequest::kind) it can run; one that
//!   reports none counts for every kind. When no usable invoker of the pool can run the kind,
//!   the same scan runs over all invokers (so a blackbox action reaches a Docker invoker that is
//!   not in the blackbox pool). Usable invokers but none able to run the kind:
//!   [`Error::unavailable`] naming the kind.
//! * **Slots.** Each invoker has `userMemory / clusterSize` MB (at least 128 MB), where the
//!   cluster size is the number of controllers sharing the invokers. Actions with
//!   `max_concurrent > 1` follow OpenWhisk's `NestedSemaphore`: the first activation of a
//!   container slot pays `memory_mb`, the next `max_concurrent - 1` ride along for free.
//!
//! # Health (as `InvokerSupervision.scala` tracks it)
//!
//! An invoker exists from its first [`PingMessage`]; gaps below its instance number are
//! `Offline` placeholders. No ping for 10 s ([`with_offline_after`](ShardingScheduler::with_offline_after))
//! or a ping with `isEnabled: false` makes it `Offline`. The last 10 outcomes decide the rest:
//! more than 3 system errors → `Unhealthy`, more than 3 time-outs → `Unresponsive`, otherwise
//! `Healthy`. Outcomes never bring an `Offline` invoker back; only a ping does.
//!
//! **Difference from OpenWhisk:** OpenWhisk moves a newly seen (or returning) invoker to
//! `Unhealthy` and sends it a health test action; the invoker becomes `Healthy` when that test
//! succeeds. By default this scheduler moves it straight to `Healthy` (and forgets its old
//! outcomes), because nothing here sends test actions. With
//! [`with_initial_state_healthy(false)`](ShardingScheduler::with_initial_state_healthy) it behaves
//! like OpenWhisk; the embedding must then send test actions to `Unhealthy`/`Unresponsive`
//! invokers and report their [`InvocationOutcome`]s. Note that in either mode an invoker made
//! `Unhealthy` by its outcomes receives no more work from this scheduler, so it recovers only
//! through such test outcomes or by going `Offline` and pinging again.
//!
//! # Example
//!
//! ```
//! use faas_core::scheduler::{ScheduleRequest, Scheduler};
//! use faas_core::sharding::ShardingScheduler;
//! use faas_core::{FullyQualifiedName, InvokerInstanceId, PingMessage};
//!
//! let scheduler = ShardingScheduler::new();
//! scheduler.on_ping(&PingMessage::new(InvokerInstanceId::new(0, 2048)));
//!
//! let action = FullyQualifiedName::resolve("/guest/hello", "guest")?;
//! let req = ScheduleRequest {
//!     namespace: "guest",
//!     action: &action,
//!     memory_mb: 256,
//!     max_concurrent: 1,
//!     blackbox: false,
//!     kind: Some("nodejs:20"),
//! };
//! let invoker = scheduler.schedule(&req)?;
//! assert_eq!(invoker.instance, 0);
//! assert_eq!(scheduler.free_memory_mb(0), Some(2048 - 256));
//! scheduler.release(&invoker, 256, 1, &action);
//! assert_eq!(scheduler.free_memory_mb(0), Some(2048));
//! # Ok::<(), faas_core::Error>(())
//! ```

mod health;
mod semaphore;

pub use crate::time::{Clock, ManualClock, SystemClock};

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::message::{InvokerInstanceId, PingMessage};
use crate::names::FullyQualifiedName;
use crate::runtimes::RuntimeManifest;
use crate::scheduler::{
    InvocationOutcome, InvokerHealth, InvokerState, ScheduleRequest, Scheduler,
};
use crate::{Error, Result};
use health::Outcomes;
use semaphore::{NestedSemaphore, permits};

/// Default share of invokers for managed (non-blackbox) actions.
pub const DEFAULT_MANAGED_FRACTION: f64 = 0.9;
/// Default share of invokers for blackbox actions.
pub const DEFAULT_BLACKBOX_FRACTION: f64 = 0.1;
/// Default silence after which an invoker is `Offline`.
pub const DEFAULT_OFFLINE_AFTER: Duration = Duration::from_secs(10);
/// The smallest per-controller memory share of an invoker, MB (`MemoryLimit.MIN_MEMORY`).
pub const MIN_SLOT_MB: u64 = 128;
/// Default bound on the number of invokers (pings from higher instance numbers are ignored).
pub const DEFAULT_MAX_INVOKERS: usize = 4096;

/// Java's `String.hashCode`: `s[0]·31^(n-1) + … + s[n-1]` over UTF-16 code units, wrapping
/// in `i32`.
///
/// ```
/// use faas_core::sharding::java_string_hash;
/// assert_eq!(java_string_hash(""), 0);
/// assert_eq!(java_string_hash("hello"), 99162322);
/// assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
/// ```
pub fn java_string_hash(s: &str) -> i32 {
    java_hash_extend(0, s)
}

/// Continues a Java string hash `h` over `s` (so that `h("ab") = extend(h("a"), "b")`).
fn java_hash_extend(h: i32, s: &str) -> i32 {
    s.encode_utf16().fold(h, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// OpenWhisk's `generateHash`: `|hashCode(namespace) XOR hashCode(action.to_string())|`.
///
/// `action` is hashed as `ns/[pkg/]name` (its [`Display`](fmt::Display) form, no version)
/// without being formatted. Where Java's `Int.abs(Int.MinValue)` stays negative (and OpenWhisk
/// would index out of bounds), this returns `2^31`.
pub fn generate_hash(namespace: &str, action: &FullyQualifiedName) -> u32 {
    let fqn = java_hash_extend(
        java_hash_extend(java_hash_extend(0, action.path.as_str()), "/"),
        action.name.as_str(),
    );
    (java_string_hash(namespace) ^ fqn).unsigned_abs()
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// OpenWhisk's `pairwiseCoprimeNumbersUntil(n)`: the numbers `1..=n` coprime to `n` and to
/// every number chosen before them.
///
/// ```
/// use faas_core::sharding::step_sizes;
/// assert_eq!(step_sizes(10), [1, 3, 7]);
/// assert_eq!(step_sizes(1), [1]);
/// assert!(step_sizes(0).is_empty());
/// ```
pub fn step_sizes(n: usize) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for cur in 1..=n {
        if gcd(cur, n) == 1 && out.iter().all(|&p| gcd(p, cur) == 1) {
            out.push(cur);
        }
    }
    out
}

/// The memory slots, MB, of an invoker with `user_memory` MB for one of `cluster_size`
/// controllers (`getInvokerSlot`).
fn slot_permits(user_memory: u64, cluster_size: u32) -> i64 {
    permits((user_memory / u64::from(cluster_size.max(1))).max(MIN_SLOT_MB))
}

fn clamp_fraction(f: f64, default: f64) -> f64 {
    if f.is_nan() {
        default
    } else {
        f.clamp(0.0, 1.0)
    }
}

/// Configuration fixed once the scheduler is shared.
#[derive(Debug, Clone)]
struct Config {
    managed_fraction: f64,
    blackbox_fraction: f64,
    offline_after: Duration,
    initial_healthy: bool,
    max_invokers: usize,
}

/// A contiguous range of invokers and its step sizes.
#[derive(Debug, Default)]
struct Pool {
    start: usize,
    len: usize,
    steps: Vec<usize>,
}

/// One invoker as this controller sees it.
#[derive(Debug)]
struct Invoker {
    id: InvokerInstanceId,
    state: InvokerState,
    last_ping: Option<Instant>,
    outcomes: Outcomes,
    slots: NestedSemaphore,
    /// The kinds it reported it can run; `None` when it reports none (any kind).
    kinds: Option<HashSet<String>>,
}

impl Invoker {
    /// Whether it can run `kind` (`None`: any request).
    fn can_run(&self, kind: Option<&str>) -> bool {
        match (kind, &self.kinds) {
            (Some(kind), Some(kinds)) => kinds.contains(kind),
            _ => true,
        }
    }

    /// Takes the kinds reported by a ping.
    fn set_kinds(&mut self, runtimes: Option<&RuntimeManifest>) {
        let Some(m) = runtimes else {
            self.kinds = None;
            return;
        };
        let same = self.kinds.as_ref().is_some_and(|k| {
            k.len() == m.kind_names().count() && m.kind_names().all(|n| k.contains(n))
        });
        if !same {
            let kinds: HashSet<String> = m.kind_names().map(str::to_string).collect();
            tracing::info!(invoker = self.id.instance, kinds = ?kinds, "invoker kinds");
            self.kinds = Some(kinds);
        }
    }

    /// Marks the invoker `Offline` if it has been silent for `offline_after`.
    fn refresh(&mut self, now: Instant, offline_after: Duration) {
        if self.state != InvokerState::Offline {
            let silent = self
                .last_ping
                .is_none_or(|t| now.saturating_duration_since(t) >= offline_after);
            if silent {
                tracing::info!(invoker = self.id.instance, "invoker went offline (no ping)");
                self.state = InvokerState::Offline;
            }
        }
    }

    fn usable(&mut self, now: Instant, offline_after: Duration) -> bool {
        self.refresh(now, offline_after);
        self.state.is_usable()
    }
}

/// Everything behind the lock.
#[derive(Debug)]
struct State {
    invokers: Vec<Invoker>,
    cluster_size: u32,
    managed: Pool,
    blackbox: Pool,
}

impl State {
    /// Recomputes both pools for the current number of invokers (`updateInvokers`).
    fn update_pools(&mut self, config: &Config) {
        let n = self.invokers.len();
        if n == 0 {
            self.managed = Pool::default();
            self.blackbox = Pool::default();
            return;
        }
        // Float-to-int casts saturate; fractions are within [0, 1].
        let managed = ((n as f64 * config.managed_fraction).ceil() as usize).clamp(1, n);
        let blackbox = ((n as f64 * config.blackbox_fraction).floor() as usize).clamp(1, n);
        if self.managed.len != managed {
            self.managed = Pool {
                start: 0,
                len: managed,
                steps: step_sizes(managed),
            };
        }
        if self.blackbox.len != blackbox {
            self.blackbox.steps = step_sizes(blackbox);
            self.blackbox.len = blackbox;
        }
        self.blackbox.start = n - blackbox;
    }

    /// Adds `Offline` placeholders up to `n` invokers, with `template`'s memory (as
    /// OpenWhisk's `InvokerPool.registerInvoker` does).
    fn grow(&mut self, n: usize, template: &InvokerInstanceId, config: &Config) {
        while self.invokers.len() < n {
            let instance = u32::try_from(self.invokers.len()).unwrap_or(u32::MAX);
            self.invokers.push(Invoker {
                id: InvokerInstanceId::new(instance, template.user_memory),
                state: InvokerState::Offline,
                last_ping: None,
                outcomes: Outcomes::new(),
                slots: NestedSemaphore::new(slot_permits(template.user_memory, self.cluster_size)),
                kinds: None,
            });
        }
        self.update_pools(config);
    }

    fn set_cluster_size(&mut self, cluster_size: u32) {
        self.cluster_size = cluster_size.max(1);
        for inv in &mut self.invokers {
            inv.slots
                .set_capacity(slot_permits(inv.id.user_memory, self.cluster_size));
        }
    }
}

/// OpenWhisk's sharding scheduler; see the [module docs](self).
///
/// Cheap to call from many threads: `schedule` and `release` take one short lock and
/// allocate nothing but the returned [`InvokerInstanceId`] clone (an action with
/// `max_concurrent > 1` also clones its name when it opens its first container slot on an
/// invoker).
pub struct ShardingScheduler {
    config: Config,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl fmt::Debug for ShardingScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ShardingScheduler");
        d.field("managed_fraction", &self.config.managed_fraction)
            .field("blackbox_fraction", &self.config.blackbox_fraction)
            .field("offline_after", &self.config.offline_after)
            .field("initial_healthy", &self.config.initial_healthy);
        if let Ok(st) = self.state.try_lock() {
            d.field("cluster_size", &st.cluster_size)
                .field("invokers", &st.invokers.len());
        }
        d.finish_non_exhaustive()
    }
}

impl Default for ShardingScheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl ShardingScheduler {
    /// A scheduler with OpenWhisk's defaults and no invokers yet.
    pub fn new() -> Self {
        Self {
            config: Config {
                managed_fraction: DEFAULT_MANAGED_FRACTION,
                blackbox_fraction: DEFAULT_BLACKBOX_FRACTION,
                offline_after: DEFAULT_OFFLINE_AFTER,
                initial_healthy: true,
                max_invokers: DEFAULT_MAX_INVOKERS,
            },
            clock: Arc::new(SystemClock),
            state: Mutex::new(State {
                invokers: Vec::new(),
                cluster_size: 1,
                managed: Pool::default(),
                blackbox: Pool::default(),
            }),
        }
    }

    fn state_mut(&mut self) -> &mut State {
        self.state.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; should it, the books are still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Share of invokers for managed actions (default 0.9; clamped to `0..=1`).
    pub fn with_managed_fraction(mut self, fraction: f64) -> Self {
        self.config.managed_fraction = clamp_fraction(fraction, DEFAULT_MANAGED_FRACTION);
        let config = self.config.clone();
        self.state_mut().update_pools(&config);
        self
    }

    /// Share of invokers for blackbox actions (default 0.1; clamped to `0..=1`).
    pub fn with_blackbox_fraction(mut self, fraction: f64) -> Self {
        self.config.blackbox_fraction = clamp_fraction(fraction, DEFAULT_BLACKBOX_FRACTION);
        let config = self.config.clone();
        self.state_mut().update_pools(&config);
        self
    }

    /// The number of controllers sharing the invokers (default 1; 0 counts as 1). Each gets
    /// `userMemory / cluster_size` MB of every invoker, at least [`MIN_SLOT_MB`].
    pub fn with_cluster_size(mut self, cluster_size: u32) -> Self {
        self.state_mut().set_cluster_size(cluster_size);
        self
    }

    /// How long an invoker may stay silent before it is `Offline` (default 10 s).
    pub fn with_offline_after(mut self, offline_after: Duration) -> Self {
        self.config.offline_after = offline_after;
        self
    }

    /// Whether an invoker's first ping (and its first ping after being `Offline`) makes it
    /// `Healthy` (default `true`) or, as in OpenWhisk, `Unhealthy` until a successful
    /// outcome is reported (see the [module docs](self)).
    pub fn with_initial_state_healthy(mut self, healthy: bool) -> Self {
        self.config.initial_healthy = healthy;
        self
    }

    /// The clock used for ping time-outs (default [`SystemClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Ignore pings from instance numbers at or above `max` (default
    /// [`DEFAULT_MAX_INVOKERS`]), so that a bad ping cannot make the pool huge.
    pub fn with_max_invokers(mut self, max: usize) -> Self {
        self.config.max_invokers = max;
        self
    }

    /// Changes the number of controllers at run time (e.g. when one joins or leaves), resizing
    /// every invoker's share while keeping current reservations.
    pub fn set_cluster_size(&self, cluster_size: u32) {
        self.lock().set_cluster_size(cluster_size);
    }

    /// The number of controllers sharing the invokers.
    pub fn cluster_size(&self) -> u32 {
        self.lock().cluster_size
    }

    /// Memory, MB, this controller may still reserve on invoker `instance` (negative when
    /// overloaded); `None` for an unknown invoker.
    pub fn free_memory_mb(&self, instance: u32) -> Option<i64> {
        let st = self.lock();
        st.invokers
            .get(instance as usize)
            .map(|inv| inv.slots.available())
    }

    /// This controller's share, MB, of invoker `instance`; `None` for an unknown invoker.
    pub fn memory_capacity_mb(&self, instance: u32) -> Option<i64> {
        let st = self.lock();
        st.invokers
            .get(instance as usize)
            .map(|inv| inv.slots.capacity())
    }
}

fn no_invokers() -> Error {
    Error::unavailable("No invokers available")
}

/// The beginning of the message of [`no_invoker_for`]; HTTP layers may show such messages
/// (they name only the kind the caller asked for).
pub const NO_INVOKER_FOR_KIND: &str = "No invokers available that can run actions of kind";

/// `Unavailable` (503): usable invokers exist, but none reported that it can run `kind`.
pub fn no_invoker_for(kind: &str) -> Error {
    Error::unavailable(format!("{NO_INVOKER_FOR_KIND} '{kind}'."))
}

/// The result of scanning one pool.
enum Placement {
    /// Placed (`true`: forced, the system is overloaded).
    Placed(InvokerInstanceId, bool),
    /// No usable invoker in the pool can run the kind; `true` if some usable one exists.
    Nowhere(bool),
}

/// OpenWhisk's scan over one pool (`schedule`): home, then by step, then a random usable
/// invoker forced. Only invokers that can run `req.kind` count.
fn place(
    invokers: &mut [Invoker],
    steps: &[usize],
    hash: usize,
    memory: i64,
    req: &ScheduleRequest<'_>,
    now: Instant,
    offline_after: Duration,
) -> Placement {
    let len = invokers.len();
    if len == 0 || steps.is_empty() {
        return Placement::Nowhere(false);
    }
    let step = steps[hash % steps.len()];
    let mut index = hash % len;

    // Home first, then by step; |pool| + 2 probes in all, as OpenWhisk's recursion.
    for _ in 0..len + 2 {
        let inv = &mut invokers[index];
        if inv.usable(now, offline_after)
            && inv.can_run(req.kind)
            && inv
                .slots
                .try_acquire(req.action, req.max_concurrent, memory)
        {
            return Placement::Placed(inv.id.clone(), false);
        }
        index = (index + step) % len;
    }

    // Overloaded: a random healthy invoker that can run the kind, forced.
    let mut usable = 0;
    let mut capable = 0;
    for inv in invokers.iter_mut() {
        if inv.usable(now, offline_after) {
            usable += 1;
            capable += usize::from(inv.can_run(req.kind));
        }
    }
    if capable == 0 {
        return Placement::Nowhere(usable > 0);
    }
    let pick = rand::rng().random_range(0..capable);
    let Some(inv) = invokers
        .iter_mut()
        .filter(|inv| inv.state.is_usable() && inv.can_run(req.kind))
        .nth(pick)
    else {
        return Placement::Nowhere(true);
    };
    inv.slots
        .force_acquire(req.action, req.max_concurrent, memory);
    Placement::Placed(inv.id.clone(), true)
}

impl Scheduler for ShardingScheduler {
    fn schedule(&self, req: &ScheduleRequest<'_>) -> Result<InvokerInstanceId> {
        let hash = generate_hash(req.namespace, req.action) as usize;
        let memory = permits(req.memory_mb);
        let offline_after = self.config.offline_after;
        let now = self.clock.now();

        let mut guard = self.lock();
        let st = &mut *guard;
        let pool = if req.blackbox {
            &st.blackbox
        } else {
            &st.managed
        };
        let Some(invokers) = st.invokers.get_mut(pool.start..pool.start + pool.len) else {
            return Err(no_invokers());
        };
        let mut placement = place(invokers, &pool.steps, hash, memory, req, now, offline_after);
        // Invokers differ in what they run: when no invoker of the action's pool can run its
        // kind, every invoker is a candidate (rare; the steps are computed for the occasion).
        if let (Placement::Nowhere(_), Some(_)) = (&placement, req.kind)
            && pool.len < st.invokers.len()
        {
            let steps = step_sizes(st.invokers.len());
            placement = place(
                &mut st.invokers,
                &steps,
                hash,
                memory,
                req,
                now,
                offline_after,
            );
        }
        drop(guard);
        match placement {
            Placement::Placed(chosen, forced) => {
                if forced {
                    tracing::warn!(
                        invoker = chosen.instance,
                        action = %req.action,
                        "system is overloaded"
                    );
                }
                Ok(chosen)
            }
            Placement::Nowhere(true) => Err(no_invoker_for(req.kind.unwrap_or_default())),
            Placement::Nowhere(false) => Err(no_invokers()),
        }
    }

    fn release(
        &self,
        invoker: &InvokerInstanceId,
        memory_mb: u64,
        max_concurrent: u32,
        action: &FullyQualifiedName,
    ) {
        let mut st = self.lock();
        if let Some(inv) = st.invokers.get_mut(invoker.instance as usize) {
            inv.slots
                .release(action, max_concurrent, permits(memory_mb));
        }
    }

    fn on_ping(&self, ping: &PingMessage) {
        let instance = ping.name.instance as usize;
        if instance >= self.config.max_invokers {
            tracing::warn!(
                invoker = ping.name.instance,
                max = self.config.max_invokers,
                "ignoring ping from an invoker beyond the configured maximum"
            );
            return;
        }
        let now = self.clock.now();
        let mut guard = self.lock();
        let st = &mut *guard;
        if instance >= st.invokers.len() {
            tracing::info!(invoker = ping.name.instance, "registered a new invoker");
            st.grow(instance + 1, &ping.name, &self.config);
        }
        let cluster_size = st.cluster_size;
        let Some(inv) = st.invokers.get_mut(instance) else {
            return;
        };
        if inv.id != ping.name {
            if inv.id.user_memory != ping.name.user_memory {
                inv.slots
                    .set_capacity(slot_permits(ping.name.user_memory, cluster_size));
            }
            inv.id = ping.name.clone();
        }
        inv.refresh(now, self.config.offline_after);
        inv.last_ping = Some(now);
        inv.set_kinds(ping.runtimes.as_ref());
        if !ping.is_enabled {
            if inv.state != InvokerState::Offline {
                tracing::info!(invoker = ping.name.instance, "invoker disabled");
                inv.state = InvokerState::Offline;
            }
            return;
        }
        if inv.state == InvokerState::Offline {
            inv.state = if self.config.initial_healthy {
                inv.outcomes.clear();
                InvokerState::Healthy
            } else {
                InvokerState::Unhealthy
            };
            tracing::info!(
                invoker = ping.name.instance,
                state = inv.state.as_str(),
                "invoker is online"
            );
        }
    }

    fn on_outcome(&self, invoker: &InvokerInstanceId, outcome: InvocationOutcome) {
        let now = self.clock.now();
        let mut st = self.lock();
        let Some(inv) = st.invokers.get_mut(invoker.instance as usize) else {
            return;
        };
        inv.refresh(now, self.config.offline_after);
        inv.outcomes.push(outcome);
        if inv.state != InvokerState::Offline {
            let next = inv.outcomes.verdict();
            if next != inv.state {
                tracing::info!(
                    invoker = invoker.instance,
                    from = inv.state.as_str(),
                    to = next.as_str(),
                    "invoker state changed"
                );
                inv.state = next;
            }
        }
    }

    fn invokers(&self) -> Vec<InvokerHealth> {
        let now = self.clock.now();
        let mut st = self.lock();
        st.invokers
            .iter_mut()
            .map(|inv| {
                inv.refresh(now, self.config.offline_after);
                InvokerHealth {
                    id: inv.id.clone(),
                    state: inv.state,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
