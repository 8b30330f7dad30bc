//! The HTTP server's limits over real loopback sockets: half-open connections (slowloris),
//! the connection cap, idle keep-alive, slow bodies, transport-level rejections with error
//! bodies, and a graceful shutdown that ends within its deadline whatever the clients do.
//! Every wait is bounded; every connection goes to 127.0.0.1.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use faas_http::ServerConfig;
use faas_http::server::serve;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const BOUND: Duration = Duration::from_secs(10);

fn app() -> Router {
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/echo", post(|body: axum::body::Bytes| async move { body }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(config: ServerConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app(), config, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stop: Some(stop),
        task,
    }
}

/// Sends raw bytes on a new connection and reads the answer until the server closes or
/// `Content-Length` is satisfied.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    // Written while the answer is read: a server that answers early stops reading, and the
    // rest of a large request then cannot be written (which is fine).
    let raw = raw.to_vec();
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&raw).await;
        w
    });
    let answer = read_answer(&mut r).await;
    writer.abort();
    answer
}

/// Reads until the server closes or the answer is [`complete`], within [`BOUND`].
async fn read_answer(s: &mut (impl AsyncRead + Unpin)) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + BOUND;
    loop {
        let n = match timeout(end - Instant::now(), s.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0,
            Err(_) => panic!(
                "no complete answer in time: {}",
                String::from_utf8_lossy(&out)
            ),
        };
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if complete(&out) {
            break;
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Whether `out` holds a head and as much body as its `Content-Length` says.
fn complete(out: &[u8]) -> bool {
    let text = String::from_utf8_lossy(out);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|l| body.len() >= l)
}

fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn error_json(answer: &str) -> Value {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{answer}"
    );
    let v: Value = serde_json::from_str(body).unwrap();
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    assert!(v["code"].as_str().is_some_and(|c| !c.is_empty()), "{v}");
    v
}

const PING: &[u8] = b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn keeps_answering_through_hundreds_of_half_open_connections() {
    let server = start(
        ServerConfig::default()
            .with_max_connections(100)
            .with_header_read_timeout(Duration::from_millis(500))
            .with_idle_timeout(Duration::from_millis(500)),
    )
    .await;
    // 300 clients that send part of a request head and then nothing (slowloris).
    let mut half_open = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let _ = s
            .write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            .await;
        half_open.push(s);
    }
    // A real client is answered at once: 200, or 503 with an error body while at the cap.
    let answer = timeout(Duration::from_secs(2), exchange(server.addr, PING))
        .await
        .expect("an answer while the slots are held");
    match status(&answer) {
        200 => assert!(answer.ends_with("pong"), "{answer}"),
        503 => {
            error_json(&answer);
        }
        other => panic!("unexpected {other}: {answer}"),
    }
    // Once the half-open heads time out, their slots are free again.
    let mut answer = String::new();
    let served = faas_core::testkit::eventually_async(BOUND, async || {
        answer = exchange(server.addr, PING).await;
        status(&answer) == 200
    })
    .await;
    assert!(served, "still refused: {answer}");
    // And the half-open connections were closed by the server.
    let mut closed = 0;
    for s in &mut half_open {
        let mut b = [0u8; 64];
        if matches!(
            timeout(Duration::from_secs(2), s.read(&mut b)).await,
            Ok(Ok(_) | Err(_))
        ) {
            closed += 1;
        }
    }
    assert_eq!(closed, half_open.len());
    drop(half_open);
    stop(server, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn over_the_cap_a_client_gets_an_error_body() {
    let server = start(
        ServerConfig::default()
            .with_max_connections(2)
            .with_idle_timeout(Duration::from_secs(30)),
    )
    .await;
    let _a = TcpStream::connect(server.addr).await.unwrap();
    let _b = TcpStream::connect(server.addr).await.unwrap();
    // The accept loop takes them in order; give it a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = exchange(server.addr, PING).await;
    assert_eq!(status(&answer), 503, "{answer}");
    let v = error_json(&answer);
    assert!(v["error"].as_str().unwrap().contains("connections"), "{v}");
    stop(server, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn transport_rejections_have_openwhisk_error_bodies() {
    let server = start(ServerConfig::default().with_max_head_bytes(256 * 1024)).await;
    // Not HTTP at all.
    let answer = exchange(server.addr, b"GARBAGE \x01\x02\r\n\r\n").await;
    assert_eq!(status(&answer), 400, "{answer}");
    error_json(&answer);
    // A URI longer than any server takes.
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(70_000));
    let answer = exchange(server.addr, long.as_bytes()).await;
    assert_eq!(status(&answer), 414, "{}", &answer[..answer.len().min(300)]);
    error_json(&answer);
    stop(server, Duration::from_secs(2)).await;

    let server = start(ServerConfig::default()).await;
    // Headers beyond the head limit (64 KiB).
    let big = format!(
        "GET /ping HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(100_000)
    );
    let answer = exchange(server.addr, big.as_bytes()).await;
    assert_eq!(status(&answer), 431, "{}", &answer[..answer.len().min(300)]);
    error_json(&answer);
    // Far beyond: hyper stops reading and answers itself (rewritten with a body).
    let huge = format!(
        "GET /ping HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(2_000_000)
    );
    let answer = exchange(server.addr, huge.as_bytes()).await;
    assert_eq!(status(&answer), 431, "{}", &answer[..answer.len().min(300)]);
    error_json(&answer);
    // The server still serves.
    assert_eq!(status(&exchange(server.addr, PING).await), 200);
    stop(server, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let server = start(ServerConfig::default().with_idle_timeout(Duration::from_millis(300))).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut s).await;
    assert_eq!(status(&answer), 200, "{answer}");
    // Kept alive, then closed by the server when idle.
    let mut b = [0u8; 16];
    let started = Instant::now();
    let n = timeout(BOUND, s.read(&mut b))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    stop(server, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_body_that_stalls_is_cut() {
    let server =
        start(ServerConfig::default().with_body_read_timeout(Duration::from_millis(300))).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let answer = read_answer(&mut s).await;
    let code = status(&answer);
    assert!((400..500).contains(&code), "{answer}");
    stop(server, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn shutdown_ends_within_its_deadline_despite_half_open_and_slow_clients() {
    let server = start(
        ServerConfig::default()
            .with_header_read_timeout(Duration::from_secs(60))
            .with_idle_timeout(Duration::from_secs(60))
            .with_shutdown_deadline(Duration::from_millis(500)),
    )
    .await;
    // One half-open head, one idle keep-alive connection, one request that takes 30 s.
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"GET /ping HTTP/1.1\r\nHo").await.unwrap();
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(status(&read_answer(&mut idle).await), 200);
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    stop(server, Duration::from_secs(3)).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    // Every connection was closed.
    for s in [&mut half, &mut idle, &mut slow] {
        let mut b = [0u8; 64];
        let r = timeout(Duration::from_secs(2), s.read(&mut b))
            .await
            .expect("closed");
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    }
}

/// Triggers the shutdown and requires the server to finish within `within`.
async fn stop(mut server: Server, within: Duration) {
    if let Some(s) = server.stop.take() {
        let _ = s.send(());
    }
    timeout(within, &mut server.task)
        .await
        .expect("the server stopped within its deadline")
        .unwrap()
        .unwrap();
}
