//! The local-process [`Executor`]: each sandbox is a runner process (Node.js or Python, standard
//! library only) that speaks OpenWhisk's action-proxy protocol
//! ([`POST /init`, `POST /run`](https://github.com/apache/openwhisk/blob/master/docs/actions-new.md#action-interface))
//! on a Unix socket.
//!
//! ```no_run
//! # async fn demo() -> faas_core::Result<()> {
//! use std::time::Duration;
//! use faas_core::{ContainerSpec, Executor};
//! use faas_exec::process::ProcessExecutor;
//!
//! let executor = ProcessExecutor::detect()?; // finds `node` and `python3` on PATH
//! let kind = executor.runtimes().default_kind("nodejs").unwrap_or("nodejs:20").to_string();
//! let c = executor.create(&ContainerSpec::new("demo", kind, 256)).await?;
//! let init = r#"{"value":{"name":"demo","main":"main","code":"function main(a){return a}"}}"#;
//! c.init(init.into(), Duration::from_secs(5)).await.ok();
//! let reply = c.run(r#"{"value":{"hi":1}}"#.into(), Duration::from_secs(5)).await.ok();
//! let logs = c.logs(10 * 1024 * 1024, true).await?;
//! c.destroy().await?;
//! # Ok(()) }
//! ```
//!
//! # How a sandbox looks
//!
//! Every runner runs in a sandbox (on by default; see [`SandboxMode`]):
//!
//! * its own PID, IPC, UTS and mount namespaces (bubblewrap): it sees only its own processes,
//!   a read-only `/usr`, its interpreter's directory and a few `/etc` files, its own `/proc`,
//!   `/dev`, a size-limited `/tmp`, and its private directory at `/action` (working directory
//!   and `HOME`; removed on destroy) holding the socket `proxy.sock`;
//! * an unprivileged uid without capabilities, `no_new_privs` (through `setpriv` when the
//!   platform is root; in a user namespace otherwise);
//! * a seccomp deny list (`ptrace`, `process_vm_*`, `bpf`, mounts, new namespaces, ...);
//! * a cgroup with the action's memory limit and a pids limit; an out-of-memory kill is
//!   reported as `Exited { oom: true }`; pause and resume freeze the cgroup;
//! * a clean environment: `PATH`, `HOME`, `TMPDIR`, the spec's environment,
//!   `__OW_LISTEN=unix:/action/proxy.sock` and `__OW_EXIT_WITH_PARENT=1`; the sandbox dies with
//!   the platform, and destroy kills every process of its cgroup.
//!
//! [`ProcessExecutorBuilder::build`] checks all of that once (it starts one sandbox) and fails
//! with [`Error::Unavailable`], naming what is missing, when it cannot be had; the insecure
//! [`SandboxMode::Off`] runs plain child processes instead (own process group, clean
//! environment, no limits).
//!
//! One persistent HTTP/1.1 connection per sandbox carries `/init` and `/run`; it is driven in
//! the caller's task (no hand-off to a connection task on the hot path). `/init` is sent once
//! the runner listens, so that its start does not count against the init time limit. stdout
//! and stderr are read line by line into a bounded buffer that
//! [`logs`](faas_core::Container::logs) cuts at the sentinels.
//!
//! # Capabilities
//!
//! | capability | |
//! |---|---|
//! | memory limit | yes with the sandbox (cgroup); Node also gets `--max-old-space-size=<memory_mb>` |
//! | network isolation | with [`SandboxNetwork::None`] |
//! | pause/resume | yes (cgroup freezer; `SIGSTOP`/`SIGCONT` to the process group without one) |
//! | blackbox images | no (`create` returns [`Error::NotSupported`]) |

// `client` and `logs` are shared with the Docker executor.
mod container;
mod detect;
mod sandbox;

pub use sandbox::{
    DEFAULT_PIDS_LIMIT, DEFAULT_UID_BASE, DEFAULT_UID_COUNT, SandboxMode, SandboxNetwork,
};

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use faas_core::executor::ExecCapabilities;
use faas_core::{Container, ContainerSpec, Error, Executor, Result, RuntimeManifest, RuntimeSpec};
use tempfile::TempDir;

use self::container::ProcessContainer;
use self::detect::{Family, Interpreter};
use self::sandbox::{Jail, SandboxConfig};

/// The adapter name in errors.
const BACKEND: &str = "process";

