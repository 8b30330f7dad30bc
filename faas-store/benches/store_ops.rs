//! Store operations per second and their latency: in memory, in SQLite (with and without the
//! read cache), on CouchDB, and on CouchDB behind the read cache, with the ratio of each to
//! memory; then the activation listings the API serves on a namespace holding a million
//! records.
//!
//! ```sh
//! scripts/services/couchdb.sh start
//! FAAS_TEST_COUCHDB_URL=couchdb://127.0.0.1:5984/ \
//!   cargo bench -p faas-store --bench store_ops --features sqlite,couchdb
//! ```
//!
//! Without a feature (or without `FAAS_TEST_COUCHDB_URL`) that store is not measured. Each
//! operation runs for at most `FAAS_BENCH_SECONDS` (default 1.5) or `FAAS_BENCH_OPS` (default
//! 2000) operations, whichever ends first. The CouchDB databases get a prefix of their own and
//! are deleted at the end; the SQLite files live in a temporary directory (`synchronous=full`,
//! the default: every commit is flushed to disk).
//!
//! The listing table fills one namespace with `FAAS_BENCH_RECORDS` records (default
//! 1 000 000; 0 skips it) in memory and in SQLite, through `put_activation` with 1024 writes
//! in flight (so SQLite commits them in groups), and CouchDB with `FAAS_BENCH_COUCH_RECORDS`
//! (default 20 000: filling CouchDB with a million takes far too long). Records name one of 100
//! actions, every tenth inside a package.
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
    let records: u64 = env_or("FAAS_BENCH_RECORDS", 1_000_000);
    let couch_records: u64 = env_or("FAAS_BENCH_COUCH_RECORDS", 20_000);
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let mut columns: Vec<(String, Vec<(&'static str, Stats)>)> = Vec::new();
        columns.push((
            "memory".into(),
            run(Arc::new(MemoryStore::new()), "memory", &budget).await,
        ));
        sqlite(&budget, &mut columns, dir.path()).await;
        couch(&budget, &mut columns).await;
        print_table(&columns);

        if records > 0 {
            let mut large = vec![
                listings(
                    "memory",
                    Arc::new(MemoryStore::new()),
                    records,
                    &budget,
                    true,
                )
                .await,
            ];
            large.extend(sqlite_listings(dir.path(), records, &budget).await);
            large.extend(couch_listings(couch_records, &budget).await);
            print_listings(&large);
        }
    });
}

