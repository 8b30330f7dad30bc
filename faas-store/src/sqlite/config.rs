//! [`SqliteBuilder`]: the SQLite store's settings, from setters or a `sqlite:PATH?k=v` URL.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use faas_core::{Error, Result};

use super::SqliteStore;

/// Records kept at most, all namespaces together, unless the URL says otherwise.
pub const DEFAULT_MAX_ACTIVATIONS: u64 = 1_000_000;
/// Age (since written) after which a record is removed, unless the URL says otherwise.
pub const DEFAULT_ACTIVATION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often the background task removes expired records, unless the URL says otherwise.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Read connections, unless the URL says otherwise.
pub const DEFAULT_READERS: usize = 4;
/// Longest time an activation record committed without a flush waits for one, unless the URL
/// says otherwise (see [`SqliteBuilder`], `activation_flush`).
pub const DEFAULT_ACTIVATION_FLUSH: Duration = Duration::from_secs(1);
/// How long a group of activation records waits for more records before its commit, unless
/// the URL says otherwise (see [`SqliteBuilder`], `activation_linger`).
pub const DEFAULT_ACTIVATION_LINGER: Duration = Duration::from_millis(2);

/// When a commit reaches the disk (SQLite's `PRAGMA synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// Every commit is flushed (`fsync`) before it is acknowledged: an acknowledged write
    /// survives a process crash **and** a power loss or OS crash. The default.
    #[default]
    Full,
    /// Commits are flushed at checkpoints only: an acknowledged write survives a process crash
    /// (`kill -9`), but a power loss or OS crash may roll back the last commits (the file stays
    /// consistent). Faster on disks with slow flushes.
    Normal,
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// A wall clock in epoch milliseconds; injectable so that retention can be tested without
/// waiting.
pub type WallClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Settings of a [`SqliteStore`]; build one with [`SqliteStore::builder`] or
/// [`SqliteBuilder::from_url`].
///
/// # URL
///
/// `sqlite:PATH[?key=value&…]`, where `PATH` is a file path (relative to the working directory
/// unless absolute; `sqlite://` followed by an absolute path works too). Keys:
///
/// | key | default | meaning |
/// |---|---|---|
/// | `synchronous` | `full` | `full`: every acknowledged write survives power loss; `normal`: survives a process crash, a power loss may lose the last commits |
/// | `activation_flush` | `1s` | with `synchronous=full`: a commit that holds only activation records is not flushed itself; it reaches the disk with the next flushed commit or within this time, whichever is first. `0` or `none`: every commit is flushed. A process crash loses nothing either way |
/// | `activation_linger` | `2ms` | a group of activation records only waits this long for more records before its commit (any other write ends the wait), so that records written close together share one commit; `0`: no wait |
/// | `max_activations` | `1000000` | activation records kept, all namespaces together, oldest written dropped first; `0` or `none`: no bound |
/// | `activation_ttl` | `30d` | records older than this (since written) are removed; `0` or `none`: kept until the count bound drops them. Units `ms`, `s`, `m`, `h`, `d` |
/// | `sweep_interval` | `60s` | how often expired records are removed |
/// | `readers` | `4` | read connections (reads run in parallel with each other and with the writer) |
///
/// ```
/// use faas_store::sqlite::SqliteBuilder;
///
/// let b = SqliteBuilder::from_url("sqlite:/var/lib/faas/faas.db?activation_ttl=7d&max_activations=500000")?;
/// assert_eq!(b.path().to_str(), Some("/var/lib/faas/faas.db"));
/// # Ok::<(), faas_core::Error>(())
/// ```
#[derive(Clone)]
pub struct SqliteBuilder {
    pub(crate) path: PathBuf,
    pub(crate) synchronous: Synchronous,
    pub(crate) activation_flush: Option<Duration>,
    pub(crate) activation_linger: Option<Duration>,
    pub(crate) max_activations: Option<u64>,
    pub(crate) activation_ttl: Option<Duration>,
    pub(crate) sweep_interval: Duration,
    pub(crate) readers: usize,
    pub(crate) clock: WallClock,
    pub(crate) background_sweeps: bool,
}

impl fmt::Debug for SqliteBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteBuilder")
            .field("path", &self.path)
            .field("synchronous", &self.synchronous)
            .field("activation_flush", &self.activation_flush)
            .field("activation_linger", &self.activation_linger)
            .field("max_activations", &self.max_activations)
            .field("activation_ttl", &self.activation_ttl)
            .field("sweep_interval", &self.sweep_interval)
            .field("readers", &self.readers)
            .field("background_sweeps", &self.background_sweeps)
            .finish_non_exhaustive()
    }
}

fn system_clock() -> u64 {
    faas_core::entity::now_ms()
}

