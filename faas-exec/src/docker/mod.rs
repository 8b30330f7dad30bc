//! The Docker [`Executor`] (feature `docker`): each sandbox is a container of a runtime image,
//! created through the Docker engine API ([`bollard`]) with the settings of OpenWhisk's invoker
//! ([`DockerContainer.scala`](https://github.com/apache/openwhisk/blob/master/core/invoker/src/main/scala/org/apache/openwhisk/core/containerpool/docker/DockerContainer.scala)), and reached over a Unix
//! socket in a bind-mounted host directory.
//!
//! ```no_run
//! # async fn demo() -> faas_core::Result<()> {
//! use std::time::Duration;
//! use faas_core::{ContainerSpec, Executor};
//! use faas_exec::docker::DockerExecutor;
//!
//! // Finds the engine (DOCKER_HOST or /var/run/docker.sock), negotiates the API version and
//! // reads the runtime kinds from the local images' `faas.kind` labels.
//! let executor = DockerExecutor::builder().with_invoker_id("0").build().await?;
//! executor.remove_orphans().await?; // containers a previous run of invoker 0 left behind
//! let kind = executor.runtimes().default_kind("nodejs").unwrap_or("nodejs:18").to_string();
//! let c = executor.create(&ContainerSpec::new("demo", kind, 256)).await?;
//! let init = r#"{"value":{"name":"demo","main":"main","code":"function main(a){return a}"}}"#;
//! c.init(init.into(), Duration::from_secs(5)).await.ok();
//! let reply = c.run(r#"{"value":{"hi":1}}"#.into(), Duration::from_secs(5)).await.ok();
//! let logs = c.logs(10 * 1024 * 1024, true).await?;
//! c.destroy().await?;
//! # Ok(()) }
//! ```
//!
//! # Images
//!
//! Managed kinds come from local images labelled `faas.kind=<kind>` (the newest image per kind;
//! the highest version of a family is its default, so `nodejs:default` resolves to it).
//! `scripts/services/docker.sh images` builds them from the recipes in
//! `faas-exec/runtimes/docker/<family>/Dockerfile`: a base made from Debian packages (no
//! registry needed) plus the runner of `faas-exec/runtimes/`. Other kinds can be mapped
//! explicitly with [`DockerExecutorBuilder::with_runtime`].
//!
//! Blackbox actions (`kind: "blackbox"` with an image) run any local image whose proxy honours
//! `__OW_LISTEN` (the runners do). Images are never pulled: a missing image is refused with
//! OpenWhisk's `Failed to pull container image '<image>'.` as a [`Error::BadRequest`].
//!
//! # How a container looks
//!
//! OpenWhisk's `docker run` settings (its invoker's
//! [`DockerContainer.create`](https://github.com/apache/openwhisk/blob/master/core/invoker/src/main/scala/org/apache/openwhisk/core/containerpool/docker/DockerContainer.scala) and the action limits):
//!
//! | setting | value |
//! |---|---|
//! | memory | the action's, swap none (`--memory m --memory-swap m`) |
//! | CPU shares | `max(1024 × memory / user memory, 2)` |
//! | pids | [`with_pids_limit`](DockerExecutorBuilder::with_pids_limit) (1024) |
//! | open files | `nofile` [`with_nofile`](DockerExecutorBuilder::with_nofile) (1024:1024) |
//! | capabilities | `NET_RAW` and `NET_ADMIN` dropped |
//! | network | [`with_network`](DockerExecutorBuilder::with_network) (`none`; `bridge` or any network by config) |
//! | labels | `faas.invoker=<id>`, `faas.kind`, the spec's labels |
//! | log driver | `none`: output is read from the attached streams, nothing is written to disk |
//! | transport | a private host directory mounted at `/run/faas`, `__OW_LISTEN=unix:/run/faas/proxy.sock` |
//!
//! The Unix socket needs no routed address, so containers without any network work, and the
//! invoker reaches nothing but the containers it created. The container's stdout and stderr are
//! attached before it starts and framed into lines by one task per container; the lines are cut
//! at the sentinels exactly as the [process executor](crate::process) does.
//!
//! [`create`](Executor::create) returns once the proxy listens (its socket appeared), at most
//! [`with_ready_wait`](DockerExecutorBuilder::with_ready_wait) after the start: the runtime's
//! boot is not charged to the action's init time limit, and a prewarmed container handed out
//! by the pool is ready. A blackbox image must honour `__OW_LISTEN=unix:<path>` (the runners
//! of this crate do); an image whose proxy only listens on TCP port 8080 is not reachable
//! through this transport.
//!
//! # Failures
//!
//! * A container killed for exceeding its memory (the engine's `State.OOMKilled`) yields
//!   [`ProxyError::Exited`]`{ oom: true }`; the invoker reports OpenWhisk's
//!   `The action exhausted its memory and was aborted.`
//! * The pids limit stops a fork bomb inside the container; the action fails, the host does not.
//! * A call past its time limit yields [`ProxyError::Timeout`]; the pool destroys the container.
//! * [`DockerExecutor::remove_orphans`] removes the containers labelled with this invoker's id
//!   that a previous run left behind; call it once at start.
//!
//! # Capabilities
//!
//! | capability | |
//! |---|---|
//! | memory limit | yes (cgroup) |
//! | network isolation | yes when the network is `none` |
//! | pause/resume | yes (the engine's freezer) |
//! | blackbox images | yes (local images only) |
//!
//! [`ProxyError::Exited`]: faas_core::executor::ProxyError::Exited
//! [`ProxyError::Timeout`]: faas_core::executor::ProxyError::Timeout

