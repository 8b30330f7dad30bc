//! The HTTP/1.1 server in front of the controller's router: hyper connections with the limits
//! an Internet-facing server needs, which `axum::serve` does not offer.
//!
//! * **Connection cap** ([`ServerConfig::max_connections`]): past it, a new connection gets a
//!   `503` OpenWhisk error body at once and is closed, so a flood of idle connections cannot
//!   take the slots of real clients for long (they time out, below) nor starve the accept loop.
//! * **Header read timeout**: once the first byte of a request arrived, its whole head must
//!   arrive within [`ServerConfig::header_read_timeout`] (slowloris); else the connection is
//!   closed.
//! * **Idle keep-alive timeout**: a connection with no request in progress and no byte for
//!   [`ServerConfig::idle_timeout`] (including one that never sent anything) is closed.
//! * **Body read timeout**: a request body must arrive whole within
//!   [`ServerConfig::body_read_timeout`]; reading it then fails and the request gets a `400`.
//! * **Graceful shutdown with a deadline**: when the shutdown future resolves, the listener
//!   closes, idle connections close, requests in progress may finish for
//!   [`ServerConfig::shutdown_deadline`], then every connection still open is closed.
//! * **Error bodies for transport rejections**: hyper answers unparsable requests itself
//!   (`400`), too-long URIs (`414`) and too-large heads (`431`) with an empty body; those
//!   answers are rewritten on their way out into `{"error", "code"}` bodies like every other
//!   error of the platform.
//!
//! The router's own layers (request id, body limits, time-outs, authentication) run inside.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceBuilder;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::layers::request_id::generate_id;

/// Limits of the HTTP server (see the [module documentation](self)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Most open connections (default 1024).
    pub max_connections: usize,
    /// Longest time from a request's first byte to the end of its head (default 10 s).
    pub header_read_timeout: Duration,
    /// Longest time a whole request body may take to arrive (default 60 s).
    pub body_read_timeout: Duration,
    /// Longest silence of a connection with no request in progress (default 60 s).
    pub idle_timeout: Duration,
    /// How long requests in progress may finish after shutdown starts (default 10 s).
    pub shutdown_deadline: Duration,
    /// Largest request head in bytes (request line and headers; default 64 KiB); larger
    /// heads get `431` (or `414` for the URI alone).
    pub max_head_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            shutdown_deadline: Duration::from_secs(10),
            max_head_bytes: 64 * 1024,
        }
    }
}

impl ServerConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// With a connection cap.
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }
    /// With a header read timeout.
    pub fn with_header_read_timeout(mut self, d: Duration) -> Self {
        self.header_read_timeout = d;
        self
    }
    /// With a body read timeout.
    pub fn with_body_read_timeout(mut self, d: Duration) -> Self {
        self.body_read_timeout = d;
        self
    }
    /// With an idle keep-alive timeout.
    pub fn with_idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }
    /// With a graceful-shutdown deadline.
    pub fn with_shutdown_deadline(mut self, d: Duration) -> Self {
        self.shutdown_deadline = d;
        self
    }
    /// With a largest request head.
    pub fn with_max_head_bytes(mut self, n: usize) -> Self {
        // hyper's smallest read buffer.
        self.max_head_bytes = n.max(8192);
        self
    }
}

/// Serves `router` on `listener` (with `TCP_NODELAY`) under `config` until `shutdown`
/// resolves, then shuts down within [`ServerConfig::shutdown_deadline`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let service = ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(config.body_read_timeout))
        .service(router);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let (closing_tx, closing) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let config = Arc::new(config);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => a,
        };
        let (stream, _peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            refuse(stream);
            continue;
        };
        let service = TowerToHyperService::new(service.clone());
        let config = Arc::clone(&config);
        let closing = closing.clone();
        conns.spawn(async move {
            connection(stream, service, &config, closing).await;
            drop(permit);
        });
    }
    drop(listener);
    // Ask every connection to finish (idle ones close at once), then wait for the deadline.
    let _ = closing_tx.send(true);
    let deadline = Instant::now() + config.shutdown_deadline;
    while !conns.is_empty() {
        match tokio::time::timeout_at(deadline, conns.join_next()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::info!(
                    open = conns.len(),
                    "shutdown deadline passed; closing the remaining connections"
                );
                conns.abort_all();
                while conns.join_next().await.is_some() {}
            }
        }
    }
    Ok(())
}

