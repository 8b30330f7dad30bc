//! An extra tower layer around the controller's HTTP stack.
//!
//! `ServedBy` is a tower `Layer`, written as `faas-http`'s own layers are: it counts the
//! requests it sees and stamps every response with an `x-served-by` header. The builder's
//! `map_router` hands the controller's finished `Router` (its whole stack: request ids,
//! tracing, body limit, time-out, CORS, authentication, routes) to a closure before it is
//! served; `router.layer(…)` puts the new layer outermost, so it sees every request.
//!
//! Run: `cargo run -p faas-platform --example tower-layer`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use faas_platform::Platform;
use futures::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Layer, Service};

/// Counts requests and adds `x-served-by: <name>` to every response.
#[derive(Debug, Clone)]
struct ServedBy {
    name: HeaderValue,
    requests: Arc<AtomicU64>,
}

impl<S> Layer<S> for ServedBy {
    type Service = ServedByService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ServedByService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ServedBy`] wraps around the stack.
#[derive(Debug, Clone)]
struct ServedByService<S> {
    inner: S,
    layer: ServedBy,
}

impl<S, B, R> Service<Request<B>> for ServedByService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.layer.requests.fetch_add(1, Ordering::Relaxed);
        let name = self.layer.name.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            response.headers_mut().insert("x-served-by", name);
            Ok(response)
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let layer = ServedBy {
        name: HeaderValue::from_static("my-faas"),
        requests: Arc::default(),
    };
    let requests = Arc::clone(&layer.requests);

    let config = faas_platform::config::NodeConfig {
        listen: "127.0.0.1:0".parse()?,
        catalog: false,
        ..Default::default()
    };
    let running = Platform::builder()
        .config(config)
        .map_router(move |router| router.layer(layer))
        .start()
        .await?;

    // Over the socket: the platform's public API description, with the new header.
    let mut socket = tokio::net::TcpStream::connect(running.addr).await?;
    socket
        .write_all(b"GET /api/v1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await?;
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    println!("{head}");

    // In process (`call` goes through the same stack): an authenticated API call.
    let (status, _) = running
        .call(Method::GET, "/api/v1/namespaces/_/actions", None)
        .await?;
    println!("list actions: {status}; requests seen by the layer: {requests:?}");

    running.shutdown().await;
    let stamped = head.to_ascii_lowercase().contains("x-served-by: my-faas");
    if !stamped || requests.load(Ordering::Relaxed) != 2 {
        return Err("the layer did not see both requests".into());
    }
    Ok(())
}
