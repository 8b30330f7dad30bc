//! Configuration: command-line flags, `FAAS_*` environment variables and a TOML file.
//!
//! Precedence: flag > environment variable > config file > default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use faas_core::{Error, Result, SystemLimits};
use faas_http::admin::AdminCredential;

use crate::registry::normalize;

/// `faas-platform`: an OpenWhisk-compatible Function-as-a-Service platform.
#[derive(Debug, Parser)]
#[command(name = "faas-platform", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Controller and invoker in one process (by default: the durable SQLite store in the data
    /// directory, the in-process bus and local processes).
    Standalone(NodeArgs),
    /// A controller only (the REST API); invokers run as separate processes sharing its store
    /// and bus (for example `--store couchdb://… --bus kafka://…`).
    Controller(NodeArgs),
    /// An invoker only: consumes `invoker<N>` from the bus and runs actions.
    Invoker(NodeArgs),
    /// The operator CLI (`wskadmin`'s `user`, `limits`, and `namespace list`): against a running
    /// controller's admin API (`--url`, `--admin-auth`) or straight against a shared store
    /// (`--store`, with `--bus` so that running controllers hear of the change).
    Admin(crate::admin::AdminArgs),
}

/// The flags of `standalone` (the former name of [`NodeArgs`]).
pub type StandaloneArgs = NodeArgs;
/// The settings of `standalone` (the former name of [`NodeConfig`]).
pub type StandaloneConfig = NodeConfig;

/// Flags shared by every mode (each mode reads the ones it needs).
#[derive(Debug, Clone, Default, Args)]
pub struct NodeArgs {
    /// This node's id: the controller id (`completed<ID>`) or the invoker number (`invoker<ID>`)
    /// [default: 0].
    #[arg(long, env = "FAAS_ID")]
    pub id: Option<String>,
    /// Number of controllers sharing the invokers (each takes 1/N of every invoker's memory)
    /// [default: 1].
    #[arg(long, env = "FAAS_CLUSTER_SIZE")]
    pub cluster_size: Option<u32>,
    /// `__OW_API_HOST` given to actions by an invoker (default: `http://` and the listen address).
    #[arg(long, env = "FAAS_API_HOST")]
    pub api_host: Option<String>,
    /// A TOML config file (see README).
    #[arg(long, env = "FAAS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to serve the API on [default: 127.0.0.1:3233].
    #[arg(long, env = "FAAS_LISTEN")]
    pub listen: Option<String>,
    /// Store adapter URL [default: standalone: sqlite:DATA_DIR/faas.db; controller and
    /// invoker: memory:]. `memory:` keeps nothing after exit.
    #[arg(long, env = "FAAS_STORE")]
    pub store: Option<String>,
    /// Where standalone keeps its store (`faas.db`) when --store is not given
    /// [default: $XDG_DATA_HOME/faas, else ~/.local/share/faas].
    #[arg(long, env = "FAAS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Message bus adapter URL [default: inproc:].
    #[arg(long, env = "FAAS_BUS")]
    pub bus: Option<String>,
    /// Executor adapter URL [default: process: (standalone), docker: (controller, invoker)].
    #[arg(long, env = "FAAS_EXECUTOR")]
    pub executor: Option<String>,
    /// The guest namespace's credentials `uuid:key` [default: a random key, printed].
    #[arg(long, env = "FAAS_GUEST_AUTH", hide_env_values = true)]
    pub guest_auth: Option<String>,
    /// Memory the invoker may give to actions, MB [default: 2048].
    #[arg(long, env = "FAAS_USER_MEMORY_MB")]
    pub user_memory_mb: Option<u64>,
    /// The operator credential that opens the admin API (`/admin/v1`) of a controller: 32 to
    /// 1024 characters of A-Z a-z 0-9 - . _ ~ + / [default: none, the admin API is off].
    #[arg(long, env = "FAAS_ADMIN_AUTH", hide_env_values = true, allow_hyphen_values = true,
          value_parser = parse_admin_credential)]
    pub admin_auth: Option<AdminCredential>,
    /// Do not install the `whisk.system` catalog at start-up (controllers).
    #[arg(long, env = "FAAS_NO_CATALOG")]
    pub no_catalog: bool,
    /// A folder of extra catalog packages to install in `whisk.system` (one sub-folder per
    /// package with a `manifest.json`; repeatable).
    #[arg(long = "catalog-dir", env = "FAAS_CATALOG_DIR", value_delimiter = ',')]
    pub catalog_dirs: Vec<PathBuf>,
    /// Serve `/metrics` (Prometheus) on a listener of its own at this address (any mode; the
    /// only way for an invoker) [default: none].
    #[arg(long, env = "FAAS_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// The bearer token that opens `/metrics` on a controller's API listener [default: none,
    /// no `/metrics` there].
    #[arg(long, env = "FAAS_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Record no metrics at all.
    #[arg(long, env = "FAAS_NO_METRICS")]
    pub no_metrics: bool,
    /// Export traces over OTLP/HTTP to this collector (`http://host:4318`) [default: none,
    /// no tracing].
    #[arg(long, env = "FAAS_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Publish OpenWhisk's user events on the bus's `events` topic.
    #[arg(long, env = "FAAS_USER_EVENTS")]
    pub user_events: bool,
}

