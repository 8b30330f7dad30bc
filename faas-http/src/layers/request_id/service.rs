use std::task::{Context, Poll};

use faas_core::entity::now_ms;
use faas_core::message::TransactionId;
use http::{HeaderValue, Request, Response, header};
use tower::Service;

use super::{ResponseFuture, SYSTEM_PREFIX, X_REQUEST_ID, generate_id};

/// The service of [`RequestIdLayer`](super::RequestIdLayer).
#[derive(Debug, Clone)]
pub struct RequestId<S> {
    inner: S,
    max_request_bytes: u64,
}

impl<S> RequestId<S> {
    /// Wraps `inner`.
    pub const fn new(inner: S, max_request_bytes: u64) -> Self {
        Self {
            inner,
            max_request_bytes,
        }
    }
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

/// The id to use for `req`: its own unless missing, not text, empty or a system id.
fn pick_id<B>(req: &Request<B>) -> (String, HeaderValue) {
    if let Some(v) = req.headers().get(&X_REQUEST_ID)
        && let Ok(s) = v.to_str()
    {
        let s = s.trim();
        if !s.is_empty()
            && !s.starts_with(SYSTEM_PREFIX)
            && let Ok(hv) = HeaderValue::from_str(s)
        {
            return (s.to_string(), hv);
        }
    }
    let id = generate_id();
    // 32 alphanumerics are always a valid header value.
    let hv = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"));
    (id, hv)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestId<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<axum::body::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let (id, header_value) = pick_id(&req);
        req.headers_mut().insert(X_REQUEST_ID, header_value.clone());
        let request_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<u64>().ok());
        let transid = TransactionId {
            id,
            start: now_ms(),
        };
        let code = transid.id.clone();
        req.extensions_mut().insert(transid);
        ResponseFuture::new(
            self.inner.call(req),
            header_value,
            code,
            request_len,
            self.max_request_bytes,
        )
    }
}
