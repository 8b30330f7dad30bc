//! `faas property set|unset|get` (`wsk`'s `commands/property.go`): the properties file.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::namespace::fetch_namespaces;
use crate::Ctx;
use crate::cli::{GlobalArgs, PropertyCmd, PropertyGet, PropertyNames};
use crate::config::{self, Props, base_url};
use crate::error::{CliError, Result};
use crate::output::outln;

/// `wsk`'s labels of the properties.
const LABEL_CERT: &str = "client cert";
const LABEL_KEY: &str = "Client key";
const LABEL_AUTH: &str = "whisk auth";
const LABEL_APIHOST: &str = "whisk API host";
const LABEL_APIVERSION: &str = "whisk API version";
const LABEL_NAMESPACE: &str = "whisk namespace";
const LABEL_CLIVERSION: &str = "whisk CLI version";
const LABEL_APIBUILD: &str = "whisk API build";
const LABEL_APIBUILDNO: &str = "whisk API build number";

/// Runs a `property` command.
pub(crate) async fn run(ctx: &Ctx, global: &GlobalArgs, cmd: PropertyCmd) -> Result<()> {
    match cmd {
        PropertyCmd::Set { namespace } => set(ctx, global, namespace.as_deref()),
        PropertyCmd::Unset(names) => unset(ctx, &names),
        PropertyCmd::Get(g) => get(ctx, &g).await,
    }
}

/// The file to write, and its current contents.
fn writable(ctx: &Ctx, what: &str) -> Result<(std::path::PathBuf, Props)> {
    let path = ctx.settings.props_path.clone().ok_or_else(|| {
        CliError::general(format!(
            "Unable to {what} the property value: no properties file (WSK_CONFIG_FILE is empty, or there is no home directory)"
        ))
    })?;
    Ok((path, ctx.settings.props.clone()))
}

fn set(ctx: &Ctx, global: &GlobalArgs, namespace: Option<&str>) -> Result<()> {
    let (path, mut props) = writable(ctx, "set")?;
    let mut said = Vec::new();
    let mut failed = None;
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    if let Some(cert) = nonempty(&global.cert) {
        props.set(config::CERT, &cert);
        said.push(
            "client cert set. Run 'faas property get --cert' to see the new value.".to_string(),
        );
    }
    if let Some(key) = nonempty(&global.key) {
        props.set(config::KEY, &key);
        said.push(
            "client key set. Run 'faas property get --key' to see the new value.".to_string(),
        );
    }
    if let Some(auth) = nonempty(&global.auth) {
        props.set(config::AUTH, &auth);
        said.push(
            "whisk auth set. Run 'faas property get --auth' to see the new value.".to_string(),
        );
    }
    if let Some(host) = nonempty(&global.apihost) {
        match base_url(&host) {
            Ok(_) => {
                props.set(config::APIHOST, &host);
                said.push(format!("whisk API host set to {}", ctx.out.bold(&host)));
            }
            Err(e) => {
                failed = Some(CliError::general(format!(
                    "Unable to set API host value; the API host value '{host}' is invalid: {e}"
                )));
            }
        }
    }
    if let Some(v) = nonempty(&global.apiversion) {
        props.set(config::APIVERSION, &v);
        said.push(format!("whisk API version set to {}", ctx.out.bold(&v)));
    }
    if let Some(ns) = namespace.filter(|s| !s.is_empty()) {
        props.set(config::NAMESPACE, ns);
        said.push(format!("whisk namespace set to {}", ctx.out.bold(ns)));
    }
    props
        .save(&path)
        .map_err(|e| e.context("Unable to set the property value(s)"))?;
    for s in said {
        ctx.out.ok(s);
    }
    if ctx.out.json {
        ctx.out
            .json_doc(&json!({ "file": path.display().to_string() }));
    }
    failed.map_or(Ok(()), Err)
}

fn unset(ctx: &Ctx, n: &PropertyNames) -> Result<()> {
    let (path, mut props) = writable(ctx, "unset")?;
    let mut said = Vec::new();
    if n.cert.is_some() {
        props.unset(config::CERT);
        said.push("client cert unset.".to_string());
    }
    if n.key.is_some() {
        props.unset(config::KEY);
        said.push("client key unset.".to_string());
    }
    if n.auth.is_some() {
        props.unset(config::AUTH);
        said.push("whisk auth unset.".to_string());
    }
    if n.apihost.is_some() {
        props.unset(config::APIHOST);
        said.push("whisk API host unset.".to_string());
    }
    if n.apiversion.is_some() {
        props.unset(config::APIVERSION);
        said.push(format!(
            "whisk API version unset; the default value of {} will be used.",
            ctx.out.bold(config::DEFAULT_APIVERSION)
        ));
    }
    if n.namespace {
        props.unset(config::NAMESPACE);
        said.push(format!(
            "whisk namespace unset; the default value of {} will be used.",
            ctx.out.bold(config::DEFAULT_NAMESPACE)
        ));
    }
    props
        .save(&path)
        .map_err(|e| e.context("Unable to unset the property value"))?;
    for s in said {
        ctx.out.ok(s);
    }
    if ctx.out.json {
        ctx.out
            .json_doc(&json!({ "file": path.display().to_string() }));
    }
    Ok(())
}

