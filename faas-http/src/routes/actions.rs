//! Actions: list, get, create/update, delete, invoke (§1.2–1.4, §2.1, §5), in the default
//! package (`/actions/{name}`) and in packages (`/actions/{pkg}/{name}`, list `/actions/{pkg}/`).

use std::time::Duration;

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Request, State as AxState};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use faas_core::entity::{ActionPut, Package, now_ms};
use faas_core::params::Parameters;
use faas_core::store::{ListQuery, Revision, Versioned};
use faas_core::{
    Action, Activation, Entity, EntityKind, EntityName, EntityPath, Error, Exec,
    FullyQualifiedName, Identity,
};

use super::query::QueryParams;
use super::{Caller, State, entitled, json, read_body};
use crate::controller::Shared;
use crate::dispatch::{Dispatched, Invocation};
use crate::error::{ApiError, messages};
use crate::throttle::share;

const COLLECTION: &str = "actions";

/// The response header naming the activation of an invoke.
pub const ACTIVATION_ID_HEADER: &str = "x-openwhisk-activation-id";

/// An action address as the request wrote it.
pub(crate) struct ActionPath {
    ns: String,
    pkg: Option<String>,
    name: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ActionPath {
    type Rejection = ApiError;

    /// Reads `{ns}`, `{name}` and, on package routes, `{pkg}`: one handler per method serves
    /// both `/actions/{name}` and `/actions/{pkg}/{name}`.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(mut segs) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::from(Error::bad_request(e.body_text())))?;
        let mut take = |k: &str| {
            segs.remove(k)
                .ok_or_else(|| ApiError::from(Error::internal(format!("route lacks {{{k}}}"))))
        };
        let ns = take("ns")?;
        let name = take("name")?;
        Ok(Self {
            ns,
            pkg: segs.remove("pkg"),
            name,
        })
    }
}

impl ActionPath {
    /// What a 403 names: the action, or the package for packaged actions (as OpenWhisk,
    /// which checks the package).
    fn resource(&self) -> String {
        match &self.pkg {
            Some(p) => format!("{}/{p}", self.ns),
            None => format!("{}/{}", self.ns, self.name),
        }
    }
}

/// A package as seen through the request: where its actions live and their inherited
/// parameters.
struct ResolvedPackage {
    path: EntityPath,
    params: Parameters,
    binding: Option<EntityPath>,
}

fn wrong_collection(id: String) -> ApiError {
    Error::WrongCollection { id }.into()
}

async fn get_package(s: &Shared, fqn: &FullyQualifiedName) -> Result<Package, ApiError> {
    match s.store.get_entity(fqn).await?.value {
        Entity::Package(p) => Ok(p),
        _ => Err(wrong_collection(fqn.doc_id())),
    }
}

/// Resolves `ns/pkg`, following a binding (bound package parameters < binding parameters).
async fn resolve_package(
    s: &Shared,
    identity: &Identity,
    namespace: &EntityName,
    pkg: &str,
) -> Result<ResolvedPackage, ApiError> {
    let pkg_name = EntityName::new(pkg)?;
    let own_path = EntityPath::namespace(namespace);
    let fqn = FullyQualifiedName::new(own_path.clone(), pkg_name.clone());
    let p = get_package(s, &fqn).await?;
    let Some(b) = p.binding else {
        return Ok(ResolvedPackage {
            path: own_path.join(&pkg_name),
            params: p.parameters,
            binding: None,
        });
    };
    let bound_ns = EntityPath::namespace(&b.namespace);
    let bound = get_package(
        s,
        &FullyQualifiedName::new(bound_ns.clone(), b.name.clone()),
    )
    .await?;
    if b.namespace != identity.namespace.name && !bound.publish {
        return Err(ApiError::forbidden(&format!("{}/{}", b.namespace, b.name)));
    }
    Ok(ResolvedPackage {
        path: bound_ns.join(&b.name),
        params: bound.parameters.merged(&p.parameters),
        binding: Some(own_path.join(&pkg_name)),
    })
}

/// For writes inside a package: it must exist and must not be a binding.
async fn check_package_writable(s: &Shared, path: &EntityPath) -> Result<(), ApiError> {
    let (Some(pkg), root) = (path.package(), path.root()) else {
        return Ok(());
    };
    let fqn = FullyQualifiedName::new(EntityPath::new(root)?, EntityName::new(pkg)?);
    if get_package(s, &fqn).await?.binding.is_some() {
        return Err(ApiError::bad_request(messages::NOT_ALLOWED_ON_BINDING));
    }
    Ok(())
}

