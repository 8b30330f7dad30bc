//! The action-proxy client: one HTTP/1.1 keep-alive connection over a Unix socket, and the
//! [`Endpoint`] that pools such connections for a sandbox.
//!
//! The hyper connection is **not** spawned on its own task: every call polls the connection
//! future and the exchange together in the caller's task. A warm `/run` thus costs no task
//! hand-off (an idle cross-core wake-up costs more than the socket round trip itself); the
//! connection is only touched while a call is in flight, which is the only time it has work.

use std::future::{Future, poll_fn};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::pin::{Pin, pin};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use faas_core::Error;
use faas_core::executor::{ProxyError, ProxyResponse};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::time::Instant;

type Connection = http1::Connection<TokioIo<UnixStream>, Full<Bytes>>;

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The connection was found closed before the request went out (safe to retry elsewhere).
    Stale,
    /// The connection ended or failed after the request went out.
    Lost(Option<hyper::Error>),
}

/// An open connection to a runner.
#[derive(Debug)]
pub(crate) struct ProxyConn {
    sender: http1::SendRequest<Full<Bytes>>,
    conn: Connection,
    /// The connection future completed; it must not be polled or used again.
    done: bool,
}

impl ProxyConn {
    /// Wraps a connected socket.
    pub(crate) async fn handshake(stream: UnixStream) -> hyper::Result<Self> {
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        Ok(Self {
            sender,
            conn,
            done: false,
        })
    }

    /// Whether it can carry another request.
    pub(crate) fn reusable(&self) -> bool {
        !self.done
    }

    /// `POST path` with a JSON `body`; reads at most `max_body` bytes of the reply body (the
    /// rest is read and discarded so that the connection stays usable).
    pub(crate) async fn post(
        &mut self,
        path: &'static str,
        body: Bytes,
        max_body: usize,
    ) -> Result<ProxyResponse, CallError> {
        // Wait until the connection can take a request (after a previous reply the connection
        // must have been polled once more to get there).
        if !self.sender.is_ready() {
            let Self { sender, conn, done } = self;
            match drive(conn, done, sender.ready()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(CallError::Stale),
            }
        }
        let req = request(path, body);
        let Self { sender, conn, done } = self;
        let exchange = async {
            let resp = sender.send_request(req).await?;
            read_body(resp, max_body).await
        };
        match drive(conn, done, exchange).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                *done = true;
                Err(CallError::Lost(Some(e)))
            }
            Err(e) => Err(CallError::Lost(e)),
        }
    }
}

/// Polls `fut` and the connection together until `fut` completes. If the connection ends first,
/// returns its error (or `None` when it closed cleanly); `fut` is polled once more in that case
/// since the last bytes read may have completed it.
async fn drive<F: Future>(
    conn: &mut Connection,
    done: &mut bool,
    fut: F,
) -> Result<F::Output, Option<hyper::Error>> {
    if *done {
        return Err(None);
    }
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        match Pin::new(&mut *conn).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                *done = true;
                match fut.as_mut().poll(cx) {
                    Poll::Ready(out) => Poll::Ready(Ok(out)),
                    Poll::Pending => Poll::Ready(Err(result.err())),
                }
            }
        }
    })
    .await
}

