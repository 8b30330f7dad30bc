//! The executor conformance suite on [`ProcessExecutor`].

use std::sync::Arc;

use faas_core::Executor;
use faas_exec::process::ProcessExecutor;

/// `None` (the suite skips, loudly) when neither `node` nor `python3` is installed.
async fn setup() -> Option<Arc<dyn Executor>> {
    match ProcessExecutor::detect() {
        Ok(executor) => Some(Arc::new(executor)),
        Err(e) => {
            eprintln!("process executor unavailable: {e}");
            None
        }
    }
}

faas_core::executor_conformance!(setup);
