//! CORS on `/api/v1` as OpenWhisk answers it (`CorsSettings.scala`): every response under
//! `/api/v1` carries `Access-Control-Allow-Origin: *` and the allowed headers and methods, and
//! `OPTIONS` on any path there is answered `200` right away, without authentication. Web
//! actions (`/api/v1/web/...`) are left to their route, which has CORS of its own.
//!
//! tower-http's `CorsLayer` answers only real preflights and mirrors request headers; OpenWhisk
//! clients expect the fixed headers on every response, hence this small layer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// The path prefix that gets CORS headers.
pub const API_PREFIX: &str = "/api/v1";

const ALLOW_HEADERS: &str =
    "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent";
const ALLOW_METHODS: &str = "GET, DELETE, POST, PUT, HEAD";

fn add_cors_headers(h: &mut HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
}

/// Adds OpenWhisk's CORS headers under `/api/v1` and answers `OPTIONS` there.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiCorsLayer;

impl ApiCorsLayer {
    /// The layer.
    pub const fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for ApiCorsLayer {
    type Service = ApiCors<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ApiCors { inner }
    }
}

/// The service of [`ApiCorsLayer`].
#[derive(Debug, Clone)]
pub struct ApiCors<S> {
    inner: S,
}

impl<S> ApiCors<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Web actions (`/api/v1/web/...`) answer CORS and `OPTIONS` themselves (OpenWhisk keeps
/// them apart "to separate the cors header and allow the actions themselves to respond to
/// options").
const WEB_PREFIX: &str = "/web";

fn under_api(path: &str) -> bool {
    path.strip_prefix(API_PREFIX).is_some_and(|rest| {
        let web = rest
            .strip_prefix(WEB_PREFIX)
            .is_some_and(|r| r.is_empty() || r.starts_with('/'));
        (rest.is_empty() || rest.starts_with('/')) && !web
    })
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ApiCors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if !under_api(req.uri().path()) {
            return ResponseFuture {
                inner: Some(self.inner.call(req)),
                cors: false,
            };
        }
        if req.method() == Method::OPTIONS {
            return ResponseFuture {
                inner: None,
                cors: true,
            };
        }
        ResponseFuture {
            inner: Some(self.inner.call(req)),
            cors: true,
        }
    }
}

pin_project! {
    /// The response future of [`ApiCors`]: the inner service's, or none for an `OPTIONS`
    /// request answered here.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        cors: bool,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = match this.inner.as_pin_mut() {
            Some(inner) => ready!(inner.poll(cx))?,
            None => {
                let mut res = Response::new(B::default());
                *res.status_mut() = StatusCode::OK;
                res
            }
        };
        if *this.cors {
            add_cors_headers(res.headers_mut());
        }
        Poll::Ready(Ok(res))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_api_paths() {
        assert!(under_api("/api/v1"));
        assert!(under_api("/api/v1/namespaces"));
        assert!(!under_api("/api/v10"));
        assert!(!under_api("/ping"));
        assert!(!under_api("/api/v1/web"));
        assert!(!under_api("/api/v1/web/guest/default/x"));
        assert!(under_api("/api/v1/webx"));
    }
}
