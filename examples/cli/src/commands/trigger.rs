//! `faas trigger create|update|get|delete|list|fire` (`wsk`'s `commands/trigger.go`), with the
//! feed lifecycle: a trigger created with `--feed ACTION` is configured by invoking that action
//! (blocking) with `lifecycleEvent` `CREATE` (then `READ`, `UPDATE`, `DELETE` for `get`,
//! `update` and `delete`), `triggerName` `/ns/name` and `authKey`; when the feed fails to
//! configure, the trigger is deleted again.

use faas_core::Parameters;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{check_field, key_values, print_got, print_summary_entry, print_table};
use crate::Ctx;
use crate::cli::{EntityGet, NamespaceList, TriggerCmd, TriggerFire, TriggerPut};
use crate::client::{Client, failure};
use crate::error::{CliError, Result, exit};
use crate::names::{QualifiedName, namespace_arg};
use crate::output::Shape;
use crate::output::json_to_stderr;
use crate::params::{self, What, value_of};

const FAMILY: &str = "triggers";

/// The fields of a trigger `get` can filter on (`whisk.Trigger`).
const FIELDS: &[&str] = &[
    "namespace",
    "name",
    "version",
    "activationId",
    "annotations",
    "parameters",
    "limits",
    "publish",
    "rules",
    "updated",
];

/// A feed's lifecycle events.
#[derive(Debug, Clone, Copy)]
enum Lifecycle {
    Create,
    Read,
    Update,
    Delete,
}

impl Lifecycle {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Read => "READ",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }
}

/// Runs a `trigger` command.
pub(crate) async fn run(ctx: &Ctx, cmd: TriggerCmd) -> Result<()> {
    match cmd {
        TriggerCmd::Create(t) => create(ctx, &t).await,
        TriggerCmd::Update(t) => update(ctx, &t).await,
        TriggerCmd::Get(g) => get(ctx, &g).await,
        TriggerCmd::Delete { name } => delete(ctx, &name).await,
        TriggerCmd::List(l) => list(ctx, &l).await,
        TriggerCmd::Fire(f) => fire(ctx, &f).await,
    }
}

/// The parameters a feed action receives: the user's, then `lifecycleEvent`, `triggerName`
/// and `authKey` (`feedParameters`).
pub(crate) fn feed_params(
    user: Map<String, Value>,
    event: &str,
    trigger: &QualifiedName,
    auth: &str,
) -> Map<String, Value> {
    let mut p = user;
    p.insert("lifecycleEvent".into(), json!(event));
    p.insert(
        "triggerName".into(),
        json!(format!("/{}/{}", trigger.namespace, trigger.entity_name())),
    );
    p.insert("authKey".into(), json!(auth));
    p
}

/// The body of `PUT /triggers/NAME` (empty lists left out, as `wsk` sends them).
pub(crate) fn trigger_body(parameters: &Parameters, annotations: &Parameters) -> Value {
    let mut body = Map::new();
    if !parameters.is_empty() {
        body.insert("parameters".into(), json!(parameters));
    }
    if !annotations.is_empty() {
        body.insert("annotations".into(), json!(annotations));
    }
    Value::Object(body)
}

fn pairs_object(pairs: &[String]) -> Map<String, Value> {
    pairs
        .chunks(2)
        .filter(|kv| kv.len() == 2)
        .map(|kv| (kv[0].clone(), value_of(&kv[1])))
        .collect()
}

/// Whether the flags use the old form (`--param`, or none of `--feed-param`/`--trigger-param`).
fn old_form(t: &TriggerPut) -> bool {
    let params = !t.params.param.is_empty() || t.params.param_file.is_some();
    params || (t.feed_param.is_empty() && t.trigger_param.is_empty())
}

fn mixed_forms(t: &TriggerPut) -> Result<()> {
    if !t.feed_param.is_empty() || !t.trigger_param.is_empty() {
        return Err(CliError::new(
            "Incorrect usage. Cannot combine --feed-param or --trigger-param flag with neither --param nor --param-file flag",
            exit::NOT_ALLOWED,
        ));
    }
    Ok(())
}

async fn put_trigger(
    c: &Client,
    qn: &QualifiedName,
    body: Value,
    overwrite: bool,
) -> Result<Value> {
    let req = c
        .ns_req(
            Method::PUT,
            FAMILY,
            &qn.namespace,
            "triggers",
            &qn.segments(),
        )
        .query([("overwrite", overwrite.to_string())])
        .body(body);
    Ok(c.call(&req).await?.body)
}

