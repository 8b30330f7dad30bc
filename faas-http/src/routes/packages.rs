//! Packages and bindings: list, get, create/update, delete (OpenWhisk `Packages.scala`).
//!
//! * `GET /namespaces/{ns}/packages` lists every package and binding of the caller's own
//!   namespace, and only the published packages (never bindings) of another namespace.
//! * `GET /namespaces/{ns}/packages/{name}` answers the package with its `actions` and
//!   `feeds` (actions annotated `feed`); a binding answers as itself with the bound package's
//!   parameters under its own, and the bound package's actions. Foreign packages are readable
//!   only when published (the one entitlement check).
//! * `PUT` creates or (`overwrite=true`) updates a package or a binding
//!   (`binding: {namespace, name}`, `_` for the caller's namespace). The bound package must
//!   be readable by the caller, exist, and be a package, not a binding; a package cannot
//!   become a binding; the name `default` is reserved.
//! * `DELETE` deletes a binding, or a package with no actions (`force=true` deletes its
//!   actions first).

use axum::extract::{Path, Request, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use faas_core::entity::{Binding, Package, PackagePut};
use faas_core::store::{ListQuery, Versioned};
use faas_core::{Entity, EntityKind, EntityName, EntityPath, Error, FullyQualifiedName, Identity};

use super::query::QueryParams;
use super::{Caller, State, json, read_body};
use crate::engine::Engine;
use crate::engine::entitlement::{Collection, Privilege, Resource, is_owner};
use crate::error::ApiError;

const COLLECTION: &str = "packages";

/// 400 for a binding to a package that does not exist.
pub(crate) const BINDING_DOES_NOT_EXIST: &str = "Binding references a package that does not exist.";
/// 400 for a binding to a binding.
pub(crate) const BINDING_TO_BINDING: &str = "Cannot bind to another package binding.";
/// 409 for a binding to something that is not a package.
pub(crate) const BINDING_NOT_A_PACKAGE: &str = "Cannot bind to a resource that is not a package.";
/// 409 for turning a package into a binding.
pub(crate) const PACKAGE_CANNOT_BECOME_BINDING: &str =
    "Resource is a package and cannot be converted into a binding.";

fn reserved(name: &str) -> ApiError {
    ApiError::bad_request(format!("Package name '{name}' is reserved."))
}

fn not_empty(n: usize) -> ApiError {
    let what = if n == 1 { "entity" } else { "entities" };
    ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "Package not empty (contains {n} {what}). Set force param or delete package contents."
        ),
    )
}

fn package_fqn(namespace: &EntityName, name: &str) -> Result<FullyQualifiedName, ApiError> {
    Ok(FullyQualifiedName::new(
        EntityPath::namespace(namespace),
        EntityName::new(name)?,
    ))
}

// ---------------------------------------------------------------------------------------
// list

/// `GET /namespaces/{ns}/packages` (`skip`, `limit`, `count`): own packages and bindings, or
/// another namespace's published packages.
pub(crate) async fn list(
    AxState(engine): State,
    Path(ns): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(&ns)?;
    let path = EntityPath::namespace(&namespace);
    caller
        .check(
            &engine,
            Privilege::Read,
            &Resource::collection(path.clone(), Collection::Packages),
        )
        .await?;
    let q = QueryParams::parse(req.uri().query());
    let limits = &engine.config().limits;
    let skip = q.skip(COLLECTION)?;
    let limit = q.limit(COLLECTION, limits.default_list_limit, limits.max_list_limit)?;
    let count = q.boolean("count", false)?;
    let store = engine.store();
    if is_owner(&caller.identity, namespace.as_str()) {
        if count {
            let n = store.count_entities(&path, EntityKind::Package).await?;
            return Ok(json(
                StatusCode::OK,
                &json!({ COLLECTION: n.saturating_sub(skip) }),
            ));
        }
        let list = store
            .list_entities(&path, EntityKind::Package, ListQuery { skip, limit })
            .await?;
        return Ok(json(StatusCode::OK, &summaries(list.iter())));
    }
    // Another namespace: only its published packages (OpenWhisk's `packages-public` view),
    // filtered here and then paged.
    let all = store
        .list_entities(&path, EntityKind::Package, ListQuery::default())
        .await?;
    let public = all.iter().filter(|e| match e {
        Entity::Package(p) => p.publish && p.binding.is_none(),
        _ => false,
    });
    if count {
        let n = public.count() as u64;
        return Ok(json(
            StatusCode::OK,
            &json!({ COLLECTION: n.saturating_sub(skip) }),
        ));
    }
    let skip = usize::try_from(skip).unwrap_or(usize::MAX);
    let take = if limit == 0 {
        usize::MAX
    } else {
        usize::try_from(limit).unwrap_or(usize::MAX)
    };
    Ok(json(
        StatusCode::OK,
        &summaries(public.skip(skip).take(take)),
    ))
}