mod builder;
mod container;
mod error;
mod runtimes;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, ListContainersOptions,
};
use faas_core::executor::ExecCapabilities;
use faas_core::{Container, ContainerSpec, Error, Executor, Result, RuntimeManifest};
use tempfile::TempDir;

use self::builder::Config;
pub use self::builder::{DockerConfigKey, DockerExecutorBuilder, invoker_url};
use self::container::DockerContainer;

/// The adapter name in errors.
const BACKEND: &str = "docker";

/// The label holding the invoker id (orphans are found by it).
pub const INVOKER_LABEL: &str = "faas.invoker";
/// The label holding the container's runtime kind.
pub const KIND_LABEL: &str = runtimes::KIND_LABEL;
/// Where the transport directory is mounted inside containers.
pub const CONTAINER_DIR: &str = "/run/faas";

/// Default cap on a reply body: OpenWhisk's 1 MiB result limit plus room for the JSON around it.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024 + 64 * 1024;
/// Default longest wait for the log sentinels after a run.
pub const DEFAULT_LOG_WAIT: Duration = Duration::from_secs(2);
/// Default log bytes buffered per container: OpenWhisk's largest log limit (10 MiB) plus slack.
pub const DEFAULT_LOG_BUFFER_BYTES: usize = 10 * 1024 * 1024 + 64 * 1024;
/// Default longest wait for one Docker API call.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest wait of `create` for the action proxy to listen.
pub const DEFAULT_READY_WAIT: Duration = Duration::from_secs(10);
/// OpenWhisk's `--pids-limit`.
pub const DEFAULT_PIDS_LIMIT: i64 = 1024;
/// OpenWhisk's `--ulimit nofile=1024:1024`.
pub const DEFAULT_NOFILE: i64 = 1024;
/// The network of containers by default: none (the Unix socket needs no address).
pub const DEFAULT_NETWORK: &str = "none";
/// Unix socket paths are limited to 108 bytes (`sun_path`), including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// Longest container name part taken from the spec.
const MAX_NAME: usize = 120;

/// Runs actions in Docker containers. See the [module documentation](self).
///
/// Cheap to clone (the clones share the engine connection and the configuration).
#[derive(Clone)]
pub struct DockerExecutor {
    shared: Arc<Shared>,
}

/// What every container of one executor shares.
pub(crate) struct Shared {
    docker: Docker,
    config: Config,
    manifest: RuntimeManifest,
    /// The negotiated API version (`1.41`).
    api_version: String,
    /// Holds one directory per container; removed when the executor goes away.
    work: TempDir,
    /// Distinguishes this executor's container names from other executors' on the engine.
    nonce: String,
    next_id: AtomicU64,
    /// Blackbox images known to exist locally.
    images: Mutex<HashSet<String>>,
    /// Containers being created now (their creation runs in a task of its own).
    creating: std::sync::atomic::AtomicUsize,
}

