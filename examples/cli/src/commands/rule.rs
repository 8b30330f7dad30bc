//! `faas rule create|update|enable|disable|status|get|delete|list` (`wsk`'s `commands/rule.go`).

use reqwest::Method;
use serde_json::{Value, json};

use super::{check_field, print_got, print_table};
use crate::Ctx;
use crate::cli::{EntityGet, NamespaceList, RuleCmd, RulePut};
use crate::client::Client;
use crate::error::Result;
use crate::names::{QualifiedName, namespace_arg, qualify};
use crate::output::Shape;

const FAMILY: &str = "rules";

/// The fields of a rule `get` can filter on (`whisk.Rule`).
const FIELDS: &[&str] = &[
    "namespace",
    "name",
    "version",
    "annotations",
    "status",
    "trigger",
    "action",
    "publish",
    "updated",
];

/// Runs a `rule` command.
pub(crate) async fn run(ctx: &Ctx, cmd: RuleCmd) -> Result<()> {
    match cmd {
        RuleCmd::Create(r) => put(ctx, &r, false).await,
        RuleCmd::Update(r) => put(ctx, &r, true).await,
        RuleCmd::Enable { name } => set_state(ctx, &name, true).await,
        RuleCmd::Disable { name } => set_state(ctx, &name, false).await,
        RuleCmd::Status { name } => status(ctx, &name).await,
        RuleCmd::Get(g) => get(ctx, &g).await,
        RuleCmd::Delete { name, disable } => delete(ctx, &name, disable).await,
        RuleCmd::List(l) => list(ctx, &l).await,
    }
}

/// The body of `PUT /rules/NAME`: the trigger and the action, fully qualified.
pub(crate) fn rule_body(name: &str, trigger: &str, action: &str) -> Value {
    json!({ "name": name, "trigger": trigger, "action": action })
}

async fn put(ctx: &Ctx, r: &RulePut, update: bool) -> Result<()> {
    let qn = ctx.qname(&r.name)?;
    let name = qn.entity_name();
    let trigger = qualify(&r.trigger, ctx.ns())?;
    let action = qualify(&r.action, ctx.ns())?;
    let c = ctx.client()?;
    let req = c
        .ns_req(Method::PUT, FAMILY, &qn.namespace, "rules", &qn.segments())
        .query([("overwrite", update.to_string())])
        .body(rule_body(&name, &trigger, &action));
    let verb = if update { "update" } else { "create" };
    let reply = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to {verb} rule '{name}'")))?;
    if ctx.out.json {
        ctx.out.json_doc(&reply.body);
    } else {
        ctx.out.ok(format!("{verb}d rule {}", ctx.out.bold(&name)));
    }
    Ok(())
}

/// `POST /rules/NAME {"status": "active"|"inactive"}`.
async fn post_state(c: &Client, qn: &QualifiedName, active: bool) -> Result<Value> {
    let status = if active { "active" } else { "inactive" };
    let req = c
        .ns_req(Method::POST, FAMILY, &qn.namespace, "rules", &qn.segments())
        .body(json!({ "status": status }));
    Ok(c.call(&req).await?.body)
}

async fn set_state(ctx: &Ctx, name: &str, active: bool) -> Result<()> {
    let qn = ctx.qname(name)?;
    let c = ctx.client()?;
    let (verb, done) = if active {
        ("enable", "enabled")
    } else {
        ("disable", "disabled")
    };
    let body = post_state(&c, &qn, active)
        .await
        .map_err(|e| e.context(format!("Unable to {verb} rule '{}'", qn.entity_name())))?;
    if ctx.out.json {
        ctx.out.json_doc(&body);
    } else {
        ctx.out
            .ok(format!("{done} rule {}", ctx.out.bold(&qn.entity_name())));
    }
    Ok(())
}

async fn fetch(c: &Client, qn: &QualifiedName) -> Result<Value> {
    let req = c.ns_req(Method::GET, FAMILY, &qn.namespace, "rules", &qn.segments());
    Ok(c.call(&req).await?.body)
}

async fn status(ctx: &Ctx, name: &str) -> Result<()> {
    let qn = ctx.qname(name)?;
    let c = ctx.client()?;
    let rule = fetch(&c, &qn).await.map_err(|e| {
        e.context(format!(
            "Unable to get status of rule '{}'",
            qn.entity_name()
        ))
    })?;
    if ctx.out.json {
        ctx.out.json_doc(&json!({ "status": rule.get("status") }));
    } else {
        let status = rule.get("status").and_then(Value::as_str).unwrap_or("");
        ctx.out.ok(format!(
            "rule {} is {}",
            ctx.out.bold(&qn.entity_name()),
            ctx.out.bold(status)
        ));
    }
    Ok(())
}

