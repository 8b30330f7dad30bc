//! The sandbox around each runner process: bubblewrap for the namespaces and the file-system
//! view, `setpriv` for the unprivileged uid (when the platform runs as root), seccomp filters
//! compiled by [`seccompiler`], and cgroups for memory and pids. See the
//! [executor's documentation](super) for what each layer stops.
//!
//! A sandbox is started as
//!
//! ```text
//! sh -c <enter the cgroups, open the filters> \
//!   bwrap --unshare-pid --unshare-ipc --unshare-uts --unshare-cgroup-try --die-with-parent \
//!         <read-only /usr, runtime and a few /etc files> --proc /proc --dev /dev \
//!         --tmpfs /tmp --bind <work dir> /action --ro-bind <runner> /faas/runner.js \
//!         --add-seccomp-fd 3 --add-seccomp-fd 4 -- \
//!   [setpriv --reuid U --regid U --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs --] \
//!   node /faas/runner.js
//! ```
//!
//! The shell writes its own pid into the sandbox's `cgroup.procs` before it executes bubblewrap,
//! so every process of the sandbox is born inside the cgroup (a pid written after the start
//! would race with the first `fork`).

pub(crate) mod cgroup;
mod seccomp;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use faas_core::{Error, Result};

use super::BACKEND;
use super::detect::Interpreter;
use cgroup::{Cgroup, Layout, Limits, Root};

/// Where the sandbox's private directory appears inside it (its working directory and `HOME`).
pub(crate) const ACTION_DIR: &str = "/action";
/// Where the runner scripts appear inside the sandbox.
const RUNNER_DIR: &str = "/faas";

/// Enters the cgroups named by the arguments, opens the two seccomp filters as fds 3 and 4
/// and executes the rest of the arguments. Arguments: `<filter> <filter> <n> <procs file>×n
/// <program> <args>...`.
const ENTER: &str = r#"a=$1; b=$2; n=$3; shift 3
while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done
exec "$@" 3<"$a" 4<"$b""#;

/// Default most processes and threads of one sandbox (Docker executor: the same).
pub const DEFAULT_PIDS_LIMIT: u64 = 1024;
/// Default first uid of the range sandboxes run as, when the platform runs as root.
pub const DEFAULT_UID_BASE: u32 = 1_900_000_000;
/// Default number of uids in that range (each sandbox gets the next one, round robin).
pub const DEFAULT_UID_COUNT: u32 = 65_536;

/// Whether runners are sandboxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SandboxMode {
    /// Every runner in a sandbox; the executor refuses to start when one cannot be made.
    #[default]
    On,
    /// **Insecure**: runners are plain child processes of the platform, as its own user, with
    /// no memory limit; action code can read the platform's memory, environment and files.
    Off,
}

/// The network a sandbox gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SandboxNetwork {
    /// The host's network (as OpenWhisk actions have), loopback included.
    #[default]
    Host,
    /// A network namespace of its own with only a loopback interface.
    None,
}

/// Settings of the sandbox (see [`ProcessExecutorBuilder`](super::ProcessExecutorBuilder)).
#[derive(Debug, Clone)]
pub(crate) struct SandboxConfig {
    pub(crate) mode: SandboxMode,
    pub(crate) network: SandboxNetwork,
    pub(crate) pids_limit: u64,
    pub(crate) uid_base: u32,
    pub(crate) uid_count: u32,
    pub(crate) bwrap: OsString,
    /// Whether a root platform sets the kernel's cgroup `favordynmods` (see
    /// [`cgroup::favor_dynmods`]).
    pub(crate) favordynmods: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            mode: SandboxMode::On,
            network: SandboxNetwork::Host,
            pids_limit: DEFAULT_PIDS_LIMIT,
            uid_base: DEFAULT_UID_BASE,
            uid_count: DEFAULT_UID_COUNT,
            bwrap: "bwrap".into(),
            favordynmods: true,
        }
    }
}

/// How the runner gets its unprivileged uid.
#[derive(Debug)]
enum Identity {
    /// The platform is root: bubblewrap runs privileged (no user namespace) and `setpriv`
    /// switches to a uid of the range before the runner starts.
    Root {
        setpriv: PathBuf,
        base: u32,
        count: u32,
        next: AtomicU32,
    },
    /// The platform is an ordinary user: bubblewrap makes a user namespace in which the
    /// runner has the platform's uid and no capabilities, and no further user namespace can
    /// be made.
    User,
}

/// A read-only view of the host inside every sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
enum View {
    Bind(PathBuf),
    Symlink { target: PathBuf, at: PathBuf },
}

