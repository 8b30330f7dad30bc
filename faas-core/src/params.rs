//! Key/value lists (`parameters`, `annotations`) and semantic versions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{Error, Result};

/// One `{"key": ..., "value": ...}` entry of a parameter or annotation list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// The key.
    pub key: String,
    /// Any JSON value.
    pub value: Value,
    /// Passed to the runtime at `/init` as an environment variable instead of at `/run`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// At-rest encryption scheme of the value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
}

/// An ordered list of key/value entries with unique keys; OpenWhisk's `parameters` and
/// `annotations` shape (`[{"key": ..., "value": ...}]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Parameters(Vec<Param>);

/// Annotations share the shape of [`Parameters`].
pub type Annotations = Parameters;

impl<'de> Deserialize<'de> for Parameters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let items = Option::<Vec<Param>>::deserialize(d)?.unwrap_or_default();
        let mut out = Self::default();
        for p in items {
            out.insert(p);
        }
        Ok(out)
    }
}

impl Parameters {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }
    /// Builder-style `set`.
    pub fn with(mut self, key: impl Into<String>, value: Value) -> Self {
        self.set(key, value);
        self
    }
    /// Sets `key` to `value`, replacing an existing entry in place.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        self.insert(Param {
            key: key.into(),
            value,
            init: false,
            encryption: None,
        });
    }
    /// Inserts an entry, replacing any entry with the same key in place.
    pub fn insert(&mut self, p: Param) {
        if let Some(existing) = self.0.iter_mut().find(|e| e.key == p.key) {
            *existing = p;
        } else {
            self.0.push(p);
        }
    }
    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|p| p.key == key).map(|p| &p.value)
    }
    /// Whether `key` is present with a truthy value (not `false`, `null`, `0` or `""`).
    pub fn is_truthy(&self, key: &str) -> bool {
        match self.get(key) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        }
    }
    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.retain(|p| p.key != key);
    }
    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.0.iter()
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `self` overlaid with `other` (entries of `other` win).
    pub fn merged(&self, other: &Self) -> Self {
        let mut out = self.clone();
        for p in &other.0 {
            out.insert(p.clone());
        }
        out
    }
    /// The keys of entries marked `init`.
    pub fn init_keys(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|p| p.init)
            .map(|p| p.key.clone())
            .collect()
    }
    /// OpenWhisk's size: the sum of key bytes and compact JSON value bytes.
    pub fn size_bytes(&self) -> usize {
        self.0
            .iter()
            .map(|p| p.key.len() + serde_json::to_string(&p.value).map_or(0, |s| s.len()))
            .sum()
    }
    /// The entries as a JSON object (`{key: value}`).
    pub fn to_object(&self) -> serde_json::Map<String, Value> {
        self.0
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect()
    }
}

impl FromIterator<(String, Value)> for Parameters {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut out = Self::default();
        for (k, v) in iter {
            out.set(k, v);
        }
        out
    }
}

/// A `major.minor.patch` version, serialized as a string (`"0.0.1"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SemVer {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl Default for SemVer {
    fn default() -> Self {
        Self {
            major: 0,
            minor: 0,
            patch: 1,
        }
    }
}

impl SemVer {
    /// The next patch version (entities bump it on every update).
    pub fn up_patch(self) -> Self {
        Self {
            patch: self.patch + 1,
            ..self
        }
    }
}

impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for SemVer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::bad_request(format!("bad semantic version: {s}"));
        let mut it = s.split('.').map(|p| p.parse::<u32>().map_err(|_| bad()));
        let major = it.next().ok_or_else(bad)??;
        let minor = it.next().transpose()?.unwrap_or(0);
        let patch = it.next().transpose()?.unwrap_or(0);
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(Self {
            major,
            minor,
            patch,
        })
    }
}

impl Serialize for SemVer {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SemVer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_size() {
        let a = Parameters::new().with("x", json!(1)).with("y", json!("a"));
        let b = Parameters::new().with("y", json!("b"));
        let m = a.merged(&b);
        assert_eq!(m.get("y"), Some(&json!("b")));
        assert_eq!(m.len(), 2);
        // "x" + "1" + "y" + "\"b\""
        assert_eq!(m.size_bytes(), 1 + 1 + 1 + 3);
        let js = serde_json::to_value(&m).unwrap();
        assert_eq!(js, json!([{"key":"x","value":1},{"key":"y","value":"b"}]));
        let back: Parameters = serde_json::from_value(js).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn semver() {
        let v: SemVer = "0.0.1".parse().unwrap();
        assert_eq!(v.up_patch().to_string(), "0.0.2");
        assert!("x".parse::<SemVer>().is_err());
        assert_eq!("1.2".parse::<SemVer>().unwrap().to_string(), "1.2.0");
    }

    #[test]
    fn truthy() {
        let p = Parameters::new()
            .with("t", json!(true))
            .with("f", json!(false))
            .with("z", json!(0));
        assert!(p.is_truthy("t"));
        assert!(!p.is_truthy("f"));
        assert!(!p.is_truthy("z"));
        assert!(!p.is_truthy("missing"));
    }
}