/// The name an action is stored under: `ns/name` or `ns/pkg/name`.
fn action_fqn(namespace: &EntityName, path: &ActionPath) -> Result<FullyQualifiedName, ApiError> {
    let mut p = EntityPath::namespace(namespace);
    if let Some(pkg) = &path.pkg {
        p = p.join(&EntityName::new(pkg.as_str())?);
    }
    Ok(FullyQualifiedName::new(
        p,
        EntityName::new(path.name.as_str())?,
    ))
}

/// An action resolved for reading or invoking.
struct Target {
    action: Action,
    rev: Revision,
    package: Option<ResolvedPackage>,
}

async fn resolve_target(
    s: &Shared,
    identity: &Identity,
    namespace: &EntityName,
    path: &ActionPath,
) -> Result<Target, ApiError> {
    let name = EntityName::new(path.name.as_str())?;
    let package = match &path.pkg {
        Some(p) => Some(resolve_package(s, identity, namespace, p).await?),
        None => None,
    };
    let action_path = package
        .as_ref()
        .map_or_else(|| EntityPath::namespace(namespace), |p| p.path.clone());
    let fqn = FullyQualifiedName::new(action_path, name);
    let Versioned { value, rev } = s.store.get_entity(&fqn).await?;
    match value {
        Entity::Action(action) => Ok(Target {
            action,
            rev,
            package,
        }),
        _ => Err(wrong_collection(fqn.doc_id())),
    }
}

// ---------------------------------------------------------------------------------------
// list

async fn list_path(
    s: &Shared,
    path: &EntityPath,
    q: &QueryParams<'_>,
) -> Result<Response, ApiError> {
    let limits = &s.config.limits;
    let skip = q.skip(COLLECTION)?;
    let limit = q.limit(COLLECTION, limits.default_list_limit, limits.max_list_limit)?;
    if q.boolean("count", false)? {
        let n = s.store.count_entities(path, EntityKind::Action).await?;
        return Ok(json(
            StatusCode::OK,
            &json!({ COLLECTION: n.saturating_sub(skip) }),
        ));
    }
    let list = s
        .store
        .list_entities(path, EntityKind::Action, ListQuery { skip, limit })
        .await?;
    let body: Vec<Value> = list
        .iter()
        .filter_map(Entity::as_action)
        .map(Action::summary_json)
        .collect();
    Ok(json(StatusCode::OK, &body))
}

/// `GET /namespaces/{ns}/actions`: every action of the namespace (packaged ones too).
pub(crate) async fn list(
    AxState(s): State,
    Path(ns): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(&ns, &ns)?;
    let q = QueryParams::parse(req.uri().query());
    list_path(&s, &EntityPath::namespace(&namespace), &q).await
}

/// `GET /namespaces/{ns}/actions/{pkg}/`: the actions of a package (or of a binding's package).
pub(crate) async fn list_package(
    AxState(s): State,
    Path((ns, pkg)): Path<(String, String)>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(&ns, &format!("{ns}/{pkg}"))?;
    let q = QueryParams::parse(req.uri().query());
    let resolved = resolve_package(&s, &caller.identity, &namespace, &pkg).await?;
    list_path(&s, &resolved.path, &q).await
}

// ---------------------------------------------------------------------------------------
// get

/// `GET /namespaces/{ns}/actions/[{pkg}/]{name}` (`code=false`: without the code); packaged
/// actions inherit their package's parameters.
pub(crate) async fn get(
    AxState(s): State,
    path: ActionPath,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(&path.ns, &path.resource())?;
    let code = QueryParams::parse(req.uri().query()).boolean("code", true)?;
    let Target {
        mut action,
        package,
        ..
    } = resolve_target(&s, &caller.identity, &namespace, &path).await?;
    if let Some(p) = package {
        action.parameters = p.params.merged(&action.parameters);
    }
    let exec_without_code = (!code).then(|| action.exec.without_code());
    let mut body = Entity::Action(action).to_api_json();
    if let (Some(exec), Some(o)) = (exec_without_code, body.as_object_mut()) {
        o.insert("exec".into(), exec);
    }
    Ok(json(StatusCode::OK, &body))
}

// ---------------------------------------------------------------------------------------
// put

fn check_kind(identity: &Identity, exec: &Exec) -> Result<(), ApiError> {
    if let Some(kinds) = &identity.limits.allowed_kinds {
        let kind = exec.kind();
        if !kinds.iter().any(|k| k == kind) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                messages::kind_not_allowed(kind),
            ));
        }
    }
    Ok(())
}

