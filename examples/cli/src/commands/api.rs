//! `faas api create|get|delete|list` (`wsk`'s `commands/api.go`), through the URLs `wsk` uses:
//! the web actions of the `whisk.system/apimgmt` package (`createApi.http`, `getApi.http`,
//! `deleteApi.http`), called with the caller's key, its space guid (the key's uuid) and the API
//! gateway access token (`APIGW_ACCESS_TOKEN`, else `DUMMY TOKEN`).
//!
//! Swagger files must be JSON: this client reads no YAML.

use std::path::Path;

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::Ctx;
use crate::cli::{ApiCmd, ApiCreate, ApiGet, ApiList};
use crate::client::{Client, Req};
use crate::error::{CliError, Result};
use crate::names::QualifiedName;
use crate::output::outp;
use crate::params::read_file;

/// The family named in "not served" messages.
const FAMILY: &str = "web actions and the API gateway (whisk.system/apimgmt)";

/// The verbs an API may use.
const VERBS: [&str; 7] = ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// Swagger's operation keys, in the order they are shown.
const OPERATIONS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

/// Runs an `api` command.
pub(crate) async fn run(ctx: &Ctx, cmd: ApiCmd) -> Result<()> {
    match cmd {
        ApiCmd::Create(a) => create(ctx, &a).await,
        ApiCmd::Get(g) => get(ctx, &g).await,
        ApiCmd::Delete { base, path, verb } => {
            delete(ctx, &base, path.as_deref(), verb.as_deref()).await
        }
        ApiCmd::List(l) => list(ctx, &l).await,
    }
}

/// A request to one of the `apimgmt` web actions.
fn apimgmt(c: &Client, method: Method, action: &str) -> Req {
    c.req(method, FAMILY, &["web", "whisk.system", "apimgmt", action])
}

/// `spaceguid` (the key's uuid) and `accesstoken` (`getUserContextId`, `getAccessToken`).
fn credentials(ctx: &Ctx) -> Result<[(&'static str, String); 2]> {
    let auth = ctx.settings.auth.as_deref().ok_or_else(|| {
        CliError::usage("Authorization key is not configured (--auth is required)")
    })?;
    let guid = auth.split(':').next().unwrap_or(auth).to_string();
    let token = ctx
        .settings
        .apigw_access_token
        .clone()
        .unwrap_or_else(|| "DUMMY TOKEN".to_string());
    Ok([("spaceguid", guid), ("accesstoken", token)])
}

/// A verb `wsk` accepts, upper-cased.
pub(crate) fn verb_of(verb: &str) -> Result<String> {
    let v = verb.to_ascii_uppercase();
    if VERBS.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(CliError::general(format!(
            "'{verb}' is not a valid API verb.  Valid values are: {}",
            VERBS.join(", ")
        )))
    }
}

fn starts_with_slash(path: &str) -> Result<()> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(CliError::general(format!("'{path}' must begin with '/'.")))
    }
}

/// The `{name}` segments of a path (`getPathParameterNames`), each once.
pub(crate) fn path_parameters(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for seg in path.split('/') {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
            && !name.is_empty()
            && !name.contains(['{', '}'])
            && !out.iter().any(|n| n == name)
        {
            out.push(name.to_string());
        }
    }
    out
}

