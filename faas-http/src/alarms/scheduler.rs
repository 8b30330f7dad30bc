//! The alarm scheduler: alarms as store documents, one leader controller that fires them,
//! and the lease that makes it one.
//!
//! Every alarm is a document of collection [`ALARMS`] under the trigger's id `ns/name`
//! ([`Alarm`]): its timing, payload, the key it fires with, whether it is active, and `next`,
//! the tick it fires at next. The document is the whole state, so an alarm survives a
//! restart of any controller and any controller can fire it.
//!
//! **Leader lease.** Each controller runs a [`Scheduler`] that polls. A poll first holds the
//! lease, document [`LEASE_ID`] of collection [`LEASE`] (`{"owner", "until"}`): it creates it
//! when absent, renews it when it is its own (when less than half of it is left), or takes it
//! over when it has expired (`until` passed); every one of these writes is conditional (create
//! if absent, replace at the revision read), so of two controllers racing for it exactly one
//! wins. Only the holder fires, and only while its lease is unexpired by its own clock;
//! when it dies, another controller takes over once the lease expires (at most
//! [`AlarmsConfig::lease`] later). The controllers' clocks are assumed to agree within a small
//! part of the lease.
//!
//! **A tick.** The leader fires every active alarm whose `next` has come, then writes the
//! alarm with its new `next` at the revision read. The fire's activation id is derived from
//! the alarm and the tick, so if a leader dies between the fire and the write, its successor
//! fires the same tick again with the same id and the engine processes it once (a fire whose
//! trigger record exists is skipped, see [`crate::engine::fire`]).
//!
//! **Missed ticks.** A tick whose time passed while no controller ran (or while the lease
//! changed hands) is **fired once, late**, when a leader next polls; the ticks after it that
//! also passed are not fired but **counted as skipped** in the alarm (`skipped`, and `lastSkip`
//! with the time), and `next` moves to the first tick in the future.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use faas_core::{Error, Result, Store};

use super::schedule::Timing;

/// The collection of alarm documents.
pub const ALARMS: &str = "alarms";
/// The collection of the leader lease.
pub const LEASE: &str = "alarms_lease";
/// The lease's document id.
pub const LEASE_ID: &str = "leader";

/// The alarms provider's settings.
#[derive(Debug, Clone)]
pub struct AlarmsConfig {
    /// Whether this controller runs the scheduler (the feed actions are served either way).
    pub enabled: bool,
    /// How often the scheduler polls (the precision of a tick).
    pub poll: Duration,
    /// How long a leader lease lasts without renewal (the fail-over time).
    pub lease: Duration,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll: Duration::from_millis(250),
            lease: Duration::from_secs(10),
        }
    }
}

/// Why an alarm is inactive, or was changed (the Apache provider's `status.reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    /// `AUTO` (the provider) or `USER` (a PAUSE).
    pub kind: String,
    /// What happened.
    pub message: String,
}

/// An alarm's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Whether it fires.
    pub active: bool,
    /// When it last changed, epoch ms.
    pub date_changed: u64,
    /// Why it is inactive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// One alarm: the document under the trigger's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    /// The trigger's namespace.
    pub namespace: String,
    /// The trigger's name.
    pub name: String,
    /// The key the feed was given (`uuid:key`); fires are made as its identity.
    pub apikey: String,
    /// The schedule and its bounds.
    pub timing: Timing,
    /// The dates as given (`startDate`, `stopDate`, `date`), answered by READ.
    #[serde(default)]
    pub dates: serde_json::Map<String, Value>,
    /// The fire's payload (`trigger_payload`).
    #[serde(default)]
    pub payload: Value,
    /// `false`, `true` or `rules` (once alarms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_after_fire: Option<String>,
    /// Fires left (`maxTriggers`), `None` for unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers_left: Option<u64>,
    /// The status.
    pub status: Status,
    /// The next tick, epoch ms; `None` when it has none left.
    #[serde(default)]
    pub next: Option<u64>,
    /// Ticks fired.
    #[serde(default)]
    pub fired: u64,
    /// The last tick fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fire: Option<u64>,
    /// Ticks not fired because they passed while no controller fired them (see the module
    /// documentation).
    #[serde(default)]
    pub skipped: u64,
    /// When ticks were last skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_skip: Option<u64>,
    /// The last fire's error, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Alarm {
    /// The document id: the trigger's `ns/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
    /// Makes the alarm inactive for `message`.
    pub fn deactivate(&mut self, now: u64, kind: &str, message: impl Into<String>) {
        self.status = Status {
            active: false,
            date_changed: now,
            reason: Some(Reason {
                kind: kind.into(),
                message: message.into(),
            }),
        };
    }
}