async fn get(ctx: &Ctx, g: &EntityGet) -> Result<()> {
    check_field(g.field.as_deref(), FIELDS)?;
    let qn = ctx.qname(&g.name)?;
    let name = qn.entity_name();
    let c = ctx.client()?;
    let rule = fetch(&c, &qn)
        .await
        .map_err(|e| e.context(format!("Unable to get rule '{name}'")))?;
    if ctx.out.json {
        ctx.out.json_doc(match g.field.as_deref() {
            Some(f) => super::field_value(&rule, f),
            None => &rule,
        });
    } else if g.summary {
        ctx.out.line(format!(
            "{} {}",
            ctx.out.bold("rule"),
            super::full_name(&rule)
        ));
        let status = rule.get("status").and_then(Value::as_str).unwrap_or("");
        ctx.out
            .line(format!("   ({}: {status})", ctx.out.bold("status")));
    } else {
        print_got(
            &ctx.out,
            "rule",
            &name,
            &rule,
            g.field.as_deref(),
            Shape::Rule,
        );
    }
    Ok(())
}

async fn delete(ctx: &Ctx, name: &str, disable: bool) -> Result<()> {
    let qn = ctx.qname(name)?;
    let entity = qn.entity_name();
    let c = ctx.client()?;
    if disable {
        post_state(&c, &qn, false)
            .await
            .map_err(|e| e.context(format!("Unable to disable rule '{entity}'")))?;
    }
    let req = c.ns_req(
        Method::DELETE,
        FAMILY,
        &qn.namespace,
        "rules",
        &qn.segments(),
    );
    let reply = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to delete rule '{entity}'")))?;
    if ctx.out.json {
        ctx.out.json_doc(&reply.body);
    } else {
        ctx.out
            .ok(format!("deleted rule {}", ctx.out.bold(&entity)));
    }
    Ok(())
}

/// Fills in the `status` of a listed rule from its own GET (lists do not carry it).
pub(crate) async fn fill_status(c: &Client, namespace: &str, rule: &mut Value) -> Result<()> {
    let name = rule
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let req = c.ns_req(Method::GET, FAMILY, namespace, "rules", &[&name]);
    let got = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to get status of rule '{name}'")))?;
    if let (Some(o), Some(s)) = (rule.as_object_mut(), got.body.get("status")) {
        o.insert("status".into(), s.clone());
    }
    Ok(())
}

async fn list(ctx: &Ctx, l: &NamespaceList) -> Result<()> {
    let ns = namespace_arg(l.namespace.as_deref(), ctx.ns())?;
    let c = ctx.client()?;
    let req = c.ns_req(Method::GET, FAMILY, &ns, "rules", &[]).query([
        ("limit", l.page.limit.to_string()),
        ("skip", l.page.skip.to_string()),
    ]);
    let shown = if ns == "_" { "default" } else { ns.as_str() };
    let mut body = c
        .call(&req)
        .await
        .map_err(|e| {
            e.context(format!(
                "Unable to obtain the list of rules for namespace '{shown}'"
            ))
        })?
        .body;
    if let Value::Array(rules) = &mut body {
        for r in rules.iter_mut() {
            fill_status(&c, &ns, r).await?;
        }
    }
    print_rules(ctx, body, l.page.sort.name_sort);
    Ok(())
}

/// Prints a list of rules as `wsk rule list` does.
pub(crate) fn print_rules(ctx: &Ctx, body: Value, name_sort: bool) {
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
        .map(|r| {
            let (ns, name) = super::ns_name(r);
            let status = r.get("status").and_then(Value::as_str).unwrap_or("");
            super::entity_row(&ns, &name, &format!("{:<20} {status}", "private"))
        })
        .collect();
    print_table(&ctx.out, "rules", &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_qualifies_names() {
        let t = qualify("t", "_").unwrap();
        let a = qualify("pkg/a", "_").unwrap();
        assert_eq!(
            rule_body("r", &t, &a),
            json!({"name": "r", "trigger": "/_/t", "action": "/_/pkg/a"})
        );
    }
}
