//! Entitlement: the one check every path that names an entity goes through.
//!
//! OpenWhisk's rules (`entitlement/Collection.scala`, `ActionCollection.scala`,
//! `PackageCollection.scala`):
//!
//! * a namespace **owns** its entities: its identities hold every right the collection allows
//!   on them (actions: read, write, delete, activate; packages: read, write, delete; triggers
//!   and rules: all four; activations, namespaces and limits: read);
//! * another namespace may **read a package** only if it is published (`publish: true`) and
//!   is not a binding; a binding is readable by its owner when the package it binds is
//!   readable by that owner (owned, or published);
//! * another namespace may **read or activate an action inside a package** exactly when it may
//!   read the package (directly or through its own binding to it); actions in a namespace's
//!   default package never cross;
//! * anyone may list another namespace's packages (the listing shows only its published
//!   ones); nothing else crosses.
//!
//! A denied resource answers `403 The supplied authentication is not authorized to access
//! '<resource>'.` whether it exists or not: a foreign package that is missing, private, a
//! binding, or not a package at all is denied identically (OpenWhisk: "this prevents
//! information leaks about packages in other namespaces"). Only a caller's own missing
//! entity answers `404`.
//!
//! The check reads at most two documents (the package and the package a binding names) and
//! returns what it read as a [`PackageView`], so resolution does not read them again.

use std::collections::BTreeSet;

use faas_core::entity::{Entity, Package};
pub use faas_core::identity::Privilege;
use faas_core::names::DEFAULT_NAMESPACE;
use faas_core::params::Parameters;
use faas_core::{EntityName, EntityPath, Error, FullyQualifiedName, Identity, Result, Store};

use crate::error::messages;

/// The collections of OpenWhisk's REST API, as entitlement sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Collection {
    /// `/actions`.
    Actions,
    /// `/packages`.
    Packages,
    /// `/triggers`.
    Triggers,
    /// `/rules`.
    Rules,
    /// `/activations`.
    Activations,
    /// `/namespaces` and `/limits`.
    Namespaces,
}

impl Collection {
    /// The rights an owner holds on one entity of the collection.
    fn entity_rights(self) -> &'static [Privilege] {
        use Privilege::*;
        match self {
            Self::Actions | Self::Triggers | Self::Rules => &[Read, Put, Delete, Activate],
            Self::Packages => &[Read, Put, Delete],
            Self::Activations | Self::Namespaces => &[Read],
        }
    }
}

/// A resource a right is asked on: a collection in a namespace path, optionally one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `ns`, or `ns/pkg` for actions in a package.
    pub namespace: EntityPath,
    /// The collection.
    pub collection: Collection,
    /// The entity's name (or an activation id); `None` for the collection itself (listing).
    pub entity: Option<String>,
}

impl Resource {
    /// One entity.
    pub fn entity(namespace: EntityPath, collection: Collection, name: impl Into<String>) -> Self {
        Self {
            namespace,
            collection,
            entity: Some(name.into()),
        }
    }
    /// A collection (for listing).
    pub fn collection(namespace: EntityPath, collection: Collection) -> Self {
        Self {
            namespace,
            collection,
            entity: None,
        }
    }
    /// The action named by `fqn`.
    pub fn action(fqn: &FullyQualifiedName) -> Self {
        Self::entity(fqn.path.clone(), Collection::Actions, fqn.name.as_str())
    }
    /// How OpenWhisk names it in a 403: `ns[/pkg][/name]`.
    pub fn fqname(&self) -> String {
        match &self.entity {
            Some(e) => format!("{}/{e}", self.namespace),
            None => self.namespace.to_string(),
        }
    }
}

/// A package as a caller reaches it: itself, or a binding and the package it binds.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PackageView {
    /// Where the package's actions live (`ns/pkg` of the package itself, or of the bound one).
    pub path: EntityPath,
    /// Parameters the actions inherit: the package's, overlaid by the binding's.
    pub parameters: Parameters,
    /// The binding the package was reached through (`ns/binding`), if any.
    pub binding: Option<EntityPath>,
    /// The document asked for (the package, or the binding).
    pub package: Package,
    /// For a binding: the package it binds.
    pub bound: Option<Package>,
}