/// Invokes `feed` (blocking) with `params`; the activation on success. On failure the
/// activation, if any, is shown on stderr.
async fn invoke_feed(
    ctx: &Ctx,
    c: &Client,
    feed: &QualifiedName,
    params: Map<String, Value>,
) -> Result<Value> {
    let req = c
        .ns_req(
            Method::POST,
            "actions",
            &feed.namespace,
            "actions",
            &feed.segments(),
        )
        .query([("blocking", "true"), ("result", "false")])
        .body(Value::Object(params));
    let reply = c.send(&req).await?;
    match reply.status {
        200 => Ok(reply.body),
        202 => Err(CliError::new(
            "Request accepted, but processing not completed yet.",
            exit::TIMED_OUT,
        )),
        500 | 502 if reply.body.is_object() && reply.body.get("code").is_none() => {
            if !ctx.out.json {
                json_to_stderr(&crate::output::Ordered::new(&reply.body, Shape::Activation));
            }
            let why = reply
                .body
                .pointer("/response/result/error")
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                .unwrap_or_else(|| "the feed action failed".into());
            Err(CliError::new(
                format!("The following application error was received: {why}"),
                exit::http(reply.status),
            ))
        }
        status => Err(failure(&req, status, &reply.body)),
    }
}

/// The `feed` annotation of a trigger, if it has one.
fn feed_of(trigger: &Value) -> Option<String> {
    key_values(trigger, "annotations")
        .get("feed")
        .and_then(Value::as_str)
        .map(String::from)
}

fn auth_key(ctx: &Ctx) -> String {
    ctx.settings.auth.clone().unwrap_or_default()
}

async fn create(ctx: &Ctx, t: &TriggerPut) -> Result<()> {
    let qn = ctx.qname(&t.name)?;
    let name = qn.entity_name();
    let old = old_form(t);
    if old {
        mixed_forms(t)?;
    }
    let feed = t.feed.as_deref().map(|f| ctx.qname(f)).transpose()?;
    if feed.is_none() && !t.feed_param.is_empty() {
        return Err(CliError::new(
            "Incorrect usage. Trigger without a feed cannot have feed parameters",
            exit::NOT_ALLOWED,
        ));
    }
    let mut annotations = params::list(
        &t.annotations.annotation,
        t.annotations.annotation_file.as_deref(),
        What::Annotation,
    )?;
    if let Some(f) = &feed {
        annotations.set("feed", json!(f.full()));
    }
    // The old form gives --param to the feed when there is one, else to the trigger; the new
    // form gives --trigger-param to the trigger and --feed-param to the feed.
    let (trigger_params, feed_user) = if old {
        let p = params::object(
            &t.params.param,
            t.params.param_file.as_deref(),
            What::Parameter,
        )?;
        if feed.is_some() {
            (Parameters::new(), p)
        } else {
            (p.into_iter().collect(), Map::new())
        }
    } else {
        (
            pairs_object(&t.trigger_param).into_iter().collect(),
            pairs_object(&t.feed_param),
        )
    };
    let c = ctx.client()?;
    let created = put_trigger(&c, &qn, trigger_body(&trigger_params, &annotations), false)
        .await
        .map_err(|e| e.context(format!("Unable to create trigger '{name}'")))?;
    if let Some(f) = &feed {
        let p = feed_params(feed_user, Lifecycle::Create.as_str(), &qn, &auth_key(ctx));
        match invoke_feed(ctx, &c, f, p).await {
            Ok(activation) => {
                if !ctx.out.json {
                    ctx.out.ok(format!(
                        "invoked {} with id {}",
                        ctx.out.bold(&f.full()),
                        ctx.out.bold(
                            activation
                                .get("activationId")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                        )
                    ));
                    ctx.out.entity(&activation, Shape::Activation);
                }
            }
            Err(e) => {
                // Take the trigger back out, as wsk does; its failure is only worth a note.
                let del = c.ns_req(
                    Method::DELETE,
                    FAMILY,
                    &qn.namespace,
                    "triggers",
                    &qn.segments(),
                );
                if let Err(d) = c.call(&del).await {
                    eprintln!("warning: Unable to delete trigger '{name}': {d}");
                }
                return Err(e
                    .context(format!("Unable to configure feed '{}'", f.full()))
                    .context(format!("Unable to create trigger '{name}'")));
            }
        }
    }
    if ctx.out.json {
        ctx.out.json_doc(&created);
    } else {
        ctx.out
            .ok(format!("created trigger {}", ctx.out.bold(&name)));
    }
    Ok(())
}

