//! Identities, authentication keys and subject records.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::UserLimits;
use crate::names::EntityName;
use crate::{Error, Result};

/// A `uuid:key` pair. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AuthKey {
    /// The namespace uuid.
    pub uuid: String,
    /// The secret.
    pub key: String,
}

impl AuthKey {
    /// Parses `uuid:key`.
    pub fn parse(s: &str) -> Result<Self> {
        let (uuid, key) = s
            .split_once(':')
            .ok_or_else(|| Error::bad_request("authentication key must be 'uuid:key'"))?;
        if uuid.is_empty() || key.is_empty() {
            return Err(Error::bad_request("authentication key must be 'uuid:key'"));
        }
        Ok(Self {
            uuid: uuid.to_string(),
            key: key.to_string(),
        })
    }
    /// A random key in OpenWhisk's form (uuid v4 text, 64 alphanumerics).
    pub fn generate() -> Self {
        use rand::Rng;
        let n: u128 = rand::random();
        let h = format!("{n:032x}");
        let uuid = format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        );
        let key: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(64)
            .map(char::from)
            .collect();
        Self { uuid, key }
    }
    /// `uuid:key`.
    pub fn compact(&self) -> String {
        format!("{}:{}", self.uuid, self.key)
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthKey")
            .field("uuid", &self.uuid)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Serialize for AuthKey {
    /// `{"api_key": "uuid:key"}` as in OpenWhisk's messages.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("api_key", &self.compact())?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for AuthKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct W {
            api_key: String,
        }
        let w = W::deserialize(d)?;
        Self::parse(&w.api_key).map_err(serde::de::Error::custom)
    }
}

/// A privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Privilege {
    /// GET.
    Read,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// POST (invoke, fire).
    Activate,
    /// Nothing allowed.
    Reject,
}

/// A namespace name with its uuid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// The namespace name.
    pub name: EntityName,
    /// Its uuid.
    pub uuid: String,
}

/// Who a request acts as: subject, namespace, key, rights and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The subject (user).
    pub subject: String,
    /// The namespace acted in.
    pub namespace: Namespace,
    /// The key used.
    pub authkey: AuthKey,
    /// Rights (all four for owners).
    pub rights: Vec<Privilege>,
    /// Namespace limits.
    #[serde(default)]
    pub limits: UserLimits,
}

impl Identity {
    /// All rights.
    pub fn all_rights() -> Vec<Privilege> {
        vec![
            Privilege::Read,
            Privilege::Put,
            Privilege::Delete,
            Privilege::Activate,
        ]
    }
}

/// One namespace of a subject record, with its credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceKey {
    /// Namespace name.
    pub name: EntityName,
    /// Namespace uuid.
    pub uuid: String,
    /// Secret.
    pub key: String,
}

impl fmt::Debug for NamespaceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamespaceKey")
            .field("name", &self.name)
            .field("uuid", &self.uuid)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A subjects-database record: a user and the namespaces it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The subject name (≥ 5 chars in OpenWhisk).
    pub subject: String,
    /// Owned namespaces.
    pub namespaces: Vec<NamespaceKey>,
    /// A blocked subject cannot authenticate.
    #[serde(default)]
    pub blocked: bool,
}

impl Subject {
    /// A subject owning one namespace of the same name with `key`.
    pub fn single(name: EntityName, key: &AuthKey) -> Self {
        Self {
            subject: name.to_string(),
            namespaces: vec![NamespaceKey {
                name,
                uuid: key.uuid.clone(),
                key: key.key.clone(),
            }],
            blocked: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let k = AuthKey::generate();
        assert_eq!(k.key.len(), 64);
        assert_eq!(k.uuid.len(), 36);
        let back = AuthKey::parse(&k.compact()).unwrap();
        assert_eq!(back, k);
        assert!(!format!("{k:?}").contains(&k.key));
        let js = serde_json::to_value(&k).unwrap();
        assert_eq!(js["api_key"], serde_json::json!(k.compact()));
        assert!(AuthKey::parse("nocolon").is_err());
    }
}
