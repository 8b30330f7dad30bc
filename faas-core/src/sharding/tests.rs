use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn fqn(s: &str) -> FullyQualifiedName {
    FullyQualifiedName::resolve(s, "guest").unwrap()
}

fn ping(s: &ShardingScheduler, instance: u32, memory: u64) {
    s.on_ping(&PingMessage::new(InvokerInstanceId::new(instance, memory)));
}

fn disable(s: &ShardingScheduler, instance: u32, memory: u64) {
    s.on_ping(&PingMessage::new(InvokerInstanceId::new(instance, memory)).enabled(false));
}

fn req<'a>(ns: &'a str, action: &'a FullyQualifiedName, memory_mb: u64) -> ScheduleRequest<'a> {
    ScheduleRequest {
        namespace: ns,
        action,
        memory_mb,
        max_concurrent: 1,
        blackbox: false,
        kind: None,
    }
}

fn with_invokers(n: u32, memory: u64) -> ShardingScheduler {
    let s = ShardingScheduler::new();
    for i in 0..n {
        ping(&s, i, memory);
    }
    s
}

fn states(s: &ShardingScheduler) -> Vec<(u32, InvokerState)> {
    s.invokers()
        .into_iter()
        .map(|h| (h.id.instance, h.state))
        .collect()
}

fn id(instance: u32) -> InvokerInstanceId {
    InvokerInstanceId::new(instance, 0)
}

// --- hashing and step sizes ------------------------------------------------------------

#[test]
fn java_hash_matches_known_java_values() {
    assert_eq!(java_string_hash(""), 0);
    assert_eq!(java_string_hash("a"), 97);
    assert_eq!(java_string_hash("hello"), 99_162_322);
    assert_eq!(java_string_hash("guest"), 98_708_952);
    // 'g'·31^10 + 'u'·31^9 + … + 'o', wrapping in i32.
    assert_eq!(java_string_hash("guest/hello"), 86_723_035);
    assert_eq!(java_string_hash("guest/pkg/hello"), 688_753_496);
    assert_eq!(
        java_string_hash("whisk.system/invokerHealthTestAction0"),
        -1_812_739_596
    );
    // Overflow to exactly i32::MIN (a well-known Java example).
    assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    // UTF-16 code units: one for U+00E9, a surrogate pair for U+1F600.
    assert_eq!(java_string_hash("é"), 233);
    assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
}

#[test]
fn generate_hash_is_xor_of_namespace_and_fqn_without_formatting() {
    let a = fqn("/guest/hello");
    assert_eq!(generate_hash("guest", &a), 98_708_952 ^ 86_723_035);
    assert_eq!(generate_hash("guest", &a), 13_198_339);
    let p = fqn("/guest/pkg/hello");
    assert_eq!(
        generate_hash("other", &p),
        (java_string_hash("other") ^ java_string_hash(&p.to_string())).unsigned_abs()
    );
    // Negative XOR results are made positive.
    let neg = java_string_hash("whisk.system") ^ java_string_hash("guest/hello");
    assert!(neg < 0, "pick a pair with a negative xor");
    assert_eq!(generate_hash("whisk.system", &a), neg.unsigned_abs());
}

/// A namespace whose hash xors `fqn_hash` to exactly `i32::MIN`: a prefix plus two UTF-16
/// units solved for.
fn namespace_hitting_i32_min(fqn_hash: i32) -> String {
    let target = (i32::MIN ^ fqn_hash) as u32;
    for i in 0..10_000_000u32 {
        let prefix = format!("n{i}");
        let h = java_string_hash(&prefix) as u32;
        let rest = target.wrapping_sub(h.wrapping_mul(961));
        let (c1, c2) = (rest / 31, rest % 31);
        if let (Some(a), Some(b)) = (char::from_u32(c1), char::from_u32(c2))
            && c1 <= 0xFFFF
        {
            return format!("{prefix}{a}{b}");
        }
    }
    panic!("no namespace found");
}

#[test]
fn absolute_value_of_i32_min_does_not_overflow() {
    let a = fqn("/guest/hello");
    let ns = namespace_hitting_i32_min(java_string_hash("guest/hello"));
    assert_eq!(
        java_string_hash(&ns) ^ java_string_hash("guest/hello"),
        i32::MIN
    );
    assert_eq!(generate_hash(&ns, &a), 1 << 31);
    // 2^31 mod 3 = 2 → home 2 (Java's negative `abs` would have indexed out of bounds).
    let s = with_invokers(3, 1024);
    assert_eq!(s.schedule(&req(&ns, &a, 128)).unwrap().instance, 2);
}