/// `PUT /namespaces/{ns}/actions/[{pkg}/]{name}` (`overwrite=true` to update); the package
/// must exist and not be a binding.
pub(crate) async fn put(
    AxState(s): State,
    path: ActionPath,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let caller = Caller::take(&mut parts.extensions)?;
    let namespace = caller.namespace(&path.ns, &path.resource())?;
    let overwrite = QueryParams::parse(parts.uri.query()).boolean("overwrite", false)?;
    let fqn = action_fqn(&namespace, &path)?;
    let bytes = read_body(body, &parts.headers, s.config.max_request_bytes()).await?;
    let content: ActionPut = serde_json::from_slice(&bytes).map_err(Error::from)?;
    // The raw body is not needed any more: free it before the entity is stored and echoed.
    drop(bytes);
    check_package_writable(&s, &fqn.path).await?;
    let existing = match s.store.get_entity(&fqn).await {
        Ok(v) => Some(v),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let sys = &s.config.limits;
    let manifest = &s.config.manifest;
    let (action, rev) = match existing {
        Some(Versioned {
            value: Entity::Action(old),
            rev,
        }) => {
            if !overwrite {
                return Err(Error::AlreadyExists { id: fqn.doc_id() }.into());
            }
            (
                content.into_action(&fqn, Some(&old), sys, manifest)?,
                Some(rev),
            )
        }
        Some(_) => return Err(wrong_collection(fqn.doc_id())),
        None => (content.into_action(&fqn, None, sys, manifest)?, None),
    };
    check_kind(&caller.identity, &action.exec)?;
    if let Exec::Sequence { components } = &action.exec {
        crate::sequence::validate(&s, &fqn, components).await?;
    }
    let entity = Entity::Action(action);
    s.store.put_entity(&entity, rev.as_ref()).await?;
    Ok(json(StatusCode::OK, &entity.to_api_json()))
}

// ---------------------------------------------------------------------------------------
// delete

/// `DELETE /namespaces/{ns}/actions/[{pkg}/]{name}`: answers the deleted action.
pub(crate) async fn delete(
    AxState(s): State,
    path: ActionPath,
    mut req: Request,
) -> Result<Response, ApiError> {
    let caller = Caller::take(req.extensions_mut())?;
    let namespace = caller.namespace(&path.ns, &path.resource())?;
    let fqn = action_fqn(&namespace, &path)?;
    check_package_writable(&s, &fqn.path).await?;
    let Versioned { value, rev } = s.store.get_entity(&fqn).await?;
    if !matches!(value, Entity::Action(_)) {
        return Err(wrong_collection(fqn.doc_id()));
    }
    s.store.delete_entity(&fqn, &rev).await?;
    Ok(json(StatusCode::OK, &value.to_api_json()))
}

// ---------------------------------------------------------------------------------------
// invoke

/// The payload of an invoke: nothing (empty body or `null`), an object, or an array.
fn parse_payload(bytes: &[u8]) -> Result<Option<Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(bytes).map_err(Error::from)? {
        Value::Null => Ok(None),
        v @ (Value::Object(_) | Value::Array(_)) => Ok(Some(v)),
        _ => Err(ApiError::bad_request(
            "The request content was malformed:\nexpected a JSON object",
        )),
    }
}

/// The arguments of an activation: `params ∪ payload` (payload wins) for objects, the array
/// as it is, or the parameters alone.
fn build_content(params: &Parameters, payload: Option<Value>) -> Value {
    match payload {
        Some(Value::Object(o)) => {
            let mut m = params.to_object();
            m.extend(o);
            Value::Object(m)
        }
        Some(other) => other,
        None => Value::Object(params.to_object()),
    }
}

/// Payload keys that would override parameters protected by the `final` annotation.
fn overrides_final(action: &Action, params: &Parameters, payload: Option<&Value>) -> bool {
    let Some(Value::Object(o)) = payload else {
        return false;
    };
    if !action.annotations.is_truthy("final") {
        return false;
    }
    params
        .iter()
        .any(|p| !p.value.is_null() && o.contains_key(&p.key))
}

fn activation_id_header(res: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        res.headers_mut().insert(ACTIVATION_ID_HEADER, v);
    }
}

