//! One runner process and its [`Container`] implementation.

use std::ffi::OsString;
use std::fmt;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::executor::{LogCollection, ProxyError, ProxyResponse};
use faas_core::{Container, ContainerSpec, Error, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::time::Instant;

use super::detect::{Family, Interpreter};
use super::sandbox::cgroup::Cgroup;
use super::sandbox::{ACTION_DIR, Prepared};
use super::{BACKEND, Inner};
use crate::runner::client::{self, Endpoint, Sandbox};
use crate::runner::logs::{LogBuffer, read_pipes};

/// How long to keep polling at the first pause before backing off (runners start in ~40 ms).
const CONNECT_FAST_PHASE: Duration = Duration::from_millis(200);
/// After a connection loss, how long to wait for the process exit (and its last stderr lines).
const EXIT_GRACE: Duration = Duration::from_millis(200);
/// How long `destroy` waits for the killed process to be reaped.
const DESTROY_WAIT: Duration = Duration::from_secs(5);
/// Longest wait for a starting runner to listen before `/init` (its time limit starts then).
const BOOT_WAIT: Duration = Duration::from_secs(30);
/// How long `pause` waits for the runner's threads to stop.
const PAUSE_WAIT: Duration = Duration::from_secs(2);
/// Unix socket paths are limited to 108 bytes (`sun_path`), including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// A runner process.
pub(crate) struct ProcessContainer {
    id: String,
    kind: String,
    /// The runner's pid, which is also its process group id.
    pid: Pid,
    /// The runner's action proxy.
    endpoint: Endpoint,
    logs: Arc<LogBuffer>,
    /// Becomes `true` once the runner has exited and was reaped.
    exited: watch::Receiver<bool>,
    destroyed: AtomicBool,
    /// The private directory (socket, `HOME`, `TMPDIR`); removed on destroy or drop.
    dir: Mutex<Option<TempDir>>,
    log_wait: Duration,
    /// The sandbox's cgroup (memory and pids limits, out-of-memory count, freezer); `None`
    /// without a sandbox.
    cgroup: Option<Arc<Cgroup>>,
}

impl fmt::Debug for ProcessContainer {
    // The spec's environment (which may hold keys) is deliberately not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessContainer")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("pid", &self.pid.as_raw())
            .field("socket", &self.endpoint.socket())
            .field("exited", &*self.exited.borrow())
            .field("destroyed", &self.destroyed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Sandbox for ProcessContainer {
    const BACKEND: &'static str = BACKEND;

    fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    fn has_exited(&self) -> bool {
        *self.exited.borrow()
    }

    fn lost(&self, cause: Option<hyper::Error>) -> impl Future<Output = ProxyError> + Send {
        self.connection_lost(cause)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io_error(context: &str, e: std::io::Error) -> Error {
    let retryable = matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::Interrupted | ErrorKind::OutOfMemory
    );
    Error::backend(BACKEND, retryable, format!("{context}: {e}"))
}

fn gone() -> ProxyError {
    client::gone(BACKEND)
}

impl ProcessContainer {
    /// Starts the runner for `spec` with `interp`.
    pub(crate) fn spawn(
        inner: &Inner,
        interp: &Interpreter,
        spec: &ContainerSpec,
        id: String,
    ) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("faas-")
            .tempdir_in(&inner.work_dir)
            .map_err(|e| io_error("cannot create the container directory", e))?;
        let socket = dir.path().join("proxy.sock");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::backend(
                BACKEND,
                false,
                format!(
                    "the socket path {} is longer than {MAX_SOCKET_PATH} bytes; use a shorter work directory",
                    socket.display()
                ),
            ));
        }
        let runner_name = match interp.family {
            Family::Node => "runner.js",
            Family::Python => "runner.py",
        };
        let host_runner = match interp.family {
            Family::Node => &inner.node_runner,
            Family::Python => &inner.python_runner,
        };
        let (mut cmd, cgroup) = match &inner.jail {
            Some(jail) => {
                let name = id.split('-').next().unwrap_or("s").to_string();
                let prepared = jail
                    .prepare(&name, spec.memory_mb, dir.path())
                    .map_err(|e| io_error("cannot prepare the sandbox", e))?;
                let runner = Prepared::runner_path(runner_name);
                let mut args: Vec<OsString> = Vec::with_capacity(3);
                match interp.family {
                    Family::Node => {
                        if spec.memory_mb > 0 {
                            args.push(format!("--max-old-space-size={}", spec.memory_mb).into());
                        }
                    }
                    Family::Python => args.push("-u".into()),
                }
                args.push(runner.into());
                let mut cmd = tokio::process::Command::new("/bin/sh");
                cmd.args(prepared.args(jail, interp, &args, &[(host_runner, runner_name)]));
                let mut path = OsString::new();
                if let Some(bin) = interp.path.parent() {
                    path.push(bin);
                    path.push(":");
                }
                path.push("/usr/local/bin:/usr/bin:/bin");
                cmd.env_clear()
                    .env("PATH", path)
                    .env("HOME", ACTION_DIR)
                    .env("TMPDIR", "/tmp")
                    .envs(&spec.env)
                    .env("__OW_LISTEN", format!("unix:{ACTION_DIR}/proxy.sock"));
                (cmd, Some(Arc::new(prepared.cgroup)))
            }
            None => {
                let mut listen = OsString::from("unix:");
                listen.push(&socket);
                let mut cmd = tokio::process::Command::new(&interp.path);
                match interp.family {
                    Family::Node => {
                        if spec.memory_mb > 0 {
                            cmd.arg(format!("--max-old-space-size={}", spec.memory_mb));
                        }
                        cmd.arg(host_runner);
                    }
                    Family::Python => {
                        cmd.arg("-u").arg(host_runner);
                    }
                }
                cmd.env_clear()
                    .env("PATH", &inner.search_path)
                    .env("HOME", dir.path())
                    .env("TMPDIR", dir.path())
                    .envs(&spec.env)
                    .env("__OW_LISTEN", &listen);
                (cmd, None)
            }
        };
        // The runner exits by itself if this process dies without stopping it.
        cmd.env("__OW_EXIT_WITH_PARENT", "1")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so that signals reach whatever the action starts.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| io_error("cannot start the runner", e))?;
        let raw_pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| Error::internal("the runner exited before it got a pid"))?;
        let pid = Pid::from_raw(raw_pid);

        let logs = Arc::new(LogBuffer::new(inner.log_buffer_bytes));
        let max_line = inner.log_buffer_bytes;
        if let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) {
            tokio::spawn(read_pipes(out, err, Arc::clone(&logs), max_line));
        }
        let (exit_tx, exited) = watch::channel(false);
        let watched = cgroup.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            // Kill whatever the action left behind in the group (they would keep the pipes
            // open). The group id cannot be reused while any member lives; once it is empty
            // this is a no-op (ESRCH).
            let _ = killpg(pid, Signal::SIGKILL);
            // And whatever is left in the sandbox's cgroup (the PID namespace ends with its
            // first process anyway; this covers a sandbox whose bubblewrap was killed).
            if let Some(cg) = &watched {
                cg.kill_all();
            }
            tracing::debug!(pid = raw_pid, ?status, "runner exited");
            exit_tx.send_replace(true);
        });
        tracing::debug!(%id, kind = %interp.kind, pid = raw_pid, "runner started");
        Ok(Self {
            id,
            kind: interp.kind.clone(),
            pid,
            endpoint: Endpoint::new(socket, inner.max_response_bytes, CONNECT_FAST_PHASE),
            logs,
            exited,
            destroyed: AtomicBool::new(false),
            dir: Mutex::new(Some(dir)),
            log_wait: inner.log_wait,
            cgroup,
        })
    }

    fn has_exited(&self) -> bool {
        *self.exited.borrow()
    }

    /// Waits (at most `max`) until the runner listens (its socket appears) or exited.
    async fn wait_for_listener(&self, max: Duration) {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        while !self.endpoint.socket().exists()
            && !self.has_exited()
            && !self.destroyed.load(Ordering::Acquire)
            && started.elapsed() < max
        {
            tokio::time::sleep(pause).await;
            // Poll finely while a runner normally starts, then back off.
            if started.elapsed() >= CONNECT_FAST_PHASE {
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }

    /// The error for a call whose connection went away.
    async fn connection_lost(&self, cause: Option<hyper::Error>) -> ProxyError {
        // Give a dying process a moment to be reaped and its last stderr lines to be read, so
        // that the exit and an out-of-memory report are seen.
        let mut exited = self.exited.clone();
        let reaped = tokio::time::timeout(EXIT_GRACE, exited.wait_for(|e| *e))
            .await
            .is_ok_and(|r| r.is_ok());
        if reaped {
            self.logs.wait_for_eof(EXIT_GRACE).await;
            let killed_for_memory = self.cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0);
            return ProxyError::Exited {
                oom: self.logs.oom() || killed_for_memory,
            };
        }
        if self.destroyed.load(Ordering::Acquire) {
            return gone();
        }
        match cause {
            // The runner is alive but answered something that is not HTTP.
            Some(e) if e.is_parse() => ProxyError::Other(Error::backend(BACKEND, false, e)),
            _ => ProxyError::Exited { oom: false },
        }
    }

    /// The cgroup to freeze for pause/resume, when there is a freezer.
    fn freezer(&self) -> Result<Option<Arc<Cgroup>>> {
        if self.destroyed.load(Ordering::Acquire) {
            return Err(Error::backend(
                BACKEND,
                false,
                "the container was destroyed",
            ));
        }
        Ok(self
            .cgroup
            .as_ref()
            .filter(|c| c.can_freeze())
            .map(Arc::clone))
    }

    fn signal(&self, signal: Signal) -> Result<()> {
        if self.destroyed.load(Ordering::Acquire) {
            return Err(Error::backend(
                BACKEND,
                false,
                "the container was destroyed",
            ));
        }
        killpg(self.pid, signal).map_err(|e| {
            Error::backend(
                BACKEND,
                false,
                format!("cannot send {signal} to the runner: {e}"),
            )
        })
    }
}