#[test]
fn step_sizes_are_pairwise_coprime() {
    assert!(step_sizes(0).is_empty());
    assert_eq!(step_sizes(1), [1]);
    assert_eq!(step_sizes(2), [1]);
    assert_eq!(step_sizes(3), [1, 2]);
    assert_eq!(step_sizes(4), [1, 3]);
    assert_eq!(step_sizes(10), [1, 3, 7]);
    assert_eq!(step_sizes(12), [1, 5, 7, 11]);
    assert_eq!(step_sizes(15), [1, 2, 7, 11, 13]);
    for n in 1..200 {
        let steps = step_sizes(n);
        for (i, a) in steps.iter().enumerate() {
            assert_eq!(gcd(*a, n), 1);
            for b in &steps[..i] {
                assert_eq!(gcd(*a, *b), 1);
            }
        }
    }
}

// --- pools -----------------------------------------------------------------------------

fn pools(s: &ShardingScheduler) -> ((usize, usize), (usize, usize)) {
    let st = s.lock();
    (
        (st.managed.start, st.managed.len),
        (st.blackbox.start, st.blackbox.len),
    )
}

#[test]
fn pool_sizes_follow_openwhisk() {
    let s = with_invokers(1, 1024);
    assert_eq!(pools(&s), ((0, 1), (0, 1)));
    ping(&s, 1, 1024);
    // ceil(1.8) = 2 managed, max(1, floor(0.2)) = 1 blackbox: they overlap.
    assert_eq!(pools(&s), ((0, 2), (1, 1)));
    let s = with_invokers(10, 1024);
    assert_eq!(pools(&s), ((0, 9), (9, 1)));
    let s = with_invokers(20, 1024);
    assert_eq!(pools(&s), ((0, 18), (18, 2)));

    let s = ShardingScheduler::new()
        .with_managed_fraction(0.5)
        .with_blackbox_fraction(0.5);
    for i in 0..4 {
        ping(&s, i, 1024);
    }
    assert_eq!(pools(&s), ((0, 2), (2, 2)));
    // Out-of-range fractions are clamped; NaN falls back to the default.
    let s = ShardingScheduler::new()
        .with_managed_fraction(7.0)
        .with_blackbox_fraction(f64::NAN);
    for i in 0..10 {
        ping(&s, i, 1024);
    }
    assert_eq!(pools(&s), ((0, 10), (9, 1)));
}

#[test]
fn blackbox_actions_use_the_blackbox_pool() {
    let s = with_invokers(10, 100_000);
    for i in 0..200 {
        let a = fqn(&format!("/ns{}/action{i}", i % 7));
        let managed = s.schedule(&req("guest", &a, 128)).unwrap();
        assert!(managed.instance < 9, "managed went to {}", managed.instance);
        let mut r = req("guest", &a, 128);
        r.blackbox = true;
        let bb = s.schedule(&r).unwrap();
        assert_eq!(bb.instance, 9);
    }
}

#[test]
fn managed_pool_spreads_over_its_invokers() {
    let s = with_invokers(10, 100_000);
    let mut seen = [0u32; 10];
    for i in 0..500 {
        let a = fqn(&format!("/guest/action{i}"));
        seen[s.schedule(&req("guest", &a, 128)).unwrap().instance as usize] += 1;
    }
    assert!(seen[..9].iter().all(|&n| n > 0), "{seen:?}");
    assert_eq!(seen[9], 0);
}

// --- placement -------------------------------------------------------------------------

#[test]
fn home_then_step_then_overload() {
    // 3 invokers: hash("guest", guest/hello) = 13198339 → home 1, steps [1, 2] → step 2.
    let s = with_invokers(3, 1024);
    let a = fqn("/guest/hello");
    let r = req("guest", &a, 256);
    assert_eq!(generate_hash("guest", &a) % 3, 1);
    assert_eq!(step_sizes(3)[13_198_339 % 2], 2);
    let mut placed = Vec::new();
    for _ in 0..12 {
        placed.push(s.schedule(&r).unwrap().instance);
    }
    assert_eq!(placed, [1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 2, 2]);
    for i in 0..3 {
        assert_eq!(s.free_memory_mb(i), Some(0));
    }
    // Everything is full: forced onto some healthy invoker.
    let forced = s.schedule(&r).unwrap();
    assert_eq!(s.free_memory_mb(forced.instance), Some(-256));
    // Releasing the forced one and one on invoker 0 makes invoker 0 the first with room
    // on the way home → 0.
    s.release(&forced, 256, 1, &a);
    s.release(&id(0), 256, 1, &a);
    assert_eq!(s.schedule(&r).unwrap().instance, 0);
}

