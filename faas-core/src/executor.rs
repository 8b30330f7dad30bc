//! The `Executor` trait: isolated sandboxes ("containers") that speak the action-proxy protocol.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;
use crate::runtimes::RuntimeManifest;

/// The sentinel line runtimes print on stdout and stderr after every run and failed init.
pub const LOG_SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContainerSpec {
    /// A name for the sandbox (unique per executor; informational for process executors).
    pub name: String,
    /// The runtime kind (`nodejs:20`), or `blackbox`.
    pub kind: String,
    /// The image for blackbox actions (image-based executors derive managed images from `kind`).
    pub image: Option<String>,
    /// Memory limit, MB.
    pub memory_mb: u64,
    /// Environment set at creation (`__OW_API_HOST`, ...).
    pub env: BTreeMap<String, String>,
    /// Labels (image-based executors use them to find orphans).
    pub labels: BTreeMap<String, String>,
}

impl ContainerSpec {
    /// A spec for `kind` with `memory_mb`.
    pub fn new(name: impl Into<String>, kind: impl Into<String>, memory_mb: u64) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            image: None,
            memory_mb,
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
        }
    }
    /// With a blackbox image.
    pub fn with_image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }
    /// With an environment variable.
    pub fn with_env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }
}

/// An HTTP reply from the action proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyResponse {
    /// HTTP status.
    pub status: u16,
    /// Body bytes (read up to the executor's limit; see `truncated`).
    pub body: Bytes,
    /// The full body length when the body was cut at the read limit.
    pub truncated: Option<u64>,
}

/// Why a proxy call produced no reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// No reply within the time limit; the sandbox should be destroyed.
    #[error("timed out")]
    Timeout,
    /// The sandbox went away (crash, exit, OOM kill) mid-call.
    #[error("the sandbox exited unexpectedly{}", if *.oom { " (out of memory)" } else { "" })]
    Exited {
        /// Killed for exceeding its memory.
        oom: bool,
    },
    /// Any other failure reaching the proxy.
    #[error(transparent)]
    Other(#[from] crate::Error),
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

impl LogStream {
    /// `stdout` / `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// One raw log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When it was read.
    pub time: SystemTime,
    /// Its stream.
    pub stream: LogStream,
    /// The text without the trailing newline.
    pub message: String,
}

impl LogLine {
    /// OpenWhisk's stored form: the RFC 3339 timestamp left-justified to 30 columns, a space,
    /// the stream, `: ` and the message.
    pub fn format(&self) -> String {
        format!(
            "{:<30} {}: {}",
            crate::time::rfc3339_nanos(self.time),
            self.stream.as_str(),
            self.message
        )
    }
}

/// The logs of one activation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCollection {
    /// Lines, sentinels removed, within the byte limit.
    pub lines: Vec<LogLine>,
    /// Lines were dropped because the limit was reached.
    pub truncated: bool,
    /// The sentinels did not arrive (the runtime misbehaved or logs were cut short).
    pub incomplete: bool,
}

/// A running sandbox with an action proxy inside.
#[async_trait]
pub trait Container: fmt::Debug + Send + Sync + 'static {
    /// The executor's id for it.
    fn id(&self) -> &str;
    /// `POST /init` with a JSON body; retries while the proxy is not yet listening.
    async fn init(
        &self,
        body: Bytes,
        timeout: Duration,
    ) -> std::result::Result<ProxyResponse, ProxyError>;
    /// `POST /run` with a JSON body.
    async fn run(
        &self,
        body: Bytes,
        timeout: Duration,
    ) -> std::result::Result<ProxyResponse, ProxyError>;
    /// The log lines written since the last call, up to the sentinels on both streams (when
    /// `wait_for_sentinels`), keeping at most `limit_bytes` of messages.
    async fn logs(&self, limit_bytes: u64, wait_for_sentinels: bool) -> Result<LogCollection>;
    /// Suspends the sandbox (no CPU while idle).
    async fn pause(&self) -> Result<()>;
    /// Resumes a paused sandbox.
    async fn resume(&self) -> Result<()>;
    /// Stops and removes the sandbox. Idempotent.
    async fn destroy(&self) -> Result<()>;
    /// Whether the sandbox is known to be dead (its process or container exited, or it was
    /// destroyed): a pool must not hand it out again. An adapter that cannot tell cheaply
    /// answers `false` (the default), and a dead sandbox then shows at its next call.
    fn is_dead(&self) -> bool {
        false
    }
}

/// What an executor offers beyond the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecCapabilities {
    /// Memory limits are enforced.
    pub memory_limit: bool,
    /// Sandboxes get their own network.
    pub network_isolation: bool,
    /// `pause` really stops CPU use.
    pub pause_resume: bool,
    /// Blackbox images can run.
    pub blackbox: bool,
}

impl ExecCapabilities {
    /// Capabilities from flags.
    pub const fn new(
        memory_limit: bool,
        network_isolation: bool,
        pause_resume: bool,
        blackbox: bool,
    ) -> Self {
        Self {
            memory_limit,
            network_isolation,
            pause_resume,
            blackbox,
        }
    }
}

/// Creates sandboxes.
///
/// # Contract
///
/// * [`create`](Executor::create) returns a sandbox whose proxy answers `/init` and `/run` as
///   OpenWhisk's runtimes do ([action interface](https://github.com/apache/openwhisk/blob/master/docs/actions-new.md)): one `/init`, then any number of `/run`s.
/// * `init`/`run` return [`ProxyError::Timeout`] when no reply came in time and
///   [`ProxyError::Exited`] when the sandbox died; they never hang past their timeout.
/// * `logs` returns what the action wrote for the last init/run, in order, each stream framed
///   by lines, stopping at the sentinels; stdout and stderr are both collected.
/// * `destroy` releases everything (processes, sockets, files); it is idempotent.
/// * [`runtimes`](Executor::runtimes) lists the managed kinds this executor can start.
///
/// Every adapter proves the contract by running `faas_core::executor_conformance!`.
#[async_trait]
pub trait Executor: fmt::Debug + Send + Sync + 'static {
    /// Creates and starts a sandbox.
    async fn create(&self, spec: &ContainerSpec) -> Result<Arc<dyn Container>>;
    /// The kinds this executor can run.
    fn runtimes(&self) -> RuntimeManifest;
    /// What this executor offers.
    fn capabilities(&self) -> ExecCapabilities;
    /// Called once when its owner stops, after every container it handed out was destroyed:
    /// removes whatever this executor created that is still running (a creation the caller
    /// abandoned, for example). The default does nothing.
    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}

/// `dyn Executor`.
pub type DynExecutor = dyn Executor;
