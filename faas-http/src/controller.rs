//! The controller: the HTTP stack around the invocation engine.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use http::StatusCode;
use http::header::AUTHORIZATION;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::auth::AsyncRequireAuthorizationLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use faas_core::{Authenticator, MessageBus, Result, Scheduler, Store};

use crate::config::ControllerConfig;
use crate::engine::Engine;
use crate::layers::auth::BasicAuth;
use crate::layers::cors::ApiCorsLayer;
use crate::layers::metrics::HttpMetricsLayer;
use crate::layers::request_id::RequestIdLayer;
use crate::layers::trace_context::TraceContextLayer;
use crate::routes;

/// An OpenWhisk controller: the REST API around an [`Engine`].
///
/// Cheap to clone. Background consumers started by [`start`](Self::start) stop when the last
/// clone, the last router made from it and the last clone of its engine are dropped.
#[derive(Debug, Clone)]
pub struct Controller {
    engine: Engine,
    auth: Arc<dyn Authenticator>,
}

impl Controller {
    /// A controller over the given adapters. Fails if the configuration is invalid.
    pub fn new(
        config: ControllerConfig,
        store: Arc<dyn Store>,
        bus: Arc<dyn MessageBus>,
        scheduler: Arc<dyn Scheduler>,
        auth: Arc<dyn Authenticator>,
    ) -> Result<Self> {
        Ok(Self::with_engine(
            Engine::new(config, store, bus, scheduler)?,
            auth,
        ))
    }

    /// A controller serving `engine`, authenticating callers with `auth`.
    pub fn with_engine(engine: Engine, auth: Arc<dyn Authenticator>) -> Self {
        Self { engine, auth }
    }

    /// Starts the engine's topics and consumers (see [`Engine::start`]).
    ///
    /// Call once, inside a Tokio runtime, before serving invokes; later calls do nothing.
    pub async fn start(&self) -> Result<()> {
        self.engine.start().await
    }

    /// The invocation engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The whole HTTP application, with its tower stack (outermost first):
    /// sensitive `Authorization` → HTTP metrics (when [`ControllerConfig::metrics`]) → request id → request span (when [`ControllerConfig::tracer`]) → trace → body limit → timeout → CORS →
    /// (on `/api/v1/namespaces/...` only) authentication → routes.
    ///
    /// The body limit sits outside the time-out because tower-http's time-out needs a
    /// response body with a `Default` (the limit's wrapper has none); the limit answers
    /// oversized `Content-Length`s at once, so the order makes no observable difference.
    ///
    /// With [`ControllerConfig::metrics`] and [`ControllerConfig::metrics_token`], `GET /metrics`
    /// answers the Prometheus exposition to `Authorization: Bearer <token>`.
    pub fn router(&self) -> Router {
        let config = self.engine.config();
        let max_request = config.max_request_bytes();
        let auth = AsyncRequireAuthorizationLayer::new(BasicAuth::new(Arc::clone(&self.auth)));
        let api = routes::authenticated(self.engine.clone()).route_layer(auth);
        let admin = crate::admin::router(Arc::clone(self.engine.store()), &config.admin);
        let metrics = match (&config.metrics, &config.metrics_token) {
            (Some(m), Some(token)) => {
                crate::metrics::metrics_router(Arc::clone(m), Some(token.clone()))
            }
            _ => Router::new(),
        };
        routes::public(self.engine.clone())
            .merge(metrics)
            .merge(api)
            .merge(routes::web::router(
                self.engine.clone(),
                Arc::clone(&self.auth),
            ))
            .merge(admin)
            .fallback(routes::not_found)
            .layer(
                ServiceBuilder::new()
                    .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
                    .layer(HttpMetricsLayer::new(config.metrics_handle()))
                    .layer(RequestIdLayer::new(max_request))
                    .layer(TraceContextLayer::new(config.tracer.clone()))
                    // Failed activations answer 5xx as a matter of course: not errors here.
                    .layer(
                        TraceLayer::new_for_http()
                            .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
                    )
                    .layer(RequestBodyLimitLayer::new(
                        usize::try_from(max_request).unwrap_or(usize::MAX),
                    ))
                    .layer(TimeoutLayer::with_status_code(
                        StatusCode::SERVICE_UNAVAILABLE,
                        config.request_timeout,
                    ))
                    .layer(ApiCorsLayer::new()),
            )
    }

    /// Serves [`router`](Self::router) on `listener` until `shutdown` resolves, with the
    /// limits of [`ControllerConfig::server`] (see [`crate::server`]).
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let config = self.engine.config().server.clone();
        crate::server::serve(listener, self.router(), config, shutdown).await
    }

    /// The configuration.
    pub fn config(&self) -> &ControllerConfig {
        self.engine.config()
    }

    /// How many activations this controller has in flight.
    pub fn in_flight(&self) -> usize {
        self.engine.in_flight()
    }
}

/// Serves `router` on `listener` (with `TCP_NODELAY`) until `shutdown` resolves, then
/// finishes the requests in progress, with the default limits of
/// [`ServerConfig`](crate::server::ServerConfig) (see [`crate::server::serve`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::server::serve(
        listener,
        router,
        crate::server::ServerConfig::default(),
        shutdown,
    )
    .await
}
