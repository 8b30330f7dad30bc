//! One module per command family, and what they share: field filters, list tables, summaries.

mod action;
mod activation;
mod api;
mod namespace;
mod package;
mod property;
mod rule;
mod trigger;

use clap::CommandFactory;
use faas_core::Parameters;
use serde_json::Value;

use crate::Ctx;
use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::{CliError, Result};
use crate::output::{Out, Shape};

/// Runs `command`.
pub(crate) async fn run(ctx: &Ctx, global: &GlobalArgs, command: Command) -> Result<()> {
    match command {
        Command::Action(c) => action::run(ctx, c).await,
        Command::Activation(c) => activation::run(ctx, c).await,
        Command::Package(c) => package::run(ctx, c).await,
        Command::Rule(c) => rule::run(ctx, c).await,
        Command::Trigger(c) => trigger::run(ctx, c).await,
        Command::Property(c) => property::run(ctx, global, c).await,
        Command::Namespace(c) => namespace::run(ctx, c).await,
        Command::List(sort) => namespace::get(ctx, None, sort.name_sort).await,
        Command::Api(c) => api::run(ctx, c).await,
        Command::Completion { shell } => {
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "faas", &mut script);
            // A closed stdout (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(())
        }
    }
}

/// The entity's parameters or annotations from its JSON.
pub(crate) fn key_values(entity: &Value, field: &str) -> Parameters {
    entity
        .get(field)
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// Checks a field filter against the fields `wsk` knows for an entity (case-insensitive).
pub(crate) fn check_field(field: Option<&str>, known: &[&str]) -> Result<()> {
    match field {
        Some(f) if !known.iter().any(|k| k.eq_ignore_ascii_case(f)) => {
            Err(CliError::usage(format!("Invalid field filter '{f}'.")))
        }
        _ => Ok(()),
    }
}

/// The value of `field` in `entity` (case-insensitive), `null` when absent.
pub(crate) fn field_value<'a>(entity: &'a Value, field: &str) -> &'a Value {
    entity
        .as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(field))
                .map(|(_, v)| v)
        })
        .unwrap_or(&Value::Null)
}

/// Prints `entity` as `get` does: `ok: got <kind> <name>` and the JSON, or one field of it.
pub(crate) fn print_got(
    out: &Out,
    kind: &str,
    name: &str,
    entity: &Value,
    field: Option<&str>,
    shape: Shape,
) {
    match field {
        Some(f) => {
            out.ok(format!(
                "got {kind} {}, displaying field {}",
                out.bold(name),
                out.bold(f)
            ));
            out.json_doc(field_value(entity, f));
        }
        None => {
            out.ok(format!("got {kind} {}", out.bold(name)));
            out.entity(entity, shape);
        }
    }
}

/// One row of an entity list: `/ns/name` padded to 70, then the rest (`whisk.Action`'s
/// `ToSummaryRowString` and its siblings).
pub(crate) fn entity_row(namespace: &str, name: &str, rest: &str) -> String {
    format!("{:<70} {rest}", format!("/{namespace}/{name}"))
}

/// A list: the collection name as header, then the rows.
pub(crate) fn print_table(out: &Out, header: &str, rows: &[String]) {
    out.header(header);
    for r in rows {
        out.line(r);
    }
}

