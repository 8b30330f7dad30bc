//! The scheduler conformance suite.
//!
//! Every case takes a **fresh** scheduler with no invokers, registers its own with
//! [`on_ping`](crate::Scheduler::on_ping) ([`INVOKERS`] invokers of [`MEMORY_MB`] MB unless it says
//! otherwise) and checks the [`Scheduler`](crate::Scheduler) contract as OpenWhisk behaves:
//!
//! * no usable invoker → `Unavailable` (HTTP 503);
//! * pinged invokers are usable at once and `schedule` only returns pinged invokers;
//! * memory is respected: while some invoker has room, no invoker is given more than its
//!   memory (one controller: a scheduler that shares invokers among controllers must be set
//!   up for a cluster of one);
//! * every `release` returns exactly what its `schedule` took, also for
//!   `max_concurrent > 1`;
//! * a ping with `isEnabled: false` makes the invoker `down` and unused, an enabled ping
//!   brings it back;
//! * of the last 10 outcomes, more than 3 system errors → `unhealthy`, more than 3 time-outs
//!   → `unresponsive`, and such invokers are not chosen;
//! * [`invokers`](crate::Scheduler::invokers) lists every invoker by instance number;
//! * invokers that report their kinds get only those kinds; a kind no usable invoker can run
//!   is `Unavailable`.
//!
//! Use it from a test module of the adapter's crate (with `faas-core`'s `testkit` feature;
//! no async runtime is needed, the macro brings one):
//!
//! ```text
//! async fn setup() -> Option<std::sync::Arc<dyn faas_core::Scheduler>> {
//!     Some(std::sync::Arc::new(MyScheduler::new()))   // None skips
//! }
//! faas_core::scheduler_conformance!(setup);
//! ```

use std::future::Future;

use crate::message::{InvokerInstanceId, PingMessage};
use crate::names::FullyQualifiedName;
use crate::runtimes::{RuntimeManifest, RuntimeSpec};
use crate::scheduler::{DynScheduler, InvocationOutcome, InvokerState, ScheduleRequest};

/// How many invokers most cases register.
pub const INVOKERS: u32 = 2;
/// How many invokers the capacity cases register (more invokers make a scheduler that
/// ignores capacity, and so places at random, all but certain to fail).
pub const CAPACITY_INVOKERS: u32 = 4;
/// The memory of each, MB.
pub const MEMORY_MB: u64 = 1024;
/// The memory of the activations used to fill invokers, MB (a divisor of [`MEMORY_MB`]).
const FILL_MB: u64 = 128;

/// Runs a future to completion on a fresh current-thread runtime (used by
/// [`scheduler_conformance!`](crate::scheduler_conformance)).
pub fn block_on<F: Future>(future: F) -> F::Output {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(future),
        Err(e) => panic!("cannot build a tokio runtime: {e}"),
    }
}

fn action(name: &str) -> FullyQualifiedName {
    match FullyQualifiedName::resolve(name, "guest") {
        Ok(fqn) => fqn,
        Err(e) => panic!("bad test action name {name}: {e}"),
    }
}

fn ping(s: &DynScheduler, instance: u32, enabled: bool) {
    s.on_ping(&PingMessage::new(InvokerInstanceId::new(instance, MEMORY_MB)).enabled(enabled));
}

fn register(s: &DynScheduler, invokers: u32) {
    for i in 0..invokers {
        ping(s, i, true);
    }
}

fn request<'a>(
    namespace: &'a str,
    action: &'a FullyQualifiedName,
    memory_mb: u64,
    max_concurrent: u32,
) -> ScheduleRequest<'a> {
    ScheduleRequest {
        namespace,
        action,
        memory_mb,
        max_concurrent,
        blackbox: false,
        kind: None,
    }
}

fn schedule_ok(s: &DynScheduler, req: &ScheduleRequest<'_>, invokers: u32) -> InvokerInstanceId {
    match s.schedule(req) {
        Ok(inv) => {
            assert!(
                inv.instance < invokers,
                "scheduled on invoker{} that never pinged",
                inv.instance
            );
            inv
        }
        Err(e) => panic!("schedule {} failed: {e}", req.action),
    }
}

