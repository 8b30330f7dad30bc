//! The platform's speed benchmark: a no-op Node.js action invoked through the whole platform,
//! against the same runner called directly (the floor), measured in the same run.
//!
//! ```sh
//! cargo bench -p faas-platform --bench invoke
//! FAAS_BENCH_SECS=5 cargo bench -p faas-platform --bench invoke -- --cold 20
//! ```
//!
//! # What is measured
//!
//! * **platform**: `POST /api/v1/namespaces/_/actions/noop?blocking=true&result=true` with body
//!   `{}` on a standalone platform (memory store, in-process bus, process executor) served on
//!   loopback, over HTTP/1.1 keep-alive connections (hyper, `TCP_NODELAY`, one connection per
//!   client, Basic auth). The platform runs on its own multi-threaded Tokio runtime; the clients
//!   run on a separate single-threaded runtime, as a separate client process would.
//! * **floor**: the same action in the same runner (`faas-exec`'s process executor, the
//!   manifest's default `nodejs` kind, 256 MB), initialized once, then `/run` called directly
//!   with the body the invoker sends (`Container::run`): no HTTP server, controller, bus,
//!   store or pool. At `c` clients the floor drives `min(c, N)` runners, one client task each,
//!   where `N` is the number of 256 MB containers the platform may hold for the action
//!   (`--containers`, default 32; the platform gets `(N + 1) × 256` MB of user memory, the
//!   extra 256 MB being its prewarmed stem cell). The platform side uses `c` connections.
//! * **floor + logs** (information only): `/run` followed by collecting the activation's logs
//!   up to the sentinels, which the invoker does for every activation.
//! * **cold start**: the first blocking invoke of each of `K` new actions on a fresh platform
//!   without prewarming, and on one with one prewarmed Node.js stem cell (waiting
//!   `FAAS_BENCH_STEM_WAIT_MS` between invokes so that a stem cell is ready); the floor is
//!   create + `/init` + first `/run` directly.
//!
//! * **store**: the warm latency (1 client) and throughput (8 clients) of a fresh platform on
//!   the in-memory store against a fresh platform on the durable default,
//!   `sqlite:<temporary dir>/faas.db` (`synchronous=full`: every acknowledged write flushed,
//!   activation records within `activation_flush`, 1 s) with its journaled bus
//!   `inproc:?journal=<temporary dir>/faas.bus.db` (blocking invokes journaled only if
//!   answered `202`): both started and warmed alike (a platform that served earlier phases
//!   has runners with a warmer JIT), then alternating. `--sqlite-options` measures other
//!   settings of the store, e.g. `activation_flush=0` (every commit flushed).
//! * **web**: the same no-op action (annotated `web-export: true`) called as a web action,
//!   `POST /api/v1/web/guest/default/noop.json` with body `{}` and the same credentials, against
//!   its blocking invoke: warm latency (1 client) and throughput (8 clients), alternating on the
//!   same platform and connections.
//! * **triggers**: a fire of a trigger whose one rule runs the no-op action, until the action's
//!   record is stored (the fire's `202`, then its trigger record, which names the action's
//!   activation, then the action's record, each read every millisecond until stored), against
//!   a non-blocking invoke of the same action until its record is stored (read the same way);
//!   latency at 1 client and throughput at 8, the two alternating.
//! * **metrics**: a fresh platform with Prometheus metrics on (the default: every activation,
//!   request, store operation and bus message recorded) against a fresh one with metrics off
//!   (`--no-metrics`), started and warmed alike; warm blocking invokes, latency at 1 client and
//!   throughput at 8, the two alternating.
//! * **tracing**: the same with tracing on (every span exported over OTLP/HTTP to a sink on
//!   loopback that reads and discards the requests) against tracing off, both with metrics on;
//!   reported, not a target.
//! * **CPU per request**: CPU time (from `/proc`, 10 ms ticks) of the platform's runtime threads,
//!   the client thread and the runner processes during each measured phase, divided by the
//!   requests served. On a machine with few cores throughput is CPU-bound, and this table says
//!   where the CPU goes.
//!
//! Latency and throughput phases alternate floor and platform in short rounds so that load
//! from other processes on the machine hits both sides alike. Every loop is bounded in count
//! and time and every request by a timeout; everything stays on loopback.
//!
//! # Settings
//!
//! | env | flag | default | |
//! |---|---|---|---|
//! | `FAAS_BENCH_SECS` | `--secs` | 3 | measured seconds per phase and side |
//! | `FAAS_BENCH_COLD` | `--cold` | 10 | cold starts per variant |
//! | `FAAS_BENCH_CONTAINERS` | `--containers` | 32 | `N`, see above |
//! | `FAAS_BENCH_STEM_WAIT_MS` | `--stem-wait-ms` | 1000 | pause before each cold invoke with prewarming |
//! | `FAAS_BENCH_PLATFORM_THREADS` | `--platform-threads` | one per CPU | worker threads of the platform's runtime |
//! | `FAAS_BENCH_STRICT=1` | `--strict` | off | exit with status 1 when a target is missed |
//! | `FAAS_BENCH_ONLY=store` | `--only store` | all phases | run only the store comparison (its table and target line) |
//! | `FAAS_BENCH_ONLY=metrics` | `--only metrics` | all phases | run only the metrics on/off comparison (its table and target line) |
//! | `FAAS_BENCH_SQLITE_OPTIONS` | `--sqlite-options` | none | options appended to the SQLite side's store URL, e.g. `activation_flush=0` |
//! | `FAAS_BENCH_STORE_URL` | `--store-url` | `sqlite:<temporary dir>/faas.db` | the store compared with memory instead; `memory:` measures the comparison's own noise (two identical platforms) |
//!
//! Without `--bench` (that is, run by `cargo test --benches` rather than `cargo bench`) and
//! without settings, the binary runs as a quick smoke test: 0.3 s phases, one cold start,
//! `N` = 2.
//!
//! Targets: the platform adds under 0.5 ms at p50 over the floor, and sustains at least 70 %
//! of the floor's throughput at 32 clients; on the SQLite store its warm p50 latency and its
//! throughput at 8 clients are within 10 % of the in-memory store's; a web action's warm p50
//! and 8-client throughput are within 10 % of the blocking invoke's; with metrics on, the
//! 8-client throughput is at least 97 % of that with metrics off.

/// The same global allocator as the `faas-platform` binary, so that the benchmark measures what
/// ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use faas_core::{Container, ContainerSpec, Executor};
use faas_exec::process::ProcessExecutor;
use faas_platform::config::{StandaloneConfig, bus_journal_for};
use faas_platform::standalone::{self, Adapters, Running};
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, BoxError>;

/// OpenWhisk's well-known development key for `guest`.
const AUTH: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
/// The no-op action.
const CODE: &str = "function main(){return {}}";
/// Its warm invoke path.
const INVOKE_NOOP: &str = "/api/v1/namespaces/_/actions/noop?blocking=true&result=true";
/// Its web action path (the action is annotated `web-export: true`).
const WEB_NOOP: &str = "/api/v1/web/guest/default/noop.json";
/// Memory of every container, MB (the platform's default action memory).
const CONTAINER_MB: u64 = 256;
/// Client counts of the throughput phases.
const CLIENTS: [usize; 3] = [1, 8, 32];
/// Clients of the store comparison's throughput phase.
const STORE_CLIENTS: usize = 8;
/// Clients of the triggers' throughput phase.
const TRIGGER_CLIENTS: usize = 8;
/// A non-blocking invoke of the no-op action.
const INVOKE_NOOP_ASYNC: &str = "/api/v1/namespaces/_/actions/noop";
/// A fire of the trigger whose rule runs the no-op action.
const FIRE_TICK: &str = "/api/v1/namespaces/_/triggers/tick";
/// How often a record is looked for until it is stored.
const RECORD_POLL: Duration = Duration::from_millis(1);
/// Longest wait for any one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most requests one client makes in one measured chunk.
const MAX_REQUESTS: u64 = 2_000_000;
/// Requests before a latency measurement (also bounded by time).
const WARMUP_LATENCY: u64 = 300;
/// Requests of every client before a throughput measurement.
const WARMUP_THROUGHPUT: u64 = 10;
/// Floor and platform alternate this many times per phase.
const ROUNDS: u32 = 3;
/// Log bytes collected per activation in the floor + logs variant (the default logs limit).
const LOG_LIMIT: u64 = 10 * 1024 * 1024;

