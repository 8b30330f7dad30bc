//! The controller's own tower middleware (everything else comes from tower-http).
//!
//! * [`request_id`]: OpenWhisk's transaction id (`X-Request-ID`) and the JSON error body.
//! * [`cors`]: the CORS headers and `OPTIONS` answers of `/api/v1`.
//! * [`metrics`]: HTTP request counts and latencies by route template and status.
//! * [`trace_context`]: a span per request, W3C `traceparent` honoured.
//! * [`auth`]: Basic authentication over an [`Authenticator`](faas_core::Authenticator),
//!   plugged into tower-http's `AsyncRequireAuthorizationLayer`.

pub mod auth;
pub mod cors;
pub mod metrics;
pub mod request_id;
pub mod trace_context;
