//! One Docker container running an action proxy, reached over a Unix socket in a bind-mounted
//! host directory.

use std::fmt;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::query_parameters::RemoveContainerOptions;
use bytes::Bytes;
use faas_core::executor::{LogCollection, LogStream, ProxyError, ProxyResponse};
use faas_core::{Container, Error, Result};
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::{BACKEND, Shared, error};
use crate::runner::client::{self, Endpoint, Sandbox};
use crate::runner::logs::{Framer, LogBuffer};

/// How long to keep polling at the first pause before backing off.
const CONNECT_FAST_PHASE: Duration = Duration::from_millis(500);
/// After a connection loss, how long to wait for the container's output to end (it exited).
const EXIT_GRACE: Duration = Duration::from_millis(1000);

/// The attached output of a container.
pub(crate) type Output =
    Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send>>;

/// A container created by [`DockerExecutor`](super::DockerExecutor).
pub(crate) struct DockerContainer {
    /// The container name (unique on the engine; what [`Container::id`] returns).
    name: String,
    /// The engine's id.
    docker_id: String,
    shared: Arc<Shared>,
    /// The host directory mounted at `/run/faas`, holding the socket.
    dir: PathBuf,
    /// The runner's action proxy.
    endpoint: Endpoint,
    logs: Arc<LogBuffer>,
    /// Becomes `true` when the container's output ended (it exited or was removed).
    exited: watch::Receiver<bool>,
    reader: AbortHandle,
    destroyed: AtomicBool,
}

