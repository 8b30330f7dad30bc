//! Bounded waiting for a condition, for tests of asynchronous behaviour.
//!
//! Every test that waits for something to happen in the background calls one of these instead
//! of a hand-written poll loop, so every wait is bounded and polls the same way. They sleep with
//! Tokio's timer, so under paused time (`#[tokio::test(start_paused = true)]`) a wait costs no
//! real time.

use std::time::Duration;

/// The first pause between two checks; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(1);
/// The longest pause between two checks.
const MAX_POLL: Duration = Duration::from_millis(20);

/// Checks `check` until it holds, for at most `timeout`; `true` if it held. The last check
/// happens at the timeout, so a condition that holds then still counts.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let n = AtomicU32::new(0);
/// let met = faas_core::testkit::eventually(Duration::from_secs(1), || {
///     n.fetch_add(1, Ordering::Relaxed) >= 3
/// })
/// .await;
/// assert!(met);
/// assert!(!faas_core::testkit::eventually(Duration::from_millis(10), || false).await);
/// # });
/// ```
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    eventually_async(timeout, async || check()).await
}

/// As [`eventually`], with a check that awaits (reads a store, calls a server).
pub async fn eventually_async(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    eventually_some(timeout, async || check().await.then_some(()))
        .await
        .is_some()
}

/// Polls `check` until it yields a value, for at most `timeout`; that value, or `None` at the
/// timeout. For waits whose result the test goes on to inspect (the record that appeared, the
/// response that finally came back). Polls as [`eventually`] does.
///
/// ```
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let mut n = 0;
/// let found = faas_core::testkit::eventually_some(Duration::from_secs(1), async || {
///     n += 1;
///     (n >= 3).then_some(n)
/// })
/// .await;
/// assert_eq!(found, Some(3));
/// # });
/// ```
pub async fn eventually_some<T>(
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let end = tokio::time::Instant::now() + timeout;
    let mut pause = FIRST_POLL;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        let now = tokio::time::Instant::now();
        if now >= end {
            return None;
        }
        tokio::time::sleep(pause.min(end - now)).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// As [`eventually_some`], panicking with `what` at the timeout: for tests, where a wait that
/// never ends is a failure.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    check: impl AsyncFnMut() -> Option<T>,
) -> T {
    match eventually_some(timeout, check).await {
        Some(found) => found,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// As [`eventually_async`], panicking with `what` at the timeout.
pub async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    wait_for(what, timeout, async || check().await.then_some(())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bounded_and_checked_at_the_end() {
        let start = tokio::time::Instant::now();
        assert!(!eventually(Duration::from_secs(3), || false).await);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        // A condition that becomes true exactly at the timeout is seen.
        let end = start + Duration::from_secs(5);
        assert!(
            eventually(Duration::from_secs(2), || tokio::time::Instant::now()
                >= end)
            .await
        );
    }
}
