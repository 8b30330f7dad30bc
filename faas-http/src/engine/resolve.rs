//! Resolution: from a name as a caller wrote it to the action that runs, through its package
//! and binding, with the inherited parameters merged (package < binding < action).
//!
//! Resolution is entitled: it goes through the [`Entitlement`] check (which reads the package
//! and the bound package once and hands them over as a
//! [`PackageView`](super::entitlement::PackageView)).

use faas_core::entity::Entity;
use faas_core::params::Parameters;
use faas_core::store::{Revision, Versioned};
use faas_core::{Action, EntityPath, Error, FullyQualifiedName, Identity, Result, Store};

use super::entitlement::{Entitlement, Privilege, denied, is_owner};

/// An action resolved for reading or invoking.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResolvedAction {
    /// The action as stored (its `namespace` is where it lives: a bound package's path when
    /// reached through a binding).
    pub action: Action,
    /// The revision read.
    pub rev: Revision,
    /// The parameters it runs with before the payload: package < binding < action.
    pub parameters: Parameters,
    /// The binding it was reached through (`ns/binding`), if any.
    pub binding: Option<EntityPath>,
}

/// Resolves the (qualified) action `fqn` for `user` with `right` (read or activate).
pub(crate) async fn resolve_action(
    store: &dyn Store,
    user: &Identity,
    fqn: &FullyQualifiedName,
    right: Privilege,
) -> Result<ResolvedAction> {
    let fqn = super::qualify(user, fqn.clone())?;
    let entitlement = Entitlement::new(store);
    let (target, inherited, binding) = match fqn.path.package() {
        None => {
            if !user.rights.contains(&right) || !is_owner(user, fqn.path.root()) {
                return Err(denied(&[fqn.doc_id()]));
            }
            (fqn, None, None)
        }
        Some(pkg) => {
            let pkg = FullyQualifiedName::new(
                EntityPath::new(fqn.path.root())?,
                faas_core::EntityName::new(pkg)?,
            );
            if !user.rights.contains(&right) {
                return Err(denied(&[pkg.doc_id()]));
            }
            let view = entitlement.package(user, &pkg).await?;
            (
                FullyQualifiedName::new(view.path.clone(), fqn.name),
                Some(view.parameters),
                view.binding,
            )
        }
    };
    let Versioned { value, rev } = store.get_entity(&target).await?;
    let Entity::Action(action) = value else {
        return Err(Error::WrongCollection {
            id: target.doc_id(),
        });
    };
    let parameters = match inherited {
        Some(p) => p.merged(&action.parameters),
        None => action.parameters.clone(),
    };
    Ok(ResolvedAction {
        action,
        rev,
        parameters,
        binding,
    })
}