fn main() {
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("invoke bench failed: {e}");
            std::process::exit(2);
        }
    }
}

/// Returns whether the targets were met or need not be (`--strict` off).
fn run() -> Res<bool> {
    let s = Settings::from_env_and_args()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = s.platform_threads {
        builder.worker_threads(n);
    }
    let platform_rt = builder.enable_all().thread_name("platform").build()?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pass = if s.only == Some(Only::Store) {
        let load_before = loadavg();
        let stores = client_rt.block_on(store_bench(&s, &platform_rt))?;
        println!();
        println!(
            "faas-platform invoke benchmark, store comparison only: {:.1} s per phase and side; load average before {load_before} / after {}",
            s.secs,
            loadavg()
        );
        println!();
        stores.print(&s)
    } else if s.only == Some(Only::Metrics) {
        let load_before = loadavg();
        let metrics = client_rt.block_on(metrics_bench(&s, &platform_rt))?;
        println!();
        println!(
            "faas-platform invoke benchmark, metrics comparison only: {:.1} s per phase and side; load average before {load_before} / after {}",
            s.secs,
            loadavg()
        );
        println!();
        let tput = metrics.print_metrics();
        if s.smoke {
            println!("smoke run: the figures above mean nothing; use `cargo bench`");
        }
        metrics_verdict(tput)
    } else {
        let report = client_rt.block_on(bench(&s, &platform_rt))?;
        report.print(&s)
    };
    // Runner processes of the cold-start platforms are gone; let the runtimes end quickly.
    platform_rt.shutdown_timeout(Duration::from_secs(5));
    client_rt.shutdown_timeout(Duration::from_secs(5));
    Ok(pass || !s.strict)
}

// ------------------------------------------------------------------------------------ settings

#[derive(Debug)]
struct Settings {
    /// Measured time per phase and side.
    secs: f64,
    /// Cold starts per variant.
    cold: usize,
    /// `N`.
    containers: usize,
    /// Pause before each prewarmed cold invoke.
    stem_wait: Duration,
    /// Worker threads of the platform's runtime (default: one per CPU).
    platform_threads: Option<usize>,
    /// Exit 1 on a missed target.
    strict: bool,
    /// A quick smoke run (not under `cargo bench`).
    smoke: bool,
    /// Only one comparison (`--only store`, `--only metrics`).
    only: Option<Only>,
    /// `k=v&…` appended to the SQLite side's store URL.
    sqlite_options: String,
    /// The store compared with memory instead of the SQLite default.
    store_url: Option<String>,
}

/// The one comparison `--only` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    Store,
    Metrics,
}

impl Only {
    fn parse(v: &str) -> Res<Self> {
        match v {
            "store" => Ok(Self::Store),
            "metrics" => Ok(Self::Metrics),
            other => Err(format!("only {other}: 'store' and 'metrics' are known").into()),
        }
    }
}

impl Settings {
    fn from_env_and_args() -> Res<Self> {
        fn env<T: std::str::FromStr>(name: &str) -> Res<Option<T>> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("bad {name}: '{v}'").into()),
                Err(_) => Ok(None),
            }
        }
        let mut s = Self {
            secs: env("FAAS_BENCH_SECS")?.unwrap_or(3.0),
            cold: env("FAAS_BENCH_COLD")?.unwrap_or(10),
            containers: env("FAAS_BENCH_CONTAINERS")?.unwrap_or(32),
            stem_wait: Duration::from_millis(env("FAAS_BENCH_STEM_WAIT_MS")?.unwrap_or(1000)),
            platform_threads: env("FAAS_BENCH_PLATFORM_THREADS")?,
            strict: env::<String>("FAAS_BENCH_STRICT")?.is_some_and(|v| v == "1" || v == "true"),
            smoke: false,
            sqlite_options: env("FAAS_BENCH_SQLITE_OPTIONS")?.unwrap_or_default(),
            store_url: env::<String>("FAAS_BENCH_STORE_URL")?.filter(|u| !u.is_empty()),
            only: match env::<String>("FAAS_BENCH_ONLY")?.as_deref() {
                None | Some("") => None,
                Some(v) => Some(Only::parse(v)?),
            },
        };
        // `cargo bench` passes `--bench`; without it (`cargo test --benches`, `--all-targets`)
        // the binary runs as a quick smoke test unless settings were given.
        let argv: Vec<String> = std::env::args().skip(1).collect();
        let given = std::env::vars().any(|(k, _)| k.starts_with("FAAS_BENCH_")) || argv.len() > 1;
        if !argv.iter().any(|a| a == "--bench") && !given {
            s.secs = 0.3;
            s.cold = 1;
            s.containers = 2;
            s.stem_wait = Duration::from_millis(300);
            s.smoke = true;
            eprintln!("smoke mode (run with `cargo bench` for figures)");
        }
        let mut args = argv.into_iter();
        while let Some(a) = args.next() {
            let mut value = |name: &str| -> Res<String> {
                args.next()
                    .ok_or_else(|| format!("{name} needs a value").into())
            };
            match a.as_str() {
                "--secs" => s.secs = value("--secs")?.parse()?,
                "--cold" => s.cold = value("--cold")?.parse()?,
                "--containers" => s.containers = value("--containers")?.parse()?,
                "--stem-wait-ms" => {
                    s.stem_wait = Duration::from_millis(value("--stem-wait-ms")?.parse()?)
                }
                "--platform-threads" => {
                    s.platform_threads = Some(value("--platform-threads")?.parse()?)
                }
                "--strict" => s.strict = true,
                "--sqlite-options" => s.sqlite_options = value("--sqlite-options")?,
                "--store-url" => s.store_url = Some(value("--store-url")?),
                "--only" => s.only = Some(Only::parse(&value("--only")?)?),
                // `cargo bench` passes `--bench`; filters and other harness flags mean nothing here.
                _ => {}
            }
        }
        if !(0.1..=600.0).contains(&s.secs) {
            return Err(format!("secs must be within 0.1..=600, not {}", s.secs).into());
        }
        if !(1..=1000).contains(&s.cold) {
            return Err(format!("cold must be within 1..=1000, not {}", s.cold).into());
        }
        if !(1..=256).contains(&s.containers) {
            return Err(format!("containers must be within 1..=256, not {}", s.containers).into());
        }
        if s.platform_threads.is_some_and(|n| !(1..=64).contains(&n)) {
            return Err("platform threads must be within 1..=64".into());
        }
        s.stem_wait = s.stem_wait.min(Duration::from_secs(30));
        Ok(s)
    }

    /// One alternation round of a phase.
    fn chunk(&self) -> Duration {
        Duration::from_secs_f64(self.secs / f64::from(ROUNDS))
    }
}

// ------------------------------------------------------------------------------------- clients

/// One HTTP/1.1 keep-alive connection, driven in the caller's task.
struct HttpClient {
    sender: http1::SendRequest<Full<Bytes>>,
    conn: Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
    host: HeaderValue,
    auth: HeaderValue,
}