/// Everything needed to start sandboxed runners; built once per executor.
pub(crate) struct Jail {
    bwrap: PathBuf,
    identity: Identity,
    cgroups: Root,
    filters: [PathBuf; 2],
    view: Vec<View>,
    /// The directories above the view's mount points (and the runner directory), shallowest
    /// first.
    parents: Vec<PathBuf>,
    network: SandboxNetwork,
    pids_limit: u64,
}

impl fmt::Debug for Jail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jail")
            .field("bwrap", &self.bwrap)
            .field("identity", &self.identity)
            .field("cgroups", &self.cgroups)
            .field("network", &self.network)
            .field("pids_limit", &self.pids_limit)
            .finish_non_exhaustive()
    }
}

/// Host files a runtime may read: name resolution, TLS roots, time zone, the loader cache.
/// Nothing else of `/etc` (no `passwd`, no `shadow`) is visible.
const ETC: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
];

/// Top-level directories that are symlinks into `/usr` on merged-`/usr` systems.
const TOP: &[&str] = &["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

fn unavailable(why: impl fmt::Display) -> Error {
    Error::unavailable(format!(
        "the process executor cannot sandbox actions: {why}. Fix that, or run actions \
         WITHOUT isolation (action code can then read the platform's memory, environment and \
         files) with the executor URL `process:?sandbox=off`"
    ))
}

/// Finds `program` (a path, or a name on `PATH`).
fn find_program(program: &OsStr, search_path: &OsStr) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::split_paths(search_path)
        .map(|d| d.join(program))
        .find(|c| c.is_file())
}

/// The read-only host paths every sandbox sees: `/usr`, the top-level directories (symlinks
/// stay symlinks), the chosen `/etc` files, and each interpreter's installation directory when
/// it lives outside `/usr` (`/opt/node`, `~/.pyenv/versions/3.11.7`).
fn view(interpreters: &[&Interpreter]) -> Vec<View> {
    let mut v = vec![View::Bind("/usr".into())];
    for top in TOP {
        let p = Path::new(top);
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(p) {
                    v.push(View::Symlink {
                        target,
                        at: p.to_path_buf(),
                    });
                }
            }
            Ok(m) if m.is_dir() => v.push(View::Bind(p.to_path_buf())),
            _ => {}
        }
    }
    for etc in ETC {
        if Path::new(etc).exists() {
            v.push(View::Bind(PathBuf::from(etc)));
        }
    }
    for i in interpreters {
        if i.path.starts_with("/usr") {
            continue;
        }
        // `<prefix>/bin/<exe>` → the installation `<prefix>` (its libraries live there);
        // otherwise only the interpreter's own directory.
        let Some(dir) = i.path.parent() else { continue };
        let root = match (dir.file_name(), dir.parent()) {
            (Some(name), Some(prefix)) if name == "bin" && prefix != Path::new("/") => prefix,
            _ => dir,
        };
        if root != Path::new("/") && !v.contains(&View::Bind(root.to_path_buf())) {
            v.push(View::Bind(root.to_path_buf()));
        }
    }
    v
}