#[cfg(feature = "sqlite")]
async fn sqlite(
    budget: &Budget,
    columns: &mut Vec<(String, Vec<(&'static str, Stats)>)>,
    dir: &std::path::Path,
) {
    let store = faas_store::SqliteStore::builder(dir.join("ops.db"))
        .with_max_activations(None)
        .build()
        .await
        .expect("open the SQLite store");
    columns.push((
        "sqlite".into(),
        run(Arc::new(store.clone()), "sqlite", budget).await,
    ));
    let cached = faas_store::CachedStore::new(store.clone());
    columns.push((
        "sqlite+cache".into(),
        run(Arc::new(cached), "sqlite-cached", budget).await,
    ));
    store.close().await;
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite(
    _: &Budget,
    _: &mut Vec<(String, Vec<(&'static str, Stats)>)>,
    _: &std::path::Path,
) {
    eprintln!("store_ops: built without the `sqlite` feature; SQLite not measured");
}

/// The SQLite file is filled with `synchronous=normal` (commits not flushed one by one: the
/// fast bulk path the set-up needs), closed, and reopened with the default `full` to be read.
#[cfg(feature = "sqlite")]
async fn sqlite_listings(dir: &std::path::Path, records: u64, budget: &Budget) -> Option<Listings> {
    let open = |sync| {
        faas_store::SqliteStore::builder(dir.join("large.db"))
            .with_max_activations(None)
            .with_synchronous(sync)
            .build()
    };
    let bulk = open(faas_store::sqlite::Synchronous::Normal)
        .await
        .expect("open the SQLite store");
    let mut l = listings("sqlite", Arc::new(bulk.clone()), records, budget, true).await;
    bulk.close().await;
    let store = open(faas_store::sqlite::Synchronous::Full)
        .await
        .expect("reopen the SQLite store");
    let read = listings("sqlite", Arc::new(store.clone()), 0, budget, false).await;
    l.rows = read.rows;
    store.close().await;
    Some(l)
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite_listings(_: &std::path::Path, _: u64, _: &Budget) -> Option<Listings> {
    None
}

#[cfg(feature = "couchdb")]
async fn couch_listings(records: u64, budget: &Budget) -> Option<Listings> {
    let url = std::env::var("FAAS_TEST_COUCHDB_URL")
        .ok()
        .filter(|u| !u.is_empty() && records > 0)?;
    let prefix = format!("faas_bench_large_{}_", std::process::id());
    let store = faas_store::CouchDbStore::builder()
        .with_url(url)
        .with_prefix(&prefix)
        .build()
        .await
        .expect("connect to CouchDB");
    let l = listings("couchdb", Arc::new(store.clone()), records, budget, true).await;
    if let Err(e) = store.delete_databases().await {
        eprintln!("store_ops: could not delete the bench databases: {e}");
    }
    Some(l)
}

#[cfg(not(feature = "couchdb"))]
async fn couch_listings(_: u64, _: &Budget) -> Option<Listings> {
    None
}

/// The activation listings of one store holding `records` records in one namespace.
struct Listings {
    store: &'static str,
    records: u64,
    fill: Duration,
    rows: Vec<(&'static str, Stats)>,
}

fn listed_activation(ns: &EntityPath, i: u64) -> Activation {
    let mut a = activation(ns, 1_600_000_000_000 + i);
    let action = format!("act{}", i % 100);
    let path = if i.is_multiple_of(10) {
        format!("{ns}/pkg/{action}")
    } else {
        format!("{ns}/{action}")
    };
    a.name = EntityName::new(action).unwrap();
    a.annotations.set("path", json!(path));
    a
}

/// Writes `records` records (when `fill`), then measures the listings. Without `fill` the
/// store holds them already, from an earlier call with the same process id.
async fn listings(
    label: &'static str,
    store: Arc<dyn Store>,
    records: u64,
    budget: &Budget,
    fill: bool,
) -> Listings {
    use faas_core::store::ActivationQuery;
    use futures::StreamExt;
    let ns_name = EntityName::new(format!("large-{}", std::process::id())).unwrap();
    let ns = EntityPath::namespace(&ns_name);
    eprintln!("store_ops: writing {records} activation records to {label}");
    let start = Instant::now();
    let mut ids = Vec::new();
    let records = if fill { records } else { 0 };
    futures::stream::iter(0..records)
        .map(|i| {
            let (store, a) = (&store, listed_activation(&ns, i));
            async move {
                assert!(store.put_activation(&a).await.unwrap());
                i.is_multiple_of((records / 100).max(1))
                    .then_some(a.activation_id)
            }
        })
        .buffer_unordered(1024)
        .for_each(|id| {
            ids.extend(id);
            async {}
        })
        .await;
    let fill = start.elapsed();
    if ids.is_empty() {
        // Reading a store filled earlier: its ids, from the store itself.
        let q = ActivationQuery {
            limit: 100,
            ..Default::default()
        };
        ids = store
            .list_activations(&ns_name, &q)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.activation_id)
            .collect();
    }
    eprintln!(
        "store_ops: {label}: {records} records in {:.1} s",
        fill.as_secs_f64()
    );
    let total = store
        .count_activations(&ns_name, &ActivationQuery::default())
        .await
        .unwrap();
    let mid = 1_600_000_000_000 + total / 2;
    let q = |name: Option<&str>, since: Option<u64>, upto: Option<u64>, skip: u64, limit: u64| {
        ActivationQuery {
            name: name.map(String::from),
            since,
            upto,
            skip,
            limit,
        }
    };
    let cases: Vec<(&'static str, ActivationQuery, bool)> = vec![
        ("newest 30", q(None, None, None, 0, 30), false),
        ("skip 1000, 30", q(None, None, None, 1_000, 30), false),
        ("name, 30", q(Some("act7"), None, None, 0, 30), false),
        (
            "pkg/name, 30",
            q(Some("pkg/act10"), None, None, 0, 30),
            false,
        ),
        (
            "since/upto, 30",
            q(None, Some(mid), Some(mid + 10_000), 0, 30),
            false,
        ),
        ("count", q(None, None, None, 0, 0), true),
        ("count name", q(Some("act7"), None, None, 0, 0), true),
        ("count since", q(None, Some(mid), None, 0, 0), true),
    ];
    // Fewer operations than elsewhere: a count of a million may take a while.
    let budget = Budget {
        time: budget.time,
        ops: budget.ops.min(200),
    };
    let mut rows = Vec::new();
    for (what, query, counting) in cases {
        let stats = measure(&budget, |_| {
            let (store, ns, query) = (&store, &ns_name, &query);
            async move {
                if counting {
                    assert!(store.count_activations(ns, query).await.unwrap() > 0);
                } else {
                    assert_eq!(store.list_activations(ns, query).await.unwrap().len(), 30);
                }
            }
        })
        .await;
        rows.push((what, stats));
    }
    let get = measure(&budget, |i| {
        let (store, ns, id) = (&store, &ns_name, &ids[i % ids.len()]);
        async move {
            store.get_activation(ns, id).await.unwrap();
        }
    })
    .await;
    rows.push(("get by id", get));
    Listings {
        store: label,
        records,
        fill,
        rows,
    }
}

fn print_listings(all: &[Listings]) {
    let Some(memory) = all.first() else {
        return;
    };
    println!();
    println!("activation listings, one namespace");
    for l in all {
        println!(
            "  {:<8} {:>9} records, written in {:.1} s ({:.0}/s with 1024 in flight)",
            l.store,
            l.records,
            l.fill.as_secs_f64(),
            l.records as f64 / l.fill.as_secs_f64()
        );
    }
    if all.iter().any(|l| l.store == "sqlite") {
        println!(
            "  (SQLite is filled with synchronous=normal, then reopened with the default full)"
        );
    }
    println!(
        "{:<20} {:<14} {:>12} {:>10} {:>10} {:>12}",
        "query", "store", "ops/s", "p50", "p99", "vs memory"
    );
    for (i, (what, mem)) in memory.rows.iter().enumerate() {
        for l in all {
            let s = l.rows[i].1;
            let slower = mem.ops_per_sec / s.ops_per_sec;
            let ratio = if l.store == "memory" {
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
                what,
                l.store,
                s.ops_per_sec,
                fmt_d(s.p50),
                fmt_d(s.p99),
                ratio
            );
        }
    }
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
