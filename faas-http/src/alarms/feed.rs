//! The feed actions `whisk.system/alarms/alarm`, `interval` and `once`, answered by the
//! controller (native actions, see [`crate::engine::native`]).
//!
//! They take what Apache's `action/alarm.js` passes on to its `alarmWebAction.js`:
//! `lifecycleEvent` (`CREATE`, `READ`, `UPDATE`, `DELETE`; here also `PAUSE` and `UNPAUSE`),
//! `triggerName`, `authKey` and the alarm's parameters, and validate them with the same rules
//! and messages. Success is `{"status": "success"}` (READ: `{"config", "status"}`); a refusal
//! is an application error whose result is `{"error": "<the package's message>"}`, so the
//! invoke fails and a client (`wsk`, the faas CLI) rolls the trigger back.
//!
//! As in Apache's `common.createWebParams`, the trigger is the caller's: `triggerName`'s
//! namespace is replaced by the namespace of whoever invokes the feed. The `authKey` must be a
//! key of that namespace and must see the trigger (Apache's `verifyTriggerAuth`: a trigger
//! `GET` with the key), else `Trigger authentication request failed.`; DELETE accepts a
//! trigger that is gone already.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use faas_core::store::Store;
use faas_core::{AuthKey, Error, FullyQualifiedName, Identity};

use super::schedule::{CronSpec, Schedule, Timing, iso, parse_date};
use super::scheduler::{ALARMS, Alarm, Clock, Status};
use crate::engine::entitlement::{Collection, Privilege, Resource};
use crate::engine::{Engine, NativeAction, NativeResult};

/// Which of the three feed actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// `alarm`: a cron schedule.
    Cron,
    /// `interval`: every `minutes`.
    Interval,
    /// `once`: at `date`.
    Once,
}

/// One of the feed actions.
#[derive(Debug)]
pub struct AlarmFeed {
    kind: FeedKind,
    clock: Arc<dyn Clock>,
}

impl AlarmFeed {
    /// The feed action of `kind`, reading time from `clock`.
    pub fn new(kind: FeedKind, clock: Arc<dyn Clock>) -> Self {
        Self { kind, clock }
    }
}

type Refusal = String;

fn param<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    args.get(name)
        .filter(|v| !v.is_null() && *v != &Value::Bool(false) && *v != &json!(""))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `validateDate` of `alarmWebAction.js`.
fn valid_date(
    v: &Value,
    name: &str,
    now: u64,
    start: Option<(u64, &Value)>,
) -> Result<u64, Refusal> {
    let shown = text(v);
    let Some(ms) = parse_date(v) else {
        return Err(format!("{name} parameter '{shown}' is not a valid Date"));
    };
    if now >= ms {
        return Err(format!("{name} parameter '{shown}' must be in the future"));
    }
    if let Some((start, given)) = start
        && ms <= start
    {
        return Err(format!(
            "{name} parameter '{shown}' must be greater than the startDate parameter '{}'",
            text(given)
        ));
    }
    Ok(ms)
}

/// The minutes parameter: an integer greater than zero.
fn minutes(v: &Value) -> Result<u64, Refusal> {
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .filter(|_| n.as_f64().is_some_and(|f| f.fract() == 0.0)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| "the minutes parameter must be an integer".to_string())?;
    u64::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "the minutes parameter must be an integer greater than zero".to_string())
}

fn delete_after_fire(v: &Value) -> Result<String, Refusal> {
    let s = text(v).trim().to_lowercase();
    if ["false", "true", "rules"].contains(&s.as_str()) {
        Ok(s)
    } else {
        Err("deleteAfterFire parameter must be one of [false, true, rules].".into())
    }
}

fn payload_of(v: Option<&Value>) -> Value {
    match v {
        Some(Value::String(s)) => json!({ "payload": s }),
        Some(v @ Value::Object(_)) => v.clone(),
        _ => json!({}),
    }
}