/// Parses an operator credential (clap value parser; the message names the rules).
pub fn parse_admin_credential(s: &str) -> std::result::Result<AdminCredential, String> {
    AdminCredential::new(s).map_err(|e| e.to_string())
}

fn deserialize_admin_credential<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<AdminCredential>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| AdminCredential::new(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// The config file's shape; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Address to serve on.
    pub listen: Option<String>,
    /// Store URL.
    pub store: Option<String>,
    /// Data directory (standalone's default store lives there).
    pub data_dir: Option<PathBuf>,
    /// Bus URL.
    pub bus: Option<String>,
    /// Executor URL.
    pub executor: Option<String>,
    /// Guest credentials.
    pub guest_auth: Option<String>,
    /// The operator credential of the admin API.
    #[serde(deserialize_with = "deserialize_admin_credential")]
    pub admin_auth: Option<AdminCredential>,
    /// Node id.
    pub id: Option<String>,
    /// Number of controllers.
    pub cluster_size: Option<u32>,
    /// `__OW_API_HOST` for actions.
    pub api_host: Option<String>,
    /// Invoker settings.
    pub invoker: InvokerSection,
    /// The `whisk.system` catalog.
    pub catalog: CatalogSection,
    /// The built-in alarms provider.
    pub alarms: AlarmsSection,
    /// HTTP server limits.
    pub server: ServerSection,
    /// System limits (OpenWhisk's defaults for unset fields).
    pub limits: Option<SystemLimits>,
    /// Prometheus metrics.
    pub metrics: MetricsSection,
    /// Traces.
    pub tracing: TracingSection,
    /// OpenWhisk's user events.
    pub user_events: UserEventsSection,
}

/// `[user_events]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserEventsSection {
    /// Whether user events are published (default false).
    pub enabled: Option<bool>,
}

/// `[tracing]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingSection {
    /// The OTLP/HTTP collector traces are exported to.
    pub otlp_endpoint: Option<String>,
}

/// `[metrics]` of the config file.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Whether metrics are recorded (default true).
    pub enabled: Option<bool>,
    /// A listener of its own for `/metrics`.
    pub listen: Option<String>,
    /// The bearer token of `/metrics` on the API listener.
    pub token: Option<String>,
    /// Activation label sets kept before `other` (default 500).
    pub max_actions: Option<usize>,
}

impl std::fmt::Debug for MetricsSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSection")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("max_actions", &self.max_actions)
            .finish()
    }
}

