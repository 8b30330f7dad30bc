//! The `whisk.system` catalog: published packages of ready-made actions that every
//! namespace can invoke or bind (OpenWhisk's `openwhisk-catalog`).
//!
//! The built-in catalog is in the repository as real action files under `faas-http/catalog/`
//! (`utils`: `echo`, `cat`, `head`, `sort`, `split`, `date`, `hosturl`, `namespace`, `smash`;
//! `samples`: `helloWorld`, `greeting`, `wordCount`; `alarms`: the feed actions `alarm`,
//! `interval`, `once` of the built-in [alarms provider](crate::alarms)), one folder per package with a
//! `manifest.json`:
//!
//! ```json
//! { "package": "utils", "publish": true,
//!   "annotations": [{"key": "description", "value": "..."}],
//!   "parameters": [],
//!   "actions": [
//!     { "name": "echo", "file": "echo.js", "kind": "nodejs:default", "main": "main",
//!       "annotations": [], "parameters": [], "limits": {"memory": 128} } ] }
//! ```
//!
//! (`kind` defaults to `nodejs:default`; `publish` to `true`; the rest to OpenWhisk's
//! defaults.) Operators add their own catalog folders of the same layout with
//! [`Catalog::from_dir`], or install none.
//!
//! [`install`] makes the store match the catalog, idempotently: a package or action that is
//! already as the catalog says is left alone (no write, no new revision); one that differs is
//! replaced at its current revision; actions of a catalog package that the catalog no longer
//! lists are deleted. Every write is conditional (create-if-absent, replace-at-revision), so
//! several controllers installing at the same time cannot lose or duplicate anything: the
//! loser of a race reads again and finds the work done.

use std::path::Path;

use backon::Retryable;
use serde::Deserialize;
use serde_json::Value;

use faas_core::entity::{ActionPut, Entity, Package};
use faas_core::limits::ActionLimitsPut;
use faas_core::params::{Annotations, Parameters, SemVer};
use faas_core::store::{ListQuery, Revision, Versioned};
use faas_core::{
    Action, EntityKind, EntityName, EntityPath, Error, FullyQualifiedName, Result, RuntimeManifest,
    Store, SystemLimits,
};

/// The namespace that holds the catalog.
pub const SYSTEM_NAMESPACE: &str = "whisk.system";

/// How many times a conditional write is tried in all when it keeps losing races.
const RACE_ATTEMPTS: usize = 8;

/// Re-reads after a lost race at once: the winner's write is already there to read, so there is
/// nothing to wait for (every attempt reads the current revision first).
const RACE_RETRY: backon::ConstantBuilder = backon::ConstantBuilder::new()
    .with_delay(std::time::Duration::ZERO)
    .with_max_times(RACE_ATTEMPTS - 1);

/// One action of a catalog package, as its manifest describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionManifest {
    name: String,
    file: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    main: Option<String>,
    #[serde(default)]
    annotations: Parameters,
    #[serde(default)]
    parameters: Parameters,
    #[serde(default)]
    limits: Option<ActionLimitsPut>,
}

/// A package's `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageManifest {
    package: String,
    #[serde(default = "yes")]
    publish: bool,
    #[serde(default)]
    version: Option<SemVer>,
    #[serde(default)]
    annotations: Parameters,
    #[serde(default)]
    parameters: Parameters,
    actions: Vec<ActionManifest>,
}

fn yes() -> bool {
    true
}

/// One action of the catalog, with its code.
#[derive(Debug, Clone)]
pub struct CatalogAction {
    name: EntityName,
    kind: String,
    code: String,
    main: Option<String>,
    annotations: Annotations,
    parameters: Parameters,
    limits: Option<ActionLimitsPut>,
}

/// One package of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogPackage {
    name: EntityName,
    publish: bool,
    version: SemVer,
    annotations: Annotations,
    parameters: Parameters,
    actions: Vec<CatalogAction>,
}

impl CatalogPackage {
    /// The package's name.
    pub fn name(&self) -> &EntityName {
        &self.name
    }
    /// The names of its actions.
    pub fn action_names(&self) -> impl Iterator<Item = &EntityName> {
        self.actions.iter().map(|a| &a.name)
    }
}

/// A set of packages to install in `whisk.system`.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    packages: Vec<CatalogPackage>,
}