impl fmt::Debug for DockerExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("DockerExecutor")
            .field("invoker", &s.config.invoker)
            .field("api_version", &s.api_version)
            .field("network", &s.config.network)
            .field(
                "kinds",
                &s.manifest.kinds().map(|k| &k.kind).collect::<Vec<_>>(),
            )
            .field("work_dir", &s.work.path())
            .finish_non_exhaustive()
    }
}

impl DockerExecutor {
    /// A builder with the default settings.
    pub fn builder() -> DockerExecutorBuilder {
        DockerExecutorBuilder::new()
    }

    /// Connects with the settings of `FAAS_DOCKER_*` variables (see
    /// [`DockerExecutorBuilder::from_env`]).
    pub async fn from_env() -> Result<Self> {
        DockerExecutorBuilder::from_env()?.build().await
    }

    /// Connects with the settings of an adapter URL (see [`DockerExecutorBuilder::from_url`]).
    pub async fn from_url(url: &str) -> Result<Self> {
        DockerExecutorBuilder::from_url(url)?.build().await
    }

    /// The Docker API version negotiated with the engine (`1.41` for Debian's engine).
    pub fn api_version(&self) -> &str {
        &self.shared.api_version
    }

    /// The invoker id its containers are labelled with.
    pub fn invoker_id(&self) -> &str {
        &self.shared.config.invoker
    }

    /// The network containers join (`none` by default).
    pub fn network(&self) -> &str {
        &self.shared.config.network
    }

    /// The engine client, for callers that need more of the API.
    pub fn docker(&self) -> &Docker {
        &self.shared.docker
    }

    /// Removes every container labelled with this executor's invoker id (left behind by an
    /// invoker that stopped without cleaning up), including containers this executor created.
    /// Call it at start, before creating containers. Returns how many were removed.
    pub async fn remove_orphans(&self) -> Result<usize> {
        self.remove_labelled(false).await
    }

    /// Removes the containers this executor created that still exist.
    async fn remove_own(&self) -> Result<usize> {
        self.remove_labelled(true).await
    }

