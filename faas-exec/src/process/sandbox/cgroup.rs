//! Control groups for sandboxes: memory and pids limits, the out-of-memory count, freezing and
//! killing everything a sandbox started. Both cgroup versions are supported:
//!
//! * **v2** (unified): one directory per sandbox with `memory.max`, `memory.swap.max`,
//!   `memory.oom.group`, `pids.max`, `cgroup.freeze` and `cgroup.kill`. The platform's own
//!   cgroup must let it enable `memory` and `pids` for children (a systemd unit with
//!   `Delegate=yes`, a container with its own cgroup namespace, or the root). When the
//!   platform is the only process of its cgroup it first moves itself into a `faas-platform`
//!   leaf, as the "no internal processes" rule of v2 requires.
//! * **v1**: one directory per controller (`memory`, `pids`, and `freezer` when mounted) with
//!   `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` when swap is accounted) and
//!   `pids.max`.
//!
//! Sandboxes live below the platform's own cgroup (so they stay inside whatever limits the
//! platform itself runs under), in a directory per executor, `faas-<pid>-<n>`; directories of
//! executors whose process is gone are removed at start.
//!
//! Everything here is a file operation on the cgroup file system; nothing needs a system call
//! of its own.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Which cgroup version the sandboxes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// One hierarchy per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

/// A controller directory role (v1 has one hierarchy each; v2 has one directory for all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Memory,
    Pids,
    Freezer,
    /// v2: the one directory.
    Unified,
}

/// Where the cgroup file systems are and which one to use.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    version: Version,
    /// The platform's own cgroup directory per role.
    own: Vec<(Role, PathBuf)>,
}

/// One line of `/proc/self/mountinfo` that mounts a cgroup file system.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// The mount point.
    point: PathBuf,
    /// The root of the hierarchy that is mounted there.
    root: String,
    /// `cgroup2`, or the v1 controllers (`memory`, `pids`, ...).
    v2: bool,
    controllers: Vec<String>,
    /// The super-block options (`rw,nsdelegate,...`; for v1 they include the controllers).
    options: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let _source = r.next()?;
            let supers = r.next().unwrap_or_default();
            let root = fields.get(3)?.to_string();
            let point = PathBuf::from(unescape(fields.get(4)?));
            let options: Vec<String> = supers.split(',').map(str::to_string).collect();
            match fstype {
                "cgroup2" => Some(Mount {
                    point,
                    root,
                    v2: true,
                    controllers: Vec::new(),
                    options,
                }),
                "cgroup" => Some(Mount {
                    point,
                    root,
                    v2: false,
                    controllers: options.clone(),
                    options,
                }),
                _ => None,
            }
        })
        .collect()
}

/// mountinfo escapes spaces and a few other bytes as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/proc/self/cgroup`: (hierarchy controllers, path); v2 is the line with empty controllers.
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?.to_string();
            let controllers = if controllers.is_empty() {
                Vec::new()
            } else {
                controllers.split(',').map(str::to_string).collect()
            };
            Some((controllers, path))
        })
        .collect()
}

/// `mount point + (own path relative to the mounted root)`.
fn join(mount: &Mount, own: &str) -> PathBuf {
    let rel = if mount.root == "/" {
        own
    } else {
        own.strip_prefix(mount.root.as_str()).unwrap_or(own)
    };
    mount.point.join(rel.trim_start_matches('/'))
}

fn read(path: &Path) -> io::Result<String> {
    fs::read_to_string(path)
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    fs::write(path, value)
}

/// What [`favor_dynmods`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dynmods {
    /// The cgroup2 hierarchy already favours dynamic modifications.
    Already,
    /// It was remounted with `favordynmods` (the mount point).
    Set(PathBuf),
    /// No cgroup2 file system is mounted: nothing to set.
    NoCgroup2,
    /// The remount failed (why).
    Failed(String),
}

/// The options to remount `mount` with so that it favours dynamic modifications, keeping its
/// other options (a remount replaces them all); `None` when it already does.
fn dynmods_options(mount: &Mount) -> Option<String> {
    if mount.options.iter().any(|o| o == "favordynmods") {
        return None;
    }
    let mut kept: Vec<&str> = mount
        .options
        .iter()
        .map(String::as_str)
        .filter(|o| !o.is_empty() && *o != "rw" && *o != "ro")
        .collect();
    kept.push("favordynmods");
    Some(kept.join(","))
}

