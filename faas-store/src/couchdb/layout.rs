//! How documents are laid out, as OpenWhisk lays them out: its entity JSON (the `toJson` of
//! [`WhiskAction`, `WhiskPackage`, …](https://github.com/apache/openwhisk/tree/master/common/scala/src/main/scala/org/apache/openwhisk/core/entity)),
//! with `_id` = `namespace/[package/]name` and the fields its views read.
//!
//! * `whisks`: actions, packages, triggers and rules under `ns/name` or `ns/pkg/name`, each with
//!   `entityType`, `_id` and `_rev` beside OpenWhisk's entity JSON.
//! * `activations`: records under `ns/<activationId>` with `entityType: "activation"` and the
//!   write time in `updated`.
//! * `subjects`: subject records under the subject name (`{subject, namespaces: [{name, uuid,
//!   key}], blocked}`) and namespace limits under `ns/limits`.
//!
//! Readers are lenient where OpenWhisk's are: entity documents without `entityType` (older
//! layouts) are recognised by shape as OpenWhisk's views do, and action code that OpenWhisk
//! inlined as a `mem:` attachment is decoded. Anything else that does not fit is a clear
//! error naming the document, never a panic.

use base64::Engine as _;
use faas_core::activation::Activation;
use faas_core::entity::Entity;
use faas_core::identity::Subject;
use faas_core::limits::UserLimits;
use faas_core::store::{Revision, Versioned};
use serde_json::{Map, Value, json};

/// Why a document could not be read.
#[derive(Debug)]
pub(crate) struct LayoutError(pub(crate) String);

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(msg: impl Into<String>) -> LayoutError {
    LayoutError(msg.into())
}

