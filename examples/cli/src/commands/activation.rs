//! `faas activation list|get|logs|result|poll` (`wsk`'s `commands/activation.go`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use faas_core::{ActivationId, StatusCode};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{check_field, print_got};
use crate::Ctx;
use crate::cli::{ActivationCmd, ActivationGet, ActivationList, ActivationLogs, ActivationPoll};
use crate::client::Client;
use crate::error::{CliError, Result};
use crate::output::Shape;
use crate::output::{go_duration, local_datetime, local_time, strip_timestamp, truncate_middle};
use crate::output::{outln, outp};
use crate::progress;

const FAMILY: &str = "activations";

/// How often `poll` asks for new activations (`wsk`: 2 s).
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// `wsk`'s names of the four status codes in the list table (`whisk.StatusCodes`).
const STATUS_NAMES: [&str; 4] = [
    "success",
    "application error",
    "developer error",
    "internal error",
];

/// The fields of an activation `get` can filter on (`whisk.Activation`).
const FIELDS: &[&str] = crate::output::ACTIVATION_FIELDS;

/// One activation of a list (the summary form; `docs=true` adds `logs` and `response`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    activation_id: ActivationId,
    #[serde(default)]
    start: i64,
    #[serde(default)]
    end: i64,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    status_code: Option<StatusCode>,
    #[serde(default)]
    annotations: faas_core::Parameters,
    #[serde(default)]
    logs: Vec<String>,
}

impl Summary {
    fn kind(&self) -> String {
        self.annotations
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string()
    }

    fn status(&self) -> &'static str {
        STATUS_NAMES[self.status_code.map_or(0, |c| usize::from(u8::from(c)))]
    }
}

/// Runs an `activation` command.
pub(crate) async fn run(ctx: &Ctx, cmd: ActivationCmd) -> Result<()> {
    match cmd {
        ActivationCmd::List(l) => list(ctx, &l).await,
        ActivationCmd::Get(g) => get(ctx, &g).await,
        ActivationCmd::Logs(l) => logs(ctx, &l).await,
        ActivationCmd::Result(r) => result(ctx, r.id.as_deref(), r.last).await,
        ActivationCmd::Poll(p) => poll(ctx, &p).await,
    }
}

/// `GET /namespaces/_/activations?...` (activations are always listed in the caller's own
/// namespace, as `wsk` does).
async fn fetch_list(c: &Client, query: &[(&str, String)]) -> Result<Vec<Value>> {
    let req = c
        .ns_req(Method::GET, FAMILY, "_", "activations", &[])
        .query(query.iter().map(|(k, v)| (*k, v.as_str())));
    let reply = c.call(&req).await?;
    match reply.body {
        Value::Array(a) => Ok(a),
        other => Err(CliError::general(format!(
            "the platform answered a list that is not an array: {other}"
        ))),
    }
}

async fn list(ctx: &Ctx, l: &ActivationList) -> Result<()> {
    let c = ctx.client()?;
    let mut query = vec![("limit", l.limit.to_string()), ("skip", l.skip.to_string())];
    if let Some(n) = &l.name {
        let qn = ctx.qname(n)?;
        let name = qn.entity_name();
        if !name.is_empty() {
            query.push(("name", name));
        }
    }
    if let Some(s) = l.since {
        query.push(("since", s.to_string()));
    }
    if let Some(u) = l.upto {
        query.push(("upto", u.to_string()));
    }
    if l.full {
        query.push(("docs", "true".into()));
    }
    let items = fetch_list(&c, &query).await.map_err(|e| {
        e.context("Unable to obtain the list of activations for namespace 'default'")
    })?;
    if ctx.out.json {
        ctx.out.json_doc(&items);
        return Ok(());
    }
    if l.full {
        ctx.out.header("activations");
        for a in &items {
            ctx.out.entity(a, Shape::Activation);
        }
        return Ok(());
    }
    let rows: Vec<Summary> = items
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    for line in table(&rows) {
        ctx.out.line(line);
    }
    Ok(())
}

/// The activation table of `wsk activation list`: Datetime, Activation ID, Kind, Start (cold or
/// warm), Duration, Status, Entity; Kind and Status as wide as their longest value.
fn table(rows: &[Summary]) -> Vec<String> {
    let kind_w = rows
        .iter()
        .map(|r| r.kind().len())
        .max()
        .unwrap_or(0)
        .max("Kind".len());
    let status_w = rows
        .iter()
        .map(|r| r.status().len())
        .max()
        .unwrap_or(0)
        .max("success".len())
        .max("Status".len());
    let mut out = vec![format!(
        "{:<19} {:<32} {:<kind_w$} {:<6}{:<10} {:<status_w$} {:<6}",
        "Datetime", "Activation ID", "Kind", "Start", "Duration", "Status", "Entity"
    )];
    for r in rows {
        let duration = if r.duration.unwrap_or(0) == 0 {
            0
        } else {
            r.end - r.start
        };
        let start = if r.annotations.get("initTime").is_some() {
            "cold"
        } else {
            "warm"
        };
        let entity = format!(
            "{}/{}:{}",
            truncate_middle(&r.namespace, 20),
            truncate_middle(&r.name, 30),
            truncate_middle(&r.version, 20)
        );
        out.push(format!(
            "{} {:<32} {:<kind_w$} {:<5} {:<10} {:<status_w$} {entity}",
            local_datetime(r.start),
            r.activation_id,
            r.kind(),
            start,
            go_duration(duration),
            r.status(),
        ));
    }
    out
}

