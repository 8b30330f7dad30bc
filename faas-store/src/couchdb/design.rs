//! Design documents and views, named and keyed as OpenWhisk's (its
//! [`ansible/files/*_design_document_*.json`](https://github.com/apache/openwhisk/tree/master/ansible/files)).
//!
//! | database | design doc / view | key | use |
//! |---|---|---|---|
//! | subjects | `subjects.v2.0.0/identities` | `[ns]`, `[uuid, key]` | identity by key or namespace (value links the `ns/limits` doc) |
//! | subjects | `namespaceThrottlings/blockedNamespaces` | ns | blocked namespaces (`_sum`) |
//! | whisks | `whisks.v2.1.0/{actions,packages,packages-public,triggers,rules}` | `[namespace, updated]` (packaged: also `[root, updated]`) | lists, `_count` |
//! | activations | `whisks.v2.1.0/activations` | `[ns, start]` | lists, `_count` |
//! | activations | `whisks-filters.v2.1.1/activations` | `[ns/name, start]` for each name the record answers to | lists by name, `_count` |
//! | activations | `activations/byDate` | start | clean-up tools |
//!
//! Views recognise entities by `entityType` and, for documents of older layouts without it,
//! by shape, as OpenWhisk's do. The activation name filter emits one key for the `path`
//! annotation without its namespace (`pkg/name` or `name`) and one for the record's `name`,
//! which is exactly [`ActivationQuery::matches`](faas_core::store::ActivationQuery::matches).
//!
//! The store writes these documents on start-up when they are missing and replaces them when
//! their definition differs (a newer version of this adapter), so views follow the code.

use serde_json::{Value, json};

/// One design document: `_design/<name>` with its views.
#[derive(Debug, Clone)]
pub(crate) struct DesignDoc {
    pub(crate) name: &'static str,
    /// `{"<view>": {"map": "...", "reduce"?: "..."}}`.
    pub(crate) views: Value,
}

impl DesignDoc {
    pub(crate) fn id(&self) -> String {
        format!("_design/{}", self.name)
    }

    /// The full document to store (without `_rev`).
    pub(crate) fn doc(&self) -> Value {
        json!({ "_id": self.id(), "language": "javascript", "views": self.views })
    }

    /// Whether `stored` already holds this definition.
    pub(crate) fn matches(&self, stored: &Value) -> bool {
        stored.get("views") == Some(&self.views)
            && stored.get("language").and_then(Value::as_str) == Some("javascript")
    }
}

/// Design doc holding the entity lists.
pub(crate) const WHISKS_DDOC: &str = "whisks.v2.1.0";
/// Design doc holding the unfiltered activation list (same name as the entity one, in the
/// activations database, as in OpenWhisk).
pub(crate) const ACTIVATIONS_DDOC: &str = "whisks.v2.1.0";
/// Design doc holding the activation list by action name.
pub(crate) const FILTERS_DDOC: &str = "whisks-filters.v2.1.1";
/// The view of both activation design docs.
pub(crate) const ACTIVATIONS_VIEW: &str = "activations";
/// Design doc holding the identity lookup.
pub(crate) const SUBJECTS_DDOC: &str = "subjects.v2.0.0";
/// The identity view.
pub(crate) const IDENTITIES_VIEW: &str = "identities";
/// Design doc holding the blocked-namespaces view.
pub(crate) const THROTTLINGS_DDOC: &str = "namespaceThrottlings";
/// The view of namespaces of blocked subjects and of namespaces whose limits are 0.
pub(crate) const BLOCKED_VIEW: &str = "blockedNamespaces";

/// JavaScript that sets `kind` to the document's entity type (by `entityType`, else shape).
const KIND_OF: &str = r#"var kind = doc.entityType;
  if (kind === undefined) {
    if (doc.exec !== undefined) kind = "action";
    else if (doc.binding !== undefined) kind = "package";
    else if (doc.trigger !== undefined && doc.action !== undefined) kind = "rule";
    else if (doc.activationId === undefined && doc.parameters !== undefined) kind = "trigger";
  }"#;

