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
use tokio::net::UnixStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::client::{CallError, ProxyConn};
use super::detect::{Family, Interpreter};
use super::logs::{LogBuffer, read_pipes};
use super::{BACKEND, Inner};

/// First pause between connection attempts while the runner starts.
const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(2);
/// Longest pause between connection attempts.
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(50);
/// How long to keep polling at the first pause before backing off (runners start in ~40 ms).
const CONNECT_FAST_PHASE: Duration = Duration::from_millis(200);
/// After a connection loss, how long to wait for the process exit (and its last stderr lines).
const EXIT_GRACE: Duration = Duration::from_millis(200);
/// How long `destroy` waits for the killed process to be reaped.
const DESTROY_WAIT: Duration = Duration::from_secs(5);
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
    socket: PathBuf,
    /// Idle keep-alive connections (one, unless calls overlapped).
    conns: Mutex<Vec<ProxyConn>>,
    logs: Arc<LogBuffer>,
    /// Becomes `true` once the runner has exited and was reaped.
    exited: watch::Receiver<bool>,
    destroyed: AtomicBool,
    /// The private directory (socket, `HOME`, `TMPDIR`); removed on destroy or drop.
    dir: Mutex<Option<TempDir>>,
    max_response_bytes: usize,
    log_wait: Duration,
}

impl fmt::Debug for ProcessContainer {
    // The spec's environment (which may hold keys) is deliberately not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessContainer")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("pid", &self.pid.as_raw())
            .field("socket", &self.socket)
            .field("exited", &*self.exited.borrow())
            .field("destroyed", &self.destroyed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
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
    ProxyError::Other(Error::backend(
        BACKEND,
        false,
        "the container was destroyed",
    ))
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
        let mut listen = OsString::from("unix:");
        listen.push(&socket);

        let mut cmd = tokio::process::Command::new(&interp.path);
        match interp.family {
            Family::Node => {
                if spec.memory_mb > 0 {
                    cmd.arg(format!("--max-old-space-size={}", spec.memory_mb));
                }
                cmd.arg(&inner.node_runner);
            }
            Family::Python => {
                cmd.arg("-u").arg(&inner.python_runner);
            }
        }
        cmd.env_clear()
            .env("PATH", &inner.search_path)
            .env("HOME", dir.path())
            .env("TMPDIR", dir.path())
            .envs(&spec.env)
            .env("__OW_LISTEN", &listen)
            // The runner exits by itself if this process dies without stopping it.
            .env("__OW_EXIT_WITH_PARENT", "1")
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
        tokio::spawn(async move {
            let status = child.wait().await;
            // Kill whatever the action left behind in the group (they would keep the pipes
            // open). The group id cannot be reused while any member lives; once it is empty
            // this is a no-op (ESRCH).
            let _ = killpg(pid, Signal::SIGKILL);
            tracing::debug!(pid = raw_pid, ?status, "runner exited");
            exit_tx.send_replace(true);
        });
        tracing::debug!(%id, kind = %interp.kind, pid = raw_pid, "runner started");
        Ok(Self {
            id,
            kind: interp.kind.clone(),
            pid,
            socket,
            conns: Mutex::new(Vec::with_capacity(1)),
            logs,
            exited,
            destroyed: AtomicBool::new(false),
            dir: Mutex::new(Some(dir)),
            max_response_bytes: inner.max_response_bytes,
            log_wait: inner.log_wait,
        })
    }

    fn has_exited(&self) -> bool {
        *self.exited.borrow()
    }

    async fn call(
        &self,
        path: &'static str,
        body: Bytes,
        timeout: Duration,
        wait_for_listener: bool,
    ) -> std::result::Result<ProxyResponse, ProxyError> {
        if self.destroyed.load(Ordering::Acquire) {
            return Err(gone());
        }
        match tokio::time::timeout(timeout, self.exchange(path, body, wait_for_listener)).await {
            Ok(result) => result,
            // The connection in use was dropped with the future: it is not reused.
            Err(_) => Err(ProxyError::Timeout),
        }
    }