/// The id to act on: the one given, or with `--last` the newest activation's (`lastFlag`).
async fn resolve_id(c: &Client, id: Option<&str>, last: bool, what: &str) -> Result<String> {
    if last {
        let newest = fetch_list(c, &[("limit", "1".into()), ("skip", "0".into())])
            .await
            .map_err(|e| e.context(format!("Unable to get {what}")))?;
        let id = newest
            .first()
            .and_then(|a| a.get("activationId"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                CliError::general("Activation list does not contain any activations.")
                    .context(format!("Unable to get {what}"))
            })?;
        return Ok(id.to_string());
    }
    id.map(str::to_string)
        .ok_or_else(|| CliError::general("Invalid argument(s). An activation ID is required."))
}

async fn get(ctx: &Ctx, g: &ActivationGet) -> Result<()> {
    let c = ctx.client()?;
    let (id_arg, field) = if g.last {
        if g.args.len() > 1 {
            return Err(CliError::general(format!(
                "Invalid argument(s): {}. An activation ID is required.",
                g.args[1..].join(", ")
            )));
        }
        (None, g.args.first().map(String::as_str))
    } else {
        (
            g.args.first().map(String::as_str),
            g.args.get(1).map(String::as_str),
        )
    };
    check_field(field, FIELDS)?;
    let id = resolve_id(&c, id_arg, g.last, "activation").await?;
    let req = c.ns_req(Method::GET, FAMILY, "_", "activations", &[&id]);
    let a = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to get activation '{id}'")))?
        .body;
    if ctx.out.json {
        ctx.out.json_doc(match field {
            Some(f) => super::field_value(&a, f),
            None => &a,
        });
    } else if g.summary {
        let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let status = a
            .pointer("/response/status")
            .and_then(Value::as_str)
            .unwrap_or("");
        let end = a.get("end").and_then(Value::as_i64).unwrap_or(0);
        outln!(
            "activation result for '/{}/{}' ({status} at {})",
            s("namespace"),
            s("name"),
            local_time(end / 1000)
        );
        ctx.out
            .json_doc(a.pointer("/response/result").unwrap_or(&Value::Null));
    } else if g.logs {
        for line in log_lines(&a) {
            outln!("{}", strip_timestamp(&line));
        }
    } else {
        print_got(&ctx.out, "activation", &id, &a, field, Shape::Activation);
    }
    Ok(())
}