impl AlarmFeed {
    /// A new alarm from CREATE's parameters (the `post` branch of `alarmWebAction.js`).
    fn create_alarm(
        &self,
        args: &Map<String, Value>,
        namespace: &str,
        name: &str,
        apikey: &str,
        now: u64,
    ) -> Result<Alarm, Refusal> {
        let mut dates = Map::new();
        let mut delete = None;
        let mut triggers_left = None;
        let timing = match self.kind {
            FeedKind::Once => {
                let Some(d) = param(args, "date") else {
                    return Err("alarms once trigger feed is missing the date parameter".into());
                };
                let date = valid_date(d, "date", now, None)?;
                dates.insert("date".into(), d.clone());
                if let Some(v) = param(args, "deleteAfterFire") {
                    delete = Some(delete_after_fire(v)?);
                }
                Timing {
                    schedule: Schedule::Once { date },
                    start: None,
                    stop: None,
                }
            }
            FeedKind::Interval | FeedKind::Cron => {
                let schedule = if self.kind == FeedKind::Interval {
                    let Some(m) = param(args, "minutes") else {
                        return Err("interval trigger feed is missing the minutes parameter".into());
                    };
                    Schedule::Interval {
                        minutes: minutes(m)?,
                    }
                } else {
                    let Some(c) = param(args, "cron") else {
                        return Err("alarms trigger feed is missing the cron parameter".into());
                    };
                    let cron = text(c);
                    let timezone = param(args, "timezone").map(text);
                    CronSpec::parse(&cron, timezone.as_deref())?;
                    Schedule::Cron { cron, timezone }
                };
                let start = match param(args, "startDate") {
                    Some(v) => {
                        dates.insert("startDate".into(), v.clone());
                        Some(valid_date(v, "startDate", now, None)?)
                    }
                    // "if startDate was not given we will start it 30 seconds from now"
                    None if self.kind == FeedKind::Interval => {
                        let s = now + 30_000;
                        dates.insert("startDate".into(), json!(s));
                        Some(s)
                    }
                    None => None,
                };
                let max = param(args, "maxTriggers");
                let stop = param(args, "stopDate");
                if max.is_some() && stop.is_some() {
                    return Err(if self.kind == FeedKind::Interval {
                        "maxTriggers is not supported for the interval trigger feed".into()
                    } else {
                        "maxTriggers is not allowed when the stopDate parameter is specified".into()
                    });
                }
                let stop = match stop {
                    Some(v) => {
                        let given_start = param(args, "startDate")
                            .cloned()
                            .or_else(|| start.map(|s| json!(s)));
                        let bound = start.zip(given_start.as_ref());
                        let ms = valid_date(v, "stopDate", now, bound)?;
                        dates.insert("stopDate".into(), v.clone());
                        Some(ms)
                    }
                    None => None,
                };
                if let Some(m) = max {
                    match m.as_i64() {
                        Some(n) if n > 0 => triggers_left = u64::try_from(n).ok(),
                        _ => {}
                    }
                }
                let timing = Timing {
                    schedule,
                    start,
                    stop,
                };
                if stop.is_some() && timing.next_after(now).is_none() {
                    return Err(
                        "the first scheduled trigger fire is not until after the stop date".into(),
                    );
                }
                timing
            }
        };
        let next = timing.next_after(now);
        Ok(Alarm {
            namespace: namespace.into(),
            name: name.into(),
            apikey: apikey.into(),
            timing,
            dates,
            payload: payload_of(param(args, "trigger_payload")),
            delete_after_fire: delete,
            triggers_left,
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
        })
    }

