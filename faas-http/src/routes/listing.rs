//! What the collection list routes share: the caller's read check on a namespace's collection,
//! and a page of its entities (`skip`, `limit`, `count`).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use faas_core::store::ListQuery;
use faas_core::{Entity, EntityKind, EntityPath};

use super::query::QueryParams;
use super::{Caller, json};
use crate::engine::Engine;
use crate::engine::entitlement::{Collection, Privilege, Resource};
use crate::error::ApiError;

/// The namespace `ns` names for `caller` (`_` is its own), once the one entitlement check
/// allows it to read `collection` there.
pub(crate) async fn readable(
    engine: &Engine,
    caller: &Caller,
    ns: &str,
    collection: Collection,
) -> Result<EntityPath, ApiError> {
    let path = EntityPath::namespace(&caller.namespace(ns)?);
    caller
        .check(
            engine,
            Privilege::Read,
            &Resource::collection(path.clone(), collection),
        )
        .await?;
    Ok(path)
}

/// The answer of a list route: a page of the `kind` entities at `path` as `show` renders them
/// (entities it answers `None` for are left out), or with `count=true` their number past
/// `skip` under the key `name` (also the collection's name in parameter errors).
pub(crate) async fn page(
    engine: &Engine,
    path: &EntityPath,
    kind: EntityKind,
    name: &'static str,
    q: &QueryParams<'_>,
    show: impl Fn(&Entity) -> Option<Value>,
) -> Result<Response, ApiError> {
    let limits = &engine.config().limits;
    let skip = q.skip(name)?;
    let limit = q.limit(name, limits.default_list_limit, limits.max_list_limit)?;
    if q.boolean("count", false)? {
        let n = engine.store().count_entities(path, kind).await?;
        return Ok(json(
            StatusCode::OK,
            &json!({ name: n.saturating_sub(skip) }),
        ));
    }
    let list = engine
        .store()
        .list_entities(path, kind, ListQuery { skip, limit })
        .await?;
    let body: Vec<Value> = list.iter().filter_map(show).collect();
    Ok(json(StatusCode::OK, &body))
}