impl SqliteBuilder {
    /// Settings for the database file at `path`, with the defaults above.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            synchronous: Synchronous::default(),
            activation_flush: Some(DEFAULT_ACTIVATION_FLUSH),
            activation_linger: Some(DEFAULT_ACTIVATION_LINGER),
            max_activations: Some(DEFAULT_MAX_ACTIVATIONS),
            activation_ttl: Some(DEFAULT_ACTIVATION_TTL),
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            readers: DEFAULT_READERS,
            clock: Arc::new(system_clock),
            background_sweeps: true,
        }
    }

    /// Parses `sqlite:PATH[?k=v&…]` (see the [type documentation](Self)).
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url
            .trim()
            .strip_prefix("sqlite:")
            .ok_or_else(|| bad(format!("'{url}' is not a sqlite: URL")))?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(bad(
                "a sqlite: URL needs a file path, for example sqlite:/var/lib/faas/faas.db",
            ));
        }
        let mut b = Self::new(path);
        for kv in query.into_iter().flat_map(|q| q.split('&')) {
            if kv.is_empty() {
                continue;
            }
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            b = b.with_option(k, v)?;
        }
        Ok(b)
    }

    /// Applies one URL option (`key`, `value`); unknown keys are an error.
    pub fn with_option(mut self, key: &str, value: &str) -> Result<Self> {
        match key {
            "synchronous" => {
                self.synchronous = match value.to_ascii_lowercase().as_str() {
                    "full" => Synchronous::Full,
                    "normal" => Synchronous::Normal,
                    _ => {
                        return Err(bad(format!(
                            "sqlite option synchronous={value}: use full or normal"
                        )));
                    }
                }
            }
            "activation_flush" => {
                self.activation_flush = match value {
                    "none" => None,
                    v => Some(parse_duration(key, v)?).filter(|d| !d.is_zero()),
                }
            }
            "activation_linger" => {
                self.activation_linger = match value {
                    "none" => None,
                    v => Some(parse_duration(key, v)?).filter(|d| !d.is_zero()),
                };
                if self.activation_linger > Some(Duration::from_secs(1)) {
                    return Err(bad("sqlite option activation_linger must be at most 1s"));
                }
            }
            "max_activations" => {
                self.max_activations = match value {
                    "none" | "0" => None,
                    v => Some(v.parse::<u64>().map_err(|_| {
                        bad(format!(
                            "sqlite option max_activations={v}: not a count (use a number, or none)"
                        ))
                    })?),
                }
            }
            "activation_ttl" => {
                self.activation_ttl = match value {
                    "none" => None,
                    v => Some(parse_duration(key, v)?).filter(|d| !d.is_zero()),
                }
            }
            "sweep_interval" => {
                let d = parse_duration(key, value)?;
                if d.is_zero() {
                    return Err(bad("sqlite option sweep_interval must be above 0"));
                }
                self.sweep_interval = d;
            }
            "readers" => {
                self.readers = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "sqlite option readers={value}: use a number from 1 to 64"
                        ))
                    })?
            }
            other => {
                return Err(bad(format!(
                    "unknown sqlite option '{other}' (known: synchronous, activation_flush, activation_linger, max_activations, activation_ttl, sweep_interval, readers)"
                )));
            }
        }
        Ok(self)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When commits reach the disk; see [`Synchronous`].
    pub fn with_synchronous(mut self, s: Synchronous) -> Self {
        self.synchronous = s;
        self
    }

    /// With [`Synchronous::Full`], how long a commit that holds only activation records may
    /// wait for its flush (`None` or zero: every commit is flushed). Such a commit is written
    /// to the log without an `fsync`; the next commit of anything else, or a flush of the log
    /// at most `within` later, makes it durable. A process crash (`kill -9`) loses none of
    /// them (they are in the operating system's cache); a power loss or OS crash may lose the
    /// records of the last `within`. Entities, subjects, limits and documents are flushed
    /// before they are acknowledged either way.
    pub fn with_activation_flush(mut self, within: Option<Duration>) -> Self {
        self.activation_flush = within.filter(|d| !d.is_zero());
        self
    }

    /// How long a group of activation records waits for more records before its commit
    /// (`None` or zero: no wait; at most 1 s). Any other write ends the wait at once: only
    /// records, which no API client waits for, are held back.
    pub fn with_activation_linger(mut self, linger: Option<Duration>) -> Self {
        self.activation_linger = linger
            .filter(|d| !d.is_zero())
            .map(|d| d.min(Duration::from_secs(1)));
        self
    }

    /// Keeps at most `max` activation records (`None`: no bound).
    pub fn with_max_activations(mut self, max: Option<u64>) -> Self {
        self.max_activations = max.filter(|&m| m > 0);
        self
    }

    /// Removes records older than `ttl` since written (`None`: no age bound).
    pub fn with_activation_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.activation_ttl = ttl.filter(|d| !d.is_zero());
        self
    }

    /// How often the background task removes expired records.
    pub fn with_sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = every.max(Duration::from_millis(1));
        self
    }

    /// Number of read connections (1 to 64).
    pub fn with_readers(mut self, n: usize) -> Self {
        self.readers = n.clamp(1, 64);
        self
    }

    /// The wall clock (epoch ms) used to stamp records and to find expired ones.
    pub fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Whether a background task removes expired records every sweep interval (default on).
    /// Off, retention by age happens only through [`SqliteStore::sweep`]; the count bound is
    /// enforced on every write either way.
    pub fn with_background_sweeps(mut self, on: bool) -> Self {
        self.background_sweeps = on;
        self
    }

    /// Opens (creating or upgrading) the database; see [`SqliteStore`].
    pub async fn build(self) -> Result<SqliteStore> {
        SqliteStore::open(self).await
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::bad_request(msg)
}

