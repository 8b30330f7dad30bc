//! Entities (actions, packages, triggers, rules) in OpenWhisk's JSON shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::limits::{ActionLimits, ActionLimitsPut, SystemLimits};
use crate::names::{EntityName, EntityPath, FullyQualifiedName};
use crate::params::{Annotations, Parameters, SemVer};
use crate::runtimes::RuntimeManifest;
use crate::{Error, Result};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whether `code` would be treated as base64 (a zip archive) by OpenWhisk (`Exec.isBinaryCode`).
pub fn is_binary_code(code: &str) -> bool {
    let t = code.trim();
    if t.is_empty() || !t.len().is_multiple_of(4) {
        return false;
    }
    let bytes = t.as_bytes();
    let body_end = bytes.len()
        - bytes
            .iter()
            .rev()
            .take(2)
            .take_while(|&&b| b == b'=')
            .count();
    bytes[..body_end]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// What an action runs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Exec {
    /// Source or a base64 zip for a managed runtime kind such as `nodejs:20`.
    Code {
        /// The resolved kind (never `family:default` once stored).
        kind: String,
        /// Source text or base64 zip.
        code: String,
        /// Whether `code` is base64 (computed from the code).
        binary: bool,
        /// The entry point (`main` when unset).
        main: Option<String>,
    },
    /// Any image that speaks the action-proxy protocol.
    Blackbox {
        /// The image reference.
        image: String,
        /// Optional code handed to the image's proxy.
        code: Option<String>,
        /// Whether `code` is base64.
        binary: bool,
        /// The entry point.
        main: Option<String>,
    },
    /// A sequence of other actions (`/ns/[pkg/]name`).
    Sequence {
        /// The components, fully qualified with a leading slash.
        components: Vec<String>,
    },
}

/// The flat wire form shared by all exec variants.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ExecWire {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    main: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    binary: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    components: Option<Vec<Value>>,
}

impl Exec {
    /// The kind string (`nodejs:20`, `blackbox`, `sequence`).
    pub fn kind(&self) -> &str {
        match self {
            Self::Code { kind, .. } => kind,
            Self::Blackbox { .. } => "blackbox",
            Self::Sequence { .. } => "sequence",
        }
    }
    /// The code, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Code { code, .. } => Some(code),
            Self::Blackbox { code, .. } => code.as_deref(),
            Self::Sequence { .. } => None,
        }
    }
    /// Whether the code is base64.
    pub fn binary(&self) -> bool {
        match self {
            Self::Code { binary, .. } | Self::Blackbox { binary, .. } => *binary,
            Self::Sequence { .. } => false,
        }
    }
    /// The entry point, `main` by default.
    pub fn main(&self) -> &str {
        match self {
            Self::Code { main, .. } | Self::Blackbox { main, .. } => {
                main.as_deref().unwrap_or("main")
            }
            Self::Sequence { .. } => "main",
        }
    }
    /// The code size in bytes (what the exec-size limit counts).
    pub fn size_bytes(&self) -> usize {
        match self {
            Self::Sequence { components } => components.iter().map(String::len).sum(),
            other => other.code().map_or(0, str::len),
        }
    }
    /// The list form: `{"binary": b}` only.
    pub fn summary_json(&self) -> Value {
        serde_json::json!({ "binary": self.binary() })
    }
    /// The exec without its code (`GET ...?code=false`).
    pub fn without_code(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.remove("code");
        }
        v
    }

    /// Parses a request's exec, resolving `family:default`, checking the kind against the
    /// manifest, and resolving sequence components against `caller_ns`.
    pub fn from_request(v: Value, manifest: &RuntimeManifest, caller_ns: &str) -> Result<Self> {
        let wire: ExecWire = serde_json::from_value(v)?;
        match wire.kind.as_str() {
            "sequence" => {
                let comps = wire
                    .components
                    .ok_or_else(|| Error::bad_request("exec malformed: missing components"))?;
                let components = comps
                    .into_iter()
                    .map(|c| {
                        let fqn = match c {
                            Value::String(s) => FullyQualifiedName::resolve(&s, caller_ns)?,
                            Value::Object(o) => {
                                let path = o.get("path").and_then(Value::as_str).unwrap_or("_");
                                let name = o.get("name").and_then(Value::as_str).unwrap_or("");
                                FullyQualifiedName::resolve(&format!("/{path}/{name}"), caller_ns)?
                            }
                            _ => return Err(Error::bad_request("exec malformed: bad component")),
                        };
                        Ok(fqn.with_leading_slash())
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Self::Sequence { components })
            }
            "blackbox" if !manifest.supports_blackbox() => Err(manifest.unsupported("blackbox")),
            "blackbox" => {
                let image = wire
                    .image
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| Error::bad_request("exec malformed: blackbox requires image"))?;
                let binary = wire.code.as_deref().is_some_and(is_binary_code);
                Ok(Self::Blackbox {
                    image,
                    code: wire.code,
                    binary,
                    main: wire.main,
                })
            }
            kind => {
                let rt = manifest.resolve(kind)?;
                let code = wire
                    .code
                    .ok_or_else(|| Error::bad_request("exec malformed: code is required"))?;
                if rt.require_main && wire.main.is_none() {
                    return Err(Error::bad_request(format!(
                        "exec malformed: the '{}' runtime requires 'main'",
                        rt.kind
                    )));
                }
                let binary = is_binary_code(&code);
                Ok(Self::Code {
                    kind: rt.kind.clone(),
                    code,
                    binary,
                    main: wire.main,
                })
            }
        }
    }
}

