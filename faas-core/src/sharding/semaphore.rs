//! OpenWhisk's memory slots per invoker: `ForcibleSemaphore` with the `NestedSemaphore`
//! extension for intra-container concurrency (`COMMON/common/NestedSemaphore.scala`).

use std::collections::HashMap;

use crate::names::FullyQualifiedName;

/// Free activation sub-slots of one action at one concurrency level.
#[derive(Debug, Clone, Copy)]
struct SubSlots {
    /// The action's `maxConcurrent` (the size of one container slot), ≥ 2.
    max_concurrent: u32,
    /// Sub-slots free in the container slots already paid for.
    free: u32,
}

/// Memory permits (MB) of one invoker, as one controller sees them.
///
/// * `max_concurrent <= 1`: an activation takes `memory` permits (`ForcibleSemaphore`).
/// * `max_concurrent = c > 1`: the first activation of a container slot takes `memory` permits
///   and opens `c - 1` sub-slots for the same action; later activations take a sub-slot for free.
///   Releasing returns the sub-slot; when a whole slot's worth of sub-slots is free again, the
///   memory is returned (`ResizableSemaphore.release(1, tryReduce = true)`).
///
/// Sub-slots are kept per action *and* concurrency level, so that a release always undoes its
/// own acquire even if the action's concurrency changed while activations were in flight
/// (OpenWhisk keys them by action only).
#[derive(Debug)]
pub(crate) struct NestedSemaphore {
    /// The number of permits when nothing is reserved.
    capacity: i64,
    /// Permits left; negative after forced acquisitions.
    available: i64,
    /// Sub-slots per action. Almost always one entry per action, so a `Vec` is the cheapest.
    concurrent: HashMap<FullyQualifiedName, Vec<SubSlots>>,
}

/// Memory in MB as permits, bounded so that sums cannot overflow in practice.
pub(crate) fn permits(memory_mb: u64) -> i64 {
    i64::from(u32::try_from(memory_mb).unwrap_or(u32::MAX))
}

impl NestedSemaphore {
    /// A semaphore with `capacity` permits, all free.
    pub(crate) fn new(capacity: i64) -> Self {
        Self {
            capacity,
            available: capacity,
            concurrent: HashMap::new(),
        }
    }

    /// Permits when nothing is reserved.
    pub(crate) fn capacity(&self) -> i64 {
        self.capacity
    }

    /// Permits left (negative when overloaded).
    pub(crate) fn available(&self) -> i64 {
        self.available
    }

    /// Changes the capacity, keeping what is reserved reserved.
    pub(crate) fn set_capacity(&mut self, capacity: i64) {
        self.available = self
            .available
            .saturating_add(capacity.saturating_sub(self.capacity));
        self.capacity = capacity;
    }

    /// Takes permits for one activation if there are enough; `tryAcquireConcurrent`.
    pub(crate) fn try_acquire(
        &mut self,
        action: &FullyQualifiedName,
        max_concurrent: u32,
        memory: i64,
    ) -> bool {
        if max_concurrent <= 1 {
            self.try_acquire_memory(memory)
        } else {
            self.acquire_concurrent(action, max_concurrent, memory, false)
        }
    }

    /// Takes permits for one activation even if that leaves the count negative;
    /// `forceAcquireConcurrent`.
    pub(crate) fn force_acquire(
        &mut self,
        action: &FullyQualifiedName,
        max_concurrent: u32,
        memory: i64,
    ) {
        if max_concurrent <= 1 {
            self.available = self.available.saturating_sub(memory);
        } else {
            self.acquire_concurrent(action, max_concurrent, memory, true);
        }
    }

    /// Returns what one acquire of the same arguments took; `releaseConcurrent`.
    pub(crate) fn release(
        &mut self,
        action: &FullyQualifiedName,
        max_concurrent: u32,
        memory: i64,
    ) {
        if max_concurrent <= 1 {
            self.available = self.available.saturating_add(memory);
            return;
        }
        let Some(slots) = self.slots_of(action) else {
            return;
        };
        let pos = match slots
            .iter()
            .position(|s| s.max_concurrent == max_concurrent)
        {
            Some(pos) => pos,
            None => {
                slots.push(SubSlots {
                    max_concurrent,
                    free: 0,
                });
                slots.len() - 1
            }
        };
        let sub = &mut slots[pos];
        sub.free = sub.free.saturating_add(1);
        let reduced = sub.free % max_concurrent == 0;
        if reduced {
            sub.free -= max_concurrent;
        }
        if sub.free == 0 {
            slots.swap_remove(pos);
            if slots.is_empty() {
                self.concurrent.remove(action);
            }
        }
        if reduced {
            self.available = self.available.saturating_add(memory);
        }
    }

    /// The sub-slot list of `action`, created if missing (cloning the name only then).
    fn slots_of(&mut self, action: &FullyQualifiedName) -> Option<&mut Vec<SubSlots>> {
        if !self.concurrent.contains_key(action) {
            self.concurrent.insert(action.clone(), Vec::new());
        }
        self.concurrent.get_mut(action)
    }

    fn try_acquire_memory(&mut self, memory: i64) -> bool {
        if self.available >= memory {
            self.available -= memory;
            true
        } else {
            false
        }
    }