/// Waits (at most `max`) until every thread of `pid` is stopped; whether they did.
///
/// A stop signal wakes one thread, which then stops the others; until it has run, the other
/// threads keep going. Linux shows each thread's state in `/proc/<pid>/task/<tid>/stat`.
#[cfg(target_os = "linux")]
async fn wait_stopped(pid: Pid, max: Duration) -> bool {
    let tasks = PathBuf::from(format!("/proc/{pid}/task"));
    let deadline = Instant::now() + max;
    loop {
        if all_stopped(&tasks) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Without `/proc`, the signal is all there is.
#[cfg(not(target_os = "linux"))]
async fn wait_stopped(_pid: Pid, _max: Duration) -> bool {
    true
}

#[cfg(target_os = "linux")]
fn all_stopped(tasks: &std::path::Path) -> bool {
    // A process that is gone (no directory) is as stopped as it gets.
    let Ok(entries) = std::fs::read_dir(tasks) else {
        return true;
    };
    entries.flatten().all(|task| {
        // `<tid> (<comm>) <state> ...`; comm may contain spaces and parentheses.
        std::fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            matches!(state, None | Some('T' | 't' | 'Z' | 'X' | 'x'))
        })
    })
}

#[async_trait]
impl Container for ProcessContainer {
    fn id(&self) -> &str {
        &self.id
    }