async fn fetch(c: &Client, qn: &QualifiedName) -> Result<Value> {
    let req = c.ns_req(
        Method::GET,
        FAMILY,
        &qn.namespace,
        "triggers",
        &qn.segments(),
    );
    Ok(c.call(&req).await?.body)
}

async fn configure_feed(
    ctx: &Ctx,
    c: &Client,
    qn: &QualifiedName,
    feed: &str,
    event: Lifecycle,
    user: Map<String, Value>,
) -> Result<Value> {
    let f = ctx.qname(feed)?;
    let p = feed_params(user, event.as_str(), qn, &auth_key(ctx));
    invoke_feed(ctx, c, &f, p)
        .await
        .map_err(|e| e.context(format!("Unable to configure feed '{feed}'")))
}

async fn update(ctx: &Ctx, t: &TriggerPut) -> Result<()> {
    let qn = ctx.qname(&t.name)?;
    let name = qn.entity_name();
    let c = ctx.client()?;
    let existing = match fetch(&c, &qn).await {
        Ok(v) => v,
        Err(e) if e.has_status(404) && !e.is_not_served() => return create(ctx, t).await,
        Err(e) => return Err(e.context(format!("Unable to get trigger '{name}'"))),
    };
    let feed = feed_of(&existing);
    let annotations = params::list(
        &t.annotations.annotation,
        t.annotations.annotation_file.as_deref(),
        What::Annotation,
    )?;
    let result = if old_form(t) {
        mixed_forms(t)?;
        let p = params::object(
            &t.params.param,
            t.params.param_file.as_deref(),
            What::Parameter,
        )?;
        match &feed {
            // A feed's trigger: the feed gets the parameters (UPDATE); the trigger stays.
            Some(f) => configure_feed(ctx, &c, &qn, f, Lifecycle::Update, p)
                .await
                .map_err(|e| e.context(format!("Unable to create trigger '{name}'")))?,
            None => {
                let params: Parameters = p.into_iter().collect();
                put_trigger(&c, &qn, trigger_body(&params, &annotations), true)
                    .await
                    .map_err(|e| e.context(format!("Unable to update trigger '{name}'")))?
            }
        }
    } else {
        let params: Parameters = pairs_object(&t.trigger_param).into_iter().collect();
        let updated = put_trigger(&c, &qn, trigger_body(&params, &annotations), true)
            .await
            .map_err(|e| e.context(format!("Unable to update trigger '{name}'")))?;
        match &feed {
            None if !t.feed_param.is_empty() => {
                return Err(CliError::general(format!(
                    "Unable to configure feed '{name}': this trigger does not contain a feed"
                )));
            }
            Some(f) if !t.feed_param.is_empty() => {
                configure_feed(
                    ctx,
                    &c,
                    &qn,
                    f,
                    Lifecycle::Update,
                    pairs_object(&t.feed_param),
                )
                .await
                .map_err(|e| e.context(format!("Unable to create trigger '{name}'")))?;
            }
            _ => {}
        }
        updated
    };
    if ctx.out.json {
        ctx.out.json_doc(&result);
    } else {
        ctx.out
            .ok(format!("updated trigger {}", ctx.out.bold(&name)));
    }
    Ok(())
}

async fn get(ctx: &Ctx, g: &EntityGet) -> Result<()> {
    check_field(g.field.as_deref(), FIELDS)?;
    let qn = ctx.qname(&g.name)?;
    let name = qn.entity_name();
    let c = ctx.client()?;
    let trigger = fetch(&c, &qn)
        .await
        .map_err(|e| e.context(format!("Unable to get trigger '{name}'")))?;
    if let Some(feed) = feed_of(&trigger) {
        // A feed's trigger: show what the feed says about it (its READ), as wsk does.
        match configure_feed(ctx, &c, &qn, &feed, Lifecycle::Read, Map::new()).await {
            Ok(activation) => {
                ctx.out.json_doc(&activation);
                return Ok(());
            }
            Err(e) => eprintln!("warning: {e}"),
        }
    }
    if ctx.out.json {
        ctx.out.json_doc(match g.field.as_deref() {
            Some(f) => super::field_value(&trigger, f),
            None => &trigger,
        });
    } else if g.summary {
        print_summary_entry(
            &ctx.out,
            "trigger",
            &super::full_name(&trigger),
            &key_values(&trigger, "annotations"),
            &key_values(&trigger, "parameters"),
        );
    } else {
        print_got(
            &ctx.out,
            "trigger",
            &name,
            &trigger,
            g.field.as_deref(),
            Shape::Trigger,
        );
    }
    Ok(())
}

