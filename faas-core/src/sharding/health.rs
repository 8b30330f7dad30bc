//! The per-invoker outcome ring buffer of OpenWhisk's `InvokerActor`
//! ([`InvokerSupervision.scala`](https://github.com/apache/openwhisk/blob/master/core/controller/src/main/scala/org/apache/openwhisk/core/loadBalancer/InvokerSupervision.scala)).

use crate::scheduler::{InvocationOutcome, InvokerState};

/// How many recent outcomes are kept (`InvokerActor.bufferSize`).
pub(crate) const BUFFER_SIZE: usize = 10;
/// How many errors of one kind are tolerated (`InvokerActor.bufferErrorTolerance`).
pub(crate) const ERROR_TOLERANCE: usize = 3;

/// The last [`BUFFER_SIZE`] outcomes of one invoker.
#[derive(Debug, Clone)]
pub(crate) struct Outcomes {
    buf: [InvocationOutcome; BUFFER_SIZE],
    len: usize,
    next: usize,
}

impl Outcomes {
    /// An empty buffer.
    pub(crate) fn new() -> Self {
        Self {
            buf: [InvocationOutcome::Success; BUFFER_SIZE],
            len: 0,
            next: 0,
        }
    }

    /// Adds an outcome, dropping the oldest when full.
    pub(crate) fn push(&mut self, outcome: InvocationOutcome) {
        self.buf[self.next] = outcome;
        self.next = (self.next + 1) % BUFFER_SIZE;
        self.len = (self.len + 1).min(BUFFER_SIZE);
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
    }

    fn count(&self, outcome: InvocationOutcome) -> usize {
        // While not full the entries are buf[0..len]; when full every entry counts.
        self.buf[..self.len]
            .iter()
            .filter(|o| **o == outcome)
            .count()
    }

    /// The state the buffer calls for: more than [`ERROR_TOLERANCE`] system errors →
    /// `Unhealthy`, else more than that many time-outs → `Unresponsive`, else `Healthy`.
    pub(crate) fn verdict(&self) -> InvokerState {
        if self.count(InvocationOutcome::SystemError) > ERROR_TOLERANCE {
            InvokerState::Unhealthy
        } else if self.count(InvocationOutcome::Timeout) > ERROR_TOLERANCE {
            InvokerState::Unresponsive
        } else {
            InvokerState::Healthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InvocationOutcome::*;

    #[test]
    fn empty_buffer_is_healthy() {
        assert_eq!(Outcomes::new().verdict(), InvokerState::Healthy);
    }

    #[test]
    fn more_than_three_system_errors_is_unhealthy() {
        let mut o = Outcomes::new();
        for _ in 0..3 {
            o.push(SystemError);
        }
        assert_eq!(o.verdict(), InvokerState::Healthy);
        o.push(SystemError);
        assert_eq!(o.verdict(), InvokerState::Unhealthy);
    }

    #[test]
    fn more_than_three_timeouts_is_unresponsive_and_errors_win() {
        let mut o = Outcomes::new();
        for _ in 0..4 {
            o.push(Timeout);
        }
        assert_eq!(o.verdict(), InvokerState::Unresponsive);
        for _ in 0..4 {
            o.push(SystemError);
        }
        assert_eq!(o.verdict(), InvokerState::Unhealthy);
    }

    #[test]
    fn old_outcomes_age_out_after_ten() {
        let mut o = Outcomes::new();
        for _ in 0..4 {
            o.push(SystemError);
        }
        for _ in 0..6 {
            o.push(Success);
        }
        // Still all four errors among the last ten.
        assert_eq!(o.verdict(), InvokerState::Unhealthy);
        o.push(Success);
        assert_eq!(o.verdict(), InvokerState::Healthy);
        o.clear();
        assert_eq!(o.count(Success), 0);
    }
}