    async fn init(
        &self,
        body: Bytes,
        timeout: Duration,
    ) -> std::result::Result<ProxyResponse, ProxyError> {
        // The runner's start (and the sandbox's set-up) does not count against the action's
        // init time limit, as a container's start does not in OpenWhisk.
        self.wait_for_listener(BOOT_WAIT).await;
        self.endpoint.call(self, "/init", body, timeout, true).await
    }

    async fn run(
        &self,
        body: Bytes,
        timeout: Duration,
    ) -> std::result::Result<ProxyResponse, ProxyError> {
        self.endpoint.call(self, "/run", body, timeout, false).await
    }

    async fn logs(&self, limit_bytes: u64, wait_for_sentinels: bool) -> Result<LogCollection> {
        if wait_for_sentinels {
            self.logs.wait_for_sentinels(self.log_wait).await;
        }
        Ok(self.logs.take(limit_bytes, wait_for_sentinels))
    }

    async fn pause(&self) -> Result<()> {
        if let Some(cg) = self.freezer()? {
            return freeze(cg, true, &self.id).await;
        }
        self.signal(Signal::SIGSTOP)?;
        // The stop takes effect only once a thread of the runner gets to run, which on a busy
        // machine can be after the next request arrived: wait until it really stopped.
        if !wait_stopped(self.pid, PAUSE_WAIT).await {
            tracing::warn!(id = %self.id, "runner not stopped {PAUSE_WAIT:?} after SIGSTOP");
        }
        Ok(())
    }

