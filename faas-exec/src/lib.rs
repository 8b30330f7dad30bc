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
//!
//! # Example
//!
//! One action run in a local sandbox through the [`Executor`](faas_core::Executor) seam, as
//! the invoker's pool does it (the pool adds reuse and limits, the invoker the bus and the
//! records):
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use faas_core::{ContainerSpec, Executor};
//! use faas_exec::process::ProcessExecutor;
//! use serde_json::json;
//!
//! let executor = ProcessExecutor::builder().build()?;
//! let container = executor.create(&ContainerSpec::new("hello", "nodejs:20", 256)).await?;
//!
//! // OpenWhisk's action interface: one `/init` with the code, then any number of `/run`s.
//! let code = "function main(args) { return { greeting: 'Hello, ' + args.name }; }";
//! let init = json!({"value": {"name": "hello", "main": "main", "binary": false, "code": code}});
//! let t = Duration::from_secs(10);
//! assert_eq!(container.init(Bytes::from(init.to_string()), t).await?.status, 200);
//!
//! let run = json!({"value": {"name": "Ada"}, "activation_id": "a1", "namespace": "guest",
//!     "action_name": "/guest/hello", "deadline": "4102444800000"});
//! let reply = container.run(Bytes::from(run.to_string()), t).await?;
//! let result: serde_json::Value = serde_json::from_slice(&reply.body)?;
//! assert_eq!(result, json!({"greeting": "Hello, Ada"}));
//! container.destroy().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "docker")]
#[cfg_attr(docsrs, doc(cfg(feature = "docker")))]
pub mod docker;
pub mod invoker;
pub mod pool;
pub mod process;
pub mod proxy;
mod runner;
