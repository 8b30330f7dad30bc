use std::task::{Context, Poll};

use faas_core::entity::now_ms;
use faas_core::message::TransactionId;
use http::{HeaderValue, Request, Response, header};
use tower::Service;

use super::{MAX_CLIENT_ID_LEN, ResponseFuture, SYSTEM_PREFIX, X_REQUEST_ID, generate_id};

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

/// Whether a client's `X-Request-ID` may be used as the transaction id: short, of safe
/// characters only (it is echoed in headers and bodies and written to logs), and not a system
/// id.
pub(super) fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_LEN
        && !id.starts_with(SYSTEM_PREFIX)
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The id to use for `req`: its own when [`acceptable`], else a fresh one.
fn pick_id<B>(req: &Request<B>) -> (String, HeaderValue) {
    if let Some(v) = req.headers().get(&X_REQUEST_ID)
        && let Ok(s) = v.to_str()
    {
        let s = s.trim();
        if acceptable(s)
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

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn only_short_safe_ids_are_reused() {
        assert!(acceptable("abc-123_x.y:z"));
        assert!(acceptable(&"a".repeat(64)));
        assert!(!acceptable(&"a".repeat(65)));
        assert!(!acceptable(""));
        assert!(!acceptable("sid_invokerHealth"));
        for bad in ["a b", "a\"b", "<script>", "a/b", "é", "a;b", "a%20"] {
            assert!(!acceptable(bad), "{bad}");
        }
    }
}