/// The resolved metrics settings of a node.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Whether metrics are recorded.
    pub enabled: bool,
    /// A listener of its own for `/metrics`.
    pub listen: Option<SocketAddr>,
    /// The bearer token of `/metrics` on a controller's API listener.
    pub token: Option<String>,
    /// Activation label sets kept before `other`.
    pub max_actions: usize,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
            token: None,
            max_actions: faas_http::metrics::MetricsConfig::default().max_actions,
        }
    }
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("max_actions", &self.max_actions)
            .finish()
    }
}

/// `[server]` of the config file: the HTTP server's limits (see `faas_http::server`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Most open connections.
    pub max_connections: Option<usize>,
    /// Longest time from a request's first byte to the end of its head, ms.
    pub header_read_timeout_ms: Option<u64>,
    /// Longest time a request body may take to arrive, ms.
    pub body_read_timeout_ms: Option<u64>,
    /// Longest silence of a connection between requests, ms.
    pub idle_timeout_ms: Option<u64>,
    /// How long requests in progress may finish after SIGTERM, ms.
    pub shutdown_deadline_ms: Option<u64>,
    /// Largest request head (request line and headers), bytes.
    pub max_head_bytes: Option<usize>,
}

impl ServerSection {
    /// These settings over the defaults.
    pub fn to_config(&self) -> faas_http::ServerConfig {
        use std::time::Duration;
        let d = faas_http::ServerConfig::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        faas_http::ServerConfig::default()
            .with_max_connections(self.max_connections.unwrap_or(d.max_connections))
            .with_header_read_timeout(ms(self.header_read_timeout_ms, d.header_read_timeout))
            .with_body_read_timeout(ms(self.body_read_timeout_ms, d.body_read_timeout))
            .with_idle_timeout(ms(self.idle_timeout_ms, d.idle_timeout))
            .with_shutdown_deadline(ms(self.shutdown_deadline_ms, d.shutdown_deadline))
            .with_max_head_bytes(self.max_head_bytes.unwrap_or(d.max_head_bytes))
    }
}

/// `[invoker]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvokerSection {
    /// Memory for actions, MB.
    pub user_memory_mb: Option<u64>,
    /// Prewarmed containers of the default Node.js kind (256 MB each).
    pub prewarm_nodejs: Option<usize>,
}

/// `[catalog]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSection {
    /// Whether to install the catalog (default true).
    pub install: Option<bool>,
    /// Extra catalog folders.
    pub dirs: Vec<PathBuf>,
}

/// `[alarms]` of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlarmsSection {
    /// Whether this controller runs the alarms scheduler (default true; the feed actions are
    /// served either way).
    pub enabled: Option<bool>,
    /// The scheduler's poll period, ms (default 250).
    pub poll_ms: Option<u64>,
    /// The leader lease, ms (default 10000): how long a dead leader's alarms wait.
    pub lease_ms: Option<u64>,
}

impl AlarmsSection {
    fn to_config(&self) -> faas_http::alarms::AlarmsConfig {
        let d = faas_http::alarms::AlarmsConfig::default();
        faas_http::alarms::AlarmsConfig {
            enabled: self.enabled.unwrap_or(d.enabled),
            poll: self
                .poll_ms
                .map_or(d.poll, std::time::Duration::from_millis),
            lease: self
                .lease_ms
                .map_or(d.lease, std::time::Duration::from_millis),
        }
    }
}