/// A shipped file: (name, content).
type ShippedFile = (&'static str, &'static str);

/// The built-in catalog's files: (package folder, manifest, files).
const BUILTIN: &[(&str, &str, &[ShippedFile])] = &[
    (
        "utils",
        include_str!("../catalog/utils/manifest.json"),
        &[
            ("echo.js", include_str!("../catalog/utils/echo.js")),
            ("cat.js", include_str!("../catalog/utils/cat.js")),
            ("head.js", include_str!("../catalog/utils/head.js")),
            ("sort.js", include_str!("../catalog/utils/sort.js")),
            ("split.js", include_str!("../catalog/utils/split.js")),
            ("date.js", include_str!("../catalog/utils/date.js")),
            (
                "namespace.js",
                include_str!("../catalog/utils/namespace.js"),
            ),
            ("hosturl.js", include_str!("../catalog/utils/hosturl.js")),
            ("smash.js", include_str!("../catalog/utils/smash.js")),
        ],
    ),
    (
        "samples",
        include_str!("../catalog/samples/manifest.json"),
        &[
            (
                "helloWorld.js",
                include_str!("../catalog/samples/helloWorld.js"),
            ),
            (
                "greeting.js",
                include_str!("../catalog/samples/greeting.js"),
            ),
            (
                "wordCount.js",
                include_str!("../catalog/samples/wordCount.js"),
            ),
        ],
    ),
    (
        "alarms",
        include_str!("../catalog/alarms/manifest.json"),
        &[("feed.js", include_str!("../catalog/alarms/feed.js"))],
    ),
];

impl Catalog {
    /// An empty catalog (installs nothing).
    pub fn empty() -> Self {
        Self::default()
    }

    /// The catalog shipped with this crate (`utils`, `samples`, and `alarms`, whose feed
    /// actions the controller answers itself: see [`crate::alarms`]).
    ///
    /// # Errors
    ///
    /// Only if a shipped manifest is malformed (a build defect the tests catch).
    pub fn builtin() -> Result<Self> {
        let mut packages = Vec::new();
        for (folder, manifest, files) in BUILTIN {
            packages.push(parse_package(folder, manifest, |file| {
                files
                    .iter()
                    .find(|(name, _)| *name == file)
                    .map(|(_, content)| (*content).to_string())
                    .ok_or_else(|| {
                        Error::internal(format!("catalog {folder}: no file '{file}' is shipped"))
                    })
            })?);
        }
        Ok(Self { packages })
    }

    /// A catalog from a folder with one sub-folder per package, each holding a
    /// `manifest.json` and the action files it names.
    ///
    /// # Errors
    ///
    /// `BadRequest` naming the file for an unreadable folder, a malformed manifest, a bad
    /// name or a missing action file.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::bad_request(format!("catalog folder {}: {e}", dir.display())))?;
        let mut folders: Vec<_> = entries
            .filter_map(std::result::Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("manifest.json").is_file())
            .collect();
        folders.sort();
        let mut packages = Vec::new();
        for folder in folders {
            let manifest_path = folder.join("manifest.json");
            let manifest = std::fs::read_to_string(&manifest_path)
                .map_err(|e| Error::bad_request(format!("{}: {e}", manifest_path.display())))?;
            let label = folder.display().to_string();
            packages.push(parse_package(&label, &manifest, |file| {
                let path = folder.join(file);
                if Path::new(file).components().count() != 1 {
                    return Err(Error::bad_request(format!(
                        "{label}: action file '{file}' must be a file name in the package folder"
                    )));
                }
                std::fs::read_to_string(&path)
                    .map_err(|e| Error::bad_request(format!("{}: {e}", path.display())))
            })?);
        }
        Ok(Self { packages })
    }

    /// This catalog with `other`'s packages added (a package of the same name is replaced).
    pub fn merged(mut self, other: Self) -> Self {
        for p in other.packages {
            self.packages.retain(|q| q.name != p.name);
            self.packages.push(p);
        }
        self
    }

    /// The packages.
    pub fn packages(&self) -> &[CatalogPackage] {
        &self.packages
    }
}

