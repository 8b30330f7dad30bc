//! The built-in alarms provider: the scheduler with an injected clock (ticks, bounds,
//! once-alarms, missed ticks, the leader lease between two schedulers on one store) and the
//! feed actions `whisk.system/alarms/{alarm,interval,once}` through the REST API (lifecycle,
//! every refusal with the Apache package's message, fires reaching a rule's action).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use http::StatusCode;
use serde_json::{Value, json};

use faas_core::Store;
use faas_core::activation::ActivationResponse;
use faas_http::ControllerConfig;
use faas_http::alarms::schedule::{Schedule, Timing, parse_date};
use faas_http::alarms::scheduler::{ALARMS, Alarm, Clock, Fired, Firer, Scheduler, Status};
use faas_http::alarms::{AlarmsConfig, EngineFirer};
use faas_store::memory::MemoryStore;

use support::*;

// ---------------------------------------------------------------- scheduler, injected clock

#[derive(Debug, Default)]
struct ManualClock(Mutex<u64>);

impl ManualClock {
    fn at(ms: u64) -> Arc<Self> {
        Arc::new(Self(Mutex::new(ms)))
    }
    fn set(&self, ms: u64) {
        *self.0.lock().unwrap() = ms;
    }
    fn advance(&self, ms: u64) {
        *self.0.lock().unwrap() += ms;
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.0.lock().unwrap()
    }
}

/// Records every fire; answers with `answer`.
#[derive(Debug)]
struct Recorder {
    fires: Mutex<Vec<(String, u64)>>,
    deleted: Mutex<Vec<(String, bool)>>,
    answer: Mutex<Fired>,
}

impl Recorder {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            fires: Mutex::new(Vec::new()),
            deleted: Mutex::new(Vec::new()),
            answer: Mutex::new(Fired::Done),
        })
    }
    fn fires(&self) -> Vec<(String, u64)> {
        self.fires.lock().unwrap().clone()
    }
}

#[async_trait]
impl Firer for Recorder {
    async fn fire(&self, alarm: &Alarm, tick: u64) -> Fired {
        self.fires.lock().unwrap().push((alarm.id(), tick));
        self.answer.lock().unwrap().clone()
    }
    async fn delete_trigger(&self, alarm: &Alarm, with_rules: bool) {
        self.deleted.lock().unwrap().push((alarm.id(), with_rules));
    }
}

const LEASE: Duration = Duration::from_secs(10);

fn t(s: &str) -> u64 {
    parse_date(&json!(s)).unwrap()
}

fn alarm(name: &str, timing: Timing, now: u64) -> Alarm {
    let next = timing.next_after(now);
    Alarm {
        namespace: "guest".into(),
        name: name.into(),
        apikey: GUEST.into(),
        timing,
        dates: Default::default(),
        payload: json!({"k": name}),
        delete_after_fire: None,
        triggers_left: None,
        status: Status {
            active: true,
            date_changed: now,
            reason: None,
        },
        next,
        fired: 0,
        last_fire: None,
        skipped: 0,
        last_skip: None,
        last_error: None,
    }
}

fn cron(expr: &str) -> Timing {
    Timing {
        schedule: Schedule::Cron {
            cron: expr.into(),
            timezone: None,
        },
        start: None,
        stop: None,
    }
}

async fn put_alarm(store: &Arc<dyn Store>, a: &Alarm) {
    store
        .put_document(ALARMS, &a.id(), &serde_json::to_value(a).unwrap(), None)
        .await
        .unwrap();
}