#[test]
fn goes_home_when_free_for_many_actions() {
    for n in [1u32, 2, 5, 7, 10] {
        let s = with_invokers(n, 4096);
        let ((_, mlen), _) = pools(&s);
        for i in 0..50 {
            let a = fqn(&format!("/team{}/pkg/act{i}", i % 3));
            let home = generate_hash("caller", &a) as usize % mlen;
            let got = s.schedule(&req("caller", &a, 128)).unwrap();
            assert_eq!(got.instance as usize, home);
            s.release(&got, 128, 1, &a);
        }
    }
}

#[test]
fn release_frees_capacity() {
    let s = with_invokers(2, 1024);
    let a = fqn("/guest/hello");
    let r = req("guest", &a, 512);
    let first = s.schedule(&r).unwrap();
    let second = s.schedule(&r).unwrap();
    assert_eq!(first, second);
    assert_eq!(s.free_memory_mb(first.instance), Some(0));
    s.release(&first, 512, 1, &a);
    assert_eq!(s.free_memory_mb(first.instance), Some(512));
    s.release(&second, 512, 1, &a);
    assert_eq!(s.free_memory_mb(first.instance), Some(1024));
    // Releases for unknown invokers are ignored.
    s.release(&id(42), 512, 1, &a);
}

#[test]
fn overload_never_picks_unusable_invokers() {
    let s = with_invokers(4, 256);
    disable(&s, 1, 256);
    for _ in 0..4 {
        s.on_outcome(&id(2), InvocationOutcome::SystemError);
    }
    let a = fqn("/guest/big");
    for _ in 0..100 {
        let got = s.schedule(&req("guest", &a, 256)).unwrap();
        assert!(got.instance == 0 || got.instance == 3, "{}", got.instance);
    }
    // Both usable ones got work beyond their memory, the others nothing.
    assert!(s.free_memory_mb(0).unwrap() < 0);
    assert!(s.free_memory_mb(3).unwrap() < 0);
    assert_eq!(s.free_memory_mb(1), Some(256));
    assert_eq!(s.free_memory_mb(2), Some(256));
}

#[test]
fn unhealthy_invokers_are_skipped() {
    let s = with_invokers(3, 1024);
    let a = fqn("/guest/hello");
    assert_eq!(s.schedule(&req("guest", &a, 128)).unwrap().instance, 1);
    for _ in 0..4 {
        s.on_outcome(&id(1), InvocationOutcome::SystemError);
    }
    assert_eq!(states(&s)[1], (1, InvokerState::Unhealthy));
    // Home (1) is unhealthy: the next by step 2 is 0.
    assert_eq!(s.schedule(&req("guest", &a, 128)).unwrap().instance, 0);
    for _ in 0..4 {
        s.on_outcome(&id(0), InvocationOutcome::Timeout);
    }
    assert_eq!(states(&s)[0], (0, InvokerState::Unresponsive));
    assert_eq!(s.schedule(&req("guest", &a, 128)).unwrap().instance, 2);
    // Successes push the errors out of the last ten.
    for _ in 0..7 {
        s.on_outcome(&id(1), InvocationOutcome::Success);
    }
    assert_eq!(states(&s)[1], (1, InvokerState::Healthy));
    assert_eq!(s.schedule(&req("guest", &a, 128)).unwrap().instance, 1);
}

#[test]
fn unavailable_without_usable_invokers() {
    let s = ShardingScheduler::new();
    let a = fqn("/guest/hello");
    let err = s.schedule(&req("guest", &a, 128)).unwrap_err();
    assert_eq!(err.status(), 503);
    let mut r = req("guest", &a, 128);
    r.blackbox = true;
    assert_eq!(s.schedule(&r).unwrap_err().status(), 503);

    let s = with_invokers(2, 1024);
    for i in 0..2 {
        for _ in 0..4 {
            s.on_outcome(&id(i), InvocationOutcome::SystemError);
        }
    }
    assert_eq!(
        s.schedule(&req("guest", &a, 128)).unwrap_err().status(),
        503
    );
    // Nothing was reserved by the failed attempts.
    assert_eq!(s.free_memory_mb(0), Some(1024));
    assert_eq!(s.free_memory_mb(1), Some(1024));
}

