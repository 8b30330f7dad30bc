//! The faas reference platform, as a library: configuration, the adapter registry, the
//! standalone assembly and the operator CLI used by the `faas-platform` binary, its tests and
//! its benchmarks.

pub mod admin;
pub mod config;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod registry;
pub mod standalone;
