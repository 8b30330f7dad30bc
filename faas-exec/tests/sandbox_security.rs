//! The process executor's sandbox against hostile action code: each test is an action trying
//! one escape, which must fail. Every attempt is bounded by the sandbox's own limits (memory,
//! pids) and by the test's time-outs, so a failing sandbox cannot hurt the machine.
//!
//! The escapes are written in Python where they need raw system calls (`ctypes`), in Node.js
//! otherwise.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_core::{Container, ContainerSpec, Executor, ProxyError};
use faas_exec::process::{ProcessExecutor, SandboxNetwork};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);

fn executor() -> Option<ProcessExecutor> {
    match ProcessExecutor::detect() {
        Ok(e) => Some(e),
        Err(e) => {
            faas_core::testkit::skip(&format!("sandboxed process executor ({e})"));
            None
        }
    }
}

fn kind(ex: &ProcessExecutor, family: &str) -> Option<String> {
    let k = ex.runtimes().default_kind(family).map(str::to_string);
    if k.is_none() {
        faas_core::testkit::skip(&format!("{family} is not installed"));
    }
    k
}

async fn start(ex: &ProcessExecutor, spec: &ContainerSpec, code: &str) -> Arc<dyn Container> {
    let c = ex.create(spec).await.unwrap();
    let body =
        json!({"value": {"name": "t", "main": "main", "binary": false, "code": code, "env": {}}});
    let r = c.init(body.to_string().into(), T).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    c
}

fn run_body(value: Value) -> Bytes {
    json!({"value": value, "activation_id": "a"})
        .to_string()
        .into()
}

async fn run(c: &dyn Container, value: Value) -> Value {
    let r = c.run(run_body(value), T).await.unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    serde_json::from_slice(&r.body).unwrap()
}

/// A Python action that runs `attempts` (a dict of name → zero-argument function returning
/// what it got) and reports each as `"ok: …"` or `"denied: <error>"`.
fn python_probe(setup: &str, attempts: &[(&str, &str)]) -> String {
    let mut code = String::from(
        "import os, ctypes, ctypes.util, errno, socket, subprocess, time\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         def sys(nr, *args):\n\
         \x20   r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])\n\
         \x20   if r == -1:\n\
         \x20       raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))\n\
         \x20   return r\n",
    );
    code.push_str(setup);
    code.push_str("\ndef main(args):\n    out = {}\n");
    for (name, expr) in attempts {
        code.push_str(&format!(
            "    try:\n        out['{name}'] = 'ok: ' + repr({expr})[:200]\n    except BaseException as e:\n        out['{name}'] = 'denied: ' + repr(e)[:200]\n"
        ));
    }
    code.push_str("    return out\n");
    code
}

fn assert_denied(out: &Value, names: &[&str]) {
    for n in names {
        let v = out[n].as_str().unwrap_or_default();
        assert!(v.starts_with("denied"), "{n} was allowed: {v} (all: {out})");
    }
}

fn assert_allowed(out: &Value, names: &[&str]) {
    for n in names {
        let v = out[n].as_str().unwrap_or_default();
        assert!(v.starts_with("ok"), "{n} was denied: {v} (all: {out})");
    }
}

