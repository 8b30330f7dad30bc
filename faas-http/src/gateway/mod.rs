//! The **API gateway**, served by the platform itself: named routes in front of web actions
//! (`wsk api create /club /books/{isbn} get getBooks --response-type http`, the npm client's
//! `routes.create`), reached at `/api/{namespace}/{basepath}/{relpath}`.
//!
//! OpenWhisk manages routes through three web actions, `whisk.system/apimgmt/createApi`,
//! `getApi` and `deleteApi`, which configure a separate gateway process (openresty with
//! Redis). Here the same URLs are answered natively (see `routes/web/apimgmt.rs`) and the
//! routes are served by the controller, so the clients work unchanged and no gateway process
//! runs. This module is the part without HTTP: the stored form, the management operations
//! and route matching ([`matcher`]); [`swagger`] reads and writes the documents.
//!
//! # Stored form
//!
//! An *API* is one base path of one namespace, with its swagger document (OpenWhisk's API
//! gateway "v2" form, the one `getApi` returns and `wsk api get` prints). All APIs of a
//! namespace are one document in the store: the package **`whisk.system/apigw.<namespace>`**
//! (private, never published), whose parameters map each base path to its swagger document.
//! A package needs no change to the `Store` trait or its adapters and gets their revisions,
//! durability and cache invalidation; it lives in `whisk.system` so that tenants never see
//! or edit it as an entity of theirs (only the gateway writes it, and only for the
//! authenticated owner of the namespace). Writes are read–modify–write at the read revision,
//! retried on a conflict, so concurrent changes of one namespace's routes are never lost.
//! Serving a request reads that one document (behind the controller's entity cache).
//!
//! # Identities
//!
//! Only the authenticated owner of a namespace manages its routes (`__ow_user`; the
//! `spaceguid` and `accesstoken` the clients send are not needed and not trusted). A route
//! names a web action by its web URL (`namespace/package/action`); calling the route is
//! calling that web action, with every rule of web actions: it must exist and be exported,
//! it runs as the owner of its URL's namespace, and a private package of another namespace
//! answers as a missing action. Routes are checked the same way when they are created.

use serde_json::{Map, Value};

use faas_core::entity::{Entity, Package, now_ms};
use faas_core::params::{Annotations, Parameters};
use faas_core::store::{Revision, Versioned};
use faas_core::{EntityName, EntityPath, Error, FullyQualifiedName, Identity, Store};

use crate::engine::Engine;

pub mod matcher;
pub mod swagger;

use swagger::{Parsed, Target};

/// The namespace holding the gateway's documents.
pub const SYSTEM_NAMESPACE: &str = "whisk.system";
/// The name prefix of a namespace's document (`apigw.<namespace>`).
pub const PACKAGE_PREFIX: &str = "apigw.";
/// How often a write is tried again after losing a race.
const WRITE_ATTEMPTS: usize = 8;

/// Why a gateway operation failed; each maps to an HTTP status.
#[derive(Debug)]
#[non_exhaustive]
pub enum GatewayError {
    /// Bad input (400).
    Invalid(String),
    /// No authenticated caller (401).
    Unauthenticated(String),
    /// No such API or path (404).
    Missing(String),
    /// A route another API serves already (409).
    Duplicate(String),
    /// The namespace's APIs would exceed the size limit (413).
    TooLarge(String),
    /// The store failed.
    Store(Error),
}

impl From<Error> for GatewayError {
    fn from(e: Error) -> Self {
        Self::Store(e)
    }
}

type Result<T, E = GatewayError> = std::result::Result<T, E>;

/// The id of `ns`'s document.
fn document_id(ns: &EntityName) -> Result<FullyQualifiedName> {
    let name = EntityName::new(format!("{PACKAGE_PREFIX}{ns}")).map_err(|_| {
        GatewayError::Invalid(format!(
            "The namespace '{ns}' is too long to have API routes (at most {} characters).",
            faas_core::names::MAX_NAME_LENGTH - PACKAGE_PREFIX.len()
        ))
    })?;
    let system = EntityName::new(SYSTEM_NAMESPACE)?;
    Ok(FullyQualifiedName::new(
        EntityPath::namespace(&system),
        name,
    ))
}

/// A namespace's APIs as stored: swagger documents by base path, and the revision read.
#[derive(Debug, Clone, Default)]
struct Apis {
    docs: Vec<Value>,
    rev: Option<Revision>,
}

