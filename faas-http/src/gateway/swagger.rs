//! The swagger documents of API routes, in the form OpenWhisk's API management actions
//! (`core/routemgmt/common/apigw-utils.js`, the API gateway "v2" format) write them:
//!
//! ```json
//! {"swagger": "2.0", "info": {"title": "Book Club", "version": "1.0.0"}, "basePath": "/club",
//!  "paths": {"/books/{isbn}": {"get": {
//!      "operationId": "getBooksIsbn",
//!      "parameters": [{"name": "isbn", "in": "path", "required": true, "type": "string"}],
//!      "x-openwhisk": {"namespace": "guest", "package": "", "action": "getBooks",
//!                      "url": "http://host/api/v1/web/guest/default/getBooks.http"},
//!      "responses": {"default": {"description": "Default response"}}}}},
//!  "x-ibm-configuration": {"assembly": {"execute": [{"operation-switch": {"case": [
//!      {"operations": ["getBooksIsbn"], "execute": [
//!          {"invoke": {"target-url": "http://host/api/v1/web/guest/default/getBooks.http$(request.path)",
//!                      "verb": "keep"}}]}]}}]},
//!   "cors": {"enabled": true}}}
//! ```
//!
//! Every operation runs a web action: the one `x-openwhisk` names, or else the one its
//! `target-url` names. The response type is the extension of that URL. A `set-variable` of
//! `message.headers.X-Require-Whisk-Auth` in the operation's case is the secret the route
//! presents to an action annotated `require-whisk-auth` with one.

use serde_json::{Map, Value, json};

use crate::routes::web::response::Extension;

/// Swagger's operation keys the gateway serves.
pub const VERBS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// The header a route sets to present an action's `require-whisk-auth` secret.
const SECRET_VARIABLE: &str = "message.headers.X-Require-Whisk-Auth";

/// The web action an operation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its namespace (as in its web URL).
    pub namespace: String,
    /// Its package, `None` for the default package.
    pub package: Option<String>,
    /// Its name.
    pub action: String,
    /// The response type: `json`, `http`, `html`, `text` or `svg`.
    pub ext: String,
}

impl Target {
    /// `/ns/[pkg/]action`.
    pub fn display(&self) -> String {
        match &self.package {
            Some(p) => format!("/{}/{p}/{}", self.namespace, self.action),
            None => format!("/{}/{}", self.namespace, self.action),
        }
    }
}

/// One operation of an API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The path relative to the base path (`/books/{isbn}`).
    pub path: String,
    /// The verb, lowercase.
    pub verb: String,
    /// Its `operationId`.
    pub operation_id: String,
    /// What it runs.
    pub target: Target,
    /// The method the action sees, when the route changes it (`None`: the request's).
    pub backend_verb: Option<String>,
    /// The `require-whisk-auth` secret the route presents, if any.
    pub secret: Option<String>,
}

/// An API read from its swagger document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// `basePath`.
    pub base_path: String,
    /// `info.title`.
    pub title: String,
    /// Whether the gateway answers CORS (`x-ibm-configuration.cors.enabled`, default true).
    pub cors: bool,
    /// Its operations, by path then verb.
    pub operations: Vec<Operation>,
}

/// The swagger of a new API without operations (`generateBaseSwaggerApi`).
pub fn base(base_path: &str, title: Option<&str>) -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": title.unwrap_or(base_path), "version": "1.0.0"},
        "basePath": base_path,
        "paths": {},
        "x-ibm-configuration": {"assembly": {}, "cors": {"enabled": true}},
    })
}

/// The `operationId` of `verb` on `relpath` (`makeOperationId`): the verb, then each run of
/// letters, digits, `_` and `-` of the path capitalised (`get /books/{isbn}` → `getBooksIsbn`).
pub fn operation_id(verb: &str, relpath: &str) -> String {
    let spaced: String = relpath
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut out = verb.to_ascii_lowercase();
    for run in spaced.split(' ').filter(|r| !r.is_empty()) {
        // The capitalised word starts at the run's first word character (`\w\S*`).
        match run.find(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            Some(start) => {
                out.push_str(&run[..start]);
                let word = &run[start..];
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    out.push(first.to_ascii_uppercase());
                    out.push_str(&chars.as_str().to_ascii_lowercase());
                }
            }
            None => out.push_str(run),
        }
    }
    out
}

