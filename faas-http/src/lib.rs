//! The **faas controller**: Apache OpenWhisk's REST API (`/api/v1`) on axum and tower, and
//! the dispatch pipeline that turns an invoke into an activation message on the bus and, for
//! blocking calls, waits for its acknowledgement.
//!
//! It links no concrete adapter: it runs over any [`Store`](faas_core::Store),
//! [`MessageBus`](faas_core::MessageBus), [`Scheduler`](faas_core::Scheduler) and
//! [`Authenticator`](faas_core::Authenticator).
//!
//! # Embedding
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn run(
//! #     store: Arc<dyn faas_core::Store>,
//! #     bus: Arc<dyn faas_core::MessageBus>,
//! #     scheduler: Arc<dyn faas_core::Scheduler>,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use faas_http::{Controller, ControllerConfig};
//!
//! let auth = Arc::new(faas_core::StoreAuthenticator::new(Arc::clone(&store)));
//! let controller = Controller::new(ControllerConfig::default(), store, bus, scheduler, auth)?;
//! controller.start().await?; // topics, acknowledgement and health consumers
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3233").await?;
//! controller.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! [`Controller::router`] returns the whole application as an [`axum::Router`] for callers
//! that serve it themselves or test it with `tower::ServiceExt::oneshot`.
//!
//! # Layers
//!
//! Outermost first ([`Controller::router`]):
//!
//! 1. `SetSensitiveRequestHeaders(Authorization)` — credentials never reach logs.
//! 2. [`RequestIdLayer`](layers::request_id::RequestIdLayer) — the transaction id
//!    (`X-Request-ID`, reused unless it starts with `sid_`, else 32 random alphanumerics) in
//!    the request extensions and on every response; renders every error response as
//!    `{"error": ..., "code": <transaction id>}`.
//! 3. `TraceLayer` — a tracing span per request.
//! 4. `RequestBodyLimitLayer` — no body beyond the largest action `PUT` (code + parameters +
//!    annotations); handlers enforce the tighter per-route limits with OpenWhisk's 413 text
//!    (invoke payloads: 1 MB).
//! 5. `TimeoutLayer` — 503 after `request_timeout` (65 s, above the 60 s blocking wait).
//! 6. [`ApiCorsLayer`](layers::cors::ApiCorsLayer) — CORS headers on `/api/v1`, `OPTIONS`
//!    answered 200 before authentication.
//! 7. On `/api/v1/namespaces/...` only: `AsyncRequireAuthorizationLayer` with
//!    [`BasicAuth`](layers::auth::BasicAuth) — 401 with `WWW-Authenticate` and OpenWhisk's
//!    messages, the caller's [`Identity`](faas_core::Identity) into the extensions.
//! 8. The routes. Each checks the entitlement (owner only: `{ns}` must be `_` or the caller's
//!    namespace, else 403) and, for invokes, the namespace throttles (rate per minute and
//!    concurrent activations, 429).
//!
//! # Dispatch
//!
//! An invoke reads the action (and its package and binding, merging parameters
//! package < binding < action < payload), builds the
//! [`ActivationMessage`](faas_core::ActivationMessage), asks the scheduler for an invoker,
//! records the activation in the controller's books **before** publishing it on
//! `invoker<N>`, and then answers 202 `{"activationId"}` (non-blocking) or waits for the
//! acknowledgement on `completed<C>` (blocking; up to `timeout`, then 202). A `Completion` or
//! `Combined` acknowledgement releases the scheduler slot and feeds invoker health; an
//! activation without one is written off after OpenWhisk's forced completion time-out
//! (`max(timeout, 60 s) × 2 + 60 s`).
//!
//! Sequences (OpenWhisk §9.1) are validated on `PUT` (components exist, no cycle, at most 50
//! atomic actions) and run by the controller: each component is an ordinary blocking
//! dispatch caused by the sequence's activation id, the result of one is the input of the
//! next, the first failure ends the run, and the controller stores the sequence's record
//! (`logs` = the component activation ids). Conductor actions are not implemented.
//!
//! # Latency
//!
//! `cargo run --release -p faas-http --example invoke_latency` measures warm blocking
//! invokes through the whole stack (router, dispatch, in-process bus, invoker, a local
//! Node.js process) next to the invoker service alone.
//!
//! # Routes
//!
//! `GET /`, `/ping`, `/invokers`, `/invokers/healthy/count`, `/invokers/ready`, `/api/v1`,
//! `/api/v1/api-docs`; authenticated: `/api/v1/namespaces`, `.../{ns}/limits`,
//! `.../{ns}/actions[/{pkg}]/{name}` (GET, PUT, DELETE, POST), `.../{ns}/actions[/{pkg}/]`,
//! `.../{ns}/activations`, `.../{ns}/activations/{id}[/logs|/result]`; with an operator
//! credential ([`ControllerConfig::with_admin_credential`]), the [`admin`] API under
//! `/admin/v1`, behind its own credential check.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod admin;
mod books;
mod config;
mod controller;
mod dispatch;
pub mod error;
mod health;
pub mod layers;
mod routes;
mod sequence;
mod throttle;

pub use config::ControllerConfig;
pub use controller::{Controller, serve};
pub use error::ApiError;
pub use routes::actions::ACTIVATION_ID_HEADER;
pub use routes::system::API_DOCS;