impl Serialize for Exec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let wire = match self {
            Self::Code {
                kind,
                code,
                binary,
                main,
            } => ExecWire {
                kind: kind.clone(),
                code: Some(code.clone()),
                main: main.clone(),
                binary: Some(*binary),
                ..Default::default()
            },
            Self::Blackbox {
                image,
                code,
                binary,
                main,
            } => ExecWire {
                kind: "blackbox".into(),
                image: Some(image.clone()),
                code: code.clone(),
                main: main.clone(),
                binary: Some(*binary),
                ..Default::default()
            },
            Self::Sequence { components } => ExecWire {
                kind: "sequence".into(),
                components: Some(
                    components
                        .iter()
                        .map(|c| Value::String(c.clone()))
                        .collect(),
                ),
                ..Default::default()
            },
        };
        wire.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Exec {
    /// Reads the stored form (kinds already resolved); no manifest check.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let w = ExecWire::deserialize(d)?;
        Ok(match w.kind.as_str() {
            "sequence" => Self::Sequence {
                components: w
                    .components
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
            },
            "blackbox" => Self::Blackbox {
                image: w.image.ok_or_else(|| D::Error::missing_field("image"))?,
                binary: w.binary.unwrap_or(false),
                code: w.code,
                main: w.main,
            },
            _ => {
                let code = w.code.ok_or_else(|| D::Error::missing_field("code"))?;
                Self::Code {
                    binary: w.binary.unwrap_or_else(|| is_binary_code(&code)),
                    kind: w.kind,
                    code,
                    main: w.main,
                }
            }
        })
    }
}

fn default_true_false() -> bool {
    false
}

/// An action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// `ns` or `ns/pkg`.
    pub namespace: EntityPath,
    /// The action's name.
    pub name: EntityName,
    /// Bumped on every update.
    #[serde(default)]
    pub version: SemVer,
    /// Whether other namespaces may see it.
    #[serde(default = "default_true_false")]
    pub publish: bool,
    /// What it runs.
    pub exec: Exec,
    /// Default parameters.
    #[serde(default)]
    pub parameters: Parameters,
    /// Limits.
    pub limits: ActionLimits,
    /// Annotations.
    #[serde(default)]
    pub annotations: Annotations,
    /// Last change, epoch ms.
    #[serde(default)]
    pub updated: u64,
}

impl Action {
    /// The fully qualified name.
    pub fn fqn(&self) -> FullyQualifiedName {
        FullyQualifiedName::new(self.namespace.clone(), self.name.clone())
    }
    /// The list form (no code): `{namespace,name,version,publish,annotations,limits,exec:{binary},updated}`.
    pub fn summary_json(&self) -> Value {
        serde_json::json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "limits": self.limits,
            "exec": self.exec.summary_json(),
            "updated": self.updated,
        })
    }
}

/// The body of `PUT /actions/...` (`WhiskActionPut`). Unknown fields are ignored as OpenWhisk does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionPut {
    /// Raw exec, validated by [`Exec::from_request`].
    pub exec: Option<Value>,
    /// Replaces the parameters when given.
    pub parameters: Option<Parameters>,
    /// Merged field by field.
    pub limits: Option<ActionLimitsPut>,
    /// Explicit version.
    pub version: Option<SemVer>,
    /// Publish flag.
    pub publish: Option<bool>,
    /// Merged into the old annotations.
    pub annotations: Option<Parameters>,
    /// Annotation keys to remove.
    pub del_annotations: Option<Vec<String>>,
}