// --- slots -----------------------------------------------------------------------------

#[test]
fn slots_are_shared_by_the_cluster() {
    let s = ShardingScheduler::new().with_cluster_size(2);
    ping(&s, 0, 1024);
    assert_eq!(s.memory_capacity_mb(0), Some(512));
    let s = ShardingScheduler::new().with_cluster_size(16);
    ping(&s, 0, 1024);
    assert_eq!(s.memory_capacity_mb(0), Some(128), "at least MIN_SLOT_MB");
    let s = ShardingScheduler::new().with_cluster_size(0);
    assert_eq!(s.cluster_size(), 1);

    // Resizing at run time keeps reservations.
    let s = with_invokers(1, 1024);
    let a = fqn("/guest/hello");
    let got = s.schedule(&req("guest", &a, 256)).unwrap();
    s.set_cluster_size(2);
    assert_eq!(s.memory_capacity_mb(0), Some(512));
    assert_eq!(s.free_memory_mb(0), Some(256));
    s.release(&got, 256, 1, &a);
    assert_eq!(s.free_memory_mb(0), Some(512));
}

#[test]
fn nested_concurrency_accounting() {
    let s = with_invokers(1, 1024);
    let a = fqn("/guest/concurrent");
    let mut r = req("guest", &a, 256);
    r.max_concurrent = 4;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(s.schedule(&r).unwrap());
    }
    // One container slot serves four activations.
    assert_eq!(s.free_memory_mb(0), Some(768));
    held.push(s.schedule(&r).unwrap());
    assert_eq!(s.free_memory_mb(0), Some(512));
    // 16 activations fill all four slots; the 17th overloads.
    for _ in 5..16 {
        held.push(s.schedule(&r).unwrap());
    }
    assert_eq!(s.free_memory_mb(0), Some(0));
    held.push(s.schedule(&r).unwrap());
    assert_eq!(s.free_memory_mb(0), Some(-256));
    for inv in held.drain(..) {
        s.release(&inv, 256, 4, &a);
    }
    assert_eq!(s.free_memory_mb(0), Some(1024));
    assert!(s.lock().invokers[0].slots.no_sub_slots());
}

/// Random schedule/release sequences keep the books equal to a simple model:
/// per invoker, `capacity − Σ single-concurrency memory − Σ ⌈n / c⌉ · memory` per
/// (action, concurrency c) with n activations in flight.
#[test]
fn randomized_books_match_the_model() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let s = ShardingScheduler::new().with_cluster_size(2);
    for i in 0..5 {
        ping(&s, i, 2048);
    }
    let actions: Vec<(FullyQualifiedName, u64, u32)> = (0..8)
        .map(|i| {
            let c = [1, 1, 2, 3, 8][i % 5];
            (
                fqn(&format!("/ns{}/a{i}", i % 2)),
                128 * (1 + i as u64 % 3),
                c,
            )
        })
        .collect();
    let mut held: Vec<(InvokerInstanceId, usize)> = Vec::new();
    let check = |held: &[(InvokerInstanceId, usize)]| {
        let mut count: HashMap<(u32, usize), u64> = HashMap::new();
        for (inv, a) in held {
            *count.entry((inv.instance, *a)).or_default() += 1;
        }
        for i in 0..5u32 {
            let mut used = 0i64;
            for (a, (_, mem, c)) in actions.iter().enumerate() {
                let n = count.get(&(i, a)).copied().unwrap_or(0);
                let slots = if *c <= 1 {
                    n
                } else {
                    n.div_ceil(u64::from(*c))
                };
                used += (slots * mem) as i64;
            }
            assert_eq!(s.free_memory_mb(i), Some(1024 - used), "invoker {i}");
        }
    };
    for step in 0..5000 {
        if held.is_empty() || rng.random_bool(0.55) {
            let a = rng.random_range(0..actions.len());
            let (name, mem, c) = &actions[a];
            let r = ScheduleRequest {
                namespace: if step % 2 == 0 { "guest" } else { "other" },
                action: name,
                memory_mb: *mem,
                max_concurrent: *c,
                blackbox: false,
                kind: None,
            };
            held.push((s.schedule(&r).unwrap(), a));
        } else {
            let (inv, a) = held.swap_remove(rng.random_range(0..held.len()));
            let (name, mem, c) = &actions[a];
            s.release(&inv, *mem, *c, name);
        }
        if step % 50 == 0 {
            check(&held);
        }
    }
    check(&held);
    for (inv, a) in held.drain(..) {
        let (name, mem, c) = &actions[a];
        s.release(&inv, *mem, *c, name);
    }
    check(&held);
    let st = s.lock();
    assert!(st.invokers.iter().all(|i| i.slots.no_sub_slots()));
}