    /// UPDATE (the `put` branch): changes what is given, keeps the rest.
    fn update_alarm(
        &self,
        alarm: &mut Alarm,
        args: &Map<String, Value>,
        now: u64,
    ) -> Result<(), Refusal> {
        let mut changed = false;
        if let Some(p) = param(args, "trigger_payload") {
            alarm.payload = payload_of(Some(p));
            changed = true;
        }
        match alarm.timing.schedule.clone() {
            Schedule::Once { .. } => {
                if let Some(d) = param(args, "date") {
                    let date = valid_date(d, "date", now, None)?;
                    alarm.timing.schedule = Schedule::Once { date };
                    alarm.dates.insert("date".into(), d.clone());
                    changed = true;
                }
                if let Some(v) = param(args, "deleteAfterFire") {
                    alarm.delete_after_fire = Some(delete_after_fire(v)?);
                    changed = true;
                }
            }
            schedule => {
                match schedule {
                    Schedule::Interval { .. } => {
                        if let Some(m) = param(args, "minutes") {
                            alarm.timing.schedule = Schedule::Interval {
                                minutes: minutes(m)?,
                            };
                            changed = true;
                        }
                    }
                    Schedule::Cron { cron, timezone } => {
                        let new_cron = param(args, "cron").map(text);
                        let new_tz = param(args, "timezone").map(text);
                        if new_cron.is_some() || new_tz.is_some() {
                            let cron = new_cron.unwrap_or(cron);
                            let timezone = new_tz.or(timezone);
                            CronSpec::parse(&cron, timezone.as_deref())?;
                            alarm.timing.schedule = Schedule::Cron { cron, timezone };
                            changed = true;
                        }
                    }
                    Schedule::Once { .. } => {}
                }
                if let Some(v) = param(args, "startDate") {
                    alarm.timing.start = Some(valid_date(v, "startDate", now, None)?);
                    alarm.dates.insert("startDate".into(), v.clone());
                    changed = true;
                }
                if let Some(v) = param(args, "stopDate") {
                    let given = alarm.dates.get("startDate").cloned();
                    let bound = alarm.timing.start.zip(given.as_ref());
                    alarm.timing.stop = Some(valid_date(v, "stopDate", now, bound)?);
                    alarm.dates.insert("stopDate".into(), v.clone());
                    changed = true;
                } else if let (Some(v), Some(stop)) = (param(args, "startDate"), alarm.timing.stop)
                    && alarm.timing.start.is_some_and(|s| s >= stop)
                {
                    return Err(format!(
                        "startDate parameter '{}' must be less than the stopDate parameter '{}'",
                        text(v),
                        alarm
                            .dates
                            .get("stopDate")
                            .map(text)
                            .unwrap_or_else(|| iso(stop))
                    ));
                }
            }
        }
        if !changed {
            return Err("no updatable parameters were specified".into());
        }
        alarm.next = alarm.timing.next_after(now);
        alarm.status = Status {
            active: true,
            date_changed: now,
            reason: None,
        };
        Ok(())
    }

    /// READ's answer.
    fn read_body(alarm: &Alarm) -> Value {
        let mut config = Map::new();
        config.insert("name".into(), json!(alarm.name));
        config.insert("namespace".into(), json!(alarm.namespace));
        config.insert("payload".into(), alarm.payload.clone());
        match &alarm.timing.schedule {
            Schedule::Once { .. } => {
                config.insert(
                    "date".into(),
                    alarm.dates.get("date").cloned().unwrap_or(Value::Null),
                );
                if let Some(d) = &alarm.delete_after_fire {
                    config.insert("deleteAfterFire".into(), json!(d));
                }
            }
            schedule => {
                for key in ["startDate", "stopDate"] {
                    if let Some(v) = alarm.dates.get(key) {
                        config.insert(key.into(), v.clone());
                    }
                }
                match schedule {
                    Schedule::Interval { minutes } => {
                        config.insert("minutes".into(), json!(minutes));
                    }
                    Schedule::Cron { cron, timezone } => {
                        config.insert("cron".into(), json!(cron));
                        if let Some(tz) = timezone {
                            config.insert("timezone".into(), json!(tz));
                        }
                    }
                    Schedule::Once { .. } => {}
                }
            }
        }
        let mut status = json!({
            "active": alarm.status.active,
            "dateChanged": alarm.status.date_changed,
            "dateChangedISO": iso(alarm.status.date_changed),
        });
        if let Some(r) = &alarm.status.reason {
            status["reason"] = json!(r);
        }
        json!({ "config": config, "status": status })
    }