impl ActionPut {
    /// Builds the action to store: a new one when `old` is `None`, else an update of `old`.
    /// Validates kind, limits and sizes with OpenWhisk's messages.
    pub fn into_action(
        self,
        fqn: &FullyQualifiedName,
        old: Option<&Action>,
        sys: &SystemLimits,
        manifest: &RuntimeManifest,
    ) -> Result<Action> {
        let caller_ns = fqn.path.root().to_string();
        let exec = match (self.exec, old) {
            (Some(v), _) => Exec::from_request(v, manifest, &caller_ns)?,
            (None, Some(o)) => o.exec.clone(),
            (None, None) => return Err(Error::bad_request("exec undefined")),
        };
        if let Exec::Code { kind, .. } = &exec
            && manifest.resolve(kind)?.deprecated
        {
            return Err(Error::bad_request(format!(
                "The '{kind}' runtime is no longer supported. You may read and delete but not update or invoke this action."
            )));
        }
        let exec_size = exec.size_bytes() as u64;
        if exec_size > sys.max_exec_bytes {
            return Err(Error::too_large(format!(
                "exec larger than allowed: {exec_size} > {} bytes.",
                sys.max_exec_bytes
            )));
        }
        let base_limits = old.map_or_else(|| ActionLimits::defaults(sys), |o| o.limits);
        let limits = self.limits.map_or(base_limits, |l| l.apply(base_limits));
        limits.validate(sys)?;
        let mut parameters = match (self.parameters, old) {
            (Some(p), _) => p,
            (None, Some(o)) => o.parameters.clone(),
            (None, None) => Parameters::new(),
        };
        if let Exec::Sequence { components } = &exec {
            // Sequences carry only the system parameter `_actions`.
            parameters = Parameters::new().with("_actions", serde_json::json!(components));
        }
        let psize = parameters.size_bytes() as u64;
        if psize > sys.max_parameter_bytes {
            return Err(Error::too_large(format!(
                "parameters larger than allowed: {psize} > {} bytes.",
                sys.max_parameter_bytes
            )));
        }
        let mut annotations = match (self.annotations, old) {
            (Some(a), Some(o)) => o.annotations.merged(&a),
            (Some(a), None) => a,
            (None, Some(o)) => o.annotations.clone(),
            (None, None) => Parameters::new(),
        };
        for k in self.del_annotations.iter().flatten() {
            annotations.remove(k);
        }
        let asize = annotations.size_bytes() as u64;
        if asize > sys.max_parameter_bytes {
            return Err(Error::too_large(format!(
                "annotations larger than allowed: {asize} > {} bytes.",
                sys.max_parameter_bytes
            )));
        }
        annotations.set("exec", Value::String(exec.kind().to_string()));
        if old.is_none() && annotations.get("provide-api-key").is_none() {
            annotations.set("provide-api-key", Value::Bool(false));
        }
        let version = match (self.version, old) {
            (Some(v), _) => v,
            (None, Some(o)) => o.version.up_patch(),
            (None, None) => SemVer::default(),
        };
        Ok(Action {
            namespace: fqn.path.clone(),
            name: fqn.name.clone(),
            version,
            publish: self.publish.or(old.map(|o| o.publish)).unwrap_or(false),
            exec,
            parameters,
            limits,
            annotations,
            updated: now_ms(),
        })
    }
}

/// A package binding target `{namespace, name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The bound package's namespace.
    pub namespace: EntityName,
    /// The bound package's name.
    pub name: EntityName,
}

fn ser_binding<S: Serializer>(b: &Option<Binding>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match b {
        Some(b) => b.serialize(s),
        None => serde_json::Map::new().serialize(s),
    }
}

fn de_binding<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Binding>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
        Some(Value::Object(o)) if o.is_empty() => Ok(None),
        Some(other) => serde_json::from_value(other)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// A package, or a binding to another package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    /// The owning namespace.
    pub namespace: EntityPath,
    /// The package's name.
    pub name: EntityName,
    /// Version.
    #[serde(default)]
    pub version: SemVer,
    /// Whether other namespaces may see it.
    #[serde(default)]
    pub publish: bool,
    /// `{}` for a real package.
    #[serde(
        default,
        serialize_with = "ser_binding",
        deserialize_with = "de_binding"
    )]
    pub binding: Option<Binding>,
    /// Parameters for every action inside.
    #[serde(default)]
    pub parameters: Parameters,
    /// Annotations.
    #[serde(default)]
    pub annotations: Annotations,
    /// Last change, epoch ms.
    #[serde(default)]
    pub updated: u64,
}

