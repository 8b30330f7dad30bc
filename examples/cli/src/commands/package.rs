//! `faas package create|update|bind|get|delete|list` (`wsk`'s `commands/package.go`).
//!
//! `wsk package refresh` is left out: it calls an IBM Cloud route that OpenWhisk never served.

use faas_core::Parameters;
use faas_core::entity::Binding;
use faas_core::names::EntityName;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{check_field, key_values, print_got, print_summary_entry, print_table};
use crate::Ctx;
use crate::cli::{EntityGet, NamespaceList, PackageBind, PackageCmd, PackagePut};
use crate::error::{CliError, Result};
use crate::names::namespace_arg;
use crate::output::Shape;
use crate::params::{self, What};

const FAMILY: &str = "packages";

/// The fields of a package `get` can filter on (`whisk.Package`).
const FIELDS: &[&str] = &[
    "namespace",
    "name",
    "version",
    "publish",
    "annotations",
    "parameters",
    "binding",
    "actions",
    "feeds",
    "updated",
];

/// Runs a `package` command.
pub(crate) async fn run(ctx: &Ctx, cmd: PackageCmd) -> Result<()> {
    match cmd {
        PackageCmd::Create(p) => put(ctx, &p, false).await,
        PackageCmd::Update(p) => put(ctx, &p, true).await,
        PackageCmd::Bind(b) => bind(ctx, &b).await,
        PackageCmd::Get(g) => get(ctx, &g).await,
        PackageCmd::Delete { name } => delete(ctx, &name).await,
        PackageCmd::List(l) => list(ctx, &l).await,
    }
}

/// `--shared yes|no` (`parseShared`).
fn shared(value: Option<&str>) -> Result<Option<bool>> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(None),
        Some("yes") => Ok(Some(true)),
        Some("no") => Ok(Some(false)),
        Some(_) => Err(CliError::general(format!(
            "Cannot use value '{}' for shared.",
            value.unwrap_or_default()
        ))),
    }
}

/// The body of `PUT /packages/NAME` for `create`/`update`.
pub(crate) fn package_body(
    parameters: &Parameters,
    annotations: &Parameters,
    publish: Option<bool>,
) -> Value {
    let mut body = Map::new();
    // Empty lists are left out (`omitempty` in wsk): on update they would replace the old ones.
    if !parameters.is_empty() {
        body.insert("parameters".into(), json!(parameters));
    }
    if !annotations.is_empty() {
        body.insert("annotations".into(), json!(annotations));
    }
    if let Some(p) = publish {
        body.insert("publish".into(), json!(p));
    }
    Value::Object(body)
}

/// The body of `PUT /packages/BINDING` for `bind`: the bound package and the binding's own
/// parameters and annotations.
pub(crate) fn binding_body(
    target: &Binding,
    parameters: &Parameters,
    annotations: &Parameters,
) -> Value {
    let mut body = package_body(parameters, annotations, None);
    if let Some(o) = body.as_object_mut() {
        o.insert("binding".into(), json!(target));
    }
    body
}

async fn put(ctx: &Ctx, p: &PackagePut, update: bool) -> Result<()> {
    let qn = ctx.qname(&p.name)?;
    let publish = shared(p.shared.as_deref())?;
    let parameters = params::list(
        &p.params.param,
        p.params.param_file.as_deref(),
        What::Parameter,
    )?;
    let annotations = params::list(
        &p.annotations.annotation,
        p.annotations.annotation_file.as_deref(),
        What::Annotation,
    )?;
    let c = ctx.client()?;
    let req = c
        .ns_req(
            Method::PUT,
            FAMILY,
            &qn.namespace,
            "packages",
            &qn.segments(),
        )
        .query([("overwrite", update.to_string())])
        .body(package_body(&parameters, &annotations, publish));
    let name = qn.entity_name();
    let reply = c.call(&req).await.map_err(|e| {
        if update {
            e.context("Package update failed")
        } else {
            e.context(format!("Unable to create package '{name}'"))
        }
    })?;
    if ctx.out.json {
        ctx.out.json_doc(&reply.body);
    } else {
        let verb = if update { "updated" } else { "created" };
        ctx.out
            .ok(format!("{verb} package {}", ctx.out.bold(&name)));
    }
    Ok(())
}

async fn bind(ctx: &Ctx, b: &PackageBind) -> Result<()> {
    let pkg = ctx.qname(&b.package)?;
    let binding = ctx.qname(&b.binding)?;
    let parameters = params::list(
        &b.params.param,
        b.params.param_file.as_deref(),
        What::Parameter,
    )?;
    let annotations = params::list(
        &b.annotations.annotation,
        b.annotations.annotation_file.as_deref(),
        What::Annotation,
    )?;
    let target = Binding {
        namespace: EntityName::new(pkg.namespace.clone())
            .map_err(|e| CliError::general(e.to_string()))?,
        name: EntityName::new(pkg.entity_name()).map_err(|e| CliError::general(e.to_string()))?,
    };
    let c = ctx.client()?;
    let req = c
        .ns_req(
            Method::PUT,
            FAMILY,
            &binding.namespace,
            "packages",
            &binding.segments(),
        )
        .query([("overwrite", "false")])
        .body(binding_body(&target, &parameters, &annotations));
    let reply = c
        .call(&req)
        .await
        .map_err(|e| e.context("Binding creation failed"))?;
    if ctx.out.json {
        ctx.out.json_doc(&reply.body);
    } else {
        ctx.out
            .ok(format!("created binding {}", ctx.out.bold(&b.binding)));
    }
    Ok(())
}