// --- health ----------------------------------------------------------------------------

fn clocked() -> (Arc<ManualClock>, ShardingScheduler) {
    let clock = Arc::new(ManualClock::new());
    let s = ShardingScheduler::new().with_clock(Arc::clone(&clock) as Arc<dyn Clock>);
    (clock, s)
}

#[test]
fn offline_after_ten_seconds_without_ping() {
    let (clock, s) = clocked();
    ping(&s, 0, 1024);
    ping(&s, 1, 1024);
    let a = fqn("/guest/hello");
    clock.advance(Duration::from_millis(9_900));
    ping(&s, 1, 1024);
    assert_eq!(
        states(&s),
        [(0, InvokerState::Healthy), (1, InvokerState::Healthy)]
    );
    clock.advance(Duration::from_millis(100));
    // Invoker 0 has been silent for exactly 10 s.
    assert_eq!(
        states(&s),
        [(0, InvokerState::Offline), (1, InvokerState::Healthy)]
    );
    assert_eq!(s.invokers()[0].state.as_str(), "down");
    for _ in 0..10 {
        assert_eq!(s.schedule(&req("guest", &a, 128)).unwrap().instance, 1);
    }
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        s.schedule(&req("guest", &a, 128)).unwrap_err().status(),
        503
    );
    // A ping brings it back.
    ping(&s, 0, 1024);
    assert_eq!(states(&s)[0], (0, InvokerState::Healthy));
    assert_eq!(s.schedule(&req("guest", &a, 128)).unwrap().instance, 0);
}