fn parse_package(
    label: &str,
    manifest: &str,
    mut read: impl FnMut(&str) -> Result<String>,
) -> Result<CatalogPackage> {
    let m: PackageManifest = serde_json::from_str(manifest)
        .map_err(|e| Error::bad_request(format!("catalog {label}: manifest.json: {e}")))?;
    let name = EntityName::new(m.package.as_str())
        .map_err(|e| Error::bad_request(format!("catalog {label}: package name: {e}")))?;
    let mut actions = Vec::with_capacity(m.actions.len());
    for a in m.actions {
        let action_name = EntityName::new(a.name.as_str())
            .map_err(|e| Error::bad_request(format!("catalog {label}: action name: {e}")))?;
        actions.push(CatalogAction {
            name: action_name,
            kind: a.kind.unwrap_or_else(|| "nodejs:default".to_string()),
            code: read(&a.file)?,
            main: a.main,
            annotations: a.annotations,
            parameters: a.parameters,
            limits: a.limits,
        });
    }
    Ok(CatalogPackage {
        name,
        publish: m.publish,
        version: m.version.unwrap_or_default(),
        annotations: m.annotations,
        parameters: m.parameters,
        actions,
    })
}

/// What [`install`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstallReport {
    /// Entities written (created or replaced).
    pub written: usize,
    /// Entities already as the catalog says.
    pub unchanged: usize,
    /// Stale actions deleted.
    pub deleted: usize,
    /// Actions skipped because this platform offers no runtime for their kind.
    pub skipped: Vec<String>,
}