impl HttpClient {
    async fn connect(addr: SocketAddr) -> Res<Self> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
        let basic = base64::engine::general_purpose::STANDARD.encode(AUTH);
        Ok(Self {
            sender,
            conn: Box::pin(conn),
            host: HeaderValue::from_str(&addr.to_string())?,
            auth: HeaderValue::from_str(&format!("Basic {basic}"))?,
        })
    }

    /// One request; its status and body.
    async fn send(&mut self, method: Method, path: &str, body: Bytes) -> Res<(StatusCode, Bytes)> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.clone())
            .header(header::AUTHORIZATION, self.auth.clone())
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(Full::new(body))?;
        let Self { sender, conn, .. } = self;
        let exchange = async move {
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        let driven = async {
            tokio::select! {
                biased;
                r = exchange => r.map_err(BoxError::from),
                r = conn.as_mut() => Err(match r {
                    Ok(()) => "the server closed the connection".into(),
                    Err(e) => e.into(),
                }),
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, driven)
            .await
            .map_err(|_| "request timed out")?
    }

    /// Creates (or replaces) a no-op action.
    async fn put_action(&mut self, name: &str) -> Res<()> {
        let path = format!("/api/v1/namespaces/_/actions/{name}?overwrite=true");
        let body = serde_json::json!({
            "exec": {"kind": "nodejs:default", "code": CODE},
            "annotations": [{"key": "web-export", "value": true}],
        });
        let (status, body) = self
            .send(Method::PUT, &path, Bytes::from(body.to_string()))
            .await?;
        if status != StatusCode::OK {
            return Err(format!("PUT {path}: {status} {}", String::from_utf8_lossy(&body)).into());
        }
        Ok(())
    }

    /// A web action call expecting `200` and the result `{}`.
    async fn web(&mut self, path: &str) -> Res<()> {
        let (status, body) = self
            .send(Method::POST, path, Bytes::from_static(b"{}"))
            .await?;
        if status != StatusCode::OK || body.as_ref() != b"{}" {
            return Err(format!("POST {path}: {status} {}", String::from_utf8_lossy(&body)).into());
        }
        Ok(())
    }

    /// A blocking invoke expecting `200` and the result `{}`.
    async fn invoke(&mut self, path: &str) -> Res<()> {
        let (status, body) = self
            .send(Method::POST, path, Bytes::from_static(b"{}"))
            .await?;
        if status != StatusCode::OK || body.as_ref() != b"{}" {
            return Err(format!("POST {path}: {status} {}", String::from_utf8_lossy(&body)).into());
        }
        Ok(())
    }
}

impl HttpClient {
    /// `PUT` of `body` at `path` (`?overwrite=true` added), expecting `200`.
    async fn put_json(&mut self, path: &str, body: serde_json::Value) -> Res<()> {
        let path = format!("{path}?overwrite=true");
        let (status, got) = self
            .send(Method::PUT, &path, Bytes::from(body.to_string()))
            .await?;
        if status != StatusCode::OK {
            return Err(format!("PUT {path}: {status} {}", String::from_utf8_lossy(&got)).into());
        }
        Ok(())
    }

    /// `POST` expecting `202 {"activationId"}`; the id.
    async fn accepted(&mut self, path: &str) -> Res<String> {
        let (status, body) = self
            .send(Method::POST, path, Bytes::from_static(b"{}"))
            .await?;
        if status != StatusCode::ACCEPTED {
            return Err(format!("POST {path}: {status} {}", String::from_utf8_lossy(&body)).into());
        }
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        Ok(v["activationId"]
            .as_str()
            .ok_or("no activationId")?
            .to_string())
    }

