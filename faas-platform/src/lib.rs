//! The faas platform, as a library: assemble an OpenWhisk-compatible platform from adapters
//! (yours or the built-in ones), or run the whole `faas-platform` binary, flags included, with
//! adapters of your own.
//!
//! * [`Platform::builder`] assembles a controller and/or an invoker from `Arc<dyn …>` parts
//!   or from adapter URLs resolved through [`Adapters`] (one registry per trait), with the
//!   controller's HTTP stack open to extra tower layers ([`PlatformBuilder::map_router`]).
//! * [`run`] is the `faas-platform` binary in one call: flags, environment and config file,
//!   `standalone`, `controller`, `invoker` and `admin`, over the adapters it is given. A scheme
//!   you register (`redis`) is then accepted by `--store redis://…`.
//!
//! # Example
//!
//! A whole platform in memory (`memory:` store, `inproc:` bus, `process:` executor), serving
//! on a free loopback port:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use faas_platform::{Platform, config::NodeConfig};
//!
//! let config = NodeConfig {
//!     listen: "127.0.0.1:0".parse()?,
//!     catalog: false,
//!     ..Default::default()
//! };
//! let running = Platform::builder().config(config).start().await?;
//! let (status, body) = running.call(http::Method::GET, "/api/v1/namespaces", None).await?;
//! assert_eq!(status, 200);
//! assert_eq!(body, serde_json::json!(["guest"]));
//! running.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! The modules below are the pieces: [`config`] (flags and config file), [`standalone`] (the
//! wiring of a node), [`admin`] (the operator CLI) and `otlp` (trace export).

pub mod adapters;
pub mod admin;
mod builder;
pub mod config;
#[cfg(feature = "otlp")]
pub mod otlp;
mod run;
pub mod standalone;

/// Adapter URLs and factories by scheme (from [`faas_core::registry`]).
pub use faas_core::registry;

pub use adapters::Adapters;
pub use builder::{Platform, PlatformBuilder, RouterMap};
pub use run::{run, run_with};
pub use standalone::{InvokerNode, Running};
