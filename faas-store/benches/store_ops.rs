//! Store operations per second and their latency: in memory, on CouchDB, and on CouchDB
//! behind the read cache, with the ratio of each to memory.
//!
//! ```sh
//! scripts/services/couchdb.sh start
//! FAAS_TEST_COUCHDB_URL=couchdb://127.0.0.1:5984/ \
//!   cargo bench -p faas-store --bench store_ops --features couchdb
//! ```
//!
//! Without the `couchdb` feature or without `FAAS_TEST_COUCHDB_URL` only memory is measured.
//! Each operation runs for at most `FAAS_BENCH_SECONDS` (default 1.5) or `FAAS_BENCH_OPS`
//! (default 2000) operations, whichever ends first, so the whole run stays well under a
//! minute. The CouchDB databases get a prefix of their own and are deleted at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark may stop at the first failure

use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_core::activation::{Activation, ActivationId, ActivationResponse};
use faas_core::entity::{Action, Entity, EntityKind, Exec};
use faas_core::limits::{ActionLimits, SystemLimits};
use faas_core::names::{EntityName, EntityPath, FullyQualifiedName};
use faas_core::params::{Parameters, SemVer};
use faas_core::store::{ListQuery, Store};
use faas_store::MemoryStore;
use serde_json::json;

fn action(ns: &EntityPath, name: &str, updated: u64) -> Entity {
    Entity::Action(Action {
        namespace: ns.clone(),
        name: EntityName::new(name).unwrap(),
        version: SemVer::default(),
        publish: false,
        exec: Exec::Code {
            kind: "nodejs:20".into(),
            code: "function main(params) { return { greeting: 'hello ' + params.name } }".into(),
            binary: false,
            main: None,
        },
        parameters: Parameters::new().with("name", json!("world")),
        limits: ActionLimits::defaults(&SystemLimits::default()),
        annotations: Parameters::new().with("exec", json!("nodejs:20")),
        updated,
    })
}

fn activation(ns: &EntityPath, start: u64) -> Activation {
    Activation {
        namespace: ns.clone(),
        name: EntityName::new("hello").unwrap(),
        subject: "bench".into(),
        activation_id: ActivationId::generate(),
        start,
        end: start + 5,
        duration: Some(5),
        cause: None,
        response: ActivationResponse::success(json!({"greeting": "hello world"})),
        logs: vec!["2024-01-01T00:00:00.000000000Z stdout: hello".into()],
        version: SemVer::default(),
        publish: false,
        annotations: Parameters::new()
            .with("path", json!(format!("{ns}/hello")))
            .with("kind", json!("nodejs:20")),
    }
}

