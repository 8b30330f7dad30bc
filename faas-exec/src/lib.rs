//! Executors, action runners, the container pool and the invoker of **faas**.
//!
//! * [`process`]: the local-process [`Executor`](faas_core::Executor): each sandbox is a runner
//!   process (Node.js or Python, standard library only) speaking OpenWhisk's action-proxy
//!   protocol over a Unix socket.
//! * [`pool`]: the container pool (warm reuse, prewarmed stem cells, memory accounting, LRU
//!   eviction, queueing).
//! * [`invoker`]: the invoker, a tower `Service<ActivationMessage>`, and the loop that feeds
//!   it from the bus.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod invoker;
pub mod pool;
pub mod process;
pub mod proxy;
