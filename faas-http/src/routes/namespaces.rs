//! `GET /namespaces` and `GET /namespaces/{ns}/limits`.

use axum::extract::{Path, Request, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;

use faas_core::EntityPath;

use super::{Caller, State, json};
use crate::engine::entitlement::{Collection, Privilege, Resource};
use crate::error::ApiError;

/// `GET /api/v1/namespaces`: the caller's namespace, alone.
pub(crate) async fn list(mut req: Request) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    Ok(json(
        StatusCode::OK,
        &[caller.identity.namespace.name.as_str()],
    ))
}

/// `GET /api/v1/namespaces/{ns}/limits`: the caller's effective limits (OpenWhisk's `GET /namespaces/{ns}/limits`).
pub(crate) async fn limits(
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
            &Resource::collection(EntityPath::namespace(&namespace), Collection::Namespaces),
        )
        .await?;
    Ok(json(
        StatusCode::OK,
        &caller.identity.limits.effective_json(&s.config().limits),
    ))
}