fn request(path: &'static str, body: Bytes) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = Uri::from_static(path);
    let headers = req.headers_mut();
    headers.insert(HOST, HeaderValue::from_static("localhost"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    req
}

/// Reads the body, keeping at most `max` bytes. A body that arrives as one chunk (the runners
/// send header and body in one write) is returned without copying.
async fn read_body(resp: Response<Incoming>, max: usize) -> hyper::Result<ProxyResponse> {
    let status = resp.status().as_u16();
    let declared = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = resp.into_body();
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut kept = 0usize;
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(mut data) = frame?.into_data() else {
            continue; // trailers
        };
        total += data.len() as u64;
        let room = max - kept;
        if room == 0 {
            continue;
        }
        data.truncate(room);
        kept += data.len();
        if first.is_none() && rest.is_empty() {
            first = Some(data);
        } else {
            if let Some(f) = first.take() {
                let hint = declared.map_or(0, |d| d.min(max as u64) as usize);
                rest.reserve(hint.max(f.len() + data.len()));
                rest.extend_from_slice(&f);
            }
            rest.extend_from_slice(&data);
        }
    }
    let body = first.unwrap_or_else(|| rest.freeze());
    let full = total.max(declared.unwrap_or(0));
    Ok(ProxyResponse {
        status,
        body,
        truncated: (total > max as u64).then_some(full),
    })
}

/// What an [`Endpoint`] needs to know about the sandbox behind it.
pub(crate) trait Sandbox: Sync {
    /// The adapter's name, for errors.
    const BACKEND: &'static str;
    /// Whether the sandbox was destroyed (calls fail at once).
    fn is_destroyed(&self) -> bool;
    /// Whether the runner is known to have exited.
    fn has_exited(&self) -> bool;
    /// The error for a call whose connection went away (the sandbox decides between
    /// `Exited`, with or without out-of-memory, and other failures).
    fn lost(&self, cause: Option<hyper::Error>) -> impl Future<Output = ProxyError> + Send;
}

/// The error of a call to a destroyed sandbox.
pub(crate) fn gone(backend: &'static str) -> ProxyError {
    ProxyError::Other(Error::backend(
        backend,
        false,
        "the container was destroyed",
    ))
}

/// First pause between connection attempts while the runner starts.
const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(2);
/// Longest pause between connection attempts.
const CONNECT_RETRY_MAX: Duration = Duration::from_millis(50);

/// A runner's action proxy behind a Unix socket: keeps idle keep-alive connections, connects
/// (retrying while the runner is not listening yet) and makes the `/init` and `/run` calls.
/// Shared by the process and the Docker executors; the [`Sandbox`] tells what a lost
/// connection means.
pub(crate) struct Endpoint {
    socket: PathBuf,
    /// Idle keep-alive connections (one, unless calls overlapped).
    conns: Mutex<Vec<ProxyConn>>,
    max_response_bytes: usize,
    /// How long to keep polling at the first pause before backing off.
    fast_phase: Duration,
}

impl Endpoint {
    /// The proxy at `socket`, reading replies up to `max_response_bytes`.
    pub(crate) fn new(socket: PathBuf, max_response_bytes: usize, fast_phase: Duration) -> Self {
        Self {
            socket,
            conns: Mutex::new(Vec::with_capacity(1)),
            max_response_bytes,
            fast_phase,
        }
    }

    /// The socket path.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// Drops the idle connections (on destroy).
    pub(crate) fn close(&self) {
        self.idle().clear();
    }

    fn idle(&self) -> MutexGuard<'_, Vec<ProxyConn>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `POST path` with `body`, within `timeout`; with `wait_for_listener`, a runner that is
    /// not listening yet is waited for (within the same time).
    pub(crate) async fn call<S: Sandbox>(
        &self,
        sandbox: &S,
        path: &'static str,
        body: Bytes,
        timeout: Duration,
        wait_for_listener: bool,
    ) -> Result<ProxyResponse, ProxyError> {
        if sandbox.is_destroyed() {
            return Err(gone(S::BACKEND));
        }
        let exchange = self.exchange(sandbox, path, body, wait_for_listener);
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            // The connection in use was dropped with the future: it is not reused.
            Err(_) => Err(ProxyError::Timeout),
        }
    }

    async fn exchange<S: Sandbox>(
        &self,
        sandbox: &S,
        path: &'static str,
        body: Bytes,
        wait_for_listener: bool,
    ) -> Result<ProxyResponse, ProxyError> {
        let pooled = self.idle().pop();
        let (mut conn, mut fresh) = match pooled {
            Some(conn) => (conn, false),
            None => (self.connect(sandbox, wait_for_listener).await?, true),
        };
        loop {
            match conn.post(path, body.clone(), self.max_response_bytes).await {
                Ok(resp) => {
                    if conn.reusable() && !sandbox.is_destroyed() {
                        self.idle().push(conn);
                    }
                    return Ok(resp);
                }
                // An idle connection turned out closed before the request was sent: retry once.
                Err(CallError::Stale) if !fresh => {
                    conn = self.connect(sandbox, false).await?;
                    fresh = true;
                }
                Err(CallError::Stale) => return Err(sandbox.lost(None).await),
                Err(CallError::Lost(e)) => return Err(sandbox.lost(e).await),
            }
        }
    }

    /// Connects to the runner's socket; with `wait_for_listener`, retries while the runner is
    /// not listening yet (the caller bounds the time).
    async fn connect<S: Sandbox>(
        &self,
        sandbox: &S,
        wait_for_listener: bool,
    ) -> Result<ProxyConn, ProxyError> {
        let started = Instant::now();
        let mut pause = CONNECT_RETRY_FIRST;
        loop {
            match UnixStream::connect(&self.socket).await {
                Ok(stream) => {
                    return ProxyConn::handshake(stream)
                        .await
                        .map_err(|e| ProxyError::Other(Error::backend(S::BACKEND, true, e)));
                }
                Err(e) => {
                    if sandbox.is_destroyed() {
                        return Err(gone(S::BACKEND));
                    }
                    if sandbox.has_exited() {
                        return Err(sandbox.lost(None).await);
                    }
                    let not_listening =
                        matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused);
                    if !(wait_for_listener && not_listening) {
                        return Err(ProxyError::Other(Error::backend(
                            S::BACKEND,
                            false,
                            format!("cannot connect to the action proxy: {e}"),
                        )));
                    }
                    tokio::time::sleep(pause).await;
                    if started.elapsed() >= self.fast_phase {
                        pause = (pause * 2).min(CONNECT_RETRY_MAX);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    /// A server that answers each request on one connection with the next canned reply.
    async fn serve(replies: Vec<&'static [u8]>) -> (tempfile::TempDir, UnixStream) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 65536];
            for reply in replies {
                let mut got = Vec::new();
                // Read one request (headers + body as announced).
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if got.len() >= end + 4 + len {
                            assert!(text.starts_with("POST /run HTTP/1.1\r\n"), "{text}");
                            assert!(text.contains("content-type: application/json"), "{text}");
                            break;
                        }
                    }
                }
                s.write_all(reply).await.unwrap();
            }
            // Then close.
        });
        let stream = UnixStream::connect(&path).await.unwrap();
        (dir, stream)
    }

    #[tokio::test]
    async fn reuses_the_connection_and_caps_bodies() {
        let (_dir, stream) = serve(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n{\"a\":1}",
            b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 10\r\n\r\n0123456789",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
        ])
        .await;
        let mut c = ProxyConn::handshake(stream).await.unwrap();
        let r = c
            .post("/run", Bytes::from_static(b"{}"), 100)
            .await
            .unwrap();
        assert_eq!(
            (r.status, &r.body[..], r.truncated),
            (200, &b"{\"a\":1}"[..], None)
        );
        assert!(c.reusable());
        let r = c.post("/run", Bytes::from_static(b"{}"), 4).await.unwrap();
        assert_eq!(
            (r.status, &r.body[..], r.truncated),
            (502, &b"0123"[..], Some(10))
        );
        assert!(c.reusable());
        let r = c.post("/run", Bytes::from_static(b"{}"), 5).await.unwrap();
        assert_eq!((&r.body[..], r.truncated), (&b"abcde"[..], Some(7)));
        // The server closed after its last reply.
        let e = c
            .post("/run", Bytes::from_static(b"{}"), 5)
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Stale | CallError::Lost(_)), "{e:?}");
        assert!(!c.reusable());
    }

    #[tokio::test]
    async fn connection_lost_mid_call() {
        let (_dir, stream) = serve(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"]).await;
        let mut c = ProxyConn::handshake(stream).await.unwrap();
        let e = c
            .post("/run", Bytes::from_static(b"{}"), 100)
            .await
            .unwrap_err();
        assert!(matches!(e, CallError::Lost(_)), "{e:?}");
        assert!(!c.reusable());
    }
}
