//! Entity names, namespace paths and fully qualified names, validated as OpenWhisk does.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// The longest entity name OpenWhisk accepts.
pub const MAX_NAME_LENGTH: usize = 256;

/// The placeholder for "the caller's namespace" in paths and references.
pub const DEFAULT_NAMESPACE: &str = "_";

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Checks a single path segment against OpenWhisk's entity-name rule
/// `\A([\w]|[\w][\w@ .&-]{0,254}[\w@.&-])\z`.
pub fn validate_name(s: &str) -> Result<()> {
    let n = s.chars().count();
    if n > MAX_NAME_LENGTH {
        return Err(Error::bad_request(format!(
            "The name of the entity is longer than allowed: {n} > {MAX_NAME_LENGTH}."
        )));
    }
    let illegal = || Error::bad_request("The name of the entity contains illegal characters.");
    let mut chars = s.chars();
    let first = chars.next().ok_or_else(illegal)?;
    if !is_word(first) {
        return Err(illegal());
    }
    let rest: Vec<char> = chars.collect();
    if let Some((last, middle)) = rest.split_last() {
        if !middle
            .iter()
            .all(|&c| is_word(c) || matches!(c, '@' | ' ' | '.' | '&' | '-'))
        {
            return Err(illegal());
        }
        if !(is_word(*last) || matches!(*last, '@' | '.' | '&' | '-')) {
            return Err(illegal());
        }
    }
    Ok(())
}

/// A validated entity name (one path segment).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityName(String);

impl EntityName {
    /// Validates `s` as an entity name.
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        validate_name(&s)?;
        Ok(Self(s))
    }
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EntityName {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EntityName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

/// A namespace path: `ns` or `ns/pkg` (packages do not nest).
///
/// The root segment is the namespace that owns the entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityPath(String);

impl EntityPath {
    /// Parses `ns` or `ns/pkg` (a leading `/` is accepted and dropped).
    pub fn new(s: &str) -> Result<Self> {
        let s = s.strip_prefix('/').unwrap_or(s);
        let segs: Vec<&str> = s.split('/').collect();
        if segs.is_empty() || segs.len() > 2 {
            return Err(Error::bad_request(
                "The name of the entity contains illegal characters.",
            ));
        }
        for seg in &segs {
            validate_name(seg)?;
        }
        Ok(Self(s.to_string()))
    }
    /// The path of a namespace (a single segment).
    pub fn namespace(ns: &EntityName) -> Self {
        Self(ns.0.clone())
    }
    /// `self/name`, for a package inside this namespace.
    pub fn join(&self, name: &EntityName) -> Self {
        Self(format!("{}/{}", self.0, name.0))
    }
    /// The owning namespace (first segment).
    pub fn root(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
    /// The package segment, if this is `ns/pkg`.
    pub fn package(&self) -> Option<&str> {
        self.0.split_once('/').map(|(_, p)| p)
    }
    /// Whether this path names a namespace (no package).
    pub fn is_namespace(&self) -> bool {
        !self.0.contains('/')
    }
    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EntityPath {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EntityPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A fully qualified entity name: `path/name`, e.g. `guest/hello` or `guest/pkg/hello`.
///
/// Its [`doc_id`](Self::doc_id) is the document id used by the stores, as in OpenWhisk.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FullyQualifiedName {
    /// The namespace path (`ns` or `ns/pkg`).
    pub path: EntityPath,
    /// The entity's own name.
    pub name: EntityName,
}

impl FullyQualifiedName {
    /// Builds a name from parts.
    pub fn new(path: EntityPath, name: EntityName) -> Self {
        Self { path, name }
    }

    /// Resolves a reference the way OpenWhisk clients write them, substituting `_` with
    /// `caller_ns`:
    /// `/ns/pkg/name` or `ns/pkg/name` (three parts), `/ns/name` (leading slash: namespace),
    /// `pkg/name` (no slash: package in the caller's namespace), `name`.
    pub fn resolve(reference: &str, caller_ns: &str) -> Result<Self> {
        let illegal = || Error::bad_request("The name of the entity contains illegal characters.");
        let absolute = reference.starts_with('/');
        let trimmed = reference.strip_prefix('/').unwrap_or(reference);
        let parts: Vec<&str> = trimmed.split('/').collect();
        let sub = |s: &str| {
            if s == DEFAULT_NAMESPACE {
                caller_ns.to_string()
            } else {
                s.to_string()
            }
        };
        let (path, name) = match parts.as_slice() {
            [name] if !absolute => (caller_ns.to_string(), (*name).to_string()),
            [ns, name] if absolute => (sub(ns), (*name).to_string()),
            [pkg, name] => (format!("{caller_ns}/{pkg}"), (*name).to_string()),
            [ns, pkg, name] => (format!("{}/{pkg}", sub(ns)), (*name).to_string()),
            _ => return Err(illegal()),
        };
        Ok(Self {
            path: EntityPath::new(&path)?,
            name: EntityName::new(name)?,
        })
    }

    /// The store document id: `path/name`.
    pub fn doc_id(&self) -> String {
        format!("{}/{}", self.path, self.name)
    }

    /// The form used in `__OW_ACTION_NAME` and sequences: `/path/name`.
    pub fn with_leading_slash(&self) -> String {
        format!("/{}/{}", self.path, self.name)
    }
}

impl fmt::Display for FullyQualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.path, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_openwhisk_regex() {
        for ok in ["a", "_", "hello", "a b", "x@y.z&w-v", "a-", "9"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", " a", "a ", "-a", "a/b", "a$", "é", "a\u{0}"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(256)).is_ok());
        let e = validate_name(&"a".repeat(257)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "The name of the entity is longer than allowed: 257 > 256."
        );
    }

    #[test]
    fn resolve_rules() {
        let r = |s| FullyQualifiedName::resolve(s, "guest").unwrap().to_string();
        assert_eq!(r("hello"), "guest/hello");
        assert_eq!(r("pkg/hello"), "guest/pkg/hello");
        assert_eq!(r("/other/hello"), "other/hello");
        assert_eq!(r("/_/hello"), "guest/hello");
        assert_eq!(r("/ns/pkg/hello"), "ns/pkg/hello");
        assert_eq!(r("ns/pkg/hello"), "ns/pkg/hello");
        assert!(FullyQualifiedName::resolve("/a/b/c/d", "guest").is_err());
        assert!(FullyQualifiedName::resolve("/hello", "guest").is_err());
    }

    #[test]
    fn paths() {
        let p = EntityPath::new("guest/pkg").unwrap();
        assert_eq!(p.root(), "guest");
        assert_eq!(p.package(), Some("pkg"));
        assert!(EntityPath::new("a/b/c").is_err());
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"guest/pkg\"");
    }
}