/// Sets the kernel's `favordynmods` on the cgroup2 hierarchy (the flag is global: it also
/// speeds up v1 migrations).
///
/// Every sandbox start moves a process into new cgroups. Without `favordynmods` each move
/// makes the kernel switch the fork/exit lock (`cgroup_threadgroup_rwsem`) to its slow mode
/// and wait for an RCU grace period: about 12 ms of wall time per sandbox on this project's
/// machines, a quarter of a Node.js start. With it the lock stays in the slow mode: a
/// migration costs microseconds, forks and exits a little more (the kernel's documented
/// trade-off; systemd sets it on the hosts it manages). Needs root; a remount failure only
/// costs that time.
pub(crate) fn favor_dynmods() -> Dynmods {
    let mountinfo = match read(Path::new("/proc/self/mountinfo")) {
        Ok(m) => m,
        Err(e) => return Dynmods::Failed(format!("cannot read /proc/self/mountinfo: {e}")),
    };
    let Some(mount) = parse_mountinfo(&mountinfo).into_iter().find(|m| m.v2) else {
        return Dynmods::NoCgroup2;
    };
    let Some(options) = dynmods_options(&mount) else {
        return Dynmods::Already;
    };
    match nix::mount::mount(
        None::<&str>,
        &mount.point,
        None::<&str>,
        nix::mount::MsFlags::MS_REMOUNT,
        Some(options.as_str()),
    ) {
        Ok(()) => Dynmods::Set(mount.point),
        Err(e) => Dynmods::Failed(format!(
            "cannot remount {} with favordynmods: {e}",
            mount.point.display()
        )),
    }
}

impl Layout {
    /// Finds the hierarchies this process belongs to: v2 when its cgroup offers `memory` and
    /// `pids` to children, else v1 when both controllers are mounted.
    pub(crate) fn detect() -> Result<Self, String> {
        let mountinfo = read(Path::new("/proc/self/mountinfo"))
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let own = read(Path::new("/proc/self/cgroup"))
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        Self::from_tables(&mountinfo, &own)
    }

    fn from_tables(mountinfo: &str, proc_cgroup: &str) -> Result<Self, String> {
        let mounts = parse_mountinfo(mountinfo);
        let own = parse_proc_cgroup(proc_cgroup);
        if let (Some(m), Some((_, path))) = (
            mounts.iter().find(|m| m.v2),
            own.iter().find(|(c, _)| c.is_empty()),
        ) {
            let dir = join(m, path);
            let offered = read(&dir.join("cgroup.controllers")).unwrap_or_default();
            let has = |c: &str| offered.split_whitespace().any(|x| x == c);
            if has("memory") && has("pids") {
                return Ok(Self {
                    version: Version::V2,
                    own: vec![(Role::Unified, dir)],
                });
            }
        }
        let v1 = |name: &str| -> Option<PathBuf> {
            let m = mounts
                .iter()
                .find(|m| !m.v2 && m.controllers.iter().any(|c| c == name))?;
            let (_, path) = own.iter().find(|(c, _)| c.iter().any(|x| x == name))?;
            Some(join(m, path))
        };
        match (v1("memory"), v1("pids")) {
            (Some(memory), Some(pids)) => {
                let mut own = vec![(Role::Memory, memory), (Role::Pids, pids)];
                if let Some(freezer) = v1("freezer") {
                    own.push((Role::Freezer, freezer));
                }
                Ok(Self {
                    version: Version::V1,
                    own,
                })
            }
            _ => Err(
                "no cgroup hierarchy with the memory and pids controllers: neither a \
                 cgroup2 mount whose cgroup offers them nor cgroup v1 mounts of both"
                    .into(),
            ),
        }
    }

