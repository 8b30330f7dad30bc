//! `faas action create|update|invoke|get|delete|list` (`wsk`'s `commands/action.go`).

use std::path::{Path, PathBuf};

use base64::Engine;
use faas_core::entity::is_binary_code;
use faas_core::{Exec, Parameters};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{check_field, key_values, print_got, print_summary_entry, print_table};
use crate::Ctx;
use crate::cli::{ActionCmd, ActionGet, ActionInvoke, ActionList, ActionPut};
use crate::client::{Client, failure};
use crate::error::{CliError, Result, exit};
use crate::names::{QualifiedName, qualify};
use crate::output::Shape;
use crate::output::outln;
use crate::output::{Ordered, json_to_stderr};
use crate::params::{self, What};
use crate::progress;

/// The family named in "not served" messages.
const FAMILY: &str = "actions";

/// Annotation keys of web actions.
const WEB_EXPORT: &str = "web-export";
const RAW_HTTP: &str = "raw-http";
const FINAL: &str = "final";
const REQUIRE_WHISK_AUTH: &str = "require-whisk-auth";
/// The largest integer JavaScript represents exactly (web-action secrets stay below it).
const MAX_JS_INT: u64 = (1 << 53) - 1;

/// The fields of an action `get` can filter on (`whisk.Action`).
const FIELDS: &[&str] = crate::output::ACTION_FIELDS;

/// Runs an `action` command.
pub(crate) async fn run(ctx: &Ctx, cmd: ActionCmd) -> Result<()> {
    match cmd {
        ActionCmd::Create(a) => put(ctx, &a, &[], false).await,
        ActionCmd::Update(u) => put(ctx, &u.put, &u.del_annotation, true).await,
        ActionCmd::Invoke(i) => invoke(ctx, &i).await,
        ActionCmd::Get(g) => get(ctx, &g).await,
        ActionCmd::Delete { name } => delete(ctx, &name).await,
        ActionCmd::List(l) => list(ctx, &l).await,
    }
}

/// `GET` an action (with its code or not).
async fn fetch_value(c: &Client, qn: &QualifiedName, code: bool) -> Result<Value> {
    let req = c
        .ns_req(
            Method::GET,
            FAMILY,
            &qn.namespace,
            "actions",
            &qn.segments(),
        )
        .query([("code", code.to_string())]);
    Ok(c.call(&req).await?.body)
}

/// `GET` an action; `None` when it does not exist.
async fn fetch(c: &Client, qn: &QualifiedName, code: bool) -> Result<Option<Value>> {
    match fetch_value(c, qn, code).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.has_status(404) && !e.is_not_served() => Ok(None),
        Err(e) => Err(e),
    }
}

async fn put(ctx: &Ctx, a: &ActionPut, del: &[String], update: bool) -> Result<()> {
    let c = ctx.client()?;
    let qn = ctx.qname(&a.name)?;
    let body = action_body(ctx, &c, &qn, a, del, update)
        .await
        .map_err(|e| e.prefix("Invalid argument(s)."))?;
    let req = c
        .ns_req(
            Method::PUT,
            FAMILY,
            &qn.namespace,
            "actions",
            &qn.segments(),
        )
        .query([("overwrite", update.to_string())])
        .body(Value::Object(body));
    let verb = if update { "update" } else { "create" };
    let reply = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to {verb} action '{}'", qn.entity_name())))?;
    if ctx.out.json {
        ctx.out.json_doc(&reply.body);
    } else {
        ctx.out.ok(format!(
            "{verb}d action {}",
            ctx.out.bold(&qn.entity_name())
        ));
    }
    Ok(())
}