fn state_of(s: &DynScheduler, instance: u32) -> InvokerState {
    match s.invokers().iter().find(|h| h.id.instance == instance) {
        Some(h) => h.state,
        None => panic!("invoker{instance} missing from invokers()"),
    }
}

/// Fills each of `invokers` invokers with `FILL_MB` activations (most of one action, so
/// that its home fills and the scheduler must move on), asserting at each step that no
/// invoker holds more than its memory while others have room and, at the end, that each is
/// exactly full. Returns the reservations.
fn fill(
    s: &DynScheduler,
    invokers: u32,
    tag: &str,
) -> Vec<(InvokerInstanceId, FullyQualifiedName)> {
    let per_invoker = (MEMORY_MB / FILL_MB) as usize;
    let total = per_invoker * invokers as usize;
    let mut used = vec![0u64; invokers as usize];
    let mut held = Vec::with_capacity(total);
    for i in 0..total {
        let name = if i % 4 != 0 {
            format!("/guest/{tag}-same")
        } else {
            format!("/guest/{tag}-{i}")
        };
        let a = action(&name);
        let inv = schedule_ok(s, &request("guest", &a, FILL_MB, 1), invokers);
        used[inv.instance as usize] += FILL_MB;
        assert!(
            used[inv.instance as usize] <= MEMORY_MB,
            "request {i}: invoker{} given {} MB of {MEMORY_MB} MB while another had room \
             (used: {used:?})",
            inv.instance,
            used[inv.instance as usize]
        );
        held.push((inv, a));
    }
    assert!(
        used.iter().all(|&u| u == MEMORY_MB),
        "not all invokers full: {used:?}"
    );
    held
}

fn release_all(s: &DynScheduler, held: Vec<(InvokerInstanceId, FullyQualifiedName)>) {
    for (inv, a) in held {
        s.release(&inv, FILL_MB, 1, &a);
    }
}

/// Without invokers, `schedule` fails with `Unavailable` (503) and `invokers()` is empty.
pub async fn no_invokers_is_unavailable(s: &DynScheduler) {
    let a = action("/guest/hello");
    let err = match s.schedule(&request("guest", &a, 256, 1)) {
        Ok(inv) => panic!("scheduled on {} without invokers", inv.instance),
        Err(e) => e,
    };
    assert_eq!(err.status(), 503, "{err}");
    let mut blackbox = request("guest", &a, 256, 1);
    blackbox.blackbox = true;
    match s.schedule(&blackbox) {
        Ok(inv) => panic!("scheduled blackbox on {} without invokers", inv.instance),
        Err(e) => assert_eq!(e.status(), 503, "{e}"),
    }
    assert!(s.invokers().is_empty());
}

/// After pings, `schedule` returns one of the pinged invokers, which are `up`.
pub async fn schedules_a_pinged_invoker(s: &DynScheduler) {
    register(s, INVOKERS);
    let all = s.invokers();
    assert_eq!(all.len(), INVOKERS as usize, "{all:?}");
    for h in &all {
        assert_eq!(h.state.as_str(), "up", "{h:?}");
    }
    for i in 0..20 {
        let a = action(&format!("/ns{}/pkg/action{i}", i % 3));
        let caller = if i % 2 == 0 { "guest" } else { "other" };
        let inv = schedule_ok(s, &request(caller, &a, 128, 1), INVOKERS);
        s.release(&inv, 128, 1, &a);
        let mut blackbox = request(caller, &a, 128, 1);
        blackbox.blackbox = true;
        let inv = schedule_ok(s, &blackbox, INVOKERS);
        s.release(&inv, 128, 1, &a);
    }
}

/// Memory is respected until every invoker is full; beyond that (overload) `schedule`
/// still places on a pinged invoker.
pub async fn capacity_is_respected_until_overload(s: &DynScheduler) {
    register(s, CAPACITY_INVOKERS);
    let held = fill(s, CAPACITY_INVOKERS, "cap");
    let extra = action("/guest/cap-extra");
    let inv = schedule_ok(s, &request("guest", &extra, FILL_MB, 1), CAPACITY_INVOKERS);
    s.release(&inv, FILL_MB, 1, &extra);
    release_all(s, held);
}