/// The web action URL of `target` under `base_url` (`makeWebActionBackendUrl`).
pub fn web_url(base_url: &str, target: &Target) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "{base_url}/api/v1/web/{}/{}/{}.{}",
        enc(&target.namespace),
        enc(target.package.as_deref().unwrap_or("default")),
        enc(&target.action),
        target.ext
    )
}

fn case_array(swagger: &mut Value) -> Option<&mut Vec<Value>> {
    let config = swagger
        .as_object_mut()?
        .entry("x-ibm-configuration")
        .or_insert_with(|| json!({}));
    let assembly = config
        .as_object_mut()?
        .entry("assembly")
        .or_insert_with(|| json!({}));
    let execute = assembly
        .as_object_mut()?
        .entry("execute")
        .or_insert_with(|| json!([{"operation-switch": {"case": []}}]));
    let first = execute.as_array_mut()?.first_mut()?;
    let switch = first
        .as_object_mut()?
        .entry("operation-switch")
        .or_insert_with(|| json!({"case": []}));
    switch
        .as_object_mut()?
        .entry("case")
        .or_insert_with(|| json!([]))
        .as_array_mut()
}

/// Adds (or replaces) `verb` on `relpath` (`addEndpointToSwaggerApi`).
pub fn add_endpoint(
    swagger: &mut Value,
    verb: &str,
    relpath: &str,
    target: &Target,
    parameters: Option<Value>,
    url: &str,
    secret: Option<&str>,
) {
    let verb = verb.to_ascii_lowercase();
    let id = operation_id(&verb, relpath);
    let mut op = Map::new();
    op.insert("operationId".into(), json!(id));
    if let Some(p) = parameters {
        op.insert("parameters".into(), p);
    }
    op.insert(
        "x-openwhisk".into(),
        json!({
            "url": url,
            "namespace": target.namespace,
            "package": target.package.clone().unwrap_or_default(),
            "action": target.action,
        }),
    );
    op.insert(
        "responses".into(),
        json!({"default": {"description": "Default response"}}),
    );
    if let Some(paths) = swagger.get_mut("paths").and_then(Value::as_object_mut) {
        let entry = paths
            .entry(relpath.to_string())
            .or_insert_with(|| json!({}));
        if let Some(e) = entry.as_object_mut() {
            e.insert(verb.clone(), Value::Object(op));
        }
    }
    let target_url = if target.ext == "http" {
        format!("{url}$(request.path)")
    } else {
        url.to_string()
    };
    let mut execute = vec![json!({"invoke": {"target-url": target_url, "verb": "keep"}})];
    if let Some(s) = secret {
        execute.push(json!({"set-variable": {"actions": [{"set": SECRET_VARIABLE, "value": s}]}}));
    }
    let case = json!({"operations": [id], "execute": execute});
    if let Some(cases) = case_array(swagger) {
        match cases
            .iter_mut()
            .find(|c| c.pointer("/operations/0").and_then(Value::as_str) == Some(id.as_str()))
        {
            Some(existing) => *existing = case,
            None => cases.push(case),
        }
    }
}

/// Removes `verb` (or, without one, every verb) of `relpath`
/// (`removeEndpointFromSwaggerApi`); the message when there is nothing to remove.
pub fn remove_endpoint(
    swagger: &mut Value,
    relpath: &str,
    verb: Option<&str>,
) -> Result<(), String> {
    let Some(paths) = swagger.get_mut("paths").and_then(Value::as_object_mut) else {
        return Err(format!("path '{relpath}' does not exist in the API"));
    };
    let Some(ops) = paths.get_mut(relpath) else {
        return Err(format!("path '{relpath}' does not exist in the API"));
    };
    let removed: Vec<String> = match verb.map(str::to_ascii_lowercase) {
        None => {
            let verbs: Vec<String> = ops
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            paths.remove(relpath);
            verbs
        }
        Some(v) => {
            let gone = ops.as_object_mut().and_then(|o| o.remove(&v));
            if gone.is_none() {
                return Err(format!(
                    "path '{relpath}' with operation '{v}' does not exist in the API"
                ));
            }
            if ops.as_object().is_some_and(Map::is_empty) {
                paths.remove(relpath);
            }
            vec![v]
        }
    };
    let ids: Vec<String> = removed.iter().map(|v| operation_id(v, relpath)).collect();
    if let Some(cases) = case_array(swagger) {
        cases.retain(|c| {
            c.pointer("/operations/0")
                .and_then(Value::as_str)
                .is_none_or(|id| !ids.iter().any(|i| i == id))
        });
    }
    Ok(())
}

