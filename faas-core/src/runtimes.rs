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

    /// Whether an action of `kind` (a resolved kind, or `blackbox`) can run here.
    pub fn can_run(&self, kind: &str) -> bool {
        if kind == "blackbox" {
            return self.blackbox;
        }
        self.kinds().any(|s| s.kind == kind)
    }

    /// The names of everything that can run here: every kind, plus `blackbox` when supported
    /// (what an invoker's ping reports to the schedulers).
    pub fn kind_names(&self) -> impl Iterator<Item = &str> {
        self.kinds()
            .map(|s| s.kind.as_str())
            .chain(self.blackbox.then_some("blackbox"))
    }

    /// The union of `manifests` (what a set of invokers can run together), or `None` when
    /// there are none.
    ///
    /// A kind offered by several keeps the first one's details. A family's default is the
    /// default that the most manifests can run (so `nodejs:default` resolves to a kind most
    /// invokers offer); ties go to the newest version. Blackbox is supported when any
    /// manifest supports it.
    pub fn merged<'a>(manifests: impl IntoIterator<Item = &'a RuntimeManifest>) -> Option<Self> {
        let manifests: Vec<&RuntimeManifest> = manifests.into_iter().collect();
        let first = manifests.first()?;
        if manifests.len() == 1 {
            return Some((*first).clone());
        }
        let mut out = Self::new();
        for m in &manifests {
            out.blackbox |= m.blackbox;
            for spec in m.kinds() {
                if !out.kinds().any(|s| s.kind == spec.kind) {
                    out.add(RuntimeSpec {
                        default: false,
                        ..spec.clone()
                    });
                }
            }
        }
        let families: Vec<String> = out.families.keys().cloned().collect();
        for family in families {
            let best = manifests
                .iter()
                .filter_map(|m| m.default_kind(&family))
                .max_by(|a, b| {
                    let runs = |k: &str| manifests.iter().filter(|m| m.can_run(k)).count();
                    runs(a).cmp(&runs(b)).then_with(|| version_order(a, b))
                });
            if let (Some(best), Some(specs)) = (best, out.families.get_mut(&family)) {
                for s in specs.iter_mut() {
                    s.default = s.kind == best;
                }
            }
        }
        Some(out)
    }

    /// The `runtimes` object of `GET /`: `{family: [{kind, image, deprecated, default, attached, requireMain}]}`.
    pub fn to_api_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.families).unwrap_or_default()
    }
}

/// Orders two kinds of one family by version, numerically where the parts are numbers
/// (`nodejs:8` < `nodejs:18` < `nodejs:20`).
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |k: &str| -> Vec<(u64, String)> {
        k.split_once(':')
            .map_or(k, |(_, v)| v)
            .split(['.', '-'])
            .map(|p| (p.parse().unwrap_or(0), p.to_string()))
            .collect()
    };
    parts(a).cmp(&parts(b))
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

    #[test]
    fn merged_is_the_union_with_the_most_runnable_default() {
        let mut docker = RuntimeManifest::new().with_blackbox(true);
        docker.add(RuntimeSpec::new("nodejs:18", true));
        docker.add(RuntimeSpec::new("python:3.11", true));
        let mut process = RuntimeManifest::new();
        process.add(RuntimeSpec::new("nodejs:20", true));
        assert_eq!(RuntimeManifest::merged([]), None);
        assert_eq!(RuntimeManifest::merged([&docker]), Some(docker.clone()));

        // One each: the tie goes to the newest version.
        let m = RuntimeManifest::merged([&docker, &process]).unwrap();
        assert_eq!(m.resolve("nodejs:default").unwrap().kind, "nodejs:20");
        assert_eq!(m.resolve("nodejs:18").unwrap().kind, "nodejs:18");
        assert_eq!(m.resolve("python:default").unwrap().kind, "python:3.11");
        assert!(m.supports_blackbox());
        assert_eq!(m.kinds().filter(|s| s.default).count(), 2);

        // Two invokers run nodejs:18, one nodejs:20: the default most can run wins.
        let m = RuntimeManifest::merged([&docker, &process, &docker]).unwrap();
        assert_eq!(m.resolve("nodejs:default").unwrap().kind, "nodejs:18");

        assert!(process.can_run("nodejs:20"));
        assert!(!process.can_run("nodejs:18"));
        assert!(!process.can_run("blackbox"));
        assert!(docker.can_run("blackbox"));
        let names: Vec<&str> = docker.kind_names().collect();
        assert_eq!(names, ["nodejs:18", "python:3.11", "blackbox"]);
    }

    #[test]
    fn versions_order_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(version_order("nodejs:8", "nodejs:18"), Less);
        assert_eq!(version_order("python:3.11", "python:3.9"), Greater);
        assert_eq!(version_order("nodejs:20", "nodejs:20"), Equal);
    }
}