/// Answers a connection over the cap with a 503 error body, without waiting for anything.
fn refuse(stream: TcpStream) {
    let body = error_body(
        "Too many open connections; try again later.",
        &generate_id(),
    );
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // Best effort: a full socket buffer just loses the answer.
    let _ = stream.try_write(resp.as_bytes());
    tracing::debug!("connection refused: at the connection cap");
}

/// `{"error": message, "code": code}`.
fn error_body(message: &str, code: &str) -> String {
    serde_json::json!({ "error": message, "code": code }).to_string()
}

/// What the connection watchdog knows.
#[derive(Debug)]
struct Activity {
    started: Instant,
    /// Milliseconds since `started` of the last byte read or written.
    last_io: AtomicU64,
    /// Milliseconds since `started` (+1) when the first byte of a request head arrived; 0
    /// when no head is being read.
    head_since: AtomicU64,
    /// Requests handed to the router and not answered yet.
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            // The first byte of a new request head (or more of one).
            let _ =
                self.head_since
                    .compare_exchange(0, now + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, config: &ServerConfig) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.now();
        let head = self.head_since.load(Ordering::Relaxed);
        if head > 0 && now.saturating_sub(head - 1) >= config.header_read_timeout.as_millis() as u64
        {
            return Some("request head not received in time");
        }
        let idle = now.saturating_sub(self.last_io.load(Ordering::Relaxed));
        (head == 0 && idle >= config.idle_timeout.as_millis() as u64).then_some("idle")
    }
}

/// Serves one connection until it ends, its watchdog closes it, or shutdown closes it.
async fn connection<S>(
    stream: TcpStream,
    service: TowerToHyperService<S>,
    config: &ServerConfig,
    mut closing: watch::Receiver<bool>,
) where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
        rewrite: None,
    });
    let counted = Counted {
        inner: service,
        activity: Arc::clone(&activity),
        max_head_bytes: config.max_head_bytes,
    };
    let conn = http1::Builder::new()
        .max_buf_size(config.max_head_bytes)
        .keep_alive(true)
        .serve_connection(io, counted);
    let mut conn = std::pin::pin!(conn);
    let tick = (config.header_read_timeout.min(config.idle_timeout) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut watchdog = tokio::time::interval(tick);
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut graceful = *closing.borrow();
    if graceful {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = watchdog.tick() => {
                if let Some(why) = activity.expired(config) {
                    tracing::debug!(why, "closing connection");
                    return;
                }
            }
            changed = closing.changed(), if !graceful => {
                if changed.is_err() || *closing.borrow() {
                    graceful = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Counts requests in flight for the watchdog.
#[derive(Debug, Clone)]
struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
    max_head_bytes: usize,
}

/// The size of a request head as sent (request line and header lines).
fn head_len<B>(req: &http::Request<B>) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    line + headers + 2
}

/// A `status` answer with an OpenWhisk error body.
fn error_response(status: http::StatusCode, message: &str) -> axum::response::Response {
    let id = generate_id();
    let mut r = axum::response::Response::new(axum::body::Body::from(error_body(message, &id)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        h.insert(crate::layers::request_id::X_REQUEST_ID, v);
    }
    r
}

impl<S, B> hyper::service::Service<http::Request<B>> for Counted<S>
where
    S: hyper::service::Service<http::Request<B>, Response = axum::response::Response>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send + 'static>>;

    fn call(&self, req: http::Request<B>) -> Self::Future {
        let activity = Arc::clone(&self.activity);
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_since.store(0, Ordering::Relaxed);
        // hyper's own limit is approximate (its read buffer may hold more before it checks).
        if head_len(&req) > self.max_head_bytes {
            let guard = InFlight(activity);
            return Box::pin(async move {
                drop(guard);
                Ok(error_response(
                    http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    TRANSPORT_ERRORS[2].1,
                ))
            });
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            let guard = InFlight(activity);
            let r = fut.await;
            drop(guard);
            r
        })
    }
}

/// Decrements the in-flight count when the response is ready (or the request was dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.head_since.store(0, Ordering::Relaxed);
        self.0.wrote();
    }
}