/// The `403` for `resource` (several are listed sorted, comma-separated, as OpenWhisk does).
pub fn denied(resources: &[String]) -> Error {
    let names: BTreeSet<&str> = resources.iter().map(String::as_str).collect();
    let joined: Vec<&str> = names.into_iter().collect();
    Error::Forbidden {
        message: messages::not_authorized(&joined.join(", ")),
    }
}

/// Whether `user` owns the namespace `root`.
///
/// Resources reach the check qualified: `_` is replaced by the caller's namespace before
/// (see [`qualify`](super::qualify) and [`namespace_of`]); a literal `_` owns nothing.
pub fn is_owner(user: &Identity, root: &str) -> bool {
    root == user.namespace.name.as_str()
}

/// The namespace a request's `{ns}` names: the caller's own for `_`.
///
/// # Errors
///
/// `BadRequest` when `ns` is not a valid name (an encoded `/` included).
pub fn namespace_of(user: &Identity, ns: &str) -> Result<EntityName> {
    if ns == DEFAULT_NAMESPACE {
        Ok(user.namespace.name.clone())
    } else {
        EntityName::new(ns)
    }
}

/// The entitlement check over a store. Cheap to make; borrows the store.
#[derive(Debug, Clone, Copy)]
pub struct Entitlement<'a> {
    store: &'a dyn Store,
}

/// The answer of one check before it becomes an error.
enum Verdict<T> {
    Allowed(T),
    /// Denied: the resource to name in the `403`.
    Denied(String),
}

impl<'a> Entitlement<'a> {
    /// The check over `store`.
    pub fn new(store: &'a dyn Store) -> Self {
        Self { store }
    }

    /// Whether `user` holds `right` on `resource`.
    ///
    /// # Errors
    ///
    /// `Forbidden` naming the resource when denied; `NotFound` or `WrongCollection` when a
    /// package the caller owns (and that the answer depends on) is missing or is not a
    /// package; store failures as they are.
    pub async fn check(
        &self,
        user: &Identity,
        right: Privilege,
        resource: &Resource,
    ) -> Result<()> {
        match self.verdict(user, right, resource).await? {
            Verdict::Allowed(()) => Ok(()),
            Verdict::Denied(name) => Err(denied(&[name])),
        }
    }

