//! Conformance suites, one per trait. **Not API-stable; the cases create and delete data.**
//!
//! Each suite is a set of `pub async fn` cases taking the adapter, plus a macro that expands
//! to one `#[tokio::test]` per case. An adapter crate calls, in a test module:
//!
//! ```text
//! async fn setup() -> Option<std::sync::Arc<dyn faas_core::Store>> {
//!     Some(std::sync::Arc::new(MyStore::new()))   // None skips (service not configured)
//! }
//! faas_core::store_conformance!(setup);
//! ```
//!
//! Setups that return `None` print why and the test returns early; set `FAAS_REQUIRE_SERVICES=1`
//! (the project's test script does) to turn such skips into failures.
//!
//! For tests of asynchronous behaviour, [`eventually`] and [`eventually_async`] wait, bounded,
//! for a condition, and [`eventually_some`] for a value; [`wait_until`] and [`wait_for`] are the
//! same waits that panic, naming what they waited for, at the timeout. [`fixtures`] holds small
//! values many tests build (a minimal activation record).

pub mod auth;
pub mod bus;
pub mod executor;
pub mod fixtures;
pub mod scheduler;
pub mod store;
mod wait;

pub use wait::{eventually, eventually_async, eventually_some, wait_for, wait_until};

/// Whether service-backed tests must not skip (`FAAS_REQUIRE_SERVICES=1`).
pub fn services_required() -> bool {
    std::env::var("FAAS_REQUIRE_SERVICES").is_ok_and(|v| v == "1" || v == "true")
}

/// Call when a setup cannot reach its service: panics if services are required, else prints
/// a loud skip message.
pub fn skip(what: &str) {
    assert!(
        !services_required(),
        "{what}: service not available but FAAS_REQUIRE_SERVICES=1"
    );
    eprintln!("SKIPPED (service not configured): {what}");
}