/// A web action URL (`.../api/v1/web/ns/pkg/action.ext[$(request.path)]`) as a target.
fn target_of_url(url: &str) -> Option<Target> {
    let url = url.strip_suffix("$(request.path)").unwrap_or(url);
    let (_, after) = url.split_once("/api/v1/web/")?;
    let mut it = after.split('/');
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    let namespace = dec(it.next()?)?;
    let package = dec(it.next()?)?;
    let last = dec(it.next()?)?;
    if it.next().is_some() {
        return None;
    }
    let (action, ext) = last.rsplit_once('.')?;
    Extension::named(ext)?;
    Some(Target {
        namespace,
        package: (package != "default").then_some(package),
        action: action.to_string(),
        ext: ext.to_string(),
    })
}

/// The response type of an `x-openwhisk.url`.
fn ext_of_url(url: &str) -> Option<String> {
    let url = url.strip_suffix("$(request.path)").unwrap_or(url);
    let last = url.rsplit('/').next()?;
    let (_, ext) = last.rsplit_once('.')?;
    Extension::named(ext).map(|e| e.name().to_string())
}

/// One case of `x-ibm-configuration`: (operation id, target URL, verb, secret).
type Case = (String, Option<String>, Option<String>, Option<String>);

/// The cases of `x-ibm-configuration` by operation id: (target URL, verb, secret).
fn cases(swagger: &Value) -> Vec<Case> {
    let mut out = Vec::new();
    let Some(list) = swagger
        .pointer("/x-ibm-configuration/assembly/execute")
        .and_then(Value::as_array)
    else {
        return out;
    };
    for exec in list {
        let Some(cases) = exec
            .pointer("/operation-switch/case")
            .and_then(Value::as_array)
        else {
            continue;
        };
        for c in cases {
            let Some(id) = c.pointer("/operations/0").and_then(Value::as_str) else {
                continue;
            };
            let mut url = None;
            let mut verb = None;
            let mut secret = None;
            for step in c
                .get("execute")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(inv) = step.get("invoke") {
                    url = inv
                        .get("target-url")
                        .and_then(Value::as_str)
                        .map(String::from);
                    verb = inv.get("verb").and_then(Value::as_str).map(String::from);
                }
                for a in step
                    .pointer("/set-variable/actions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if a.get("set").and_then(Value::as_str) == Some(SECRET_VARIABLE) {
                        secret = a.get("value").map(|v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        });
                    }
                }
            }
            out.push((id.to_string(), url, verb, secret));
        }
    }
    out
}

/// Whether `path` is a route path: `/`, or `/`-separated segments of letters, digits and
/// `- . _ ~`, with whole-segment `{name}` parameters when `params` is allowed.
pub fn check_path(path: &str, what: &str, params: bool) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("The {what} '{path}' must begin with '/'."));
    }
    if path.len() > 1024 {
        return Err(format!("The {what} is longer than 1024 characters."));
    }
    if path == "/" {
        return Ok(());
    }
    let body = path.strip_suffix('/').unwrap_or(path);
    for seg in body[1..].split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(format!(
                "The {what} '{path}' has an empty, '.' or '..' segment."
            ));
        }
        if seg.contains(['{', '}']) {
            let name = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
            let ok = name.is_some_and(|n| {
                !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if !params {
                return Err(format!(
                    "The base path ({path}) cannot have parameters. Only the relative path supports path parameters."
                ));
            }
            if !ok {
                return Err(format!(
                    "The {what} '{path}' has a parameter that is not a whole segment '{{name}}' of letters, digits and '_'."
                ));
            }
            continue;
        }
        if !seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
        {
            return Err(format!(
                "The {what} '{path}' has characters other than letters, digits, '-', '.', '_', '~' and '/'."
            ));
        }
    }
    Ok(())
}

