//! Entity names as `wsk` reads them on the command line (`commands/qualified_name.go`):
//! `name`, `pkg/name`, `/ns/name`, `/ns/pkg/name`, and `ns/pkg/name` (three parts: the first
//! is the namespace). Each segment is checked with OpenWhisk's entity-name rule
//! ([`faas_core::names::validate_name`]).

use std::fmt;

use faas_core::names::validate_name;

use crate::error::{CliError, Result, exit};

/// A possibly qualified entity name. `namespace` is `_` (the caller's own) unless given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QualifiedName {
    /// The namespace, without slashes (`_` for the caller's own).
    pub(crate) namespace: String,
    /// The package, if any.
    pub(crate) package: Option<String>,
    /// The entity's own name; empty for a bare namespace (`/ns`).
    pub(crate) name: String,
}

fn not_specified() -> CliError {
    CliError::new(
        "A valid qualified name must be specified.",
        exit::NOT_ALLOWED,
    )
}

impl QualifiedName {
    /// Parses `input`, resolving a missing namespace to `default_ns`.
    pub(crate) fn parse(input: &str, default_ns: &str) -> Result<Self> {
        Self::parse_inner(input, default_ns)
            .map_err(|e| CliError::general(format!("'{input}' is not a valid qualified name: {e}")))
    }

    fn parse_inner(input: &str, default_ns: &str) -> Result<Self> {
        let parts: Vec<&str> = input.split('/').collect();
        // Three parts without a leading slash name a namespace first (`addLeadSlash`).
        let absolute = input.starts_with('/') || (parts.len() == 3 && !parts[0].is_empty());
        let segs: Vec<&str> = if input.starts_with('/') {
            parts[1..].to_vec()
        } else {
            parts
        };
        if segs.is_empty() || segs.iter().any(|s| s.is_empty() || *s == ".") {
            return Err(not_specified());
        }
        let qn = if absolute {
            match segs.as_slice() {
                [ns] => Self {
                    namespace: (*ns).to_string(),
                    package: None,
                    name: String::new(),
                },
                [ns, name] => Self {
                    namespace: (*ns).to_string(),
                    package: None,
                    name: (*name).to_string(),
                },
                [ns, pkg, name] => Self {
                    namespace: (*ns).to_string(),
                    package: Some((*pkg).to_string()),
                    name: (*name).to_string(),
                },
                _ => return Err(not_specified()),
            }
        } else {
            match segs.as_slice() {
                [name] => Self {
                    namespace: default_ns.to_string(),
                    package: None,
                    name: (*name).to_string(),
                },
                [pkg, name] => Self {
                    namespace: default_ns.to_string(),
                    package: Some((*pkg).to_string()),
                    name: (*name).to_string(),
                },
                _ => return Err(not_specified()),
            }
        };
        for seg in [Some(qn.namespace.as_str()), qn.package.as_deref()]
            .into_iter()
            .flatten()
            .chain((!qn.name.is_empty()).then_some(qn.name.as_str()))
        {
            validate_name(seg).map_err(|e| CliError::general(e.to_string()))?;
        }
        Ok(qn)
    }

    /// `[pkg/]name`, as `wsk` names the entity in its messages.
    pub(crate) fn entity_name(&self) -> String {
        match &self.package {
            Some(p) if self.name.is_empty() => p.clone(),
            Some(p) => format!("{p}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// `/ns/[pkg/]name`.
    pub(crate) fn full(&self) -> String {
        if self.name.is_empty() {
            format!("/{}", self.namespace)
        } else {
            format!("/{}/{}", self.namespace, self.entity_name())
        }
    }

    /// The URL path segments after the collection: `[pkg, name]` or `[name]`.
    pub(crate) fn segments(&self) -> Vec<&str> {
        self.package
            .as_deref()
            .into_iter()
            .chain(std::iter::once(self.name.as_str()))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Whether only a namespace was named (`/ns`).
    pub(crate) fn is_namespace_only(&self) -> bool {
        self.name.is_empty() && self.package.is_none()
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

/// `name` fully qualified against `default_ns` (`getQualifiedName`): `/ns/[pkg/]name`.
pub(crate) fn qualify(name: &str, default_ns: &str) -> Result<String> {
    Ok(QualifiedName::parse(name, default_ns)?.full())
}

/// `[NAMESPACE]` of a list command that takes only a namespace (`/ns`).
pub(crate) fn namespace_arg(arg: Option<&str>, default_ns: &str) -> Result<String> {
    let Some(arg) = arg else {
        return Ok(default_ns.to_string());
    };
    let qn = QualifiedName::parse(arg, default_ns)?;
    if !qn.is_namespace_only() {
        return Err(CliError::general(format!(
            "An entity name, '{}', was provided instead of a namespace. Valid namespaces are of the following format: /NAMESPACE.",
            qn.entity_name()
        )));
    }
    Ok(qn.namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> QualifiedName {
        QualifiedName::parse(s, "_").unwrap()
    }

    #[test]
    fn forms_wsk_accepts() {
        assert_eq!(p("hello").full(), "/_/hello");
        assert_eq!(p("pkg/hello").full(), "/_/pkg/hello");
        assert_eq!(p("pkg/hello").entity_name(), "pkg/hello");
        assert_eq!(p("/guest/hello").full(), "/guest/hello");
        assert_eq!(p("/guest/pkg/hello").segments(), vec!["pkg", "hello"]);
        assert_eq!(p("guest/pkg/hello").namespace, "guest");
        assert!(p("/guest").is_namespace_only());
        assert_eq!(
            QualifiedName::parse("hello", "ns").unwrap().full(),
            "/ns/hello"
        );
    }

    #[test]
    fn bad_names_are_clear() {
        for bad in ["", "/", "a//b", "/a/b/c/d", "a/b/c/d", "."] {
            let e = QualifiedName::parse(bad, "_").unwrap_err();
            assert!(
                e.message.contains("is not a valid qualified name"),
                "{bad}: {e}"
            );
        }
        let e = QualifiedName::parse("bad$name", "_").unwrap_err();
        assert!(e.message.contains("illegal characters"), "{e}");
    }

    #[test]
    fn namespace_args() {
        assert_eq!(namespace_arg(None, "_").unwrap(), "_");
        assert_eq!(namespace_arg(Some("/guest"), "_").unwrap(), "guest");
        let e = namespace_arg(Some("thing"), "_").unwrap_err();
        assert!(e.message.starts_with("An entity name, 'thing'"), "{e}");
    }
}