async fn delete(ctx: &Ctx, name: &str) -> Result<()> {
    let qn = ctx.qname(name)?;
    let entity = qn.entity_name();
    let c = ctx.client()?;
    let trigger = fetch(&c, &qn)
        .await
        .map_err(|e| e.context(format!("Unable to get trigger '{entity}'")))?;
    if let Some(feed) = feed_of(&trigger)
        && let Err(e) = configure_feed(ctx, &c, &qn, &feed, Lifecycle::Delete, Map::new()).await
    {
        // The trigger goes anyway (wsk carries on too).
        eprintln!("warning: {e}");
    }
    let req = c.ns_req(
        Method::DELETE,
        FAMILY,
        &qn.namespace,
        "triggers",
        &qn.segments(),
    );
    let reply = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to delete trigger '{entity}'")))?;
    if ctx.out.json {
        ctx.out.json_doc(&reply.body);
    } else {
        ctx.out
            .ok(format!("deleted trigger {}", ctx.out.bold(&entity)));
    }
    Ok(())
}

async fn list(ctx: &Ctx, l: &NamespaceList) -> Result<()> {
    let ns = namespace_arg(l.namespace.as_deref(), ctx.ns())?;
    let c = ctx.client()?;
    let req = c.ns_req(Method::GET, FAMILY, &ns, "triggers", &[]).query([
        ("limit", l.page.limit.to_string()),
        ("skip", l.page.skip.to_string()),
    ]);
    let shown = if ns == "_" { "default" } else { ns.as_str() };
    let body = c
        .call(&req)
        .await
        .map_err(|e| {
            e.context(format!(
                "Unable to obtain the list of triggers for namespace '{shown}'"
            ))
        })?
        .body;
    print_triggers(ctx, body, l.page.sort.name_sort);
    Ok(())
}

/// Prints a list of triggers as `wsk trigger list` does.
pub(crate) fn print_triggers(ctx: &Ctx, body: Value, name_sort: bool) {
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
        .map(|t| {
            let (ns, name) = super::ns_name(t);
            super::entity_row(&ns, &name, "private")
        })
        .collect();
    print_table(&ctx.out, "triggers", &rows);
}

async fn fire(ctx: &Ctx, f: &TriggerFire) -> Result<()> {
    let qn = ctx.qname(&f.name)?;
    let payload = params::object(
        &f.params.param,
        f.params.param_file.as_deref(),
        What::Parameter,
    )?;
    let c = ctx.client()?;
    let req = c
        .ns_req(
            Method::POST,
            FAMILY,
            &qn.namespace,
            "triggers",
            &qn.segments(),
        )
        .body(Value::Object(payload));
    let reply = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to fire trigger '{}'", qn.entity_name())))?;
    if ctx.out.json {
        ctx.out.json_doc(&reply.body);
        return Ok(());
    }
    let fired = format!(
        "triggered /{}/{}",
        ctx.out.bold(&qn.namespace),
        ctx.out.bold(&qn.entity_name())
    );
    match reply.body.get("activationId").and_then(Value::as_str) {
        Some(id) => ctx.out.ok(format!("{fired} with id {}", ctx.out.bold(id))),
        // 204: no active rule, so no activation.
        None => ctx
            .out
            .ok(format!("{fired} (no active rule; no activation)")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_parameters() {
        let qn = QualifiedName::parse("t", "_").unwrap();
        let mut user = Map::new();
        user.insert("cron".into(), json!("* * * * *"));
        let p = feed_params(user, "CREATE", &qn, "u:k");
        assert_eq!(
            Value::Object(p),
            json!({"cron": "* * * * *", "lifecycleEvent": "CREATE", "triggerName": "/_/t", "authKey": "u:k"})
        );
    }

    #[test]
    fn bodies_leave_out_empty_lists() {
        assert_eq!(
            trigger_body(&Parameters::new(), &Parameters::new()),
            json!({})
        );
        let a = Parameters::new().with("feed", json!("/whisk.system/alarms/alarm"));
        assert_eq!(
            trigger_body(&Parameters::new(), &a),
            json!({"annotations": [{"key": "feed", "value": "/whisk.system/alarms/alarm"}]})
        );
    }
}
