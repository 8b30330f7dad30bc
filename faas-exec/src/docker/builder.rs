//! Configuring a [`DockerExecutor`]: the builder, its settings by name (URLs, environment) and
//! the connection to the engine.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ListImagesOptions;
use faas_core::{Error, Result};

use super::{
    BACKEND, DEFAULT_API_TIMEOUT, DEFAULT_LOG_BUFFER_BYTES, DEFAULT_LOG_WAIT,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_NETWORK, DEFAULT_NOFILE, DEFAULT_PIDS_LIMIT,
    DEFAULT_READY_WAIT, DockerExecutor, KIND_LABEL, Shared, error, runtimes,
};

/// The settings, fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(super) host: Option<String>,
    pub(super) invoker: String,
    pub(super) network: String,
    pub(super) work_dir: Option<PathBuf>,
    pub(super) user: Option<String>,
    pub(super) user_memory_mb: u64,
    pub(super) pids_limit: i64,
    pub(super) nofile: i64,
    pub(super) max_response_bytes: usize,
    pub(super) log_wait: Duration,
    pub(super) log_buffer_bytes: usize,
    pub(super) api_timeout: Duration,
    pub(super) ready_wait: Duration,
    pub(super) runtimes: Vec<(String, String)>,
    pub(super) labels: BTreeMap<String, String>,
}

/// A setting of [`DockerExecutorBuilder`] by name, for configuration files, URLs and the
/// environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DockerConfigKey {
    /// `host` / `FAAS_DOCKER_HOST`: the engine address (`unix:///var/run/docker.sock`,
    /// `tcp://host:2375`); default `DOCKER_HOST` or the local socket.
    Host,
    /// `invoker` / `FAAS_DOCKER_INVOKER`: the invoker id containers are labelled with.
    Invoker,
    /// `network` / `FAAS_DOCKER_NETWORK`: the network containers join.
    Network,
    /// `work_dir` / `FAAS_DOCKER_WORK_DIR`: where per-container directories are made.
    WorkDir,
    /// `user` / `FAAS_DOCKER_USER`: the user containers run as (`uid:gid`; empty: the image's).
    User,
    /// `user_memory` / `FAAS_DOCKER_USER_MEMORY`: the invoker's user memory, MB (CPU shares).
    UserMemory,
    /// `pids_limit` / `FAAS_DOCKER_PIDS_LIMIT`: the pids limit (0: none).
    PidsLimit,
    /// `nofile` / `FAAS_DOCKER_NOFILE`: the open-files limit (0: the engine's default).
    Nofile,
}

impl DockerConfigKey {
    /// All keys.
    pub const ALL: [Self; 8] = [
        Self::Host,
        Self::Invoker,
        Self::Network,
        Self::WorkDir,
        Self::User,
        Self::UserMemory,
        Self::PidsLimit,
        Self::Nofile,
    ];

    /// The name in URLs and files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Invoker => "invoker",
            Self::Network => "network",
            Self::WorkDir => "work_dir",
            Self::User => "user",
            Self::UserMemory => "user_memory",
            Self::PidsLimit => "pids_limit",
            Self::Nofile => "nofile",
        }
    }

    /// The environment variable ([`DockerExecutorBuilder::from_env`]).
    pub fn env_var(self) -> String {
        format!("FAAS_DOCKER_{}", self.name().to_ascii_uppercase())
    }
}

impl FromStr for DockerConfigKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|k| k.name() == key)
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "unknown docker executor setting '{s}'; known: {}",
                    Self::ALL.map(Self::name).join(", ")
                ))
            })
    }
}

/// Configures a [`DockerExecutor`].
#[derive(Debug, Clone)]
pub struct DockerExecutorBuilder {
    config: Config,
    /// Values that failed to parse, reported by `build`.
    invalid: Vec<String>,
}

impl Default for DockerExecutorBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DockerExecutorBuilder {
    /// The defaults: the engine of `DOCKER_HOST` or the local socket, invoker id `0`, network
    /// `none`, OpenWhisk's limits, user memory 1024 MB, containers running as this process's
    /// user when it is not root (so that it can reach their sockets) and as the image's user
    /// otherwise.
    pub fn new() -> Self {
        let uid = nix::unistd::geteuid();
        let user = (!uid.is_root()).then(|| format!("{uid}:{}", nix::unistd::getegid()));
        Self {
            config: Config {
                host: None,
                invoker: "0".into(),
                network: DEFAULT_NETWORK.into(),
                work_dir: None,
                user,
                user_memory_mb: 1024,
                pids_limit: DEFAULT_PIDS_LIMIT,
                nofile: DEFAULT_NOFILE,
                max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
                log_wait: DEFAULT_LOG_WAIT,
                log_buffer_bytes: DEFAULT_LOG_BUFFER_BYTES,
                api_timeout: DEFAULT_API_TIMEOUT,
                ready_wait: DEFAULT_READY_WAIT,
                runtimes: Vec::new(),
                labels: BTreeMap::new(),
            },
            invalid: Vec::new(),
        }
    }