/// The `apidoc` of `api create BASE_PATH API_PATH API_VERB ACTION` (`parseApi`).
pub(crate) fn api_doc(
    ctx: &Ctx,
    args: &[String],
    apiname: Option<&str>,
    response_type: &str,
    action: &QualifiedName,
) -> Result<Value> {
    let (basepath, is_name, rest) = if args.len() > 3 {
        let b = args[0].clone();
        if !path_parameters(&b).is_empty() {
            return Err(CliError::general(format!(
                "The base path '{b}' cannot have parameters. Only the relative path supports path parameters."
            )));
        }
        (b.clone(), !b.starts_with('/'), &args[1..])
    } else {
        ("/".to_string(), false, args)
    };
    let relpath = rest[0].clone();
    starts_with_slash(&relpath)?;
    let params = path_parameters(&relpath);
    if !params.is_empty() && response_type != "http" {
        return Err(CliError::general(
            "A response type of 'http' is required when using path parameters.",
        ));
    }
    let verb = verb_of(&rest[1])?;
    if apiname.is_some() && is_name {
        return Err(CliError::general("An API name can only be specified once."));
    }
    let host = ctx.settings.apihost.clone().unwrap_or_default();
    let mut backend = format!(
        "{host}/api/v1/web/{}/{}/{}.http",
        action.namespace,
        action.package.as_deref().unwrap_or("default"),
        action.name
    );
    if !backend.to_ascii_lowercase().starts_with("http") {
        backend = format!("https://{backend}");
    }
    let namespace = ctx.ns().to_string();
    let mut api = Map::new();
    api.insert("namespace".into(), json!(namespace));
    if let Some(n) = apiname.or(if is_name {
        Some(basepath.as_str())
    } else {
        None
    }) {
        api.insert("apiName".into(), json!(n));
    }
    api.insert("gatewayBasePath".into(), json!(basepath));
    api.insert("gatewayPath".into(), json!(relpath));
    api.insert("gatewayMethod".into(), json!(verb));
    if !is_name {
        api.insert("id".into(), json!(format!("API:{namespace}:{basepath}")));
    }
    let mut act = Map::new();
    act.insert("name".into(), json!(action.entity_name()));
    act.insert("namespace".into(), json!(action.namespace));
    act.insert("backendMethod".into(), json!(verb));
    act.insert("backendUrl".into(), json!(backend));
    if let Some(auth) = &ctx.settings.auth {
        act.insert("authkey".into(), json!(auth));
    }
    api.insert("action".into(), Value::Object(act));
    if !params.is_empty() {
        let p: Vec<Value> = params
            .iter()
            .map(|n| {
                json!({"name": n, "in": "path", "required": true, "type": "string",
                       "description": format!("Default description for '{n}'")})
            })
            .collect();
        api.insert("pathParameters".into(), json!(p));
    }
    Ok(Value::Object(api))
}

/// The `apidoc` of `api create --config-file FILE` (`parseSwaggerApi`): a JSON swagger file.
fn swagger_doc(ctx: &Ctx, file: &Path) -> Result<Value> {
    let ext = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if ext == "yaml" || ext == "yml" {
        return Err(CliError::general(
            "Unable to parse YAML configuration file: this client reads JSON swagger files only",
        ));
    }
    let text = read_file(file)
        .map_err(|e| e.context(format!("Error reading swagger file '{}'", file.display())))?;
    let swagger: Value = serde_json::from_str(&text).map_err(|e| {
        CliError::general(format!(
            "Error parsing swagger file '{}': {e}",
            file.display()
        ))
    })?;
    let base = swagger
        .get("basePath")
        .and_then(Value::as_str)
        .unwrap_or("");
    let complete = !base.is_empty()
        && swagger
            .get("swagger")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        && swagger.get("info").is_some_and(Value::is_object)
        && swagger.get("paths").is_some_and(Value::is_object);
    if !complete {
        return Err(CliError::general(
            "Swagger file is invalid (missing basePath, info, paths, or swagger fields)",
        ));
    }
    if !base.starts_with('/') {
        return Err(CliError::general(
            "Swagger file basePath must start with a leading slash (/)",
        ));
    }
    Ok(json!({ "namespace": ctx.ns(), "swagger": text }))
}