/// The resolved settings of a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Controller id or invoker number.
    pub id: String,
    /// Number of controllers.
    pub cluster_size: u32,
    /// `__OW_API_HOST` for actions (`None`: derived from `listen`).
    pub api_host: Option<String>,
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Store URL.
    pub store: String,
    /// The data directory holding the default store, when the store is the default one.
    pub data_dir: Option<PathBuf>,
    /// Bus URL.
    pub bus: String,
    /// Executor URL.
    pub executor: String,
    /// Guest credentials, if given.
    pub guest_auth: Option<String>,
    /// The operator credential of the admin API, if it is on.
    pub admin_auth: Option<AdminCredential>,
    /// Memory for actions, MB.
    pub user_memory_mb: u64,
    /// Prewarmed Node.js containers.
    pub prewarm_nodejs: usize,
    /// HTTP server limits.
    pub server: faas_http::ServerConfig,
    /// System limits.
    pub limits: SystemLimits,
    /// Whether controllers install the `whisk.system` catalog at start-up.
    pub catalog: bool,
    /// Extra catalog folders (installed after the built-in catalog).
    pub catalog_dirs: Vec<PathBuf>,
    /// The alarms provider's scheduler (controllers).
    pub alarms: faas_http::alarms::AlarmsConfig,
    /// Prometheus metrics.
    pub metrics: MetricsSettings,
    /// The OTLP/HTTP collector traces are exported to (`None`: no tracing).
    pub otlp_endpoint: Option<String>,
    /// Whether OpenWhisk's user events are published on `events`.
    pub user_events: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            id: "0".into(),
            cluster_size: 1,
            api_host: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 3233)),
            store: "memory:".into(),
            data_dir: None,
            bus: "inproc:".into(),
            executor: "process:".into(),
            guest_auth: None,
            admin_auth: None,
            user_memory_mb: 2048,
            prewarm_nodejs: 1,
            server: faas_http::ServerConfig::default(),
            limits: SystemLimits::default(),
            catalog: true,
            catalog_dirs: Vec::new(),
            alarms: faas_http::alarms::AlarmsConfig::default(),
            metrics: MetricsSettings::default(),
            otlp_endpoint: None,
            user_events: false,
        }
    }
}

/// The name of the store file in the data directory.
pub const STORE_FILE: &str = "faas.db";

/// The default data directory: `$XDG_DATA_HOME/faas`, else `~/.local/share/faas` (the
/// platform's conventions elsewhere); `None` when neither can be found.
pub fn default_data_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("faas"))
}

/// The journal that makes standalone's in-process bus durable when the store is durable:
/// for `sqlite:DIR/NAME.EXT` it is `DIR/NAME.bus.EXT` (`faas.db` → `faas.bus.db`); `None` for
/// any other store (`memory:` keeps nothing, so neither does the bus).
pub fn bus_journal_for(store: &str) -> Option<PathBuf> {
    let path = store.strip_prefix("sqlite:")?;
    let path = Path::new(path.split_once('?').map_or(path, |(p, _)| p));
    let stem = path.file_stem()?.to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.bus.{}", ext.to_string_lossy()),
        None => format!("{stem}.bus"),
    };
    Some(path.with_file_name(name))
}

/// The bus URL as printed at start, with what it means for accepted work.
pub fn describe_bus(url: &str) -> String {
    match url.split(':').next().unwrap_or_default() {
        "inproc" if url.contains("journal=") => format!(
            "{url} (durable: accepted activations survive a crash and run after the restart)"
        ),
        "inproc" => format!("{url} (in memory: activations not finished are lost in a crash)"),
        _ => describe_store(url),
    }
}

/// The store URL as printed at start: credentials hidden, and what it means for the data.
pub fn describe_store(url: &str) -> String {
    let shown = match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***{}", &rest[at..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    };
    match url.split(':').next().unwrap_or_default() {
        "memory" => format!("{shown} (in memory: nothing is kept after exit)"),
        "sqlite" => format!("{shown} (durable)"),
        _ => shown,
    }
}