async fn read_alarm(store: &Arc<dyn Store>, id: &str) -> Option<Alarm> {
    match store.get_document(ALARMS, id).await {
        Ok(d) => Some(serde_json::from_value(d.value).unwrap()),
        Err(faas_core::Error::NotFound { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

fn scheduler(
    owner: &str,
    store: &Arc<dyn Store>,
    firer: &Arc<Recorder>,
    clock: &Arc<ManualClock>,
) -> Scheduler {
    Scheduler::new(
        owner,
        Arc::clone(store),
        Arc::clone(firer) as Arc<dyn Firer>,
        Arc::clone(clock) as Arc<dyn Clock>,
        LEASE,
    )
}

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

#[tokio::test]
async fn cron_ticks_fire_once_each_and_not_early() {
    let store = memory();
    let base = t("2030-01-01T00:00:00Z");
    let clock = ManualClock::at(base);
    let rec = Recorder::new();
    put_alarm(&store, &alarm("a", cron("*/2 * * * * *"), base)).await;
    let s = scheduler("c0", &store, &rec, &clock);

    s.poll().await.unwrap();
    assert!(rec.fires().is_empty(), "nothing is due at the start");
    clock.advance(1_999);
    s.poll().await.unwrap();
    assert!(rec.fires().is_empty(), "not a millisecond early");
    clock.advance(1);
    let r = s.poll().await.unwrap();
    assert!(r.leader);
    assert_eq!(rec.fires(), vec![("guest/a".to_string(), base + 2_000)]);
    // Polled again within the same tick: not fired again.
    s.poll().await.unwrap();
    clock.advance(500);
    s.poll().await.unwrap();
    assert_eq!(rec.fires().len(), 1);
    clock.advance(1_500);
    s.poll().await.unwrap();
    assert_eq!(
        rec.fires(),
        vec![
            ("guest/a".to_string(), base + 2_000),
            ("guest/a".to_string(), base + 4_000)
        ]
    );
    let a = read_alarm(&store, "guest/a").await.unwrap();
    assert_eq!(a.fired, 2);
    assert_eq!(a.last_fire, Some(base + 4_000));
    assert_eq!(a.next, Some(base + 6_000));
    assert_eq!(a.skipped, 0);
}

#[tokio::test]
async fn start_and_stop_dates_bound_the_fires_then_the_alarm_is_disabled() {
    let store = memory();
    let base = t("2030-01-01T00:00:00Z");
    let clock = ManualClock::at(base);
    let rec = Recorder::new();
    let mut timing = cron("* * * * * *");
    timing.start = Some(base + 5_000);
    timing.stop = Some(base + 7_000);
    put_alarm(&store, &alarm("b", timing, base)).await;
    let s = scheduler("c0", &store, &rec, &clock);
    for _ in 0..10 {
        clock.advance(1_000);
        s.poll().await.unwrap();
    }
    let ticks: Vec<u64> = rec.fires().into_iter().map(|(_, t)| t).collect();
    assert_eq!(ticks, vec![base + 5_000, base + 6_000, base + 7_000]);
    let a = read_alarm(&store, "guest/b").await.unwrap();
    assert!(!a.status.active);
    assert_eq!(a.next, None);
    assert_eq!(a.status.reason.unwrap().kind, "AUTO");
}

#[tokio::test]
async fn once_alarms_fire_once_then_disable_or_delete_their_trigger() {
    let store = memory();
    let base = t("2030-01-01T00:00:00Z");
    let clock = ManualClock::at(base);
    let rec = Recorder::new();
    let once = Timing {
        schedule: Schedule::Once { date: base + 3_000 },
        start: None,
        stop: None,
    };
    put_alarm(&store, &alarm("keep", once.clone(), base)).await;
    let mut del = alarm("del", once.clone(), base);
    del.delete_after_fire = Some("true".into());
    put_alarm(&store, &del).await;
    let mut rules = alarm("rules", once, base);
    rules.delete_after_fire = Some("rules".into());
    put_alarm(&store, &rules).await;
    let s = scheduler("c0", &store, &rec, &clock);
    for _ in 0..6 {
        clock.advance(1_000);
        s.poll().await.unwrap();
    }
    let mut fires = rec.fires();
    fires.sort();
    assert_eq!(
        fires,
        vec![
            ("guest/del".to_string(), base + 3_000),
            ("guest/keep".to_string(), base + 3_000),
            ("guest/rules".to_string(), base + 3_000)
        ]
    );
    let mut deleted = rec.deleted.lock().unwrap().clone();
    deleted.sort();
    assert_eq!(
        deleted,
        vec![
            ("guest/del".to_string(), false),
            ("guest/rules".to_string(), true)
        ]
    );
    assert!(read_alarm(&store, "guest/del").await.is_none());
    assert!(read_alarm(&store, "guest/rules").await.is_none());
    let keep = read_alarm(&store, "guest/keep").await.unwrap();
    assert!(!keep.status.active);
    assert_eq!(keep.fired, 1);
}

#[tokio::test]
async fn ticks_missed_while_down_fire_once_and_are_counted_as_skipped() {
    let store = memory();
    let base = t("2030-01-01T00:00:00Z");
    let clock = ManualClock::at(base);
    let rec = Recorder::new();
    put_alarm(&store, &alarm("m", cron("* * * * * *"), base)).await;
    // "Down" for 5.5 s: a fresh scheduler (a restarted controller) then polls.
    clock.advance(5_500);
    let s = scheduler("c0", &store, &rec, &clock);
    s.poll().await.unwrap();
    assert_eq!(rec.fires(), vec![("guest/m".to_string(), base + 1_000)]);
    let a = read_alarm(&store, "guest/m").await.unwrap();
    assert_eq!(a.skipped, 4, "ticks 2..5 were skipped");
    assert_eq!(a.last_skip, Some(base + 5_500));
    assert_eq!(a.next, Some(base + 6_000), "the next tick is in the future");
    s.poll().await.unwrap();
    assert_eq!(rec.fires().len(), 1);
}

#[tokio::test]
async fn max_triggers_and_gone_triggers_end_the_alarm() {
    let store = memory();
    let base = t("2030-01-01T00:00:00Z");
    let clock = ManualClock::at(base);
    let rec = Recorder::new();
    let mut max = alarm("max", cron("* * * * * *"), base);
    max.triggers_left = Some(2);
    put_alarm(&store, &max).await;
    let s = scheduler("c0", &store, &rec, &clock);
    for _ in 0..5 {
        clock.advance(1_000);
        s.poll().await.unwrap();
    }
    assert_eq!(rec.fires().len(), 2);
    assert!(!read_alarm(&store, "guest/max").await.unwrap().status.active);

    let rec = Recorder::new();
    *rec.answer.lock().unwrap() = Fired::Gone("the trigger does not exist (404)".into());
    let now = clock.now_ms();
    put_alarm(&store, &alarm("gone", cron("* * * * * *"), now)).await;
    let s = scheduler("c0", &store, &rec, &clock);
    for _ in 0..3 {
        clock.advance(1_000);
        s.poll().await.unwrap();
    }
    assert_eq!(rec.fires().len(), 1, "fired once, then disabled");
    let a = read_alarm(&store, "guest/gone").await.unwrap();
    assert!(!a.status.active);
    assert_eq!(
        a.last_error.as_deref(),
        Some("the trigger does not exist (404)")
    );
}

#[tokio::test]
async fn two_schedulers_on_one_store_fire_each_tick_once_and_fail_over() {
    let store = memory();
    let base = t("2030-01-01T00:00:00Z");
    let clock = ManualClock::at(base);
    let (rec_a, rec_b) = (Recorder::new(), Recorder::new());
    put_alarm(&store, &alarm("x", cron("* * * * * *"), base)).await;
    put_alarm(&store, &alarm("y", cron("*/2 * * * * *"), base)).await;
    let a = scheduler("controller0", &store, &rec_a, &clock);
    let b = scheduler("controller1", &store, &rec_b, &clock);

    // Both poll every 250 ms for 20 s, in either order and at once.
    for i in 0..80 {
        clock.advance(250);
        if i % 2 == 0 {
            let (ra, rb) = tokio::join!(a.poll(), b.poll());
            assert!(
                ra.unwrap().leader ^ rb.unwrap().leader,
                "exactly one leader"
            );
        } else {
            b.poll().await.unwrap();
            a.poll().await.unwrap();
        }
    }
    let mut all = rec_a.fires();
    all.extend(rec_b.fires());
    let count = |id: &str| all.iter().filter(|(a, _)| a == id).count();
    assert_eq!(count("guest/x"), 20, "{all:?}");
    assert_eq!(count("guest/y"), 10, "{all:?}");
    let mut ticks = all.clone();
    ticks.sort();
    ticks.dedup();
    assert_eq!(ticks.len(), all.len(), "no tick fired twice");
    assert!(
        rec_a.fires().is_empty() || rec_b.fires().is_empty(),
        "the leader kept its lease"
    );
    let (follower, follower_rec) = if rec_a.fires().is_empty() {
        (&a, &rec_a)
    } else {
        (&b, &rec_b)
    };

    // The leader dies (stops polling): the follower fires nothing until the lease expires.
    let died = clock.now_ms();
    let mut first = None;
    for _ in 0..60 {
        clock.advance(250);
        follower.poll().await.unwrap();
        if first.is_none() && !follower_rec.fires().is_empty() {
            first = Some(clock.now_ms());
        }
    }
    let took_over = first.expect("the follower took over");
    // The lease was renewed when less than half of it was left: it ran out between 5 and
    // 10 s after the leader's last poll.
    assert!(
        took_over > died + 5_000 && took_over <= died + 10_250,
        "took over {} ms after the leader's last poll",
        took_over - died
    );
    // The ticks missed during the fail-over fire once each alarm, the rest are skipped,
    // then every tick again.
    let x: Vec<u64> = follower_rec
        .fires()
        .into_iter()
        .filter(|(id, _)| id == "guest/x")
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        x[0],
        died + 1_000 - (died % 1_000),
        "the first missed tick, once"
    );
    for w in x.windows(2).skip(1) {
        assert_eq!(w[1] - w[0], 1_000);
    }
    let skipped = read_alarm(&store, "guest/x").await.unwrap().skipped;
    assert!(skipped >= 4, "skipped {skipped}");
}

// ---------------------------------------------------------------- feed actions over the API

const FEED: &str = "/api/v1/namespaces/whisk.system/actions/alarms";

async fn alarms_env() -> Env {
    // The tests drive a scheduler of their own with a manual clock.
    let config = ControllerConfig::default().with_alarms(AlarmsConfig {
        enabled: false,
        ..AlarmsConfig::default()
    });
    let e = env_with(config).await;
    let c = e.controller.config();
    faas_http::catalog::install(
        e.store.as_ref(),
        &faas_http::catalog::Catalog::builtin().unwrap(),
        &c.limits,
        &c.manifest,
    )
    .await
    .unwrap();
    e
}

/// Invokes feed action `name` blocking as guest: (status, result).
async fn feed(e: &Env, name: &str, args: Value) -> (StatusCode, Value) {
    let r = post(
        &e.router,
        &format!("{FEED}/{name}?blocking=true&result=true"),
        Some(args),
    )
    .await;
    (r.status, r.json())
}

fn future(ms_from_now: u64) -> String {
    let ms = faas_core::entity::now_ms() + ms_from_now;
    faas_http::alarms::schedule::iso(ms)
}

async fn make_trigger(e: &Env, name: &str) {
    let r = put(
        &e.router,
        &format!("/api/v1/namespaces/_/triggers/{name}"),
        json!({"annotations": [{"key": "feed", "value": "/whisk.system/alarms/alarm"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn feed_lifecycle_create_read_update_pause_delete() {
    let e = alarms_env().await;
    make_trigger(&e, "tick").await;
    let base = json!({"triggerName": "/_/tick", "authKey": GUEST});
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let stop = future(3_600_000);
    let (s, r) = feed(
        &e,
        "alarm",
        with(json!({"lifecycleEvent": "CREATE", "cron": "*/10 * * * * *",
                    "timezone": "Europe/Paris", "stopDate": stop,
                    "trigger_payload": {"hello": "world"}})),
    )
    .await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({"status": "success"})));

    let (s, r) = feed(&e, "alarm", with(json!({"lifecycleEvent": "READ"}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        r["config"],
        json!({"name": "tick", "namespace": "guest", "payload": {"hello": "world"},
               "cron": "*/10 * * * * *", "timezone": "Europe/Paris", "stopDate": stop})
    );
    assert_eq!(r["status"]["active"], true);
    assert!(
        r["status"]["dateChangedISO"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // A second CREATE for the same trigger is refused; nothing changes.
    let (s, r) = feed(
        &e,
        "alarm",
        with(json!({"lifecycleEvent": "CREATE", "cron": "* * * * *"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert_eq!(
        r["error"],
        "an alarm for trigger /guest/tick exists already"
    );

    let (s, r) = feed(
        &e,
        "alarm",
        with(json!({"lifecycleEvent": "UPDATE", "cron": "0 * * * *"})),
    )
    .await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({"status": "success"})));
    let (_, r) = feed(&e, "alarm", with(json!({"lifecycleEvent": "READ"}))).await;
    assert_eq!(r["config"]["cron"], "0 * * * *");
    assert_eq!(r["config"]["timezone"], "Europe/Paris");

    let (s, r) = feed(&e, "alarm", with(json!({"lifecycleEvent": "UPDATE"}))).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert_eq!(r["error"], "no updatable parameters were specified");

    feed(&e, "alarm", with(json!({"lifecycleEvent": "PAUSE"}))).await;
    let (_, r) = feed(&e, "alarm", with(json!({"lifecycleEvent": "READ"}))).await;
    assert_eq!(r["status"]["active"], false);
    assert_eq!(r["status"]["reason"]["kind"], "USER");
    feed(&e, "alarm", with(json!({"lifecycleEvent": "UNPAUSE"}))).await;
    let (_, r) = feed(&e, "alarm", with(json!({"lifecycleEvent": "READ"}))).await;
    assert_eq!(r["status"]["active"], true);

    let (s, r) = feed(&e, "alarm", with(json!({"lifecycleEvent": "DELETE"}))).await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({"status": "success"})));
    assert!(e.store.get_document(ALARMS, "guest/tick").await.is_err());
    let (s, r) = feed(&e, "alarm", with(json!({"lifecycleEvent": "READ"}))).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert_eq!(r["error"], "could not find trigger in database");

    // interval and once read back their own parameters.
    let (s, _) = feed(
        &e,
        "interval",
        with(json!({"lifecycleEvent": "CREATE", "minutes": 5})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, r) = feed(&e, "interval", with(json!({"lifecycleEvent": "READ"}))).await;
    assert_eq!(r["config"]["minutes"], 5);
    assert!(r["config"]["startDate"].is_u64(), "{r}");
    feed(&e, "interval", with(json!({"lifecycleEvent": "DELETE"}))).await;
    let date = future(60_000);
    let (s, _) = feed(
        &e,
        "once",
        with(json!({"lifecycleEvent": "CREATE", "date": date, "deleteAfterFire": "Rules"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, r) = feed(&e, "once", with(json!({"lifecycleEvent": "READ"}))).await;
    assert_eq!(r["config"]["date"], date);
    assert_eq!(r["config"]["deleteAfterFire"], "rules");
}

#[tokio::test]
async fn feed_refusals_carry_the_packages_messages_and_store_nothing() {
    let e = alarms_env().await;
    make_trigger(&e, "t").await;
    let past = faas_http::alarms::schedule::iso(faas_core::entity::now_ms() - 60_000);
    let soon = future(60_000);
    let later = future(120_000);
    let cases: Vec<(&str, Value, String)> = vec![
        (
            "alarm",
            json!({"triggerName": null, "lifecycleEvent": "CREATE", "cron": "* * * * *"}),
            "no trigger name parameter was provided".into(),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE"}),
            "alarms trigger feed is missing the cron parameter".into(),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE", "cron": "61 * * * *"}),
            "cron pattern '61 * * * *' is not valid".into(),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE", "cron": "* * *"}),
            "cron pattern '* * *' is not valid".into(),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE", "cron": "* * * * *", "timezone": "Nowhere/Land"}),
            "Invalid timezone.".into(),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE", "cron": "* * * * *", "startDate": "soon"}),
            "startDate parameter 'soon' is not a valid Date".into(),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE", "cron": "* * * * *", "stopDate": past}),
            format!("stopDate parameter '{past}' must be in the future"),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE", "cron": "* * * * *", "startDate": later, "stopDate": soon}),
            format!(
                "stopDate parameter '{soon}' must be greater than the startDate parameter '{later}'"
            ),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE", "cron": "* * * * *", "maxTriggers": 3, "stopDate": soon}),
            "maxTriggers is not allowed when the stopDate parameter is specified".into(),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE", "cron": "0 0 1 1 *", "stopDate": soon}),
            "the first scheduled trigger fire is not until after the stop date".into(),
        ),
        (
            "interval",
            json!({"lifecycleEvent": "CREATE"}),
            "interval trigger feed is missing the minutes parameter".into(),
        ),
        (
            "interval",
            json!({"lifecycleEvent": "CREATE", "minutes": 1.5}),
            "the minutes parameter must be an integer".into(),
        ),
        (
            "interval",
            json!({"lifecycleEvent": "CREATE", "minutes": -2}),
            "the minutes parameter must be an integer greater than zero".into(),
        ),
        (
            "once",
            json!({"lifecycleEvent": "CREATE"}),
            "alarms once trigger feed is missing the date parameter".into(),
        ),
        (
            "once",
            json!({"lifecycleEvent": "CREATE", "date": past}),
            format!("date parameter '{past}' must be in the future"),
        ),
        (
            "once",
            json!({"lifecycleEvent": "CREATE", "date": soon, "deleteAfterFire": "maybe"}),
            "deleteAfterFire parameter must be one of [false, true, rules].".into(),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "EXPLODE"}),
            "unsupported lifecycleEvent".into(),
        ),
        // The key must be one of the trigger's namespace, and the trigger must exist.
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE", "cron": "* * * * *", "authKey": OTHER}),
            "Trigger authentication request failed.".into(),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE", "cron": "* * * * *", "authKey": "nope"}),
            "Trigger authentication request failed.".into(),
        ),
        (
            "alarm",
            json!({"lifecycleEvent": "CREATE", "cron": "* * * * *", "triggerName": "/_/missing"}),
            "Trigger authentication request failed.".into(),
        ),
    ];
    for (action, extra, message) in cases {
        let mut args = json!({"triggerName": "/_/t", "authKey": GUEST});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (s, r) = feed(&e, action, args.clone()).await;
        assert_eq!(s, StatusCode::BAD_GATEWAY, "{action} {args}: {r}");
        assert_eq!(r, json!({"error": message}), "{action} {args}");
    }
    assert!(e.store.list_documents(ALARMS).await.unwrap().is_empty());

    // Another namespace names "t": it means its own trigger (which it does not have).
    let r = call(
        &e.router,
        request(
            http::Method::POST,
            &format!("{FEED}/alarm?blocking=true&result=true"),
            Some(OTHER),
            Some(json!({"triggerName": "/guest/t", "authKey": OTHER,
                        "lifecycleEvent": "CREATE", "cron": "* * * * *"})),
        ),
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"error": "Trigger authentication request failed."})
    );
    assert!(e.store.list_documents(ALARMS).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_created_alarm_fires_its_trigger_and_rule_through_the_engine() {
    let e = alarms_env().await;
    let inv = FakeInvoker::start(&e).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    inv.serve(&e, move |msg| {
        seen2.lock().unwrap().push(msg.clone());
        ActivationResponse::success(json!({"ok": true}))
    });
    make_trigger(&e, "every").await;
    with_action(&e, "act", json!({})).await;
    let r = put(
        &e.router,
        "/api/v1/namespaces/_/rules/r",
        json!({"trigger": "every", "action": "act"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let (s, _) = feed(
        &e,
        "alarm",
        json!({"lifecycleEvent": "CREATE", "triggerName": "/_/every", "authKey": GUEST,
               "cron": "*/2 * * * * *", "trigger_payload": "tock"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let stored = read_alarm(&e.store, "guest/every").await.unwrap();
    let tick = stored.next.unwrap();

    let clock = ManualClock::at(tick);
    let s = Scheduler::new(
        "controller0",
        Arc::clone(&e.store),
        Arc::new(EngineFirer::new(e.controller.engine())),
        Arc::clone(&clock) as Arc<dyn Clock>,
        LEASE,
    );
    let report = s.poll().await.unwrap();
    assert_eq!(report.fired, vec![("guest/every".to_string(), tick)]);

    let msg = found("the rule's action", async || {
        seen.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(msg.content.as_ref().unwrap()["payload"], "tock");
    // The trigger's record holds the payload.
    let list = found("the trigger record", async || {
        let v = get(
            &e.router,
            "/api/v1/namespaces/_/activations?name=every&docs=true",
        )
        .await
        .json();
        v.as_array().is_some_and(|a| !a.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(list[0]["response"]["result"], json!({"payload": "tock"}));

    // The same tick fired again (a successor after a crash) keeps one activation.
    let again = Scheduler::new(
        "controller1",
        Arc::clone(&e.store),
        Arc::new(EngineFirer::new(e.controller.engine())),
        Arc::clone(&clock) as Arc<dyn Clock>,
        LEASE,
    );
    let mut doc = read_alarm(&e.store, "guest/every").await.unwrap();
    doc.next = Some(tick);
    let cur = e.store.get_document(ALARMS, "guest/every").await.unwrap();
    e.store
        .put_document(
            ALARMS,
            "guest/every",
            &serde_json::to_value(&doc).unwrap(),
            Some(&cur.rev),
        )
        .await
        .unwrap();
    clock.advance(LEASE.as_millis() as u64 + 1);
    let report = again.poll().await.unwrap();
    assert_eq!(report.fired.len(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.lock().unwrap().len(), 1, "one activation per tick");

    // A deleted trigger disables its alarm at the next fire.
    assert_eq!(
        delete(&e.router, "/api/v1/namespaces/_/triggers/every")
            .await
            .status,
        StatusCode::OK
    );
    let next = read_alarm(&e.store, "guest/every")
        .await
        .unwrap()
        .next
        .unwrap();
    clock.set(next);
    again.poll().await.unwrap();
    let a = read_alarm(&e.store, "guest/every").await.unwrap();
    assert!(!a.status.active);
}