/// The body of `PUT /actions/...` from the flags (`parseAction` and `augmentAction`).
async fn action_body(
    ctx: &Ctx,
    c: &Client,
    qn: &QualifiedName,
    a: &ActionPut,
    del: &[String],
    update: bool,
) -> Result<Map<String, Value>> {
    let mut body = Map::new();
    let mut limits = Map::new();
    for (k, v) in [
        ("timeout", a.timeout),
        ("memory", a.memory),
        ("logs", a.logsize),
        ("concurrency", a.concurrency.map(u64::from)),
    ] {
        if let Some(v) = v {
            limits.insert(k.into(), json!(v));
        }
    }
    if !limits.is_empty() {
        body.insert("limits".into(), Value::Object(limits));
    }
    let mut parameters = given(
        &a.params.param,
        a.params.param_file.as_deref(),
        What::Parameter,
    )?;
    let mut annotations = given(
        &a.annotations.annotation,
        a.annotations.annotation_file.as_deref(),
        What::Annotation,
    )?;
    if a.kind.is_some() && a.docker.is_some() {
        return Err(CliError::new(
            "Cannot specify both --kind and --docker at the same time.",
            exit::NOT_ALLOWED,
        ));
    }
    let exec = if a.copy {
        let source = a.artifact.as_deref().ok_or_else(no_artifact)?;
        let src = ctx.qname(source)?;
        let existing = fetch_value(c, &src, true)
            .await
            .map_err(|e| e.context(format!("Unable to get action '{}'", src.entity_name())))?;
        let exec: Exec = serde_json::from_value(existing.get("exec").cloned().unwrap_or_default())
            .map_err(|e| {
                CliError::general(format!("the action to copy has no usable exec: {e}"))
            })?;
        // The copy's own parameters and annotations, overlaid with the flags.
        parameters =
            Some(key_values(&existing, "parameters").merged(&parameters.unwrap_or_default()));
        annotations =
            Some(key_values(&existing, "annotations").merged(&annotations.unwrap_or_default()));
        Some(exec)
    } else if a.sequence {
        let list = a.artifact.as_deref().ok_or_else(no_artifact)?;
        let components = list
            .split(',')
            .map(|n| qualify(n.trim(), ctx.ns()))
            .collect::<Result<Vec<_>>>()?;
        Some(Exec::Sequence { components })
    } else if a.artifact.is_some() || a.docker.is_some() || a.native {
        Some(exec_of(a)?)
    } else if !update {
        return Err(no_artifact());
    } else {
        None
    };
    if let Some(exec) = exec {
        body.insert(
            "exec".into(),
            serde_json::to_value(&exec)
                .map_err(|e| CliError::general(format!("Error encoding request body: {e}")))?,
        );
    }
    let mut del_annotations: Vec<String> = del.to_vec();
    if a.web.is_some() || a.web_secure.is_some() {
        let existing = if update {
            fetch(c, qn, false)
                .await
                .map_err(|e| e.context(format!("Unable to get action '{}'", qn.entity_name())))?
        } else {
            None
        };
        let existing_annotations = existing
            .as_ref()
            .map(|e| key_values(e, "annotations"))
            .unwrap_or_default();
        if let Some(mode) = &a.web {
            let mut ann = annotations.unwrap_or_default();
            apply_web(&mut ann, mode)?;
            annotations = Some(ann);
        }
        if let Some(secret) = &a.web_secure {
            let mut ann = annotations.unwrap_or_default();
            apply_web_secure(
                &mut ann,
                &mut del_annotations,
                secret,
                a.web.as_deref(),
                existing.as_ref().map(|_| &existing_annotations),
            )?;
            annotations = Some(ann);
        }
    }
    if let Some(p) = parameters {
        body.insert("parameters".into(), to_json(&p)?);
    }
    if let Some(an) = annotations {
        body.insert("annotations".into(), to_json(&an)?);
    }
    if update && !del_annotations.is_empty() {
        body.insert("delAnnotations".into(), json!(del_annotations));
    }
    Ok(body)
}

fn to_json(p: &Parameters) -> Result<Value> {
    serde_json::to_value(p)
        .map_err(|e| CliError::general(format!("Error encoding request body: {e}")))
}

/// The `-p`/`-P` (or `-a`/`-A`) entries, if any were given.
fn given(pairs: &[String], file: Option<&Path>, what: What) -> Result<Option<Parameters>> {
    if pairs.is_empty() && file.is_none() {
        Ok(None)
    } else {
        params::list(pairs, file, what).map(Some)
    }
}

