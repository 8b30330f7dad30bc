//! Liveness and readiness of a controller, for load balancers and orchestrators
//! (`GET /health`, `GET /ready`).
//!
//! Ready means: the engine is started and not shutting down, its bus consumers
//! (acknowledgements, health, fires, compositions) are running, the store answers a read
//! within [`STORE_PROBE_TIMEOUT`] (a missing document is an answer), and the scheduler has
//! at least one healthy invoker.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Duration;

use faas_core::scheduler::InvokerState;
use faas_core::{Chain, Error};
use serde::Serialize;

use super::Engine;

/// The longest a readiness probe waits for the store.
pub const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The document the store probe reads (it need not exist).
const PROBE: (&str, &str) = ("readiness", "probe");

/// The answer of a readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Readiness {
    /// Whether every check passed.
    pub ready: bool,
    /// `ok`, or why the store is not usable.
    pub store: String,
    /// `ok`, `not started`, or `stopped` (a consumer ended).
    pub bus: String,
    /// `h/n healthy`.
    pub invokers: String,
    /// `running`, `draining` or `closed`.
    pub engine: &'static str,
}

impl Engine {
    /// Checks whether this controller can take work (see the [module docs](self)).
    pub async fn readiness(&self) -> Readiness {
        let s = &self.inner;
        let engine = if s.closed.load(Ordering::Relaxed) {
            "closed"
        } else if s.draining.load(Ordering::Relaxed) {
            "draining"
        } else {
            "running"
        };
        let bus = if !s.started.load(Ordering::Relaxed) {
            "not started"
        } else if s
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|t| t.is_finished())
        {
            "stopped"
        } else {
            "ok"
        };
        let store =
            match tokio::time::timeout(STORE_PROBE_TIMEOUT, s.store.get_document(PROBE.0, PROBE.1))
                .await
            {
                Ok(Ok(_) | Err(Error::NotFound { .. })) => "ok".to_string(),
                Ok(Err(e)) => format!("unavailable: {}", Chain(&e)),
                Err(_) => format!("no answer within {} s", STORE_PROBE_TIMEOUT.as_secs()),
            };
        let all = s.scheduler.invokers();
        let healthy = all
            .iter()
            .filter(|h| h.state == InvokerState::Healthy)
            .count();
        Readiness {
            ready: engine == "running" && bus == "ok" && store == "ok" && healthy > 0,
            store,
            bus: bus.to_string(),
            invokers: format!("{healthy}/{} healthy", all.len()),
            engine,
        }
    }
}