impl Package {
    /// The fully qualified name.
    pub fn fqn(&self) -> FullyQualifiedName {
        FullyQualifiedName::new(self.namespace.clone(), self.name.clone())
    }
    /// The list form: `{namespace, name, version, publish, annotations, updated, binding}`
    /// with `binding` `false` for a package (OpenWhisk's `summaryAsJson`).
    pub fn summary_json(&self) -> Value {
        serde_json::json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "updated": self.updated,
            "binding": match &self.binding {
                Some(b) => serde_json::to_value(b).unwrap_or(Value::Bool(false)),
                None => Value::Bool(false),
            },
        })
    }
}

/// The body of `PUT /packages/...` (`WhiskPackagePut`). Unknown fields are ignored as
/// OpenWhisk does.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PackagePut {
    /// `{namespace, name}` of the package to bind (`_` = the caller's namespace); `{}` or
    /// absent for a package.
    #[serde(default, deserialize_with = "de_binding_put")]
    pub binding: Option<BindingPut>,
    /// Replaces the parameters when given.
    pub parameters: Option<Parameters>,
    /// Explicit version.
    pub version: Option<SemVer>,
    /// Publish flag.
    pub publish: Option<bool>,
    /// Replaces the annotations when given (the `binding` annotation is always the
    /// controller's).
    pub annotations: Option<Parameters>,
}

/// A binding target as a request writes it: its namespace may be `_`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BindingPut {
    /// The bound package's namespace, or `_`.
    pub namespace: EntityName,
    /// The bound package's name.
    pub name: EntityName,
}

fn de_binding_put<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<BindingPut>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) if o.is_empty() => Ok(None),
        Some(other) => serde_json::from_value(other)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl PackagePut {
    /// The binding target with `_` resolved to `caller_ns`.
    pub fn binding_target(&self, caller_ns: &EntityName) -> Option<Binding> {
        self.binding.as_ref().map(|b| Binding {
            namespace: if b.namespace.as_str() == crate::names::DEFAULT_NAMESPACE {
                caller_ns.clone()
            } else {
                b.namespace.clone()
            },
            name: b.name.clone(),
        })
    }

    /// Builds the package to store: a new one when `old` is `None`, else an update of `old`
    /// (OpenWhisk's `Packages.create`/`update`). `binding` is the resolved target, checked by
    /// the caller (which also refuses to turn a package into a binding). Validates sizes with
    /// OpenWhisk's messages.
    pub fn into_package(
        self,
        fqn: &FullyQualifiedName,
        binding: Option<Binding>,
        old: Option<&Package>,
        sys: &SystemLimits,
    ) -> Result<Package> {
        let binding = binding.or_else(|| old.and_then(|o| o.binding.clone()));
        let parameters = match (self.parameters, old) {
            (Some(p), _) => p,
            (None, Some(o)) => o.parameters.clone(),
            (None, None) => Parameters::new(),
        };
        let psize = parameters.size_bytes() as u64;
        if psize > sys.max_parameter_bytes {
            return Err(Error::too_large(format!(
                "parameters larger than allowed: {psize} > {} bytes.",
                sys.max_parameter_bytes
            )));
        }
        let mut annotations = match (self.annotations, old) {
            (Some(a), _) => a,
            (None, Some(o)) => o.annotations.clone(),
            (None, None) => Parameters::new(),
        };
        annotations.remove("binding");
        if let Some(b) = &binding {
            annotations.set("binding", serde_json::to_value(b).unwrap_or(Value::Null));
        }
        let asize = annotations.size_bytes() as u64;
        if asize > sys.max_parameter_bytes {
            return Err(Error::too_large(format!(
                "annotations larger than allowed: {asize} > {} bytes.",
                sys.max_parameter_bytes
            )));
        }
        let version = match (self.version, old) {
            (Some(v), _) => v,
            (None, Some(o)) => o.version.up_patch(),
            (None, None) => SemVer::default(),
        };
        Ok(Package {
            namespace: fqn.path.clone(),
            name: fqn.name.clone(),
            version,
            publish: self.publish.or(old.map(|o| o.publish)).unwrap_or(false),
            binding,
            parameters,
            annotations,
            updated: now_ms(),
        })
    }
}

/// A reference `{path, name}` used by rules (OpenWhisk's `FullyQualifiedEntityName` in its
/// object form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntityRef {
    /// The namespace path.
    pub path: EntityPath,
    /// The name.
    pub name: EntityName,
}