/// The answer of a finished blocking invoke: 200/502/500 by status code; the full record,
/// or with `result=true` only the result; an array result as the array itself.
pub(crate) fn activation_response(activation: &Activation, result_only: bool) -> Response {
    let status = StatusCode::from_u16(activation.response.status_code.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = match &activation.response.result {
        Some(r @ Value::Array(_)) => json(status, r),
        Some(r) if result_only => json(status, r),
        None if result_only => json(status, &json!({})),
        _ => json(status, &activation.to_api_json()),
    };
    activation_id_header(&mut res, activation.activation_id.as_str());
    res
}

/// The answer of an invoke that is running: 202 `{"activationId": id}`.
pub(crate) fn accepted_response(id: &str) -> Response {
    let mut res = json(StatusCode::ACCEPTED, &json!({ "activationId": id }));
    activation_id_header(&mut res, id);
    res
}

/// `POST /namespaces/{ns}/actions/[{pkg}/]{name}` (`blocking`, `result`, `timeout`);
/// parameters package < action < payload.
pub(crate) async fn invoke(
    AxState(s): State,
    path: ActionPath,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let Caller { identity, transid } = Caller::take(&mut parts.extensions)?;
    let namespace = entitled(&identity, &path.ns, &path.resource())?;
    let q = QueryParams::parse(parts.uri.query());
    let blocking = q.boolean("blocking", false)?;
    let result_only = q.boolean("result", false)?;
    let wait_ms = q.timeout_ms(s.config.limits.max_blocking_wait_ms)?;
    let sys = &s.config.limits;
    let bytes = read_body(body, &parts.headers, sys.max_payload_bytes).await?;
    let payload = parse_payload(&bytes)?;
    drop(bytes);

    let cluster = s.config.cluster_size;
    let per_minute = share(
        identity
            .limits
            .invocations_per_minute
            .unwrap_or(sys.invocations_per_minute),
        cluster,
    );
    let concurrent = share(
        identity
            .limits
            .concurrent_invocations
            .unwrap_or(sys.concurrent_invocations),
        cluster,
    );
    let ticket = s.throttles.admit(
        namespace.as_str(),
        per_minute,
        concurrent,
        now_ms() / 60_000,
    )?;

    let Target {
        mut action,
        rev,
        package,
    } = resolve_target(&s, &identity, &namespace, &path).await?;
    if let Exec::Code { kind, .. } = &action.exec
        && s.config
            .manifest
            .resolve(kind)
            .is_ok_and(|rt| rt.deprecated)
    {
        return Err(ApiError::bad_request(format!(
            "The '{kind}' runtime is no longer supported. You may read and delete but not update or invoke this action."
        )));
    }
    check_kind(&identity, &action.exec)?;
    let own_params = std::mem::take(&mut action.parameters);
    let (params, binding) = match package {
        Some(p) => (p.params.merged(&own_params), p.binding),
        None => (own_params, None),
    };
    if overrides_final(&action, &params, payload.as_ref()) {
        return Err(ApiError::bad_request(messages::PARAMETERS_NOT_ALLOWED));
    }
    if let Exec::Sequence { components } = &action.exec {
        let components = components.clone();
        return crate::sequence::invoke(
            &s,
            crate::sequence::SequenceCall {
                transid,
                user: identity,
                action,
                components,
                payload,
                blocking,
                result_only,
                wait: Duration::from_millis(wait_ms),
                ticket,
            },
        )
        .await;
    }
    let init_args = params.init_keys();
    let locked_args: Map<String, Value> = params
        .iter()
        .filter_map(|p| {
            p.encryption
                .as_ref()
                .map(|e| (p.key.clone(), Value::String(e.clone())))
        })
        .collect();
    let content = build_content(&params, payload);
    let inv = Invocation {
        transid,
        user: identity,
        action,
        revision: rev,
        binding,
        content: Some(content),
        init_args,
        locked_args,
        blocking,
        cause: None,
        ticket: Some(ticket),
    };
    match s.dispatch(inv, Duration::from_millis(wait_ms)).await? {
        Dispatched::Accepted(id) => Ok(accepted_response(id.as_str())),
        Dispatched::Done(a) => Ok(activation_response(&a, result_only)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(parse_payload(b"").unwrap(), None);
        assert_eq!(parse_payload(b"  \n").unwrap(), None);
        assert_eq!(parse_payload(b"null").unwrap(), None);
        assert_eq!(parse_payload(b"{\"a\":1}").unwrap(), Some(json!({"a": 1})));
        assert_eq!(parse_payload(b"[1]").unwrap(), Some(json!([1])));
        let e = parse_payload(b"{").unwrap_err();
        assert!(
            e.message()
                .starts_with("The request content was malformed:\n")
        );
        assert_eq!(
            parse_payload(b"5").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn content_merges_payload_over_params() {
        let params = Parameters::new().with("a", json!(1)).with("b", json!(2));
        assert_eq!(
            build_content(&params, Some(json!({"b": 3, "c": 4}))),
            json!({"a": 1, "b": 3, "c": 4})
        );
        assert_eq!(build_content(&params, Some(json!([1, 2]))), json!([1, 2]));
        assert_eq!(build_content(&params, None), json!({"a": 1, "b": 2}));
    }
}
