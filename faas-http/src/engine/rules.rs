//! A trigger's `rules` map, kept consistent with the rules that name it.
//!
//! OpenWhisk keeps, in each trigger document, a map from rule document id (`ns/rule`) to the
//! rule's action and status (`ReducedRule`); a fire reads only the trigger. Rules change that
//! map (create, update, enable/disable, delete), and so may several writers at once: two rules
//! created on one trigger at the same moment each read the trigger, add their link and write it
//! back. Every change here is therefore a read–modify–write at the revision read
//! ([`update_trigger`]): a write that meets another revision (`Conflict`) reads the trigger
//! again and re-applies its change, so no link is lost, in every store (CouchDB's `_rev`, the
//! SQLite and memory stores' revisions). OpenWhisk writes at the revision too, but answers a
//! conflict with 409 instead of trying again.

use std::time::Duration;

use backon::RetryableWithContext;

use faas_core::entity::{Entity, ReducedRule, Trigger};
use faas_core::store::Versioned;
use faas_core::{Error, FullyQualifiedName, Result, Store};

/// How many times a lost race on a trigger document is tried again.
const RETRIES: usize = 32;

/// Applies `change` to trigger `fqn` and writes it at the revision read, reading and applying
/// again after each lost race. `change` answers whether it changed anything (nothing is
/// written otherwise). Returns the trigger as written (or as read, when unchanged).
///
/// # Errors
///
/// `NotFound` when the trigger does not exist, `WrongCollection` when `fqn` is another kind
/// of entity, what `change` fails with, store failures, and `Conflict` after
/// 32 lost races.
pub async fn update_trigger(
    store: &dyn Store,
    fqn: &FullyQualifiedName,
    change: impl FnMut(&mut Trigger) -> Result<bool>,
) -> Result<Trigger> {
    // Someone else wrote the trigger meanwhile: read it again, after a pause. The jitter keeps
    // many writers of one hot trigger from colliding in lockstep.
    let backoff = backon::ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(50))
        .with_jitter()
        .with_max_times(RETRIES - 1);
    // `change` is handed from attempt to attempt (each attempt's future borrows it).
    let (_, written) = (|mut change| async move {
        let r = update_once(store, fqn, &mut change).await;
        (change, r)
    })
    .retry(backoff)
    .context(change)
    .when(|e| matches!(e, Error::Conflict { .. }))
    .await;
    written.map_err(|e| match e {
        Error::Conflict { .. } => Error::conflict(fqn.doc_id()),
        e => e,
    })
}

/// One read–modify–write of [`update_trigger`].
async fn update_once(
    store: &dyn Store,
    fqn: &FullyQualifiedName,
    change: &mut impl FnMut(&mut Trigger) -> Result<bool>,
) -> Result<Trigger> {
    let Versioned { value, rev } = store.get_entity(fqn).await?;
    let Entity::Trigger(mut trigger) = value else {
        return Err(Error::WrongCollection { id: fqn.doc_id() });
    };
    if !change(&mut trigger)? {
        return Ok(trigger);
    }
    let entity = Entity::Trigger(trigger);
    store.put_entity(&entity, Some(&rev)).await?;
    let Entity::Trigger(t) = entity else {
        return Err(Error::internal("a trigger became another kind"));
    };
    Ok(t)
}

/// Links rule `rule_id` to trigger `trigger` with `link` (replacing an older link of it).
///
/// # Errors
///
/// As [`update_trigger`].
pub async fn link(
    store: &dyn Store,
    trigger: &FullyQualifiedName,
    rule_id: &str,
    link: ReducedRule,
) -> Result<Trigger> {
    update_trigger(store, trigger, |t| {
        if t.rules.as_ref().and_then(|r| r.get(rule_id)) == Some(&link) {
            return Ok(false);
        }
        t.add_rule(rule_id, link.clone());
        Ok(true)
    })
    .await
}

/// Unlinks rule `rule_id` from trigger `trigger`; a missing trigger has nothing to unlink.
///
/// # Errors
///
/// As [`update_trigger`], except `NotFound`.
pub async fn unlink(store: &dyn Store, trigger: &FullyQualifiedName, rule_id: &str) -> Result<()> {
    match update_trigger(store, trigger, |t| Ok(t.remove_rule(rule_id))).await {
        Ok(_) | Err(Error::NotFound { .. } | Error::WrongCollection { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use faas_core::entity::{EntityRef, rule_status};
    use faas_core::{EntityName, EntityPath};
    use faas_store::MemoryStore;

    use super::*;

    fn trigger(ns: &str, name: &str) -> Entity {
        Entity::Trigger(Trigger {
            namespace: EntityPath::new(ns).unwrap(),
            name: EntityName::new(name).unwrap(),
            version: Default::default(),
            publish: false,
            parameters: Default::default(),
            limits: Default::default(),
            annotations: Default::default(),
            rules: None,
            updated: 1,
        })
    }

    fn reduced(action: &str, status: &str) -> ReducedRule {
        ReducedRule {
            action: EntityRef::of(&FullyQualifiedName::resolve(action, "ns").unwrap()),
            status: status.into(),
        }
    }

    #[tokio::test]
    async fn concurrent_links_are_all_kept() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        store.put_entity(&trigger("ns", "t"), None).await.unwrap();
        let fqn = FullyQualifiedName::resolve("/ns/t", "ns").unwrap();
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let store = Arc::clone(&store);
                let fqn = fqn.clone();
                tokio::spawn(async move {
                    link(
                        store.as_ref(),
                        &fqn,
                        &format!("ns/r{i}"),
                        reduced(&format!("a{i}"), rule_status::ACTIVE),
                    )
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let Entity::Trigger(t) = store.get_entity(&fqn).await.unwrap().value else {
            panic!("not a trigger")
        };
        assert_eq!(t.rules.as_ref().unwrap().len(), 24, "no link lost");
        unlink(store.as_ref(), &fqn, "ns/r3").await.unwrap();
        let Entity::Trigger(t) = store.get_entity(&fqn).await.unwrap().value else {
            panic!("not a trigger")
        };
        assert_eq!(t.rules.as_ref().unwrap().len(), 23);
        assert_eq!(t.rule_status("ns/r3"), rule_status::INACTIVE);
        assert_eq!(t.rule_status("ns/r4"), rule_status::ACTIVE);
        // Unlinking from a trigger that is gone is not an error.
        let gone = FullyQualifiedName::resolve("/ns/gone", "ns").unwrap();
        unlink(store.as_ref(), &gone, "ns/r1").await.unwrap();
        assert!(matches!(
            link(
                store.as_ref(),
                &gone,
                "ns/r1",
                reduced("a", rule_status::ACTIVE)
            )
            .await,
            Err(Error::NotFound { .. })
        ));
    }
}