fn log_lines(v: &Value) -> Vec<String> {
    v.get("logs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

async fn logs(ctx: &Ctx, l: &ActivationLogs) -> Result<()> {
    let c = ctx.client()?;
    let id = resolve_id(&c, l.id.as_deref(), l.last, "logs for activation").await?;
    let req = c.ns_req(Method::GET, FAMILY, "_", "activations", &[&id, "logs"]);
    let body = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to get logs for activation '{id}'")))?
        .body;
    if ctx.out.json {
        ctx.out.json_doc(&body);
        return Ok(());
    }
    for line in log_lines(&body) {
        if l.strip {
            outln!("{}", strip_timestamp(&line));
        } else {
            outln!("{line}");
        }
    }
    Ok(())
}

async fn result(ctx: &Ctx, id: Option<&str>, last: bool) -> Result<()> {
    let c = ctx.client()?;
    let id = resolve_id(&c, id, last, "result for activation").await?;
    let req = c.ns_req(Method::GET, FAMILY, "_", "activations", &[&id, "result"]);
    let body = c
        .call(&req)
        .await
        .map_err(|e| e.context(format!("Unable to get result for activation '{id}'")))?
        .body;
    if ctx.out.json {
        ctx.out.json_doc(&body);
    } else {
        ctx.out.json_doc(body.get("result").unwrap_or(&Value::Null));
    }
    Ok(())
}

fn now_ms() -> i64 {
    i64::try_from(faas_core::entity::now_ms()).unwrap_or(i64::MAX)
}

/// `activation poll`: prints the logs of each new activation as it appears, until Ctrl-C or,
/// with `--exit SECONDS`, until that time has passed. With `--json`, one activation per line.
async fn poll(ctx: &Ctx, p: &ActivationPoll) -> Result<()> {
    let c = ctx.client()?;
    let name = match &p.name {
        Some(n) => {
            let qn = ctx.qname(n)?;
            let e = qn.entity_name();
            (!e.is_empty()).then_some(e)
        }
        None => None,
    };
    let back_s =
        p.since_seconds + 60 * p.since_minutes + 3600 * p.since_hours + 86_400 * p.since_days;
    // Where to start: as wsk, just after the newest activation unless told to look back. The
    // first request also checks the connection and credentials (wsk ignores its failure).
    let mut since: i64 = if back_s == 0 {
        let newest = fetch_list(
            &c,
            &[
                ("limit", "1".into()),
                ("skip", "0".into()),
                ("docs", "true".into()),
            ],
        )
        .await
        .map_err(|e| e.context("Unable to poll for activations"))?;
        newest
            .first()
            .and_then(|a| a.get("start"))
            .and_then(Value::as_i64)
            .map_or(0, |s| s + 1)
    } else {
        now_ms() - i64::try_from(back_s.saturating_mul(1000)).unwrap_or(i64::MAX)
    };
    if !ctx.out.json {
        outln!("Enter Ctrl-c to exit.");
        outln!("Polling for activation logs");
    }
    let began = Instant::now();
    let limit = p.exit.filter(|s| *s > 0).map(Duration::from_secs);
    let spinner = progress::spinner("polling for activations", ctx.progress);
    let mut reported: HashSet<String> = HashSet::new();
    let mut last_error: Option<String> = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if limit.is_some_and(|l| began.elapsed() >= l) {
            spinner.finish_and_clear();
            return Ok(());
        }
        let mut query = vec![
            ("docs", "true".to_string()),
            ("limit", "0".to_string()),
            ("skip", "0".into()),
        ];
        if let Some(n) = &name {
            query.push(("name", n.clone()));
        }
        if since > 0 {
            query.push(("since", since.to_string()));
        }
        match fetch_list(&c, &query).await {
            Ok(items) => {
                last_error = None;
                let mut found: Vec<Summary> = items
                    .into_iter()
                    .filter_map(|v| serde_json::from_value(v).ok())
                    .collect();
                // Oldest first, so logs read in the order they happened.
                found.sort_by_key(|a| a.start);
                for a in found {
                    if reported.insert(a.activation_id.to_string()) {
                        spinner.suspend(|| {
                            if ctx.out.json {
                                outln!(
                                    "{}",
                                    json!({"activationId": a.activation_id, "name": a.name, "logs": a.logs})
                                );
                            } else {
                                outln!("\nActivation: '{}' ({})", a.name, a.activation_id);
                                outp!("{}", crate::output::pretty(&a.logs));
                            }
                        });
                    }
                    since = since.max(a.start + 1);
                }
            }
            Err(e) => {
                // Keep polling through a failure, saying so once.
                if last_error.as_deref() != Some(e.message.as_str()) {
                    spinner
                        .suspend(|| eprintln!("warning: polling failed, retrying: {}", e.message));
                    last_error = Some(e.message);
                }
            }
        }
        let pause = match limit {
            Some(l) => POLL_INTERVAL.min(l.saturating_sub(began.elapsed())),
            None => POLL_INTERVAL,
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = &mut ctrl_c => {
                spinner.finish_and_clear();
                outln!("Poll terminated");
                return Err(CliError::general("Poll terminated").silent());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_like_wsk() {
        let rows: Vec<Summary> = serde_json::from_value(json!([
            {"namespace": "guest", "name": "hello", "version": "0.0.1",
             "activationId": "0123456789abcdef0123456789abcdef", "start": 1_700_000_000_000i64,
             "end": 1_700_000_000_034i64, "duration": 34, "statusCode": 0,
             "annotations": [{"key": "kind", "value": "nodejs:20"}, {"key": "initTime", "value": 20}]},
            {"namespace": "guest", "name": "bad", "version": "0.0.2",
             "activationId": "fedcba9876543210fedcba9876543210", "start": 1_700_000_000_000i64,
             "end": 1_700_000_001_500i64, "duration": 1500, "statusCode": 2,
             "annotations": [{"key": "kind", "value": "python:3"}]}
        ]))
        .unwrap();
        let t = table(&rows);
        assert_eq!(
            t[0],
            "Datetime            Activation ID                    Kind      Start Duration   Status          Entity"
        );
        assert!(
            t[1].ends_with(
                " 0123456789abcdef0123456789abcdef nodejs:20 cold  34ms       success         guest/hello:0.0.1"
            ),
            "{}",
            t[1]
        );
        assert!(
            t[2].ends_with(
                " fedcba9876543210fedcba9876543210 python:3  warm  1.5s       developer error guest/bad:0.0.2"
            ),
            "{}",
            t[2]
        );
        // The datetime column is 19 characters.
        assert_eq!(t[1].find(" 0123").unwrap(), 19);
    }
}
