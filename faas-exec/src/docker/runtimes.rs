//! Which runtime kinds the local images provide: every image labelled `faas.kind=<kind>` (set by
//! the recipes in `faas-exec/runtimes/docker/`) runs that kind.

use std::collections::{BTreeMap, HashMap};

use faas_core::{RuntimeManifest, RuntimeSpec};

/// The label naming the kind an image runs.
pub(crate) const KIND_LABEL: &str = "faas.kind";

/// One local image offering a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundImage {
    /// `nodejs:18`.
    pub(crate) kind: String,
    /// A tag to run it by (`faas-runtime-nodejs:18`), or its id when untagged.
    pub(crate) image: String,
    /// Creation time (seconds since the epoch); the newest image of a kind wins.
    pub(crate) created: i64,
}

/// The image to run `kind` from a listing entry: a real tag when there is one.
pub(crate) fn found_image(
    id: &str,
    repo_tags: &[String],
    labels: &HashMap<String, String>,
    created: i64,
) -> Option<FoundImage> {
    let kind = labels.get(KIND_LABEL)?.trim();
    if !valid_kind(kind) {
        return None;
    }
    let image = repo_tags
        .iter()
        .find(|t| !t.starts_with("<none>"))
        .cloned()
        .unwrap_or_else(|| id.to_string());
    Some(FoundImage {
        kind: kind.to_string(),
        image,
        created,
    })
}

/// `family:version` with a non-empty family of `[a-z0-9_-]` and a version.
fn valid_kind(kind: &str) -> bool {
    match kind.split_once(':') {
        Some((family, version)) => {
            !family.is_empty()
                && family
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
                && !version.is_empty()
                && family != "blackbox"
                && version != "default"
        }
        None => false,
    }
}

/// Numeric parts of a version (`3.11` → `[3, 11]`); non-numeric parts count as 0.
fn version_key(kind: &str) -> Vec<u64> {
    kind.split_once(':')
        .map(|(_, v)| v)
        .unwrap_or_default()
        .split(['.', '-'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// The manifest for `images` plus explicitly configured `(kind, image)` pairs (which win). The
/// highest version of each family is its default.
pub(crate) fn manifest(images: Vec<FoundImage>, explicit: &[(String, String)]) -> RuntimeManifest {
    let mut by_kind: BTreeMap<String, FoundImage> = BTreeMap::new();
    for img in images {
        match by_kind.get(&img.kind) {
            Some(have) if have.created >= img.created => {}
            _ => {
                by_kind.insert(img.kind.clone(), img);
            }
        }
    }
    for (kind, image) in explicit {
        by_kind.insert(
            kind.clone(),
            FoundImage {
                kind: kind.clone(),
                image: image.clone(),
                created: i64::MAX,
            },
        );
    }
    let mut families: BTreeMap<String, Vec<FoundImage>> = BTreeMap::new();
    for img in by_kind.into_values() {
        let family = img.kind.split(':').next().unwrap_or_default().to_string();
        families.entry(family).or_default().push(img);
    }
    let mut m = RuntimeManifest::new();
    for (_, mut imgs) in families {
        imgs.sort_by_key(|i| version_key(&i.kind));
        let last = imgs.len().saturating_sub(1);
        for (i, img) in imgs.into_iter().enumerate() {
            let mut spec = RuntimeSpec::new(img.kind, i == last);
            spec.image = img.image;
            m.add(spec);
        }
    }
    // Any image that speaks the action-proxy protocol runs as a blackbox action.
    m.with_blackbox(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kind: &str) -> HashMap<String, String> {
        HashMap::from([(KIND_LABEL.to_string(), kind.to_string())])
    }

    #[test]
    fn images_make_a_manifest() {
        let tags = |t: &str| vec![t.to_string()];
        let found = [
            found_image(
                "sha256:a",
                &tags("faas-runtime-nodejs:18"),
                &labels("nodejs:18"),
                1,
            ),
            found_image(
                "sha256:b",
                &tags("faas-runtime-nodejs:20"),
                &labels("nodejs:20"),
                2,
            ),
            found_image(
                "sha256:c",
                &tags("<none>:<none>"),
                &labels("python:3.11"),
                3,
            ),
            found_image("sha256:d", &tags("x:1"), &labels("python:3.9"), 4),
            // An older build of the same kind loses.
            found_image("sha256:e", &tags("old:1"), &labels("python:3.11"), 0),
            found_image("sha256:f", &tags("bad:1"), &labels("no-version"), 5),
            found_image("sha256:g", &tags("bb:1"), &labels("blackbox:1"), 5),
            found_image("sha256:h", &tags("plain:1"), &HashMap::new(), 5),
        ];
        let images: Vec<_> = found.into_iter().flatten().collect();
        assert_eq!(images.len(), 5);
        let m = manifest(images, &[]);
        assert_eq!(m.default_kind("nodejs"), Some("nodejs:20"));
        assert_eq!(m.default_kind("python"), Some("python:3.11"));
        assert_eq!(m.resolve("python:3.11").unwrap().image, "sha256:c");
        assert_eq!(
            m.resolve("nodejs:18").unwrap().image,
            "faas-runtime-nodejs:18"
        );
        assert_eq!(m.resolve("nodejs:default").unwrap().kind, "nodejs:20");
        assert!(m.resolve("blackbox:1").is_err());
        assert!(m.resolve("no-version").is_err());

        let m = manifest(vec![], &[("nodejs:22".into(), "mine:22".into())]);
        assert_eq!(m.resolve("nodejs:default").unwrap().image, "mine:22");
    }

    #[test]
    fn versions_order_numerically() {
        assert!(version_key("python:3.10") > version_key("python:3.9"));
        assert!(version_key("nodejs:20") > version_key("nodejs:18"));
    }
}