/// The Node.js runner, embedded so that the binary is self-contained.
const NODE_RUNNER: &str = include_str!("../../runtimes/nodejs/runner.js");
/// The Python runner.
const PYTHON_RUNNER: &str = include_str!("../../runtimes/python/runner.py");

/// Default cap on a reply body read from a runner: OpenWhisk's 1 MiB result limit plus room
/// for the JSON around it.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024 + 64 * 1024;
/// Default longest wait for the log sentinels after a run.
pub const DEFAULT_LOG_WAIT: Duration = Duration::from_secs(2);
/// Default log bytes buffered per sandbox: OpenWhisk's largest log limit (10 MiB) plus slack.
pub const DEFAULT_LOG_BUFFER_BYTES: usize = 10 * 1024 * 1024 + 64 * 1024;

/// Runs actions as local runner processes. See the [module documentation](self).
///
/// Cheap to clone (the clones share the runner scripts and the configuration).
#[derive(Clone)]
pub struct ProcessExecutor {
    inner: Arc<Inner>,
}

/// What every sandbox of one executor shares.
pub(crate) struct Inner {
    node: Option<Interpreter>,
    python: Option<Interpreter>,
    manifest: RuntimeManifest,
    /// Holds the runner scripts; removed when the executor goes away.
    _runner_dir: TempDir,
    node_runner: PathBuf,
    python_runner: PathBuf,
    work_dir: PathBuf,
    search_path: OsString,
    max_response_bytes: usize,
    log_wait: Duration,
    log_buffer_bytes: usize,
    next_id: AtomicU64,
    /// The sandbox; `None` only in the insecure mode.
    jail: Option<Jail>,
    network: SandboxNetwork,
}

impl fmt::Debug for ProcessExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let show = |x: &Option<Interpreter>| x.as_ref().map(|x| (x.kind.clone(), x.path.clone()));
        f.debug_struct("ProcessExecutor")
            .field("node", &show(&i.node))
            .field("python", &show(&i.python))
            .field("work_dir", &i.work_dir)
            .field("max_response_bytes", &i.max_response_bytes)
            .field("log_wait", &i.log_wait)
            .field("log_buffer_bytes", &i.log_buffer_bytes)
            .field("sandbox", &i.jail)
            .finish_non_exhaustive()
    }
}

impl ProcessExecutor {
    /// Finds `node` and `python3` on `PATH` with the default settings; see
    /// [`ProcessExecutorBuilder::build`].
    pub fn detect() -> Result<Self> {
        Self::builder().build()
    }

    /// A builder with the default settings.
    pub fn builder() -> ProcessExecutorBuilder {
        ProcessExecutorBuilder::new()
    }

    /// Builds the executor an adapter URL describes (see [`ProcessExecutorBuilder::from_url`]).
    pub fn from_url(url: &str) -> Result<Self> {
        ProcessExecutorBuilder::from_url(url)?.build()
    }

    /// Whether runners are sandboxed (`false` only in the insecure `sandbox=off` mode).
    pub fn is_sandboxed(&self) -> bool {
        self.inner.jail.is_some()
    }

    fn interpreter(&self, family: Family) -> Option<&Interpreter> {
        match family {
            Family::Node => self.inner.node.as_ref(),
            Family::Python => self.inner.python.as_ref(),
        }
    }
}

#[async_trait]
impl Executor for ProcessExecutor {
    async fn create(&self, spec: &ContainerSpec) -> Result<Arc<dyn Container>> {
        if spec.kind == "blackbox" {
            return Err(Error::NotSupported {
                operation: "blackbox actions".into(),
                backend: BACKEND,
            });
        }
        let runtime = self.inner.manifest.resolve(&spec.kind)?;
        let interp = [Family::Node, Family::Python]
            .into_iter()
            .find(|f| f.name() == runtime.family())
            .and_then(|f| self.interpreter(f))
            .ok_or_else(|| Error::internal(format!("no interpreter for {}", runtime.kind)))?;
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("p{n}-{}", spec.name);
        let container = ProcessContainer::spawn(&self.inner, interp, spec, id)?;
        Ok(Arc::new(container))
    }

    fn runtimes(&self) -> RuntimeManifest {
        self.inner.manifest.clone()
    }

    fn capabilities(&self) -> ExecCapabilities {
        let sandboxed = self.inner.jail.is_some();
        ExecCapabilities::new(
            sandboxed,
            sandboxed && self.inner.network == SandboxNetwork::None,
            true,
            false,
        )
    }
}

