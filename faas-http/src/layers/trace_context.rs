//! Request spans and W3C trace context: with an enabled [`Tracer`], every request gets an
//! `http.request` span, a child of the caller's `traceparent` header when it holds a valid
//! one, else the root of a new trace. The span's context is the *current* context of the
//! request's task ([`current`]), which the engine puts in the activation messages it
//! publishes (their `traceContext`), so the invoker's spans join the same trace.
//!
//! With a disabled tracer the layer passes requests through untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use faas_core::trace::{Span, TraceContext, Tracer};
use http::{Request, Response};
use tower::{Layer, Service};

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The trace context of the request this task serves, if it is traced.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// Opens a span per request; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct TraceContextLayer {
    tracer: Tracer,
}

impl TraceContextLayer {
    /// A layer exporting through `tracer`.
    pub fn new(tracer: Tracer) -> Self {
        Self { tracer }
    }
}

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService {
            inner,
            tracer: self.tracer.clone(),
        }
    }
}

/// The service of [`TraceContextLayer`].
#[derive(Debug, Clone)]
pub struct TraceContextService<S> {
    inner: S,
    tracer: Tracer,
}

impl<S, B, R> Service<Request<B>> for TraceContextService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if !self.tracer.is_enabled() {
            return Box::pin(self.inner.call(req));
        }
        let parent = req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse_traceparent);
        let mut span: Span = self.tracer.span("http.request", parent.as_ref());
        span.set("http.request.method", req.method());
        if let Some(route) = req.extensions().get::<MatchedPath>() {
            span.set("http.route", route.as_str());
        }
        let Some(ctx) = span.context() else {
            return Box::pin(self.inner.call(req));
        };
        let fut = self.inner.call(req);
        Box::pin(CURRENT.scope(ctx, async move {
            let out = fut.await;
            if let Ok(res) = &out {
                span.set("http.response.status_code", res.status().as_u16());
            }
            span.end();
            out
        }))
    }
}
