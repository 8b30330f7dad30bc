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
    /// Parses `uuid:key` and checks it against OpenWhisk's rules for keys an operator gives
    /// (`wskadmin user create --auth`): the uuid in canonical 8-4-4-4-12 hexadecimal form, the
    /// secret exactly [`SECRET_LENGTH`] printable ASCII characters other than `:`.
    ///
    /// The messages are `wskadmin`'s; none of them repeats the secret.
    pub fn parse_strict(s: &str) -> Result<Self> {
        let mut parts = s.split(':');
        let (Some(uuid), Some(key), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::bad_request(
                "failed to determine authorization id and key: expected 'uuid:key'",
            ));
        };
        if !is_uuid(uuid) {
            return Err(Error::bad_request("authorization id is not a valid UUID"));
        }
        let n = key.chars().count();
        if n < SECRET_LENGTH {
            return Err(Error::bad_request(format!(
                "authorization key must be at least {SECRET_LENGTH} characters long"
            )));
        }
        if n > SECRET_LENGTH {
            return Err(Error::bad_request(format!(
                "authorization key must be at most {SECRET_LENGTH} characters long"
            )));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(Error::bad_request(
                "authorization key must consist of printable ASCII characters other than ':'",
            ));
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
    /// The `Authorization` header value that presents this key: `Basic base64(uuid:key)`.
    pub fn basic_header(&self) -> String {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(self.compact())
        )
    }
}

/// The length of every secret (OpenWhisk's `Secret`: at least and at most 64 characters).
pub const SECRET_LENGTH: usize = 64;

/// The shortest subject name (OpenWhisk's `Subject.MIN_LENGTH`).
pub const MIN_SUBJECT_LENGTH: usize = 5;

/// The longest subject name this SDK accepts (a CouchDB document id stays well below its
/// limits; OpenWhisk sets none).
pub const MAX_SUBJECT_LENGTH: usize = 256;

/// Whether `s` is a uuid in canonical text form (8-4-4-4-12 hexadecimal digits, any case).
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
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
    /// Checks a subject name: at least [`MIN_SUBJECT_LENGTH`] characters (OpenWhisk's rule,
    /// with `wskadmin`'s message), at most [`MAX_SUBJECT_LENGTH`], and usable as a document id
    /// of its own: no `/` (which would collide with the `<namespace>/limits` documents that
    /// share the subjects database), no leading `_` (reserved by CouchDB), no control
    /// characters and no surrounding white space.
    pub fn check_name(name: &str) -> Result<()> {
        let n = name.chars().count();
        if n < MIN_SUBJECT_LENGTH {
            return Err(Error::bad_request(format!(
                "Subject name must be at least {MIN_SUBJECT_LENGTH} characters"
            )));
        }
        if n > MAX_SUBJECT_LENGTH {
            return Err(Error::bad_request(format!(
                "Subject name must be at most {MAX_SUBJECT_LENGTH} characters"
            )));
        }
        if name.contains('/')
            || name.starts_with('_')
            || name.chars().any(char::is_control)
            || name.trim() != name
        {
            return Err(Error::bad_request(
                "Subject name must not contain '/' or control characters, start with '_', \
                 or begin or end with white space",
            ));
        }
        Ok(())
    }

    /// The entry of namespace `ns`, if this subject owns it.
    pub fn namespace(&self, ns: &EntityName) -> Option<&NamespaceKey> {
        self.namespaces.iter().find(|n| &n.name == ns)
    }

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
        assert_eq!(AuthKey::parse_strict(&k.compact()).unwrap(), k);
    }

    #[test]
    fn strict_keys_follow_wskadmin() {
        let guest = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
        assert!(AuthKey::parse_strict(guest).is_ok());
        let err = |s: &str| AuthKey::parse_strict(s).unwrap_err().to_string();
        let key = "k".repeat(64);
        assert_eq!(
            err(&format!("not-a-uuid:{key}")),
            "authorization id is not a valid UUID"
        );
        assert_eq!(
            err(&format!("23bc46b1-71f6-4ed5-8c54-816aa4f8c50:{key}")),
            "authorization id is not a valid UUID"
        );
        assert_eq!(
            err("23bc46b1-71f6-4ed5-8c54-816aa4f8c502:short"),
            "authorization key must be at least 64 characters long"
        );
        assert_eq!(
            err(&format!("23bc46b1-71f6-4ed5-8c54-816aa4f8c502:{key}x")),
            "authorization key must be at most 64 characters long"
        );
        assert!(
            err(&format!(
                "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:{}é",
                "k".repeat(63)
            ))
            .contains("printable")
        );
        let e = err(&format!("a:b:{key}"));
        assert!(e.starts_with("failed to determine"), "{e}");
        assert!(!e.contains(&key), "the message must not echo the secret");
        assert!(err("nocolon").starts_with("failed to determine"));
    }

    #[test]
    fn subject_names() {
        assert!(Subject::check_name("guest").is_ok());
        assert!(Subject::check_name("whisk.system").is_ok());
        assert!(Subject::check_name("a+b@example.com").is_ok());
        assert_eq!(
            Subject::check_name("abcd").unwrap_err().to_string(),
            "Subject name must be at least 5 characters"
        );
        for bad in ["space/limits", "_design", " guest", "guest ", "gu\nest"] {
            assert!(Subject::check_name(bad).is_err(), "{bad:?}");
        }
        assert!(Subject::check_name(&"x".repeat(257)).is_err());
    }
}
