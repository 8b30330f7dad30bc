//! A monotonic clock, injectable so that tests can move it by hand.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A monotonic clock.
///
/// [`ShardingScheduler`](crate::sharding::ShardingScheduler) reads it to decide when an invoker
/// has been silent too long; the container pool and the caches read it for idle times and
/// expiries. The default is [`SystemClock`]; tests use [`ManualClock`] (moved by hand) or
/// [`TokioClock`] (moved by Tokio's paused time).
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real clock: [`Instant::now`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Tokio's clock ([`tokio::time::Instant::now`]): the real time, except in a runtime whose time
/// is paused (`#[tokio::test(start_paused = true)]`), where it moves only as Tokio advances it.
/// A component that sleeps with Tokio and reads this clock then runs its timed behaviour in a
/// test without real waits.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A clock that only moves when told to, for deterministic tests.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use faas_core::time::{Clock, ManualClock};
///
/// let clock = Arc::new(ManualClock::new());
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(clock.now() - t0, Duration::from_secs(10));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Instant>,
}

impl ManualClock {
    /// A clock stopped at the current instant.
    pub fn new() -> Self {
        Self {
            now: Mutex::new(Instant::now()),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        // `checked_add` fails only beyond the platform's Instant range: stay put then.
        if let Some(next) = now.checked_add(by) {
            *now = next;
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::new();
        let t0 = c.now();
        assert_eq!(c.now(), t0);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now() - t0, Duration::from_millis(1500));
    }

    #[test]
    fn system_clock_is_monotonic() {
        let c = SystemClock;
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
    }
}
