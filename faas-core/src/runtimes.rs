//! The runtime manifest: which action kinds a platform offers (OpenWhisk's `runtimes.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One runtime kind, e.g. `nodejs:20`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSpec {
    /// `family:version`.
    pub kind: String,
    /// The image that runs it (for executors that use images).
    pub image: String,
    /// Whether this is the family's default (`family:default` resolves to it).
    #[serde(default)]
    pub default: bool,
    /// Deprecated kinds can be read and deleted but not created, updated or invoked.
    #[serde(default)]
    pub deprecated: bool,
    /// Whether code is stored as an attachment (informational here).
    #[serde(default)]
    pub attached: bool,
    /// Whether actions of this kind must name `main`.
    #[serde(default)]
    pub require_main: bool,
}

impl RuntimeSpec {
    /// A kind with an image name derived from it (`faas-runtime-<family>:<version>`).
    pub fn new(kind: impl Into<String>, default: bool) -> Self {
        let kind = kind.into();
        let image = format!("faas-runtime-{}", kind.replace(':', "-"));
        Self {
            kind,
            image,
            default,
            deprecated: false,
            attached: false,
            require_main: false,
        }
    }
    /// The family (`nodejs` of `nodejs:20`).
    pub fn family(&self) -> &str {
        self.kind.split(':').next().unwrap_or(&self.kind)
    }
}

/// The kinds offered, grouped by family.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeManifest {
    families: BTreeMap<String, Vec<RuntimeSpec>>,
    /// Whether blackbox actions (any image) can run; only container executors can.
    #[serde(default)]
    blackbox: bool,
}

impl RuntimeManifest {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// A manifest with `nodejs:20` and `python:3.11` as defaults; executors detect the real
    /// versions and build their own, this one serves examples and tests.
    pub fn default_local() -> Self {
        let mut m = Self::new();
        m.add(RuntimeSpec::new("nodejs:20", true));
        m.add(RuntimeSpec::new("python:3.11", true));
        m
    }

    /// Adds a kind. A new default replaces the family's previous default.
    pub fn add(&mut self, spec: RuntimeSpec) {
        let fam = self.families.entry(spec.family().to_string()).or_default();
        if spec.default {
            for s in fam.iter_mut() {
                s.default = false;
            }
        }
        fam.retain(|s| s.kind != spec.kind);
        fam.push(spec);
    }

    /// Says whether blackbox actions (`"kind": "blackbox"`, any image) can run here; only
    /// then may they be created. Off by default: a local-process executor cannot run images.
    pub fn with_blackbox(mut self, supported: bool) -> Self {
        self.blackbox = supported;
        self
    }

    /// Whether blackbox actions can run here.
    pub fn supports_blackbox(&self) -> bool {
        self.blackbox
    }

    /// The error for a kind this platform does not offer (OpenWhisk's text, listing the
    /// valid kinds).
    pub fn unsupported(&self, kind: &str) -> Error {
        let mut valid: Vec<String> = self.kinds().map(|s| s.kind.clone()).collect();
        valid.extend(
            self.families
                .keys()
                .filter(|f| self.default_kind(f).is_some())
                .map(|f| format!("{f}:default")),
        );
        if self.blackbox {
            valid.push("blackbox".into());
        }
        valid.push("sequence".into());
        valid.sort();
        Error::bad_request(format!(
            "The specified runtime '{kind}' is not supported by this platform. Valid values are: {}.",
            valid.join(", ")
        ))
    }

    /// All kinds.
    pub fn kinds(&self) -> impl Iterator<Item = &RuntimeSpec> {
        self.families.values().flatten()
    }

    /// The default kind of `family`.
    pub fn default_kind(&self, family: &str) -> Option<&str> {
        self.families
            .get(family)?
            .iter()
            .find(|s| s.default)
            .map(|s| s.kind.as_str())
    }

    /// Looks up `kind`, resolving `family:default`.
    pub fn resolve(&self, kind: &str) -> Result<&RuntimeSpec> {
        let found = match kind.strip_suffix(":default") {
            Some(fam) => self
                .families
                .get(fam)
                .and_then(|v| v.iter().find(|s| s.default)),
            None => self.kinds().find(|s| s.kind == kind),
        };
        found.ok_or_else(|| self.unsupported(kind))
    }

    /// The `runtimes` object of `GET /`: `{family: [{kind, image, deprecated, default, attached, requireMain}]}`.
    pub fn to_api_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.families).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_default() {
        let m = RuntimeManifest::default_local();
        assert_eq!(m.resolve("nodejs:default").unwrap().kind, "nodejs:20");
        assert_eq!(m.resolve("python:3.11").unwrap().kind, "python:3.11");
        let e = m.resolve("java:8").unwrap_err().to_string();
        assert!(e.contains("nodejs:default"), "{e}");
        assert!(!e.contains("blackbox"), "not offered by default: {e}");
        let e = m
            .clone()
            .with_blackbox(true)
            .resolve("java:8")
            .unwrap_err()
            .to_string();
        assert!(e.contains("blackbox"), "{e}");
        let js = m.to_api_json();
        assert_eq!(js["nodejs"][0]["requireMain"], serde_json::json!(false));
    }
}