/// The `{name}` parameters of a path, in order.
pub fn path_parameters(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(String::from)
        .collect()
}

/// Reads an API's swagger document: its base path, title, CORS switch and operations. `ns` is
/// the owner's namespace (an `x-openwhisk.namespace` of `_` means it).
///
/// # Errors
///
/// Every part the gateway does not support or that is malformed, one message each.
pub fn parse(swagger: &Value, ns: &str) -> Result<Parsed, Vec<String>> {
    let mut refused = Vec::new();
    let Some(doc) = swagger.as_object() else {
        return Err(vec!["the swagger document is not a JSON object".into()]);
    };
    let base_path = match doc.get("basePath").and_then(Value::as_str) {
        Some(b) => b.to_string(),
        None => return Err(vec!["swagger is missing the basePath field.".into()]),
    };
    if let Err(e) = check_path(&base_path, "base path", false) {
        refused.push(e);
    }
    let title = match doc.get("info") {
        Some(Value::Object(info)) => info
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or(&base_path)
            .to_string(),
        _ => return Err(vec!["swagger is missing the info field.".into()]),
    };
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return Err(vec!["swagger is missing the paths field.".into()]);
    };
    for key in ["securityDefinitions", "security"] {
        if doc.get(key).is_some_and(|v| !v.is_null()) {
            refused.push(format!(
                "'{key}' is not supported: this platform's API gateway has no API keys or OAuth"
            ));
        }
    }
    if doc.get("x-ibm-rate-limit").is_some_and(|v| !v.is_null()) {
        refused.push(
            "'x-ibm-rate-limit' is not supported: routes are throttled by their namespace's limits"
                .into(),
        );
    }
    let cors = swagger
        .pointer("/x-ibm-configuration/cors/enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if let Some(list) = doc
        .get("x-ibm-configuration")
        .and_then(|c| c.pointer("/assembly/execute"))
        .and_then(Value::as_array)
    {
        for exec in list {
            let known = exec
                .as_object()
                .is_some_and(|o| o.len() == 1 && o.contains_key("operation-switch"));
            if !known {
                refused.push(format!(
                    "x-ibm-configuration: assembly step {exec} is not supported (only operation-switch cases of invoke and set-variable of X-Require-Whisk-Auth)"
                ));
            }
        }
    }
    let cases = cases(swagger);
    let mut operations = Vec::new();
    for (path, item) in paths {
        if let Err(e) = check_path(path, "path", true) {
            refused.push(e);
            continue;
        }
        let Some(item) = item.as_object() else {
            refused.push(format!("path '{path}' is not an object"));
            continue;
        };
        let shared = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (verb, op) in item {
            if verb == "parameters" || verb.starts_with("x-") {
                continue;
            }
            if !VERBS.contains(&verb.as_str()) {
                refused.push(format!(
                    "path '{path}': operation '{verb}' is not supported"
                ));
                continue;
            }
            match operation(path, verb, op, &shared, &cases, ns) {
                Ok(o) => operations.push(o),
                Err(e) => refused.push(e),
            }
        }
    }
    if refused.is_empty() {
        Ok(Parsed {
            base_path,
            title,
            cors,
            operations,
        })
    } else {
        Err(refused)
    }
}

