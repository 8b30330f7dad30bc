//! Basic authentication (`Authorization: Basic base64(uuid:key)`) over an
//! [`Authenticator`], as a tower-http [`AsyncAuthorizeRequest`].
//!
//! On success the caller's [`Identity`] goes into the request extensions as an owned value,
//! so that the invoke path can move it into the activation message without cloning. Without credentials (or with another scheme) the answer is
//! 401 `The resource requires authentication, which was not supplied with the request`;
//! with unknown or malformed credentials 401 `The supplied authentication is invalid`; both
//! carry `WWW-Authenticate: Basic realm="OpenWhisk secure realm"`. A failing store answers
//! with its own status (503/500), not 401.

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::future::BoxFuture;
use http::{HeaderMap, Request, header};
use tower_http::auth::AsyncAuthorizeRequest;

use faas_core::{AuthKey, Authenticator, Error, Identity};

use crate::error::{ApiError, messages};

/// Authenticates requests with an [`Authenticator`].
#[derive(Debug, Clone)]
pub struct BasicAuth {
    auth: Arc<dyn Authenticator>,
}

impl BasicAuth {
    /// Checks credentials with `auth`.
    pub fn new(auth: Arc<dyn Authenticator>) -> Self {
        Self { auth }
    }
}

/// What the `Authorization` header holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// No header, or not `Basic`.
    Missing,
    /// `Basic` but not `base64(uuid:key)`.
    Malformed,
    /// A key to check.
    Key(AuthKey),
}

pub(crate) fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Credentials::Missing;
    };
    let Ok(text) = value.to_str() else {
        return Credentials::Malformed;
    };
    let text = text.trim();
    let Some((scheme, rest)) = text.split_once(' ') else {
        return Credentials::Missing;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Credentials::Missing;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
        return Credentials::Malformed;
    };
    let Ok(pair) = std::str::from_utf8(&decoded) else {
        return Credentials::Malformed;
    };
    match AuthKey::parse(pair) {
        Ok(k) => Credentials::Key(k),
        Err(_) => Credentials::Malformed,
    }
}

impl<B: Send + 'static> AsyncAuthorizeRequest<B> for BasicAuth {
    type RequestBody = B;
    type ResponseBody = Body;
    type Future = BoxFuture<'static, Result<Request<B>, Response<Body>>>;

    fn authorize(&mut self, mut request: Request<B>) -> Self::Future {
        let auth = Arc::clone(&self.auth);
        Box::pin(async move {
            let key = match credentials(request.headers()) {
                Credentials::Key(k) => k,
                Credentials::Missing => {
                    return Err(ApiError::unauthorized(messages::AUTH_MISSING).into_response());
                }
                Credentials::Malformed => {
                    return Err(ApiError::unauthorized(messages::AUTH_INVALID).into_response());
                }
            };
            match auth.authenticate(&key).await {
                Ok(identity) => {
                    request.extensions_mut().insert::<Identity>(identity);
                    Ok(request)
                }
                Err(Error::Unauthenticated | Error::NotFound { .. }) => {
                    Err(ApiError::unauthorized(messages::AUTH_INVALID).into_response())
                }
                Err(e) => Err(ApiError::from(e).into_response()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn parses_basic_credentials() {
        assert_eq!(credentials(&HeaderMap::new()), Credentials::Missing);
        assert_eq!(credentials(&with("Bearer abc")), Credentials::Missing);
        assert_eq!(credentials(&with("Basic !!!")), Credentials::Malformed);
        let nocolon = base64::engine::general_purpose::STANDARD.encode("abc");
        assert_eq!(
            credentials(&with(&format!("Basic {nocolon}"))),
            Credentials::Malformed
        );
        let ok = base64::engine::general_purpose::STANDARD.encode("u:k");
        assert_eq!(
            credentials(&with(&format!("basic {ok}"))),
            Credentials::Key(AuthKey::parse("u:k").unwrap())
        );
    }
}