impl NodeConfig {
    /// The settings of `faas-platform standalone`: flags/env (already merged by clap) over the
    /// config file over defaults. Without a store URL the store is the durable
    /// `sqlite:<data dir>/faas.db`, the data directory coming from `--data-dir`,
    /// `FAAS_DATA_DIR`, the file's `data_dir` or [`default_data_dir`], in that order.
    ///
    /// (`NodeConfig::default()`, for programs that embed the platform, keeps `memory:`.)
    pub fn resolve(args: &NodeArgs) -> Result<Self> {
        let file = Self::load_file(args)?;
        let store_given = args.store.is_some() || file.store.is_some();
        let bus_given = args.bus.is_some() || file.bus.is_some();
        let data_dir = args.data_dir.clone().or_else(|| file.data_dir.clone());
        let mut c = Self::merge(args, file, Self::default())?;
        if !store_given {
            let dir = data_dir.or_else(default_data_dir).ok_or_else(|| {
                Error::bad_request(
                    "no data directory for the store: set --data-dir or FAAS_DATA_DIR (or HOME), or use --store memory: to keep nothing",
                )
            })?;
            let db = dir.join(STORE_FILE);
            let shown = db.display().to_string();
            if shown.contains('?') {
                return Err(Error::bad_request(format!(
                    "the data directory {} contains '?', which a store URL cannot hold; choose another, or give --store sqlite:PATH",
                    dir.display()
                )));
            }
            c.store = format!("sqlite:{shown}");
            c.data_dir = Some(dir);
        }
        if !bus_given && let Some(journal) = bus_journal_for(&c.store) {
            let shown = journal.display().to_string();
            if shown.contains(['?', '&']) {
                return Err(Error::bad_request(format!(
                    "the bus journal {shown} (next to the store) has '?' or '&' in its path, which a bus URL cannot hold; give --bus inproc:?journal=PATH"
                )));
            }
            c.bus = format!("inproc:?journal={shown}");
        }
        Ok(c)
    }

    /// As [`resolve`](Self::resolve) for `faas-platform invoker` and `controller`, whose
    /// default executor is `docker:` (with the `docker` feature; containers are the production
    /// isolation, and controllers must offer the kinds their invokers run).
    pub fn resolve_distributed(args: &NodeArgs) -> Result<Self> {
        let mut d = Self::default();
        if cfg!(feature = "docker") {
            d.executor = "docker:".into();
        }
        Self::resolve_with(args, d)
    }

    /// Merges flags/env over the config file over `d`.
    pub fn resolve_with(args: &NodeArgs, d: Self) -> Result<Self> {
        let file = Self::load_file(args)?;
        Self::merge(args, file, d)
    }