    async fn run_event(
        &self,
        engine: &Engine,
        user: &Identity,
        args: &Map<String, Value>,
    ) -> Result<Value, Refusal> {
        let event = param(args, "lifecycleEvent").map(text).unwrap_or_default();
        let Some(trigger_name) = param(args, "triggerName").map(text) else {
            return Err("no trigger name parameter was provided".into());
        };
        // Apache's createWebParams: the trigger is in the invoking namespace.
        let short = match trigger_name.strip_prefix('/') {
            Some(rest) => rest.split_once('/').map_or("", |(_, n)| n).to_string(),
            None => trigger_name.clone(),
        };
        let namespace = user.namespace.name.as_str().to_string();
        let fqn = FullyQualifiedName::resolve(&short, &namespace)
            .map_err(|_| "Trigger authentication request failed.".to_string())?;
        let id = format!("{namespace}/{short}");
        let store = engine.store().as_ref();
        let now = self.clock.now_ms();
        if !["CREATE", "READ", "UPDATE", "DELETE", "PAUSE", "UNPAUSE"].contains(&event.as_str()) {
            return Err("unsupported lifecycleEvent".into());
        }
        let apikey = param(args, "authKey").map(text).unwrap_or_default();
        verify_trigger_auth(engine, &apikey, &namespace, &fqn, event == "DELETE").await?;
        if event == "CREATE" {
            let alarm = self.create_alarm(args, &namespace, &short, &apikey, now)?;
            let value = serde_json::to_value(&alarm).map_err(|e| e.to_string())?;
            return match store.put_document(ALARMS, &id, &value, None).await {
                Ok(_) => Ok(json!({"status": "success"})),
                Err(Error::Conflict { .. } | Error::AlreadyExists { .. }) => {
                    Err(format!("an alarm for trigger /{id} exists already"))
                }
                Err(e) => Err(format!("could not create the alarm: {e}")),
            };
        }
        let doc = match store.get_document(ALARMS, &id).await {
            Ok(d) => d,
            Err(Error::NotFound { .. }) => return Err("could not find trigger in database".into()),
            Err(e) => return Err(format!("could not read the alarm: {e}")),
        };
        let mut alarm: Alarm = serde_json::from_value(doc.value)
            .map_err(|e| format!("the stored alarm is not readable: {e}"))?;
        match event.as_str() {
            "READ" => return Ok(Self::read_body(&alarm)),
            "DELETE" => {
                return match store.delete_document(ALARMS, &id, &doc.rev).await {
                    Ok(()) | Err(Error::NotFound { .. }) => Ok(json!({"status": "success"})),
                    Err(e) => Err(format!("could not delete the alarm: {e}")),
                };
            }
            "UPDATE" => self.update_alarm(&mut alarm, args, now)?,
            "PAUSE" => alarm.deactivate(now, "USER", "Paused by its owner"),
            _ => {
                // UNPAUSE: ticks while paused are not fired.
                alarm.status = Status {
                    active: true,
                    date_changed: now,
                    reason: None,
                };
                alarm.next = alarm.timing.next_after(now);
            }
        }
        let value = serde_json::to_value(&alarm).map_err(|e| e.to_string())?;
        match store
            .put_document(ALARMS, &id, &value, Some(&doc.rev))
            .await
        {
            Ok(_) => Ok(json!({"status": "success"})),
            Err(Error::Conflict { .. }) => Err("the alarm changed meanwhile; try again".into()),
            Err(e) => Err(format!("could not update the alarm: {e}")),
        }
    }
}

/// Apache's `verifyTriggerAuth`: `apikey` is a key of `namespace` that may read `trigger`
/// (a missing trigger is accepted on delete).
async fn verify_trigger_auth(
    engine: &Engine,
    apikey: &str,
    namespace: &str,
    trigger: &FullyQualifiedName,
    is_delete: bool,
) -> Result<(), Refusal> {
    let refused = || "Trigger authentication request failed.".to_string();
    let key = AuthKey::parse(apikey).map_err(|_| refused())?;
    let store: &dyn Store = engine.store().as_ref();
    let identity = store.find_identity(&key).await.map_err(|_| refused())?;
    if identity.namespace.name.as_str() != namespace {
        return Err(refused());
    }
    let seen = engine
        .entitlement()
        .check(
            &identity,
            Privilege::Read,
            &Resource::entity(
                trigger.path.clone(),
                Collection::Triggers,
                trigger.name.as_str(),
            ),
        )
        .await;
    let seen = match seen {
        Ok(()) => store.get_entity(trigger).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match seen {
        Ok(()) => Ok(()),
        Err(Error::NotFound { .. }) if is_delete => Ok(()),
        Err(_) => Err(refused()),
    }
}

#[async_trait]
impl NativeAction for AlarmFeed {
    async fn run(&self, engine: &Engine, user: &Identity, args: Value) -> NativeResult {
        let args = match args {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        match self.run_event(engine, user, &args).await {
            Ok(v) => NativeResult::Success(v),
            Err(message) => NativeResult::ApplicationError(json!(message)),
        }
    }
}
