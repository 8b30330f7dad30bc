use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::{Body, HttpBody};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use pin_project_lite::pin_project;

use super::X_REQUEST_ID;
use crate::error::{ErrorMessage, Verbatim, default_message};

pin_project! {
    /// The response future of [`RequestId`](super::RequestId).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        header_value: Option<HeaderValue>,
        code: String,
        request_len: Option<u64>,
        max_request_bytes: u64,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(
        inner: F,
        header_value: HeaderValue,
        code: String,
        request_len: Option<u64>,
        max_request_bytes: u64,
    ) -> Self {
        Self {
            inner,
            header_value: Some(header_value),
            code,
            request_len,
            max_request_bytes,
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

/// `{"error": message, "code": code}`, in OpenWhisk's field order.
fn error_body(message: &str, code: &str) -> Vec<u8> {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    format!("{{\"error\":{},\"code\":{}}}", quote(message), quote(code)).into_bytes()
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = ready!(this.inner.poll(cx))?;
        let (mut parts, body) = res.into_parts();
        let message = parts.extensions.remove::<ErrorMessage>();
        let status = parts.status;
        let verbatim = parts.extensions.remove::<Verbatim>().is_some();
        let needs_body =
            message.is_some() || (status.as_u16() >= 400 && !is_json(&parts.headers) && !verbatim);
        let body = if needs_body {
            let msg = match message {
                Some(m) => m.0,
                None => {
                    let allow = parts
                        .headers
                        .get(header::ALLOW)
                        .and_then(|v| v.to_str().ok());
                    default_message(status, allow, *this.request_len, *this.max_request_bytes)
                }
            };
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Body::from(error_body(msg.trim(), this.code))
        } else {
            Body::new(body)
        };
        if status == StatusCode::UNAUTHORIZED
            && !parts.headers.contains_key(header::WWW_AUTHENTICATE)
        {
            parts.headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"OpenWhisk secure realm\""),
            );
        }
        if let Some(hv) = this.header_value.take() {
            parts.headers.insert(X_REQUEST_ID, hv);
        }
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_bodies_put_error_first() {
        let b = super::error_body("a \"quoted\"\nmessage", "tid");
        assert_eq!(
            String::from_utf8(b).unwrap_or_default(),
            r#"{"error":"a \"quoted\"\nmessage","code":"tid"}"#
        );
    }
}
