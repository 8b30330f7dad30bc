//! The background reaper: every tick it runs `State::reap` (idle timeout, pause grace,
//! reactive stem cells) and pauses the containers it took out, outside the lock.

use std::sync::Weak;
use std::time::Duration;

use super::{Inner, lock};

/// Runs until the pool is dropped or shut down.
pub(super) async fn reaper_loop(weak: Weak<Inner>) {
    let tick = {
        let Some(inner) = weak.upgrade() else { return };
        tick(&inner.config)
    };
    loop {
        tokio::time::sleep(tick).await;
        let Some(inner) = weak.upgrade() else { return };
        let (fx, to_pause) = {
            let mut st = lock(&inner);
            if st.shutdown {
                return;
            }
            let now = st.clock.now();
            st.reap(&inner.config, now)
        };
        inner.apply(fx);
        for (key, idle) in to_pause {
            let ok = match idle.container.pause().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(container = idle.container.id(), error = %e, "pausing failed; destroying");
                    false
                }
            };
            let fx = lock(&inner).paused(&inner.config, key, idle, ok);
            inner.apply(fx);
        }
    }
}

/// A quarter of the shortest period the reaper serves, within 10 ms ..= 1 s.
fn tick(cfg: &super::PoolConfig) -> Duration {
    let mut base = match cfg.pause_grace {
        Some(g) => g.min(cfg.idle_timeout),
        None => cfg.idle_timeout,
    };
    for r in cfg.stem_cells.iter().filter_map(|c| c.reactive) {
        base = base.min(r.ttl).min(cfg.prewarm_scale_interval);
    }
    (base / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}