impl EntityRef {
    /// The reference to `fqn`.
    pub fn of(fqn: &FullyQualifiedName) -> Self {
        Self {
            path: fqn.path.clone(),
            name: fqn.name.clone(),
        }
    }
    /// The fully qualified name it refers to.
    pub fn fqn(&self) -> FullyQualifiedName {
        FullyQualifiedName::new(self.path.clone(), self.name.clone())
    }
    /// Reads a reference as a request writes it: a name (`/ns/name`, `/ns/pkg/name`, `pkg/name`,
    /// `name`) or an object `{path, name}`; `_` is `caller_ns`.
    ///
    /// # Errors
    ///
    /// `BadRequest` for anything else, or names OpenWhisk refuses.
    pub fn from_request(v: &Value, caller_ns: &str) -> Result<Self> {
        let fqn = match v {
            Value::String(s) => FullyQualifiedName::resolve(s, caller_ns)?,
            Value::Object(o) => {
                let path = o.get("path").and_then(Value::as_str).ok_or_else(|| {
                    Error::bad_request("The request content was malformed:\nmissing path")
                })?;
                let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                    Error::bad_request("The request content was malformed:\nmissing name")
                })?;
                FullyQualifiedName::resolve(&format!("/{path}/{name}"), caller_ns)?
            }
            _ => {
                return Err(Error::bad_request(
                    "The request content was malformed:\nexpected a fully qualified name",
                ));
            }
        };
        Ok(Self::of(&fqn))
    }
}

impl std::fmt::Display for EntityRef {
    /// `path/name`, as OpenWhisk's `asString`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.path, self.name)
    }
}

/// A rule's status as a trigger records it.
pub mod rule_status {
    /// The rule fires its action.
    pub const ACTIVE: &str = "active";
    /// The rule is kept but does not fire.
    pub const INACTIVE: &str = "inactive";
}

/// A trigger's view of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducedRule {
    /// The rule's action.
    pub action: EntityRef,
    /// `active` or `inactive`.
    pub status: String,
}

impl ReducedRule {
    /// Whether the rule fires.
    pub fn is_active(&self) -> bool {
        self.status == rule_status::ACTIVE
    }
}

/// A trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// The owning namespace.
    pub namespace: EntityPath,
    /// The trigger's name.
    pub name: EntityName,
    /// Version.
    #[serde(default)]
    pub version: SemVer,
    /// Publish flag.
    #[serde(default)]
    pub publish: bool,
    /// Parameters.
    #[serde(default)]
    pub parameters: Parameters,
    /// Always `{}`.
    #[serde(default)]
    pub limits: serde_json::Map<String, Value>,
    /// Annotations.
    #[serde(default)]
    pub annotations: Annotations,
    /// Rules keyed by rule document id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<BTreeMap<String, ReducedRule>>,
    /// Last change, epoch ms.
    #[serde(default)]
    pub updated: u64,
}

/// The annotation naming a trigger's feed action.
pub const FEED_ANNOTATION: &str = "feed";

impl Trigger {
    /// The fully qualified name.
    pub fn fqn(&self) -> FullyQualifiedName {
        FullyQualifiedName::new(self.namespace.clone(), self.name.clone())
    }
    /// The list form: `{namespace, name, version, publish, annotations, updated}`.
    pub fn summary_json(&self) -> Value {
        serde_json::json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "updated": self.updated,
        })
    }
    /// The status of rule `rule_id` (`ns/name`) as this trigger records it: `inactive` when
    /// it is not linked (OpenWhisk's `getStatus`).
    pub fn rule_status(&self, rule_id: &str) -> &str {
        self.rules
            .as_ref()
            .and_then(|r| r.get(rule_id))
            .map_or(rule_status::INACTIVE, |r| r.status.as_str())
    }
    /// Links rule `rule_id` (replacing an older link of that rule).
    pub fn add_rule(&mut self, rule_id: impl Into<String>, rule: ReducedRule) {
        self.rules
            .get_or_insert_with(BTreeMap::new)
            .insert(rule_id.into(), rule);
    }
    /// Unlinks rule `rule_id`; whether it was linked.
    pub fn remove_rule(&mut self, rule_id: &str) -> bool {
        self.rules
            .as_mut()
            .is_some_and(|r| r.remove(rule_id).is_some())
    }
    /// Whether at least one linked rule is active.
    pub fn has_active_rule(&self) -> bool {
        self.rules
            .as_ref()
            .is_some_and(|r| r.values().any(ReducedRule::is_active))
    }
    /// The feed action named by the `feed` annotation, if it is a string.
    pub fn feed(&self) -> Option<&str> {
        self.annotations
            .get(FEED_ANNOTATION)
            .and_then(Value::as_str)
    }
}