/// Makes `whisk.system` in `store` match `catalog` (see the module documentation).
///
/// Actions whose kind `manifest` does not offer are skipped (and reported), so a platform
/// without Node.js still installs the rest.
///
/// # Errors
///
/// Store failures, or a conditional write that kept losing races.
pub async fn install(
    store: &dyn Store,
    catalog: &Catalog,
    limits: &SystemLimits,
    manifest: &RuntimeManifest,
) -> Result<InstallReport> {
    let ns = EntityPath::new(SYSTEM_NAMESPACE)?;
    let mut report = InstallReport::default();
    let total = catalog.packages.len();
    for (i, pkg) in catalog.packages.iter().enumerate() {
        // Progress on the console: a catalog over a remote store takes a while.
        tracing::info!(
            "installing the catalog: package {}/{total} {} ({} actions)",
            i + 1,
            pkg.name,
            pkg.actions.len()
        );
        let fqn = FullyQualifiedName::new(ns.clone(), pkg.name.clone());
        let desired = Package {
            namespace: ns.clone(),
            name: pkg.name.clone(),
            version: pkg.version,
            publish: pkg.publish,
            binding: None,
            parameters: pkg.parameters.clone(),
            annotations: pkg.annotations.clone(),
            updated: faas_core::entity::now_ms(),
        };
        converge(store, &fqn, &mut report, |old| match old {
            Some(Entity::Package(p)) if same_package(p, &desired) => None,
            _ => Some(Entity::Package(desired.clone())),
        })
        .await?;
        let path = ns.join(&pkg.name);
        let mut wanted = Vec::new();
        for a in &pkg.actions {
            let afqn = FullyQualifiedName::new(path.clone(), a.name.clone());
            let action = match build_action(&afqn, a, limits, manifest) {
                Ok(action) => action,
                Err(e) => {
                    tracing::warn!(action = %afqn.doc_id(), error = %e, "catalog action skipped");
                    report.skipped.push(afqn.doc_id());
                    continue;
                }
            };
            wanted.push(a.name.clone());
            converge(store, &afqn, &mut report, |old| match old {
                Some(Entity::Action(o)) if same_action(o, &action) => None,
                _ => Some(Entity::Action(action.clone())),
            })
            .await?;
        }
        let present = store
            .list_entities(&path, EntityKind::Action, ListQuery::default())
            .await?;
        for e in present {
            if wanted.contains(e.name()) {
                continue;
            }
            let id = FullyQualifiedName::new(e.namespace().clone(), e.name().clone());
            if let Ok(v) = store.get_entity(&id).await {
                match store.delete_entity(&id, &v.rev).await {
                    Ok(()) => report.deleted += 1,
                    Err(Error::NotFound { .. } | Error::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(report)
}

fn build_action(
    fqn: &FullyQualifiedName,
    a: &CatalogAction,
    limits: &SystemLimits,
    manifest: &RuntimeManifest,
) -> Result<Action> {
    let mut exec = serde_json::json!({"kind": a.kind, "code": a.code});
    if let (Some(main), Some(o)) = (&a.main, exec.as_object_mut()) {
        o.insert("main".into(), Value::String(main.clone()));
    }
    let put = ActionPut {
        exec: Some(exec),
        parameters: Some(a.parameters.clone()),
        limits: a.limits,
        annotations: Some(a.annotations.clone()),
        ..ActionPut::default()
    };
    put.into_action(fqn, None, limits, manifest)
}

/// Writes `fqn` until the store holds what `decide` wants (it answers `None` when the current
/// document is fine), re-reading after each lost race, [`RACE_ATTEMPTS`] times at most.
async fn converge(
    store: &dyn Store,
    fqn: &FullyQualifiedName,
    report: &mut InstallReport,
    decide: impl Fn(Option<&Entity>) -> Option<Entity>,
) -> Result<()> {
    let lost_race = |e: &Error| matches!(e, Error::AlreadyExists { .. } | Error::Conflict { .. });
    // One attempt: `true` when it wrote, `false` when the stored document was fine.
    let attempt = async || -> Result<bool> {
        let current = match store.get_entity(fqn).await {
            Ok(Versioned { value, rev }) => Some((value, rev)),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let Some(next) = decide(current.as_ref().map(|(v, _)| v)) else {
            return Ok(false);
        };
        let rev: Option<&Revision> = current.as_ref().map(|(_, r)| r);
        store.put_entity(&next, rev).await.map(|_| true)
    };
    let wrote = attempt
        .retry(RACE_RETRY)
        .when(lost_race)
        .await
        .map_err(|e| {
            if lost_race(&e) {
                Error::unavailable(format!(
                    "installing {} kept losing races with other writers",
                    fqn.doc_id()
                ))
            } else {
                e
            }
        })?;
    if wrote {
        report.written += 1;
    } else {
        report.unchanged += 1;
    }
    Ok(())
}

fn same_package(a: &Package, b: &Package) -> bool {
    a.publish == b.publish
        && a.binding.is_none()
        && a.version == b.version
        && a.parameters == b.parameters
        && a.annotations == b.annotations
}

fn same_action(a: &Action, b: &Action) -> bool {
    a.exec == b.exec
        && a.parameters == b.parameters
        && a.annotations == b.annotations
        && a.limits == b.limits
        && a.publish == b.publish
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses() {
        let c = Catalog::builtin().unwrap();
        let names: Vec<&str> = c.packages().iter().map(|p| p.name().as_str()).collect();
        assert_eq!(names, ["utils", "samples", "alarms"]);
        let alarms: Vec<&str> = c.packages()[2]
            .action_names()
            .map(EntityName::as_str)
            .collect();
        assert_eq!(alarms, ["alarm", "once", "interval"]);
        let utils: Vec<&str> = c.packages()[0]
            .action_names()
            .map(EntityName::as_str)
            .collect();
        assert_eq!(
            utils,
            [
                "echo",
                "cat",
                "head",
                "sort",
                "split",
                "date",
                "namespace",
                "hosturl",
                "smash"
            ]
        );
        for p in c.packages() {
            assert!(p.publish, "{} is published", p.name());
            for a in &p.actions {
                assert!(a.code.contains("function main"), "{}: real code", a.name);
            }
        }
    }

    #[test]
    fn a_catalog_folder_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("tools");
        std::fs::create_dir(&pkg).unwrap();
        std::fs::write(
            pkg.join("manifest.json"),
            r#"{"package": "tools", "actions": [{"name": "up", "file": "up.py", "kind": "python:default"}]}"#,
        )
        .unwrap();
        std::fs::write(pkg.join("up.py"), "def main(a):\n    return a\n").unwrap();
        let c = Catalog::from_dir(dir.path()).unwrap();
        assert_eq!(c.packages().len(), 1);
        assert_eq!(c.packages()[0].actions[0].kind, "python:default");
        let merged = Catalog::builtin().unwrap().merged(c);
        assert_eq!(merged.packages().len(), 4);

        std::fs::write(
            pkg.join("manifest.json"),
            r#"{"package": "tools", "actions": [{"name": "up", "file": "../up.py"}]}"#,
        )
        .unwrap();
        let e = Catalog::from_dir(dir.path()).unwrap_err();
        assert!(e.to_string().contains("must be a file name"), "{e}");
        std::fs::write(
            pkg.join("manifest.json"),
            r#"{"package": "bad/name", "actions": []}"#,
        )
        .unwrap();
        assert!(Catalog::from_dir(dir.path()).is_err());
        assert!(Catalog::from_dir(&dir.path().join("missing")).is_err());
    }

    fn fixtures() -> (std::sync::Arc<dyn Store>, SystemLimits, RuntimeManifest) {
        (
            std::sync::Arc::new(faas_store::MemoryStore::new()),
            SystemLimits::default(),
            RuntimeManifest::default_local(),
        )
    }

    async fn stored_action(store: &dyn Store, id: &str) -> Option<(Action, Revision)> {
        let fqn = FullyQualifiedName::resolve(id, SYSTEM_NAMESPACE).unwrap();
        match store.get_entity(&fqn).await {
            Ok(Versioned {
                value: Entity::Action(a),
                rev,
            }) => Some((a, rev)),
            _ => None,
        }
    }

    #[tokio::test]
    async fn install_is_idempotent_and_upgrades() {
        let (store, limits, manifest) = fixtures();
        let catalog = Catalog::builtin().unwrap();
        let first = install(store.as_ref(), &catalog, &limits, &manifest)
            .await
            .unwrap();
        assert_eq!(first.written, 3 + 15, "three packages, fifteen actions");
        assert!(first.skipped.is_empty());
        let (echo, rev) = stored_action(store.as_ref(), "/whisk.system/utils/echo")
            .await
            .unwrap();
        assert!(echo.exec.code().unwrap().contains("function main"));
        let pkg = store
            .get_entity(&FullyQualifiedName::resolve("/whisk.system/utils", "x").unwrap())
            .await
            .unwrap();
        match pkg.value {
            Entity::Package(p) => assert!(p.publish),
            other => panic!("not a package: {other:?}"),
        }

        // Again: nothing is written, no revision changes.
        let again = install(store.as_ref(), &catalog, &limits, &manifest)
            .await
            .unwrap();
        assert_eq!(again.written, 0);
        assert_eq!(again.unchanged, 18);
        assert_eq!(
            stored_action(store.as_ref(), "/whisk.system/utils/echo")
                .await
                .unwrap()
                .1,
            rev
        );

        // An upgrade: one action changed, one dropped; only they are touched.
        let mut next = catalog.clone();
        next.packages[0].actions[0].code = "function main(a) { return {v: 2} }".into();
        next.packages[0]
            .actions
            .retain(|a| a.name.as_str() != "smash");
        let up = install(store.as_ref(), &next, &limits, &manifest)
            .await
            .unwrap();
        assert_eq!((up.written, up.deleted), (1, 1));
        let (echo2, rev2) = stored_action(store.as_ref(), "/whisk.system/utils/echo")
            .await
            .unwrap();
        assert_ne!(rev2, rev);
        assert!(echo2.exec.code().unwrap().contains("v: 2"));
        assert!(
            stored_action(store.as_ref(), "/whisk.system/utils/smash")
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn racing_installs_agree() {
        let (store, limits, manifest) = fixtures();
        let catalog = Catalog::builtin().unwrap();
        let runs = (0..4).map(|_| install(store.as_ref(), &catalog, &limits, &manifest));
        let reports = futures::future::join_all(runs).await;
        let mut written = 0;
        for r in reports {
            written += r.unwrap().written;
        }
        assert!(
            written >= 18,
            "every entity written at least once: {written}"
        );
        let list = store
            .list_entities(
                &EntityPath::new("whisk.system/utils").unwrap(),
                EntityKind::Action,
                ListQuery::default(),
            )
            .await
            .unwrap();
        assert_eq!(list.len(), 9);
        let again = install(store.as_ref(), &catalog, &limits, &manifest)
            .await
            .unwrap();
        assert_eq!(again.written, 0, "the racers left it complete");
    }

    #[tokio::test]
    async fn kinds_the_platform_lacks_are_skipped() {
        let (store, limits, _) = fixtures();
        let mut manifest = RuntimeManifest::new();
        manifest.add(faas_core::RuntimeSpec::new("python:3.11", true));
        let r = install(
            store.as_ref(),
            &Catalog::builtin().unwrap(),
            &limits,
            &manifest,
        )
        .await
        .unwrap();
        assert_eq!(r.skipped.len(), 15);
        assert_eq!(r.written, 3, "the packages still exist");
    }
}