async fn create(ctx: &Ctx, a: &ApiCreate) -> Result<()> {
    let c = ctx.client()?;
    let parse_ctx = "Unable to parse api command arguments";
    let (mut doc, action) = match (&a.config_file, a.args.len()) {
        (Some(file), 0) => (
            swagger_doc(ctx, file).map_err(|e| e.context("Unable to parse swagger file"))?,
            None,
        ),
        (None, 0) => {
            return Err(CliError::general(
                "Invalid argument(s). Specify a swagger file or specify an API base path with an API path, an API verb, and an action name.",
            ));
        }
        (_, n) if n < 3 => {
            return Err(CliError::general(
                "Invalid argument(s). Specify a swagger file or specify an API base path with an API path, an API verb, and an action name.",
            ));
        }
        _ => {
            let action_arg = &a.args[a.args.len() - 1];
            let qn = ctx.qname(action_arg).map_err(|e| {
                CliError::general(format!("'{action_arg}' is not a valid action name: {e}"))
                    .context(parse_ctx)
            })?;
            let doc = api_doc(ctx, &a.args, a.apiname.as_deref(), &a.response_type, &qn)
                .map_err(|e| e.context(parse_ctx))?;
            (doc, Some(qn))
        }
    };
    // An API runs a web action: check it is one, and pass on its secret.
    if let Some(qn) = &action {
        let req = c
            .ns_req(
                Method::GET,
                "actions",
                &qn.namespace,
                "actions",
                &qn.segments(),
            )
            .query([("code", "false")]);
        let got = c
            .call(&req)
            .await
            .map_err(|e| e.context(format!("Unable to get action '{}'", qn.full())))?;
        let ann = super::key_values(&got.body, "annotations");
        if ann.get("web-export") != Some(&Value::Bool(true)) {
            return Err(CliError::general(format!(
                "Action '{0}' is not a web action. Issue 'faas action update \"{0}\" --web true' to convert the action to a web action.",
                qn.full()
            )));
        }
        if let (Some(secret), Some(act)) = (
            ann.get("require-whisk-auth"),
            doc.get_mut("action").and_then(Value::as_object_mut),
        ) {
            act.insert("secureKey".into(), secret.clone());
        }
    }
    let [guid, token] = credentials(ctx)?;
    let req = apimgmt(&c, Method::POST, "createApi.http")
        .query([guid, token, ("responsetype", a.response_type.clone())])
        .body(json!({ "apidoc": doc }));
    let ret = c
        .call(&req)
        .await
        .map_err(|e| e.context("Unable to create API"))?
        .body;
    if ctx.out.json {
        ctx.out.json_doc(&ret);
        return Ok(());
    }
    let base_url = ret
        .get("gwApiUrl")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_end_matches('/');
    match &action {
        Some(qn) => {
            let base = doc
                .get("gatewayBasePath")
                .and_then(Value::as_str)
                .unwrap_or("/");
            let rel = doc.get("gatewayPath").and_then(Value::as_str).unwrap_or("");
            let verb = doc
                .get("gatewayMethod")
                .and_then(Value::as_str)
                .unwrap_or("");
            ctx.out.ok(format!(
                "created API {}{rel} {verb} for action {}\n{base_url}{rel}",
                base.trim_end_matches('/'),
                ctx.out.bold(&qn.full())
            ));
        }
        None => {
            let swagger = ret.get("apidoc").cloned().unwrap_or(Value::Null);
            let base = swagger
                .get("basePath")
                .and_then(Value::as_str)
                .unwrap_or("");
            for op in operations(&swagger, None, None) {
                let target = if op.action.is_empty() {
                    String::new()
                } else {
                    format!(" for action {}", ctx.out.bold(&op.action))
                };
                ctx.out.ok(format!(
                    "created API {}{} {}{target}\n{base_url}{}",
                    base.trim_end_matches('/'),
                    op.path,
                    op.verb,
                    op.path
                ));
            }
        }
    }
    Ok(())
}

/// One operation of an API, as `api list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operation {
    /// `/ns/[pkg/]action` from `x-openwhisk`, or empty.
    pub(crate) action: String,
    /// The verb (lowercase, as in swagger).
    pub(crate) verb: String,
    /// The API's name (`info.title`).
    pub(crate) api_name: String,
    /// The base path.
    pub(crate) base_path: String,
    /// The relative path.
    pub(crate) path: String,
}