    /// The version in use.
    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// Creates this executor's parent cgroup(s) below the platform's own, after removing
    /// those of executors whose process is gone.
    pub(crate) fn create_root(&self) -> Result<Root, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let me = std::process::id();
        let name = format!("faas-{me}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut dirs = Vec::new();
        for (role, own) in &self.own {
            remove_stale(own);
            if *role == Role::Unified {
                delegate_v2(own)?;
            }
            let dir = own.join(&name);
            if let Err(e) = fs::create_dir(&dir) {
                // Undo what was made so far.
                for (_, d) in &dirs {
                    let _ = fs::remove_dir(d);
                }
                return Err(format!(
                    "cannot create the cgroup {}: {e} (the platform needs write access to its own cgroup)",
                    dir.display()
                ));
            }
            if *role == Role::Unified {
                // Children of the executor's root need the controllers too.
                write(&dir.join("cgroup.subtree_control"), "+memory +pids").map_err(|e| {
                    format!("cannot enable memory and pids in {}: {e}", dir.display())
                })?;
            }
            dirs.push((*role, dir));
        }
        Ok(Root {
            version: self.version,
            dirs,
        })
    }
}

/// v2: makes sure `own` passes `memory` and `pids` to its children.
fn delegate_v2(own: &Path) -> Result<(), String> {
    let control = own.join("cgroup.subtree_control");
    let enabled = read(&control).unwrap_or_default();
    let on = |c: &str| enabled.split_whitespace().any(|x| x == c);
    if on("memory") && on("pids") {
        return Ok(());
    }
    match write(&control, "+memory +pids") {
        Ok(()) => Ok(()),
        // "No internal processes": a cgroup with members cannot enable controllers for
        // children. If this process is its only member, it moves into a leaf of its own.
        Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
            let procs = read(&own.join("cgroup.procs")).unwrap_or_default();
            let me = std::process::id().to_string();
            if procs.split_whitespace().any(|p| p != me) {
                return Err(format!(
                    "the cgroup {} holds other processes, so it cannot enable memory and pids for \
                     sandboxes; start the platform in a cgroup of its own with delegation (for \
                     example `systemd-run -p Delegate=yes ...`)",
                    own.display()
                ));
            }
            let leaf = own.join("faas-platform");
            match fs::create_dir(&leaf) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("cannot create {}: {e}", leaf.display())),
            }
            write(&leaf.join("cgroup.procs"), &me)
                .map_err(|e| format!("cannot move the platform into {}: {e}", leaf.display()))?;
            write(&control, "+memory +pids")
                .map_err(|e| format!("cannot enable memory and pids in {}: {e}", own.display()))
        }
        Err(e) => Err(format!(
            "cannot enable memory and pids in {}: {e}",
            own.display()
        )),
    }
}

/// Removes `faas-<pid>-<n>` directories (and their children) of processes that are gone.
fn remove_stale(own: &Path) {
    let Ok(entries) = fs::read_dir(own) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("faas-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        remove_tree(&e.path());
    }
}

/// Removes a cgroup directory and its child cgroups (deepest first); best effort.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// The cgroup(s) under which one executor's sandboxes live; removed on drop.
#[derive(Debug)]
pub(crate) struct Root {
    version: Version,
    dirs: Vec<(Role, PathBuf)>,
}

impl Drop for Root {
    fn drop(&mut self) {
        for (_, d) in &self.dirs {
            remove_tree(d);
        }
    }
}

/// The limits of one sandbox.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Bytes of memory (and memory plus swap).
    pub(crate) memory_bytes: u64,
    /// Processes and threads.
    pub(crate) pids: u64,
}

impl Root {
    /// Creates the cgroup of one sandbox, named `name`, with `limits`.
    pub(crate) fn create(&self, name: &str, limits: Limits) -> io::Result<Cgroup> {
        let mut dirs = Vec::with_capacity(self.dirs.len());
        let cg = |dirs: Vec<(Role, PathBuf)>| Cgroup {
            version: self.version,
            dirs,
        };
        for (role, parent) in &self.dirs {
            let dir = parent.join(name);
            if let Err(e) = fs::create_dir(&dir) {
                drop(cg(dirs));
                return Err(e);
            }
            dirs.push((*role, dir));
        }
        let group = cg(dirs);
        group.apply(limits)?;
        Ok(group)
    }
}

