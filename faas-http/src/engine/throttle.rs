//! Per-namespace throttles of invocations ([OpenWhisk's per-namespace limits](https://github.com/apache/openwhisk/blob/master/docs/reference.md#per-namespace-limits)): a rate per wall-clock minute and
//! a number of activations in flight on this controller; and of trigger fires: a rate per
//! wall-clock minute (`firesPerMinute`, OpenWhisk's `triggerRateThrottler`), counted apart
//! from invocations.
//!
//! Both counters of a namespace live in one map entry behind one `std` mutex: admission is a
//! single short critical section (no await inside), cheaper than any async lock. An admitted
//! invocation holds a [`Ticket`]; dropping it (when the activation leaves the books, or when
//! the request fails before dispatch) gives the in-flight slot back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use faas_core::Error;

#[derive(Debug)]
struct Counters {
    key: Arc<str>,
    minute: u64,
    count: u32,
    in_flight: u32,
}

/// The throttle state of one controller.
#[derive(Debug, Default)]
pub(crate) struct Throttles {
    map: Mutex<HashMap<Arc<str>, Counters>>,
    /// Trigger fires per namespace: (minute, count).
    fires: Mutex<HashMap<Arc<str>, (u64, u32)>>,
}

/// This controller's share of a namespace limit when `cluster` controllers enforce it:
/// `ceil(limit × 1.2) / cluster` (at least 1; 0 stays 0) for more than one controller.
pub(crate) fn share(limit: u32, cluster: u32) -> u32 {
    if cluster <= 1 || limit == 0 {
        return limit;
    }
    let scaled = (u64::from(limit) * 12).div_ceil(10);
    ((scaled / u64::from(cluster)) as u32).max(1)
}

/// An admitted invocation's in-flight slot; released on drop.
#[derive(Debug)]
pub(crate) struct Ticket {
    throttles: Arc<Throttles>,
    namespace: Arc<str>,
    /// The namespace's invocations in flight when this one was admitted, itself included.
    in_flight: u32,
}

impl Ticket {
    /// The namespace's invocations in flight at admission, this one included.
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut map = self
            .throttles
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = map.get_mut(&*self.namespace) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
    }
}

impl Throttles {
    /// Counts one invocation of `namespace` in minute `minute` and takes an in-flight slot,
    /// or answers 429 with OpenWhisk's message.
    pub(crate) fn admit(
        self: &Arc<Self>,
        namespace: &str,
        per_minute: u32,
        concurrent: u32,
        minute: u64,
    ) -> Result<Ticket, Error> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(namespace) {
            let key: Arc<str> = Arc::from(namespace);
            map.insert(
                Arc::clone(&key),
                Counters {
                    key,
                    minute,
                    count: 0,
                    in_flight: 0,
                },
            );
        }
        let Some(c) = map.get_mut(namespace) else {
            return Err(Error::internal("throttle entry vanished"));
        };
        if c.minute != minute {
            c.minute = minute;
            c.count = 0;
        }
        c.count = c.count.saturating_add(1);
        if c.count > per_minute {
            return Err(Error::TooManyRequests {
                message: format!(
                    "Too many requests in the last minute (count: {}, allowed: {per_minute}).",
                    c.count
                ),
            });
        }
        if c.in_flight >= concurrent {
            return Err(Error::TooManyRequests {
                message: format!(
                    "Too many concurrent requests in flight (count: {}, allowed: {concurrent}).",
                    c.in_flight
                ),
            });
        }
        c.in_flight += 1;
        Ok(Ticket {
            throttles: Arc::clone(self),
            namespace: Arc::clone(&c.key),
            in_flight: c.in_flight,
        })
    }

    /// Counts one trigger fire of `namespace` in minute `minute`, or answers 429 with
    /// OpenWhisk's message (the same text as for invocations).
    pub(crate) fn admit_fire(
        &self,
        namespace: &str,
        per_minute: u32,
        minute: u64,
    ) -> Result<(), Error> {
        let mut map = self.fires.lock().unwrap_or_else(PoisonError::into_inner);
        let count = match map.get_mut(namespace) {
            Some((m, count)) => {
                if *m != minute {
                    *m = minute;
                    *count = 0;
                }
                *count = count.saturating_add(1);
                *count
            }
            None => {
                map.insert(Arc::from(namespace), (minute, 1));
                1
            }
        };
        if count > per_minute {
            return Err(Error::TooManyRequests {
                message: format!(
                    "Too many requests in the last minute (count: {count}, allowed: {per_minute})."
                ),
            });
        }
        Ok(())
    }

    /// Drops counters of namespaces with nothing in flight and no invocation (or fire) this
    /// minute.
    pub(crate) fn prune(&self, minute: u64) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, c| c.in_flight > 0 || c.minute >= minute);
        drop(map);
        let mut fires = self.fires.lock().unwrap_or_else(PoisonError::into_inner);
        fires.retain(|_, (m, _)| *m >= minute);
    }

    #[cfg(test)]
    fn in_flight(&self, namespace: &str) -> u32 {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(namespace).map_or(0, |c| c.in_flight)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(share(60, 1), 60);
        assert_eq!(share(60, 2), 36);
        assert_eq!(share(1, 3), 1);
        assert_eq!(share(0, 3), 0);
    }

    #[test]
    fn rate_per_minute() {
        let t = Arc::new(Throttles::default());
        let a = t.admit("ns", 2, 10, 7).unwrap();
        let b = t.admit("ns", 2, 10, 7).unwrap();
        let e = t.admit("ns", 2, 10, 7).unwrap_err();
        assert_eq!(e.status(), 429);
        assert_eq!(
            e.to_string(),
            "Too many requests in the last minute (count: 3, allowed: 2)."
        );
        // The next minute starts afresh; other namespaces are independent.
        let c = t.admit("ns", 2, 10, 8).unwrap();
        let d = t.admit("other", 2, 10, 7).unwrap();
        drop((a, b, c, d));
        assert_eq!(t.in_flight("ns"), 0);
    }

    #[test]
    fn concurrency_and_release() {
        let t = Arc::new(Throttles::default());
        let a = t.admit("ns", 100, 1, 1).unwrap();
        let e = t.admit("ns", 100, 1, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Too many concurrent requests in flight (count: 1, allowed: 1)."
        );
        drop(a);
        let _b = t.admit("ns", 100, 1, 1).unwrap();
        assert_eq!(t.in_flight("ns"), 1);
        t.prune(5);
        assert_eq!(t.in_flight("ns"), 1, "entries in flight survive pruning");
        let e = t.admit("blocked", 0, 0, 1).unwrap_err();
        assert_eq!(e.status(), 429);
    }

    #[test]
    fn fires_per_minute_apart_from_invocations() {
        let t = Arc::new(Throttles::default());
        t.admit_fire("ns", 2, 7).unwrap();
        t.admit_fire("ns", 2, 7).unwrap();
        let e = t.admit_fire("ns", 2, 7).unwrap_err();
        assert_eq!(e.status(), 429);
        assert_eq!(
            e.to_string(),
            "Too many requests in the last minute (count: 3, allowed: 2)."
        );
        // Invocations are counted apart; another namespace and the next minute start afresh.
        let _slot = t.admit("ns", 1, 1, 7).unwrap();
        t.admit_fire("other", 2, 7).unwrap();
        t.admit_fire("ns", 2, 8).unwrap();
        // 0 blocks.
        assert_eq!(t.admit_fire("zero", 0, 7).unwrap_err().status(), 429);
        t.prune(9);
        assert!(t.fires.lock().unwrap().is_empty());
    }
}
