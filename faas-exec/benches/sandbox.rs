//! Cold start of the process executor with its sandbox against the same executor without it
//! (`sandbox=off`), measured in the same run, interleaved so that machine load hits both alike.
//!
//! Run with: `cargo bench -p faas-exec --bench sandbox` (`FAAS_BENCH_COLD=N` rounds, default 30).
//!
//! Cold start is `create` → `/init` → first `/run` result, then `destroy` (not timed), for a
//! no-op Node.js and Python action. Prints p50 and mean per side and their ratios; the target
//! is a sandboxed cold start within 1.2× of the unsandboxed one at p50.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may stop at the first failure

use std::time::{Duration, Instant};

use faas_core::{ContainerSpec, Executor};
use faas_exec::process::{ProcessExecutor, SandboxMode};

const CALL: Duration = Duration::from_secs(30);

fn init(family: &str) -> String {
    let code = if family == "nodejs" {
        "function main(a) { return a; }"
    } else {
        "def main(a):\n    return a\n"
    };
    serde_json::json!({"value": {"name": "bench", "main": "main", "code": code}}).to_string()
}

async fn cold(ex: &ProcessExecutor, kind: &str, init: &str) -> Duration {
    let started = Instant::now();
    let c = ex
        .create(&ContainerSpec::new("bench", kind, 256))
        .await
        .unwrap();
    let r = c.init(init.to_string().into(), CALL).await.unwrap();
    assert_eq!(r.status, 200);
    let r = c
        .run(r#"{"value":{"a":1},"activation_id":"b"}"#.into(), CALL)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let took = started.elapsed();
    c.destroy().await.unwrap();
    took
}

fn p50(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mean(v: &[Duration]) -> Duration {
    v.iter().sum::<Duration>() / v.len().max(1) as u32
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("FAAS_BENCH_COLD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let on = ProcessExecutor::detect().expect("the sandbox must be available");
    let off = ProcessExecutor::builder()
        .with_sandbox(SandboxMode::Off)
        .build()
        .unwrap();
    println!(
        "| cold start ({rounds} rounds) | sandbox p50 | off p50 | ratio p50 | sandbox mean | off mean | ratio mean |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    for family in ["nodejs", "python"] {
        let Some(kind) = on.runtimes().default_kind(family).map(str::to_string) else {
            continue;
        };
        let body = init(family);
        // One of each first, not counted (page cache, interpreter warm-up).
        cold(&on, &kind, &body).await;
        cold(&off, &kind, &body).await;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            a.push(cold(&on, &kind, &body).await);
            b.push(cold(&off, &kind, &body).await);
        }
        let (ma, mb) = (mean(&a), mean(&b));
        let (pa, pb) = (p50(&mut a), p50(&mut b));
        let ratio = pa.as_secs_f64() / pb.as_secs_f64();
        worst = worst.max(ratio);
        println!(
            "| {kind} | {} | {} | {ratio:.2} | {} | {} | {:.2} |",
            ms(pa),
            ms(pb),
            ms(ma),
            ms(mb),
            ma.as_secs_f64() / mb.as_secs_f64()
        );
    }
    println!(
        "\ntarget: sandboxed cold start p50 ≤ 1.2× unsandboxed: {}",
        if worst <= 1.2 { "PASS" } else { "FAIL" }
    );
}
