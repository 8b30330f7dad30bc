//! The kinds the live invokers can run: what `:default` kinds resolve to, which kinds an
//! action may be created with, and what `GET /` lists.
//!
//! OpenWhisk has one runtime manifest per deployment. Here invokers may run different
//! executors (a Docker invoker next to a process one), so each invoker reports its manifest
//! in its pings ([`PingMessage::runtimes`]) and the controller works from the union of what
//! the **live** invokers (those the scheduler does not hold `down`) report
//! ([`RuntimeManifest::merged`]: a family's default is the default most of them can run).
//! A live invoker that reports nothing (an older or foreign one) counts as running the
//! controller's own manifest ([`ControllerConfig::manifest`](crate::ControllerConfig)), and
//! with no live invoker at all that manifest is used alone, so actions can be created while
//! the invokers are away.
//!
//! The union is cached and recomputed when a ping brings a new invoker, a changed manifest or
//! a disabled invoker, and at least every [`REFRESH`] (invokers going `down` are noticed by the scheduler's clock).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use faas_core::RuntimeManifest;
use faas_core::message::PingMessage;
use faas_core::scheduler::{InvokerState, Scheduler};

/// The longest a cached union is used without looking at the invokers' states again.
pub(crate) const REFRESH: Duration = Duration::from_secs(1);

/// What each invoker reported, and the union for the live ones.
#[derive(Debug)]
pub(crate) struct LiveRuntimes {
    fallback: Arc<RuntimeManifest>,
    // std Mutex: short critical sections, never held across an await.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// By instance number: the reported manifest (`None`: the invoker reports none).
    reports: HashMap<u32, Option<RuntimeManifest>>,
    cached: Option<(Arc<RuntimeManifest>, Instant)>,
}

impl LiveRuntimes {
    /// Uses `fallback` for invokers that report nothing, and when no invoker is live.
    pub(crate) fn new(fallback: RuntimeManifest) -> Self {
        Self {
            fallback: Arc::new(fallback),
            state: Mutex::new(State::default()),
        }
    }

    /// Takes the manifest of a ping (call after the scheduler saw it).
    pub(crate) fn on_ping(&self, ping: &PingMessage) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let instance = ping.name.instance;
        if st.reports.get(&instance) != Some(&ping.runtimes) {
            st.reports.insert(instance, ping.runtimes.clone());
            st.cached = None;
        }
        if !ping.is_enabled {
            // It goes `down` now, not at the scheduler's time-out.
            st.cached = None;
        }
    }

    /// The union of what the live invokers can run (see the [module docs](self)).
    pub(crate) fn current(&self, scheduler: &dyn Scheduler) -> Arc<RuntimeManifest> {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((m, at)) = &st.cached
            && now.duration_since(*at) < REFRESH
        {
            return Arc::clone(m);
        }
        // The scheduler's lock is taken inside ours; the scheduler never calls back here.
        let live = scheduler.invokers();
        let manifests = live
            .iter()
            .filter(|h| h.state != InvokerState::Offline)
            .map(|h| match st.reports.get(&h.id.instance) {
                Some(Some(m)) => m,
                _ => self.fallback.as_ref(),
            });
        let merged = match RuntimeManifest::merged(manifests) {
            Some(m) => Arc::new(m),
            None => Arc::clone(&self.fallback),
        };
        st.cached = Some((Arc::clone(&merged), now));
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::RuntimeSpec;
    use faas_core::message::InvokerInstanceId;
    use faas_core::sharding::ShardingScheduler;

    fn manifest(kinds: &[&str]) -> RuntimeManifest {
        let mut m = RuntimeManifest::new();
        for k in kinds {
            m.add(RuntimeSpec::new(*k, true));
        }
        m
    }

    fn ping(s: &ShardingScheduler, r: &LiveRuntimes, p: PingMessage) {
        s.on_ping(&p);
        r.on_ping(&p);
    }

    #[test]
    fn union_of_live_reports_with_the_fallback_for_silent_invokers() {
        let s = ShardingScheduler::new();
        let r = LiveRuntimes::new(manifest(&["nodejs:18"]));
        // No invoker: the controller's own manifest.
        assert_eq!(
            r.current(&s).resolve("nodejs:default").unwrap().kind,
            "nodejs:18"
        );

        // One process invoker that runs nodejs:20 only: it decides.
        ping(
            &s,
            &r,
            PingMessage::new(InvokerInstanceId::new(0, 1024))
                .with_runtimes(manifest(&["nodejs:20"])),
        );
        let m = r.current(&s);
        assert_eq!(m.resolve("nodejs:default").unwrap().kind, "nodejs:20");
        assert!(m.resolve("nodejs:18").is_err(), "no live invoker runs it");

        // An invoker that reports nothing counts as running the fallback.
        ping(&s, &r, PingMessage::new(InvokerInstanceId::new(1, 1024)));
        let m = r.current(&s);
        assert!(m.resolve("nodejs:18").is_ok());
        assert!(m.resolve("nodejs:20").is_ok());

        // Both leave: the fallback again.
        for i in 0..2 {
            ping(
                &s,
                &r,
                PingMessage::new(InvokerInstanceId::new(i, 1024)).enabled(false),
            );
        }
        let m = r.current(&s);
        assert_eq!(m.resolve("nodejs:default").unwrap().kind, "nodejs:18");
        assert!(m.resolve("nodejs:20").is_err());
    }
}