    /// Reads activation `id` until it is stored (every [`RECORD_POLL`], bounded by
    /// [`REQUEST_TIMEOUT`]); the record.
    async fn record(&mut self, id: &str) -> Res<serde_json::Value> {
        let path = format!("/api/v1/namespaces/_/activations/{id}");
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let (status, body) = self.send(Method::GET, &path, Bytes::new()).await?;
            match status {
                StatusCode::OK => return Ok(serde_json::from_slice(&body)?),
                StatusCode::NOT_FOUND if Instant::now() < deadline => {
                    tokio::time::sleep(RECORD_POLL).await;
                }
                _ => {
                    return Err(
                        format!("GET {path}: {status} {}", String::from_utf8_lossy(&body)).into(),
                    );
                }
            }
        }
    }

    /// A non-blocking invoke of the no-op action, until its record is stored.
    async fn invoke_to_record(&mut self) -> Res<()> {
        let id = self.accepted(INVOKE_NOOP_ASYNC).await?;
        self.record(&id).await.map(drop)
    }

    /// A fire of the trigger whose one rule runs the no-op action, until the action's record
    /// is stored (the trigger's record names it).
    async fn fire_to_record(&mut self) -> Res<()> {
        let id = self.accepted(FIRE_TICK).await?;
        let fire = self.record(&id).await?;
        let line: serde_json::Value =
            serde_json::from_str(fire["logs"][0].as_str().ok_or("a fire without log lines")?)?;
        let action = line["activationId"]
            .as_str()
            .ok_or_else(|| format!("the rule did not run: {line}"))?
            .to_string();
        self.record(&action).await.map(drop)
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The `/init` body of the no-op action, as the invoker sends it (the environment of the first
/// activation included).
fn init_body() -> Bytes {
    let v = serde_json::json!({"value": {
        "name": "noop", "main": "main", "binary": false, "code": CODE,
        "env": {
            "__OW_API_KEY": AUTH,
            "__OW_NAMESPACE": "guest",
            "__OW_ACTION_NAME": "/guest/noop",
            "__OW_ACTION_VERSION": "0.0.1",
            "__OW_ACTIVATION_ID": format!("{:032x}", 0),
            "__OW_TRANSACTION_ID": "sid_0",
            "__OW_DEADLINE": (now_ms() + 60_000).to_string(),
        }
    }});
    Bytes::from(v.to_string())
}

/// A `/run` body as the invoker sends it, for activation number `n` (actions get the API key
/// unless annotated `provide-api-key: false`).
fn run_body(n: u64) -> Bytes {
    let deadline = now_ms() + 60_000;
    Bytes::from(format!(
        r#"{{"value":{{}},"namespace":"guest","action_name":"/guest/noop","action_version":"0.0.1","activation_id":"{n:032x}","transaction_id":"sid_{n}","deadline":"{deadline}","api_key":"{AUTH}"}}"#
    ))
}

async fn floor_init(c: &dyn Container) -> Res<()> {
    let r = c.init(init_body(), REQUEST_TIMEOUT).await?;
    if r.status != 200 {
        let body = String::from_utf8_lossy(&r.body);
        return Err(format!("/init answered {}: {body}", r.status).into());
    }
    Ok(())
}

async fn floor_run(c: &dyn Container, n: u64) -> Res<()> {
    let r = c.run(run_body(n), REQUEST_TIMEOUT).await?;
    if r.status != 200 || r.body.as_ref() != b"{}" {
        let body = String::from_utf8_lossy(&r.body);
        return Err(format!("/run answered {}: {body}", r.status).into());
    }
    Ok(())
}

/// Who serves one client's requests.
enum Side<'a> {
    /// The platform, over HTTP.
    Platform(&'a mut HttpClient),
    /// The platform, calling the same action as a web action.
    Web(&'a mut HttpClient),
    /// The runner's `/run`, directly.
    Floor(&'a dyn Container),
    /// `/run` and then the logs, as the invoker does.
    FloorLogs(&'a dyn Container),
    /// A non-blocking invoke, then its record read back.
    InvokeRecord(&'a mut HttpClient),
    /// A trigger fire, then its rule's action record read back.
    FireRecord(&'a mut HttpClient),
}

impl Side<'_> {
    async fn once(&mut self, n: u64) -> Res<()> {
        match self {
            Self::Platform(c) => c.invoke(INVOKE_NOOP).await,
            Self::Web(c) => c.web(WEB_NOOP).await,
            Self::Floor(c) => floor_run(*c, n).await,
            Self::FloorLogs(c) => {
                floor_run(*c, n).await?;
                let logs = c.logs(LOG_LIMIT, true).await?;
                if logs.incomplete {
                    return Err("the runner's log sentinels did not arrive".into());
                }
                Ok(())
            }
            Self::InvokeRecord(c) => c.invoke_to_record().await,
            Self::FireRecord(c) => c.fire_to_record().await,
        }
    }
}

/// Runs every side concurrently until `end` or `max` requests each; the total count and the
/// time from start to the last completion.
async fn drive(
    sides: Vec<Side<'_>>,
    end: Instant,
    max: u64,
    seq: &mut u64,
) -> Res<(u64, Duration)> {
    let start = Instant::now();
    let base = *seq;
    let clients = sides
        .into_iter()
        .enumerate()
        .map(|(i, mut side)| async move {
            let mut n = 0u64;
            while n < max && Instant::now() < end {
                side.once(base + (i as u64) * MAX_REQUESTS + n).await?;
                n += 1;
            }
            Ok::<u64, BoxError>(n)
        });
    let counts = futures::future::join_all(clients).await;
    let elapsed = start.elapsed();
    let mut total = 0;
    for c in counts {
        total += c?;
    }
    *seq = base + 1000 * MAX_REQUESTS;
    Ok((total, elapsed))
}

/// Latencies and (requests, time) of two sides compared by [`alternate_http`]: `(a, b)`.
struct HttpAb {
    latency: (Vec<Duration>, Vec<Duration>),
    throughput: ((u64, Duration), (u64, Duration)),
}

/// Two sides of one platform alternated round by round, `a` first in even rounds: per round
/// the first client samples each side's latency for `chunk`, then `group` clients drive each
/// side for `chunk`.
async fn alternate_http(
    clients: &mut [HttpClient],
    group: usize,
    chunk: Duration,
    a: for<'c> fn(&'c mut HttpClient) -> Side<'c>,
    b: for<'c> fn(&'c mut HttpClient) -> Side<'c>,
    seq: &mut u64,
) -> Res<HttpAb> {
    let (mut la, mut lb) = (Vec::new(), Vec::new());
    let (mut ta, mut tb) = ((0u64, Duration::ZERO), (0u64, Duration::ZERO));
    for round in 0..ROUNDS {
        for side in 0..2 {
            let a_turn = (side + round) % 2 == 0;
            let (make, out) = if a_turn { (a, &mut la) } else { (b, &mut lb) };
            let mut one = make(&mut clients[0]);
            sample(&mut one, Instant::now() + chunk, out, seq).await?;
        }
        for side in 0..2 {
            let a_turn = (side + round) % 2 == 0;
            let (make, acc) = if a_turn { (a, &mut ta) } else { (b, &mut tb) };
            let sides = clients[..group].iter_mut().map(make).collect();
            let (n, t) = drive(sides, Instant::now() + chunk, MAX_REQUESTS, seq).await?;
            acc.0 += n;
            acc.1 += t;
        }
    }
    Ok(HttpAb {
        latency: (la, lb),
        throughput: (ta, tb),
    })
}

/// Sequential requests until `end` (or the sample cap), appending each latency.
async fn sample(
    side: &mut Side<'_>,
    end: Instant,
    out: &mut Vec<Duration>,
    seq: &mut u64,
) -> Res<()> {
    let cap = out.len() + MAX_REQUESTS as usize;
    while out.len() < cap {
        let t = Instant::now();
        if t >= end {
            break;
        }
        side.once(*seq).await?;
        out.push(t.elapsed());
        *seq += 1;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------- CPU use

/// CPU time used so far, in clock ticks (`USER_HZ`, 100 per second on Linux), by the platform's
/// runtime threads, the client thread and the runner processes (children of this process).
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    platform: u64,
    client: u64,
    runners: u64,
}

/// `utime + stime` and the name of the `/proc/.../stat` at `path`; its parent pid too.
fn stat_ticks(path: &std::path::Path) -> Option<(String, u64, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_string();
    // After the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    // utime stime ...
    let f: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((name, ppid, ticks))
}

impl Cpu {
    /// A snapshot (zeros where `/proc` cannot be read).
    fn now() -> Self {
        let mut c = Self::default();
        let me = u64::from(std::process::id());
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for t in tasks.flatten() {
                let tid = t.file_name().to_string_lossy().parse::<u64>().unwrap_or(0);
                if let Some((name, _, ticks)) = stat_ticks(&t.path().join("stat")) {
                    // The runtime's threads and the platform's own (`faas-sqlite-writer`,
                    // `faas-bus-journal`, ...).
                    if name == "platform" || name.starts_with("faas-") {
                        c.platform += ticks;
                    } else if tid == me {
                        c.client += ticks;
                    }
                }
            }
        }
        // Every process below this one: runners sit under their sandbox's launcher
        // (`bwrap`, `setpriv`), not directly under the benchmark.
        let mut procs: Vec<(u64, u64, u64)> = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for p in entries.flatten() {
                let Ok(pid) = p.file_name().to_string_lossy().parse::<u64>() else {
                    continue;
                };
                if let Some((_, ppid, ticks)) = stat_ticks(&p.path().join("stat")) {
                    procs.push((pid, ppid, ticks));
                }
            }
        }
        let mut below = std::collections::HashSet::from([me]);
        let mut grew = true;
        while grew {
            grew = false;
            for &(pid, ppid, _) in &procs {
                if below.contains(&ppid) && below.insert(pid) {
                    grew = true;
                }
            }
        }
        c.runners = procs
            .iter()
            .filter(|(pid, _, _)| *pid != me && below.contains(pid))
            .map(|(_, _, ticks)| ticks)
            .sum();
        c
    }

    fn since(self, before: Self) -> Self {
        Self {
            platform: self.platform.saturating_sub(before.platform),
            client: self.client.saturating_sub(before.client),
            runners: self.runners.saturating_sub(before.runners),
        }
    }
}

/// CPU used and requests served by one side of one phase.
#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    cpu: Cpu,
    requests: u64,
}

impl CpuUse {
    fn add(&mut self, before: Cpu, requests: u64) {
        let d = Cpu::now().since(before);
        self.cpu.platform += d.platform;
        self.cpu.client += d.client;
        self.cpu.runners += d.runners;
        self.requests += requests;
    }

    /// Microseconds of CPU per request of ticks `t`.
    fn per_request(&self, t: u64) -> f64 {
        if self.requests == 0 {
            return f64::NAN;
        }
        t as f64 * 10_000.0 / self.requests as f64
    }
}

// ------------------------------------------------------------------------------------ platform

/// What a platform of a comparison runs with.
#[derive(Debug, Clone, Default)]
struct Variant {
    /// The store URL; `None` is the in-memory store.
    store: Option<String>,
    /// Prometheus metrics on.
    metrics: bool,
    /// The OTLP/HTTP endpoint spans are exported to (tracing on); `None`: tracing off.
    otlp: Option<String>,
}

impl Variant {
    /// The default platform with the in-memory store: metrics on, tracing off.
    fn memory() -> Self {
        Self {
            metrics: true,
            ..Self::default()
        }
    }
}

/// An OTLP/HTTP sink on loopback: answers every request `200` with an empty body after reading
/// it, so that the platform's exporter does all its work (batching, encoding, sending). Runs
/// until the runtime ends; returns its endpoint.
async fn otlp_sink() -> Res<String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().fallback(|body: Bytes| async move {
        drop(body);
        StatusCode::OK
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("warning: the OTLP sink stopped: {e}");
        }
    });
    Ok(format!("http://{addr}"))
}