/// The body of `PUT /triggers/...` (`WhiskTriggerPut`). Unknown fields are ignored as
/// OpenWhisk does.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TriggerPut {
    /// Replaces the parameters when given.
    pub parameters: Option<Parameters>,
    /// OpenWhisk's `TriggerLimits` has no fields: accepted and stored as `{}`.
    pub limits: Option<Value>,
    /// Explicit version.
    pub version: Option<SemVer>,
    /// Publish flag.
    pub publish: Option<bool>,
    /// Replaces the annotations when given.
    pub annotations: Option<Parameters>,
}

impl TriggerPut {
    /// Builds the trigger to store: a new one when `old` is `None`, else an update of `old`
    /// (which keeps its rules), as OpenWhisk's `Triggers.create`/`update`. A `feed`
    /// annotation must name an entity (`Feed name is not valid`); sizes are checked with
    /// OpenWhisk's messages.
    pub fn into_trigger(
        self,
        fqn: &FullyQualifiedName,
        old: Option<&Trigger>,
        sys: &SystemLimits,
    ) -> Result<Trigger> {
        if let Some(Value::Object(_)) | None = &self.limits {
        } else {
            return Err(Error::bad_request(
                "The request content was malformed:\nlimits must be an object",
            ));
        }
        let parameters = match (self.parameters, old) {
            (Some(p), _) => p,
            (None, Some(o)) => o.parameters.clone(),
            (None, None) => Parameters::new(),
        };
        let psize = parameters.size_bytes() as u64;
        if psize > sys.max_parameter_bytes {
            return Err(Error::too_large(format!(
                "parameters larger than allowed: {psize} > {} bytes.",
                sys.max_parameter_bytes
            )));
        }
        let annotations = match (self.annotations, old) {
            (Some(a), _) => a,
            (None, Some(o)) => o.annotations.clone(),
            (None, None) => Parameters::new(),
        };
        let asize = annotations.size_bytes() as u64;
        if asize > sys.max_parameter_bytes {
            return Err(Error::too_large(format!(
                "annotations larger than allowed: {asize} > {} bytes.",
                sys.max_parameter_bytes
            )));
        }
        if old.is_none() {
            // OpenWhisk validates the feed name of new triggers (`validateTriggerFeed`).
            match annotations.get(FEED_ANNOTATION) {
                None => {}
                Some(Value::String(f))
                    if FullyQualifiedName::resolve(f, fqn.path.root()).is_ok() => {}
                Some(_) => return Err(Error::bad_request("Feed name is not valid")),
            }
        }
        let version = match (self.version, old) {
            (Some(v), _) => v,
            (None, Some(o)) => o.version.up_patch(),
            (None, None) => SemVer::default(),
        };
        Ok(Trigger {
            namespace: fqn.path.clone(),
            name: fqn.name.clone(),
            version,
            publish: self.publish.or(old.map(|o| o.publish)).unwrap_or(false),
            parameters,
            limits: serde_json::Map::new(),
            annotations,
            rules: old.and_then(|o| o.rules.clone()),
            updated: now_ms(),
        })
    }
}

/// A rule linking a trigger to an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// The owning namespace.
    pub namespace: EntityPath,
    /// The rule's name.
    pub name: EntityName,
    /// Version.
    #[serde(default)]
    pub version: SemVer,
    /// Publish flag.
    #[serde(default)]
    pub publish: bool,
    /// Annotations.
    #[serde(default)]
    pub annotations: Annotations,
    /// The trigger.
    pub trigger: EntityRef,
    /// The action.
    pub action: EntityRef,
    /// Last change, epoch ms.
    #[serde(default)]
    pub updated: u64,
}

impl Rule {
    /// The fully qualified name.
    pub fn fqn(&self) -> FullyQualifiedName {
        FullyQualifiedName::new(self.namespace.clone(), self.name.clone())
    }
    /// The API form with the status the trigger records (`WhiskRuleResponse`):
    /// `{namespace, name, status, trigger, action, version, publish, annotations, updated}`.
    pub fn with_status(&self, status: &str) -> Value {
        serde_json::json!({
            "namespace": self.namespace,
            "name": self.name,
            "status": status,
            "trigger": self.trigger,
            "action": self.action,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "updated": self.updated,
        })
    }
}

