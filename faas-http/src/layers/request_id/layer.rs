use tower::Layer;

use super::RequestId;

/// Assigns transaction ids and renders error bodies; see the [module docs](super).
#[derive(Debug, Clone, Copy)]
pub struct RequestIdLayer {
    max_request_bytes: u64,
}

impl RequestIdLayer {
    /// A layer; `max_request_bytes` is quoted in 413 answers of the body-limit layer.
    pub const fn new(max_request_bytes: u64) -> Self {
        Self { max_request_bytes }
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestId::new(inner, self.max_request_bytes)
    }
}
