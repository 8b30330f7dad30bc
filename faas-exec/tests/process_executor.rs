//! Behaviour of [`ProcessExecutor`] beyond the conformance suite: detection, process hygiene,
//! reply truncation, out-of-memory reports.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_core::{Container, ContainerSpec, Error, Executor, ProxyError};
use faas_exec::process::{ProcessExecutor, SandboxMode};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);

fn executor() -> Option<ProcessExecutor> {
    match ProcessExecutor::detect() {
        Ok(e) => Some(e),
        Err(e) => {
            faas_core::testkit::skip(&format!("process executor ({e})"));
            None
        }
    }
}

fn node_kind(ex: &ProcessExecutor) -> Option<String> {
    let kind = ex.runtimes().default_kind("nodejs").map(str::to_string);
    if kind.is_none() {
        faas_core::testkit::skip("node is not installed");
    }
    kind
}

fn init_body(code: &str) -> Bytes {
    json!({"value": {"name": "t", "main": "main", "binary": false, "code": code, "env": {}}})
        .to_string()
        .into()
}

fn run_body(value: Value) -> Bytes {
    json!({"value": value, "activation_id": "a"})
        .to_string()
        .into()
}

async fn start(ex: &ProcessExecutor, spec: &ContainerSpec, code: &str) -> Arc<dyn Container> {
    let c = ex.create(spec).await.unwrap();
    let r = c.init(init_body(code), T).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    c
}

async fn run_json(c: &dyn Container, value: Value) -> Value {
    let r = c.run(run_body(value), T).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    serde_json::from_slice(&r.body).unwrap()
}

/// The executor without a sandbox (the insecure mode), for what only it shows from outside.
fn insecure() -> ProcessExecutor {
    ProcessExecutor::builder()
        .with_sandbox(SandboxMode::Off)
        .build()
        .unwrap()
}