#[tokio::test]
async fn cannot_see_the_platform_or_other_processes() {
    let Some(ex) = executor() else { return };
    let Some(py) = kind(&ex, "python") else {
        return;
    };
    let me = std::process::id();
    let setup = "def read(p):\n    with open(p, 'rb') as f:\n        return f.read(64)\n";
    let attempts = [
        ("platform_environ", format!("read('/proc/{me}/environ')")),
        ("platform_cmdline", format!("read('/proc/{me}/cmdline')")),
        ("platform_mem", format!("read('/proc/{me}/mem')")),
        ("init_environ", "read('/proc/1/environ')".to_string()),
        ("init_mem", "read('/proc/1/mem')".to_string()),
        // Only the sandbox's own processes exist in its /proc.
        (
            "pids",
            "sorted(int(p) for p in os.listdir('/proc') if p.isdigit())".to_string(),
        ),
        ("uid", "os.getuid()".to_string()),
        (
            "status",
            "[l for l in open('/proc/self/status').read().splitlines() if l.split(':')[0] in ('CapEff','CapPrm','CapBnd','NoNewPrivs','Seccomp')]".to_string(),
        ),
    ];
    let attempts: Vec<(&str, &str)> = attempts.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let c = start(
        &ex,
        &ContainerSpec::new("see", py, 128),
        &python_probe(setup, &attempts),
    )
    .await;
    let out = run(&*c, json!({})).await;
    assert_denied(
        &out,
        &[
            "platform_environ",
            "platform_cmdline",
            "platform_mem",
            "init_environ",
            "init_mem",
        ],
    );
    assert_allowed(&out, &["pids", "uid", "status"]);
    let pids: Vec<u64> = out["pids"].as_str().unwrap()[4..]
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    assert!(
        !pids.is_empty() && pids.len() <= 3,
        "foreign processes visible: {pids:?}"
    );
    assert!(pids.iter().all(|&p| p < 100), "host pids visible: {pids:?}");
    let uid: u64 = out["uid"].as_str().unwrap()[4..].parse().unwrap();
    if nix_is_root() {
        assert!(uid >= 1000, "runs as uid {uid}");
    }
    let status = out["status"].as_str().unwrap();
    for want in [
        "CapEff:\\t0000000000000000",
        "CapPrm:\\t0000000000000000",
        "CapBnd:\\t0000000000000000",
        "NoNewPrivs:\\t1",
        "Seccomp:\\t2",
    ] {
        assert!(status.contains(want), "{want} missing in {status}");
    }
    c.destroy().await.unwrap();
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

#[tokio::test]
async fn seccomp_denies_tracing_and_namespaces() {
    let Some(ex) = executor() else { return };
    let Some(py) = kind(&ex, "python") else {
        return;
    };
    // x86-64 numbers; aarch64 differs, so this test names the calls through ctypes' own
    // lookup of libc functions where it can.
    let attempts: &[(&str, &str)] = &[
        // ptrace(PTRACE_ATTACH, 1)
        (
            "ptrace",
            "libc.ptrace(16, 1, 0, 0) == 0 or (_ for _ in ()).throw(OSError(ctypes.get_errno(), 'ptrace'))",
        ),
        // process_vm_readv(1, ...)
        ("process_vm_readv", "sys(310, 1, 0, 0, 0, 0, 0)"),
        // unshare(CLONE_NEWUSER)
        ("unshare_user", "sys(272, 0x10000000)"),
        // mount
        ("mount", "sys(165, 0, 0, 0, 0, 0)"),
        // bpf
        ("bpf", "sys(321, 0, 0, 0)"),
        // a plain fork still works
        ("fork", "subprocess.run(['true']).returncode"),
    ];
    if std::env::consts::ARCH != "x86_64" {
        faas_core::testkit::skip("seccomp probe numbers are x86-64's");
        return;
    }
    let c = start(
        &ex,
        &ContainerSpec::new("sec", py, 128),
        &python_probe("", attempts),
    )
    .await;
    let out = run(&*c, json!({})).await;
    assert_denied(
        &out,
        &["ptrace", "process_vm_readv", "unshare_user", "mount", "bpf"],
    );
    assert!(
        out["process_vm_readv"]
            .as_str()
            .unwrap()
            .contains("Operation not permitted"),
        "{out}"
    );
    assert_allowed(&out, &["fork"]);
    c.destroy().await.unwrap();
}

#[tokio::test]
async fn sees_only_its_own_files() {
    let Some(ex) = executor() else { return };
    let Some(py) = kind(&ex, "python") else {
        return;
    };
    let setup = "def read(p):\n    with open(p, 'rb') as f:\n        return f.read(64)\n\
                 def write(p):\n    with open(p, 'w') as f:\n        f.write('x')\n    return p\n";
    let work = std::env::current_dir().unwrap().display().to_string();
    let attempts = [
        ("shadow", "read('/etc/shadow')".to_string()),
        ("passwd", "read('/etc/passwd')".to_string()),
        // Only the path to an interpreter installed below a home directory exists there.
        ("root_home", "read('/root/.bashrc')".to_string()),
        ("root_cargo", "os.listdir('/root/.cargo')".to_string()),
        ("host_cwd", format!("os.listdir({work:?})")),
        ("cgroupfs", "os.listdir('/sys/fs/cgroup')".to_string()),
        ("write_usr", "write('/usr/x')".to_string()),
        ("write_etc", "write('/etc/x')".to_string()),
        ("write_root", "write('/x')".to_string()),
        ("write_runner", "write('/faas/runner.py')".to_string()),
        ("write_action", "write('/action/x')".to_string()),
        ("write_tmp", "write('/tmp/x')".to_string()),
        ("certs", "len(os.listdir('/etc/ssl/certs')) > 0".to_string()),
    ];
    let attempts: Vec<(&str, &str)> = attempts.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let c = start(
        &ex,
        &ContainerSpec::new("fs", py, 128),
        &python_probe(setup, &attempts),
    )
    .await;
    let out = run(&*c, json!({})).await;
    assert_denied(
        &out,
        &[
            "shadow",
            "passwd",
            "root_home",
            "root_cargo",
            "host_cwd",
            "cgroupfs",
            "write_usr",
            "write_etc",
            "write_root",
            "write_runner",
        ],
    );
    assert_allowed(&out, &["write_action", "write_tmp", "certs"]);
    c.destroy().await.unwrap();
}

#[tokio::test]
async fn another_actions_secret_stays_hidden() {
    let Some(ex) = executor() else { return };
    let Some(node) = kind(&ex, "nodejs") else {
        return;
    };
    let Some(py) = kind(&ex, "python") else {
        return;
    };
    let secret = format!("s3cr3t-{}", std::process::id());
    let holder = start(
        &ex,
        &ContainerSpec::new("holder", node, 128).with_env("__OW_API_KEY", secret.clone()),
        &format!(
            "const keep = '{secret}'.repeat(2); function main(a) {{ return {{ n: keep.length }}; }}"
        ),
    )
    .await;
    run(&*holder, json!({})).await;
    // The thief reads every environment, command line and memory map it can find, and every
    // file below /tmp and /action.
    let code = r#"
import os
def main(args):
    found, tried = [], 0
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        for f in ('environ', 'cmdline'):
            try:
                tried += 1
                if args['secret'].encode() in open('/proc/%s/%s' % (p, f), 'rb').read():
                    found.append(p + '/' + f)
            except OSError:
                pass
    for root in ('/tmp', '/action', '/dev/shm'):
        for d, _, files in os.walk(root):
            for name in files:
                try:
                    if args['secret'].encode() in open(os.path.join(d, name), 'rb').read():
                        found.append(os.path.join(d, name))
                except OSError:
                    pass
    return {'found': found, 'tried': tried}
"#;
    let thief = start(&ex, &ContainerSpec::new("thief", py, 128), code).await;
    let out = run(&*thief, json!({"secret": secret})).await;
    // Its own run parameters carry the secret (it was told it), nothing else may.
    let found: Vec<String> = serde_json::from_value(out["found"].clone()).unwrap();
    assert!(found.is_empty(), "the secret leaked: {found:?}");
    assert!(out["tried"].as_u64().unwrap() > 0);
    holder.destroy().await.unwrap();
    thief.destroy().await.unwrap();
}

/// Host pids of the processes whose command line contains `marker`.
fn with_marker(marker: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()) && *p != me)
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
            !zombie
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