/// `namespace` and `name` of a listed entity.
pub(crate) fn ns_name(entity: &Value) -> (String, String) {
    let s = |k: &str| {
        entity
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (s("namespace"), s("name"))
}

/// Sorts entities by namespace and name, lowercase (`--name-sort`, `Compare` of `whisk.Rule`
/// and its siblings); actions of the default package come first (`whisk.Action.Compare`).
pub(crate) fn sort_by_name(items: &mut [Value]) {
    items.sort_by_key(|e| {
        let (ns, name) = ns_name(e);
        let packaged = ns.contains('/');
        let key = if packaged {
            format!("{ns}{name}").to_lowercase()
        } else {
            name.clone()
        };
        (packaged, key)
    });
}

/// The parameter names `--summary` shows: bound parameters (prefixed `*`, or `**` when the
/// entity is `final`) and those its `parameters` annotation describes (`getParamUnion`).
pub(crate) fn param_union(annotations: &Parameters, parameters: &Parameters) -> Vec<String> {
    let tag = if annotations.get("final") == Some(&Value::Bool(true)) {
        "**"
    } else {
        "*"
    };
    let bound: Vec<String> = parameters.iter().map(|p| p.key.clone()).collect();
    let mut names: Vec<String> = bound.clone();
    if let Some(Value::Array(described)) = annotations.get("parameters") {
        for d in described {
            if let Some(n) = d.get("name").and_then(Value::as_str)
                && !names.iter().any(|x| x == n)
            {
                names.push(n.to_string());
            }
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|n| {
            if bound.contains(&n) {
                format!("{tag}{n}")
            } else {
                n
            }
        })
        .collect()
}

/// One entity of a `--summary` (`printEntitySummary`).
pub(crate) fn print_summary_entry(
    out: &Out,
    kind: &str,
    full_name: &str,
    annotations: &Parameters,
    parameters: &Parameters,
) {
    let description = annotations
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let params = param_union(annotations, parameters).join(", ");
    if !description.is_empty() {
        out.line(format!("{} {full_name}: {description}", out.bold(kind)));
    } else if !params.is_empty() {
        out.line(format!(
            "{} {full_name}: {}",
            out.bold(kind),
            param_description(&params)
        ));
    } else {
        out.line(format!("{} {full_name}", out.bold(kind)));
    }
    let shown = if params.is_empty() {
        "none defined".to_string()
    } else {
        params
    };
    out.line(format!("   ({}: {shown})", out.bold("parameters")));
}

/// `Returns a result based on parameters a, b and c` (`buildParamDescription`).
fn param_description(params: &str) -> String {
    let plain = params.replace('*', "");
    let parts: Vec<&str> = plain.split(',').collect();
    match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!(
                "Returns a result based on parameters {} and{last}",
                rest.join(",")
            )
        }
        _ => format!("Returns a result based on parameter {plain}"),
    }
}

/// `/ns/name` of an entity's JSON.
pub(crate) fn full_name(entity: &Value) -> String {
    let (ns, name) = ns_name(entity);
    format!("/{ns}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summary_parameters() {
        let ann: Parameters = serde_json::from_value(json!([
            {"key": "parameters", "value": [{"name": "b"}, {"name": "z"}]}
        ]))
        .unwrap();
        let params: Parameters =
            serde_json::from_value(json!([{"key": "b", "value": 1}, {"key": "a", "value": 2}]))
                .unwrap();
        assert_eq!(param_union(&ann, &params), ["*a", "*b", "z"]);
        assert_eq!(
            param_description("*a, *b, z"),
            "Returns a result based on parameters a, b and z"
        );
        assert_eq!(
            param_description("*a"),
            "Returns a result based on parameter a"
        );
        let fin: Parameters =
            serde_json::from_value(json!([{"key": "final", "value": true}])).unwrap();
        assert_eq!(param_union(&fin, &params), ["**a", "**b"]);
    }

    #[test]
    fn rows_and_sorting() {
        assert_eq!(
            entity_row("guest", "hello", "private nodejs:20"),
            format!("{:<70} private nodejs:20", "/guest/hello")
        );
        let mut v = vec![
            json!({"namespace": "guest/pkg", "name": "a"}),
            json!({"namespace": "guest", "name": "b"}),
            json!({"namespace": "guest", "name": "a"}),
        ];
        sort_by_name(&mut v);
        let names: Vec<String> = v.iter().map(full_name).collect();
        assert_eq!(names, ["/guest/a", "/guest/b", "/guest/pkg/a"]);
    }

    #[test]
    fn field_filters() {
        assert!(check_field(Some("Exec"), &["exec"]).is_ok());
        let e = check_field(Some("bogus"), &["exec"]).unwrap_err();
        assert_eq!(e.message, "Invalid field filter 'bogus'.");
        assert_eq!(field_value(&json!({"exec": 1}), "EXEC"), &json!(1));
    }
}