/// The connection's socket: records activity, and rewrites hyper's empty transport-level
/// error answers into OpenWhisk error bodies.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// A replacement answer being written, and how much of it was written.
    rewrite: Option<(Vec<u8>, usize)>,
}

/// hyper's own answers to requests it cannot parse: status line prefix → message.
const TRANSPORT_ERRORS: &[(&[u8], &str)] = &[
    (
        b"HTTP/1.1 400 ",
        "The request is malformed and could not be parsed.",
    ),
    (b"HTTP/1.1 414 ", "The request URI is too long."),
    (b"HTTP/1.1 431 ", "The request headers are too large."),
];

/// If `head` is one of hyper's bodiless transport error answers, the answer to send instead.
fn rewrite_transport_error(head: &[u8]) -> Option<Vec<u8>> {
    let (prefix, message) = TRANSPORT_ERRORS.iter().find(|(p, _)| head.starts_with(p))?;
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = std::str::from_utf8(&head[..end]).ok()?.to_ascii_lowercase();
    // Our own error answers always carry a JSON body, and every answer of the router carries
    // `x-request-id` (a web action may answer an error status with an empty body); only
    // hyper's are empty and without it.
    if !text.contains("\r\ncontent-length: 0")
        || text.contains("\r\nx-request-id:")
        || end + 4 != head.len()
    {
        return None;
    }
    let status = std::str::from_utf8(&prefix[9..12]).ok()?;
    let reason = match status {
        "400" => "Bad Request",
        "414" => "URI Too Long",
        _ => "Request Header Fields Too Large",
    };
    let id = generate_id();
    let body = error_body(message, &id);
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-request-id: {id}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl Watched {
    /// Writes what is left of a replacement answer; `Ready(Ok)` once all of it is out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((buf, done)) = &mut self.rewrite {
            if *done >= buf.len() {
                self.rewrite = None;
                break;
            }
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.drain(cx))?;
        if let Some(replacement) = rewrite_transport_error(buf) {
            self.rewrite = Some((replacement, 0));
            // The replacement is written by this and later calls; hyper's bytes count as sent.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.drain(cx))?;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && first.starts_with(b"HTTP/1.1 4")
        {
            // Rare (error answers only): take the plain path, which may rewrite it.
            return self.poll_write(cx, first);
        }
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_error_answers_are_rewritten() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 12:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite_transport_error(hyper_431).unwrap()).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{out}"
        );
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("content-type: application/json"), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "The request headers are too large.");
        assert_eq!(v["code"].as_str().unwrap().len(), 32);
        assert!(head.contains(&format!("content-length: {}", body.len())));
        // An answer of the router (with a body) and a success are left alone.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n";
        assert!(rewrite_transport_error(ours).is_none());
        let action_made =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: abc\r\n\r\n";
        assert!(rewrite_transport_error(action_made).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite_transport_error(ok).is_none());
        // A head followed by body bytes in the same buffer is not hyper's bare answer.
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nxx";
        assert!(rewrite_transport_error(with_body).is_none());
    }

    #[test]
    fn the_watchdog_tells_idle_from_slow_heads() {
        let cfg = ServerConfig::default()
            .with_header_read_timeout(Duration::from_millis(0))
            .with_idle_timeout(Duration::from_secs(3600));
        let a = Activity::new();
        assert_eq!(a.expired(&cfg), None, "idle, but not for an hour");
        a.read();
        assert_eq!(a.expired(&cfg), Some("request head not received in time"));
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        assert_eq!(a.expired(&cfg), None, "a request in progress is never cut");
        drop(InFlight(Arc::new(Activity::new())));
        let cfg = cfg.with_idle_timeout(Duration::ZERO);
        let b = Activity::new();
        assert_eq!(b.expired(&cfg), Some("idle"));
    }
}