    fn acquire_concurrent(
        &mut self,
        action: &FullyQualifiedName,
        max_concurrent: u32,
        memory: i64,
        force: bool,
    ) -> bool {
        // A free sub-slot in a container slot already paid for costs nothing.
        if let Some(sub) = self.concurrent.get_mut(action).and_then(|slots| {
            slots
                .iter_mut()
                .find(|s| s.max_concurrent == max_concurrent)
        }) && sub.free > 0
        {
            sub.free -= 1;
            return true;
        }
        // Else pay for a new container slot; this activation takes one of its sub-slots.
        if force {
            self.available = self.available.saturating_sub(memory);
        } else if !self.try_acquire_memory(memory) {
            return false;
        }
        let opened = max_concurrent - 1;
        let Some(slots) = self.slots_of(action) else {
            return true;
        };
        match slots
            .iter_mut()
            .find(|s| s.max_concurrent == max_concurrent)
        {
            Some(sub) => sub.free = sub.free.saturating_add(opened),
            None => slots.push(SubSlots {
                max_concurrent,
                free: opened,
            }),
        }
        true
    }

    /// Whether no sub-slot book-keeping is left (for tests).
    #[cfg(test)]
    pub(crate) fn no_sub_slots(&self) -> bool {
        self.concurrent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fqn(s: &str) -> FullyQualifiedName {
        FullyQualifiedName::resolve(s, "guest").unwrap()
    }

    #[test]
    fn single_concurrency_takes_memory_each_time() {
        let a = fqn("/guest/a");
        let mut s = NestedSemaphore::new(512);
        assert!(s.try_acquire(&a, 1, 256));
        assert!(s.try_acquire(&a, 1, 256));
        assert!(!s.try_acquire(&a, 1, 256));
        assert_eq!(s.available(), 0);
        s.force_acquire(&a, 1, 256);
        assert_eq!(s.available(), -256);
        for _ in 0..3 {
            s.release(&a, 1, 256);
        }
        assert_eq!(s.available(), 512);
    }

    #[test]
    fn nested_first_activation_pays_then_sub_slots_are_free() {
        let a = fqn("/guest/a");
        let mut s = NestedSemaphore::new(512);
        // maxConcurrent 3: one container slot serves three activations.
        assert!(s.try_acquire(&a, 3, 256));
        assert_eq!(s.available(), 256);
        assert!(s.try_acquire(&a, 3, 256));
        assert!(s.try_acquire(&a, 3, 256));
        assert_eq!(s.available(), 256);
        // The fourth opens a second container slot.
        assert!(s.try_acquire(&a, 3, 256));
        assert_eq!(s.available(), 0);
        // 7th would need a third slot: no memory left.
        assert!(s.try_acquire(&a, 3, 256));
        assert!(s.try_acquire(&a, 3, 256));
        assert!(!s.try_acquire(&a, 3, 256));
        assert_eq!(s.available(), 0);
        // Releasing 3 of the 6 frees one slot's memory, exactly on the third release.
        s.release(&a, 3, 256);
        s.release(&a, 3, 256);
        assert_eq!(s.available(), 0);
        s.release(&a, 3, 256);
        assert_eq!(s.available(), 256);
        s.release(&a, 3, 256);
        s.release(&a, 3, 256);
        assert_eq!(s.available(), 256);
        s.release(&a, 3, 256);
        assert_eq!(s.available(), 512);
        assert!(s.no_sub_slots());
    }

    #[test]
    fn nested_actions_do_not_share_sub_slots() {
        let a = fqn("/guest/a");
        let b = fqn("/guest/b");
        let mut s = NestedSemaphore::new(1024);
        assert!(s.try_acquire(&a, 4, 256));
        assert!(s.try_acquire(&b, 4, 256));
        assert_eq!(s.available(), 512);
        // Same action, another concurrency level: its own slots.
        assert!(s.try_acquire(&a, 2, 256));
        assert_eq!(s.available(), 256);
        s.release(&a, 2, 256);
        s.release(&b, 4, 256);
        s.release(&a, 4, 256);
        assert_eq!(s.available(), 1024);
        assert!(s.no_sub_slots());
    }

    #[test]
    fn nested_force_acquire_goes_negative_and_release_mirrors() {
        let a = fqn("/guest/a");
        let mut s = NestedSemaphore::new(128);
        s.force_acquire(&a, 2, 256);
        assert_eq!(s.available(), -128);
        // The second activation uses the forced slot's free sub-slot.
        s.force_acquire(&a, 2, 256);
        assert_eq!(s.available(), -128);
        s.release(&a, 2, 256);
        s.release(&a, 2, 256);
        assert_eq!(s.available(), 128);
        assert!(s.no_sub_slots());
    }

    #[test]
    fn capacity_change_keeps_reservations() {
        let a = fqn("/guest/a");
        let mut s = NestedSemaphore::new(1024);
        assert!(s.try_acquire(&a, 1, 256));
        s.set_capacity(512);
        assert_eq!(s.capacity(), 512);
        assert_eq!(s.available(), 256);
        s.release(&a, 1, 256);
        assert_eq!(s.available(), 512);
    }

    #[test]
    fn permits_are_bounded() {
        assert_eq!(permits(256), 256);
        assert_eq!(permits(u64::MAX), i64::from(u32::MAX));
    }
}
