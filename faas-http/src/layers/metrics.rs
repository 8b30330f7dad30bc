//! HTTP request metrics: one [`Event::Http`] per answered request, labelled with the route
//! template (axum's [`MatchedPath`], set before per-route layers run; `unmatched` for the
//! fallback), the method (`OTHER` for non-standard ones) and the status.
//!
//! With a disabled [`Metrics`] handle the layer passes requests through untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::MatchedPath;
use faas_core::metrics::{Event, Metrics};
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// Records [`Event::Http`] for every request; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct HttpMetricsLayer {
    metrics: Metrics,
}

impl HttpMetricsLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service of [`HttpMetricsLayer`].
#[derive(Debug, Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    metrics: Metrics,
}

impl<S> HttpMetrics<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The method as a bounded label.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl<S, B, R> Service<Request<B>> for HttpMetrics<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let probe = self.metrics.start().map(|t0| Probe {
            t0,
            route: req.extensions().get::<MatchedPath>().cloned(),
            method: method_label(req.method()),
            metrics: self.metrics.clone(),
        });
        ResponseFuture {
            inner: self.inner.call(req),
            probe,
        }
    }
}

#[derive(Debug)]
struct Probe {
    t0: Instant,
    /// The route template (a shared string: cloning it does not allocate).
    route: Option<MatchedPath>,
    method: &'static str,
    metrics: Metrics,
}

pin_project! {
    /// The response future of [`HttpMetrics`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        probe: Option<Probe>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = ready!(this.inner.poll(cx));
        if let (Some(p), Ok(res)) = (this.probe.take(), &out) {
            p.metrics.record(Event::Http {
                route: p.route.as_ref().map_or("unmatched", MatchedPath::as_str),
                method: p.method,
                status: res.status().as_u16(),
                elapsed: p.t0.elapsed(),
            });
        }
        Poll::Ready(out)
    }
}
