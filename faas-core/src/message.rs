//! Bus messages in OpenWhisk's JSON shapes: activation requests, acknowledgements, pings.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::activation::{Activation, ActivationId};
use crate::entity::now_ms;
use crate::identity::Identity;
use crate::names::{EntityName, EntityPath, FullyQualifiedName};
use crate::params::SemVer;
use crate::runtimes::RuntimeManifest;

/// The topic an invoker consumes: `invoker<N>`.
pub fn invoker_topic(invoker: u32) -> String {
    format!("invoker{invoker}")
}
/// The topic a controller consumes acknowledgements from: `completed<C>`.
pub fn completed_topic(controller: &str) -> String {
    format!("completed{controller}")
}
/// The topic invokers ping on.
pub const HEALTH_TOPIC: &str = "health";
/// The topic controllers publish cache invalidations on.
pub const CACHE_INVALIDATION_TOPIC: &str = "cacheInvalidation";

/// A transaction id: `[id, startEpochMs]` on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionId {
    /// The id (the request's `X-Request-ID`).
    pub id: String,
    /// When the transaction started, epoch ms.
    pub start: u64,
}

impl TransactionId {
    /// A transaction starting now.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            start: now_ms(),
        }
    }
}

impl Serialize for TransactionId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        (&self.id, self.start).serialize(s)
    }
}

impl<'de> Deserialize<'de> for TransactionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Vec::<Value>::deserialize(d)?;
        let id = v
            .first()
            .and_then(Value::as_str)
            .ok_or_else(|| serde::de::Error::custom("transid needs an id"))?;
        let start = v.get(1).and_then(Value::as_u64).unwrap_or(0);
        Ok(Self {
            id: id.to_string(),
            start,
        })
    }
}

/// A controller's id: `{"asString": "0", "instanceType": "controller"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControllerInstanceId {
    /// The id text.
    pub as_string: String,
    /// Always `controller`.
    #[serde(default = "controller_type")]
    pub instance_type: String,
}

fn controller_type() -> String {
    "controller".into()
}

impl ControllerInstanceId {
    /// Controller `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            as_string: id.into(),
            instance_type: controller_type(),
        }
    }
}

fn ser_mb<S: Serializer>(mb: &u64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{mb} MB"))
}

fn de_mb<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|b| b / (1024 * 1024))
            .ok_or_else(|| serde::de::Error::custom("bad size")),
        Value::String(s) => {
            let t = s.trim();
            let (num, mult) = if let Some(n) = t.strip_suffix("MB") {
                (n, 1.0)
            } else if let Some(n) = t.strip_suffix("GB") {
                (n, 1024.0)
            } else if let Some(n) = t.strip_suffix("KB") {
                (n, 1.0 / 1024.0)
            } else if let Some(n) = t.strip_suffix('B') {
                (n, 1.0 / (1024.0 * 1024.0))
            } else {
                (t, 1.0)
            };
            num.trim()
                .parse::<f64>()
                .map(|f| (f * mult) as u64)
                .map_err(serde::de::Error::custom)
        }
        _ => Err(serde::de::Error::custom("bad size")),
    }
}

/// An invoker's id: `{"instance": 0, "userMemory": "2048 MB", "instanceType": "invoker", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokerInstanceId {
    /// The invoker number (its topic is `invoker<instance>`).
    pub instance: u32,
    /// Memory for actions, MB.
    #[serde(serialize_with = "ser_mb", deserialize_with = "de_mb")]
    pub user_memory: u64,
    /// Always `invoker`.
    #[serde(default = "invoker_type")]
    pub instance_type: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Namespaces this invoker is dedicated to.
    #[serde(default)]
    pub dedicated_namespaces: Vec<String>,
    /// A unique name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_name: Option<String>,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub displayed_name: Option<String>,
}

fn invoker_type() -> String {
    "invoker".into()
}