/// Which interpreter to use for a family.
#[derive(Debug, Clone)]
enum Program {
    /// Look it up (a name on `PATH`, or a path); a miss leaves the family out.
    Find(OsString),
    /// Leave the family out.
    Disabled,
}

/// Configures a [`ProcessExecutor`].
#[derive(Debug, Clone)]
pub struct ProcessExecutorBuilder {
    node: Program,
    python: Program,
    work_dir: Option<PathBuf>,
    max_response_bytes: usize,
    log_wait: Duration,
    log_buffer_bytes: usize,
    sandbox: SandboxConfig,
}

impl Default for ProcessExecutorBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessExecutorBuilder {
    /// `node` and `python3` from `PATH`, the system temporary directory, default limits.
    pub fn new() -> Self {
        Self {
            node: Program::Find("node".into()),
            python: Program::Find("python3".into()),
            work_dir: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            log_wait: DEFAULT_LOG_WAIT,
            log_buffer_bytes: DEFAULT_LOG_BUFFER_BYTES,
            sandbox: SandboxConfig::default(),
        }
    }

    /// The defaults, then the query of an adapter URL: `process:` or
    /// `process:?sandbox=off&network=none&pids_limit=256` (values percent-decoded). Keys:
    ///
    /// | key | values | default |
    /// |---|---|---|
    /// | `sandbox` | `on`, `off` (**insecure**) | `on` |
    /// | `network` | `host`, `none` | `host` |
    /// | `pids_limit` | processes and threads per sandbox | [`DEFAULT_PIDS_LIMIT`] |
    /// | `uid_base`, `uid_count` | the uids sandboxes run as when the platform is root | [`DEFAULT_UID_BASE`], [`DEFAULT_UID_COUNT`] |
    /// | `bwrap` | the bubblewrap program | `bwrap` on `PATH` |
    /// | `node`, `python` | the interpreters | `node`, `python3` on `PATH` |
    /// | `work_dir` | where sandbox directories are made | the temporary directory |
    /// | `favordynmods` | `on`: a root platform remounts the cgroup2 hierarchy with the kernel's `favordynmods` (faster sandbox starts); `off`: leaves it alone | `on` |
    pub fn from_url(url: &str) -> Result<Self> {
        let url = url.trim();
        let rest = url
            .strip_prefix("process:")
            .or_else(|| (url == "process").then_some(""))
            .ok_or_else(|| Error::bad_request(format!("'{url}' is not a process: URL")))?;
        let query = match rest.trim_start_matches('/').split_once('?') {
            Some(("", q)) => q,
            None if rest.trim_start_matches('/').is_empty() => "",
            _ => {
                return Err(Error::bad_request(format!(
                    "process URL '{url}': put settings in the query (process:?sandbox=on)"
                )));
            }
        };
        let mut b = Self::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v)?;
            let number = |v: &str| {
                v.trim().parse::<u64>().map_err(|_| {
                    Error::bad_request(format!("process URL: '{k}' must be a number, not '{v}'"))
                })
            };
            let uid = |v: &str| {
                number(v).and_then(|n| {
                    u32::try_from(n)
                        .map_err(|_| Error::bad_request(format!("process URL: '{k}' is too large")))
                })
            };
            b = match k {
                "sandbox" => match v.as_str() {
                    "on" | "true" | "1" => b.with_sandbox(SandboxMode::On),
                    "off" | "false" | "0" => b.with_sandbox(SandboxMode::Off),
                    _ => {
                        return Err(Error::bad_request(format!(
                            "process URL: sandbox must be 'on' or 'off', not '{v}'"
                        )));
                    }
                },
                "network" => match v.as_str() {
                    "host" => b.with_network(SandboxNetwork::Host),
                    "none" => b.with_network(SandboxNetwork::None),
                    _ => {
                        return Err(Error::bad_request(format!(
                            "process URL: network must be 'host' or 'none', not '{v}'"
                        )));
                    }
                },
                "pids_limit" => b.with_pids_limit(number(&v)?),
                "favordynmods" => match v.as_str() {
                    "on" | "true" | "1" => b.with_favordynmods(true),
                    "off" | "false" | "0" => b.with_favordynmods(false),
                    _ => {
                        return Err(Error::bad_request(format!(
                            "process URL: favordynmods must be 'on' or 'off', not '{v}'"
                        )));
                    }
                },
                "uid_base" => {
                    let count = b.sandbox.uid_count;
                    b.with_uid_range(uid(&v)?, count)
                }
                "uid_count" => {
                    let base = b.sandbox.uid_base;
                    b.with_uid_range(base, uid(&v)?)
                }
                "bwrap" => b.with_bwrap(v),
                "node" => b.with_node(v),
                "python" => b.with_python(v),
                "work_dir" => b.with_work_dir(v),
                _ => {
                    return Err(Error::bad_request(format!(
                        "process URL: unknown setting '{k}'; valid: sandbox, network, \
                         pids_limit, uid_base, uid_count, bwrap, node, python, work_dir, \
                         favordynmods"
                    )));
                }
            };
        }
        Ok(b)
    }

    /// Whether runners are sandboxed (default [`SandboxMode::On`]). [`SandboxMode::Off`] is
    /// **insecure**: action code runs as the platform's user and can read its memory.
    pub fn with_sandbox(mut self, mode: SandboxMode) -> Self {
        self.sandbox.mode = mode;
        self
    }

    /// The network of each sandbox (default [`SandboxNetwork::Host`]).
    pub fn with_network(mut self, network: SandboxNetwork) -> Self {
        self.sandbox.network = network;
        self
    }

    /// Whether a platform running as root remounts the cgroup2 hierarchy with the kernel's
    /// `favordynmods` option (default `true`). Every sandbox start moves a process into new
    /// cgroups; without the option each move waits for an RCU grace period (about 12 ms here).
    /// The option is global to the machine (forks and exits cost a little more); systemd
    /// sets it on the hosts it manages.
    pub fn with_favordynmods(mut self, on: bool) -> Self {
        self.sandbox.favordynmods = on;
        self
    }

    /// The most processes and threads of one sandbox (default [`DEFAULT_PIDS_LIMIT`]).
    pub fn with_pids_limit(mut self, limit: u64) -> Self {
        self.sandbox.pids_limit = limit;
        self
    }

    /// The uids sandboxes run as when the platform runs as root: `count` uids from `base`,
    /// one per sandbox in turn (default [`DEFAULT_UID_BASE`], [`DEFAULT_UID_COUNT`]). Pick a
    /// range no user or other container engine uses.
    pub fn with_uid_range(mut self, base: u32, count: u32) -> Self {
        self.sandbox.uid_base = base;
        self.sandbox.uid_count = count;
        self
    }

    /// The bubblewrap program: a name looked up on `PATH` (default `bwrap`), or a path.
    pub fn with_bwrap(mut self, program: impl Into<OsString>) -> Self {
        self.sandbox.bwrap = program.into();
        self
    }

    /// The Node.js interpreter: a name looked up on `PATH`, or a path.
    pub fn with_node(mut self, program: impl Into<OsString>) -> Self {
        self.node = Program::Find(program.into());
        self
    }

    /// The Python 3 interpreter: a name looked up on `PATH`, or a path.
    pub fn with_python(mut self, program: impl Into<OsString>) -> Self {
        self.python = Program::Find(program.into());
        self
    }

    /// Offers no Node.js runtime.
    pub fn without_node(mut self) -> Self {
        self.node = Program::Disabled;
        self
    }

    /// Offers no Python runtime.
    pub fn without_python(mut self) -> Self {
        self.python = Program::Disabled;
        self
    }

    /// Where sandbox directories are created (default: the system temporary directory). Keep
    /// it short: socket paths are limited to 107 bytes.
    pub fn with_work_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(dir.into());
        self
    }

    /// The most bytes of a reply body kept (default [`DEFAULT_MAX_RESPONSE_BYTES`]); longer
    /// bodies are cut and report their full length in `ProxyResponse::truncated`.
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The longest `logs(_, true)` waits for the sentinels (default [`DEFAULT_LOG_WAIT`]).
    pub fn with_log_wait(mut self, wait: Duration) -> Self {
        self.log_wait = wait;
        self
    }

    /// The most log bytes buffered per sandbox (default [`DEFAULT_LOG_BUFFER_BYTES`]); lines
    /// beyond it are dropped and the collection is marked truncated.
    pub fn with_log_buffer_bytes(mut self, bytes: usize) -> Self {
        self.log_buffer_bytes = bytes;
        self
    }

    /// Detects the interpreters (running each once for its version, which blocks for some tens
    /// of milliseconds) and writes the runner scripts into a private temporary directory.
    ///
    /// A missing interpreter leaves its family out of [`Executor::runtimes`]; having none is
    /// an [`Error::Unavailable`].
    pub fn build(self) -> Result<ProcessExecutor> {
        let search_path = detect::default_search_path();
        let find = |family: Family, program: &Program| match program {
            Program::Disabled => None,
            Program::Find(p) => match detect::detect(family, p, &search_path) {
                Ok(i) => {
                    tracing::debug!(kind = %i.kind, version = %i.version, path = %i.path.display(), "runtime found");
                    Some(i)
                }
                Err(why) => {
                    tracing::warn!(family = family.name(), %why, "runtime not available");
                    None
                }
            },
        };
        let node = find(Family::Node, &self.node);
        let python = find(Family::Python, &self.python);
        if node.is_none() && python.is_none() {
            return Err(Error::unavailable(
                "no action runtime found: neither node nor python3 is available",
            ));
        }
        let mut manifest = RuntimeManifest::new();
        for i in node.iter().chain(python.iter()) {
            manifest.add(RuntimeSpec::new(i.kind.clone(), true));
        }

        let work_dir = self.work_dir.unwrap_or_else(std::env::temp_dir);
        let runner_dir = tempfile::Builder::new()
            .prefix("faas-runners-")
            .tempdir_in(&work_dir)
            .map_err(|e| Error::backend(BACKEND, false, e))?;
        let node_runner = runner_dir.path().join("runner.js");
        let python_runner = runner_dir.path().join("runner.py");
        std::fs::write(&node_runner, NODE_RUNNER).map_err(|e| Error::backend(BACKEND, false, e))?;
        std::fs::write(&python_runner, PYTHON_RUNNER)
            .map_err(|e| Error::backend(BACKEND, false, e))?;

        let jail = match self.sandbox.mode {
            SandboxMode::On => {
                let interpreters: Vec<&Interpreter> = node.iter().chain(python.iter()).collect();
                Some(Jail::build(
                    &self.sandbox,
                    &interpreters,
                    runner_dir.path(),
                    &search_path,
                )?)
            }
            SandboxMode::Off => {
                tracing::warn!(
                    "INSECURE: the process executor runs actions WITHOUT a sandbox \
                     (sandbox=off): action code runs as this user, with no memory limit, and \
                     can read the platform's memory, environment and files"
                );
                None
            }
        };

        Ok(ProcessExecutor {
            inner: Arc::new(Inner {
                node,
                python,
                manifest,
                _runner_dir: runner_dir,
                node_runner,
                python_runner,
                work_dir,
                search_path,
                max_response_bytes: self.max_response_bytes,
                log_wait: self.log_wait,
                log_buffer_bytes: self.log_buffer_bytes,
                next_id: AtomicU64::new(0),
                jail,
                network: self.sandbox.network,
            }),
        })
    }
}