/// `250ms`, `30s`, `15m`, `12h`, `7d`; a bare number is seconds.
pub(crate) fn parse_duration(key: &str, v: &str) -> Result<Duration> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        bad(format!(
            "sqlite option {key}={v}: not a duration (use e.g. 500ms, 30s, 15m, 12h, 7d)"
        ))
    })?;
    let ms_per = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(bad(format!(
                "sqlite option {key}={v}: unknown unit '{unit}' (use ms, s, m, h or d)"
            )));
        }
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(|| bad(format!("sqlite option {key}={v}: too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_options() {
        let b = SqliteBuilder::from_url(
            "sqlite:/tmp/x.db?activation_ttl=7d&max_activations=10&synchronous=normal&readers=2&sweep_interval=500ms&activation_flush=250ms",
        )
        .unwrap();
        assert_eq!(b.path, PathBuf::from("/tmp/x.db"));
        assert_eq!(b.activation_ttl, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(b.max_activations, Some(10));
        assert_eq!(b.synchronous, Synchronous::Normal);
        assert_eq!(b.readers, 2);
        assert_eq!(b.sweep_interval, Duration::from_millis(500));
        assert_eq!(b.activation_flush, Some(Duration::from_millis(250)));
        assert_eq!(b.activation_linger, Some(DEFAULT_ACTIVATION_LINGER));
        let l = SqliteBuilder::from_url("sqlite:x.db?activation_linger=0").unwrap();
        assert_eq!(l.activation_linger, None);
        let l = SqliteBuilder::from_url("sqlite:x.db?activation_linger=5ms").unwrap();
        assert_eq!(l.activation_linger, Some(Duration::from_millis(5)));

        let d = SqliteBuilder::from_url("sqlite:relative/faas.db").unwrap();
        assert_eq!(d.path, PathBuf::from("relative/faas.db"));
        assert_eq!(d.max_activations, Some(DEFAULT_MAX_ACTIVATIONS));
        assert_eq!(d.activation_ttl, Some(DEFAULT_ACTIVATION_TTL));
        assert_eq!(d.synchronous, Synchronous::Full);
        assert_eq!(d.activation_flush, Some(DEFAULT_ACTIVATION_FLUSH));
        let abs = SqliteBuilder::from_url("sqlite:///abs/faas.db").unwrap();
        assert_eq!(abs.path, PathBuf::from("/abs/faas.db"));

        let off =
            SqliteBuilder::from_url("sqlite:x.db?max_activations=none&activation_ttl=0").unwrap();
        assert_eq!((off.max_activations, off.activation_ttl), (None, None));
        for every_commit in ["activation_flush=0", "activation_flush=none"] {
            let b = SqliteBuilder::from_url(&format!("sqlite:x.db?{every_commit}")).unwrap();
            assert_eq!(b.activation_flush, None, "{every_commit}");
        }
    }

    #[test]
    fn bad_urls_are_clear_errors() {
        for (url, needle) in [
            ("sqlite:", "needs a file path"),
            ("sqlite:?x=1", "needs a file path"),
            ("memory:", "not a sqlite: URL"),
            ("sqlite:x.db?bogus=1", "unknown sqlite option 'bogus'"),
            ("sqlite:x.db?activation_ttl=7w", "unknown unit 'w'"),
            ("sqlite:x.db?activation_ttl=abc", "not a duration"),
            ("sqlite:x.db?max_activations=-1", "not a count"),
            ("sqlite:x.db?synchronous=off", "use full or normal"),
            ("sqlite:x.db?readers=0", "from 1 to 64"),
            ("sqlite:x.db?activation_flush=soon", "not a duration"),
            ("sqlite:x.db?activation_linger=2s", "at most 1s"),
            ("sqlite:x.db?sweep_interval=0", "above 0"),
            ("sqlite:x.db?activation_ttl=99999999999999999d", "too large"),
        ] {
            let e = SqliteBuilder::from_url(url).unwrap_err();
            assert!(matches!(e, Error::BadRequest { .. }), "{url}: {e:?}");
            assert!(e.to_string().contains(needle), "{url}: {e}");
        }
    }
}