/// 1000 schedule/release rounds (interleaved, several actions, sizes and concurrencies)
/// leave every invoker's capacity as it was.
pub async fn release_restores_capacity(s: &DynScheduler) {
    register(s, CAPACITY_INVOKERS);
    let before = fill(s, CAPACITY_INVOKERS, "before");
    release_all(s, before);

    let actions: Vec<FullyQualifiedName> = (0..6)
        .map(|i| action(&format!("/guest/churn{i}")))
        .collect();
    let mut held: std::collections::VecDeque<(InvokerInstanceId, usize, u64, u32)> =
        std::collections::VecDeque::new();
    for round in 0..1000usize {
        let a = round * 7 % actions.len();
        let memory = 128 * (1 + (round % 3) as u64);
        let concurrency = [1, 1, 3, 5][round % 4];
        let inv = schedule_ok(
            s,
            &request("guest", &actions[a], memory, concurrency),
            CAPACITY_INVOKERS,
        );
        held.push_back((inv, a, memory, concurrency));
        // Keep up to four in flight and release out of order.
        if held.len() > 4 {
            let idx = round % held.len();
            if let Some((inv, a, memory, concurrency)) = held.remove(idx) {
                s.release(&inv, memory, concurrency, &actions[a]);
            }
        }
    }
    for (inv, a, memory, concurrency) in held {
        s.release(&inv, memory, concurrency, &actions[a]);
    }

    // Exactly as much room as before (twice, so that a scheduler that lost track and places
    // at random cannot pass by luck).
    for round in 0..2 {
        let after = fill(s, CAPACITY_INVOKERS, &format!("after{round}"));
        release_all(s, after);
    }
}

/// A disabled invoker (`isEnabled: false`) is `down` and unused; an enabled ping revives it.
pub async fn disabled_invoker_is_down_and_unused(s: &DynScheduler) {
    register(s, INVOKERS);
    ping(s, 0, false);
    assert_eq!(state_of(s, 0), InvokerState::Offline);
    assert_eq!(state_of(s, 0).as_str(), "down");
    assert_eq!(state_of(s, 1).as_str(), "up");
    let mut held = Vec::new();
    // More than invoker1 can take: the overflow must still not go to the disabled one.
    for i in 0..(2 * MEMORY_MB / FILL_MB) {
        let a = action(&format!("/guest/disabled{i}"));
        let inv = schedule_ok(s, &request("guest", &a, FILL_MB, 1), INVOKERS);
        assert_eq!(inv.instance, 1, "request {i} went to the disabled invoker");
        held.push((inv, a));
    }
    ping(s, 0, true);
    assert_eq!(state_of(s, 0).as_str(), "up");
    // invoker1 is over its memory: the next must use the revived invoker0.
    let a = action("/guest/revived");
    let inv = schedule_ok(s, &request("guest", &a, FILL_MB, 1), INVOKERS);
    assert_eq!(inv.instance, 0);
    held.push((inv, a));
    release_all(s, held);
}

fn outcomes(s: &DynScheduler, instance: u32, outcome: InvocationOutcome, n: usize) {
    let id = InvokerInstanceId::new(instance, MEMORY_MB);
    for _ in 0..n {
        s.on_outcome(&id, outcome);
    }
}

fn assert_all_on(s: &DynScheduler, instance: u32, tag: &str) {
    let mut held = Vec::new();
    for i in 0..(MEMORY_MB / FILL_MB + 2) {
        let a = action(&format!("/guest/{tag}{i}"));
        let inv = schedule_ok(s, &request("guest", &a, FILL_MB, 1), INVOKERS);
        assert_eq!(inv.instance, instance, "request {i}");
        held.push((inv, a));
    }
    release_all(s, held);
}

