//! Small values tests build again and again (activation records, entities, names), defined
//! once.

use serde_json::json;

use crate::activation::{Activation, ActivationResponse};
use crate::entity::{Action, Entity, Exec, Trigger, now_ms};
use crate::limits::{ActionLimits, SystemLimits};
use crate::params::{Annotations, Parameters, SemVer};
use crate::{ActivationId, EntityName, EntityPath, FullyQualifiedName};

/// The start (and end) time of a [`record`]: a fixed instant, so records compare equal.
pub const RECORD_TIME: u64 = 1_700_000_000_000;

/// A minimal activation record of action `name` in `namespace`, run by the namespace's own
/// subject, that took no time and answered `response`; no logs, no annotations. Panics if
/// `namespace` or `name` is not a valid entity name (test input).
pub fn record(
    namespace: &str,
    name: &str,
    id: ActivationId,
    response: ActivationResponse,
) -> Activation {
    let ns = EntityName::new(namespace).expect("a valid namespace");
    Activation {
        namespace: EntityPath::namespace(&ns),
        name: EntityName::new(name).expect("a valid action name"),
        subject: namespace.into(),
        activation_id: id,
        start: RECORD_TIME,
        end: RECORD_TIME,
        duration: Some(0),
        cause: None,
        response,
        logs: vec![],
        version: Default::default(),
        publish: false,
        annotations: Default::default(),
    }
}

/// A trigger `name` in namespace `ns`, last updated at `updated`, with one parameter `u`
/// holding `updated` (so two versions differ in content, not only in time). Panics if `name`
/// is not a valid entity name (test input).
pub fn trigger(ns: &EntityName, name: &str, updated: u64) -> Entity {
    Entity::Trigger(Trigger {
        namespace: EntityPath::namespace(ns),
        name: EntityName::new(name).expect("a valid trigger name"),
        version: SemVer::default(),
        publish: false,
        parameters: Parameters::new().with("u", json!(updated)),
        limits: serde_json::Map::new(),
        annotations: Parameters::new(),
        rules: None,
        updated,
    })
}

/// The fully qualified name of `name` in namespace `ns`. Panics if `name` is not a valid
/// entity name (test input).
pub fn fqn(ns: &EntityName, name: &str) -> FullyQualifiedName {
    FullyQualifiedName::new(
        EntityPath::namespace(ns),
        EntityName::new(name).expect("a valid entity name"),
    )
}

/// A code action `name` of `kind` in `namespace`, running `code`, with the default limits,
/// annotated with its kind and asking for no API key (`provide-api-key: false`), updated now.
/// Panics if `namespace` or `name` is not a valid entity name (test input).
pub fn code_action(namespace: &str, name: &str, kind: &str, code: &str) -> Action {
    Action {
        namespace: EntityPath::new(namespace).expect("a valid namespace"),
        name: EntityName::new(name).expect("a valid action name"),
        version: SemVer::default(),
        publish: false,
        exec: Exec::Code {
            kind: kind.into(),
            code: code.into(),
            binary: false,
            main: None,
        },
        parameters: Parameters::new(),
        limits: ActionLimits::defaults(&SystemLimits::default()),
        annotations: Annotations::new()
            .with("provide-api-key", json!(false))
            .with("exec", json!(kind)),
        updated: now_ms(),
    }
}