/// A map function over entities of `kind` emitting `[namespace, updated]` (and
/// `[root, updated]` for packaged ones) with the summary `value`; `extra` filters further.
fn entity_map(kind: &str, extra: &str, value: &str) -> String {
    format!(
        r#"function (doc) {{
  {KIND_OF}
  if (kind !== "{kind}" || typeof doc.namespace !== "string"{extra}) return;
  var value = {value};
  emit([doc.namespace, doc.updated], value);
  var root = doc.namespace.split("/")[0];
  if (root !== doc.namespace) emit([root, doc.updated], value);
}}"#
    )
}

const SUMMARY: &str = "namespace: doc.namespace, name: doc.name, version: doc.version, \
                       publish: doc.publish, annotations: doc.annotations, updated: doc.updated";

fn whisks_views() -> Value {
    let binding =
        "binding: (doc.binding && Object.keys(doc.binding).length > 0) ? doc.binding : false";
    let view = |map: String| json!({ "map": map, "reduce": "_count" });
    json!({
        "actions": view(entity_map(
            "action",
            "",
            &format!("{{{SUMMARY}, limits: doc.limits, exec: {{binary: !!(doc.exec && doc.exec.binary)}}}}"),
        )),
        "packages": view(entity_map("package", "", &format!("{{{SUMMARY}, {binding}}}"))),
        "packages-public": view(entity_map(
            "package",
            " || doc.publish !== true || (doc.binding && Object.keys(doc.binding).length > 0)",
            &format!("{{{SUMMARY}, binding: false}}"),
        )),
        "triggers": view(entity_map("trigger", "", &format!("{{{SUMMARY}}}"))),
        "rules": view(entity_map("rule", "", "1")),
    })
}

/// JavaScript that sets `value` to an activation's list summary (as OpenWhisk's view).
const ACTIVATION_SUMMARY: &str = r#"var value = {namespace: doc.namespace, name: doc.name,
    version: doc.version, publish: doc.publish, annotations: doc.annotations,
    activationId: doc.activationId, start: doc.start, cause: doc.cause};
  if (doc.end) {
    value.end = doc.end;
    value.duration = doc.duration !== undefined ? doc.duration : doc.end - doc.start;
    value.statusCode = doc.response ? doc.response.statusCode : undefined;
  }"#;

fn activations_views() -> Value {
    json!({
        ACTIVATIONS_VIEW: {
            "map": format!(r#"function (doc) {{
  if (doc.activationId === undefined || typeof doc.namespace !== "string") return;
  {ACTIVATION_SUMMARY}
  emit([doc.namespace.split("/")[0], doc.start], value);
}}"#),
            "reduce": "_count"
        }
    })
}

fn activation_filter_views() -> Value {
    json!({
        ACTIVATIONS_VIEW: {
            "map": format!(r#"function (doc) {{
  if (doc.activationId === undefined || typeof doc.namespace !== "string") return;
  {ACTIVATION_SUMMARY}
  var ns = doc.namespace.split("/")[0];
  var names = {{}};
  var path;
  if (Array.isArray(doc.annotations)) {{
    for (var i = 0; i < doc.annotations.length; i++) {{
      var a = doc.annotations[i];
      if (a && a.key === "path") {{ path = a.value; break; }}
    }}
  }}
  if (typeof path === "string") {{
    var slash = path.indexOf("/");
    names[slash < 0 ? path : path.substring(slash + 1)] = true;
  }}
  if (typeof doc.name === "string") names[doc.name] = true;
  for (var n in names) emit([ns + "/" + n, doc.start], value);
}}"#),
            "reduce": "_count"
        }
    })
}