fn summaries<'a>(entities: impl Iterator<Item = &'a Entity>) -> Vec<Value> {
    entities
        .filter_map(|e| match e {
            Entity::Package(p) => Some(p.summary_json()),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// get

/// `GET /namespaces/{ns}/packages/{name}`: the package (or binding, merged with the package
/// it binds) with its `actions` and `feeds`.
pub(crate) async fn get(
    AxState(engine): State,
    Path((ns, name)): Path<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(&ns)?;
    let fqn = package_fqn(&namespace, &name)?;
    let view = engine.entitlement().package(&caller.identity, &fqn).await?;
    let mut doc = view.package;
    doc.parameters = view.parameters;
    let actions = engine
        .store()
        .list_entities(&view.path, EntityKind::Action, ListQuery::default())
        .await?;
    let (feeds, plain): (Vec<&faas_core::Action>, Vec<&faas_core::Action>) = actions
        .iter()
        .filter_map(Entity::as_action)
        .partition(|a| a.annotations.get("feed").is_some());
    let entry = |a: &&faas_core::Action| json!({"name": a.name, "version": a.version, "annotations": a.annotations});
    let mut body = Entity::Package(doc).to_api_json();
    if let Some(o) = body.as_object_mut() {
        o.insert(
            "actions".into(),
            Value::Array(plain.iter().map(entry).collect()),
        );
        o.insert(
            "feeds".into(),
            Value::Array(feeds.iter().map(entry).collect()),
        );
    }
    Ok(json(StatusCode::OK, &body))
}

// ---------------------------------------------------------------------------------------
// put

/// Checks a binding target: the caller may read it, it exists, and it is a package that is
/// not itself a binding (OpenWhisk's `checkBinding` and `rewriteEntitlementFailure`).
async fn check_binding(engine: &Engine, user: &Identity, target: &Binding) -> Result<(), ApiError> {
    let resource = Resource::entity(
        EntityPath::namespace(&target.namespace),
        Collection::Packages,
        target.name.as_str(),
    );
    match engine
        .entitlement()
        .check(user, Privilege::Read, &resource)
        .await
    {
        Ok(()) => {}
        Err(Error::NotFound { .. }) => {
            return Err(ApiError::bad_request(BINDING_DOES_NOT_EXIST));
        }
        Err(Error::WrongCollection { .. }) => {
            return Err(ApiError::new(StatusCode::CONFLICT, BINDING_NOT_A_PACKAGE));
        }
        Err(e) => return Err(e.into()),
    }
    let fqn = FullyQualifiedName::new(
        EntityPath::namespace(&target.namespace),
        target.name.clone(),
    );
    match engine.store().get_entity(&fqn).await {
        Ok(Versioned {
            value: Entity::Package(p),
            ..
        }) if p.binding.is_some() => Err(ApiError::bad_request(BINDING_TO_BINDING)),
        Ok(Versioned {
            value: Entity::Package(_),
            ..
        }) => Ok(()),
        Ok(_) => Err(ApiError::new(StatusCode::CONFLICT, BINDING_NOT_A_PACKAGE)),
        Err(Error::NotFound { .. }) => Err(ApiError::bad_request(BINDING_DOES_NOT_EXIST)),
        Err(e) => Err(e.into()),
    }
}

/// `PUT /namespaces/{ns}/packages/{name}` (`overwrite=true` to update): a package or a
/// binding.
pub(crate) async fn put(
    AxState(engine): State,
    Path((ns, name)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = Caller::take(&mut parts.extensions)?;
    let namespace = caller.namespace(&ns)?;
    let fqn = package_fqn(&namespace, &name)?;
    caller
        .check(
            &engine,
            Privilege::Put,
            &Resource::entity(fqn.path.clone(), Collection::Packages, name.as_str()),
        )
        .await?;
    if name == "default" {
        return Err(reserved(&name));
    }
    let overwrite = QueryParams::parse(parts.uri.query()).boolean("overwrite", false)?;
    let bytes = read_body(body, &parts.headers, engine.config().max_request_bytes()).await?;
    let content: PackagePut = serde_json::from_slice(&bytes).map_err(Error::from)?;
    drop(bytes);
    let target = content.binding_target(&namespace);
    if let Some(t) = &target {
        check_binding(&engine, &caller.identity, t).await?;
    }
    let existing = match engine.store().get_entity(&fqn).await {
        Ok(v) => Some(v),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let sys = &engine.config().limits;
    let (package, rev) = match existing {
        Some(Versioned {
            value: Entity::Package(old),
            rev,
        }) => {
            if !overwrite {
                return Err(Error::AlreadyExists { id: fqn.doc_id() }.into());
            }
            if target.is_some() && old.binding.is_none() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    PACKAGE_CANNOT_BECOME_BINDING,
                ));
            }
            (
                content.into_package(&fqn, target, Some(&old), sys)?,
                Some(rev),
            )
        }
        Some(_) => return Err(Error::WrongCollection { id: fqn.doc_id() }.into()),
        None => (content.into_package(&fqn, target, None, sys)?, None),
    };
    let entity = Entity::Package(package);
    engine.store().put_entity(&entity, rev.as_ref()).await?;
    Ok(json(StatusCode::OK, &entity.to_api_json()))
}

// ---------------------------------------------------------------------------------------
// delete

/// `DELETE /namespaces/{ns}/packages/{name}` (`force=true` deletes the package's actions
/// first): answers the deleted package.
pub(crate) async fn delete(
    AxState(engine): State,
    Path((ns, name)): Path<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(&ns)?;
    let fqn = package_fqn(&namespace, &name)?;
    caller
        .check(
            &engine,
            Privilege::Delete,
            &Resource::entity(fqn.path.clone(), Collection::Packages, name.as_str()),
        )
        .await?;
    let force = QueryParams::parse(req.uri().query()).boolean("force", false)?;
    let store = engine.store();
    let Versioned { value, rev } = store.get_entity(&fqn).await?;
    let Entity::Package(package) = &value else {
        return Err(Error::WrongCollection { id: fqn.doc_id() }.into());
    };
    if package.binding.is_none() {
        let path = fqn.path.join(&fqn.name);
        let actions = store
            .list_entities(&path, EntityKind::Action, ListQuery::default())
            .await?;
        if !actions.is_empty() {
            if !force {
                return Err(not_empty(actions.len()));
            }
            for a in &actions {
                let id = FullyQualifiedName::new(a.namespace().clone(), a.name().clone());
                match store.get_entity(&id).await {
                    Ok(v) => match store.delete_entity(&id, &v.rev).await {
                        Ok(()) | Err(Error::NotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    },
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    store.delete_entity(&fqn, &rev).await?;
    Ok(json(StatusCode::OK, &without_actions(package)))
}

fn without_actions(p: &Package) -> Value {
    Entity::Package(p.clone()).to_api_json()
}