/// The body of `PUT /rules/...` (`WhiskRulePut`): references as names (`/ns/name`) or
/// `{path, name}` objects. Unknown fields are ignored as OpenWhisk does.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RulePut {
    /// The trigger.
    pub trigger: Option<Value>,
    /// The action.
    pub action: Option<Value>,
    /// Explicit version.
    pub version: Option<SemVer>,
    /// Publish flag.
    pub publish: Option<bool>,
    /// Replaces the annotations when given.
    pub annotations: Option<Parameters>,
}

impl RulePut {
    /// The trigger and action references with `_` resolved to `caller_ns` (`resolve`).
    ///
    /// # Errors
    ///
    /// `BadRequest` for malformed references.
    pub fn references(&self, caller_ns: &str) -> Result<(Option<EntityRef>, Option<EntityRef>)> {
        let t = self
            .trigger
            .as_ref()
            .map(|v| EntityRef::from_request(v, caller_ns))
            .transpose()?;
        let a = self
            .action
            .as_ref()
            .map(|v| EntityRef::from_request(v, caller_ns))
            .transpose()?;
        Ok((t, a))
    }

    /// Builds the rule to store: a new one when `old` is `None` (both references required:
    /// `rule requires a valid trigger and a valid action`), else an update of `old`.
    pub fn into_rule(
        self,
        fqn: &FullyQualifiedName,
        trigger: Option<EntityRef>,
        action: Option<EntityRef>,
        old: Option<&Rule>,
        sys: &SystemLimits,
    ) -> Result<Rule> {
        let (trigger, action) = match (trigger, action, old) {
            (t, a, Some(o)) => (
                t.unwrap_or_else(|| o.trigger.clone()),
                a.unwrap_or_else(|| o.action.clone()),
            ),
            (Some(t), Some(a), None) => (t, a),
            _ => {
                return Err(Error::bad_request(
                    "rule requires a valid trigger and a valid action",
                ));
            }
        };
        let annotations = match (self.annotations, old) {
            (Some(a), _) => a,
            (None, Some(o)) => o.annotations.clone(),
            (None, None) => Parameters::new(),
        };
        let asize = annotations.size_bytes() as u64;
        if asize > sys.max_parameter_bytes {
            return Err(Error::too_large(format!(
                "annotations larger than allowed: {asize} > {} bytes.",
                sys.max_parameter_bytes
            )));
        }
        let version = match (self.version, old) {
            (Some(v), _) => v,
            (None, Some(o)) => o.version.up_patch(),
            (None, None) => SemVer::default(),
        };
        Ok(Rule {
            namespace: fqn.path.clone(),
            name: fqn.name.clone(),
            version,
            publish: self.publish.or(old.map(|o| o.publish)).unwrap_or(false),
            annotations,
            trigger,
            action,
            updated: now_ms(),
        })
    }
}

/// The kind of an entity; also the REST collection it lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    /// `/actions`.
    Action,
    /// `/packages`.
    Package,
    /// `/triggers`.
    Trigger,
    /// `/rules`.
    Rule,
}

impl EntityKind {
    /// The collection name used in URLs and `count` bodies (`actions`, ...).
    pub fn collection(self) -> &'static str {
        match self {
            Self::Action => "actions",
            Self::Package => "packages",
            Self::Trigger => "triggers",
            Self::Rule => "rules",
        }
    }
}

/// Any stored entity; the stored JSON carries `entityType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entityType", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Entity {
    /// An action.
    Action(Action),
    /// A package.
    Package(Package),
    /// A trigger.
    Trigger(Trigger),
    /// A rule.
    Rule(Rule),
}

