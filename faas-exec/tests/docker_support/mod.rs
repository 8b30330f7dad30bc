//! Shared setup of the Docker tests: an executor on the local engine, or `None` (the test then
//! skips loudly through `faas_core::testkit::skip`, which fails when `FAAS_REQUIRE_SERVICES=1`).
//!
//! The tests run when the engine answers and runtime images exist (`scripts/services/docker.sh
//! start images`); `FAAS_TEST_DOCKER=0` skips them even then. Every executor gets its own
//! invoker id, so tests running at once never touch each other's containers.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part; tests may unwrap

use std::sync::atomic::{AtomicU32, Ordering};

use faas_exec::docker::{DockerExecutor, DockerExecutorBuilder};

/// A fresh invoker id for this process and call (`t<pid>x<n>`).
pub fn invoker_id(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "test-{tag}-{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether the Docker tests are switched off (`FAAS_TEST_DOCKER=0`).
fn disabled() -> bool {
    std::env::var("FAAS_TEST_DOCKER").is_ok_and(|v| v == "0" || v == "false")
}

/// Builds `builder` (a test invoker id is set first) or explains why not.
pub async fn executor_with(
    tag: &str,
    builder: impl FnOnce(DockerExecutorBuilder) -> DockerExecutorBuilder,
) -> Option<DockerExecutor> {
    if disabled() {
        eprintln!("FAAS_TEST_DOCKER=0: Docker tests switched off");
        return None;
    }
    let b = builder(DockerExecutor::builder().with_invoker_id(invoker_id(tag)));
    match b.build().await {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!(
                "Docker executor unavailable ({e}); start it with scripts/services/docker.sh start && scripts/services/docker.sh images"
            );
            None
        }
    }
}

/// Removes every container labelled with its invoker id when dropped during a panic, so that a
/// failing test leaves nothing running behind (the pool's own cleanup never ran).
#[derive(Debug)]
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let invoker = self.0.clone();
        // A thread of its own: the test's runtime may be unusable while it unwinds.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let d = DockerExecutor::builder()
                    .with_invoker_id(invoker)
                    .build()
                    .await;
                if let Ok(d) = d {
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(30),
                        d.remove_orphans(),
                    )
                    .await;
                }
            });
        });
        let _ = done.join();
    }
}

/// The default test executor.
pub async fn executor(tag: &str) -> Option<DockerExecutor> {
    executor_with(tag, |b| b).await
}

/// `let x = require!(option, "what");`: the value, or a loud skip (a failure with
/// `FAAS_REQUIRE_SERVICES=1`) and `return` when `None`.
#[macro_export]
macro_rules! require {
    ($e:expr, $what:expr) => {
        match $e {
            Some(v) => v,
            None => {
                faas_core::testkit::skip($what);
                return;
            }
        }
    };
}