impl InvokerInstanceId {
    /// Invoker `instance` with `user_memory_mb`.
    pub fn new(instance: u32, user_memory_mb: u64) -> Self {
        Self {
            instance,
            user_memory: user_memory_mb,
            instance_type: invoker_type(),
            tags: Vec::new(),
            dedicated_namespaces: Vec::new(),
            unique_name: None,
            displayed_name: None,
        }
    }
    /// `invoker<N>`, the name used by `GET /invokers`.
    pub fn name(&self) -> String {
        invoker_topic(self.instance)
    }
}

/// The action reference inside an [`ActivationMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRef {
    /// `ns` or `ns/pkg`.
    pub path: EntityPath,
    /// The action name.
    pub name: EntityName,
    /// The action version.
    #[serde(default)]
    pub version: SemVer,
    /// The binding it was invoked through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<EntityPath>,
}

impl ActionRef {
    /// The fully qualified name.
    pub fn fqn(&self) -> FullyQualifiedName {
        FullyQualifiedName::new(self.path.clone(), self.name.clone())
    }
}

/// A request to run an action, published on `invoker<N>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationMessage {
    /// The transaction.
    pub transid: TransactionId,
    /// The action.
    pub action: ActionRef,
    /// The store revision of the action document, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The invoking identity.
    pub user: Identity,
    /// The activation id.
    pub activation_id: ActivationId,
    /// The controller waiting for the acknowledgement.
    pub root_controller_index: ControllerInstanceId,
    /// Whether a caller is waiting.
    pub blocking: bool,
    /// The merged arguments (object, array or absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// Parameters passed at `/init`.
    #[serde(default)]
    pub init_args: Vec<String>,
    /// Encrypted parameters and their schemes.
    #[serde(default)]
    pub locked_args: serde_json::Map<String, Value>,
    /// The parent activation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<ActivationId>,
    /// Tracing context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<Value>,
}

/// An activation or just its id (a "shrunk" acknowledgement).
///
/// On the wire: the activation object, or the id string. Decoding looks at the JSON type
/// instead of trying each variant (serde's `untagged` would buffer the whole activation first).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ActivationOrId {
    /// The whole record.
    Activation(Box<Activation>),
    /// Only the id; the receiver reads the record from the store.
    Id(ActivationId),
}

impl ActivationOrId {
    /// The activation id.
    pub fn id(&self) -> &ActivationId {
        match self {
            Self::Activation(a) => &a.activation_id,
            Self::Id(id) => id,
        }
    }
}

/// Acknowledgements an invoker sends on `completed<C>`; the kind is told by the fields present:
/// `response` with `instance` is `Combined`, `activationId` with `instance` is `Completion`,
/// `response` alone is `Result`. Decoding reads the fields once into one struct and picks the
/// variant from what is there (this is on the controller's hot path).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Acknowledgement {
    /// Frees the slot and carries the result.
    Combined {
        /// The transaction.
        transid: TransactionId,
        /// The activation (or its id when shrunk).
        response: ActivationOrId,
        /// Whether the platform failed.
        #[serde(rename = "isSystemError")]
        is_system_error: bool,
        /// The invoker.
        instance: InvokerInstanceId,
    },
    /// Frees the slot only.
    Completion {
        /// The transaction.
        transid: TransactionId,
        /// The activation id.
        #[serde(rename = "activationId")]
        activation_id: ActivationId,
        /// Whether the platform failed.
        #[serde(rename = "isSystemError")]
        is_system_error: bool,
        /// The invoker.
        instance: InvokerInstanceId,
    },
    /// Carries the result only.
    Result {
        /// The transaction.
        transid: TransactionId,
        /// The activation (or its id when shrunk).
        response: ActivationOrId,
    },
}