/// What firing one tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// The trigger was fired (or has no active rule).
    Done,
    /// The trigger or the key is gone: the alarm is disabled (the Apache provider disables
    /// a trigger whose fire answers 404 or 401).
    Gone(String),
    /// The fire failed otherwise (logged in the alarm; the tick is not fired again).
    Failed(String),
}

/// Fires alarms' triggers (the engine in a controller; a recorder in tests).
#[async_trait]
pub trait Firer: Send + Sync + fmt::Debug {
    /// Fires `alarm`'s trigger for tick `tick`.
    async fn fire(&self, alarm: &Alarm, tick: u64) -> Fired;
    /// After a once alarm fired: deletes the trigger (`true`), or its rules and the trigger
    /// (`rules`).
    async fn delete_trigger(&self, alarm: &Alarm, with_rules: bool);
}

/// Epoch milliseconds, injectable.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, epoch ms.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        faas_core::entity::now_ms()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    owner: String,
    until: u64,
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Whether this scheduler held the lease.
    pub leader: bool,
    /// `(alarm id, tick)` of each tick fired.
    pub fired: Vec<(String, u64)>,
}

/// One controller's alarm scheduler (see the module documentation).
#[derive(Debug)]
pub struct Scheduler {
    owner: String,
    store: Arc<dyn Store>,
    firer: Arc<dyn Firer>,
    clock: Arc<dyn Clock>,
    lease: Duration,
    /// The end of this scheduler's lease as it last wrote it.
    held_until: std::sync::Mutex<u64>,
}

impl Scheduler {
    /// A scheduler named `owner` (unique among the controllers sharing `store`).
    pub fn new(
        owner: impl Into<String>,
        store: Arc<dyn Store>,
        firer: Arc<dyn Firer>,
        clock: Arc<dyn Clock>,
        lease: Duration,
    ) -> Self {
        Self {
            owner: owner.into(),
            store,
            firer,
            clock,
            lease,
            held_until: std::sync::Mutex::new(0),
        }
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }

    fn held_until(&self) -> u64 {
        *self
            .held_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_held_until(&self, until: u64) {
        *self
            .held_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = until;
    }

    /// Holds the lease at `now` (creating, renewing or taking it over); whether this
    /// scheduler is the leader.
    async fn hold_lease(&self, now: u64) -> Result<bool> {
        let until = now.saturating_add(self.lease_ms());
        let mine = json!({"owner": self.owner, "until": until});
        let written = match self.store.get_document(LEASE, LEASE_ID).await {
            Ok(doc) => {
                let lease: Lease = serde_json::from_value(doc.value).unwrap_or(Lease {
                    owner: String::new(),
                    until: 0,
                });
                if lease.owner == self.owner {
                    if lease.until.saturating_sub(now) > self.lease_ms() / 2 {
                        self.set_held_until(lease.until);
                        return Ok(true);
                    }
                } else if lease.until > now {
                    self.set_held_until(0);
                    return Ok(false);
                } else {
                    tracing::info!(owner = %self.owner, previous = %lease.owner, "taking over the expired alarms lease");
                }
                self.store
                    .put_document(LEASE, LEASE_ID, &mine, Some(&doc.rev))
                    .await
            }
            Err(Error::NotFound { .. }) => {
                self.store.put_document(LEASE, LEASE_ID, &mine, None).await
            }
            Err(e) => return Err(e),
        };
        match written {
            Ok(_) => {
                self.set_held_until(until);
                Ok(true)
            }
            // Another controller wrote it first (created it, or renewed or took it over).
            Err(Error::Conflict { .. } | Error::AlreadyExists { .. }) => {
                self.set_held_until(0);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// One poll: holds the lease, then (as leader) fires every due tick.
    ///
    /// # Errors
    ///
    /// The store's, when the lease or the alarms cannot be read.
    pub async fn poll(&self) -> Result<PollReport> {
        let now = self.clock.now_ms();
        let mut report = PollReport::default();
        if !self.hold_lease(now).await? {
            return Ok(report);
        }
        report.leader = true;
        for doc in self.store.list_documents(ALARMS).await? {
            let Ok(mut alarm) = serde_json::from_value::<Alarm>(doc.value) else {
                tracing::warn!(id = %doc.id, "skipping an undecodable alarm document");
                continue;
            };
            let Some(tick) = alarm.next.filter(|t| *t <= now) else {
                continue;
            };
            if !alarm.status.active {
                continue;
            }
            // Fire only while the lease is ours by our own clock.
            let now = self.clock.now_ms();
            if now >= self.held_until() {
                break;
            }
            let outcome = self.firer.fire(&alarm, tick).await;
            report.fired.push((doc.id.clone(), tick));
            let now = self.clock.now_ms();
            let mut delete_trigger = None;
            alarm.last_fire = Some(tick);
            match outcome {
                Fired::Done => {
                    alarm.fired += 1;
                    alarm.last_error = None;
                }
                Fired::Gone(why) => {
                    alarm.last_error = Some(why.clone());
                    alarm.deactivate(now, "AUTO", why);
                }
                Fired::Failed(why) => {
                    tracing::warn!(id = %doc.id, tick, error = %why, "an alarm's fire failed");
                    alarm.last_error = Some(why);
                }
            }
            let skipped = alarm.timing.count_between(tick, now);
            if skipped > 0 {
                alarm.skipped += skipped;
                alarm.last_skip = Some(now);
                tracing::warn!(id = %doc.id, skipped, "alarm ticks passed while no controller fired them: fired the first once, skipped the rest");
            }
            alarm.next = alarm.timing.next_after(tick.max(now));
            if let Some(left) = alarm.triggers_left.as_mut() {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    alarm.next = None;
                }
            }
            if alarm.next.is_none() && alarm.status.active {
                match alarm.delete_after_fire.as_deref() {
                    Some("true") => delete_trigger = Some(false),
                    Some("rules") => delete_trigger = Some(true),
                    _ => {}
                }
                alarm.deactivate(
                    now,
                    "AUTO",
                    "Automatically disabled after firing the last scheduled fire",
                );
            }
            if let Some(with_rules) = delete_trigger {
                self.firer.delete_trigger(&alarm, with_rules).await;
                match self.store.delete_document(ALARMS, &doc.id, &doc.rev).await {
                    Ok(()) | Err(Error::NotFound { .. } | Error::Conflict { .. }) => {}
                    Err(e) => {
                        tracing::warn!(id = %doc.id, error = %faas_core::Chain(&e), "deleting a fired once alarm failed")
                    }
                }
                continue;
            }
            let value = serde_json::to_value(&alarm)
                .map_err(|e| Error::internal(format!("cannot encode an alarm: {e}")))?;
            match self
                .store
                .put_document(ALARMS, &doc.id, &value, Some(&doc.rev))
                .await
            {
                // Changed meanwhile by its feed (UPDATE, DELETE): the change wins; its `next`
                // was computed afresh.
                Ok(_) | Err(Error::Conflict { .. }) => {}
                Err(e) => {
                    tracing::warn!(id = %doc.id, error = %faas_core::Chain(&e), "recording an alarm's fire failed")
                }
            }
        }
        Ok(report)
    }

    /// Polls every `every` (at least 10 ms) until the task is aborted.
    pub async fn run(self: Arc<Self>, every: Duration) {
        let mut interval = tokio::time::interval(every.max(Duration::from_millis(10)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = self.poll().await {
                tracing::warn!(error = %faas_core::Chain(&e), "an alarms poll failed");
            }
        }
    }
}