impl fmt::Debug for DockerContainer {
    // The spec's environment (which may hold keys) is deliberately not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerContainer")
            .field("name", &self.name)
            .field("docker_id", &self.docker_id)
            .field("socket", &self.endpoint.socket())
            .field("exited", &*self.exited.borrow())
            .field("destroyed", &self.destroyed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Sandbox for DockerContainer {
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

fn gone() -> ProxyError {
    client::gone(BACKEND)
}

/// Reads the attached stdout/stderr into `logs` until the container's output ends, then marks
/// both streams ended and the container exited.
async fn read_output(
    mut output: Output,
    logs: Arc<LogBuffer>,
    max_line: usize,
    exited: watch::Sender<bool>,
) {
    let mut out = Framer::new(LogStream::Stdout, max_line);
    let mut err = Framer::new(LogStream::Stderr, max_line);
    while let Some(item) = output.next().await {
        match item {
            Ok(LogOutput::StdOut { message }) => out.feed(&message, &logs),
            Ok(LogOutput::StdErr { message }) => err.feed(&message, &logs),
            // A TTY merges both streams (not used by this executor): count it as stdout.
            Ok(LogOutput::Console { message }) => out.feed(&message, &logs),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => {
                tracing::debug!(error = %e, "container output ended with an error");
                break;
            }
        }
    }
    out.finish(&logs);
    err.finish(&logs);
    logs.close(LogStream::Stdout);
    logs.close(LogStream::Stderr);
    exited.send_replace(true);
}

impl DockerContainer {
    /// Wraps a created and attached (not yet started) container and starts reading its output.
    pub(crate) fn new(
        shared: Arc<Shared>,
        name: String,
        docker_id: String,
        dir: PathBuf,
        output: Output,
    ) -> Self {
        let logs = Arc::new(LogBuffer::new(shared.config.log_buffer_bytes));
        let (exit_tx, exited) = watch::channel(false);
        let reader = tokio::spawn(read_output(
            output,
            Arc::clone(&logs),
            shared.config.log_buffer_bytes,
            exit_tx,
        ))
        .abort_handle();
        let endpoint = Endpoint::new(
            dir.join("proxy.sock"),
            shared.config.max_response_bytes,
            CONNECT_FAST_PHASE,
        );
        Self {
            name,
            docker_id,
            shared,
            dir,
            endpoint,
            logs,
            exited,
            reader,
            destroyed: AtomicBool::new(false),
        }
    }

    fn has_exited(&self) -> bool {
        *self.exited.borrow()
    }

    /// Waits (at most `max`) until the runner listens (its socket appears) or the container
    /// ended; whether it listens. The runtime's boot then does not count against the action's
    /// init time limit, and a prewarmed container is really warm.
    pub(crate) async fn wait_for_listener(&self, max: Duration) -> bool {
        let deadline = Instant::now() + max;
        let mut pause = Duration::from_millis(2);
        loop {
            if self.endpoint.socket().exists() {
                return true;
            }
            if self.has_exited() || Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// The error for a call whose connection went away: `Exited` (with the engine's verdict on
    /// an out-of-memory kill) when the container stopped, else what the connection said.
    async fn connection_lost(&self, cause: Option<hyper::Error>) -> ProxyError {
        let mut exited = self.exited.clone();
        let _ = tokio::time::timeout(EXIT_GRACE, exited.wait_for(|e| *e)).await;
        if self.destroyed.load(Ordering::Acquire) {
            return gone();
        }
        match self.state().await {
            Some((false, oom)) => {
                // Let the reader take the last lines (an out-of-memory message, say).
                self.logs.wait_for_eof(EXIT_GRACE).await;
                ProxyError::Exited {
                    oom: oom || self.logs.oom(),
                }
            }
            _ => match cause {
                // The runner is alive but answered something that is not HTTP.
                Some(e) if e.is_parse() => ProxyError::Other(Error::backend(BACKEND, false, e)),
                _ => ProxyError::Exited { oom: false },
            },
        }
    }

    /// `(running, oom_killed)` from the engine; `None` when it cannot tell.
    async fn state(&self) -> Option<(bool, bool)> {
        let docker = &self.shared.docker;
        let inspect = docker.inspect_container(
            &self.docker_id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        );
        match tokio::time::timeout(self.shared.config.api_timeout, inspect).await {
            Ok(Ok(info)) => {
                let state = info.state?;
                Some((
                    state.running.unwrap_or(false),
                    state.oom_killed.unwrap_or(false),
                ))
            }
            Ok(Err(e)) if error::is_not_found(&e) => Some((false, false)),
            Ok(Err(e)) => {
                tracing::warn!(container = %self.name, error = %e, "cannot inspect the container");
                None
            }
            Err(_) => None,
        }
    }

    async fn api<T>(
        &self,
        what: &str,
        call: impl Future<Output = std::result::Result<T, bollard::errors::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.shared.config.api_timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(error::api(what, e)),
            Err(_) => Err(error::api_timeout(what)),
        }
    }

    fn check_live(&self) -> Result<()> {
        if self.destroyed.load(Ordering::Acquire) {
            return Err(Error::backend(
                BACKEND,
                false,
                "the container was destroyed",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Container for DockerContainer {
    fn id(&self) -> &str {
        &self.name
    }

    async fn init(
        &self,
        body: Bytes,
        timeout: Duration,
    ) -> std::result::Result<ProxyResponse, ProxyError> {
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
            self.logs
                .wait_for_sentinels(self.shared.config.log_wait)
                .await;
        }
        Ok(self.logs.take(limit_bytes, wait_for_sentinels))
    }

    async fn pause(&self) -> Result<()> {
        self.check_live()?;
        self.api(
            "pausing the container",
            self.shared.docker.pause_container(&self.docker_id),
        )
        .await
    }

    async fn resume(&self) -> Result<()> {
        self.check_live()?;
        self.api(
            "resuming the container",
            self.shared.docker.unpause_container(&self.docker_id),
        )
        .await
    }

    fn is_dead(&self) -> bool {
        self.has_exited() || self.destroyed.load(Ordering::Acquire)
    }

    async fn destroy(&self) -> Result<()> {
        if self.destroyed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.endpoint.close();
        let removed = self
            .api(
                "removing the container",
                remove(&self.shared, &self.docker_id),
            )
            .await;
        self.reader.abort();
        let dir = self.dir.clone();
        let _ = tokio::task::spawn_blocking(move || remove_dir(&dir)).await;
        tracing::debug!(container = %self.name, "container destroyed");
        removed
    }
}

impl Drop for DockerContainer {
    fn drop(&mut self) {
        self.reader.abort();
        if self.destroyed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Not destroyed explicitly: remove it in the background so that it does not outlive
        // its handle (the orphan sweep at the next start catches it otherwise).
        let shared = Arc::clone(&self.shared);
        let id = std::mem::take(&mut self.docker_id);
        let dir = std::mem::take(&mut self.dir);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(shared.config.api_timeout, remove(&shared, &id)).await;
                let _ = tokio::task::spawn_blocking(move || remove_dir(&dir)).await;
            });
        }
    }
}

/// Force-removes a container with its anonymous volumes; a missing one counts as removed.
pub(crate) async fn remove(
    shared: &Shared,
    docker_id: &str,
) -> std::result::Result<(), bollard::errors::Error> {
    let opts = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match shared.docker.remove_container(docker_id, Some(opts)).await {
        Err(e) if error::is_not_found(&e) || error::status(&e) == Some(409) => {
            // 409: a removal is already in progress.
            Ok(())
        }
        other => other,
    }
}

/// Removes a container's host directory, ignoring what is already gone.
pub(crate) fn remove_dir(dir: &std::path::Path) {
    if dir.as_os_str().is_empty() {
        return;
    }
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the container directory");
    }
}