    /// Checks every resource; denies with all denied resources named, as OpenWhisk does
    /// for the components of a sequence.
    pub async fn check_all(
        &self,
        user: &Identity,
        right: Privilege,
        resources: &[Resource],
    ) -> Result<()> {
        let mut refused = Vec::new();
        for r in resources {
            if let Verdict::Denied(name) = self.verdict(user, right, r).await? {
                refused.push(name);
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(denied(&refused))
        }
    }

    async fn verdict(
        &self,
        user: &Identity,
        right: Privilege,
        resource: &Resource,
    ) -> Result<Verdict<()>> {
        let deny = || Ok(Verdict::Denied(resource.fqname()));
        if !user.rights.contains(&right) {
            return deny();
        }
        let owner = is_owner(user, resource.namespace.root());
        let Some(name) = &resource.entity else {
            // Collections: only reads; anyone may list packages (the handler shows others
            // only the published ones), only owners the rest.
            let allowed =
                right == Privilege::Read && (owner || resource.collection == Collection::Packages);
            return if allowed {
                Ok(Verdict::Allowed(()))
            } else {
                deny()
            };
        };
        let package = match (resource.collection, resource.namespace.package()) {
            // Reading or activating an action in a package is reading the package (named in
            // the 403 when denied).
            (Collection::Actions, Some(pkg))
                if matches!(right, Privilege::Read | Privilege::Activate) =>
            {
                FullyQualifiedName::new(
                    EntityPath::new(resource.namespace.root())?,
                    EntityName::new(pkg)?,
                )
            }
            (Collection::Packages, _) if right == Privilege::Read => FullyQualifiedName::new(
                EntityPath::new(resource.namespace.root())?,
                EntityName::new(name.as_str())?,
            ),
            (collection, _) => {
                return if owner && collection.entity_rights().contains(&right) {
                    Ok(Verdict::Allowed(()))
                } else {
                    deny()
                };
            }
        };
        Ok(match self.package_view(user, &package).await? {
            Verdict::Allowed(_) => Verdict::Allowed(()),
            Verdict::Denied(name) => Verdict::Denied(name),
        })
    }

    /// Reads package `pkg` (`ns/name`) for `user` and resolves its binding: the view of the
    /// package whose actions the caller reaches through it.
    ///
    /// # Errors
    ///
    /// `Forbidden` naming `pkg` when the caller may not read it (a foreign package that is
    /// missing, private or a binding; or the caller's binding to a package it may not read);
    /// `NotFound` / `WrongCollection` for the caller's own missing or non-package documents.
    pub async fn package(&self, user: &Identity, pkg: &FullyQualifiedName) -> Result<PackageView> {
        match self.package_view(user, pkg).await? {
            Verdict::Allowed(v) => Ok(v),
            Verdict::Denied(name) => Err(denied(&[name])),
        }
    }

    async fn package_view(
        &self,
        user: &Identity,
        pkg: &FullyQualifiedName,
    ) -> Result<Verdict<PackageView>> {
        let deny = || Ok(Verdict::Denied(pkg.doc_id()));
        if !user.rights.contains(&Privilege::Read) {
            return deny();
        }
        let owner = is_owner(user, pkg.path.root());
        let p = match self.read_package(pkg, owner).await? {
            Verdict::Allowed(p) => p,
            Verdict::Denied(_) => return deny(),
        };
        let own_path = pkg.path.join(&pkg.name);
        let Some(b) = p.binding.clone() else {
            if !(p.publish || owner) {
                return deny();
            }
            return Ok(Verdict::Allowed(PackageView {
                path: own_path,
                parameters: p.parameters.clone(),
                binding: None,
                package: p,
                bound: None,
            }));
        };
        if !owner {
            // Another namespace's bindings are never readable.
            return deny();
        }
        let bound_fqn =
            FullyQualifiedName::new(EntityPath::namespace(&b.namespace), b.name.clone());
        if bound_fqn == *pkg {
            return deny();
        }
        let bound_owner = is_owner(user, b.namespace.as_str());
        let bound = match self.read_package(&bound_fqn, bound_owner).await? {
            Verdict::Allowed(bp) => bp,
            Verdict::Denied(_) => return deny(),
        };
        // A binding may only name a package (never another binding), and one the owner can read.
        if bound.binding.is_some() || !(bound.publish || bound_owner) {
            return deny();
        }
        Ok(Verdict::Allowed(PackageView {
            path: bound_fqn.path.join(&bound_fqn.name),
            parameters: bound.parameters.merged(&p.parameters),
            binding: Some(own_path),
            package: p,
            bound: Some(bound),
        }))
    }

    /// Reads a package document: a caller's own missing document is `NotFound` (another
    /// kind of entity: `WrongCollection`); a foreign one that is missing or not a package is
    /// denied, like a private one.
    async fn read_package(
        &self,
        fqn: &FullyQualifiedName,
        owner: bool,
    ) -> Result<Verdict<Package>> {
        match self.store.get_entity(fqn).await {
            Ok(v) => match v.value {
                Entity::Package(p) => Ok(Verdict::Allowed(p)),
                _ if owner => Err(Error::WrongCollection { id: fqn.doc_id() }),
                _ => Ok(Verdict::Denied(fqn.doc_id())),
            },
            Err(Error::NotFound { .. }) if !owner => Ok(Verdict::Denied(fqn.doc_id())),
            Err(e) => Err(e),
        }
    }
}