/// The directories above the mount points of `view` and the runner directory, without
/// duplicates, shallowest first.
fn parents(view: &[View]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let targets = view
        .iter()
        .map(|v| match v {
            View::Bind(p) => p.as_path(),
            View::Symlink { at, .. } => at.as_path(),
        })
        .collect::<Vec<_>>();
    for t in targets {
        let mut ancestors: Vec<&Path> = t
            .ancestors()
            .skip(1)
            .filter(|a| *a != Path::new("/") && !a.as_os_str().is_empty())
            .collect();
        ancestors.reverse();
        for a in ancestors {
            if !out.iter().any(|o| o == a) {
                out.push(a.to_path_buf());
            }
        }
    }
    if !out.iter().any(|o| o == Path::new(RUNNER_DIR)) {
        out.push(PathBuf::from(RUNNER_DIR));
    }
    out.sort_by_key(|p| p.components().count());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_made_shallowest_first() {
        let view = vec![
            View::Bind("/usr".into()),
            View::Symlink {
                target: "usr/lib".into(),
                at: "/lib".into(),
            },
            View::Bind("/etc/ssl".into()),
            View::Bind("/etc/hosts".into()),
            View::Bind("/root/.pyenv/versions/3.11.7".into()),
        ];
        let p: Vec<PathBuf> = parents(&view);
        let want: Vec<PathBuf> = [
            "/etc",
            "/root",
            "/faas",
            "/root/.pyenv",
            "/root/.pyenv/versions",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(p, want);
    }
}

impl Jail {
    /// Checks what a sandbox needs (bubblewrap, `setpriv` when root, a cgroup hierarchy with
    /// memory and pids, seccomp), writes the filters into `runner_dir`, and starts one
    /// sandboxed version probe of the first interpreter to prove it works on this machine.
    pub(crate) fn build(
        config: &SandboxConfig,
        interpreters: &[&Interpreter],
        runner_dir: &Path,
        search_path: &OsStr,
    ) -> Result<Self> {
        let bwrap = find_program(&config.bwrap, search_path).ok_or_else(|| {
            unavailable(format!(
                "{} not found (install Debian's `bubblewrap` package; scripts/setup.sh does)",
                Path::new(&config.bwrap).display()
            ))
        })?;
        let identity = if nix::unistd::geteuid().is_root() {
            let setpriv = find_program(OsStr::new("setpriv"), search_path)
                .ok_or_else(|| unavailable("setpriv (util-linux) not found"))?;
            if config.uid_count == 0 || config.uid_base == 0 {
                return Err(Error::bad_request(
                    "the sandbox uid range must not be empty nor start at 0",
                ));
            }
            Identity::Root {
                setpriv,
                base: config.uid_base,
                count: config.uid_count,
                next: AtomicU32::new(0),
            }
        } else {
            Identity::User
        };
        let filters = seccomp::compile().map_err(unavailable)?;
        let files = [
            runner_dir.join("seccomp-deny.bpf"),
            runner_dir.join("seccomp-clone3.bpf"),
        ];
        for (file, bytes) in files.iter().zip([&filters.deny, &filters.no_clone3]) {
            std::fs::write(file, bytes).map_err(|e| Error::backend(BACKEND, false, e))?;
        }
        let layout = Layout::detect().map_err(unavailable)?;
        if config.favordynmods && matches!(identity, Identity::Root { .. }) {
            match cgroup::favor_dynmods() {
                cgroup::Dynmods::Already => {}
                cgroup::Dynmods::Set(point) => tracing::info!(
                    mount = %point.display(),
                    "cgroups remounted with favordynmods: a sandbox start no longer waits \
                     for an RCU grace period when it enters its cgroups (process:?favordynmods=off \
                     leaves the mount alone)"
                ),
                cgroup::Dynmods::NoCgroup2 => tracing::info!(
                    "no cgroup2 mount to set favordynmods on: each sandbox start waits about \
                     one RCU grace period to enter its cgroups"
                ),
                cgroup::Dynmods::Failed(why) => tracing::warn!(
                    "{why}: each sandbox start waits about one RCU grace period to enter its \
                     cgroups"
                ),
            }
        }
        let cgroups = layout.create_root().map_err(unavailable)?;
        tracing::debug!(version = ?layout.version(), ?cgroups, "sandbox cgroups");
        let view = view(interpreters);
        let parents = parents(&view);
        let jail = Self {
            bwrap,
            identity,
            cgroups,
            filters: files,
            view,
            parents,
            network: config.network,
            pids_limit: config.pids_limit,
        };
        if let Some(first) = interpreters.first() {
            jail.probe(first, runner_dir)?;
        }
        Ok(jail)
    }

    /// Runs the interpreter's version probe in a full sandbox, bounded in time.
    fn probe(&self, interp: &Interpreter, runner_dir: &Path) -> Result<()> {
        let dir = tempfile::Builder::new()
            .prefix("faas-probe-")
            .tempdir_in(runner_dir.parent().unwrap_or(runner_dir))
            .map_err(|e| Error::backend(BACKEND, false, e))?;
        let sandbox = self
            .prepare("probe", 128, dir.path())
            .map_err(|e| unavailable(format!("cannot make a cgroup: {e}")))?;
        let mut cmd = std::process::Command::new("/bin/sh");
        let probe: Vec<OsString> = interp
            .family
            .probe_args()
            .iter()
            .map(OsString::from)
            .collect();
        cmd.args(sandbox.args(self, interp, &probe, &[]))
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| unavailable(format!("cannot start sh: {e}")))?;
        let started = std::time::Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if started.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(unavailable("a test sandbox did not finish in 10 s"));
                }
            }
        };
        if !status.success() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return Err(unavailable(format!(
                "a test sandbox failed ({status}): {}",
                err.trim()
            )));
        }
        Ok(())
    }

    /// Makes the cgroup of a new sandbox named `name` (unique per executor) and gives its
    /// private directory `dir` to the sandbox's uid.
    pub(crate) fn prepare(
        &self,
        name: &str,
        memory_mb: u64,
        dir: &Path,
    ) -> std::io::Result<Prepared> {
        let uid = match &self.identity {
            Identity::Root {
                base, count, next, ..
            } => {
                let n = next.fetch_add(1, Ordering::Relaxed) % count;
                let uid = base.saturating_add(n);
                std::os::unix::fs::chown(dir, Some(uid), Some(uid))?;
                // bubblewrap enters it (`--chdir`) after dropping its capabilities, as root
                // without `CAP_DAC_OVERRIDE`: it needs the search bit. Nobody else can reach
                // the directory from inside a sandbox.
                std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o711))?;
                Some(uid)
            }
            Identity::User => None,
        };
        let memory_mb = if memory_mb == 0 { 256 } else { memory_mb };
        let cgroup = self.cgroups.create(
            name,
            Limits {
                memory_bytes: memory_mb << 20,
                pids: self.pids_limit,
            },
        )?;
        Ok(Prepared {
            uid,
            cgroup,
            memory_mb,
            dir: dir.to_path_buf(),
        })
    }
}

