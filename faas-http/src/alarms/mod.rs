//! The built-in **alarms provider**: `whisk.system/alarms` (`alarm`, `interval`, `once`),
//! the feed of Apache `openwhisk-package-alarms`, living in the controller.
//!
//! * The feed actions are native actions ([`feed`]): invoked through the ordinary invoke path
//!   (throttles, entitlement, parameter merge, activation record) and answered by the
//!   controller, which writes the alarm into the store. Their action documents are installed
//!   by the catalog (`faas-http/catalog/alarms`) like any catalog action.
//! * The schedules ([`schedule`]) are computed with the `croner` crate (cron expressions, 5 or
//!   6 fields) and `chrono-tz` (time zones).
//! * The [`scheduler`] fires due alarms as the trigger's owner through [`Engine::fire`], with
//!   one leader among the controllers sharing the store (a lease through the store's
//!   conditional writes), so each tick fires once; its documentation says what happens to
//!   ticks missed while no controller ran.

pub mod feed;
pub mod schedule;
pub mod scheduler;

use std::sync::{Arc, Weak};

use async_trait::async_trait;

use faas_core::{AuthKey, EntityName, EntityPath, Error, FullyQualifiedName};

use crate::catalog::SYSTEM_NAMESPACE;
use crate::engine::{Engine, FireOutcome, FireRequest, Inner};
pub use feed::{AlarmFeed, FeedKind};
pub use scheduler::{Alarm, AlarmsConfig, Clock, Fired, Firer, Scheduler, SystemClock};

/// The catalog package of the feed actions.
pub const PACKAGE: &str = "alarms";

/// The feed actions' fully qualified names and kinds.
pub fn feed_actions() -> Vec<(FullyQualifiedName, FeedKind)> {
    [
        ("alarm", FeedKind::Cron),
        ("interval", FeedKind::Interval),
        ("once", FeedKind::Once),
    ]
    .into_iter()
    .filter_map(|(name, kind)| {
        let path = EntityPath::new(&format!("{SYSTEM_NAMESPACE}/{PACKAGE}")).ok()?;
        let name = EntityName::new(name).ok()?;
        Some((FullyQualifiedName::new(path, name), kind))
    })
    .collect()
}

/// Registers the feed actions on `engine` (done by [`Engine::new`]).
pub(crate) fn register(engine: &Engine, clock: &Arc<dyn Clock>) {
    for (fqn, kind) in feed_actions() {
        engine.register_native(fqn, Arc::new(AlarmFeed::new(kind, Arc::clone(clock))));
    }
}

/// The scheduler of a controller: fires through its engine.
pub(crate) fn scheduler_for(inner: &Arc<Inner>) -> Arc<Scheduler> {
    let config = &inner.config;
    Arc::new(Scheduler::new(
        format!("controller{}", config.id),
        Arc::clone(&inner.store),
        Arc::new(EngineFirer {
            engine: Arc::downgrade(inner),
        }),
        Arc::new(SystemClock),
        config.alarms.lease,
    ))
}

/// Fires alarms through an engine (held weakly: the scheduler is one of its tasks).
#[derive(Debug)]
pub struct EngineFirer {
    engine: Weak<Inner>,
}

impl EngineFirer {
    /// A firer over `engine`.
    pub fn new(engine: &Engine) -> Self {
        Self {
            engine: Arc::downgrade(&engine.inner),
        }
    }

    fn engine(&self) -> Option<Engine> {
        self.engine.upgrade().map(|inner| Engine { inner })
    }
}

#[async_trait]
impl Firer for EngineFirer {
    async fn fire(&self, alarm: &Alarm, tick: u64) -> Fired {
        let Some(engine) = self.engine() else {
            return Fired::Failed("the controller is stopping".into());
        };
        let Ok(key) = AuthKey::parse(&alarm.apikey) else {
            return Fired::Gone("the alarm's key is not valid".into());
        };
        let user = match engine.store().find_identity(&key).await {
            Ok(u) if u.namespace.name.as_str() == alarm.namespace => u,
            Ok(_) | Err(Error::NotFound { .. }) => {
                return Fired::Gone("the alarm's key is no longer valid (401)".into());
            }
            Err(e) => return Fired::Failed(e.to_string()),
        };
        let Ok(trigger) = FullyQualifiedName::resolve(&alarm.name, &alarm.namespace) else {
            return Fired::Gone("the trigger's name is not valid".into());
        };
        let id = crate::engine::fire::derived_id(&format!("alarm\n{}\n{tick}", alarm.id()));
        let req = FireRequest::new(trigger)
            .with_payload(Some(alarm.payload.clone()))
            .with_activation_id(id);
        match engine.fire(user, req).await {
            Ok(FireOutcome::Accepted(_) | FireOutcome::NoActiveRules) => Fired::Done,
            Err(Error::NotFound { .. } | Error::Forbidden { .. }) => {
                Fired::Gone("the trigger does not exist (404)".into())
            }
            Err(e) => Fired::Failed(e.to_string()),
        }
    }

    async fn delete_trigger(&self, alarm: &Alarm, with_rules: bool) {
        let Some(engine) = self.engine() else { return };
        let store = engine.store();
        let Ok(fqn) = FullyQualifiedName::resolve(&alarm.name, &alarm.namespace) else {
            return;
        };
        let Ok(doc) = store.get_entity(&fqn).await else {
            return;
        };
        if with_rules && let faas_core::Entity::Trigger(t) = &doc.value {
            for rule_id in t.rules.iter().flat_map(|r| r.keys()) {
                let Ok(rule) =
                    FullyQualifiedName::resolve(&format!("/{rule_id}"), &alarm.namespace)
                else {
                    continue;
                };
                if let Ok(r) = store.get_entity(&rule).await
                    && let Err(e) = store.delete_entity(&rule, &r.rev).await
                {
                    tracing::warn!(rule = %rule_id, error = %faas_core::Chain(&e), "deleting a fired once alarm's rule failed");
                }
            }
        }
        if let Err(e) = store.delete_entity(&fqn, &doc.rev).await {
            tracing::warn!(trigger = %fqn.doc_id(), error = %faas_core::Chain(&e), "deleting a fired once alarm's trigger failed");
        }
    }
}