    /// Removes the containers labelled with this executor's invoker id (`own_only`: and
    /// named with its nonce).
    async fn remove_labelled(&self, own_only: bool) -> Result<usize> {
        let s = &self.shared;
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{INVOKER_LABEL}={}", s.config.invoker)],
        )]);
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = tokio::time::timeout(s.config.api_timeout, s.docker.list_containers(Some(opts)))
            .await
            .map_err(|_| error::api_timeout("listing containers"))?
            .map_err(|e| error::api("listing containers", e))?;
        let mut removed = 0;
        let mine = format!("_{}", s.nonce);
        for c in list {
            if own_only
                && !c.names.iter().flatten().any(|n| {
                    n.rsplit_once('_')
                        .is_some_and(|(_, tail)| format!("_{tail}").starts_with(&mine))
                })
            {
                continue;
            }
            let Some(id) = c.id else { continue };
            let r = tokio::time::timeout(s.config.api_timeout, container::remove(s, &id)).await;
            match r {
                Ok(Ok(())) => {
                    removed += 1;
                    tracing::info!(container = %id, names = ?c.names, "removed an orphaned container");
                }
                Ok(Err(e)) => return Err(error::api("removing an orphaned container", e)),
                Err(_) => return Err(error::api_timeout("removing an orphaned container")),
            }
        }
        Ok(removed)
    }

    /// Checks that a blackbox image exists locally (images are never pulled).
    async fn check_image(&self, image: &str) -> Result<()> {
        let s = &self.shared;
        if s.images
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(image)
        {
            return Ok(());
        }
        let found = tokio::time::timeout(s.config.api_timeout, s.docker.inspect_image(image))
            .await
            .map_err(|_| error::api_timeout("inspecting an image"))?;
        match found {
            Ok(_) => {
                s.images
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(image.to_string());
                Ok(())
            }
            Err(e) if error::is_not_found(&e) => Err(pull_failed(image)),
            Err(e) => Err(error::api("inspecting an image", e)),
        }
    }

    fn container_body(
        &self,
        spec: &ContainerSpec,
        image: &str,
        kind: &str,
        dir: &Path,
    ) -> ContainerCreateBody {
        let c = &self.shared.config;
        let mut env: Vec<String> = spec
            .env
            .iter()
            .filter(|(k, _)| k.as_str() != "__OW_LISTEN")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.push(format!("__OW_LISTEN=unix:{CONTAINER_DIR}/proxy.sock"));
        let mut labels: HashMap<String, String> = c
            .labels
            .iter()
            .chain(spec.labels.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert(INVOKER_LABEL.into(), c.invoker.clone());
        labels.insert(KIND_LABEL.into(), kind.into());
        let memory = spec.memory_mb.saturating_mul(1024 * 1024);
        let memory = (memory > 0).then(|| i64::try_from(memory).unwrap_or(i64::MAX));
        let host = HostConfig {
            memory,
            memory_swap: memory,
            cpu_shares: Some(cpu_shares(spec.memory_mb, c.user_memory_mb)),
            pids_limit: (c.pids_limit > 0).then_some(c.pids_limit),
            ulimits: (c.nofile > 0).then(|| {
                vec![ResourcesUlimits {
                    name: Some("nofile".into()),
                    soft: Some(c.nofile),
                    hard: Some(c.nofile),
                }]
            }),
            cap_drop: Some(vec!["NET_RAW".into(), "NET_ADMIN".into()]),
            network_mode: Some(c.network.clone()),
            binds: Some(vec![format!("{}:{CONTAINER_DIR}", dir.display())]),
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(image.to_string()),
            env: Some(env),
            labels: Some(labels),
            user: c.user.clone(),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(host),
            ..Default::default()
        }
    }

    /// Creates, attaches and starts the container; on failure removes what was made.
    async fn start(
        &self,
        spec: &ContainerSpec,
        image: &str,
        kind: &str,
    ) -> Result<DockerContainer> {
        let s = &self.shared;
        let n = s.next_id.fetch_add(1, Ordering::Relaxed);
        let dir = s.work.path().join(format!("c{n}"));
        if dir.join("proxy.sock").as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::backend(
                BACKEND,
                false,
                format!(
                    "the socket path under {} is longer than {MAX_SOCKET_PATH} bytes; use a shorter work directory",
                    s.work.path().display()
                ),
            ));
        }
        std::fs::create_dir(&dir).map_err(|e| {
            Error::backend(
                BACKEND,
                false,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        let name = format!("{}_{}{n}", sanitize(&spec.name), s.nonce);
        let body = self.container_body(spec, image, kind, &dir);
        let opts = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let timeout = s.config.api_timeout;
        let created = match tokio::time::timeout(
            timeout,
            s.docker.create_container(Some(opts), body),
        )
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                container::remove_dir(&dir);
                if error::is_not_found(&e) {
                    s.images
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(image);
                    return Err(pull_failed(image));
                }
                return Err(error::api("creating the container", e));
            }
            Err(_) => {
                container::remove_dir(&dir);
                // The container may exist after all: remove it by name.
                let _ = tokio::time::timeout(timeout, container::remove(s, &name)).await;
                return Err(error::api_timeout("creating the container"));
            }
        };
        let id = created.id;
        let cleanup = |why: Error| {
            let (id, dir) = (&id, &dir);
            async move {
                let _ = tokio::time::timeout(timeout, container::remove(s, id)).await;
                container::remove_dir(dir);
                why
            }
        };
        let attach = AttachContainerOptions {
            stdout: true,
            stderr: true,
            stream: true,
            ..Default::default()
        };
        let output =
            match tokio::time::timeout(timeout, s.docker.attach_container(&id, Some(attach))).await
            {
                Ok(Ok(a)) => a.output,
                Ok(Err(e)) => {
                    return Err(cleanup(error::api("attaching to the container", e)).await);
                }
                Err(_) => {
                    return Err(cleanup(error::api_timeout("attaching to the container")).await);
                }
            };
        // From here on the container's handle removes it when dropped.
        let c = DockerContainer::new(Arc::clone(s), name, id.clone(), dir, output);
        match tokio::time::timeout(
            timeout,
            s.docker.start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            ),
        )
        .await
        {
            Ok(Ok(())) => {
                if !c.wait_for_listener(s.config.ready_wait).await {
                    tracing::debug!(container = %c.id(), "the action proxy is not listening yet");
                }
                Ok(c)
            }
            Ok(Err(e)) => {
                let _ = c.destroy().await;
                Err(error::api("starting the container", e))
            }
            Err(_) => {
                let _ = c.destroy().await;
                Err(error::api_timeout("starting the container"))
            }
        }
    }
}