/// The namespace to show: `NAMESPACE` when configured, else the first the platform names
/// (`_` when it cannot be asked).
async fn shown_namespace(ctx: &Ctx) -> String {
    if ctx.settings.namespace_configured {
        return ctx.settings.namespace.clone();
    }
    match fetch_namespaces(ctx).await {
        Ok(names) => names.into_iter().next().unwrap_or_else(|| "_".into()),
        Err(_) => "_".into(),
    }
}

/// `build` and `buildno` from `GET /api/<version>` (no credentials needed).
async fn build_info(ctx: &Ctx) -> Result<(String, String)> {
    let c = ctx.client()?;
    let req = c.req(Method::GET, "API information", &[]).no_auth();
    let body = c.call(&req).await?.body;
    let s = |k: &str| {
        body.get(k)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default()
    };
    Ok((s("build"), s("buildno")))
}

async fn get(ctx: &Ctx, g: &PropertyGet) -> Result<()> {
    let raw = match g.output.as_str() {
        "std" => false,
        "raw" => true,
        _ => return Err(CliError::general("Supported output format are std|raw")),
    };
    let n = &g.names;
    let any = n.cert.is_some()
        || n.key.is_some()
        || n.auth.is_some()
        || n.apihost.is_some()
        || n.apiversion.is_some()
        || n.namespace
        || g.cliversion
        || g.apibuild
        || g.apibuildno;
    let all = g.all || !any;
    if all && raw {
        return Err(CliError::general(
            "--output|-o raw only supported with specific property type",
        ));
    }
    let s = &ctx.settings;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut shown: Vec<(&str, &str, String, bool)> = Vec::new(); // (json key, label, value, one tab)
    if all || n.apihost.is_some() {
        shown.push(("apihost", LABEL_APIHOST, text(&s.apihost), false));
    }
    if all || n.auth.is_some() {
        shown.push(("auth", LABEL_AUTH, text(&s.auth), false));
    }
    if all || n.namespace {
        shown.push((
            "namespace",
            LABEL_NAMESPACE,
            shown_namespace(ctx).await,
            false,
        ));
    }
    if all || n.cert.is_some() {
        shown.push(("cert", LABEL_CERT, text(&s.cert), false));
    }
    if all || n.key.is_some() {
        shown.push(("key", LABEL_KEY, text(&s.key), false));
    }
    if all || n.apiversion.is_some() {
        shown.push(("apiversion", LABEL_APIVERSION, s.apiversion.clone(), true));
    }
    if all || g.cliversion {
        shown.push((
            "cliversion",
            LABEL_CLIVERSION,
            env!("CARGO_PKG_VERSION").to_string(),
            true,
        ));
    }
    let mut build_err = None;
    if all || g.apibuild || g.apibuildno {
        let (build, buildno) = match build_info(ctx).await {
            Ok(b) => b,
            Err(e) => {
                build_err = Some(e.context("Unable to obtain API build information"));
                ("Unknown".to_string(), "Unknown".to_string())
            }
        };
        if all || g.apibuild {
            shown.push(("apibuild", LABEL_APIBUILD, build, false));
        }
        if all || g.apibuildno {
            shown.push(("apibuildno", LABEL_APIBUILDNO, buildno, true));
        }
    }
    if ctx.out.json {
        let m: Map<String, Value> = shown
            .into_iter()
            .map(|(k, _, v, _)| (k.to_string(), Value::String(v)))
            .collect();
        ctx.out.json_doc(&Value::Object(m));
    } else {
        for (_, label, value, one_tab) in shown {
            if raw {
                outln!("{}", ctx.out.bold(&value));
            } else {
                let tabs = if one_tab { "\t" } else { "\t\t" };
                outln!("{label}{tabs}{}", ctx.out.bold(&value));
            }
        }
    }
    build_err.map_or(Ok(()), Err)
}
