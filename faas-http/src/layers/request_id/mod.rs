//! OpenWhisk's transaction id and error bodies.
//!
//! Every request gets a transaction id: the incoming `X-Request-ID` when it is at most 64
//! characters of letters, digits, `-`, `_`, `.` and `:` and does not start with `sid_`
//! (reserved for system transactions), else 32 random alphanumerics (`TransactionId.scala`). The id is written back into the request's
//! `X-Request-ID` header, put into the request extensions as a
//! [`TransactionId`](faas_core::message::TransactionId) (with the arrival time) and echoed
//! on every response.
//!
//! The layer also renders error bodies (see [`crate::error`]): a response that carries an
//! [`ErrorMessage`](crate::error::ErrorMessage), or any error status without a JSON body,
//! gets `{"error": <message>, "code": <transaction id>}`.

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::RequestIdLayer;
pub use service::RequestId;

/// The transaction id header.
pub const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Longest client-supplied transaction id that is reused.
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// Prefix of system transaction ids that clients may not reuse.
pub const SYSTEM_PREFIX: &str = "sid_";

/// A fresh transaction id: 32 random alphanumerics.
pub fn generate_id() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}