#[tokio::test]
async fn detached_processes_die_with_the_sandbox() {
    let Some(ex) = executor() else { return };
    let Some(node) = kind(&ex, "nodejs") else {
        return;
    };
    let marker = format!("63.{}", std::process::id());
    // `detached: true` puts the child in a new session (setsid); `setsid -f` forks once more.
    let code = format!(
        "const cp = require('child_process');\n\
         function main(a) {{\n\
           cp.spawn('sleep', ['{marker}'], {{ detached: true, stdio: 'ignore' }}).unref();\n\
           cp.spawnSync('setsid', ['-f', 'sleep', '{marker}'], {{ stdio: 'ignore' }});\n\
           return {{}};\n\
         }}"
    );
    let c = start(&ex, &ContainerSpec::new("detach", node, 128), &code).await;
    run(&*c, json!({})).await;
    // `setsid -f` returns before its grandchild has executed `sleep`: wait (bounded) for both.
    faas_core::testkit::eventually(Duration::from_secs(5), || with_marker(&marker).len() >= 2)
        .await;
    assert_eq!(with_marker(&marker).len(), 2, "both detached children run");
    c.destroy().await.unwrap();
    faas_core::testkit::eventually(Duration::from_secs(5), || with_marker(&marker).is_empty())
        .await;
    let left = with_marker(&marker);
    assert!(left.is_empty(), "detached processes survived: {left:?}");
}

