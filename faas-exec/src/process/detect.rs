//! Finding the interpreters and their versions.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a version probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A runtime family the process executor can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// Node.js (`nodejs:<major>`).
    Node,
    /// CPython (`python:<major>.<minor>`).
    Python,
}

impl Family {
    /// The family name in runtime kinds.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Node => "nodejs",
            Self::Python => "python",
        }
    }

    /// Prints the version on the first line and the real executable on the second. The real
    /// executable skips wrappers such as pyenv shims, which would need their own environment.
    pub(crate) fn probe_args(self) -> [&'static str; 2] {
        match self {
            Self::Node => [
                "-e",
                "console.log(process.versions.node + '\\n' + process.execPath)",
            ],
            Self::Python => [
                "-c",
                "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)",
            ],
        }
    }

    /// The runtime kind for an interpreter `version` (`20.20.2` → `nodejs:20`).
    fn kind(self, version: &str) -> Option<String> {
        let mut parts = version.trim().trim_start_matches('v').split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        match self {
            Self::Node => Some(format!("nodejs:{major}")),
            Self::Python => {
                let minor: u32 = parts.next()?.parse().ok()?;
                (major == 3).then(|| format!("python:{major}.{minor}"))
            }
        }
    }
}

/// A detected interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpreter {
    /// Its family.
    pub(crate) family: Family,
    /// The executable to start.
    pub(crate) path: PathBuf,
    /// The full version (`20.20.2`).
    pub(crate) version: String,
    /// The runtime kind it serves (`nodejs:20`).
    pub(crate) kind: String,
}

/// Finds `program` (a name looked up in `search_path`, or a path) and asks it for its version.
pub(crate) fn detect(
    family: Family,
    program: &OsStr,
    search_path: &OsStr,
) -> Result<Interpreter, String> {
    let shown = Path::new(program).display();
    let resolved = resolve(program, search_path).ok_or_else(|| format!("{shown}: not found"))?;
    let out = probe(&resolved, &family.probe_args())
        .map_err(|e| format!("{}: {e}", resolved.display()))?;
    let mut lines = out.lines();
    let version = lines.next().unwrap_or_default().trim().to_string();
    let kind = family
        .kind(&version)
        .ok_or_else(|| format!("{}: unsupported version {version:?}", resolved.display()))?;
    let path = lines
        .next()
        .map(|l| PathBuf::from(l.trim()))
        .filter(|p| p.is_absolute() && is_executable(p))
        .unwrap_or(resolved);
    Ok(Interpreter {
        family,
        path,
        version,
        kind,
    })
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `program` itself when it contains a `/`, else the first executable of that name on `search_path`.
fn resolve(program: &OsStr, search_path: &OsStr) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 || p.is_absolute() {
        return is_executable(p).then(|| p.to_path_buf());
    }
    std::env::split_paths(search_path)
        .map(|dir| dir.join(program))
        .find(|c| is_executable(c))
}

/// Runs `program args` and returns its stdout, bounded by [`PROBE_TIMEOUT`].
fn probe(program: &Path, args: &[&str]) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if started.elapsed() > PROBE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("version probe timed out".into());
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out).map_err(|e| e.to_string())?;
    }
    if !status.success() {
        return Err(format!("version probe failed ({status})"));
    }
    Ok(out)
}

/// The search path children get: the parent's `PATH`, or a conventional default.
pub(crate) fn default_search_path() -> OsString {
    std::env::var_os("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_versions() {
        assert_eq!(Family::Node.kind("v20.20.2").as_deref(), Some("nodejs:20"));
        assert_eq!(Family::Node.kind("22.1.0\n").as_deref(), Some("nodejs:22"));
        assert_eq!(
            Family::Python.kind("3.11.7").as_deref(),
            Some("python:3.11")
        );
        assert_eq!(Family::Python.kind("2.7.18"), None);
        assert_eq!(Family::Node.kind("garbage"), None);
    }

    #[test]
    fn missing_program_is_reported() {
        let e = detect(
            Family::Node,
            OsStr::new("definitely-not-an-interpreter-xyz"),
            &default_search_path(),
        )
        .unwrap_err();
        assert!(e.contains("not found"), "{e}");
        let e = detect(
            Family::Node,
            OsStr::new("/nonexistent/node"),
            OsStr::new(""),
        )
        .unwrap_err();
        assert!(e.contains("not found"), "{e}");
    }
}