#[test]
fn offline_timeout_is_configurable_and_applies_to_unhealthy_too() {
    let clock = Arc::new(ManualClock::new());
    let s = ShardingScheduler::new()
        .with_clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .with_offline_after(Duration::from_secs(2));
    ping(&s, 0, 1024);
    for _ in 0..4 {
        s.on_outcome(&id(0), InvocationOutcome::SystemError);
    }
    assert_eq!(states(&s), [(0, InvokerState::Unhealthy)]);
    clock.advance(Duration::from_secs(1));
    ping(&s, 0, 1024);
    assert_eq!(
        states(&s),
        [(0, InvokerState::Unhealthy)],
        "a ping does not heal"
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(states(&s), [(0, InvokerState::Offline)]);
    // Outcomes do not revive an offline invoker.
    for _ in 0..10 {
        s.on_outcome(&id(0), InvocationOutcome::Success);
    }
    assert_eq!(states(&s), [(0, InvokerState::Offline)]);
    // A ping does; the default (no test action) starts afresh as Healthy.
    ping(&s, 0, 1024);
    assert_eq!(states(&s), [(0, InvokerState::Healthy)]);
}

#[test]
fn disabled_ping_makes_offline_and_enabled_ping_revives() {
    let s = with_invokers(2, 1024);
    disable(&s, 0, 1024);
    let all = s.invokers();
    assert_eq!(all[0].state, InvokerState::Offline);
    assert_eq!(all[0].state.as_str(), "down");
    assert_eq!(all[1].state.as_str(), "up");
    let a = fqn("/guest/x");
    for _ in 0..20 {
        assert_eq!(s.schedule(&req("guest", &a, 512)).unwrap().instance, 1);
    }
    ping(&s, 0, 1024);
    assert_eq!(states(&s)[0], (0, InvokerState::Healthy));
}

#[test]
fn openwhisk_initial_state_waits_for_a_successful_outcome() {
    let s = ShardingScheduler::new().with_initial_state_healthy(false);
    ping(&s, 0, 1024);
    assert_eq!(states(&s), [(0, InvokerState::Unhealthy)]);
    assert_eq!(s.invokers()[0].state.as_str(), "unhealthy");
    let a = fqn("/guest/hello");
    assert_eq!(
        s.schedule(&req("guest", &a, 128)).unwrap_err().status(),
        503
    );
    // Further pings keep it unhealthy; a successful (test) outcome makes it healthy.
    ping(&s, 0, 1024);
    assert_eq!(states(&s), [(0, InvokerState::Unhealthy)]);
    s.on_outcome(&id(0), InvocationOutcome::Success);
    assert_eq!(states(&s), [(0, InvokerState::Healthy)]);
    assert_eq!(s.schedule(&req("guest", &a, 128)).unwrap().instance, 0);
}

#[test]
fn gaps_are_offline_placeholders_and_invokers_are_sorted() {
    let s = ShardingScheduler::new();
    ping(&s, 3, 2048);
    let all = s.invokers();
    assert_eq!(all.len(), 4);
    for (i, h) in all.iter().enumerate() {
        assert_eq!(h.id.instance as usize, i);
        assert_eq!(h.id.user_memory, 2048);
    }
    assert_eq!(
        states(&s),
        [
            (0, InvokerState::Offline),
            (1, InvokerState::Offline),
            (2, InvokerState::Offline),
            (3, InvokerState::Healthy),
        ]
    );
    // Managed pool = ceil(3.6) = 4 → all; only 3 is usable.
    let a = fqn("/guest/hello");
    for _ in 0..10 {
        assert_eq!(s.schedule(&req("guest", &a, 256)).unwrap().instance, 3);
    }
    ping(&s, 1, 512);
    let all = s.invokers();
    assert_eq!(all[1].id.user_memory, 512);
    assert_eq!(s.memory_capacity_mb(1), Some(512));
    assert_eq!(all[1].state, InvokerState::Healthy);
}

#[test]
fn memory_change_on_ping_keeps_reservations() {
    let s = with_invokers(1, 1024);
    let a = fqn("/guest/hello");
    let got = s.schedule(&req("guest", &a, 256)).unwrap();
    ping(&s, 0, 2048);
    assert_eq!(s.memory_capacity_mb(0), Some(2048));
    assert_eq!(s.free_memory_mb(0), Some(1792));
    s.release(&got, 256, 1, &a);
    assert_eq!(s.free_memory_mb(0), Some(2048));
}

#[test]
fn pings_beyond_the_maximum_are_ignored() {
    let s = ShardingScheduler::new().with_max_invokers(8);
    ping(&s, u32::MAX, 1024);
    ping(&s, 8, 1024);
    assert!(s.invokers().is_empty());
    ping(&s, 7, 1024);
    assert_eq!(s.invokers().len(), 8);
    // Outcomes for unknown invokers are ignored.
    s.on_outcome(&id(100), InvocationOutcome::SystemError);
}

#[test]
fn debug_is_concise() {
    let s = with_invokers(2, 1024);
    let text = format!("{s:?}");
    assert!(text.starts_with("ShardingScheduler {"), "{text}");
    assert!(text.contains("invokers: 2"), "{text}");
}

#[test]
fn is_send_sync_and_usable_from_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ShardingScheduler>();
    let s = Arc::new(with_invokers(4, 4096));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let a = fqn(&format!("/guest/t{t}"));
                for _ in 0..1000 {
                    let got = s.schedule(&req("guest", &a, 256)).unwrap();
                    s.release(&got, 256, 1, &a);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for i in 0..4 {
        assert_eq!(s.free_memory_mb(i), Some(4096));
    }
}

// --- the conformance suite -------------------------------------------------------------

mod conformance {
    use std::sync::Arc;

    use crate::scheduler::DynScheduler;

    async fn setup() -> Option<Arc<DynScheduler>> {
        Some(Arc::new(super::ShardingScheduler::new()))
    }

    crate::scheduler_conformance!(setup);
}

// --- kinds -----------------------------------------------------------------------------

fn ping_kinds(s: &ShardingScheduler, instance: u32, kinds: &[&str], blackbox: bool) {
    let mut m = RuntimeManifest::new().with_blackbox(blackbox);
    for k in kinds {
        m.add(crate::runtimes::RuntimeSpec::new(*k, true));
    }
    s.on_ping(&PingMessage::new(InvokerInstanceId::new(instance, 1024)).with_runtimes(m));
}

fn with_kind<'a>(r: ScheduleRequest<'a>, kind: &'a str) -> ScheduleRequest<'a> {
    ScheduleRequest {
        kind: Some(kind),
        ..r
    }
}

#[test]
fn only_invokers_that_run_the_kind_are_chosen() {
    let s = ShardingScheduler::new();
    ping_kinds(&s, 0, &["nodejs:18", "python:3.11"], true);
    ping_kinds(&s, 1, &["nodejs:20"], false);
    ping_kinds(&s, 2, &["nodejs:20", "python:3.11"], false);
    let mut seen = HashMap::new();
    for i in 0..300 {
        let a = fqn(&format!("/guest/k{i}"));
        for kind in ["nodejs:18", "nodejs:20", "python:3.11"] {
            let inv = s.schedule(&with_kind(req("guest", &a, 128), kind)).unwrap();
            *seen.entry((kind, inv.instance)).or_insert(0) += 1;
            s.release(&inv, 128, 1, &a);
        }
    }
    let on = |kind, i| seen.get(&(kind, i)).copied().unwrap_or(0);
    assert_eq!(on("nodejs:18", 0), 300, "{seen:?}");
    assert_eq!(on("nodejs:20", 0), 0, "{seen:?}");
    assert!(on("nodejs:20", 1) > 0 && on("nodejs:20", 2) > 0, "{seen:?}");
    assert_eq!(on("python:3.11", 1), 0, "{seen:?}");
    // Without a kind, every managed invoker is a candidate.
    let inv = s.schedule(&req("guest", &fqn("/guest/any"), 128)).unwrap();
    assert!(inv.instance < 3);
}

#[test]
fn overload_forces_only_an_invoker_that_runs_the_kind() {
    let s = ShardingScheduler::new();
    ping_kinds(&s, 0, &["nodejs:18"], false);
    ping_kinds(&s, 1, &["nodejs:20"], false);
    let a = fqn("/guest/big");
    // Invoker 1 holds 1024 MB: 4 fit, then the rest are forced, all on invoker 1.
    for _ in 0..10 {
        let inv = s
            .schedule(&with_kind(req("guest", &a, 256), "nodejs:20"))
            .unwrap();
        assert_eq!(inv.instance, 1);
    }
    assert_eq!(s.free_memory_mb(0), Some(1024));
    assert_eq!(s.free_memory_mb(1), Some(1024 - 10 * 256));
}

#[test]
fn a_kind_nobody_runs_is_unavailable_and_names_the_kind() {
    let s = ShardingScheduler::new();
    ping_kinds(&s, 0, &["nodejs:18"], false);
    let e = s
        .schedule(&with_kind(req("guest", &fqn("/guest/j"), 128), "java:8"))
        .unwrap_err();
    assert_eq!(e.status(), 503);
    assert!(e.to_string().contains("'java:8'"), "{e}");
    assert_eq!(s.free_memory_mb(0), Some(1024));
    // With no usable invoker at all, the usual answer.
    disable(&s, 0, 1024);
    let e = s
        .schedule(&with_kind(req("guest", &fqn("/guest/j"), 128), "nodejs:18"))
        .unwrap_err();
    assert_eq!(e.to_string(), no_invokers().to_string());
}

#[test]
fn blackbox_falls_back_to_any_invoker_that_runs_images() {
    // 10 invokers, the blackbox pool is invoker 9, which runs no images; invoker 3 does.
    let s = ShardingScheduler::new();
    for i in 0..10 {
        ping_kinds(&s, i, &["nodejs:20"], i == 3);
    }
    for i in 0..50 {
        let a = fqn(&format!("/guest/bb{i}"));
        let mut r = with_kind(req("guest", &a, 128), "blackbox");
        r.blackbox = true;
        let inv = s.schedule(&r).unwrap();
        assert_eq!(inv.instance, 3);
        s.release(&inv, 128, 1, &a);
    }
}

#[test]
fn kinds_follow_the_latest_ping() {
    let s = ShardingScheduler::new();
    ping_kinds(&s, 0, &["nodejs:18"], false);
    let a = fqn("/guest/k");
    assert!(
        s.schedule(&with_kind(req("guest", &a, 128), "nodejs:20"))
            .is_err()
    );
    ping_kinds(&s, 0, &["nodejs:20"], false);
    let inv = s
        .schedule(&with_kind(req("guest", &a, 128), "nodejs:20"))
        .unwrap();
    s.release(&inv, 128, 1, &a);
    // A ping without kinds (an invoker that does not report them) takes anything.
    ping(&s, 0, 1024);
    assert!(
        s.schedule(&with_kind(req("guest", &a, 128), "java:8"))
            .is_ok()
    );
}
