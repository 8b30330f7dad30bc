//! The Docker executor against a plain `docker run` and against the process executor.
//!
//! Run with: `cargo bench -p faas-exec --features docker --bench docker`
//! (needs the engine and the runtime images: `scripts/services/docker.sh start && scripts/services/docker.sh images`).
//!
//! Prints one line per measurement, each with a ratio:
//!
//! * cold start: `create` → `/init` → first `/run` result, against `docker run -d` of the same
//!   image with the same transport (a Unix socket in a bind-mounted directory) → first result;
//! * warm invoke: `/run` of an initialized echo action on Docker, against the process executor;
//! * resume from pause: `resume` → first result, against a warm invoke;
//! * memory per idle warm container: the container's cgroup memory plus its containerd shim,
//!   against the process executor's runner process.
//!
//! Every step has a fixed count and the whole run is bounded by a timeout. Set
//! `FAAS_BENCH_QUICK=1` for fewer iterations.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may stop at the first failure

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use faas_core::{Container, ContainerSpec, Executor};
use faas_exec::docker::DockerExecutor;
use faas_exec::process::ProcessExecutor;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

const ECHO_INIT: &str =
    r#"{"value":{"name":"bench","main":"main","code":"function main(a) { return a; }"}}"#;
const RUN: &str = r#"{"value":{"hello":"world"},"activation_id":"bench"}"#;
const CALL: Duration = Duration::from_secs(30);
const WHOLE_RUN: Duration = Duration::from_secs(600);

struct Counts {
    cold: usize,
    warm: usize,
    pause: usize,
    idle: usize,
}

