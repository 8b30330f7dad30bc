//! The faas reference platform, as a library: configuration, the adapter registry and the
//! standalone assembly used by the `faas-platform` binary, its tests and its benchmarks.

pub mod config;
pub mod registry;
pub mod standalone;