fn operation(
    path: &str,
    verb: &str,
    op: &Value,
    shared: &[Value],
    cases: &[Case],
    ns: &str,
) -> Result<Operation, String> {
    let here = format!("operation '{verb} {path}'");
    let Some(o) = op.as_object() else {
        return Err(format!("{here} is not an object"));
    };
    if o.contains_key("x-ibm-op-ext") {
        return Err(format!(
            "{here}: 'x-ibm-op-ext' (the API gateway's first format, which calls actions with a stored key) is not supported; create the operation again with 'api create'"
        ));
    }
    if o.get("security").is_some_and(|v| !v.is_null()) {
        return Err(format!("{here}: 'security' is not supported"));
    }
    let operation_id = o
        .get("operationId")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| operation_id(verb, path));
    let case = cases.iter().find(|c| c.0 == operation_id);
    let target = match o.get("x-openwhisk").and_then(Value::as_object) {
        Some(x) => {
            let s = |k: &str| x.get(k).and_then(Value::as_str).unwrap_or("");
            let namespace = match s("namespace") {
                "_" | "" => ns.to_string(),
                n => n.to_string(),
            };
            let url = s("url");
            let ext = if url.is_empty() {
                "json".to_string()
            } else {
                ext_of_url(url).ok_or_else(|| {
                    format!("{here}: x-openwhisk.url '{url}' is not a web action URL ending in .json, .http, .html, .text or .svg")
                })?
            };
            let package = match s("package") {
                "" | "default" => None,
                p => Some(p.to_string()),
            };
            if s("action").is_empty() {
                return Err(format!("{here}: x-openwhisk has no action"));
            }
            Target {
                namespace,
                package,
                action: s("action").to_string(),
                ext,
            }
        }
        None => {
            let url = case.and_then(|c| c.1.as_deref()).unwrap_or("");
            let mut t = target_of_url(url).ok_or_else(|| {
                if url.is_empty() {
                    format!("{here} runs no OpenWhisk action (no x-openwhisk, no target-url)")
                } else {
                    format!("{here}: the target-url '{url}' is not a web action URL of this platform (…/api/v1/web/namespace/package/action.ext); other backends are not supported")
                }
            })?;
            if t.namespace == "_" {
                t.namespace = ns.to_string();
            }
            t
        }
    };
    let params = path_parameters(path);
    if !params.is_empty() && target.ext != "http" {
        return Err(format!(
            "{here}: The action must use a response type of '.http' in order to receive the path parameters."
        ));
    }
    let declared: Vec<&str> = shared
        .iter()
        .chain(
            o.get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .filter_map(|p| p.get("name").and_then(Value::as_str))
        .collect();
    for p in &params {
        if !declared.contains(&p.as_str()) {
            return Err(format!(
                "The parameter '{p}' defined in path '{path}' does not match any of the parameters defined for the path in the swagger file."
            ));
        }
    }
    let backend_verb = case
        .and_then(|c| c.2.clone())
        .map(|v| v.to_ascii_lowercase())
        .filter(|v| v != "keep");
    if let Some(v) = &backend_verb
        && !VERBS.contains(&v.as_str())
    {
        return Err(format!("{here}: invoke verb '{v}' is not supported"));
    }
    Ok(Operation {
        path: path.to_string(),
        verb: verb.to_string(),
        operation_id,
        target,
        backend_verb,
        secret: case.and_then(|c| c.3.clone()),
    })
}