/// The wire form of an [`Acknowledgement`], serialized from borrowed data: an invoker
/// publishes one without cloning the activation record into a message. It writes exactly the
/// JSON of the [`Acknowledgement`] variant of the same name.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum AcknowledgementRef<'a> {
    /// See [`Acknowledgement::Combined`].
    Combined {
        /// The transaction.
        transid: &'a TransactionId,
        /// The activation (or its id when shrunk).
        response: ActivationOrIdRef<'a>,
        /// Whether the platform failed.
        #[serde(rename = "isSystemError")]
        is_system_error: bool,
        /// The invoker.
        instance: &'a InvokerInstanceId,
    },
    /// See [`Acknowledgement::Completion`].
    Completion {
        /// The transaction.
        transid: &'a TransactionId,
        /// The activation id.
        #[serde(rename = "activationId")]
        activation_id: &'a ActivationId,
        /// Whether the platform failed.
        #[serde(rename = "isSystemError")]
        is_system_error: bool,
        /// The invoker.
        instance: &'a InvokerInstanceId,
    },
    /// See [`Acknowledgement::Result`].
    Result {
        /// The transaction.
        transid: &'a TransactionId,
        /// The activation (or its id when shrunk).
        response: ActivationOrIdRef<'a>,
    },
}

impl AcknowledgementRef<'_> {
    /// The JSON bytes to publish.
    pub fn to_bytes(&self) -> bytes::Bytes {
        // Serializing these borrowed fields cannot fail (no maps with non-string keys).
        bytes::Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// A borrowed [`ActivationOrId`]: the record, or only its id (shrunk).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum ActivationOrIdRef<'a> {
    /// The whole record.
    Activation(&'a Activation),
    /// Only the id.
    Id(&'a ActivationId),
}

impl<'de> Deserialize<'de> for ActivationOrId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ActivationOrId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an activation object or an activation id")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                v: &str,
            ) -> std::result::Result<Self::Value, E> {
                ActivationId::parse(v)
                    .map(ActivationOrId::Id)
                    .map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                Activation::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|a| ActivationOrId::Activation(Box::new(a)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Acknowledgement {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            transid: TransactionId,
            #[serde(default)]
            response: Option<ActivationOrId>,
            #[serde(default)]
            activation_id: Option<ActivationId>,
            #[serde(default)]
            is_system_error: Option<bool>,
            #[serde(default)]
            instance: Option<InvokerInstanceId>,
        }
        let w = Wire::deserialize(d)?;
        match (w.response, w.activation_id, w.instance) {
            (Some(response), _, Some(instance)) => Ok(Self::Combined {
                transid: w.transid,
                response,
                is_system_error: w
                    .is_system_error
                    .ok_or_else(|| D::Error::missing_field("isSystemError"))?,
                instance,
            }),
            (None, Some(activation_id), Some(instance)) => Ok(Self::Completion {
                transid: w.transid,
                activation_id,
                is_system_error: w
                    .is_system_error
                    .ok_or_else(|| D::Error::missing_field("isSystemError"))?,
                instance,
            }),
            (Some(response), _, None) => Ok(Self::Result {
                transid: w.transid,
                response,
            }),
            _ => Err(D::Error::custom(
                "not an acknowledgement: needs `response` and/or `activationId` with `instance`",
            )),
        }
    }
}

impl Acknowledgement {
    /// The activation id this acknowledgement is about.
    pub fn activation_id(&self) -> &ActivationId {
        match self {
            Self::Combined { response, .. } | Self::Result { response, .. } => response.id(),
            Self::Completion { activation_id, .. } => activation_id,
        }
    }
    /// The activation record, if carried.
    pub fn activation(&self) -> Option<&Activation> {
        match self {
            Self::Combined {
                response: ActivationOrId::Activation(a),
                ..
            }
            | Self::Result {
                response: ActivationOrId::Activation(a),
                ..
            } => Some(a),
            _ => None,
        }
    }
    /// The invoker, on acknowledgements that free a slot.
    pub fn invoker(&self) -> Option<&InvokerInstanceId> {
        match self {
            Self::Combined { instance, .. } | Self::Completion { instance, .. } => Some(instance),
            Self::Result { .. } => None,
        }
    }
    /// Whether this acknowledgement frees the scheduler slot.
    pub fn frees_slot(&self) -> bool {
        !matches!(self, Self::Result { .. })
    }
    /// The same acknowledgement with the activation replaced by its id.
    pub fn shrink(self) -> Self {
        match self {
            Self::Combined {
                transid,
                response,
                is_system_error,
                instance,
            } => Self::Combined {
                transid,
                response: ActivationOrId::Id(response.id().clone()),
                is_system_error,
                instance,
            },
            Self::Result { transid, response } => Self::Result {
                transid,
                response: ActivationOrId::Id(response.id().clone()),
            },
            other => other,
        }
    }
}

/// An invoker's heartbeat on `health`.
///
/// `runtimes` is an extension: OpenWhisk's ping has no such field (its runtime manifest is
/// one per deployment), and OpenWhisk's parsers ignore it. Here invokers may run different
/// executors, so each reports what it can run; a ping without it (an older or foreign
/// invoker) says nothing about kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PingMessage {
    /// The invoker.
    pub name: InvokerInstanceId,
    /// `false` when the invoker was disabled.
    #[serde(default = "yes")]
    pub is_enabled: bool,
    /// The kinds the invoker can run, when it reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtimes: Option<RuntimeManifest>,
}

