//! The executor conformance suite on [`DockerExecutor`] (feature `docker`; needs the engine and
//! the runtime images, else every case skips loudly, or fails with `FAAS_REQUIRE_SERVICES=1`).

#![cfg(feature = "docker")]

mod docker_support;

use std::sync::Arc;

use faas_core::Executor;

async fn setup() -> Option<Arc<dyn Executor>> {
    let e = docker_support::executor("conformance").await?;
    Some(Arc::new(e))
}

faas_core::executor_conformance!(setup);
