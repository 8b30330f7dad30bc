//! The **admin API**: what OpenWhisk's `wskadmin` does to the subjects database (users,
//! namespaces, keys, blocking, namespace limits), over HTTP, for platforms whose store only
//! the platform can reach (the embedded store of `faas-platform standalone`). The operator
//! CLI, `faas-platform admin`, speaks it.
//!
//! # Security
//!
//! * **Off unless configured.** Without an [`AdminCredential`] ([`AdminConfig::default`]) no
//!   route exists: `/admin/v1/...` answers 404 like any unknown path.
//! * **Its own credential.** Every route requires `Authorization: Bearer <credential>`,
//!   compared in constant time. Tenant keys travel as `Basic` and are refused whatever they
//!   hold, and the credential's alphabet has no `:`, so no tenant key can be configured as
//!   one. Tenant authentication (`/api/v1`) never looks at it. A missing credential is 401
//!   `The resource requires authentication, which was not supplied with the request`; a
//!   wrong one (or a tenant's `Basic` key) 401 `The supplied authentication is invalid`, with
//!   `WWW-Authenticate: Bearer realm="faas admin"`, logged without the value.
//! * **Secrets stay out of logs.** The controller marks `Authorization` sensitive (tower-http),
//!   the credential's `Debug` is redacted, keys appear only in response bodies (never in
//!   paths: `whois` takes the key in its body), and the operations log what changed without
//!   keys. No CORS headers: browsers on other origins cannot call it.
//! * The API is served on the controller's listener; serve it over TLS (a terminating proxy)
//!   when that listener is not on loopback, since the credential is a bearer secret.
//!
//! # Routes
//!
//! Under `/admin/v1`. Bodies and answers are JSON; errors are OpenWhisk's
//! `{"error": "<message>", "code": "<transaction id>"}` with `wskadmin`'s messages.
//!
//! | method and path | `wskadmin` | body | answer |
//! |---|---|---|---|
//! | `PUT /subjects/{subject}/namespaces/{ns}` | `user create SUBJECT --namespace NS [--auth K] [--revoke] [--force]` | `{"auth"?: "uuid:key", "revoke"?: bool, "force"?: bool}` | 201 (new subject) or 200 `{"subject", "namespace", "uuid", "key"}` |
//! | `GET /subjects/{subject}` | `user get SUBJECT [--namespace NS] [--all]` | | `{"subject", "namespaces": [{"name", "uuid", "key"}], "blocked"}` |
//! | `DELETE /subjects/{subject}` | `user delete SUBJECT` | | `{"message": "Subject deleted"}` |
//! | `DELETE /subjects/{subject}/namespaces/{ns}` | `user delete SUBJECT --namespace NS` | | `{"message": "Namespace deleted"}` |
//! | `POST /subjects/{subject}/block`, `.../unblock` | `user block`, `user unblock` | | `{"message": "'SUBJECT' blocked successfully"}` |
//! | `POST /whois` | `user whois UUID:KEY` | `{"auth": "uuid:key"}` | `{"subject", "namespace"}` |
//! | `GET /namespaces` | (`namespace list`) | | `["ns", …]`: every namespace a subject owns |
//! | `GET /namespaces/{ns}/identities` | `user list NS` | | `[{"subject", "uuid", "key"}]`: unblocked owners, by subject |
//! | `GET /namespaces/{ns}/limits` | `limits get NS` | | `{"namespace", "limits": {…} \| null}` (`null`: system values apply) |
//! | `PUT /namespaces/{ns}/limits` | `limits set NS --…` | any of `invocationsPerMinute`, `concurrentInvocations`, `firesPerMinute` (0 to 2³¹−1), `allowedKinds` (strings), `storeActivations` (bool); `null` removes one | `{"namespace", "limits", "created", "message"}` |
//! | `DELETE /namespaces/{ns}/limits` | `limits delete NS` | | `{"message": "Limits deleted"}` |
//!
//! Statuses: 400 for bad input (subject names shorter than 5 characters or unusable as a
//! document id, namespace names outside OpenWhisk's rules, keys that break OpenWhisk's rules —
//! uuid in 8-4-4-4-12 form, a 64-character secret —, limits out of range, unknown fields,
//! bodies that are not a JSON object); 401 as above; 404 for a missing subject, namespace
//! entry or limits document, and for a namespace with neither an owner nor limits (`limits
//! get`/`set`); 409 `Namespace already exists`, `The subject you want to edit is blocked`,
//! `authorization key is already in use` (an `auth` another entry holds), or a change that
//! kept meeting concurrent writers; 413 for bodies over 64 KiB; 405 for other methods; 503 when
//! the store is unreachable.
//!
//! # Semantics
//!
//! As `wskadmin`'s: a subject owns any number of namespaces, each with its own `uuid:key`, and
//! several subjects may share a namespace; `revoke` gives an owned namespace a new secret
//! (same uuid), `force` a whole new key; blocking keeps the record but stops every key of the
//! subject; deleting a subject or a namespace entry leaves the namespace's limits (delete them
//! with `DELETE .../limits`). Limits are merged: a `PUT` changes the limits it names and keeps
//! the others (the Python `wskadmin`'s behaviour). Each operation writes one document at the
//! revision it read, so it applies whole or not at all.
//!
//! Every write goes through the store the router was built with. Given the controller's store,
//! the identity cache in front of it drops what the write changed and, in a cluster, announces
//! it on the bus's `cacheInvalidation` topic, so a blocked, deleted or rotated key and changed
//! limits take effect on every controller within the announcement's delivery time.