fn by_date_views() -> Value {
    json!({
        "byDate": {
            "map": r#"function (doc) {
  if (doc.activationId !== undefined && doc.start !== undefined) emit(doc.start, [doc._id, doc._rev]);
}"#
        }
    })
}

fn identities_views() -> Value {
    json!({
        IDENTITIES_VIEW: {
            "map": r#"function (doc) {
  if (doc.blocked === true) return;
  var subject = typeof doc.subject === "string" ? doc.subject : doc._id;
  var one = function (name, uuid, key) {
    if (typeof name !== "string" || typeof uuid !== "string" || typeof key !== "string") return;
    var value = {_id: name + "/limits", namespace: name, uuid: uuid, key: key, subject: subject};
    emit([name], value);
    emit([uuid, key], value);
  };
  if (Array.isArray(doc.namespaces)) {
    doc.namespaces.forEach(function (ns) { if (ns) one(ns.name, ns.uuid, ns.key); });
  } else if (doc.uuid !== undefined && doc.key !== undefined) {
    one(subject, doc.uuid, doc.key);
  }
}"#
        }
    })
}

fn throttling_views() -> Value {
    json!({
        BLOCKED_VIEW: {
            "map": r#"function (doc) {
  var suffix = "/limits";
  if (doc._id.length > suffix.length && doc._id.indexOf(suffix, doc._id.length - suffix.length) !== -1) {
    if (doc.concurrentInvocations === 0 || doc.invocationsPerMinute === 0) {
      emit(doc._id.substring(0, doc._id.length - suffix.length), 1);
    }
  } else if (doc.blocked === true && Array.isArray(doc.namespaces)) {
    doc.namespaces.forEach(function (ns) { if (ns && ns.name) emit(ns.name, 1); });
  }
}"#,
            "reduce": "_sum"
        }
    })
}

/// The design documents of the subjects database.
pub(crate) fn subjects() -> Vec<DesignDoc> {
    vec![
        DesignDoc {
            name: SUBJECTS_DDOC,
            views: identities_views(),
        },
        DesignDoc {
            name: THROTTLINGS_DDOC,
            views: throttling_views(),
        },
    ]
}

/// The design documents of the whisks (entities) database.
pub(crate) fn whisks() -> Vec<DesignDoc> {
    vec![DesignDoc {
        name: WHISKS_DDOC,
        views: whisks_views(),
    }]
}

/// The design documents of the activations database.
pub(crate) fn activations() -> Vec<DesignDoc> {
    vec![
        DesignDoc {
            name: ACTIVATIONS_DDOC,
            views: activations_views(),
        },
        DesignDoc {
            name: FILTERS_DDOC,
            views: activation_filter_views(),
        },
        DesignDoc {
            name: "activations",
            views: by_date_views(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_has_a_map_function() {
        for d in subjects().into_iter().chain(whisks()).chain(activations()) {
            let views = d.views.as_object().unwrap();
            assert!(!views.is_empty(), "{}", d.name);
            for (name, v) in views {
                let map = v["map"].as_str().unwrap();
                assert!(map.starts_with("function (doc) {"), "{}/{name}", d.name);
                assert!(map.contains("emit("), "{}/{name}", d.name);
                // Balanced braces: a cheap guard against a broken format! template.
                let open = map.matches('{').count();
                assert_eq!(open, map.matches('}').count(), "{}/{name}: {map}", d.name);
            }
            assert!(d.matches(&d.doc()));
            let mut changed = d.doc();
            changed["views"] = json!({});
            assert!(!d.matches(&changed));
        }
    }

    #[test]
    fn openwhisk_names() {
        let names: Vec<String> = whisks()[0]
            .views
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            names,
            [
                "actions",
                "packages",
                "packages-public",
                "rules",
                "triggers"
            ]
        );
        assert_eq!(subjects()[0].id(), "_design/subjects.v2.0.0");
        assert_eq!(activations()[1].id(), "_design/whisks-filters.v2.1.1");
    }
}