/// Four system errors among the last ten make an invoker `unhealthy`; three do not.
pub async fn system_errors_make_unhealthy(s: &DynScheduler) {
    register(s, INVOKERS);
    outcomes(s, 0, InvocationOutcome::SystemError, 3);
    assert_eq!(state_of(s, 0).as_str(), "up");
    outcomes(s, 0, InvocationOutcome::SystemError, 1);
    assert_eq!(state_of(s, 0), InvokerState::Unhealthy);
    assert_eq!(state_of(s, 0).as_str(), "unhealthy");
    assert_eq!(state_of(s, 1).as_str(), "up");
    assert_all_on(s, 1, "unhealthy");
}

/// Four time-outs among the last ten make an invoker `unresponsive`.
pub async fn timeouts_make_unresponsive(s: &DynScheduler) {
    register(s, INVOKERS);
    outcomes(s, 1, InvocationOutcome::Timeout, 3);
    assert_eq!(state_of(s, 1).as_str(), "up");
    outcomes(s, 1, InvocationOutcome::Timeout, 1);
    assert_eq!(state_of(s, 1), InvokerState::Unresponsive);
    assert_eq!(state_of(s, 1).as_str(), "unresponsive");
    assert_all_on(s, 0, "unresponsive");
}

/// Only the last ten outcomes count: errors age out as successes arrive.
pub async fn errors_age_out_of_the_last_ten(s: &DynScheduler) {
    register(s, INVOKERS);
    outcomes(s, 0, InvocationOutcome::SystemError, 4);
    outcomes(s, 0, InvocationOutcome::Success, 6);
    assert_eq!(
        state_of(s, 0).as_str(),
        "unhealthy",
        "4 errors in the last 10"
    );
    outcomes(s, 0, InvocationOutcome::Success, 1);
    assert_eq!(state_of(s, 0).as_str(), "up", "3 errors in the last 10");
}

/// With no usable invoker left, `schedule` fails with 503 and reserves nothing.
pub async fn unavailable_when_none_usable(s: &DynScheduler) {
    register(s, INVOKERS);
    for i in 0..INVOKERS {
        outcomes(s, i, InvocationOutcome::SystemError, 4);
    }
    let a = action("/guest/none");
    match s.schedule(&request("guest", &a, FILL_MB, 1)) {
        Ok(inv) => panic!("scheduled on unhealthy invoker{}", inv.instance),
        Err(e) => assert_eq!(e.status(), 503, "{e}"),
    }
    // Healthy again (errors aged out): the full capacity is there.
    for i in 0..INVOKERS {
        outcomes(s, i, InvocationOutcome::Success, 10);
    }
    let held = fill(s, INVOKERS, "none");
    release_all(s, held);
}

/// `invokers()` is sorted by instance number, even when invokers ping out of order or
/// leave gaps, and gaps are never used.
pub async fn invokers_are_listed_by_instance(s: &DynScheduler) {
    ping(s, 2, true);
    ping(s, 0, true);
    let all = s.invokers();
    assert!(
        all.windows(2).all(|w| w[0].id.instance < w[1].id.instance),
        "not sorted: {all:?}"
    );
    for h in &all {
        match h.id.instance {
            0 | 2 => assert_eq!(h.state.as_str(), "up", "{h:?}"),
            _ => assert!(!h.state.is_usable(), "never pinged but usable: {h:?}"),
        }
    }
    assert!(all.iter().any(|h| h.id.instance == 0));
    assert!(all.iter().any(|h| h.id.instance == 2));
    for i in 0..30 {
        let a = action(&format!("/guest/gap{i}"));
        let inv = match s.schedule(&request("guest", &a, 128, 1)) {
            Ok(inv) => inv,
            Err(e) => panic!("schedule failed: {e}"),
        };
        assert!(
            inv.instance == 0 || inv.instance == 2,
            "placed on invoker{}",
            inv.instance
        );
        s.release(&inv, 128, 1, &a);
    }
}

/// Releases and outcomes for invokers that never pinged are ignored without panicking.
pub async fn unknown_invokers_are_ignored(s: &DynScheduler) {
    let ghost = InvokerInstanceId::new(99, MEMORY_MB);
    let a = action("/guest/ghost");
    s.release(&ghost, 256, 1, &a);
    s.release(&ghost, 256, 4, &a);
    s.on_outcome(&ghost, InvocationOutcome::SystemError);
    register(s, INVOKERS);
    s.release(&ghost, 256, 1, &a);
    s.on_outcome(&ghost, InvocationOutcome::Timeout);
    let held = fill(s, INVOKERS, "ghost");
    release_all(s, held);
}