/// The JSON object of `v`, or an error.
fn object(v: Value) -> Result<Map<String, Value>, LayoutError> {
    match v {
        Value::Object(o) => Ok(o),
        other => Err(err(format!("not a JSON object but {}", kind_of(&other)))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Removes CouchDB's own fields (`_id`, `_rev`, `_attachments`, ...), returning the revision.
fn strip_meta(o: &mut Map<String, Value>) -> Option<String> {
    let rev = o.get("_rev").and_then(Value::as_str).map(str::to_string);
    o.retain(|k, _| !k.starts_with('_'));
    rev
}

// ---------------------------------------------------------------------------------------------
// Entities
// ---------------------------------------------------------------------------------------------

/// The stored document of `entity`: its JSON with `entityType`, plus `_id` and `_rev`.
pub(crate) fn entity_doc(entity: &Entity, rev: Option<&Revision>) -> Value {
    let mut doc = serde_json::to_value(entity).unwrap_or(Value::Null);
    if let Some(o) = doc.as_object_mut() {
        o.insert("_id".into(), Value::String(entity.doc_id()));
        if let Some(r) = rev {
            o.insert("_rev".into(), Value::String(r.0.clone()));
        }
    }
    doc
}

/// The stored form of a platform component's document: `{_id, [_rev], collection, doc}` (the
/// value is wrapped so that its own fields never meet CouchDB's reserved `_` names).
pub(crate) fn document_doc(
    doc_id: &str,
    collection: &str,
    value: &Value,
    rev: Option<&Revision>,
) -> Value {
    let mut o = Map::new();
    o.insert("_id".into(), Value::String(doc_id.to_string()));
    if let Some(r) = rev {
        o.insert("_rev".into(), Value::String(r.0.clone()));
    }
    o.insert("collection".into(), Value::String(collection.to_string()));
    o.insert("doc".into(), value.clone());
    Value::Object(o)
}

/// A platform component's document from its stored form.
pub(crate) fn document_from_doc(doc: Value) -> Result<Versioned<Value>, String> {
    let Value::Object(mut o) = doc else {
        return Err("a document is not a JSON object".into());
    };
    let rev = match o.remove("_rev") {
        Some(Value::String(r)) => Revision(r),
        _ => return Err("a document without _rev".into()),
    };
    let value = o.remove("doc").ok_or("a document without its value")?;
    Ok(Versioned { value, rev })
}

/// The entity type a document without `entityType` has, by shape, as OpenWhisk's views
/// tell them apart (by the fields present: `exec` is an action, `binding` a package, …).
fn infer_entity_type(o: &Map<String, Value>) -> Option<&'static str> {
    if o.contains_key("exec") {
        Some("action")
    } else if o.contains_key("binding") {
        Some("package")
    } else if o.contains_key("trigger") && o.contains_key("action") {
        Some("rule")
    } else if o.contains_key("activationId") {
        None
    } else if o.contains_key("parameters") {
        Some("trigger")
    } else {
        None
    }
}

/// Reads an entity document stored under `id`.
pub(crate) fn entity_from_doc(id: &str, doc: Value) -> Result<Versioned<Entity>, LayoutError> {
    let mut o = object(doc)?;
    let rev = strip_meta(&mut o).ok_or_else(|| err("no _rev"))?;
    let kind = match o.get("entityType") {
        Some(Value::String(t)) => match t.as_str() {
            "action" | "package" | "trigger" | "rule" => t.clone(),
            other => {
                return Err(err(format!(
                    "entityType '{other}' is not an action, package, trigger or rule"
                )));
            }
        },
        Some(other) => return Err(err(format!("entityType is {}", kind_of(other)))),
        None => infer_entity_type(&o)
            .ok_or_else(|| err("no entityType, and its shape is not an entity's"))?
            .to_string(),
    };
    if kind == "action" {
        inline_mem_attachment(&mut o)?;
    }
    o.insert("entityType".into(), Value::String(kind.clone()));
    let entity: Entity = serde_json::from_value(Value::Object(o))
        .map_err(|e| err(format!("not a valid {kind}: {e}")))?;
    if entity.doc_id() != id {
        return Err(err(format!(
            "it names itself '{}' but is stored as '{id}'",
            entity.doc_id()
        )));
    }
    Ok(Versioned {
        value: entity,
        rev: Revision(rev),
    })
}

/// OpenWhisk stores small action code as an attachment inlined into the document
/// (`exec.code = {attachmentName: "mem:<base64>", attachmentType}`); turns it back into code.
fn inline_mem_attachment(o: &mut Map<String, Value>) -> Result<(), LayoutError> {
    let Some(Value::Object(exec)) = o.get_mut("exec") else {
        return Ok(());
    };
    let Some(Value::Object(att)) = exec.get("code") else {
        return Ok(());
    };
    let name = att
        .get("attachmentName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(b64) = name.strip_prefix("mem:") else {
        return Err(err(format!(
            "its code is a CouchDB attachment ('{name}'), which this store does not read; \
             update the action to store its code inline"
        )));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| err(format!("its inlined code attachment is not base64: {e}")))?;
    let text = att.get("attachmentType").and_then(Value::as_str) == Some("text/plain");
    let (code, binary) = match (text, String::from_utf8(bytes)) {
        (true, Ok(s)) => (s, false),
        // Binary code (a zip) travels base64-encoded, as OpenWhisk's API shows it.
        _ => (b64.to_string(), true),
    };
    exec.insert("code".into(), Value::String(code));
    exec.insert("binary".into(), Value::Bool(binary));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------------------------

/// The stored document of `a`: `_id = ns/<activationId>`, `entityType`, `updated` = now.
pub(crate) fn activation_doc(a: &Activation, now_ms: u64) -> Value {
    let mut doc = serde_json::to_value(a).unwrap_or(Value::Null);
    if let Some(o) = doc.as_object_mut() {
        o.insert("_id".into(), Value::String(a.doc_id()));
        o.insert("entityType".into(), json!("activation"));
        o.insert("updated".into(), json!(now_ms));
    }
    doc
}

/// Whether two activation documents hold the same record (ignoring `_rev` and `updated`).
pub(crate) fn same_activation(a: &Value, b: &Value) -> bool {
    let clean = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            strip_meta(o);
            o.remove("updated");
        }
        v
    };
    clean(a) == clean(b)
}

/// Reads an activation document.
pub(crate) fn activation_from_doc(doc: Value) -> Result<Activation, LayoutError> {
    let mut o = object(doc)?;
    strip_meta(&mut o);
    match o.remove("entityType") {
        None => {}
        Some(Value::String(t)) if t == "activation" => {}
        Some(other) => {
            return Err(err(format!("entityType is {other}, not \"activation\"")));
        }
    }
    o.remove("updated");
    serde_json::from_value(Value::Object(o))
        .map_err(|e| err(format!("not a valid activation record: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Subjects and limits
// ---------------------------------------------------------------------------------------------

/// The document id of `ns`'s limits.
pub(crate) fn limits_id(ns: &str) -> String {
    format!("{ns}/limits")
}

/// Reads a limits document (unknown fields are ignored, as OpenWhisk does).
pub(crate) fn limits_from_doc(doc: Value) -> Result<UserLimits, LayoutError> {
    let mut o = object(doc)?;
    strip_meta(&mut o);
    serde_json::from_value(Value::Object(o))
        .map_err(|e| err(format!("not a valid limits document: {e}")))
}

/// The stored document of `subject`: OpenWhisk's `{subject, namespaces, blocked}` plus `_id`
/// (the subject name) and `_rev` for a replacement.
pub(crate) fn subject_doc(subject: &Subject, rev: Option<&Revision>) -> Value {
    let mut doc = serde_json::to_value(subject).unwrap_or(Value::Null);
    if let Some(o) = doc.as_object_mut() {
        o.insert("_id".into(), Value::String(subject.subject.clone()));
        if let Some(r) = rev {
            o.insert("_rev".into(), Value::String(r.0.clone()));
        }
    }
    doc
}

/// Reads a subject document with its revision. Lenient as OpenWhisk's identities view: the
/// subject name defaults to the document id, `blocked` to false, and the old single-namespace
/// form `{subject, uuid, key}` reads as one namespace named after the subject.
pub(crate) fn subject_from_doc(id: &str, doc: Value) -> Result<Versioned<Subject>, LayoutError> {
    let mut o = object(doc)?;
    let rev = strip_meta(&mut o).ok_or_else(|| err("subject document without _rev"))?;
    if !o.contains_key("subject") {
        o.insert("subject".into(), Value::String(id.to_string()));
    }
    if !o.contains_key("namespaces") {
        match (o.remove("uuid"), o.remove("key")) {
            (Some(uuid), Some(key)) => {
                let name = o.get("subject").cloned().unwrap_or(Value::Null);
                o.insert(
                    "namespaces".into(),
                    json!([{"name": name, "uuid": uuid, "key": key}]),
                );
            }
            _ => return Err(err("not a subject document (no namespaces)")),
        }
    }
    if o.get("blocked").is_some_and(|b| !b.is_boolean()) {
        o.insert("blocked".into(), Value::Bool(false));
    }
    let subject: Subject = serde_json::from_value(Value::Object(o))
        .map_err(|e| err(format!("not a valid subject document: {e}")))?;
    Ok(Versioned {
        value: subject,
        rev: Revision(rev),
    })
}

/// Whether a subjects-database id is a limits document's (`ns/limits`).
pub(crate) fn is_limits_id(id: &str) -> bool {
    id.ends_with("/limits")
}

/// Whether two documents are equal apart from `_rev` (to recognise our own write after a
/// lost answer).
pub(crate) fn same_content(stored: &Value, written: &Value) -> bool {
    let clean = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("_rev");
        }
        v
    };
    clean(stored) == clean(written)
}

/// The generation (`N` of `N-<hash>`) of a CouchDB revision.
pub(crate) fn generation(rev: &str) -> Option<u64> {
    rev.split_once('-').and_then(|(n, _)| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::EntityKind;

    fn action_doc() -> Value {
        json!({
            "_id": "guest/hello", "_rev": "3-abc",
            "namespace": "guest", "name": "hello", "version": "0.0.2", "publish": false,
            "exec": {"kind": "nodejs:20", "code": "function main(){}", "binary": false},
            "parameters": [], "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
            "annotations": [], "updated": 5
        })
    }

    #[test]
    fn entity_roundtrip_keeps_type_id_and_rev() {
        let doc = {
            let mut d = action_doc();
            d["entityType"] = json!("action");
            d
        };
        let v = entity_from_doc("guest/hello", doc).unwrap();
        assert_eq!(v.rev.0, "3-abc");
        assert_eq!(v.value.kind(), EntityKind::Action);
        let back = entity_doc(&v.value, Some(&v.rev));
        assert_eq!(back["_id"], json!("guest/hello"));
        assert_eq!(back["_rev"], json!("3-abc"));
        assert_eq!(back["entityType"], json!("action"));
    }

    #[test]
    fn older_layout_without_entity_type_is_recognised_by_shape() {
        let v = entity_from_doc("guest/hello", action_doc()).unwrap();
        assert_eq!(v.value.kind(), EntityKind::Action);
        let pkg = json!({"_id": "guest/p", "_rev": "1-x", "namespace": "guest", "name": "p",
                         "binding": {}, "parameters": []});
        assert_eq!(
            entity_from_doc("guest/p", pkg).unwrap().value.kind(),
            EntityKind::Package
        );
        let trg = json!({"_id": "guest/t", "_rev": "1-x", "namespace": "guest", "name": "t",
                         "parameters": []});
        assert_eq!(
            entity_from_doc("guest/t", trg).unwrap().value.kind(),
            EntityKind::Trigger
        );
        let rule = json!({"_id": "guest/r", "_rev": "1-x", "namespace": "guest", "name": "r",
            "trigger": {"path": "guest", "name": "t"}, "action": {"path": "guest", "name": "a"}});
        assert_eq!(
            entity_from_doc("guest/r", rule).unwrap().value.kind(),
            EntityKind::Rule
        );
    }

    #[test]
    fn foreign_documents_are_clear_errors() {
        let e = |id: &str, d: Value| entity_from_doc(id, d).unwrap_err().to_string();
        let mut d = action_doc();
        d["entityType"] = json!("activation");
        assert!(e("guest/hello", d).contains("entityType 'activation'"));
        let mut d = action_doc();
        d["entityType"] = json!(7);
        assert!(e("guest/hello", d).contains("entityType is a number"));
        assert!(e("x/y", json!({"_rev": "1-a", "foo": 1})).contains("shape"));
        assert!(e("x/y", json!([1])).contains("not a JSON object"));
        assert!(e("x/y", json!({"exec": {}})).contains("no _rev"));
        let mut d = action_doc();
        d["exec"] = json!({"kind": "nodejs:20"});
        assert!(e("guest/hello", d).contains("not a valid action"));
        // Stored under another id than it names.
        assert!(e("guest/other", action_doc()).contains("stored as 'guest/other'"));
        let mut d = action_doc();
        d["exec"]["code"] = json!({"attachmentName": "codefile", "attachmentType": "text/plain"});
        assert!(e("guest/hello", d).contains("CouchDB attachment"));
    }

    #[test]
    fn inlined_mem_attachments_are_decoded() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut d = action_doc();
        d["exec"]["code"] = json!({
            "attachmentName": format!("mem:{}", b64.encode("function main(){return 1}")),
            "attachmentType": "text/plain"
        });
        let v = entity_from_doc("guest/hello", d).unwrap();
        let a = v.value.as_action().unwrap();
        assert_eq!(a.exec.code(), Some("function main(){return 1}"));
        assert!(!a.exec.binary());
        let zip = b64.encode([0x50u8, 0x4b, 3, 4, 0xff]);
        let mut d = action_doc();
        d["exec"]["code"] = json!({
            "attachmentName": format!("mem:{zip}"),
            "attachmentType": "application/octet-stream"
        });
        let v = entity_from_doc("guest/hello", d).unwrap();
        let a = v.value.as_action().unwrap();
        assert_eq!(a.exec.code(), Some(zip.as_str()));
        assert!(a.exec.binary());
    }

    #[test]
    fn activation_docs() {
        let doc = json!({
            "_id": "guest/0123456789abcdef0123456789abcdef", "_rev": "1-x",
            "entityType": "activation", "updated": 9,
            "namespace": "guest", "name": "hello", "subject": "guest",
            "activationId": "0123456789abcdef0123456789abcdef",
            "start": 1, "end": 2, "response": {"statusCode": 0, "result": {}}
        });
        let a = activation_from_doc(doc.clone()).unwrap();
        assert_eq!(a.doc_id(), "guest/0123456789abcdef0123456789abcdef");
        let again = activation_doc(&a, 42);
        assert_eq!(again["updated"], json!(42));
        assert_eq!(again["_id"], doc["_id"]);
        assert_eq!(again["entityType"], json!("activation"));
        let mut stored = activation_doc(&a, 7);
        stored["_rev"] = json!("1-abc");
        assert!(
            same_activation(&stored, &again),
            "write time and revision do not count"
        );
        let mut other = again.clone();
        other["logs"] = json!(["another line"]);
        assert!(!same_activation(&stored, &other));
        let mut wrong = doc.clone();
        wrong["entityType"] = json!("action");
        assert!(
            activation_from_doc(wrong)
                .unwrap_err()
                .to_string()
                .contains("not \"activation\"")
        );
        let mut broken = doc;
        broken["start"] = json!("yesterday");
        assert!(
            activation_from_doc(broken)
                .unwrap_err()
                .to_string()
                .contains("not a valid activation")
        );
    }

    #[test]
    fn subject_documents() {
        let key = faas_core::AuthKey::generate();
        let ns = faas_core::EntityName::new("guest").unwrap();
        let mut s = Subject::single(ns, &key);
        s.blocked = true;
        let mut doc = subject_doc(&s, Some(&Revision("2-x".into())));
        assert_eq!(doc["_id"], "guest");
        assert_eq!(doc["blocked"], true);
        assert_eq!(doc["namespaces"][0]["uuid"], json!(key.uuid));
        let back = subject_from_doc("guest", doc.clone()).unwrap();
        assert_eq!(back.value, s);
        assert_eq!(back.rev.0, "2-x");
        // OpenWhisk's older form, and a document without `subject` or `blocked`.
        let old = json!({"_id": "alice-user", "_rev": "1-a", "uuid": key.uuid, "key": key.key});
        let v = subject_from_doc("alice-user", old).unwrap().value;
        assert_eq!(v.subject, "alice-user");
        assert_eq!(v.namespaces[0].name.as_str(), "alice-user");
        assert!(!v.blocked);
        doc.as_object_mut().unwrap().remove("subject");
        assert_eq!(
            subject_from_doc("guest", doc).unwrap().value.subject,
            "guest"
        );
        assert!(
            subject_from_doc(
                "x/limits",
                json!({"_rev": "1-a", "invocationsPerMinute": 1})
            )
            .is_err()
        );
        assert!(is_limits_id("guest/limits") && !is_limits_id("guest"));
    }

    #[test]
    fn limits_and_revisions() {
        let l = limits_from_doc(json!({"_id": "x/limits", "_rev": "2-a",
            "invocationsPerMinute": 3, "somethingNew": true}))
        .unwrap();
        assert_eq!(l.invocations_per_minute, Some(3));
        assert!(limits_from_doc(json!({"concurrentInvocations": "many"})).is_err());
        assert_eq!(generation("12-abc"), Some(12));
        assert_eq!(generation("junk"), None);
        assert!(same_content(
            &json!({"_id": "a", "_rev": "2-x", "v": 1}),
            &json!({"_id": "a", "_rev": "1-y", "v": 1})
        ));
        assert!(!same_content(&json!({"v": 1}), &json!({"v": 2})));
    }
}
