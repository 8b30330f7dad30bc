//! Executors, action runners, the container pool and the invoker of **faas**.
//!
//! * [`process`]: the local-process [`Executor`](faas_core::Executor): each sandbox is a runner
//!   process (Node.js or Python, standard library only) speaking OpenWhisk's action-proxy
//!   protocol over a Unix socket, inside namespaces (bubblewrap), as an unprivileged uid, under
//!   seccomp and cgroup memory and pids limits.
//! * [`docker`] (feature `docker`): the Docker [`Executor`](faas_core::Executor): each sandbox
//!   is a container of a runtime image built from the recipes in `runtimes/docker/`, with
//!   OpenWhisk's limits (memory, CPU shares, pids, open files, dropped capabilities), reached
//!   over a Unix socket in a bind-mounted directory; blackbox images run the same way.
//! * [`pool`]: the container pool (warm reuse, prewarmed stem cells, memory accounting, LRU
//!   eviction, queueing).
//! * [`invoker`]: the invoker, a tower `Service<ActivationMessage>`, and the loop that feeds
//!   it from the bus.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "docker")]
#[cfg_attr(docsrs, doc(cfg(feature = "docker")))]
pub mod docker;
pub mod invoker;
pub mod pool;
pub mod process;
pub mod proxy;
mod runner;