fn counts() -> Counts {
    if std::env::var("FAAS_BENCH_QUICK").is_ok_and(|v| v == "1") {
        Counts {
            cold: 3,
            warm: 300,
            pause: 5,
            idle: 2,
        }
    } else {
        Counts {
            cold: 7,
            warm: 3000,
            pause: 20,
            idle: 4,
        }
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn warm(c: &dyn Container) {
    let r = c
        .init(Bytes::from_static(ECHO_INIT.as_bytes()), CALL)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let r = c
        .run(Bytes::from_static(RUN.as_bytes()), CALL)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
}

/// Latencies of `n` warm `/run`s (after 50 unmeasured ones).
async fn warm_runs(c: &dyn Container, n: usize) -> Vec<Duration> {
    let body = Bytes::from_static(RUN.as_bytes());
    for _ in 0..50 {
        c.run(body.clone(), CALL).await.unwrap();
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = c.run(body.clone(), CALL).await.unwrap();
        out.push(t.elapsed());
        assert_eq!(r.status, 200);
    }
    out
}

/// `/init` (echo) then `/run` over a connection to `socket`; `None` when the proxy is not
/// there (yet).
async fn init_and_run(socket: &Path) -> Option<u16> {
    let stream = UnixStream::connect(socket).await.ok()?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let post = |path: &str, body: &'static str| {
        http::Request::post(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .ok()
    };
    let r = send.send_request(post("/init", ECHO_INIT)?).await.ok()?;
    let _ = r.into_body().collect().await;
    let r = send.send_request(post("/run", RUN)?).await.ok()?;
    let status = r.status().as_u16();
    let _ = r.into_body().collect().await;
    Some(status)
}

/// [`init_and_run`], retried while the proxy is not listening, up to [`CALL`].
async fn init_and_run_when_listening(socket: &Path) -> u16 {
    let deadline = Instant::now() + CALL;
    loop {
        if let Some(status) = init_and_run(socket).await {
            return status;
        }
        assert!(Instant::now() < deadline, "{}: no proxy", socket.display());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Removes the containers of the plain `docker run` line.
async fn remove_plain_containers() {
    let ids = tokio::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=faas.bench=1"])
        .output()
        .await;
    if let Ok(out) = ids {
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = tokio::process::Command::new("docker")
                .args(["rm", "-f", id])
                .output()
                .await;
        }
    }
}

/// `docker run -d` of `image` with the executor's transport, to the first `/run` result.
async fn plain_docker_run(image: &str, dir: &Path, n: usize) -> Option<Duration> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let d = dir.join(format!("r{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let t = Instant::now();
        let out = tokio::process::Command::new("docker")
            .args([
                "run",
                "-d",
                "--network",
                "none",
                "--log-driver",
                "none",
                "-v",
            ])
            .arg(format!("{}:/run/faas", d.display()))
            .args([
                "-e",
                "__OW_LISTEN=unix:/run/faas/proxy.sock",
                "--label",
                "faas.bench=1",
                image,
            ])
            .output()
            .await;
        let out = match out {
            Ok(o) if o.status.success() => o,
            Ok(o) => {
                eprintln!("docker run failed: {}", String::from_utf8_lossy(&o.stderr));
                return None;
            }
            Err(e) => {
                eprintln!("no docker CLI ({e}); skipping the plain `docker run` line");
                return None;
            }
        };
        let status = init_and_run_when_listening(&d.join("proxy.sock")).await;
        times.push(t.elapsed());
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let _ = tokio::process::Command::new("docker")
            .args(["rm", "-f", &id])
            .output()
            .await;
        assert_eq!(status, 200);
    }
    Some(median(&mut times))
}

/// Resident memory (kB → bytes) of a process from `/proc/<pid>/status`.
fn rss(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Processes whose command line contains `needle` (and, when given, whose parent is `ppid`).
fn pids_with(needle: &str, ppid: Option<u32>) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().to_string();
            pid.parse::<u32>().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if !cmd.contains(needle) {
                return None;
            }
            if let Some(ppid) = ppid {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let parent: u32 = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                if parent != ppid {
                    return None;
                }
            }
            Some(pid)
        })
        .collect()
}

/// The cgroup memory of a container without page cache (what `docker stats` shows), bytes.
async fn container_memory(docker: &bollard::Docker, id: &str) -> u64 {
    let opts = bollard::query_parameters::StatsOptions {
        stream: false,
        one_shot: false,
    };
    let s = docker.stats(id, Some(opts)).next().await.unwrap().unwrap();
    let m = s.memory_stats.unwrap();
    let usage = m.usage.unwrap_or(0);
    let stats = m.stats.unwrap_or_default();
    let cache = stats
        .get("total_inactive_file")
        .or_else(|| stats.get("inactive_file"))
        .or_else(|| stats.get("cache"))
        .copied()
        .unwrap_or(0);
    usage.saturating_sub(cache)
}

fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

async fn bench() {
    let n = counts();
    let docker = match DockerExecutor::builder()
        .with_invoker_id(format!("bench-{}", std::process::id()))
        .build()
        .await
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "docker bench skipped: {e}\n(start the engine and build the images: scripts/services/docker.sh start && scripts/services/docker.sh images)"
            );
            return;
        }
    };
    let process = ProcessExecutor::detect().ok();
    let kind = docker
        .runtimes()
        .default_kind("nodejs")
        .expect("a Node.js runtime image")
        .to_string();
    let image = docker.runtimes().resolve(&kind).unwrap().image.clone();
    let version = docker.docker().version().await.unwrap();
    println!(
        "docker bench: engine {} (API {} negotiated), image {image} ({kind}), {} cores",
        version.version.unwrap_or_default(),
        docker.api_version(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let spec = ContainerSpec::new("bench", &kind, 256);

    // Cold start.
    let mut cold = Vec::with_capacity(n.cold);
    for _ in 0..n.cold {
        let t = Instant::now();
        let c = docker.create(&spec).await.unwrap();
        warm(&*c).await;
        cold.push(t.elapsed());
        c.destroy().await.unwrap();
    }
    let cold = median(&mut cold);
    let tmp = tempfile::tempdir().unwrap();
    let plain = plain_docker_run(&image, tmp.path(), n.cold).await;
    remove_plain_containers().await;
    match plain {
        Some(p) => println!(
            "cold start (create → first result), DockerExecutor: {:>8.1} ms   plain `docker run`: {:>8.1} ms   ratio {:.2}",
            ms(cold),
            ms(p),
            cold.as_secs_f64() / p.as_secs_f64()
        ),
        None => println!(
            "cold start (create → first result), DockerExecutor: {:>8.1} ms",
            ms(cold)
        ),
    }

    // Warm invoke: the process executor, then Docker with OpenWhisk's CPU shares for 256 MB
    // (256 of 1024: a quarter of the weight of an ordinary process when the host is busy), then
    // Docker with the full weight (the transport alone).
    let mut process_rss = None;
    let mut p50 = None;
    if let Some(p) = &process
        && let Some(pkind) = p.runtimes().default_kind("nodejs").map(str::to_string)
    {
        let pc = p
            .create(&ContainerSpec::new("bench", &pkind, 256))
            .await
            .unwrap();
        warm(&*pc).await;
        let mut pv = warm_runs(&*pc, n.warm).await;
        let v = pct(&mut pv, 0.5);
        p50 = Some(v);
        println!(
            "warm invoke (/run, echo), process executor ({pkind}): p50 {:>6.1} µs  p99 {:>7.1} µs",
            us(v),
            us(pct(&mut pv, 0.99)),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let runners = pids_with("runner.js", Some(std::process::id()));
        process_rss = runners.first().and_then(|pid| rss(pid));
        pc.destroy().await.unwrap();
    }
    let full = ContainerSpec::new("bench", &kind, 1024);
    let mut c = None;
    let mut d50 = Duration::ZERO;
    for (what, s) in [
        ("256 MB, 256 CPU shares", &spec),
        ("1024 CPU shares", &full),
    ] {
        let x = docker.create(s).await.unwrap();
        warm(&*x).await;
        let mut d = warm_runs(&*x, n.warm).await;
        let (v50, v99) = (pct(&mut d, 0.5), pct(&mut d, 0.99));
        let ratio = p50.map_or(String::new(), |p| {
            format!(
                "   ratio to process {:.2}",
                v50.as_secs_f64() / p.as_secs_f64()
            )
        });
        println!(
            "warm invoke (/run, echo), Docker ({what}): p50 {:>6.1} µs  p99 {:>7.1} µs{ratio}",
            us(v50),
            us(v99),
        );
        if c.is_none() {
            c = Some(x);
            d50 = v50;
        } else {
            x.destroy().await.unwrap();
        }
    }
    let c = c.unwrap();

    // Resume from pause.
    let mut resume = Vec::with_capacity(n.pause);
    let mut pause = Vec::with_capacity(n.pause);
    let body = Bytes::from_static(RUN.as_bytes());
    for _ in 0..n.pause {
        let t = Instant::now();
        c.pause().await.unwrap();
        pause.push(t.elapsed());
        let t = Instant::now();
        c.resume().await.unwrap();
        let r = c.run(body.clone(), CALL).await.unwrap();
        resume.push(t.elapsed());
        assert_eq!(r.status, 200);
    }
    let resume = median(&mut resume);
    println!(
        "resume from pause → first result: {:>8.2} ms   (pause {:.2} ms)   ratio to a warm invoke {:.0}x",
        ms(resume),
        ms(median(&mut pause)),
        resume.as_secs_f64() / d50.as_secs_f64()
    );
    c.destroy().await.unwrap();

    // Memory per idle warm container.
    let mut idle = Vec::new();
    for _ in 0..n.idle {
        let c = docker.create(&spec).await.unwrap();
        warm(&*c).await;
        idle.push(c);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let list = docker
        .docker()
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(std::collections::HashMap::from([(
                "label".to_string(),
                vec![format!("faas.invoker={}", docker.invoker_id())],
            )])),
            ..Default::default()
        }))
        .await
        .unwrap();
    let (mut cg, mut shim) = (0u64, 0u64);
    for s in &list {
        let id = s.id.clone().unwrap();
        cg += container_memory(docker.docker(), &id).await;
        shim += pids_with(&id, None)
            .iter()
            .filter_map(|p| rss(p))
            .sum::<u64>();
    }
    let k = list.len().max(1) as u64;
    let (cg, shim) = (cg / k, shim / k);
    let ratio = process_rss.map_or(String::new(), |r| {
        format!(
            "   process runner RSS {:.1} MB   ratio {:.2}",
            mb(r),
            (cg + shim) as f64 / r as f64
        )
    });
    println!(
        "memory per idle warm container ({} measured): {:.1} MB cgroup + {:.1} MB shim = {:.1} MB{ratio}",
        list.len(),
        mb(cg),
        mb(shim),
        mb(cg + shim)
    );
    for c in idle {
        c.destroy().await.unwrap();
    }
    let _ = docker.remove_orphans().await;
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if tokio::time::timeout(WHOLE_RUN, bench()).await.is_err() {
            eprintln!("docker bench: did not finish within {WHOLE_RUN:?}");
            std::process::exit(1);
        }
    });
}