impl PingMessage {
    /// An enabled invoker's ping that reports no kinds.
    pub fn new(name: InvokerInstanceId) -> Self {
        Self {
            name,
            is_enabled: true,
            runtimes: None,
        }
    }
    /// With `is_enabled` set.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.is_enabled = enabled;
        self
    }
    /// Reporting the kinds the invoker can run.
    pub fn with_runtimes(mut self, runtimes: RuntimeManifest) -> Self {
        self.runtimes = Some(runtimes);
        self
    }
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::ActivationResponse;
    use crate::identity::{AuthKey, Namespace};
    use serde_json::json;

    fn identity() -> Identity {
        Identity {
            subject: "guest".into(),
            namespace: Namespace {
                name: EntityName::new("guest").unwrap(),
                uuid: "u".into(),
            },
            authkey: AuthKey::parse("u:k").unwrap(),
            rights: Identity::all_rights(),
            limits: Default::default(),
        }
    }

    #[test]
    fn activation_message_shape() {
        let m = ActivationMessage {
            transid: TransactionId {
                id: "t".into(),
                start: 5,
            },
            action: ActionRef {
                path: EntityPath::new("guest").unwrap(),
                name: EntityName::new("hello").unwrap(),
                version: SemVer::default(),
                binding: None,
            },
            revision: Some("1-a".into()),
            user: identity(),
            activation_id: ActivationId::generate(),
            root_controller_index: ControllerInstanceId::new("0"),
            blocking: true,
            content: Some(json!({"a": 1})),
            init_args: vec![],
            locked_args: Default::default(),
            cause: None,
            trace_context: None,
        };
        let js = serde_json::to_value(&m).unwrap();
        assert_eq!(js["transid"], json!(["t", 5]));
        assert_eq!(js["user"]["authkey"]["api_key"], json!("u:k"));
        assert_eq!(js["rootControllerIndex"]["asString"], json!("0"));
        assert_eq!(
            js["user"]["rights"],
            json!(["READ", "PUT", "DELETE", "ACTIVATE"])
        );
        let back: ActivationMessage = serde_json::from_value(js).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn malformed_acks_are_errors() {
        for bad in [
            json!({"transid": ["t", 1]}),
            json!({"transid": ["t", 1], "response": 5}),
            json!({"transid": ["t", 1], "response": "not-an-id"}),
            json!({"transid": ["t", 1], "activationId": ActivationId::generate()}),
            json!({"transid": ["t", 1], "response": ActivationId::generate(),
                   "instance": InvokerInstanceId::new(0, 1)}),
            json!([1, 2]),
        ] {
            assert!(
                serde_json::from_value::<Acknowledgement>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn acks_are_told_apart_by_fields() {
        let inst = InvokerInstanceId::new(0, 2048);
        let id = ActivationId::generate();
        let comp = Acknowledgement::Completion {
            transid: TransactionId::new("t"),
            activation_id: id.clone(),
            is_system_error: false,
            instance: inst.clone(),
        };
        let js = serde_json::to_value(&comp).unwrap();
        assert_eq!(js["instance"]["userMemory"], json!("2048 MB"));
        let back: Acknowledgement = serde_json::from_value(js).unwrap();
        assert_eq!(back, comp);
        let res = Acknowledgement::Result {
            transid: TransactionId::new("t"),
            response: ActivationOrId::Id(id.clone()),
        };
        let back: Acknowledgement =
            serde_json::from_value(serde_json::to_value(&res).unwrap()).unwrap();
        assert!(!back.frees_slot());
        assert_eq!(back.activation_id(), &id);
        let act = Activation {
            namespace: EntityPath::new("guest").unwrap(),
            name: EntityName::new("a").unwrap(),
            subject: "guest".into(),
            activation_id: id.clone(),
            start: 1,
            end: 2,
            duration: Some(1),
            cause: None,
            response: ActivationResponse::success(json!({})),
            logs: vec![],
            version: SemVer::default(),
            publish: false,
            annotations: Default::default(),
        };
        let comb = Acknowledgement::Combined {
            transid: TransactionId::new("t"),
            response: ActivationOrId::Activation(Box::new(act)),
            is_system_error: false,
            instance: inst,
        };
        let back: Acknowledgement =
            serde_json::from_value(serde_json::to_value(&comb).unwrap()).unwrap();
        assert!(back.activation().is_some());
        // The borrowed wire forms write the same JSON as the owned variants.
        let json_of = |a: &Acknowledgement| serde_json::to_value(a).unwrap();
        let bytes_of = |r: AcknowledgementRef<'_>| -> serde_json::Value {
            serde_json::from_slice(&r.to_bytes()).unwrap()
        };
        let Acknowledgement::Combined {
            transid,
            response: ActivationOrId::Activation(a),
            is_system_error,
            instance,
        } = &comb
        else {
            panic!("built as a Combined with the record");
        };
        let r = AcknowledgementRef::Combined {
            transid,
            response: ActivationOrIdRef::Activation(a),
            is_system_error: *is_system_error,
            instance,
        };
        assert_eq!(bytes_of(r), json_of(&comb));
        let r = AcknowledgementRef::Result {
            transid,
            response: ActivationOrIdRef::Activation(a),
        };
        let owned = Acknowledgement::Result {
            transid: transid.clone(),
            response: ActivationOrId::Activation(a.clone()),
        };
        assert_eq!(bytes_of(r), json_of(&owned));
        let Acknowledgement::Completion {
            transid,
            activation_id,
            is_system_error,
            instance,
        } = &comp
        else {
            panic!("built as a Completion");
        };
        let r = AcknowledgementRef::Completion {
            transid,
            activation_id,
            is_system_error: *is_system_error,
            instance,
        };
        assert_eq!(bytes_of(r), json_of(&comp));
        let Acknowledgement::Result { transid, .. } = &res else {
            panic!("built as a Result");
        };
        let r = AcknowledgementRef::Result {
            transid,
            response: ActivationOrIdRef::Id(&id),
        };
        assert_eq!(bytes_of(r), json_of(&res));
        assert!(back.clone().shrink().activation().is_none());
        let ping = PingMessage::new(InvokerInstanceId::new(3, 1024));
        let json = serde_json::to_value(&ping).unwrap();
        assert!(json.get("runtimes").is_none(), "OpenWhisk's shape: {json}");
        let back: PingMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, ping);
        let ping = ping.with_runtimes(crate::RuntimeManifest::default_local());
        let back: PingMessage =
            serde_json::from_value(serde_json::to_value(&ping).unwrap()).unwrap();
        assert_eq!(back, ping);
        // OpenWhisk's own ping (no `runtimes`, no `isEnabled`) still reads.
        let ow: PingMessage = serde_json::from_value(json!({
            "name": {"instance": 0, "userMemory": "2048 MB", "uniqueName": "a", "displayedName": "b"}
        }))
        .unwrap();
        assert!(ow.is_enabled && ow.runtimes.is_none());
    }
}