/// The operations of a swagger document, filtered by path and verb, sorted by path then verb.
pub(crate) fn operations(
    swagger: &Value,
    path: Option<&str>,
    verb: Option<&str>,
) -> Vec<Operation> {
    let api_name = swagger
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("");
    let base_path = swagger
        .get("basePath")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut out = Vec::new();
    let Some(paths) = swagger.get("paths").and_then(Value::as_object) else {
        return out;
    };
    for (p, ops) in paths {
        if path.is_some_and(|want| want != p) {
            continue;
        }
        for op in OPERATIONS {
            let Some(o) = ops.get(op) else { continue };
            if verb.is_some_and(|v| !v.eq_ignore_ascii_case(op)) {
                continue;
            }
            let action = match o.get("x-openwhisk") {
                Some(x) => {
                    let s = |k: &str| x.get(k).and_then(Value::as_str).unwrap_or("");
                    if s("package").is_empty() {
                        format!("/{}/{}", s("namespace"), s("action"))
                    } else {
                        format!("/{}/{}/{}", s("namespace"), s("package"), s("action"))
                    }
                }
                None => String::new(),
            };
            out.push(Operation {
                action,
                verb: op.to_string(),
                api_name: api_name.to_string(),
                base_path: base_path.to_string(),
                path: p.clone(),
            });
        }
    }
    out
}

async fn get(ctx: &Ctx, g: &ApiGet) -> Result<()> {
    match g.format.to_ascii_lowercase().as_str() {
        "json" => {}
        "yaml" => {
            return Err(CliError::general(
                "Invalid format type: yaml (this client prints JSON only)",
            ));
        }
        other => {
            return Err(CliError::general(format!("Invalid format type: {other}")));
        }
    }
    let c = ctx.client()?;
    let [guid, token] = credentials(ctx)?;
    let req =
        apimgmt(&c, Method::GET, "getApi.http").query([("basepath", g.base.clone()), guid, token]);
    let ret = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to get API '{}'", g.base)))?
        .body;
    let value = ret.pointer("/apis/0/value");
    let shown = if g.full {
        value
    } else {
        value.and_then(|v| v.get("apidoc"))
    };
    let Some(shown) = shown.filter(|v| !v.is_null()) else {
        return Err(CliError::general(format!(
            "API does not exist for basepath {}",
            g.base
        )));
    };
    ctx.out.json_doc(shown);
    Ok(())
}

async fn delete(ctx: &Ctx, base: &str, path: Option<&str>, verb: Option<&str>) -> Result<()> {
    if let Some(p) = path {
        starts_with_slash(p)?;
    }
    let verb = verb.map(verb_of).transpose()?;
    let c = ctx.client()?;
    let [guid, token] = credentials(ctx)?;
    let mut query = vec![("basepath", base.to_string())];
    if let Some(p) = path {
        query.push(("relpath", p.to_string()));
    }
    if let Some(v) = &verb {
        query.push(("operation", v.clone()));
    }
    query.push(guid);
    query.push(token);
    let req = apimgmt(&c, Method::DELETE, "deleteApi.http").query(query);
    let reply = c
        .call(&req)
        .await
        .map_err(|e| e.context("Unable to delete API"))?;
    if ctx.out.json {
        ctx.out.json_doc(&reply.body);
        return Ok(());
    }
    match (path, verb) {
        (None, _) => ctx.out.ok(format!("deleted API {base}")),
        (Some(p), None) => ctx.out.ok(format!("deleted {p} from {base}")),
        (Some(p), Some(v)) => ctx.out.ok(format!("deleted {p} {v} from {base}")),
    }
    Ok(())
}

async fn list(ctx: &Ctx, l: &ApiList) -> Result<()> {
    let path = l.args.get(1).map(String::as_str);
    if let Some(p) = path {
        starts_with_slash(p)?;
    }
    let verb = l.args.get(2).map(|v| verb_of(v)).transpose()?;
    let c = ctx.client()?;
    let [guid, token] = credentials(ctx)?;
    let mut query = Vec::new();
    match l.args.first() {
        None => {
            query.push(("limit", l.page.limit.to_string()));
            query.push(("skip", l.page.skip.to_string()));
        }
        Some(base) => {
            query.push(("basepath", base.clone()));
            if let Some(p) = path {
                query.push(("relpath", p.to_string()));
            }
            if let Some(v) = &verb {
                query.push(("operation", v.clone()));
            }
        }
    }
    query.push(guid);
    query.push(token);
    let req = apimgmt(&c, Method::GET, "getApi.http").query(query);
    let ret = c
        .call(&req)
        .await
        .map_err(|e| e.context("Unable to obtain the API list"))?
        .body;
    if ctx.out.json {
        ctx.out.json_doc(&ret);
        return Ok(());
    }
    let mut rows: Vec<(Operation, String)> = Vec::new();
    for api in ret
        .get("apis")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let value = api.get("value").unwrap_or(&Value::Null);
        let base_url = value
            .get("gwApiUrl")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string();
        let swagger = value.get("apidoc").unwrap_or(&Value::Null);
        for op in operations(swagger, path, verb.as_deref()) {
            let url = format!("{base_url}{}", op.path);
            rows.push((op, url));
        }
    }
    if l.page.sort.name_sort {
        rows.sort_by_key(|(o, _)| format!("{}{}{}", o.base_path, o.path, o.verb).to_lowercase());
    }
    ctx.out.ok("APIs");
    for line in api_table(&rows, l.full) {
        outp!("{line}");
    }
    Ok(())
}