/// Starts a platform on the platform runtime with room for `containers` action containers plus
/// `prewarm` stem cells, and throttles far above what the bench can reach.
async fn start_platform(
    rt: &Runtime,
    containers: usize,
    prewarm: usize,
    variant: Variant,
) -> Res<Running> {
    let Variant {
        store,
        metrics,
        otlp,
    } = variant;
    // As `standalone` resolves it: a SQLite store gets its journaled bus beside it.
    let bus = store.as_deref().and_then(bus_journal_for).map_or_else(
        || "inproc:".into(),
        |j| format!("inproc:?journal={}", j.display()),
    );
    let mut config = StandaloneConfig {
        store: store.unwrap_or_else(|| "memory:".into()),
        bus,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        guest_auth: Some(AUTH.to_string()),
        user_memory_mb: (containers + prewarm) as u64 * CONTAINER_MB,
        prewarm_nodejs: prewarm,
        ..StandaloneConfig::default()
    };
    config.limits.invocations_per_minute = 1_000_000_000;
    config.limits.concurrent_invocations = 1_000_000;
    config.limits.fires_per_minute = 1_000_000_000;
    config.metrics.enabled = metrics;
    config.otlp_endpoint = otlp;
    let started = rt
        .spawn(async move { standalone::start(&config, &Adapters::default()).await })
        .await??;
    Ok(started)
}

async fn stop_platform(rt: &Runtime, running: Running) {
    let stopping = rt.spawn(running.shutdown());
    if tokio::time::timeout(Duration::from_secs(30), stopping)
        .await
        .is_err()
    {
        eprintln!("warning: a platform did not shut down within 30 s");
    }
}

// --------------------------------------------------------------------------------------- bench

/// p50 and p99 of samples.
#[derive(Debug, Clone, Copy, Default)]
struct Percentiles {
    p50: Duration,
    p99: Duration,
    max: Duration,
    n: usize,
}

/// Prints two sides' latency percentiles, 8-client throughput and samples, then the ratio row
/// (second / first); returns the p50 and throughput ratios.
fn print_ab(
    title: &str,
    a: (&str, &Percentiles, f64),
    b: (&str, &Percentiles, f64),
    ratio_label: &str,
) -> (f64, f64) {
    println!(
        "{:<34} {:>10} {:>10} {:>12} {:>10}",
        title, "p50 µs", "p99 µs", "8 clients/s", "samples"
    );
    for (label, p, tput) in [a, b] {
        println!(
            "{:<34} {:>10.1} {:>10.1} {:>12.0} {:>10}",
            label,
            us(p.p50),
            us(p.p99),
            tput,
            p.n
        );
    }
    let (p50, tput) = (ratio(us(b.1.p50), us(a.1.p50)), ratio(b.2, a.2));
    println!(
        "{:<34} {:>10.2} {:>10.2} {:>12.2}",
        ratio_label,
        p50,
        ratio(us(b.1.p99), us(a.1.p99)),
        tput
    );
    (p50, tput)
}