/// A sandbox about to be started: its cgroup and uid.
#[derive(Debug)]
pub(crate) struct Prepared {
    uid: Option<u32>,
    memory_mb: u64,
    dir: PathBuf,
    /// The sandbox's cgroup.
    pub(crate) cgroup: Cgroup,
}

impl Prepared {
    /// The arguments of `sh` that start `interp` with `args` (after the runner script
    /// `runner`, if any) in the sandbox.
    pub(crate) fn args(
        &self,
        jail: &Jail,
        interp: &Interpreter,
        args: &[OsString],
        runner: &[(&Path, &str)],
    ) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::with_capacity(96);
        let mut push = |items: &[&OsStr]| a.extend(items.iter().map(|s| s.to_os_string()));
        push(&["-c".as_ref(), ENTER.as_ref(), "faas-sandbox".as_ref()]);
        push(&[jail.filters[0].as_os_str(), jail.filters[1].as_os_str()]);
        let procs = self.cgroup.procs_files();
        a.push(procs.len().to_string().into());
        a.extend(procs.into_iter().map(PathBuf::into_os_string));
        a.push(jail.bwrap.clone().into_os_string());
        for flag in [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
        ] {
            a.push(flag.into());
        }
        if jail.network == SandboxNetwork::None {
            a.push("--unshare-net".into());
        }
        a.extend(["--hostname".into(), "action".into()]);
        match &jail.identity {
            // setpriv needs these three to switch uid and clear the bounding set; they are
            // gone once it has.
            Identity::Root { .. } => {
                a.extend(["--cap-drop".into(), "ALL".into()]);
                for cap in ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"] {
                    a.extend(["--cap-add".into(), cap.into()]);
                }
            }
            Identity::User => {
                a.extend(["--unshare-user".into(), "--disable-userns".into()]);
                a.extend(["--cap-drop".into(), "ALL".into()]);
            }
        }
        // The sandbox's own /proc, /dev and writable /tmp come first: binds below /tmp (an
        // interpreter installed there) must land on top of its tmpfs, not under it.
        let size = (self.memory_mb << 20).to_string();
        a.extend([
            "--proc".into(),
            "/proc".into(),
            "--dev".into(),
            "/dev".into(),
        ]);
        for tmp in ["/tmp", "/dev/shm"] {
            a.extend([
                "--perms".into(),
                "1777".into(),
                "--size".into(),
                size.clone().into(),
            ]);
            a.extend(["--tmpfs".into(), tmp.into()]);
        }
        // bubblewrap makes missing parents of mount points with mode 0700 when it runs as
        // root, which the sandbox's uid could not traverse: make them first, readable.
        for dir in &jail.parents {
            a.extend([
                "--perms".into(),
                "0755".into(),
                "--dir".into(),
                dir.clone().into(),
            ]);
        }
        for v in &jail.view {
            match v {
                View::Bind(p) => {
                    a.extend(["--ro-bind".into(), p.clone().into(), p.clone().into()]);
                }
                View::Symlink { target, at } => {
                    a.extend(["--symlink".into(), target.clone().into(), at.clone().into()]);
                }
            }
        }
        a.extend(["--bind".into(), self.dir.clone().into(), ACTION_DIR.into()]);
        a.extend(["--chdir".into(), ACTION_DIR.into()]);
        for (host, name) in runner {
            let inside = format!("{RUNNER_DIR}/{name}");
            a.extend([
                "--ro-bind".into(),
                host.as_os_str().to_os_string(),
                inside.into(),
            ]);
        }
        a.extend([
            "--add-seccomp-fd".into(),
            "3".into(),
            "--add-seccomp-fd".into(),
            "4".into(),
        ]);
        a.push("--".into());
        if let (Identity::Root { setpriv, .. }, Some(uid)) = (&jail.identity, self.uid) {
            a.push(setpriv.clone().into_os_string());
            a.extend([
                format!("--reuid={uid}").into(),
                format!("--regid={uid}").into(),
                "--clear-groups".into(),
                "--inh-caps=-all".into(),
                "--bounding-set=-all".into(),
                "--no-new-privs".into(),
                "--".into(),
            ]);
        }
        a.push(interp.path.clone().into_os_string());
        a.extend(args.iter().cloned());
        a
    }

    /// The runner script's path inside the sandbox.
    pub(crate) fn runner_path(name: &str) -> String {
        format!("{RUNNER_DIR}/{name}")
    }
}