    async fn exchange(
        &self,
        path: &'static str,
        body: Bytes,
        wait_for_listener: bool,
    ) -> std::result::Result<ProxyResponse, ProxyError> {
        let pooled = lock(&self.conns).pop();
        let (mut conn, mut fresh) = match pooled {
            Some(conn) => (conn, false),
            None => (self.connect(wait_for_listener).await?, true),
        };
        loop {
            match conn.post(path, body.clone(), self.max_response_bytes).await {
                Ok(resp) => {
                    if conn.reusable() && !self.destroyed.load(Ordering::Acquire) {
                        lock(&self.conns).push(conn);
                    }
                    return Ok(resp);
                }
                // An idle connection turned out closed before the request was sent: retry once.
                Err(CallError::Stale) if !fresh => {
                    conn = self.connect(false).await?;
                    fresh = true;
                }
                Err(CallError::Stale) => return Err(self.lost(None).await),
                Err(CallError::Lost(e)) => return Err(self.lost(e).await),
            }
        }
    }

    /// Connects to the runner's socket; with `wait_for_listener`, retries while the runner is
    /// not listening yet (the caller bounds the time).
    async fn connect(&self, wait_for_listener: bool) -> std::result::Result<ProxyConn, ProxyError> {
        let started = Instant::now();
        let mut pause = CONNECT_RETRY_FIRST;
        loop {
            match UnixStream::connect(&self.socket).await {
                Ok(stream) => {
                    return ProxyConn::handshake(stream)
                        .await
                        .map_err(|e| ProxyError::Other(Error::backend(BACKEND, true, e)));
                }
                Err(e) => {
                    if self.destroyed.load(Ordering::Acquire) {
                        return Err(gone());
                    }
                    if self.has_exited() {
                        return Err(self.lost(None).await);
                    }
                    let not_listening =
                        matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused);
                    if !(wait_for_listener && not_listening) {
                        return Err(ProxyError::Other(io_error(
                            "cannot connect to the runner",
                            e,
                        )));
                    }
                    tokio::time::sleep(pause).await;
                    if started.elapsed() >= CONNECT_FAST_PHASE {
                        pause = (pause * 2).min(CONNECT_RETRY_MAX);
                    }
                }
            }
        }
    }

    /// The error for a call whose connection went away.
    async fn lost(&self, cause: Option<hyper::Error>) -> ProxyError {
        // Give a dying process a moment to be reaped and its last stderr lines to be read, so
        // that the exit and an out-of-memory report are seen.
        let mut exited = self.exited.clone();
        let reaped = tokio::time::timeout(EXIT_GRACE, exited.wait_for(|e| *e))
            .await
            .is_ok_and(|r| r.is_ok());
        if reaped {
            self.logs.wait_for_eof(EXIT_GRACE).await;
            return ProxyError::Exited {
                oom: self.logs.oom(),
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
        self.call("/init", body, timeout, true).await
    }

    async fn run(
        &self,
        body: Bytes,
        timeout: Duration,
    ) -> std::result::Result<ProxyResponse, ProxyError> {
        self.call("/run", body, timeout, false).await
    }

    async fn logs(&self, limit_bytes: u64, wait_for_sentinels: bool) -> Result<LogCollection> {
        if wait_for_sentinels {
            self.logs.wait_for_sentinels(self.log_wait).await;
        }
        Ok(self.logs.take(limit_bytes, wait_for_sentinels))
    }

    async fn pause(&self) -> Result<()> {
        self.signal(Signal::SIGSTOP)?;
        // The stop takes effect only once a thread of the runner gets to run, which on a busy
        // machine can be after the next request arrived: wait until it really stopped.
        if !wait_stopped(self.pid, PAUSE_WAIT).await {
            tracing::warn!(id = %self.id, "runner not stopped {PAUSE_WAIT:?} after SIGSTOP");
        }
        Ok(())
    }

    async fn resume(&self) -> Result<()> {
        self.signal(Signal::SIGCONT)
    }

    async fn destroy(&self) -> Result<()> {
        let first = !self.destroyed.swap(true, Ordering::AcqRel);
        lock(&self.conns).clear();
        if !self.has_exited() {
            // SIGKILL also ends a stopped (paused) process.
            let _ = killpg(self.pid, Signal::SIGKILL);
        }
        let mut exited = self.exited.clone();
        if tokio::time::timeout(DESTROY_WAIT, exited.wait_for(|e| *e))
            .await
            .is_err()
        {
            tracing::warn!(id = %self.id, "runner not reaped after SIGKILL");
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
    }
}
