//! Activation records: list, get, `/logs`, `/result` ([OpenWhisk's REST API](https://github.com/apache/openwhisk/blob/master/docs/rest_api.md)).

use axum::extract::{Path, Request, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use faas_core::store::ActivationQuery;
use faas_core::{Activation, ActivationId, EntityPath};

use super::query::QueryParams;
use super::{Caller, State, json};
use crate::engine::Engine;
use crate::engine::entitlement::{Collection, Privilege, Resource};
use crate::error::{ApiError, messages};

const COLLECTION: &str = "activations";

/// `GET /namespaces/{ns}/activations`: newest first, filtered by `name`, `since`, `upto`,
/// paged by `skip`/`limit`; `docs=true` for full records, `count=true` for a count.
pub(crate) async fn list(
    AxState(s): State,
    Path(ns): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(&ns)?;
    caller
        .check(
            &s,
            Privilege::Read,
            &Resource::collection(EntityPath::namespace(&namespace), Collection::Activations),
        )
        .await?;
    let q = QueryParams::parse(req.uri().query());
    let limits = &s.config().limits;
    let skip = q.skip(COLLECTION)?;
    let limit = q.limit(COLLECTION, limits.default_list_limit, limits.max_list_limit)?;
    let count = q.boolean("count", false)?;
    let docs = q.boolean("docs", false)?;
    let name = match q.get("name").map(str::trim) {
        None | Some("") => None,
        Some(n) => Some(name_filter(n)?),
    };
    let since = q.epoch_ms("since")?;
    let upto = q.epoch_ms("upto")?;
    if count && docs {
        return Err(ApiError::bad_request(messages::DOCS_NOT_ALLOWED_WITH_COUNT));
    }
    let query = ActivationQuery {
        name,
        since,
        upto,
        skip,
        limit,
    };
    if count {
        let n = s.store().count_activations(&namespace, &query).await?;
        return Ok(json(
            StatusCode::OK,
            &json!({ COLLECTION: n.saturating_sub(skip) }),
        ));
    }
    let list = s.store().list_activations(&namespace, &query).await?;
    let body: Vec<Value> = list
        .iter()
        .map(|a| {
            if docs {
                a.to_api_json()
            } else {
                a.summary_json()
            }
        })
        .collect();
    Ok(json(StatusCode::OK, &body))
}

/// An activation `name` filter: `action` or `pkg/action`, each a valid entity name.
fn name_filter(value: &str) -> Result<String, ApiError> {
    let bad = || ApiError::malformed_query("name", &messages::bad_name_filter(value));
    let trimmed = value.strip_prefix('/').unwrap_or(value);
    let segments: Vec<&str> = trimmed.split('/').collect();
    if segments.len() > 2
        || segments
            .iter()
            .any(|seg| faas_core::names::validate_name(seg).is_err())
    {
        return Err(bad());
    }
    Ok(trimmed.to_string())
}

fn parse_id(id: &str) -> Result<ActivationId, ApiError> {
    ActivationId::parse(id).map_err(|_| ApiError::bad_request(messages::ACTIVATION_ID_ILLEGAL))
}

/// Reads record `id` of `{ns}` for the caller (who must own the namespace), waiting
/// briefly for a record whose result arrived but that is not stored yet.
async fn fetch_for(
    s: &Engine,
    ns: &str,
    id: &str,
    req: &mut Request,
) -> Result<Activation, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(ns)?;
    caller
        .check(
            s,
            Privilege::Read,
            &Resource::entity(
                EntityPath::namespace(&namespace),
                Collection::Activations,
                id,
            ),
        )
        .await?;
    let id = parse_id(id)?;
    Ok(s.activation(&namespace, &id).await?)
}

/// `GET /namespaces/{ns}/activations/{id}`: the record in the extended API form.
pub(crate) async fn get(
    AxState(s): State,
    Path((ns, id)): Path<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let a = fetch_for(&s, &ns, &id, &mut req).await?;
    Ok(json(StatusCode::OK, &a.to_api_json()))
}

/// `GET /namespaces/{ns}/activations/{id}/logs`: `{"logs": [...]}`.
pub(crate) async fn logs(
    AxState(s): State,
    Path((ns, id)): Path<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let a = fetch_for(&s, &ns, &id, &mut req).await?;
    Ok(json(StatusCode::OK, &json!({ "logs": a.logs })))
}

/// `GET /namespaces/{ns}/activations/{id}/result`: `{result, size?, success, status}`.
pub(crate) async fn result(
    AxState(s): State,
    Path((ns, id)): Path<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let a = fetch_for(&s, &ns, &id, &mut req).await?;
    Ok(json(StatusCode::OK, &a.result_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_filters() {
        assert_eq!(name_filter("hello").ok().as_deref(), Some("hello"));
        assert_eq!(name_filter("pkg/hello").ok().as_deref(), Some("pkg/hello"));
        let e = name_filter("a/b/c").unwrap_err();
        assert_eq!(
            e.message(),
            "The query parameter 'name' was malformed:\nParameter may be a 'simple' name or 'package-name/simple' name: a/b/c"
        );
        assert!(name_filter("a$").is_err());
    }
}