#[tokio::test]
async fn memory_past_the_limit_is_an_oom_kill() {
    let Some(ex) = executor() else { return };
    for family in ["nodejs", "python"] {
        let Some(k) = kind(&ex, family) else { continue };
        // Off the V8 heap (Buffers), so only the cgroup limit can stop it: 64 MB limit, up to
        // 1 GB attempted, touched page by page.
        let code = if family == "nodejs" {
            "function main(a) { const keep = []; for (let i = 0; i < 256; i++) keep.push(Buffer.alloc(4 << 20, 1)); return { held: keep.length }; }"
        } else {
            "def main(a):\n    keep = []\n    for i in range(256):\n        keep.append(bytearray(b'\\x01' * (4 << 20)))\n    return {'held': len(keep)}\n"
        };
        let c = start(&ex, &ContainerSpec::new("mem", k, 64), code).await;
        let r = c.run(run_body(json!({})), T).await;
        assert!(
            matches!(r, Err(ProxyError::Exited { oom: true })),
            "{family}: {:?}",
            r.map(|r| String::from_utf8_lossy(&r.body).to_string())
        );
        c.destroy().await.unwrap();
    }
}

#[tokio::test]
async fn forks_stop_at_the_pids_limit() {
    let Some(_) = executor() else { return };
    let ex = ProcessExecutor::builder()
        .with_pids_limit(32)
        .build()
        .unwrap();
    let Some(py) = kind(&ex, "python") else {
        return;
    };
    let marker = format!("64.{}", std::process::id());
    let code = format!(
        "import subprocess\n\
         def main(a):\n\
         \x20   started, refused = [], 0\n\
         \x20   for i in range(100):\n\
         \x20       try:\n\
         \x20           started.append(subprocess.Popen(['sleep', '{marker}']))\n\
         \x20       except OSError:\n\
         \x20           refused += 1\n\
         \x20   return {{'started': len(started), 'refused': refused}}\n"
    );
    let c = start(&ex, &ContainerSpec::new("forks", py, 128), &code).await;
    let out = run(&*c, json!({})).await;
    let started = out["started"].as_u64().unwrap();
    assert!(started < 32, "{out}");
    assert!(out["refused"].as_u64().unwrap() > 0, "{out}");
    assert!(with_marker(&marker).len() < 32);
    c.destroy().await.unwrap();
}

#[tokio::test]
async fn no_network_means_no_loopback() {
    let Some(_) = executor() else { return };
    let ex = ProcessExecutor::builder()
        .with_network(SandboxNetwork::None)
        .build()
        .unwrap();
    assert!(ex.capabilities().network_isolation);
    let Some(py) = kind(&ex, "python") else {
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let attempts = [(
        "connect",
        format!("socket.create_connection(('127.0.0.1', {port}), timeout=2).close()"),
    )];
    let attempts: Vec<(&str, &str)> = attempts.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let c = start(
        &ex,
        &ContainerSpec::new("net", py, 128),
        &python_probe("", &attempts),
    )
    .await;
    let out = run(&*c, json!({})).await;
    assert_denied(&out, &["connect"]);
    c.destroy().await.unwrap();
}

/// A root platform leaves the cgroup2 hierarchy with `favordynmods` on (so a sandbox start does
/// not wait for an RCU grace period to enter its cgroups), keeping the mount's other options.
#[tokio::test]
async fn a_root_platform_sets_favordynmods() {
    let Some(_ex) = executor() else { return };
    // Not root, or no cgroup2 mount: the platform leaves the mounts alone by design (it says
    // so at start); nothing to check, and no service is missing.
    if !nix_is_root() {
        eprintln!("favordynmods: not checked, the platform does not run as root");
        return;
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(line) = info.lines().find(|l| l.contains(" - cgroup2 ")) else {
        eprintln!("favordynmods: not checked, no cgroup2 mount on this machine");
        return;
    };
    let options = line.rsplit(' ').next().unwrap();
    assert!(
        options.split(',').any(|o| o == "favordynmods"),
        "cgroup2 mounted without favordynmods after the executor started: {line}"
    );
}