/// Writes `x-openwhisk` into every operation of `swagger` that runs `ops`' targets without
/// one (so that listings name the action), with the URL under `base_url`.
pub fn normalize(swagger: &mut Value, ops: &[Operation], base_url: &str) {
    let Some(paths) = swagger.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for op in ops {
        let Some(o) = paths
            .get_mut(&op.path)
            .and_then(|p| p.get_mut(&op.verb))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        o.entry("operationId")
            .or_insert_with(|| json!(op.operation_id));
        o.entry("x-openwhisk").or_insert_with(|| {
            json!({
                "url": web_url(base_url, &op.target),
                "namespace": op.target.namespace,
                "package": op.target.package.clone().unwrap_or_default(),
                "action": op.target.action,
            })
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn target(ext: &str) -> Target {
        Target {
            namespace: "guest".into(),
            package: None,
            action: "getBooks".into(),
            ext: ext.into(),
        }
    }

    #[test]
    fn operation_ids_follow_openwhisk() {
        assert_eq!(operation_id("GET", "/books/{isbn}"), "getBooksIsbn");
        assert_eq!(operation_id("post", "/foo/bar"), "postFooBar");
        assert_eq!(operation_id("get", "/foo-bar"), "getFoo-bar");
        assert_eq!(operation_id("get", "/"), "get");
        assert_eq!(operation_id("put", "/a.b/CD"), "putABCd");
    }

    #[test]
    fn endpoints_are_added_parsed_and_removed() {
        let mut s = base("/club", Some("Book Club"));
        let t = target("http");
        let url = web_url("http://h", &t);
        assert_eq!(url, "http://h/api/v1/web/guest/default/getBooks.http");
        let params = json!([{"name": "isbn", "in": "path", "required": true, "type": "string"}]);
        add_endpoint(
            &mut s,
            "GET",
            "/books/{isbn}",
            &t,
            Some(params),
            &url,
            Some("s3"),
        );
        add_endpoint(&mut s, "post", "/books", &target("json"), None, &url, None);
        let p = parse(&s, "guest").unwrap();
        assert_eq!(p.base_path, "/club");
        assert_eq!(p.title, "Book Club");
        assert!(p.cors);
        assert_eq!(p.operations.len(), 2);
        let get = p.operations.iter().find(|o| o.verb == "get").unwrap();
        assert_eq!(get.target, t);
        assert_eq!(get.secret.as_deref(), Some("s3"));
        assert_eq!(get.operation_id, "getBooksIsbn");
        remove_endpoint(&mut s, "/books/{isbn}", Some("GET")).unwrap();
        assert_eq!(
            remove_endpoint(&mut s, "/books", Some("put")).unwrap_err(),
            "path '/books' with operation 'put' does not exist in the API"
        );
        let p = parse(&s, "guest").unwrap();
        assert_eq!(p.operations.len(), 1);
        assert_eq!(
            s.pointer("/x-ibm-configuration/assembly/execute/0/operation-switch/case")
                .and_then(Value::as_array)
                .map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn imports_name_what_they_refuse() {
        let s = json!({
            "swagger": "2.0", "basePath": "/x", "info": {"title": "x"},
            "securityDefinitions": {"k": {}},
            "paths": {
                "/a": {"trace": {}},
                "/b": {"get": {"operationId": "getB"}},
                "/c/{id}": {"get": {"x-openwhisk": {"namespace": "_", "action": "a", "url": "http://h/api/v1/web/_/default/a.json"}}},
                "/d": {"get": {"operationId": "getD"}}
            },
            "x-ibm-configuration": {"assembly": {"execute": [{"operation-switch": {"case": [
                {"operations": ["getD"], "execute": [{"invoke": {"target-url": "https://example.invalid/backend"}}]}
            ]}}]}}
        });
        let e = parse(&s, "guest").unwrap_err();
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(e[0].contains("securityDefinitions"));
        assert!(e.iter().any(|m| m.contains("'trace' is not supported")));
        assert!(e.iter().any(|m| m.contains("runs no OpenWhisk action")));
        assert!(e.iter().any(|m| m.contains("response type of '.http'")));
        assert!(
            e.iter()
                .any(|m| m.contains("other backends are not supported"))
        );
    }

    #[test]
    fn target_urls_without_x_openwhisk_are_read() {
        let s = json!({
            "swagger": "2.0", "basePath": "/x", "info": {"title": "x"},
            "paths": {"/d": {"get": {"operationId": "getD"}}},
            "x-ibm-configuration": {"assembly": {"execute": [{"operation-switch": {"case": [
                {"operations": ["getD"], "execute": [{"invoke": {"target-url": "https://h/api/v1/web/_/pkg/act.text", "verb": "POST"}}]}
            ]}}]}}
        });
        let p = parse(&s, "guest").unwrap();
        let op = &p.operations[0];
        assert_eq!(op.target.display(), "/guest/pkg/act");
        assert_eq!(op.target.ext, "text");
        assert_eq!(op.backend_verb.as_deref(), Some("post"));
    }

    #[test]
    fn paths() {
        assert!(check_path("/", "path", true).is_ok());
        assert!(check_path("/books/{isbn}/", "path", true).is_ok());
        assert!(check_path("books", "path", true).is_err());
        assert!(check_path("/a//b", "path", true).is_err());
        assert!(check_path("/a/../b", "path", true).is_err());
        assert!(check_path("/a/{b}x", "path", true).is_err());
        assert!(check_path("/a b", "path", true).is_err());
        assert!(
            check_path("/a/{b}", "base path", false)
                .unwrap_err()
                .contains("cannot have parameters")
        );
        assert_eq!(path_parameters("/a/{b}/c/{d}"), ["b", "d"]);
    }
}