/// Invokers that report their kinds get only activations of those kinds; one that reports
/// none gets any kind; a kind no usable invoker can run is `Unavailable`, and reserves nothing.
pub async fn kinds_are_respected(s: &DynScheduler) {
    let runtimes = |kinds: &[&str]| {
        let mut m = RuntimeManifest::new();
        for k in kinds {
            m.add(RuntimeSpec::new(*k, true));
        }
        m
    };
    let ping_kinds = |i: u32, kinds: &[&str]| {
        s.on_ping(
            &PingMessage::new(InvokerInstanceId::new(i, MEMORY_MB)).with_runtimes(runtimes(kinds)),
        )
    };
    ping_kinds(0, &["nodejs:18"]);
    ping_kinds(1, &["nodejs:20", "python:3.11"]);
    for i in 0..40 {
        let a = action(&format!("/guest/kinds{i}"));
        for (kind, want) in [("nodejs:18", 0), ("nodejs:20", 1), ("python:3.11", 1)] {
            let mut req = request("guest", &a, FILL_MB, 1);
            req.kind = Some(kind);
            let inv = schedule_ok(s, &req, 2);
            assert_eq!(
                inv.instance, want,
                "{kind} placed on invoker{}",
                inv.instance
            );
            s.release(&inv, FILL_MB, 1, &a);
        }
        let mut req = request("guest", &a, FILL_MB, 1);
        req.kind = Some("java:8");
        match s.schedule(&req) {
            Ok(inv) => panic!("java:8 placed on invoker{}", inv.instance),
            Err(e) => {
                assert_eq!(e.status(), 503, "{e}");
                assert!(e.to_string().contains("java:8"), "the kind is named: {e}");
            }
        }
    }
    // Full capacity is still there: nothing leaked.
    let held = fill(s, 2, "kinds-fill");
    release_all(s, held);
    // An invoker that reports no kinds takes any kind.
    ping(s, 2, true);
    let a = action("/guest/kinds-any");
    let mut req = request("guest", &a, FILL_MB, 1);
    req.kind = Some("java:8");
    let inv = schedule_ok(s, &req, 3);
    assert_eq!(inv.instance, 2);
    s.release(&inv, FILL_MB, 1, &a);
}

/// Expands to one `#[test]` per case of the scheduler conformance suite.
///
/// `$setup` is an `async fn() -> Option<Arc<dyn Scheduler>>` returning a **fresh**
/// scheduler without invokers for each case, or `None` to skip (see
/// [`skip`](crate::testkit::skip)). The tests run on their own current-thread runtime.
///
/// ```text
/// async fn setup() -> Option<std::sync::Arc<dyn faas_core::Scheduler>> {
///     Some(std::sync::Arc::new(faas_core::sharding::ShardingScheduler::new()))
/// }
/// faas_core::scheduler_conformance!(setup);
/// ```
#[macro_export]
macro_rules! scheduler_conformance {
    (@cases $setup:path; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::scheduler::block_on(async {
                    match $setup().await {
                        ::std::option::Option::Some(scheduler) => {
                            $crate::testkit::scheduler::$case(&*scheduler).await
                        }
                        ::std::option::Option::None => $crate::testkit::skip(concat!(
                            "scheduler conformance: ",
                            stringify!($case)
                        )),
                    }
                });
            }
        )+
    };
    ($setup:path) => {
        $crate::scheduler_conformance!(@cases $setup;
            no_invokers_is_unavailable,
            schedules_a_pinged_invoker,
            capacity_is_respected_until_overload,
            release_restores_capacity,
            disabled_invoker_is_down_and_unused,
            system_errors_make_unhealthy,
            timeouts_make_unresponsive,
            errors_age_out_of_the_last_ten,
            unavailable_when_none_usable,
            invokers_are_listed_by_instance,
            unknown_invokers_are_ignored,
            kinds_are_respected,
        );
    };
}