    fn load_file(args: &NodeArgs) -> Result<FileConfig> {
        Ok(match &args.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    Error::bad_request(format!("cannot read config {}: {e}", p.display()))
                })?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| Error::bad_request(format!("bad config {}: {e}", p.display())))?
            }
            None => FileConfig::default(),
        })
    }

    fn merge(args: &NodeArgs, file: FileConfig, d: Self) -> Result<Self> {
        let listen_s = args.listen.clone().or(file.listen);
        let listen = match listen_s {
            Some(s) => s
                .parse()
                .map_err(|e| Error::bad_request(format!("bad listen address '{s}': {e}")))?,
            None => d.listen,
        };
        Ok(Self {
            id: args.id.clone().or(file.id).unwrap_or(d.id),
            cluster_size: args
                .cluster_size
                .or(file.cluster_size)
                .unwrap_or(d.cluster_size)
                .max(1),
            api_host: args.api_host.clone().or(file.api_host),
            listen,
            // `--executor docker` means `docker:`.
            store: normalize(&args.store.clone().or(file.store).unwrap_or(d.store)),
            data_dir: d.data_dir,
            bus: normalize(&args.bus.clone().or(file.bus).unwrap_or(d.bus)),
            executor: normalize(
                &args
                    .executor
                    .clone()
                    .or(file.executor)
                    .unwrap_or(d.executor),
            ),
            guest_auth: args.guest_auth.clone().or(file.guest_auth),
            admin_auth: args.admin_auth.clone().or(file.admin_auth),
            user_memory_mb: args
                .user_memory_mb
                .or(file.invoker.user_memory_mb)
                .unwrap_or(d.user_memory_mb),
            prewarm_nodejs: file.invoker.prewarm_nodejs.unwrap_or(d.prewarm_nodejs),
            server: file.server.to_config(),
            limits: file.limits.unwrap_or_default(),
            catalog: !args.no_catalog && file.catalog.install.unwrap_or(d.catalog),
            catalog_dirs: if args.catalog_dirs.is_empty() {
                file.catalog.dirs
            } else {
                args.catalog_dirs.clone()
            },
            alarms: file.alarms.to_config(),
            metrics: MetricsSettings {
                enabled: !args.no_metrics && file.metrics.enabled.unwrap_or(d.metrics.enabled),
                listen: match args.metrics_listen.clone().or(file.metrics.listen) {
                    Some(s) => Some(s.parse().map_err(|e| {
                        Error::bad_request(format!("bad metrics listen address '{s}': {e}"))
                    })?),
                    None => d.metrics.listen,
                },
                token: match args.metrics_token.clone().or(file.metrics.token) {
                    Some(t) if t.len() < 16 || t.chars().any(char::is_whitespace) => {
                        return Err(Error::bad_request(
                            "the metrics token must be at least 16 characters, without spaces",
                        ));
                    }
                    Some(t) => Some(t),
                    None => d.metrics.token,
                },
                max_actions: file.metrics.max_actions.unwrap_or(d.metrics.max_actions),
            },
            otlp_endpoint: args
                .otlp_endpoint
                .clone()
                .or(file.tracing.otlp_endpoint)
                .or(d.otlp_endpoint),
            user_events: args.user_events || file.user_events.enabled.unwrap_or(d.user_events),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "listen = \"127.0.0.1:9000\"\nstore = \"memory:\"\n[invoker]\nuser_memory_mb = 512\n[server]\nmax_connections = 7\nidle_timeout_ms = 1500\n[limits]\ninvocations_per_minute = 1000\n[alarms]\nenabled = false\nlease_ms = 3000\n",
        )
        .unwrap();
        let args = StandaloneArgs {
            config: Some(p),
            listen: Some("127.0.0.1:9001".into()),
            ..Default::default()
        };
        let c = StandaloneConfig::resolve(&args).unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.server.max_connections, 7);
        assert!(!c.alarms.enabled);
        assert_eq!(c.alarms.lease, std::time::Duration::from_millis(3000));
        assert_eq!(c.alarms.poll, std::time::Duration::from_millis(250));
        assert_eq!(
            c.server.idle_timeout,
            std::time::Duration::from_millis(1500)
        );
        let bare = StandaloneArgs {
            executor: Some("docker".into()),
            store: Some("memory".into()),
            ..Default::default()
        };
        let b = StandaloneConfig::resolve(&bare).unwrap();
        assert_eq!(
            (b.executor.as_str(), b.store.as_str()),
            ("docker:", "memory:")
        );
        assert_eq!(c.user_memory_mb, 512);
        assert_eq!(c.limits.invocations_per_minute, 1000);
        assert_eq!(c.limits.concurrent_invocations, 30);
        assert_eq!(c.bus, "inproc:");
    }

    #[test]
    fn standalone_store_defaults_to_sqlite_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let args = StandaloneArgs {
            data_dir: Some(dir.path().join("d")),
            ..Default::default()
        };
        let c = StandaloneConfig::resolve(&args).unwrap();
        let want = dir.path().join("d").join(STORE_FILE);
        assert_eq!(c.store, format!("sqlite:{}", want.display()));
        assert_eq!(c.data_dir.as_deref(), Some(dir.path().join("d").as_path()));

        // The config file's data_dir, under a flag's.
        let p = dir.path().join("c.toml");
        std::fs::write(&p, format!("data_dir = {:?}\n", dir.path().join("f"))).unwrap();
        let from_file = StandaloneArgs {
            config: Some(p.clone()),
            ..Default::default()
        };
        let c = StandaloneConfig::resolve(&from_file).unwrap();
        assert_eq!(c.data_dir.as_deref(), Some(dir.path().join("f").as_path()));
        let flag_wins = StandaloneArgs {
            config: Some(p),
            data_dir: Some(dir.path().join("g")),
            ..Default::default()
        };
        let c = StandaloneConfig::resolve(&flag_wins).unwrap();
        assert_eq!(c.data_dir.as_deref(), Some(dir.path().join("g").as_path()));

        // A store URL wins over the data directory, and memory: stays available.
        let memory = StandaloneArgs {
            store: Some("memory:".into()),
            data_dir: Some(dir.path().join("d")),
            ..Default::default()
        };
        let c = StandaloneConfig::resolve(&memory).unwrap();
        assert_eq!((c.store.as_str(), c.data_dir), ("memory:", None));

        // Distributed nodes and the library default keep memory:.
        let c = StandaloneConfig::resolve_distributed(&StandaloneArgs::default()).unwrap();
        assert_eq!(c.store, "memory:");
        assert_eq!(StandaloneConfig::default().store, "memory:");

        let bad = StandaloneArgs {
            data_dir: Some(dir.path().join("what?")),
            ..Default::default()
        };
        let e = StandaloneConfig::resolve(&bad).unwrap_err().to_string();
        assert!(e.contains("contains '?'"), "{e}");
    }

    #[test]
    fn standalone_bus_is_journaled_next_to_a_durable_store() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        let default = StandaloneArgs {
            data_dir: Some(d.clone()),
            ..Default::default()
        };
        let c = StandaloneConfig::resolve(&default).unwrap();
        assert_eq!(
            c.bus,
            format!("inproc:?journal={}", d.join("faas.bus.db").display())
        );
        assert!(describe_bus(&c.bus).contains("durable"), "{}", c.bus);
        // A given SQLite store gets its journal beside it; a given bus is kept as it is.
        let given = StandaloneArgs {
            store: Some("sqlite:/srv/x/platform.sqlite?activation_ttl=1d".into()),
            ..Default::default()
        };
        let c = StandaloneConfig::resolve(&given).unwrap();
        assert_eq!(c.bus, "inproc:?journal=/srv/x/platform.bus.sqlite");
        let bus = StandaloneArgs {
            bus: Some("inproc:".into()),
            data_dir: Some(d.clone()),
            ..Default::default()
        };
        assert_eq!(StandaloneConfig::resolve(&bus).unwrap().bus, "inproc:");
        // memory: keeps nothing, so neither does the bus; distributed nodes keep inproc:.
        let memory = StandaloneArgs {
            store: Some("memory:".into()),
            ..Default::default()
        };
        let c = StandaloneConfig::resolve(&memory).unwrap();
        assert_eq!(c.bus, "inproc:");
        assert!(describe_bus(&c.bus).contains("lost in a crash"));
        let c = StandaloneConfig::resolve_distributed(&StandaloneArgs::default()).unwrap();
        assert_eq!(c.bus, "inproc:");
        assert_eq!(bus_journal_for("couchdb://h:5984/"), None);
        assert_eq!(
            bus_journal_for("sqlite:faas"),
            Some(PathBuf::from("faas.bus"))
        );
    }

    #[test]
    fn store_descriptions_hide_credentials() {
        assert_eq!(
            describe_store("couchdb://admin:s3cret@127.0.0.1:5984/?prefix=x"),
            "couchdb://***@127.0.0.1:5984/?prefix=x"
        );
        assert_eq!(
            describe_store("couchdb://127.0.0.1:5984/a@b"),
            "couchdb://127.0.0.1:5984/a@b"
        );
        assert_eq!(
            describe_store("sqlite:/d/faas.db"),
            "sqlite:/d/faas.db (durable)"
        );
        assert!(describe_store("memory:").contains("nothing is kept"));
    }

    #[test]
    fn admin_credential_from_flag_or_file_never_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let secret = "file-credential-0123456789abcdef0123";
        std::fs::write(&p, format!("admin_auth = \"{secret}\"\n")).unwrap();
        let args = StandaloneArgs {
            config: Some(p.clone()),
            ..Default::default()
        };
        let c = StandaloneConfig::resolve(&args).unwrap();
        assert_eq!(c.admin_auth.as_ref().map(|a| a.expose()), Some(secret));
        assert!(!format!("{c:?}").contains(secret));
        let flag = parse_admin_credential("flag-credential-0123456789abcdef01234").unwrap();
        let args = StandaloneArgs {
            config: Some(p.clone()),
            admin_auth: Some(flag.clone()),
            ..Default::default()
        };
        assert_eq!(
            StandaloneConfig::resolve(&args).unwrap().admin_auth,
            Some(flag)
        );
        assert!(parse_admin_credential("short").is_err());
        std::fs::write(&p, "admin_auth = \"uuid:key\"\n").unwrap();
        let args = StandaloneArgs {
            config: Some(p),
            ..Default::default()
        };
        let e = StandaloneConfig::resolve(&args).unwrap_err().to_string();
        assert!(e.contains("admin credential"), "{e}");
        assert_eq!(StandaloneConfig::default().admin_auth, None);
        // Random credentials may start with '-' (base64url): still a value, not a flag.
        let dashed = "-dashed-credential-0123456789abcdef0123";
        let cli =
            Cli::try_parse_from(["faas-platform", "controller", "--admin-auth", dashed]).unwrap();
        let Command::Controller(a) = cli.command else {
            panic!("controller")
        };
        assert_eq!(
            a.admin_auth.map(|c| c.expose().to_string()),
            Some(dashed.to_string())
        );
    }

    #[test]
    fn metrics_settings_from_flag_or_file_token_never_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        let secret = "file-token-0123456789abcdef";
        std::fs::write(
            &p,
            format!(
                "[metrics]\nlisten = \"127.0.0.1:9100\"\ntoken = \"{secret}\"\nmax_actions = 7\n"
            ),
        )
        .unwrap();
        let args = StandaloneArgs {
            config: Some(p.clone()),
            ..Default::default()
        };
        let c = StandaloneConfig::resolve(&args).unwrap();
        assert!(c.metrics.enabled);
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(c.metrics.token.as_deref(), Some(secret));
        assert_eq!(c.metrics.max_actions, 7);
        assert!(!format!("{c:?}").contains(secret));
        let flags = StandaloneArgs {
            config: Some(p),
            metrics_listen: Some("127.0.0.1:9200".into()),
            no_metrics: true,
            ..Default::default()
        };
        let c = StandaloneConfig::resolve(&flags).unwrap();
        assert!(!c.metrics.enabled);
        assert_eq!(c.metrics.listen.map(|a| a.port()), Some(9200));
        let d = StandaloneConfig::resolve(&StandaloneArgs::default()).unwrap();
        assert_eq!(d.metrics, MetricsSettings::default());
        assert!(d.metrics.enabled && d.metrics.listen.is_none() && d.metrics.token.is_none());
        for bad in ["short", "has a space in it 0123456789"] {
            let args = StandaloneArgs {
                metrics_token: Some(bad.into()),
                ..Default::default()
            };
            let e = StandaloneConfig::resolve(&args).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
        let args = StandaloneArgs {
            metrics_listen: Some("nowhere".into()),
            ..Default::default()
        };
        assert_eq!(StandaloneConfig::resolve(&args).unwrap_err().status(), 400);
    }

    #[test]
    fn bad_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "nonsense = 1\n").unwrap();
        let args = StandaloneArgs {
            config: Some(p),
            ..Default::default()
        };
        let e = StandaloneConfig::resolve(&args).unwrap_err().to_string();
        assert!(e.contains("bad config"), "{e}");
    }
}