    /// The defaults, then every `FAAS_DOCKER_<KEY>` variable that is set (see
    /// [`DockerConfigKey`]).
    pub fn from_env() -> Result<Self> {
        let mut b = Self::new();
        for key in DockerConfigKey::ALL {
            if let Ok(v) = std::env::var(key.env_var()) {
                b = b.with_config(key, v);
            }
        }
        b.check()?;
        Ok(b)
    }

    /// The defaults, then the query of an adapter URL: `docker:` or
    /// `docker:?network=bridge&invoker=3&user_memory=2048` (keys of [`DockerConfigKey`],
    /// values percent-decoded).
    pub fn from_url(url: &str) -> Result<Self> {
        let url = url.trim();
        let rest = url
            .strip_prefix("docker:")
            .ok_or_else(|| Error::bad_request(format!("'{url}' is not a docker: URL")))?;
        let query = match rest.split_once('?') {
            Some((path, q)) => {
                if !path.trim_start_matches('/').is_empty() {
                    return Err(Error::bad_request(format!(
                        "docker URL '{url}': put settings in the query (docker:?host=...)"
                    )));
                }
                q
            }
            None if rest.trim_start_matches('/').is_empty() => "",
            None => {
                return Err(Error::bad_request(format!(
                    "docker URL '{url}': put settings in the query (docker:?host=...)"
                )));
            }
        };
        let mut b = Self::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key: DockerConfigKey = percent_decode(k)?.parse()?;
            b = b.with_config(key, percent_decode(v)?);
        }
        b.check()?;
        Ok(b)
    }

    fn check(&self) -> Result<()> {
        match self.invalid.first() {
            Some(why) => Err(Error::bad_request(why.clone())),
            None => Ok(()),
        }
    }

    /// Sets one setting by key; a value that does not parse makes [`build`](Self::build) fail.
    pub fn with_config(mut self, key: DockerConfigKey, value: impl Into<String>) -> Self {
        let value = value.into();
        let number = |v: &str, invalid: &mut Vec<String>| -> Option<i64> {
            match v.trim().parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => {
                    invalid.push(format!(
                        "docker executor setting '{}': '{v}' is not a non-negative number",
                        key.name()
                    ));
                    None
                }
            }
        };
        match key {
            DockerConfigKey::Host => self.config.host = Some(value).filter(|v| !v.is_empty()),
            DockerConfigKey::Invoker => return self.with_invoker_id(value),
            DockerConfigKey::Network => return self.with_network(value),
            DockerConfigKey::WorkDir => self.config.work_dir = Some(PathBuf::from(value)),
            DockerConfigKey::User => self.config.user = Some(value).filter(|v| !v.is_empty()),
            DockerConfigKey::UserMemory => {
                if let Some(n) = number(&value, &mut self.invalid) {
                    self.config.user_memory_mb = n as u64;
                }
            }
            DockerConfigKey::PidsLimit => {
                if let Some(n) = number(&value, &mut self.invalid) {
                    self.config.pids_limit = n;
                }
            }
            DockerConfigKey::Nofile => {
                if let Some(n) = number(&value, &mut self.invalid) {
                    self.config.nofile = n;
                }
            }
        }
        self
    }

    /// The engine address (`unix:///var/run/docker.sock`, `tcp://host:2375`); default:
    /// `DOCKER_HOST`, else the local socket.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.config.host = Some(host.into());
        self
    }

    /// The invoker id containers are labelled with (`faas.invoker`); containers of other ids
    /// are never touched by [`DockerExecutor::remove_orphans`].
    pub fn with_invoker_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if id.is_empty() || id.contains(['=', ',']) {
            self.invalid.push(format!(
                "invoker id '{id}' must be non-empty without '=' or ','"
            ));
        }
        self.config.invoker = id;
        self
    }

    /// The network containers join: `none` (default), `bridge`, or any network name. With
    /// `none`, containers can reach nothing, and nothing but the invoker reaches them.
    pub fn with_network(mut self, network: impl Into<String>) -> Self {
        let network = network.into();
        if network.trim().is_empty() {
            self.invalid
                .push("the docker network must not be empty".into());
        }
        self.config.network = network;
        self
    }

    /// Where the per-container directories are made (default: the system temporary
    /// directory). Keep it short: socket paths are limited to 107 bytes.
    pub fn with_work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.work_dir = Some(dir.into());
        self
    }

    /// The user containers run as (`uid:gid`, `name`), or `None` for the image's user.
    pub fn with_user(mut self, user: Option<String>) -> Self {
        self.config.user = user;
        self
    }

    /// The invoker's user memory, MB, which scales the CPU shares (default 1024).
    pub fn with_user_memory_mb(mut self, mb: u64) -> Self {
        self.config.user_memory_mb = mb;
        self
    }

    /// The pids limit of each container (default [`DEFAULT_PIDS_LIMIT`]; 0: none).
    pub fn with_pids_limit(mut self, limit: i64) -> Self {
        self.config.pids_limit = limit.max(0);
        self
    }

    /// The open-files limit (soft and hard) of each container (default [`DEFAULT_NOFILE`]; 0:
    /// the engine's default).
    pub fn with_nofile(mut self, limit: i64) -> Self {
        self.config.nofile = limit.max(0);
        self
    }

    /// The most bytes of a reply body kept (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.config.max_response_bytes = bytes;
        self
    }

    /// The longest `logs(_, true)` waits for the sentinels (default [`DEFAULT_LOG_WAIT`]).
    pub fn with_log_wait(mut self, wait: Duration) -> Self {
        self.config.log_wait = wait;
        self
    }

    /// The most log bytes buffered per container (default [`DEFAULT_LOG_BUFFER_BYTES`]).
    pub fn with_log_buffer_bytes(mut self, bytes: usize) -> Self {
        self.config.log_buffer_bytes = bytes;
        self
    }

    /// The longest wait for one Docker API call (default [`DEFAULT_API_TIMEOUT`]).
    pub fn with_api_timeout(mut self, timeout: Duration) -> Self {
        self.config.api_timeout = timeout;
        self
    }

    /// How long `create` waits for the action proxy to listen (default
    /// [`DEFAULT_READY_WAIT`]). The runtime's boot then does not count against the action's
    /// init time limit, and a prewarmed container is ready when the pool gets it. An image
    /// whose proxy never creates the socket is handed over after this wait (its `/init` then
    /// fails).
    pub fn with_ready_wait(mut self, wait: Duration) -> Self {
        self.config.ready_wait = wait;
        self
    }

    /// Runs `kind` (`nodejs:20`) from `image`, besides (or instead of) the labelled images.
    pub fn with_runtime(mut self, kind: impl Into<String>, image: impl Into<String>) -> Self {
        self.config.runtimes.push((kind.into(), image.into()));
        self
    }

    /// A label for every container.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.labels.insert(key.into(), value.into());
        self
    }

    /// Connects to the engine, negotiates the API version, lists the runtime images and makes
    /// the work directory.
    ///
    /// Fails with [`Error::Unavailable`] when the engine does not answer or offers no runtime
    /// image (build them with `scripts/services/docker.sh images`).
    pub async fn build(self) -> Result<DockerExecutor> {
        self.check()?;
        let c = self.config;
        let connected = match &c.host {
            Some(h) => Docker::connect_with_host(h),
            None => Docker::connect_with_defaults(),
        };
        let docker = connected
            .map_err(|e| Error::unavailable(format!("cannot reach the Docker engine: {e}")))?;
        let docker = tokio::time::timeout(c.api_timeout, docker.negotiate_version())
            .await
            .map_err(|_| Error::unavailable("the Docker engine did not answer in time"))?
            .map_err(|e| Error::unavailable(format!("the Docker engine does not answer: {e}")))?;
        let api_version = docker.client_version().to_string();

        let filters = HashMap::from([("label".to_string(), vec![KIND_LABEL.to_string()])]);
        let opts = ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        };
        let images = tokio::time::timeout(c.api_timeout, docker.list_images(Some(opts)))
            .await
            .map_err(|_| error::api_timeout("listing images"))?
            .map_err(|e| error::api("listing images", e))?;
        let found = images
            .iter()
            .filter_map(|i| runtimes::found_image(&i.id, &i.repo_tags, &i.labels, i.created))
            .collect();
        let manifest = runtimes::manifest(found, &c.runtimes);
        if manifest.kinds().next().is_none() {
            return Err(Error::unavailable(
                "no runtime images: no local image is labelled faas.kind (build them with scripts/services/docker.sh images)",
            ));
        }

        let base = c.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        let work = tempfile::Builder::new()
            .prefix("faas-docker-")
            .tempdir_in(&base)
            .map_err(|e| {
                Error::backend(
                    BACKEND,
                    false,
                    format!("cannot create a directory in {}: {e}", base.display()),
                )
            })?;
        let nonce = nonce();
        tracing::info!(
            api_version = %api_version,
            kinds = ?manifest.kinds().map(|k| (&k.kind, &k.image)).collect::<Vec<_>>(),
            network = %c.network,
            invoker = %c.invoker,
            "docker executor ready"
        );
        Ok(DockerExecutor {
            shared: Arc::new(Shared {
                docker,
                config: c,
                manifest,
                api_version,
                work,
                nonce,
                next_id: AtomicU64::new(0),
                images: Mutex::new(HashSet::new()),
                creating: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }
}

/// Adds `invoker=<id>` and `user_memory=<mb>` to a `docker:` adapter URL unless it names them,
/// so that an invoker node labels its containers with its own id (for
/// [`DockerExecutor::remove_orphans`]) and scales CPU shares by its memory. Other URLs are
/// returned unchanged.
///
/// ```
/// use faas_exec::docker::invoker_url;
/// assert_eq!(invoker_url("docker:", "3", 2048), "docker:?invoker=3&user_memory=2048");
/// assert_eq!(invoker_url("docker:?network=bridge&invoker=x", "3", 2048),
///            "docker:?network=bridge&invoker=x&user_memory=2048");
/// assert_eq!(invoker_url("process:", "3", 2048), "process:");
/// ```
pub fn invoker_url(url: &str, invoker_id: &str, user_memory_mb: u64) -> String {
    let url = url.trim();
    if !url.starts_with("docker:") {
        return url.to_string();
    }
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let has = |key: DockerConfigKey| {
        query.split('&').any(|p| {
            p.split('=')
                .next()
                .and_then(|k| percent_decode(k).ok())
                .and_then(|k| k.parse::<DockerConfigKey>().ok())
                == Some(key)
        })
    };
    let mut out = url.to_string();
    let mut add = |k: DockerConfigKey, v: &str| {
        out.push(if out.contains('?') { '&' } else { '?' });
        if out.ends_with("?&") {
            out.pop();
        }
        out.push_str(k.name());
        out.push('=');
        out.push_str(v);
    };
    if !has(DockerConfigKey::Invoker) {
        add(DockerConfigKey::Invoker, invoker_id);
    }
    if !has(DockerConfigKey::UserMemory) {
        add(DockerConfigKey::UserMemory, &user_memory_mb.to_string());
    }
    out
}

/// Six lowercase letters/digits that differ between executors (time and process id).
fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = t
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    const DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..6)
        .map(|i| DIGITS[((x >> (i * 6)) % DIGITS.len() as u64) as usize] as char)
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space) of a URL query part.
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Error::bad_request(format!("bad %-escape in '{s}'")))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::bad_request(format!("'{s}' is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 6);
        assert_ne!(a, b);
    }

    #[test]
    fn urls_and_keys() {
        let b = DockerExecutorBuilder::from_url(
            "docker:?network=bridge&invoker=inv%2D3&user_memory=2048&pids_limit=64&nofile=0&user=",
        )
        .unwrap();
        assert_eq!(b.config.network, "bridge");
        assert_eq!(b.config.invoker, "inv-3");
        assert_eq!(b.config.user_memory_mb, 2048);
        assert_eq!(b.config.pids_limit, 64);
        assert_eq!(b.config.nofile, 0);
        assert_eq!(b.config.user, None);
        let b = DockerExecutorBuilder::from_url("docker:").unwrap();
        assert_eq!(b.config.network, "none");
        assert_eq!(b.config.invoker, "0");
        assert!(DockerExecutorBuilder::from_url("docker://").is_ok());
        assert!(DockerExecutorBuilder::from_url("docker:?bogus=1").is_err());
        assert!(DockerExecutorBuilder::from_url("docker:?pids_limit=-1").is_err());
        assert!(DockerExecutorBuilder::from_url("docker:?invoker=a%3Db").is_err());
        assert!(DockerExecutorBuilder::from_url("docker://host/x").is_err());
        assert!(DockerExecutorBuilder::from_url("process:").is_err());
        assert_eq!(
            "Work-Dir".parse::<DockerConfigKey>().unwrap(),
            DockerConfigKey::WorkDir
        );
        assert_eq!(
            DockerConfigKey::UserMemory.env_var(),
            "FAAS_DOCKER_USER_MEMORY"
        );
        assert_eq!(percent_decode("a%20b+c").unwrap(), "a b c");
        assert_eq!(
            invoker_url("docker:?", "1", 512),
            "docker:?invoker=1&user_memory=512"
        );
        assert_eq!(
            invoker_url("docker:?user_memory=64", "1", 512),
            "docker:?user_memory=64&invoker=1"
        );
        let u = invoker_url("docker:?network=bridge", "7", 4096);
        let b = DockerExecutorBuilder::from_url(&u).unwrap();
        assert_eq!(
            (
                b.config.invoker.as_str(),
                b.config.user_memory_mb,
                b.config.network.as_str()
            ),
            ("7", 4096, "bridge")
        );
        assert!(percent_decode("%zz").is_err());
    }
}