fn percentiles(mut v: Vec<Duration>) -> Percentiles {
    if v.is_empty() {
        return Percentiles::default();
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    Percentiles {
        p50: at(0.50),
        p99: at(0.99),
        max: v[v.len() - 1],
        n: v.len(),
    }
}

#[derive(Debug)]
struct Throughput {
    clients: usize,
    floor_containers: usize,
    platform: f64,
    floor: f64,
    cpu_platform: CpuUse,
    cpu_floor: CpuUse,
}

/// The same action called as a web action and by a blocking invoke.
#[derive(Debug)]
struct WebComparison {
    invoke: Percentiles,
    web: Percentiles,
    invoke_tput: f64,
    web_tput: f64,
}

/// One side of [`compare_fresh`]: warm latency at one client and throughput at
/// [`STORE_CLIENTS`].
#[derive(Debug)]
struct Side2 {
    latency: Percentiles,
    tput: f64,
    /// CPU of the throughput phase.
    cpu: CpuUse,
}

/// Starts two platforms, warms both alike, then measures them alternately in [`ROUNDS`]
/// rounds (latency, then throughput) and stops them.
async fn compare_fresh(
    rt: &Runtime,
    s: &Settings,
    a: Variant,
    b: Variant,
    seq: &mut u64,
) -> Res<(Side2, Side2)> {
    let chunk = s.chunk();
    let pa = start_platform(rt, s.containers, 1, a).await?;
    let pb = start_platform(rt, s.containers, 1, b).await?;
    let mut sides: [Vec<HttpClient>; 2] = [Vec::new(), Vec::new()];
    for (clients, addr) in sides.iter_mut().zip([pa.addr, pb.addr]) {
        for _ in 0..STORE_CLIENTS {
            clients.push(HttpClient::connect(addr).await?);
        }
        clients[0].put_action("noop").await?;
    }
    // Warm-up, alike on both: the runners' JIT, the caches, the pools.
    for clients in &mut sides {
        let warm_end = Instant::now() + Duration::from_secs(5);
        drive(
            vec![Side::Platform(&mut clients[0])],
            warm_end,
            WARMUP_LATENCY,
            seq,
        )
        .await?;
        let far = Instant::now() + REQUEST_TIMEOUT;
        let all = clients.iter_mut().map(Side::Platform).collect();
        drive(all, far, WARMUP_THROUGHPUT * 50, seq).await?;
    }
    let mut lat: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut tput = [(0u64, Duration::ZERO); 2];
    let mut cpu = [CpuUse::default(); 2];
    for round in 0..ROUNDS as usize {
        for turn in 0..2 {
            let i = (turn + round) % 2;
            let end = Instant::now() + chunk;
            let mut one = Side::Platform(&mut sides[i][0]);
            sample(&mut one, end, &mut lat[i], seq).await?;
        }
        for turn in 0..2 {
            let i = (turn + round) % 2;
            let end = Instant::now() + chunk;
            let all = sides[i].iter_mut().map(Side::Platform).collect();
            let before = Cpu::now();
            let (n, t) = drive(all, end, MAX_REQUESTS, seq).await?;
            cpu[i].add(before, n);
            tput[i].0 += n;
            tput[i].1 += t;
        }
    }
    drop(sides);
    stop_platform(rt, pa).await;
    stop_platform(rt, pb).await;
    let [la, lb] = lat;
    let side = |l: Vec<Duration>, (n, t): (u64, Duration), cpu: CpuUse| Side2 {
        latency: percentiles(l),
        tput: n as f64 / t.as_secs_f64().max(1e-9),
        cpu,
    };
    Ok((side(la, tput[0], cpu[0]), side(lb, tput[1], cpu[1])))
}

/// The durable default store against the in-memory one, on two fresh platforms.
async fn compare_stores(rt: &Runtime, s: &Settings, seq: &mut u64) -> Res<StoreComparison> {
    eprintln!("store: memory vs sqlite, {:.1} s per side", s.secs);
    let data = tempfile::tempdir()?;
    let mut sqlite_url = format!("sqlite:{}", data.path().join("faas.db").display());
    if !s.sqlite_options.is_empty() {
        sqlite_url = format!("{sqlite_url}?{}", s.sqlite_options);
    }
    if let Some(url) = &s.store_url {
        sqlite_url = url.clone();
    }
    if sqlite_url.contains('?') || s.store_url.is_some() {
        eprintln!("store: the compared side is {sqlite_url}");
    }
    let sqlite = Variant {
        store: Some(sqlite_url),
        ..Variant::memory()
    };
    let (memory, sqlite) = compare_fresh(rt, s, Variant::memory(), sqlite, seq).await?;
    Ok(StoreComparison {
        label: match (&s.store_url, s.sqlite_options.as_str()) {
            (Some(url), _) => format!("{url} (control)"),
            (None, "") => "sqlite: (default)".into(),
            (None, o) => format!("sqlite:?{o}"),
        },
        memory_cpu: memory.cpu,
        sqlite_cpu: sqlite.cpu,
        memory: memory.latency,
        sqlite: sqlite.latency,
        memory_tput: memory.tput,
        sqlite_tput: sqlite.tput,
    })
}

/// As `bench` checks it: the action's runtime must be there.
fn require_node() -> Res<()> {
    ProcessExecutor::detect()?
        .runtimes()
        .default_kind("nodejs")
        .ok_or("no Node.js runtime on this machine (node not on PATH)")?;
    Ok(())
}

/// `--only store`: the store comparison alone.
async fn store_bench(s: &Settings, platform_rt: &Runtime) -> Res<StoreComparison> {
    require_node()?;
    let mut seq = 1u64;
    compare_stores(platform_rt, s, &mut seq).await
}

/// Metrics on against metrics off, on two fresh platforms.
async fn compare_metrics(rt: &Runtime, s: &Settings, seq: &mut u64) -> Res<OnOff> {
    eprintln!("metrics: on vs off, {:.1} s per side", s.secs);
    let off = Variant {
        metrics: false,
        ..Variant::memory()
    };
    let (on, off) = compare_fresh(rt, s, Variant::memory(), off, seq).await?;
    Ok(OnOff {
        on: on.latency,
        off: off.latency,
        on_tput: on.tput,
        off_tput: off.tput,
    })
}

/// `--only metrics`: the metrics comparison alone.
async fn metrics_bench(s: &Settings, platform_rt: &Runtime) -> Res<OnOff> {
    require_node()?;
    let mut seq = 1u64;
    compare_metrics(platform_rt, s, &mut seq).await
}

/// Prints the metrics target line; whether it was met (8-client throughput ratio `tput`).
fn metrics_verdict(tput: f64) -> bool {
    let pass = tput >= 0.97;
    println!(
        "{} metrics: with metrics on, 8-client throughput is {:+.1} % of that with metrics off (target: cost under 3 %)",
        if pass { "PASS" } else { "FAIL" },
        (tput - 1.0) * 100.0
    );
    pass
}

/// A fresh platform on the in-memory store against one on the SQLite store.
#[derive(Debug)]
struct StoreComparison {
    /// The compared side, as printed.
    label: String,
    /// CPU of the 8-client phases, per side.
    memory_cpu: CpuUse,
    sqlite_cpu: CpuUse,
    memory: Percentiles,
    sqlite: Percentiles,
    memory_tput: f64,
    sqlite_tput: f64,
}

/// A fresh platform with a feature (metrics, tracing) on against one with it off.
#[derive(Debug)]
struct OnOff {
    on: Percentiles,
    off: Percentiles,
    on_tput: f64,
    off_tput: f64,
}

impl OnOff {
    /// The metrics table; the throughput ratio.
    fn print_metrics(&self) -> f64 {
        self.table(
            "metrics (same action)",
            "metrics off (--no-metrics)",
            "metrics on (default)",
        )
    }

    /// Prints the comparison under `title` (off, on, their ratios); the throughput ratio.
    fn table(&self, title: &str, off: &str, on: &str) -> f64 {
        println!(
            "{:<34} {:>10} {:>10} {:>12} {:>10}",
            title, "p50 µs", "p99 µs", "8 clients/s", "samples"
        );
        for (label, p, tput) in [
            (off, &self.off, self.off_tput),
            (on, &self.on, self.on_tput),
        ] {
            println!(
                "{:<34} {:>10.1} {:>10.1} {:>12.0} {:>10}",
                label,
                us(p.p50),
                us(p.p99),
                tput,
                p.n
            );
        }
        let tput = ratio(self.on_tput, self.off_tput);
        println!(
            "{:<34} {:>10.2} {:>10.2} {:>12.2}",
            "on / off",
            ratio(us(self.on.p50), us(self.off.p50)),
            ratio(us(self.on.p99), us(self.off.p99)),
            tput
        );
        tput
    }
}

/// Fire -> rule -> action against a direct non-blocking invoke of the same action.
#[derive(Debug)]
struct TriggerComparison {
    invoke: Percentiles,
    fire: Percentiles,
    invoke_tput: f64,
    fire_tput: f64,
}

#[derive(Debug)]
struct Report {
    kind: String,
    load_before: String,
    load_after: String,
    platform: Percentiles,
    floor: Percentiles,
    floor_logs: Percentiles,
    cpu_latency_platform: CpuUse,
    cpu_latency_floor: CpuUse,
    cpu_latency_floor_logs: CpuUse,
    throughput: Vec<Throughput>,
    cold_platform: Percentiles,
    cold_prewarm: Percentiles,
    cold_floor: Percentiles,
    stores: StoreComparison,
    metrics: OnOff,
    tracing: OnOff,
    triggers: TriggerComparison,
    web: WebComparison,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

async fn bench(s: &Settings, platform_rt: &Runtime) -> Res<Report> {
    let load_before = loadavg();
    let executor = ProcessExecutor::detect()?;
    let kind = executor
        .runtimes()
        .default_kind("nodejs")
        .ok_or("no Node.js runtime on this machine (node not on PATH)")?
        .to_string();
    let chunk = s.chunk();
    let mut seq = 1u64;

    eprintln!(
        "starting the platform and {} floor runners ({kind})",
        s.containers
    );
    let main = start_platform(platform_rt, s.containers, 1, Variant::memory()).await?;
    let mut clients = Vec::with_capacity(32);
    for _ in 0..CLIENTS[CLIENTS.len() - 1] {
        clients.push(HttpClient::connect(main.addr).await?);
    }
    clients[0].put_action("noop").await?;
    let mut floors: Vec<Arc<dyn Container>> = Vec::with_capacity(s.containers);
    for i in 0..s.containers {
        let c = executor
            .create(&ContainerSpec::new(
                format!("floor{i}"),
                kind.clone(),
                CONTAINER_MB,
            ))
            .await?;
        floor_init(c.as_ref()).await?;
        floors.push(c);
    }

    // Warm latency: one client, sequential requests; the sides alternate.
    eprintln!("latency: {:.1} s per side", s.secs);
    let warm_end = Instant::now() + Duration::from_secs(5);
    let warm_sides = vec![
        Side::Platform(&mut clients[0]),
        Side::Floor(floors[0].as_ref()),
    ];
    drive(warm_sides, warm_end, WARMUP_LATENCY, &mut seq).await?;
    let (mut lp, mut lf, mut ll) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cpu_lp, mut cpu_lf, mut cpu_ll) =
        (CpuUse::default(), CpuUse::default(), CpuUse::default());
    for round in 0..ROUNDS {
        for side in 0..2 {
            let before = Cpu::now();
            if (side + round) % 2 == 0 {
                let n = lf.len();
                let mut floor = Side::Floor(floors[0].as_ref());
                sample(&mut floor, Instant::now() + chunk, &mut lf, &mut seq).await?;
                cpu_lf.add(before, (lf.len() - n) as u64);
            } else {
                let n = lp.len();
                let mut platform = Side::Platform(&mut clients[0]);
                sample(&mut platform, Instant::now() + chunk, &mut lp, &mut seq).await?;
                cpu_lp.add(before, (lp.len() - n) as u64);
            }
        }
        let before = Cpu::now();
        let n = ll.len();
        let mut floor_logs = Side::FloorLogs(floors[0].as_ref());
        sample(&mut floor_logs, Instant::now() + chunk, &mut ll, &mut seq).await?;
        cpu_ll.add(before, (ll.len() - n) as u64);
    }

    // Throughput at 1/8/32 clients.
    let mut throughput = Vec::new();
    for &c in &CLIENTS {
        let nf = c.min(s.containers);
        eprintln!(
            "throughput: {c} clients ({nf} floor runners), {:.1} s per side",
            s.secs
        );
        let far = Instant::now() + REQUEST_TIMEOUT;
        let sides = clients[..c].iter_mut().map(Side::Platform).collect();
        drive(sides, far, WARMUP_THROUGHPUT, &mut seq).await?;
        let sides = floors[..nf]
            .iter()
            .map(|x| Side::Floor(x.as_ref()))
            .collect();
        drive(sides, far, WARMUP_THROUGHPUT, &mut seq).await?;
        let (mut pt, mut ft) = (Duration::ZERO, Duration::ZERO);
        let (mut cpu_p, mut cpu_f) = (CpuUse::default(), CpuUse::default());
        for round in 0..ROUNDS {
            for side in 0..2 {
                let end = Instant::now() + chunk;
                let before = Cpu::now();
                if (side + round) % 2 == 0 {
                    let sides = floors[..nf]
                        .iter()
                        .map(|x| Side::Floor(x.as_ref()))
                        .collect();
                    let (n, t) = drive(sides, end, MAX_REQUESTS, &mut seq).await?;
                    cpu_f.add(before, n);
                    ft += t;
                } else {
                    let sides = clients[..c].iter_mut().map(Side::Platform).collect();
                    let (n, t) = drive(sides, end, MAX_REQUESTS, &mut seq).await?;
                    cpu_p.add(before, n);
                    pt += t;
                }
            }
        }
        throughput.push(Throughput {
            clients: c,
            floor_containers: nf,
            platform: cpu_p.requests as f64 / pt.as_secs_f64().max(1e-9),
            floor: cpu_f.requests as f64 / ft.as_secs_f64().max(1e-9),
            cpu_platform: cpu_p,
            cpu_floor: cpu_f,
        });
    }
    // The durable default store against the in-memory one, and metrics off against on: each
    // on two fresh platforms started and warmed alike (a platform that served the phases
    // above has runners whose JIT is warmer than a new one's, which biased these ratios).
    let stores = compare_stores(platform_rt, s, &mut seq).await?;
    let metrics = compare_metrics(platform_rt, s, &mut seq).await?;
    eprintln!(
        "tracing: on (OTLP export to a loopback sink) vs off, {:.1} s per side",
        s.secs
    );
    let sink = platform_rt.spawn(otlp_sink()).await??;
    let traced = Variant {
        otlp: Some(sink),
        ..Variant::memory()
    };
    let (on, off) = compare_fresh(platform_rt, s, traced, Variant::memory(), &mut seq).await?;
    let tracing = OnOff {
        on: on.latency,
        off: off.latency,
        on_tput: on.tput,
        off_tput: off.tput,
    };

    // Triggers: fire -> rule -> action against a direct invoke of the same action, both
    // non-blocking and read back from the store the same way; alternating, as above.
    eprintln!("triggers: {:.1} s per side", s.secs);
    clients[0]
        .put_json("/api/v1/namespaces/_/triggers/tick", serde_json::json!({}))
        .await?;
    clients[0]
        .put_json(
            "/api/v1/namespaces/_/rules/tickRule",
            serde_json::json!({"trigger": "/_/tick", "action": "/_/noop"}),
        )
        .await?;
    let warm_end = Instant::now() + Duration::from_secs(5);
    let (first, rest) = clients.split_at_mut(1);
    drive(
        vec![
            Side::InvokeRecord(&mut first[0]),
            Side::FireRecord(&mut rest[0]),
        ],
        warm_end,
        WARMUP_THROUGHPUT * 5,
        &mut seq,
    )
    .await?;
    let ab = alternate_http(
        &mut clients,
        TRIGGER_CLIENTS,
        chunk,
        |c| Side::FireRecord(c),
        |c| Side::InvokeRecord(c),
        &mut seq,
    )
    .await?;
    let ((tf, ti), (nf, ni)) = (ab.latency, ab.throughput);
    // The same action as a web action, alternating with the blocking invoke.
    eprintln!("web action vs blocking invoke, {:.1} s per side", s.secs);
    let warm_end = Instant::now() + Duration::from_secs(5);
    drive(
        vec![Side::Web(&mut clients[0])],
        warm_end,
        WARMUP_LATENCY,
        &mut seq,
    )
    .await?;
    let ab = alternate_http(
        &mut clients,
        STORE_CLIENTS,
        chunk,
        |c| Side::Platform(c),
        |c| Side::Web(c),
        &mut seq,
    )
    .await?;
    let ((wi, ww), (wti, wtw)) = (ab.latency, ab.throughput);
    let triggers = TriggerComparison {
        invoke: percentiles(ti),
        fire: percentiles(tf),
        invoke_tput: ni.0 as f64 / ni.1.as_secs_f64().max(1e-9),
        fire_tput: nf.0 as f64 / nf.1.as_secs_f64().max(1e-9),
    };
    let web = WebComparison {
        invoke: percentiles(wi),
        web: percentiles(ww),
        invoke_tput: wti.0 as f64 / wti.1.as_secs_f64().max(1e-9),
        web_tput: wtw.0 as f64 / wtw.1.as_secs_f64().max(1e-9),
    };

    drop(clients);
    stop_platform(platform_rt, main).await;
    for f in floors.drain(..) {
        f.destroy().await?;
    }

    // Cold starts: floor, platform without prewarming, platform taking a stem cell.
    eprintln!("cold start: {} per variant", s.cold);
    let bare = start_platform(platform_rt, s.containers.max(s.cold), 0, Variant::memory()).await?;
    let prewarmed =
        start_platform(platform_rt, s.containers.max(s.cold), 1, Variant::memory()).await?;
    let mut bare_client = HttpClient::connect(bare.addr).await?;
    let mut pre_client = HttpClient::connect(prewarmed.addr).await?;
    tokio::time::sleep(s.stem_wait).await;
    let (mut cf, mut cp, mut cw) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..s.cold {
        // Floor: create + init + first run.
        let t = Instant::now();
        let c = executor
            .create(&ContainerSpec::new(
                format!("cold{i}"),
                kind.clone(),
                CONTAINER_MB,
            ))
            .await?;
        floor_init(c.as_ref()).await?;
        floor_run(c.as_ref(), seq).await?;
        cf.push(t.elapsed());
        c.destroy().await?;
        seq += 1;

        let name = format!("cold-{i}");
        bare_client.put_action(&name).await?;
        let path = format!("/api/v1/namespaces/_/actions/{name}?blocking=true&result=true");
        let t = Instant::now();
        bare_client.invoke(&path).await?;
        cp.push(t.elapsed());

        pre_client.put_action(&name).await?;
        let t = Instant::now();
        pre_client.invoke(&path).await?;
        cw.push(t.elapsed());
        // Let the replacement stem cell start before anything else is timed.
        tokio::time::sleep(s.stem_wait).await;
    }
    drop((bare_client, pre_client));
    stop_platform(platform_rt, bare).await;
    stop_platform(platform_rt, prewarmed).await;

    Ok(Report {
        kind,
        load_before,
        load_after: loadavg(),
        platform: percentiles(lp),
        floor: percentiles(lf),
        floor_logs: percentiles(ll),
        cpu_latency_platform: cpu_lp,
        cpu_latency_floor: cpu_lf,
        cpu_latency_floor_logs: cpu_ll,
        throughput,
        cold_platform: percentiles(cp),
        cold_prewarm: percentiles(cw),
        cold_floor: percentiles(cf),
        stores,
        metrics,
        tracing,
        triggers,
        web,
    })
}

// -------------------------------------------------------------------------------------- report

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

impl StoreComparison {
    /// Prints the store table; the p50 and throughput ratios (SQLite / memory).
    fn table(&self) -> (f64, f64) {
        let st = self;
        println!(
            "{:<34} {:>10} {:>10} {:>12} {:>10} {:>14} {:>14}",
            "store (fresh platforms)",
            "p50 µs",
            "p99 µs",
            "8 clients/s",
            "samples",
            "platform µs/req",
            "runners µs/req"
        );
        let cpu = |c: &CpuUse| (c.per_request(c.cpu.platform), c.per_request(c.cpu.runners));
        let (mp, mr) = cpu(&st.memory_cpu);
        let (sp, sr) = cpu(&st.sqlite_cpu);
        println!(
            "{:<34} {:>10.1} {:>10.1} {:>12.0} {:>10} {:>14.0} {:>14.0}",
            "memory:",
            us(st.memory.p50),
            us(st.memory.p99),
            st.memory_tput,
            st.memory.n,
            mp,
            mr
        );
        println!(
            "{:<34} {:>10.1} {:>10.1} {:>12.0} {:>10} {:>14.0} {:>14.0}",
            st.label.as_str(),
            us(st.sqlite.p50),
            us(st.sqlite.p99),
            st.sqlite_tput,
            st.sqlite.n,
            sp,
            sr
        );
        let lat_ratio = ratio(us(st.sqlite.p50), us(st.memory.p50));
        let tput_ratio = ratio(st.sqlite_tput, st.memory_tput);
        println!(
            "{:<34} {:>10.2} {:>10.2} {:>12.2} {:>10} {:>14.2} {:>14.2}",
            "sqlite / memory",
            lat_ratio,
            ratio(us(st.sqlite.p99), us(st.memory.p99)),
            tput_ratio,
            "",
            ratio(sp, mp),
            ratio(sr, mr)
        );
        println!("(CPU per request: the 8-client phases, 10 ms ticks from /proc)");
        println!();
        (lat_ratio, tput_ratio)
    }

    /// Prints the target line; whether it was met.
    fn verdict(lat_ratio: f64, tput_ratio: f64) -> bool {
        let pass = lat_ratio <= 1.10 && tput_ratio >= 0.90;
        println!(
            "{} store: on SQLite the warm p50 is {:+.0} % and 8-client throughput {:+.0} % of the in-memory store's (target within 10 %)",
            if pass { "PASS" } else { "FAIL" },
            (lat_ratio - 1.0) * 100.0,
            (tput_ratio - 1.0) * 100.0
        );
        pass
    }

    /// `--only store`: the table and the target line; whether the target was met.
    fn print(&self, s: &Settings) -> bool {
        let (lat_ratio, tput_ratio) = self.table();
        if s.smoke {
            println!("smoke run: the figures below mean nothing; use `cargo bench`");
        }
        Self::verdict(lat_ratio, tput_ratio)
    }
}

impl Report {
    /// Prints the table; whether both targets were met.
    fn print(&self, s: &Settings) -> bool {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!();
        println!(
            "faas-platform invoke benchmark: no-op {} action, loopback, {cpus} CPUs, {:.1} s per phase and side",
            self.kind, s.secs
        );
        println!(
            "floor = the runner's /run called directly; N = {} containers of {CONTAINER_MB} MB; load average before {} / after {}",
            s.containers, self.load_before, self.load_after
        );
        println!();
        println!(
            "{:<34} {:>10} {:>10} {:>10}",
            "warm latency, 1 client", "p50 µs", "p99 µs", "samples"
        );
        let row = |name: &str, p: &Percentiles| {
            println!(
                "{name:<34} {:>10.1} {:>10.1} {:>10}",
                us(p.p50),
                us(p.p99),
                p.n
            )
        };
        row("platform (HTTP, blocking invoke)", &self.platform);
        row("floor (runner /run)", &self.floor);
        println!(
            "{:<34} {:>10.1} {:>10.1}",
            "platform - floor",
            us(self.platform.p50) - us(self.floor.p50),
            us(self.platform.p99) - us(self.floor.p99)
        );
        println!(
            "{:<34} {:>10.2} {:>10.2}",
            "platform / floor",
            ratio(us(self.platform.p50), us(self.floor.p50)),
            ratio(us(self.platform.p99), us(self.floor.p99))
        );
        row("(info) floor /run + logs", &self.floor_logs);
        println!();
        println!(
            "{:<34} {:>12} {:>12} {:>10} {:>16}",
            "throughput", "platform/s", "floor/s", "runners", "platform/floor"
        );
        for t in &self.throughput {
            println!(
                "{:<34} {:>12.0} {:>12.0} {:>10} {:>16.2}",
                format!("{} client(s)", t.clients),
                t.platform,
                t.floor,
                t.floor_containers,
                ratio(t.platform, t.floor)
            );
        }
        println!();
        println!(
            "{:<34} {:>10} {:>10} {:>10} {:>10}",
            "CPU per request, µs", "platform", "client", "runner", "total"
        );
        let cpu = |name: String, u: &CpuUse| {
            let c = &u.cpu;
            println!(
                "{name:<34} {:>10.0} {:>10.0} {:>10.0} {:>10.0}",
                u.per_request(c.platform),
                u.per_request(c.client),
                u.per_request(c.runners),
                u.per_request(c.platform + c.client + c.runners)
            )
        };
        cpu(
            "1 client sequential, platform".into(),
            &self.cpu_latency_platform,
        );
        cpu("1 client sequential, floor".into(), &self.cpu_latency_floor);
        cpu(
            "1 client sequential, floor + logs".into(),
            &self.cpu_latency_floor_logs,
        );
        for t in &self.throughput {
            cpu(
                format!("{} client(s), platform", t.clients),
                &t.cpu_platform,
            );
            cpu(format!("{} client(s), floor", t.clients), &t.cpu_floor);
        }
        println!();
        println!(
            "{:<34} {:>10} {:>10} {:>10} {:>10}",
            "cold start, first invoke", "p50 ms", "max ms", "samples", "/ floor"
        );
        let cold = |name: &str, p: &Percentiles| {
            println!(
                "{name:<34} {:>10.1} {:>10.1} {:>10} {:>10.2}",
                ms(p.p50),
                ms(p.max),
                p.n,
                ratio(ms(p.p50), ms(self.cold_floor.p50))
            )
        };
        cold("platform, no prewarm", &self.cold_platform);
        cold("platform, prewarmed stem cell", &self.cold_prewarm);
        cold("floor (create + /init + /run)", &self.cold_floor);
        println!();

        let (lat_ratio, tput_ratio) = self.stores.table();

        let metrics_tput = self.metrics.print_metrics();
        println!();
        self.tracing.table(
            "tracing (same action, metrics on)",
            "tracing off (default)",
            "tracing on (OTLP to loopback sink)",
        );
        println!();

        let tr = &self.triggers;
        print_ab(
            "trigger fire -> rule -> action",
            ("invoke (202), record read back", &tr.invoke, tr.invoke_tput),
            ("fire (202), action record read", &tr.fire, tr.fire_tput),
            "fire / invoke",
        );
        println!(
            "(both read the record every {} ms until it is stored; the fire reads two records)",
            RECORD_POLL.as_millis()
        );
        println!();

        let w = &self.web;
        let (web_lat, web_tput) = print_ab(
            "web action (same platform, action)",
            ("blocking invoke:", &w.invoke, w.invoke_tput),
            ("web action (.json):", &w.web, w.web_tput),
            "web / invoke",
        );
        println!();

        if s.smoke {
            println!("smoke run: the figures below mean nothing; use `cargo bench`");
        }
        let added = us(self.platform.p50) - us(self.floor.p50);
        let t1 = added < 500.0;
        println!(
            "{} latency: the platform adds {added:.1} µs at p50 over the floor (target < 500 µs)",
            if t1 { "PASS" } else { "FAIL" }
        );
        let at32 = self.throughput.iter().find(|t| t.clients == 32);
        let share = at32.map_or(f64::NAN, |t| ratio(t.platform, t.floor));
        let t2 = share >= 0.70;
        println!(
            "{} throughput: at 32 clients the platform sustains {:.0} % of the floor (target >= 70 %)",
            if t2 { "PASS" } else { "FAIL" },
            share * 100.0
        );
        let t3 = StoreComparison::verdict(lat_ratio, tput_ratio);
        let t4 = web_lat <= 1.10 && web_tput >= 0.90;
        println!(
            "{} web: a web action's warm p50 is {:+.0} % and 8-client throughput {:+.0} % of the blocking invoke's (target within 10 %)",
            if t4 { "PASS" } else { "FAIL" },
            (web_lat - 1.0) * 100.0,
            (web_tput - 1.0) * 100.0
        );
        let t5 = metrics_verdict(metrics_tput);
        t1 && t2 && t3 && t4 && t5
    }
}