    async fn resume(&self) -> Result<()> {
        if let Some(cg) = self.freezer()? {
            return freeze(cg, false, &self.id).await;
        }
        self.signal(Signal::SIGCONT)
    }

    fn is_dead(&self) -> bool {
        self.has_exited() || self.destroyed.load(Ordering::Acquire)
    }

    async fn destroy(&self) -> Result<()> {
        let first = !self.destroyed.swap(true, Ordering::AcqRel);
        self.endpoint.close();
        if !self.has_exited() {
            // SIGKILL also ends a stopped (paused) process.
            let _ = killpg(self.pid, Signal::SIGKILL);
        }
        if let Some(cg) = &self.cgroup {
            cg.kill_all();
        }
        let mut exited = self.exited.clone();
        if tokio::time::timeout(DESTROY_WAIT, exited.wait_for(|e| *e))
            .await
            .is_err()
        {
            tracing::warn!(id = %self.id, "runner not reaped after SIGKILL");
        }
        if let Some(cg) = &self.cgroup {
            // The sandbox's processes die asynchronously after the kill: wait (bounded) until
            // the cgroup is empty so that it can be removed.
            let deadline = Instant::now() + DESTROY_WAIT;
            while cg.try_remove().is_err() && Instant::now() < deadline {
                cg.kill_all();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let dir = lock(&self.dir).take();
        if let Some(dir) = dir {
            let removed = tokio::task::spawn_blocking(move || dir.close()).await;
            if let Ok(Err(e)) = removed {
                tracing::warn!(id = %self.id, error = %e, "cannot remove the container directory");
            }
        }
        if first {
            tracing::debug!(id = %self.id, "runner destroyed");
        }
        Ok(())
    }
}

impl Drop for ProcessContainer {
    fn drop(&mut self) {
        // Not destroyed explicitly: make sure the process group goes away with its handle.
        // The directory is removed by `TempDir`'s own drop.
        if !self.has_exited() {
            let _ = killpg(self.pid, Signal::SIGKILL);
        }
        if let Some(cg) = &self.cgroup {
            cg.kill_all();
        }
    }
}

/// Freezes or thaws a sandbox's cgroup without blocking the runtime.
async fn freeze(cg: Arc<Cgroup>, frozen: bool, id: &str) -> Result<()> {
    let done = tokio::task::spawn_blocking(move || cg.freeze(frozen, PAUSE_WAIT))
        .await
        .map_err(|e| Error::internal(e.to_string()))?
        .map_err(|e| io_error("cannot freeze the sandbox", e))?;
    if !done {
        tracing::warn!(%id, frozen, "sandbox not (un)frozen within {PAUSE_WAIT:?}");
    }
    Ok(())
}
