//! The pool's settings: memory, stem cells (and OpenWhisk's reactive prewarming), timeouts.

use std::collections::BTreeMap;
use std::time::Duration;

/// A kind of prewarmed container to keep ready (a "stem cell", as in the `stemCells` of
/// OpenWhisk's [`runtimes.json`](https://github.com/apache/openwhisk/blob/master/ansible/files/runtimes.json)).
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
/// ttl 2 min, threshold 1, increment 1`); see [Reactive prewarming](super#reactive-prewarming).
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

/// Settings of a [`ContainerPool`](super::ContainerPool).
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
    /// Longest wait of [`ContainerPool::shutdown`](super::ContainerPool::shutdown) for containers being created or destroyed.
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