fn base_path(doc: &Value) -> &str {
    doc.get("basePath").and_then(Value::as_str).unwrap_or("")
}

fn title(doc: &Value) -> &str {
    doc.pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl Apis {
    /// The index of the API a `basepath` argument names: a base path when it starts with
    /// `/`, else an API name (`getApis` of OpenWhisk's management actions).
    fn find(&self, basepath_or_name: &str) -> Option<usize> {
        if basepath_or_name.starts_with('/') {
            self.docs
                .iter()
                .position(|d| base_path(d) == basepath_or_name)
        } else {
            self.docs.iter().position(|d| title(d) == basepath_or_name)
        }
    }
}

async fn load(store: &dyn Store, ns: &EntityName) -> Result<Apis> {
    let id = document_id(ns)?;
    match store.get_entity(&id).await {
        Ok(Versioned {
            value: Entity::Package(p),
            rev,
        }) => {
            let mut docs: Vec<Value> = p.parameters.iter().map(|p| p.value.clone()).collect();
            docs.sort_by(|a, b| base_path(a).cmp(base_path(b)));
            Ok(Apis {
                docs,
                rev: Some(rev),
            })
        }
        Ok(_) => Err(GatewayError::Store(Error::WrongCollection {
            id: id.doc_id(),
        })),
        Err(Error::NotFound { .. }) => Ok(Apis::default()),
        Err(e) => Err(e.into()),
    }
}

/// Writes `apis` at the revision read (deletes the document when none is left).
async fn save(store: &dyn Store, ns: &EntityName, apis: &Apis, max_bytes: u64) -> Result<()> {
    let id = document_id(ns)?;
    if apis.docs.is_empty() {
        return match &apis.rev {
            Some(rev) => Ok(store.delete_entity(&id, rev).await?),
            None => Ok(()),
        };
    }
    let parameters: Parameters = apis
        .docs
        .iter()
        .map(|d| (base_path(d).to_string(), d.clone()))
        .collect();
    let size = parameters.size_bytes() as u64;
    if size > max_bytes {
        return Err(GatewayError::TooLarge(format!(
            "The APIs of namespace '{ns}' are larger than allowed: {size} > {max_bytes} bytes."
        )));
    }
    let package = Package {
        namespace: id.path.clone(),
        name: id.name.clone(),
        version: Default::default(),
        publish: false,
        binding: None,
        parameters,
        annotations: Annotations::new().with(
            "description",
            Value::String(format!(
                "API routes of namespace {ns}, kept by the platform's API gateway"
            )),
        ),
        updated: now_ms(),
    };
    store
        .put_entity(&Entity::Package(package), apis.rev.as_ref())
        .await?;
    Ok(())
}

/// Reads, changes with `change` and writes `ns`'s APIs, again from the start when another
/// writer got in between.
async fn update<T>(
    store: &dyn Store,
    ns: &EntityName,
    max_bytes: u64,
    mut change: impl FnMut(&mut Apis) -> Result<T>,
) -> Result<T> {
    let mut last = None;
    for _ in 0..WRITE_ATTEMPTS {
        let mut apis = load(store, ns).await?;
        let out = change(&mut apis)?;
        match save(store, ns, &apis, max_bytes).await {
            Ok(()) => return Ok(out),
            Err(GatewayError::Store(
                e @ (Error::Conflict { .. } | Error::AlreadyExists { .. } | Error::NotFound { .. }),
            )) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(GatewayError::Store(
        last.unwrap_or_else(|| Error::conflict(ns.to_string())),
    ))
}

/// The APIs of `ns`, read for serving.
pub async fn routes(store: &dyn Store, ns: &EntityName) -> Result<Vec<Parsed>> {
    let apis = load(store, ns).await?;
    Ok(apis
        .docs
        .iter()
        .filter_map(|d| swagger::parse(d, ns.as_str()).ok())
        .collect())
}

/// The APIs of `ns`: all of them (paged by `skip` and `limit`, `0` for no limit) or the one a
/// base path or API name names. Swagger documents, by base path.
pub async fn get(
    store: &dyn Store,
    ns: &EntityName,
    basepath_or_name: Option<&str>,
    skip: usize,
    limit: usize,
) -> Result<Vec<Value>> {
    let apis = load(store, ns).await?;
    Ok(match basepath_or_name {
        Some(b) => apis
            .find(b)
            .map(|i| apis.docs[i].clone())
            .into_iter()
            .collect(),
        None => {
            let limit = if limit == 0 { usize::MAX } else { limit };
            apis.docs.into_iter().skip(skip).take(limit).collect()
        }
    })
}

/// Deletes the API a base path or name names, or one path of it, or one verb of a path; an
/// API left without paths is deleted.
pub async fn delete(
    store: &dyn Store,
    ns: &EntityName,
    basepath_or_name: &str,
    relpath: Option<&str>,
    verb: Option<&str>,
    max_bytes: u64,
) -> Result<()> {
    update(store, ns, max_bytes, |apis| {
        let i = apis.find(basepath_or_name).ok_or_else(|| {
            GatewayError::Missing(format!(
                "API deletion failure: API '{basepath_or_name}' does not exist."
            ))
        })?;
        let Some(rel) = relpath else {
            apis.docs.remove(i);
            return Ok(());
        };
        swagger::remove_endpoint(&mut apis.docs[i], rel, verb)
            .map_err(|e| GatewayError::Missing(format!("API deletion failure: {e}")))?;
        let empty = apis.docs[i]
            .get("paths")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        if empty {
            apis.docs.remove(i);
        }
        Ok(())
    })
    .await
}

/// What `createApi` was asked: the `apidoc` (an object, or JSON text) and the response type.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CreateRequest {
    /// `apidoc`.
    pub apidoc: Option<Value>,
    /// `responsetype` (`json` when absent).
    pub response_type: Option<String>,
}

impl CreateRequest {
    /// A request.
    pub fn new(apidoc: Option<Value>, response_type: Option<String>) -> Self {
        Self {
            apidoc,
            response_type,
        }
    }
}

fn invalid(m: impl Into<String>) -> GatewayError {
    GatewayError::Invalid(m.into())
}

/// A JSON object given as one, or as JSON text (`what` names it in messages).
fn object_or_text(v: &Value, what: &str) -> Result<Map<String, Value>> {
    match v {
        Value::Object(o) => Ok(o.clone()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => Ok(o),
            _ => Err(invalid(format!(
                "{what} field cannot be parsed. Ensure it is valid JSON."
            ))),
        },
        other => Err(invalid(format!(
            "{what} field is of type {} and should be a JSON object or a JSON string.",
            match other {
                Value::Null => "null",
                Value::Bool(_) => "boolean",
                Value::Number(_) => "number",
                Value::Array(_) => "object",
                _ => "undefined",
            }
        ))),
    }
}

/// `pkg/action`, `action` or `/ns/pkg/action` (`parseActionName`): (namespace, package, name).
fn split_action_name(name: &str) -> (Option<String>, Option<String>, String) {
    let parts: Vec<&str> = name.trim_start_matches('/').split('/').collect();
    match (name.starts_with('/'), parts.as_slice()) {
        (true, [ns, pkg, a]) => (Some((*ns).into()), Some((*pkg).into()), (*a).into()),
        (true, [ns, a]) => (Some((*ns).into()), None, (*a).into()),
        (false, [pkg, a]) => (None, Some((*pkg).into()), (*a).into()),
        _ => (None, None, name.trim_start_matches('/').to_string()),
    }
}

/// The swagger document a `createApi` request makes, before the existing API is known: the
/// API's base path (or name), and a closure that applies the request to the existing document.
enum Change {
    /// Replace the whole API with this document (swagger import).
    Replace(Value),
    /// Add one operation (`wsk api create BASE REL VERB ACTION`).
    Endpoint {
        api_name: Option<String>,
        relpath: String,
        verb: String,
        target: Target,
        parameters: Option<Value>,
        secret: Option<String>,
    },
}

/// Creates or updates an API for `user` (`createApi`); answers the API's swagger document.
/// `base_url` (`scheme://host`) is where this platform is reached, for the action URLs.
pub async fn create(
    engine: &Engine,
    user: &Identity,
    req: CreateRequest,
    base_url: &str,
) -> Result<Value> {
    let ns = user.namespace.name.clone();
    let apidoc = req
        .apidoc
        .as_ref()
        .ok_or_else(|| invalid("apidoc is required."))?;
    let doc = object_or_text(apidoc, "apidoc")?;
    if doc.get("namespace").is_none_or(Value::is_null) {
        return Err(invalid("apidoc is missing the namespace field"));
    }
    let str_field = |o: &Map<String, Value>, k: &str| -> Option<String> {
        o.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let (basepath, change) = match doc.get("swagger").filter(|s| !s.is_null()) {
        Some(s) => {
            if doc.get("gatewayBasePath").is_some_and(|v| !v.is_null()) {
                return Err(invalid(
                    "swagger and gatewayBasePath are mutually exclusive and cannot be specified together.",
                ));
            }
            let swagger = Value::Object(object_or_text(s, "swagger")?);
            let base = match swagger.get("basePath").and_then(Value::as_str) {
                Some(b) if !b.is_empty() => b.to_string(),
                _ => return Err(invalid("swagger is missing the basePath field.")),
            };
            if swagger.get("paths").is_none_or(Value::is_null) {
                return Err(invalid("swagger is missing the paths field."));
            }
            if swagger.get("info").is_none_or(Value::is_null) {
                return Err(invalid("swagger is missing the info field."));
            }
            (base, Change::Replace(swagger))
        }
        None => {
            let base = str_field(&doc, "gatewayBasePath")
                .ok_or_else(|| invalid("apidoc is missing the gatewayBasePath field"))?;
            let relpath = str_field(&doc, "gatewayPath")
                .ok_or_else(|| invalid("apidoc is missing the gatewayPath field"))?;
            let verb = str_field(&doc, "gatewayMethod")
                .ok_or_else(|| invalid("apidoc is missing the gatewayMethod field"))?;
            let action = doc
                .get("action")
                .and_then(Value::as_object)
                .ok_or_else(|| invalid("apidoc is missing the action field."))?;
            for (k, what) in [
                ("backendMethod", "backendMethod"),
                ("backendUrl", "backendUrl"),
                ("namespace", "namespace"),
                ("name", "name"),
            ] {
                if str_field(action, k).is_none() {
                    return Err(invalid(format!("action is missing the {what} field.")));
                }
            }
            let verb = verb.to_ascii_lowercase();
            if !swagger::VERBS.contains(&verb.as_str()) {
                return Err(invalid(format!(
                    "'{verb}' is not a valid API verb. Valid values are: GET, PUT, POST, DELETE, PATCH, HEAD, OPTIONS"
                )));
            }
            let ext = req.response_type.clone().unwrap_or_else(|| "json".into());
            if crate::routes::web::response::Extension::named(&ext).is_none() {
                return Err(invalid(format!(
                    "'{ext}' is not a valid response type. Valid values are: http, json, html, text, svg"
                )));
            }
            let (named_ns, pkg, name) =
                split_action_name(&str_field(action, "name").unwrap_or_default());
            let action_ns = named_ns
                .or_else(|| str_field(action, "namespace"))
                .filter(|n| n != "_")
                .unwrap_or_else(|| ns.to_string());
            let secret = match action.get("secureKey") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            (
                base,
                Change::Endpoint {
                    api_name: str_field(&doc, "apiName"),
                    relpath,
                    verb,
                    target: Target {
                        namespace: action_ns,
                        package: pkg.filter(|p| p != "default"),
                        action: name,
                        ext,
                    },
                    parameters: doc.get("pathParameters").filter(|p| !p.is_null()).cloned(),
                    secret,
                },
            )
        }
    };
    // What the change runs must be web actions now (the owner of each URL's namespace sees
    // them; a denied one reads as a missing one).
    let new_targets: Vec<(String, Target)> = match &change {
        Change::Replace(s) => swagger::parse(s, ns.as_str())
            .map_err(|refused| {
                invalid(format!(
                    "API creation failure: the swagger document has parts this platform's API gateway does not support: {}",
                    refused.join("; ")
                ))
            })?
            .operations
            .into_iter()
            .map(|o| (format!("{} {}", o.verb, o.path), o.target))
            .collect(),
        Change::Endpoint {
            relpath,
            verb,
            target,
            ..
        } => {
            swagger::check_path(relpath, "path", true).map_err(invalid)?;
            vec![(format!("{verb} {relpath}"), target.clone())]
        }
    };
    for (op, t) in &new_targets {
        check_target(engine, op, t).await?;
    }
    let max_bytes = engine.config().limits.max_parameter_bytes;
    update(engine.store().as_ref(), &ns, max_bytes, |apis| {
        let existing = apis.find(&basepath);
        let mut doc = match (&change, existing) {
            (Change::Replace(s), _) => s.clone(),
            (Change::Endpoint { .. }, Some(i)) => apis.docs[i].clone(),
            (Change::Endpoint { api_name, .. }, None) => {
                swagger::check_path(&basepath, "base path", false).map_err(|e| {
                    if basepath.starts_with('/') {
                        invalid(e)
                    } else {
                        GatewayError::Missing(format!(
                            "API creation failure: API '{basepath}' does not exist; a new API needs a base path that starts with '/'."
                        ))
                    }
                })?;
                swagger::base(&basepath, api_name.as_deref())
            }
        };
        if let Change::Endpoint {
            relpath,
            verb,
            target,
            parameters,
            secret,
            ..
        } = &change
        {
            let url = swagger::web_url(base_url, target);
            swagger::add_endpoint(
                &mut doc,
                verb,
                relpath,
                target,
                parameters.clone(),
                &url,
                secret.as_deref(),
            );
        }
        let parsed = swagger::parse(&doc, ns.as_str()).map_err(|refused| {
            invalid(format!("API creation failure: {}", refused.join("; ")))
        })?;
        swagger::normalize(&mut doc, &parsed.operations, base_url);
        check_duplicates(apis, existing, &parsed)?;
        match existing {
            Some(i) => apis.docs[i] = doc.clone(),
            None => {
                if let Some(i) = apis.find(&parsed.base_path) {
                    apis.docs[i] = doc.clone();
                } else {
                    apis.docs.push(doc.clone());
                }
            }
        }
        apis.docs.sort_by(|a, b| base_path(a).cmp(base_path(b)));
        Ok(doc)
    })
    .await
}

/// The target of operation `op` must be a web action the owner of its namespace may run.
async fn check_target(engine: &Engine, op: &str, t: &Target) -> Result<()> {
    let fqn = crate::routes::web::action_fqn(&t.namespace, t.package.as_deref(), &t.action);
    let found = match fqn {
        Some(f) => match crate::routes::web::resolve::resolve_web_action(engine, &f).await {
            Ok(_) => true,
            Err(Error::NotFound { .. }) => false,
            Err(e) => return Err(e.into()),
        },
        None => false,
    };
    if found {
        Ok(())
    } else {
        Err(invalid(format!(
            "API creation failure: the action '{}' of operation '{op}' does not exist or is not a web action.",
            t.display()
        )))
    }
}

/// Refuses an API whose operations reach the same requests as one another, or as an
/// operation of another API of the namespace.
fn check_duplicates(apis: &Apis, replacing: Option<usize>, new: &Parsed) -> Result<()> {
    let full = |p: &Parsed, o: &swagger::Operation| matcher::full_path(&p.base_path, &o.path);
    for (i, a) in new.operations.iter().enumerate() {
        for b in &new.operations[i + 1..] {
            if a.verb == b.verb && matcher::same_shape(&full(new, a), &full(new, b)) {
                return Err(GatewayError::Duplicate(format!(
                    "API creation failure: the paths '{}' and '{}' of the API '{}' both serve {} on the same requests.",
                    a.path, b.path, new.base_path, a.verb
                )));
            }
        }
    }
    for (i, doc) in apis.docs.iter().enumerate() {
        if Some(i) == replacing || base_path(doc) == new.base_path {
            continue;
        }
        let Ok(other) = swagger::parse(doc, "") else {
            continue;
        };
        for a in &new.operations {
            for b in &other.operations {
                if a.verb == b.verb && matcher::same_shape(&full(new, a), &full(&other, b)) {
                    return Err(GatewayError::Duplicate(format!(
                        "API creation failure: {} {} is already served by the API '{}' (path '{}').",
                        a.verb.to_ascii_uppercase(),
                        full(new, a),
                        other.base_path,
                        b.path
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names() {
        assert_eq!(
            split_action_name("/ns/pkg/a"),
            (Some("ns".into()), Some("pkg".into()), "a".into())
        );
        assert_eq!(
            split_action_name("/ns/a"),
            (Some("ns".into()), None, "a".into())
        );
        assert_eq!(
            split_action_name("pkg/a"),
            (None, Some("pkg".into()), "a".into())
        );
        assert_eq!(split_action_name("a"), (None, None, "a".into()));
    }
}
