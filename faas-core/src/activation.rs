//! Activation ids and activation records, in the stored and the API form.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::names::{EntityName, EntityPath};
use crate::params::{Annotations, SemVer};
use crate::{Error, Result};

/// 32 lowercase hex characters (a random UUID without dashes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActivationId(String);

impl ActivationId {
    /// A fresh random id.
    pub fn generate() -> Self {
        let n: u128 = rand::random();
        Self(format!("{n:032x}"))
    }
    /// Parses an id: exactly 32 chars of `[0-9a-f]`.
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_string()))
        } else {
            Err(Error::bad_request(format!(
                "The activation id '{s}' is not valid."
            )))
        }
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActivationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ActivationId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ActivationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The outcome class of an activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum StatusCode {
    /// 0: the action returned a result.
    Success,
    /// 1: the action returned `{"error": ...}`.
    ApplicationError,
    /// 2: the action misbehaved (crash, timeout, bad result, failed init).
    DeveloperError,
    /// 3: the platform failed.
    WhiskError,
}

impl From<StatusCode> for u8 {
    fn from(s: StatusCode) -> u8 {
        match s {
            StatusCode::Success => 0,
            StatusCode::ApplicationError => 1,
            StatusCode::DeveloperError => 2,
            StatusCode::WhiskError => 3,
        }
    }
}

impl TryFrom<u8> for StatusCode {
    type Error = String;
    fn try_from(v: u8) -> std::result::Result<Self, String> {
        Ok(match v {
            0 => Self::Success,
            1 => Self::ApplicationError,
            2 => Self::DeveloperError,
            3 => Self::WhiskError,
            other => return Err(format!("bad status code {other}")),
        })
    }
}

impl StatusCode {
    /// The API's status text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ApplicationError => "application error",
            Self::DeveloperError => "action developer error",
            Self::WhiskError => "whisk internal error",
        }
    }
    /// The HTTP status of a blocking invoke that ended this way.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Success => 200,
            Self::ApplicationError | Self::DeveloperError => 502,
            Self::WhiskError => 500,
        }
    }
}

/// `response` of a stored activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationResponse {
    /// The outcome class.
    pub status_code: StatusCode,
    /// The result (an object or array), or `{"error": ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Size of the result, bytes (set when it was truncated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// The length of `value`'s JSON, counted by a writer that keeps nothing (0 if it cannot be
/// serialized).
pub fn json_size(value: &impl serde::Serialize) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, value);
    c.0
}

impl ActivationResponse {
    /// A successful result.
    pub fn success(result: Value) -> Self {
        Self {
            status_code: StatusCode::Success,
            result: Some(result),
            size: None,
        }
    }
    /// An application error: `{"error": error}`.
    pub fn application_error(error: Value) -> Self {
        Self {
            status_code: StatusCode::ApplicationError,
            result: Some(json!({ "error": error })),
            size: None,
        }
    }
    /// A developer error with `message`.
    pub fn developer_error(message: impl Into<String>) -> Self {
        Self {
            status_code: StatusCode::DeveloperError,
            result: Some(json!({ "error": message.into() })),
            size: None,
        }
    }
    /// A platform error with `message`.
    pub fn whisk_error(message: impl Into<String>) -> Self {
        Self {
            status_code: StatusCode::WhiskError,
            result: Some(json!({ "error": message.into() })),
            size: None,
        }
    }
    /// The size of the result in bytes (OpenWhisk's user-events `size`): [`size`](Self::size)
    /// when set (a truncated result), else the length of the result's compact JSON, counted
    /// without building it; `None` without a result.
    pub fn result_size(&self) -> Option<u64> {
        self.size.or_else(|| self.result.as_ref().map(json_size))
    }

    /// The API form: `{result, size?, success, status}`.
    pub fn to_api_json(&self) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("result".into(), self.result.clone().unwrap_or(json!({})));
        if let Some(s) = self.size {
            o.insert("size".into(), json!(s));
        }
        o.insert(
            "success".into(),
            json!(self.status_code == StatusCode::Success),
        );
        o.insert("status".into(), json!(self.status_code.as_str()));
        Value::Object(o)
    }
}