/// Host pids of the processes whose command line contains `marker`.
fn with_marker(marker: &str) -> Vec<i64> {
    let me = std::process::id() as i64;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
        .filter(|&pid| pid != me && !dead(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

/// Waits (bounded) until no process carries `marker`.
async fn eventually_none_with(marker: &str) -> Vec<i64> {
    faas_core::testkit::eventually(Duration::from_secs(5), || with_marker(marker).is_empty()).await;
    with_marker(marker)
}

/// Whether `pid` is gone (or a zombie nobody reaped yet).
fn dead(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn detects_installed_versions() {
    let Some(ex) = executor() else { return };
    let out = std::process::Command::new("node").arg("--version").output();
    if let Ok(out) = out {
        let v = String::from_utf8_lossy(&out.stdout);
        let major = v.trim().trim_start_matches('v').split('.').next().unwrap();
        let kind = format!("nodejs:{major}");
        assert_eq!(ex.runtimes().default_kind("nodejs"), Some(kind.as_str()));
    }
    let out = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if let Ok(out) = out {
        let v = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let v = v.trim().trim_start_matches("Python ");
        let mut parts = v.split('.');
        let kind = format!("python:{}.{}", parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(ex.runtimes().default_kind("python"), Some(kind.as_str()));
    }
    let caps = ex.capabilities();
    assert!(ex.is_sandboxed(), "the sandbox is on by default");
    assert!(caps.pause_resume && caps.memory_limit && !caps.blackbox && !caps.network_isolation);
    let caps = insecure().capabilities();
    assert!(caps.pause_resume && !caps.memory_limit && !caps.blackbox && !caps.network_isolation);
}

#[tokio::test]
async fn disabled_families_and_missing_interpreters() {
    let none = ProcessExecutor::builder()
        .with_node("/nonexistent/node")
        .without_python()
        .build()
        .unwrap_err();
    assert_eq!(none.status(), 503, "{none}");
    let Some(_) = executor() else { return };
    if let Ok(py) = ProcessExecutor::builder().without_node().build() {
        assert!(py.runtimes().default_kind("nodejs").is_none());
        let e = py
            .create(&ContainerSpec::new("x", "nodejs:20", 128))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 400, "{e}");
    }
}

#[tokio::test]
async fn rejects_blackbox_and_unknown_kinds() {
    let Some(ex) = executor() else { return };
    let e = ex
        .create(&ContainerSpec::new("b", "blackbox", 128).with_image("x/y"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotSupported { .. }), "{e:?}");
    let e = ex
        .create(&ContainerSpec::new("u", "java:8", 128))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BadRequest { .. }), "{e:?}");
    assert!(e.to_string().contains("java:8"), "{e}");
}

#[tokio::test]
async fn family_default_kind_resolves() {
    let Some(ex) = executor() else { return };
    let Some(_) = node_kind(&ex) else { return };
    let c = start(
        &ex,
        &ContainerSpec::new("d", "nodejs:default", 128),
        "function main(a) { return a; }",
    )
    .await;
    assert_eq!(run_json(&*c, json!({"x": 1})).await, json!({"x": 1}));
    c.destroy().await.unwrap();
}

#[tokio::test]
async fn clean_environment_and_private_directory() {
    let Some(ex) = executor() else { return };
    let Some(kind) = node_kind(&ex) else { return };
    for (ex, sandboxed) in [(ex, true), (insecure(), false)] {
        let spec =
            ContainerSpec::new("env", kind.clone(), 128).with_env("__OW_API_HOST", "http://h:1");
        let code = "function main(a) { return { cwd: process.cwd(), env: process.env, pid: process.pid }; }";
        let c = start(&ex, &spec, code).await;
        let out = run_json(&*c, json!({})).await;
        let env = out["env"].as_object().unwrap();
        let cwd = out["cwd"].as_str().unwrap().to_string();
        assert_eq!(env["HOME"], cwd.as_str());
        assert_eq!(env["__OW_API_HOST"], "http://h:1");
        assert!(env["__OW_LISTEN"].as_str().unwrap().starts_with("unix:"));
        assert!(env.contains_key("PATH"));
        // Nothing of the parent's environment leaks: only what the executor sets, and the
        // `__OW_*` variables of the spec and of the run.
        // (bubblewrap sets `PWD` for the directory it starts the runner in.)
        let own: &[&str] = if sandboxed {
            &["PATH", "HOME", "TMPDIR", "PWD"]
        } else {
            &["PATH", "HOME", "TMPDIR"]
        };
        for key in env.keys() {
            assert!(
                own.contains(&key.as_str()) || key.starts_with("__OW_"),
                "unexpected {key} in {env:?}"
            );
        }
        if sandboxed {
            // The private directory is mounted at a fixed place; /tmp is the sandbox's own.
            assert_eq!((cwd.as_str(), &env["TMPDIR"]), ("/action", &json!("/tmp")));
            c.destroy().await.unwrap();
        } else {
            assert_eq!(env["TMPDIR"], cwd.as_str());
            assert!(std::path::Path::new(&cwd).is_dir());
            c.destroy().await.unwrap();
            assert!(!std::path::Path::new(&cwd).exists(), "{cwd} left behind");
        }
    }
}

#[tokio::test]
async fn destroy_kills_the_process_group() {
    let Some(ex) = executor() else { return };
    let Some(kind) = node_kind(&ex) else { return };
    for (ex, mode) in [(ex, "sandboxed"), (insecure(), "insecure")] {
        let marker = format!("61.{}{}", std::process::id(), mode.len());
        let code = format!(
            "const cp = require('child_process');\n\
             function main(a) {{ cp.spawn('sleep', ['{marker}'], {{ stdio: 'ignore' }}); return {{}}; }}"
        );
        let c = start(&ex, &ContainerSpec::new("pg", kind.clone(), 128), &code).await;
        run_json(&*c, json!({})).await;
        assert_eq!(with_marker(&marker).len(), 1, "{mode}: the child runs");
        c.pause().await.unwrap();
        c.destroy().await.unwrap();
        let left = eventually_none_with(&marker).await;
        assert!(left.is_empty(), "{mode}: child {left:?} survived destroy");
        c.destroy().await.unwrap();
        assert!(c.pause().await.is_err());
    }
}

#[tokio::test]
async fn dropping_the_container_kills_the_runner() {
    let Some(ex) = executor() else { return };
    let Some(kind) = node_kind(&ex) else { return };
    for (ex, mode) in [(ex, "sandboxed"), (insecure(), "insecure")] {
        let marker = format!("62.{}{}", std::process::id(), mode.len());
        let code = format!(
            "const cp = require('child_process');\n\
             function main(a) {{ cp.spawn('sleep', ['{marker}'], {{ stdio: 'ignore' }}); return {{ pid: process.pid }}; }}"
        );
        let c = start(&ex, &ContainerSpec::new("drop", kind.clone(), 128), &code).await;
        run_json(&*c, json!({})).await;
        assert_eq!(with_marker(&marker).len(), 1, "{mode}: the child runs");
        drop(c);
        let left = eventually_none_with(&marker).await;
        assert!(left.is_empty(), "{mode}: {left:?} survived the drop");
    }
}

#[tokio::test]
async fn long_replies_are_cut_and_the_container_stays_usable() {
    let Some(full) = executor() else { return };
    let Some(kind) = node_kind(&full) else { return };
    drop(full);
    let ex = ProcessExecutor::builder()
        .with_max_response_bytes(100)
        .build()
        .unwrap();
    let code = "function main(a) { return { s: 'x'.repeat(a.n) }; }";
    let c = start(&ex, &ContainerSpec::new("big", kind, 128), code).await;
    for n in [1_000usize, 3_000_000] {
        let r = c.run(run_body(json!({"n": n})), T).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 100);
        assert_eq!(r.truncated, Some((n + 8) as u64)); // {"s":"…"}
        assert!(r.body.starts_with(b"{\"s\":\"xxx"));
    }
    let r = c.run(run_body(json!({"n": 10})), T).await.unwrap();
    assert_eq!((r.truncated, r.body.len()), (None, 18));
    c.destroy().await.unwrap();
}

#[tokio::test]
async fn overlapping_runs_use_separate_connections() {
    let Some(ex) = executor() else { return };
    for family in ["nodejs", "python"] {
        let Some(kind) = ex.runtimes().default_kind(family).map(str::to_string) else {
            continue;
        };
        let code = if family == "nodejs" {
            "function main(a) { return new Promise((r) => setTimeout(() => r(a), 50)); }"
        } else {
            "import time\ndef main(a):\n    time.sleep(0.05)\n    return a\n"
        };
        let c = start(&ex, &ContainerSpec::new("par", kind, 128), code).await;
        let runs = (0..4).map(|i| {
            let c = Arc::clone(&c);
            async move { run_json(&*c, json!({"i": i})).await }
        });
        let outs = futures::future::join_all(runs).await;
        for (i, out) in outs.into_iter().enumerate() {
            assert_eq!(out, json!({"i": i}), "{family}");
        }
        // And serially afterwards.
        assert_eq!(
            run_json(&*c, json!({"k": 1})).await,
            json!({"k": 1}),
            "{family}"
        );
        c.destroy().await.unwrap();
    }
}

#[tokio::test]
async fn node_heap_exhaustion_is_reported_as_oom() {
    let Some(ex) = executor() else { return };
    let Some(kind) = node_kind(&ex) else { return };
    let code =
        "function main(a) { const keep = []; for (;;) keep.push(new Array(100000).fill(7)); }";
    let c = start(&ex, &ContainerSpec::new("oom", kind, 64), code).await;
    let r = c.run(run_body(json!({})), T).await;
    assert!(matches!(r, Err(ProxyError::Exited { oom: true })), "{r:?}");
    c.destroy().await.unwrap();
}

#[tokio::test]
async fn a_runner_that_dies_at_start_fails_init_fast() {
    let Some(_) = executor() else { return };
    // A fake "node" that answers the version probe and otherwise exits at once.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("node");
    std::fs::write(
        &fake,
        "#!/bin/sh\nif [ \"$1\" = \"-e\" ]; then echo 20.0.0; echo \"$0\"; exit 0; fi\necho dying >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ex = ProcessExecutor::builder()
        .with_node(&fake)
        .without_python()
        .build()
        .unwrap();
    assert_eq!(ex.runtimes().default_kind("nodejs"), Some("nodejs:20"));
    let c = ex
        .create(&ContainerSpec::new("dies", "nodejs:20", 128))
        .await
        .unwrap();
    let started = Instant::now();
    let r = c
        .init(init_body("function main(){}"), Duration::from_secs(10))
        .await;
    assert!(matches!(r, Err(ProxyError::Exited { oom: false })), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let logs = c.logs(1000, true).await.unwrap();
    assert!(logs.incomplete);
    assert_eq!(logs.lines.len(), 1);
    assert_eq!(logs.lines[0].message, "dying");
    c.destroy().await.unwrap();
}

#[tokio::test]
async fn debug_output_hides_the_environment() {
    let Some(ex) = executor() else { return };
    let Some(kind) = node_kind(&ex) else { return };
    let c = ex
        .create(&ContainerSpec::new("dbg", kind, 128).with_env("__OW_API_KEY", "s3cr3t-key"))
        .await
        .unwrap();
    let shown = format!("{c:?} {ex:?}");
    assert!(!shown.contains("s3cr3t-key"), "{shown}");
    assert!(shown.contains("dbg"), "{shown}");
    c.destroy().await.unwrap();
}

/// Regression: a warm runner that died while idle in the pool was handed out again, and the
/// activation got "exited unexpectedly" (a 502 through the API).
#[tokio::test]
async fn a_runner_that_died_idle_is_not_handed_out_again() {
    use faas_exec::pool::{
        AcquireRequest, ContainerKey, ContainerPool, Origin, PoolConfig, Release,
    };
    let Some(ex) = executor() else { return };
    let Some(kind) = node_kind(&ex) else { return };
    let pool =
        ContainerPool::new(Arc::new(ex), PoolConfig::new(1024).with_stem_cells(vec![])).unwrap();
    let key = ContainerKey::new("guest", "guest/dies", "1", &kind, 128);
    let req = || AcquireRequest {
        key: &key,
        kind: &kind,
        memory_mb: 128,
        image: None,
        name: "guest_dies",
        deadline: std::time::Instant::now() + T,
    };
    // The runner kills itself shortly after answering, while it is idle in the pool.
    let code = "function main(a) { setTimeout(() => process.kill(process.pid, 'SIGKILL'), 50); return { ok: true }; }";
    let mut lease = pool.acquire(&req()).await.unwrap();
    let r = lease.container().init(init_body(code), T).await.unwrap();
    assert_eq!(r.status, 200);
    lease.mark_initialized();
    assert_eq!(
        run_json(lease.container(), json!({})).await,
        json!({"ok": true})
    );
    let first = lease.container().id().to_string();
    pool.release(lease, Release::Reuse);
    // Let it die (50 ms after its answer) and be reaped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pool.stats().idle, 1);
    let mut lease = pool.acquire(&req()).await.unwrap();
    assert_ne!(
        lease.container().id(),
        first,
        "the dead runner was handed out again"
    );
    assert_eq!(lease.origin(), Origin::Cold);
    let r = lease
        .container()
        .init(init_body("function main(a) { return a; }"), T)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    lease.mark_initialized();
    assert_eq!(
        run_json(lease.container(), json!({"x": 2})).await,
        json!({"x": 2})
    );
    pool.release(lease, Release::Destroy);
    pool.shutdown().await;
}

/// Without what a sandbox needs the executor refuses to start, says what is missing and how
/// to run without isolation on purpose; with `sandbox=off` it starts.
#[tokio::test]
async fn refuses_without_a_sandbox_unless_told_to_run_insecure() {
    let Some(_) = executor() else { return };
    let e = ProcessExecutor::builder()
        .with_bwrap("/nonexistent/bwrap")
        .build()
        .unwrap_err();
    assert_eq!(e.status(), 503, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("/nonexistent/bwrap not found"), "{msg}");
    assert!(msg.contains("process:?sandbox=off"), "{msg}");
    let e = ProcessExecutor::from_url("process:?bwrap=%2Fnonexistent%2Fbwrap").unwrap_err();
    assert_eq!(e.status(), 503, "{e}");
    let ex =
        ProcessExecutor::from_url("process:?bwrap=%2Fnonexistent%2Fbwrap&sandbox=off").unwrap();
    assert!(!ex.is_sandboxed());
}