/// The cgroup(s) of one sandbox. Dropping it kills what is left inside and removes the
/// directories (best effort; [`Cgroup::remove`] waits for the processes to go first).
#[derive(Debug)]
pub(crate) struct Cgroup {
    version: Version,
    dirs: Vec<(Role, PathBuf)>,
}

impl Cgroup {
    fn dir(&self, role: Role) -> Option<&Path> {
        let want = if self.version == Version::V2 {
            Role::Unified
        } else {
            role
        };
        self.dirs
            .iter()
            .find(|(r, _)| *r == want)
            .map(|(_, d)| d.as_path())
    }

    fn apply(&self, limits: Limits) -> io::Result<()> {
        let mem = limits.memory_bytes.to_string();
        let pids = limits.pids.max(1).to_string();
        match self.version {
            Version::V2 => {
                let d = self.dir(Role::Unified).ok_or(ErrorKind::NotFound)?;
                write(&d.join("memory.max"), &mem)?;
                // Absent without swap accounting.
                let _ = write(&d.join("memory.swap.max"), "0");
                // An out-of-memory kill takes the whole sandbox, as in a container.
                let _ = write(&d.join("memory.oom.group"), "1");
                write(&d.join("pids.max"), &pids)?;
            }
            Version::V1 => {
                let m = self.dir(Role::Memory).ok_or(ErrorKind::NotFound)?;
                write(&m.join("memory.limit_in_bytes"), &mem)?;
                // Only with swap accounting; it must not be below the memory limit.
                let sw = m.join("memory.memsw.limit_in_bytes");
                if sw.exists() {
                    write(&sw, &mem)?;
                }
                let p = self.dir(Role::Pids).ok_or(ErrorKind::NotFound)?;
                write(&p.join("pids.max"), &pids)?;
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files a process must write its pid to (one per hierarchy).
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|(_, d)| d.join("cgroup.procs"))
            .collect()
    }

    /// How many processes the kernel killed for exceeding the memory limit.
    pub(crate) fn oom_kills(&self) -> u64 {
        let (file, key) = match self.version {
            Version::V2 => ("memory.events", "oom_kill"),
            Version::V1 => ("memory.oom_control", "oom_kill"),
        };
        let Some(d) = self.dir(Role::Memory) else {
            return 0;
        };
        read(&d.join(file))
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    (k == key).then(|| v.trim().parse().ok()).flatten()
                })
            })
            .unwrap_or(0)
    }

    /// Whether [`freeze`](Self::freeze) is available.
    pub(crate) fn can_freeze(&self) -> bool {
        self.version == Version::V2 || self.dir(Role::Freezer).is_some()
    }

    /// Freezes (`true`) or thaws every process of the sandbox; waits at most `max` for a
    /// freeze to complete and says whether it did.
    pub(crate) fn freeze(&self, frozen: bool, max: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + max;
        match self.version {
            Version::V2 => {
                let d = self.dir(Role::Unified).ok_or(ErrorKind::NotFound)?;
                write(&d.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
                let want = if frozen { "frozen 1" } else { "frozen 0" };
                loop {
                    let events = read(&d.join("cgroup.events"))?;
                    if events.lines().any(|l| l.trim() == want) {
                        return Ok(true);
                    }
                    if Instant::now() >= deadline {
                        return Ok(false);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Version::V1 => {
                let d = self.dir(Role::Freezer).ok_or(ErrorKind::Unsupported)?;
                let want = if frozen { "FROZEN" } else { "THAWED" };
                write(&d.join("freezer.state"), want)?;
                loop {
                    if read(&d.join("freezer.state"))?.trim() == want {
                        return Ok(true);
                    }
                    if Instant::now() >= deadline {
                        return Ok(false);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// The pids of the sandbox's processes.
    fn pids(&self) -> Vec<i32> {
        self.dirs
            .first()
            .and_then(|(_, d)| read(&d.join("cgroup.procs")).ok())
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends `SIGKILL` to every process of the sandbox (thawing it first, since frozen v1
    /// tasks cannot die).
    pub(crate) fn kill_all(&self) {
        if self.version == Version::V2
            && let Some(d) = self.dir(Role::Unified)
            && write(&d.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for pid in self.pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if self.can_freeze() {
            let _ = self.freeze(false, Duration::ZERO);
        }
    }

    /// Removes the directories; fails while processes remain.
    pub(crate) fn try_remove(&self) -> io::Result<()> {
        for (_, d) in &self.dirs {
            match fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.try_remove().is_err() {
            self.kill_all();
            // The processes die asynchronously; give them a moment.
            for _ in 0..50 {
                if self.try_remove().is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_V1: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
36 30 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const CGROUP_V1: &str = "\
8:pids:/
6:freezer:/
4:memory:/process_api/abc
0::/
";

    #[test]
    fn v1_layout_from_the_tables() {
        let l = Layout::from_tables(MOUNTINFO_V1, CGROUP_V1).unwrap();
        assert_eq!(l.version, Version::V1);
        assert_eq!(
            l.own,
            vec![
                (
                    Role::Memory,
                    PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")
                ),
                (Role::Pids, PathBuf::from("/sys/fs/cgroup/pids/")),
                (Role::Freezer, PathBuf::from("/sys/fs/cgroup/freezer/")),
            ]
        );
        let no_pids = CGROUP_V1.replace("8:pids:/\n", "");
        assert!(Layout::from_tables(MOUNTINFO_V1, &no_pids).is_err());
    }

    #[test]
    fn favordynmods_keeps_the_other_options() {
        let v2 = |opts: &str| {
            parse_mountinfo(&format!(
                "36 30 0:32 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 {opts}\n"
            ))
            .remove(0)
        };
        assert_eq!(
            dynmods_options(&v2("rw,nsdelegate,memory_recursiveprot")).as_deref(),
            Some("nsdelegate,memory_recursiveprot,favordynmods")
        );
        assert_eq!(dynmods_options(&v2("rw")).as_deref(), Some("favordynmods"));
        assert_eq!(dynmods_options(&v2("rw,favordynmods,nsdelegate")), None);
    }

    #[test]
    fn mount_roots_and_escapes() {
        let info = "40 30 0:40 /docker/x /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n";
        let m = &parse_mountinfo(info)[0];
        assert_eq!(m.point, PathBuf::from("/sys/fs/cgroup/mem ory"));
        assert_eq!(
            join(m, "/docker/x/sub"),
            PathBuf::from("/sys/fs/cgroup/mem ory/sub")
        );
        assert!(parse_mountinfo("garbage\n\n1 2 3").is_empty());
    }

    /// A v2 hierarchy imitated in a temporary directory (this project's CI machine mounts the
    /// memory controller on v1, so the kernel's v2 files are exercised only where v2 runs):
    /// the files written and read are the ones the kernel documents.
    #[test]
    fn v2_files_written_and_read() {
        let tmp = tempfile::tempdir().unwrap();
        let own = tmp.path().join("svc");
        fs::create_dir(&own).unwrap();
        fs::write(own.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(own.join("cgroup.subtree_control"), "memory pids\n").unwrap();
        let layout = Layout {
            version: Version::V2,
            own: vec![(Role::Unified, own.clone())],
        };
        let root = layout.create_root().unwrap();
        let root_dir = root.dirs[0].1.clone();
        assert!(root_dir.starts_with(&own));
        assert_eq!(
            fs::read_to_string(root_dir.join("cgroup.subtree_control")).unwrap(),
            "+memory +pids"
        );
        let cg = root
            .create(
                "s1",
                Limits {
                    memory_bytes: 256 << 20,
                    pids: 64,
                },
            )
            .unwrap();
        let d = root_dir.join("s1");
        assert_eq!(
            fs::read_to_string(d.join("memory.max")).unwrap(),
            "268435456"
        );
        assert_eq!(fs::read_to_string(d.join("memory.swap.max")).unwrap(), "0");
        assert_eq!(fs::read_to_string(d.join("pids.max")).unwrap(), "64");
        assert_eq!(cg.procs_files(), vec![d.join("cgroup.procs")]);
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 2);
        fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert!(cg.freeze(true, Duration::from_millis(10)).unwrap());
        assert_eq!(fs::read_to_string(d.join("cgroup.freeze")).unwrap(), "1");
        // Regular files stand in for the kernel's, so the directory is not removable here.
        std::mem::forget(cg);
        std::mem::forget(root);
    }
}