fn no_artifact() -> CliError {
    CliError::usage("An action name and code artifact are required.")
}

/// The kind `wsk` gives a file by its extension.
fn kind_for_extension(ext: &str) -> Option<&'static str> {
    Some(match ext {
        ".swift" => "swift:default",
        ".js" => "nodejs:default",
        ".py" => "python:default",
        ".jar" => "java:default",
        ".php" => "php:default",
        ".rb" => "ruby:default",
        ".rs" => "rust:default",
        ".go" => "go:default",
        ".balx" => "ballerina:default",
        _ => return None,
    })
}

/// What the action runs, from the artifact file and `--kind`/`--docker`/`--native`/`--main`
/// (`getExec`).
fn exec_of(a: &ActionPut) -> Result<Exec> {
    let (code, ext) = match &a.artifact {
        Some(file) => {
            let path = PathBuf::from(file);
            let ext = path
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_default();
            let binary_ext = matches!(ext.as_str(), ".zip" | ".jar" | ".balx");
            let code = if binary_ext {
                let bytes = read_bytes(&path)?;
                base64::engine::general_purpose::STANDARD.encode(bytes)
            } else {
                params::read_file(&path)?
            };
            (Some(code), ext)
        }
        None => (None, String::new()),
    };
    let main = a.main.clone();
    if a.docker.is_some() || a.native {
        let image = a
            .docker
            .clone()
            .unwrap_or_else(|| "openwhisk/dockerskeleton".to_string());
        let binary = code.as_deref().is_some_and(is_binary_code);
        return Ok(Exec::Blackbox {
            image,
            code,
            binary,
            main,
        });
    }
    let kind = match &a.kind {
        Some(k) => k.clone(),
        None => match kind_for_extension(&ext) {
            Some(k) => k.to_string(),
            None if ext == ".zip" => {
                return Err(CliError::usage(
                    "creating an action from a .zip artifact requires specifying the action kind explicitly",
                ));
            }
            None => {
                return Err(CliError::usage(format!(
                    "'{ext}' is not a supported action runtime"
                )));
            }
        },
    };
    if kind == "java" && main.is_none() {
        return Err(CliError::usage(
            "Java actions require --main to specify the fully-qualified name of the main class",
        ));
    }
    let code = code.ok_or_else(no_artifact)?;
    let binary = is_binary_code(&code);
    Ok(Exec::Code {
        kind,
        code,
        binary,
        main,
    })
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    if !path.is_file() {
        return Err(CliError::usage(format!(
            "File '{}' is not a valid file or it does not exist",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| {
        CliError::general(format!("Unable to read the file '{}': {e}", path.display()))
    })
}

/// Sets the web-action annotations for `--web MODE` (`webAction`).
fn apply_web(ann: &mut Parameters, mode: &str) -> Result<()> {
    let (export, raw, fin) = match mode.to_ascii_lowercase().as_str() {
        "yes" | "true" => (true, false, true),
        "no" | "false" => (false, false, false),
        "raw" => (true, true, true),
        _ => {
            return Err(CliError::usage(format!(
                "Invalid argument '{mode}' for --web flag. Valid input consist of 'yes', 'true', 'raw', 'false', or 'no'."
            )));
        }
    };
    for k in [WEB_EXPORT, RAW_HTTP, FINAL] {
        ann.remove(k);
    }
    ann.set(WEB_EXPORT, Value::Bool(export));
    ann.set(RAW_HTTP, Value::Bool(raw));
    ann.set(FINAL, Value::Bool(fin));
    Ok(())
}

/// Sets `require-whisk-auth` for `--web-secure SECRET` (`augmentWebSecureArg`): `true` makes a
/// random number (kept when the action already has a numeric one), `false` removes it, any
/// other value is the secret. Valid only for a web action.
fn apply_web_secure(
    ann: &mut Parameters,
    del: &mut Vec<String>,
    secret: &str,
    web: Option<&str>,
    existing: Option<&Parameters>,
) -> Result<()> {
    let is_web = |p: &Parameters| p.get(WEB_EXPORT) == Some(&Value::Bool(true));
    let disabling =
        web.is_some_and(|w| w.eq_ignore_ascii_case("false") || w.eq_ignore_ascii_case("no"));
    if !(is_web(ann) || (existing.is_some_and(is_web) && !disabling)) {
        return Err(CliError::usage(
            "The --web-secure option is only valid when the --web option is enabled.",
        ));
    }
    let current = ann
        .get(REQUIRE_WHISK_AUTH)
        .or_else(|| existing.and_then(|e| e.get(REQUIRE_WHISK_AUTH)))
        .cloned();
    match secret.to_ascii_lowercase().as_str() {
        "false" => {
            if current.is_some() {
                del.push(REQUIRE_WHISK_AUTH.to_string());
                ann.remove(REQUIRE_WHISK_AUTH);
            } else {
                ann.set(REQUIRE_WHISK_AUTH, Value::Bool(false));
            }
        }
        "true" => match current {
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => {
                ann.set(REQUIRE_WHISK_AUTH, Value::Number(n));
            }
            _ => ann.set(
                REQUIRE_WHISK_AUTH,
                json!(rand::random::<u64>() & MAX_JS_INT),
            ),
        },
        _ => ann.set(REQUIRE_WHISK_AUTH, Value::String(secret.to_string())),
    }
    Ok(())
}

async fn invoke(ctx: &Ctx, i: &ActionInvoke) -> Result<()> {
    let c = ctx.client()?;
    let qn = ctx.qname(&i.name)?;
    let payload = params::object(
        &i.params.param,
        i.params.param_file.as_deref(),
        What::Parameter,
    )?;
    let blocking = i.blocking || i.result;
    let req = c
        .ns_req(
            Method::POST,
            FAMILY,
            &qn.namespace,
            "actions",
            &qn.segments(),
        )
        .query([
            ("blocking", blocking.to_string()),
            ("result", i.result.to_string()),
        ])
        .body(Value::Object(payload));
    let context = || format!("Unable to invoke action '{}'", qn.entity_name());
    let waiting = format!("waiting for {}", qn.full());
    let reply = progress::wait(&waiting, ctx.progress && blocking, c.send(&req))
        .await
        .map_err(|e| e.context(context()))?;
    let header = |id: &Value| {
        format!(
            "invoked /{}/{} with id {}",
            ctx.out.bold(&qn.namespace),
            ctx.out.bold(&qn.entity_name()),
            ctx.out.bold(id.as_str().unwrap_or_default())
        )
    };
    let id = reply
        .body
        .get("activationId")
        .cloned()
        .unwrap_or(Value::Null);
    match reply.status {
        202 if blocking => {
            // A blocking invoke the server stopped waiting for.
            if ctx.out.json {
                ctx.out.json_doc(&reply.body);
            } else {
                eprintln!(
                    "ok: invoked /{}/{}, but the request has not yet finished, with id {}",
                    qn.namespace,
                    qn.entity_name(),
                    id.as_str().unwrap_or_default()
                );
            }
            Err(CliError::new(
                "Request accepted, but processing not completed yet.",
                exit::TIMED_OUT,
            )
            .silent())
        }
        200..=202 => {
            if ctx.out.json {
                ctx.out.json_doc(&reply.body);
            } else {
                if !i.result {
                    ctx.out.ok(header(&id));
                }
                if i.result {
                    ctx.out.json_doc(&reply.body);
                } else if blocking {
                    ctx.out.entity(&reply.body, Shape::Activation);
                }
            }
            Ok(())
        }
        500 | 502 if blocking && reply.body.is_object() && reply.body.get("code").is_none() => {
            // The action failed: its activation (or result) is the answer, shown on stderr.
            if ctx.out.json {
                ctx.out.json_doc(&reply.body);
            } else {
                if i.result {
                    json_to_stderr(&reply.body);
                } else {
                    eprintln!("ok: {}", header(&id));
                    json_to_stderr(&Ordered::new(&reply.body, Shape::Activation));
                }
            }
            Err(CliError::new("The action failed.", exit::http(reply.status)).silent())
        }
        status => Err(failure(&req, status, &reply.body).context(context())),
    }
}

async fn get(ctx: &Ctx, g: &ActionGet) -> Result<()> {
    let fetch_code = g.save || g.save_as.is_some();
    let field = if g.url || g.summary {
        None
    } else {
        g.field.as_deref()
    };
    check_field(field, FIELDS)?;
    let c = ctx.client()?;
    let qn = ctx.qname(&g.name)?;
    let action = fetch_value(&c, &qn, fetch_code)
        .await
        .map_err(|e| e.context(format!("Unable to get action '{}'", qn.entity_name())))?;
    let name = qn.entity_name();
    if g.url {
        let url = action_url(&c, &action, qn.package.as_deref());
        if ctx.out.json {
            ctx.out.json_doc(&json!({ "url": url }));
        } else {
            ctx.out.ok(format!("got action {}", ctx.out.bold(&name)));
            outln!("{url}");
        }
    } else if g.summary && !ctx.out.json {
        print_summary_entry(
            &ctx.out,
            "action",
            &super::full_name(&action),
            &key_values(&action, "annotations"),
            &key_values(&action, "parameters"),
        );
    } else if fetch_code {
        save_code(ctx, &action, g.save_as.as_deref())?;
    } else if ctx.out.json {
        ctx.out.json_doc(match field {
            Some(f) => super::field_value(&action, f),
            None => &action,
        });
    } else {
        print_got(&ctx.out, "action", &name, &action, field, Shape::Action);
    }
    Ok(())
}

/// The action's URL (`whisk.Action.ActionURL`): its web URL when it is a web action, else its
/// REST URL.
fn action_url(c: &Client, action: &Value, package: Option<&str>) -> String {
    let base = c.base().as_str().trim_end_matches('/');
    let version = "v1";
    let esc = |s: &str| {
        let mut u = reqwest::Url::parse("http://x/").ok();
        if let Some(u) = u.as_mut()
            && let Ok(mut p) = u.path_segments_mut()
        {
            p.clear().push(s);
        }
        u.map(|u| u.path().trim_start_matches('/').to_string())
            .unwrap_or_else(|| s.to_string())
    };
    let ns = action
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("_")
        .split('/')
        .next()
        .unwrap_or("_")
        .to_string();
    let name = action.get("name").and_then(Value::as_str).unwrap_or("");
    let web = key_values(action, "annotations").get(WEB_EXPORT) == Some(&Value::Bool(true));
    if web {
        format!(
            "{base}/{version}/web/{}/{}/{}",
            esc(&ns),
            esc(package.unwrap_or("default")),
            esc(name)
        )
    } else {
        match package {
            Some(p) => format!(
                "{base}/{version}/namespaces/{}/actions/{}/{}",
                esc(&ns),
                esc(p),
                esc(name)
            ),
            None => format!(
                "{base}/{version}/namespaces/{}/actions/{}",
                esc(&ns),
                esc(name)
            ),
        }
    }
}

/// The file extension `wsk` saves code of a runtime family under.
fn extension_for(runtime: &str, binary: bool) -> &'static str {
    match (runtime, binary) {
        ("java", true) => ".jar",
        ("ballerina", true) => ".balx",
        (_, true) => ".zip",
        ("nodejs", false) => ".js",
        ("python", false) => ".py",
        ("swift", false) => ".swift",
        ("php", false) => ".php",
        ("ruby", false) => ".rb",
        ("rust", false) => ".rs",
        ("go", false) => ".go",
        _ => "",
    }
}

/// `action get --save[-as]`: writes the action's code to a file (`saveCode`).
fn save_code(ctx: &Ctx, action: &Value, save_as: Option<&Path>) -> Result<()> {
    let exec: Exec = serde_json::from_value(action.get("exec").cloned().unwrap_or_default())
        .map_err(|e| CliError::general(format!("the action's exec is not readable: {e}")))?;
    let runtime = exec
        .kind()
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if runtime == "sequence" {
        return Err(CliError::usage("Cannot save action sequences"));
    }
    let Some(code) = exec.code() else {
        return Err(CliError::usage("Cannot save Docker images"));
    };
    let bytes = if exec.binary() {
        base64::engine::general_purpose::STANDARD
            .decode(code.trim())
            .map_err(|e| CliError::general(format!("the action's code is not valid base64: {e}")))?
    } else {
        code.as_bytes().to_vec()
    };
    let name = action
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("action");
    let path = match save_as {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(format!("{name}{}", extension_for(&runtime, exec.binary()))),
    };
    if path.exists() {
        return Err(CliError::usage(format!(
            "The file '{}' already exists",
            path.display()
        )));
    }
    std::fs::write(&path, bytes)
        .map_err(|e| CliError::usage(format!("Cannot create file '{}': {e}", path.display())))?;
    let shown = std::path::absolute(&path).unwrap_or(path);
    if ctx.out.json {
        ctx.out
            .json_doc(&json!({ "saved": shown.display().to_string() }));
    } else {
        ctx.out.ok(format!(
            "saved action code to {}",
            ctx.out.bold(&shown.display().to_string())
        ));
    }
    Ok(())
}

async fn delete(ctx: &Ctx, name: &str) -> Result<()> {
    let c = ctx.client()?;
    let qn = ctx.qname(name)?;
    let req = c.ns_req(
        Method::DELETE,
        FAMILY,
        &qn.namespace,
        "actions",
        &qn.segments(),
    );
    let reply = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to delete action '{}'", qn.entity_name())))?;
    if ctx.out.json {
        ctx.out.json_doc(&reply.body);
    } else {
        ctx.out.ok(format!(
            "deleted action {}",
            ctx.out.bold(&qn.entity_name())
        ));
    }
    Ok(())
}

async fn list(ctx: &Ctx, l: &ActionList) -> Result<()> {
    let c = ctx.client()?;
    let (namespace, package) = match &l.name {
        Some(n) => {
            let qn = ctx.qname(n)?;
            let pkg = qn.entity_name();
            (qn.namespace, (!pkg.is_empty()).then_some(pkg))
        }
        None => (ctx.ns().to_string(), None),
    };
    let rest: Vec<&str> = match &package {
        Some(p) => vec![p.as_str(), ""],
        None => vec![],
    };
    let req = c
        .ns_req(Method::GET, FAMILY, &namespace, "actions", &rest)
        .query([
            ("limit", l.page.limit.to_string()),
            ("skip", l.page.skip.to_string()),
        ]);
    let shown_ns = if namespace == "_" {
        "default"
    } else {
        namespace.as_str()
    };
    let reply = c.call(&req).await.map_err(|e| {
        e.context(format!(
            "Unable to obtain the list of actions for namespace '{shown_ns}'"
        ))
    })?;
    print_actions(ctx, reply.body, l.page.sort.name_sort);
    Ok(())
}

/// Prints a list of actions as `wsk action list` does.
pub(crate) fn print_actions(ctx: &Ctx, body: Value, name_sort: bool) {
    if ctx.out.json {
        ctx.out.json_doc(&body);
        return;
    }
    let mut items = match body {
        Value::Array(a) => a,
        _ => Vec::new(),
    };
    if name_sort {
        super::sort_by_name(&mut items);
    }
    let rows: Vec<String> = items
        .iter()
        .map(|a| {
            let (ns, name) = super::ns_name(a);
            let kind = key_values(a, "annotations")
                .get("exec")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            super::entity_row(&ns, &name, &format!("private {kind}"))
        })
        .collect();
    print_table(&ctx.out, "actions", &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_args(artifact: Option<&str>) -> ActionPut {
        ActionPut {
            name: "a".into(),
            artifact: artifact.map(String::from),
            docker: None,
            native: false,
            copy: false,
            sequence: false,
            kind: None,
            main: None,
            timeout: None,
            memory: None,
            logsize: None,
            concurrency: None,
            params: Default::default(),
            annotations: Default::default(),
            web: None,
            web_secure: None,
        }
    }

    #[test]
    fn kinds_from_extensions() {
        let dir = tempfile::tempdir().unwrap();
        let js = dir.path().join("demo.js");
        std::fs::write(&js, "function main() { return {} }").unwrap();
        let e = exec_of(&put_args(js.to_str())).unwrap();
        assert_eq!(e.kind(), "nodejs:default");
        assert!(!e.binary());
        let zip = dir.path().join("a.zip");
        std::fs::write(&zip, b"PK\x03\x04zipdata").unwrap();
        let err = exec_of(&put_args(zip.to_str())).unwrap_err();
        assert_eq!(
            err.message,
            "creating an action from a .zip artifact requires specifying the action kind explicitly"
        );
        let mut with_kind = put_args(zip.to_str());
        with_kind.kind = Some("nodejs:20".into());
        let e = exec_of(&with_kind).unwrap();
        assert!(e.binary());
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(e.code().unwrap())
                .unwrap(),
            b"PK\x03\x04zipdata"
        );
        let txt = dir.path().join("a.txt");
        std::fs::write(&txt, "x").unwrap();
        let err = exec_of(&put_args(txt.to_str())).unwrap_err();
        assert_eq!(err.message, "'.txt' is not a supported action runtime");
        assert_eq!(err.exit_code, exit::USAGE);
        let mut docker = put_args(None);
        docker.docker = Some("me/image".into());
        let e = serde_json::to_value(exec_of(&docker).unwrap()).unwrap();
        assert_eq!(e["kind"], "blackbox");
        assert_eq!(e["image"], "me/image");
    }

    #[test]
    fn web_annotations() {
        let mut ann = Parameters::new()
            .with("web-export", json!(false))
            .with("x", json!(1));
        apply_web(&mut ann, "raw").unwrap();
        assert_eq!(ann.get(WEB_EXPORT), Some(&json!(true)));
        assert_eq!(ann.get(RAW_HTTP), Some(&json!(true)));
        assert_eq!(ann.get(FINAL), Some(&json!(true)));
        assert_eq!(ann.get("x"), Some(&json!(1)));
        let e = apply_web(&mut ann, "maybe").unwrap_err();
        assert!(
            e.message
                .starts_with("Invalid argument 'maybe' for --web flag.")
        );

        let mut del = Vec::new();
        apply_web_secure(&mut ann, &mut del, "true", Some("raw"), None).unwrap();
        let secret = ann.get(REQUIRE_WHISK_AUTH).unwrap().as_u64().unwrap();
        assert!(secret <= MAX_JS_INT);
        // `true` again keeps the numeric secret.
        apply_web_secure(&mut ann, &mut del, "true", None, None).unwrap();
        assert_eq!(ann.get(REQUIRE_WHISK_AUTH), Some(&json!(secret)));
        apply_web_secure(&mut ann, &mut del, "false", None, None).unwrap();
        assert!(ann.get(REQUIRE_WHISK_AUTH).is_none());
        assert_eq!(del, [REQUIRE_WHISK_AUTH]);

        let mut plain = Parameters::new();
        let e = apply_web_secure(&mut plain, &mut del, "s3cr3t", None, None).unwrap_err();
        assert_eq!(
            e.message,
            "The --web-secure option is only valid when the --web option is enabled."
        );
        // An existing web action takes a secret without --web.
        let existing = Parameters::new().with(WEB_EXPORT, json!(true));
        apply_web_secure(&mut plain, &mut del, "s3cr3t", None, Some(&existing)).unwrap();
        assert_eq!(plain.get(REQUIRE_WHISK_AUTH), Some(&json!("s3cr3t")));
    }

    #[test]
    fn save_extensions() {
        assert_eq!(extension_for("nodejs", false), ".js");
        assert_eq!(extension_for("python", false), ".py");
        assert_eq!(extension_for("nodejs", true), ".zip");
        assert_eq!(extension_for("java", true), ".jar");
        assert_eq!(extension_for("blackbox", false), "");
    }
}