/// One measured operation: ops/s and latency percentiles.
#[derive(Clone, Copy)]
struct Stats {
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

struct Budget {
    time: Duration,
    ops: usize,
}

/// Runs `op` sequentially until the budget is spent.
async fn measure<F, Fut>(budget: &Budget, mut op: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for i in 0..10 {
        op(i).await; // warm-up
    }
    let mut lat = Vec::with_capacity(budget.ops);
    let start = Instant::now();
    for i in 0..budget.ops {
        let t = Instant::now();
        op(10 + i).await;
        lat.push(t.elapsed());
        if start.elapsed() > budget.time {
            break;
        }
    }
    let total = start.elapsed();
    lat.sort();
    Stats {
        ops_per_sec: lat.len() as f64 / total.as_secs_f64(),
        p50: lat[lat.len() / 2],
        p99: lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
    }
}

/// Runs `n` operations `concurrency` at a time; ops/s only.
async fn measure_concurrent<F, Fut>(n: usize, concurrency: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::StreamExt;
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(&op)
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    n as f64 / start.elapsed().as_secs_f64()
}

/// The operations, measured on `store`.
async fn run(store: Arc<dyn Store>, label: &str, budget: &Budget) -> Vec<(&'static str, Stats)> {
    let ns_name = format!("bench-{label}-{}", std::process::id());
    let ns = EntityPath::new(&ns_name).unwrap();
    for i in 0..50 {
        store
            .put_entity(&action(&ns, &format!("a{i}"), 1_000 + i), None)
            .await
            .unwrap();
    }
    let target = FullyQualifiedName::new(ns.clone(), EntityName::new("a7").unwrap());
    let mut out = Vec::new();

    let get = measure(budget, |_| {
        let (store, target) = (&store, &target);
        async move {
            store.get_entity(target).await.unwrap();
        }
    })
    .await;
    out.push(("get", get));

    let mut rev = store.get_entity(&target).await.unwrap().rev;
    let mut n = 0u64;
    let put = {
        let mut lat = Vec::new();
        let start = Instant::now();
        while lat.len() < budget.ops && start.elapsed() < budget.time {
            n += 1;
            let t = Instant::now();
            rev = store
                .put_entity(&action(&ns, "a7", 10_000 + n), Some(&rev))
                .await
                .unwrap();
            lat.push(t.elapsed());
        }
        let total = start.elapsed();
        lat.sort();
        Stats {
            ops_per_sec: lat.len() as f64 / total.as_secs_f64(),
            p50: lat[lat.len() / 2],
            p99: lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
        }
    };
    out.push(("put", put));

    let list = measure(budget, |_| {
        let (store, ns) = (&store, &ns);
        async move {
            let l = store
                .list_entities(ns, EntityKind::Action, ListQuery { skip: 0, limit: 30 })
                .await
                .unwrap();
            assert_eq!(l.len(), 30);
        }
    })
    .await;
    out.push(("list", list));

    let put_activation = measure(budget, |i| {
        let (store, ns) = (&store, &ns);
        async move {
            assert!(
                store
                    .put_activation(&activation(ns, i as u64))
                    .await
                    .unwrap()
            );
        }
    })
    .await;
    out.push(("put_activation", put_activation));

    let concurrent = measure_concurrent(budget.ops.max(64), 64, |i| {
        let (store, ns) = (&store, &ns);
        async move {
            assert!(
                store
                    .put_activation(&activation(ns, 1_000_000 + i as u64))
                    .await
                    .unwrap()
            );
        }
    })
    .await;
    out.push((
        "put_activation x64",
        Stats {
            ops_per_sec: concurrent,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
        },
    ));
    out
}

fn fmt_d(d: Duration) -> String {
    if d.is_zero() {
        "-".into()
    } else if d < Duration::from_micros(1) {
        format!("{}ns", d.as_nanos())
    } else if d < Duration::from_millis(1) {
        format!("{:.1}µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2}ms", d.as_secs_f64() * 1e3)
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let budget = Budget {
        time: Duration::from_secs_f64(env_or("FAAS_BENCH_SECONDS", 1.5)),
        ops: env_or("FAAS_BENCH_OPS", 2000usize),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut columns: Vec<(String, Vec<(&'static str, Stats)>)> = Vec::new();
        columns.push((
            "memory".into(),
            run(Arc::new(MemoryStore::new()), "memory", &budget).await,
        ));
        couch(&budget, &mut columns).await;
        print_table(&columns);
    });
}

#[cfg(feature = "couchdb")]
async fn couch(budget: &Budget, columns: &mut Vec<(String, Vec<(&'static str, Stats)>)>) {
    let Some(url) = std::env::var("FAAS_TEST_COUCHDB_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("store_ops: FAAS_TEST_COUCHDB_URL not set; CouchDB not measured");
        return;
    };
    let prefix = format!("faas_bench_{}_", std::process::id());
    let store = faas_store::CouchDbStore::builder()
        .with_url(url)
        .with_prefix(&prefix)
        .build()
        .await
        .expect("connect to CouchDB");
    columns.push((
        "couchdb".into(),
        run(Arc::new(store.clone()), "couchdb", budget).await,
    ));
    let cached = faas_store::CachedStore::new(store.clone());
    columns.push((
        "couchdb+cache".into(),
        run(Arc::new(cached), "cached", budget).await,
    ));
    if let Err(e) = store.delete_databases().await {
        eprintln!("store_ops: could not delete the bench databases: {e}");
    }
}

#[cfg(not(feature = "couchdb"))]
async fn couch(_: &Budget, _: &mut Vec<(String, Vec<(&'static str, Stats)>)>) {
    eprintln!("store_ops: built without the `couchdb` feature; CouchDB not measured");
}

fn print_table(columns: &[(String, Vec<(&'static str, Stats)>)]) {
    let Some((_, memory)) = columns.first() else {
        return;
    };
    println!();
    println!(
        "{:<20} {:<14} {:>12} {:>10} {:>10} {:>12}",
        "operation", "store", "ops/s", "p50", "p99", "vs memory"
    );
    for (i, (op, mem)) in memory.iter().enumerate() {
        for (name, rows) in columns {
            let s = rows[i].1;
            let slower = mem.ops_per_sec / s.ops_per_sec;
            let ratio = if name == "memory" {
                "1x".to_string()
            } else if slower >= 10.0 {
                format!("{slower:.0}x slower")
            } else if slower >= 1.0 {
                format!("{slower:.1}x slower")
            } else {
                format!("{:.1}x faster", 1.0 / slower)
            };
            println!(
                "{:<20} {:<14} {:>12.0} {:>10} {:>10} {:>12}",
                op,
                name,
                s.ops_per_sec,
                fmt_d(s.p50),
                fmt_d(s.p99),
                ratio
            );
        }
    }
}