/// OpenWhisk's message for a blackbox image that cannot be had.
fn pull_failed(image: &str) -> Error {
    Error::bad_request(format!("Failed to pull container image '{image}'."))
}

/// OpenWhisk's `--cpu-shares max(1024 / (userMemory / memory), 2)`.
fn cpu_shares(memory_mb: u64, user_memory_mb: u64) -> i64 {
    if user_memory_mb == 0 {
        return 1024;
    }
    let shares = 1024u128 * u128::from(memory_mb) / u128::from(user_memory_mb);
    i64::try_from(shares).unwrap_or(i64::MAX).clamp(2, 262_144)
}

/// A container name part: `[A-Za-z0-9_.-]`, starting with an alphanumeric, at most [`MAX_NAME`].
fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        s.insert(0, 'c');
    }
    s
}

#[async_trait]
impl Executor for DockerExecutor {
    async fn create(&self, spec: &ContainerSpec) -> Result<Arc<dyn Container>> {
        let (image, kind) = if spec.kind == "blackbox" {
            let image = spec
                .image
                .as_deref()
                .filter(|i| !i.trim().is_empty())
                .ok_or_else(|| Error::bad_request("a blackbox action needs an image"))?;
            self.check_image(image).await?;
            (image.to_string(), "blackbox".to_string())
        } else {
            let runtime = self.shared.manifest.resolve(&spec.kind)?;
            (runtime.image.clone(), runtime.kind.clone())
        };
        // The engine calls run in a task of their own: a caller that gives up (a request
        // cancelled, a platform shutting down) must not leave a half-made container behind.
        // When nobody waits for the result any more, the task removes what it made.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        let spec = spec.clone();
        self.shared.creating.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            let r = me.start(&spec, &image, &kind).await;
            match tx.send(r) {
                Ok(()) => {}
                Err(Ok(orphan)) => {
                    tracing::info!(container = %orphan.id(), "creation abandoned by its caller; removing the container");
                    if let Err(e) = orphan.destroy().await {
                        tracing::warn!(container = %orphan.id(), error = %e, "cannot remove an abandoned container");
                    }
                }
                Err(Err(_)) => {}
            }
            me.shared.creating.fetch_sub(1, Ordering::AcqRel);
        });
        let c = rx.await.map_err(|_| {
            Error::internal("the container creation task ended without an answer")
        })??;
        tracing::debug!(container = %c.id(), "container started");
        Ok(Arc::new(c))
    }

    fn runtimes(&self) -> RuntimeManifest {
        self.shared.manifest.clone()
    }

    fn capabilities(&self) -> ExecCapabilities {
        ExecCapabilities::new(true, self.shared.config.network == "none", true, true)
    }

    /// Waits (bounded by the API time-out) for creations still running, then removes every
    /// container of this executor (its invoker label and its name nonce) that is left.
    async fn shutdown(&self) -> Result<()> {
        let s = &self.shared;
        let until = tokio::time::Instant::now() + s.config.api_timeout;
        while s.creating.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let removed = self.remove_own().await?;
        if removed > 0 {
            tracing::info!(removed, "removed containers left at shutdown");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_shares_follow_openwhisk() {
        assert_eq!(cpu_shares(256, 1024), 256);
        assert_eq!(cpu_shares(128, 2048), 64);
        assert_eq!(cpu_shares(1, 4096), 2);
        assert_eq!(cpu_shares(512, 512), 1024);
        assert_eq!(cpu_shares(256, 0), 1024);
    }

    #[test]
    fn names_are_valid_for_the_engine() {
        assert_eq!(sanitize("wsk0_1_guest_hello"), "wsk0_1_guest_hello");
        assert_eq!(sanitize("guest/hello world"), "guest_hello_world");
        assert_eq!(sanitize("_x"), "c_x");
        assert_eq!(sanitize(""), "c");
        assert_eq!(sanitize(&"a".repeat(500)).len(), MAX_NAME);
    }
}