mod auth;
pub mod ops;
mod routes;

use std::sync::Arc;

use axum::Router;
use faas_core::Store;
use tower_http::auth::AsyncRequireAuthorizationLayer;

pub use auth::{AdminCredential, MAX_CREDENTIAL_LENGTH, MIN_CREDENTIAL_LENGTH};
pub use ops::Admin;

/// Where the admin API's routes live.
pub const PREFIX: &str = "/admin/v1";

/// Whether and how the admin API is served. `Default`: not served.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AdminConfig {
    /// The operator credential; `None` turns the admin API off.
    pub credential: Option<AdminCredential>,
}

impl AdminConfig {
    /// The admin API served to holders of `credential`.
    pub fn with_credential(credential: AdminCredential) -> Self {
        Self {
            credential: Some(credential),
        }
    }

    /// Whether the admin API is served.
    pub fn enabled(&self) -> bool {
        self.credential.is_some()
    }
}

/// The admin API's routes over `store`, behind the operator credential check; an empty router
/// when `config` has no credential. Merge it into an application that renders error bodies
/// (the controller's [`router`](crate::Controller::router) does); [`app`] is the stand-alone
/// form.
pub fn router(store: Arc<dyn Store>, config: &AdminConfig) -> Router {
    let Some(credential) = &config.credential else {
        return Router::new();
    };
    routes::routes(Arc::new(Admin::new(store))).route_layer(AsyncRequireAuthorizationLayer::new(
        auth::AdminAuth::new(credential.clone()),
    ))
}

/// [`router`] with the layers it needs on its own: `Authorization` marked sensitive, the
/// transaction id and OpenWhisk's error bodies, a body limit, and 404 for other paths. For
/// serving the admin API outside a controller, and for in-process callers (`faas-platform
/// admin --store …` drives a store through it, so both of its modes speak the same API).
pub fn app(store: Arc<dyn Store>, config: &AdminConfig) -> Router {
    use tower::ServiceBuilder;
    router(store, config).fallback(routes::not_found).layer(
        ServiceBuilder::new()
            .layer(
                tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer::new([
                    http::header::AUTHORIZATION,
                ]),
            )
            .layer(crate::layers::request_id::RequestIdLayer::new(
                routes::MAX_BODY_BYTES as u64,
            ))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(
                routes::MAX_BODY_BYTES,
            )),
    )
}