async fn get(ctx: &Ctx, g: &EntityGet) -> Result<()> {
    check_field(g.field.as_deref(), FIELDS)?;
    let qn = ctx.qname(&g.name)?;
    let c = ctx.client()?;
    let req = c.ns_req(
        Method::GET,
        FAMILY,
        &qn.namespace,
        "packages",
        &qn.segments(),
    );
    let name = qn.entity_name();
    let pkg = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to get package '{name}'")))?
        .body;
    if ctx.out.json {
        ctx.out.json_doc(match g.field.as_deref() {
            Some(f) => super::field_value(&pkg, f),
            None => &pkg,
        });
    } else if g.summary {
        print_package_summary(ctx, &pkg);
    } else {
        print_got(
            &ctx.out,
            "package",
            &name,
            &pkg,
            g.field.as_deref(),
            Shape::Package,
        );
    }
    Ok(())
}

/// `package get --summary` (`printPackageSummary`): the package, its actions and its feeds.
fn print_package_summary(ctx: &Ctx, pkg: &Value) {
    let full = super::full_name(pkg);
    print_summary_entry(
        &ctx.out,
        "package",
        &full,
        &key_values(pkg, "annotations"),
        &key_values(pkg, "parameters"),
    );
    for (list, label) in [("actions", " action"), ("feeds", " feed  ")] {
        for a in pkg
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = a.get("name").and_then(Value::as_str).unwrap_or("");
            print_summary_entry(
                &ctx.out,
                label,
                &format!("{full}/{name}"),
                &key_values(a, "annotations"),
                &key_values(a, "parameters"),
            );
        }
    }
}

async fn delete(ctx: &Ctx, name: &str) -> Result<()> {
    let qn = ctx.qname(name)?;
    let c = ctx.client()?;
    let req = c.ns_req(
        Method::DELETE,
        FAMILY,
        &qn.namespace,
        "packages",
        &qn.segments(),
    );
    let reply = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to delete package '{}'", qn.entity_name())))?;
    if ctx.out.json {
        ctx.out.json_doc(&reply.body);
    } else {
        ctx.out.ok(format!(
            "deleted package {}",
            ctx.out.bold(&qn.entity_name())
        ));
    }
    Ok(())
}

async fn list(ctx: &Ctx, l: &NamespaceList) -> Result<()> {
    let ns = namespace_arg(l.namespace.as_deref(), ctx.ns())?;
    let c = ctx.client()?;
    let req = c.ns_req(Method::GET, FAMILY, &ns, "packages", &[]).query([
        ("limit", l.page.limit.to_string()),
        ("skip", l.page.skip.to_string()),
    ]);
    let shown = if ns == "_" { "default" } else { ns.as_str() };
    let body = c
        .call(&req)
        .await
        .map_err(|e| {
            e.context(format!(
                "Unable to obtain the list of packages for namespace '{shown}'"
            ))
        })?
        .body;
    print_packages(ctx, body, l.page.sort.name_sort);
    Ok(())
}

/// Prints a list of packages as `wsk package list` does.
pub(crate) fn print_packages(ctx: &Ctx, body: Value, name_sort: bool) {
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
        .map(|p| {
            let (ns, name) = super::ns_name(p);
            let scope = if p.get("publish") == Some(&Value::Bool(true)) {
                "shared"
            } else {
                "private"
            };
            super::entity_row(&ns, &name, scope)
        })
        .collect();
    print_table(&ctx.out, "packages", &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        let p = Parameters::new().with("a", json!(1));
        assert_eq!(
            package_body(&p, &Parameters::new(), Some(true)),
            json!({"parameters": [{"key": "a", "value": 1}], "publish": true})
        );
        let b = Binding {
            namespace: EntityName::new("whisk.system").unwrap(),
            name: EntityName::new("utils").unwrap(),
        };
        assert_eq!(
            binding_body(&b, &p, &Parameters::new())["binding"],
            json!({"namespace": "whisk.system", "name": "utils"})
        );
    }

    #[test]
    fn shared_values() {
        assert_eq!(shared(Some("YES")).unwrap(), Some(true));
        assert_eq!(shared(Some("no")).unwrap(), Some(false));
        assert_eq!(shared(None).unwrap(), None);
        assert_eq!(
            shared(Some("maybe")).unwrap_err().message,
            "Cannot use value 'maybe' for shared."
        );
    }
}
