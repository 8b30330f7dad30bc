//! The **faas controller**: Apache OpenWhisk's REST API (`/api/v1`) on axum and tower, around
//! an HTTP-free [invocation engine](engine) that every caller uses (REST routes, sequences,
//! conductor actions) and that turns an invoke into an activation message on the bus and,
//! for blocking calls, waits for its acknowledgement.
//!
//! It links no concrete adapter: it runs over any [`Store`](faas_core::Store),
//! [`MessageBus`](faas_core::MessageBus), [`Scheduler`](faas_core::Scheduler) and
//! [`Authenticator`](faas_core::Authenticator).
//!
//! # Embedding
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//!
//! use faas_core::sharding::ShardingScheduler;
//! use faas_core::{MessageBus, Scheduler, Store, StoreAuthenticator};
//! use faas_http::{Controller, ControllerConfig};
//! use tower::ServiceExt as _;
//!
//! let store: Arc<dyn Store> = Arc::new(faas_store::MemoryStore::new());
//! let bus: Arc<dyn MessageBus> = Arc::new(faas_bus::InProcessBus::new());
//! let scheduler: Arc<dyn Scheduler> = Arc::new(ShardingScheduler::new());
//! let auth = Arc::new(StoreAuthenticator::new(Arc::clone(&store)));
//! let controller = Controller::new(ControllerConfig::default(), store, bus, scheduler, auth)?;
//! controller.start().await?; // topics, acknowledgement and health consumers
//!
//! // The whole application as a tower service; `controller.serve(listener, shutdown)` puts
//! // it behind a socket.
//! let request = http::Request::get("/api/v1").body(axum::body::Body::empty())?;
//! let response = controller.router().oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//!
//! // The API needs credentials, and refuses without them in OpenWhisk's words.
//! let request = http::Request::get("/api/v1/namespaces").body(axum::body::Body::empty())?;
//! assert_eq!(controller.router().oneshot(request).await?.status(), 401);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! [`Controller::serve`] runs the router behind [`server::serve`]: a connection cap, header,
//! body and idle timeouts, a shutdown deadline and error bodies for transport rejections
//! ([`ServerConfig`], in [`ControllerConfig::server`]).
//!
//! [`Controller::router`] returns the whole application as an [`axum::Router`] for callers
//! that serve it themselves or test it with `tower::ServiceExt::oneshot`.
//!
//! # Layers
//!
//! Outermost first ([`Controller::router`]):
//!
//! 1. `SetSensitiveRequestHeaders(Authorization)` — credentials never reach logs; then
//!    [`HttpMetricsLayer`](layers::metrics::HttpMetricsLayer) — request counts and latencies by
//!    route template and status, when [`ControllerConfig::metrics`] is set (see [`metrics`]).
//! 2. [`RequestIdLayer`](layers::request_id::RequestIdLayer) — the transaction id
//!    (`X-Request-ID` when short and of safe characters, not `sid_…`, else 32 random alphanumerics) in
//!    the request extensions and on every response; renders every error response as
//!    `{"error": ..., "code": <transaction id>}`.
//! 3. `TraceLayer` — a tracing span per request.
//! 4. `RequestBodyLimitLayer` — no body beyond the largest action `PUT` (code + parameters +
//!    annotations); handlers enforce the tighter per-route limits with OpenWhisk's 413 text
//!    (invoke payloads: 1 MB).
//! 5. `TimeoutLayer` — 503 after `request_timeout` (65 s, above the 60 s blocking wait).
//! 6. [`ApiCorsLayer`](layers::cors::ApiCorsLayer) — CORS headers on `/api/v1` (but for web
//!    actions, which answer CORS themselves), `OPTIONS` answered 200 before authentication.
//! 7. On `/api/v1/namespaces/...` only: `AsyncRequireAuthorizationLayer` with
//!    [`BasicAuth`](layers::auth::BasicAuth) — 401 with `WWW-Authenticate` and OpenWhisk's
//!    messages, the caller's [`Identity`](faas_core::Identity) into the extensions.
//! 8. The routes. Each goes through the one [entitlement](engine::entitlement) check (a
//!    namespace owns its entities; others may read published packages and read or invoke the
//!    actions in them; a denied resource answers 403 exactly as a missing one would) and
//!    invokes go through [`Engine::invoke`](engine::Engine::invoke) (throttles, 429).
//!
//! # Dispatch
//!
//! An invoke resolves and entitles the action (and its package and binding, merging
//! parameters package < binding < action < payload), builds the
//! [`ActivationMessage`](faas_core::ActivationMessage), asks the scheduler for an invoker,
//! records the activation in the controller's books **before** publishing it on
//! `invoker<N>`, and then answers 202 `{"activationId"}` (non-blocking) or waits for the
//! acknowledgement on `completed<C>` (blocking; up to `timeout`, then 202). A `Completion` or
//! `Combined` acknowledgement releases the scheduler slot and feeds invoker health; an
//! activation without one is written off after OpenWhisk's forced completion time-out
//! (`max(timeout, 60 s) × 2 + 60 s`).
//!
//! Sequences are validated on `PUT` (components readable by the caller and existing, no
//! cycle, at most 50 atomic actions) and run by the engine: each component is a blocking
//! invoke caused by the sequence's activation id, entitled again at every run; the result of
//! one is the input of the next, the first failure ends the run, and the engine stores the
//! sequence's record (`logs` = the component activation ids; nested sequences have records of
//! their own). Conductor actions (annotation `conductor: true`) drive compositions as
//! OpenWhisk's `docs/conductors.md` defines them.
//!
//! # Catalog
//!
//! [`catalog`] holds the `whisk.system` packages shipped as real action files (`utils`,
//! `samples`) and installs them idempotently in any store.
//!
//! # Latency
//!
//! `cargo run --release -p faas-http --example invoke_latency` measures warm blocking
//! invokes through the whole stack (router, dispatch, in-process bus, invoker, a local
//! Node.js process) next to the invoker service alone.
//!
//! # Routes
//!
//! `GET /`, `/ping`, `/health` (liveness), `/ready` (readiness: see [`engine::ready`]), `/invokers`, `/invokers/healthy/count`, `/invokers/ready`, `/api/v1`,
//! `/api/v1/api-docs`; authenticated: `/api/v1/namespaces`, `.../{ns}/limits`,
//! `.../{ns}/actions[/{pkg}]/{name}` (GET, PUT, DELETE, POST), `.../{ns}/actions[/{pkg}/]`,
//! `.../{ns}/packages`, `.../{ns}/packages/{name}` (GET, PUT, DELETE),
//! `.../{ns}/activations`, `.../{ns}/activations/{id}[/logs|/result]`; without credentials,
//! web actions at `/api/v1/web/{ns}/{pkg|default}/{action}[.ext][/path]` (any method; see
//! OpenWhisk's `docs/webactions.md`); with an operator
//! credential ([`ControllerConfig::with_admin_credential`]), the [`admin`] API under
//! `/admin/v1`, behind its own credential check; with [`ControllerConfig::metrics_token`],
//! `GET /metrics` (Prometheus) to that bearer token.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod admin;
pub mod alarms;
pub mod catalog;
mod config;
mod controller;
pub mod engine;
pub mod error;
mod gateway;
pub mod layers;
pub mod metrics;
mod routes;
pub mod server;

pub use config::ControllerConfig;
pub use controller::{Controller, serve};
pub use error::ApiError;
pub use routes::actions::ACTIVATION_ID_HEADER;
pub use routes::system::API_DOCS;
pub use server::ServerConfig;