/// Decodes `%XX` escapes (and `+` as a space) of a URL query value.
fn percent_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Error::bad_request(format!("bad %-escape in '{s}'")))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
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
    fn urls() {
        let b = ProcessExecutorBuilder::from_url("process:").unwrap();
        assert_eq!(b.sandbox.mode, SandboxMode::On);
        let b = ProcessExecutorBuilder::from_url("process").unwrap();
        assert_eq!(b.sandbox.mode, SandboxMode::On);
        let b = ProcessExecutorBuilder::from_url(
            "process:?sandbox=off&network=none&pids_limit=64&uid_base=5000&uid_count=10&bwrap=%2Fopt%2Fbwrap",
        )
        .unwrap();
        assert_eq!(b.sandbox.mode, SandboxMode::Off);
        assert_eq!(b.sandbox.network, SandboxNetwork::None);
        assert_eq!(b.sandbox.pids_limit, 64);
        assert_eq!((b.sandbox.uid_base, b.sandbox.uid_count), (5000, 10));
        assert_eq!(b.sandbox.bwrap, OsString::from("/opt/bwrap"));
        assert!(b.sandbox.favordynmods);
        let b = ProcessExecutorBuilder::from_url("process:?favordynmods=off").unwrap();
        assert!(!b.sandbox.favordynmods);
        for bad in [
            "process:?favordynmods=maybe",
            "docker:",
            "process:/x",
            "process:?sandbox=maybe",
            "process:?pids_limit=-1",
            "process:?uid_base=99999999999",
            "process:?nope=1",
            "process:?bwrap=%zz",
        ] {
            let e = ProcessExecutorBuilder::from_url(bad).unwrap_err();
            assert!(matches!(e, Error::BadRequest { .. }), "{bad}: {e:?}");
        }
    }
}