impl Entity {
    /// Which collection this entity is in.
    pub fn kind(&self) -> EntityKind {
        match self {
            Self::Action(_) => EntityKind::Action,
            Self::Package(_) => EntityKind::Package,
            Self::Trigger(_) => EntityKind::Trigger,
            Self::Rule(_) => EntityKind::Rule,
        }
    }
    /// The namespace path.
    pub fn namespace(&self) -> &EntityPath {
        match self {
            Self::Action(a) => &a.namespace,
            Self::Package(p) => &p.namespace,
            Self::Trigger(t) => &t.namespace,
            Self::Rule(r) => &r.namespace,
        }
    }
    /// The name.
    pub fn name(&self) -> &EntityName {
        match self {
            Self::Action(a) => &a.name,
            Self::Package(p) => &p.name,
            Self::Trigger(t) => &t.name,
            Self::Rule(r) => &r.name,
        }
    }
    /// Last change, epoch ms (lists are ordered by it, newest first).
    pub fn updated(&self) -> u64 {
        match self {
            Self::Action(a) => a.updated,
            Self::Package(p) => p.updated,
            Self::Trigger(t) => t.updated,
            Self::Rule(r) => r.updated,
        }
    }
    /// The document id, `path/name`.
    pub fn doc_id(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }
    /// The API JSON (no `entityType`).
    pub fn to_api_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.remove("entityType");
        }
        v
    }
    /// The action, if this is one.
    pub fn as_action(&self) -> Option<&Action> {
        match self {
            Self::Action(a) => Some(a),
            _ => None,
        }
    }
    /// The trigger, if this is one.
    pub fn as_trigger(&self) -> Option<&Trigger> {
        match self {
            Self::Trigger(t) => Some(t),
            _ => None,
        }
    }
    /// The rule, if this is one.
    pub fn as_rule(&self) -> Option<&Rule> {
        match self {
            Self::Rule(r) => Some(r),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fqn(s: &str) -> FullyQualifiedName {
        FullyQualifiedName::resolve(s, "guest").unwrap()
    }

    #[test]
    fn binary_detection() {
        assert!(!is_binary_code("function main(a){return a}"));
        assert!(is_binary_code("UEsDBAoAAAAAAA=="));
        assert!(!is_binary_code("abc"));
        assert!(!is_binary_code(""));
    }

    #[test]
    fn create_and_update_action() {
        let m = RuntimeManifest::default_local();
        let sys = SystemLimits::default();
        let put: ActionPut = serde_json::from_value(json!({
            "exec": {"kind": "nodejs:default", "code": "function main(a){return a}"},
            "parameters": [{"key": "p", "value": 1}],
            "annotations": [{"key": "a", "value": 1}]
        }))
        .unwrap();
        let a = put.into_action(&fqn("hello"), None, &sys, &m).unwrap();
        assert_eq!(a.exec.kind(), m.default_kind("nodejs").unwrap());
        assert_eq!(a.version.to_string(), "0.0.1");
        assert_eq!(a.annotations.get("provide-api-key"), Some(&json!(false)));
        assert_eq!(a.limits.memory, 256);
        let js = serde_json::to_value(&a).unwrap();
        assert_eq!(js["exec"]["binary"], json!(false));
        assert_eq!(js["limits"]["timeout"], json!(60000));
        let up: ActionPut = serde_json::from_value(json!({
            "limits": {"memory": 128},
            "annotations": [{"key": "b", "value": 2}],
            "delAnnotations": ["a"]
        }))
        .unwrap();
        let b = up.into_action(&fqn("hello"), Some(&a), &sys, &m).unwrap();
        assert_eq!(b.version.to_string(), "0.0.2");
        assert_eq!(b.limits.memory, 128);
        assert_eq!(b.limits.timeout, 60000);
        assert!(b.annotations.get("a").is_none());
        assert_eq!(b.annotations.get("b"), Some(&json!(2)));
        assert_eq!(b.parameters.get("p"), Some(&json!(1)));
        let e = Entity::Action(b);
        let back: Entity = serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn bad_requests() {
        let m = RuntimeManifest::default_local();
        let sys = SystemLimits::default();
        let go = |v: Value| {
            let put: ActionPut = serde_json::from_value(v)?;
            put.into_action(&fqn("x"), None, &sys, &m)
        };
        assert_eq!(go(json!({})).unwrap_err().to_string(), "exec undefined");
        let e = go(json!({"exec": {"kind": "cobol:9", "code": "x"}})).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("The specified runtime 'cobol:9' is not supported")
        );
        let e = go(
            json!({"exec": {"kind": "nodejs:default", "code": "x"}, "limits": {"memory": 1024}}),
        )
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(go(json!({"exec": 5})).is_err());
        let big = "x".repeat(1024 * 1024 + 1);
        let e = go(json!({"exec": {"kind": "nodejs:default", "code": "x"}, "parameters": [{"key": "k", "value": big}]}))
            .unwrap_err();
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn sequence_components_resolved() {
        let m = RuntimeManifest::default_local();
        let e = Exec::from_request(
            json!({"kind": "sequence", "components": ["a", "/_/b", {"path": "other", "name": "c"}]}),
            &m,
            "guest",
        )
        .unwrap();
        assert_eq!(
            e,
            Exec::Sequence {
                components: vec!["/guest/a".into(), "/guest/b".into(), "/other/c".into()]
            }
        );
    }

    #[test]
    fn package_binding_shape() {
        let p: Package = serde_json::from_value(json!({
            "namespace": "guest", "name": "p", "binding": {}
        }))
        .unwrap();
        assert!(p.binding.is_none());
        assert_eq!(serde_json::to_value(&p).unwrap()["binding"], json!({}));
    }
}