/// The lines of `api list` (each with its newline): a table, or with `--full` one block per
/// operation.
pub(crate) fn api_table(rows: &[(Operation, String)], full: bool) -> Vec<String> {
    if full {
        return rows
            .iter()
            .map(|(o, url)| {
                format!(
                    "Action: {}\n   API Name: {}\n   Base path: {}\n   Path: {}\n   Verb: {}\n   URL: {url}\n",
                    o.action, o.api_name, o.base_path, o.path, o.verb
                )
            })
            .collect();
    }
    let action_w = rows
        .iter()
        .map(|(o, _)| o.action.chars().count())
        .max()
        .unwrap_or(0)
        .max("Action".len())
        .min(40);
    let name_w = rows
        .iter()
        .map(|(o, _)| o.api_name.chars().count())
        .max()
        .unwrap_or(0)
        .max("API Name".len())
        .min(30);
    let line = |a: &str, v: &str, n: &str, u: &str| {
        let a: String = a.chars().take(action_w).collect();
        let n: String = n.chars().take(name_w).collect();
        format!("{a:<action_w$} {v:>7} {n:>w$}  {u}\n", w = name_w + 1)
    };
    let mut out = vec![line("Action", "Verb", "API Name", "URL")];
    out.extend(
        rows.iter()
            .map(|(o, url)| line(&o.action, &o.verb, &o.api_name, url)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_and_paths() {
        assert_eq!(verb_of("get").unwrap(), "GET");
        let e = verb_of("FETCH").unwrap_err();
        assert!(
            e.message.starts_with("'FETCH' is not a valid API verb."),
            "{e}"
        );
        assert_eq!(path_parameters("/books/{id}/pages/{page}"), ["id", "page"]);
        assert!(path_parameters("/books").is_empty());
    }

    #[test]
    fn swagger_operations_and_table() {
        let swagger = json!({
            "basePath": "/hello", "info": {"title": "Hello API"},
            "paths": {"/world": {
                "get": {"operationId": "g", "x-openwhisk": {"namespace": "guest", "package": "", "action": "hello", "url": "u"}},
                "post": {"operationId": "p", "x-openwhisk": {"namespace": "guest", "package": "demo", "action": "hello", "url": "u"}}
            }}
        });
        let ops = operations(&swagger, None, None);
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].action, "/guest/hello");
        assert_eq!(ops[1].action, "/guest/demo/hello");
        assert_eq!(operations(&swagger, Some("/world"), Some("POST")).len(), 1);
        let rows: Vec<(Operation, String)> = ops
            .into_iter()
            .map(|o| (o, "https://gw/hello/world".to_string()))
            .collect();
        let t = api_table(&rows, false);
        // Action as wide as the longest (17), Verb right-aligned in 7, API Name right-aligned
        // in one more than the longest name (10), as wsk's format string.
        assert_eq!(t[0], "Action               Verb   API Name  URL\n");
        assert_eq!(
            t[1],
            "/guest/hello          get  Hello API  https://gw/hello/world\n"
        );
        let f = api_table(&rows, true);
        assert!(f[0].starts_with("Action: /guest/hello\n   API Name: Hello API\n"));
    }
}