/// An activation record, as stored (`namespace` is the invoking namespace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activation {
    /// The namespace that invoked the action.
    pub namespace: EntityPath,
    /// The action's name.
    pub name: EntityName,
    /// The invoking subject.
    pub subject: String,
    /// The id.
    pub activation_id: ActivationId,
    /// Start, epoch ms.
    #[serde(deserialize_with = "de_time")]
    pub start: u64,
    /// End, epoch ms (0 when it has none, as for triggers).
    #[serde(default, deserialize_with = "de_time")]
    pub end: u64,
    /// `end - start`, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// The parent activation (sequence/conductor components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<ActivationId>,
    /// The outcome.
    pub response: ActivationResponse,
    /// Log lines.
    #[serde(default)]
    pub logs: Vec<String>,
    /// The action's version.
    #[serde(default)]
    pub version: SemVer,
    /// The action's publish flag.
    #[serde(default)]
    pub publish: bool,
    /// System annotations (`path`, `kind`, `limits`, `waitTime`, ...).
    #[serde(default)]
    pub annotations: Annotations,
}

fn de_time<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    // Epoch ms on write; older writers used numbers in other forms.
    let v = Value::deserialize(d)?;
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().map(|f| f.max(0.0) as u64))
            .ok_or_else(|| serde::de::Error::custom("bad timestamp")),
        Value::Null => Ok(0),
        other => Err(serde::de::Error::custom(format!("bad timestamp {other}"))),
    }
}

impl Activation {
    /// The store document id: `namespace/activationId`.
    pub fn doc_id(&self) -> String {
        format!("{}/{}", self.namespace.root(), self.activation_id)
    }

    /// The extended API form (`GET /activations/{id}`, blocking invoke).
    pub fn to_api_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("response".into(), self.response.to_api_json());
            if self.end == 0 {
                o.remove("end");
                o.remove("duration");
            } else {
                o.insert(
                    "duration".into(),
                    json!(self.duration.unwrap_or(self.end.saturating_sub(self.start))),
                );
            }
        }
        v
    }

    /// The list form: `{namespace,name,version,publish,annotations,activationId,start,end,duration,cause,statusCode}`.
    pub fn summary_json(&self) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("namespace".into(), json!(self.namespace));
        o.insert("name".into(), json!(self.name));
        o.insert("version".into(), json!(self.version));
        o.insert("publish".into(), json!(self.publish));
        o.insert("annotations".into(), json!(self.annotations));
        o.insert("activationId".into(), json!(self.activation_id));
        o.insert("start".into(), json!(self.start));
        if self.end != 0 {
            o.insert("end".into(), json!(self.end));
            o.insert(
                "duration".into(),
                json!(self.duration.unwrap_or(self.end.saturating_sub(self.start))),
            );
            o.insert(
                "statusCode".into(),
                json!(u8::from(self.response.status_code)),
            );
        }
        if let Some(c) = &self.cause {
            o.insert("cause".into(), json!(c));
        }
        Value::Object(o)
    }

    /// The `/result` form: `{result, size?, success, status}`.
    pub fn result_json(&self) -> Value {
        self.response.to_api_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Activation {
        Activation {
            namespace: EntityPath::new("guest").unwrap(),
            name: EntityName::new("hello").unwrap(),
            subject: "guest".into(),
            activation_id: ActivationId::generate(),
            start: 1000,
            end: 1123,
            duration: Some(123),
            cause: None,
            response: ActivationResponse::success(json!({"a": 1})),
            logs: vec!["2023-05-03T15:18:32.773012345Z stdout: hi".into()],
            version: SemVer::default(),
            publish: false,
            annotations: Annotations::new().with("kind", json!("nodejs:20")),
        }
    }

    #[test]
    fn ids() {
        let id = ActivationId::generate();
        assert_eq!(id.as_str().len(), 32);
        assert!(ActivationId::parse(id.as_str()).is_ok());
        assert!(ActivationId::parse("xyz").is_err());
        assert!(ActivationId::parse(&"A".repeat(32)).is_err());
    }

    #[test]
    fn api_forms() {
        let a = sample();
        let stored = serde_json::to_value(&a).unwrap();
        assert_eq!(stored["response"]["statusCode"], json!(0));
        let back: Activation = serde_json::from_value(stored).unwrap();
        assert_eq!(back, a);
        let api = a.to_api_json();
        assert_eq!(api["response"]["status"], json!("success"));
        assert_eq!(api["response"]["success"], json!(true));
        assert!(api["response"].get("statusCode").is_none());
        assert_eq!(api["duration"], json!(123));
        let s = a.summary_json();
        assert_eq!(s["statusCode"], json!(0));
        assert!(s.get("logs").is_none());
        assert_eq!(StatusCode::DeveloperError.http_status(), 502);
    }
}
