//! `faas namespace list|get` and `faas list` (`wsk`'s `commands/namespace.go`).

use reqwest::Method;
use serde_json::{Map, Value};

use super::{action, package, print_table, rule, trigger};
use crate::Ctx;
use crate::cli::NamespaceCmd;
use crate::error::{CliError, Result, exit};

/// Runs a `namespace` command.
pub(crate) async fn run(ctx: &Ctx, cmd: NamespaceCmd) -> Result<()> {
    match cmd {
        NamespaceCmd::List => list(ctx).await,
        NamespaceCmd::Get { namespace, sort } => {
            get(ctx, namespace.as_deref(), sort.name_sort).await
        }
    }
}

/// The namespaces the caller's key may use (`GET /namespaces`).
pub(crate) async fn fetch_namespaces(ctx: &Ctx) -> Result<Vec<String>> {
    let c = ctx.client()?;
    let req = c.req(Method::GET, "namespaces", &["namespaces"]);
    let body = c.call(&req).await?.body;
    Ok(body
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().or_else(|| n.get("name").and_then(Value::as_str)))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default())
}

async fn list(ctx: &Ctx) -> Result<()> {
    let names = fetch_namespaces(ctx).await.map_err(|e| {
        let code = if e.status.is_some() {
            e.exit_code
        } else {
            exit::NETWORK
        };
        CliError {
            exit_code: code,
            ..e
        }
        .context("Unable to obtain the list of available namespaces")
    })?;
    if ctx.out.json {
        ctx.out.json_doc(&names);
    } else {
        print_table(&ctx.out, "namespaces", &names);
    }
    Ok(())
}

/// `namespace get` and `list`: the packages, actions, triggers and rules of the caller's
/// namespace. A collection the platform does not serve yet is left out, with a note on stderr
/// (`wsk` would fail the whole command).
pub(crate) async fn get(ctx: &Ctx, namespace: Option<&str>, name_sort: bool) -> Result<()> {
    if let Some(ns) = namespace
        && ns != "/_"
    {
        return Err(CliError::general(format!(
            "Invalid argument(s): {ns}. No arguments are required."
        )));
    }
    let c = ctx.client()?;
    let shown = if ctx.ns() == "_" { "default" } else { ctx.ns() };
    let fail = |e: CliError| -> CliError {
        let code = if e.status.is_some() {
            e.exit_code
        } else {
            exit::NETWORK
        };
        CliError {
            exit_code: code,
            ..e
        }
        .context(format!(
            "Unable to obtain the list of entities for namespace '{shown}'"
        ))
    };
    let query = [("limit", "0"), ("skip", "0")];
    let mut skipped = Vec::new();
    let mut collections: Vec<(&str, Option<Value>)> = Vec::new();
    for collection in ["packages", "actions", "triggers", "rules"] {
        let req = c
            .ns_req(Method::GET, collection, ctx.ns(), collection, &[])
            .query(query);
        match c.call(&req).await {
            Ok(r) => collections.push((collection, Some(r.body))),
            Err(e) if e.is_not_served() => {
                skipped.push(collection);
                collections.push((collection, None));
            }
            Err(e) => return Err(fail(e)),
        }
    }
    // Rules carry their status only in their own GET.
    for (collection, body) in &mut collections {
        if *collection == "rules"
            && let Some(Value::Array(rules)) = body
        {
            for r in rules.iter_mut() {
                rule::fill_status(&c, ctx.ns(), r).await?;
            }
        }
    }
    if ctx.out.json {
        let mut all = Map::new();
        for (collection, body) in collections {
            if let Some(b) = body {
                all.insert(collection.to_string(), b);
            }
        }
        ctx.out.json_doc(&Value::Object(all));
    } else {
        ctx.out
            .line(format!("Entities in namespace: {}", ctx.out.bold(shown)));
        for (collection, body) in collections {
            let Some(body) = body else { continue };
            match collection {
                "packages" => package::print_packages(ctx, body, name_sort),
                "actions" => action::print_actions(ctx, body, name_sort),
                "triggers" => trigger::print_triggers(ctx, body, name_sort),
                _ => rule::print_rules(ctx, body, name_sort),
            }
        }
    }
    for s in skipped {
        eprintln!("note: the platform does not serve {s} yet; they are not listed");
    }
    Ok(())
}
